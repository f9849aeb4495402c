"""Recorded reference ("replay"): the reference's answers to the visible tests, without its code.

At build time the reference submission is graded on the visible tests with every module
that ``self.reference(...)`` returns wrapped in a recording proxy. In the student bundle
``self.reference(...)`` returns a replaying proxy that answers from the recording.

Contract (what makes replay sound):

* Every object the reference hands out belongs to a *lineage* (the object made by one
  access on the module root, and everything reached from it). Each interaction (attribute,
  call, item) is keyed by the lineage's whole history so far, the object's identity in it,
  the operation, a content hash of the arguments (tensors by dtype, shape, strides, device,
  requires_grad and exact bytes; Python data by value; objects of the same lineage by
  identity) and torch's grad mode and default dtype. Same key, same history: same answer.
* Anything the key cannot see poisons the lineage (later interactions are not recorded,
  and in replay they miss): arguments that cannot be hashed (student proxies, other
  lineages), the test changing a value it gave to or got from the reference, the reference
  changing its arguments.
* Data results are returned as copies, at record and replay time alike; when the reference
  later changes the tensor it returned (``state_dict()`` then ``load_state_dict()``), the
  change is recorded and applied to the copy. Results that carry an autograd graph are
  returned as tensors that allow ``.detach()`` only.
* The recording is made twice under different global random states; only keys recorded
  with the same answer both times are kept.
* In replay, every miss raises ``ReplayMiss`` (a ``ReferenceNotShipped``): the test is
  reported as decided on the server, never guessed.

Stored as JSON plus raw tensor bytes with a JSON index (never pickle), deterministically.

Length: recording and replaying share the lineage keys, the canonical encoding and the proxies: the soundness argument above needs all of them in view.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import random
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace

import torch

from autograder.engine import registry
from autograder.engine.reference import ReferenceNotShipped

RECORDING_JSON = "reference_replay.json"   # in the bundle's suite folder
RECORDING_BIN = "reference_replay.bin"
_LOADED: dict[str, "Recording"] = {}


def _not_shipped():
    return ReferenceNotShipped


_MISS_CLASS = None


def _miss(why: str) -> Exception:
    """A ``ReplayMiss``: a ``ReferenceNotShipped``, so the test is decided on the server."""
    global _MISS_CLASS
    if _MISS_CLASS is None:
        _MISS_CLASS = type("ReplayMiss", (_not_shipped(),), {"__doc__": "A replay lookup failed."})
    return _MISS_CLASS(why)


# -- hashing ----------------------------------------------------------------------------
def _tensor_bytes(t: torch.Tensor) -> bytes:
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _canon(value, lineage) -> list | None:
    """A canonical form of an argument (hashable via JSON), or None when it cannot be keyed."""
    if isinstance(value, Proxy):
        return ["p", value._id] if value._lineage is lineage and lineage is not None else None
    if type(value) in (torch.Tensor, torch.nn.Parameter):
        digest = hashlib.sha256(_tensor_bytes(value)).hexdigest()
        return ["t", str(value.dtype), list(value.shape), list(value.stride()), value.device.type,
                bool(value.requires_grad), digest]
    if value is None or type(value) in (bool, int, str):
        return ["v", type(value).__name__, value]
    if type(value) is float:
        return ["f", value.hex()]
    if type(value) in (torch.dtype, torch.device):
        return [type(value).__name__, str(value)]
    if type(value) in (list, tuple, torch.Size):
        items = [_canon(v, lineage) for v in value]
        return None if any(i is None for i in items) else [type(value).__name__, items]
    if type(value) in (dict, OrderedDict):
        items = [[_canon(k, lineage), _canon(v, lineage)] for k, v in value.items()]
        return None if any(k is None or v is None for k, v in items) else [type(value).__name__, items]
    if type(value) is SimpleNamespace:
        items = _canon(vars(value), lineage)
        return None if items is None else ["namespace", items]
    return None


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()[:32]


def _modes() -> list:
    return [torch.is_grad_enabled(), str(torch.get_default_dtype())]


def _fingerprint(value):
    """Identity and version of a value's parts: changes when the test (or anyone) edits it in place."""
    if isinstance(value, torch.Tensor):
        with torch._C.DisableTorchFunctionSubclass():
            return ("t", id(value), value._version)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, id(value), tuple(_fingerprint(v) for v in value))
    if isinstance(value, dict):
        return ("d", id(value), tuple((k, _fingerprint(v)) for k, v in value.items()))
    if type(value) is SimpleNamespace:
        return ("n", id(value), _fingerprint(vars(value)))
    return ("o", id(value))


# -- data results -------------------------------------------------------------------------
class GraphTensor(torch.Tensor):
    """A reference result that carried an autograd graph: only ``.detach()`` is answered."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func is torch.Tensor.detach:
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **(kwargs or {}))
        raise _miss("a result of the reference was used with its autograd graph")


class ShapeOnlyTensor(torch.Tensor):
    """A reference result whose values were not the same in every recording (e.g. a random
    initialisation): only its shape, size, dimension count and dtype are answered."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in _METADATA:
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **(kwargs or {}))
        raise _miss("a result of the reference that varies from run to run was read")


_METADATA = (torch.Tensor.shape.__get__, torch.Tensor.size, torch.Tensor.dim, torch.Tensor.dtype.__get__,
             torch.Tensor.ndim.__get__, torch.Tensor.numel)


def _is_data(value) -> bool:
    if type(value) in (torch.Tensor, torch.nn.Parameter):
        return True
    if value is None or type(value) in (bool, int, float, str, torch.dtype, torch.device):
        return True
    if type(value) in (list, tuple, torch.Size):
        return all(_is_data(v) for v in value)
    if type(value) in (dict, OrderedDict):
        return all(type(k) in (str, int) and _is_data(v) for k, v in value.items())
    return False


def _copy(value, tensors: list):
    """The test's copy of a data result; tensors appended to ``tensors`` as (copy, plain view)."""
    if isinstance(value, torch.Tensor):
        with torch._C.DisableTorchFunctionSubclass():
            graph = bool(value.requires_grad)
            plain = value.detach().clone(memory_format=torch.contiguous_format)
        shown = plain.as_subclass(ShapeOnlyTensor) if isinstance(value, ShapeOnlyTensor) else \
            plain.as_subclass(GraphTensor) if graph else plain
        tensors.append((shown, plain))
        return shown
    if type(value) in (list, tuple, torch.Size):
        return type(value)(_copy(v, tensors) for v in value)
    if type(value) in (dict, OrderedDict):
        return type(value)((k, _copy(v, tensors)) for k, v in value.items())
    return value


class Blob:
    """Tensors by content: the JSON names them, the bytes live in one file."""

    def __init__(self):
        self.index: dict[str, dict] = {}
        self.data: dict[str, bytes] = {}

    def put(self, t: torch.Tensor) -> str:
        raw = _tensor_bytes(t)
        name = hashlib.sha256(raw + str(t.dtype).encode() + str(list(t.shape)).encode()).hexdigest()[:24]
        self.index[name] = {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape)}
        self.data[name] = raw
        return name


def _encode(value, blob: Blob):
    if isinstance(value, torch.Tensor):
        return ["t", blob.put(value), bool(value.requires_grad)]
    if value is None or type(value) in (bool, int, str):
        return ["v", value]
    if type(value) is float:
        return ["f", value.hex()]
    if type(value) in (torch.dtype, torch.device):
        return [type(value).__name__, str(value)]
    if type(value) in (list, tuple, torch.Size):
        return [type(value).__name__, [_encode(v, blob) for v in value]]
    return [type(value).__name__, [[k, _encode(v, blob)] for k, v in value.items()]]


def _decode(node, tensors: dict):
    kind = node[0]
    if kind == "m":
        return torch.zeros(node[2], dtype=getattr(torch, node[1])).as_subclass(ShapeOnlyTensor)
    if kind == "t":
        t = tensors[node[1]].clone()
        return t.requires_grad_(True) if node[2] else t      # _copy then guards it as a graph result
    if kind == "v":
        return node[1]
    if kind == "f":
        return float.fromhex(node[1])
    if kind == "dtype":
        return getattr(torch, node[1].removeprefix("torch."))
    if kind == "device":
        return torch.device(node[1])
    if kind in ("list", "tuple", "Size"):
        items = [_decode(v, tensors) for v in node[1]]
        return {"list": list, "tuple": tuple, "Size": torch.Size}[kind](items)
    return {"dict": dict, "OrderedDict": OrderedDict}[kind]((k, _decode(v, tensors)) for k, v in node[1])


# -- lineages and proxies ------------------------------------------------------------------
class Lineage:
    """The history of one family of reference objects (see the module docstring)."""

    def __init__(self, state: str):
        self.state = state
        self.poisoned = False
        self.returned: list[list] = []     # [real tensor or None, plain copy, copy's version, real's version]
        self.watched: list[tuple] = []     # (argument, fingerprint) given to the reference
        self.shown: list = []              # data results handed to the test
        self.shown_prints: list = []

    def settle(self) -> None:
        """Take the data results as they now are (after the reference's own changes were applied)."""
        self.shown_prints = [_fingerprint(v) for v in self.shown]

    def intact(self) -> bool:
        """False (and poisoned from now on) if a watched value or a returned copy was changed."""
        if not self.poisoned:
            if any(_fingerprint(v) != f for v, f in self.watched) or \
                    [_fingerprint(v) for v in self.shown] != self.shown_prints or \
                    any(plain._version != version for _, plain, version, _ in self.returned):
                self.poisoned = True
        return not self.poisoned


class Proxy:
    """A reference object seen through the recording or the recording's replay."""

    __slots__ = ("_session", "_lineage", "_id", "_real")

    def __init__(self, session, lineage: Lineage | None, ident: str, real=None):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_lineage", lineage)
        object.__setattr__(self, "_id", ident)
        object.__setattr__(self, "_real", real)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._session.interact(self, "getattr", name, (), {})

    def __call__(self, *args, **kwargs):
        return self._session.interact(self, "call", "", args, kwargs)

    def __getitem__(self, key):
        return self._session.interact(self, "getitem", "", (key,), {})

    def __repr__(self):
        return f"<reference object {self._id[:8]}>"


def _unsupported(name):
    def method(self, *args, **kwargs):
        raise _miss(f"the recorded reference does not answer {name}")
    return method


for _name in ("__setattr__", "__delattr__", "__iter__", "__len__", "__bool__", "__contains__", "__eq__",
              "__ne__", "__hash__", "__setitem__", "__delitem__", "__add__", "__radd__", "__sub__", "__rsub__",
              "__mul__", "__rmul__", "__matmul__", "__rmatmul__", "__truediv__", "__neg__", "__lt__", "__le__",
              "__gt__", "__ge__", "__float__", "__int__", "__index__", "__enter__", "__exit__"):
    setattr(Proxy, _name, _unsupported(_name))


def _unwrap(value):
    if isinstance(value, Proxy):
        return value._real
    if type(value) in (list, tuple):
        return type(value)(_unwrap(v) for v in value)
    if type(value) in (dict, OrderedDict):
        return type(value)((k, _unwrap(v)) for k, v in value.items())
    return value


class _Session:
    """What recording and replay share: keys, lineages, the copies handed to the test."""

    def root(self, module: str, real=None) -> Proxy:
        return Proxy(self, None, _digest("root", module), real)

    def interact(self, proxy: Proxy, op: str, name: str, args: tuple, kwargs: dict):
        lineage = proxy._lineage
        if lineage is not None and not lineage.intact():
            return self.poisoned(proxy, op, name, args, kwargs)
        canon = _canon([list(args), kwargs], lineage)
        if canon is None:
            if lineage is not None:
                lineage.poisoned = True
            return self.poisoned(proxy, op, name, args, kwargs)
        state = lineage.state if lineage is not None else ""
        key = _digest(state, proxy._id, op, name, canon, _modes())
        return self.answer(proxy, key, op, name, args, kwargs)

    def hand_out(self, lineage: Lineage | None, value, real_value, args, kwargs):
        """The test's copy of a data result, tracked in ``lineage`` with the arguments it took."""
        tensors: list = []
        shown = _copy(value, tensors)
        if lineage is not None:
            reals = _flatten_tensors(real_value) if real_value is not None else [None] * len(tensors)
            for (_, plain), real in zip(tensors, reals):
                lineage.returned.append([real, plain, plain._version, real._version if real is not None else 0])
            lineage.shown.append(shown)
            self.watch(lineage, args, kwargs)
        return shown

    @staticmethod
    def watch(lineage: Lineage, args, kwargs) -> None:
        lineage.watched.extend((v, _fingerprint(v)) for v in (*args, *kwargs.values()))


def _flatten_tensors(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if type(value) in (list, tuple, torch.Size):
        return [t for v in value for t in _flatten_tensors(v)]
    if type(value) in (dict, OrderedDict):
        return [t for v in value.values() for t in _flatten_tensors(v)]
    return []


class Recorder(_Session):
    """Records real interactions with the reference (one grading run)."""

    def __init__(self):
        self.entries: dict[str, list] = {}
        self.conflicts: set[str] = set()
        self.blob = Blob()

    def poisoned(self, proxy, op, name, args, kwargs):
        value = _perform(proxy._real, op, name, _unwrap(args), _unwrap(kwargs))
        if _is_data(value):
            return _copy(value, [])
        lineage = proxy._lineage or Lineage("poisoned")
        lineage.poisoned = True
        return Proxy(self, lineage, "poisoned", value)

    def answer(self, proxy, key, op, name, args, kwargs):
        lineage = proxy._lineage
        before = (_fingerprint(args), _fingerprint(kwargs))
        value = _perform(proxy._real, op, name, _unwrap(args), _unwrap(kwargs))
        if lineage is not None:
            changed = (_fingerprint(args), _fingerprint(kwargs)) != before
            updates = self._updates(lineage)
            if changed or updates is None:
                lineage.poisoned = True
                return self.poisoned_result(proxy, value)
            lineage.state = _digest(lineage.state, key)
        else:
            updates = []
        data = _is_data(value)
        self.store(key, [_encode(value, self.blob) if data else "obj",
                         [[i, _encode(t, self.blob)] for i, t in updates]])
        if data:
            shown = self.hand_out(lineage, value, value, args, kwargs)
        else:
            shown = Proxy(self, lineage or Lineage(key), key, value)
            self.watch(lineage, args, kwargs) if lineage is not None else None
        if lineage is not None:
            lineage.settle()
        return shown

    def store(self, key: str, entry: list) -> None:
        """Keep ``entry`` under ``key``; values answered two ways become shape-only, and a key
        answered with two shapes or structures is never replayed."""
        if key in self.entries:
            entry = _merge(self.entries[key], entry, self.blob.index)
        if entry is None:
            self.conflicts.add(key)
        elif key not in self.conflicts:
            self.entries[key] = entry

    def poisoned_result(self, proxy, value):
        if _is_data(value):
            return _copy(value, [])
        return Proxy(self, proxy._lineage, "poisoned", value)

    @staticmethod
    def _updates(lineage: Lineage) -> list | None:
        """Returned tensors the reference changed since: [(index, new value)], None if not copyable."""
        out = []
        for i, entry in enumerate(lineage.returned):
            real, plain, _, version = entry
            if real is not None and real._version != version:
                if real.shape != plain.shape or real.dtype != plain.dtype:
                    return None
                with torch.no_grad():
                    plain.copy_(real.detach())
                entry[2], entry[3] = plain._version, real._version
                out.append((i, real.detach().clone()))
        return out


def _perform(target, op: str, name: str, args, kwargs):
    if op == "getattr":
        return getattr(target, name)
    if op == "getitem":
        return target[args[0]]
    return target(*args, **kwargs)


class Recording:
    """A loaded recording: ``{key: [result, updates]}`` and the tensors they name."""

    def __init__(self, entries: dict, tensors: dict):
        self.entries = entries
        self.tensors = tensors

    @classmethod
    def load(cls, folder: Path) -> "Recording":
        index = json.loads((folder / RECORDING_JSON).read_text())
        raw = (folder / RECORDING_BIN).read_bytes()
        tensors = {}
        for name, meta in index["tensors"].items():
            chunk = bytearray(raw[meta["offset"]:meta["offset"] + meta["length"]])
            dtype = getattr(torch, meta["dtype"])
            flat = torch.frombuffer(chunk, dtype=torch.uint8) if chunk else torch.empty(0, dtype=torch.uint8)
            tensors[name] = flat.view(dtype).reshape(meta["shape"])
        return cls(index["entries"], tensors)


class Replayer(_Session):
    """Answers from a recording; any miss raises ``ReplayMiss``."""

    def __init__(self, recording: Recording):
        self.recording = recording

    def poisoned(self, proxy, op, name, args, kwargs):
        raise _miss("this use of the reference was not recorded")

    def answer(self, proxy, key, op, name, args, kwargs):
        entry = self.recording.entries.get(key)
        if entry is None:
            raise _miss("the reference was not recorded on these inputs")
        lineage = proxy._lineage
        result, updates = entry
        if lineage is not None:
            for i, node in updates:
                if i >= len(lineage.returned):
                    raise _miss("the recording does not match this run")
                entry_ = lineage.returned[i]
                with torch.no_grad():
                    entry_[1].copy_(_decode(node, self.recording.tensors))
                entry_[2] = entry_[1]._version
            lineage.state = _digest(lineage.state, key)
        if result == "obj":
            shown = Proxy(self, lineage or Lineage(key), key)
            self.watch(lineage, args, kwargs) if lineage is not None else None
        else:
            shown = self.hand_out(lineage, _decode(result, self.recording.tensors), None, args, kwargs)
        if lineage is not None:
            lineage.settle()
        return shown


# -- the reference sources the engine is given: recording at build time, replay in the bundle --
class RecordingReference:
    """The installed reference, each module behind a recording proxy (``record`` grades with it)."""
    bundle = False

    def __init__(self, recorder: Recorder):
        self.recorder = recorder

    def module(self, assignment: str, module: str):
        if not (registry.reference_dir(assignment) / f"{module}.py").is_file():
            raise ReferenceNotShipped(module)
        return self.recorder.root(module, registry.reference_module(assignment, module))


class ReplayedReference:
    """The student bundle's reference: replaying proxies answering from its recording."""
    bundle = True

    def __init__(self, suite_dir: Path):
        self.folder = Path(suite_dir)

    def module(self, assignment: str, module: str):
        if not (self.folder / RECORDING_JSON).is_file():
            raise ReferenceNotShipped(module)
        key = str(self.folder.resolve())
        if key not in _LOADED:
            _LOADED[key] = Recording.load(self.folder)
        return Replayer(_LOADED[key]).root(module)


@contextlib.contextmanager
def seeded(seed: int):
    """Global random state ``seed`` (torch, random, numpy) while the block runs; restored after."""
    import numpy as np
    saved = torch.random.get_rng_state(), random.getstate(), np.random.get_state()
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        torch.random.set_rng_state(saved[0])
        random.setstate(saved[1])
        np.random.set_state(saved[2])


def uses_reference(assignment: str) -> bool:
    """Whether any test of the suite calls ``self.reference`` (else there is nothing to record)."""
    return any(".reference(" in p.read_text() for p in registry.suite_dir(assignment).glob("test_*.py"))


def record(assignment: str, seeds: tuple[int, int] = (1, 2)) -> tuple[bytes, bytes] | None:
    """Grade the reference on the visible tests twice, recording; (JSON, tensor bytes) of the
    keys answered alike both times (values that differ kept as shape-only), or None if nothing was."""
    from autograder.engine.runner import grade
    from autograder.engine.isolation.backend import pool_for
    if not uses_reference(assignment):
        return None
    runs = []
    with pool_for(assignment) as pool:
        pool.start()
        for seed in seeds:
            recorder = Recorder()
            with seeded(seed):
                grade(assignment, registry.reference_dir(assignment), device="cpu", visible_only=True, seed=0,
                      pool=pool, reference=RecordingReference(recorder))
            runs.append(recorder)
            if not recorder.entries:
                return None
    first, second = runs
    entries = {}
    meta = {**second.blob.index, **first.blob.index}
    for key in sorted(first.entries):
        if key in second.entries and key not in first.conflicts | second.conflicts:
            merged = _merge(first.entries[key], second.entries[key], meta)
            if merged is not None:
                entries[key] = merged
    names = sorted({n for e in entries.values() for n in _tensor_names(e)})
    index, chunks, offset = {}, [], 0
    for name in names:
        raw = first.blob.data[name]
        index[name] = dict(first.blob.index[name], offset=offset, length=len(raw))
        chunks.append(raw)
        offset += len(raw)
    if not entries:
        return None
    text = json.dumps({"entries": entries, "tensors": index}, sort_keys=True, separators=(",", ":"))
    return (text + "\n").encode(), b"".join(chunks)


def _merge(a, b, meta: dict):
    """``a`` where the two recordings agree; tensors whose values differ (same dtype and shape)
    become shape-only; None when they differ otherwise."""
    if a == b:
        return a
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        if a[:1] == b[:1] == ["t"] and len(a) == 3 and a[2] == b[2] and isinstance(a[1], str):
            ma, mb = meta[a[1]], meta[b[1]]
            return ["m", ma["dtype"], ma["shape"]] if ma == mb and a[2] is False else None
        merged = [_merge(x, y, meta) for x, y in zip(a, b)]
        return None if any(m is None for m, x in zip(merged, a) if x is not None) else merged
    return None


def _tensor_names(node):
    if isinstance(node, list):
        if len(node) == 3 and node[0] == "t" and isinstance(node[1], str) and isinstance(node[2], bool):
            yield node[1]
        else:
            for item in node:
                yield from _tensor_names(item)
