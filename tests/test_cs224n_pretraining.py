"""cs224n_pretraining: the reference scores full marks, the template zero, and every real bug
of the spec fails exactly the tests it should.

tests/fixtures/cs224n_pretraining/bugs.py gives each bug as edits of the reference; the graded
submission is the reference (code, parameter files, predictions) with those edits made.
The table is for grading on the CPU (a GPU would also fail the forward-pass tests of
``basis_to_device`` and ``basis_plain_tensor``, and pass the GPU ones of ``hardcoded_cuda_device``).
"""
import zipfile
from pathlib import Path

import pytest

from autograder.engine.registry import import_file, load_assignment
from autograder.suite.decorators import attribute
from autograder.engine import runner
from support import edited_submission, explain, grade_valid

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "cs224n_pretraining"
REFERENCE = ROOT / "reference" / ASSIGNMENT
TEMPLATE = ROOT / "student_template" / ASSIGNMENT
BUGS = import_file(ROOT / "tests" / "fixtures" / ASSIGNMENT / "bugs.py", "_cs224n_fixture_bugs").BUGS
TOTAL = 43.0
SEED = 2023

FORWARD = {"2.4", "2.5", "2.6", "2.7", "4.7"}          # every test that runs the Perceiver GPT forward
EXPECTED_FAILURES = {
    # span corruption: each test grades one property, so a bug fails the test of its own property only
    "truncation_not_prefix": {"1.3"},
    "truncation_off_by_one": {"1.3"},
    "randint_float_bound": {"1.3"},                     # crashes at block sizes 50, 23, 33, 77 (drawn by 1.3 only)
    "crash_on_empty_document": {"1.5"},
    # the Perceiver (4.7, 0 points: the regenerated predictions no longer match)
    "swapped_cross_attention_args": {"2.2"} | FORWARD,
    "edited_attention": {"2.2"} | FORWARD,              # graded with the pristine attention.py
    "basis_plain_tensor": {"2.1", "2.6", "2.8", "4.7"},
    "basis_to_device": {"2.1"},                         # found in the source: on a CPU .to() hides it
    "undefined_variable_in_forward": {"2.3"} | FORWARD,
    "hardcoded_cuda_device": {"2.2"} | FORWARD,
    # accepted variations: only the instructor's 0-point check sees that the weights no longer fit
    "variant_down_block_without_residual": {"4.7"},
    "variant_extra_layer_in_down_block": {"4.7"},
}


# A bug is graded with the tests of the sections that use the file it edits (the other
# sections read other files): span corruption and NameDataset for dataset.py, the Perceiver
# and the provenance check (which runs the submitted model) for model.py and attention.py.
SECTIONS = {"dataset.py": ("1.", "3."), "model.py": ("2.", "4.7"), "attention.py": ("2.", "4.7")}


@pytest.fixture(scope="module")
def pool(assignment_pools):
    return assignment_pools(ASSIGNMENT)


def _grade(pool, submission: Path):
    return grade_valid(ASSIGNMENT, submission, pool, SEED)


def _reference_files():
    names = {f.name for f in load_assignment(ASSIGNMENT).files}
    return [p for p in REFERENCE.iterdir() if p.name in names]


def _submission(tmp_path: Path, bug: str) -> Path:
    return edited_submission(tmp_path / "submission", REFERENCE, BUGS[bug], files=_reference_files())


def test_every_bug_has_an_expectation():
    assert set(BUGS) == set(EXPECTED_FAILURES)


def test_reference_gets_full_marks_from_a_handout_zip(pool, tmp_path):
    """The reference, zipped as collect_submission.sh does (code under src/, the rest at the top)."""
    upload = tmp_path / "assignment5_submission.zip"
    with zipfile.ZipFile(upload, "w") as z:
        for f in _reference_files():
            z.write(f, f"src/{f.name}" if f.suffix == ".py" else f.name)
        for name in ("wiki.txt", "birth_dev.tsv", "birth_places_train.tsv"):
            z.write(ROOT / "test_suites" / ASSIGNMENT / "data" / name, name)
    result = _grade(pool, upload)
    assert result.score == TOTAL, explain(result)
    assert all(t.status == "passed" and t.score == t.max_score for t in result.tests), explain(result)
    assert "differs from the provided" not in result.output
    provenance = next(t for t in result.tests if t.number == "4.7")
    assert "16 of 16 sampled dev predictions regenerated identically" in provenance.output


def test_template_gets_zero_cleanly(pool):
    result = _grade(pool, TEMPLATE)
    assert result.score == 0, explain(result)
    assert sum(t.max_score for t in result.tests) == TOTAL
    for t in result.tests:
        assert t.score == 0 and t.output.strip(), explain(result)
        assert "could not finish because of an unexpected condition" not in t.output, explain(result)
        assert t.status == "failed" or t.max_score == 0, explain(result)


@pytest.mark.parametrize("bug", sorted(EXPECTED_FAILURES))
def test_bug_fails_exactly_the_expected_tests(pool, bug, tmp_path, monkeypatch):
    prefixes = tuple(p for name in BUGS[bug] for p in SECTIONS[name])
    collect = runner.collect_tests
    monkeypatch.setattr(runner, "collect_tests", lambda name, **kw: [
        c for c in collect(name, **kw) if attribute(getattr(c, c._testMethodName), "__number__").startswith(prefixes)])
    result = _grade(pool, _submission(tmp_path, bug))
    assert {t.number for t in result.tests} >= EXPECTED_FAILURES[bug]
    failed = {t.number for t in result.tests if t.status != "passed"}
    assert failed == EXPECTED_FAILURES[bug], explain(result)
    for t in result.tests:
        assert "could not finish because of an unexpected condition" not in t.output, explain(result)
        assert t.score == (0 if t.number in failed else t.max_score), explain(result)
    lost = sum(t.max_score for t in result.tests if t.number in failed)
    assert result.score == pytest.approx(sum(t.max_score for t in result.tests) - lost)
    if bug == "edited_attention":
        assert "attention.py differs from the provided attention.py" in result.output
        assert "graded with the provided attention.py" in result.output
    if bug == "variant_extra_layer_in_down_block":
        count = next(t for t in result.tests if t.number == "2.8")
        assert "that is allowed (not penalised)" in count.output, count.output
    if bug in ("swapped_cross_attention_args", "edited_attention"):
        down = next(t for t in result.tests if t.number == "2.2")
        assert "are the two arguments swapped?" in down.output
