"""results.json: schema-valid whatever goes in, capped, written atomically."""
import json

import jsonschema
import pytest

from autograder.trusted.formats import gradescope_json
from autograder.trusted.results import GradingResult, TestResult, grader_error_result


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
