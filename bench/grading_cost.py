"""Wall time and peak memory of grading a submission, isolated vs. in one process (the floor).

Each mode runs in a fresh interpreter so imports are counted the same way. Wall time is the
median of runs without memory sampling, and so is CPU time (user + system of the whole process
tree: on a shared machine it moves less than wall time; the load average is printed); memory comes from one more run, sampled every 20 ms over the grading process and all its descendants (the fork server
and workers): the peak of the summed PSS (shared pages split between processes, what
the machine really holds) and of the summed RSS (shared pages counted once per process,
an over-estimate).

    python bench/grading_cost.py [ASSIGNMENT [SUBMISSION]] [--device cpu|cuda] [--repeat N]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, []))
    return out


def _memory_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in KiB of one process, 0 if it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def measure(cmd: list[str], sample: bool = True) -> dict:
    """Wall time of ``cmd`` and, with ``sample``, the peak memory of its process tree."""
    peak = {"pss": 0, "rss": 0}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = threading.Event()

    def sampler():
        while sample and not done.is_set():
            total_pss = total_rss = 0
            for p in _descendants(proc.pid):
                pss, rss = _memory_kib(p)
                total_pss += pss
                total_rss += rss
            peak["pss"] = max(peak["pss"], total_pss)
            peak["rss"] = max(peak["rss"], total_rss)
            time.sleep(0.02)

    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    output = proc.communicate()[0]
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)   # the whole tree: each process reaps its own
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    done.set()
    thread.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{output}")
    total = next((l for l in output.splitlines() if "Total:" in l), "").strip()
    return {"wall_s": wall, "cpu_s": cpu, "peak_pss_mib": peak["pss"] / 1024, "peak_rss_mib": peak["rss"] / 1024,
            "total": total}


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return fh.read().split()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("assignment", nargs="?", default="ift6135_vit_lstm")
    parser.add_argument("submission", nargs="?")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    submission = args.submission or str(ROOT / "reference" / args.assignment)
    rows = {}
    load = _load()
    for mode in ("none", "process"):
        cmd = [sys.executable, "-m", "autograder", "grade", args.assignment, submission,
               "--device", args.device, "--isolation", mode, "--seed", "1"]
        # Wall times come from runs without memory sampling: reading smaps of several large
        # processes every 20 ms costs CPU on a small machine, more so for the isolated mode.
        runs = [measure(cmd, sample=False) for _ in range(args.repeat)]
        memory = measure(cmd, sample=True)
        rows[mode] = {"wall_s": statistics.median(r["wall_s"] for r in runs),
                      "cpu_s": statistics.median(r["cpu_s"] for r in runs),
                      "peak_pss_mib": memory["peak_pss_mib"], "peak_rss_mib": memory["peak_rss_mib"],
                      "total": runs[0]["total"]}
    ratio = rows["process"]["wall_s"] / rows["none"]["wall_s"]
    print(f"assignment {args.assignment}, submission {submission}, device {args.device}, "
          f"wall and CPU: median of {args.repeat} runs without sampling; memory: one sampled run; "
          f"load average {load} at the start, {_load()} at the end")
    print(f"{'mode':<22}{'wall (s)':>10}{'CPU (s)':>9}{'peak PSS (MiB)':>16}{'peak RSS sum (MiB)':>20}  result")
    for mode, label in (("none", "in-process floor"), ("process", "isolated workers")):
        r = rows[mode]
        print(f"{label:<22}{r['wall_s']:>10.2f}{r['cpu_s']:>9.2f}{r['peak_pss_mib']:>16.0f}{r['peak_rss_mib']:>20.0f}"
              f"  {r['total']}")
    print(f"isolation cost: {ratio:.2f}x the floor's wall time, "
          f"{rows['process']['cpu_s'] / rows['none']['cpu_s']:.2f}x its CPU time (user + system, whole process tree)")
    print(json.dumps({"ratio": ratio, **{k: v for k, v in rows.items()}}))


if __name__ == "__main__":
    main()
