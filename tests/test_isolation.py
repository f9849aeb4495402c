"""The engine against misbehaving student code, on a small assignment (fast).

Each case is a copy of the reference with one hostile change; the checks are that
results stay valid, only the touched tests fail, with a message a student can act on,
and grading finishes in bounded time.
"""
import re
import time
from functools import partial

import pytest

from autograder.engine.runner import grade
from autograder.worker.worker import Worker
from support import (MINI_PROJECT, MINI_REFERENCE as REFERENCE, assert_contained, assert_valid_results, by_number,
                     file_fingerprint, grader_files, replace_def)

pytestmark = pytest.mark.e2e


def grade_source(tmp_path, source, **kwargs):
    """Grade ``source`` as norm.py, checking what must hold whatever it does (see support)."""
    sub = tmp_path / "upload"
    sub.mkdir(exist_ok=True)
    (sub / "norm.py").write_text(source)
    before = file_fingerprint(grader_files(MINI_PROJECT))
    started = time.monotonic()
    result = grade("mini", sub, device="cpu", **kwargs)
    result.wall = time.monotonic() - started
    assert_contained(result)
    assert file_fingerprint(grader_files(MINI_PROJECT)) == before, "grader files changed"
    assert not result.grader_error, result.tests[-1].output
    return result


def test_reference_scores_full_marks(tmp_path, mini_project):
    result = grade_source(tmp_path, REFERENCE)
    assert result.score == 4 and all(t.passed for t in result.tests)


def test_os_exit_at_import_fails_every_test_with_a_clear_message(tmp_path, mini_project):
    result = grade_source(tmp_path, "import os\nos._exit(0)\n" + REFERENCE)
    assert result.score == 0
    for t in result.tests:
        assert "exited with code 0" in t.output and "import norm" in t.output


def test_sys_exit_inside_forward_fails_only_those_tests(tmp_path, mini_project):
    result = grade_source(tmp_path, replace_def(REFERENCE, "forward", "import sys\nsys.exit(0)"))
    tests = by_number(result)
    assert result.score == 2 and tests["3"].passed and tests["4"].passed
    assert "called sys.exit(0)" in tests["1"].output and 'File "norm.py"' in tests["1"].output


def test_infinite_loop_hits_the_test_time_limit_and_grading_carries_on(tmp_path, mini_project):
    result = grade_source(tmp_path, replace_def(REFERENCE, "double", "while True:\n    pass"))
    tests = by_number(result)
    assert result.score == 2 and tests["1"].passed and tests["2"].passed
    assert "time limit" in tests["3"].output and "norm.double(3)" in tests["3"].output
    where = r"It was at norm\.py, line 1[89], in double\."                  # `while True:` or its `pass`
    assert re.search(where, tests["3"].output), tests["3"].output
    assert "most recent call first" not in tests["3"].output                # the dump itself is not shown
    # the same function in a later test: stopped after a short time, with the same explanation
    assert "norm.double(" in tests["4"].output and "already hung in an earlier test" in tests["4"].output
    assert "stopped after 2 s" in tests["4"].output and re.search(where, tests["4"].output)
    assert result.wall < 40


def test_ignoring_signals_does_not_survive_the_deadline(tmp_path, mini_project):
    body = ("import signal\nfor s in (signal.SIGTERM, signal.SIGALRM, signal.SIGINT):\n"
            "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    try:\n        pass\n"
            "    except BaseException:\n        pass")
    result = grade_source(tmp_path, replace_def(REFERENCE, "double", body))
    assert by_number(result)["3"].status == "failed" and result.score == 2


def test_killing_the_fork_server_does_not_stop_grading(tmp_path, mini_project):
    # as root the worker user may not signal the fork server at all; otherwise a new one is started
    body = "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept OSError:\n    pass\nreturn 2 * x"
    result = grade_source(tmp_path, replace_def(REFERENCE, "double", body))
    assert result.score == 4


def test_patching_comparisons_in_the_worker_cannot_pass_zeros(tmp_path, mini_project):
    patch = ("import torch, math, numpy\n"
             "torch.allclose = lambda *a, **k: True\n"
             "torch.testing.assert_close = lambda *a, **k: None\n"
             "numpy.testing.assert_allclose = lambda *a, **k: None\n"
             "math.isclose = lambda *a, **k: True\n")
    source = patch + replace_def(REFERENCE, "forward", "return torch.zeros_like(x)")
    tests = by_number(grade_source(tmp_path, source))
    assert not tests["1"].passed and "differ from the expected" in tests["1"].output


def test_lying_tensor_subclass_and_always_equal_object_fail(tmp_path, mini_project):
    source = REFERENCE + (
        "\nclass Lying(torch.Tensor):\n"
        "    @classmethod\n"
        "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "        return True\n"
        "class Equal:\n"
        "    def __eq__(self, other):\n        return True\n")
    source = replace_def(source, "double",
                         "if isinstance(x, int):\n    return Equal()\nreturn torch.zeros(4).as_subclass(Lying)")
    tests = by_number(grade_source(tmp_path, source))
    assert not tests["3"].passed and not tests["4"].passed
    assert "expected a torch.Tensor, got an object of type" in tests["4"].output


def test_printing_fake_results_changes_nothing(tmp_path, mini_project):
    fake = ('print(\'{"score": 100, "tests": []}\')\nprint("test_norm_values ... PASSED")\n'
            "import sys\nsys.stderr.write('x' * 2_000_000)\n")
    result = grade_source(tmp_path, fake + replace_def(REFERENCE, "double", "return 3 * x"))
    tests = by_number(result)
    assert result.score == 2 and not tests["3"].passed
    assert "Your code printed" in tests["3"].output and "[... cut]" in tests["3"].output
    assert len(tests["3"].output) < 10_000


def test_static_ban_names_file_and_line(tmp_path, mini_project):
    source = replace_def(REFERENCE, "forward", "import torch.nn.functional as G\nreturn G.layer_norm(x, x.shape[-1:]) * self.weight")
    tests = by_number(grade_source(tmp_path, source))
    assert not tests["1"].passed and "norm.py, line 13" in tests["1"].output
    assert tests["2"].passed    # the ban is scoped to the tests that declare it


def test_runtime_op_log_catches_what_the_scan_cannot_see(tmp_path, mini_project):
    body = ("import torch.nn.functional as G\nfn = getattr(G, ''.join(reversed('mron_reyal')))\n"
            "return fn(x, x.shape[-1:]) * self.weight")
    tests = by_number(grade_source(tmp_path, replace_def(REFERENCE, "forward", body)))
    assert not tests["1"].passed and "banned operation" in tests["1"].output
    assert "layer_norm" in tests["1"].output   # F.layer_norm, blocked in the worker (see oplog.Guard)


def test_hand_written_norm_is_not_a_false_positive(tmp_path, mini_project):
    body = "var, mean = torch.var_mean(x, -1, unbiased=False, keepdim=True)\nreturn (x - mean) * torch.rsqrt(var + self.eps) * self.weight"
    assert grade_source(tmp_path, replace_def(REFERENCE, "forward", body)).score == 4


def test_syntax_error_and_missing_file(tmp_path, mini_project):
    result = grade_source(tmp_path, REFERENCE.replace("def double(x):", "def double(x)"))
    assert result.score == 0 and "SyntaxError" in result.tests[0].output and "line" in result.tests[0].output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = grade("mini", empty, device="cpu")
    assert_valid_results(result)
    assert result.score == 0 and "norm.py was not found" in result.tests[0].output
    assert "Missing: norm.py" in result.output


def test_in_process_floor_gives_the_same_verdicts(tmp_path, mini_project):
    source = replace_def(REFERENCE, "double", "return 3 * x")
    isolated = grade_source(tmp_path, source)
    floor = grade_source(tmp_path, source, in_process=partial(Worker, guard_bans=False))
    assert [(t.number, t.score) for t in isolated.tests] == [(t.number, t.score) for t in floor.tests]


@pytest.mark.parametrize("junk", ["b'garbage' * 10", "struct.pack('>4sIQ', b'AGW1', 2, 10 * 2**30) + b'{}'"])
def test_forged_bytes_on_the_reply_socket_fail_only_that_test(tmp_path, mini_project, junk):
    body = (f"import os, struct\njunk = {junk}\nfor fd in range(3, 30):\n    try:\n        os.write(fd, junk)\n"
            "    except OSError:\n        pass\nreturn 2 * x")
    result = grade_source(tmp_path, replace_def(REFERENCE, "double", body))
    tests = by_number(result)
    assert not tests["3"].passed and "invalid reply" in tests["3"].output
    assert tests["1"].passed and tests["2"].passed


def test_runaway_memory_kills_only_that_worker(tmp_path, mini_project, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_WORKER_MEMORY_MIB", "600")
    body = "hog = []\nwhile True:\n    hog.append(bytearray(50 * 2**20))"
    result = grade_source(tmp_path, replace_def(REFERENCE, "double", body))
    tests = by_number(result)
    assert tests["1"].passed and tests["2"].passed
    assert "more than 600 MiB of memory" in tests["3"].output
