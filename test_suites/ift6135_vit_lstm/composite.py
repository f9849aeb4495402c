"""Holding a composite (the pre-norm block, the ViT forward) against an independent
computation (trusted; used by test_vit.py, and by test_attention.py for the student's own
attention methods).

The independent computation is the reference's own modules, in the grader's process,
loaded with the student's weights (their state dict comes back as data; the attention's
parametrisation is mapped with mha_forward). When the composite's output matches it, the
composite is right whatever its sub-modules do when called alone.

When it does not (a sub-module differs from the reference: a bug graded in its own part,
or a parametrisation that cannot be mapped), the composite is checked step by step on what
its sub-modules received and returned inside forward (recorded there), and each recorded
output is accepted only if the reference part gives it, or, for a part graded elsewhere,
if the part called directly on the same input gives it again and also differs from the
reference on a fresh input (a real bug does; a module that recognises the grader's call,
or is wrong only on the input forward gave it, does not).
"""
from __future__ import annotations

import functools

import torch

TOLERANCE = 1e-4


def close(a, b, tol: float = TOLERANCE) -> bool:
    """Same shape, finite, equal within ``tol`` (absolute and relative), compared in float64."""
    return (type(a) is torch.Tensor and type(b) is torch.Tensor and a.shape == b.shape
            and a.is_floating_point() and b.is_floating_point() and bool(torch.isfinite(a).all())
            and torch.allclose(a.double(), b.double(), atol=tol, rtol=tol))


def fresh_like(t: torch.Tensor, seed: int) -> torch.Tensor:
    """A new random tensor with the shape, mean and spread of ``t``."""
    g = torch.Generator().manual_seed(seed)
    spread = float(t.double().std()) if t.numel() > 1 else 1.0
    return (torch.randn(t.shape, generator=g, dtype=torch.float64) * max(spread, 1e-3)
            + float(t.double().mean())).to(t.dtype)


def recorded_calls(record, name: str) -> list:
    """[(first argument, result)] of the recorded calls to the sub-module ``name``."""
    calls = record.get("calls") if isinstance(record, dict) else None
    out = []
    for call in (calls.get(name) if isinstance(calls, dict) else None) or []:
        args = call.get("args") if isinstance(call, dict) else None
        if isinstance(args, list) and args and type(args[0]) is torch.Tensor:
            out.append((args[0], call.get("result")))
    return out


def call_on(calls: list, inputs: torch.Tensor):
    """The first recorded (input, output) whose input is ``inputs`` (within tolerance), or None."""
    return next(((i, o) for i, o in calls if close(i, inputs)), None)


# -- the reference, loaded with the student's weights ----------------------------
def block_shapes(E: int, hidden: int) -> dict:
    """{part: {key: shape}} of the reference block's parts other than the attention."""
    return {"layer_norm_1": {"weight": (E,), "bias": (E,)},
            "layer_norm_2": {"weight": (E,), "bias": (E,)},
            "linear": {"0.weight": (hidden, E), "0.bias": (hidden,), "3.weight": (E, hidden), "3.bias": (E,)}}


def sub_state(state: dict, prefix: str) -> dict:
    """The entries of ``state`` under ``prefix.``, with the prefix removed."""
    return {k[len(prefix) + 1:]: v for k, v in state.items()
            if type(k) is str and k.startswith(prefix + ".") and type(v) is torch.Tensor}


def load_part(reference, state: dict, shapes: dict) -> str:
    """Load ``state``'s entries of ``shapes`` into the reference part; "" or why not."""
    for key, shape in shapes.items():
        value = state.get(key)
        if type(value) is not torch.Tensor or not value.is_floating_point() or tuple(value.shape) != shape:
            found = f"one of shape {tuple(value.shape)}" if type(value) is torch.Tensor else "none"
            return f"its parameter {key} should have shape {shape} ({found} found)"
    reference.load_state_dict({key: state[key].float().contiguous() for key in shapes}, strict=False)
    return ""


def load_attention(mha_forward, reference, state: dict, E: int, H: int, probe_in, probe_out):
    """Load the student's attention weights into the reference MultiHeadedAttention:
    ("" or why not, agrees). The reading (which map is which projection) is the one that maps
    ``probe_in`` to ``probe_out`` (the student's attention called on a grader-drawn input), else
    the most plausible one: the probe only selects, so a module that refuses it changes nothing.
    ``agrees(x, y)`` is True when the reference with some reading of the weights maps x to y."""
    readings = mha_forward.find_projections(state, E, H, raw=True)
    if not readings:
        return ("its attention's parameters fit no known layout (four (H*D, H*D) affine maps with biases, "
                "a fused (3*H*D, H*D) one plus an (H*D, H*D) one, or four raw (H*D, H*D) matrices and "
                "biases)"), None
    selected = None
    if type(probe_out) is torch.Tensor and tuple(probe_out.shape) == tuple(probe_in.shape):
        selected = mha_forward.load_matching(reference, readings, probe_in, probe_out)
    if selected is None:
        maps, orders = readings[0]
        selected = mha_forward.reading_state(maps, orders[0])
        reference.load_state_dict(selected)

    def agrees(x, y) -> bool:
        matched = (type(y) is torch.Tensor and y.shape == x.shape
                   and mha_forward.load_matching(reference, readings, x, y) is not None)
        reference.load_state_dict(selected)
        return matched
    return "", agrees


def submodule(root, path: str):
    """``root.a.b.c`` for ``path`` "a.b.c" (numbers index a Sequential)."""
    return functools.reduce(lambda obj, name: obj[int(name)] if name.isdigit() else getattr(obj, name),
                            path.split("."), root)
