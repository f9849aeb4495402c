"""Grading one submission: stage it, scan it, run every graded test, build the result.

``grade()`` never raises for anything a submission does: student failures become failed
tests, and a failure of the grader itself becomes a valid result with a visible
"grader error" test (traceback hidden).

Length: the test loop and scoring (GradingRun, run_test, the verdict of a ban) belong together; collecting tests lives in spec.py, references in reference.py.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import random
import sys
import tempfile
import time
import traceback
import unittest
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from autograder import settings
from autograder.assignment import Assignment
from autograder.common.notebook_source import memo_name, parse_memo
from autograder.suite.case import GradedTestCase
from autograder.suite.decorators import attribute
from autograder.suite import errors
from autograder.engine.isolation import privileges
from autograder.engine import registry
from autograder.engine.context import InProcessTransport, ProcessTransport, TestContext
from autograder.engine.reference import InstalledReference, ReferenceNotShipped, ReferenceSource
from autograder.engine.spec import TestSpec, collect_tests, method_of, spec_of
from autograder.engine.results import GradingResult, TestResult, grader_error_result
from autograder.engine.intake.staging import StagedSubmission, stage
from autograder.engine.intake.static_scan import Finding, scan_source
from autograder.engine.isolation.backend import new_pool, pool_for
from autograder.engine.isolation.workers import WorkerPool

log = logging.getLogger("autograder")
MAX_PRINTED_PER_TEST = 4096
PROJECT_OF_PACKAGE = Path(__file__).resolve().parents[2]   # the checkout (or site-packages) holding autograder/
MAX_REPLY_BYTES = 256 * 1024 * 1024
SERVER_ONLY_NOTE = ("This test compares your work with the course's reference solution, which is not "
                    "shipped with the student bundle: it is decided on the server when you submit.")
SERVER_DATA_NOTE = ("This test needs data that stays on the server (not shipped with the student bundle): "
                    "it is decided on the server when you submit.")


def _missing_server_material(exc: BaseException, run: "GradingRun") -> bool:
    """In a student bundle, a file the suite wanted is one the bundle leaves on the server."""
    return isinstance(exc, FileNotFoundError) and run.reference.bundle


def resolve_device(device: str) -> str:
    if device == "auto":
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    return device


class GradingRun:
    """State shared by the tests of one submission (what ``TestContext`` calls back into)."""

    def __init__(self, assignment: Assignment, staged: StagedSubmission, device: str, seed: int,
                 pool: WorkerPool | None, reference: ReferenceSource, in_process: Callable | None = None,
                 trace: bool = False):
        self.assignment = assignment
        self.trace = trace                 # each test records extra["reply_digest"] (GradingOptions.trace)
        self.staged = staged
        self.device = device
        self.seed = seed
        self.pool = pool
        self.reference = reference
        self.in_process = in_process
        self.hangs: dict[str, str] = {}    # calls that hung in this grading -> where (file, line)
        self.memos: dict[str, bytes] = {}  # notebook memos from visible tests' workers (see keep_memos)
        self.modules = {f.module: {"loader": f.loader, "keep_first": list(f.keep_first), "watch": list(f.watch),
                                   "expected_names": list(f.expected_names)}
                        for f in assignment.files if staged.has(f.name)}

    def require_module(self, module: str) -> None:
        spec = self.assignment.file(module)
        if not self.staged.has(spec.name):
            also = f" (also accepted: {', '.join(spec.aliases)}, or a .ipynb notebook)" if spec.aliases else \
                " (or a .ipynb notebook of that name)"
            raise errors.MissingSubmissionFile(
                f"{spec.name} was not found in your submission{also}, so this test could not run. "
                f"{self.upload_listing()}")

    def upload_listing(self) -> str:
        found = ", ".join(f"{v} (graded as {k})" for k, v in self.staged.found.items())
        return f"Files graded from your upload: {found}." if found else "No expected file was found in your upload."

    def reference_module(self, module: str):
        return self.reference.module(self.assignment.name, module)

    def new_transport(self, op_log: bool = False):
        """A fresh worker for one test; ``op_log``: the test bans functions, so its worker must have
        the op log ready (not imported on the test's clock; see ``WorkerPool.spawn``)."""
        if self.in_process is not None:   # the benchmark's floor only
            for module in self.modules:
                sys.modules.pop(module, None)
            return InProcessTransport(self.in_process(str(self.staged.dir), self.modules, self.device,
                                                      list(self.assignment.libraries)))
        worker = self.pool.spawn(str(self.staged.dir), self.modules, self.device, op_log=op_log)
        transport = ProcessTransport(worker, MAX_REPLY_BYTES)
        transport.keep = tuple(self.memo_names())
        self._seed_memos(worker)
        return transport

    # -- notebook memos: what loading a notebook learnt about slow statements ------------------
    def memo_names(self) -> list[str]:
        return [memo_name(str(self.staged.dir / f"{m}.py")) for m, o in self.modules.items()
                if o.get("loader") == "notebook"]

    def keep_memos(self, kept: dict[str, bytes]) -> None:
        """After a VISIBLE test: its worker's memos (line numbers only), for later workers. A hidden
        test's worker passes nothing on, so nothing of a hidden test reaches a visible one."""
        for name, data in kept.items():
            memo = parse_memo(data)
            if memo is not None and name in self.memo_names():
                self.memos[name] = memo

    def _seed_memos(self, worker) -> None:
        scratch = getattr(worker, "scratch", None)
        for name, data in self.memos.items() if scratch else ():
            path = os.path.join(scratch, name)
            try:
                with open(path, "xb") as fh:
                    fh.write(data)
                if self.pool.user is not None:
                    os.chown(path, self.pool.user.uid, self.pool.user.gid)
            except OSError:
                pass

    def seeds(self, test_id: str, n: int, hidden: bool) -> list[int]:
        base = f"{test_id}:{self.seed if hidden else 0}"
        digest = hashlib.sha256(base.encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        return [rng.randrange(2**31) for _ in range(n)]


class _Collector(unittest.TestResult):
    """Records the outcome of one test case run."""

    def __init__(self):
        super().__init__()
        self.outcome = "passed"
        self.message = ""
        self.detail = ""

    def addFailure(self, test, err):
        self.outcome, self.message = "failed", _exception_text(err[1])

    def addError(self, test, err):
        exc = err[1]
        if isinstance(exc, errors.StudentCodeFailure):
            self.addFailure(test, err)
            return
        if isinstance(exc, ReferenceNotShipped):
            self.outcome, self.message = "server_only", SERVER_ONLY_NOTE
            return
        if _missing_server_material(exc, test.grading.run):
            self.outcome, self.message = "server_only", SERVER_DATA_NOTE
            return
        self.outcome = "error"
        self.message = ("This test could not finish because of an unexpected condition "
                        f"({type(exc).__name__}: {_exception_text(exc)[:300]}).")
        self.detail = "".join(traceback.format_exception(*err))

    def addSkip(self, test, reason):
        self.outcome, self.message = "skipped", f"Skipped: {reason}"

    def addSubTest(self, test, subtest, err):
        if err is not None:
            if issubclass(err[0], AssertionError):
                self.addFailure(test, err)
            else:
                self.addError(test, err)


def _exception_text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:   # noqa: BLE001
        return type(exc).__name__


def _reset_partial_score(func) -> None:
    func = getattr(func, "__func__", func)
    while func is not None:
        if "__score__" in getattr(func, "__dict__", {}):
            del func.__score__
        func = getattr(func, "__wrapped__", None)


def _reset_leaderboard_value(func) -> None:
    getattr(func, "__func__", func).__dict__.pop("__leaderboard_value__", None)


def _leaderboard_entry(method, spec: TestSpec) -> dict | None:
    """Gradescope's leaderboard entry a ``@leaderboard`` test set with ``set_leaderboard_value``.

    Values are numbers or strings (a tensor or numpy scalar becomes a float; a test that set no
    value gives no entry).
    """
    wrapper = getattr(method, "__func__", method)
    if spec.leaderboard is None or "__leaderboard_value__" not in wrapper.__dict__:
        return None
    value = wrapper.__dict__["__leaderboard_value__"]
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        try:
            value = float(value)
        except (TypeError, ValueError):
            value = str(value)[:200]
    if isinstance(value, float) and not math.isfinite(value):
        value = str(value)
    column, order = spec.leaderboard
    return {"name": column, "value": value, "order": order if order in ("asc", "desc") else "desc"}


def ban_findings(assignment: Assignment, staged: StagedSubmission) -> dict[str, list[Finding]]:
    findings: dict[str, list[Finding]] = {}
    for ban in assignment.bans:
        path = staged.dir / ban.file
        if path.is_file():
            spec = assignment.file(ban.file)
            source = path.read_bytes().decode("utf-8", errors="replace")
            findings[ban.key] = scan_source(source, ban.file, ban, notebook=spec.loader == "notebook",
                                            keep_first=spec.keep_first)
        else:
            findings[ban.key] = []
    return findings


def run_test(case: GradedTestCase, run: GradingRun, findings: dict[str, list[Finding]],
             time_scale: float) -> TestResult:
    method, spec = method_of(case), spec_of(case)
    weight, visibility, bans = spec.weight, spec.visibility, spec.bans
    limit = (spec.time_limit or run.assignment.default_time_limit) * time_scale
    result = TestResult(name=spec.name, max_score=weight, number=spec.number, visibility=visibility, tags=spec.tags)
    start = time.monotonic()

    static = [f for key in bans for f in findings.get(key, [])]
    if static:
        result.output = ("Banned function use found in your code, so this test scores 0:\n"
                         + "\n".join(f"  {f}" for f in static[:10]))
        result.extra["ban_findings"] = [str(f) for f in static]
        result.outcome = "banned"
        return result

    context = TestContext(run, hidden=visibility != "visible", time_limit=limit,
                          log_ops=bool(bans), test_id=case.id(), ban_patterns=_ban_patterns(run.assignment, bans))
    case.grading = context
    _reset_partial_score(method)
    _reset_leaderboard_value(method)
    collector = _Collector()
    try:
        case.run(collector)
    finally:
        printed = context.close()
        if visibility == "visible":
            run.keep_memos(context.kept_files())
        case.grading = None
    result.execution_time = time.monotonic() - start
    if run.trace:
        result.extra["reply_digest"] = context.reply_digest()

    lines = []
    banned = _ban_verdict(run.assignment, bans, context, result) if bans else ""
    if banned:   # whatever else happened: a banned call raised, or its result came out of a tampered check
        collector.outcome, collector.message = "failed", banned
    if bans and context.silent_calls:
        result.extra["empty_op_log"] = context.silent_calls[:10]   # for instructor review
    partial = attribute(method, "__score__", None)     # set by the test itself (@partial_credit)
    if collector.outcome == "passed":
        result.score = weight if partial is None else float(partial)
        result.status = "passed" if result.score >= weight else "failed"
        result.outcome = result.status
    else:
        result.score = float(partial) if partial is not None and not banned else 0.0
        lines.append(collector.message)
        result.outcome = "banned" if banned else "failed" if collector.outcome == "skipped" else collector.outcome
    if collector.detail:
        result.extra["traceback"] = collector.detail[-8000:]
    result.leaderboard = _leaderboard_entry(method, spec)
    result.notes = tuple(context.notes)
    lines.extend(context.notes)
    if printed.strip():
        text = printed if len(printed) <= MAX_PRINTED_PER_TEST else printed[:MAX_PRINTED_PER_TEST] + "\n[... cut]"
        lines.append("Your code printed:\n" + text)
    result.output = "\n".join(l for l in lines if l)
    return result


def _ban_patterns(assignment: Assignment, bans: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p for key in bans for p in assignment.ban(key).runtime_ops))


def _banned_ops(assignment: Assignment, bans: tuple[str, ...], ops: set[str]) -> set[str]:
    patterns = _ban_patterns(assignment, bans)
    return {op for op in ops for p in patterns if p in op}


def _ban_verdict(assignment: Assignment, bans: tuple[str, ...], context: TestContext, result: TestResult) -> str:
    """The message failing a test whose worker ran (or tried to run) a banned operation, or whose
    evidence was tampered with (see autograder.worker.oplog); empty when neither happened."""
    banned_ops = sorted(_banned_ops(assignment, bans, context.ops) | context.banned)
    why = "; ".join(dict.fromkeys(assignment.ban(key).reason or f"{key} is banned here" for key in bans))
    if banned_ops:
        result.extra["banned_ops"] = banned_ops[:20]
        return (f"Your code ran a banned operation during this test, so it scores 0: {', '.join(banned_ops[:5])} "
                f"({why}).")
    if context.tampered:
        result.extra["ban_check_tampered"] = context.tampered[:10]
        return (f"Your code interfered with the banned-function check during this test, so it scores 0: "
                f"{'; '.join(context.tampered[:3])} ({why}).")
    return ""


@dataclass
class GradingOptions:
    device: str = "auto"               # "auto" | "cpu" | "cuda"
    reference: ReferenceSource | None = None   # what answers self.reference (default: the installed one)
    in_process: Callable | None = None  # the benchmark's floor only: (folder, modules, device, libraries) -> a
    #                                     worker handler called in this process (no isolation at all)
    seed: int | None = None            # hidden tests' inputs; drawn per run when None
    time_scale: float = 1.0            # multiplies every test's time limit (slow machines)
    visible_only: bool = False         # the student's local check runs only the visible tests
    budget_s: float = 540.0            # whole-run budget: tests not started in time fail, explained
    on_progress: Callable[[GradingResult], None] | None = None   # called after each test
    pool: WorkerPool | None = None     # a fork server already started by the caller (else one per call)
    trace: bool = False                # record each test's extra["reply_digest"]: a digest of the values the
    #                                    student's code sent back (mutation testing tells equivalent mutants)


def grade(assignment: str, submission: Path, **options) -> GradingResult:
    """Grade ``submission`` (folder, zip or file) for ``assignment``. Never raises for student behaviour.

    ``options`` are the fields of ``GradingOptions``.
    """
    started = time.monotonic()
    try:
        opts = GradingOptions(**options)
        if "time_scale" not in options:
            opts.time_scale = settings.current().time_scale
        if "budget_s" not in options:
            opts.budget_s = settings.current().budget_s
        if opts.seed is None:
            opts.seed = settings.current().seed
            if opts.seed is None:
                opts.seed = random.SystemRandom().randrange(2**31)
        if opts.reference is None:
            opts.reference = InstalledReference()
        if opts.in_process is not None:
            with _worker_threads():
                return _grade(opts.pool or new_pool(), assignment, Path(submission), opts, started)
        if opts.pool is not None:
            return _grade(opts.pool, assignment, Path(submission), opts, started)
        with pool_for(assignment) as pool:
            pool.start()   # the fork server imports torch while we load the suites and stage
            return _grade(pool, assignment, Path(submission), opts, started)
    except Exception:   # noqa: BLE001 - the grader's own failure still yields a valid result
        result = grader_error_result(assignment, traceback.format_exc())
        result.execution_time = time.monotonic() - started
        try:
            _set_totals(result, registry.load_assignment(assignment))
        except Exception:   # noqa: BLE001 - the assignment itself may be what is broken
            pass
        return result


def _grade(pool: WorkerPool, name: str, submission: Path, opts: GradingOptions, started: float) -> GradingResult:
    assignment = registry.load_assignment(name)
    device = resolve_device(opts.device)
    cases = collect_tests(name, visible_only=opts.visible_only)
    isolated = opts.in_process is None
    result = GradingResult(assignment=name, extra={"seed": opts.seed, "device": device})
    _set_totals(result, assignment)
    if isolated:
        pool.start()
        prepare_bans = getattr(pool, "prepare_bans", None)   # the guards of tests with bans, worked out once
        if prepare_bans is not None:
            prepare_bans([p for ban in assignment.bans for p in ban.runtime_ops])
        if pool.user is not None:   # root: nothing of the project is the workers' to read (an allowlist)
            roots = {registry.project_root(), PROJECT_OF_PACKAGE}
            hidden = privileges.hide_from_workers(privileges.project_entries_to_hide(roots))
            if hidden:
                log.debug("made unreadable to workers: %s", ", ".join(hidden))
    with tempfile.TemporaryDirectory(prefix="autograder-") as scratch:
        staged_dir = Path(scratch) / "submission"
        staged_dir.mkdir()
        staged = stage(submission, assignment, staged_dir)
        _readable_by_workers(Path(scratch), staged_dir, pool.user if isolated else None)
        notes = list(staged.notes) + [
            f"Missing: {spec.name} was not found in your upload; the tests that need it score 0."
            for spec in staged.missing]
        findings = ban_findings(assignment, staged)
        _import_libraries(assignment.libraries)
        run = GradingRun(assignment, staged, device, opts.seed, pool if isolated else None, opts.reference,
                         opts.in_process, trace=opts.trace)
        for case in cases:
            if time.monotonic() - started > opts.budget_s:
                result.tests.append(_not_run(case, opts.budget_s))
            else:
                result.tests.append(run_test(case, run, findings, opts.time_scale))
            result.output = "\n".join([result.summary()] + notes)
            result.execution_time = time.monotonic() - started
            if opts.on_progress is not None:
                opts.on_progress(result)
    if isolated:
        result.extra["sandbox"] = pool.describe()
        log.debug("sandbox: %s", result.extra["sandbox"])
    result.output = "\n".join([result.summary()] + notes)
    result.execution_time = time.monotonic() - started
    return result


def _set_totals(result: GradingResult, assignment: Assignment) -> None:
    """What the assignment is out of, from its configuration (never from what this grading ran)."""
    specs = [spec_of(c) for c in collect_tests(assignment.name)]
    result.total_points = float(assignment.total_points)
    result.extra_credit = sum(s.weight for s in specs if s.number in assignment.extra_credit)


def _readable_by_workers(scratch: Path, staged_dir: Path, user=None) -> None:
    """This grading's workers may read the staged files and write none of them. With a worker
    user (root), the files belong to root and that user's group, closed to everyone else: a
    concurrent grading's workers (other users) cannot read this submission."""
    os.chmod(scratch, 0o711)
    for path in [staged_dir, *staged_dir.rglob("*")]:
        if path.is_symlink():
            continue
        if user is not None:
            os.chown(path, 0, user.gid)
            os.chmod(path, 0o750 if path.is_dir() else 0o640)
        else:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)


def _import_libraries(names: tuple[str, ...]) -> None:
    """Import the assignment's libraries here too (the reference side uses them), while the
    fork server, in its own process, is still importing them: the two costs overlap."""
    import importlib
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:   # noqa: BLE001 - the tests that need it report the failure
            pass


@contextlib.contextmanager
def _worker_threads():
    """The in-process floor computes with the workers' thread count, so results match bit for bit."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.current().worker_threads)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _not_run(case: GradedTestCase, budget: float) -> TestResult:
    spec = spec_of(case)
    return TestResult(name=spec.name, max_score=spec.weight, number=spec.number, visibility=spec.visibility,
                      outcome="not_run",
                      output=f"Not run: grading as a whole ran past its budget of {budget:g} s "
                             "(earlier tests used the time, usually by timing out).")
