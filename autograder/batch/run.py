"""``autograder batch``: grade a whole class, in parallel, resumably.

The parent only orchestrates: every submission is graded by ``batch_job.grade_one`` in
its own process (the usual engine), under a wall-time cap, so one hang or crash costs
that submission only. Per submission it writes ``<out>/<key>/results.json`` (always, and
schema-valid), ``batch.json`` (who, status, note) and ``grader.log``; at the end
``grades.csv``, ``report.txt`` and, with matplotlib, ``scores.png`` and ``pass_rates.png``.
A submission with a ``batch.json`` is not graded again unless ``regrade`` is set.

Unless turned off, ``similarity_report`` then compares the graded code of every graded
submission (``similarity.txt``, ``similarity.png`` and a section of the report): pairs that are
suspiciously alike once the template's given code is excluded. It reads the submissions' files
as text only, never changes a grade, and never fails the batch.
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from autograder import settings
from autograder.engine.isolation import privileges
from autograder.engine import registry
from autograder.batch.inputs import BadBatchInput, Submission, find_submissions, unpack_export
from autograder.batch.job import Job, close_servers, grade_one, pack
from autograder.batch.model import GRADED, GRADER_ERROR, NOT_GRADED, Outcome, Record
from autograder.batch.reports import text as batch_report
from autograder.batch.reports import csv_grades
from autograder.engine.formats import gradescope_json
from autograder.engine.formats.results_reader import from_json
from autograder.batch.reports.plots import PlottingUnavailable, write_plots
from autograder.batch.progress import Progress
from autograder.engine.results import GradingResult, TestResult
from autograder.engine.intake.staging import single_file_target, stage
from autograder.batch import similarity as code_similarity

DEFAULT_TIMEOUT_S = 600.0


@dataclass
class BatchOptions:
    workers: int = os.cpu_count() or 1
    regrade: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S     # per-submission wall-time cap
    device: str = "cpu"
    cluster: str | None = None              # a Dask scheduler address: grade there instead
    plots: bool = True
    similarity: bool = True                 # similarity.txt/.png and a report section; never a score
    similarity_threshold: float = code_similarity.THRESHOLD


def not_graded_result(assignment: str, why: str) -> GradingResult:
    """A valid result for a submission the batch could not grade (score 0, the reason visible)."""
    return GradingResult(assignment=assignment, grader_error=True, output=f"Not graded: {why}.",
                         tests=[TestResult(name="not graded", max_score=0.0, output=f"Not graded: {why}.")])


def _write(path: Path, text: str) -> None:
    gradescope_json.write_atomic(path, text)      # atomic: a killed batch never leaves half a file


def _store(out: Path, assignment: str, submission: Submission, outcome: Outcome) -> Record:
    folder = out / submission.key
    result = None
    if outcome.results is not None:
        try:
            result = from_json(json.loads(outcome.results))
        except ValueError:
            outcome.status, outcome.note = GRADER_ERROR, "unreadable results.json"
    if result is None:
        result = not_graded_result(assignment, outcome.note or "unknown failure")
    summary = set(result.summary().splitlines())
    upload_notes = [l for l in result.output.splitlines() if l.strip() and l not in summary] \
        if outcome.results is not None else []
    note = "; ".join([*submission.notes, *([outcome.note] if outcome.note else []), *upload_notes])
    result.assignment = result.assignment or assignment
    _write(folder / "grader.log", outcome.log)
    _write(folder / "results.json", gradescope_json.render(result))
    record = Record(submission.key, str(submission.path), submission.students, submission.created_at,
                    outcome.status, note, round(outcome.wall_s, 3), result)
    _write(folder / "batch.json", record.to_json())     # last: its presence means "done"
    return record


def _load(out: Path, submission: Submission) -> Record | None:
    folder = out / submission.key
    try:
        record = Record.read(folder / "batch.json")
        record.result = from_json(json.loads((folder / "results.json").read_text()))
        return record
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _ungradable(assignment: str, submission: Submission) -> str:
    """Why a lone file cannot be graded as any of the assignment's files ('' when it can)."""
    if not submission.path.is_file() or submission.path.suffix.lower() not in (".py", ".ipynb"):
        return ""
    spec, why = single_file_target(submission.path, registry.load_assignment(assignment))
    return why if spec is None else ""


def _job(assignment: str, submission: Submission, options: BatchOptions) -> Job:
    job = Job(assignment, submission.key, timeout_s=options.timeout_s, device=options.device,
              project=str(settings.current().project or "") or None)
    if options.cluster:
        job.payload, job.name = pack(submission.path)      # the cluster may not share our disk
    else:
        job.path = str(submission.path)
    return job


def _run_local(jobs: list[Job], workers: int, done: Callable[[Outcome], None]) -> None:
    """``workers`` threads, each waiting on one grading process at a time. On an interrupt the
    queued jobs are dropped and the running ones finish (a later run resumes the rest)."""
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures = {pool.submit(grade_one, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                done(future.result())
            except Exception as exc:   # noqa: BLE001 - a failure to even start grading is that submission's
                done(Outcome(job.key, GRADER_ERROR, None, repr(exc), 0.0, f"could not start grading: {exc}"))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        close_servers()   # the warm grading processes (see batch.job)


def run_batch(assignment: str, source: Path, out: Path, options: BatchOptions | None = None,
              stream=None) -> list[Record]:
    """Grade every submission under ``source`` (folder or export zip) into ``out``; the records, by key.

    Raises ``BadBatchInput`` (with an explanation) for an unknown assignment or an
    unreadable source; never for anything a submission does.
    """
    options = options or BatchOptions()
    stream = stream if stream is not None else sys.stderr
    if assignment not in registry.names():
        raise BadBatchInput(registry.unknown_message(assignment))
    threshold = options.similarity_threshold
    if not isinstance(threshold, (int, float)) or math.isnan(threshold) or not 0.0 <= threshold <= 1.0:
        raise BadBatchInput(f"the similarity threshold must be a number from 0 to 1 (got {threshold!r})")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="autograder-export-") as unpacked:
        source = Path(source).resolve()     # gradings run in another working directory
        if privileges.running_as_root():    # no worker user (another grading's) may read them
            os.chmod(out, 0o700)
            privileges.hide_from_workers([source])
        if source.is_file() and source.suffix.lower() == ".zip":
            source = unpack_export(source, Path(unpacked))
        submissions = find_submissions(source)
        records: dict[str, Record] = {}
        todo = []
        for sub in submissions:
            previous = None if options.regrade else _load(out, sub)
            if previous is not None:
                records[sub.key] = previous
            else:
                todo.append(sub)
        if len(todo) < len(submissions):
            stream.write(f"{len(submissions) - len(todo)} submissions already graded in {out}: skipped "
                         "(--regrade grades them again)\n")
        by_key = {s.key: s for s in todo}
        progress = Progress(len(todo), stream)

        def done(outcome: Outcome) -> None:
            record = _store(out, assignment, by_key[outcome.key], outcome)
            records[record.key] = record
            progress.advance(record.status, record.key)

        for sub in list(todo):
            why = _ungradable(assignment, sub)
            if why:
                todo.remove(sub)
                done(Outcome(sub.key, NOT_GRADED, None, note=why))
        jobs = [_job(assignment, s, options) for s in todo]
        if options.cluster:
            from autograder.batch.dask_backend import run_on_cluster
            run_on_cluster(options.cluster, jobs, done)
        elif jobs:
            _run_local(jobs, options.workers, done)
        ordered = [records[s.key] for s in submissions]
        similar = None
        if options.similarity:     # while an unpacked export still exists: every graded submission, old or new
            similar = similarity_report(out, assignment, ordered, {s.key: s.path for s in submissions},
                                        threshold=options.similarity_threshold, figure=options.plots)
    write_summary(ordered, out, plots=options.plots, stream=stream, similar=similar)
    return ordered


def write_summary(records: list[Record], out: Path, plots: bool = True, stream=None,
                  similar: list[str] | None = None) -> None:
    """grades.csv, report.txt and (with matplotlib) the two plots, from the records; ``similar``:
    the report's similarity section (``similarity_report``), written after everything else."""
    stream = stream if stream is not None else sys.stderr
    _write(out / "grades.csv", csv_grades.render(records))
    lines = [batch_report.render(records)]
    if plots:
        try:
            lines.extend(f"plot: {path.name}" for path in write_plots(records, out))
        except PlottingUnavailable as exc:
            lines.append(f"plots skipped: {exc}")
    lines.extend(similar or [])
    _write(out / "report.txt", "\n".join(lines) + "\n")
    stream.write("\n".join(lines) + f"\nwritten to {out}: grades.csv, report.txt, one folder per submission\n")


# ---------------------------------------------------------------- similarity (never part of any score)

SIMILARITY_TEXT, SIMILARITY_FIGURE = "similarity.txt", "similarity.png"
SIMILARITY_TOP = 5           # pairs named in report.txt; similarity.txt lists up to SIMILARITY_LIMIT
SIMILARITY_LIMIT = 500


def _code_files(assignment) -> list[str]:
    """The graded Python files students write: not data, not the provided files (given code)."""
    return [f.name for f in assignment.files if not f.provided and f.loader != "data" and f.name.endswith(".py")]


def graded_code(assignment, path: Path, names: list[str]) -> dict[str, str]:
    """{graded name: Python source} of the submission at ``path``, found as grading finds it
    (``stage``: anywhere in a folder or zip, under an alias, a notebook converted to source, a lone
    file told apart). Read as text only; a file the grader would not stage is left out."""
    with tempfile.TemporaryDirectory(prefix="autograder-similarity-") as scratch:
        staged = stage(Path(path), assignment, Path(scratch))
        return {name: (Path(scratch) / name).read_bytes().decode("utf-8", errors="replace")
                for name in names if name in staged.found}


def _records_in(out: Path) -> list[Record]:
    records = []
    for path in sorted(Path(out).glob("*/batch.json")):
        try:
            records.append(Record.read(path))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return records


def similarity_report(out: Path, assignment: str, records: list[Record] | None = None,
                      paths: dict[str, Path] | None = None, threshold: float = code_similarity.THRESHOLD,
                      figure: bool = True) -> list[str]:
    """Compare the graded code of every graded submission; write ``similarity.txt`` (and, with
    ``figure`` and matplotlib, ``similarity.png``) into ``out``; return the report's lines.

    ``records``: the batch's (default: every ``batch.json`` under ``out``); only graded ones are
    compared. ``paths``: key -> where the submission is now (default: each record's source).
    Never part of any score, and never raises: a failure is one line of the report.
    """
    try:
        return _similarity_report(Path(out), assignment, records, paths or {}, threshold, figure)
    except Exception as exc:   # noqa: BLE001 - a lead for a human, never a reason to fail the batch
        return [f"similarity: not computed ({type(exc).__name__}: {str(exc)[:200]}); grades are unaffected"]


def _similarity_report(out: Path, assignment: str, records, paths, threshold: float, figure: bool) -> list[str]:
    spec = registry.load_assignment(assignment)
    names = _code_files(spec)
    records = _records_in(out) if records is None else records
    graded = [r for r in records if r.status == GRADED]
    submissions, unreadable = {}, []
    for r in graded:
        path = Path(paths.get(r.key) or r.source)
        try:
            if not path.exists():
                raise FileNotFoundError(path)
            submissions[r.key] = graded_code(spec, path, names)
        except Exception:          # noqa: BLE001 - that submission is left out, and said so
            unreadable.append(r.key)
    template = graded_code(spec, registry.template_dir(assignment), names) \
        if registry.template_dir(assignment).is_dir() else {}
    pairs = code_similarity.similar_pairs(submissions, template, threshold=threshold)

    at = f"{threshold * 100:g}%"
    head = [f"Similar submissions of {assignment}: {len(pairs)} pair(s) at or above {at} similarity "
            f"among {len(submissions)} graded submissions.",
            "NEVER PART OF ANY SCORE: a lead for a human to read (open both files at the lines shown), not a verdict.",
            f"Compared: the graded code ({', '.join(names) or 'no code files'}), with the template's given code "
            "excluded; comments, docstrings, blank lines and names ignored (MOSS-style winnowing).",
            "similar: shared fingerprints / the smaller submission's own fingerprints. shared lines: a's lines~b's, "
            "in the files as graded (a notebook: its code cells joined, each after a '# %% cell N' line).",
            f"Template: {'; '.join(sorted(template)) or 'none found (nothing excluded)'}."]
    if unreadable:
        head.append(f"Not compared ({len(unreadable)}; files no longer readable): {', '.join(unreadable)}.")
    _write(out / SIMILARITY_TEXT, "\n".join(head) + "\n\n"
           + code_similarity.report_table(pairs, limit=SIMILARITY_LIMIT) + "\n")

    lines = [f"similarity (never part of any score; a lead for a human, not a verdict): "
             + (f"{len(pairs)} pair(s) at or above {at}" if pairs else f"no pair at or above the {at} threshold")
             + f" among {len(submissions)} graded submissions, given code excluded; see {SIMILARITY_TEXT}"]
    lines.extend(f"  {p.similarity:4.0%}  {p.a} ~ {p.b}" for p in pairs[:SIMILARITY_TOP])
    if len(pairs) > SIMILARITY_TOP:
        lines.append(f"  ... and {len(pairs) - SIMILARITY_TOP} more in {SIMILARITY_TEXT}")
    if unreadable:
        lines.append(f"  not compared (files no longer readable): {', '.join(unreadable)}")
    if figure:
        (out / SIMILARITY_FIGURE).unlink(missing_ok=True)       # never an earlier run's figure beside this table
        drawn = code_similarity.plot(pairs, sorted(submissions), out / SIMILARITY_FIGURE)
        lines.append(f"plot: {SIMILARITY_FIGURE}" if drawn else
                     f"similarity figure skipped: matplotlib is not installed or could not draw {SIMILARITY_FIGURE}")
    return lines
