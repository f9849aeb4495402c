"""Scoring and error translation, over a fake transport: no worker process, no fork server.

``run_test`` turns what a graded test did into a ``TestResult`` (score, status, outcome, the
message a student reads), and ``TestContext`` turns what a worker answered, or failed to
answer, into that message. Here the worker is a script (``FakeTransport``) and the grading a
real ``GradingRun`` whose only replaced part is where transports come from, so these tests
fail when scoring or the translation of worker failures changes, and run in a second.
"""
from __future__ import annotations

import math
import time
import types

import pytest
import torch

from autograder.assignment import Assignment, Ban, SubmissionFile
from autograder.engine import runner
from autograder.engine.context import KNOWN_HANG_S
from autograder.engine.intake.staging import StagedSubmission
from autograder.engine.intake.static_scan import Finding
from autograder.engine.reference import ReferenceNotShipped
from autograder.engine.runner import GradingRun, grade, run_test
from autograder.suite import GradedTestCase, enforce_ban, errors, leaderboard, number, partial_credit, time_limit
from autograder.suite import visibility, weight
from autograder.wire import framing
from autograder.wire.codec import Encoder
from support import assert_valid_results

ASSIGNMENT = Assignment(
    name="fake", title="scoring over a fake transport", total_points=10,
    files=(SubmissionFile("norm.py"),),
    bans=(Ban(key="layer_norm", file="norm.py", scope=("Norm",), names=("torch.nn.functional.layer_norm",),
              runtime_ops=("layer_norm",), reason="write the normalisation by hand"),),
)


# -- the fake worker -------------------------------------------------------------------------
class Raw:
    """A reply exactly as given (header dict, payload bytes)."""

    def __init__(self, reply: dict, payload: bytes = b""):
        self.reply, self.payload = reply, payload


def student_error(etype="ValueError", message="boom", frames=(), **extra) -> Raw:
    return Raw({"ok": False, "error": {"kind": "student", "type": etype, "message": message,
                                       "frames": list(frames), **extra}, "banned": [], "tampered": []})


class FakeTransport:
    """Stands in for a worker: ``import`` and ``getattr`` get references; a ``call`` of a function
    gets what ``answers[name]`` scripts: a value (sent back as data), a ``Raw`` reply, or an
    exception the exchange raises (framing.Deadline, PeerClosed, FrameError)."""

    def __init__(self, answers: dict, printed: str = "", exit_status=None, killed_for=None, ops=("aten::mul",)):
        self.answers, self.printed, self.ops = answers, printed, list(ops)
        self._exit_status, self._killed_for = exit_status, killed_for
        self.names: dict[int, str] = {}
        self.requests: list[tuple[dict, float]] = []
        self.closed = False

    def _ok(self, value) -> tuple[dict, bytes]:
        encoder = Encoder()
        return ({"ok": True, "value": encoder.encode(value), "ops": self.ops, "banned": [], "tampered": []},
                encoder.payload())

    def _ref(self, name: str) -> tuple[dict, bytes]:
        ref = len(self.names) + 1
        self.names[ref] = name
        return {"ok": True, "value": {"ref": ref, "type": "builtins.function"}, "banned": [], "tampered": []}, b""

    def exchange(self, header: dict, payload: bytes, deadline: float):
        self.requests.append((header, deadline))
        if header["op"] == "import":
            return self._ref(header["module"])
        if header["op"] == "getattr":
            return self._ref(header["name"])
        answer = self.answers[self.names[header["target"]]]
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, Raw):
            return answer.reply, answer.payload
        return self._ok(answer)

    def exit_status(self):
        return self._exit_status

    def killed_for(self):
        return self._killed_for

    def close(self) -> None:
        self.closed = True

    def kept_files(self) -> dict:
        return {}

    def output(self) -> str:
        return self.printed


class FakeReference:
    """What ``self.reference("norm")`` answers: the reference's ``double``, or nothing (a bundle)."""

    def __init__(self, shipped: bool = True, bundle: bool = False):
        self.shipped, self.bundle = shipped, bundle

    def module(self, assignment: str, module: str):
        if not self.shipped:
            raise ReferenceNotShipped(module)
        return types.SimpleNamespace(double=lambda x: 2 * x)


class FakeRun(GradingRun):
    """A real GradingRun whose tests' transports are FakeTransports made by ``transport()``."""

    def __init__(self, tmp_path, transport=None, reference=None, staged=("norm.py",)):
        super().__init__(assignment=ASSIGNMENT, device="cpu", seed=7, pool=None,
                         staged=StagedSubmission(dir=tmp_path, found={n: n for n in staged}),
                         reference=reference or FakeReference())
        self.transport = transport or (lambda: FakeTransport({"double": 6}))
        self.transports: list[FakeTransport] = []

    def new_transport(self, op_log: bool = False):
        self.op_log_asked = getattr(self, "op_log_asked", []) + [op_log]
        self.transports.append(self.transport())
        return self.transports[-1]


# -- a suite of graded tests, each doing one thing ---------------------------------------------
class Suite(GradedTestCase):
    __test__ = False   # graded by run_test below, not collected by pytest

    @weight(2)
    @number("1")
    @time_limit(5)
    def test_double(self):
        """double(3) is the reference's"""
        self.assertEqual(self.student("norm").double(3), self.reference("norm").double(3))

    @weight(2)
    @number("2")
    @time_limit(5)
    @enforce_ban("layer_norm")
    def test_banned_scope(self):
        """double(3), under the ban"""
        self.assertEqual(self.student("norm").double(3), 6)

    @weight(2)
    @number("3")
    @time_limit(5)
    @enforce_ban("layer_norm")
    def test_banned_scope_tensor(self):
        """double of a tensor, under the ban"""
        x = torch.arange(4.0)
        self.assert_close(self.student("norm").double(x), 2 * x, what="double(arange(4))")

    @number("4")
    @time_limit(5)
    @partial_credit(4)
    def test_partial(self, set_score=None):
        """partial credit: 1.5 of 4 for 7, all 4 for 6, nothing else"""
        value = self.student("norm").double(3)
        if value == 7:
            set_score(1.5)
        elif value == 6:
            set_score(4)
        else:
            self.fail(f"double(3) gave {value}")

    @number("5")
    @time_limit(5)
    @partial_credit(4)
    def test_partial_then_fail(self, set_score=None):
        """partial credit set, then a failure"""
        set_score(1)
        self.assertEqual(self.student("norm").double(3), 6, "the second half fails")

    @weight(1)
    @number("6")
    @time_limit(5)
    def test_grader_bug(self):
        """the test itself breaks"""
        {}["missing key"]

    @weight(1)
    @number("7")
    @time_limit(5)
    def test_server_data(self):
        """reads a data file"""
        raise FileNotFoundError("test_suites/fake/answer_key.tsv")

    @weight(1)
    @number("8")
    @time_limit(5)
    def test_skipped(self):
        """skips itself"""
        self.skipTest("needs a GPU")

    @weight(1)
    @number("9")
    @time_limit(5)
    def test_subtests(self):
        """one failing subtest"""
        for i in (1, 2):
            with self.subTest(i=i):
                self.assertNotEqual(i, 2, "subtest 2 fails")

    @weight(1)
    @number("10")
    @time_limit(5)
    def test_twice(self):
        """calls double again after a failure"""
        double = self.student("norm").double
        try:
            double(3)
        except AssertionError:
            pass
        double(4)

    @weight(1)
    @number("11")
    @time_limit(5)
    def test_note(self):
        """adds a note and passes"""
        self.note("a note for the student")
        self.assertEqual(self.student("norm").double(3), 6)

    @weight(0)
    @number("12")
    @time_limit(5)
    @leaderboard("accuracy", "asc")
    def test_leaderboard(self, set_leaderboard_value=None):
        """sets a leaderboard value"""
        set_leaderboard_value(self.student("norm").double(3))

    @weight(1)
    @number("13")
    @time_limit(5)
    @visibility("hidden")
    def test_hidden(self):
        """a hidden test"""
        self.assertEqual(self.student("norm").double(3), 6)


    def _compare(self):
        x = torch.tensor([1.25, 2.5])
        self.assert_close(self.student("norm").double(x), 2 * x, what="double(x)")

    @weight(1)
    @number("14")
    @time_limit(5)
    def test_visible_close(self):
        """a visible comparison"""
        self._compare()

    @weight(1)
    @number("15")
    @time_limit(5)
    @visibility("hidden")
    def test_hidden_close(self):
        """a hidden comparison"""
        self._compare()


def grade_one(run, method: str, findings=None):
    result = run_test(Suite(method), run, findings or {}, time_scale=1.0)
    assert result.outcome in ("passed", "failed", "error", "server_only", "banned"), result.outcome
    return result


def transport(answers=None, **kwargs):
    return lambda: FakeTransport({"double": 6} if answers is None else answers, **kwargs)


# -- scoring ---------------------------------------------------------------------------------
def test_a_passing_test_earns_its_weight(tmp_path):
    run = FakeRun(tmp_path)
    result = grade_one(run, "test_double")
    assert (result.outcome, result.status, result.score, result.max_score) == ("passed", "passed", 2, 2)
    assert result.output == "" and result.number == "1" and result.name == "double(3) is the reference's"
    assert run.transports[0].closed, "the test's worker is stopped after the test"
    assert [h["op"] for h, _ in run.transports[0].requests] == ["import", "getattr", "call"]


def test_a_wrong_value_fails_with_the_assertion_message(tmp_path):
    result = grade_one(FakeRun(tmp_path, transport({"double": 5})), "test_double")
    assert (result.outcome, result.status, result.score) == ("failed", "failed", 0)
    assert "5 != 6" in result.output


def test_every_test_gets_a_fresh_worker(tmp_path):
    run = FakeRun(tmp_path)
    for method in ("test_double", "test_double", "test_hidden"):
        assert grade_one(run, method).outcome == "passed"
    assert len(run.transports) == 3 and all(t.closed for t in run.transports)


def test_a_bug_in_the_test_itself_is_an_error_not_a_failure(tmp_path):
    result = grade_one(FakeRun(tmp_path), "test_grader_bug")
    assert (result.outcome, result.status, result.score) == ("error", "failed", 0)
    assert "could not finish because of an unexpected condition (KeyError: 'missing key')" in result.output
    assert "KeyError" in result.extra["traceback"]


def test_without_the_reference_a_test_is_decided_on_the_server(tmp_path):
    result = grade_one(FakeRun(tmp_path, reference=FakeReference(shipped=False)), "test_double")
    assert (result.outcome, result.score) == ("server_only", 0)
    assert result.output == runner.SERVER_ONLY_NOTE


def test_a_missing_data_file_is_server_only_in_a_bundle_and_an_error_on_the_server(tmp_path):
    bundle = grade_one(FakeRun(tmp_path, reference=FakeReference(bundle=True)), "test_server_data")
    assert (bundle.outcome, bundle.score, bundle.output) == ("server_only", 0, runner.SERVER_DATA_NOTE)
    server = grade_one(FakeRun(tmp_path), "test_server_data")
    assert server.outcome == "error" and "FileNotFoundError" in server.output


def test_a_skipped_test_fails(tmp_path):
    result = grade_one(FakeRun(tmp_path), "test_skipped")
    assert (result.outcome, result.score) == ("failed", 0)
    assert "Skipped: needs a GPU" in result.output


def test_a_failing_subtest_fails_the_test(tmp_path):
    result = grade_one(FakeRun(tmp_path), "test_subtests")
    assert (result.outcome, result.score) == ("failed", 0) and "subtest 2 fails" in result.output


def test_partial_credit_is_the_score_the_test_set(tmp_path):
    some = grade_one(FakeRun(tmp_path, transport({"double": 7})), "test_partial")
    assert (some.score, some.max_score, some.status, some.outcome) == (1.5, 4, "failed", "failed")
    full = grade_one(FakeRun(tmp_path, transport({"double": 6})), "test_partial")
    assert (full.score, full.status, full.outcome) == (4, "passed", "passed")


def test_partial_credit_does_not_leak_into_the_next_grading(tmp_path):
    assert grade_one(FakeRun(tmp_path, transport({"double": 6})), "test_partial").score == 4
    again = grade_one(FakeRun(tmp_path, transport({"double": 5})), "test_partial")   # sets no score, fails
    assert (again.score, again.outcome) == (0, "failed") and "double(3) gave 5" in again.output


def test_partial_credit_set_before_a_failure_is_kept(tmp_path):
    result = grade_one(FakeRun(tmp_path, transport({"double": 5})), "test_partial_then_fail")
    assert (result.score, result.status, result.outcome) == (1, "failed", "failed")
    assert "the second half fails" in result.output


def test_notes_and_printed_output_reach_the_student(tmp_path):
    result = grade_one(FakeRun(tmp_path, transport(printed="debug: x = 3\n")), "test_note")
    assert result.outcome == "passed" and result.notes == ("a note for the student",)
    assert result.output == "a note for the student\nYour code printed:\ndebug: x = 3\n"


def test_long_printed_output_is_cut(tmp_path):
    result = grade_one(FakeRun(tmp_path, transport(printed="y" * 10_000)), "test_double")
    assert result.outcome == "passed"
    assert result.output.endswith("\n[... cut]") and result.output.count("y") == runner.MAX_PRINTED_PER_TEST


@pytest.mark.parametrize("value, expected", [(3.5, 3.5), (float("nan"), "nan"), (True, 1.0), ("top", "top")])
def test_leaderboard_values(tmp_path, value, expected):
    result = grade_one(FakeRun(tmp_path, transport({"double": value})), "test_leaderboard")
    assert result.leaderboard == {"name": "accuracy", "value": expected, "order": "asc"}
    if isinstance(value, float) and math.isnan(value):
        assert isinstance(result.leaderboard["value"], str)


def test_a_hidden_tests_message_shows_no_expected_value(tmp_path):
    run = FakeRun(tmp_path, transport({"double": torch.tensor([0.0, 0.0])}))
    visible, hidden = grade_one(run, "test_visible_close"), grade_one(run, "test_hidden_close")
    assert visible.outcome == hidden.outcome == "failed"
    assert "2 of 2 values differ from the expected ones" in hidden.output
    assert "y (expected)   at (1,): 5" in visible.output
    assert "y (expected)" not in hidden.output and "x (your value)" not in hidden.output


def test_seeds_are_fixed_for_visible_tests_and_drawn_per_run_for_hidden_ones(tmp_path):
    first, second = FakeRun(tmp_path), FakeRun(tmp_path)
    second.seed = 8
    assert first.seeds("t", 3, hidden=False) == second.seeds("t", 3, hidden=False)
    assert first.seeds("t", 3, hidden=True) != second.seeds("t", 3, hidden=True)
    assert first.seeds("t", 3, hidden=True) == FakeRun(tmp_path).seeds("t", 3, hidden=True)


# -- bans ------------------------------------------------------------------------------------
def test_a_static_ban_finding_scores_zero_without_running_anything(tmp_path):
    run = FakeRun(tmp_path)
    findings = {"layer_norm": [Finding("norm.py", 4, "torch.nn.functional.layer_norm (banned here)")]}
    result = grade_one(run, "test_banned_scope", findings)
    assert (result.outcome, result.status, result.score) == ("banned", "failed", 0)
    assert result.output.startswith("Banned function use found in your code, so this test scores 0:")
    assert "norm.py, line 4: torch.nn.functional.layer_norm" in result.output
    assert result.extra["ban_findings"] == ["norm.py, line 4: torch.nn.functional.layer_norm (banned here)"]
    assert run.transports == [], "no worker is started for a test the scan already failed"
    assert grade_one(run, "test_double", findings).outcome == "passed", "tests without the ban are untouched"


def test_a_banned_operation_at_run_time_fails_a_test_that_passed(tmp_path):
    run = FakeRun(tmp_path, transport(ops=("aten::mul", "aten::native_layer_norm")))
    result = grade_one(run, "test_banned_scope")
    assert (result.outcome, result.score) == ("banned", 0)
    assert "ran a banned operation during this test" in result.output
    assert "aten::native_layer_norm (write the normalisation by hand)" in result.output
    assert result.extra["banned_ops"] == ["aten::native_layer_norm"]
    header = next(h for h, _ in run.transports[0].requests if h["op"] == "call")
    assert header["log_ops"] is True and header["bans"] == ["layer_norm"]
    assert grade_one(run, "test_double").outcome == "passed", "ops outside a ban's tests cost nothing"
    assert run.op_log_asked == [True, False], "only a ban's test asks for a worker with the op log warm"


@pytest.mark.parametrize("evidence, named", [({"banned": ["torch.layer_norm"]}, "torch.layer_norm"),
                                             ({"banned_count": 3}, "a banned operation")])
def test_what_the_worker_matched_against_the_ban_fails_the_test(tmp_path, evidence, named):
    reply = {"ok": True, "value": 6, "ops": [], "banned": [], "tampered": [], **evidence}
    result = grade_one(FakeRun(tmp_path, transport({"double": Raw(reply)})), "test_banned_scope")
    assert result.outcome == "banned" and named in result.output


def test_a_banned_call_that_raised_still_fails_as_banned(tmp_path):
    reply = student_error("RuntimeError", "banned operation").reply
    reply["banned"] = ["aten::layer_norm"]
    result = grade_one(FakeRun(tmp_path, transport({"double": Raw(reply)})), "test_banned_scope")
    assert (result.outcome, result.score) == ("banned", 0)
    assert "aten::layer_norm" in result.output


@pytest.mark.parametrize("reply, why", [
    ({"ok": True, "value": 6, "ops": []}, "carried no banned-function evidence"),
    ({"ok": True, "value": 6, "ops": [], "banned": [], "tampered": ["the op log's mode was popped"]},
     "the op log's mode was popped, while running norm.double(3)"),
])
def test_tampering_with_the_ban_evidence_fails_the_test(tmp_path, reply, why):
    result = grade_one(FakeRun(tmp_path, transport({"double": Raw(reply)})), "test_banned_scope")
    assert (result.outcome, result.score) == ("banned", 0)
    assert "interfered with the banned-function check during this test" in result.output
    assert any(why in t for t in result.extra["ban_check_tampered"])


def test_missing_ban_evidence_matters_only_in_tests_with_a_ban(tmp_path):
    reply = Raw({"ok": True, "value": 6})
    assert grade_one(FakeRun(tmp_path, transport({"double": reply})), "test_double").outcome == "passed"


def test_a_tensor_computed_with_an_empty_op_log_is_flagged_for_review_not_failed(tmp_path):
    run = FakeRun(tmp_path, transport({"double": torch.arange(4.0) * 2}, ops=()))
    result = grade_one(run, "test_banned_scope_tensor")
    assert result.outcome == "passed" and result.score == 2
    assert result.extra["empty_op_log"] == ["norm.double(tensor(4,))"]


# -- error translation: what the student reads when their code fails -----------------------------
def test_a_student_exception_names_the_call_and_the_students_frames(tmp_path):
    frames = [{"file": "norm.py", "line": 3, "function": "double", "code": "raise ValueError('boom')"}]
    result = grade_one(FakeRun(tmp_path, transport({"double": student_error(frames=frames)})), "test_double")
    assert (result.outcome, result.score) == ("failed", 0)
    assert result.output == ("norm.double(3) raised ValueError: boom\n"
                             '  File "norm.py", line 3, in double\n'
                             "    raise ValueError('boom')")


def test_sys_exit_is_explained(tmp_path):
    answer = student_error("SystemExit", "", exit_code=3)
    result = grade_one(FakeRun(tmp_path, transport({"double": answer})), "test_double")
    assert result.output == "norm.double(3) called sys.exit(3); graded code must return, not exit."


def test_an_unsendable_result_asks_for_plain_tensors(tmp_path):
    answer = Raw({"ok": False, "error": {"kind": "unsendable", "result_type": "generator", "type": "ValueError",
                                         "message": "cannot send a generator"}})
    result = grade_one(FakeRun(tmp_path, transport({"double": answer})), "test_double")
    assert result.outcome == "failed"
    assert result.output.startswith("norm.double(3) returned generator, which could not be sent back for checking")
    assert result.output.endswith("Return plain tensors.")


@pytest.mark.parametrize("answer, says", [
    (Raw({"ok": False, "error": {"kind": "request", "message": "no such reference 99"}}),
     "While running norm.double(3), the worker reported: no such reference 99"),
    (Raw({"ok": True, "value": {"tensor": {"dtype": "float32", "shape": [4], "offset": 0, "nbytes": 16}}}),
     "While running norm.double(3), the worker's reply could not be read (tensor bytes run past the end"),
    (Raw({"ok": True, "value": {"pickle": "gASV"}}),
     "the worker's reply could not be read (unknown tag 'pickle')"),
    (framing.FrameError("bad magic"), "While running norm.double(3), the worker sent an invalid reply (bad magic)."),
])
def test_a_bad_reply_fails_the_test_as_the_students_doing(tmp_path, answer, says):
    result = grade_one(FakeRun(tmp_path, transport({"double": answer})), "test_double")
    assert (result.outcome, result.score) == ("failed", 0), result.output
    assert says in result.output


@pytest.mark.parametrize("exit_status, killed_for, says", [
    (0, None, "While running norm.double(3), the worker process running your code exited with code 0 "
              "(does your code call sys.exit(), os._exit() or exit() at import or inside a function?)."),
    (-9, None, "ended by SIGKILL (it was killed: usually by running out of memory or by the resource limits)"),
    (-11, None, "ended by SIGSEGV (a segmentation fault: a crash inside native code)"),
    (None, None, "the worker process running your code stopped answering"),
    (-9, "its memory use passed 2048 MiB",
     "While running norm.double(3), the grader stopped the worker running your code: its memory use passed 2048 MiB."),
])
def test_a_worker_that_died_is_explained(tmp_path, exit_status, killed_for, says):
    run = FakeRun(tmp_path, transport({"double": framing.PeerClosed()}, exit_status=exit_status,
                                      killed_for=killed_for))
    result = grade_one(run, "test_double")
    assert (result.outcome, result.score) == ("failed", 0)
    assert says in result.output


def test_after_the_worker_died_later_calls_of_the_test_fail_at_once(tmp_path):
    run = FakeRun(tmp_path, transport({"double": framing.PeerClosed()}, exit_status=-9))
    result = grade_one(run, "test_twice")
    assert result.outcome == "failed" and "(so norm.double(4) could not run either)" in result.output
    assert [h["op"] for h, _ in run.transports[0].requests] == ["import", "getattr", "call"], "nothing sent after"


def _dump(staged_dir, line=7):
    return (f"started\nCurrent thread 0x00007f0000000001 (most recent call first):\n"
            f'  File "{staged_dir}/norm.py", line {line} in double\n'
            f'  File "/runtime/autograder/worker/worker.py", line 120 in handle\n')


def test_a_timeout_names_the_call_and_where_it_hung_and_later_tests_wait_less(tmp_path):
    run = FakeRun(tmp_path, transport({"double": framing.Deadline()}, printed=_dump(tmp_path)))
    first = grade_one(run, "test_double")
    assert (first.outcome, first.score) == ("failed", 0)
    assert first.output.startswith(
        "Your code did not finish within this test's time limit of 5 s (while running norm.double(3)). "
        "It was at norm.py, line 7, in double. Look for an infinite loop")
    assert first.output.endswith("Your code printed:\nstarted\n"), "the stack dump is not shown as printed output"
    assert run.hangs == {"norm.double": "norm.py, line 7, in double"}

    run.transport = transport({"double": framing.Deadline()})   # no dump this time: where is remembered
    asked = time.monotonic()
    second = grade_one(run, "test_banned_scope")
    deadline = next(d for h, d in run.transports[1].requests if h["op"] == "call")
    assert deadline - asked <= KNOWN_HANG_S + 0.5, "a call that hung before gets KNOWN_HANG_S, not the test's limit"
    assert ("it already hung in an earlier test of this grading, so here it was stopped after 2 s. "
            "It was at norm.py, line 7, in double.") in second.output


def test_time_limits_scale(tmp_path):
    run = FakeRun(tmp_path, transport({"double": framing.Deadline()}))
    result = run_test(Suite("test_double"), run, {}, time_scale=3.0)
    assert "time limit of 15 s" in result.output


def test_a_missing_file_fails_the_tests_that_need_it_with_what_was_found(tmp_path):
    run = FakeRun(tmp_path, staged=())
    result = grade_one(run, "test_double")
    assert (result.outcome, result.score) == ("failed", 0)
    assert result.output == ("norm.py was not found in your submission (or a .ipynb notebook of that name), so this "
                             "test could not run. No expected file was found in your upload.")
    assert run.transports == []


# -- errors.py: the pieces of the messages ------------------------------------------------------
def test_split_stack_dump_keeps_printed_lines_and_returns_the_frames_innermost_first():
    text = "a\n" + _dump("/s") + "b"
    printed, frames = errors.split_stack_dump(text)
    assert printed == "a\nstarted\nb"
    assert frames == [("/s/norm.py", 7, "double"), ("/runtime/autograder/worker/worker.py", 120, "handle")]
    assert errors.hang_location(frames, "/s") == "norm.py, line 7, in double"
    assert errors.hang_location(frames, "/elsewhere") == ""


def test_every_student_failure_is_an_assertion_error():
    for kind in (errors.StudentException, errors.WorkerDied, errors.WorkerTimeout, errors.BadReply,
                 errors.MissingSubmissionFile, errors.BannedFunctionUsed):
        assert issubclass(kind, errors.StudentCodeFailure) and issubclass(kind, AssertionError)


# -- grade(): the whole loop, with an in-process fake handler ------------------------------------
class RaisingHandler:
    """The in-process handler ``grade(in_process=...)`` calls: every request raises in 'student code'."""

    def __init__(self, folder, modules, device, libraries):
        self.modules = modules

    def handle(self, header, payload):
        return ({"ok": False, "error": {"kind": "student", "type": "NotImplementedError", "message": "TODO"},
                 "banned": [], "tampered": []}, b"")


def test_grade_scores_every_test_and_keeps_the_assignments_total(tmp_path, mini_project):
    (tmp_path / "norm.py").write_text("raise NotImplementedError\n")
    result = grade("mini", tmp_path, device="cpu", seed=1, in_process=RaisingHandler)
    assert not result.grader_error
    assert [t.number for t in result.tests] == ["1", "2", "3", "4"]
    assert all(t.outcome == "failed" and t.score == 0 for t in result.tests)
    assert all("raised NotImplementedError: TODO" in t.output for t in result.tests)
    assert (result.score, result.max_score, result.total_points) == (0, 4, 4)
    assert "Visible tests: 0 of 3 points (3 tests)." in result.output
    assert_valid_results(result)


def test_tests_past_the_budget_are_not_run(tmp_path, mini_project):
    (tmp_path / "norm.py").write_text("")
    result = grade("mini", tmp_path, device="cpu", seed=1, in_process=RaisingHandler, budget_s=0)
    assert [t.outcome for t in result.tests] == ["not_run"] * 4
    assert all(t.score == 0 and t.max_score == 1 for t in result.tests)
    assert all(t.output.startswith("Not run: grading as a whole ran past its budget of 0 s") for t in result.tests)
    assert_valid_results(result)


def test_a_broken_grading_is_a_valid_grader_error_result(tmp_path):
    result = grade("no_such_assignment", tmp_path, device="cpu", seed=1)
    assert result.grader_error and result.score == 0
    assert [t.outcome for t in result.tests] == ["error", "error"]
    assert "This is not your fault" in result.output
    assert_valid_results(result)
