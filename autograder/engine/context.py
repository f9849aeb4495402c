"""``TestContext``: everything one test may ask of the student's code, and its bookkeeping.

One context per test. It starts the test's worker on first use (fresh state for every
test), sends requests with the test's deadline, turns every kind of worker failure into
a ``StudentCodeFailure`` with a message for the student, and collects the student's
output and the op log for the runner.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

import torch

from autograder.suite import errors
from autograder.suite.proxy import Remote
from autograder.wire import framing
from autograder.wire.codec import DecodeError, Decoder, Encoder

MAX_LABEL = 160
KNOWN_HANG_S = 2.0   # a call that hung in an earlier test gets this long (or 20% of the test's limit)
# Reply fields that say how a value was computed (the op log, ban evidence), not what came back:
# left out of the trace digest (see TestContext.reply_digest).
UNTRACED_REPLY_FIELDS = ("ops", "banned", "banned_count", "tampered")
# Tools whose replies are the grader's own diagnostics, not the student's values: the notebook
# loader's notes say which statements ran past its time cap, which depends on the machine's load.
UNTRACED_TOOLS = ("load_notes",)


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
    """``model.get_patches(tensor(2, 3, 8, 8), 4)``; when too long, the front of the target and the
    end of the arguments are cut, never the name of what is called."""
    parts = [summarize(a) for a in args] + [f"{k}={summarize(v)}" for k, v in kwargs.items()]
    target_label, arguments = target._label, ", ".join(parts)
    if len(target_label) > MAX_LABEL // 2:
        target_label = "..." + target_label[-(MAX_LABEL // 2 - 3):]
    room = MAX_LABEL - len(target_label) - 2
    if len(arguments) > room:
        arguments = arguments[:max(room - 3, 0)] + "..."
    return f"{target_label}({arguments})"


def hang_key(label: str) -> str:
    """What a call label names, without arguments: the same function in any test."""
    previous = None
    while previous != label:
        previous, label = label, re.sub(r"\([^()]*\)", "", label)
    return label.lstrip(".")


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
        except framing.Deadline:
            self.worker.dump_stack()   # its output then says where the student's code was
            self.worker.kill()
            raise
        except (framing.PeerClosed, framing.FrameError):
            self.worker.kill()
            raise

    def exit_status(self) -> int | None:
        return self.worker.exit_status()

    def killed_for(self) -> str | None:
        """Why the grader killed the worker (e.g. its memory), if it did."""
        return self.worker.killed_for

    keep: tuple[str, ...] = ()    # scratch files to read before the worker's scratch is removed

    def close(self) -> None:
        if self.keep:
            self.worker.kill(keep=self.keep)
        else:
            self.worker.kill()

    def kept_files(self) -> dict[str, bytes]:
        return dict(getattr(self.worker, "kept", {}))

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

    def kept_files(self) -> dict[str, bytes]:
        return {}

    def output(self) -> str:
        return ""


class TestContext:
    __test__ = False   # not a pytest test class
    def __init__(self, run, *, hidden: bool, time_limit: float, log_ops: bool, test_id: str,
                 ban_patterns: tuple[str, ...] = ()):
        self.run = run                       # autograder.engine.runner.GradingRun
        self.hidden = hidden
        self.deadline = time.monotonic() + time_limit
        self.time_limit = time_limit
        self.log_ops = log_ops
        self.ban_patterns = tuple(ban_patterns)   # sent with every request: the worker's guard blocks them
        self.test_id = test_id
        self.notes: list[str] = []
        self.ops: set[str] = set()
        self.banned: set[str] = set()        # banned names the worker saw (matched there, over everything)
        self.tampered: list[str] = []        # why the worker's evidence cannot be trusted
        self.silent_calls: list[str] = []
        self._transport = None
        self._dead: errors.StudentCodeFailure | None = None
        self._modules: dict[tuple, Remote] = {}
        # opt-in (GradingOptions.trace): a digest of every reply of this test, in order
        self._trace = hashlib.sha256() if getattr(run, "trace", False) else None

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

    def run_script(self, script: str, **options) -> dict:
        """Run the submitted file ``script`` as a program in the worker (see worker.script_runner)."""
        self.run.require_module(script.rsplit(".", 1)[0])
        where = "src/" if not options.get("cwd") else ""
        label = " ".join([f"`python {where}{script}", *options.get("args", ())]) + "`"
        return self.request("script", None, args={"script": script, **options}, label=label)

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
        if self.ban_patterns:
            header["bans"] = list(self.ban_patterns)
        for key, value in fields.items():
            header[key] = value if key in ("name", "module") else encoder.encode(value)
        transport = self._get_transport()
        key = hang_key(label) if op == "call" else None
        known = self.run.hangs.get(key) if key else None
        deadline, cut = self.deadline, None
        if known is not None:    # it hung in an earlier test: this one does not wait as long
            cut = max(KNOWN_HANG_S, 0.2 * self.time_limit)
            if time.monotonic() + cut < deadline:
                deadline = time.monotonic() + cut
            else:
                cut = None
        try:
            reply, payload = transport.exchange(header, encoder.payload(), deadline)
        except framing.Deadline:
            self._dead = errors.WorkerTimeout(self._hang_message(label, key, known, transport, cut))
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
        if self._trace is not None and not (op == "tool" and fields.get("name") in UNTRACED_TOOLS):
            self._trace_reply(reply, payload)
        return self._read_reply(reply, payload, label, op, device)

    def _trace_reply(self, reply: dict, payload) -> None:
        head = json.dumps({k: v for k, v in reply.items() if k not in UNTRACED_REPLY_FIELDS},
                          sort_keys=True, separators=(",", ":"), default=repr).encode()
        self._trace.update(len(head).to_bytes(8, "big") + head + len(payload).to_bytes(8, "big"))
        self._trace.update(payload)

    def reply_digest(self) -> str:
        """sha256 (hex) over the replies this test's requests got, in order (but UNTRACED_TOOLS'): each
        reply's header (canonical JSON, without UNTRACED_REPLY_FIELDS) and its payload (raw tensor bytes).
        Equal digests: the student's code gave the grader the same values. "" when not tracing."""
        return self._trace.hexdigest() if self._trace is not None else ""

    def _hang_message(self, label: str, key: str | None, known: str | None, transport, cut: float | None) -> str:
        """The timeout explained: the call, where in the student's files it was, and (for a call
        that already hung in this grading and was given ``cut`` seconds) that it was stopped early."""
        _, frames = errors.split_stack_dump(transport.output())
        where = errors.hang_location(frames, str(self.run.staged.dir)) or known or ""
        if key and known is None:
            self.run.hangs[key] = where
        early = (f": it already hung in an earlier test of this grading, so here it was stopped after "
                 f"{cut:g} s") if cut is not None else ""
        at = f" It was at {where}." if where else ""
        return (f"Your code did not finish within this test's time limit of {self.time_limit:g} s "
                f"(while running {label}){early}.{at} Look for an infinite loop, a blocking call or very slow "
                "code; the worker was stopped and grading carried on.")

    def _read_reply(self, reply: dict, payload, label: str, op: str, device: str | None):
        if self.ban_patterns:
            self._read_ban_evidence(reply, label)
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

    def _read_ban_evidence(self, reply: dict, label: str) -> None:
        """What the worker matched against the bans (see autograder.worker.oplog). A reply of a
        test with bans that lacks the fields was not written by the worker's code: that is
        tampering too (a student can only add names, which costs them the test)."""
        error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        if reply.get("ok") is not True and error.get("kind") not in ("student", "unsendable"):
            return   # the grader's own request failed: no student code ran
        banned, tampered = reply.get("banned"), reply.get("tampered")
        if not isinstance(banned, list) or not isinstance(tampered, list):
            self.tampered.append(f"the reply to {label} carried no banned-function evidence")
            return
        self.banned.update(str(b)[:200] for b in banned[:64])
        count = reply.get("banned_count")
        if not banned and isinstance(count, int) and count > 0:
            self.banned.add("a banned operation")
        self.tampered.extend(f"{str(t)[:300]}, while running {label}" for t in tampered[:16])

    def _proxy(self, entry: dict, label: str, device: str | None) -> Remote:
        return Remote(self, entry["ref"], str(entry.get("type", "?"))[:200], label, device)

    def _ref_of(self, value) -> int:
        if isinstance(value, Remote):
            return value._ref
        raise TypeError(f"cannot send a {type(value).__name__} to the worker")

    def _get_transport(self):
        if self._transport is None:
            self._transport = self.run.new_transport(op_log=self.log_ops)   # log_ops: the test bans
            # The student's clock starts once their worker is ready: the fork server's start-up
            # is the grader's time, not theirs.
            self.deadline = time.monotonic() + self.time_limit
        return self._transport

    def kept_files(self) -> dict[str, bytes]:
        """The scratch files the grader kept from this test's worker (see GradingRun.keep_memos)."""
        return self._transport.kept_files() if self._transport is not None else {}

    def close(self) -> str:
        """Stop the worker; returns what the student's code printed during the test."""
        if self._transport is None:
            return ""
        self._transport.close()
        printed, _ = errors.split_stack_dump(self._transport.output())
        return printed


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
