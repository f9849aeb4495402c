"""Worker users, the kill sweep and the sandbox's pieces, one by one (the red-team suite tests them together)."""
import os
import shutil
import socket
import struct
import tempfile
from pathlib import Path

import pytest

from autograder.engine.isolation import privileges
from autograder.engine.isolation.workers import WorkerPool
from autograder.worker import sandbox
from support import processes_after_teardown


def needs_root(test):
    """Marked ``root``, and skipped without root (it creates and switches users)."""
    return pytest.mark.root(pytest.mark.skipif(not privileges.running_as_root(),
                                               reason="needs root (creates and switches users)")(test))


def test_without_root_there_is_no_user_switch_and_it_is_said(monkeypatch):
    monkeypatch.setattr(privileges, "running_as_root", lambda: False)
    assert privileges.acquire() is None
    assert privileges.why_no_user_switch().startswith("not root")
    pool = WorkerPool()
    pool.no_switch_reason = privileges.why_no_user_switch()
    assert "no user switch" in pool.describe()


def test_a_python_other_users_cannot_reach_is_reported():
    top = Path(tempfile.mkdtemp())   # /tmp/xyz: every folder above it may be entered by others
    try:
        (top / "private" / "lib").mkdir(parents=True)
        (top / "private" / "lib" / "os.py").write_text("")
        os.chmod(top, 0o755)
        os.chmod(top / "private", 0o700)    # like /root holding a pyenv Python
        assert not privileges._reachable_by_others(str(top / "private" / "lib" / "os.py"))
        os.chmod(top / "private", 0o711)
        assert privileges._reachable_by_others(str(top / "private" / "lib" / "os.py"))
    finally:
        shutil.rmtree(top)


@needs_root
def test_concurrent_gradings_get_different_worker_users():
    first = privileges.acquire()
    second = privileges.acquire()
    try:
        assert first.uid != second.uid and first.uid != 0 and second.uid != 0
        first.release()
        third = privileges.acquire()   # while the second is held, never the second
        assert third.uid not in (second.uid, 0)
        third.release()
    finally:
        first.release()
        second.release()


@needs_root
def test_kill_all_leaves_no_process_of_the_user():
    user = privileges.acquire()
    try:
        pid = os.fork()
        if pid == 0:   # a detached process tree of the worker user
            try:
                os.setsid()
                os.setgroups([])
                os.setgid(user.gid)
                os.setuid(user.uid)
                for _ in range(5):
                    os.fork()
                os.execv("/bin/sleep", ["sleep", "60"])
            finally:
                os._exit(1)
        deadline = 50
        while len(privileges.processes_of(user.uid)) < 32 and deadline:
            os.waitpid(-1, os.WNOHANG)
            deadline -= 1
            __import__("time").sleep(0.1)
        assert len(privileges.processes_of(user.uid)) >= 1
        assert privileges.kill_all(user) == []
        assert processes_after_teardown(user.uid) == []
    finally:
        user.release()
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass


def test_network_filter_is_well_formed_for_each_machine():
    for machine in sandbox.SYSCALLS:
        program = sandbox.network_filter(machine)
        instructions = [struct.unpack("HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
        assert instructions[-2][3] == sandbox.SECCOMP_RET_ALLOW
        for index, (code, jt, jf, _k) in enumerate(instructions):
            if code in (sandbox.JEQ_K, sandbox.JGE_K):   # every jump lands inside the program
                assert index + 1 + max(jt, jf) < len(instructions)


def test_confine_blocks_inet_sockets_and_limits_file_size(tmp_path):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            sandbox.confine({"block_network": True, "max_file_mib": 1})
            socket.socketpair()                      # AF_UNIX stays usable
            try:
                socket.socket(socket.AF_INET)
            except PermissionError:
                try:
                    (tmp_path / "big").write_bytes(b"\0" * (2 * 2**20))
                except OSError as exc:
                    code = 0 if exc.errno == 27 else 2   # EFBIG
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_root_without_a_user_switch_warns_loudly_on_stderr(monkeypatch, capsys):
    reason = "workers run as root, UNCONFINED by a user switch: (test)"
    monkeypatch.setattr(privileges, "running_as_root", lambda: True)
    monkeypatch.setattr(privileges, "why_no_user_switch", lambda: reason)
    pool = WorkerPool()
    try:
        pool._prepare_home()
        assert pool.user is None
        assert f"*** WARNING: {reason} ***" in capsys.readouterr().err
    finally:
        shutil.rmtree(pool._home, ignore_errors=True)
