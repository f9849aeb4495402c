"""``autograder build``: the Gradescope zip holds exactly one assignment's grader; the student
bundle holds no hidden test, no reference and no answer key, and its check agrees with the server."""
import ast
import json
import os
import re
import subprocess
import sys
import zipfile

import pytest

from autograder.engine import registry
from autograder.instructor.build import autograder_zip, public_files, student_bundle
from autograder.instructor.reference_replay import RECORDING_BIN, RECORDING_JSON
from autograder.engine.runner import grade
from autograder.engine.spec import collect_tests
from autograder.instructor.strip_hidden import hidden_methods
from support import FIXTURES, MINI_PROJECT, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ASSIGNMENTS = ["ift6135_vit_lstm", "uw_attention", "cs224n_pretraining"]


def entries(path):
    with zipfile.ZipFile(path) as zf:
        return {i.filename: (zf.read(i), i.external_attr >> 16, i.date_time) for i in zf.infolist()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    return {a: (autograder_zip(a, out), student_bundle(a, out)) for a in ASSIGNMENTS}


def test_same_inputs_give_the_same_bytes(built, tmp_path):
    again = autograder_zip("ift6135_vit_lstm", tmp_path, None), student_bundle("ift6135_vit_lstm", tmp_path)
    for first, second in zip(built["ift6135_vit_lstm"], again):
        assert first.read_bytes() == second.read_bytes()
    names = list(entries(again[0]))
    assert names == sorted(names)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_autograder_zip_holds_that_assignment_and_nothing_else(built, assignment):
    files = entries(built[assignment][0])
    assert files["setup.sh"][1] == files["run_autograder"][1] == 0o100755
    assert files["setup.sh"][0] == (ROOT / "setup.sh").read_bytes()
    assert json.loads(files["autograder/deploy.json"][0]) == {"assignment": assignment, "kind": "gradescope"}
    assert {stamp for _, _, stamp in files.values()} == {(1980, 1, 1, 0, 0, 0)}
    assert {mode for name, (_, mode, _) in files.items() if name not in ("setup.sh", "run_autograder")} == {0o100644}
    for name in files:
        assert re.match(rf"(autograder/|test_suites/{assignment}/|reference/{assignment}/|"
                        r"setup\.sh$|run_autograder$|pyproject\.toml$|requirements\.txt$|README\.md$)", name), name
        assert "__pycache__" not in name and not name.endswith(".pyc") and ".git" not in name
    for kind in ("test_suites", "reference"):
        for path in (ROOT / kind / assignment).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(ROOT).as_posix()
                assert files[rel][0] == path.read_bytes(), rel


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_bundle_has_no_hidden_test_reference_or_answer(built, assignment):
    files = entries(built[assignment][1])
    top = f"{assignment}/"
    assert all(name.startswith(top) for name in files)
    template = {p.read_bytes() for p in (ROOT / "student_template" / assignment).rglob("*") if p.is_file()}
    given = {p.read_bytes() for p in public_files(assignment)}
    reference_texts = [p.read_bytes() for p in (ROOT / "reference" / assignment).rglob("*") if p.is_file()]
    recorded = (f"{top}test_suites/{assignment}/{RECORDING_JSON}", f"{top}test_suites/{assignment}/{RECORDING_BIN}")
    for name, (data, _, _) in files.items():
        assert data not in reference_texts or data in template, f"{name} is a copy of the reference"
        if f"{top}test_suites/" in name and not name.endswith((".py", "/hidden_tests.json")) and name not in recorded:
            assert data in given | template, f"{name}: data that students are not given"
    reference_sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "reference" / assignment).rglob("*.py")
                         if p.resolve() not in public_files(assignment)}
    assert reference_sources and not {top + rel for rel in reference_sources} & set(files), "reference source shipped"
    assert not any(name.startswith(f"{top}reference/") and name.endswith(".py") and
                   (ROOT / name[len(top):]).resolve() not in public_files(assignment) for name in files)
    if recorded[0] in files:       # the recorded answers: data only, no code, no pickle
        text = files[recorded[0]][0].decode()
        assert set(json.loads(text)) == {"entries", "tensors"} and "def " not in text
        assert not files[recorded[1]][0].startswith(b"\x80")           # not a pickle
    hidden = {m for classes in hidden_methods(assignment).values() for ms in classes.values() for m in ms}
    assert hidden, "the assignment has hidden tests to strip"
    suites = {name: data.decode() for name, (data, _, _) in files.items()
              if name.startswith(f"{top}test_suites/") and name.endswith(".py")}
    defined = {node.name for src in suites.values() for node in ast.walk(ast.parse(src))
               if isinstance(node, ast.FunctionDef)}
    assert not hidden & defined
    assert not re.search(r"@visibility\(", "".join(suites.values()).replace("@visibility(\"visible\")", ""))
    visible = {c._testMethodName for c in collect_tests(assignment) if c._testMethodName not in hidden}
    assert visible <= defined
    template = registry.template_dir(assignment)
    notebooks = {p.stem for p in template.glob("*.ipynb")}
    for path in (p for p in template.iterdir() if p.is_file()):
        if (path.suffix == ".py" and path.stem in notebooks) or path.name.startswith("build_"):
            assert top + path.name not in files, path.name      # a notebook's source, an authoring tool
        else:
            assert files[top + path.name][0] == path.read_bytes()


AGREEMENT = [("ift6135_vit_lstm", ROOT / "reference" / "ift6135_vit_lstm", 21),
             ("ift6135_vit_lstm", ROOT / "student_template" / "ift6135_vit_lstm", None),
             ("ift6135_vit_lstm", FIXTURES / "ift6135_vit_lstm" / "half_finished", None),
             ("uw_attention", FIXTURES / "uw_attention" / "mask_additive", 18)]    # its suite never asks the reference


def bundle_check(bundle, tmp_path, submission) -> subprocess.Popen:
    """Start ``python -m autograder check`` in the unpacked bundle on a copy of ``submission``."""
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(tmp_path)
    work = next(p for p in tmp_path.iterdir() if p.is_dir())
    for path in submission.iterdir():
        if path.is_file():
            (work / path.name).write_bytes(path.read_bytes())
    env = {k: v for k, v in os.environ.items() if k != "AUTOGRADER_PROJECT"}
    return subprocess.Popen([sys.executable, "-m", "autograder", "check", "--device", "cpu"], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("assignment,submission,decided", AGREEMENT, ids=lambda v: getattr(v, "name", None))
def test_student_bundle_check_agrees_with_the_server(built, tmp_path, assignment, submission, decided):
    """Every visible test decided locally (the recorded reference replayed included) gets the
    server's verdict; the rest are listed as decided on the server."""
    proc = bundle_check(built[assignment][1], tmp_path, submission)       # runs while the server grades
    server = grade(assignment, submission, device="cpu", visible_only=True)
    out, _ = proc.communicate(timeout=300)
    local = dict(re.findall(r"^\s+(\d+(?:\.\d+)*)\s+(PASS|FAIL)", out, re.M))
    on_server = set(re.findall(r"^\s+(\d+(?:\.\d+)*)\s+SERVER", out, re.M))
    expected = {t.number: "PASS" if t.passed else "FAIL" for t in server.tests}
    assert local and not set(local) & on_server, out
    assert set(local) | on_server == set(expected), out
    assert local == {n: v for n, v in expected.items() if n in local}, out
    assert proc.returncode == (0 if all(v == "PASS" for v in local.values()) else 1), out
    if decided is not None:       # the reference's recorded answers decide these locally (9 before replay)
        assert len(local) == decided, out
    if assignment == "ift6135_vit_lstm":
        assert "hidden tests (15 points) are not run here" in out


def test_stripping_keeps_the_rest_of_the_file_as_written():
    from autograder.instructor.strip_hidden import strip_methods
    source = ("HIDDEN = 'hidden'\n\nclass A(Base):\n    @visibility(HIDDEN)\n    @weight(1)\n    def test_a(self):\n"
              "        pass\n\n    def test_b(self):  # kept\n        return 1\n\nclass C:\n    @weight(2)\n"
              "    def test_c(self):\n        x = 1\n")
    assert strip_methods(source, {"A": {"test_a"}, "C": {"test_c"}}) == (
        "HIDDEN = 'hidden'\n\nclass A(Base):\n\n    def test_b(self):  # kept\n        return 1\n\nclass C:\n    pass\n")


def test_an_answer_key_beside_the_suites_stays_on_the_server(built):
    bundle = set(entries(built["cs224n_pretraining"][1]))
    upload = set(entries(built["cs224n_pretraining"][0]))
    key = "test_suites/cs224n_pretraining/data/birth_test_gold.tsv"
    assert key in upload and "cs224n_pretraining/" + key not in bundle
    assert "cs224n_pretraining/test_suites/cs224n_pretraining/data/birth_dev.tsv" in bundle    # given to students
    assert "cs224n_pretraining/reference/cs224n_pretraining/model.py" not in bundle


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_both_zips_pin_what_the_grader_runs(built, assignment):
    """requirements.txt: every package pinned (torch without its local label), the Python version
    named, this assignment's libraries and preload only; the same file in the Gradescope zip and the bundle."""
    from autograder.instructor.requirements_lock import python_of, requirements_txt
    upload, bundle = (entries(path) for path in built[assignment])
    text = upload["requirements.txt"][0].decode()
    assert bundle[f"{assignment}/requirements.txt"][0].decode() == text == requirements_txt(assignment).decode()
    assert python_of(text) == "%d.%d" % sys.version_info[:2]
    pins = dict(line.split("==") for line in text.splitlines() if line and not line.startswith("#"))
    import torch
    assert pins["torch"] == torch.__version__.split("+")[0]
    assert {"numpy", "gradescope-utils", "jsonschema"} <= set(pins)
    assert ("transformers" in pins) == (assignment == "uw_attention")     # declared libraries only
    assert ("matplotlib" in pins) == (assignment == "uw_attention")       # ... and what the starter imports (preload)
    assert not {"pytest", "dask"} & set(pins)                             # not grading's
    readme = bundle[f"{assignment}/README.md"][0].decode()
    assert "pip install -r requirements.txt" in readme and f"Python {python_of(text)}" in readme


def test_build_lists_the_visible_tests_the_bundle_leaves_to_the_server(built):
    """The bundle's own engine grades the reference and the template: ift6135's 1.2.4 backpropagates
    through the reference's graph (not recordable), so it is listed with that reason, and only
    visible tests are listed."""
    from autograder.instructor.build import server_decided
    undecided = server_decided("ift6135_vit_lstm", built["ift6135_vit_lstm"][1])
    hidden = {f"{t}" for classes in hidden_methods("ift6135_vit_lstm").values() for ms in classes.values() for t in ms}
    assert any(test.startswith("1.2.4 ") and "reference" in why for test, why in undecided.items()), undecided
    names = {c.shortDescription().strip(): c._testMethodName for c in collect_tests("ift6135_vit_lstm")}
    assert not {names.get(test.split(" ", 1)[1]) for test in undecided} & hidden


def test_the_bundle_ships_nothing_only_hidden_tests_use(tmp_path, monkeypatch):
    """A hidden test's corpus, seeds, module-level helper and test-class helper stay on the server,
    transitively; what the visible tests use ships."""
    import shutil
    from autograder.instructor.build import student_suite_files
    project = tmp_path / "project"
    for kind in ("test_suites", "reference", "student_template"):
        shutil.copytree(MINI_PROJECT / kind / "mini", project / kind / "canary")
    config = project / "test_suites" / "canary" / "assignment.py"
    config.write_text(config.read_text().replace('name="mini"', 'name="canary"'))
    (project / "test_suites" / "canary" / "test_more.py").write_text(
        "import torch\n\nfrom autograder.suite import GradedTestCase, number, time_limit, visibility, weight\n\n"
        "HIDDEN_CORPUS = ['CANARY-CORPUS']\nSEEDS = (7, 8)\nVISIBLE_INPUT = [1.0, 2.0]\n\n\n"
        "def hidden_helper():\n    return [c.lower() for c in HIDDEN_CORPUS], SEEDS\n\n\n"
        "def shared_helper(x):\n    return 2 * x\n\n\n"
        "class TestMore(GradedTestCase):\n"
        "    def check_secretly(self):\n        return hidden_helper()\n\n"
        "    def check_openly(self, x):\n        return shared_helper(x)\n\n"
        "    @weight(0)\n    @number('8')\n    @time_limit(5)\n    @visibility('hidden')\n"
        "    def test_hidden(self):\n        \"\"\"hidden\"\"\"\n        self.check_secretly()\n\n"
        "    @weight(0)\n    @number('9')\n    @time_limit(5)\n"
        "    def test_visible(self):\n        \"\"\"visible\"\"\"\n        self.check_openly(torch.tensor(VISIBLE_INPUT))\n")
    monkeypatch.setenv("AUTOGRADER_PROJECT", str(project))
    shipped = student_suite_files("canary")["test_more.py"].decode()
    for gone in ("CANARY-CORPUS", "HIDDEN_CORPUS", "SEEDS", "hidden_helper", "check_secretly", "test_hidden"):
        assert gone not in shipped, gone
    for kept in ("VISIBLE_INPUT", "shared_helper", "check_openly", "test_visible"):
        assert kept in shipped, kept
    ast.parse(shipped)
