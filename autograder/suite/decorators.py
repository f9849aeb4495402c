"""The decorator vocabulary of test suites.

gradescope-utils' own decorators (``weight``, ``visibility``, ``number``, ``tags``,
``partial_credit``, ``leaderboard``) are used unchanged so existing Gradescope material
ports over; this module adds the two things an isolated grader needs to know per test.
"""
from __future__ import annotations

from gradescope_utils.autograder_utils.decorators import (  # noqa: F401  (re-exported)
    leaderboard, number, partial_credit, tags, visibility, weight,
)


class time_limit:
    """``@time_limit(seconds)``: wall-clock budget for everything the test asks of student code.

    Enforced by the trusted process's clock: when it runs out the worker's whole process
    group is killed and the test fails with a message naming the call that hung.
    """

    def __init__(self, seconds: float):
        if seconds <= 0:
            raise ValueError("time limit must be positive")
        self.seconds = float(seconds)

    def __call__(self, func):
        func.__time_limit__ = self.seconds
        return func


class enforce_ban:
    """``@enforce_ban("key", ...)``: the test fails if a declared ban is broken.

    The keys name ``Ban`` entries of the assignment. The test fails when the static scan
    found a banned name in the ban's scope, or when the worker's op log saw a banned op
    during this test's calls into student code.
    """

    def __init__(self, *keys: str):
        self.keys = tuple(keys)

    def __call__(self, func):
        func.__bans__ = tuple(getattr(func, "__bans__", ())) + self.keys
        return func


def attribute(func, name: str, default=None):
    """Read a decorator attribute from a test method, bound or not."""
    func = getattr(func, "__func__", func)
    while func is not None:
        if hasattr(func, name):
            return getattr(func, name)
        func = getattr(func, "__wrapped__", None)
    return default
