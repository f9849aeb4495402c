"""Problem 2.6-2.9: the Vision Transformer (vit_solution.py), 6 points.

2.6  VisionTransformer.get_patches   (2 points)
2.7  PreNormAttentionBlock.forward   (1 point): its output, and a gradient for every parameter
2.8  VisionTransformer.forward       (2 points)
2.9  VisionTransformer.loss          (1 point)

The block and forward tests compare your code with the reference block or model loaded
with your weights. When one of your sub-modules (your LayerNorm or attention, graded in
2.1-2.5) differs from the reference, they check the computation step by step on what your
sub-modules received and returned inside your forward instead, so a mistake there does not
cost points here unless it makes your code crash; a sub-module must then return the same
values when called directly on the same input. The LayerNorm ban does not apply here: the
starter's mlp_head uses nn.LayerNorm. When the block or forward test fails, its message names
the first sub-module that departs from the reference holding your weights on the same input
(with the size of the difference in visible tests, the place only in hidden ones).
"""
import contextlib

import torch
import torch.nn.functional as F

from autograder.suite.draw import generator, randint, shape_text
from autograder.suite import GradedTestCase, number, sibling, time_limit, visibility, weight
from autograder.suite import errors, localise

composite = sibling(__file__, "composite")
mha_forward = sibling(__file__, "mha_forward")

HIDDEN = "after_published"
BLOCK_PARTS = ("layer_norm_1", "attn", "layer_norm_2", "linear")
BLOCK_OWN = ("layer_norm_1", "attn", "layer_norm_2")     # the block's parts graded in 2.1-2.5
PRENORM_HINT = ("pre-norm: h = x + attn(layer_norm_1(x)); return h + linear(layer_norm_2(h)). "
                "The LayerNorms go at the start of each branch, not after the additions.")
CLS_HINT = ("after dropout and the transformer, classify from the CLS token only (position 0 of the "
            "sequence) with mlp_head; no pooling over positions, no softmax.")
# what a sub-module is, for the messages; None: given in the starter code (must be the reference's)
OWN_PART = {"layer_norm_1": "your LayerNorm (layer_norm_1, graded in 2.1)",
            "layer_norm_2": "your LayerNorm (layer_norm_2, graded in 2.1)",
            "attn": "your attention (attn, graded in 2.2-2.5)",
            "get_patches": "your get_patches (graded in 2.6)",
            "transformer": "your transformer (its blocks are graded in 2.5 and 2.7)",
            "linear": None, "mlp_head": None}


def _unfold_patches(image: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, num_patches, C*p*p) in the order F.unfold produces."""
    return F.unfold(image, kernel_size=p, stride=p).transpose(1, 2)


class _ViTCase(GradedTestCase):

    atol = rtol = 1e-4

    @staticmethod
    def vit_config(*, embed_dim=12, hidden_dim=16, num_channels=3, num_heads=3, num_layers=2,
                   num_classes=7, patch_size=4, num_patches=4, block="prenorm", dropout=0.0) -> dict:
        return dict(embed_dim=embed_dim, hidden_dim=hidden_dim, num_channels=num_channels,
                    num_heads=num_heads, num_layers=num_layers, num_classes=num_classes,
                    patch_size=patch_size, num_patches=num_patches, block=block, dropout=dropout)

    def vit_model(self, **config):
        vit = self.student("vit_solution")
        model = vit.VisionTransformer(**self.vit_config(**config))
        model = model.to(self.device)
        model.eval()
        return model

    def randomize(self, module, g: torch.Generator) -> dict:
        """Load random values into every floating-point entry of ``module``'s state dict; returns
        them (the reference is loaded with these, never with what the module reports back)."""
        state = module.state_dict()
        if not isinstance(state, dict):
            raise AssertionError(f"state_dict() returned {type(state).__name__}, not a dict.")
        new = {}
        for key, value in state.items():
            if type(value) is torch.Tensor and value.is_floating_point():
                noise = torch.randn(value.shape, generator=g) * 0.4
                is_norm_scale = key.endswith(("layer_norm_1.weight", "layer_norm_2.weight"))
                new[key] = noise + 1.0 if is_norm_scale else noise
        module.load_state_dict(new, strict=False)
        return new

    # -- get_patches ---------------------------------------------------------------
    def check_patches(self, model, image: torch.Tensor, p: int, label: str = ""):
        B, C, H, W = image.shape
        n = (H // p) * (W // p)
        expected = _unfold_patches(image, p)
        what = f"get_patches on a {shape_text(image.shape)} image with patch_size={p}{label}"
        with self.channels_named(model, image, p):
            got = self.assert_tensor(model.get_patches(image, p), shape=(B, n, C * p * p), what=what)
            self.assert_close(got, expected, what=what, atol=0, rtol=0,
                              hint="patches go in row-major order over the grid (left to right, then top to "
                                   "bottom); each patch is flattened as (channel, row, column), like F.unfold. "
                                   "Take the number of channels from the image.")
        # The course never said what flatten_channels=False returns: both real readings are accepted.
        what = f"get_patches(image, {p}, flatten_channels=False) on a {shape_text(image.shape)} image{label}"
        got = self.assert_tensor(model.get_patches(image, p, flatten_channels=False), what=what)
        readings = [(B, n, C, p, p), (B, n, C, p * p)]
        if tuple(got.shape) not in readings:
            raise AssertionError(f"{what} returned a tensor of shape {shape_text(got.shape)}; expected the "
                                 f"patches as {shape_text(readings[0])} or {shape_text(readings[1])} "
                                 "(each patch's channels kept apart).")
        self.assert_close(got, expected.reshape(got.shape), what=what, atol=0, rtol=0,
                          hint="the same patches as with flatten_channels=True, in the same order, "
                               "each patch's values kept in (channel, row, column) order.")

    @contextlib.contextmanager
    def channels_named(self, model, image: torch.Tensor, p: int):
        """Name the cause when get_patches fails on an image without 3 channels but gets the
        same image cut right once it has 3 channels."""
        try:
            yield
        except AssertionError as exc:       # a wrong result, or an exception raised by the student's code
            stopped = isinstance(exc, errors.StudentCodeFailure) and not isinstance(exc, errors.StudentException)
            if image.shape[1] == 3 or stopped or not self.cuts_rgb_right(model, image, p):
                raise
            channels = f"{image.shape[1]} channel{'s' if image.shape[1] != 1 else ''}"
            raise type(exc)(f"{exc}\n  This image has {channels}, and the same image with 3 "
                            "channels is cut right: take C from image.shape instead of assuming 3 (RGB).") from None

    def cuts_rgb_right(self, model, image: torch.Tensor, p: int) -> bool:
        rgb = image[:, :1].repeat(1, 3, 1, 1) + torch.arange(3.0).view(1, 3, 1, 1)
        try:
            got = model.get_patches(rgb, p)
        except errors.StudentException:
            return False
        expected = _unfold_patches(rgb, p)
        return isinstance(got, torch.Tensor) and got.shape == expected.shape and torch.equal(got, expected)

    # -- composites: the reference with the student's weights, else step by step ----------
    @contextlib.contextmanager
    def localised(self, module, reference, inputs, why: dict, root: str, **options):
        """When the composite fails on a value (not a crash), name in the message the first
        sub-module where ``module`` departs from ``reference`` (holding its weights) on ``inputs``:
        with the size of the difference in visible tests, the place only in hidden ones. Parts
        graded elsewhere (``accept``) are taken as the student computes them. The verdict is
        the one the check gave (see autograder.suite.localise)."""
        try:
            yield
        except AssertionError as exc:
            if type(exc) is not AssertionError or any(why.values()):
                raise
            raise localise.annotate(exc, lambda: localise.first_difference(
                self.record_modules(module, inputs), reference, inputs, atol=composite.TOLERANCE,
                rtol=composite.TOLERANCE, **options), self.hidden, root) from None

    def observe(self, module, attempts, *args):
        """(output, record, observed parts, why not all) of one call of ``module`` with what it
        hands to its sub-modules recorded: the first of ``attempts`` (tuples of part names) that
        forward survives (recording replaces each part by a function, so a forward that iterates
        over a part, indexes it or reads its attributes fails while it is observed)."""
        why = ""
        for parts in attempts:
            try:
                record = self.record_calls(module, parts, *args)
            except errors.StudentException as exc:
                first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                why = why or (f"forward failed while its calls to {', '.join(parts)} were recorded ({first}); "
                              "call each sub-module as a function, e.g. self.transformer(x), rather than "
                              "indexing it, iterating over it or calling its .forward")
                continue
            if isinstance(record, dict):
                return record.get("output"), record, parts, why
        return module(*args), None, (), why

    def load_block(self, reference, state: dict, student_block, E: int, hidden: int, H: int, seed: int):
        """({part: "" when the reference block's part now holds the student's weights, else why not},
        agrees(x, y): the reference attention with some reading of the student's weights maps x to y)."""
        why = {part: composite.load_part(getattr(reference, part), composite.sub_state(state, part), shapes)
               for part, shapes in composite.block_shapes(E, hidden).items()}
        probe, answer = torch.randn(2, 4, E, generator=generator(seed)), None
        try:                # the student's attention on a drawn input: it only selects the reading
            answer = student_block.attn(probe) if student_block is not None else None
        except errors.StudentException:
            pass
        why["attn"], agrees = composite.load_attention(mha_forward, reference.attn, composite.sub_state(state, "attn"),
                                                       E, H, probe, answer)
        return {part: why[part] for part in BLOCK_PARTS}, agrees

    def accept(self, what: str, part: str, inputs, output, reference, direct, unmapped: str = "", seed: int = 0,
               agrees=None):
        """Accept ``output``, what the sub-module ``part`` returned inside forward on ``inputs``:
        the reference part (the student's weights loaded) gives it; or, for a part graded
        elsewhere, the part called directly on the same input gives it again and differs from
        the reference on a fresh input too (``agrees(x, y)``: the reference maps x to y; by
        default ``reference(x)`` is y). Raises otherwise."""
        if reference is not None:
            with torch.no_grad():
                if composite.close(output, reference(inputs)):
                    return
        own = OWN_PART[part]
        if own is None:
            raise AssertionError(
                f"{what}: {part} (given in the starter code) does not compute what the starter's {part} computes "
                f"with your weights{f' ({unmapped})' if unmapped else ''}: keep the starter's {part}.")
        again = direct(inputs)
        if not composite.close(again, output):
            raise AssertionError(
                f"{what}: {own} returned other values inside forward than when called directly on the same "
                "input afterwards. A module must compute the same function however it is called (no state "
                "kept between calls, nothing that depends on who calls it).")
        if reference is None:
            self.note(f"{what}: {own} could not be loaded into the reference ({unmapped}), so forward was "
                      "checked step by step with what it returned inside forward (the same values as when "
                      "called directly).")
            return
        fresh = composite.fresh_like(inputs, seed + 1)
        with torch.no_grad():
            if (agrees or (lambda x, y: composite.close(y, reference(x))))(fresh, direct(fresh)):
                raise AssertionError(
                    f"{what}: {own} gives the reference's result on other inputs but not on the input your "
                    "forward gave it: a module must compute the same function whatever its input.")
        self.note(f"{what}: {own} differs from the reference, so forward was checked step by step with what "
                  "it returned inside forward (accepted here: it is graded in its own part).")

    def matches_copy(self, out, reference, why: dict, inputs, record, kind: str, what: str, unobserved: str,
                     hint: str) -> bool:
        """True when ``out`` is what the reference (holding the student's weights) gives; False when
        the check goes on step by step; raises when it cannot (forward was not observed)."""
        if not any(why.values()):
            with torch.no_grad():
                if composite.close(out, reference(inputs)):
                    return True
        if record is None:
            reason = (f"it differs from the reference {kind} holding your weights" if not any(why.values()) else
                      f"the reference {kind} could not hold your weights (" +
                      "; ".join(f"{part}: {w}" for part, w in why.items() if w) + ")")
            raise AssertionError(f"{what}: {reason}, and what forward does with its sub-modules could not be "
                                 f"observed: {unobserved}.\n  Hint: {hint}")
        return False

    # -- blocks --------------------------------------------------------------------
    def check_prenorm(self, g, B, T, embed_dim, hidden_dim, num_heads, label=""):
        """The block's output (value by value, as the reference block holding its weights), then
        the gradients its parameters receive from it."""
        block, x, what = self.prenorm_values(g, B, T, embed_dim, hidden_dim, num_heads, label)
        self.check_gradient_flow(block, x, g, what)

    def check_gradient_flow(self, block, x: torch.Tensor, g: torch.Generator, what: str) -> None:
        """Every parameter that gets a gradient from its own sub-module's output also gets one from the
        block's output: a `.detach()` on a branch or on the result leaves every value right and part of
        the block untrainable. A parameter its own sub-module cuts off (a LayerNorm or attention that
        detaches, graded in 2.1-2.5) is not asked for here, so that defect costs its points once."""
        def trained(grads: dict) -> set:
            return {name for name, grad in grads.items()
                    if grad is not None and (grad.dim() < 2 or bool(grad.abs().gt(0).any()))}

        for part in BLOCK_PARTS:      # each sub-module on its own, on the block's input
            out = self.keep(getattr(block, part), x)
            if out.requires_grad is True:
                out.backward(torch.randn(tuple(x.shape), generator=g))
        alone = {name for name in trained(self.grads(block)) if name.split(".")[0] in BLOCK_PARTS}
        block.zero_grad(set_to_none=True)
        y = self.keep(block, x)
        if y.requires_grad is not True:
            if alone:
                raise AssertionError(f"{what}: the output does not require grad, so no parameter of the block "
                                     "can be trained through it. Is it detached (.detach(), .data, torch.no_grad())?")
            return
        y.backward(torch.randn(tuple(x.shape), generator=g))
        cut = sorted(alone - trained(self.grads(block)))
        if cut:
            parts = sorted({name.split(".")[0] for name in cut}, key=BLOCK_PARTS.index)
            raise AssertionError(
                f"{what}, then backward: {', '.join(parts)} received no gradient from the block's output "
                f"(parameter {cut[0]}{f' and {len(cut) - 1} more' if len(cut) > 1 else ''}), though "
                f"{'it gives' if len(parts) == 1 else 'they give'} one on {'its' if len(parts) == 1 else 'their'} own, "
                f"so training would never change {'it' if len(parts) == 1 else 'them'}. Is a branch detached (.detach(), "
                ".data, torch.no_grad()) before it is added to the residual stream?")

    def prenorm_values(self, g, B, T, embed_dim, hidden_dim, num_heads, label=""):
        vit = self.student("vit_solution")
        block = vit.PreNormAttentionBlock(embed_dim, hidden_dim, num_heads, T).to(self.device)
        block.eval()
        weights = self.randomize(block, g)
        x = torch.randn(B, T, embed_dim, generator=g)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
        shape = (B, T, embed_dim)
        name = f"PreNormAttentionBlock({embed_dim}, {hidden_dim}, {num_heads}, {T})"
        what = f"{name} on a {shape_text(shape)} input{label}"
        out, record, observed, unobserved = self.observe(
            block, (BLOCK_PARTS, BLOCK_PARTS[:3], ("layer_norm_1", "layer_norm_2")), x)
        out = self.assert_tensor(out, shape=shape, what=what)
        # The independent computation: the reference block holding this block's weights.
        reference = self.reference("vit_solution").PreNormAttentionBlock(embed_dim, hidden_dim, num_heads, T)
        reference.eval()
        why, agrees = self.load_block(reference, weights, block, embed_dim, hidden_dim, num_heads, seed)
        with self.localised(block, reference, x, why, "PreNormAttentionBlock", accept=BLOCK_OWN):
            if self.matches_copy(out, reference, why, x, record, "block", what, unobserved, PRENORM_HINT):
                return block, x, what
            # Step by step, on what the sub-modules received and returned inside forward.
            def step(part, inputs, text):
                if part not in observed:        # forward could not be observed calling it: the reference's
                    if why[part]:
                        raise AssertionError(f"{what}: the reference's {part} could not hold your weights "
                                             f"({why[part]}), and what your {part} returns inside forward could "
                                             f"not be observed: {unobserved}.\n  Hint: {PRENORM_HINT}")
                    with torch.no_grad():
                        return getattr(reference, part)(inputs)
                found = composite.call_on(composite.recorded_calls(record, part), inputs)
                if found is None or type(found[1]) is not torch.Tensor or tuple(found[1].shape) != shape:
                    raise AssertionError(f"{what}: {text}.\n  Hint: {PRENORM_HINT}")
                self.accept(what, part, found[0], found[1], None if why[part] else getattr(reference, part),
                            composite.submodule(block, part), why[part], seed, agrees if part == "attn" else None)
                return found[1]
            h = x + step("attn", step("layer_norm_1", x, "forward does not apply layer_norm_1 to the block's input x"),
                         "forward does not hand layer_norm_1(x) to attn")
            mlp = step("linear", step("layer_norm_2", h, "forward does not apply layer_norm_2 to "
                                                         "h = x + attn(layer_norm_1(x))"),
                       "forward does not hand layer_norm_2(h) to linear")
            self.assert_close(out, h + mlp, what=what, hint=PRENORM_HINT)
        return block, x, what

    # -- ViT forward ---------------------------------------------------------------
    def load_vit(self, reference, state: dict, model, config: dict, seed: int) -> dict:
        """{part: "" when the reference model's part now holds the student's weights, else why not}."""
        E, hidden, H = config["embed_dim"], config["hidden_dim"], config["num_heads"]
        p, C, N = config["patch_size"], config["num_channels"], config["num_patches"]
        why = {"input_layer": composite.load_part(reference.input_layer, composite.sub_state(state, "input_layer"),
                                                  {"weight": (E, C * p * p), "bias": (E,)}),
               "tokens": composite.load_part(reference, state, {"cls_token": (1, 1, E),
                                                                "pos_embedding": (1, N + 1, E)}),
               "mlp_head": composite.load_part(reference.mlp_head, composite.sub_state(state, "mlp_head"),
                                               {"0.weight": (E,), "0.bias": (E,),
                                                "1.weight": (config["num_classes"], E),
                                                "1.bias": (config["num_classes"],)}),
               "transformer": ""}
        for i in range(config["num_layers"]):
            try:
                block = model.transformer[i]
            except errors.StudentException:
                block = None        # the probe only selects a reading of the attention's weights
            loaded, _ = self.load_block(reference.transformer[i], composite.sub_state(state, f"transformer.{i}"),
                                        block, E, hidden, H, seed + i)
            broken = [f"{part}: {w}" for part, w in loaded.items() if w]
            if broken:
                why["transformer"] = f"block {i}: " + "; ".join(broken)
                break
        return why

    def check_forward(self, model, config: dict, state: dict, images: torch.Tensor, label=""):
        """``state``: the weights loaded into ``model`` (by randomize)."""
        B = images.shape[0]
        p, num_classes = config["patch_size"], config["num_classes"]
        what = f"VisionTransformer.forward on images of shape {shape_text(images.shape)}{label}"
        out, record, observed, unobserved = self.observe(
            model, (("get_patches", "transformer", "mlp_head"), ("get_patches", "transformer"),
                    ("get_patches", "mlp_head")), images)
        logits = self.assert_tensor(out, shape=(B, num_classes), what=what)
        sums = logits.double().sum(dim=-1)
        looks_like_probabilities = bool(((sums - 1).abs() < 1e-4).all() and (logits >= 0).all())
        hint = ("your output rows sum to 1: forward must return logits, with no softmax (the loss applies it)."
                if looks_like_probabilities else CLS_HINT)
        missing = [k for k in ("input_layer.weight", "input_layer.bias", "cls_token", "pos_embedding")
                   if type(state.get(k)) is not torch.Tensor]
        if missing:
            raise AssertionError(f"{what}: the model has no {', '.join(missing)}; keep the attributes "
                                 "the starter code defines (input_layer, cls_token, pos_embedding).")
        # The independent computation: the reference model holding this model's weights.
        seed = 8000 + B
        reference = self.reference("vit_solution").VisionTransformer(**config)
        reference.eval()
        why = self.load_vit(reference, state, model, config, seed)
        with self.localised(model, reference, images, why, "VisionTransformer", accept=("transformer",),
                            accept_inputs=("input_layer",)):
            if self.matches_copy(logits, reference, why, images, record, "model", what, unobserved, hint):
                return
            # Step by step, on what the sub-modules received and returned inside forward.
            found = composite.call_on(composite.recorded_calls(record, "get_patches"), images)
            if found is not None:
                patches = self.assert_tensor(found[1], shape=(B, (images.shape[2] // p) * (images.shape[3] // p),
                                                              images.shape[1] * p * p),
                                             what=f"{what}: what get_patches returned inside forward")
                self.accept(what, "get_patches", images, patches, lambda im: _unfold_patches(im, p),
                            lambda im: model.get_patches(im, p), seed=seed)
            else:
                patches = _unfold_patches(images, p)   # forward cut the patches itself
            tokens = patches @ state["input_layer.weight"].t() + state["input_layer.bias"]
            T = tokens.shape[1]
            tokens = torch.cat([state["cls_token"].expand(B, 1, -1), tokens], dim=1)
            tokens = tokens + state["pos_embedding"][:, :T + 1]
            ref_transformer = None if why["transformer"] else reference.transformer
            if "transformer" in observed:
                found = composite.call_on(composite.recorded_calls(record, "transformer"), tokens)
                if found is None or type(found[1]) is not torch.Tensor or found[1].shape != tokens.shape:
                    raise AssertionError(f"{what}: forward does not hand the transformer the tokens (the patches "
                                         "through input_layer, the CLS token first, the positional embedding added, "
                                         f"then dropout).\n  Hint: {hint}")
                self.accept(what, "transformer", tokens, found[1], ref_transformer, model.transformer,
                            why["transformer"], seed)
                encoded = found[1]
            elif ref_transformer is None:
                raise AssertionError(f"{what}: the reference blocks could not hold your weights "
                                     f"({why['transformer']}), and what your blocks return inside forward could not "
                                     f"be observed: {unobserved}.\n  Hint: {hint}")
            else:
                with torch.no_grad():
                    encoded = ref_transformer(tokens)
            if "mlp_head" not in observed:     # forward could not be observed calling it: the reference's
                if why["mlp_head"]:
                    raise AssertionError(f"{what}: the reference's mlp_head could not hold your weights "
                                         f"({why['mlp_head']}), and what your mlp_head returns inside forward could "
                                         f"not be observed: {unobserved}.\n  Hint: {hint}")
                with torch.no_grad():
                    self.assert_close(logits, reference.mlp_head(encoded[:, 0]), what=what, hint=hint)
                return
            heads = composite.recorded_calls(record, "mlp_head")
            found = composite.call_on(heads, encoded[:, 0])
            if found is None:      # mlp_head applied to every position, the CLS token's logits taken after
                found = next(((i, o) for i, o in heads if composite.close(i, encoded)), None)
                found = found and (found[0][:, 0], found[1][:, 0] if type(found[1]) is torch.Tensor else None)
            if found is None or type(found[1]) is not torch.Tensor or tuple(found[1].shape) != (B, num_classes):
                unseen = ("" if "transformer" in observed else
                          f" (with the reference blocks holding your weights; what your own blocks return inside "
                          f"forward could not be observed: {unobserved})")
                raise AssertionError(f"{what}: forward does not hand mlp_head the CLS token, position 0 of the "
                                     f"transformer's output{unseen}.\n  Hint: {hint}")
            self.accept(what, "mlp_head", found[0], found[1], None if why["mlp_head"] else reference.mlp_head, None,
                        why["mlp_head"], seed)
            self.assert_close(logits, found[1], what=what, hint=hint)


class TestGetPatches(_ViTCase):

    @weight(1)
    @number("2.6.1")
    @time_limit(30)
    def test_rgb_fixed(self):
        """get_patches on a (2, 3, 8, 12) image with patch_size=4, as F.unfold orders them"""
        model = self.vit_model(num_patches=6)
        image = torch.randn(2, 3, 8, 12, generator=generator(61))
        self.check_patches(model, image, 4)

    @weight(0.5)
    @number("2.6.2")
    @time_limit(30)
    def test_other_channel_counts(self):
        """get_patches on images with 1 and 5 channels"""
        for C, (H, W), p in ((1, (6, 4), 2), (5, (9, 6), 3)):
            model = self.vit_model(num_channels=C, patch_size=p, num_patches=(H // p) * (W // p))
            image = torch.randn(2, C, H, W, generator=generator(62 + C))
            self.check_patches(model, image, p)

    @weight(0.5)
    @number("2.6.3")
    @visibility(HIDDEN)
    @time_limit(40)
    def test_random(self):
        """get_patches on random image sizes, channel counts and patch sizes"""
        for seed in self.seeds(3):
            g = generator(seed)
            C = (1, 2, 4, 5)[randint(g, 0, 3)]
            p = randint(g, 2, 5)
            gh, gw, B = randint(g, 2, 4), randint(g, 2, 4), randint(g, 1, 3)
            model = self.vit_model(num_channels=C, patch_size=p, num_patches=gh * gw)
            self.check_patches(model, torch.randn(B, C, gh * p, gw * p, generator=g), p)


class TestPreNormBlock(_ViTCase):

    @weight(0.5)
    @number("2.7.1")
    @time_limit(30)
    def test_fixed(self):
        """PreNormAttentionBlock(12, 20, 3, 5) on a (2, 5, 12) input: LayerNorm before each branch, every parameter trained"""
        self.check_prenorm(generator(71), 2, 5, 12, 20, 3, label=" with random weights")

    @weight(0.5)
    @number("2.7.2")
    @visibility(HIDDEN)
    @time_limit(40)
    def test_random(self):
        """PreNormAttentionBlock on random sizes"""
        for seed in self.seeds(2):
            g = generator(seed)
            H, D = randint(g, 2, 4), randint(g, 2, 6)
            self.check_prenorm(g, randint(g, 1, 3), randint(g, 2, 7), H * D, randint(g, 5, 23), H,
                               label=" with random weights")


class TestViTForward(_ViTCase):

    @weight(1)
    @number("2.8.1")
    @time_limit(40)
    def test_fixed(self):
        """VisionTransformer forward on (3, 3, 8, 8) images: logits from the CLS token"""
        config = self.vit_config()
        model = self.vit_model(**config)
        weights = self.randomize(model, generator(81))
        images = torch.randn(3, 3, 8, 8, generator=generator(82))
        self.check_forward(model, config, weights, images)

    @weight(1)
    @number("2.8.2")
    @visibility(HIDDEN)
    @time_limit(60)
    def test_random(self):
        """VisionTransformer forward on random sizes, pre-norm and post-norm blocks"""
        for i, seed in enumerate(self.seeds(2)):
            g = generator(seed)
            p, gh, gw = randint(g, 2, 4), randint(g, 1, 3), randint(g, 1, 3)
            H, D, classes = randint(g, 2, 3), randint(g, 2, 5), randint(g, 2, 11)
            C = 3   # get_patches with other channel counts is graded in 2.6
            config = self.vit_config(embed_dim=H * D, hidden_dim=randint(g, 4, 20), num_channels=C,
                                     num_heads=H, num_layers=randint(g, 1, 2), num_classes=classes,
                                     patch_size=p, num_patches=gh * gw, block=("prenorm", "postnorm")[i % 2])
            model = self.vit_model(**config)
            weights = self.randomize(model, g)
            images = torch.randn(randint(g, 2, 4), C, gh * p, gw * p, generator=g)
            self.check_forward(model, config, weights, images)


class TestViTLoss(_ViTCase):

    def check_loss(self, g, B: int, classes: int):
        logits = torch.randn(B, classes, generator=g) * 2.0
        labels = torch.randint(0, classes, (B,), generator=g)
        model = self.vit_model(num_classes=classes)
        what = f"VisionTransformer.loss(preds, labels) with preds of shape ({B}, {classes}) and labels of shape ({B},)"
        value = self.assert_tensor(model.loss(logits, labels), shape=(), what=what)
        self.assert_close(value, F.cross_entropy(logits, labels), what=what,
                          hint="return the mean cross-entropy over the mini-batch (F.cross_entropy's "
                               "default reduction), computed from logits.")

    @weight(0.5)
    @number("2.9.1")
    @time_limit(30)
    def test_fixed(self):
        """VisionTransformer loss on a fixed batch of 4 with 10 classes"""
        self.check_loss(generator(91), 4, 10)

    @weight(0.5)
    @number("2.9.2")
    @visibility(HIDDEN)
    @time_limit(30)
    def test_random(self):
        """VisionTransformer loss on random batches"""
        for seed in self.seeds(3):
            g = generator(seed)
            self.check_loss(g, randint(g, 2, 9), randint(g, 2, 12))
