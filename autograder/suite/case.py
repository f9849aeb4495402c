"""``GradedTestCase``: the base class of every graded test.

A test reads like ordinary PyTorch code::

    vit = self.student("vit_solution")          # proxy of the student's module (in a worker)
    ln = vit.LayerNorm(16)                       # constructed in the worker; a proxy
    y = ln(x)                                    # x crosses as bytes; y comes back as a plain tensor
    ref = self.reference("vit_solution").LayerNorm(16)   # trusted reference, in this process
    self.assert_close(y, ref(x), what="LayerNorm(16) on a (2, 5, 16) input")

Calls into student code return data (tensors, numbers, strings and containers of them)
by value, and anything else as a proxy. ``self.keep(f, ...)`` returns a proxy even for a
tensor, so that ``out.backward(g)`` can run where the graph lives. Tensors sent to the
worker arrive on the grading device (``self.device``) unless a proxy was made with
``device=...``.
"""
from __future__ import annotations

import unittest
from typing import Any

import torch

from autograder.suite import checks


class GradedTestCase(unittest.TestCase):
    """unittest.TestCase with a handle on the grading context (set by the runner)."""

    grading: Any = None   # autograder.engine.context.TestContext, injected per test
    atol: float = 1e-3    # default tolerances of assert_close; a suite may set its own
    rtol: float = 1e-3

    # -- student code, reference code ------------------------------------------------
    def student(self, module: str, device: str | None = None):
        """Proxy of the student's module ``module`` (e.g. ``"vit_solution"``), imported in a worker."""
        return self.grading.student_module(module, device=device)

    def library(self, name: str):
        """Proxy of an installed library module in the worker (``"torch"``, ``"torch.utils.data"``,
        or one the assignment declares in ``libraries``), to build objects that student code
        receives there (a tokenizer, a model, a DataLoader, an optimizer)."""
        return self.grading.library_module(name)

    def reference(self, module: str):
        """The instructor's reference module (a real module, trusted, imported in this process)."""
        return self.grading.reference_module(module)

    @property
    def device(self) -> str:
        """The grading device: ``"cuda"`` when a GPU is used, else ``"cpu"``."""
        return self.grading.device

    @property
    def hidden(self) -> bool:
        """True when this test's results are not shown to students before publication."""
        return self.grading.hidden

    def keep(self, func, *args, **kwargs):
        """Call ``func`` (a proxy) in the worker and return the result as a proxy."""
        return self.grading.call(func, args, kwargs, keep=True)

    def keep_item(self, proxy, key):
        """``proxy[key]`` as a proxy, not as data: e.g. the tensor of a returned tuple that is to be
        backpropagated in the worker (``proxy[key]`` alone brings a tensor back detached)."""
        return self.grading.request("getitem", proxy, key=key, keep=True, label=f"{proxy._label}[{key!r}]")

    def put(self, value, requires_grad: bool = False, device: str | None = None):
        """Place a tensor in the worker (on ``device``, default the grading device); returns its proxy."""
        return self.grading.put(value, requires_grad=requires_grad, device=device)

    def fetch(self, proxy):
        """The value of a proxy as data (tensors come back detached, on the CPU)."""
        return self.grading.fetch(proxy)

    def grads(self, module) -> dict[str, torch.Tensor | None]:
        """``{name: grad}`` over ``module.named_parameters()`` in the worker."""
        return self.grading.tool("grads", module)

    def parameter_count(self, module, trainable_only: bool = True) -> int:
        return self.grading.tool("parameter_count", module, trainable_only)

    def record_calls(self, obj, methods, *args, functions=(), **kwargs) -> dict:
        """Call ``obj(*args, **kwargs)`` in the worker once, recording what it passes to its own
        ``methods`` and to the torch ``functions`` (by name, e.g. "softmax"):
        ``{"output": ..., "calls": {method: [{"args": [...], "result": ...}]}, "functions": {...}}``,
        tensors as data and anything else as None (see autograder.worker.call_capture)."""
        return self.grading.tool("record_calls", obj, list(methods), list(args), dict(kwargs), list(functions))

    def record_modules(self, module, *args, **kwargs) -> dict:
        """Call ``module(*args, **kwargs)`` (a proxy of an ``nn.Module``) in the worker once, with
        forward hooks recording what each of its sub-modules received and returned:
        ``{"output", "modules": [{"path", "inputs", "output", "start", "end"}, ...], "paths", "error"}``
        (tensors as data; ``error``: what forward raised, the records made until then kept). What
        ``autograder.suite.localise.first_difference`` compares with the reference (see
        autograder.worker.call_capture.record_modules)."""
        return self.grading.tool("record_modules", module, list(args), dict(kwargs))

    def run_script(self, script: str, *, code=(), data=(), cwd: str = "", args=()) -> dict:
        """Run the submitted file ``script`` in the worker as the handout runs scripts:
        ``python src/<script> *args`` from an assignment root holding the staged ``code`` files
        under ``src/`` and the ``data`` files at the top (``cwd="src"``: ``python <script>`` from
        ``src/``). Returns what it printed and raised, as data (see autograder.worker.script_runner)."""
        return self.grading.run_script(script, code=list(code), data=list(data), cwd=cwd, args=list(args))

    def history(self, module: str, name: str) -> list:
        """The values a watched name of a notebook file had, in the file's order: dicts ``{"event":
        "rebound" | "call" | "final", "line", "value"}`` (``"function"`` too for a call it was passed to)."""
        return self.grading.tool("history", self.student(module), name)

    def load_notes(self, module: str) -> list[str]:
        """What loading a notebook file skipped or changed (shell lines, top-level calls, redefinitions)."""
        return self.grading.tool("load_notes", self.student(module))

    def seeds(self, n: int) -> list[int]:
        """``n`` seeds for drawing inputs: fixed for visible tests, drawn per run for hidden ones."""
        return self.grading.seeds(self.id(), n)

    def note(self, text: str) -> None:
        """Add a line to this test's output without failing it."""
        self.grading.notes.append(str(text))

    # -- checks with messages a student can act on ----------------------------------
    def assert_tensor(self, value, *, shape=None, dtype=None, what: str = "the result") -> torch.Tensor:
        """Fail unless ``value`` is a plain finite tensor of the given shape and dtype."""
        return checks.expect_tensor(value, shape=shape, dtype=dtype, what=what)

    def assert_close(self, actual, expected: torch.Tensor, *, what: str = "the result", hint: str | None = None,
                     atol: float | None = None, rtol: float | None = None,
                     reveal: bool | None = None) -> torch.Tensor:
        """Fail unless ``actual`` matches ``expected`` (shape, dtype kind, values).

        ``hint`` is added to the message on failure. Hidden tests never show expected values
        (``reveal`` defaults to ``not self.hidden``).
        """
        reveal = (not self.hidden) if reveal is None else reveal
        try:
            return checks.expect_close(actual, expected, what=what, reveal=reveal,
                                       atol=self.atol if atol is None else atol,
                                       rtol=self.rtol if rtol is None else rtol)
        except AssertionError as exc:
            if hint is None:
                raise
            raise AssertionError(f"{exc}\n  Hint: {hint}") from None
