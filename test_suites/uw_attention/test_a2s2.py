"""A2S2 §2.1: attention from scratch, each function against the reference, then composed.

Expected values are computed here, in float64, from the same inputs the student's code
gets: the step functions directly, self_attention with PyTorch's
F.multi_head_attention_forward (identity projections, no bias, no dropout), as in the
notebook's own checks. The causal mask is graded as the pair
apply_causal_mask(make_causal_mask(n), A) through a softmax, so every encoding (boolean
keep-mask, masked_fill, additive -inf, large negative numbers) is accepted.

F.scaled_dot_product_attention, F.multi_head_attention_forward and nn.MultiheadAttention
are banned inside the student's functions: every test here scores 0 if they are used.
"""
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from autograder.suite import (GradedTestCase, Remote, enforce_ban, localise, number, sibling, time_limit, visibility,
                              weight)
from autograder.suite.checks import describe
from autograder.suite.draw import generator, randint, shape_text

POINTS = sibling(__file__, "assignment").POINTS
load_notes = sibling(__file__, "load_notes")
HIDDEN = "after_published"
MODULE = "A2S2"


# -- the reference, float64, in this process ------------------------------------------
def ref_similarities(Q, K):
    return Q.double() @ K.double().transpose(-2, -1)


def ref_scaled(A, n_embd, n_heads):
    return A.double() / math.sqrt(n_embd / n_heads)


def ref_outputs(A, V):
    return A.double() @ V.double()


def ref_causal_softmax(A):
    """softmax of A (..., n, n) with future positions (j > i) masked out."""
    n = A.shape[-1]
    keep = torch.ones(n, n, dtype=torch.bool).tril()
    return torch.softmax(A.double().masked_fill(~keep, float("-inf")), dim=-1)


def ref_split(x, n_heads):
    B, T, E = x.shape
    return x.reshape(B, T, n_heads, E // n_heads).transpose(1, 2)


def ref_merge(y):
    B, H, T, d = y.shape
    return y.transpose(1, 2).reshape(B, T, H * d)


def ref_self_attention(Q, K, V, n_heads, causal):
    """PyTorch's multi-head attention with identity projections: (B, T, E) -> (B, T, E)."""
    Q, K, V = Q.double(), K.double(), V.double()
    B, T, E = Q.shape
    eye = torch.eye(E, dtype=torch.float64)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1) if causal else None
    out, _ = F.multi_head_attention_forward(
        Q.transpose(0, 1), K.transpose(0, 1), V.transpose(0, 1), E, n_heads,
        None, None, None, None, False, 0.0, eye, None, training=False, need_weights=False,
        attn_mask=mask, use_separate_proj_weight=True,
        q_proj_weight=eye, k_proj_weight=eye, v_proj_weight=eye)
    return out.transpose(0, 1)


def _call_text(fn: str, *parts) -> str:
    return f"{fn}({', '.join(parts)})"


class _A2S2Case(GradedTestCase):

    atol = rtol = 1e-4

    def a2s2(self):
        return self.student(MODULE)

    def loader_notes(self, *words: str) -> None:
        """Show the loader's notes mentioning any of ``words`` (a redefinition ignored, a broken cell)."""
        notes = self.load_notes(MODULE)
        if isinstance(notes, str):
            notes = notes.splitlines()
        for text in notes or ():
            if isinstance(text, str) and any(w in text for w in words):
                self.note(f"A2S2.py {text}")

    # -- step 1 -------------------------------------------------------------------
    def check_similarities(self, Q, K, label=""):
        what = _call_text("pairwise_similarities", f"Q {shape_text(Q.shape)}", f"K {shape_text(K.shape)}") + label
        got = self.a2s2().pairwise_similarities(Q, K)
        self.assert_tensor(got, shape=(*Q.shape[:-1], K.shape[-2]), what=what)
        self.assert_close(got, ref_similarities(Q, K), what=what,
                          hint="A = Q Kᵀ over the last two dims: Q @ K.transpose(-2, -1).")

    def check_scaled(self, A, n_embd, n_heads, label=""):
        what = _call_text("attn_scaled", f"A {shape_text(A.shape)}", f"n_embd={n_embd}", f"n_heads={n_heads}") + label
        got = self.a2s2().attn_scaled(A, n_embd, n_heads)
        self.assert_tensor(got, shape=A.shape, what=what)
        self.assert_close(got, ref_scaled(A, n_embd, n_heads), what=what,
                          hint="divide by sqrt(n_embd / n_heads), the size of one head.")

    def check_softmax(self, A, label=""):
        what = _call_text("attn_softmax", f"A {shape_text(A.shape)}") + label
        got = self.a2s2().attn_softmax(A)
        self.assert_tensor(got, shape=A.shape, what=what)
        self.assert_close(got, torch.softmax(A.double(), dim=-1), what=what, atol=1e-5,
                          hint="softmax over the last dim (each query's weights over the keys sum to 1).")

    def check_outputs(self, A, V, label=""):
        what = _call_text("compute_outputs", f"A {shape_text(A.shape)}", f"V {shape_text(V.shape)}") + label
        got = self.a2s2().compute_outputs(A, V)
        self.assert_tensor(got, shape=V.shape, what=what)
        self.assert_close(got, ref_outputs(A, V), what=what, hint="O = A V.")

    # -- step 2 -------------------------------------------------------------------
    def masked_scores(self, A):
        """apply_causal_mask(make_causal_mask(n), A) computed by the student's code, as data."""
        n = A.shape[-1]
        a2s2 = self.a2s2()
        mask = self.keep(a2s2.make_causal_mask, n)
        value = self.fetch(mask)
        if type(value) is not torch.Tensor:
            raise AssertionError(f"make_causal_mask({n}) should return a tensor of shape ({n}, {n}); "
                                 f"got {describe(value)}.")
        if tuple(value.shape) != (n, n):
            raise AssertionError(f"make_causal_mask({n}) returned shape {tuple(value.shape)}; "
                                 f"expected ({n}, {n}): one row per query token, one column per key token.")
        return a2s2.apply_causal_mask(mask, A)

    def check_mask(self, A, label=""):
        n = A.shape[-1]
        what = (f"apply_causal_mask(make_causal_mask({n}), A) with A of shape {shape_text(A.shape)}"
                f"{label}, then a softmax over the last dim")
        masked = self.masked_scores(A)
        if type(masked) is not torch.Tensor:
            raise AssertionError(f"{what}: apply_causal_mask should return a tensor; got {describe(masked)}.")
        if tuple(masked.shape) != tuple(A.shape):
            raise AssertionError(f"{what}: apply_causal_mask returned shape {tuple(masked.shape)}; expected "
                                 f"{tuple(A.shape)}, the shape of A (the mask broadcasts over the leading dims).")
        if not masked.is_floating_point():
            raise AssertionError(f"{what}: apply_causal_mask returned a {masked.dtype} tensor; "
                                 "it should return the (float) scores with the future masked out.")
        if bool(torch.isnan(masked).any()) or bool((masked == float("inf")).any()):
            raise AssertionError(f"{what}: the masked scores contain NaN or +inf; masked entries "
                                 "should be -inf (or a very negative number).")
        weights = torch.softmax(masked.double(), dim=-1)
        if bool(torch.isnan(weights).any()):
            raise AssertionError(f"{what}: some rows are entirely masked (every token may attend to itself).")
        self.assert_close(weights, ref_causal_softmax(A), what=what, atol=1e-5,
                          hint="token i attends to tokens 0..i: set the scores of j > i to -inf before the "
                               "softmax and keep the others unchanged (torch.tril gives the lower triangle).")

    # -- step 3 -------------------------------------------------------------------
    def check_split(self, x, n_heads, label=""):
        B, T, E = x.shape
        what = _call_text("split_heads", f"x {shape_text(x.shape)}", f"n_heads={n_heads}") + label
        got = self.a2s2().split_heads(x, n_heads)
        self.assert_tensor(got, shape=(B, n_heads, T, E // n_heads), what=what)
        self.assert_close(got, ref_split(x, n_heads), what=what, atol=0, rtol=0,
                          hint="y[b, h, t, d] == x[b, t, h * d_head + d]: view as (B, T, n_heads, d_head), "
                               "then swap dims 1 and 2.")

    def check_merge(self, y, label=""):
        B, H, T, d = y.shape
        what = _call_text("merge_heads", f"y {shape_text(y.shape)}") + label
        got = self.a2s2().merge_heads(y)
        self.assert_tensor(got, shape=(B, T, H * d), what=what)
        self.assert_close(got, ref_merge(y), what=what, atol=0, rtol=0,
                          hint="undo split_heads: swap dims 1 and 2 back, then reshape to (B, T, n_heads * d).")

    # -- the whole function ---------------------------------------------------------
    def check_attention(self, Q, K, V, n_heads, causal, label=""):
        what = (f"self_attention(Q, K, V, n_heads={n_heads}, causal={causal}) with Q, K, V of shape "
                f"{shape_text(Q.shape)}{label}, compared with F.multi_head_attention_forward "
                "(identity projections)")
        got = self.a2s2().self_attention(Q, K, V, n_heads=n_heads, causal=causal)
        self.assert_tensor(got, shape=Q.shape, what=what)
        self.assert_close(got, ref_self_attention(Q, K, V, n_heads, causal), what=what,
                          hint="split heads if n_heads > 1, scores Q Kᵀ / sqrt(n_embd / n_heads), the causal "
                               "mask only when causal=True, softmax, outputs A V, merge heads.")


class TestCoreFunctions(_A2S2Case):

    @weight(POINTS["2.1.1"])
    @number("2.1.1")
    @enforce_ban("attention")
    @time_limit(20)
    def test_pairwise_similarities(self):
        """pairwise_similarities: Q Kᵀ with and without a head dim"""
        load_notes.show(self, MODULE, everything=True)   # what loading A2S2.py skipped, once
        g = generator(2101)
        self.check_similarities(torch.randn(2, 5, 4, generator=g), torch.randn(2, 5, 4, generator=g))
        self.check_similarities(torch.randn(2, 3, 5, 4, generator=g), torch.randn(2, 3, 5, 4, generator=g))

    @weight(POINTS["2.1.2"])
    @number("2.1.2")
    @enforce_ban("attention")
    @time_limit(20)
    def test_attn_scaled(self):
        """attn_scaled: scores divided by sqrt(n_embd / n_heads)"""
        g = generator(2102)
        self.check_scaled(torch.randn(1, 10, 10, generator=g) * 3, 6, 1)
        self.check_scaled(torch.randn(2, 3, 7, 7, generator=g) * 3, 48, 3)

    @weight(POINTS["2.1.3"])
    @number("2.1.3")
    @enforce_ban("attention")
    @time_limit(20)
    def test_attn_softmax(self):
        """attn_softmax: softmax over the last dim, also with -inf (masked) scores"""
        g = generator(2103)
        self.check_softmax(torch.randn(2, 5, 5, generator=g) * 4)
        A = torch.randn(2, 3, 6, 6, generator=g) * 4
        A = A.masked_fill(torch.ones(6, 6, dtype=torch.bool).triu(1), float("-inf"))
        self.check_softmax(A, label=" (causally masked: -inf above the diagonal)")

    @weight(POINTS["2.1.4"])
    @number("2.1.4")
    @enforce_ban("attention")
    @time_limit(20)
    def test_compute_outputs(self):
        """compute_outputs: A V with and without a head dim"""
        g = generator(2104)
        self.check_outputs(torch.softmax(torch.randn(2, 5, 5, generator=g), -1), torch.randn(2, 5, 4, generator=g))
        self.check_outputs(torch.softmax(torch.randn(2, 3, 5, 5, generator=g), -1),
                           torch.randn(2, 3, 5, 4, generator=g))

    @weight(POINTS["2.1.5"])
    @number("2.1.5")
    @visibility(HIDDEN)
    @enforce_ban("attention")
    @time_limit(30)
    def test_random_shapes(self):
        """pairwise_similarities, attn_scaled, attn_softmax, compute_outputs on random shapes"""
        for seed in self.seeds(3):
            g = generator(seed)
            B, H, T, d = randint(g, 1, 3), randint(g, 1, 4), randint(g, 1, 9), randint(g, 1, 8)
            lead = (B, H) if randint(g, 0, 1) else (B,)
            Q, K, V = (torch.randn(*lead, T, d, generator=g) for _ in range(3))
            self.check_similarities(Q, K)
            A = torch.randn(*lead, T, T, generator=g) * 3
            self.check_scaled(A, H * d, H)
            self.check_softmax(A)
            self.check_outputs(torch.softmax(A, -1), V)


class TestCausalMask(_A2S2Case):

    @weight(POINTS["2.1.6"])
    @number("2.1.6")
    @enforce_ban("attention")
    @time_limit(20)
    def test_mask(self):
        """make_causal_mask + apply_causal_mask: the future is masked (n = 1 and 5, with and without heads)"""
        g = generator(2106)
        self.check_mask(torch.randn(2, 5, 5, generator=g))
        self.check_mask(torch.randn(2, 3, 5, 5, generator=g))
        self.check_mask(torch.randn(1, 1, 1, generator=g))

    @weight(POINTS["2.1.7"])
    @number("2.1.7")
    @visibility(HIDDEN)
    @enforce_ban("attention")
    @time_limit(30)
    def test_mask_sizes(self):
        """make_causal_mask + apply_causal_mask for odd and large n"""
        seeds = self.seeds(3)
        for seed, n in zip(seeds, (None, None, 257)):
            g = generator(seed)
            n = n or 2 * randint(g, 1, 20) + 1
            lead = (randint(g, 1, 2), randint(g, 2, 4)) if randint(g, 0, 1) else (randint(g, 1, 3),)
            self.check_mask(torch.randn(*lead, n, n, generator=g) * 3)

    @weight(POINTS["2.1.8"])
    @number("2.1.8")
    @enforce_ban("attention")
    @time_limit(20)
    def test_mask_device(self):
        """The masked scores stay on the device of A (the mask follows the computation)"""
        a2s2 = self.a2s2()
        A = self.put(torch.randn(2, 7, 7, generator=generator(2108)))
        mask = self.keep(a2s2.make_causal_mask, 7)
        masked = self.keep(a2s2.apply_causal_mask, mask, A)
        value = self.fetch(masked)
        if type(value) is not torch.Tensor:
            raise AssertionError(f"apply_causal_mask(make_causal_mask(7), A) should return a tensor; "
                                 f"got {describe(value)}.")
        device = masked.device
        if device.type != torch.device(self.device).type:
            raise AssertionError(
                f"apply_causal_mask(make_causal_mask(7), A) with A on {self.device} returned a tensor on "
                f"{device}; build the mask on A's device (e.g. mask.to(A.device)).")


class TestHeads(_A2S2Case):

    @weight(POINTS["2.1.9"])
    @number("2.1.9")
    @enforce_ban("attention")
    @time_limit(20)
    def test_split_merge(self):
        """split_heads (B, T, E) -> (B, H, T, E/H) and merge_heads back, on a (2, 5, 48) input with 3 heads"""
        g = generator(2109)
        self.check_split(torch.randn(2, 5, 48, generator=g), 3)
        self.check_merge(torch.randn(2, 3, 5, 16, generator=g), label=" (a fresh tensor, not made by split_heads)")

    @weight(POINTS["2.1.10"])
    @number("2.1.10")
    @visibility(HIDDEN)
    @enforce_ban("attention")
    @time_limit(30)
    def test_split_merge_random(self):
        """split_heads and merge_heads on random shapes, and merge_heads(split_heads(x)) == x"""
        a2s2 = self.a2s2()
        for seed in self.seeds(3):
            g = generator(seed)
            B, T, H, d = randint(g, 1, 3), randint(g, 1, 9), randint(g, 1, 5), randint(g, 1, 7)
            x = torch.randn(B, T, H * d, generator=g)
            self.check_split(x, H)
            self.check_merge(torch.randn(B, H, T, d, generator=g))
            what = f"merge_heads(split_heads(x, {H})) for x of shape {shape_text(x.shape)}"
            back = a2s2.merge_heads(self.keep(a2s2.split_heads, x, H))
            self.assert_tensor(back, shape=x.shape, what=what)
            self.assert_close(back, x, what=what, atol=0, rtol=0, hint="merge_heads must undo split_heads exactly.")


class TestSelfAttention(_A2S2Case):
    """The notebook's three checks on seed-447 (1, 10, 6) inputs, then random ones."""

    def notebook_inputs(self):
        return torch.randn(3, 1, 10, 6, generator=generator(447)).unbind(0)

    @weight(POINTS["2.1.11"])
    @number("2.1.11")
    @enforce_ban("attention")
    @time_limit(20)
    def test_one_head_no_mask(self):
        """self_attention, 1 head, no mask, on (1, 10, 6) inputs"""
        self.loader_notes("defined again")
        self.check_attention(*self.notebook_inputs(), n_heads=1, causal=False)

    @weight(POINTS["2.1.12"])
    @number("2.1.12")
    @enforce_ban("attention")
    @time_limit(20)
    def test_one_head_causal(self):
        """self_attention, 1 head, causal, on (1, 10, 6) inputs"""
        self.check_attention(*self.notebook_inputs(), n_heads=1, causal=True)

    @weight(POINTS["2.1.13"])
    @number("2.1.13")
    @enforce_ban("attention")
    @time_limit(20)
    def test_three_heads_causal(self):
        """self_attention, 3 heads, causal, on (1, 10, 6) inputs"""
        self.check_attention(*self.notebook_inputs(), n_heads=3, causal=True)

    @weight(POINTS["2.1.14"])
    @number("2.1.14")
    @visibility(HIDDEN)
    @enforce_ban("attention")
    @time_limit(40)
    def test_random(self):
        """self_attention on random shapes and head counts, causal and not"""
        for seed in self.seeds(3):
            g = generator(seed)
            B, T, H, d = randint(g, 1, 3), randint(g, 1, 12), randint(g, 1, 4), randint(g, 1, 8)
            Q, K, V = (torch.randn(B, T, H * d, generator=g) * 1.5 for _ in range(3))
            for causal in (True, False):
                self.check_attention(Q, K, V, n_heads=H, causal=causal)


class TestMiniGPT(_A2S2Case):
    """init_qkv_proj and self_attention as the course's minGPT uses them.

    Two attention layers: the student's projections (from init_qkv_proj, loaded with known
    weights) make Q, K, V from the input, and the student's
    self_attention(Q, K, V, n_heads=3, causal=True) mixes them; the second layer reads the
    first one's output. Everything lives on the grading device. A failure's message names the
    first step (a layer's projection or its self_attention) whose values, or after backward the
    first projection whose gradients, depart from the reference's on the same input.
    """

    E, H = 48, 3

    def weights(self, g):
        """Two layers of (W, b) for the query, key and value projections."""
        E = self.E
        return [[(torch.randn(E, E, generator=g) * 0.2, torch.randn(E, generator=g) * 0.1) for _ in range(3)]
                for _ in range(2)]

    def student_layers(self, weights):
        a2s2 = self.a2s2()
        layers = []
        for layer in weights:
            projs = a2s2.init_qkv_proj(self.E)
            if type(projs) not in (tuple, list) or len(projs) != 3:
                raise AssertionError(f"init_qkv_proj({self.E}) should return the three projections "
                                     f"(query, key, value); got {describe(projs)}.")
            mods = []
            for proj, (W, b), role in zip(projs, layer, ("query", "key", "value")):
                if not isinstance(proj, Remote):
                    raise AssertionError(f"init_qkv_proj({self.E}) returned {describe(proj)} for the {role} "
                                         "projection; expected an nn.Linear module.")
                count = self.parameter_count(proj)
                if count != self.E * self.E + self.E:
                    raise AssertionError(
                        f"the {role} projection from init_qkv_proj({self.E}) has {count} parameters; expected "
                        f"nn.Linear({self.E}, {self.E}) with a bias ({self.E * self.E + self.E}).")
                proj = proj.to(self.device)
                proj.load_state_dict({"weight": W, "bias": b})
                mods.append(proj)
            layers.append(mods)
        return layers

    def student_forward(self, layers, x_proxy, shape, trail=None):
        """The stack's output, kept in the worker (a proxy); each layer's output is checked.
        ``trail`` (a list) gets each layer's (input, Q, K, V, output) proxies, for ``localised``."""
        a2s2 = self.a2s2()
        h = x_proxy
        for i, (q_proj, k_proj, v_proj) in enumerate(layers):
            Q, K, V = self.keep(q_proj, h), self.keep(k_proj, h), self.keep(v_proj, h)
            step = self.keep(a2s2.self_attention, Q, K, V, n_heads=self.H, causal=True)
            if trail is not None:
                trail.append((h, Q, K, V, step))
            h = step
            self.assert_tensor(self.fetch(h), shape=shape,
                               what=f"layer {i + 1}: self_attention(Q, K, V, n_heads={self.H}, causal=True) "
                                    f"with Q, K, V of shape {shape_text(shape)} from your projections")
        return h

    def reference_forward(self, weights, x):
        h = x
        for layer in weights:
            Q, K, V = (F.linear(h, W, b) for W, b in layer)
            h = ref_self_attention(Q, K, V, self.H, True)
        return h

    # -- where it goes wrong: named in the message of a test that already failed ------------------
    def localised(self, exc: AssertionError, trail: list, weights, x, layers=None, ref_weights=None):
        """``exc`` with the first step of the stack where the student's values depart from the
        reference's on the same input (a layer's query/key/value projection or its self_attention),
        or, when every value matches and ``layers``/``ref_weights`` are given (after backward),
        the first projection whose gradient departs, going backward; ``exc`` as it was for a crash
        or a stopped worker (see autograder.suite.localise). The verdict stays the check's."""
        if type(exc) is not AssertionError:
            return exc

        def find():
            mine, ref, h_ref = [], [], x.double()
            for i, proxies in enumerate(trail):
                h, Q, K, V, out = (self.fetch(p) if isinstance(p, Remote) else p for p in proxies)
                Qr, Kr, Vr = (F.linear(h_ref, W.double(), b.double()) for W, b in weights[i])
                out_r = ref_self_attention(Qr, Kr, Vr, self.H, True)
                for role, got, expected in (("query", Q, Qr), ("key", K, Kr), ("value", V, Vr)):
                    mine.append({"path": f"layer_{i + 1}.{role}_proj", "inputs": [h], "output": got})
                    ref.append({"path": f"layer_{i + 1}.{role}_proj", "inputs": [h_ref], "output": expected})
                mine.append({"path": f"layer_{i + 1}.self_attention", "inputs": [Q, K, V], "output": out})
                ref.append({"path": f"layer_{i + 1}.self_attention", "inputs": [Qr, Kr, Vr], "output": out_r})
                h_ref = out_r
            diff = localise.first_difference(mine, ref, atol=self.atol, rtol=self.rtol)
            if diff is not None or layers is None or ref_weights is None:
                return diff
            grads = {f"layer_{i + 1}.{role}_proj": self.grads(proj) for i, mods in enumerate(layers)
                     for proj, role in zip(mods, ("query", "key", "value"))}
            expected = {f"layer_{i + 1}.{role}_proj": {"weight": W.grad, "bias": b.grad}
                        for i, layer in enumerate(ref_weights)
                        for (W, b), role in zip(layer, ("query", "key", "value"))}
            return localise.first_difference(mine, ref, atol=1e-3, rtol=1e-3, student_grads=grads,
                                             reference_grads=expected)
        return localise.annotate(exc, find, self.hidden, root="the stack",
                                 compared="each step of the stack compared with the reference holding the same "
                                          "weights, on the same input")

    def what(self, x) -> str:
        return (f"a two-layer minGPT-style attention stack (n_embd={self.E}, 3 heads, causal) built from your "
                f"init_qkv_proj and self_attention, on a {shape_text(x.shape)} input")

    @weight(POINTS["2.1.15"])
    @number("2.1.15")
    @enforce_ban("attention")
    @time_limit(30)
    def test_forward(self):
        """init_qkv_proj + self_attention inside a two-layer minGPT-style attention stack: forward"""
        g = generator(2115)
        weights = self.weights(g)
        x = torch.randn(2, 12, self.E, generator=g)
        what = self.what(x)
        layers, trail = self.student_layers(weights), []
        try:
            out = self.fetch(self.student_forward(layers, self.put(x), x.shape, trail))
            self.assert_tensor(out, shape=x.shape, what=what)
            self.assert_close(out, self.reference_forward([[(W.double(), b.double()) for W, b in l]
                                                           for l in weights], x.double()), what=what)
        except AssertionError as exc:
            raise self.localised(exc, trail, weights, x) from None

    @weight(POINTS["2.1.16"])
    @number("2.1.16")
    @visibility(HIDDEN)
    @enforce_ban("attention")
    @time_limit(40)
    def test_backward(self):
        """The same stack, backward: gradients of every projection and of the input"""
        for seed in self.seeds(2):
            g = generator(seed)
            weights = self.weights(g)
            T = randint(g, 2, 16)
            x = torch.randn(randint(g, 1, 3), T, self.E, generator=g)
            grad_out = torch.randn(x.shape, generator=g)
            what = self.what(x) + ", backward"
            layers, trail = self.student_layers(weights), []
            x_proxy = self.put(x, requires_grad=True)
            ref_weights = [[(W.double().requires_grad_(True), b.double().requires_grad_(True)) for W, b in l]
                           for l in weights]
            try:
                out = self.student_forward(layers, x_proxy, x.shape, trail)
                out.backward(grad_out)
                x_ref = x.double().requires_grad_(True)
                self.reference_forward(ref_weights, x_ref).backward(grad_out.double())
                self.check_backward(what, x_proxy, x_ref, layers, ref_weights)
            except AssertionError as exc:
                raise self.localised(exc, trail, weights, x, layers, ref_weights) from None

    def check_backward(self, what: str, x_proxy, x_ref, layers, ref_weights) -> None:
        """The gradients of the input and of every projection, against the reference's."""
        x_grad = x_proxy.grad
        if x_grad is None:
            raise AssertionError(f"{what}: the input received no gradient (is the output detached?).")
        self.assert_close(x_grad, x_ref.grad, what=f"{what}: gradient of the input", atol=1e-3, rtol=1e-3)
        for i, (mods, ref_layer) in enumerate(zip(layers, ref_weights)):
            for proj, (W, b), role in zip(mods, ref_layer, ("query", "key", "value")):
                grads = self.grads(proj)
                for name, expected in (("weight", W.grad), ("bias", b.grad)):
                    got = grads.get(name)
                    label = f"{what}: gradient of layer {i + 1}'s {role} projection {name}"
                    if got is None:
                        raise AssertionError(f"{label}: none (the projection is not used, or detached).")
                    self.assert_close(got, expected, what=label, atol=1e-3, rtol=1e-3)
