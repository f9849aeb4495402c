"""cs224n_pretraining, student-controlled introspection (issue 11, item 7): a Perceiver whose
DownProjectBlock ignores C but writes C's gradient itself loses "the loss back-propagates to
down_block.C" (2.6), which now also checks that the logits move when C does; nothing else is
lost but the instructor's 0-point provenance check (4.7). The reference and the bug table stay
as tests/test_cs224n_pretraining.py holds them."""
import pytest

from autograder.suite.decorators import attribute
from autograder.engine import runner
from autograder.engine.registry import import_file, load_assignment
from support import FIXTURES, ROOT, edited_submission, explain, grade_valid

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ASSIGNMENT = "cs224n_pretraining"
REFERENCE = ROOT / "reference" / ASSIGNMENT
SEED = 2023
PERCEIVER = ("2.", "4.7")   # the sections that use model.py (tests/test_cs224n_pretraining.py's SECTIONS)
HOSTILE = import_file(FIXTURES / ASSIGNMENT / "introspection.py", "_cs224n_fixture_introspection").BUGS
# fixture: (the tests it fails, words the failing graded test's message contains)
EXPECTED = {"basis_gradient_forged": ({"2.6", "4.7"}, "leaves the logits unchanged")}


@pytest.fixture(scope="module")
def pool(assignment_pools):
    return assignment_pools(ASSIGNMENT)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_forged_gradient_loses_its_test(pool, name, tmp_path, monkeypatch):
    collect = runner.collect_tests
    monkeypatch.setattr(runner, "collect_tests", lambda assignment, **kw: [   # the Perceiver's sections only
        c for c in collect(assignment, **kw)
        if attribute(getattr(c, c._testMethodName), "__number__").startswith(PERCEIVER)])
    names = {f.name for f in load_assignment(ASSIGNMENT).files}
    submission = edited_submission(tmp_path / "submission", REFERENCE, HOSTILE[name],
                                   files=[p for p in REFERENCE.iterdir() if p.name in names])
    result = grade_valid(ASSIGNMENT, submission, pool, SEED)
    failing, words = EXPECTED[name]
    assert {t.number for t in result.tests if t.status != "passed"} == failing, explain(result)
    assert all(t.score == (0 if t.number in failing else t.max_score) for t in result.tests), explain(result)
    assert words in next(t.output for t in result.tests if t.number == "2.6"), explain(result)
