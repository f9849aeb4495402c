import hashlib
import json
import os
import re
from pathlib import Path

import jsonschema
import pytest

from autograder.trusted.formats import gradescope_json

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
MINI_PROJECT = FIXTURES / "mini_project"
MINI_SECRET = "SECRET-MINI-HIDDEN-7d1f0c"   # in the mini project's hidden test file


def assert_valid_results(result):
    """Every result produced in the tests must render to schema-valid results.json."""
    data = json.loads(gradescope_json.render(result))
    jsonschema.validate(data, gradescope_json.schema())
    return data


@pytest.fixture
def mini_project(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_PROJECT", str(MINI_PROJECT))
    return MINI_PROJECT


def file_fingerprint(paths) -> str:
    """Hash of (path, size, mtime, mode) of every file under ``paths``."""
    digest = hashlib.sha256()
    for top in map(Path, paths):
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for f in files:
            st = f.stat()
            digest.update(f"{f}:{st.st_size}:{st.st_mtime_ns}:{st.st_mode}\n".encode())
    return digest.hexdigest()


def grader_files(project: Path) -> list[Path]:
    """What a submission must never change: the grader, the assignment, key Python files."""
    import torch
    return [ROOT / "autograder", project, Path(torch.__file__), Path(os.__file__), Path(json.__file__).parent]


def assert_contained(result, secrets=(MINI_SECRET,)):
    """What holds whatever a submission does: results.json valid and under its cap, no secret
    in it, and (as root) no process of the worker user left behind."""
    from autograder.trusted import privileges
    data = assert_valid_results(result)
    rendered = gradescope_json.render(result)
    assert len(rendered.encode()) <= gradescope_json.MAX_TOTAL_BYTES
    for secret in secrets:
        assert secret not in rendered, "a secret from the hidden tests leaked into results.json"
    match = re.search(r"\(uid (\d+)\)", str(result.extra.get("sandbox", "")))
    if match:
        left = privileges.processes_of(int(match.group(1)))
        assert left == [], f"{len(left)} processes of the worker user outlived grading"
    return data
