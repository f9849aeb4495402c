"""Grading one submission of a batch in its own process, under a wall-time cap.

``grade_one`` runs ``python -m autograder grade ...`` (this same grader: the working directory
is the folder holding the ``autograder`` package, never the submission's) in a new session (the existing
engine: the fork server and isolated workers as for any grading) and kills the whole
session when the cap passes. Whatever happens, it returns an ``Outcome``; it never
raises for anything the submission does. It runs in a thread of the batch's parent or
on a Dask worker: a ``Job`` carries either a local path or the submission's bytes.
"""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import autograder
from autograder.batch.model import GRADED, GRADER_ERROR, TIMED_OUT, Outcome

GRADER_HOME = Path(autograder.__file__).resolve().parent.parent


@dataclass
class Job:
    assignment: str
    key: str
    path: str | None = None          # the submission on this machine (local runs)
    payload: bytes | None = None     # or its bytes (cluster runs): a zip for a folder
    name: str = ""                   # the file name the payload had
    timeout_s: float = 600.0
    device: str = "cpu"
    project: str | None = None       # AUTOGRADER_PROJECT for the grading process


def pack(path: Path) -> tuple[bytes, str]:
    """A submission as bytes for another machine: a folder becomes a zip (symlinks left out)."""
    path = Path(path)
    if path.is_file():
        return path.read_bytes(), path.name
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for item in sorted(path.rglob("*")):
            if item.is_file() and not item.is_symlink():
                zf.write(item, item.relative_to(path).as_posix())
    return buffer.getvalue(), path.name + ".zip"


def _materialize(job: Job, scratch: Path) -> Path:
    if job.path is not None:
        return Path(job.path)
    folder = scratch / "submission"
    folder.mkdir()
    name = Path(job.name).name or "upload.zip"
    (folder / name).write_bytes(job.payload or b"")
    return folder


def _kill_session(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def grade_one(job: Job) -> Outcome:
    """Grade ``job`` in a child process; the Outcome says graded, timed out or grader error."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="autograder-batch-") as tmp:
        scratch = Path(tmp)
        results = scratch / "results.json"
        env = dict(os.environ)
        if job.project:
            env["AUTOGRADER_PROJECT"] = job.project
        env["AUTOGRADER_SUBMISSION"] = str(_materialize(job, scratch))   # not on a command line others can read
        command = [sys.executable, "-m", "autograder", "grade", job.assignment, "-",
                   "--results", str(results), "--device", job.device]
        proc = subprocess.Popen(command, cwd=GRADER_HOME, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            log, _ = proc.communicate(timeout=job.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_session(proc)
            log, _ = proc.communicate()
            return Outcome(job.key, TIMED_OUT, None, log.decode(errors="replace")[-20000:],
                           time.monotonic() - started,
                           f"grading ran past the batch's cap of {job.timeout_s:g} s and was stopped")
        finally:
            _kill_session(proc)          # anything the grader left behind in its session
        text = log.decode(errors="replace")[-20000:]
        wall = time.monotonic() - started
        if not results.is_file():
            return Outcome(job.key, GRADER_ERROR, None, text, wall,
                           f"the grading process exited with code {proc.returncode} without writing results")
        data = results.read_text()
        try:
            failed = json.loads(data).get("extra_data", {}).get("grader_error", False)
        except ValueError:
            return Outcome(job.key, GRADER_ERROR, None, text, wall, "the grading process wrote an unreadable results.json")
        return Outcome(job.key, GRADER_ERROR if failed else GRADED, data, text, wall,
                       "the grader itself failed on this submission (see grader.log)" if failed else "")
