"""A suite's tests, each read once into a ``TestSpec``: what its decorators declare.

``collect_tests`` loads the suite's ``test_*.py`` files (instructor code) and returns its
``GradedTestCase`` instances in the suite's order (by ``@number``); ``spec_of`` reads one test's
declaration. The runner, verify, build, hidden-test stripping and ``check`` all read tests
through these two functions.
"""
from __future__ import annotations

import unittest
from dataclasses import dataclass

from autograder.engine import registry
from autograder.suite.case import GradedTestCase
from autograder.suite.decorators import attribute


@dataclass(frozen=True)
class TestSpec:
    __test__ = False                     # not a pytest test class
    id: str                              # unittest id: module.Class.method
    name: str                            # the docstring's first line (else the method's name)
    number: str | None                   # @number, e.g. "2.1.3"
    points: float | None                 # @weight; None when the test declares none
    visibility: str                      # @visibility: "visible" | "hidden" | "after_due_date" | ...
    time_limit: float | None             # @time_limit in seconds; None: the assignment's default
    bans: tuple[str, ...]                # @enforce_ban keys
    tags: tuple[str, ...]                # @tags
    leaderboard: tuple[str, str] | None  # @leaderboard: (column, "asc" | "desc")

    @property
    def visible(self) -> bool:
        return self.visibility == "visible"

    @property
    def weight(self) -> float:
        """Points, 0 when none are declared (``verify`` reports the omission)."""
        return float(self.points or 0.0)


def method_of(case: unittest.TestCase):
    """The bound test method a case runs."""
    return getattr(case, case._testMethodName)


def spec_of(case: unittest.TestCase) -> TestSpec:
    method = method_of(case)
    points = attribute(method, "__weight__")
    limit = attribute(method, "__time_limit__")
    column = attribute(method, "__leaderboard_column__")
    return TestSpec(
        id=case.id(),
        name=(case.shortDescription() or case._testMethodName).strip(),
        number=attribute(method, "__number__"),
        points=None if points is None else float(points),
        visibility=attribute(method, "__visibility__", "visible"),
        time_limit=None if limit is None else float(limit),
        bans=tuple(attribute(method, "__bans__", ()) or ()),
        tags=tuple(attribute(method, "__tags__", ()) or ()),
        leaderboard=None if column is None else
        (str(column), attribute(method, "__leaderboard_sort_order__", "desc")),
    )


def number_key(number: str | None) -> tuple:
    """Sort key of a test number: "1.10" after "1.9", letters after digits."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in (number or "").split("."))


def collect_tests(assignment: str, visible_only: bool = False) -> list[GradedTestCase]:
    """The suite's tests in number order (only the visible ones when ``visible_only``)."""
    loader = unittest.TestLoader()
    cases: list[GradedTestCase] = []

    def flatten(suite):
        for item in suite:
            if isinstance(item, unittest.TestSuite):
                flatten(item)
            elif isinstance(item, GradedTestCase):
                cases.append(item)

    for module in registry.test_modules(assignment):
        flatten(loader.loadTestsFromModule(module))
    if visible_only:
        cases = [c for c in cases if spec_of(c).visible]
    return sorted(cases, key=lambda c: number_key(spec_of(c).number))
