"""The fork server's warm-up: ready once torch is warm; torch._dynamo (the op log, optimizers)
after its first forks, or before the first worker of a test with bans (the op log's import is
the grader's work and must not be spent on the test's time limit)."""
import shutil

import pytest
import torch

from autograder.engine.isolation.workers import WorkerPool
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
        first = pool.spawn(probe_dir, MODULES, "cpu")    # forked as soon as torch is warm
        try:
            assert _dynamo_at_import(first) is False
        finally:
            first.kill()
        later = None
        for _ in range(4):            # the first workers (at most zygote.FIRST_FORKS_MAX) are forked before it
            worker = pool.spawn(probe_dir, MODULES, "cpu")
            try:
                later = _dynamo_at_import(worker)
            finally:
                worker.kill()
        assert later is True


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
