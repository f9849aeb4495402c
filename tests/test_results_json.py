"""results.json: schema-valid whatever goes in, capped, written atomically."""
import json

import jsonschema
import pytest

from autograder.engine.formats import gradescope_json
from autograder.engine.results import GradingResult, TestResult, grader_error_result


@pytest.mark.e2e
def test_huge_and_hostile_output_is_capped_and_valid(tmp_path):
    noisy = "\x00\x1b[31m" + "A" * 5_000_000 + "\r\n\ud800"
    result = GradingResult("a", tests=[TestResult(name=f"t{i}", max_score=1, output=noisy) for i in range(20)])
    path = tmp_path / "results" / "results.json"
    gradescope_json.write(result, path)
    text = path.read_text()
    assert len(text.encode()) <= gradescope_json.MAX_TOTAL_BYTES
    data = json.loads(text)
    jsonschema.validate(data, gradescope_json.schema())
    assert "output cut" in data["tests"][0]["output"]
    assert "\x00" not in text and "\r" not in data["tests"][0]["output"]


def test_summary_states_hidden_points():
    result = GradingResult("a", tests=[TestResult(name="v", max_score=2, score=2, status="passed"),
                                       TestResult(name="h", max_score=3, visibility="hidden")])
    data = json.loads(gradescope_json.render(result))
    assert data["score"] == 2
    assert "2 of 2" in data["output"] and "hold 3 more points" in data["output"]


def test_grader_error_result_hides_the_traceback():
    data = json.loads(gradescope_json.render(grader_error_result("a", "Traceback: secret path /autograder/source")))
    visible = [t for t in data["tests"] if t["visibility"] == "visible"]
    assert data["score"] == 0 and visible and all("secret" not in t["output"] for t in visible)
    assert "secret" not in data["output"]


def test_schema_rejects_obsolete_visibility():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tests": [{"name": "x", "visibility": "never"}]}, gradescope_json.schema())


def test_per_test_time_travels_in_extra_data_and_reads_back():
    """Gradescope documents no per-test execution_time: it goes in extra_data, and the reader
    (batch, rate limit) still gets it back, from new files and from files written before."""
    from autograder.engine.formats.results_reader import from_json
    result = GradingResult("a", tests=[TestResult(name="t", max_score=1, score=1, status="passed",
                                                  execution_time=1.25, extra={"k": 1})])
    data = json.loads(gradescope_json.render(result))
    (test,) = data["tests"]
    assert "execution_time" not in test and test["extra_data"] == {"k": 1, "execution_time": 1.25, "outcome": "failed"}
    back = from_json(data).tests[0]
    assert back.execution_time == 1.25 and back.extra == {"k": 1}
    older = {"tests": [{"name": "t", "score": 1, "max_score": 1, "execution_time": 2.5}]}
    assert from_json(older).tests[0].execution_time == 2.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tests": [{"name": "x", "execution_time": 1.0}]}, gradescope_json.schema())


@pytest.mark.e2e
def test_leaderboard_values_reach_results_json(tmp_path, monkeypatch):
    """gradescope-utils' @leaderboard: the value a test sets with set_leaderboard_value is
    Gradescope's top-level leaderboard entry (name, value, order); a test that sets none adds none."""
    import shutil
    from autograder.engine.runner import grade
    from support import MINI_PROJECT
    project = tmp_path / "project"
    shutil.copytree(MINI_PROJECT, project)
    (project / "test_suites" / "mini" / "test_board.py").write_text(
        "import torch\n"
        "from autograder.suite import GradedTestCase, leaderboard, number, time_limit, weight\n\n\n"
        "class TestBoard(GradedTestCase):\n"
        "    @weight(0)\n    @number('9')\n    @time_limit(10)\n    @leaderboard('doubled', 'asc')\n"
        "    def test_board(self, set_leaderboard_value=None):\n"
        "        \"\"\"leaderboard: double(21)\"\"\"\n"
        "        set_leaderboard_value(torch.tensor(self.student('norm').double(21)))\n\n"
        "    @weight(0)\n    @number('10')\n    @time_limit(10)\n    @leaderboard('never set')\n"
        "    def test_unset(self, set_leaderboard_value=None):\n"
        "        \"\"\"leaderboard: nothing set\"\"\"\n")
    monkeypatch.setenv("AUTOGRADER_PROJECT", str(project))
    result = grade("mini", project / "reference" / "mini", device="cpu", seed=0)
    data = json.loads(gradescope_json.render(result))
    assert data["leaderboard"] == [{"name": "doubled", "value": 42.0, "order": "asc"}]
    jsonschema.validate(data, gradescope_json.schema())


def test_one_wording_of_totals_for_students_and_staff_apart():
    """The total is the assignment's (not what this grading ran); students read what the visible
    score covers, staff read the whole score; and the total survives results.json."""
    from autograder.engine.formats import table
    from autograder.engine.formats.results_reader import from_json
    result = GradingResult("a", tests=[TestResult(name="v", max_score=2, score=2, status="passed", number="1"),
                                       TestResult(name="h", max_score=3, score=1, visibility="hidden", number="2",
                                                  output="first line\nsecond line")],
                           total_points=4, extra_credit=1)
    assert "The assignment is out of 4 points (+1 extra credit)." in result.summary()
    staff = table.render(result)
    assert "Total: 3 of 4 points (+1 extra credit); visible 2/2, hidden 1/3." in staff
    assert "not your final score" not in staff and "--details prints each in full" in staff
    student = table.render(result, audience="student")
    assert "not your final score" in student and "Total: 3" not in student
    assert "second line" in table.render(result, details=True)
    back = from_json(json.loads(gradescope_json.render(result)))
    assert (back.total_points, back.extra_credit) == (4, 1) and back.summary() == result.summary()


@pytest.mark.e2e
def test_extra_data_is_capped_and_clean_whatever_a_submission_makes_of_it():
    """20,000 banned calls and a lone surrogate in a student-chosen op name, NaN, deep nesting:
    results.json stays under its cap, valid UTF-8, with the cut said."""
    ops = [f"aten::op_{i}_\ud800" for i in range(20_000)]
    deep = {}
    node = deep
    for _ in range(50):
        node["x"] = {}
        node = node["x"]
    result = GradingResult("a", extra={"nan": float("nan"), "deep": deep},
                           tests=[TestResult(name=f"t{i}\ud800", max_score=1, number="1", tags=("a\udfff",),
                                             extra={"banned_ops": ops, "huge": "x" * 5_000_000})
                                  for i in range(40)])
    text = gradescope_json.render(result)
    assert len(text.encode("utf-8")) <= gradescope_json.MAX_TOTAL_BYTES
    text.encode("utf-8")            # no lone surrogate survives
    data = json.loads(text)
    extra = data["tests"][0]["extra_data"]
    assert len(extra["banned_ops"]) <= gradescope_json.MAX_ITEMS + 1 and "more entries" in extra["banned_ops"][-1]
    assert data["extra_data"]["nan"] == "nan" and "nested too deep" in json.dumps(data["extra_data"]["deep"])
