"""bench/gpu_check.py: says CUDA is absent on a CPU machine; its machinery (subjects, gradings,
test-by-test comparison, summary) works on two CPU runs of the mini assignment."""
import json
import os
import subprocess
import sys

import pytest

from support import MINI_PROJECT, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPT = ROOT / "bench" / "gpu_check.py"


def run(*args, project=None):
    env = {**os.environ, **({"AUTOGRADER_PROJECT": str(project)} if project else {})}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=ROOT)


def test_without_cuda_it_says_so_and_checks_nothing_else():
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the check would run for real")
    proc = run()
    assert proc.returncode == 0, proc.stderr
    assert "CUDA is absent" in proc.stdout and "subjects" not in proc.stdout


def test_two_devices_are_compared_test_by_test(tmp_path):
    fixtures = tmp_path / "project" / "tests" / "fixtures" / "mini"
    import shutil
    shutil.copytree(MINI_PROJECT, tmp_path / "project")
    shutil.rmtree(tmp_path / "project" / "student_template")     # three subjects are enough here
    (fixtures / "wrong_double").mkdir(parents=True)
    (fixtures / "wrong_double" / "norm.py").write_text(
        (MINI_PROJECT / "reference" / "mini" / "norm.py").read_text().replace("return 2 * x", "return 3 * x"))
    (fixtures / "edits.py").write_text('EDITS = {"half": {"norm.py": [("return 2 * x", "return x")]}}\n')
    out = tmp_path / "check.json"
    proc = run("mini", "--devices", "cpu,cpu", "-j", "2", "--json", str(out), project=tmp_path / "project")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| mini | 3 | 12 | 0 |" in proc.stdout and "every verdict is the same" in proc.stdout
    gradings = json.loads(out.read_text())
    scores = {(g["subject"], g["device"]): sum(s for _, s in g["verdicts"].values()) for g in gradings}
    assert scores == {("reference", "cpu"): 4, ("wrong_double", "cpu"): 2, ("edits:half", "cpu"): 2}


def test_a_differing_verdict_is_reported_with_both_sides():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(ROOT / "bench"))
    subject = gpu_check.Subject("mini", "reference", ROOT)
    cuda = gpu_check.Grading(subject, "cuda", {"1 a": ("passed", 1.0), "2 b": ("passed", 1.0)})
    cpu = gpu_check.Grading(subject, "cpu", {"1 a": ("passed", 1.0), "2 b": ("failed", 0.0)})
    assert gpu_check.differences(cuda, cpu) == ["2 b: cuda ('passed', 1.0) vs cpu ('failed', 0.0)"]
    assert gpu_check.differences(cuda, cuda) == []
