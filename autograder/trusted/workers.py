"""Starting, watching and killing worker processes (the trusted side of the fork server).

``WorkerPool`` keeps one zygote (see ``autograder.untrusted.zygote``) and hands out a
fresh ``WorkerProcess`` per test. A worker is killed as a whole process group with
SIGKILL; its stdout and stderr are drained continuously by a thread into a capped buffer.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
SPAWN_TIMEOUT_S = 120.0


class WorkerStartError(Exception):
    """The fork server could not give us a worker."""


class OutputDrain:
    """Reads a pipe until EOF on a thread, keeping the first ``cap`` bytes and counting the rest."""

    def __init__(self, fd: int, cap: int):
        self.fd = fd
        self.cap = cap
        self.data = bytearray()
        self.dropped = 0
        self._cursor = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                with self._lock:
                    room = self.cap - len(self.data)
                    self.data += chunk[:max(room, 0)]
                    self.dropped += max(len(chunk) - max(room, 0), 0)
        except OSError:
            pass
        finally:
            os.close(self.fd)

    def text(self, wait: float = 0.0) -> str:
        """Everything captured so far (waits up to ``wait`` s for the writer to finish)."""
        if wait:
            self._thread.join(wait)
        with self._lock:
            text = self.data.decode("utf-8", errors="replace")
            dropped = self.dropped
        if dropped:
            text += f"\n[... {dropped} more bytes of output were cut]"
        return text


def worker_env() -> dict:
    """A minimal environment: no secrets, no CI/grader markers, no PYTHON* variables."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp",
           "OMP_NUM_THREADS": os.environ.get("AUTOGRADER_WORKER_THREADS", "1"),
           "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    for key in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


class WorkerProcess:
    """One forked worker: its pid (also its process group), request socket and output."""

    def __init__(self, pool: "WorkerPool", pid: int, sock: socket.socket, output: OutputDrain):
        self.pool = pool
        self.pid = pid
        self.sock = sock
        self.output = output
        self.killed = False

    def kill(self) -> None:
        if not self.killed:
            self.killed = True
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.sock.close()

    def exit_status(self, wait: float = 2.0) -> int | None:
        """Exit code (negative: signal) once the zygote has reaped the worker, or None."""
        return self.pool.exit_status(self.pid, wait)


class WorkerPool:
    """A fork server and the workers it starts; use as a context manager."""

    def __init__(self, output_cap: int = 64 * 1024):
        self.output_cap = output_cap
        self._proc: subprocess.Popen | None = None
        self._ctrl: socket.socket | None = None
        self._exits: dict[int, int] = {}
        self._ready = False
        self._lock = threading.Lock()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        code = (f"import sys; sys.path.insert(0, {PACKAGE_PARENT!r}); "
                f"from autograder.untrusted.zygote import main; main({child.fileno()})")
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", code], pass_fds=[child.fileno()],
            env=worker_env(), stdin=subprocess.DEVNULL, start_new_session=True)
        child.close()
        self._ctrl = parent
        self._ready = False

    def start(self) -> "WorkerPool":
        """Start the fork server now without waiting for it (it warms up while the caller works)."""
        with self._lock:
            if self._proc is None:
                self._start()
        return self

    def _wait_ready(self) -> None:
        if not self._ready:
            if self._read_control("ready", SPAWN_TIMEOUT_S) is None:
                self._stop_zygote()
                raise WorkerStartError("the worker fork server did not start")
            self._ready = True

    def _read_control(self, key: str, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._ctrl.settimeout(left)
            try:
                msg = self._ctrl.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                return None
            if not msg:
                return None
            data = json.loads(msg)
            if "exited" in data:
                self._exits[data["exited"]] = data["status"]
            if key in data:
                return data

    def spawn(self, staged_dir: str, modules: list[str], device: str) -> WorkerProcess:
        with self._lock:
            for attempt in (1, 2):
                if self._proc is None or self._proc.poll() is not None:
                    self._stop_zygote()
                    self._start()
                self._wait_ready()
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                out_r, out_w = os.pipe()
                request = json.dumps({"staged_dir": staged_dir, "modules": modules, "device": device})
                try:
                    socket.send_fds(self._ctrl, [request.encode()], [theirs.fileno(), out_w])
                    reply = self._read_control("spawned", SPAWN_TIMEOUT_S)
                except OSError:
                    reply = None
                theirs.close()
                os.close(out_w)
                if reply is not None:
                    return WorkerProcess(self, reply["spawned"], ours, OutputDrain(out_r, self.output_cap))
                ours.close()
                os.close(out_r)
                self._stop_zygote()   # it died (perhaps killed by a student): start a new one
            raise WorkerStartError("could not start a worker process")

    def exit_status(self, pid: int, wait: float) -> int | None:
        with self._lock:
            if pid not in self._exits and self._ctrl is not None:
                deadline = time.monotonic() + wait
                while pid not in self._exits and time.monotonic() < deadline:
                    if self._read_control("exited", deadline - time.monotonic()) is None:
                        break
            return self._exits.pop(pid, None)

    def _stop_zygote(self) -> None:
        if self._ctrl is not None:
            self._ctrl.close()
            self._ctrl = None
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._proc.wait()
            self._proc = None

    def close(self) -> None:
        with self._lock:
            self._stop_zygote()
