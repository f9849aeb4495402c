"""cs224n_pretraining, student-controlled introspection (issue 11, item 7): a Perceiver whose
DownProjectBlock ignores C but writes C's gradient itself loses "the loss back-propagates to
down_block.C" (2.6), which now also checks that the logits move when C does; nothing else is
lost but the instructor's 0-point provenance check (4.7). The reference and the bug table stay
as tests/test_cs224n_pretraining.py holds them."""
import pytest

from autograder.suite.decorators import attribute
from autograder.engine import runner
from autograder.engine.registry import import_file
from conftest import FIXTURES
import test_cs224n_pretraining as table

HOSTILE = import_file(FIXTURES / table.ASSIGNMENT / "introspection.py", "_cs224n_fixture_introspection").BUGS
# fixture: (the tests it fails, words the failing graded test's message contains)
EXPECTED = {"basis_gradient_forged": ({"2.6", "4.7"}, "leaves the logits unchanged")}


@pytest.fixture(scope="module")
def pool():
    with table.assignment_pool(table.ASSIGNMENT) as started:
        yield started


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_forged_gradient_loses_its_test(pool, name, tmp_path, monkeypatch):
    collect = runner.collect_tests
    monkeypatch.setattr(runner, "collect_tests", lambda assignment, **kw: [   # the Perceiver's sections only
        c for c in collect(assignment, **kw)
        if attribute(getattr(c, c._testMethodName), "__number__").startswith(table.SECTIONS["model.py"])])
    monkeypatch.setattr(table, "BUGS", HOSTILE)
    result = table._grade(pool, table._submission(tmp_path, name))
    failing, words = EXPECTED[name]
    assert {t.number for t in result.tests if t.status != "passed"} == failing, table._explain(result)
    assert all(t.score == (0 if t.number in failing else t.max_score) for t in result.tests), table._explain(result)
    assert words in next(t.output for t in result.tests if t.number == "2.6"), table._explain(result)
