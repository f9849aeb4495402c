"""Starting, watching and killing worker processes (the trusted side of the fork server).

``WorkerPool`` keeps one zygote (see ``autograder.worker.zygote``) and hands out a
fresh ``WorkerProcess`` per test. A worker is killed as a whole process group with
SIGKILL; its stdout and stderr are drained continuously by a thread into a capped buffer.

When the grader runs as root, the pool holds a worker user of its own (see
``engine.isolation.privileges``): workers switch to it before their first request, and after each
worker every process of that user is killed. The fork server imports the worker-side code
from a copy of ``autograder/{worker,wire,common}`` in the pool's own folder, so the grader's
source folder (hidden tests, reference code) can stay unreadable to workers; workers get a
scratch folder (their HOME and TMPDIR) and nothing else writable.

This is the Linux backend (the server's). ``new_pool()`` chooses it, or the portable one
(``engine.isolation.portable_pool``: a fresh Python process per test, no sandbox) off Linux or when
``AUTOGRADER_WORKERS=portable``. Nothing Linux-only is imported here at module level, so the
portable path can import this module on macOS and Windows.

Length: the fork-server pool (start, spawn, watch, kill, recycle) and its worker handles are one state machine around one socket protocol.
"""
from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from autograder import settings
from autograder.engine.isolation import privileges
from autograder.engine.isolation.gpu_memory import GpuMemory
from autograder.wire.policy import SandboxPolicy

PACKAGE_DIR = Path(__file__).resolve().parents[2]
WORKER_SIDE = ("__init__.py", "common", "worker", "wire")   # all a worker imports of ours
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
            import fcntl
            import termios
        except ImportError:   # not POSIX: nothing to ask (the portable drain waits for the pipe's end)
            return 0
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


def worker_env(scratch: str = "/tmp") -> dict:
    """A minimal environment: no secrets, no CI/grader markers, no PYTHON* variables."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": scratch, "TMPDIR": scratch,
           "OMP_NUM_THREADS": str(settings.current().worker_threads),
           "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    for key in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def group_usage(pgid: int) -> tuple[set[int], int]:
    """A worker's processes (its process group, and its descendants that left the group) and
    the memory they hold, in bytes: resident set for one process, proportional set (shared
    pages split between the sharers) for several (Linux /proc)."""
    stats: dict[int, tuple[int, int, int]] = {}   # pid -> (ppid, pgid, rss pages)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            stats[int(entry)] = (int(fields[1]), int(fields[2]), int(fields[21]))
        except (OSError, IndexError, ValueError):
            pass
    pids = {pid for pid, (_, group, _) in stats.items() if group == pgid}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    stack = [pgid]
    while stack:
        pid = stack.pop()
        for child in children.get(pid, ()):
            if child not in pids:
                pids.add(child)
                stack.append(child)
    if len(pids) == 1:
        return pids, sum(stats[p][2] for p in pids if p in stats) * PAGE_SIZE
    # forked copies share their pages: count each page once (PSS), not once per process (RSS)
    return pids, sum(_pss_bytes(p) for p in pids)


def read_small_files(folder: str, names, limit: int = 64 * 1024) -> dict[str, bytes]:
    """``{name: bytes}`` of the regular files ``names`` directly in ``folder`` (links not followed)."""
    out = {}
    for name in names:
        try:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                data = os.read(fd, limit + 1)
                if len(data) <= limit:
                    out[name] = data
        finally:
            os.close(fd)
    return out


def memfd_bytes(pids) -> int:
    """Bytes of the memfds (anonymous in-memory files) ``pids`` hold open, each counted once: an
    unmapped memfd is memory no process's RSS shows."""
    seen: dict[tuple[int, int], int] = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            path = f"/proc/{pid}/fd/{fd}"
            try:
                if os.readlink(path).startswith("/memfd:"):
                    info = os.stat(path)
                    seen[(info.st_dev, info.st_ino)] = info.st_blocks * 512
            except OSError:
                continue
    return sum(seen.values())


def _pss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096   # no sysconf on Windows
STACK_DUMP_MARK = "(most recent call first):"   # faulthandler's head line
MEMORY_POLL_S = 0.1


class WorkerProcess:
    """One forked worker: its pid (also its process group), request socket and output.

    A watchdog thread kills the whole group when its resident memory passes
    ``memory_limit`` bytes, or its GPU memory (NVML) passes ``gpu_memory_limit`` bytes
    (``killed_for`` then says so), so a submission that allocates without bound fails its
    test instead of taking the grader down.
    """

    def __init__(self, pool: "WorkerPool", pid: int, sock: socket.socket, output: OutputDrain,
                 memory_limit: int | None = None, gpu_memory_limit: int | None = None):
        self.pool = pool
        self.pid = pid
        self.sock = sock
        self.output = output
        self.killed = False
        self.killed_for: str | None = None
        self.peak_rss = 0
        if memory_limit or gpu_memory_limit:
            threading.Thread(target=self._watch_memory, args=(memory_limit, gpu_memory_limit),
                             daemon=True).start()

    def _watch_memory(self, limit: int | None, gpu_limit: int | None) -> None:
        gpu = GpuMemory.open() if gpu_limit else None
        while not self.killed:
            # a period first: a worker starts as an inert copy of the fork server, and a test that
            # is over within the period costs no look at /proc at all
            time.sleep(self.memory_poll_s)
            if self.killed:
                return
            pids, rss = self._usage()
            self.peak_rss = max(self.peak_rss, rss)
            if limit and rss > limit:
                self.killed_for = f"it used more than {limit // 2**20} MiB of memory"
            elif gpu is not None and gpu.used_bytes(pids) > gpu_limit:
                self.killed_for = f"it used more than {gpu_limit // 2**20} MiB of GPU memory"
            if self.killed_for:
                self._signal_group()
                return

    memory_poll_s = MEMORY_POLL_S

    def _usage(self) -> tuple[set[int], int]:
        """The worker's processes and the memory they hold: their own (see ``group_usage``), the
        memfds they keep open, and (with a worker user) its POSIX and SysV shared memory."""
        pids, held = group_usage(self.pid)
        held += memfd_bytes(pids)
        if self.pool.user is not None:
            held += privileges.held_outside_processes(self.pool.user.uid)
        return pids, held

    def _signal_group(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def dump_stack(self, wait: float = 1.0) -> None:
        """Ask the worker to print where it is (faulthandler on SIGUSR1, into its captured
        output) and give the dump up to ``wait`` seconds to arrive; a C-level handler, so it
        answers inside a long native call too."""
        if self.killed:
            return
        before = self.output.text().count(STACK_DUMP_MARK)
        try:
            os.kill(self.pid, signal.SIGUSR1)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and self.output.text(wait=0.05).count(STACK_DUMP_MARK) == before:
            time.sleep(0.01)
        self.output.text(wait=0.1)     # the frames after the head line

    scratch: str | None = None        # this worker's own HOME/TMPDIR, removed when it is killed
    op_log: bool = False              # forked with the op log warm (see WorkerPool.spawn)
    kept: dict[str, bytes] = {}       # small files of its scratch the grader asked to keep (see keep)

    def kill(self, keep: tuple[str, ...] = ()) -> None:
        """Kill the worker's processes, then remove its scratch folder, first reading the files
        named ``keep`` (at most 64 KiB each) into ``kept``."""
        if not self.killed:
            self.killed = True
            self._signal_group()
            self.sock.close()
            self.pool.kill_worker_user()
            if self.scratch:
                self.kept = read_small_files(self.scratch, keep)
                shutil.rmtree(self.scratch, ignore_errors=True)

    def exit_status(self, wait: float = 2.0) -> int | None:
        """Exit code (negative: signal) once the zygote has reaped the worker, or None."""
        return self.pool.exit_status(self.pid, wait)


class _Pending:
    """A worker asked of the fork server, not yet handed to a test: its pid is known once the fork
    server's "spawned" answer is read. ``op_log``: forked with the op log warm, because it was asked
    so (the fork server warms up first) or, per that answer, because it already was."""

    def __init__(self, key: tuple, sock: socket.socket, out_fd: int, scratch: str | None = None,
                 op_log: bool = False):
        self.key = key
        self.sock = sock
        self.out_fd = out_fd
        self.scratch = scratch
        self.op_log = op_log
        self.pid: int | None = None

    def suits(self, key: tuple, op_log: bool) -> bool:
        """Whether this worker may serve a test of ``key`` (one with bans needs the op log warm)."""
        return self.key == key and (self.op_log or not op_log)

    def discard(self) -> None:
        """Kill the (inert, not yet confined) process if it was forked, and close what is ours."""
        if self.pid is not None:
            for kill in (os.killpg, os.kill):   # its own group once it has called setsid
                try:
                    kill(self.pid, signal.SIGKILL)
                    break
                except (ProcessLookupError, PermissionError):
                    pass
        self.sock.close()
        os.close(self.out_fd)
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


def make_home(user: "privileges.WorkerUser | None") -> str:
    """A pool's folder: ``runtime/`` (a read-only copy of our worker-side code) and ``scratch/``
    (the workers' HOME and TMPDIR, owned by ``user`` when there is one)."""
    home = tempfile.mkdtemp(prefix="autograder-pool-")
    os.chmod(home, 0o711)
    package = Path(home, "runtime", "autograder")
    package.mkdir(parents=True)
    for name in WORKER_SIDE:
        source = PACKAGE_DIR / name
        if source.is_dir():
            shutil.copytree(source, package / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, package / name)
    for path in [package.parent, *package.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    scratch = Path(home, "scratch")
    # with a worker user, only the grader writes here: each worker gets a fresh folder of its own
    scratch.mkdir(mode=0o711 if user is not None else 0o700)
    return home


def new_worker_scratch(parent: str, user: "privileges.WorkerUser | None") -> str:
    """A fresh, empty HOME/TMPDIR for one worker (one test), owned by the worker user (0700): no
    file of one test reaches another (a hidden test's inputs never reach a visible one)."""
    path = tempfile.mkdtemp(prefix="w", dir=parent)
    if user is not None:
        os.chown(path, user.uid, user.gid)
    return path


class WorkerPool:
    """A fork server and the workers it starts; use as a context manager.

    While a test runs, the next test's worker is already forked (a spare, still inert and root),
    so a test pays neither the fork nor the wait for it. A spare is forked like the test that
    asked for it (with the op log warm for a test with bans); one forked before the fork server's
    op-log warm-up (see ``zygote.main``) is kept for a test without bans until the warm-up is done.

    Five cold spares were tried (so the first tests never wait for the warm-up) and undone: a test
    on one that builds an optimizer or backpropagates a given gradient (torch then imports sympy)
    imports what the warm-up imports in its own worker, and six processes kept the fork server's
    pre-warm-up pages alive; side by side with one spare it measured within the machine's drift
    (docs/benchmarks.md, tree 6).
    """

    def __init__(self, output_cap: int = 64 * 1024, libraries: tuple[str, ...] = (),
                 memory_limit_mib: int | None = None, preload: tuple[str, ...] = ()):
        self.output_cap = output_cap
        knobs = settings.current()
        if memory_limit_mib is None:
            memory_limit_mib = knobs.worker_memory_mib
        self.memory_limit = memory_limit_mib * 2**20 if memory_limit_mib > 0 else None
        gpu_mib = knobs.worker_gpu_memory_mib
        self.gpu_memory_limit = gpu_mib * 2**20 if gpu_mib > 0 else None
        self.libraries = tuple(libraries)   # imported by the fork server; usable through self.library
        self.preload = tuple(preload)       # imported by the fork server only (Assignment.preload)
        self.user: privileges.WorkerUser | None = None
        self.network_blocked: bool | None = None   # known once the fork server is ready
        self._home: str | None = None               # runtime/ (our worker-side code) and scratch/
        self.no_switch_reason: str | None = None    # why workers do not switch user, if they do not
        self._proc: subprocess.Popen | None = None
        self._ctrl: socket.socket | None = None
        self._ready = False
        self._unanswered: collections.deque[_Pending] = collections.deque()   # asked, no "spawned" answer yet
        self._exits: dict[int, int] = {}
        self._spares: list[_Pending] = []           # forked (or asked) ahead of their tests, in order
        self._op_log_warm = False                   # the fork server said its op-log warm-up is done
        self._ban_patterns: list[str] = []         # the fork server prepares their guards (prepare_bans)
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

    def _prepare_home(self) -> None:
        """The pool's folder: a read-only copy of our worker-side code, and the workers' scratch."""
        if self._home is not None:
            return
        self.no_switch_reason = privileges.why_no_user_switch()
        self.user = privileges.acquire() if self.no_switch_reason is None else None
        if self.user is None and privileges.running_as_root():
            sys.stderr.write(f"\n*** WARNING: {self.no_switch_reason} ***\n\n")   # loudly: a wall is missing
        self._home = make_home(self.user)

    @property
    def warm_imports(self) -> list[str]:
        """What the fork server (or a portable worker, as it boots) imports before any test."""
        return list(dict.fromkeys(self.libraries + self.preload))

    @property
    def scratch(self) -> str:
        return os.path.join(self._home, "scratch")

    def sandbox_policy(self, device: str) -> dict:
        """What each worker applies to itself before its first request (see worker.sandbox)."""
        knobs = settings.current()
        return SandboxPolicy(
            uid=self.user.uid if self.user else None, gid=self.user.gid if self.user else None,
            max_processes=knobs.worker_processes, max_file_mib=knobs.worker_file_mib,
            # CUDA reserves huge virtual ranges: address space is limited for CPU workers only
            max_address_space_mib=2 * self.memory_limit // 2**20 if self.memory_limit and device == "cpu" else None,
        ).to_json()

    def describe(self) -> str:
        """One line for debug output: who workers run as and what confines them."""
        who = f"workers run as {self.user.name} (uid {self.user.uid})" if self.user else self.no_switch_reason
        net = {True: "network blocked by seccomp", False: "network NOT blocked (no seccomp here)",
               None: "network block not probed yet"}[self.network_blocked]
        memory = f"memory limit {self.memory_limit // 2**20} MiB" if self.memory_limit else "no memory limit"
        return f"{who}; {net}; {memory}"

    def kill_worker_user(self) -> None:
        """Kill every process of this pool's worker user (root only; spares stay: they are not yet it)."""
        if self.user is not None:
            privileges.kill_all(self.user)

    def _start(self) -> None:
        self._prepare_home()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        runtime = os.path.join(self._home, "runtime")
        code = (f"import sys; sys.path.insert(0, {runtime!r}); "
                f"from autograder.worker.zygote import main; main({child.fileno()}, {list(self.warm_imports)!r})")
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", code], pass_fds=[child.fileno()], cwd=runtime,
            env=worker_env(self.scratch), stdin=subprocess.DEVNULL, start_new_session=True)
        child.close()
        self._ctrl = parent
        self._ready = False
        self._op_log_warm = False
        if self._ban_patterns:   # read once it is warm, before it forks a worker
            self._send_prepare(self._ban_patterns)

    def prepare_bans(self, patterns) -> None:
        """Have the fork server work out once the guards of tests that ban ``patterns`` (the
        assignment's runtime patterns; see ``worker.oplog.prepare``), so that its workers only
        install them; a fork server started later (a restart) is asked again."""
        with self._lock:
            new = [p for p in dict.fromkeys(patterns) if isinstance(p, str) and p and p not in self._ban_patterns]
            if new:
                self._ban_patterns.extend(new)
                if self._ctrl is not None:
                    self._send_prepare(new)

    def _send_prepare(self, patterns: list[str]) -> None:
        try:
            self._ctrl.send(json.dumps({"prepare": list(patterns)}).encode())
        except OSError:   # it is gone: the next _ensure_zygote starts another, which is asked again
            pass

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
            self.network_blocked = bool(data.get("network_blocked"))
        if "spawned" in data and self._unanswered:   # answers come in the order of the requests
            pending = self._unanswered.popleft()
            pending.pid = data["spawned"]
            pending.op_log = pending.op_log or data.get("op_log") is True
        if "exited" in data:
            self._exits[data["exited"]] = data["status"]
        if data.get("op_log_warm") is True:
            self._op_log_warm = True
        return True

    def _wait_for(self, condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0 or not self._pump(left):
                return condition()
        return True

    def _stop_zygote(self) -> None:
        self._drop_spares()
        self._unanswered.clear()
        if self._ctrl is not None:
            self._ctrl.close()   # the fork server kills what it has left, then exits
            self._ctrl = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._proc.wait()
            self._proc = None
        self._ready = False

    # -- workers ---------------------------------------------------------------------
    def _request(self, key: tuple, op_log: bool = False) -> _Pending | None:
        """Ask the fork server for a worker; ``op_log``: one forked after the op log's warm-up."""
        staged_dir, modules, device = key
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        scratch = new_worker_scratch(self.scratch, self.user)
        request = json.dumps({"staged_dir": staged_dir, "modules": json.loads(modules), "device": device,
                              "libraries": list(self.libraries), "sandbox": self.sandbox_policy(device),
                              "scratch": scratch, "op_log": op_log})
        pending = _Pending(key, ours, out_r, scratch, op_log=op_log)
        try:
            socket.send_fds(self._ctrl, [request.encode()], [theirs.fileno(), out_w])
        except OSError:
            pending.discard()
            return None
        finally:
            theirs.close()
            os.close(out_w)
        self._unanswered.append(pending)
        return pending

    def _answered(self, pending: _Pending, timeout: float = SPAWN_TIMEOUT_S) -> bool:
        """Wait for the fork server's answer to ``pending`` (its pid); False if none came."""
        return self._wait_for(lambda: pending.pid is not None, timeout)

    def _collect(self, pending: _Pending) -> WorkerProcess | None:
        """The worker of an answered request, watched and drained from now on."""
        if not self._answered(pending):
            pending.discard()
            return None
        gpu_limit = self.gpu_memory_limit if pending.key[2].startswith("cuda") else None
        worker = WorkerProcess(self, pending.pid, pending.sock, OutputDrain(pending.out_fd, self.output_cap),
                               self.memory_limit, gpu_limit)
        worker.scratch = pending.scratch
        worker.op_log = pending.op_log
        return worker

    def _take_spare(self, key: tuple, op_log: bool) -> WorkerProcess | None:
        """The first spare that suits the test (see ``_Pending.suits``). Spares of another key
        (another submission folder or device) are killed; cold ones are kept for a later test
        without bans until the op log is warm, then killed too: they hold the pages the fork
        server's warm-up rewrote (over 100 MiB), and a warm worker is as quick to fork."""
        while self._pump(0.0001):   # what the fork server said meanwhile (its warm-up done, exits)
            pass
        for pending in list(self._spares):
            if not self._answered(pending):
                self._drop_spares()   # the fork server is stuck or gone: spawn starts another
                return None
            if pending.key != key or (self._op_log_warm and not pending.op_log):
                self._spares.remove(pending)
                pending.discard()
            elif pending.suits(key, op_log):
                self._spares.remove(pending)
                return self._collect(pending)
        return None

    def _top_up(self, key: tuple, op_log: bool) -> None:
        """Ask now for the next test's worker, forked like this test's (unless a spare suits already)."""
        if self._ctrl is None or self._proc is None or self._proc.poll() is not None:
            return
        if not any(p.suits(key, op_log) for p in self._spares):
            pending = self._request(key, op_log)
            if pending is not None:
                self._spares.append(pending)

    def _drop_spares(self, settle: float = 0.0) -> None:
        """Kill every spare (inert, never confined: no student code ran in it) and remove its
        scratch; ``settle``: first wait up to so long for their pids, so each is killed, not left
        to exit when it reads its socket's end."""
        spares, self._spares = self._spares, []
        for pending in spares:
            if settle and pending.pid is None:
                self._answered(pending, settle)
            pending.discard()

    def spawn(self, staged_dir: str, modules: dict, device: str, op_log: bool = False) -> WorkerProcess:
        """A fresh worker for ``staged_dir`` (its own process group, its stdout/stderr drained).

        ``modules`` maps module names to load options (JSON data, see worker.worker.Worker).
        ``op_log``: the test bans functions, so its worker must be forked after the fork server's
        op-log warm-up (which the fork server puts off past its first forks, see ``zygote.main``):
        importing the op log in the worker would spend the test's time limit on the grader's work.
        """
        key = (staged_dir, json.dumps(modules, sort_keys=True), device)
        with self._lock:
            worker = self._take_spare(key, op_log)
            for _attempt in (1, 2):
                if worker is not None:
                    break
                self._ensure_zygote()
                pending = self._request(key, op_log)
                worker = self._collect(pending) if pending is not None else None
                if worker is None:
                    self._stop_zygote()   # it died (perhaps killed by a student): start a new one
            if worker is None:
                raise WorkerStartError("could not start a worker process")
            self._top_up(key, op_log)
            return worker

    def exit_status(self, pid: int, wait: float) -> int | None:
        """Exit code of a worker (negative: signal), once the fork server has reaped it."""
        with self._lock:
            self._wait_for(lambda: pid in self._exits, wait)
            return self._exits.pop(pid, None)

    def recycle(self) -> None:
        """Between two submissions graded with this pool (a warm batch): the spare workers (forked for
        the last one) are killed with their scratch folders, every process of the worker user is killed
        and what it left in the shared folders and SysV IPC is removed, as for a new grading's user
        (``privileges.acquire``); each worker's scratch went when it was killed. The fork server
        stays: it never runs student code, and each test still gets a fresh worker from it."""
        with self._lock:
            self._drop_spares(settle=SPAWN_TIMEOUT_S)   # their process groups, before they ever switch user
            self.kill_worker_user()
            if self.user is not None:
                privileges.remove_leftovers(self.user.uid)

    def close(self) -> None:
        with self._lock:
            self._drop_spares()   # a spare not yet answered for is killed by the fork server as it exits
            self._stop_zygote()
            self.kill_worker_user()
            if self.user is not None:
                self.user.release()
                self.user = None
            if self._home is not None:
                shutil.rmtree(self._home, ignore_errors=True)
                self._home = None
