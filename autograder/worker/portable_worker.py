"""A portable worker: one fresh Python process per test, on any OS (the student's own machine).

Started by ``engine.isolation.portable_pool`` as ``python -I -B -X utf8 -c ...`` (a plain subprocess,
no fork), with its stdout and stderr on a pipe the parent drains into the test's output, and
one JSON line on stdin: ``{"port", "token", "path", "libraries"}``. The parent keeps stdin
open while it lives; the worker ends itself when stdin ends (the parent is gone, whatever
killed it: nothing is left spinning on the student's machine). The worker takes ``path`` as
its module path (after the pool's copy of our worker-side code), warms up as the fork server
does (torch, the op log, the assignment's ``libraries``), writes ``READY_MARK`` to its output
(what it printed before is start-up noise, not the student's), connects to
127.0.0.1:``port`` and sends ``{"token": token}`` as its first frame, to prove it is the
process the parent started. It then waits, inert, for the frame that gives it a test:
``{"setup": {"staged_dir", "modules", "device", "libraries"}}``; from there on it is an
ordinary worker (``worker.worker.serve``: the same requests and replies as a forked one).

No sandbox here: no user switch, limits or network block (see ``worker.sandbox`` for the
server's). On POSIX, ``SIGUSR1`` makes faulthandler print the stack, as in a forked worker.
Standard library and our worker-side code only (this file is copied into the pool's runtime).
"""
from __future__ import annotations

import faulthandler
import json
import os
import signal
import socket
import sys
import threading

from autograder.wire import framing



def _read_boot() -> dict:
    """The parent's JSON line; then stdin is the null device (student code reads nothing from
    it) and a thread watches the parent's pipe, ending this process when the pipe ends."""
    boot = json.loads(sys.stdin.buffer.readline())
    parent = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    return boot


def _exit_with_parent(fd: int) -> None:
    try:
        while os.read(fd, 1024):
            pass
    except OSError:   # the student closed it: stop watching
        return
    os._exit(0)


def main() -> None:
    boot = _read_boot()
    if boot.get("path"):   # our runtime first (sys.path[0]), then the libraries the parent sees
        sys.path[1:] = [p for p in boot["path"] if p != sys.path[0]]
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)   # output survives an os._exit()
    if hasattr(signal, "SIGUSR1") and hasattr(faulthandler, "register"):
        faulthandler.register(signal.SIGUSR1, all_threads=False)   # where it hangs: the parent asks before the kill
    from autograder.worker.zygote import warm_up
    # What a forked worker finds already done in the fork server, before the test's clock starts:
    # torch's one-time costs, the op log's (torch._dynamo) and the assignment's libraries. The same
    # state, so the same verdicts: a ban's guard, once installed, refuses what some imports need.
    warm_up(boot.get("libraries", []))
    from autograder.worker.worker import Worker, serve

    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, framing.READY_MARK)
    sock = socket.create_connection(("127.0.0.1", int(boot["port"])))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    framing.send_frame(sock, {"token": boot["token"], "pid": os.getpid()})
    try:
        header, _ = framing.recv_frame(sock, max_payload=0)
    except (framing.PeerClosed, framing.FrameError):
        os._exit(0)   # never claimed: the pool closed
    setup = header.get("setup") or {}
    worker = Worker(setup["staged_dir"], setup["modules"], setup.get("device", "cpu"), setup.get("libraries", []))
    os.chdir(setup["staged_dir"])
    serve(sock, worker)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:   # noqa: BLE001 - the student may have replaced or closed it
            pass
    os._exit(0)   # skip tearing down torch's interpreter state (about a second)
