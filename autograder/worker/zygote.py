"""The fork server: imports torch once, then forks one fresh worker per request.

Started by the trusted parent as ``python -I -B`` with one end of a SOCK_SEQPACKET
control socket. Each control message is JSON ``{"staged_dir", "modules", "device",
"libraries", "sandbox", "scratch", "op_log"}`` carrying two file descriptors: the worker's
request socket and the write end of the pipe that collects the worker's stdout and stderr. The
zygote answers ``{"spawned": pid, "op_log": warm}`` and later ``{"exited": pid, "status": n}``
(negative: killed by signal -n), and says ``{"op_log_warm": true}`` once the op log's warm-up is
done; a message without descriptors is ``{"prepare": [pattern, ...]}``. It never imports student
code; the forked child does, after starting a new session
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
import math
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
    ``op_log``: the op log's too (``warm_up_op_log``); the fork server does that part after its
    first fork instead (see ``main``)."""
    import importlib
    for name in libraries:
        try:
            importlib.import_module(name)
        except Exception:   # noqa: BLE001 - a test that needs it will report the failure
            pass
    import numpy  # noqa: F401
    import torch
    import torch.nn.functional as F
    import autograder.worker.worker  # noqa: F401

    torch.set_num_threads(1)
    layer, x = _tiny_step()   # draws from torch's global random state, as workers always found it
    F.log_softmax(layer(x), -1).mean().backward()
    exercise()
    if op_log:
        warm_up_op_log()


def _tiny_step():
    """One forward and backward of a small layer stack (the ops every test runs); (layer, input)."""
    import torch
    import torch.nn.functional as F
    layer = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU(), torch.nn.LayerNorm(8))
    x = torch.randn(2, 3, 8, requires_grad=True)
    y = layer(x).softmax(-1) @ x.transpose(1, 2)
    loss = F.cross_entropy(y.reshape(-1, 3), torch.zeros(6, dtype=torch.long)) + F.log_softmax(y, -1).mean()
    loss.backward()
    return layer, x


def warm_up_op_log() -> None:
    """What imports torch._dynamo (about as long as torch itself), paid once: the op log (importing
    ``worker.oplog`` uses its dispatch mode, whose first use imports it), one logged forward and
    backward, and torch.optim's optimizers (their constructor imports it too), each stepped once."""
    import torch
    import torch.nn.functional as F
    from autograder.worker.oplog import OpLog

    state = torch.get_rng_state()
    try:
        with OpLog():
            layer, x = _tiny_step()
        for optimizer in (torch.optim.AdamW(layer.parameters(), lr=1e-3), torch.optim.Adam(layer.parameters()),
                          torch.optim.SGD(layer.parameters(), lr=0.1)):
            optimizer.zero_grad()
            F.log_softmax(layer(x.detach()), -1).mean().backward()
            optimizer.step()
    finally:
        torch.set_rng_state(state)


def exercise() -> None:
    """Run once what the tests of attention and transformer assignments run, on tiny tensors: each
    operator's and module's first call in a process pays lazy set-up (dispatcher caches, Python-level
    caches, first kernels, the optimizer's), which every worker forked from here then finds done
    (a cold worker paid about 35 ms more than a warm one on one ViT + LSTM forward and backward;
    about 10 ms after this). Generic code of ours, never the reference's: a worker must hold nothing
    of the solution. torch's global random state is left as it was (torch seeds it per process;
    every worker of one fork server starts from the same state, which this warm-up does not move)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.utils.data import DataLoader

    state = torch.get_rng_state()
    try:
        x = torch.randn(2, 5, 12, requires_grad=True)
        mlp = nn.Sequential(nn.Linear(12, 16), nn.GELU(), nn.Dropout(0.0), nn.Linear(16, 12), nn.ReLU(),
                            nn.Dropout(0.0))
        mlp.eval()
        norm = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-5)
        heads = (norm * torch.ones(12) + torch.zeros(12)).reshape(2, 5, 3, 4).transpose(1, 2)
        scores = heads @ heads.transpose(-2, -1) / math.sqrt(4)
        causal = torch.tril(torch.ones(5, 5)).view(1, 1, 5, 5)
        scores = scores.masked_fill(causal == 0, float("-inf")).masked_fill(
            torch.ones(5, 5, dtype=torch.bool).triu(1), -1e10)
        out = (torch.softmax(scores, dim=-1) @ heads).transpose(1, 2).contiguous().view(2, 5, 12)
        out = nn.LayerNorm(12)(out + mlp(out))
        tokens = torch.cat([torch.zeros(1, 1, 12).expand(2, -1, -1), out], dim=1)
        logits = tokens[:, 0, :3]
        loss = F.cross_entropy(logits, torch.tensor([0, 2])) + F.nll_loss(F.log_softmax(logits, -1), torch.tensor([1, 0]))
        loss.backward()
        images = torch.randn(2, 3, 8, 8)
        images.unfold(2, 4, 4).unfold(3, 4, 4).permute(0, 2, 3, 1, 4, 5).reshape(2, 4, -1)
        F.unfold(images, kernel_size=4, stride=4).transpose(1, 2)
        embedding, lstm = nn.Embedding(50, 16, padding_idx=0), nn.LSTM(16, 12, num_layers=2, batch_first=True)
        inputs = torch.randint(0, 50, (2, 5))
        hidden, _ = lstm(embedding(inputs), (torch.zeros(2, 2, 12), torch.zeros(2, 2, 12)))
        log_probas = F.log_softmax(nn.Linear(12, 50)(hidden), dim=-1)
        nll = -log_probas.gather(-1, inputs.unsqueeze(-1)).squeeze(-1)
        mask = torch.ones(2, 5)
        ((nll * mask).sum(dim=1) / mask.sum(dim=1)).mean().backward()
        torch.stack([nll.argmax(-1), nll.topk(2, dim=-1).indices[:, 0]]).float().std()
        model = nn.Sequential(embedding, nn.Flatten(), nn.Linear(80, 2))
        for batch in DataLoader([(inputs[i], i) for i in range(2)], batch_size=2, shuffle=True):
            model.zero_grad()
            F.cross_entropy(model(batch[0]), batch[1]).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        with torch.no_grad():
            model.eval()(inputs).softmax(-1).max(dim=-1)
    finally:
        torch.set_rng_state(state)


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


def _json_or_empty(msg: bytes) -> dict:
    try:
        request = json.loads(msg)
    except ValueError:
        return {}
    return request if isinstance(request, dict) else {}


def _warm_op_log(deferred: list[bytes], ctrl: socket.socket, workers: set[int]) -> None:
    """The op log's warm-up (``warm_up_op_log``), then the ban guards asked for meanwhile. Tests run
    on the workers forked before it, so a worker that exits meanwhile is reaped and reported at once
    (SIGCHLD), not a second or more later: the parent waits only so long for an exit status."""
    previous = signal.signal(signal.SIGCHLD, lambda *_: _reap(ctrl, workers))
    try:
        try:
            warm_up_op_log()
        except Exception:   # noqa: BLE001 - then each worker that needs the op log imports it
            pass
        for held in deferred:
            _prepare(held)
    finally:
        signal.signal(signal.SIGCHLD, previous)
    gc.freeze()
    try:
        ctrl.send(json.dumps({"op_log_warm": True}).encode())   # the parent drops its cold spares
    except OSError:
        pass


FIRST_FORKS_WAIT_S = 0.02   # after a fork, how long a request for the next worker (a spare) is awaited
                            # before the op log's warm-up (which holds every fork for a second or more)
FIRST_FORKS_MAX = 4         # ... and after this many forks it is not put off any longer


def main(ctrl_fd: int, libraries: list[str] = ()) -> None:
    """Serve the parent on ``ctrl_fd`` until it closes it. Ready once torch is warm. The op log's
    warm-up (torch._dynamo) is only for a grading with bans (a ``prepare`` message, which the parent
    sends before its first request): it waits until the first workers are forked and no request is
    waiting (or ``FIRST_FORKS_MAX`` are), or until a request says its test bans functions (``"op_log":
    true``), so a grading's first tests need not wait for it; the ban guards asked for are worked out
    after it. Without bans it never runs (a test whose code builds an optimizer imports torch._dynamo
    in its own worker, as one process grading every test would once). Each ``spawned`` answer says
    whether the op log was warm."""
    ctrl = socket.socket(fileno=ctrl_fd)
    _become_subreaper()
    warm_up(list(libraries), op_log=False)
    import autograder.worker.sandbox  # noqa: F401 - what each worker imports before its guard, imported once
    import faulthandler, tempfile  # noqa: F401,E401
    try:
        ctrl.send(json.dumps({"ready": os.getpid(), "network_blocked": _probe_network_block()}).encode())
    except OSError:   # the parent gave up on us while we warmed up
        return
    gc.freeze()   # a worker's garbage collections never walk (so never copy) the pages of what we imported
    workers: set[int] = set()
    forked = 0
    deferred: list[bytes] | None = []   # prepare messages held until the op log's warm-up; None once done
    while True:
        wait = FIRST_FORKS_WAIT_S if deferred and forked else 0.1
        readable, _, _ = select.select([ctrl], [], [], wait)
        _reap(ctrl, workers)
        _kill_orphans(workers)
        if deferred and forked and (not readable or forked >= FIRST_FORKS_MAX):
            _warm_op_log(deferred, ctrl, workers)
            deferred = None
            continue
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
            if not fds and deferred is not None:
                deferred.append(msg)
            elif not fds:
                _prepare(msg)
            continue
        request = _json_or_empty(msg)
        if deferred is not None and request.get("op_log"):   # this worker's test bans functions
            _warm_op_log(deferred, ctrl, workers)
            deferred = None
        forked += 1
        pid = os.fork()
        if pid == 0:
            try:
                ctrl.close()
                _child(request, fds)
            finally:
                os._exit(0)
        workers.add(pid)
        for fd in fds:
            os.close(fd)
        try:
            ctrl.send(json.dumps({"spawned": pid, "op_log": deferred is None}).encode())
        except OSError:   # the parent closed the pool meanwhile: leave nothing behind, quietly
            _shutdown()
            os._exit(0)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
