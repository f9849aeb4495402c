"""Problem 2.2-2.5: MultiHeadedAttention (vit_solution.py), 17 points.

2.2  split_heads / merge_heads      (4 points)
2.3  get_attention_weights          (8 points)
2.4  apply_attention                (2 points)
2.5  forward                        (3 points)

nn.MultiheadAttention, F.multi_head_attention_forward and F.scaled_dot_product_attention are
banned inside MultiHeadedAttention: every test here scores 0 if they are used.
"""
import math

import torch

from autograder.suite.draw import generator, randint, shape_text
from autograder.suite import GradedTestCase, enforce_ban, number, sibling, time_limit, visibility, weight
from autograder.suite import errors

mha_forward = sibling(__file__, "mha_forward")
composite = sibling(__file__, "composite")

HIDDEN = "after_published"
LAYOUT_HINT = "the layout is y[b, h, t, d] == x[b, t, h*dim + d]; take B, T and dim from the input."


def _mha_text(head_size: int, num_heads: int, sequence_length: int) -> str:
    return (f"MultiHeadedAttention(head_size={head_size}, num_heads={num_heads}, "
            f"sequence_length={sequence_length})")


def _permutation(g: torch.Generator, T: int) -> list[int]:
    """A random permutation of range(T) that does not commute with reversing the sequence."""
    while True:
        perm = torch.randperm(T, generator=g).tolist()
        if any(perm[T - 1 - i] != T - 1 - perm[i] for i in range(T)):
            return perm


class _AttentionCase(GradedTestCase):

    atol = rtol = 1e-4

    def mha(self, head_size: int, num_heads: int, sequence_length: int):
        vit = self.student("vit_solution")
        return vit.MultiHeadedAttention(head_size, num_heads, sequence_length).to(self.device)

    def ref_mha(self, head_size: int, num_heads: int, sequence_length: int):
        return self.reference("vit_solution").MultiHeadedAttention(head_size, num_heads, sequence_length)

    # -- split / merge -------------------------------------------------------------
    def check_split(self, mha, ref, x, H: int, T_seq: int, D: int, label: str = ""):
        B, T, HD = x.shape
        dim = HD // H
        what = f"split_heads on a {shape_text(x.shape)} input with {_mha_text(D, H, T_seq)}{label}"
        y = self.assert_tensor(mha.split_heads(x), shape=(B, H, T, dim), what=what)
        self.assert_close(y, ref.split_heads(x), what=what, atol=0, rtol=0, hint=LAYOUT_HINT)

    def check_merge(self, mha, ref, y, H: int, T_seq: int, D: int, label: str = ""):
        B, _, T, dim = y.shape
        what = f"merge_heads on a fresh {shape_text(y.shape)} input with {_mha_text(D, H, T_seq)}{label}"
        x = self.assert_tensor(mha.merge_heads(y), shape=(B, T, H * dim), what=what)
        self.assert_close(x, ref.merge_heads(y), what=what, atol=0, rtol=0,
                          hint="merge_heads is the inverse of split_heads: x[b, t, h*dim + d] == y[b, h, t, d].")

    # -- attention weights ---------------------------------------------------------
    def qk(self, g, B, H, T, D, scale=1.0):
        return (torch.randn(B, H, T, D, generator=g) * scale, torch.randn(B, H, T, D, generator=g) * scale)

    def check_weights(self, D, H, T_seq, q, k, hint=None, label=""):
        mha = self.mha(D, H, T_seq)
        B, _, T, _ = q.shape
        what = (f"get_attention_weights(queries, keys) with queries and keys of shape "
                f"{shape_text(q.shape)} and {_mha_text(D, H, T_seq)}{label}")
        w = self.assert_tensor(mha.get_attention_weights(q, k), shape=(B, H, T, T), what=what)
        expected = self.ref_mha(D, H, T_seq).get_attention_weights(q, k)
        self.assert_close(w, expected, what=what, hint=hint)

    # -- apply_attention -----------------------------------------------------------
    def check_apply(self, D, H, T, g, label=""):
        mha = self.mha(D, H, T)
        B = randint(g, 1, 3)
        q, k = self.qk(g, B, H, T, D)
        v = torch.randn(B, H, T, D, generator=g)
        what = (f"apply_attention(queries, keys, values), each of shape {shape_text(q.shape)}, "
                f"with {_mha_text(D, H, T)}{label}")
        try:        # the student's own weights before apply_attention runs (used only if it is wrong)
            before = mha.get_attention_weights(q, k)
        except errors.StudentException:
            before = None
        out = self.assert_tensor(mha.apply_attention(q, k, v), shape=(B, T, H * D), what=what)
        ref = self.ref_mha(D, H, T)
        expected = ref.apply_attention(q, k, v)
        try:
            self.assert_close(out, expected, what=what,
                              hint="weight the values with get_attention_weights (weights @ values), then "
                                   "merge the heads into (B, T, H*head_size).")
        except AssertionError:
            # Fair to a student whose get_attention_weights is wrong (graded in 2.3): accept the
            # values weighted with the student's own attention weights.
            weights = mha.get_attention_weights(q, k)
            if type(weights) is not torch.Tensor or tuple(weights.shape) != (B, H, T, T):
                raise
            own = ref.merge_heads(weights.double() @ v.double()).float()
            if not torch.allclose(out.double(), own.double(), atol=1e-4, rtol=1e-4):
                raise
            if not composite.close(before, weights, tol=1e-6):
                raise AssertionError(
                    f"{what}: your result equals the values weighted with what your get_attention_weights "
                    "returns after apply_attention ran, but it returned other weights for the same queries "
                    "and keys before: a method must compute the same function however and whenever it is "
                    "called.") from None
            fresh = (composite.fresh_like(q, 4401), composite.fresh_like(k, 4402))
            if composite.close(mha.get_attention_weights(*fresh), ref.get_attention_weights(*fresh)):
                raise AssertionError(
                    f"{what}: your result equals the values weighted with your own get_attention_weights, "
                    "but those give the reference's weights on other queries and keys and not on these: a "
                    "method must compute the same function whatever its input.") from None
            self.note(f"{what}: your result equals the values weighted with your own "
                      "get_attention_weights, so it is accepted here (the weights are graded in 2.3).")

    # -- forward -------------------------------------------------------------------
    def check_structure(self, mha, g, B: int, T: int, D: int, H: int, what: str):
        """Permutation equivariance, dependence on every position, gradients to every parameter."""
        E = H * D
        x = torch.randn(B, T, E, generator=g)
        perm = _permutation(g, T)
        delta = torch.randn(E, generator=g)
        batch = [x, x[:, perm]]
        for j in range(T):
            xj = x.clone()
            xj[:, j] += delta
            batch.append(xj)
        X = torch.cat(batch, dim=0)
        y = self.keep(mha, X)
        Y = self.assert_tensor(self.fetch(y), shape=X.shape, what=f"{what} on a {shape_text(X.shape)} input")
        Y0 = Y[:B]
        self.assert_close(Y[B:2 * B], Y0[:, perm],
                          what=f"{what}: forward(x[:, perm]) compared with forward(x)[:, perm] for the "
                               f"permutation perm = {perm} of the positions",
                          hint="without a mask or positional information, attention treats the positions "
                               "alike: permuting the input positions must permute the outputs the same way. "
                               "Check the order of the transposes/reshapes in forward.")
        for j in range(T):
            change = (Y[(2 + j) * B:(3 + j) * B] - Y0).abs().amax(dim=(0, 2))
            unchanged = [i for i in range(T) if float(change[i]) <= 1e-6]
            if unchanged:
                raise AssertionError(
                    f"{what}: changing the input at position {j} left the output at positions "
                    f"{unchanged} unchanged. Every output position attends to every input position "
                    "(there is no mask in this assignment).")
        y.backward(torch.randn(X.shape, generator=g))
        grads = self.grads(mha)
        if not grads:
            raise AssertionError(f"{what}: the module has no parameters (the projections are missing).")
        for name, grad in grads.items():
            if grad is None:
                raise AssertionError(f"{what}: parameter {name} received no gradient after backward; "
                                     "every projection must be used in forward.")
            self.assert_tensor(grad, what=f"{what}: the gradient of {name}")
            if grad.dim() >= 2 and not bool(grad.abs().gt(0).any()):
                raise AssertionError(f"{what}: parameter {name} received an all-zero gradient; "
                                     "every projection must be used in forward.")

    def check_agreement(self, mha, g, T: int, D: int, H: int, what: str) -> None:
        """forward is multi-head attention with the student's own projections, whatever their layout:
        judged from what forward hands to its own attention methods, else from the parameters."""
        E = H * D
        B = math.ceil(3 * (H * E + 1) / T)      # more positions than the least-squares fits have unknowns
        x = torch.randn(B, T, E, generator=g)
        # Weights drawn here, so the projections are read off values the grader knows (never off
        # what the module reports back).
        state, parameters = mha.state_dict(), self.grads(mha)
        state = {k: torch.randn(v.shape, generator=g) / math.sqrt(v.shape[-1]) for k, v in
                 (state.items() if isinstance(state, dict) else ()) if type(v) is torch.Tensor
                 and v.is_floating_point() and v.dim() > 0 and k in parameters}
        mha.load_state_dict(state, strict=False)
        recorded = self.record_calls(mha, ("apply_attention", "get_attention_weights"), x, functions=("softmax",))
        out = self.assert_tensor(recorded["output"], shape=(B, T, E), what=f"{what} on a {shape_text(x.shape)} input")

        def confirm(method: str, args: list, result) -> str | None:
            """None when the student's ``method`` gives ``result`` again, called directly on ``args``,
            and differs from the reference on fresh arguments too (as a real bug does)."""
            own = getattr(mha, method)
            if not composite.close(own(*args), result):
                return (f"your {method} returns other values when called directly on the same arguments: "
                        "a method must compute the same function however it is called")
            fresh = [composite.fresh_like(a, 5300 + i) for i, a in enumerate(args)]
            if composite.close(own(*fresh), getattr(self.ref_mha(D, H, T), method)(*fresh)):
                return (f"your {method} gives the reference's result on other arguments but not on the ones "
                        "forward gave it: a method must compute the same function whatever its input")
            return None

        verdict, finding = mha_forward.judge_recorded(x, out, recorded["calls"], H, D, confirm=confirm)
        if verdict:
            if finding:
                self.note(f"{what}: {finding}")
            return
        readings = mha_forward.find_projections(state, E, H)
        if self.matches_reference(readings, x, out, D, H, T):
            return
        tried = ("no assignment of them reproduces forward" if readings else
                 "they fit no known layout (four (H*D, H*D) affine maps with biases, or a fused "
                 "(3*H*D, H*D) one, chunked into q, k, v or split into heads first, plus an (H*D, H*D) one)")
        if verdict is None and not readings:
            verdict, weighed = mha_forward.judge_softmax(x, out, recorded["functions"].get("softmax"), H)
            raw = mha_forward.find_projections(state, E, H, raw=True) if verdict else []
            if verdict and (not raw or self.matches_reference(raw, x, out, D, H, T)):
                self.note(f"{what}: {weighed}")
                return
            if verdict:     # attention, but not over these parameters read as x @ W + b or F.linear(x, W, b)
                weighed = ("forward's softmax weighs the positions as attention does, but reading your four "
                           "(H*D, H*D) parameters and biases as the query, key, value and output projections, "
                           "no assignment of them reproduces forward: the attention must be computed from the "
                           "module's own parameters")
            tried += f"; and {weighed}"
        raise AssertionError(
            f"{what} on a {shape_text(x.shape)} input is not multi-head attention over your own projections: "
            f"{finding}; and reading the projections off your parameters, {tried}.\n  Hint: forward = output "
            "projection of merge_heads(softmax(Q Kᵀ / sqrt(head_size)) V), where Q, K and V are the query, key "
            "and value projections of the same input, split into heads.")

    def matches_reference(self, readings: list, x, out, D: int, H: int, T: int) -> bool:
        """True when the reference MHA loaded with one reading of the student's projections gives ``out``."""
        return mha_forward.load_matching(self.ref_mha(D, H, T), readings, x, out) is not None


class TestSplitMergeHeads(_AttentionCase):

    @weight(1)
    @number("2.2.1")
    @enforce_ban("attention")
    @time_limit(30)
    def test_split_heads_dim_not_head_size(self):
        """split_heads on a (2, 5, 3*23) input with head_size=11 (dim differs from head_size)"""
        x = torch.randn(2, 5, 3 * 23, generator=generator(21))
        self.check_split(self.mha(11, 3, 5), self.ref_mha(11, 3, 5), x, 3, 5, 11)

    @weight(1)
    @number("2.2.2")
    @enforce_ban("attention")
    @time_limit(30)
    def test_merge_heads_fresh_input(self):
        """merge_heads on a fresh contiguous (2, 3, 5, 23) input with head_size=11"""
        y = torch.randn(2, 3, 5, 23, generator=generator(22))
        self.check_merge(self.mha(11, 3, 5), self.ref_mha(11, 3, 5), y, 3, 5, 11,
                         label=" (made by torch.randn, not by split_heads)")

    @weight(1)
    @number("2.2.3")
    @enforce_ban("attention")
    @time_limit(30)
    def test_roundtrip_other_length(self):
        """split_heads then merge_heads give the input back, with T=7 and sequence_length=5"""
        D, H, T_seq = 4, 2, 5
        x = torch.randn(3, 7, H * D, generator=generator(23))
        mha, ref = self.mha(D, H, T_seq), self.ref_mha(D, H, T_seq)
        what = f"split_heads on a (3, 7, 8) input with {_mha_text(D, H, T_seq)}"
        y = self.keep(mha.split_heads, x)
        got = self.assert_tensor(self.fetch(y), shape=(3, H, 7, D), what=what)
        self.assert_close(got, ref.split_heads(x), what=what, atol=0, rtol=0,
                          hint="T comes from the input, not from sequence_length; " + LAYOUT_HINT)
        what = f"merge_heads(split_heads(x)) for x of shape (3, 7, 8) with {_mha_text(D, H, T_seq)}"
        back = self.assert_tensor(mha.merge_heads(y), shape=(3, 7, H * D), what=what)
        self.assert_close(back, x, what=what, atol=0, rtol=0,
                          hint="merge_heads must undo split_heads exactly, for any T.")

    @weight(1)
    @number("2.2.4")
    @visibility(HIDDEN)
    @enforce_ban("attention")
    @time_limit(40)
    def test_random_shapes(self):
        """split_heads and merge_heads on random shapes"""
        for seed in self.seeds(3):
            g = generator(seed)
            B, T, H = randint(g, 1, 3), randint(g, 2, 9), randint(g, 2, 5)
            D = randint(g, 2, 9)
            dim = D + randint(g, 1, 7)
            T_seq = T + randint(g, 1, 4)
            mha, ref = self.mha(D, H, T_seq), self.ref_mha(D, H, T_seq)
            self.check_split(mha, ref, torch.randn(B, T, H * dim, generator=g), H, T_seq, D)
            self.check_merge(mha, ref, torch.randn(B, H, T, dim, generator=g), H, T_seq, D)


class TestAttentionWeights(_AttentionCase):

    @weight(2)
    @number("2.3.1")
    @enforce_ban("attention")
    @time_limit(30)
    def test_rows_sum_to_one(self):
        """get_attention_weights: shape (B, H, T, T), each row is a distribution over the keys"""
        D, H, T = 7, 3, 5
        q, k = self.qk(generator(31), 2, H, T, D)
        what = (f"get_attention_weights(queries, keys) with queries and keys of shape (2, 3, 5, 7) "
                f"and {_mha_text(D, H, T)}")
        w = self.assert_tensor(self.mha(D, H, T).get_attention_weights(q, k), shape=(2, H, T, T), what=what)
        if bool((w < 0).any()):
            raise AssertionError(f"{what}: some weights are negative; attention weights come from a softmax.")
        self.assert_close(w.sum(dim=-1), torch.ones(2, H, T), what=f"{what}: the sum of each row w[b, h, t, :]",
                          hint="take the softmax over the last axis (the keys): weights.sum(-1) is all ones.")

    @weight(2)
    @number("2.3.2")
    @enforce_ban("attention")
    @time_limit(30)
    def test_fixed_example(self):
        """get_attention_weights on a fixed example: softmax(Q Kᵀ / sqrt(head_size)) with head_size=16"""
        q, k = self.qk(generator(32), 2, 2, 4, 16, scale=0.8)
        self.check_weights(16, 2, 4, q, k,
                           hint="scores are Q Kᵀ / sqrt(head_size); the softmax is over the last axis.")

    @weight(3)
    @number("2.3.3")
    @visibility(HIDDEN)
    @enforce_ban("attention")
    @time_limit(40)
    def test_random(self):
        """get_attention_weights on random inputs and shapes"""
        for seed in self.seeds(4):
            g = generator(seed)
            B, H, T, D = randint(g, 1, 3), randint(g, 1, 4), randint(g, 2, 9), randint(g, 2, 21)
            scale = 0.5 + float(torch.rand(1, generator=g)) * 1.5
            q, k = self.qk(g, B, H, T, D, scale=scale)
            self.check_weights(D, H, T + randint(g, 0, 3), q, k)

    @weight(1)
    @number("2.3.4")
    @visibility(HIDDEN)
    @enforce_ban("attention")
    @time_limit(40)
    def test_gradients(self):
        """Gradients flow through get_attention_weights to the queries and keys"""
        for seed in self.seeds(2):
            g = generator(seed)
            B, H, T, D = randint(g, 1, 3), randint(g, 1, 3), randint(g, 2, 7), randint(g, 3, 13)
            q, k = self.qk(g, B, H, T, D)
            grad_out = torch.randn(B, H, T, T, generator=g)
            mha = self.mha(D, H, T)
            what = f"get_attention_weights on queries and keys of shape {shape_text(q.shape)}, backward"
            qr, kr = self.put(q, requires_grad=True), self.put(k, requires_grad=True)
            w = self.keep(mha.get_attention_weights, qr, kr)
            self.assert_tensor(self.fetch(w), shape=(B, H, T, T), what=what)
            w.backward(grad_out)
            qe, ke = q.clone().requires_grad_(True), k.clone().requires_grad_(True)
            self.ref_mha(D, H, T).get_attention_weights(qe, ke).backward(grad_out)
            for name, proxy, expected in (("queries", qr, qe.grad), ("keys", kr, ke.grad)):
                got = proxy.grad
                if got is None:
                    raise AssertionError(f"{what}: the {name} received no gradient (is the result detached?).")
                self.assert_close(got, expected, what=f"{what}: gradient with respect to the {name}")


class TestApplyAttention(_AttentionCase):

    @weight(1)
    @number("2.4.1")
    @enforce_ban("attention")
    @time_limit(30)
    def test_fixed_example(self):
        """apply_attention on a fixed example: weighted values, heads concatenated to (B, T, H*D)"""
        self.check_apply(4, 3, 5, generator(41))

    @weight(1)
    @number("2.4.2")
    @visibility(HIDDEN)
    @enforce_ban("attention")
    @time_limit(40)
    def test_random(self):
        """apply_attention on random inputs and shapes"""
        for seed in self.seeds(3):
            g = generator(seed)
            self.check_apply(randint(g, 2, 9), randint(g, 2, 4), randint(g, 2, 8), g)


class TestMultiHeadedAttentionForward(_AttentionCase):

    @weight(1)
    @number("2.5.1")
    @enforce_ban("attention")
    @time_limit(30)
    def test_parameter_count(self):
        """MultiHeadedAttention has 4*(H*D)**2 + 4*H*D learnable parameters"""
        for D, H in ((4, 2), (8, 3), (32, 8)):
            mha = self.mha(D, H, 5)
            E = H * D
            expected = 4 * E * E + 4 * E
            got = self.parameter_count(mha)
            if got != expected:
                raise AssertionError(
                    f"{_mha_text(D, H, 5)} has {got} learnable parameters; expected "
                    f"4*(H*D)**2 + 4*H*D = {expected}: four affine maps from H*D to H*D features, "
                    "each with a bias (queries, keys, values, output).")

    @weight(1)
    @number("2.5.2")
    @enforce_ban("attention")
    @time_limit(40)
    def test_structure(self):
        """MHA forward: output shape, permutation equivariance, every position used, every parameter trained"""
        D, H, T = 4, 2, 5
        self.check_structure(self.mha(D, H, T), generator(52), 2, T, D, H, f"{_mha_text(D, H, T)} forward")

    @weight(1)
    @number("2.5.3")
    @visibility(HIDDEN)
    @enforce_ban("attention")
    @time_limit(60)
    def test_random_and_reference(self):
        """MHA forward on random shapes, compared with reference attention using your own projections"""
        for seed in self.seeds(2):
            g = generator(seed)
            D, H, T, B = randint(g, 2, 7), randint(g, 2, 4), randint(g, 3, 8), randint(g, 1, 3)
            what = f"{_mha_text(D, H, T)} forward"
            mha = self.mha(D, H, T)
            self.check_structure(mha, g, B, T, D, H, what)
            self.check_agreement(self.mha(D, H, T), g, T, D, H, what)
