"""What test suites import, and all they import: the base class, the decorators, the checks,
the proxy type of values living in the worker, helper-module loading and the failures of
student code (``errors``). Suites never import engine modules (tests/test_layout.py)."""
from autograder.suite import errors
from autograder.suite.case import GradedTestCase
from autograder.suite.checks import describe, expect_close, expect_tensor
from autograder.suite.decorators import (
    enforce_ban, leaderboard, number, partial_credit, tags, time_limit, visibility, weight,
)
from autograder.suite.proxy import Remote
from autograder.suite.siblings import sibling

__all__ = [
    "GradedTestCase", "Remote", "describe", "errors", "expect_close", "expect_tensor", "enforce_ban",
    "leaderboard", "number", "partial_credit", "sibling", "tags", "time_limit", "visibility", "weight",
]
