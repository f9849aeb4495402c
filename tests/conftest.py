import json
from pathlib import Path

import jsonschema
import pytest

from autograder.trusted.formats import gradescope_json

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
MINI_PROJECT = FIXTURES / "mini_project"


def assert_valid_results(result):
    """Every result produced in the tests must render to schema-valid results.json."""
    data = json.loads(gradescope_json.render(result))
    jsonschema.validate(data, gradescope_json.schema())
    return data


@pytest.fixture
def mini_project(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_PROJECT", str(MINI_PROJECT))
    return MINI_PROJECT
