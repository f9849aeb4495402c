"""Problem 2.1: LayerNorm (vit_solution.py), 5 points.

layernorm(x) = (x - mean) / sqrt(var + eps) * weight + bias over the last axis, with the
biased variance (divide by n). nn.LayerNorm, F.layer_norm and anything calling
torch.layer_norm are banned inside LayerNorm: every test here scores 0 if they are used.
"""
import torch

from autograder.suite.draw import generator, randint, shape_text
from autograder.suite import GradedTestCase, enforce_ban, number, time_limit, visibility, weight

HIDDEN = "after_published"
BIASED_HINT = ("LayerNorm uses the biased variance: divide by n, not n - 1 "
               "(torch.var(x, dim=-1, unbiased=False), or the mean of (x - mean)**2).")
EPS_HINT = "eps goes inside the square root: (x - mean) / sqrt(var + eps)."


class _LayerNormCase(GradedTestCase):

    atol = rtol = 1e-4

    def student_layernorm(self, hidden_size: int, eps: float | None = None,
                          weight_=None, bias_=None):
        vit = self.student("vit_solution")
        ln = vit.LayerNorm(hidden_size) if eps is None else vit.LayerNorm(hidden_size, eps=eps)
        ln = ln.to(self.device)
        if weight_ is not None:
            ln.load_state_dict({"weight": weight_, "bias": bias_}, strict=False)
        return ln

    def reference_layernorm(self, hidden_size: int, eps: float | None = None,
                            weight_=None, bias_=None):
        ref = self.reference("vit_solution")
        ln = ref.LayerNorm(hidden_size) if eps is None else ref.LayerNorm(hidden_size, eps=eps)
        if weight_ is not None:
            ln.load_state_dict({"weight": weight_, "bias": bias_})
        return ln

    def compare(self, x, hidden_size, *, eps=None, weight_=None, bias_=None, hint=None, label=""):
        ln = self.student_layernorm(hidden_size, eps, weight_, bias_)
        expected = self.reference_layernorm(hidden_size, eps, weight_, bias_)(x).detach()
        args = f"{hidden_size}" + ("" if eps is None else f", eps={eps:g}")
        what = f"LayerNorm({args}) on a {shape_text(x.shape)} input{label}"
        y = self.assert_tensor(ln(x), shape=x.shape, what=what)
        self.assert_close(y, expected, what=what, hint=hint)


class TestLayerNorm(_LayerNormCase):

    @weight(0.5)
    @number("2.1.1")
    @enforce_ban("layer_norm")
    @time_limit(30)
    def test_parameters_and_shape(self):
        """LayerNorm: weight and bias, output shape, each output row has mean 0"""
        ln = self.student_layernorm(8)
        w = self.assert_tensor(ln.weight, shape=(8,), what="LayerNorm(8).weight")
        b = self.assert_tensor(ln.bias, shape=(8,), what="LayerNorm(8).bias")
        self.assert_close(w, torch.ones(8), what="LayerNorm(8).weight after reset_parameters()")
        self.assert_close(b, torch.zeros(8), what="LayerNorm(8).bias after reset_parameters()")
        x = torch.randn(2, 3, 8, generator=generator(1)) * 2.0 + 1.0
        what = "LayerNorm(8) on a (2, 3, 8) input"
        y = self.assert_tensor(ln(x), shape=(2, 3, 8), what=what)
        self.assert_close(y.mean(dim=-1), torch.zeros(2, 3), what=f"{what}: the mean of each output row",
                          hint="normalise over the last axis only: subtract x.mean(dim=-1, keepdim=True).")

    @weight(1)
    @number("2.1.2")
    @enforce_ban("layer_norm")
    @time_limit(30)
    def test_fixed_input(self):
        """LayerNorm on a fixed (2, 3, 8) input (biased variance)"""
        x = torch.randn(2, 3, 8, generator=generator(2)) * 1.5 - 0.5
        self.compare(x, 8, hint=BIASED_HINT)

    @weight(1)
    @number("2.1.3")
    @enforce_ban("layer_norm")
    @time_limit(30)
    def test_small_variance(self):
        """LayerNorm on inputs around 1e-3 in size, where eps matters"""
        x = torch.randn(2, 4, 10, generator=generator(3)) * 1e-3
        self.compare(x, 10, hint=EPS_HINT, label=" with values around 1e-3 (variance far below eps)")

    @weight(1.5)
    @number("2.1.4")
    @visibility(HIDDEN)
    @enforce_ban("layer_norm")
    @time_limit(40)
    def test_random(self):
        """LayerNorm on random shapes, scales, weights, biases and eps"""
        scales = (1e-3, 1.0, 20.0, 3e-3)
        for i, seed in enumerate(self.seeds(4)):
            g = generator(seed)
            hidden_size = 2 * randint(g, 1, 16) + 1
            lead = [randint(g, 1, 4) for _ in range(randint(g, 0, 3))]
            eps = (None, 1e-3, 1e-6, 1e-5)[i]
            x = torch.randn(*lead, hidden_size, generator=g) * scales[i] + torch.randn(1, generator=g) * scales[i]
            w = 1.0 + torch.randn(hidden_size, generator=g) * 0.5
            b = torch.randn(hidden_size, generator=g) * 0.5
            self.compare(x, hidden_size, eps=eps, weight_=w, bias_=b,
                         label=" with random weight and bias")

    @weight(1)
    @number("2.1.5")
    @visibility(HIDDEN)
    @enforce_ban("layer_norm")
    @time_limit(40)
    def test_gradients(self):
        """LayerNorm gradients with respect to the input, weight and bias"""
        for seed in self.seeds(2):
            g = generator(seed)
            hidden_size = 2 * randint(g, 2, 12) + 1
            shape = (randint(g, 1, 3), randint(g, 2, 5), hidden_size)
            x = torch.randn(*shape, generator=g) * 2.0
            w = 1.0 + torch.randn(hidden_size, generator=g) * 0.5
            b = torch.randn(hidden_size, generator=g) * 0.5
            grad_out = torch.randn(*shape, generator=g)
            what = f"LayerNorm({hidden_size}) on a {shape_text(shape)} input, backward"

            ln = self.student_layernorm(hidden_size, None, w, b)
            xr = self.put(x, requires_grad=True)
            y = self.keep(ln, xr)
            self.assert_tensor(self.fetch(y), shape=shape, what=what)
            y.backward(grad_out)

            ref = self.reference_layernorm(hidden_size, None, w, b)
            xe = x.clone().requires_grad_(True)
            ref(xe).backward(grad_out)

            gx = xr.grad
            if gx is None:
                raise AssertionError(f"{what}: the input received no gradient (is the output detached?).")
            self.assert_close(gx, xe.grad, what=f"{what}: gradient with respect to the input")
            grads = self.grads(ln)
            for name, expected in (("weight", ref.weight.grad), ("bias", ref.bias.grad)):
                got = grads.get(name)
                if got is None:
                    raise AssertionError(f"{what}: LayerNorm.{name} received no gradient; "
                                         f"the output must depend on self.{name}.")
                self.assert_close(got, expected, what=f"{what}: gradient with respect to {name}")
