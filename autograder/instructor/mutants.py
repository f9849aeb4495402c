"""``verify ASSIGNMENT --mutants``: the mutation score of an assignment's suite.

Mutants of the reference (``autograder.instructor.mutation``: one AST edit shaped like a real
deep-learning bug each) are graded as submissions by the usual isolated engine, the whole suite
(hidden tests included, hidden inputs drawn with seed 0). A mutant is

* **caught** when it loses points on at least one test that ran to a verdict (failed or banned);
* **error** when the grading failed (grader error), or its only lost points are tests that could
  not finish (outcome ``error``, a grader bug) or were not run: reported, not counted;
* **equivalent** when nothing was lost and every test's replies (the values the student's code
  sent back, ``GradingOptions.trace``) are those of the reference graded by the same grading
  process: it changes no output on the suite's inputs, so this suite could not catch it there.
  Not counted. (Values the suite never asks for, such as gradients it never reads, are no
  output.) Tests whose replies differ between two gradings of the reference in one process are
  *nondeterministic* and left out of that comparison (a survivor with only such tests is counted
  as survived);
* **accepted** when the assignment declares the edit correct work by the course's rules
  (``ACCEPTED_MUTANTS`` in its ``assignment.py``: ``{(file, function, edited expression after):
  why}``, e.g. Q and K swapped where the parametrisation is free) and the suite passes it: not
  counted. One the suite catches is **rejected**: the suite fails correct work, a fidelity bug that
  ``verify --mutants`` reports and exits 1 for;
* **survived** otherwise: the suite saw different values (listed) or could not tell, and passed it.
  Such a mutant is graded a second time by the same process; a test whose replies differ between
  its two gradings (timing: a notebook statement cut by the loader's time cap) is not listed as a
  change, and a survivor whose only changes are such tests stays a survivor, undecided.

Score: caught / (caught + survived). Only code the student writes is mutated: a function whose
code is identical in the student template (compared per qualified name, by AST), or a
module-/class-level statement found as is in the template, is given code and left alone.

The sample is deterministic: at most ``max_mutants`` (40), round-robin over kinds, and within a
kind round-robin over the functions it touches (each in line order). Gradings run in ``jobs``
long-lived grading processes (``python -m autograder.instructor.mutants --serve``), each with its
own worker pool, fed one folder at a time: ``grade()`` keeps per-process state (sys.modules, the
global random state), so gradings are never run in threads of one process. Before each grading
the process re-seeds its global random state, so every grading sees the same engine-side state;
the workers' random state is fixed per process (see ``_GradingProcess``), so each process grades
the reference (twice) first and its mutants are compared with that grading.

Length: choosing mutants, the grading servers, equivalence by reply digests and the report are one workflow.
"""
from __future__ import annotations

import ast
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from autograder.engine import registry
from autograder.instructor.mutation import OPERATORS, Mutant, as_python, mutants_of

DEFAULT_MAX = 40
GRADING_TIMEOUT_S = 900.0    # one grading's wall-time cap in a grading process (the engine's budget is 540 s)
GRADER_HOME = Path(__file__).resolve().parents[2]
CATCHING_OUTCOMES = ("failed", "banned")   # a test that lost points with a verdict


# --- which mutants ---------------------------------------------------------------------------

def _scope_code(tree: ast.Module) -> tuple[dict[str, str], dict[str, list[tuple[str, int, int]]]]:
    """(function qualified name -> ast.dump of the def; scope (module "", a class) -> [(dump, first
    line, last line)] of its direct statements other than defs). Qualified names as mutation.py's."""
    funcs: dict[str, str] = {}
    stmts: dict[str, list[tuple[str, int, int]]] = {}

    def visit(node, qual: str, scope_node) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                q = f"{qual}.{child.name}" if qual else child.name
                if not isinstance(child, ast.ClassDef):
                    funcs[q] = ast.dump(child)
                visit(child, q, child)
                continue
            if node is scope_node and isinstance(child, ast.stmt) and not isinstance(scope_node, (
                    ast.FunctionDef, ast.AsyncFunctionDef)):
                stmts.setdefault(qual, []).append((ast.dump(child), child.lineno, child.end_lineno))
            visit(child, qual, scope_node)

    visit(tree, "", tree)
    return funcs, stmts


def _template_source(folder: Path, name: str) -> str | None:
    """The template's ``name`` (a .py), or the code cells of its .ipynb twin; None if neither."""
    path = folder / name
    if path.is_file():
        return path.read_text(encoding="utf-8", errors="replace")
    twin = path.with_suffix(".ipynb")
    if twin.is_file():
        from autograder.engine.intake.notebook import notebook_to_module
        return notebook_to_module(twin.read_bytes())
    return None


def student_written(reference: str, template: str | None) -> Callable[[Mutant], bool]:
    """Whether a mutant of ``reference`` edits code the student writes (see the module docstring)."""
    if template is None:
        return lambda m: True
    try:
        t_funcs, t_stmts = _scope_code(ast.parse(as_python(template)))
    except SyntaxError:
        return lambda m: True
    r_funcs, r_stmts = _scope_code(ast.parse(as_python(reference)))
    given = {q for q, dump in r_funcs.items() if t_funcs.get(q) == dump}
    given_lines: dict[str, set[int]] = {}
    for scope, entries in r_stmts.items():
        there = {dump for dump, _, _ in t_stmts.get(scope, [])}
        given_lines[scope] = {n for dump, a, b in entries if dump in there for n in range(a, b + 1)}
    return lambda m: m.function not in given and m.line not in given_lines.get(m.function, ())


def candidates(name: str) -> tuple[list[str], list[Mutant]]:
    """(the files mutated, every mutant of the student-written code of the reference's graded files)."""
    assignment = registry.load_assignment(name)
    ref_dir, tpl_dir = registry.reference_dir(name), registry.template_dir(name)
    files, out = [], []
    for spec in assignment.files:
        path = ref_dir / spec.name
        if spec.loader == "data" or path.suffix != ".py" or not path.is_file():
            continue
        source = path.read_text(encoding="utf-8")
        keep = student_written(source, _template_source(tpl_dir, spec.name))
        found = [m for m in mutants_of(source, spec.name) if keep(m)]
        if found:
            files.append(spec.name)
            out.extend(found)
    return files, out


def sample(mutants: list[Mutant], limit: int) -> list[Mutant]:
    """At most ``limit``, round-robin over kinds (registry order) and within a kind over the
    (file, function)s it touches, each in line order; returned in the input's order."""
    order = {id(m): i for i, m in enumerate(mutants)}
    queues = []
    for kind in OPERATORS:
        groups: dict[tuple, list[Mutant]] = {}
        for m in mutants:
            if m.kind == kind:
                groups.setdefault((m.path, m.function), []).append(m)
        lists = list(groups.values())
        queue = [lst[i] for i in range(max(map(len, lists), default=0)) for lst in lists if i < len(lst)]
        if queue:
            queues.append(queue)
    picked, depth = [], 0
    while len(picked) < limit and any(depth < len(q) for q in queues):
        for q in queues:
            if depth < len(q) and len(picked) < limit:
                picked.append(q[depth])
        depth += 1
    return sorted(picked, key=lambda m: order[id(m)])


# --- grading ---------------------------------------------------------------------------------

@dataclass
class Graded:
    """One grading, as the grading process reports it. ``tests``: key (number, else name) ->
    {"name", "score", "max_score", "outcome", "digest"}."""
    tests: dict[str, dict] = field(default_factory=dict)
    grader_error: bool = False
    score: float = 0.0
    max_score: float = 0.0
    seconds: float = 0.0
    why: str = ""        # the grading process's own failure, if it had one
    timed_out: bool = False   # the grading process gave no result in time (not retried)


def _summary(result) -> dict:
    tests = {}
    for t in result.tests:
        tests[t.number or t.name] = {"name": t.name, "score": t.score, "max_score": t.max_score,
                                     "outcome": t.outcome, "digest": t.extra.get("reply_digest", "")}
    return {"tests": tests, "grader_error": result.grader_error, "score": result.score,
            "max_score": result.max_score, "seconds": round(result.execution_time, 3),
            "why": result.tests[-1].output[-2000:] if result.grader_error and result.tests else ""}


def _reseed() -> None:
    import random
    import torch
    random.seed(0)
    torch.manual_seed(0)
    try:
        import numpy
        numpy.random.seed(0)
    except ImportError:
        pass


def serve(assignment: str) -> int:
    """A grading process: one folder per stdin line ({"folder", "device"}), one summary per line
    on stdout (anything else this process prints goes to stderr)."""
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    from autograder.engine.isolation.backend import pool_for
    from autograder.engine.runner import grade
    with pool_for(assignment) as pool:
        pool.start()
        for line in sys.stdin:
            request = json.loads(line)
            _reseed()
            result = grade(assignment, Path(request["folder"]), device=request.get("device", "cpu"), seed=0,
                           pool=pool, trace=True)
            replies.write(json.dumps(_summary(result)) + "\n")
            replies.flush()
    return 0


class _GradingProcess:
    """The parent's handle on one ``serve`` process and the reference as that process grades it.

    Mutants are compared with the reference graded by the same process: every worker of one
    fork server starts from that server's random state (torch seeds each process at random), so
    a student-side random initialisation is the same in the gradings of one process, not across
    processes. Each process grades the reference twice before any mutant (the first grading of
    a process may differ from later ones: what its fork server prepares on the way) and compares
    mutants with the second. A process is started on first use, and again (with new gradings of
    the reference) after a grading it could not finish."""

    def __init__(self, assignment: str, log: Path, reference: Path, device: str):
        self.assignment, self.log, self.reference, self.device = assignment, log, reference, device
        self.proc: subprocess.Popen | None = None
        self.baseline: Graded | None = None

    def _start(self) -> None:
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "autograder.instructor.mutants", "--serve", self.assignment],
                cwd=GRADER_HOME, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                text=True, start_new_session=True)

    def grade_folder(self, folder: Path, timeout: float = GRADING_TIMEOUT_S) -> Graded:
        """One grading in this process (started if needed); a grader error closes it."""
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self._start()
        ready: object = False
        try:
            self.proc.stdin.write(json.dumps({"folder": str(folder), "device": self.device}) + "\n")
            self.proc.stdin.flush()
            ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
            line = self.proc.stdout.readline() if ready else ""
        except OSError as exc:
            line, ready = "", f"({exc})"
        if not line:
            why = (f"the grading process gave no result within {timeout:g} s" if not ready
                   else f"the grading process ended (exit status {self.proc.poll()})")
            self.close()
            return Graded(grader_error=True, why=f"{why}; its log: {self.log}", timed_out=not ready)
        graded = Graded(**json.loads(line))
        if graded.grader_error:   # a broken pool must not sink the gradings after this one
            self.close()
        return graded

    def reference_graded(self, run: "_Run") -> Graded | None:
        """This process's grading of the reference (graded now, twice, if the process is new);
        None when it is not full marks (the run then stops)."""
        if self.baseline is None or self.proc is None:
            first = self.grade_folder(self.reference)
            second = self.grade_folder(self.reference) if _full_marks(first) else first
            run.reference_graded(first, second)
            self.baseline = second
        return self.baseline if _full_marks(self.baseline) else None

    def close(self) -> None:
        self.baseline = None
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.proc = None


def _full_marks(graded: Graded) -> bool:
    return not graded.grader_error and bool(graded.tests) and all(
        t["score"] >= t["max_score"] - 1e-9 for t in graded.tests.values())


def _short_of_full_marks(graded: Graded) -> str:
    if graded.grader_error:
        return "grader error: " + " ".join(graded.why.split())[-300:]
    return "tests short of full marks: " + ", ".join(
        f"{k} ({t['outcome']}, {t['score']:g}/{t['max_score']:g})" for k, t in graded.tests.items()
        if t["score"] < t["max_score"] - 1e-9)


class _Run:
    """What the grading threads share: the reference's gradings, the results, the stop flag."""

    def __init__(self, count: int):
        self.lock = threading.Lock()
        self.next = 0
        self.stop = False
        self.references: list[tuple[Graded, Graded]] = []   # each process's two gradings of the reference
        # per mutant: (its grading, its process's reference, a second grading of it or None)
        self.results: list[tuple[Graded, Graded, Graded | None] | None] = [None] * count

    def reference_graded(self, first: Graded, second: Graded) -> None:
        with self.lock:
            self.references.append((first, second))
            if not (_full_marks(first) and _full_marks(second)):
                self.stop = True

    def take(self) -> int | None:
        with self.lock:
            if self.stop or self.next >= len(self.results):
                return None
            self.next += 1
            return self.next - 1


def _grade_mutants(run: _Run, processes: list[_GradingProcess], folders: list[Path],
                   done: Callable[[int], None]) -> None:
    """One thread per grading process, each taking the next mutant. A mutant that loses no points
    but whose replies differ from the reference's is graded a second time by the same process:
    a test whose replies differ between its two gradings tells nothing (timing)."""

    def work(process: _GradingProcess) -> None:
        if process.reference_graded(run) is None:
            return
        while (i := run.take()) is not None:
            for attempt in range(2):    # a grading the process could not finish: once more, in a fresh process
                baseline = process.reference_graded(run)
                if baseline is None:
                    return
                graded = process.grade_folder(folders[i])
                if not graded.grader_error or graded.timed_out:
                    break
            again = None
            if not graded.grader_error and not _lost(graded, baseline) and any(
                    t["digest"] != graded.tests.get(k, {}).get("digest") for k, t in baseline.tests.items()):
                again = process.grade_folder(folders[i])
                if again.grader_error:
                    again = None
            run.results[i] = (graded, baseline, again)
            with run.lock:
                done(i)

    threads = [threading.Thread(target=work, args=(p,), daemon=True) for p in processes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# --- verdicts --------------------------------------------------------------------------------

@dataclass
class Verdict:
    mutant: Mutant
    status: str                                  # "caught" | "survived" | "equivalent" | "error" | "accepted" | "rejected"
    caught_by: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)   # survived: tests whose replies differ from the reference's
    detail: str = ""


def _lost(graded: Graded, baseline: Graded) -> list[str]:
    """The tests where ``graded`` scored less than the reference."""
    return [k for k, t in graded.tests.items() if k in baseline.tests and t["score"] < baseline.tests[k]["score"] - 1e-9]


def classify(mutant: Mutant, graded: Graded, baseline: Graded, nondeterministic: set[str],
             again: Graded | None = None) -> Verdict:
    """The verdict on one mutant (see the module docstring). ``baseline``: the reference graded by
    the same process; ``nondeterministic``: tests left out of the equivalence check; ``again``: a
    second grading of the mutant (tests whose replies differ between the two are left out too)."""
    if graded.grader_error:
        return Verdict(mutant, "error", detail=("grader error: " + " ".join(graded.why.split())[-300:]).strip())
    lost = _lost(graded, baseline)
    caught_by = [k for k in lost if graded.tests[k]["outcome"] in CATCHING_OUTCOMES]
    if caught_by:
        return Verdict(mutant, "caught", caught_by=caught_by)
    if lost:
        return Verdict(mutant, "error", detail="points lost only in tests that could not finish: " + ", ".join(
            f"{k} ({graded.tests[k]['outcome']})" for k in lost))
    compared = [k for k in baseline.tests if k not in nondeterministic and k in graded.tests]
    changed = [k for k in compared if graded.tests[k]["digest"] != baseline.tests[k]["digest"]]
    if compared and not changed:
        return Verdict(mutant, "equivalent")
    unstable = [k for k in changed if again is not None and again.tests.get(k, {}).get("digest") != graded.tests[k]["digest"]]
    stable = [k for k in changed if k not in unstable]
    if not compared:
        detail = "every test is nondeterministic: equivalence not decided"
    elif unstable and not stable:
        detail = (f"replies differed only in {', '.join(unstable)}, which also differ between two gradings of this "
                  "mutant (timing): equivalence not decided")
    else:
        detail = f"(also in {', '.join(unstable)}, which vary from grading to grading)" if unstable else ""
    return Verdict(mutant, "survived", changed=stable, detail=detail)


def accepted_readings(name: str) -> dict[tuple[str, str, str], str]:
    """The assignment's ``ACCEPTED_MUTANTS`` (see the module docstring); {} when it declares none."""
    return dict(getattr(registry.assignment_module(name), "ACCEPTED_MUTANTS", {}))


def apply_accepted(verdicts: list[Verdict], accepted: dict[tuple[str, str, str], str]) -> None:
    """Mark the verdicts of declared correct readings: passed (survived or equivalent) -> accepted,
    caught -> rejected (the suite fails correct work); the reason goes into ``detail``."""
    for v in verdicts:
        why = accepted.get((v.mutant.path, v.mutant.function, v.mutant.after))
        if why is None or v.status == "error":
            continue
        if v.status == "caught":
            v.status, v.detail = "rejected", f"a correct reading ({why}) fails {', '.join(v.caught_by)}"
        else:
            v.status, v.detail = "accepted", why


@dataclass
class Report:
    assignment: str
    files: list[str]
    available: int                                     # mutants of student-written code, before sampling
    verdicts: list[Verdict] = field(default_factory=list)
    baseline_ok: bool = True
    baseline_detail: str = ""
    nondeterministic: list[str] = field(default_factory=list)     # replies differ between two reference gradings of one process
    process_dependent: list[str] = field(default_factory=list)    # ... between the gradings of different processes
    seconds: float = 0.0
    jobs: int = 1
    gradings: int = 0

    def count(self, status: str) -> int:
        return sum(v.status == status for v in self.verdicts)

    @property
    def caught(self) -> int:
        return self.count("caught")

    @property
    def total(self) -> int:
        return self.count("caught") + self.count("survived")


def mutation_report(name: str, *, max_mutants: int = DEFAULT_MAX, jobs: int | None = None, device: str = "cpu",
                    progress: Callable[[str], None] | None = None) -> Report:
    """Grade the reference (twice in each grading process) and a sample of its mutants; see the
    module docstring."""
    started = time.monotonic()
    files, found = candidates(name)
    chosen = sample(found, max_mutants)
    jobs = max(1, min(jobs or os.cpu_count() or 1, max(len(chosen), 1)))
    report = Report(name, files, len(found), jobs=jobs)
    say = progress or (lambda text: None)
    say(f"{name}: {len(chosen)} mutants of {len(found)} in {', '.join(files) or 'no file'}; {jobs} grading processes")
    reference = registry.reference_dir(name)
    run = _Run(len(chosen))
    with tempfile.TemporaryDirectory(prefix="autograder-mutants-") as tmp:
        scratch = Path(tmp)
        folders = []
        for i, m in enumerate(chosen):
            folder = scratch / f"mutant-{i:03d}"
            shutil.copytree(reference, folder, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
            (folder / m.path).write_text(m.source, encoding="utf-8")
            folders.append(folder)
        processes = [_GradingProcess(name, scratch / f"grading-process-{k}.log", reference, device)
                     for k in range(jobs)]

        def done(i: int) -> None:
            graded, baseline, _ = run.results[i]
            lost = [k for k in _lost(graded, baseline) if graded.tests[k]["outcome"] in CATCHING_OUTCOMES]
            what = ("error" if graded.grader_error else f"caught by {', '.join(lost)}" if lost
                    else "not caught (survived or equivalent: decided at the end)")
            say(f"[{sum(r is not None for r in run.results)}/{len(chosen)}] {what}: {chosen[i].describe()}")

        try:
            _grade_mutants(run, processes, folders, done)
        finally:
            for process in processes:
                process.close()
    done_results = [r for r in run.results if r is not None]
    report.gradings = 2 * len(run.references) + sum(1 + (r[2] is not None) for r in done_results)
    failed = [g for pair in run.references for g in pair if not _full_marks(g)]
    if failed or not run.references:
        report.baseline_ok = False
        report.baseline_detail = _short_of_full_marks(failed[0]) if failed else "the reference was not graded"
    else:
        keys = list(run.references[0][1].tests)
        report.nondeterministic = [k for k in keys if any(
            a.tests.get(k, {}).get("digest") != b.tests.get(k, {}).get("digest") for a, b in run.references)]
        report.process_dependent = [k for k in keys if k not in report.nondeterministic and len({
            b.tests.get(k, {}).get("digest") for _, b in run.references}) > 1]
        report.verdicts = [classify(m, graded, baseline, set(report.nondeterministic), again)
                           for m, r in zip(chosen, run.results) if r is not None for graded, baseline, again in [r]]
        apply_accepted(report.verdicts, accepted_readings(name))
    report.seconds = time.monotonic() - started
    return report


# --- the report ------------------------------------------------------------------------------

def _status(v: Verdict) -> str:
    if v.status == "caught":
        return "caught by " + ", ".join(v.caught_by)
    return {"survived": "SURVIVED", "rejected": "REJECTED (correct work)"}.get(v.status, v.status)


def render(report: Report) -> str:
    lines = [f"mutation testing {report.assignment}: {len(report.verdicts)} mutants graded "
             f"(of {report.available} in the student-written code of {', '.join(report.files) or 'no file'}), "
             "whole suite, hidden tests included, seed 0"]
    if not report.baseline_ok:
        lines.append(f"  the reference does not earn full marks when graded for mutation testing: {report.baseline_detail}")
        lines.append(f"  time: {report.seconds:.1f} s")
        lines.append("mutation score: not computed (the reference must earn full marks)")
        return "\n".join(lines)
    if report.nondeterministic:
        lines.append(f"  nondeterministic replies (left out of the equivalence check): {', '.join(report.nondeterministic)}")
    if report.process_dependent:
        lines.append("  replies that depend on the workers' random state (so each mutant is compared with the reference "
                     f"graded by its own grading process): {', '.join(report.process_dependent)}")
    width = max([len(_status(v)) for v in report.verdicts] + [8])
    kind_width = max([len(v.mutant.kind) for v in report.verdicts] + [4])
    parts: dict[tuple[str, str], list[Verdict]] = {}
    for v in report.verdicts:
        parts.setdefault((v.mutant.path, v.mutant.function), []).append(v)
    path = None
    for (p, function), verdicts in parts.items():
        if p != path:
            lines.append(p)
            path = p
        lines.append(f"  {function or '(module level)'}")
        for v in verdicts:
            m = v.mutant
            lines.append(f"    {_status(v):<{width}}  {m.kind:<{kind_width}}  l.{m.line:<4} `{m.before}` -> `{m.after}`")
            if v.status == "survived" and v.changed:
                lines.append(f"    {'':<{width}}  replies differed in {', '.join(v.changed)}, yet every test passed")
            if v.detail:
                lines.append(f"    {'':<{width}}  {v.detail}")
    lines.append("per graded part (file: function): caught/counted, equivalent, error")
    for (p, function), verdicts in parts.items():
        c = Counter(v.status for v in verdicts)
        counted = c["caught"] + c["survived"]
        extra = "".join(f", {c[s]} {s}" for s in ("equivalent", "accepted", "rejected", "error") if c[s])
        lines.append(f"  {p}: {function or '(module level)'}: {c['caught']}/{counted}{extra}")
    by_test = Counter(k for v in report.verdicts for k in v.caught_by)
    if by_test:
        lines.append("mutants caught per test: " + ", ".join(f"{k}: {n}" for k, n in sorted(
            by_test.items(), key=lambda kv: [int(x) if x.isdigit() else x for x in kv[0].split(".")])))
    survivors = [v for v in report.verdicts if v.status == "survived"]
    lines.append(f"survivors: {len(survivors) or 'none'}")
    lines.extend(f"  {v.mutant.describe()}" for v in survivors)
    rejected = [v for v in report.verdicts if v.status == "rejected"]
    if rejected:
        lines.append(f"correct readings the suite REJECTS (fidelity bugs; see ACCEPTED_MUTANTS): {len(rejected)}")
        lines.extend(f"  {v.mutant.describe()}: {v.detail}" for v in rejected)
    lines.append(f"equivalent (not counted): {report.count('equivalent')}; accepted readings (not counted): "
                 f"{report.count('accepted')}; error (not counted): {report.count('error')}")
    lines.append(f"time: {report.seconds:.1f} s for {report.gradings} gradings (the reference twice per process, "
                 "survivors twice), "
                 f"{report.jobs} grading processes")
    lines.append(f"mutation score: {report.caught}/{report.total}")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        sys.exit(serve(sys.argv[2]))
    print("usage: autograder verify ASSIGNMENT --mutants", file=sys.stderr)
    sys.exit(2)
