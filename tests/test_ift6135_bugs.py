"""The IFT6135 suite catches every real bug, and only where it should.

tests/fixtures/ift6135_vit_lstm/bugs.py gives each bug as edits of the reference. The
submission graded here is the reference with those edits made, so every test outside the
expected set must pass with full points, and the expected set must fail. The table is for
grading on the CPU; the LSTM loss is graded on CPU tensors everywhere, so the table holds on a GPU too.

Also: the reference scores 37/37 and the starter template 0, with every test reported.
"""
import os
from pathlib import Path

import pytest

from autograder.engine.registry import import_file
from support import FIXTURES, ROOT, edited_submission, explain, grade_valid

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ASSIGNMENT = "ift6135_vit_lstm"
REFERENCE = ROOT / "reference" / ASSIGNMENT
TEMPLATE = ROOT / "student_template" / ASSIGNMENT
BUGS = import_file(FIXTURES / ASSIGNMENT / "bugs.py", "_ift6135_fixture_bugs").BUGS
TOTAL = 37.0
# Hidden tests draw their inputs from the run's seed; the table holds for any seed.
SEED = int(os.environ.get("IFT6135_BUGS_SEED", "2022"))

ALL_ATTENTION = {"2.2.1", "2.2.2", "2.2.3", "2.2.4", "2.3.1", "2.3.2", "2.3.3", "2.3.4",
                 "2.4.1", "2.4.2", "2.5.1", "2.5.2", "2.5.3"}
ALL_LAYERNORM = {"2.1.1", "2.1.2", "2.1.3", "2.1.4", "2.1.5"}

EXPECTED_FAILURES = {
    # LayerNorm
    "layernorm_unbiased_var": {"2.1.2", "2.1.3", "2.1.4", "2.1.5"},
    "layernorm_no_eps": {"2.1.3", "2.1.4"},
    "layernorm_uses_builtin": ALL_LAYERNORM,                  # the ban (static scan)
    "layernorm_uses_nn_layernorm_alias": ALL_LAYERNORM,       # the ban, through an alias
    # split_heads / merge_heads
    "split_wrong_layout": {"2.2.1", "2.2.3", "2.2.4"},
    "split_merge_only_head_size": {"2.2.1", "2.2.2", "2.2.4"},
    "split_merge_only_sequence_length": {"2.2.3", "2.2.4"},
    # merge_heads' .view crashes on every fresh tensor, so everything that merges crashes
    "merge_view_fails_contiguous": {"2.2.2", "2.2.4", "2.4.1", "2.4.2", "2.5.2", "2.5.3",
                                    "2.7.1", "2.7.2", "2.8.1", "2.8.2"},
    # attention weights (apply_attention and forward are graded against the student's own weights)
    "attention_no_scale": {"2.3.2", "2.3.3", "2.3.4"},
    "attention_softmax_wrong_axis": {"2.3.1", "2.3.2", "2.3.3", "2.3.4"},
    # forward
    "mha_scrambles_positions": {"2.5.2", "2.5.3"},
    "mha_wrong_param_count": {"2.5.1"},
    "mha_uses_builtin": ALL_ATTENTION,                        # the ban (static scan)
    # ViT
    "patches_wrong_order": {"2.6.1", "2.6.2", "2.6.3"},
    "patches_hardcoded_3_channels": {"2.6.2", "2.6.3"},
    "prenorm_is_postnorm": {"2.7.1", "2.7.2"},
    "vit_forward_softmax": {"2.8.1", "2.8.2"},
    "vit_forward_mean_pool": {"2.8.1", "2.8.2"},
    "vit_loss_sum": {"2.9.1", "2.9.2"},
    # LSTM
    "lstm_forward_logits": {"1.1.2", "1.1.3"},
    "lstm_loss_token_level": {"1.2.2", "1.2.3"},
    "lstm_loss_no_grad": {"1.2.4"},
    "lstm_loss_inplace_targets": {"1.2.5"},
    "lstm_loss_hardcoded_cuda": {"1.2.1", "1.2.2", "1.2.3", "1.2.4", "1.2.5"},
}


@pytest.fixture(scope="module")
def pool(assignment_pools):
    return assignment_pools(ASSIGNMENT)


def _submission(tmp_path: Path, bug: str) -> Path:
    return edited_submission(tmp_path / "submission", REFERENCE, BUGS[bug])


def test_every_bug_has_an_expectation():
    assert set(BUGS) == set(EXPECTED_FAILURES)


def test_reference_gets_full_marks(pool):
    result = grade_valid(ASSIGNMENT, REFERENCE, pool, SEED)
    assert result.score == TOTAL, explain(result)
    assert sum(t.max_score for t in result.tests) == TOTAL
    assert all(t.status == "passed" and t.score == t.max_score for t in result.tests), explain(result)
    numbers = [t.number for t in result.tests]
    assert all(numbers) and len(set(numbers)) == len(numbers)


def test_template_gets_zero_cleanly(pool):
    result = grade_valid(ASSIGNMENT, TEMPLATE, pool, SEED)
    assert result.score == 0, explain(result)
    assert sum(t.max_score for t in result.tests) == TOTAL
    for t in result.tests:
        assert t.status == "failed" and t.score == 0, explain(result)
        assert t.output.strip(), f"{t.number} failed without a message"
        assert "grader error" not in t.output.lower(), explain(result)
        assert "could not finish because of an unexpected condition" not in t.output, explain(result)


@pytest.mark.parametrize("bug", sorted(EXPECTED_FAILURES))
def test_bug_fails_exactly_the_expected_tests(bug, pool, tmp_path):
    result = grade_valid(ASSIGNMENT, _submission(tmp_path, bug), pool, SEED)
    failed = {t.number for t in result.tests if t.status != "passed"}
    assert failed == EXPECTED_FAILURES[bug], explain(result)
    for t in result.tests:
        if t.number in failed:
            assert t.score == 0, explain(result)
            assert "could not finish because of an unexpected condition" not in t.output, explain(result)
        else:
            assert t.score == t.max_score, explain(result)
    lost = sum(t.max_score for t in result.tests if t.number in EXPECTED_FAILURES[bug])
    assert result.score == pytest.approx(TOTAL - lost)
