"""Rate limiting from submission_metadata.json: N graded submissions per window, the earlier
result carried over (with why and until when) past the limit, off by default."""
import json

import pytest

from autograder.gradescope import rate_limit
from autograder.engine.formats import gradescope_json
from autograder.gradescope.rate_limit import RateLimit, check, decide, parse_time
from autograder.engine.results import GradingResult, TestResult
from support import assert_valid_results

LIMIT = RateLimit(submissions=2, window_hours=24)


def results_json(score, graded_at=None):
    result = GradingResult("mini", [TestResult("t1", 2.0, score, number="1", status="passed" if score == 2 else "failed",
                                               output="ok")])
    if graded_at is not None:
        result.extra["rate_limit"] = {"graded_at": graded_at, "carried_over": False}
    return json.loads(gradescope_json.render(result))


def metadata(created_at, previous):
    return {"id": 3, "created_at": created_at, "assignment": {"total_points": "2"},
            "users": [{"email": "a@x.edu", "id": 1, "name": "A"}], "previous_submissions": previous}


def prev(time, score=0.0, error=False, results=None):
    entry = {"submission_time": time, "score": score, "autograder_error": error}
    if results is not None:
        entry["results"] = results
    return entry


def test_off_unless_the_deployment_sets_it(tmp_path):
    assert check({"assignment": "mini"}, tmp_path / "absent.json") is None


def test_under_the_limit_grades_and_counts():
    d = decide(LIMIT, metadata("2024-03-02T10:00:00-08:00", [prev("2024-03-02T09:00:00-08:00", results=results_json(1))]))
    assert d.allowed and "graded submission 2 of 2 graded submissions in any 24 hours" in d.message
    assert [t.isoformat() for t in d.graded_at] == ["2024-03-02T09:00:00-08:00", "2024-03-02T10:00:00-08:00"]


def test_over_the_limit_carries_the_latest_result_over_with_an_explanation():
    previous = [prev("2024-03-01T20:00:00Z", 1), prev("2024-03-02T09:00:00Z", 2, results=results_json(2))]
    d = decide(LIMIT, metadata("2024-03-02T10:00:00+00:00", previous))
    assert not d.allowed and d.carried.score == 2
    assert "NOT graded" in d.message and "2024-03-02 09:00 UTC" in d.message
    assert "from 2024-03-02 20:00 UTC" in d.message          # when the 20:00 submission leaves the window
    result = rate_limit.apply(d, d.carried)
    data = assert_valid_results(result)
    assert data["output"].startswith("Submission limit reached") and data["score"] == 2
    assert data["extra_data"]["rate_limit"]["carried_over"] is True
    assert len(data["extra_data"]["rate_limit"]["graded_at"]) == 2


def test_submissions_outside_the_window_or_with_grader_errors_do_not_count():
    previous = [prev("2024-02-28T10:00:00Z", 2), prev("2024-03-02T08:00:00Z", 0, error=True),
                prev("2024-03-02T09:00:00Z", 1, results=None)]
    d = decide(LIMIT, metadata("2024-03-02T10:00:00Z", previous))
    assert d.allowed and len(d.graded_at) == 2


def test_carried_over_submissions_do_not_count_against_the_next_one():
    # two graded at 00:00 and 01:00; the 02:00 one was carried over (its results record only the two)
    carried = results_json(2, graded_at=["2024-03-02T00:00:00+00:00", "2024-03-02T01:00:00+00:00"])
    previous = [prev("2024-03-02T00:00:00Z"), prev("2024-03-02T01:00:00Z"), prev("2024-03-02T02:00:00Z", 2, results=carried)]
    assert not decide(LIMIT, metadata("2024-03-02T12:00:00Z", previous)).allowed
    d = decide(LIMIT, metadata("2024-03-03T00:30:00Z", previous))    # 00:00 left the window, 01:00 still in it
    assert d.allowed and [t.hour for t in d.graded_at] == [1, 0]


def test_the_recorded_history_is_carried_forward():
    d = decide(LIMIT, metadata("2024-03-02T10:00:00Z", []))
    graded = rate_limit.apply(d, GradingResult("mini", [TestResult("t1", 1.0, 1.0, status="passed")]))
    assert graded.extra["rate_limit"] == {"graded_at": ["2024-03-02T10:00:00+00:00"], "carried_over": False}
    failed = rate_limit.apply(decide(LIMIT, metadata("2024-03-02T10:00:00Z", [])),
                              GradingResult("mini", grader_error=True))
    assert failed.extra["rate_limit"]["graded_at"] == []       # a grader error costs no attempt


@pytest.mark.parametrize("config, text, why", [
    ({"rate_limit": {"submissions": 0, "window_hours": 1}}, "{}", "malformed"),
    ({"rate_limit": {"submissions": 1, "window_hours": 1}}, "not json", "metadata unreadable"),
    ({"rate_limit": {"submissions": 1, "window_hours": 1}}, '{"previous_submissions": []}', "metadata unreadable"),
])
def test_unreadable_configuration_or_metadata_grades_and_says_why(tmp_path, config, text, why):
    path = tmp_path / "submission_metadata.json"
    path.write_text(text)
    d = check(config, path)
    assert d.allowed and why in d.message


def test_past_the_limit_without_an_earlier_result_still_grades():
    previous = [prev("2024-03-02T08:00:00Z"), prev("2024-03-02T09:00:00Z")]
    d = decide(LIMIT, metadata("2024-03-02T10:00:00Z", previous))
    assert d.allowed and "could not be found" in d.message


def test_times_as_gradescope_writes_them():
    assert parse_time("2019-11-25T14:39:56.190447-08:00").utcoffset().total_seconds() == -8 * 3600
    assert parse_time("2024-03-02T10:00:00Z") == parse_time("2024-03-02T10:00:00")


def test_a_grader_failure_is_never_carried_over_nor_counted():
    """run_autograder's start-up fallback (a 0 with grader_error) and Gradescope's autograder_error
    flag: over the limit, such a latest result is not carried for a day; the submission is graded."""
    import re
    from support import ROOT
    fallback = json.loads(re.search(r"<<'JSON'\n(.*?)\nJSON", (ROOT / "run_autograder").read_text(), re.S).group(1))
    assert fallback["extra_data"]["grader_error"] is True
    previous = [prev("2024-03-02T07:00:00Z", 2),
                prev("2024-03-02T08:00:00Z", 2, results=results_json(2, graded_at=["2024-03-02T07:00:00+00:00",
                                                                                  "2024-03-02T08:00:00+00:00"])),
                prev("2024-03-02T09:00:00Z", 0, results=fallback)]
    d = decide(LIMIT, metadata("2024-03-02T10:00:00+00:00", previous))
    assert d.allowed and "grader failed on your latest submission" in d.message
    no_record = [prev("2024-03-02T07:00:00Z", 2), prev("2024-03-02T09:00:00Z", 0, results=fallback)]
    d = decide(LIMIT, metadata("2024-03-02T10:00:00+00:00", no_record))
    assert d.allowed and len(d.graded_at) == 2       # the fallback's submission did not count
