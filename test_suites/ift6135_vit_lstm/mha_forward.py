"""Deciding whether a MultiHeadedAttention forward is multi-head attention, whatever its
projections (trusted; used by test_attention.py's 2.5.3).

The parametrisation is the student's choice (four nn.Linear, one fused qkv Linear chunked
into q, k, v, or one fused Linear split into heads first and chunked per head), so the
checks take the parametrisation from the student's own forward where they can:

- ``judge_recorded``: the queries, keys and values the forward handed to its own
  ``apply_attention`` (or the queries and keys it handed to ``get_attention_weights``) must
  be affine maps of the input at each position, and the output an affine map (the output
  projection) of the attention over them. Least-squares fits in float64 decide both, on
  more positions than the fits have unknowns.
- ``find_projections``: otherwise, the projections read off the parameter shapes of the
  known layouts, for the suite to load into the reference and compare.
- ``judge_softmax``: when neither reads the projections (attention written inline over raw
  parameters), the output must be an affine map of each head's inputs weighted by the
  attention weights forward's own softmax produced.

Tensors: x (B, T, E) with E = H*D; queries, keys, values (B, H, T, D); output (B, T, E).
"""
from __future__ import annotations

import itertools
import math

import torch

TOLERANCE = 1e-4          # relative to the largest value fitted
ROLES = ("queries", "keys", "values", "output")


# -- least squares ---------------------------------------------------------------
def _rows(t: torch.Tensor) -> torch.Tensor:
    """(B, H, T, d) -> (B*T, H*d), heads concatenated per position; (B, T, F) -> (B*T, F)."""
    if t.dim() == 4:
        t = t.transpose(1, 2).reshape(t.shape[0], t.shape[2], -1)
    return t.reshape(-1, t.shape[-1]).double()


def affine_fit_error(features: torch.Tensor, targets: torch.Tensor) -> float:
    """Largest error of the best affine fit of ``targets`` (N, G) from ``features`` (N, F),
    relative to max(1, largest |target|)."""
    design = torch.cat([features, torch.ones(len(features), 1, dtype=features.dtype)], dim=1)
    solution = torch.linalg.lstsq(design, targets, driver="gelsd").solution
    scale = max(1.0, float(targets.abs().max()))
    return float((design @ solution - targets).abs().max()) / scale


def _is_heads(t, B: int, H: int, T: int, D: int) -> bool:
    return isinstance(t, torch.Tensor) and t.is_floating_point() and tuple(t.shape) == (B, H, T, D)


def _is_heads_merged(t, B: int, T: int, E: int) -> bool:
    return isinstance(t, torch.Tensor) and t.is_floating_point() and tuple(t.shape) == (B, T, E)


def reference_weights(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """softmax(Q Kᵀ / sqrt(D)) over the keys, in float64: (B, H, T, T)."""
    scores = queries.double() @ keys.double().transpose(-2, -1) / math.sqrt(queries.shape[-1])
    return torch.softmax(scores, dim=-1)


# -- the forward's own calls -----------------------------------------------------
def judge_recorded(x: torch.Tensor, output: torch.Tensor, calls: dict, num_heads: int,
                   head_size: int) -> tuple[bool | None, str]:
    """(verdict, text) from the calls the forward made to its own attention methods.

    verdict None: no usable call was recorded (``text`` says so); False: a real failure
    (``text`` names it); True: forward is multi-head attention (``text`` is a note or "").
    """
    B, T, _ = x.shape
    H, D = num_heads, head_size
    inputs = _rows(x)
    target = _rows(output)

    def usable(name: str, count: int):
        for call in reversed(calls.get(name) or []):
            args = call.get("args") if isinstance(call, dict) else None
            if isinstance(args, list) and len(args) >= count and all(_is_heads(a, B, H, T, D) for a in args[:count]):
                return args[:count], call.get("result")
        return None

    applied, weighed = usable("apply_attention", 3), usable("get_attention_weights", 2)
    if applied is None and weighed is None:
        return None, (f"forward did not hand (B, H, T, D) = ({B}, {H}, {T}, {D}) queries, keys and values to "
                      "self.apply_attention, nor queries and keys to self.get_attention_weights, so they "
                      "could not be read there")
    method = "apply_attention" if applied else "get_attention_weights"
    tensors, own_result = applied or weighed
    for role, t in zip(ROLES, tensors):
        if affine_fit_error(inputs, _rows(t)) > TOLERANCE:
            return False, (f"the {role} forward passes to {method} are not an affine map of the input "
                           "at the same position: positions (or batch entries) are mixed before the "
                           "attention (split the heads with a transpose, not a bare reshape/view)")
    weights = reference_weights(tensors[0], tensors[1])
    if applied:
        attended = weights @ tensors[2].double()                                # (B, H, T, D)
        own = own_result if _is_heads_merged(own_result, B, T, H * D) else None
        features, own_features = _rows(attended), (_rows(own) if own is not None else None)
    else:
        # values unknown: the output must be an affine map of each head's attention-weighted inputs
        features = _rows(weights @ x.double().unsqueeze(1))                     # (B*T, H*E)
        own = own_result if _is_heads(own_result, B, H, T, T) else None
        own_features = _rows(own.double() @ x.double().unsqueeze(1)) if own is not None else None
    if affine_fit_error(features, target) <= TOLERANCE:
        return True, ""
    if own_features is not None and affine_fit_error(own_features, target) <= TOLERANCE:
        return True, (f"forward applies your output projection to what your own {method} returned, "
                      f"which is accepted here ({method} itself is graded in 2.3-2.4).")
    return False, (f"the output of forward is not an affine map (the output projection) of the attention "
                   f"over the queries, keys and values it passes to {method}, position by position "
                   "(nothing else mixed in: no residual, no reordering of the positions)")


def judge_softmax(x: torch.Tensor, output: torch.Tensor, softmax_calls: list, num_heads: int) -> tuple[bool | None, str]:
    """(verdict, text) from the attention weights forward's own softmax produced, for a forward
    whose projections could not be read anywhere else: the output must be an affine map of each
    head's attention-weighted inputs (the value and output projections folded together).
    verdict None: no softmax gave (B, H, T, T) weights."""
    B, T, _ = x.shape
    weights = next((c.get("result") for c in reversed(softmax_calls or []) if isinstance(c, dict)
                    and _is_heads(c.get("result"), B, num_heads, T, T)), None)
    if weights is None:
        return None, f"no softmax in forward gave (B, H, T, T) = ({B}, {num_heads}, {T}, {T}) attention weights"
    features = _rows(weights.double() @ x.double().unsqueeze(1))                  # (B*T, H*E)
    if affine_fit_error(features, _rows(output)) <= TOLERANCE:
        return True, ("your projections could not be identified, so forward was judged from the attention "
                      "weights its softmax produced: its output is an affine map of each head's "
                      "attention-weighted inputs, as multi-head attention's is.")
    return False, ("the output of forward is not an affine map of each head's inputs weighted by the "
                   "attention weights its softmax produced")


# -- the parameters ----------------------------------------------------------------
def _linear_groups(state: dict) -> dict:
    """{prefix: {"weight": w, "bias": b}} for every module of a state dict with both."""
    groups: dict = {}
    for key, value in state.items():
        if type(key) is not str or type(value) is not torch.Tensor:
            continue
        prefix, _, leaf = key.rpartition(".")
        groups.setdefault(prefix, {})[leaf] = value
    return {p: g for p, g in groups.items()
            if isinstance(g.get("weight"), torch.Tensor) and isinstance(g.get("bias"), torch.Tensor)}


def _role_of(name: str) -> str | None:
    """'q', 'k', 'v' or 'o' from a module name such as q_proj, W_k, value, out_proj."""
    generic = {"w", "proj", "projection", "linear", "lin", "layer", "fc", "dense", "self",
               "attn", "attention", "mat", "weight", "weights", "map", "head", "heads"}
    tokens = [t for t in "".join(c if c.isalpha() else " " for c in name.lower()).split()
              if t not in generic]
    for token in reversed(tokens):
        if token[0] in "qkvo" and (len(token) == 1 or token.startswith(("quer", "key", "val", "out"))):
            return token[0]
    return None


def _fused_layouts(w: torch.Tensor, b: torch.Tensor, embed: int, num_heads: int) -> list:
    """A fused (3E, E) projection cut into three (E, E) maps, per layout:
    chunked into q, k, v first; or split into heads first, each head's 3*D rows chunked."""
    D = embed // num_heads
    chunked = [(w[i * embed:(i + 1) * embed], b[i * embed:(i + 1) * embed]) for i in range(3)]
    per_head = [(torch.cat([w[h * 3 * D + i * D:h * 3 * D + (i + 1) * D] for h in range(num_heads)]),
                 torch.cat([b[h * 3 * D + i * D:h * 3 * D + (i + 1) * D] for h in range(num_heads)]))
                for i in range(3)]
    return [chunked, per_head]


def find_projections(state: dict, embed: int, num_heads: int) -> list:
    """Candidate readings of the student's four projections, the most plausible first:
    [([(W, b)] * 4, orders)], each order a (q, k, v, out) assignment of the maps.
    Empty when the parameters fit no known layout: four (E, E) affine maps, or a fused
    (3E, E) one plus an (E, E) one."""
    groups = _linear_groups(state)
    square = [(p, g["weight"], g["bias"]) for p, g in groups.items()
              if tuple(g["weight"].shape) == (embed, embed) and tuple(g["bias"].shape) == (embed,)]
    fused = [(p, g["weight"], g["bias"]) for p, g in groups.items()
             if tuple(g["weight"].shape) == (3 * embed, embed) and tuple(g["bias"].shape) == (3 * embed,)]
    if len(square) == 4 and not fused:
        names = [p for p, _, _ in square]
        natural = list(range(4))
        roles = [_role_of(n) for n in names]
        if sorted(r for r in roles if r) == ["k", "o", "q", "v"]:
            natural = [roles.index(r) for r in "qkvo"]
        orders = [natural] + [list(p) for p in itertools.permutations(range(4)) if list(p) != natural]
        return [([(w, b) for _, w, b in square], orders)]
    if len(square) == 1 and len(fused) == 1:
        _, w, b = fused[0]
        orders = [list(p) + [3] for p in itertools.permutations(range(3))]
        return [(maps + [(square[0][1], square[0][2])], orders) for maps in _fused_layouts(w, b, embed, num_heads)]
    return []
