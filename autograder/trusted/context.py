"""``TestContext``: everything one test may ask of the student's code, and its bookkeeping.

One context per test. It starts the test's worker on first use (fresh state for every
test), sends requests with the test's deadline, turns every kind of worker failure into
a ``StudentCodeFailure`` with a message for the student, and collects the student's
output and the op log for the runner.
"""
from __future__ import annotations

import time
from typing import Any

import torch

from autograder.trusted import errors
from autograder.trusted.remote import Remote
from autograder.wire import framing
from autograder.wire.codec import DecodeError, Decoder, Encoder

MAX_LABEL = 160


def summarize(value: Any) -> str:
    if isinstance(value, Remote):
        return value._label
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(summarize(v) for v in value[:4])
        return f"[{inner}{', ...' if len(value) > 4 else ''}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, dict):
        return "{...}"
    if isinstance(value, str) and len(value) > 30:
        return f"<text of {len(value)} characters>"
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def call_label(target: Remote, args: tuple, kwargs: dict) -> str:
    parts = [summarize(a) for a in args] + [f"{k}={summarize(v)}" for k, v in kwargs.items()]
    label = f"{target._label}({', '.join(parts)})"
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 3] + "..."


class ProcessTransport:
    """Requests to a worker process, bounded by a deadline (time.monotonic()).

    Any failure of the exchange kills the worker and raises the framing exception
    (``Deadline``, ``PeerClosed`` or ``FrameError``) for the context to explain.
    """

    def __init__(self, worker, max_reply_bytes: int):
        self.worker = worker
        self.max_reply_bytes = max_reply_bytes

    def exchange(self, header: dict, payload: bytes, deadline: float) -> tuple[dict, bytearray]:
        try:
            framing.send_frame(self.worker.sock, header, payload, deadline)
            return framing.recv_frame(self.worker.sock, deadline, self.max_reply_bytes)
        except (framing.Deadline, framing.PeerClosed, framing.FrameError):
            self.worker.kill()
            raise

    def exit_status(self) -> int | None:
        return self.worker.exit_status()

    def killed_for(self) -> str | None:
        """Why the grader killed the worker (e.g. its memory), if it did."""
        return self.worker.killed_for

    def close(self) -> None:
        self.worker.kill()

    def output(self) -> str:
        return self.worker.output.text(wait=0.5)


class InProcessTransport:
    """No isolation: the worker's handler called directly (only for the benchmark's floor)."""

    def __init__(self, worker):
        self.worker = worker

    def exchange(self, header: dict, payload: bytes, deadline: float):
        return self.worker.handle(header, payload)

    def exit_status(self) -> int | None:
        return None

    def killed_for(self) -> str | None:
        return None

    def close(self) -> None:
        pass

    def output(self) -> str:
        return ""


class TestContext:
    __test__ = False   # not a pytest test class
    def __init__(self, run, *, hidden: bool, time_limit: float, log_ops: bool, test_id: str):
        self.run = run                       # autograder.trusted.runner.GradingRun
        self.hidden = hidden
        self.deadline = time.monotonic() + time_limit
        self.time_limit = time_limit
        self.log_ops = log_ops
        self.test_id = test_id
        self.notes: list[str] = []
        self.ops: set[str] = set()
        self.silent_calls: list[str] = []
        self._transport = None
        self._dead: errors.StudentCodeFailure | None = None
        self._modules: dict[tuple, Remote] = {}

    @property
    def device(self) -> str:
        return self.run.device

    # -- the suite-facing API (see autograder.suite.case) ---------------------------
    def student_module(self, module: str, device: str | None = None) -> Remote:
        key = (module, device)
        if key not in self._modules:
            self.run.require_module(module)
            proxy = self.request("import", None, module=module, label=f"`import {module}`")
            self._modules[key] = Remote(self, proxy._ref, proxy._type_name, module, device)
        return self._modules[key]

    def library_module(self, name: str) -> Remote:
        """Proxy of an installed library module in the worker (torch, or one the assignment declares)."""
        if name not in self._modules:
            self._modules[name] = self.request("library", None, module=name, label=f"`import {name}`")
        return self._modules[name]

    def reference_module(self, module: str):
        return self.run.reference_module(module)

    def call(self, target: Remote, args: tuple, kwargs: dict, keep: bool = False):
        label = call_label(target, args, kwargs)
        return self.request("call", target, args=list(args), kwargs=dict(kwargs), keep=keep, label=label)

    def put(self, value, requires_grad: bool = False, device: str | None = None) -> Remote:
        if requires_grad:
            value = value.detach().clone().requires_grad_(True)
        return self.request("put", None, value=value, keep=True, label=summarize(value), device=device)

    def fetch(self, proxy: Remote):
        return self.request("fetch", proxy, label=proxy._label)

    def tool(self, name: str, target: Remote, *args):
        return self.request("tool", target, name=name, args=list(args), label=f"{name}({target._label})")

    def seeds(self, test_id: str, n: int) -> list[int]:
        return self.run.seeds(test_id, n, self.hidden)

    # -- the protocol -------------------------------------------------------------
    def request(self, op: str, target: Remote | None, *, label: str, keep: bool = False,
                device: str | None = None, **fields):
        """Send one request; ``device`` (default: the target's) is where tensor arguments land."""
        if self._dead is not None:
            raise type(self._dead)(f"{self._dead} (so {label} could not run either)")
        encoder = Encoder(self._ref_of)
        header: dict = {"op": op, "keep": keep}
        if device is None and target is not None:
            device = target._device
        if target is not None:
            header["target"] = self._ref_of(target)
        if device is not None:
            header["device"] = device
        if op == "call" and self.log_ops:
            header["log_ops"] = True
        for key, value in fields.items():
            header[key] = value if key in ("name", "module") else encoder.encode(value)
        transport = self._get_transport()
        try:
            reply, payload = transport.exchange(header, encoder.payload(), self.deadline)
        except framing.Deadline:
            self._dead = errors.WorkerTimeout(
                f"Your code did not finish within this test's time limit of {self.time_limit:g} s "
                f"(while running {label}). Look for an infinite loop, a blocking call or very slow "
                "code; the worker was stopped and grading carried on.")
            raise self._dead from None
        except framing.PeerClosed:
            why = transport.killed_for()
            if why:
                message = f"While running {label}, the grader stopped the worker running your code: {why}."
            else:
                message = f"While running {label}, {errors.describe_exit(transport.exit_status())}."
            self._dead = errors.WorkerDied(message)
            raise self._dead from None
        except framing.FrameError as exc:
            self._dead = errors.BadReply(f"While running {label}, the worker sent an invalid reply ({exc}).")
            raise self._dead from None
        return self._read_reply(reply, payload, label, op, device)

    def _read_reply(self, reply: dict, payload, label: str, op: str, device: str | None):
        if reply.get("ok") is True:
            ops = reply.get("ops")
            if isinstance(ops, list):
                self.ops.update(str(o)[:200] for o in ops[:5000])
            try:
                value = Decoder(payload, lambda e: self._proxy(e, label, device)).decode(reply.get("value"))
            except DecodeError as exc:
                raise errors.BadReply(f"While running {label}, the worker's reply could not be read ({exc}).") from None
            if op == "call" and isinstance(ops, list) and not ops and isinstance(value, (torch.Tensor, Remote)):
                self.silent_calls.append(label)
            return value
        error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        kind = error.get("kind")
        if kind == "student":
            raise errors.StudentException(format_student_error(error, label))
        if kind == "unsendable":
            raise errors.StudentException(
                f"{label} returned {str(error.get('result_type'))[:200]}, which could not be sent back "
                f"for checking: {error.get('type')}: {str(error.get('message'))[:500]}. Return plain tensors.")
        raise errors.BadReply(f"While running {label}, the worker reported: {str(error.get('message'))[:500]}")

    def _proxy(self, entry: dict, label: str, device: str | None) -> Remote:
        return Remote(self, entry["ref"], str(entry.get("type", "?"))[:200], label, device)

    def _ref_of(self, value) -> int:
        if isinstance(value, Remote):
            return value._ref
        raise TypeError(f"cannot send a {type(value).__name__} to the worker")

    def _get_transport(self):
        if self._transport is None:
            self._transport = self.run.new_transport()
            # The student's clock starts once their worker is ready: the fork server's start-up
            # is the grader's time, not theirs.
            self.deadline = time.monotonic() + self.time_limit
        return self._transport

    def close(self) -> str:
        """Stop the worker; returns what the student's code printed during the test."""
        if self._transport is None:
            return ""
        self._transport.close()
        return self._transport.output()


def format_student_error(error: dict, label: str) -> str:
    etype = str(error.get("type", "Exception"))[:200]
    message = str(error.get("message", ""))[:2000]
    if etype == "SystemExit":
        head = f"{label} called sys.exit({str(error.get('exit_code', ''))[:50]}); graded code must return, not exit."
    else:
        head = f"{label} raised {etype}: {message}"
    lines = [head]
    frames = error.get("frames") if isinstance(error.get("frames"), list) else []
    for frame in frames[-6:]:
        if isinstance(frame, dict):
            lines.append(f'  File "{str(frame.get("file"))[:100]}", line {frame.get("line")}, '
                         f'in {str(frame.get("function"))[:100]}')
            if frame.get("code"):
                lines.append(f"    {str(frame.get('code'))[:200]}")
    return "\n".join(lines)
