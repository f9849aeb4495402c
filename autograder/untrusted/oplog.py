"""Runtime op log: the torch functions and aten ops a call into student code ran.

Two layers, because each sees what the other misses: the function level sees
``F.multi_head_attention_forward`` (which dispatches to ordinary aten ops), the dispatch
level sees every alias of ``layer_norm`` as ``aten.native_layer_norm``. Student code can
switch the modes off, so the trusted side treats an empty log for a call that computed
something as a finding of its own.
"""
from __future__ import annotations

from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode


def _function_name(func) -> str:
    module = getattr(func, "__module__", None) or ""
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    return f"{module}.{name}" if module else str(name)


class _FunctionLog(TorchFunctionMode):
    def __init__(self, seen: set):
        super().__init__()
        self.seen = seen

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.seen.add(_function_name(func))
        return func(*args, **(kwargs or {}))


class _DispatchLog(TorchDispatchMode):
    def __init__(self, seen: set):
        super().__init__()
        self.seen = seen

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.seen.add(str(func))
        return func(*args, **(kwargs or {}))


class OpLog:
    """Context manager recording op names into ``self.seen``."""

    def __init__(self):
        self.seen: set[str] = set()
        self._modes = [_FunctionLog(self.seen), _DispatchLog(self.seen)]

    def __enter__(self):
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc):
        for mode in reversed(self._modes):
            try:
                mode.__exit__(*exc)
            except Exception:   # the student may have popped our mode already
                pass
        return False
