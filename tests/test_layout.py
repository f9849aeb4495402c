"""The house by role: which folder may import which, no import cycle, what each zip ships, and
the environment read in one place.

Direction: ``wire ← worker``; ``wire, suite ← engine ← gradescope, instructor, batch ← cli``;
``common`` (pure helpers) is open to the worker too; ``assignment`` and ``settings`` to the
trusted side. Every import counts, including those inside functions. Suites import only
``autograder.suite`` and their own assignment config.
"""
from __future__ import annotations

import ast
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "autograder"
BASE = {"__init__"}
TOP = {"assignment", "settings", "common"}   # config types, the environment's knobs, pure helpers
MAY_IMPORT = {   # each layer: what it may import besides itself and the package root
    "wire": set(),
    "common": set(),
    "assignment": set(),
    "settings": set(),
    "worker": {"wire", "common"},            # all a pool copies into its runtime folder
    "suite": {"common", "assignment"},
    "engine": {"wire", "suite"} | TOP,
    "gradescope": {"engine", "wire", "suite"} | TOP,
    "instructor": {"engine", "wire", "suite"} | TOP,
    "batch": {"engine", "wire", "suite"} | TOP,
    # cli may import worker for one thing: `grade --isolation none`, the benchmark's in-process floor
    "cli": {"gradescope", "instructor", "batch", "engine", "wire", "suite", "worker"} | TOP,
    "__main__": {"cli"},
    "__init__": set(),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every ``autograder`` import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "autograder"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "autograder":
            for alias in node.names:   # `from autograder.x import y` may import the module x.y
                sub = f"{node.module}.{alias.name}"
                found.append((node.lineno, sub if _exists(sub) else node.module))
    return found


def _exists(module: str) -> bool:
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _graph() -> dict[str, list[tuple[int, str]]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_each_layer_imports_only_the_layers_below_it():
    wrong = []
    for module, imports in _graph().items():
        layer = _layer(module)
        for line, target in imports:
            allowed = MAY_IMPORT[layer] | BASE | {layer}
            if _layer(target) not in allowed:
                wrong.append(f"{module}:{line} imports {target} ({layer} may import only {sorted(allowed)})")
    assert not wrong, "imports against the layout's direction:\n  " + "\n  ".join(wrong)


def test_no_import_cycle():
    graph = {m: sorted({t for _, t in imps if t in _graph_names()} - {m}) for m, imps in _graph().items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif not state.get(nxt):
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in graph:
        if not state.get(node):
            visit(node, [node])
    assert not cycles, "import cycles:\n  " + "\n  ".join(cycles)


def _graph_names() -> set[str]:
    return {_module_name(p) for p in PACKAGE.rglob("*.py")}


def test_suites_import_only_the_suite_api():
    """An author never touches engine modules: ``autograder.suite`` (and the config types) only."""
    wrong = []
    for path in sorted((ROOT / "test_suites").rglob("*.py")):
        for line, target in _imports(path):
            if _layer(target) not in {"suite", "assignment"}:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not wrong, "suites reaching past autograder.suite:\n  " + "\n  ".join(wrong)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from autograder.instructor.build import autograder_zip, student_bundle
    out = tmp_path_factory.mktemp("zips")
    return autograder_zip("cs224n_pretraining", out), student_bundle("cs224n_pretraining", out)


def _package_folders(zip_path: Path, prefix: str = "") -> set[str]:
    with zipfile.ZipFile(zip_path) as zf:
        names = [n[len(prefix):] for n in zf.namelist() if n.startswith(prefix + "autograder/")]
    return {n.split("/")[1] if n.count("/") > 1 else n.split("/")[1] for n in names}


@pytest.mark.e2e   # the build grades the reference
@pytest.mark.slow
def test_the_gradescope_zip_ships_only_what_the_server_runs(built):
    gradescope_zip, _ = built
    shipped = _package_folders(gradescope_zip)
    assert not shipped & {"batch", "instructor"}, sorted(shipped)
    assert {"engine", "worker", "wire", "suite", "common", "gradescope", "cli.py"} <= shipped


@pytest.mark.e2e
@pytest.mark.slow
def test_the_student_bundle_ships_what_check_runs(built):
    _, bundle = built
    with zipfile.ZipFile(bundle) as zf:
        prefix = next(n for n in zf.namelist() if "/autograder/" in n).split("autograder/")[0]
        names = {n[len(prefix):] for n in zf.namelist() if n.startswith(prefix + "autograder/")}
    folders = {n.split("/")[1] for n in names}
    assert "batch" not in folders and "gradescope" not in folders, sorted(folders)
    instructor = sorted(n for n in names if n.startswith("autograder/instructor/"))
    assert instructor == ["autograder/instructor/__init__.py", "autograder/instructor/check.py",
                          "autograder/instructor/reference_replay.py"], instructor


def test_the_environment_is_read_in_one_place():
    """Every AUTOGRADER_* variable is read by ``autograder.settings`` and listed in the README."""
    import re
    from autograder import settings
    readers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "settings.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            reads = re.search(r"environ\.get\(\s*[\"']AUTOGRADER_|getenv\([\"']AUTOGRADER_", line) or \
                re.search(r"environ\[\s*[\"']AUTOGRADER_\w+[\"']\s*\](?!\s*=[^=])", line)    # a write is fine
            if reads:
                readers.append(f"{path.relative_to(ROOT)}:{n}")
    assert not readers, "AUTOGRADER_* read outside autograder/settings.py: " + ", ".join(readers)
    mentioned = set(re.findall(r"AUTOGRADER_[A-Z_]+", "".join(p.read_text() for p in PACKAGE.rglob("*.py"))))
    knobs = {k.variable for k in settings.KNOBS}
    assert mentioned <= knobs, f"not in settings.KNOBS: {sorted(mentioned - knobs)}"
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Settings"):]
    assert all(f"`{k}`" in table for k in knobs), [k for k in knobs if f"`{k}`" not in table]


@pytest.mark.parametrize("module", ["autograder.cli", "autograder.instructor.check", "autograder.gradescope.entry",
                                    "autograder.batch.run", "autograder.engine.isolation.backend"])
def test_a_pool_can_start_before_torch_is_imported(module):
    """What each verb imports before starting its pool imports no torch: the fork server's torch
    import (a second or more) then overlaps the grader's own instead of following it."""
    import subprocess
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"importing {module} imported {out.stdout.strip()}"
