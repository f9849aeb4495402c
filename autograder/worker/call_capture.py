"""What a student's object hands to its own methods during one call (a worker tool).

``record_calls(obj, names, args, kwargs, functions)`` wraps the methods ``names`` of ``obj``
on the instance only, calls ``obj(*args, **kwargs)`` once and returns
``{"output": result, "calls": {name: [{"args": [...], "result": ...}, ...]},
"functions": {function: [...]}}``: for each wrapped method, and for each torch function
named in ``functions`` (e.g. "softmax": F.softmax, torch.softmax and Tensor.softmax alike),
its calls in order (at most ``MAX_CALLS``), each with its positional arguments and its
result, tensors as detached copies and anything else as None, so the record is data only.
The instance is restored afterwards, whatever the call did.

A suite uses it to read the queries, keys and values a ``forward`` passes to its own
attention methods, whatever projections produced them.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode

MAX_CALLS = 16


def _copy(value: Any) -> torch.Tensor | None:
    return value.detach().clone() if isinstance(value, torch.Tensor) else None


def _recorder(method, record: list):
    def recorded(*args, **kwargs):
        result = method(*args, **kwargs)
        if len(record) < MAX_CALLS:
            record.append({"args": [_copy(a) for a in args], "result": _copy(result)})
        return result
    return recorded


class _FunctionRecorder(TorchFunctionMode):
    """Records the calls of the torch functions whose ``__name__`` is in ``calls``."""

    def __init__(self, names):
        super().__init__()
        self.calls: dict[str, list] = {name: [] for name in names if isinstance(name, str)}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        record = self.calls.get(getattr(func, "__name__", None))
        if record is not None and len(record) < MAX_CALLS:
            record.append({"args": [_copy(a) for a in args], "result": _copy(result)})
        return result


def record_calls(obj, names, args=(), kwargs=None, functions=()) -> dict:
    """Call ``obj(*args, **kwargs)`` with its methods ``names`` and the torch ``functions``
    recorded (see the module docstring)."""
    recorder = _FunctionRecorder(functions)
    instance = getattr(obj, "__dict__", None)
    calls: dict[str, list] = {}
    saved: dict[str, tuple[bool, Any]] = {}
    try:
        for name in names if isinstance(instance, dict) else ():
            if not isinstance(name, str) or name in saved or not callable(getattr(obj, name, None)):
                continue
            saved[name] = (name in instance, instance.get(name))
            calls[name] = []
            instance[name] = _recorder(getattr(obj, name), calls[name])
        with recorder:
            output = obj(*args, **(kwargs or {}))
    finally:
        for name, (had, value) in saved.items():
            if had:
                instance[name] = value
            else:
                instance.pop(name, None)
    return {"output": output, "calls": calls, "functions": recorder.calls}
