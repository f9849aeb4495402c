"""Batch throughput: submissions graded per minute with 1 worker and with one per core.

A mixed class is generated into a temporary folder from the reference and the template of
``ift6135_vit_lstm`` plus small modifications: correct (the reference), wrong (the template,
and bug fixtures from tests/), hanging (``get_patches`` loops forever: its tests time out,
and the batch's per-submission cap stops the rest) and crashing (``os._exit`` when LayerNorm
runs, and at import). The same class is graded by ``autograder batch`` twice, into fresh
output folders: ``--workers 1`` and ``--workers <cores>``. ``--correct N`` grades N copies of the
reference instead. Batches grade with warm grading processes (``autograder.batch.warm``); ``--cold``
also grades the class with a fresh grading process per submission, side by side. The floor, timed
first, is one cold in-process grading of the reference (``grade --isolation none`` in a fresh
interpreter), and each row says its time per submission against it, with the load average.

    python bench/batch_throughput.py [--copies N | --correct N] [--timeout S] [--workers N] [--cold]
                                     [--floor-repeat N]
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.batch.run import BatchOptions, run_batch   # noqa: E402

ASSIGNMENT = "ift6135_vit_lstm"
REFERENCE = ROOT / "reference" / ASSIGNMENT
BUGS = ("layernorm_unbiased_var", "attention_no_scale", "lstm_loss_token_level")   # of tests/fixtures/.../bugs.py


def _reference_with(vit_edit=None, lstm_edit=None) -> dict[str, str]:
    files = {p.name: p.read_text() for p in REFERENCE.glob("*.py")}
    if vit_edit:
        files["vit_solution.py"] = vit_edit(files["vit_solution.py"])
    if lstm_edit:
        files["lstm_solution.py"] = lstm_edit(files["lstm_solution.py"])
    return files


def _bug_files(bug: str) -> dict[str, str]:
    """The reference with the edits of ``bug`` (tests/fixtures/ift6135_vit_lstm/bugs.py) made."""
    from autograder.engine.registry import import_file
    edits = import_file(ROOT / "tests" / "fixtures" / ASSIGNMENT / "bugs.py", "_ift6135_fixture_bugs").BUGS[bug]
    files = _reference_with()
    for name, pairs in edits.items():
        for old, new in pairs:
            assert files[name].count(old) == 1, f"{bug}: an edit of {name} no longer matches the reference"
            files[name] = files[name].replace(old, new)
    return files


def _insert_after_docstring(source: str, signature: str, line: str) -> str:
    start = source.index(signature)
    end_doc = source.index('"""', source.index('"""', start) + 3) + 3
    return source[:end_doc] + "\n        " + line + source[end_doc:]


def make_class(folder: Path, copies: int) -> Counter:
    """Write the mixed class into ``folder``; returns how many of each kind."""
    kinds: dict[str, dict[str, str]] = {
        "hanging": _reference_with(vit_edit=lambda s: _insert_after_docstring(
            s, "def get_patches(", "while True: pass")),
        "correct": _reference_with(),
        "crashing_in_layernorm": _reference_with(vit_edit=lambda s: _insert_after_docstring(
            s, "def forward(self, inputs):", "import os; os._exit(1)")),
        "crashing_at_import": _reference_with(lstm_edit=lambda s: "import os\nos._exit(3)\n" + s),
        "template": {p.name: p.read_text() for p in (ROOT / "student_template" / ASSIGNMENT).glob("*.py")},
    }
    for bug in BUGS:
        kinds[f"buggy_{bug}"] = _bug_files(bug)
    counts = Counter()
    for copy in range(copies):
        for kind, files in kinds.items():
            target = folder / f"{kind}_{copy}"
            target.mkdir(parents=True)
            for name, text in files.items():
                (target / name).write_text(text)
            counts[kind.split("_")[0]] += 1
    return counts


def make_correct(folder: Path, n: int) -> Counter:
    """``n`` copies of the reference (the issue's "8 correct submissions")."""
    for copy in range(n):
        target = folder / f"correct_{copy}"
        target.mkdir(parents=True)
        for name, text in _reference_with().items():
            (target / name).write_text(text)
    return Counter(correct=n)


def run(source: Path, workers: int, timeout: float, warm: bool = True) -> tuple[float, Counter]:
    """One ``run_batch`` of the class; ``warm=False``: a fresh grading process per submission (the
    cold path, ``batch.job``'s ``Job.warm = False``)."""
    from autograder.batch import job as batch_job, run as batch_run
    out = Path(tempfile.mkdtemp(prefix=f"bench-batch-{workers}-"))
    started = time.monotonic()
    batch_run.grade_one = batch_job.grade_one if warm else batch_job._grade_cold
    try:
        records = run_batch(ASSIGNMENT, source, out, BatchOptions(workers=workers, timeout_s=timeout, plots=False,
                                                                  similarity=False),
                            stream=io.StringIO())
    finally:
        batch_run.grade_one = batch_job.grade_one
    wall = time.monotonic() - started
    shutil.rmtree(out)
    return wall, Counter(r.status for r in records)


def floor_s(repeat: int) -> float:
    """One cold in-process grading of the reference (``grade --isolation none``, a fresh
    interpreter each time): the median wall time of ``repeat`` runs."""
    import statistics
    import subprocess
    walls = []
    for _ in range(repeat):
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(REFERENCE), "--isolation", "none",
                        "--seed", "1", "--device", "cpu"], cwd=ROOT, check=True, capture_output=True)
        walls.append(time.monotonic() - started)
    return statistics.median(walls)


def _load() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return fh.read().split()[0]
    except OSError:
        return "?"


def main() -> int:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=1, help="copies of the 8-submission mix (default 1)")
    parser.add_argument("--correct", type=int, metavar="N", help="grade N copies of the reference instead of the mix")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-submission wall-time cap, s (60)")
    parser.add_argument("--workers", type=int, default=cores, help=f"the parallel run's workers (cores: {cores})")
    parser.add_argument("--cold", action="store_true",
                        help="also grade with a fresh grading process per submission (the cold path), side by side")
    parser.add_argument("--floor-repeat", type=int, default=3,
                        help="cold in-process gradings of the reference timed for the floor (median; default 3)")
    args = parser.parse_args()
    load = _load()
    floor = floor_s(args.floor_repeat) if args.floor_repeat > 0 else None
    if floor is not None:
        print(f"floor: one cold in-process grading of the reference {floor:.2f} s (median of {args.floor_repeat}; "
              f"load {load} -> {_load()})")
    with tempfile.TemporaryDirectory(prefix="bench-class-") as tmp:
        counts = make_correct(Path(tmp), args.correct) if args.correct else make_class(Path(tmp), args.copies)
        n = sum(counts.values())
        print(f"{n} submissions: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
              + f"; cap {args.timeout:g} s per submission; {cores} cores")
        print(f"  {'path':<6}{'workers':>8}{'wall':>9}{'per sub.':>10}{'/floor':>8}{'subs/min':>10}  statuses  (load at start -> end)")
        for warm in ((True, False) if args.cold else (True,)):
            walls = {}
            for workers in dict.fromkeys((1, args.workers)):
                load = _load()
                wall, statuses = run(Path(tmp), workers, args.timeout, warm)
                walls[workers] = wall
                ratio = f"{wall / n / floor:7.2f}x" if floor else "      -"
                print(f"  {'warm' if warm else 'cold':<6}{workers:>8}{wall:>8.1f}s{wall / n:>9.2f}s{ratio}{n / wall * 60:>10.2f}  "
                      + ", ".join(f"{v} {k}" for k, v in sorted(statuses.items())) + f"  (load {load} -> {_load()})")
            speedup = walls[1] / walls[args.workers]
            print(f"  {'warm' if warm else 'cold':<6}speed-up {speedup:.2f}x with {args.workers} workers "
                  f"(target >= {0.8 * args.workers:.2f}x)"
                  + (f"; -j 1 per submission {walls[1] / n / floor:.2f}x the floor (target <= 0.75x)" if floor else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
