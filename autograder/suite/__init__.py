"""What test suites import, and all they import: the base class, the decorators, the checks,
the proxy type of values living in the worker, helper-module loading, the failures of
student code (``errors``) and where a composite departs from the reference (``localise``).
Suites never import engine modules (tests/test_layout.py)."""
from autograder.suite import errors, localise
from autograder.suite.case import GradedTestCase
from autograder.suite.checks import describe, expect_close, expect_tensor
from autograder.suite.localise import Difference, first_difference
from autograder.suite.decorators import (
    enforce_ban, leaderboard, number, partial_credit, tags, time_limit, visibility, weight,
)
from autograder.suite.proxy import Remote
from autograder.suite.siblings import sibling

__all__ = [
    "Difference", "GradedTestCase", "Remote", "describe", "errors", "expect_close", "expect_tensor", "enforce_ban",
    "first_difference", "leaderboard", "localise", "number", "partial_credit", "sibling", "tags", "time_limit",
    "visibility", "weight",
]
