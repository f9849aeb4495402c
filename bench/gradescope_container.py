"""Grading inside Gradescope's default container size: 768 MB of memory and 0.5 vCPU.

Each assignment's reference is graded by ``python -m autograder grade`` in a fresh cgroup
(v1 ``memory`` and ``cpu`` controllers: ``memory.limit_in_bytes`` = 768 MB, swap off where
the kernel allows; ``cpu.cfs_quota_us`` = half of ``cpu.cfs_period_us``), the grader and
every worker it forks inside it. Reported: the score, the wall time, and the cgroup's peak
memory (``memory.max_usage_in_bytes``: everything charged to the group, page cache included).

    sudo python bench/gradescope_container.py [ASSIGNMENT ...] [--memory-mb 768] [--cpus 0.5]

Needs root and the cgroup v1 memory and cpu hierarchies mounted writable (as on these
machines). Exit status 1 if a reference loses points inside the limits.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CGROUPS = Path("/sys/fs/cgroup")


def _write(path: Path, value) -> bool:
    try:
        path.write_text(str(value))
        return True
    except OSError:
        return False


def make_group(name: str, memory_mb: int, cpus: float) -> tuple[Path, Path]:
    memory, cpu = CGROUPS / "memory" / name, CGROUPS / "cpu" / name
    memory.mkdir(exist_ok=True)
    cpu.mkdir(exist_ok=True)
    limit = memory_mb * 10**6
    _write(memory / "memory.limit_in_bytes", limit)
    _write(memory / "memory.memsw.limit_in_bytes", limit)        # no swap, where accounted
    period = int((cpu / "cpu.cfs_period_us").read_text())
    _write(cpu / "cpu.cfs_quota_us", int(period * cpus))
    return memory, cpu


def remove_group(memory: Path, cpu: Path) -> None:
    for group in (memory, cpu):
        for _ in range(50):
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def grade_inside(assignment: str, memory_mb: int, cpus: float) -> dict:
    """Grade ``assignment``'s reference inside fresh limits; its score, wall time and peak memory."""
    from autograder.engine import registry
    memory, cpu = make_group(f"autograder-bench-{os.getpid()}-{assignment}", memory_mb, cpus)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = Path(tmp) / "results.json"
            enter = (f"echo $$ > {memory}/cgroup.procs && echo $$ > {cpu}/cgroup.procs && exec "
                     f"{sys.executable} -m autograder grade {assignment} {registry.reference_dir(assignment)} "
                     f"--device cpu --results {results}")
            started = time.monotonic()
            proc = subprocess.run(["sh", "-c", enter], cwd=ROOT, capture_output=True, text=True)
            wall = time.monotonic() - started
            data = json.loads(results.read_text()) if results.is_file() else {}
        peak = int((memory / "memory.max_usage_in_bytes").read_text())
        failcnt = int((memory / "memory.failcnt").read_text())
    finally:
        remove_group(memory, cpu)
    tests = data.get("tests", [])
    return {"assignment": assignment, "score": data.get("score", 0.0),
            "max": sum(t.get("max_score", 0) for t in tests), "wall_s": wall, "peak_mib": peak / 2**20,
            "limit_hits": failcnt, "returncode": proc.returncode, "stderr": proc.stderr[-500:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*")
    parser.add_argument("--memory-mb", type=int, default=768)
    parser.add_argument("--cpus", type=float, default=0.5)
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or not (CGROUPS / "memory").is_dir() or not (CGROUPS / "cpu").is_dir():
        print("needs root and the cgroup v1 memory and cpu hierarchies under /sys/fs/cgroup")
        return 2
    from autograder.engine import registry
    print(f"limits: {args.memory_mb} MB, {args.cpus:g} vCPU; load average at start: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| assignment | score | wall time | peak memory (cgroup) |\n|---|---|---|---|")
    short = False
    for name in args.assignments or registry.names():
        r = grade_inside(name, args.memory_mb, args.cpus)
        short |= r["score"] < r["max"] or r["max"] == 0
        print(f"| {name} | {r['score']:g}/{r['max']:g} | {r['wall_s']:.0f} s | {r['peak_mib']:.0f} MiB"
              + (f" (limit reached {r['limit_hits']}x)" if r["limit_hits"] else "") + " |", flush=True)
        if r["score"] < r["max"] or r["max"] == 0:
            print(f"  exit {r['returncode']}: {r['stderr']}")
    return 1 if short else 0


if __name__ == "__main__":
    sys.exit(main())
