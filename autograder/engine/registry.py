"""Where assignments live: ``test_suites/<name>/``, ``reference/<name>/``, ``student_template/<name>/``.

The project root is the folder holding ``autograder/`` (override: ``AUTOGRADER_PROJECT``).
Suites, configs and reference code are instructor code, imported in the trusted process.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

from autograder import settings
from autograder.assignment import Assignment
from autograder.common.private_import import import_private


def project_root() -> Path:
    return settings.current().project or Path(__file__).resolve().parents[2]


def suite_dir(name: str) -> Path:
    return project_root() / "test_suites" / name


def reference_dir(name: str) -> Path:
    return project_root() / "reference" / name


def template_dir(name: str) -> Path:
    return project_root() / "student_template" / name


def names() -> list[str]:
    root = project_root() / "test_suites"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "assignment.py").is_file())


class UnknownAssignment(KeyError):
    """No suite of that name in this project; ``str()`` is the message to print."""

    def __str__(self) -> str:
        return self.args[0]


def unknown_message(name: str) -> str:
    """The one wording of an unknown assignment, naming the known ones."""
    return f"unknown assignment {name!r}; known: {', '.join(names()) or 'none'}"


def require(name: str) -> None:
    """Raise ``UnknownAssignment`` unless ``name`` is an assignment of this project."""
    if not (suite_dir(name) / "assignment.py").is_file():
        raise UnknownAssignment(unknown_message(name))


def import_file(path: Path, module_name: str) -> types.ModuleType:
    """Import a trusted file under a private module name (cached)."""
    return import_private(path, module_name)


def assignment_module(name: str) -> types.ModuleType:
    """``test_suites/<name>/assignment.py``, imported once: ``ASSIGNMENT`` and whatever else it declares
    for instructor tools (``ACCEPTED_MUTANTS``, ``COURSE_PARTS``)."""
    require(name)
    return import_file(suite_dir(name) / "assignment.py", f"_autograder_suites.{name}.assignment")


def load_assignment(name: str) -> Assignment:
    return assignment_module(name).ASSIGNMENT


def test_modules(name: str) -> list[types.ModuleType]:
    return [import_file(p, f"_autograder_suites.{name}.{p.stem}")
            for p in sorted(suite_dir(name).glob("test_*.py"))]


def reference_module(name: str, module: str) -> types.ModuleType:
    """The reference's module, imported (or, for notebook files, loaded as the worker loads them)."""
    private = f"_autograder_reference.{name}.{module}"
    path = reference_dir(name) / f"{module}.py"
    spec = load_assignment(name).file(module)
    if spec.loader != "notebook" or private in sys.modules:
        return _import_with_siblings(name, path, private)
    from autograder.common.notebook_loader import load_notebook   # instructor code: safe here
    return load_notebook(str(path), private, keep_first=spec.keep_first, watch=spec.watch).module


def _import_with_siblings(name: str, path: Path, private: str) -> types.ModuleType:
    """Import a reference file whose code imports its sibling files by flat name
    (``import attention``), as students' files do. The siblings are imported from the
    reference folder and kept under private names; top-level names are left as they were."""
    if private in sys.modules:
        return sys.modules[private]
    siblings = {f.module for f in load_assignment(name).files if f.loader == "module"}
    prefix = f"_autograder_reference.{name}."
    saved = {s: sys.modules.pop(s) for s in siblings if s in sys.modules}
    for s in siblings:
        if prefix + s in sys.modules:
            sys.modules[s] = sys.modules[prefix + s]
    folder = str(path.parent)
    sys.path.insert(0, folder)
    try:
        return import_file(path, private)
    finally:
        sys.path.remove(folder)
        for s in siblings:
            module = sys.modules.pop(s, None)
            if module is not None and str(getattr(module, "__file__", "")).startswith(folder):
                sys.modules.setdefault(prefix + s, module)
        sys.modules.update(saved)


def detect(path: Path) -> list[str]:
    """Assignments whose expected files appear under ``path``, best match first."""
    wanted: dict[str, set[str]] = {}
    for name in names():
        for spec in load_assignment(name).files:
            for base in (spec.name, *spec.aliases):
                stem = base.rsplit(".", 1)[0]
                wanted.setdefault(name, set()).update({base, stem + ".ipynb"})
    present = set()
    path = Path(path)
    if path.is_file():
        present.add(path.name)
    else:
        for depth, (root, dirs, files) in enumerate(os.walk(path)):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "node_modules")]
            present.update(files)
            if depth > 200:
                break
    scores = {name: len(files & present) for name, files in wanted.items()}
    return sorted((n for n, k in scores.items() if k), key=lambda n: -scores[n])
