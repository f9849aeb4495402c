"""Banned functions in the worker: made unavailable to the whole process, and logged.

A test that declares a ban (``@enforce_ban``) sends the ban's runtime patterns with every
request; the first such request installs the ``Guard`` in its worker (one worker per test),
before the student's module is imported:

- **Kernels.** Every dispatcher kernel of every operator whose name contains a pattern
  (``aten::native_layer_norm``, ``aten::rms_norm``, ``aten::_scaled_dot_product_flash_attention_for_cpu``,
  ``quantized::layer_norm``...) is replaced, at every backend and composite key it has, by
  one that records the operator and raises. The dispatcher is process-wide and below every
  Python layer: other threads, ``torch.ops``, ``torch._C``, TorchScript, vmap, inference
  mode and popped or disabled modes all end there, and no kernel can have been captured
  before (nothing of the student's has run yet). The native kernel stays shadowed: no API
  calls a shadowed kernel, and the registration handles are held by the audit hook alone.
- **Python functions.** torch's own functions whose name (or module) contains a pattern get
  a body that calls a private operator of the guard (``autograder_ban::hit``: recorded,
  raises) and then raises: ``F.multi_head_attention_forward`` (whose ``need_weights=True``
  path runs only ordinary operators), the ``torch._refs``/``torch._decomp`` decompositions.
  The function objects are changed in place, so references taken earlier reach the new body.
- **An audit hook** (hooks cannot be removed) refuses what could undo the guard or run code
  it cannot see: walking the garbage collector (the only way to the hook and its handles),
  ctypes (its modules are also emptied, and loading it or ``_posixsubprocess`` again is
  refused, as is any compiled extension from outside the Python installation), tracing and
  profiling hooks, replacing a function's code or building code objects, starting another
  program (a fresh interpreter has no guard), opening ``/proc/*/mem``.

So what is banned is never computed: a call that reaches it raises, whatever any log says.
The records (hits, refusals) and the op log are the evidence shown to the student, matched
in the worker and kept apart from the op list, so never cut from it (``Worker.handle``);
outside a module's import, a hit or a refusal fails the test (``runner._ban_verdict``).

``OpLog`` is the per-call log at the function and dispatch levels (thread-local torch
modes): it names what a call ran (an empty log for a call that computed something is
flagged for instructor review) and checks, when the call ends, that its modes were still
installed, unpatched and recording.

Length: the op log and the ban guard share the dispatcher bookkeeping and its tamper checks; splitting them would expose that state across modules.
"""
from __future__ import annotations

import os
import re
import secrets
import sys
import types
import warnings
from typing import Iterable

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

MAX_REPORTED = 32          # names per reply; the count comes along
_NONCE = secrets.token_hex(8)
_STUB_FILE = f"<autograder ban {_NONCE} of"     # the code of the guard's own stubs
# Keys whose kernels only redispatch to a lower key (ours, once installed): left alone.
_REDISPATCH_KEYS = ("Autograd", "ADInplaceOrView", "Autocast", "FuncTorch", "Functionalize", "Tracer",
                    "Python", "PreDispatch", "BackendSelect", "Named", "Conjugate", "Negative",
                    "ZeroTensor", "Batched", "VmapMode")
_KEY_LINE = re.compile(r"^(\w+)(?:\[alias\])?: (?:fallthrough )?registered at", re.M)
_DENIED_EVENTS = {
    "gc.get_objects": "walking the garbage collector (gc.get_objects)",
    "gc.get_referrers": "walking the garbage collector (gc.get_referrers)",
    "gc.get_referents": "walking the garbage collector (gc.get_referents)",
    "sys.settrace": "a tracing hook (sys.settrace)",
    "sys.setprofile": "a profiling hook (sys.setprofile)",
    "sys.addaudithook": "an audit hook (sys.addaudithook)",
    "code.__new__": "building a code object",
    "subprocess.Popen": "starting another program (subprocess)",
    "os.exec": "starting another program (os.exec*)",
    "os.posix_spawn": "starting another program (os.posix_spawn)",
    "os.posix_spawnp": "starting another program (os.posix_spawnp)",
    "os.spawn": "starting another program (os.spawn*)",
    "os.system": "starting another program (os.system)",
    "os.startfile": "starting another program (os.startfile)",
}
_NATIVE_MODULES = ("ctypes", "_ctypes", "_posixsubprocess", "_testcapi", "_testinternalcapi",
                   "_xxsubinterpreters", "_xxinterpchannels", "cffi", "_cffi_backend")


def matches(names: Iterable[str], patterns: Iterable[str]) -> list[str]:
    """The names containing any of ``patterns``, sorted and distinct."""
    patterns = tuple(p for p in patterns if p)
    return sorted({n for n in names if any(p in n for p in patterns)})


# -- the per-call log ----------------------------------------------------------------------
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


_METHODS = ((_FunctionLog, "__torch_function__", _FunctionLog.__torch_function__,
             _FunctionLog.__torch_function__.__code__),
            (_DispatchLog, "__torch_dispatch__", _DispatchLog.__torch_dispatch__,
             _DispatchLog.__torch_dispatch__.__code__))


class OpLog:
    """Context manager recording op names into ``self.seen``; ``tampered`` says, after the
    call, why the log cannot be trusted (its modes popped, replaced, patched or not recording)."""

    def __init__(self):
        self.seen: set[str] = set()
        self.tampered: list[str] = []
        self._modes = [_FunctionLog(self.seen), _DispatchLog(self.seen)]
        self._depths = (0, 0)

    def __enter__(self):
        for mode in self._modes:
            mode.__enter__()
        self._depths = (torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack())
        return self

    def __exit__(self, *exc):
        try:
            self.tampered = self._check()
        except Exception as error:   # noqa: BLE001 - anything odd here is the student's doing
            self.tampered = [f"the op log could not be checked ({type(error).__name__})"]
        for mode in reversed(self._modes):
            try:
                mode.__exit__(*exc)
            except Exception:   # the student may have popped our mode already
                pass
        return False

    def _check(self) -> list[str]:
        problems = []
        function_mode, dispatch_mode = self._modes
        depths = (torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack())
        if depths != self._depths:
            problems.append("torch's mode stacks changed during the call")
        elif (torch._C._get_function_stack_at(depths[0] - 1) is not function_mode
              or torch._C._get_dispatch_stack_at(depths[1] - 1) is not dispatch_mode):
            problems.append("the op log's modes were removed or replaced during the call")
        for mode, cls in ((function_mode, _FunctionLog), (dispatch_mode, _DispatchLog)):
            if type(mode) is not cls or mode.__dict__.get("seen") is not self.seen or type(self.seen) is not set:
                problems.append("the op log's record was replaced during the call")
        for cls, name, function, code in _METHODS:
            if cls.__dict__.get(name) is not function or function.__code__ is not code:
                problems.append("the op log's code was patched")
        if problems:
            return problems
        recorded = frozenset(self.seen)
        self.seen.clear()
        torch.neg(torch.zeros(()))             # the canary: both levels must see it
        dispatch = any(n.startswith("aten.neg") for n in self.seen)
        function = any(n.endswith(".neg") and not n.startswith("aten.") for n in self.seen)
        self.seen.clear()
        self.seen.update(recorded)
        if not (dispatch and function):
            return ["the op log stopped recording during the call (its check op was not seen)"]
        return []


# -- the guard: banned operators unavailable to the whole process --------------------------
class Guard:
    """Installed once per worker process (see the module docstring). ``hits()`` and
    ``refusals()`` are cumulative; the worker reports what each request added."""

    def __init__(self, patterns: Iterable[str]):
        self.patterns = tuple(sorted({p for p in patterns if isinstance(p, str) and p}))
        self._hits: list[str] = []
        self._refusals: list[str] = []
        self._stubs: list[tuple[types.FunctionType, types.CodeType]] = []
        self._stubbed: set[int] = set()
        self._indexed = 0
        keep: list = []                                 # kept alive by the audit hook only
        prepared = _prepared(self.patterns)             # what the fork server worked out (see prepare)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")             # "Overriding a previously registered kernel"
            self.operators = self._block_operators(keep, prepared[0] if prepared else None)
            self._define_hit_operator(keep)
            if prepared:
                self._install_stubs(*prepared[1:])
            self.refresh()
        self._install_hook(keep)
        _empty_native_modules()

    def hits(self) -> tuple[str, ...]:
        return tuple(self._hits)

    def refusals(self) -> tuple[str, ...]:
        return tuple(self._refusals)

    # kernels ------------------------------------------------------------------------------
    def _message(self, name: str) -> str:
        return _message(name)

    def _block_operators(self, keep: list, prepared: list[tuple[str, list[str]]] | None = None) -> list[str]:
        """Replace the kernels of the matching operators (``prepared``: the fork server's list of
        them with their keys, see ``prepare``; else found now)."""
        blocked, handles = [], {}
        if prepared is None:
            prepared = [(qualified, keys) for _, qualified, keys in _operators(self.patterns)]
        for qualified, kernel_keys in prepared:
            namespace, name = qualified.split("::", 1)
            for key in kernel_keys:
                if namespace not in handles:
                    handles[namespace] = torch._C._dispatch_library(
                        "IMPL", namespace, "", f"<autograder ban {_NONCE}>", 0)
                handles[namespace].impl(name, key, _raiser(qualified, self._hits, self._message(qualified)), False)
            blocked.append(qualified)
        keep.append(handles)
        return blocked

    def _define_hit_operator(self, keep: list) -> None:
        handle = torch._C._dispatch_library("FRAGMENT", "autograder_ban", "", f"<autograder ban {_NONCE}>", 0)
        handle.define("hit(str name) -> ()")
        hits, message = self._hits, self._message

        def hit(name):
            hits.append(str(name)[:200])
            raise RuntimeError(message(name))
        handle.impl("hit", "CompositeExplicitAutograd", hit, False)
        keep.append(handle)

    # Python functions ---------------------------------------------------------------------
    def refresh(self) -> None:
        """Stub the matching torch functions (those of modules imported since the last call too)."""
        _index_modules()
        patterns = self.patterns
        for function, where in _TORCH_FUNCTIONS[self._indexed:]:
            if id(function) not in self._stubbed and any(p in where for p in patterns):
                self._stub(function)
        self._indexed = len(_TORCH_FUNCTIONS)

    def _stub(self, function: types.FunctionType) -> None:
        code = _stub_code(function)
        if code is not None:
            self._install_stub(function, code)

    def _install_stub(self, function: types.FunctionType, code: types.CodeType) -> None:
        if id(function) in self._stubbed or function.__code__.co_freevars != code.co_freevars:
            return
        function.__code__ = code
        self._stubs.append((function, code))
        self._stubbed.add(id(function))

    def _install_stubs(self, stubs: list[tuple[types.FunctionType, types.CodeType]], indexed: int) -> None:
        """The fork server's stubs (see ``prepare``) for the functions it had indexed; ``refresh``
        then stubs those indexed since, as it would have all of them."""
        for function, code in stubs:
            self._install_stub(function, code)
        self._indexed = indexed

    def intact(self) -> list[str]:
        """Why the guard's stubs are no longer in place (empty: they are)."""
        changed = [f"{f.__module__}.{f.__qualname__}" for f, code in self._stubs if f.__code__ is not code]
        return [f"the ban's replacement of {', '.join(changed[:3])} was undone"] if changed else []

    # the audit hook -----------------------------------------------------------------------
    def _install_hook(self, keep: list) -> None:
        refusals = self._refusals
        own_classes = (_FunctionLog, _DispatchLog)
        gate = _gate_native_loading()
        keep.append(gate)
        gated = frozenset(id(f) for f in gate)

        def refuse(what: str):
            refusals.append(what)
            raise RuntimeError(f"autograder: {what} is not allowed in a test that bans built-in functions "
                               "(it could undo or bypass the check)")

        def hook(event, args):
            what = _DENIED_EVENTS.get(event)
            if what is not None:
                refuse(what)
            if event.startswith("ctypes."):
                refuse(f"ctypes ({event})")
            if event == "object.__setattr__" and len(args) >= 3:
                if args[1] == "__code__" and not (isinstance(args[2], types.CodeType)
                                                  and args[2].co_filename.startswith(_STUB_FILE)):
                    refuse("replacing a function's code")
                if any(args[0] is c for c in own_classes):
                    refuse("patching the op log")
            elif event == "object.__getattr__" and len(args) >= 2 and id(args[0]) in gated \
                    and args[1] in ("__defaults__", "__kwdefaults__"):
                refuse("reading the import gate")
            elif event == "open" and args and _is_process_memory(args[0]):
                refuse("opening a process's memory (/proc/*/mem)")
            elif event == "import" and args and isinstance(args[0], str) \
                    and args[0].split(".")[0] in _NATIVE_MODULES:
                refusals.append(f"importing {args[0]}")
                raise ImportError(f"autograder: importing {args[0]} is not allowed in a test that bans "
                                  "built-in functions (it could undo or bypass the check)")

        hook.keep = keep    # the handles live as long as the hook, which the interpreter never drops
        sys.addaudithook(hook)


def _message(name: str) -> str:
    return f"autograder: {name} is banned in this test"


def _operators(patterns: tuple[str, ...]) -> list[tuple[int, str, list[str]]]:
    """The operators whose name contains one of ``patterns``: (their place in the dispatcher's
    list, their name, the dispatch keys of their kernels that a guard replaces; those that only
    redispatch are left alone)."""
    found = []
    keys = set(torch._C.DispatchKey.__members__)
    for index, qualified in enumerate(torch._C._dispatch_get_all_op_names()):
        if not any(p in qualified for p in patterns) or "::" not in qualified:
            continue
        found.append((index, qualified, [key for key in _KEY_LINE.findall(torch._C._dispatch_dump(qualified))
                                         if key in keys and not key.startswith(_REDISPATCH_KEYS)]))
    return found


def _stub_code(function: types.FunctionType) -> types.CodeType | None:
    """The code a guard gives ``function``: record the call (``autograder_ban::hit``) and raise.
    None when it cannot take the function's place (its free variables differ)."""
    name = f"{function.__module__}.{function.__qualname__}"
    free = function.__code__.co_freevars
    source = ("def _make():\n" + "".join(f"    {v} = None\n" for v in free)
              + "    def stub(*args, **kwargs):\n"
              + (f"        if False:\n            ({', '.join(free)},)\n" if free else "")
              + f"        __import__('torch').ops.autograder_ban.hit({name!r})\n"
              + f"        raise RuntimeError({_message(name)!r})\n"
              + "    return stub\n")
    scope: dict = {}
    exec(compile(source, f"{_STUB_FILE} {name}>", "exec"), scope)
    code = scope["_make"]().__code__
    return code if code.co_freevars == free else None


# -- worked out once by the fork server, for the guards of all its workers --------------------
_PREPARED: dict[str, tuple[list[tuple[int, str, list[str]]], list[tuple[int, types.FunctionType, types.CodeType]]]] = {}
_PREPARED_AT: dict = {"indexed": 0, "modules": frozenset()}


def prepare(patterns: Iterable[str]) -> None:
    """In the fork server, before it forks (never in a worker): for each ban pattern, the operators
    a guard blocks and the stub code of torch's matching Python functions, so that each worker's
    ``Guard`` only installs them instead of searching (tens of milliseconds per worker). This only
    reads and compiles: nothing is installed here, no student code ever runs in this process, and
    a worker still installs its guard before its student's module is imported."""
    _index_modules()
    if frozenset(sys.modules) != _PREPARED_AT["modules"]:   # modules imported since: work it all out again
        _PREPARED.clear()
    new = tuple(p for p in dict.fromkeys(patterns) if isinstance(p, str) and p and p not in _PREPARED)
    operators = _operators(new) if new else []
    for pattern in new:
        stubs = []
        for index, (function, where) in enumerate(_TORCH_FUNCTIONS):
            code = _stub_code(function) if pattern in where else None
            if code is not None:
                stubs.append((index, function, code))
        _PREPARED[pattern] = ([op for op in operators if pattern in op[1]], stubs)
    _PREPARED_AT.update(indexed=len(_TORCH_FUNCTIONS), modules=frozenset(sys.modules))


def _prepared(patterns: tuple[str, ...]):
    """``(operators, stubs, indexed)`` for a guard of ``patterns`` from ``prepare``: what the guard
    would find itself, in the same order. None when a pattern was not prepared, or when a module
    imported since could have registered operators (anything but the standard library and ours)."""
    if not patterns or any(p not in _PREPARED for p in patterns):
        return None
    for name in sys.modules.keys() - _PREPARED_AT["modules"]:
        if name.split(".")[0] not in sys.stdlib_module_names and name.split(".")[0] != "autograder":
            return None
    operators = {op[1]: op for p in patterns for op in _PREPARED[p][0]}
    stubs = {stub[0]: stub for p in patterns for stub in _PREPARED[p][1]}
    return ([(name, keys) for _, name, keys in sorted(operators.values(), key=lambda op: op[0])],
            [(function, code) for _, function, code in sorted(stubs.values(), key=lambda stub: stub[0])],
            _PREPARED_AT["indexed"])


def _raiser(name: str, hits: list, message: str):
    def kernel(*args, **kwargs):
        hits.append(name)
        raise RuntimeError(message)
    return kernel


def _is_process_memory(path) -> bool:
    if isinstance(path, int):
        return False
    try:
        text = os.fsdecode(os.fspath(path))
    except TypeError:
        return False
    if "mem" not in text:
        return False
    if not os.path.isabs(text) and os.path.basename(text) == "mem":
        return True    # relative (perhaps to a directory descriptor of /proc/<pid>)
    real = os.path.realpath(text)
    return real.startswith("/proc/") and os.path.basename(real) == "mem"


# -- an index of the process's modules, built once by the fork server for all its workers -----
_INDEXED_MODULES: set[str] = set()
_TORCH_FUNCTIONS: list[tuple[types.FunctionType, str]] = []   # torch's Python functions, "module.name"
_TORCH_FUNCTION_IDS: set[int] = set()                         # ... their ids (kept with it, not rebuilt)
_NATIVE_REFERENCES: list[tuple[types.ModuleType, str]] = []  # module attributes holding ctypes & co


def _index_modules() -> None:
    """Index the modules imported since the last call: torch's Python functions (with what
    they wrap) and every module attribute holding a native module or its functions, types
    or instances."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _index_new_modules()


def _index_new_modules() -> None:
    new = [(n, m) for n, m in list(sys.modules.items()) if n not in _INDEXED_MODULES]
    if not new:
        return
    _INDEXED_MODULES.update(n for n, _ in new)
    native = [m for n, m in sys.modules.items() if m is not None and n.split(".")[0] in _NATIVE_MODULES]
    contents = [v for m in native for v in vars(m).values() if _defined_by_native(v)]
    native_ids = {id(m) for m in native} | {id(v) for v in contents}
    native_types = {v for v in contents if isinstance(v, type)} - {object, type}
    for name, module in new:
        if not isinstance(module, types.ModuleType) or id(module) in native_ids:
            continue
        try:
            items = list(vars(module).items())
        except TypeError:
            continue
        in_torch = name == "torch" or name.startswith("torch.")
        for key, value in items:
            if id(value) in native_ids or type(value) in native_types or (
                    isinstance(value, type) and not native_types.isdisjoint(value.__mro__)):
                _NATIVE_REFERENCES.append((module, key))
            while in_torch and type(value) is types.FunctionType and id(value) not in _TORCH_FUNCTION_IDS:
                where = value.__module__
                if isinstance(where, str) and (where == "torch" or where.startswith("torch.")):
                    _TORCH_FUNCTION_IDS.add(id(value))
                    _TORCH_FUNCTIONS.append((value, f"{where}.{value.__name__}"))
                value = value.__dict__.get("__wrapped__")


def _empty_native_modules() -> None:
    """ctypes and _posixsubprocess gone from the process: their modules emptied, every
    module-level reference to them (or to their functions, types and instances) removed."""
    _index_modules()
    for module, key in _NATIVE_REFERENCES:
        try:
            delattr(module, key)
        except (AttributeError, TypeError):
            pass
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in _NATIVE_MODULES:
            continue
        for key in [k for k in vars(module) if k not in ("__name__", "__doc__", "__spec__", "__loader__")]:
            try:
                delattr(module, key)
            except (AttributeError, TypeError):
                pass
        sys.modules[name] = None


def _defined_by_native(value) -> bool:
    """A function, type or instance of the native modules (not the modules they import, nor
    the ints and strings they hold)."""
    def native(owner) -> bool:
        where = getattr(owner, "__module__", None)
        return isinstance(where, str) and where.split(".")[0] in _NATIVE_MODULES
    try:
        return native(value) if isinstance(value, type) or callable(value) else native(type(value))
    except Exception:   # noqa: BLE001 - an odd object is kept
        return False


def _gate_native_loading() -> tuple:
    """``_imp.create_dynamic``/``create_builtin`` refuse the native modules and extensions from
    outside the Python installation (a compiled library shipped by the student). The originals
    are kept in keyword defaults, which the audit hook refuses to let anyone read."""
    import _imp
    roots = tuple(os.path.realpath(p) + os.sep for p in {sys.prefix, sys.base_prefix, sys.exec_prefix,
                                                          os.path.dirname(os.path.dirname(torch.__file__))})

    def refused(spec) -> bool:
        name = getattr(spec, "name", "") or ""
        if name.split(".")[0] in _NATIVE_MODULES:
            return True
        origin = getattr(spec, "origin", None)
        return isinstance(origin, str) and os.path.isabs(origin) and not os.path.realpath(origin).startswith(roots)

    def create_dynamic(spec, file=None, *, _real=_imp.create_dynamic):
        if refused(spec):
            raise ImportError(f"autograder: loading {getattr(spec, 'name', '?')} is not allowed in a test "
                              "that bans built-in functions")
        return _real(spec) if file is None else _real(spec, file)

    def create_builtin(spec, *, _real=_imp.create_builtin):
        if refused(spec) or getattr(spec, "name", None) == "_imp":
            raise ImportError(f"autograder: loading {getattr(spec, 'name', '?')} is not allowed in a test "
                              "that bans built-in functions")
        return _real(spec)

    _imp.create_dynamic = create_dynamic
    _imp.create_builtin = create_builtin
    return create_dynamic, create_builtin


# In the fork server, once (its workers inherit both): the modes' first use (it imports
# torch._dynamo, which a worker must not import after the guard has emptied ctypes), then the index.
with _FunctionLog(set()), _DispatchLog(set()):
    torch.neg(torch.zeros(()))
for _name in ("torch.nn.attention.flex_attention", "torch.nn.attention.varlen"):   # public, imported lazily:
    try:                                                                            # indexed (and stubbed) now
        __import__(_name)
    except Exception:   # noqa: BLE001 - not in this torch
        pass
_index_modules()
