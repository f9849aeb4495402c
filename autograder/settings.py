"""Every knob the environment can turn, read in this one place.

``current()`` reads the environment now (tests and batch jobs change it between calls), so
callers ask for it where they need a value instead of keeping one at import. The README's
"Settings" table lists the same knobs (tests/test_layout.py keeps the two in step).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Knob:
    variable: str
    default: str
    meaning: str


KNOBS = (
    Knob("AUTOGRADER_PROJECT", "the checkout holding autograder/",
         "the project whose test_suites/, reference/ and student_template/ are graded"),
    Knob("AUTOGRADER_ROOT", "/autograder", "Gradescope's root: submission/ in, results/results.json out"),
    Knob("AUTOGRADER_SUBMISSION", "", "the submission's path when `grade` is given `-` (batch keeps paths off command lines)"),
    Knob("AUTOGRADER_SEED", "drawn per grading", "the hidden tests' input seed"),
    Knob("AUTOGRADER_TIME_SCALE", "1", "multiplies every test's time limit (a slow machine)"),
    Knob("AUTOGRADER_BUDGET_S", "540", "a whole grading's budget in seconds: tests not started in time fail, explained"),
    Knob("AUTOGRADER_WORKERS", "fork on Linux, else portable", "the worker backend: fork (a sandboxed fork server) or portable"),
    Knob("AUTOGRADER_WORKER_USER", "autograder-worker", "the unprivileged user workers switch to when the grader is root"),
    Knob("AUTOGRADER_WORKER_THREADS", "1", "torch/OpenMP threads in each worker (and in the in-process floor)"),
    Knob("AUTOGRADER_WORKER_MEMORY_MIB", "2048", "memory one worker may use (processes, memfds, /dev/shm) before it is killed"),
    Knob("AUTOGRADER_WORKER_GPU_MEMORY_MIB", "16384", "GPU memory one worker may use before it is killed"),
    Knob("AUTOGRADER_WORKER_PROCESSES", "128", "processes the worker user may run (RLIMIT_NPROC)"),
    Knob("AUTOGRADER_WORKER_FILE_MIB", "64", "largest file a worker may write (RLIMIT_FSIZE)"),
)


@dataclass(frozen=True)
class Settings:
    project: Path | None      # None: the checkout holding autograder/
    root: Path
    submission: str
    seed: int | None          # None: drawn per grading
    time_scale: float
    budget_s: float
    workers: str              # "fork" | "portable" | "" (the platform's choice)
    worker_user: str
    worker_threads: int
    worker_memory_mib: int
    worker_gpu_memory_mib: int
    worker_processes: int
    worker_file_mib: int


def _get(name: str) -> str:
    return os.environ.get(name, "").strip()


def current() -> Settings:
    """The settings as the environment states them now (ValueError naming a malformed one)."""
    def number(name: str, default: str, kind=int):
        text = _get(name) or default
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"{name} must be a number, not {text!r}") from None

    seed = _get("AUTOGRADER_SEED")
    return Settings(
        project=Path(_get("AUTOGRADER_PROJECT")) if _get("AUTOGRADER_PROJECT") else None,
        root=Path(_get("AUTOGRADER_ROOT") or "/autograder"),
        submission=_get("AUTOGRADER_SUBMISSION"),
        seed=number("AUTOGRADER_SEED", seed) if seed else None,
        time_scale=number("AUTOGRADER_TIME_SCALE", "1", float),
        budget_s=number("AUTOGRADER_BUDGET_S", "540", float),
        workers=_get("AUTOGRADER_WORKERS").lower(),
        worker_user=_get("AUTOGRADER_WORKER_USER") or "autograder-worker",
        worker_threads=number("AUTOGRADER_WORKER_THREADS", "1"),
        worker_memory_mib=number("AUTOGRADER_WORKER_MEMORY_MIB", "2048"),
        worker_gpu_memory_mib=number("AUTOGRADER_WORKER_GPU_MEMORY_MIB", "16384"),
        worker_processes=number("AUTOGRADER_WORKER_PROCESSES", "128"),
        worker_file_mib=number("AUTOGRADER_WORKER_FILE_MIB", "64"),
    )
