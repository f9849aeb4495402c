"""The unprivileged users workers run as, when the grader runs as root (as on Gradescope).

Each grading in progress holds one worker user for itself (an exclusive lock on a file
only root can reach), so several gradings on one machine (``autograder batch``) never
share a user, and "kill every process of the worker user" after each test never touches
another grading's workers. The first user is ``autograder-worker`` (``setup.sh`` creates
it); more (``autograder-worker1`` ...) are created on demand with ``useradd``.

When the grader is not root (a student's laptop), there is no user to switch to:
``acquire()`` returns None and workers run as the grader's own user.
"""
from __future__ import annotations

import fcntl
import os
import pwd
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

BASE_NAME = os.environ.get("AUTOGRADER_WORKER_USER", "autograder-worker")
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
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1


def running_as_root() -> bool:
    return os.geteuid() == 0


def user_name(index: int) -> str:
    return BASE_NAME if index == 0 else f"{BASE_NAME}{index}"


def ensure_user(name: str) -> pwd.struct_passwd:
    """The account ``name``, created (system user, own group, no login, no home) if missing."""
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


SIGKILL_BIT = 1 << (signal.SIGKILL - 1)
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
