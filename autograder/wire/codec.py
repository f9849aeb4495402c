"""Values <-> (JSON, bytes): the only things that cross between parent and worker.

Data values are encoded by value: None, bool, int, float, str, tuple/list/dict of data,
``torch.dtype``, ``torch.device``, ``torch.Size``, slices, numpy arrays and tensors (raw
little-endian bytes plus dtype and shape). Anything else stays where it lives and crosses
as a reference ``{"ref": id}`` that the other side turns into a proxy.

Decoding never unpickles and never evaluates: tensors are rebuilt with
``torch.frombuffer`` from an allowlisted dtype after checking that the byte count matches
the shape, so the result is always a plain ``torch.Tensor`` made by the decoder.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Callable

import numpy as np
import torch

MAX_DEPTH = 32
MAX_ITEMS = 1_000_000

TENSOR_DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
    "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32,
    "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
    "complex64": torch.complex64,
}
DTYPE_NAMES = {v: k for k, v in TENSOR_DTYPES.items()}
NUMPY_DTYPES = {"float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"}


class DecodeError(Exception):
    """A value on the wire does not follow the format."""


class Encoder:
    """Encodes one message; tensor bytes accumulate in ``chunks``.

    ``make_ref(obj) -> int`` is called for values that cannot cross as data.
    """

    def __init__(self, make_ref: Callable[[Any], int] | None = None):
        self.make_ref = make_ref
        self.chunks: list[bytes] = []
        self.size = 0

    def payload(self) -> bytes:
        return b"".join(self.chunks)

    def _blob(self, data: bytes) -> dict:
        entry = {"offset": self.size, "nbytes": len(data)}
        self.chunks.append(data)
        self.size += len(data)
        return entry

    def encode(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ValueError("value nested too deeply to send")
        t = type(value)
        if value is None or t is bool or t is str:
            return value
        if t is int:
            return value if abs(value) < 2**53 else {"bigint": str(value)}
        if t is float:
            return value if math.isfinite(value) else {"float": repr(value)}
        if isinstance(value, torch.Tensor) and (t is torch.Tensor or t is torch.nn.Parameter):
            return {"tensor": self._tensor(value)}
        if t is torch.Size:
            return {"size": [int(d) for d in value]}
        if t is tuple or t is list:
            return {("tuple" if t is tuple else "list"): [self.encode(v, depth + 1) for v in value]}
        if t in (dict, OrderedDict) and all(type(k) in (str, int) for k in value):
            return {"dict": [[k, self.encode(v, depth + 1)] for k, v in value.items()]}
        if t is torch.dtype:
            return {"dtype": DTYPE_NAMES.get(value, str(value))}
        if t is torch.device:
            return {"device": str(value)}
        if t is slice:
            return {"slice": [self.encode(value.start), self.encode(value.stop), self.encode(value.step)]}
        if t is np.ndarray and value.dtype.name in NUMPY_DTYPES:
            return {"ndarray": self._ndarray(value)}
        if isinstance(value, (np.generic,)) and value.dtype.name in NUMPY_DTYPES:
            return {"npscalar": self._ndarray(np.asarray(value))}
        if self.make_ref is None:
            raise ValueError(f"cannot send a {t.__name__} by value")
        return {"ref": self.make_ref(value), "type": _type_name(value)}

    def _tensor(self, t: torch.Tensor) -> dict:
        if t.dtype not in DTYPE_NAMES or t.is_sparse or t.is_quantized or t.is_meta:
            raise ValueError(f"cannot send a tensor of dtype {t.dtype} / layout {t.layout}")
        origin = str(t.device)
        cpu = t.detach().to("cpu").contiguous()
        if cpu.dtype == torch.bfloat16:
            raw = cpu.view(torch.int16).numpy().tobytes()
        else:
            raw = cpu.numpy().tobytes()
        return {"dtype": DTYPE_NAMES[t.dtype], "shape": list(cpu.shape), "device": origin,
                "requires_grad": bool(t.requires_grad), **self._blob(raw)}

    def _ndarray(self, a: np.ndarray) -> dict:
        a = np.ascontiguousarray(a)
        return {"dtype": a.dtype.name, "shape": list(a.shape), **self._blob(a.astype(a.dtype.newbyteorder("<")).tobytes())}


def _type_name(value: Any) -> str:
    t = type(value)
    return f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', t.__name__)}"[:200]


class Decoder:
    """Decodes one message.

    ``resolve_ref(entry) -> object`` turns a ``{"ref": ...}`` entry into a local object
    (a proxy on the trusted side, the real object in the worker). ``on_tensor(t, meta)``
    may post-process each decoded tensor (e.g. move it to the grading device).
    """

    def __init__(self, payload: bytes | bytearray, resolve_ref: Callable[[dict], Any],
                 on_tensor: Callable[[torch.Tensor, dict], torch.Tensor] | None = None):
        self.payload = memoryview(payload)
        self.resolve_ref = resolve_ref
        self.on_tensor = on_tensor
        self.items = 0

    def decode(self, obj: Any, depth: int = 0) -> Any:
        self.items += 1
        if depth > MAX_DEPTH or self.items > MAX_ITEMS:
            raise DecodeError("value nested too deeply or too large")
        if obj is None or type(obj) in (bool, int, float, str):
            return obj
        if type(obj) is not dict or len(obj) == 0:
            raise DecodeError(f"unexpected JSON value of type {type(obj).__name__}")
        if "ref" in obj:
            if type(obj["ref"]) is not int:
                raise DecodeError("bad reference")
            return self.resolve_ref(obj)
        if len(obj) != 1:
            raise DecodeError("a tagged value has exactly one key")
        (tag, body), = obj.items()
        if tag in ("list", "tuple"):
            items = [self.decode(v, depth + 1) for v in _expect(body, list)]
            return items if tag == "list" else tuple(items)
        if tag == "dict":
            out = {}
            for pair in _expect(body, list):
                if type(pair) is not list or len(pair) != 2 or type(pair[0]) not in (str, int):
                    raise DecodeError("bad dict entry")
                out[pair[0]] = self.decode(pair[1], depth + 1)
            return out
        if tag == "tensor":
            return self._tensor(_expect(body, dict))
        if tag in ("ndarray", "npscalar"):
            a = self._ndarray(_expect(body, dict))
            return a if tag == "ndarray" else a[()]
        if tag == "size":
            return torch.Size([_expect(d, int) for d in _expect(body, list)])
        if tag == "bigint":
            return int(_expect(body, str))
        if tag == "float":
            if body not in ("nan", "inf", "-inf"):
                raise DecodeError("bad float")
            return float(body)
        if tag == "dtype":
            if body not in TENSOR_DTYPES:
                raise DecodeError(f"unknown dtype {body!r}")
            return TENSOR_DTYPES[body]
        if tag == "device":
            return torch.device(_expect(body, str)[:64])
        if tag == "slice":
            parts = [self.decode(v, depth + 1) for v in _expect(body, list)]
            if len(parts) != 3 or any(p is not None and type(p) is not int for p in parts):
                raise DecodeError("bad slice")
            return slice(*parts)
        raise DecodeError(f"unknown tag {tag!r}")

    def _bytes(self, meta: dict, itemsize: int, shape: list) -> memoryview:
        offset, nbytes = meta.get("offset"), meta.get("nbytes")
        if type(offset) is not int or type(nbytes) is not int or offset < 0 or nbytes < 0:
            raise DecodeError("bad tensor offset")
        if offset + nbytes > len(self.payload):
            raise DecodeError("tensor bytes run past the end of the frame")
        if math.prod(shape) * itemsize != nbytes:
            raise DecodeError(f"tensor of shape {shape} cannot hold {nbytes} bytes")
        return self.payload[offset:offset + nbytes]

    def _shape(self, meta: dict) -> list[int]:
        shape = _expect(meta.get("shape"), list)
        if len(shape) > 16 or any(type(d) is not int or d < 0 for d in shape):
            raise DecodeError(f"bad tensor shape {shape!r}")
        return shape

    def _tensor(self, meta: dict) -> torch.Tensor:
        name = meta.get("dtype")
        if name not in TENSOR_DTYPES:
            raise DecodeError(f"tensor dtype {name!r} is not accepted")
        dtype = TENSOR_DTYPES[name]
        shape = self._shape(meta)
        wire_dtype = torch.int16 if dtype == torch.bfloat16 else dtype
        raw = self._bytes(meta, torch.empty((), dtype=wire_dtype).element_size(), shape)
        if len(raw) == 0:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(bytearray(raw), dtype=wire_dtype).reshape(shape)
            if dtype == torch.bfloat16:
                t = t.view(torch.bfloat16)
        if self.on_tensor is not None:
            t = self.on_tensor(t, meta)
        return t

    def _ndarray(self, meta: dict) -> np.ndarray:
        name = meta.get("dtype")
        if name not in NUMPY_DTYPES:
            raise DecodeError(f"array dtype {name!r} is not accepted")
        dtype = np.dtype(name).newbyteorder("<")
        shape = self._shape(meta)
        raw = self._bytes(meta, dtype.itemsize, shape)
        return np.frombuffer(bytes(raw), dtype=dtype).reshape(shape).astype(np.dtype(name))


def _expect(value: Any, kind: type) -> Any:
    if type(value) is not kind:
        raise DecodeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value
