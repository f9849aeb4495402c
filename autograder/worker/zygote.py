"""The fork server: imports torch once, then forks one fresh worker per request.

Started by the trusted parent as ``python -I -B`` with one end of a SOCK_SEQPACKET
control socket. Each control message is JSON ``{"staged_dir", "modules", "device",
"libraries", "sandbox"}`` carrying two file descriptors: the worker's request socket and
the write end of the pipe that collects the worker's stdout and stderr. The zygote answers
``{"spawned": pid}`` and later ``{"exited": pid, "status": n}`` (negative: killed by signal
-n). It never imports student code; the forked child does, after starting a new session
(its pid is its process group, which the parent kills as a whole) and after confining
itself (``worker.sandbox``: limits, no network, the worker user) once its first request
arrives, so a worker forked ahead of its test stays inert until the parent has cleaned up
after the previous one.

The zygote is a child subreaper: a process that leaves its worker's process group and
outlives its parent (a double-forked daemon) is re-parented here, and killed.
"""
from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys
import time


def _child(request: dict, fds: list[int]) -> None:
    sock_fd, out_fd = fds
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.close(out_fd)
    os.close(devnull)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)   # output survives an os._exit()
    from autograder.worker.sandbox import confine
    from autograder.worker.worker import Worker, serve
    sock = socket.socket(fileno=sock_fd)
    select.select([sock], [], [])   # inert until claimed (see the module docstring)
    confine(request.get("sandbox", {}))
    if request.get("scratch"):   # this worker's own, fresh HOME and TMPDIR (nothing of another test)
        os.environ["HOME"] = os.environ["TMPDIR"] = request["scratch"]
        import tempfile
        tempfile.tempdir = None
    import faulthandler
    faulthandler.register(signal.SIGUSR1, all_threads=False)   # where it hangs: the parent asks before the kill
    worker = Worker(request["staged_dir"], request["modules"], request.get("device", "cpu"),
                    request.get("libraries", []))
    os.chdir(request["staged_dir"])
    serve(sock, worker)


PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    import ctypes
    try:
        ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _children() -> set[int]:
    pids: set[int] = set()
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as fh:
                pids.update(int(p) for p in fh.read().split())
    except (OSError, ValueError):
        pass
    return pids


def _kill_orphans(workers: set[int]) -> None:
    """Kill every child that is not a worker we forked: an orphan re-parented to us."""
    for pid in _children() - workers:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _shutdown(timeout: float = 2.0) -> None:
    """Kill every child (workers, and orphans re-parented to us) until none is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = _children()
        if not children:
            return
        _kill_orphans(set())
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        time.sleep(0.005)


def _reap(ctrl: socket.socket, workers: set[int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid not in workers:
            continue   # a reaped orphan
        workers.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        try:
            ctrl.send(json.dumps({"exited": pid, "status": code}).encode())
        except OSError:   # the parent is gone
            sys.exit(0)


def warm_up(libraries: list[str], op_log: bool = True) -> None:
    """Pay torch's one-time costs (imports, first-op dispatch, autograd) once, before forking,
    and import the assignment's libraries (e.g. transformers) so no worker pays for them.
    ``op_log``: the op log's too (its first use imports torch._dynamo, about as long as torch)."""
    import contextlib
    import importlib
    for name in libraries:
        try:
            importlib.import_module(name)
        except Exception:   # noqa: BLE001 - a test that needs it will report the failure
            pass
    import numpy  # noqa: F401
    import torch
    import torch.nn.functional as F
    from autograder.worker.oplog import OpLog
    import autograder.worker.worker  # noqa: F401

    torch.set_num_threads(1)
    layer = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU(), torch.nn.LayerNorm(8))
    x = torch.randn(2, 3, 8, requires_grad=True)
    with OpLog() if op_log else contextlib.nullcontext():
        y = layer(x).softmax(-1) @ x.transpose(1, 2)
        loss = F.cross_entropy(y.reshape(-1, 3), torch.zeros(6, dtype=torch.long)) + F.log_softmax(y, -1).mean()
        loss.backward()
    loss = F.log_softmax(layer(x), -1).mean()
    loss.backward()


def _probe_network_block() -> bool:
    """Whether a worker's seccomp filter really blocks the network here (tried in a throwaway child)."""
    pid = os.fork()
    if pid == 0:
        try:
            from autograder.worker.sandbox import block_network
            block_network()
            try:
                socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
            except PermissionError:
                os._exit(0)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _prepare(msg: bytes) -> None:
    """``{"prepare": [pattern, ...]}`` from the parent: work out the guards of tests banning these
    patterns once, here, for every worker forked from now on (see ``oplog.prepare``)."""
    try:
        patterns = json.loads(msg).get("prepare")
        if isinstance(patterns, list):
            from autograder.worker.oplog import prepare
            prepare([p for p in patterns if isinstance(p, str)])
            gc.freeze()
    except Exception:   # noqa: BLE001 - then each worker's guard works it out itself, as before
        pass


def main(ctrl_fd: int, libraries: list[str] = ()) -> None:
    ctrl = socket.socket(fileno=ctrl_fd)
    _become_subreaper()
    warm_up(list(libraries))
    import autograder.worker.sandbox  # noqa: F401 - what each worker imports before its guard, imported once
    import faulthandler, tempfile  # noqa: F401,E401
    try:
        ctrl.send(json.dumps({"ready": os.getpid(), "network_blocked": _probe_network_block()}).encode())
    except OSError:   # the parent gave up on us while we warmed up
        return
    gc.freeze()   # a worker's garbage collections never walk (so never copy) the pages of what we imported
    workers: set[int] = set()
    while True:
        readable, _, _ = select.select([ctrl], [], [], 0.1)
        _reap(ctrl, workers)
        _kill_orphans(workers)
        if not readable:
            continue
        try:
            msg, fds, _flags, _addr = socket.recv_fds(ctrl, 65536, 2)
        except OSError:
            msg = b""
        if not msg:   # the parent is done (or gone): leave nothing behind
            _shutdown()
            os._exit(0)   # skip tearing down torch's interpreter state (about a second)
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            if not fds:
                _prepare(msg)
            continue
        pid = os.fork()
        if pid == 0:
            try:
                ctrl.close()
                _child(json.loads(msg), fds)
            finally:
                os._exit(0)
        workers.add(pid)
        for fd in fds:
            os.close(fd)
        try:
            ctrl.send(json.dumps({"spawned": pid}).encode())
        except OSError:   # the parent closed the pool meanwhile: leave nothing behind, quietly
            _shutdown()
            os._exit(0)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
