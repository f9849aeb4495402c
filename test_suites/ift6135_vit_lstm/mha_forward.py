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
- ``judge_softmax``: when neither reads the projections (attention written inline over
  parameters of no known layout), the output must be an affine map of each head's inputs
  weighted by the attention weights forward's own softmax produced, and those weights must
  be softmax(q_i . k_j) of affine maps of the input: their centred logarithms a bilinear
  form of the positions, and not uniform.

What the student's own methods returned inside forward (``judge_recorded``'s "own" readings)
is accepted only once the suite confirms it (``confirm``): the method called directly on the
same arguments gives it again, and differs from the reference on other inputs too, as a real
bug does; ``load_matching`` loads a reading into the reference (the composite tests of
test_vit.py use it to hold a block or a ViT against the reference with the student's weights).

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
                   head_size: int, confirm=None) -> tuple[bool | None, str]:
    """(verdict, text) from the calls the forward made to its own attention methods.

    verdict None: no usable call was recorded (``text`` says so); False: a real failure
    (``text`` names it); True: forward is multi-head attention (``text`` is a note or "").
    An output explained only by what the student's method returned inside forward needs
    ``confirm(method, args, result)`` to return None (else it returns why not); without
    ``confirm`` it is not accepted.
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
        doubt = confirm(method, tensors, own) if confirm is not None else "it could not be confirmed"
        if doubt is None:
            return True, (f"forward applies your output projection to what your own {method} returned, "
                          f"which is accepted here ({method} itself is graded in 2.3-2.4).")
        return False, (f"the output of forward is an affine map of what your {method} returned inside "
                       f"forward, but {doubt}")
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
    doubt = attention_weights_doubt(x, weights)
    if doubt:
        return False, f"the attention weights forward's softmax produced {doubt}"
    features = _rows(weights.double() @ x.double().unsqueeze(1))                  # (B*T, H*E)
    if affine_fit_error(features, _rows(output)) <= TOLERANCE:
        return True, ("your projections could not be identified, so forward was judged from the attention "
                      "weights its softmax produced: its output is an affine map of each head's "
                      "attention-weighted inputs, as multi-head attention's is.")
    return False, ("the output of forward is not an affine map of each head's inputs weighted by the "
                   "attention weights its softmax produced")


def attention_weights_doubt(x: torch.Tensor, weights: torch.Tensor) -> str:
    """"" when ``weights`` (B, H, T, T) are softmax(q_i . k_j / sqrt(D)) for queries and keys
    that are affine maps of the input x (B, T, E); else what is wrong with them. Row by row,
    log weights minus their mean over the keys are then x~_i G_h (x_j - mean_j x_j) with
    x~ = (x, 1): a least-squares fit in float64 on more entries than unknowns decides it."""
    B, T, E = x.shape
    w = weights.double()
    if not bool((w > 0).all()):
        return "has weights of exactly 0 (no mask is used in this assignment; every key gets some weight)"
    centred = w.log() - w.log().mean(dim=-1, keepdim=True)                        # (B, H, T, T)
    if float(centred.abs().max()) < 1e-3:
        return ("are uniform: every position gets the same weight whatever the queries and keys "
                "(averaging over the positions is not attention)")
    xd = x.double()
    queries = torch.cat([xd, torch.ones(B, T, 1, dtype=xd.dtype)], dim=-1)       # (B, T, E+1)
    keys = xd - xd.mean(dim=1, keepdim=True)                                     # (B, T, E)
    design = torch.einsum("bia,bjc->bijac", queries, keys).reshape(B * T * T, -1)
    targets = centred.permute(0, 2, 3, 1).reshape(B * T * T, -1)                # one column per head
    if len(design) <= design.shape[1]:
        return "could not be told from other weights (too few positions for the fit)"
    solution = torch.linalg.lstsq(design, targets, driver="gelsd").solution
    error = float((design @ solution - targets).abs().max()) / max(1.0, float(targets.abs().max()))
    if error > TOLERANCE:
        return ("are not softmax(Q Kᵀ / sqrt(head_size)) of queries and keys computed from the input "
                "position by position")
    return ""


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


def find_projections(state: dict, embed: int, num_heads: int, raw: bool = False) -> list:
    """Candidate readings of the student's four projections, the most plausible first:
    [([(W, b)] * 4, orders)], each order a (q, k, v, out) assignment of the maps.
    Empty when the parameters fit no known layout: four (E, E) affine maps, a fused (3E, E)
    one plus an (E, E) one, or (with ``raw``) raw parameters: four (E, E) matrices and four
    (E,) biases. (2.5.3 judges raw parameters from forward's own softmax instead.)"""
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
    return _raw_readings(state, embed) if raw and not groups else []


def _raw_readings(state: dict, embed: int) -> list:
    """Raw parameters (no nn.Linear): exactly four (E, E) matrices and four (E,) biases, alone or
    stacked along a first dimension (``W`` of shape (4, E, E)), paired in order, used as
    ``x @ W + b`` or as ``F.linear(x, W, b)``."""
    matrices, vectors = [], []
    for key, value in state.items():
        if type(key) is not str or type(value) is not torch.Tensor or not value.is_floating_point():
            continue
        shape = tuple(value.shape)
        if shape[-2:] == (embed, embed) and len(shape) in (2, 3):
            matrices += [(key, m) for m in (value.unbind(0) if len(shape) == 3 else [value])]
        elif shape[-1:] == (embed,) and len(shape) in (1, 2):
            vectors += [(key, v) for v in (value.unbind(0) if len(shape) == 2 else [value])]
    if len(matrices) != 4 or len(vectors) != 4:
        return []
    roles = [_role_of(k.rpartition(".")[2]) for k, _ in matrices]
    vector_roles = [_role_of(k.rpartition(".")[2]) for k, _ in vectors]
    named = sorted(r for r in roles if r) == ["k", "o", "q", "v"]
    if named and sorted(r for r in vector_roles if r) == ["k", "o", "q", "v"]:
        vectors = [vectors[vector_roles.index(r)] for r in roles]          # b_q with W_q, whatever the order
    natural = [roles.index(r) for r in "qkvo"] if named else [0, 1, 2, 3]
    orders = [natural] + [list(p) for p in itertools.permutations(range(4)) if list(p) != natural]
    return [([(m.t(), v) for (_, m), (_, v) in zip(matrices, vectors)], orders),
            ([(m, v) for (_, m), (_, v) in zip(matrices, vectors)], orders)]


def reading_state(maps: list, order: list) -> dict:
    """The reference MultiHeadedAttention's state dict for one reading (maps in (q, k, v, out) ``order``)."""
    (wq, bq), (wk, bk), (wv, bv), (wo, bo) = (maps[i] for i in order)
    return {"q_proj.weight": wq.contiguous(), "q_proj.bias": bq.contiguous(),
            "k_proj.weight": wk.contiguous(), "k_proj.bias": bk.contiguous(),
            "v_proj.weight": wv.contiguous(), "v_proj.bias": bv.contiguous(),
            "out_proj.weight": wo.contiguous(), "out_proj.bias": bo.contiguous()}


def load_matching(reference, readings: list, x: torch.Tensor, out: torch.Tensor) -> dict | None:
    """Load into ``reference`` (the reference MultiHeadedAttention) the first reading of
    ``find_projections`` with which it maps ``x`` to ``out``, and return its state dict;
    None when none does."""
    for maps, orders in readings:
        for order in orders:
            state = reading_state(maps, order)
            reference.load_state_dict(state)
            with torch.no_grad():
                expected = reference(x)
            if torch.allclose(out.double(), expected.double(), atol=TOLERANCE, rtol=TOLERANCE):
                return state
    return None
