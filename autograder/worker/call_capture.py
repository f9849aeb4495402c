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

``record_modules(module, args, kwargs)`` records, with forward hooks (the module tree is left as
it is), what every sub-module of ``module`` received and returned during one call, in the order
of the calls: what ``autograder.suite.localise`` compares with the reference to name the first
sub-module where a composite departs from it.
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


# -- what each sub-module of a module received and returned during one call ------------------
MAX_MODULE_CALLS = 512            # records kept per call (the rest are counted, not kept)
MAX_RECORDED_VALUES = 1 << 24     # tensor elements kept over all records (outputs beyond it: None)
MAX_INPUTS = 4                    # tensor arguments kept per call


def _copy_output(value: Any, budget: list) -> Any:
    """A tensor (or a list of them, for a tuple or list result) as detached copies; None otherwise
    or once ``budget[0]`` elements have been kept."""
    if isinstance(value, (tuple, list)):
        return [_copy_output(v, budget) for v in value[:MAX_INPUTS]]
    if not isinstance(value, torch.Tensor):
        return None
    if value.numel() > budget[0]:
        return None
    budget[0] -= value.numel()
    return value.detach().clone()


def record_modules(obj, args=(), kwargs=None, max_calls: int = MAX_MODULE_CALLS) -> dict:
    """Call ``obj(*args, **kwargs)`` (an ``nn.Module``) once with forward hooks on every module of
    ``obj.named_modules()`` (``obj`` itself included, under the path ""), and return
    ``{"output", "modules", "paths", "error", "dropped"}``: ``modules`` lists each call of a
    sub-module in the order the calls started, as ``{"path", "inputs", "output", "start", "end"}``
    (its tensor arguments, keyword ones after the positional ones, and its result as detached
    copies; ``start``/``end`` number the calls' starts and ends, so a call's sub-calls are those
    that start between its own start and end; ``end`` is None for a call that raised); ``paths``
    every module path of ``obj``; ``error`` None, or the exception forward raised (the records
    made until then are kept). Hooks observe only: the module tree is never changed, and every
    hook is removed afterwards, whatever the call did."""
    if not isinstance(obj, torch.nn.Module):
        raise TypeError(f"record_modules needs an nn.Module, not {type(obj).__name__}")
    calls: list[dict] = []
    counter = [0]
    budget = [MAX_RECORDED_VALUES]
    dropped = [0]
    open_calls: dict[int, list[dict | None]] = {}
    handles = []
    paths = []

    def tick() -> int:
        counter[0] += 1
        return counter[0] - 1

    def hooks(path: str, key: int):
        def pre(module, args, kwargs):
            record = None
            if len(calls) < max_calls:
                tensors = [a for a in list(args) + [kwargs[k] for k in sorted(kwargs)] if isinstance(a, torch.Tensor)]
                record = {"path": path, "inputs": [_copy_output(t, budget) for t in tensors[:MAX_INPUTS]],
                          "output": None, "start": tick(), "end": None}
                calls.append(record)
            else:
                dropped[0] += 1
            open_calls.setdefault(key, []).append(record)

        def post(module, args, kwargs, output):
            stack = open_calls.get(key)
            record = stack.pop() if stack else None
            if record is not None:
                record["output"] = _copy_output(output, budget)
                record["end"] = tick()
        return pre, post

    try:
        for path, module in obj.named_modules():
            if not isinstance(path, str) or not isinstance(module, torch.nn.Module):
                continue
            paths.append(path)
            if len(paths) > 4 * max_calls:
                break
            pre, post = hooks(path, len(paths))
            handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(module.register_forward_hook(post, with_kwargs=True))
        error = None
        try:
            output = obj(*args, **(kwargs or {}))
        except Exception as exc:   # noqa: BLE001 - the records made before it are what is asked for
            output, error = None, f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        for handle in handles:
            handle.remove()
    return {"output": _copy_output(output, [MAX_RECORDED_VALUES]), "modules": calls, "paths": paths,
            "error": error, "dropped": dropped[0]}
