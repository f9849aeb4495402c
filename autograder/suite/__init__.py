"""What test suites import: the base class, the decorators and the checks."""
from autograder.suite.case import GradedTestCase
from autograder.suite.checks import describe, expect_close, expect_tensor
from autograder.suite.decorators import (
    enforce_ban, leaderboard, number, partial_credit, tags, time_limit, visibility, weight,
)
from autograder.suite.siblings import sibling

__all__ = [
    "GradedTestCase", "describe", "expect_close", "expect_tensor", "enforce_ban",
    "leaderboard", "number", "partial_credit", "sibling", "tags", "time_limit", "visibility", "weight",
]
