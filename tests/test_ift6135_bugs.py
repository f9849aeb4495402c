"""The IFT6135 suite catches every real bug, and only where it should.

Each folder of tests/fixtures/ift6135_vit_lstm/bugs/ holds one buggy file. The submission
graded here is the reference with that one file replaced, so every test outside the
expected set must pass with full points, and the expected set must fail. The table is for
grading on the CPU; the LSTM loss is graded on CPU tensors everywhere, so the table holds on a GPU too.

Also: the reference scores 37/37 and the starter template 0, with every test reported.
"""
import os
import shutil
from pathlib import Path

import pytest

from conftest import assignment_pool, grade_valid

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "ift6135_vit_lstm"
REFERENCE = ROOT / "reference" / ASSIGNMENT
TEMPLATE = ROOT / "student_template" / ASSIGNMENT
BUGS = ROOT / "tests" / "fixtures" / ASSIGNMENT / "bugs"
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
def pool():
    with assignment_pool(ASSIGNMENT) as started:
        yield started


def _bug_names():
    return sorted(p.name for p in BUGS.iterdir() if p.is_dir()) if BUGS.is_dir() else []


def _submission(tmp_path: Path, bug: str) -> Path:
    sub = tmp_path / "submission"
    sub.mkdir()
    for f in REFERENCE.glob("*.py"):
        shutil.copy(f, sub / f.name)
    for f in (BUGS / bug).iterdir():
        shutil.copy(f, sub / f.name)
    return sub


def _explain(result) -> str:
    return "\n".join(f"  {t.number} {t.status} {t.score}/{t.max_score}: {t.output[:300]!r}"
                     for t in result.tests)


def test_every_bug_has_an_expectation():
    assert set(_bug_names()) == set(EXPECTED_FAILURES)


def test_reference_gets_full_marks(pool):
    result = grade_valid(ASSIGNMENT, REFERENCE, pool, SEED)
    assert result.score == TOTAL, _explain(result)
    assert sum(t.max_score for t in result.tests) == TOTAL
    assert all(t.status == "passed" and t.score == t.max_score for t in result.tests), _explain(result)
    numbers = [t.number for t in result.tests]
    assert all(numbers) and len(set(numbers)) == len(numbers)


def test_template_gets_zero_cleanly(pool):
    result = grade_valid(ASSIGNMENT, TEMPLATE, pool, SEED)
    assert result.score == 0, _explain(result)
    assert sum(t.max_score for t in result.tests) == TOTAL
    for t in result.tests:
        assert t.status == "failed" and t.score == 0, _explain(result)
        assert t.output.strip(), f"{t.number} failed without a message"
        assert "grader error" not in t.output.lower(), _explain(result)
        assert "could not finish because of an unexpected condition" not in t.output, _explain(result)


@pytest.mark.parametrize("bug", sorted(EXPECTED_FAILURES))
def test_bug_fails_exactly_the_expected_tests(bug, pool, tmp_path):
    result = grade_valid(ASSIGNMENT, _submission(tmp_path, bug), pool, SEED)
    failed = {t.number for t in result.tests if t.status != "passed"}
    assert failed == EXPECTED_FAILURES[bug], _explain(result)
    for t in result.tests:
        if t.number in failed:
            assert t.score == 0, _explain(result)
            assert "could not finish because of an unexpected condition" not in t.output, _explain(result)
        else:
            assert t.score == t.max_score, _explain(result)
    lost = sum(t.max_score for t in result.tests if t.number in EXPECTED_FAILURES[bug])
    assert result.score == pytest.approx(TOTAL - lost)
