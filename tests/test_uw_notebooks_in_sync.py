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
        for name in ("query121", "query122", "query131", "query132", "K", "V"):
            assert name in assigned, (path, name)
        assert assigned.count("m_key") == 2, path
