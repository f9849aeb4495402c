"""The worker: holds the student's objects and answers requests about them.

``Worker.handle(header, payload) -> (header, payload)`` is the whole protocol; ``serve``
runs it over a socket in a worker process, and the in-process "floor" mode of the
benchmark calls it directly. Requests come from the trusted parent; replies are data
only (see ``autograder.wire.codec``).

Request: ``{"op": ..., "target": ref?, ...}`` with ops ``import``, ``getattr``,
``setattr``, ``call``, ``getitem``, ``iter``, ``len``, ``put``, ``fetch``, ``tool``, ``script``.
Reply: ``{"ok": true, "value": ..., "ops": [...]}`` or ``{"ok": false, "error": {...}}``.
A request of a test that bans functions carries ``"bans"`` (the runtime patterns): the
first one installs the ``oplog.Guard`` before any student code runs, and every reply then
carries ``"banned"`` (the banned names seen, matched here over everything the request ran:
never cut from a longer list) and ``"tampered"`` (why the evidence cannot be trusted).
"""
from __future__ import annotations

import importlib
import inspect
import operator
import os
import socket
import sys
import types
from typing import Any

import torch

from autograder.worker.call_capture import record_calls, record_modules
from autograder.worker.loader import describe_exception, load_module
from autograder.common.notebook_loader import load_notebook
from autograder.worker.script_runner import run_script
from autograder.wire import framing
from autograder.wire.codec import Decoder, Encoder


def _oplog():
    """``worker.oplog`` (the op log and the ban guard), imported on first use: its import brings
    torch._dynamo (a second or more of CPU), which a test without bans never needs. Workers forked
    once the fork server has imported it (all but the first of a grading, see ``zygote``) find it
    imported. A test with bans imports it with its first request, before any student code runs."""
    from autograder.worker import oplog
    return oplog


class RequestError(Exception):
    """The request itself is malformed (a grader bug, not the student's)."""


def _grads(module) -> dict:
    return {name: (p.grad if p.grad is None else p.grad.detach())
            for name, p in module.named_parameters()}


def _parameter_count(module, trainable_only: bool = True) -> int:
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only))


TOOLS = {"grads": _grads, "parameter_count": _parameter_count, "record_calls": record_calls,
         "record_modules": record_modules}


class Worker:
    """``modules`` maps each submission module to its load options: ``loader`` ("module" or
    "notebook"), ``keep_first``, ``watch`` and ``expected_names`` (see SubmissionFile)."""

    def __init__(self, staged_dir: str, modules: dict[str, dict], device: str = "cpu",
                 libraries: list[str] = (), guard_bans: bool = True):
        self.staged_dir = staged_dir
        self.guard_bans = guard_bans    # False only in the trusted process (the benchmark's floor)
        self.guard: Guard | None = None
        self.modules = modules
        self.libraries = {"torch", *libraries}
        self.device = device
        self.loaded: dict[str, types.ModuleType] = {}
        self.load_notes: dict[str, list[str]] = {}
        self.histories: dict[str, dict[str, list]] = {}
        self.objects: dict[int, Any] = {}
        self._next = 1
        if device.startswith("cuda"):
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

    # -- object table -------------------------------------------------------------
    def _ref(self, obj: Any) -> int:
        ref = self._next
        self._next += 1
        self.objects[ref] = obj
        return ref

    def _target(self, header: dict) -> Any:
        ref = header.get("target")
        if type(ref) is not int or ref not in self.objects:
            raise RequestError(f"unknown target {ref!r}")
        return self.objects[ref]

    # -- protocol -----------------------------------------------------------------
    def handle(self, header: dict, payload: bytes | bytearray) -> tuple[dict, bytes]:
        op = header.get("op")
        device = header.get("device") or self.device
        log = _oplog().OpLog() if header.get("log_ops") else None
        bans = header.get("bans") if isinstance(header.get("bans"), list) else []
        mark = (0, 0)
        try:
            mark = self._guard(bans)
            decoder = Decoder(payload, self._resolve, lambda t, meta: self._place(t, meta, device))
            result = self._dispatch(op, header, decoder, log)
        except RequestError as exc:
            return {"ok": False, "error": {"kind": "request", "message": str(exc)}}, b""
        except BaseException as exc:   # noqa: BLE001 - student code may raise anything, SystemExit included
            reply = {"ok": False, "error": {"kind": "student", **describe_exception(exc, self.staged_dir)}}
            return self._evidence(reply, op, bans, log, mark), b""
        finally:
            _flush_output()
        encoder = Encoder(self._ref)
        try:
            if header.get("keep"):
                wire_value = {"ref": self._ref(result), "type": _type_name(result)}
            else:
                wire_value = encoder.encode(result)
        except BaseException as exc:   # noqa: BLE001
            info = describe_exception(exc, self.staged_dir)
            return self._evidence({"ok": False, "error": {"kind": "unsendable", **info,
                                                          "result_type": _type_name(result)}},
                                  op, bans, log, mark), b""
        reply = self._evidence({"ok": True, "value": wire_value}, op, bans, log, mark)
        if log is not None:
            reply["ops"] = sorted(log.seen)[:5000]
        return reply, encoder.payload()

    # -- bans (see autograder.worker.oplog) ----------------------------------------------
    def _guard(self, bans: list) -> tuple[int, int]:
        """Install the guard on the first request that carries bans; where its records stand."""
        patterns = [p for p in bans if isinstance(p, str) and p]
        if patterns and self.guard_bans and self.guard is None:
            try:
                if self.device.startswith("cuda") and torch.cuda.is_available():
                    torch.cuda.init()   # later device queries then skip NVML's ctypes, which the guard removes
                self.guard = _oplog().Guard(patterns)
            except Exception as exc:   # noqa: BLE001 - the grader's own failure, reported as such
                raise RequestError(f"the banned-function guard could not be installed ({exc})") from None
        if self.guard is None:
            return (0, 0)
        self.guard.refresh()   # torch modules imported since
        return len(self.guard.hits()), len(self.guard.refusals())

    def _evidence(self, reply: dict, op, bans: list, log: OpLog | None, mark: tuple[int, int]) -> dict:
        """``banned`` and ``tampered`` for a request of a test with bans. What the guard met while
        a module was imported is not counted (a notebook's own checks may call what its graded
        functions must not): it was refused all the same."""
        if not bans:
            return reply
        oplog = _oplog()
        names = set(log.seen) if log is not None else set()
        found = oplog.matches(names, [p for p in bans if isinstance(p, str)])
        tampered = list(log.tampered) if log is not None else []
        if self.guard is not None:
            if op != "import":
                found = sorted(set(found) | set(self.guard.hits()[mark[0]:]))
                tampered += [f"it tried {what}" for what in dict.fromkeys(self.guard.refusals()[mark[1]:])]
            tampered += self.guard.intact()
        reply["banned"] = found[:oplog.MAX_REPORTED]
        reply["banned_count"] = len(found)
        reply["tampered"] = tampered[:oplog.MAX_REPORTED]
        return reply

    def _resolve(self, entry: dict) -> Any:
        ref = entry["ref"]
        if ref not in self.objects:
            raise RequestError(f"unknown reference {ref}")
        return self.objects[ref]

    @staticmethod
    def _place(t: torch.Tensor, meta: dict, device: str) -> torch.Tensor:
        t = t.to(device)
        if meta.get("requires_grad") and t.is_floating_point():
            t.requires_grad_(True)
        return t

    def _dispatch(self, op: str, header: dict, decoder: Decoder, log: OpLog | None) -> Any:
        if op == "import":
            return self._import(header.get("module"))
        if op == "library":
            name = header.get("module")
            if not isinstance(name, str) or name.split(".")[0] not in self.libraries:
                raise RequestError(f"library {name!r} is not declared by the assignment")
            return importlib.import_module(name)
        if op == "put":
            return decoder.decode(header.get("value"))
        if op == "script":   # run a submitted file as a program (see worker.script_runner)
            options = decoder.decode(header.get("args", {"dict": []}))
            if type(options) is not dict:
                raise RequestError("script needs a dict of options")
            try:
                return run_script(self.staged_dir, **options)
            except (TypeError, ValueError, OSError) as exc:   # the script's own errors are in its result
                raise RequestError(f"script: {exc}") from None
        target = self._target(header)
        if op == "getattr":
            name = _name(header)
            if isinstance(target, types.ModuleType) and target.__name__ in self.modules and not hasattr(target, name):
                raise AttributeError(self._missing_name_message(target, name))
            return getattr(target, name)
        if op == "setattr":
            setattr(target, _name(header), decoder.decode(header.get("value")))
            return None
        if op == "call":
            args = decoder.decode(header.get("args", {"list": []}))
            kwargs = decoder.decode(header.get("kwargs", {"dict": []}))
            if type(args) is not list or type(kwargs) is not dict:
                raise RequestError("call needs a list of args and a dict of kwargs")
            if log is None:
                return target(*args, **kwargs)
            with log:
                return target(*args, **kwargs)
        if op == "getitem":
            return operator.getitem(target, decoder.decode(header.get("key")))
        if op == "iter":
            return list(target)
        if op == "len":
            return len(target)
        if op == "fetch":
            return target
        if op == "tool" and header.get("name") in ("history", "load_notes"):
            module = getattr(target, "__name__", None)
            args = decoder.decode(header.get("args", {"list": []}))
            if header["name"] == "load_notes":
                return list(self.load_notes.get(module, []))
            return list(self.histories.get(module, {}).get(args[0] if args else None, []))
        if op == "tool":
            tool = TOOLS.get(header.get("name"))
            if tool is None:
                raise RequestError(f"unknown tool {header.get('name')!r}")
            args = decoder.decode(header.get("args", {"list": []}))
            return tool(target, *args)
        raise RequestError(f"unknown op {op!r}")


    def _import(self, name) -> types.ModuleType:
        options = self.modules.get(name) if isinstance(name, str) else None
        if options is None:
            raise RequestError(f"module {name!r} is not a submission module")
        if name in self.loaded:
            return self.loaded[name]
        if options.get("loader") == "notebook":
            path = os.path.join(self.staged_dir, name + ".py")
            loaded = load_notebook(path, name, keep_first=options.get("keep_first", ()),
                                   watch=options.get("watch", ()), device=self.device)
            self.load_notes[name] = loaded.notes
            self.histories[name] = loaded.history
            self.loaded[name] = loaded.module
        else:
            self.loaded[name] = load_module(self.staged_dir, name)
        return self.loaded[name]

    def _missing_name_message(self, module: types.ModuleType, name: str) -> str:
        own = sorted(k for k, v in vars(module).items()
                     if not k.startswith("_") and not isinstance(v, types.ModuleType)
                     and not ((inspect.isfunction(v) or inspect.isclass(v)) and v.__module__ != module.__name__))
        listing = ", ".join(own[:12]) + (", ..." if len(own) > 12 else "") if own else "no names at all"
        message = f"{module.__name__}.py does not define {name}; it defines {listing}"
        expected = self.modules.get(module.__name__, {}).get("expected_names", ())
        if expected:
            message += f" (graded names expected: {', '.join(expected)})"
        for other, options in self.modules.items():
            expected = set(options.get("expected_names", ()))
            if other != module.__name__ and expected and len(expected & set(own)) >= min(2, len(expected)):
                message += f" — is this {other}.py?"
                break
        return message


def _name(header: dict) -> str:
    name = header.get("name")
    if type(name) is not str or not name.isidentifier():
        raise RequestError(f"bad attribute name {name!r}")
    return name


def _type_name(value: Any) -> str:
    t = type(value)
    return f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', '?')}"[:200]


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:   # noqa: BLE001
            pass


def serve(sock: socket.socket, worker: Worker) -> None:
    """Answer requests until the parent closes the socket."""
    while True:
        try:
            header, payload = framing.recv_frame(sock)
        except (framing.PeerClosed, framing.FrameError):
            return
        reply, reply_payload = worker.handle(header, payload)
        framing.send_frame(sock, reply, reply_payload)
