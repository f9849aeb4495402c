"""Grading one submission of a batch in a grading process of its own session, under a wall-time cap.

``grade_one`` hands the job to a warm grading process (``python -m autograder.batch.warm``, this
same grader, the working directory the folder holding the ``autograder`` package, never the
submission's): idle after an earlier job of the same assignment, or started for it. It grades
with the existing engine (the fork server and a fresh isolated worker per test), keeps its
interpreter, torch and fork server between submissions, and between two of them kills every
process of its worker user and removes what that user left (``WorkerPool.recycle``). When the
cap passes, or the process dies, its whole session is killed and the next job starts another.
``Job.warm = False`` runs ``python -m autograder grade ...`` per submission instead (the cold
path). Whatever happens, it returns an ``Outcome``; it never raises for anything the submission
does. It runs in a thread of the batch's parent or on a Dask worker: a ``Job`` carries either a
local path or the submission's bytes. ``close_servers`` ends the idle warm processes.
"""
from __future__ import annotations

import atexit
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
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
    warm: bool = True                # graded by a warm grading process (see _WarmServer), else a cold one


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
    if job.warm:
        return _grade_warm(job)
    return _grade_cold(job)


def _grade_cold(job: Job) -> Outcome:
    """A fresh ``python -m autograder grade`` for this one submission."""
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
        return _outcome(job, results, text, time.monotonic() - started, proc.returncode)


def _outcome(job: Job, results: Path, text: str, wall: float, returncode: int | None) -> Outcome:
    """What a grading that ended (not timed out) gave: its results.json, read and checked."""
    if not results.is_file():
        return Outcome(job.key, GRADER_ERROR, None, text, wall,
                       f"the grading process exited with code {returncode} without writing results")
    data = results.read_text()
    try:
        failed = json.loads(data).get("extra_data", {}).get("grader_error", False)
    except ValueError:
        return Outcome(job.key, GRADER_ERROR, None, text, wall, "the grading process wrote an unreadable results.json")
    return Outcome(job.key, GRADER_ERROR if failed else GRADED, data, text, wall,
                   "the grader itself failed on this submission (see grader.log)" if failed else "")


# -- warm gradings: one grading process graded submission after submission ------------------------
class _WarmServer:
    """A ``python -m autograder.batch.warm`` process (its own session) for one assignment and device:
    it grades one job at a time, keeps its interpreter, torch and fork server between jobs, and
    recycles its worker pool between them (see ``autograder.batch.warm``). Its stdout and stderr
    go to a file of ours; each job's part of it is that job's grader.log."""

    def __init__(self, key: tuple[str, str, str]):
        assignment, device, project = key
        self.key = key
        self.log = tempfile.TemporaryFile()
        self._logged = 0
        self._buffer = b""
        reply_r, reply_w = os.pipe()
        env = dict(os.environ)
        if project:
            env["AUTOGRADER_PROJECT"] = project
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "autograder.batch.warm", assignment, device, str(reply_w)],
                                         cwd=GRADER_HOME, env=env, stdin=subprocess.PIPE, stdout=self.log,
                                         stderr=subprocess.STDOUT, pass_fds=[reply_w], start_new_session=True)
        except BaseException:
            os.close(reply_r)
            self.log.close()
            raise
        finally:
            os.close(reply_w)
        self.replies = reply_r

    def grade(self, submission: Path, results: Path, timeout: float) -> str:
        """"done", "timeout" (the server is then killed) or "died"."""
        import select
        try:
            self.proc.stdin.write(json.dumps({"submission": str(submission), "results": str(results)}).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            return "died"
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return "timeout"
            if not select.select([self.replies], [], [], left)[0]:
                continue
            chunk = os.read(self.replies, 4096)
            if not chunk:
                return "died"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return "done" if json.loads(line).get("done") else "died"

    def output(self) -> str:
        """What it printed since the last call (the last 20000 characters)."""
        end = os.fstat(self.log.fileno()).st_size
        start = max(self._logged, end - 80000)
        data = os.pread(self.log.fileno(), end - start, start)
        self._logged = end
        return data.decode(errors="replace")[-20000:]

    def kill(self) -> None:
        _kill_session(self.proc)
        self.proc.wait()

    def close(self) -> None:
        """Ends it: EOF on its stdin, then its session is killed whatever it left."""
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()
        os.close(self.replies)
        self.log.close()


_IDLE: dict[tuple[str, str, str], list[_WarmServer]] = {}
_IDLE_LOCK = threading.Lock()


def _grade_warm(job: Job) -> Outcome:
    """Grade ``job`` in an idle warm server of its kind (else a new one), under the job's cap."""
    started = time.monotonic()
    key = (job.assignment, job.device, job.project or "")
    with _IDLE_LOCK:
        server = _IDLE.get(key, []).pop() if _IDLE.get(key) else None
    if server is None:
        server = _WarmServer(key)
    with tempfile.TemporaryDirectory(prefix="autograder-batch-") as tmp:
        scratch = Path(tmp)
        results = scratch / "results.json"
        state = server.grade(_materialize(job, scratch), results, job.timeout_s)
        text = server.output()
        wall = time.monotonic() - started
        if state == "timeout":
            server.close()
            return Outcome(job.key, TIMED_OUT, None, text, wall,
                           f"grading ran past the batch's cap of {job.timeout_s:g} s and was stopped")
        if state == "done":
            with _IDLE_LOCK:
                _IDLE.setdefault(key, []).append(server)
            returncode = 0
        else:
            server.kill()
            text = (text + server.output())[-20000:]
            returncode = server.proc.returncode
            server.close()
        return _outcome(job, results, text, wall, returncode)


def close_servers() -> None:
    """End every idle warm server (a batch calls this when its jobs are done; also at exit)."""
    with _IDLE_LOCK:
        servers = [s for group in _IDLE.values() for s in group]
        _IDLE.clear()
    for server in servers:
        server.close()


atexit.register(close_servers)
