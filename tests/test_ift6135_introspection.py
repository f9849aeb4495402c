"""Student-controlled introspection (issue 11, item 7): where a check uses the student's own
parts (the pre-norm block and ViT forward recomputed with the student's sub-modules, the
student's own apply_attention / get_attention_weights accepted in 2.4 and 2.5.3, forward's
own softmax in 2.5.3), a part that recognises the grader's call and matches it loses the
composite's points, with a message saying why; nothing else is lost.

The fixtures (tests/fixtures/ift6135_vit_lstm/introspection.py) are edits of the reference.
Real bugs and accepted variants keep their points: tests/test_ift6135_bugs.py and
tests/test_ift6135_vit_lstm_real_work.py hold those tables, unchanged.
"""
import os

import pytest

from autograder.engine.registry import import_file
from support import FIXTURES, ROOT, assert_parts, edited_submission, grade_valid

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ASSIGNMENT = "ift6135_vit_lstm"
REFERENCE = ROOT / "reference" / ASSIGNMENT
SEED = int(os.environ.get("IFT6135_BUGS_SEED", "2022"))
CORPUS = import_file(FIXTURES / ASSIGNMENT / "introspection.py", "_ift6135_fixture_introspection").CORPUS

# fixture: ({part: points earned where below full}, words every failing test's message contains)
EXPECTED = {
    "block_forges_recomputation": ({"2.7": 0}, ("layer_norm_1",)),
    "layernorm_memo_inside_block": ({"2.7": 0}, ("other inputs", "LayerNorm")),
    "vit_forges_recomputation": ({"2.8": 0}, ("CLS token",)),
    "mha_apply_attention_differs_inside_forward": ({"2.5": 2}, ("called directly", "apply_attention")),
    "apply_attention_forges_own_weights": ({"2.4": 0}, ("before",)),
    "mha_inline_uniform_attention": ({"2.5": 2}, ("uniform",)),
    "mha_reports_degenerate_weights": ({"2.5": 2}, ("not multi-head attention",)),
    "mha_inline_attention_ignores_parameters": ({"2.5": 2}, ("own parameters",)),
}


@pytest.fixture(scope="module")
def pool(assignment_pools):
    return assignment_pools(ASSIGNMENT)


def test_every_fixture_has_an_expectation():
    assert set(CORPUS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_part_loses_the_composite(name, pool, tmp_path):
    submission = edited_submission(tmp_path / name, REFERENCE, CORPUS[name])
    assert_parts(grade_valid(ASSIGNMENT, submission, pool, SEED), *EXPECTED[name])
