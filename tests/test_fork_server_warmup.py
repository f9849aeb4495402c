"""The fork server's warm-up: ready once torch is warm; torch._dynamo (the op log, optimizers)
after its first forks, or before the first worker of a test with bans (the op log's import is
the grader's work and must not be spent on the test's time limit)."""
import shutil
import time

import pytest
import torch

from autograder.engine.isolation.workers import WorkerPool
from autograder.worker import zygote
from autograder.wire import framing
from autograder.wire.codec import Encoder
from support import ask as _ask, readable_folder

PROBE = """\
import sys
import torch.nn.functional as F
DYNAMO_AT_IMPORT = "torch._dynamo" in sys.modules


def norm(x):
    return F.layer_norm(x, x.shape[-1:])
"""


@pytest.fixture
def probe_dir():
    folder = readable_folder("warmup-", {"probe.py": PROBE})
    yield str(folder)
    shutil.rmtree(folder)


MODULES = {"probe": {"loader": "module"}}


def _dynamo_at_import(worker) -> bool:
    module = _ask(worker, {"op": "import", "module": "probe", "keep": True})
    assert module["ok"], module
    reply = _ask(worker, {"op": "getattr", "target": module["value"]["ref"], "name": "DYNAMO_AT_IMPORT"})
    assert reply["ok"], reply
    return reply["value"]


def test_the_first_workers_do_not_wait_for_torch_dynamo_and_later_ones_find_it_imported(probe_dir):
    with WorkerPool() as pool:
        pool.prepare_bans(["layer_norm"])                # a grading with bans: the op log will be wanted
        first = pool.spawn(probe_dir, MODULES, "cpu")    # forked as soon as torch is warm
        try:
            assert _dynamo_at_import(first) is False
        finally:
            first.kill()
        later = []
        for _ in range(zygote.FIRST_FORKS_MAX):   # the first workers (the spares asked at once) come before it
            worker = pool.spawn(probe_dir, MODULES, "cpu")
            try:
                later.append(_dynamo_at_import(worker))
            finally:
                worker.kill()
        assert later[-1] is True, later


def test_without_bans_the_fork_server_never_imports_torch_dynamo(probe_dir):
    """An assignment without bans never needs the op log: no worker waits for its warm-up, and no
    core is spent on it (a test whose code builds an optimizer imports it in its own worker)."""
    with WorkerPool() as pool:
        seen = []
        for _ in range(zygote.FIRST_FORKS_MAX + 2):
            worker = pool.spawn(probe_dir, MODULES, "cpu")
            try:
                seen.append(_dynamo_at_import(worker))
            finally:
                worker.kill()
            assert not worker.op_log
    assert seen == [False] * len(seen)


def test_a_worker_for_a_test_with_bans_has_the_op_log_ready_and_still_refuses_a_banned_function(probe_dir):
    """Not on the test's clock: a spawn for a test with bans waits for the op log's warm-up."""
    with WorkerPool() as pool:
        early = pool.spawn(probe_dir, MODULES, "cpu")     # no bans: forked before the warm-up
        early.kill()
        assert not early.op_log
        worker = pool.spawn(probe_dir, MODULES, "cpu", op_log=True)   # its spare is not good enough
        assert worker.op_log
        try:
            bans = {"bans": ["layer_norm"], "log_ops": True}
            module = _ask(worker, {"op": "import", "module": "probe", "keep": True, **bans})
            assert module["ok"], module
            norm = _ask(worker, {"op": "getattr", "target": module["value"]["ref"], "name": "norm", "keep": True, **bans})
            assert norm["ok"], norm
            encoder = Encoder(lambda obj: 0)
            args = encoder.encode([torch.randn(2, 4)])
            call = _ask(worker, {"op": "call", "target": norm["value"]["ref"], "args": args, **bans},
                        encoder.payload())
        finally:
            worker.kill()
    assert not call["ok"], call
    assert any("layer_norm" in name for name in call.get("banned", [])), call



def test_a_worker_that_exits_during_the_op_log_warm_up_is_reported_at_once():
    """The first tests run while the fork server warms the op log up (a second or more): their
    workers' exit statuses must not wait for it (the grader waits only so long for one)."""
    folder = readable_folder("warmup-exit-", {"exits.py": "import os\nos._exit(3)\n"})
    try:
        with WorkerPool() as pool:
            pool.prepare_bans(["layer_norm"])
            worker = pool.spawn(str(folder), {"exits": {"loader": "module"}}, "cpu")   # then spares, warm-up
            time.sleep(0.3)                               # the fork server is importing torch._dynamo now
            with pytest.raises(framing.PeerClosed):
                _ask(worker, {"op": "import", "module": "exits"})
            status = worker.exit_status(wait=0.5)         # the warm-up itself lasts a second or more
            worker.kill()
    finally:
        shutil.rmtree(folder)
    assert status == 3
