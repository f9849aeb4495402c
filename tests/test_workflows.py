"""Instructor and student workflows on top of the engine: verify and check."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from autograder.engine.runner import grade
from support import FIXTURES, MINI_PROJECT, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def autograder(*args, cwd=ROOT, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("assignment", ["ift6135_vit_lstm", "uw_attention"])
def test_verify_passes_for_every_shipped_assignment(assignment):
    proc = autograder("verify", assignment)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all checks passed" in proc.stdout and "hidden" in proc.stdout


def test_verify_reports_a_broken_assignment(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(MINI_PROJECT, project)
    suite = project / "test_suites" / "mini" / "test_mini.py"
    suite.write_text(suite.read_text().replace("    @time_limit(5)\n    def test_double(self):", "    def test_double(self):", 1))
    config = project / "test_suites" / "mini" / "assignment.py"
    config.write_text(config.read_text().replace("total_points=4", "total_points=5"))
    proc = autograder("verify", "mini", env_extra={"AUTOGRADER_PROJECT": str(project)})
    assert proc.returncode == 1
    assert re.search(r"FAIL\s+every test has its own time limit", proc.stdout)
    assert re.search(r"FAIL\s+points add up to the configured total \(5\)", proc.stdout)
    assert "the tests hold 4" in proc.stdout


def test_verify_names_a_mistyped_ban_key_and_the_real_cause_of_a_failure(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(MINI_PROJECT, project)
    suite = project / "test_suites" / "mini" / "test_mini.py"
    suite.write_text(suite.read_text().replace('@enforce_ban("layer_norm")', '@enforce_ban("layer_nrom")'))
    proc = autograder("verify", "mini", env_extra={"AUTOGRADER_PROJECT": str(project)})
    assert proc.returncode == 1
    assert re.search(r"FAIL\s+every @enforce_ban key names a ban the assignment declares", proc.stdout)
    assert "test_norm_values: 'layer_nrom'; declared: layer_norm" in proc.stdout
    # the reference's failing test shows why (the KeyError), not "None grader error"
    assert "declares no ban 'layer_nrom'" in proc.stdout, proc.stdout


def test_check_runs_only_visible_tests_with_the_servers_verdicts(tmp_path):
    work = FIXTURES / "ift6135_vit_lstm" / "half_finished"
    proc = autograder("check", cwd=work)          # assignment detected from the files
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "ift6135_vit_lstm: visible tests" in proc.stdout
    assert "13 hidden tests (15 points) are not run here" in proc.stdout
    assert "(hidden)" not in proc.stdout
    local = dict(re.findall(r"^\s+(\d+\.\d+\.\d+)\s+(PASS|FAIL)", proc.stdout, re.M))
    server = grade("ift6135_vit_lstm", work, device="cpu")
    expected = {t.number: "PASS" if t.passed else "FAIL" for t in server.tests if t.visibility == "visible"}
    assert local == expected


def test_check_detects_the_notebook_assignment_and_exits_zero_when_all_pass(tmp_path):
    for p in (ROOT / "reference" / "uw_attention").glob("A2S*.py"):
        shutil.copy(p, tmp_path / p.name)
    proc = autograder("check", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "uw_attention: visible tests" in proc.stdout


def test_check_says_when_no_assignment_matches(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    proc = autograder("check", str(tmp_path))
    assert proc.returncode == 2 and "no assignment's files found" in proc.stderr


@pytest.mark.parametrize("verb", [["grade", "ift6135_vit_lstm", "reference/ift6135_vit_lstm"],
                                  ["verify", "ift6135_vit_lstm"], ["check", "reference/uw_attention"],
                                  ["batch", "ift6135_vit_lstm", "reference"], ["gradescope"]])
def test_cuda_asked_for_without_cuda_exits_2_naming_cuda(verb, monkeypatch, capsys):
    """--device cuda on a machine without CUDA is the user's setup, not the student's fault: every
    verb stops before grading anything (no score blaming the student, no 'reference fails')."""
    import torch
    from autograder import cli
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main([*verb, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "CUDA is not available" in err and "--device cpu" in err
