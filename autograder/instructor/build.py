"""``autograder build``: the Gradescope upload and the student bundle of one assignment.

The **autograder zip** holds, at its root, ``setup.sh``, ``run_autograder``, the grader
package (with ``deploy.json`` naming the assignment), ``pyproject.toml``, and that
assignment's suites and reference (``test_suites/<a>/``, ``reference/<a>/``) with whatever
data they hold. Nothing else: no other assignment, no templates, no project tests, no caches.

The **student bundle** is one folder ``<a>/`` holding the template (notebooks rather than
their ``# %%`` sources where both exist), the grader package and the suites with every
hidden test method removed; a suite's Python support modules ship when the remaining suite
code names them; data files only when students are given them anyway (provided files).
No reference code ships. Instead, the reference's answers to the visible tests are recorded
(``reference_replay``: JSON plus raw tensor bytes) and replayed by ``check``; a visible test
that asks the reference anything not recorded, or needs data left on the server, stops
there and is reported as decided on the server (see ``runner.ReferenceNotShipped``).

Both zips are deterministic: the same inputs give the same bytes.
"""
from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import autograder
from autograder.engine import registry
from autograder.instructor.deterministic_zip import DeterministicZip
from autograder.instructor.reference_replay import RECORDING_BIN, RECORDING_JSON, record
from autograder.instructor.requirements_lock import python_of, requirements_txt
from autograder.engine.spec import collect_tests, spec_of
from autograder.engine import deploy
from autograder.instructor.check import HIDDEN_SUMMARY
from autograder.instructor.strip_hidden import hidden_methods, strip_methods, strip_unused

PACKAGE = Path(autograder.__file__).resolve().parent
REPO = PACKAGE.parent                   # setup.sh, run_autograder and pyproject.toml live here
SKIPPED_PARTS = {"__pycache__", ".git", ".ipynb_checkpoints"}
AUTHORING_TOOLS = ("build_*.py",)       # template helpers for authors, not for students
# What each deliverable ships of the package: the Gradescope zip what the server runs, the
# student bundle what ``check`` (and ``grade``) run. Batch and the instructor tools stay home.
SHIPPED = {
    "gradescope": ("__init__.py", "__main__.py", "assignment.py", "settings.py", "cli.py", "schema", "common", "wire", "worker",
                   "suite", "engine", "gradescope"),
    "student_bundle": ("__init__.py", "__main__.py", "assignment.py", "settings.py", "cli.py", "schema", "common", "wire",
                       "worker", "suite", "engine", "instructor/__init__.py", "instructor/check.py",
                       "instructor/reference_replay.py"),
}


def _files(folder: Path):
    """(relative posix path, path) of the files under ``folder``, caches and dotfiles left out."""
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(p in SKIPPED_PARTS or p.startswith(".") for p in rel.parts) \
                and path.suffix != ".pyc":
            yield rel.as_posix(), path


def _add_package(zf: DeterministicZip, prefix: str, config: deploy.Deploy) -> None:
    """The package's files this deliverable runs (``SHIPPED``), and its deploy file."""
    shipped = SHIPPED[config.kind]
    for rel, path in _files(PACKAGE):
        if rel != "deploy.json" and any(rel == s or rel.startswith(s + "/") for s in shipped):
            zf.add_file(f"{prefix}autograder/{rel}", path)
    zf.add(f"{prefix}autograder/deploy.json", config.to_json())


def parse_rate_limit(text: str) -> dict:
    """``"3/24h"`` -> ``{"submissions": 3, "window_hours": 24.0}``; ValueError naming the form."""
    try:
        count, hours = text.lower().rstrip("h").split("/")
        limit = {"submissions": int(count), "window_hours": float(hours)}
        if limit["submissions"] >= 1 and limit["window_hours"] > 0:
            return limit
    except ValueError:
        pass
    raise ValueError(f"--rate-limit takes N/HOURS (e.g. 3/24h), not {text!r}")


def _check_known(assignment: str) -> None:
    registry.require(assignment)


def autograder_zip(assignment: str, out_dir: Path, rate_limit: dict | None = None) -> Path:
    """Write ``<out_dir>/<assignment>-autograder.zip`` (Gradescope's upload); returns its path."""
    _check_known(assignment)
    zf = DeterministicZip()
    for script in ("setup.sh", "run_autograder"):
        zf.add(script, (REPO / script).read_bytes(), executable=True)
    zf.add("pyproject.toml", (REPO / "pyproject.toml").read_bytes())
    zf.add("requirements.txt", requirements_txt(assignment))     # what setup.sh installs, pinned
    zf.add("README.md", (f"# Gradescope autograder: {assignment}\n\nBuilt by `autograder build {assignment}`. "
                         "Upload this zip as it is: setup.sh and run_autograder sit at its root.\n").encode())
    _add_package(zf, "", deploy.Deploy(assignment, "gradescope", rate_limit or {}))
    for kind in ("test_suites", "reference"):
        folder = registry.project_root() / kind / assignment
        for rel, path in _files(folder):
            zf.add_file(f"{kind}/{assignment}/{rel}", path)
    return zf.write(Path(out_dir) / f"{assignment}-autograder.zip")


def _named_strings(sources: list[str]) -> set[str]:
    """String constants and imported module names in Python sources (what they could open)."""
    names: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
                if node.value.isidentifier():           # sibling(__file__, "helpers") names helpers.py
                    names.add(node.value + ".py")
            elif isinstance(node, ast.Import):
                names.update(a.name.split(".")[-1] + ".py" for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module.split(".")[-1] + ".py")
    return names


def _named(rel: str, names: set[str]) -> bool:
    base = rel.rsplit("/", 1)[-1]
    return any(n == rel or n == base or n.endswith("/" + base) or n.endswith("/" + rel) for n in names)


def student_suite_files(assignment: str) -> dict[str, bytes]:
    """``{path relative to the suite folder: bytes}`` of what the student bundle ships.

    The assignment config, the test modules without their hidden methods, and the Python
    support modules the shipped code names (transitively). Data files stay on the server
    (they may be answer keys) unless ``public_files`` lets them out; a visible test that
    needs one is reported by ``check`` as decided on the server.
    """
    folder = registry.suite_dir(assignment)
    hidden = hidden_methods(assignment)
    public = public_files(assignment)
    shipped: dict[str, bytes] = {}
    modules: dict[str, Path] = {}
    for rel, path in _files(folder):
        if rel == "assignment.py" or path.resolve() in public:
            shipped[rel] = path.read_bytes()
        elif rel.startswith("test_") and rel.endswith(".py") and "/" not in rel:
            shipped[rel] = strip_unused(strip_methods(path.read_text(), hidden.get(path.resolve(), {}))).encode()
        elif rel.endswith(".py"):
            modules[rel] = path
    while True:       # a support module ships when shipped code names it (transitively)
        names = _named_strings([data.decode() for rel, data in shipped.items() if rel.endswith(".py")])
        wanted = [rel for rel in modules if _named(rel, names)]
        if not wanted:
            return shipped
        for rel in wanted:
            shipped[rel] = modules.pop(rel).read_bytes()


def public_files(assignment: str) -> set[Path]:
    """Project files students are given anyway: the assignment's provided files (its pristine
    copies of given code and data), and suite files identical to a template file."""
    given = {Path(f.provided).resolve() for f in registry.load_assignment(assignment).files if f.provided}
    template_dir = registry.template_dir(assignment)
    template = {path.read_bytes() for _, path in _files(template_dir)} if template_dir.is_dir() else set()
    same = {path.resolve() for _, path in _files(registry.suite_dir(assignment)) if path.read_bytes() in template}
    return given | same


def provided_outside_suite(assignment: str) -> dict[str, Path]:
    """Provided files kept elsewhere in the project (e.g. the given ``attention.py`` under
    ``reference/``): ``{project-relative path: path}``, so the bundle's staging finds them."""
    root = registry.project_root().resolve()
    suite = registry.suite_dir(assignment).resolve()
    out = {}
    for path in public_files(assignment):
        if path.is_file() and root in path.parents and suite not in path.parents:
            out[path.relative_to(root).as_posix()] = path
    return out


def hidden_summary(assignment: str) -> bytes:
    """How many tests and points the stripped hidden tests hold (what ``check`` tells students)."""
    hidden = [s for s in map(spec_of, collect_tests(assignment)) if not s.visible]
    points = sum(s.weight for s in hidden)
    return (json.dumps({"tests": len(hidden), "points": points}, sort_keys=True) + "\n").encode()


def student_template_files(assignment: str) -> dict[str, Path]:
    """Template files students start from: a ``.py`` with a ``.ipynb`` twin gives way to it."""
    folder = registry.template_dir(assignment)
    files = dict(_files(folder)) if folder.is_dir() else {}
    out = {}
    for rel, path in files.items():
        twin = rel[:-3] + ".ipynb" if rel.endswith(".py") else None
        if twin in files or any(path.match(p) for p in AUTHORING_TOOLS):
            continue
        out[rel] = path
    return out


STUDENT_README = """# {assignment}: starter files and local check

Work on the files in this folder, then run the visible tests exactly as the server runs
them (same tests, same isolated engine, offline). Use Python {python} (the version the
grader was verified with; the grader itself supports Python 3.10 and newer) and install the
exact package versions the server grades with, once, in a fresh virtual environment:

```bash
python{python} -m venv .venv && . .venv/bin/activate       # Windows: .venv\\Scripts\\activate
pip install -r requirements.txt
python -m autograder check                                  # in this folder
```

On Linux, `pip install torch==... --index-url https://download.pytorch.org/whl/cpu` first
(then the line above) avoids PyPI's multi-GB CUDA build; macOS and Windows get a CPU build
from PyPI anyway. Off Linux, `check` runs each test in a fresh Python process of its own (the
portable backend: same verdicts, slower start, no sandbox: it is your own code on your machine).

`check` prints each visible test with its points and message. The course's reference
solution is not included, only its recorded answers on the visible tests' inputs; tests
that need anything else from it (e.g. its answer on your own outputs), or data kept on the
server, cannot be decided here: they are listed as decided on the server. Hidden tests are
not included at all; the check says how many points they hold.
"""


def student_bundle(assignment: str, out_dir: Path) -> Path:
    """Write ``<out_dir>/<assignment>-student.zip`` (one folder ``<assignment>/``); returns its path."""
    _check_known(assignment)
    top = f"{assignment}/"
    zf = DeterministicZip()
    for rel, path in student_template_files(assignment).items():
        zf.add_file(top + rel, path)
    _add_package(zf, top, deploy.Deploy(assignment, "student_bundle"))
    for rel, data in student_suite_files(assignment).items():
        zf.add(f"{top}test_suites/{assignment}/{rel}", data)
    for rel, path in provided_outside_suite(assignment).items():
        zf.add_file(top + rel, path)
    zf.add(f"{top}test_suites/{assignment}/{HIDDEN_SUMMARY}", hidden_summary(assignment))
    recorded = record(assignment)       # the reference's answers to the visible tests (no code)
    if recorded is not None:
        zf.add(f"{top}test_suites/{assignment}/{RECORDING_JSON}", recorded[0])
        zf.add(f"{top}test_suites/{assignment}/{RECORDING_BIN}", recorded[1])
    pins = requirements_txt(assignment)
    zf.add(top + "requirements.txt", pins)
    zf.add(top + "README.md", STUDENT_README.format(assignment=assignment,
                                                    python=python_of(pins.decode())).encode())
    return zf.write(Path(out_dir) / f"{assignment}-student.zip")


def server_decided(assignment: str, bundle: Path) -> dict[str, str]:
    """``{"number name": why}``: the visible tests the student bundle cannot decide locally.

    The bundle is unpacked and its own ``grade`` runs (in a subprocess, so its copy of the
    engine and suites is the one imported) on the reference and on the template: a test either
    grading leaves to the server is listed, with the reason its message gives.
    """
    import subprocess
    import sys
    import tempfile
    import zipfile
    from autograder.engine.formats.results_reader import from_json
    from autograder.engine.runner import SERVER_DATA_NOTE   # the reason, of a test decided on the server
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bundle-check-") as tmp:
        with zipfile.ZipFile(bundle) as zf:
            zf.extractall(tmp)
        home = Path(tmp) / assignment
        env = {k: v for k, v in os.environ.items() if k != "AUTOGRADER_PROJECT"}
        for source in (registry.reference_dir(assignment), registry.template_dir(assignment)):
            results = Path(tmp) / "results.json"
            subprocess.run([sys.executable, "-m", "autograder", "grade", assignment, str(source), "--device", "cpu",
                            "--seed", "0", "--results", str(results)], cwd=home, env=env, timeout=900,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if not results.is_file():
                continue
            for t in from_json(json.loads(results.read_text())).tests:
                if t.outcome == "server_only":
                    out[f"{t.number} {t.name}"] = ("it reads data kept on the server" if SERVER_DATA_NOTE in t.output
                                                   else "it asks the reference more than its recorded answers")
    return dict(sorted(out.items()))


def build(assignment: str, out_dir: Path, rate_limit: dict | None = None) -> tuple[Path, Path]:
    """Both zips of ``assignment`` in ``out_dir``: (autograder zip, student bundle)."""
    return autograder_zip(assignment, out_dir, rate_limit), student_bundle(assignment, out_dir)
