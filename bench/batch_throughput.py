"""Batch throughput: submissions graded per minute with 1 worker and with one per core.

A mixed class is generated into a temporary folder from the reference and the template of
``ift6135_vit_lstm`` plus small modifications: correct (the reference), wrong (the template,
and bug fixtures from tests/), hanging (``get_patches`` loops forever: its tests time out,
and the batch's per-submission cap stops the rest) and crashing (``os._exit`` when LayerNorm
runs, and at import). The same class is graded by ``autograder batch`` twice, into fresh
output folders: ``--workers 1`` and ``--workers <cores>``.

    python bench/batch_throughput.py [--copies N] [--timeout S] [--workers N]
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
BUGS = ("layernorm_unbiased_var", "attention_no_scale", "lstm_loss_token_level")


def _reference_with(vit_edit=None, lstm_edit=None) -> dict[str, str]:
    files = {p.name: p.read_text() for p in REFERENCE.glob("*.py")}
    if vit_edit:
        files["vit_solution.py"] = vit_edit(files["vit_solution.py"])
    if lstm_edit:
        files["lstm_solution.py"] = lstm_edit(files["lstm_solution.py"])
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
        files = _reference_with()
        for p in (ROOT / "tests" / "fixtures" / ASSIGNMENT / "bugs" / bug).glob("*.py"):
            files[p.name] = p.read_text()
        kinds[f"buggy_{bug}"] = files
    counts = Counter()
    for copy in range(copies):
        for kind, files in kinds.items():
            target = folder / f"{kind}_{copy}"
            target.mkdir(parents=True)
            for name, text in files.items():
                (target / name).write_text(text)
            counts[kind.split("_")[0]] += 1
    return counts


def run(source: Path, workers: int, timeout: float) -> tuple[float, Counter]:
    out = Path(tempfile.mkdtemp(prefix=f"bench-batch-{workers}-"))
    started = time.monotonic()
    records = run_batch(ASSIGNMENT, source, out, BatchOptions(workers=workers, timeout_s=timeout, plots=False),
                        stream=io.StringIO())
    wall = time.monotonic() - started
    shutil.rmtree(out)
    return wall, Counter(r.status for r in records)


def main() -> int:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=1, help="copies of the 8-submission mix (default 1)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-submission wall-time cap, s (60)")
    parser.add_argument("--workers", type=int, default=cores, help=f"the parallel run's workers (cores: {cores})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-class-") as tmp:
        counts = make_class(Path(tmp), args.copies)
        n = sum(counts.values())
        print(f"{n} submissions: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
              + f"; cap {args.timeout:g} s per submission; {cores} cores")
        walls = {}
        for workers in (1, args.workers):
            wall, statuses = run(Path(tmp), workers, args.timeout)
            walls[workers] = wall
            print(f"  {workers} worker{'s' if workers > 1 else ' '}: {wall:7.1f} s  {n / wall * 60:6.2f} submissions/min  "
                  + ", ".join(f"{v} {k}" for k, v in sorted(statuses.items())))
    speedup = walls[1] / walls[args.workers]
    print(f"  speed-up {speedup:.2f}x with {args.workers} workers (target >= {0.8 * args.workers:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
