"""The uw_attention starter notebooks match their ``# %%`` sources, and the interface matches the reference.

The .ipynb files are built by ``student_template/uw_attention/build_notebooks.py``; after
editing a source, rerun it. Files are read as text and parsed with ``ast`` (IPython
``!``/``%`` lines blanked first), never imported.
"""
import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "student_template" / "uw_attention"
REFERENCE = ROOT / "reference" / "uw_attention"


def _builder():
    spec = importlib.util.spec_from_file_location("_uw_build_notebooks", TEMPLATE / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(path: Path) -> ast.Module:
    lines = path.read_text(encoding="utf-8").splitlines()
    return ast.parse("\n".join("" if l.lstrip().startswith(("!", "%")) else l for l in lines))


def _first_functions(path: Path) -> dict[str, str]:
    """{name: signature} of the first top-level definition of each public function."""
    found: dict[str, str] = {}
    for node in _tree(path).body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and node.name not in found:
            args = node.args
            args = ast.arguments(posonlyargs=args.posonlyargs, args=[ast.arg(a.arg) for a in args.args],
                                 vararg=args.vararg, kwonlyargs=[ast.arg(a.arg) for a in args.kwonlyargs],
                                 kw_defaults=args.kw_defaults, kwarg=args.kwarg, defaults=args.defaults)
            found[node.name] = ast.unparse(args)
    return found


@pytest.mark.parametrize("name", ["A2S1.ipynb", "A2S2.ipynb", "A2S3.ipynb"])
def test_notebook_matches_its_source(name):
    built = _builder().build(TEMPLATE)
    committed = (TEMPLATE / name).read_text(encoding="utf-8")
    assert committed == built[name], (f"{name} is out of date: run "
                                       "python student_template/uw_attention/build_notebooks.py")


def test_build_is_deterministic():
    builder = _builder()
    text = (TEMPLATE / "A2S2.py").read_text(encoding="utf-8")
    assert builder.render(text) == builder.render(text)


def test_a2s2_interface_matches_the_reference():
    template, reference = _first_functions(TEMPLATE / "A2S2.py"), _first_functions(REFERENCE / "A2S2.py")
    assert template == reference


def test_a2s2_defines_the_graded_names():
    spec = importlib.util.spec_from_file_location("_uw_assignment", ROOT / "test_suites" / "uw_attention" / "assignment.py")
    assignment = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(assignment)
    for path in (TEMPLATE / "A2S2.py", REFERENCE / "A2S2.py"):
        names = set(_first_functions(path))
        assert set(assignment.A2S2_STUDENT) | set(assignment.A2S2_GIVEN) <= names, path


def test_a2s1_assigns_the_graded_names():
    for path in (TEMPLATE / "A2S1.py", REFERENCE / "A2S1.py"):
        assigned = [t.id for node in _tree(path).body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)]
        for name in ("query121", "query122", "query131", "query132", "key", "value"):
            assert name in assigned, (path, name)
        assert assigned.count("m_key") == 2, path


def _given_cells(path: Path) -> list[str]:
    """A2S1's given statements, from the seed to ``check_query``, unparsed (markdown and prints dropped)."""
    body = [ast.unparse(n) for n in _tree(path).body
            if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    start = body.index("torch.manual_seed(447)")
    end = next(i for i, s in enumerate(body) if s.startswith("def check_query("))
    return [s for s in body[start:end + 1] if not s.startswith("print(")]


def test_a2s1_given_cells_are_the_starters():
    """Seeded draws normalised and rounded in place, then the given attention and check_query:
    the same statements in the template and the reference."""
    template = _given_cells(TEMPLATE / "A2S1.py")
    assert template[:7] == [
        "torch.manual_seed(447)",
        "key = torch.randn(4, 3)", "key /= torch.norm(key, dim=1, keepdim=True)", "key.round_(decimals=2)",
        "value = torch.randn(4, 3)", "value /= torch.norm(value, dim=1, keepdim=True)", "value.round_(decimals=2)"]
    assert template == _given_cells(REFERENCE / "A2S1.py")


def test_a2s3_given_cells_are_the_starters():
    """The notebook's tqdm (tqdm.notebook), datasets at top level and the tqdm-wrapped loops."""
    for path in (TEMPLATE / "A2S3.py", REFERENCE / "A2S3.py"):
        text = path.read_text(encoding="utf-8")
        assert "from tqdm.notebook import tqdm" in text and "from datasets import load_dataset" in text, path
        assert "!pip install torch transformers datasets tqdm gdown==v4.6.3" in text, path
        assert text.count("total=len(dataloader)) as tq:") == 2 and "tq.set_postfix(" in text, path
