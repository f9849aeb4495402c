"""cs224n_pretraining on work shaped like real submissions: each fixture of the real-work corpus
(tests/fixtures/cs224n_pretraining/real_work.py) earns the expected points in each test it
names, and its failing tests say what was wrong (CPU grading, each fixture graded once with
only the tests it names).

Also: the assignment declares how the course's autograded parts map onto its tests, and
which tests are the project's own additions.
"""
import shutil
from pathlib import Path

import pytest

from autograder.suite.decorators import attribute
from autograder.engine import runner
from autograder.engine.registry import import_file, load_assignment
from support import ROOT, grade_valid

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ASSIGNMENT = "cs224n_pretraining"
REFERENCE = ROOT / "reference" / ASSIGNMENT
SUITE = ROOT / "test_suites" / ASSIGNMENT
corpus = import_file(ROOT / "tests" / "fixtures" / ASSIGNMENT / "real_work.py", "_cs224n_fixture_real_work")
declared = import_file(SUITE / "assignment.py", f"_autograder_suites.{ASSIGNMENT}.assignment")
SEED = 2023


@pytest.fixture(scope="module")
def pool(assignment_pools):
    return assignment_pools(ASSIGNMENT)


def _submission(tmp_path: Path, files: dict) -> Path:
    """The reference as collect_submission.sh zips it (code under src/), with ``files`` replaced or edited."""
    sub = tmp_path / "submission"
    (sub / "src").mkdir(parents=True)
    for spec in load_assignment(ASSIGNMENT).files:
        source = REFERENCE / spec.name
        if source.is_file():
            shutil.copy(source, sub / ("src" if spec.name.endswith(".py") else "") / spec.name)
    for name, content in files.items():
        if isinstance(content, str):
            text = content
        else:
            text = (REFERENCE / name).read_text()
            for old, new in content:
                assert text.count(old) == 1, f"an edit of {name} no longer matches the reference"
                text = text.replace(old, new)
        (sub / "src" / name).write_text(text)
    return sub


def _explain(result) -> str:
    return "\n".join(f"  {t.number} {t.status} {t.score}/{t.max_score}: {t.output[:600]!r}" for t in result.tests)


def test_every_fixture_has_expected_points():
    assert set(corpus.FIXTURES) == set(corpus.POINTS)
    assert set(corpus.SAYS) <= set(corpus.FIXTURES)
    assert len(corpus.FIXTURES) >= 8


@pytest.mark.parametrize("name", sorted(corpus.FIXTURES))
def test_real_work_earns_the_expected_points(pool, name, tmp_path, monkeypatch):
    expected = corpus.POINTS[name]
    collect = runner.collect_tests
    monkeypatch.setattr(runner, "collect_tests", lambda assignment, **kw: [
        c for c in collect(assignment, **kw) if attribute(getattr(c, c._testMethodName), "__number__") in expected])
    result = grade_valid(ASSIGNMENT, _submission(tmp_path, corpus.FIXTURES[name]), pool, SEED)
    assert {t.number: t.score for t in result.tests} == expected, _explain(result)
    for t in result.tests:
        assert "could not finish because of an unexpected condition" not in t.output, _explain(result)
    outputs = {t.number: t.output for t in result.tests}
    for number, words in corpus.SAYS.get(name, {}).items():
        assert words in outputs[number], _explain(result)


def test_course_parts_and_project_additions_cover_every_test_once():
    from autograder.engine.spec import collect_tests
    weights = {attribute(getattr(c, c._testMethodName), "__number__"):
               float(attribute(getattr(c, c._testMethodName), "__weight__")) for c in collect_tests(ASSIGNMENT)}
    in_parts = [n for _, tests in declared.COURSE_PARTS.values() for n in tests]
    assert sorted(in_parts + list(declared.PROJECT_ADDITIONS)) == sorted(weights)
    course = {part: (points, sum(weights[n] for n in tests)) for part, (points, tests) in declared.COURSE_PARTS.items()}
    assert sum(points for points, _ in course.values()) == 33                  # what the course autograded
    assert course["(e) span corruption"] == (10, 10.0)
    assert course["(g)(i) Perceiver, at least 5% on the test set"] == (8, 8.0)
    assert course["(d) predictions without pretraining"] == (5, 2.0)           # documented differences
    assert course["(f) pretrained vanilla predictions, at least 10%"] == (10, 8.0)
    assert sum(weights[n] for n in declared.PROJECT_ADDITIONS) == 15                # the project's own
