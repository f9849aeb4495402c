"""autograder.instructor.mutation: each operator on small snippets, the output rules, and the
real references (every mutant compiles, enough of them per assignment)."""
import ast
import collections
import textwrap
from pathlib import Path

import pytest

from autograder.instructor.mutation import OPERATORS, Mutant, as_python, mutants_of

ROOT = Path(__file__).resolve().parents[1]


def muts(src, kind, **kw):
    """The mutants of one kind of a dedented snippet, each checked to be a single clean edit."""
    src = textwrap.dedent(src)
    out = mutants_of(src, "m.py", kinds=[kind], **kw)
    for m in out:
        assert m.kind == kind
        assert_one_edit(src, m)
    return out


def assert_one_edit(src, m):
    """The mutant compiles, keeps the line count, and differs from src only on the edited lines."""
    compile(as_python(m.source), m.path, "exec")
    old, new = src.split("\n"), m.source.split("\n")
    assert len(old) == len(new), m.describe()
    changed = [i + 1 for i, (a, b) in enumerate(zip(old, new)) if a != b]
    assert changed and changed[0] == m.line, m.describe()
    flat = " ".join(src.split())
    assert all(part in flat for part in m.before.split("; ")) or m.before.endswith("...")
    assert len(m.before) <= 160 and len(m.after) <= 160 and "\n" not in m.before + m.after


def pairs(ms):
    return [(m.line, m.before, m.after) for m in ms]


def run(source, fn, *args, namespace=None):
    """Exec a mutated module's text and call its function ``fn``."""
    ns = dict(namespace or {})
    exec(compile(source, "<mutant>", "exec"), ns)
    return ns[fn](*args)


# --- operators -------------------------------------------------------------------------------

def test_softmax_dim_all_spellings():
    src = """\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def f(x):
        a = torch.softmax(x, dim=-1)
        b = F.log_softmax(x, -1)
        c = x.softmax(1)
        d = nn.functional.softmax(x, dim=0)
        e = nn.Softmax(dim=-3)
        g = x.log_softmax(dim=2)
        return a, b, c, d, e, g
    """
    assert pairs(muts(src, "softmax-dim")) == [
        (6, "torch.softmax(x, dim=-1)", "torch.softmax(x, dim=-2)"),
        (7, "F.log_softmax(x, -1)", "F.log_softmax(x, -2)"),
        (8, "x.softmax(1)", "x.softmax(0)"),
        (9, "nn.functional.softmax(x, dim=0)", "nn.functional.softmax(x, dim=1)"),
        (10, "nn.Softmax(dim=-3)", "nn.Softmax(dim=-2)"),
        (11, "x.log_softmax(dim=2)", "x.log_softmax(dim=1)"),
    ]
    m = muts(src, "softmax-dim")[0]
    assert m.function == "f"
    assert m.describe() == "m.py:6 in f: softmax-dim: `torch.softmax(x, dim=-1)` -> `torch.softmax(x, dim=-2)`"


SCALED = """\
import math
import torch

class Attn:
    def a(self, q, k, d):
        scores = q @ k.transpose(-2, -1) / math.sqrt(d)
        return scores

    def b(self, q, k):
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        return att

    def c(self, q, k):
        s = torch.matmul(q, k.mT) * self.scale
        s2 = (q @ k.mT) * k.size(-1) ** -0.5
        s3 = q @ k.mT / d ** 0.5
        s3 /= torch.sqrt(self.d)
        return s, s2, s3

    def norm(self, x, var):
        return x / torch.sqrt(var + self.eps)

    def gelu(self, x):
        return x / math.sqrt(2)
"""


def test_scale_dropped():
    assert pairs(muts(SCALED, "scale-dropped")) == [
        (6, "q @ k.transpose(-2, -1) / math.sqrt(d)", "q @ k.transpose(-2, -1)"),
        (10, "(q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))", "q @ k.transpose(-2, -1)"),
        (14, "torch.matmul(q, k.mT) * self.scale", "torch.matmul(q, k.mT)"),
        (15, "(q @ k.mT) * k.size(-1) ** -0.5", "q @ k.mT"),
        (16, "q @ k.mT / d ** 0.5", "q @ k.mT"),
        (17, "torch.sqrt(self.d)", "1"),                 # s3 /= 1
    ]   # the LayerNorm's sqrt(var + eps) and gelu's sqrt(2) are not attention scales


def test_scale_doubled_and_sqrt_missing():
    doubled = pairs(muts(SCALED, "scale-doubled"))
    assert doubled[0] == (6, "q @ k.transpose(-2, -1) / math.sqrt(d)",
                          "q @ k.transpose(-2, -1) / math.sqrt(d) / math.sqrt(d)")
    assert doubled[2] == (14, "torch.matmul(q, k.mT) * self.scale", "torch.matmul(q, k.mT) * self.scale * self.scale")
    assert doubled[-1] == (17, "torch.sqrt(self.d)", "torch.sqrt(self.d) * torch.sqrt(self.d)")
    assert len(doubled) == 6
    assert pairs(muts(SCALED, "scale-sqrt-missing")) == [
        (6, "math.sqrt(d)", "d"),
        (10, "1.0 / math.sqrt(k.size(-1))", "1.0 / k.size(-1)"),
        (15, "k.size(-1) ** -0.5", "1 / k.size(-1)"),
        (16, "d ** 0.5", "d"),
        (17, "torch.sqrt(self.d)", "self.d"),
    ]


def test_scale_of_scaled_dot_product_attention():
    src = """\
    import torch.nn.functional as F

    def unscaled(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, scale=1)

    def scaled(q, k, v):
        return F.scaled_dot_product_attention(q, k, v)
    """
    assert [m.after for m in muts(src, "scale-dropped")] == [
        "F.scaled_dot_product_attention(q, k, v)", "F.scaled_dot_product_attention(q, k, v, scale=1.0)"]
    assert [m.after for m in muts(src, "scale-sqrt-missing")] == [
        "F.scaled_dot_product_attention(q, k, v, scale=1 / q.size(-1))"]


def test_scale_mutants_change_attention():
    torch = pytest.importorskip("torch")
    q, k = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    want = run(SCALED, "Attn").a(q, k, 8)
    for kind in ("scale-dropped", "scale-doubled", "scale-sqrt-missing"):
        m = muts(SCALED, kind)[0]
        assert not torch.allclose(run(m.source, "Attn").a(q, k, 8), want), kind


def test_var_unbiased():
    src = """\
    import numpy as np
    import torch

    def f(x, m, a):
        v1 = x.var(-1, unbiased=False)
        v2 = torch.var(x, dim=0, correction=0)
        v3 = x.var(dim=-1, keepdim=True)
        v4 = ((x - m) ** 2).mean(dim=-1, keepdim=True)
        v5 = np.var(a)
        v6 = x.std(-1, correction=1)
        return v1, v2, v3, v4, v5, v6
    """
    assert [(m.line, m.after) for m in muts(src, "var-unbiased")] == [
        (5, "x.var(-1, unbiased=True)"),
        (6, "torch.var(x, dim=0, correction=1)"),
        (7, "x.var(dim=-1, keepdim=True, unbiased=False)"),
        (8, "((x - m) ** 2).sum(dim=-1, keepdim=True) / ((x - m).size(-1) - 1)"),
        (9, "np.var(a, ddof=1)"),
        (10, "x.std(-1, correction=0)"),
    ]


def test_var_unbiased_hand_written_equals_torch_var():
    torch = pytest.importorskip("torch")
    src = "def var(x):\n    m = x.mean(dim=-1, keepdim=True)\n    return ((x - m) ** 2).mean(dim=-1, keepdim=True)\n"
    (m,) = mutants_of(src, kinds=["var-unbiased"])
    x = torch.randn(3, 7, dtype=torch.float64)
    assert torch.allclose(run(src, "var", x), x.var(-1, unbiased=False, keepdim=True))
    assert torch.allclose(run(m.source, "var", x), x.var(-1, keepdim=True))


def test_eps_outside_sqrt():
    src = """\
    import torch

    def f(v, eps, self):
        a = torch.sqrt(v + self.eps)
        b = torch.rsqrt(v + 1e-5)
        c = (v + eps) ** 0.5
        d = (eps + v).sqrt()
        e = torch.sqrt(v + 2)
        return a, b, c, d, e
    """
    assert [(m.line, m.after) for m in muts(src, "eps-outside-sqrt")] == [
        (4, "torch.sqrt(v) + self.eps"), (5, "torch.rsqrt(v) + 1e-05"),
        (6, "v ** 0.5 + eps"), (7, "v.sqrt() + eps")]


def test_eps_outside_sqrt_is_spliced_with_parentheses_where_needed():
    src = "import torch\n\ndef norm(x, v, eps):\n    return x / torch.sqrt(v + eps)  # keep me\n"
    (m,) = mutants_of(src, kinds=["eps-outside-sqrt"])
    assert m.source.split("\n")[3] == "    return x / (torch.sqrt(v) + eps)  # keep me"


MASKED = """\
import torch
import torch.nn.functional as F

def attend(s, mask, causal):
    s = s.masked_fill(mask == 0, float("-inf"))
    t = torch.where(causal, s, -1e9)
    u = s.masked_fill(~mask, -1e9)
    w = torch.masked_fill(s, mask, 0.0)
    m = torch.tril(torch.ones(4, 4))
    n = torch.ones(4, 4).triu(1)
    return F.softmax(s, dim=-1), t, u, w, m, n
"""


def test_mask_skipped():
    assert pairs(muts(MASKED, "mask-skipped")) == [
        (5, 's.masked_fill(mask == 0, float("-inf"))', "s"),
        (6, "torch.where(causal, s, -1e9)", "s"),
        (7, "s.masked_fill(~mask, -1e9)", "s"),
        (8, "torch.masked_fill(s, mask, 0.0)", "s"),
    ]


def test_mask_inverted():
    assert [(m.line, m.after) for m in muts(MASKED, "mask-inverted")] == [
        (5, "s.masked_fill(mask != 0, float('-inf'))"),
        (6, "torch.where(~causal, s, -1000000000.0)"),
        (7, "s.masked_fill(mask, -1000000000.0)"),
        (8, "torch.masked_fill(s, ~mask, 0.0)"),
        (9, "torch.triu(torch.ones(4, 4))"),
        (10, "torch.ones(4, 4).tril(1)"),
    ]


def test_mask_after_softmax_forms():
    src = """\
    import torch.nn.functional as F

    def a(scores, m):
        att = scores.masked_fill(m == 0, -1e10)
        att = self_drop(F.softmax(att, dim=-1))
        return att

    def b(s, m):
        s.masked_fill_(m, float("-inf"))
        x = 1
        return s.softmax(-1)

    def c(s, m):
        a = s.masked_fill(m, 0)
        m = ~m                       # the mask changes before the softmax: not recognised
        return F.softmax(a, -1)

    def d(s, m):
        a = s.masked_fill(m, 0)
        return F.softmax(s, -1)      # not the masked scores: not recognised
    """
    ms = muts(src, "mask-after-softmax")
    assert pairs(ms) == [
        (4, "scores.masked_fill(m == 0, -1e10); F.softmax(att, dim=-1)",
         "scores; F.softmax(att, dim=-1).masked_fill(m == 0, -10000000000.0)"),
        (9, 's.masked_fill_(m, float("-inf")); s.softmax(-1)', "s; s.softmax(-1).masked_fill(m, float('-inf'))"),
    ]
    assert ms[0].source.split("\n")[3:5] == [
        "    att = scores",
        "    att = self_drop(F.softmax(att, dim=-1).masked_fill(m == 0, -10000000000.0))"]


def test_mask_after_softmax_changes_the_output():
    torch = pytest.importorskip("torch")
    src = textwrap.dedent("""\
    import torch.nn.functional as F

    def probs(scores, m):
        scores = scores.masked_fill(m == 0, 0.0)
        return F.softmax(scores, dim=-1)
    """)
    (m,) = mutants_of(src, kinds=["mask-after-softmax"])
    s, mask = torch.randn(4, 4), torch.tril(torch.ones(4, 4))
    good, bad = run(src, "probs", s, mask), run(m.source, "probs", s, mask)
    assert torch.allclose(good.sum(-1), torch.ones(4)) and not torch.allclose(bad.sum(-1), torch.ones(4))


def test_view_for_transpose():
    src = """\
    def split(x, B, T, H, D):
        return x.view(B, T, H, D).transpose(1, 2)

    def merge(y, B, T, C):
        return y.transpose(1, 2).contiguous().view(B, T, C)

    def patches(image, B, C, H, W, p):
        x = image.reshape(B, C, H // p, p, W // p, p)
        x = x.permute(0, 2, 4, 1, 3, 5)
        return x

    def scores(q, k):
        return q @ k.transpose(-2, -1)     # no reshape next to it: left alone
    """
    assert pairs(muts(src, "view-for-transpose")) == [
        (2, "x.view(B, T, H, D).transpose(1, 2)",
         "(lambda t: t.reshape(*t.shape[:1], t.shape[2], t.shape[1], *t.shape[3:]))(x.view(B, T, H, D))"),
        (5, "y.transpose(1, 2)", "y.reshape(*y.shape[:1], y.shape[2], y.shape[1], *y.shape[3:])"),
        (9, "x.permute(0, 2, 4, 1, 3, 5)", "x.reshape(x.shape[0], x.shape[2], x.shape[4], x.shape[1], x.shape[3], x.shape[5])"),
    ]


@pytest.mark.parametrize("dims", [(1, 2), (0, 1), (0, 2), (2, 0), (-2, -1), (-3, -1), (1, -1), (0, -2)])
def test_view_for_transpose_keeps_the_shape_not_the_order_at_any_rank(dims):
    torch = pytest.importorskip("torch")
    src = f"def f(x, n):\n    return x.reshape(n, -1, 3).transpose{dims}.contiguous().view(-1)\n"
    src += f"def g(x):\n    return x.transpose{dims}.reshape(-1)\n"
    for m in mutants_of(src, kinds=["view-for-transpose"]):
        expr = m.after if m.line == 4 else None
        if expr is None:
            continue
        for rank in (3, 4, 5):
            x = torch.randn(*range(2, 2 + rank))
            got = eval(expr, {"x": x})
            assert got.shape == x.transpose(*dims).shape
            assert not torch.equal(got, x.transpose(*dims))
    assert {m.line for m in mutants_of(src, kinds=["view-for-transpose"])} == {2, 4}


def test_reduction_swapped():
    src = """\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def loss(x, nll, mask, logits, y):
        a = x.sum(dim=1)
        b = torch.mean(x)
        c = F.cross_entropy(logits, y)
        d = F.nll_loss(logits, y, reduction="mean")
        e = nn.CrossEntropyLoss()
        per_seq = (nll * mask).sum(dim=1) / mask.sum(dim=1)
        tok = nll.sum() / mask.sum()
        return sum([a, b])
    """
    got = [(m.line, m.before, m.after) for m in muts(src, "reduction-swapped")]
    assert got == [
        (6, "x.sum(dim=1)", "x.mean(dim=1)"),
        (7, "torch.mean(x)", "torch.sum(x)"),
        (8, "F.cross_entropy(logits, y)", "F.cross_entropy(logits, y, reduction='sum')"),
        (9, 'F.nll_loss(logits, y, reduction="mean")', "F.nll_loss(logits, y, reduction='sum')"),
        (10, "nn.CrossEntropyLoss()", "nn.CrossEntropyLoss(reduction='sum')"),
        (11, "(nll * mask).sum(dim=1)", "(nll * mask).mean(dim=1)"),
        (11, "mask.sum(dim=1)", "mask.mean(dim=1)"),
        (11, "mask.sum(dim=1)", "mask.sum(dim=1).mean()"),      # per-sequence -> token-level
        (12, "nll.sum()", "nll.mean()"),
        (12, "mask.sum()", "mask.mean()"),
        (12, "mask.sum()", "mask.size(0)"),                      # token-level -> per-sequence
    ]   # the builtin sum() is left alone


def test_dropout_in_eval():
    src = """\
    import torch.nn as nn
    import torch.nn.functional as F

    class M(nn.Module):
        def __init__(self, p):
            super().__init__()
            self.drop = nn.Dropout(p)

        def forward(self, x):
            x = F.dropout(x, 0.1, training=self.training)
            x = self.drop(x)
            x = nn.Dropout(0.2)(x)
            if self.training:
                x = x + 1
            return x

    def evaluate(model):
        model.eval()
    """
    assert [(m.line, m.after) for m in muts(src, "dropout-in-eval")] == [
        (10, "F.dropout(x, 0.1, training=True)"),
        (11, "F.dropout(x, p=self.drop.p, training=True)"),
        (12, "F.dropout(x, p=0.2, training=True)"),
        (13, "True"),
        (18, "model.train()"),
    ]


def test_dropout_in_eval_without_f_alias_and_behaviour():
    torch = pytest.importorskip("torch")
    src = textwrap.dedent("""\
    import torch
    from torch import nn

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.dropout = nn.Dropout(0.5)

        def forward(self, x):
            return self.dropout(x)
    """)
    (m,) = mutants_of(src, kinds=["dropout-in-eval"])
    assert m.after == "__import__('torch').nn.functional.dropout(x, p=self.dropout.p, training=True)"
    ns = {}
    exec(compile(m.source, "<mutant>", "exec"), ns)
    model = ns["M"]().eval()
    x = torch.ones(1000)
    assert not torch.equal(model(x), x)


def test_detached():
    src = """\
    class M:
        def forward(self, x, h):
            y = self.lin(x)
            n = x.size(0)
            z = (y @ y.T).detach()
            return y + z, h

        def helper(self, x):
            return self.lin(x)
    """
    assert [(m.line, m.before, m.after) for m in muts(src, "detached")] == [
        (3, "self.lin(x)", "self.lin(x).detach()"),
        (5, "(y @ y.T).detach()", "(y @ y.T).detach().detach()"),
        (5, "(y @ y.T).detach()", "y @ y.T"),                 # same line and column: generation order
        (6, "y + z", "(y + z).detach()"),
    ]


def test_off_by_one():
    src = """\
    def f(x, n, a, b, k, T, pos):
        for i in range(n):
            pass
        for j in range(a, b, 2):
            pass
        y = x[:k]
        z = x[1:]
        w = pos[:, :T + 1]
        x[:k] = 0
        s = x[::2]
        return f"{x[:k]}"
    """
    assert [(m.line, m.after) for m in muts(src, "off-by-one")] == [
        (2, "range(n - 1)"), (2, "range(n + 1)"),
        (4, "range(a, b - 1, 2)"), (4, "range(a, b + 1, 2)"),
        (6, "x[:k - 1]"), (6, "x[:k + 1]"),
        (7, "x[0:]"), (7, "x[2:]"),
        (8, "pos[:, :T]"), (8, "pos[:, :T + 2]"),
        (9, "k - 1"), (9, "k + 1"),           # a stored slice: the bound alone is edited
    ]   # steps and f-strings are left alone


def test_args_swapped():
    src = """\
    import torch

    class A:
        def forward(self, q, k, v, x):
            s = torch.matmul(q, k)
            o = self.attention(q, k, v)
            p = s @ v
            ok = isinstance(q, k) or torch.matmul(q, q) or x.view(q, k) or torch.Linear(q, k)
            return o + p
    """
    assert [(m.line, m.after) for m in muts(src, "args-swapped")] == [
        (5, "torch.matmul(k, q)"),
        (6, "self.attention(k, q, v)"), (6, "self.attention(q, v, k)"),
        (7, "v @ s"),
    ]


# --- output rules ----------------------------------------------------------------------------

def test_operators_registry():
    assert list(OPERATORS) == [
        "softmax-dim", "scale-dropped", "scale-doubled", "scale-sqrt-missing", "var-unbiased",
        "eps-outside-sqrt", "mask-skipped", "mask-inverted", "mask-after-softmax", "view-for-transpose",
        "reduction-swapped", "dropout-in-eval", "detached", "off-by-one", "args-swapped"]
    assert all(d and "\n" not in d for d in OPERATORS.values())
    with pytest.raises(ValueError, match="unknown mutation kinds"):
        mutants_of("x = 1\n", kinds=["no-such-kind"])


def test_deterministic_sorted_and_distinct():
    src = (ROOT / "reference/cs224n_pretraining/attention.py").read_text()
    first, second = mutants_of(src, "attention.py"), mutants_of(src, "attention.py")
    assert first == second
    assert [(m.line, m.kind) for m in first] == sorted((m.line, m.kind) for m in first)
    assert len({m.source for m in first}) == len(first) and src not in {m.source for m in first}
    assert all(isinstance(m, Mutant) for m in first)


def test_identical_mutants_are_deduplicated():
    src = "import torch.nn.functional as F\n\ndef f(self, x):\n    return F.dropout(x, 0.1, training=self.training)\n"
    ms = mutants_of(src, kinds=["dropout-in-eval"])      # training=True two ways, one mutant
    assert [m.after for m in ms] == ["F.dropout(x, 0.1, training=True)"]


def test_limit_per_kind():
    src = (ROOT / "reference/cs224n_pretraining/attention.py").read_text()
    ms = mutants_of(src, kinds=["detached", "off-by-one"], limit_per_kind=2)
    assert collections.Counter(m.kind for m in ms) == {"detached": 2, "off-by-one": 2}
    full = mutants_of(src, kinds=["detached"])
    assert [m for m in ms if m.kind == "detached"] == full[:2]


def test_functions_filter_and_main_guard():
    src = textwrap.dedent("""\
    import torch

    def given(x):
        return torch.softmax(x, -1)

    class Model:
        def forward(self, x):
            return torch.softmax(x, -1)

    y = torch.softmax(torch.ones(3), -1)

    if __name__ == "__main__":
        z = torch.softmax(torch.ones(3), -1)
    """)
    everything = mutants_of(src, kinds=["softmax-dim"])
    assert [(m.line, m.function) for m in everything] == [(4, "given"), (8, "Model.forward"), (10, "")]
    seen = []
    only = mutants_of(src, kinds=["softmax-dim"], functions=lambda q: seen.append(q) or q.startswith("Model."))
    assert [m.function for m in only] == ["Model.forward"]
    assert set(seen) == {"given", "Model.forward", ""}


def test_rest_of_file_kept_byte_for_byte():
    src = textwrap.dedent("""\
    import torch  # the import

    def attn(q, k, v):
        # scores, then weights
        w = torch.softmax(q @ k.transpose(-2, -1), dim=-1)   # (B, T, T)
        out = torch.matmul(
            w,      # weights
            v,      # values
        )
        return out  # done
    """)
    for m in mutants_of(src, "a.py"):
        assert_one_edit(src, m)
        assert m.source.count("#") >= src.count("#") - (2 if m.line == 6 else 0)
    (swap,) = mutants_of(src, kinds=["args-swapped"])
    lines = swap.source.split("\n")
    assert swap.line == 6 and lines[5] == "    out = (torch.matmul(v, w)" and lines[9] == "    return out  # done"
    assert lines[4].endswith("# (B, T, T)") and lines[0].endswith("# the import")


def test_non_ascii_columns():
    src = 'MASK = "⁇"\n\ndef f(x, k):\n    s = "⁇⁇" + x[:k]  # ⁇\n    return s\n'
    ms = mutants_of(src, kinds=["off-by-one"])
    assert [m.source.split("\n")[3] for m in ms] == ['    s = "⁇⁇" + x[:k - 1]  # ⁇', '    s = "⁇⁇" + x[:k + 1]  # ⁇']


def test_notebook_export_with_ipython_lines():
    src = textwrap.dedent("""\
    !pip install -q torch
    %matplotlib inline
    import torch

    def f(x):
        return torch.softmax(x, dim=-1)
    files = !ls
    """)
    (m,) = mutants_of(src, "nb.py", kinds=["softmax-dim"])
    assert m.source.startswith("!pip install -q torch\n%matplotlib inline\n") and "files = !ls" in m.source
    assert m.line == 6
    compile(as_python(m.source), "nb.py", "exec")
    assert as_python("x = 1\n") == "x = 1\n"


def test_module_is_pure_stdlib():
    import autograder.instructor.mutation as mutation
    tree = ast.parse(Path(mutation.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"__future__", "ast", "re", "collections", "dataclasses", "typing"}


# --- the real references ---------------------------------------------------------------------

ASSIGNMENTS = {
    "ift6135_vit_lstm": ["vit_solution.py", "lstm_solution.py"],
    "cs224n_pretraining": ["attention.py", "model.py", "dataset.py"],
    "uw_attention": ["A2S1.py", "A2S2.py", "A2S3.py"],
}
EXPECTED_KINDS = {   # what each assignment's reference must at least give
    "ift6135_vit_lstm": {"softmax-dim", "scale-dropped", "scale-doubled", "scale-sqrt-missing", "var-unbiased",
                         "eps-outside-sqrt", "view-for-transpose", "reduction-swapped", "dropout-in-eval",
                         "detached", "off-by-one", "args-swapped"},
    "cs224n_pretraining": {"softmax-dim", "scale-dropped", "scale-doubled", "scale-sqrt-missing", "mask-skipped",
                           "mask-inverted", "mask-after-softmax", "view-for-transpose", "reduction-swapped",
                           "dropout-in-eval", "detached", "off-by-one", "args-swapped"},
    "uw_attention": {"softmax-dim", "scale-dropped", "scale-doubled", "scale-sqrt-missing", "mask-skipped",
                     "mask-inverted", "view-for-transpose", "reduction-swapped", "dropout-in-eval", "off-by-one",
                     "args-swapped"},
}


@pytest.mark.parametrize("assignment", sorted(ASSIGNMENTS))
def test_real_references(assignment):
    counts = collections.Counter()
    for name in ASSIGNMENTS[assignment]:
        src = (ROOT / "reference" / assignment / name).read_text()
        for m in mutants_of(src, name):
            compile(as_python(m.source), name, "exec")
            assert len(m.source.split("\n")) == len(src.split("\n")), m.describe()
            counts[m.kind] += 1
    print(f"\n{assignment}: {sum(counts.values())} mutants {dict(sorted(counts.items()))}")
    assert sum(counts.values()) >= 20
    assert EXPECTED_KINDS[assignment] <= set(counts), EXPECTED_KINDS[assignment] - set(counts)


def test_vit_softmax_dim_mutant_changes_attention_weights():
    torch = pytest.importorskip("torch")
    src = (ROOT / "reference/ift6135_vit_lstm/vit_solution.py").read_text()
    (m,) = mutants_of(src, "vit_solution.py", kinds=["softmax-dim"],
                      functions=lambda q: q == "MultiHeadedAttention.get_attention_weights")
    q, k = torch.randn(2, 2, 5, 4), torch.randn(2, 2, 5, 4)
    weights = {}
    for label, text in (("ref", src), ("mutant", m.source)):
        ns = {}
        exec(compile(text, "vit_solution.py", "exec"), ns)
        weights[label] = ns["MultiHeadedAttention"](4, 2, 5).get_attention_weights(q, k)
    assert torch.allclose(weights["ref"].sum(-1), torch.ones(2, 2, 5))
    assert not torch.allclose(weights["mutant"].sum(-1), torch.ones(2, 2, 5))
