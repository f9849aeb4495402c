"""results.json (Gradescope's format, as this grader writes it) -> the result model."""
from __future__ import annotations

from autograder.engine.results import GradingResult, TestResult


def from_json(data: dict) -> GradingResult:
    """The ``GradingResult`` a results.json describes (raises ``ValueError`` on a malformed one)."""
    if not isinstance(data, dict) or not isinstance(data.get("tests", []), list):
        raise ValueError("results.json must be an object with a list of tests")
    extra = dict(data.get("extra_data") or {})
    tests = []
    for t in data.get("tests", []):
        if not isinstance(t, dict):
            raise ValueError("each test of results.json must be an object")
        score, max_score = float(t.get("score", 0.0)), float(t.get("max_score", 0.0))
        test_extra = dict(t.get("extra_data") or {})
        seconds = test_extra.pop("execution_time", t.get("execution_time", 0.0))   # older files: a test field
        status = t.get("status") or ("passed" if score >= max_score else "failed")
        outcome = str(test_extra.pop("outcome", "") or status)
        tests.append(TestResult(
            name=str(t.get("name", "")), max_score=max_score, score=score,
            number=None if t.get("number") is None else str(t["number"]), output=str(t.get("output", "")),
            visibility=str(t.get("visibility", data.get("visibility", "visible"))),
            tags=tuple(str(x) for x in t.get("tags", ())), execution_time=float(seconds or 0.0),
            status=status, outcome=outcome, extra=test_extra))
    return GradingResult(assignment=str(extra.pop("assignment", "")), tests=tests,
                         output=str(data.get("output", "")), execution_time=float(data.get("execution_time", 0.0)),
                         grader_error=bool(extra.pop("grader_error", False)),
                         total_points=_number(extra.pop("total_points", None)),
                         extra_credit=_number(extra.pop("extra_credit", 0.0)) or 0.0, extra=extra)


def _number(value) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
