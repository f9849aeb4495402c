"""The unprivileged users workers run as, when the grader runs as root (as on Gradescope).

Each grading in progress holds one worker user for itself (an exclusive lock on a file
only root can reach), so several gradings on one machine (``autograder batch``) never
share a user, and "kill every process of the worker user" after each test never touches
another grading's workers. The first user is ``autograder-worker`` (``setup.sh`` creates
it); more (``autograder-worker1`` ...) are created on demand with ``useradd``.

When the grader is not root (a student's laptop), there is no user to switch to:
``acquire()`` returns None and workers run as the grader's own user. The Unix-only modules
(``fcntl``, ``pwd``) are imported where used: this module is imported on macOS and Windows too.
"""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass

from autograder import settings

MAX_USERS = 32
LOCK_DIR = "/run/autograder-worker-users" if os.path.isdir("/run") else "/tmp/autograder-worker-users"


class PrivilegeError(Exception):
    """Running as root but no worker user could be created or locked."""


@dataclass
class WorkerUser:
    name: str
    uid: int
    gid: int
    lock_fd: int

    def release(self) -> None:
        """Unlock the user for the next grading, once what it left outside its processes is gone
        (call after its processes are killed)."""
        if self.lock_fd >= 0:
            remove_leftovers(self.uid)
            os.close(self.lock_fd)
            self.lock_fd = -1


def running_as_root() -> bool:
    return os.geteuid() == 0


def user_name(index: int) -> str:
    base = settings.current().worker_user
    return base if index == 0 else f"{base}{index}"


def ensure_user(name: str) -> "pwd.struct_passwd":
    """The account ``name``, created (system user, own group, no login, no home) if missing."""
    import pwd
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    proc = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                           "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                          capture_output=True, text=True)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise PrivilegeError(f"could not create the worker user {name}: {proc.stderr.strip()[:300]}") from None


def acquire() -> WorkerUser | None:
    """A worker user for this grading, locked until ``release()``; None when not root."""
    if not running_as_root():
        return None
    import fcntl
    os.makedirs(LOCK_DIR, mode=0o700, exist_ok=True)
    os.chmod(LOCK_DIR, 0o700)
    for index in range(MAX_USERS):
        name = user_name(index)
        fd = os.open(os.path.join(LOCK_DIR, name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            entry = ensure_user(name)
        except BaseException:
            os.close(fd)
            raise
        if entry.pw_uid == 0:
            os.close(fd)
            raise PrivilegeError(f"the worker user {name} has uid 0")
        remove_leftovers(entry.pw_uid)     # whatever an earlier grading's crash left behind
        return WorkerUser(name, entry.pw_uid, entry.pw_gid, fd)
    raise PrivilegeError(f"all {MAX_USERS} worker users are in use")


def hide_from_workers(paths) -> list[str]:
    """Take "other" permissions off ``paths`` (folders of hidden tests, reference code, data)
    so a worker user cannot enter them; returns the paths changed."""
    changed = []
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue
        if mode & 0o007:
            os.chmod(path, mode & ~0o007)
            changed.append(str(path))
    return changed


def python_paths() -> list[str]:
    """The Python installation workers run (interpreter, standard library, site-packages)."""
    import sysconfig
    paths = {os.path.realpath(sys.executable), os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    paths.update(os.path.realpath(p) for p in sysconfig.get_paths().values())
    return sorted(paths)


def project_entries_to_hide(roots) -> list[str]:
    """Every entry of the project folders ``roots`` (the checkout, ``AUTOGRADER_PROJECT``) that
    workers must not reach: an allowlist, so all of them but those holding the Python
    installation (a ``.venv`` inside the checkout). Workers import our code from their own
    read-only runtime copy and read their submission from its staged copy."""
    keep = python_paths()
    out = []
    for root in {os.path.realpath(r) for r in roots}:
        if any(root == p or root.startswith(p.rstrip(os.sep) + os.sep) for p in keep):
            continue            # the "project" is inside the Python installation (a wheel install)
        try:
            entries = os.listdir(root)
        except OSError:
            continue
        for name in entries:
            path = os.path.join(root, name)
            if any(p == path or p.startswith(path + os.sep) for p in keep):
                continue        # holds the Python installation: stays reachable
            out.append(path)
    return sorted(out)


def _reachable_by_others(path: str) -> bool:
    """Every folder up to ``path`` may be entered by other users, and ``path`` itself read."""
    path = os.path.realpath(path)
    try:
        if not os.stat(path).st_mode & 0o004:
            return False
        parent = os.path.dirname(path)
        while True:
            if not os.stat(parent).st_mode & 0o001:
                return False
            if parent == os.path.dirname(parent):
                return True
            parent = os.path.dirname(parent)
    except OSError:
        return False


def why_no_user_switch() -> str | None:
    """None when workers can run as a worker user; else why they run as the grader's user."""
    if not running_as_root():
        return "not root: workers run as this user (no user switch)"
    import sysconfig
    for path in (sys.executable, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]):
        if not _reachable_by_others(path):
            return (f"workers run as root, UNCONFINED by a user switch: {os.path.realpath(path)} is not "
                    "readable by other "
                    "users (use a Python installation other users can read, e.g. the system python3)")
    return None


SIGKILL_BIT = 1 << (getattr(signal, "SIGKILL", 9) - 1)   # no SIGKILL on Windows
PF_EXITING = 0x4


def processes_of(uid: int, dying: bool = True) -> list[int]:
    """Processes owned by ``uid`` that are not zombies (Linux /proc); with ``dying=False``, only
    those that can still run code: no SIGKILL pending and not already exiting."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            with open(f"/proc/{entry}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
            if fields.get("State", "").strip().startswith(("Z", "X")):
                continue
            if not dying:
                pending = int(fields.get("ShdPnd", "0").strip(), 16) | int(fields.get("SigPnd", "0").strip(), 16)
                with open(f"/proc/{entry}/stat") as fh:
                    flags = int(fh.read().rsplit(")", 1)[1].split()[6])
                if pending & SIGKILL_BIT or flags & PF_EXITING:
                    continue
        except (OSError, ValueError, IndexError):
            continue
        found.append(int(entry))
    return found


def _kill_as(user: WorkerUser) -> None:
    """kill(-1, SIGKILL) as ``user``: one system call signals all its processes at once, so a fork
    bomb cannot outrun it (a process with a pending SIGKILL cannot fork)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # fork with threads: the child only signals
        pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(user.gid)
            os.setuid(user.uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def kill_all(user: WorkerUser, timeout: float = 30.0) -> list[int]:
    """SIGKILL every process of ``user``; returns once none can run code any more (a killed process
    may take a moment to be torn down), or, past ``timeout``, the pids that still could."""
    deadline = time.monotonic() + timeout
    while True:
        alive = processes_of(user.uid, dying=False)
        if not alive or time.monotonic() > deadline:
            return alive
        _kill_as(user)   # usually not needed: the worker's process group was killed already
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.005)


# -- what a worker user leaves outside its processes ---------------------------------------------
SHARED_FOLDERS = ("/dev/shm", "/dev/mqueue", "/var/tmp", "/tmp")   # where any user may create files
MEMORY_FOLDERS = ("/dev/shm", "/dev/mqueue")                        # ... and what is held there is memory
SYSV_IPC = {"shm": 0, "sem": 1, "msg": 2}                           # /proc/sysvipc tables -> kind
IPC_RMID = 0
MAX_SWEPT = 100_000


def _sysv_objects(uid: int) -> list[tuple[str, int, int]]:
    """(kind, id, size in bytes) of the SysV IPC objects ``uid`` owns (Linux /proc/sysvipc)."""
    found = []
    for kind in SYSV_IPC:
        try:
            with open(f"/proc/sysvipc/{kind}") as fh:
                header = fh.readline().split()
                for line in fh:
                    row = dict(zip(header, line.split()))
                    if int(row.get("uid", -1)) == uid or int(row.get("cuid", -1)) == uid:
                        ident = int(row.get("shmid") or row.get("semid") or row.get("msqid"))
                        found.append((kind, ident, int(row.get("size", row.get("cbytes", 0)) or 0)))
        except (OSError, ValueError):
            continue
    return found


def _owned_files(uid: int, folders=SHARED_FOLDERS):
    """Paths under ``folders`` owned by ``uid``, with their stat: a walk that enters only folders any
    user may write (where else could ``uid`` have created something), not below ``uid``'s own."""
    seen = 0
    for top in folders:
        stack = [top]
        while stack and seen < MAX_SWEPT:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                seen += 1
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if info.st_uid == uid:
                    yield entry.path, info
                elif stat.S_ISDIR(info.st_mode) and info.st_mode & 0o002:
                    stack.append(entry.path)     # only where any user may write (not a venv under /tmp)


def _bytes(path: str, info: os.stat_result) -> int:
    if not stat.S_ISDIR(info.st_mode):
        return info.st_blocks * 512
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except OSError:
                pass
    return total


def held_outside_processes(uid: int) -> int:
    """Bytes of memory ``uid`` holds where its processes' memory does not show: files in
    ``/dev/shm`` (POSIX shared memory) and ``/dev/mqueue``, and SysV shared memory segments."""
    total = sum(_bytes(path, info) for path, info in _owned_files(uid, MEMORY_FOLDERS))
    return total + sum(size for kind, _, size in _sysv_objects(uid) if kind == "shm")


def remove_leftovers(uid: int) -> list[str]:
    """Remove what ``uid`` left behind outside its processes (files and folders in the shared
    folders, SysV shared memory, semaphores and message queues); returns what was removed.
    Called (as root) before a worker user serves a grading and after it: one submission's
    leftovers never reach the next."""
    import ctypes
    import shutil
    removed = []
    for path, info in list(_owned_files(uid)):
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
            removed.append(path)
        except OSError:
            pass
    libc = ctypes.CDLL(None, use_errno=True)
    for kind, ident, _ in _sysv_objects(uid):
        call = {"shm": lambda i: libc.shmctl(i, IPC_RMID, None), "sem": lambda i: libc.semctl(i, 0, IPC_RMID),
                "msg": lambda i: libc.msgctl(i, IPC_RMID, None)}[kind]
        if call(ident) == 0:
            removed.append(f"SysV {kind} {ident}")
    return removed
