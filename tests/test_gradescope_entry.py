"""run_autograder as Gradescope runs it, in a temporary /autograder root."""
import json
import os
import shutil
import subprocess
import sys

import jsonschema
import pytest

from autograder.engine.formats import gradescope_json
from support import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ASSIGNMENT = json.loads((ROOT / "autograder" / "deploy.json").read_text())["assignment"]


def run_autograder(root, env_extra=None):
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable, **(env_extra or {})}
    proc = subprocess.run([str(ROOT / "run_autograder")], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(data, gradescope_json.schema())
    return data


def make_root(tmp_path, files):
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    for name, text in files.items():
        (root / "submission" / name).write_text(text)
    return root


def test_reference_through_run_autograder_scores_full_marks(tmp_path):
    ref = ROOT / "reference" / ASSIGNMENT
    root = make_root(tmp_path, {p.name: p.read_text() for p in ref.glob("*.py")})
    data = run_autograder(root)
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) > 0
    assert "hidden tests hold" in data["output"]


def test_student_writing_the_results_path_changes_nothing(tmp_path):
    ref = ROOT / "reference" / ASSIGNMENT
    files = {p.name: p.read_text() for p in ref.glob("*.py")}
    first = sorted(files)[0]
    root = tmp_path / "autograder"
    forged = ('import json, os\n'
              f'p = {str(root / "results" / "results.json")!r}\n'
              'try:   # as root the worker user cannot even reach the results folder\n'
              '    os.makedirs(os.path.dirname(p), exist_ok=True)\n'
              '    open(p, "w").write(json.dumps({"score": 1000, "tests": []}))\n'
              'except OSError:\n'
              '    pass\n'
              'print(\'{"score": 1000}\')\n')
    files[first] = forged + files[first]
    data = run_autograder(make_root(tmp_path, files))
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) < 1000


def test_empty_submission_gives_zero_and_says_what_is_missing(tmp_path):
    data = run_autograder(make_root(tmp_path, {"README.txt": "oops"}))
    assert data["score"] == 0 and "Missing:" in data["output"]


def test_grader_that_cannot_start_still_leaves_valid_results(tmp_path):
    root = make_root(tmp_path, {})
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": "/nonexistent/python"}
    subprocess.run([str(ROOT / "run_autograder")], env=env, capture_output=True, timeout=60)
    data = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(data, gradescope_json.schema())
    assert data["score"] == 0 and data["tests"][0]["name"] == "grader error"


def test_single_zip_with_nested_folder_and_alias_names(tmp_path):
    import zipfile
    root = make_root(tmp_path, {})
    ref = ROOT / "reference" / ASSIGNMENT
    with zipfile.ZipFile(root / "submission" / "upload.zip", "w") as zf:
        for p in ref.glob("*.py"):
            zf.writestr(f"my_work/code/{p.name}", p.read_text())
        zf.writestr("__MACOSX/my_work/._junk", "x")
        zf.writestr("my_work/conftest.py", "raise SystemExit('should never be imported')")
    data = run_autograder(root)
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) > 0


def test_outside_a_gradescope_root_nothing_is_graded_or_created(tmp_path, monkeypatch, capsys):
    from autograder import cli
    root = tmp_path / "not_autograder"
    monkeypatch.setenv("AUTOGRADER_ROOT", str(root))
    assert cli.main(["gradescope"]) == 2
    assert "not a Gradescope autograder root" in capsys.readouterr().err
    assert not root.exists()


def test_a_full_disk_for_partial_results_does_not_stop_grading(tmp_path, monkeypatch):
    """Writing the partial results.json after a test fails with ENOSPC: grading goes on, and the
    final write (once space is back) holds every test."""
    import errno
    from autograder import cli
    from support import MINI_PROJECT
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    shutil.copy(MINI_PROJECT / "reference" / "mini" / "norm.py", root / "submission" / "norm.py")
    deploy = tmp_path / "deploy.json"
    deploy.write_text('{"assignment": "mini"}')
    monkeypatch.setattr("autograder.engine.deploy.PATH", deploy)
    monkeypatch.setenv("AUTOGRADER_ROOT", str(root))
    monkeypatch.setenv("AUTOGRADER_PROJECT", str(MINI_PROJECT))
    real, failed = gradescope_json.write_atomic, []

    def full_disk(path, text):
        if len(failed) < 4:               # one partial write per test of the mini assignment
            failed.append(path)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, text)

    monkeypatch.setattr(gradescope_json, "write_atomic", full_disk)
    assert cli.main(["gradescope"]) == 0
    data = json.loads((root / "results" / "results.json").read_text())
    assert len(failed) == 4 and data["score"] == 4 and len(data["tests"]) == 4
