"""Problem 2.6-2.9: the Vision Transformer (vit_solution.py), 6 points.

2.6  VisionTransformer.get_patches   (2 points)
2.7  PreNormAttentionBlock.forward   (1 point)
2.8  VisionTransformer.forward       (2 points)
2.9  VisionTransformer.loss          (1 point)

The block and forward tests compare your code with the computation it should perform on
your own sub-modules (your LayerNorm and attention, graded in 2.1-2.5), so a mistake there
does not cost points here unless it makes your code crash. The LayerNorm ban does not apply
here: the starter's mlp_head uses nn.LayerNorm.
"""
import contextlib

import torch
import torch.nn.functional as F

from autograder.suite.draw import generator, randint, shape_text
from autograder.suite import GradedTestCase, number, time_limit, visibility, weight
from autograder.trusted import errors

HIDDEN = "after_published"


def _unfold_patches(image: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, num_patches, C*p*p) in the order F.unfold produces."""
    return F.unfold(image, kernel_size=p, stride=p).transpose(1, 2)


class _ViTCase(GradedTestCase):

    atol = rtol = 1e-4

    def vit_model(self, *, embed_dim=12, hidden_dim=16, num_channels=3, num_heads=3, num_layers=2,
                  num_classes=7, patch_size=4, num_patches=4, block="prenorm"):
        vit = self.student("vit_solution")
        model = vit.VisionTransformer(embed_dim=embed_dim, hidden_dim=hidden_dim,
                                      num_channels=num_channels, num_heads=num_heads,
                                      num_layers=num_layers, num_classes=num_classes,
                                      patch_size=patch_size, num_patches=num_patches,
                                      block=block, dropout=0.0)
        model = model.to(self.device)
        model.eval()
        return model

    def randomize(self, module, g: torch.Generator):
        """Load random values into every floating-point entry of ``module``'s state dict."""
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

    # -- blocks --------------------------------------------------------------------
    def check_prenorm(self, g, B, T, embed_dim, hidden_dim, num_heads, label=""):
        vit = self.student("vit_solution")
        block = vit.PreNormAttentionBlock(embed_dim, hidden_dim, num_heads, T).to(self.device)
        block.eval()
        self.randomize(block, g)
        x = torch.randn(B, T, embed_dim, generator=g)
        shape = (B, T, embed_dim)
        name = f"PreNormAttentionBlock({embed_dim}, {hidden_dim}, {num_heads}, {T})"
        what = f"{name} on a {shape_text(shape)} input{label}"
        out = self.assert_tensor(block(x), shape=shape, what=what)
        # The pre-norm wiring, computed with the block's own sub-modules.
        ln1 = self.assert_tensor(block.layer_norm_1(x), shape=shape,
                                 what="block.layer_norm_1(x) (your LayerNorm, graded in 2.1)")
        att = self.assert_tensor(block.attn(ln1), shape=shape,
                                 what="block.attn(block.layer_norm_1(x)) (your attention, graded in 2.5)")
        h = x + att
        ln2 = self.assert_tensor(block.layer_norm_2(h), shape=shape,
                                 what="block.layer_norm_2(h) (your LayerNorm, graded in 2.1)")
        mlp = self.assert_tensor(block.linear(ln2), shape=shape, what="block.linear(block.layer_norm_2(h))")
        self.assert_close(out, h + mlp, what=what,
                          hint="pre-norm: h = x + attn(layer_norm_1(x)); return h + linear(layer_norm_2(h)). "
                               "The LayerNorms go at the start of each branch, not after the additions.")

    # -- ViT forward ---------------------------------------------------------------
    def check_forward(self, model, images: torch.Tensor, patch_size: int, num_classes: int, label=""):
        B = images.shape[0]
        what = f"VisionTransformer.forward on images of shape {shape_text(images.shape)}{label}"
        logits = self.assert_tensor(model(images), shape=(B, num_classes), what=what)
        # What forward should compute, using the model's own sub-modules.
        patches = self.assert_tensor(model.get_patches(images, patch_size), what="get_patches (graded in 2.6)")
        state = model.state_dict()
        missing = [k for k in ("input_layer.weight", "input_layer.bias", "cls_token", "pos_embedding")
                   if not isinstance(state, dict) or type(state.get(k)) is not torch.Tensor]
        if missing:
            raise AssertionError(f"{what}: the model has no {', '.join(missing)}; keep the attributes "
                                 "the starter code defines (input_layer, cls_token, pos_embedding).")
        tokens = patches @ state["input_layer.weight"].t() + state["input_layer.bias"]
        T = tokens.shape[1]
        tokens = torch.cat([state["cls_token"].expand(B, 1, -1), tokens], dim=1)
        tokens = tokens + state["pos_embedding"][:, :T + 1]
        encoded = self.assert_tensor(model.transformer(tokens), shape=tokens.shape,
                                     what="the model's transformer blocks (graded in 2.5 and 2.7)")
        expected = self.assert_tensor(model.mlp_head(encoded[:, 0]), shape=(B, num_classes),
                                      what="mlp_head on the CLS token")
        sums = logits.double().sum(dim=-1)
        looks_like_probabilities = bool(((sums - 1).abs() < 1e-4).all() and (logits >= 0).all())
        self.assert_close(logits, expected, what=what,
                          hint=("your output rows sum to 1: forward must return logits, with no softmax "
                                "(the loss applies it)." if looks_like_probabilities else
                                "after dropout and the transformer, classify from the CLS token only "
                                "(position 0 of the sequence) with mlp_head; no pooling over positions, "
                                "no softmax."))


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
        """PreNormAttentionBlock(12, 20, 3, 5) on a (2, 5, 12) input: LayerNorm before each branch"""
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
        model = self.vit_model()
        self.randomize(model, generator(81))
        images = torch.randn(3, 3, 8, 8, generator=generator(82))
        self.check_forward(model, images, 4, 7)

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
            model = self.vit_model(embed_dim=H * D, hidden_dim=randint(g, 4, 20), num_channels=C,
                                   num_heads=H, num_layers=randint(g, 1, 2), num_classes=classes,
                                   patch_size=p, num_patches=gh * gw,
                                   block=("prenorm", "postnorm")[i % 2])
            self.randomize(model, g)
            images = torch.randn(randint(g, 2, 4), C, gh * p, gw * p, generator=g)
            self.check_forward(model, images, p, classes)


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
