"""Wall time and peak memory of grading a submission, isolated vs. in one process (the floor).

Each grading runs in a fresh interpreter so imports are counted the same way. The runs are
interleaved, a round at a time (floor then isolated, the order flipped every other round), so
both modes see the same machine: on a shared machine its speed drifts by tens of percent within
minutes. Reported per mode: the median wall time and CPU time (user + system of the whole process
tree) of the rounds, run without memory sampling, and the median of the rounds' own ratios; memory
comes from one more run, sampled every 20 ms over the grading process and all its descendants
(the fork server and workers): the peak of the summed PSS (shared pages split between processes,
what the machine really holds) and of the summed RSS (shared pages counted once per process, an
over-estimate). ``--against DIR`` grades with the checkout in DIR too, in the same rounds (a
before/after comparison side by side).

    python bench/grading_cost.py [ASSIGNMENT [SUBMISSION]] [--device cpu|cuda] [--repeat N] [--against DIR]
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


def measure(cmd: list[str], sample: bool = True, cwd: Path = ROOT) -> dict:
    """Wall time of ``cmd`` and, with ``sample``, the peak memory of its process tree."""
    peak = {"pss": 0, "rss": 0}
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
    parser.add_argument("--against", type=Path, help="another checkout, graded in the same rounds")
    args = parser.parse_args()
    submission = args.submission or str(ROOT / "reference" / args.assignment)
    trees = {"": ROOT} if args.against is None else {"this tree, ": ROOT, f"{args.against}, ": args.against.resolve()}
    modes = [(tree, mode) for tree in trees for mode in ("none", "process")]
    runs: dict[tuple, list[dict]] = {key: [] for key in modes}
    load = _load()
    for round_ in range(args.repeat):
        # Wall times come from runs without memory sampling: reading smaps of several large
        # processes every 20 ms costs CPU on a small machine, more so for the isolated mode.
        for tree, mode in (modes if round_ % 2 == 0 else modes[::-1]):
            runs[(tree, mode)].append(measure(_command(args, submission, mode), sample=False, cwd=trees[tree]))
    rows = {}
    for tree, mode in modes:
        memory = measure(_command(args, submission, mode), sample=True, cwd=trees[tree])
        done = runs[(tree, mode)]
        rows[(tree, mode)] = {"wall_s": statistics.median(r["wall_s"] for r in done),
                              "cpu_s": statistics.median(r["cpu_s"] for r in done),
                              "peak_pss_mib": memory["peak_pss_mib"], "peak_rss_mib": memory["peak_rss_mib"],
                              "total": done[0]["total"]}
    print(f"assignment {args.assignment}, submission {submission}, device {args.device}, "
          f"wall and CPU: median of {args.repeat} interleaved rounds without sampling; memory: one sampled "
          f"run; load average {load} at the start, {_load()} at the end")
    print(f"{'mode':<44}{'wall (s)':>10}{'CPU (s)':>9}{'peak PSS (MiB)':>16}{'peak RSS sum (MiB)':>20}  result")
    summary = {}
    for tree in trees:
        for mode, label in (("none", "in-process floor"), ("process", "isolated workers")):
            r = rows[(tree, mode)]
            print(f"{tree + label:<44}{r['wall_s']:>10.2f}{r['cpu_s']:>9.2f}{r['peak_pss_mib']:>16.0f}"
                  f"{r['peak_rss_mib']:>20.0f}  {r['total']}")
        floor, isolated = rows[(tree, "none")], rows[(tree, "process")]
        paired = statistics.median(i["wall_s"] / f["wall_s"] for f, i in zip(runs[(tree, "none")], runs[(tree, "process")]))
        ratio = isolated["wall_s"] / floor["wall_s"]
        print(f"{tree}isolation cost: {ratio:.2f}x the floor's wall time (median of the rounds' ratios "
              f"{paired:.2f}x), {isolated['cpu_s'] / floor['cpu_s']:.2f}x its CPU time (user + system, "
              "whole process tree)")
        summary[tree.rstrip(", ") or "this tree"] = {"ratio": ratio, "paired_ratio": paired, "none": floor,
                                                     "process": isolated}
    print(json.dumps(summary))


def _command(args, submission: str, mode: str) -> list[str]:
    return [sys.executable, "-m", "autograder", "grade", args.assignment, submission,
            "--device", args.device, "--isolation", mode, "--seed", "1"]


if __name__ == "__main__":
    main()
