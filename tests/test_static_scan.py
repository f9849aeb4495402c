"""The static banned-function scan: evasions it must see, and code it must leave alone."""
import pytest

from autograder.assignment import Ban
from autograder.engine.intake.static_scan import scan_source

BAN = Ban(key="ln", file="vit_solution.py", scope=("LayerNorm",),
          names=("torch.nn.LayerNorm", "torch.nn.functional.layer_norm", "torch.layer_norm", "torch.ops", "torch._C",
                 "torch._refs", "torch._decomp"))

HEAD = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


def body(code):
    return HEAD + "class LayerNorm(nn.Module):\n    def forward(self, x):\n" + \
        "".join(f"        {line}\n" for line in code.splitlines())


@pytest.mark.parametrize("code", [
    "return F.layer_norm(x, x.shape[-1:])",
    "return torch.layer_norm(x, x.shape[-1:])",
    "return nn.LayerNorm(x.shape[-1])(x)",
    "return getattr(F, 'layer_' + 'norm')(x, x.shape[-1:])",
    "return getattr(torch, f'layer_norm')(x, x.shape[-1:])",
    "return getattr(F, ''.join(['layer', '_norm']))(x, x.shape[-1:])",
    "return torch.ops.aten.native_layer_norm(x, x.shape[-1:], None, None, 1e-5)[0]",
    "return torch._C._nn.layer_norm(x)",
    "from torch._refs import nn as r\nreturn r.functional.layer_norm(x)",
    "import torch._decomp\nreturn x",
    "return eval('F.layer_norm')(x, x.shape[-1:])",
    "import importlib\nreturn importlib.import_module('torch').layer_norm(x, (4,))",
    "return torch.nn.modules.normalization.LayerNorm(4)(x)",
])
def test_evasions_are_found(code):
    findings = scan_source(body(code), "vit_solution.py", BAN)
    assert findings, code
    assert findings[0].file == "vit_solution.py" and findings[0].line >= 6


def test_aliased_imports_at_module_level():
    src = "from torch.nn import LayerNorm as LN\nfrom torch.nn import functional as G\n" + body("return G.layer_norm(x, (4,)) + LN(4)(x)")
    assert [f.line for f in scan_source(src, "vit_solution.py", BAN)] == [8]


def test_helper_called_from_scope_is_scanned():
    src = HEAD + "def helper(x):\n    return F.layer_norm(x, (4,))\n" + \
        "class LayerNorm(nn.Module):\n    def forward(self, x):\n        return helper(x)\n"
    assert [f.line for f in scan_source(src, "vit_solution.py", BAN)] == [5]


def test_use_outside_scope_is_allowed():
    src = body("m = x.mean(-1, keepdim=True)\nv = x.var(-1, unbiased=False, keepdim=True)\nreturn (x - m) * torch.rsqrt(v + 1e-5)")
    src += "class VisionTransformer(nn.Module):\n    def __init__(self):\n        self.mlp_head = nn.Sequential(nn.LayerNorm(4))\n"
    assert scan_source(src, "vit_solution.py", BAN) == []


def test_syntax_error_gives_no_findings():
    assert scan_source("def f(:\n", "vit_solution.py", BAN) == []


def test_code_nested_too_deeply_to_scan_is_a_finding_not_a_grader_error():
    name = " + ".join(['"n"'] * 1500)     # parses; folding it into one constant recurses past the limit
    code = f"import torch\nclass LayerNorm:\n    def forward(self, x):\n        y = getattr(torch, {name})\n        return x\n"
    findings = scan_source(code, "vit_solution.py", BAN)
    assert len(findings) == 1 and "nested too deeply" in str(findings[0])


# -- module-level containers and objects holding a banned function (issue 11) ----------------
@pytest.mark.parametrize("setup, use", [
    ("FNS = [F.layer_norm]", "FNS[0](x, (4,))"),
    ("OPS = {'ln': (F.gelu, F.layer_norm)}", "OPS['ln'][1](x, (4,))"),
    ("A = [F.layer_norm]\nB = {'a': A}", "B['a'][0](x, (4,))"),
    ("FNS = []\nFNS.append(F.layer_norm)", "FNS[0](x, (4,))"),
    ("class Box:\n    pass\nbox = Box()\nbox.fn = F.layer_norm", "box.fn(x, (4,))"),
    ("import types\nns = types.SimpleNamespace(fn=F.layer_norm)", "ns.fn(x, (4,))"),
    ("class Box:\n    pass\nbox = Box()\nsetattr(box, 'fn', F.layer_norm)", "box.fn(x, (4,))"),
    ("globals()['ln2'] = F.layer_norm", "ln2(x, (4,))"),
    ("import builtins\nbuiltins.ln3 = F.layer_norm", "ln3(x, (4,))"),
    ("def setup():\n    global FNS\n    FNS = [F.layer_norm]\nsetup()", "FNS[0](x, (4,))"),
    ("for fn in [F.layer_norm]:\n    pass", "fn(x, (4,))"),
])
def test_banned_function_held_in_a_module_level_container_or_object(setup, use):
    src = HEAD + setup + "\nclass LayerNorm(nn.Module):\n    def forward(self, x):\n        return " + use + "\n"
    findings = scan_source(src, "vit_solution.py", BAN)
    line = src.count("\n", 0, src.index("return " + use)) + 1
    assert [f.line for f in findings] == [line], findings
    assert "holds torch.nn.functional.layer_norm" in findings[0].what, findings[0]


def test_banned_function_stored_under_a_computed_name_is_a_finding():
    src = HEAD + "for n in ['ln']:\n    globals()[n + 'x'] = F.layer_norm\n" + body("return lnx(x, (4,))")
    assert [f.what.split(" (")[0] for f in scan_source(src, "vit_solution.py", BAN)] == \
        ["stores torch.nn.functional.layer_norm under a computed name"]


def test_containers_of_allowed_functions_and_banned_ones_outside_scope_are_allowed():
    src = HEAD + "ACTS = [F.gelu]\nNORMS = [nn.LayerNorm]\n" + body("return ACTS[0](x)")
    src += "class Head(nn.Module):\n    def forward(self, x):\n        return NORMS[0](4)(x)\n"
    assert scan_source(src, "vit_solution.py", BAN) == []


@pytest.mark.parametrize("binding", ["LayerNorm = nn.LayerNorm", "from torch.nn import LayerNorm",
                                     "if True:\n    LayerNorm = nn.LayerNorm"])
def test_scope_name_bound_without_a_def_is_scanned_through_its_binding(binding):
    assert scan_source(HEAD + binding + "\n", "vit_solution.py", BAN)


UW_BAN = Ban(key="attention", file="A2S2.py", scope=("self_attention",),
             names=("torch.nn.functional.multi_head_attention_forward",), reason="by hand")
UW_GIVEN = ("def torch_attention(Q, K, V, n_heads=1, causal=True):\n"
            "    return F.multi_head_attention_forward(Q, K, V)\n")


def test_given_wrapper_standing_in_for_self_attention_is_found():
    """uw_attention: the notebook's own torch_attention (F.multi_head_attention_forward) bound
    as, or held for, the graded function; a keep_first function is graded by its first binding."""
    honest = "def self_attention(Q, K, V, n_heads=1, causal=True):\n    return Q\n"
    for src, keep_first in [(HEAD + UW_GIVEN + "self_attention = torch_attention\n", ()),
                            (HEAD + UW_GIVEN + "FNS = [torch_attention]\n"
                             "def self_attention(Q, K, V, n_heads=1, causal=True):\n    return FNS[0](Q, K, V)\n", ()),
                            (HEAD + UW_GIVEN + "self_attention = torch_attention\n" + honest, ("self_attention",))]:
        assert scan_source(src, "A2S2.py", UW_BAN, notebook=True, keep_first=keep_first), src
    later = HEAD + UW_GIVEN + honest + "self_attention = torch_attention\n"   # §2.2's experiment: not graded
    assert scan_source(later, "A2S2.py", UW_BAN, notebook=True, keep_first=("self_attention",)) == []
