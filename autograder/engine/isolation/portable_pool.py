"""The portable worker backend: a fresh Python process per test, on Linux, macOS or Windows.

``backend.new_pool()`` chooses it off Linux, or anywhere with ``AUTOGRADER_WORKERS=portable``
(CI runs the suites' visible tests through it on Linux so it cannot rot). It is for a
student's ``autograder check`` on their own machine: each worker is ``sys.executable``
started as a plain subprocess (no fork, no descriptor passing, nothing Linux-only), running
``autograder.worker.portable_worker`` from the pool's copy of our worker-side code. The
worker connects back to this pool's listener on 127.0.0.1 (an ephemeral port), proves itself
with the random token it was given on stdin, and then speaks the same request protocol as a
forked worker (``worker.worker.serve``), so tests get the same verdicts. Its stdout and
stderr go to a pipe drained into the test's output, never onto the protocol socket.

What it keeps of the Linux backend: a fresh process and HOME/TMPDIR per test, in the state a
forked worker starts in (warmed up as the fork server is: torch, the op log, the assignment's
libraries; workers start ahead while earlier tests run, so this costs little test time), the
test's deadline (the worker's process group on POSIX, its process tree on Windows, is
killed), a crash or an exit failing only its test, the output cap, the stack dump of a hung
call (SIGUSR1 on POSIX; none on Windows), and a memory limit watched from here (best effort:
resident memory of the process group from /proc on Linux, of the process from ``ps`` on
macOS, its working set on Windows). Workers end themselves when this process dies. What it
does not have: any sandbox (no user switch, no network block, no resource limits, no
subreaper): student code runs as the student, on the student's own machine.
"""
from __future__ import annotations

import collections
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time

from autograder.engine.isolation.workers import (MEMORY_POLL_S, PACKAGE_DIR, SPAWN_TIMEOUT_S, OutputDrain, WorkerPool,
                                        WorkerProcess, WorkerStartError, make_home, new_worker_scratch, worker_env)
from autograder.wire.framing import READY_MARK
from autograder.wire import framing

HELLO_TIMEOUT_S = 10.0   # a connection to our listener must say who it is within this time
AHEAD = 1 if (os.cpu_count() or 1) < 2 else max(2, min(3, os.cpu_count() // 2))   # workers starting ahead
READY_TEXT = READY_MARK.decode()
WINDOWS = os.name == "nt"


def child_command(runtime: str) -> list[str]:
    """The worker's command line: our interpreter, isolated, running the pool's copy of our code."""
    code = (f"import sys; sys.path.insert(0, {runtime!r}); "
            "from autograder.worker.portable_worker import main; main()")
    return [sys.executable, "-I", "-B", "-X", "utf8", "-c", code]


def library_path() -> list[str]:
    """This process's module path for the worker, without the working folder and the folder
    holding the grader (the student's folder, when run from the bundle): the worker finds the
    same installed libraries, and the student's files only as staged (as on the server)."""
    import site
    sites = [*getattr(site, "getsitepackages", list)(), site.getusersitepackages()]
    keep = {os.path.abspath(p) for p in sites}
    local = {os.path.abspath(os.getcwd()), str(PACKAGE_DIR.parent)}
    return [p for p in sys.path if p and (os.path.abspath(p) in keep or os.path.abspath(p) not in local)]


def portable_env(scratch: str) -> dict:
    """``worker_env`` plus what Python itself needs on Windows; HOME and temp files in ``scratch``."""
    env = worker_env(scratch)
    if WINDOWS:
        for key in ("SYSTEMROOT", "WINDIR", "PATH", "PATHEXT", "COMSPEC", "PROCESSOR_ARCHITECTURE",
                    "NUMBER_OF_PROCESSORS"):
            if key in os.environ:
                env[key] = os.environ[key]
        env.update(USERPROFILE=scratch, TEMP=scratch, TMP=scratch)
    if "KMP_DUPLICATE_LIB_OK" in os.environ:   # conda's OpenMP on macOS may need it to import torch
        env["KMP_DUPLICATE_LIB_OK"] = os.environ["KMP_DUPLICATE_LIB_OK"]
    return env


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the worker's process group (POSIX: it leads a session of its own); on Windows,
    end its process tree (taskkill /T), then the process. Then close its stdin (which would
    also end it, see ``worker.portable_worker``, but with exit code 0)."""
    if not WINDOWS:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    else:
        if proc.poll() is None:
            try:
                subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True, timeout=30)
            except (OSError, subprocess.SubprocessError):
                pass
        try:
            proc.kill()
        except OSError:
            pass
    try:
        proc.stdin.close()
    except OSError:
        pass


def process_memory(pid: int) -> int:
    """Resident memory of one process, in bytes (0 when it cannot be read): ``ps`` on POSIX,
    the working set on Windows."""
    if WINDOWS:
        return _windows_working_set(pid)
    try:
        out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True, timeout=5).stdout
        return int(out.split()[0]) * 1024 if out.split() else 0
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0


def _windows_working_set(pid: int) -> int:
    try:
        import ctypes
        from ctypes import wintypes

        class Counters(ctypes.Structure):   # PROCESS_MEMORY_COUNTERS
            _fields_ = [("cb", wintypes.DWORD), ("PageFaultCount", wintypes.DWORD)] + [
                (name, ctypes.c_size_t) for name in (
                    "PeakWorkingSetSize", "WorkingSetSize", "QuotaPeakPagedPoolUsage", "QuotaPagedPoolUsage",
                    "QuotaPeakNonPagedPoolUsage", "QuotaNonPagedPoolUsage", "PagefileUsage", "PeakPagefileUsage")]

        kernel32 = ctypes.WinDLL("kernel32")
        kernel32.OpenProcess.restype = wintypes.HANDLE
        kernel32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
        kernel32.K32GetProcessMemoryInfo.argtypes = [wintypes.HANDLE, ctypes.POINTER(Counters), wintypes.DWORD]
        kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
        handle = kernel32.OpenProcess(0x1000, False, pid)   # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return 0
        try:
            counters = Counters()
            counters.cb = ctypes.sizeof(Counters)
            ok = kernel32.K32GetProcessMemoryInfo(handle, ctypes.byref(counters), counters.cb)
            return int(counters.WorkingSetSize) if ok else 0
        finally:
            kernel32.CloseHandle(handle)
    except (OSError, AttributeError, ValueError):
        return 0


class PortableOutput(OutputDrain):
    """A worker's captured output, without what it printed while starting (before ``READY_MARK``).

    Once the process has ended, ``text(wait)`` waits for the pipe's end (everything it wrote)
    rather than asking the pipe what is unread, which only POSIX can.
    """

    def __init__(self, fd: int, cap: int, proc: subprocess.Popen):
        self.proc = proc
        super().__init__(fd, cap)

    def text(self, wait: float = 0.0) -> str:
        if wait and self.proc.poll() is not None:
            self._thread.join(wait)
        text = super().text(wait)
        _, mark, after = text.partition(READY_TEXT)
        return after if mark else text


class PortableWorkerProcess(WorkerProcess):
    """One worker subprocess: ``WorkerProcess``'s interface (``sock``, ``output``, ``kill()``,
    ``exit_status()``, ``killed_for``, ``dump_stack()``) over a ``subprocess.Popen``."""

    memory_poll_s = MEMORY_POLL_S if sys.platform == "linux" else 0.5   # elsewhere each look starts ps

    def __init__(self, pool: "PortableWorkerPool", proc: subprocess.Popen, sock: socket.socket,
                 output: PortableOutput, memory_limit: int | None = None, gpu_memory_limit: int | None = None):
        self.proc = proc
        super().__init__(pool, proc.pid, sock, output, memory_limit, gpu_memory_limit)

    def _usage(self) -> tuple[set[int], int]:
        if sys.platform == "linux":   # the fork backend's reading of /proc: its process group
            return super()._usage()
        return {self.pid}, process_memory(self.pid)

    def _signal_group(self) -> None:
        kill_tree(self.proc)
        try:
            self.proc.wait(timeout=10)   # reaped: its exit status known, its output and files closed
        except subprocess.TimeoutExpired:
            pass

    def dump_stack(self, wait: float = 1.0) -> None:
        """SIGUSR1 (faulthandler) as in a forked worker; Windows has no such signal: nothing."""
        if hasattr(signal, "SIGUSR1"):
            super().dump_stack(wait)

    def exit_status(self, wait: float = 2.0) -> int | None:
        """Exit code (negative: the signal that ended it, on POSIX), or None if still running."""
        try:
            return self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None


class _Starting:
    """A worker process started but not yet handed to a test."""

    def __init__(self, proc: subprocess.Popen, token: str, output: PortableOutput, scratch: str):
        self.proc = proc
        self.token = token
        self.output = output
        self.scratch = scratch   # its own HOME and TMPDIR


class PortableWorkerPool(WorkerPool):
    """``WorkerPool``'s interface (``start``, ``spawn``, ``describe``, ``close``, ``scratch``,
    ``user``, ``libraries``...) with one subprocess per test; use as a context manager.

    ``AHEAD`` workers are always starting ahead (from ``start()``, then from each ``spawn``),
    so a test waits only for what is left of its worker's start-up.
    """

    def __init__(self, output_cap: int = 64 * 1024, libraries: tuple[str, ...] = (),
                 memory_limit_mib: int | None = None, preload: tuple[str, ...] = ()):
        super().__init__(output_cap, libraries, memory_limit_mib, preload)
        self.no_switch_reason = "portable workers: no user switch"
        self.network_blocked = False
        self._listener: socket.socket | None = None
        self._port = 0
        self._ahead: collections.deque[_Starting] = collections.deque()   # oldest first
        self._starting: dict[str, _Starting] = {}        # by token: started, not yet handed out
        self._connected: dict[str, socket.socket] = {}   # by token: connected, not yet handed out
        self._workers: list[PortableWorkerProcess] = []

    def start(self) -> "PortableWorkerPool":
        """Open the listener and start the first worker now (it imports torch while the caller works)."""
        with self._lock:
            self._open()
        return self

    def _open(self) -> None:
        if self._listener is None:
            self._home = make_home(None)
            self._listener = socket.create_server(("127.0.0.1", 0), backlog=16)
            self._port = self._listener.getsockname()[1]
        while len(self._ahead) < AHEAD:
            self._ahead.append(self._launch())

    def describe(self) -> str:
        if not self.memory_limit:
            memory = "no memory limit"
        else:
            how = {"linux": "resident memory of its process group, checked every 0.1 s",
                   "win32": "its working set, checked every 0.5 s"}.get(sys.platform, "its resident memory "
                                                                        "from ps, checked every 0.5 s")
            memory = f"memory limit {self.memory_limit // 2**20} MiB ({how}; best effort)"
        return ("portable workers: a fresh Python process per test, NO sandbox (no user switch, network not "
                "blocked, no file or process limits: for checking your own work on your own machine); " + memory)

    # -- worker processes --------------------------------------------------------------
    def _launch(self) -> _Starting:
        token = secrets.token_hex(16)
        out_r, out_w = os.pipe()
        group = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if WINDOWS else {"start_new_session": True}
        runtime = os.path.join(self._home, "runtime")
        scratch = new_worker_scratch(self.scratch, None)
        try:
            proc = subprocess.Popen(child_command(runtime), stdin=subprocess.PIPE, stdout=out_w, stderr=out_w,
                                    cwd=runtime, env=portable_env(scratch), **group)
        except OSError as exc:
            os.close(out_r)
            shutil.rmtree(scratch, ignore_errors=True)
            raise WorkerStartError(f"could not start a worker process ({sys.executable}): {exc}") from None
        finally:
            os.close(out_w)
        starting = _Starting(proc, token, PortableOutput(out_r, self.output_cap, proc), scratch)
        self._starting[token] = starting
        boot = {"port": self._port, "token": token, "path": library_path(), "libraries": self.warm_imports}
        try:   # stdin stays open: the worker ends itself when it ends (see worker.portable_worker)
            proc.stdin.write(json.dumps(boot).encode() + b"\n")
            proc.stdin.flush()
        except OSError:   # it died at once: claiming it says so
            pass
        return starting

    def _accept(self, timeout: float) -> None:
        """Take one connection, if one comes within ``timeout``, and file it under its token."""
        self._listener.settimeout(max(timeout, 0.001))
        try:
            conn, _ = self._listener.accept()
        except OSError:   # socket.timeout included
            return
        try:
            header, _ = framing.recv_frame(conn, time.monotonic() + HELLO_TIMEOUT_S, max_payload=0)
        except (framing.Deadline, framing.PeerClosed, framing.FrameError):
            conn.close()
            return
        token = header.get("token")
        if isinstance(token, str) and token in self._starting and token not in self._connected:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._connected[token] = conn
        else:   # not a process of ours
            conn.close()

    def _claim(self, starting: _Starting, deadline: float) -> socket.socket | None:
        """``starting``'s connection, once it is ready; None if it died or the deadline passed."""
        while starting.token not in self._connected:
            left = deadline - time.monotonic()
            if left <= 0 or starting.proc.poll() is not None:
                self._accept(0.05)   # a connection it made before dying is still worth filing
                break
            self._accept(min(left, 0.2))
        return self._connected.pop(starting.token, None)

    def _abandon(self, starting: _Starting) -> None:
        self._starting.pop(starting.token, None)
        sock = self._connected.pop(starting.token, None)
        if sock is not None:
            sock.close()
        kill_tree(starting.proc)
        try:
            starting.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        shutil.rmtree(starting.scratch, ignore_errors=True)

    @staticmethod
    def _why_not_ready(starting: _Starting) -> str:
        code = starting.proc.poll()
        said = starting.output.text(wait=1.0).strip()[-1500:]
        what = (f"a worker process exited with code {code} before it was ready" if code is not None
                else f"a worker process was not ready within {SPAWN_TIMEOUT_S:g} s")
        last = said.splitlines()[-1].strip() if said else ""
        return what + (f" ({last[:200]}); it printed:\n{said}" if said else "")

    def spawn(self, staged_dir: str, modules: dict, device: str, op_log: bool = False) -> PortableWorkerProcess:
        """A fresh worker process for ``staged_dir`` (see ``WorkerPool.spawn``; every portable worker
        has warmed its op log up before it connects, so ``op_log`` asks for nothing more)."""
        setup = {"staged_dir": staged_dir, "modules": modules, "device": device, "libraries": list(self.libraries)}
        with self._lock:
            self._open()
            self._workers = [w for w in self._workers if not w.killed]
            why = ""
            for _attempt in (1, 2):
                starting = self._ahead.popleft() if self._ahead else self._launch()
                sock = self._claim(starting, time.monotonic() + SPAWN_TIMEOUT_S)
                if sock is not None:
                    try:
                        framing.send_frame(sock, {"setup": setup}, deadline=time.monotonic() + HELLO_TIMEOUT_S)
                    except (framing.Deadline, framing.PeerClosed):
                        sock.close()
                        sock = None
                if sock is None:
                    why = self._why_not_ready(starting)
                    self._abandon(starting)
                    continue
                del self._starting[starting.token]
                gpu_limit = self.gpu_memory_limit if device.startswith("cuda") else None
                worker = PortableWorkerProcess(self, starting.proc, sock, starting.output, self.memory_limit, gpu_limit)
                worker.scratch = starting.scratch
                self._workers.append(worker)
                self._open()   # the next tests' workers start while this test runs
                return worker
            raise WorkerStartError(f"could not start a worker process: {why}")

    def close(self) -> None:
        with self._lock:
            self._ahead.clear()
            for starting in list(self._starting.values()):
                self._abandon(starting)
            for worker in self._workers:
                worker.kill()
            self._workers = []
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            if self._home is not None:
                shutil.rmtree(self._home, ignore_errors=True)
                self._home = None
