"""Starting, watching and killing worker processes (the trusted side of the fork server).

``WorkerPool`` keeps one zygote (see ``autograder.untrusted.zygote``) and hands out a
fresh ``WorkerProcess`` per test. A worker is killed as a whole process group with
SIGKILL; its stdout and stderr are drained continuously by a thread into a capped buffer.
"""
from __future__ import annotations

import collections
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import termios
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
        self._busy = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                chunk = os.read(self.fd, 65536)
                self._busy = True
                if not chunk:
                    break
                with self._lock:
                    room = self.cap - len(self.data)
                    self.data += chunk[:max(room, 0)]
                    self.dropped += max(len(chunk) - max(room, 0), 0)
                self._busy = False
        except OSError:
            pass
        finally:
            os.close(self.fd)
            self._busy = False

    def _unread(self) -> int:
        try:
            return struct.unpack("i", fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0"))[0]
        except OSError:
            return 0

    def text(self, wait: float = 0.0) -> str:
        """Everything captured so far, once what is already in the pipe has been read (up to ``wait`` s)."""
        deadline = time.monotonic() + wait
        while self._thread.is_alive() and time.monotonic() < deadline:
            if not self._busy and self._unread() == 0:
                time.sleep(0.001)
                if not self._busy and self._unread() == 0:
                    break
            time.sleep(0.001)
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


def group_rss_bytes(pgid: int) -> int:
    """Resident memory summed over the processes of a process group (Linux /proc)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[21]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            pass
    return total


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MEMORY_POLL_S = 0.1


class WorkerProcess:
    """One forked worker: its pid (also its process group), request socket and output.

    A watchdog thread kills the whole group when its resident memory passes
    ``memory_limit`` bytes (``killed_for`` then says so), so a submission that allocates
    without bound fails its test instead of taking the grader down.
    """

    def __init__(self, pool: "WorkerPool", pid: int, sock: socket.socket, output: OutputDrain,
                 memory_limit: int | None = None):
        self.pool = pool
        self.pid = pid
        self.sock = sock
        self.output = output
        self.killed = False
        self.killed_for: str | None = None
        self.peak_rss = 0
        if memory_limit:
            threading.Thread(target=self._watch_memory, args=(memory_limit,), daemon=True).start()

    def _watch_memory(self, limit: int) -> None:
        while not self.killed:
            rss = group_rss_bytes(self.pid)
            self.peak_rss = max(self.peak_rss, rss)
            if rss > limit:
                self.killed_for = f"it used more than {limit // 2**20} MiB of memory"
                self._signal_group()
                return
            time.sleep(MEMORY_POLL_S)

    def _signal_group(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        if not self.killed:
            self.killed = True
            self._signal_group()
            self.sock.close()

    def exit_status(self, wait: float = 2.0) -> int | None:
        """Exit code (negative: signal) once the zygote has reaped the worker, or None."""
        return self.pool.exit_status(self.pid, wait)


class _Pending:
    """A worker asked of the fork server whose "spawned" answer has not been read yet."""

    def __init__(self, key: tuple, sock: socket.socket, out_fd: int):
        self.key = key
        self.sock = sock
        self.out_fd = out_fd


class WorkerPool:
    """A fork server and the workers it starts; use as a context manager.

    While a test runs, the next test's worker is already being forked (a spare), so a
    test pays neither the fork nor the wait for it.
    """

    def __init__(self, output_cap: int = 64 * 1024, libraries: tuple[str, ...] = (),
                 memory_limit_mib: int | None = None):
        self.output_cap = output_cap
        if memory_limit_mib is None:
            memory_limit_mib = int(os.environ.get("AUTOGRADER_WORKER_MEMORY_MIB", "2048"))
        self.memory_limit = memory_limit_mib * 2**20 if memory_limit_mib > 0 else None
        self.libraries = tuple(libraries)   # imported by the fork server; usable through self.library
        self._proc: subprocess.Popen | None = None
        self._ctrl: socket.socket | None = None
        self._ready = False
        self._spawned: collections.deque[int] = collections.deque()
        self._exits: dict[int, int] = {}
        self._spare: _Pending | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the fork server ------------------------------------------------------------
    def start(self) -> "WorkerPool":
        """Start the fork server now without waiting for it (it warms up while the caller works)."""
        with self._lock:
            if self._proc is None:
                self._start()
        return self

    def _start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        code = (f"import sys; sys.path.insert(0, {PACKAGE_PARENT!r}); "
                f"from autograder.untrusted.zygote import main; main({child.fileno()}, {list(self.libraries)!r})")
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", code], pass_fds=[child.fileno()],
            env=worker_env(), stdin=subprocess.DEVNULL, start_new_session=True)
        child.close()
        self._ctrl = parent
        self._ready = False
        self._spawned.clear()

    def _ensure_zygote(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            self._stop_zygote()
            self._start()
        if not self._wait_for(lambda: self._ready, SPAWN_TIMEOUT_S):
            self._stop_zygote()
            raise WorkerStartError("the worker fork server did not start")

    def _pump(self, timeout: float) -> bool:
        """Read one control message and file it; False when none came (timeout or server gone)."""
        if self._ctrl is None:
            return False
        self._ctrl.settimeout(max(timeout, 0.0001))
        try:
            msg = self._ctrl.recv(65536)
        except OSError:   # socket.timeout included
            return False
        if not msg:
            return False
        data = json.loads(msg)
        if "ready" in data:
            self._ready = True
        if "spawned" in data:
            self._spawned.append(data["spawned"])
        if "exited" in data:
            self._exits[data["exited"]] = data["status"]
        return True

    def _wait_for(self, condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0 or not self._pump(left):
                return condition()
        return True

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
        self._ready = False

    # -- workers ---------------------------------------------------------------------
    def _request(self, key: tuple) -> _Pending | None:
        staged_dir, modules, device = key
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        request = json.dumps({"staged_dir": staged_dir, "modules": json.loads(modules), "device": device,
                              "libraries": list(self.libraries)})
        try:
            socket.send_fds(self._ctrl, [request.encode()], [theirs.fileno(), out_w])
            return _Pending(key, ours, out_r)
        except OSError:
            ours.close()
            os.close(out_r)
            return None
        finally:
            theirs.close()
            os.close(out_w)

    def _collect(self, pending: _Pending) -> WorkerProcess | None:
        if not self._wait_for(lambda: bool(self._spawned), SPAWN_TIMEOUT_S):
            pending.sock.close()
            os.close(pending.out_fd)
            return None
        pid = self._spawned.popleft()
        return WorkerProcess(self, pid, pending.sock, OutputDrain(pending.out_fd, self.output_cap), self.memory_limit)

    def spawn(self, staged_dir: str, modules: dict, device: str) -> WorkerProcess:
        """A fresh worker for ``staged_dir`` (its own process group, its stdout/stderr drained).

        ``modules`` maps module names to load options (JSON data, see untrusted.worker.Worker).
        """
        key = (staged_dir, json.dumps(modules, sort_keys=True), device)
        with self._lock:
            worker = None
            spare, self._spare = self._spare, None
            if spare is not None:
                worker = self._collect(spare)
                if worker is not None and spare.key != key:
                    worker.kill()
                    worker = None
            for _attempt in (1, 2):
                if worker is not None:
                    break
                self._ensure_zygote()
                pending = self._request(key)
                worker = self._collect(pending) if pending is not None else None
                if worker is None:
                    self._stop_zygote()   # it died (perhaps killed by a student): start a new one
            if worker is None:
                raise WorkerStartError("could not start a worker process")
            if self._ctrl is not None and self._proc is not None and self._proc.poll() is None:
                self._spare = self._request(key)
            return worker

    def exit_status(self, pid: int, wait: float) -> int | None:
        """Exit code of a worker (negative: signal), once the fork server has reaped it."""
        with self._lock:
            self._wait_for(lambda: pid in self._exits, wait)
            return self._exits.pop(pid, None)

    def close(self) -> None:
        with self._lock:
            spare, self._spare = self._spare, None
            if spare is not None:
                spare.sock.close()   # the forked spare reads EOF and exits
                os.close(spare.out_fd)
            self._stop_zygote()
