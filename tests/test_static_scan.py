"""The static banned-function scan: evasions it must see, and code it must leave alone."""
import pytest

from autograder.assignment import Ban
from autograder.trusted.static_scan import scan_source

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
