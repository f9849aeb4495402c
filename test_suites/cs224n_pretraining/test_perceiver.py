"""§2(g) the Perceiver: ``DownProjectBlock`` and ``UpProjectBlock`` in ``model.py``.

Models are built in the worker from the student's ``model.py`` (with the grader's pristine
``attention.py``) at a small size (vocabulary 40, block size 24, 4 layers, 4 heads,
n_embd 32, bottleneck m = 8) in eval mode, except the parameter count, which uses the
handout's size. The residual form inside the blocks is not graded (residual on C, none, or
on the input all pass); what is graded is what any correct form gives: C a registered
parameter of shape (1, m, n_embd) drawn within the xavier-uniform bound, the shapes of each
block and of the logits, causality end to end, a gradient reaching C, and running on the CPU
as well as on the grading device. When a forward test fails, its message names the first
sub-module whose shapes (for causality: whose moving positions) depart from the reference
holding the student's weights (autograder.suite.localise).
"""
from __future__ import annotations

import ast
import contextlib
import math

import torch

from autograder.suite import GradedTestCase, errors, localise, number, time_limit, visibility, weight
from autograder.suite.draw import generator

HIDDEN = "after_published"
V, T, LAYERS, HEADS, D, M = 40, 24, 4, 4, 32, 8
SWAP_HINT = ("CausalCrossAttention.forward(x_kv, x_q) takes the keys/values FIRST and the queries SECOND; "
             "are the two arguments swapped?")


def config_kwargs(**overrides):
    kwargs = dict(n_layer=LAYERS, n_head=HEADS, n_embd=D, perceiver=True, bottleneck_dim=M)
    kwargs.update(overrides)
    return kwargs


def parameter_to_device(source: str) -> int | None:
    """Line of ``self.C = nn.Parameter(...).to(...)`` (or ``.cuda()``) in DownProjectBlock, if any.

    On a GPU, ``.to(device)`` returns a plain tensor copy, so C is no longer a parameter
    (not trained, not saved); on a CPU it returns the parameter itself and the bug hides.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for cls in ast.walk(tree):
        if not (isinstance(cls, ast.ClassDef) and cls.name == "DownProjectBlock"):
            continue
        for node in ast.walk(cls):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("to", "cuda") and isinstance(node.func.value, ast.Call)):
                inner = node.func.value.func
                name = inner.attr if isinstance(inner, ast.Attribute) else getattr(inner, "id", "")
                if name == "Parameter":
                    return node.lineno
    return None


def _moved(first: dict, second: dict) -> dict:
    """The records of two runs of one model on inputs that differ in one token, as records whose
    inputs and outputs say, per position (dim 1), whether the value moved between the runs."""
    def mask(a, b):
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return [mask(x, y) for x, y in zip(a, b)]
        if type(a) is not torch.Tensor or type(b) is not torch.Tensor or a.shape != b.shape or a.dim() < 2:
            return None
        d = (a.double() - b.double()).abs()
        return (d.reshape(d.shape[0], d.shape[1], -1) > 1e-4).any(-1).double()

    records = []
    for a, b in zip(first.get("modules") or (), second.get("modules") or ()):
        if a.get("path") != b.get("path"):
            break
        records.append({**a, "inputs": [mask(x, y) for x, y in zip(a.get("inputs") or (), b.get("inputs") or ())],
                        "output": mask(a.get("output"), b.get("output"))})
    return {"modules": records, "paths": first.get("paths"), "error": first.get("error") or second.get("error")}


class PerceiverCase(GradedTestCase):
    atol = rtol = 1e-5

    def build(self, device: str | None = None, **overrides):
        """The student's Perceiver GPT in eval mode, on the grading device (or ``device``)."""
        model = self.student("model", device=device)
        conf = model.GPTConfig(V, T, **config_kwargs(**overrides))
        gpt = model.GPT(conf)
        gpt.eval()
        return gpt.to(device or self.device)

    def tokens(self, seed: int, batch: int = 2, length: int = T) -> torch.Tensor:
        return torch.randint(0, V, (batch, length), generator=generator(seed))

    # -- where it goes wrong: named in the message of a test that already failed ------------------
    @contextlib.contextmanager
    def localised(self, gpt, idx, changed=None, **overrides):
        """When the model fails here (a wrong shape or a crash of its forward on ``idx``; with
        ``changed``, logits that move before the token ``changed`` replaces), add to the message
        the first sub-module where it departs from the reference holding the student's weights:
        in the shapes each sub-module receives and returns (the residual form inside the blocks
        is free, so values are not compared), then, with ``changed``, in which positions of what
        each sub-module receives and returns move between the two inputs. The verdict stays the
        check's (see autograder.suite.localise)."""
        try:
            yield
        except AssertionError as exc:
            if isinstance(exc, errors.StudentCodeFailure) and not isinstance(exc, errors.StudentException):
                raise       # the worker was stopped (time, memory): nothing more is asked of it
            try:
                line = localise.describe(*self.first_difference(gpt, idx, changed, **overrides))
            except Exception:   # noqa: BLE001 - a message aid: the failure stays as it was
                line = ""
            if line:
                raise type(exc)(f"{exc}\n  {line}") from None
            raise

    def first_difference(self, gpt, idx, changed, **overrides) -> tuple:
        """(difference or None, hidden, root, what was compared): the arguments of localise.describe."""
        ref_model = self.reference("model")
        reference = ref_model.GPT(ref_model.GPTConfig(V, T, **config_kwargs(**overrides)))
        reference.eval()
        state, mine = gpt.state_dict(), reference.state_dict()
        if isinstance(state, dict):        # the student's weights, where they fit the reference's
            reference.load_state_dict({k: v.to(mine[k].dtype) for k, v in state.items()
                                       if k in mine and type(v) is torch.Tensor and v.shape == mine[k].shape},
                                      strict=False)
        record = self.record_modules(gpt, idx)
        diff = localise.first_difference(record, reference, idx, shapes_only=True)
        if diff is not None or changed is None or record.get("error"):
            return diff, self.hidden, "GPT", ("the shapes each sub-module receives and returns, compared with "
                                              "the reference holding your weights on the same input")
        moved = _moved(record, self.record_modules(gpt, changed))
        expected = _moved(localise.record_reference(reference, (idx,)),
                          localise.record_reference(reference, (changed,)))
        return (localise.first_difference(moved, expected, atol=0, rtol=0), self.hidden, "GPT",
                "which positions of what each sub-module receives and returns move when one token changes, "
                "compared with the reference holding your weights")

    def logits(self, gpt, idx, what: str) -> torch.Tensor:
        out = gpt(idx)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise AssertionError(f"{what}: GPT.forward must return (logits, loss); got {type(out).__name__}.")
        return self.assert_tensor(out[0], shape=(idx.shape[0], idx.shape[1], V), what=f"{what}: the logits")


class TestPerceiver(PerceiverCase):

    @weight(2)
    @number("2.1")
    @visibility("visible")
    @time_limit(60)
    def test_basis_is_a_parameter(self):
        """Perceiver: down_block.C is an nn.Parameter of shape (1, m, n_embd), xavier-uniform"""
        gpt = self.build()
        line = parameter_to_device((self.grading.run.staged.dir / "model.py").read_text(errors="replace"))
        if line is not None:
            raise AssertionError(
                f"model.py line {line}: C is created as nn.Parameter(...).to(...) (or .cuda()). On a GPU that "
                "returns a plain tensor copy, so C is no longer a parameter: it is not trained and not saved. "
                "Create the parameter on the right device instead (nn.Parameter(torch.empty(...)) and let "
                "model.to(device) move it).")
        names = set(self.grads(gpt))
        if "down_block.C" not in names:
            raise AssertionError("down_block.C is not among the model's parameters (named_parameters()): make C an "
                                 "nn.Parameter assigned to self.C in DownProjectBlock.__init__, or it is never "
                                 "trained or saved.")
        state = gpt.state_dict()
        C = self.assert_tensor(state.get("down_block.C") if isinstance(state, dict) else None,
                               shape=(1, M, D), what="down_block.C in the state_dict")
        bound = math.sqrt(6 / (D * (M + 1)))
        top = float(C.abs().max())
        if top > bound + 1e-6:
            raise AssertionError(f"down_block.C has values up to {top:.4f}, beyond the xavier-uniform bound "
                                 f"sqrt(6 / (n_embd*(m+1))) = {bound:.4f}: initialise it with nn.init.xavier_uniform_.")
        if top < bound / 2 or float(C.std()) < bound / 4:
            raise AssertionError(f"down_block.C is not spread over the xavier-uniform range (largest |value| "
                                 f"{top:.4f}, bound {bound:.4f}): initialise it with nn.init.xavier_uniform_.")

    @weight(1)
    @number("2.2")
    @visibility("visible")
    @time_limit(60)
    def test_down_block_shape(self):
        """Perceiver: DownProjectBlock maps (B, T, d) to (B, m, d)"""
        model = self.student("model")
        block = model.DownProjectBlock(model.GPTConfig(V, T, **config_kwargs())).to(self.device)
        block.eval()
        x = torch.randn(3, T - 4, D, generator=generator(1))
        out = block(x)
        if isinstance(out, torch.Tensor) and tuple(out.shape) == (3, T - 4, D):
            raise AssertionError(f"DownProjectBlock on a (3, {T - 4}, {D}) input returned shape {tuple(out.shape)}: "
                                 f"the input's length, not the bottleneck m = {M}. The queries must come from C. "
                                 + SWAP_HINT)
        self.assert_tensor(out, shape=(3, M, D), what=f"DownProjectBlock (m={M}) on a (3, {T - 4}, {D}) input")

    @weight(1)
    @number("2.3")
    @visibility("visible")
    @time_limit(60)
    def test_up_block_shape(self):
        """Perceiver: UpProjectBlock maps y (B, m, d) and the input (B, T, d) to (B, T, d)"""
        model = self.student("model")
        block = model.UpProjectBlock(model.GPTConfig(V, T, **config_kwargs())).to(self.device)
        block.eval()
        y = torch.randn(3, M, D, generator=generator(2))
        x = torch.randn(3, T, D, generator=generator(3))
        out = block(y, x)
        if isinstance(out, torch.Tensor) and tuple(out.shape) == (3, M, D):
            raise AssertionError(f"UpProjectBlock(y of shape (3, {M}, {D}), x_input of shape (3, {T}, {D})) "
                                 f"returned shape (3, {M}, {D}): the bottleneck's length, not the input's T = {T}. "
                                 "The queries must come from x_input. " + SWAP_HINT)
        self.assert_tensor(out, shape=(3, T, D), what=f"UpProjectBlock(y (3, {M}, {D}), x_input (3, {T}, {D}))")

    @weight(2)
    @number("2.4")
    @visibility("visible")
    @time_limit(60)
    def test_logits_shape(self):
        """Perceiver: the model's logits are (B, T, vocab) for T below and at the block size"""
        gpt = self.build()
        for length in (5, M + 3, T):
            idx = self.tokens(length, 2, length)
            with self.localised(gpt, idx):
                self.logits(gpt, idx, f"Perceiver GPT (block size {T}, m={M}) on a (2, {length}) input")

    @weight(1)
    @number("2.5")
    @visibility(HIDDEN)
    @time_limit(60)
    def test_causal(self):
        """Perceiver: the model is causal end to end (token t changes no logit before t)"""
        gpt = self.build()
        for seed in self.seeds(2):
            idx = self.tokens(seed, 1, T)
            with self.localised(gpt, idx):
                base = self.logits(gpt, idx, "Perceiver GPT")
            for t in (1, M // 2, M + 2, T - 1):
                changed = idx.clone()
                changed[0, t] = (changed[0, t] + 1 + seed % (V - 1)) % V
                with self.localised(gpt, changed):
                    out = self.logits(gpt, changed, "Perceiver GPT")
                moved = (out[0, :t] - base[0, :t]).abs().amax(dim=-1)
                if bool((moved > 1e-4).any()):
                    first = int((moved > 1e-4).nonzero()[0][0])
                    with self.localised(gpt, idx, changed):
                        raise AssertionError(
                            f"Changing the token at position {t} changed the logits at position {first} (before "
                            "it): the model sees the future. The cross-attentions must keep their causal masks: "
                            "the basis C (queries) attends to the input (keys/values) in DownProjectBlock, and the "
                            "input (queries) attends to the bottleneck (keys/values) in UpProjectBlock.")

    @weight(1)
    @number("2.6")
    @visibility("visible")
    @time_limit(60)
    def test_basis_gets_gradient(self):
        """Perceiver: the loss back-propagates to down_block.C"""
        gpt = self.build()
        idx = self.tokens(7, 2, T)
        targets = self.tokens(8, 2, T)
        with self.localised(gpt, idx):
            out = self.keep(gpt, idx, targets)
        loss = self.keep(self.library("operator").getitem, out, 1)
        loss.backward()
        grads = self.grads(gpt)
        if "down_block.C" not in grads:
            raise AssertionError("down_block.C is not a parameter of the model, so it gets no gradient "
                                 "(make it an nn.Parameter).")
        g = grads["down_block.C"]
        if g is None or float(g.abs().sum()) == 0:
            raise AssertionError("After loss.backward(), down_block.C has no gradient (or only zeros): the "
                                 "queries of DownProjectBlock's cross-attention must be computed from C.")
        # The gradient is what the model reports (it could set it itself); that forward uses C is
        # also checked on its own: the logits move when C does.
        state = gpt.state_dict()
        C = self.assert_tensor(state.get("down_block.C") if isinstance(state, dict) else None,
                               shape=(1, M, D), what="down_block.C in the state_dict")
        before = self.logits(gpt, idx, "Perceiver GPT")
        gpt.load_state_dict({"down_block.C": C + 0.1 * torch.randn(C.shape, generator=generator(9))}, strict=False)
        after = self.logits(gpt, idx, "Perceiver GPT with down_block.C changed")
        if float((after - before).abs().max()) <= 1e-6:
            raise AssertionError("Changing down_block.C (through load_state_dict) leaves the logits unchanged: "
                                 "forward does not use C. The queries of DownProjectBlock's cross-attention must "
                                 "be computed from C.")

    @weight(1)
    @number("2.7")
    @visibility("visible")
    @time_limit(60)
    def test_runs_on_cpu(self):
        """Perceiver: the model builds and runs on the CPU (no hard-coded CUDA device)"""
        gpt = self.build(device="cpu")
        idx = self.tokens(9, 2, T)
        with self.localised(gpt, idx):
            self.logits(gpt, idx, "Perceiver GPT built and run on the CPU")

    @weight(1)
    @number("2.8")
    @visibility("visible")
    @time_limit(60)
    def test_parameter_count(self):
        """Perceiver: parameter count at the handout's size (vanilla + m*n_embd for reference-shaped blocks)"""
        model = self.student("model", device="cpu")
        size = dict(n_layer=4, n_head=8, n_embd=256)
        vanilla = self.parameter_count(model.GPT(model.GPTConfig(256, 128, **size)))
        for m, expected in ((32, 3_331_584), (64, 3_339_776)):
            gpt = model.GPT(model.GPTConfig(256, 128, perceiver=True, bottleneck_dim=m, **size))
            count = self.parameter_count(gpt)
            if count == expected:
                continue
            C = gpt.down_block.C
            if not isinstance(C, torch.Tensor) or "down_block.C" not in self.grads(gpt):
                raise AssertionError(f"At m={m} the Perceiver has {count:,} trainable parameters, {expected:,} "
                                     "expected: down_block.C is not among them (make it an nn.Parameter).")
            blocks = self.parameter_count(gpt.down_block) - m * 256 + self.parameter_count(gpt.up_block)
            block = self.parameter_count(model.Block(model.GPTConfig(256, 128, **size)))
            if count - blocks + 2 * block == vanilla + m * 256:
                self.note(f"At m={m} the Perceiver has {count:,} parameters where reference-shaped blocks give "
                          f"{expected:,}: your DownProjectBlock and UpProjectBlock have {blocks - 2 * block:+,} "
                          "parameters beyond a Block each; that is allowed (not penalised).")
                continue
            raise AssertionError(f"At m={m} the Perceiver has {count:,} trainable parameters, {expected:,} expected "
                                 f"(the vanilla model's {vanilla:,} plus m*n_embd = {m * 256:,} for C).")
