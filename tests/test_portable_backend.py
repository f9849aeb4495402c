"""The portable worker backend (``AUTOGRADER_WORKERS=portable``, the default off Linux), forced on
Linux here so it cannot rot: the shipped suites' visible tests give the fork backend's verdicts,
test by test; hangs, crashes and exits fail only their test; and a student's ``check`` runs with
none of the Unix-only modules importable (as on Windows).
"""
import os
import re
import subprocess
import sys

import pytest

from autograder.engine import registry
from autograder.engine.isolation.portable_pool import PortableWorkerPool
from autograder.engine.runner import grade
from autograder.engine.isolation.workers import WorkerPool
from support import MINI_PROJECT, MINI_REFERENCE as REFERENCE, ROOT, assert_contained, by_number, replace_def

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHIPPED = ("ift6135_vit_lstm", "cs224n_pretraining", "uw_attention")
UNIX_ONLY = ("fcntl", "termios", "resource", "pwd", "grp")


@pytest.fixture
def portable(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_WORKERS", "portable")


def verdicts(result):
    assert not result.grader_error, result.tests[-1].output
    return [(t.number, t.status, t.score) for t in result.tests]


@pytest.fixture(scope="module")
def pools():
    """A started pool per backend for the assignment being compared (the last one's are closed)."""
    opened = {}

    def pool(backend, assignment):
        for key in [k for k in opened if k[1] != assignment]:
            opened.pop(key).close()
        if (backend, assignment) not in opened:
            kind = PortableWorkerPool if backend == "portable" else WorkerPool
            opened[backend, assignment] = kind(libraries=registry.load_assignment(assignment).libraries).start()
        return opened[backend, assignment]

    yield pool
    for opened_pool in opened.values():
        opened_pool.close()


@pytest.mark.parametrize("assignment", SHIPPED)
def test_visible_verdicts_equal_the_fork_backends(assignment, pools):
    """The reference's visible tests (the template's failures are covered by the mini cases below:
    each portable worker costs a fresh interpreter and torch import, so CI keeps this to one pass)."""
    folder = registry.reference_dir(assignment)
    seen = {}
    for backend in ("fork", "portable"):
        result = grade(assignment, folder, device="cpu", seed=0, visible_only=True, pool=pools(backend, assignment))
        assert_contained(result)
        seen[backend] = verdicts(result)
    assert "NO sandbox" in result.extra["sandbox"]
    assert seen["portable"] == seen["fork"]
    assert all(status == "passed" for _, status, _ in seen["fork"])


def grade_mini(tmp_path, source):
    sub = tmp_path / "upload"
    sub.mkdir(exist_ok=True)
    (sub / "norm.py").write_text(source)
    result = grade("mini", sub, device="cpu")
    assert_contained(result)
    assert not result.grader_error, result.tests[-1].output
    return by_number(result)


def test_hang_and_runaway_memory_fail_only_their_tests(tmp_path, mini_project, portable, monkeypatch):
    # A portable worker is a whole interpreter of its own (about 335 MiB once warm, nothing shared
    # with a fork server): 600 MiB, as for forked workers in test_isolation, leaves the loop of
    # test 3 room while the hog of tests 1 and 2 (3 GiB) still passes it.
    monkeypatch.setenv("AUTOGRADER_WORKER_MEMORY_MIB", "600")
    hog = "hog = []\nfor _ in range(60):\n    hog.append(bytearray(50 * 2**20))\nimport time\ntime.sleep(60)"
    source = replace_def(replace_def(REFERENCE, "forward", hog), "double", "while True:\n    pass")
    tests = grade_mini(tmp_path, source)
    for number in ("1", "2"):
        assert not tests[number].passed and "more than 600 MiB of memory" in tests[number].output
    line = source.splitlines().index("    while True:") + 1   # the loop in double: `while True:` or its `pass`
    assert "time limit" in tests["3"].output
    assert re.search(rf"It was at norm\.py, line ({line}|{line + 1}), in double\.", tests["3"].output), tests["3"].output
    assert "most recent call first" not in tests["3"].output
    assert "already hung in an earlier test" in tests["4"].output and "stopped after 2 s" in tests["4"].output


def test_exit_and_crash_fail_only_their_test_in_a_fresh_process_each(tmp_path, mini_project, portable):
    forward = "import os\nif x.dim() == 3:\n    os._exit(3)\nimport ctypes\nctypes.string_at(0)"   # 1 bans ctypes
    double = ("import os, tempfile\nprint('double was called', len(CALLS) + 1, 'times in this process')\n"
              "CALLS.append(x)\nmarker = os.path.join(tempfile.gettempdir(), 'double-was-here')\n"
              "seen = os.path.exists(marker)\nopen(marker, 'w').close()\n"
              "return 2 * x if len(CALLS) == 1 and not seen else -x")
    source = replace_def(replace_def(REFERENCE, "forward", forward), "double", double) + "\nCALLS = []\n"
    tests = grade_mini(tmp_path, source)
    assert "exited with code 3" in tests["1"].output
    assert "SIGSEGV" in tests["2"].output
    assert tests["3"].passed and tests["4"].passed   # both call double: one process and scratch folder each
    assert "Your code printed:\ndouble was called 1 times in this process" in tests["3"].output
    assert "autograder worker ready" not in tests["3"].output


def test_check_without_unix_only_modules(tmp_path):
    """``check`` with fcntl, termios, resource, pwd and grp unimportable, in the grader and in its
    workers (as on Windows), still gives the right verdicts."""
    sub = tmp_path / "work"
    sub.mkdir()
    (sub / "norm.py").write_text(replace_def(REFERENCE, "double", "return 3 * x"))
    block = f"import sys; [sys.modules.__setitem__(name, None) for name in {UNIX_ONLY!r}]; "
    code = (block + "import runpy\n"
            "from autograder.engine.isolation import portable_pool\n"
            "command = portable_pool.child_command\n"
            f"portable_pool.child_command = lambda runtime: [*command(runtime)[:-1], {block!r} + command(runtime)[-1]]\n"
            f"sys.argv = ['autograder', 'check', 'mini', {str(sub)!r}]\n"
            "runpy.run_module('autograder', run_name='__main__', alter_sys=True)\n")
    env = {**os.environ, "AUTOGRADER_WORKERS": "portable", "AUTOGRADER_PROJECT": str(MINI_PROJECT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    rows = dict(re.findall(r"^ +(\d) +(PASS|FAIL) ", proc.stdout, re.M))
    assert rows == {"1": "PASS", "3": "FAIL", "4": "FAIL"}, proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Visible tests: 1 of 3 points" in proc.stdout, proc.stdout + proc.stderr
