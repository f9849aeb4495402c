"""Same verdicts on a GPU: grade every assignment's reference, template and fixtures on CUDA and
on the CPU, compare the verdicts test by test, and record wall times and peak GPU memory.

    python bench/gpu_check.py                      # every assignment, CUDA against the CPU
    python bench/gpu_check.py uw_attention -j 8 --json build/gpu_check.json
    python bench/gpu_check.py --devices cpu,cpu    # a dry run of the machinery (no GPU needed)

Where CUDA is asked for and absent it says so, checks nothing else and exits 0. Each grading
runs in its own process (``python -m autograder grade``, the usual isolated engine) with one
fixed seed, so hidden tests draw the same inputs on both devices; ``-j`` gradings run at once.
Subjects: the reference, the template, every fixture folder under ``tests/fixtures/<assignment>/``
(its files laid over a copy of the reference) and every edit table in a fixture module there
(``{name: {file: [(old, new), ...]}}``, applied to the reference's copy). Peak GPU memory is
read through NVML over each grading's process tree. Exit status 1 when any verdict differs.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SEED = 447


@dataclass
class Subject:
    assignment: str
    name: str
    path: Path                                   # a folder ready to grade


@dataclass
class Grading:
    subject: Subject
    device: str
    verdicts: dict[str, tuple[str, float]] = field(default_factory=dict)   # test -> (status, score)
    wall_s: float = 0.0
    peak_gpu_mib: float = 0.0
    error: str = ""


def project_root() -> Path:
    return Path(os.environ.get("AUTOGRADER_PROJECT") or ROOT)


def _overlay(reference: Path, files: dict[str, bytes], into: Path) -> Path:
    shutil.copytree(reference, into, ignore=shutil.ignore_patterns("__pycache__"))
    for rel, data in files.items():
        (into / rel).parent.mkdir(parents=True, exist_ok=True)
        (into / rel).write_bytes(data)
    return into


def _edit_tables(module_path: Path) -> dict[str, dict]:
    """Module-level ``{name: {file: [(old, new), ...]}}`` tables of a fixture module."""
    spec = importlib.util.spec_from_file_location(f"_gpu_check_{module_path.stem}", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tables = {}
    for value in vars(module).values():
        if isinstance(value, dict) and value and all(
                isinstance(edits, dict) and all(isinstance(f, str) and isinstance(pairs, list)
                                                for f, pairs in edits.items())
                for edits in value.values()):
            tables.update(value)
    return tables


def subjects(assignment: str, scratch: Path) -> list[Subject]:
    """Reference, template and fixtures of ``assignment`` as folders under ``scratch``."""
    root = project_root()
    reference = root / "reference" / assignment
    out = []
    for name, path in (("reference", reference), ("template", root / "student_template" / assignment)):
        if path.is_dir():
            out.append(Subject(assignment, name, path))
    fixtures = root / "tests" / "fixtures" / assignment
    if not fixtures.is_dir() or not reference.is_dir():
        return out
    for folder in sorted(p for p in fixtures.rglob("*") if p.is_dir() and "__pycache__" not in p.parts):
        files = {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}
        if files:
            name = folder.relative_to(fixtures).as_posix()
            out.append(Subject(assignment, name, _overlay(reference, files, scratch / assignment / name)))
    for module in sorted(fixtures.glob("*.py")):
        for name, edits in _edit_tables(module).items():
            files = {}
            for rel, pairs in edits.items():
                text = (reference / rel).read_text()
                for old, new in pairs:
                    text = text.replace(old, new, 1)
                files[rel] = text.encode()
            label = f"{module.stem}:{name}"
            out.append(Subject(assignment, label, _overlay(reference, files, scratch / assignment / label)))
    return out


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    children.setdefault(int(fh.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, []))
    return out


def grade(subject: Subject, device: str, scratch: Path) -> Grading:
    """Grade ``subject`` on ``device`` in a fresh process; GPU memory sampled every 50 ms."""
    from autograder.engine.isolation.gpu_memory import GpuMemory
    results = scratch / "results" / subject.assignment / subject.name.replace("/", "_").replace(":", "_") / device
    results.mkdir(parents=True, exist_ok=True)
    out = Grading(subject, device)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", subject.assignment, str(subject.path),
                             "--device", device, "--seed", str(SEED), "--results", str(results / "results.json")],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    nvml = GpuMemory.open() if device == "cuda" else None
    stop = threading.Event()

    def sample():
        while not stop.wait(0.05):
            out.peak_gpu_mib = max(out.peak_gpu_mib, nvml.used_bytes(_tree(proc.pid)) / 2**20)

    sampler = threading.Thread(target=sample, daemon=True) if nvml else None
    if sampler:
        sampler.start()
    _, err = proc.communicate()
    stop.set()
    if sampler:
        sampler.join()
    out.wall_s = time.monotonic() - started
    try:
        data = json.loads((results / "results.json").read_text())
        for t in data["tests"]:
            key = f"{t.get('number', '')} {t['name']}".strip()
            out.verdicts[key] = (t.get("status", "failed"), float(t.get("score", 0.0)))
    except (OSError, ValueError, KeyError) as exc:
        out.error = f"no results ({exc}); stderr: {err[-300:]}"
    return out


def differences(a: Grading, b: Grading) -> list[str]:
    if a.error or b.error:
        return [f"{a.device}: {a.error or 'ok'} / {b.device}: {b.error or 'ok'}"]
    lines = []
    for test in sorted(set(a.verdicts) | set(b.verdicts)):
        va, vb = a.verdicts.get(test), b.verdicts.get(test)
        if va != vb:
            lines.append(f"{test}: {a.device} {va} vs {b.device} {vb}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="default: every assignment")
    parser.add_argument("--devices", default="cuda,cpu", help="the two devices compared (default cuda,cpu)")
    parser.add_argument("-j", "--jobs", type=int, default=min(12, os.cpu_count() or 1))
    parser.add_argument("--json", help="also write every grading's figures and verdicts here")
    args = parser.parse_args(argv)
    first, second = args.devices.split(",")
    if "cuda" in (first, second):
        import torch
        if not torch.cuda.is_available():
            print("CUDA is absent on this machine: no GPU check was run (nothing else was checked), "
                  "so no CUDA figures exist from here.")
            return 0
        print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    from autograder.engine import registry
    names = args.assignments or registry.names()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        scratch = Path(tmp)
        todo = [s for name in names for s in subjects(name, scratch)]
        print(f"{len(todo)} subjects x {first}/{second}, {args.jobs} gradings at once", flush=True)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            pairs = [(pool.submit(grade, s, first, scratch), pool.submit(grade, s, second, scratch)) for s in todo]
            done = [(a.result(), b.result()) for a, b in pairs]
    rows, report, failing = [], [], 0
    for name in names:
        mine = [(a, b) for a, b in done if a.subject.assignment == name]
        diffs = {a.subject.name: differences(a, b) for a, b in mine}
        failing += sum(1 for d in diffs.values() if d)
        tests = sum(len(a.verdicts) for a, _ in mine)
        rows.append((name, len(mine), tests, sum(len(d) for d in diffs.values()),
                     statistics.median([a.wall_s for a, _ in mine] or [0]),
                     statistics.median([b.wall_s for _, b in mine] or [0]),
                     max([max(a.peak_gpu_mib, b.peak_gpu_mib) for a, b in mine] or [0])))
        report.extend(f"  {name} / {subject}: {line}" for subject, lines in diffs.items() for line in lines)
    header = ("assignment", "subjects", "tests", "differing", f"{first} wall (median)",
              f"{second} wall (median)", "peak GPU MiB")
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for name, n, tests, ndiff, wa, wb, gpu in rows:
        print(f"| {name} | {n} | {tests} | {ndiff} | {wa:.1f} s | {wb:.1f} s | {gpu:.0f} |")
    print(f"\nwall time of the whole check: {time.monotonic() - started:.0f} s; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("verdicts differ:\n" + "\n".join(report) if report else "every verdict is the same on both devices")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps([
            {"assignment": g.subject.assignment, "subject": g.subject.name, "device": g.device,
             "wall_s": round(g.wall_s, 3), "peak_gpu_mib": round(g.peak_gpu_mib, 1), "error": g.error,
             "verdicts": g.verdicts} for pair in done for g in pair], indent=1))
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
