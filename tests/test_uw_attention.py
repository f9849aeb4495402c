"""The uw_attention suite (A2S1, A2S2, A2S3) on the reference, the starter and real export hazards.

Each folder of tests/fixtures/uw_attention/ holds files shaped like real Colab exports;
the submission graded is the reference with those files replaced, so every test outside
the expected set must get full points and the expected set must score 0. The table is for
grading on the CPU (a mask left on the CPU only fails on a GPU).
"""
from functools import partial
import os
import shutil
from pathlib import Path

import pytest

from autograder.engine.runner import grade
from autograder.worker.worker import Worker
from support import grade_valid

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "uw_attention"
REFERENCE = ROOT / "reference" / ASSIGNMENT
TEMPLATE = ROOT / "student_template" / ASSIGNMENT
FIXTURES = ROOT / "tests" / "fixtures" / ASSIGNMENT
TOTAL = 40.0          # 38 regular points + 2 extra credit (1.4.1, 1.4.2)
# Hidden tests draw their inputs from the run's seed; the table holds for any seed.
SEED = int(os.environ.get("UW_ATTENTION_SEED", "447"))

A2S1 = {"1.2.1", "1.2.2", "1.3.1", "1.3.2", "1.4.1", "1.4.2"}
A2S2 = {f"2.1.{i}" for i in range(1, 17)}
A2S3 = {f"3.{i}" for i in range(1, 10)}
CAUSAL_SELF_ATTENTION = {"2.1.12", "2.1.13", "2.1.14", "2.1.15", "2.1.16"}

EXPECTED_FAILURES = {
    # export hazards: all full marks
    "exports_shell_and_training": set(),      # !shell, %magics, main(), endless loops, plt.show()
    "broken_cell": set(),                     # `x = [` in A2S2 and `assert x,` in A2S1 after the graded cells
    "redefined_self_attention_wrong": set(),  # §2.2 redefines self_attention (and attn_softmax) wrongly
    "sdpa_in_experiment": set(),              # §2.2 redefinition uses F.scaled_dot_product_attention: not graded
    "device_cuda_at_end": set(),              # DEVICE = 'cuda' at the end, on a CPU machine
    "mask_cpu_only": set(),                   # torch.tril(torch.ones(n, n)): fine on the CPU
    # mask encodings
    "mask_where_bool": set(),
    "mask_masked_fill_future": set(),
    "mask_additive": set(),
    "mask_multiplicative": set(),
    # A2S1 answers
    "a2s1_variants": set(),                   # 1e6·k0, (3,) shapes, q = 0, solve(), m_key edited in place
    "a2s1_lstsq_keys": {"1.4.1"},             # 1.4.1 rebuilds every key
    # wrong file, bugs, ban
    "a2s2_is_a2s1": A2S2,
    "mask_zero_after_softmax": {"2.1.6", "2.1.7"} | CAUSAL_SELF_ATTENTION,
    "no_scale": {"2.1.2", "2.1.5", "2.1.11"} | CAUSAL_SELF_ATTENTION,
    "uses_sdpa": A2S2,
    # A2S3
    "a2s3_tuple_returns": set(),              # train/evaluate return (acc, loss); numpy accuracy
    "a2s3_main_at_top_level": set(),          # main() and a training loop at top level, !pip, %magic, global tokenizer
    "a2s3_no_zero_grad": {"3.6", "3.7"},      # gradients accumulate across batches
    "a2s3_eval_in_train_mode": {"3.8", "3.9"},  # evaluate forgets model.eval()
    "a2s3_no_truncation": {"3.3"},            # collate_fn without truncation=True
}


def _explain(result) -> str:
    return "\n".join(f"  {t.number} {t.status} {t.score}/{t.max_score}: {t.output[:300]!r}"
                     for t in result.tests)


@pytest.fixture(scope="module")
def pool(assignment_pools):
    return assignment_pools(ASSIGNMENT)   # A2S3 uses transformers


def _grade(pool, submission: Path):
    return grade_valid(ASSIGNMENT, submission, pool, SEED)


def _submission(tmp_path: Path, fixture: str) -> Path:
    sub = tmp_path / "submission"
    sub.mkdir(parents=True)
    for f in REFERENCE.glob("*.py"):
        shutil.copy(f, sub / f.name)
    for f in (FIXTURES / fixture).iterdir():
        shutil.copy(f, sub / f.name)
    return sub


def _outputs(result) -> dict:
    return {t.number: t.output for t in result.tests}


def test_every_fixture_has_an_expectation():
    # real_work/ is the corpus of whole uploads (tests/test_uw_attention_real_work.py)
    assert {p.name for p in FIXTURES.iterdir() if p.is_dir() and p.name != "real_work"} == set(EXPECTED_FAILURES)


def test_reference_gets_full_marks(pool):
    result = _grade(pool, REFERENCE)
    assert result.score == TOTAL, _explain(result)
    assert sum(t.max_score for t in result.tests) == TOTAL
    assert all(t.status == "passed" and t.score == t.max_score for t in result.tests), _explain(result)
    numbers = [t.number for t in result.tests]
    assert set(numbers) == A2S1 | A2S2 | A2S3 and len(set(numbers)) == len(numbers)
    # The graded self_attention is the first one; the §2.2 redefinition is reported, not graded.
    assert "defined again" in _outputs(result)["2.1.11"], _explain(result)


def test_in_process_floor_gives_the_reference_full_marks_too():
    """The benchmark's floor computes like a worker (one thread), so A2S3's exact epoch matches."""
    result = grade(ASSIGNMENT, REFERENCE, device="cpu", seed=SEED, in_process=partial(Worker, guard_bans=False))
    assert result.score == TOTAL, _explain(result)


@pytest.mark.parametrize("folder", ["py", "ipynb"])
def test_template_gets_zero_cleanly(pool, tmp_path, folder):
    sub = tmp_path / "upload"
    sub.mkdir()
    for f in TEMPLATE.glob(f"A2S*.{folder}"):
        shutil.copy(f, sub / f.name)
    result = _grade(pool, sub)
    assert result.score == 0, _explain(result)
    assert sum(t.max_score for t in result.tests) == TOTAL
    assert {t.number for t in result.tests} == A2S1 | A2S2 | A2S3
    for t in result.tests:
        assert t.status == "failed" and t.score == 0, _explain(result)
        assert t.output.strip(), f"{t.number} failed without a message"
        assert "grader error" not in t.output.lower(), _explain(result)
        assert "could not finish because of an unexpected condition" not in t.output, _explain(result)
        assert "Missing" not in t.output and "not found in your submission" not in t.output, _explain(result)


@pytest.mark.parametrize("fixture", sorted(EXPECTED_FAILURES))
def test_fixture_fails_exactly_the_expected_tests(pool, fixture, tmp_path):
    result = _grade(pool, _submission(tmp_path, fixture))
    failed = {t.number for t in result.tests if t.status != "passed"}
    assert failed == EXPECTED_FAILURES[fixture], _explain(result)
    for t in result.tests:
        assert "could not finish because of an unexpected condition" not in t.output, _explain(result)
        assert "grader error" not in t.output.lower(), _explain(result)
        assert t.score == (0 if t.number in failed else t.max_score), _explain(result)
    lost = sum(t.max_score for t in result.tests if t.number in EXPECTED_FAILURES[fixture])
    assert result.score == pytest.approx(TOTAL - lost)


def test_messages_name_what_went_wrong(pool, tmp_path):
    """Broken cell, redefinition, rebuilt keys: the outputs say so."""
    out = _outputs(_grade(pool, _submission(tmp_path / "b", "broken_cell")))
    assert "does not parse" in out["1.2.1"] and "does not parse" in out["2.1.1"], out
    out = _outputs(_grade(pool, _submission(tmp_path / "c", "redefined_self_attention_wrong")))
    assert "self_attention is defined again" in out["2.1.11"], out["2.1.11"]
    out = _outputs(_grade(pool, _submission(tmp_path / "d", "a2s1_lstsq_keys")))
    assert "only k2" in out["1.4.1"] and "[0, 1, 3]" in out["1.4.1"], out["1.4.1"]


def test_wrong_file_message_lists_what_it_defines(pool, tmp_path):
    """A2S2.py that is really A2S1: every A2S2 test names the missing function and what the file has."""
    out = _outputs(_grade(pool, _submission(tmp_path, "a2s2_is_a2s1")))
    for n in A2S2:
        assert "does not define" in out[n] and "query121" in out[n] and "is this A2S1.py?" in out[n], out[n]


def test_ban_reported_by_the_static_scan(pool, tmp_path):
    """F.scaled_dot_product_attention in self_attention fails even the tests that never call it."""
    out = _outputs(_grade(pool, _submission(tmp_path, "uses_sdpa")))
    assert "scaled_dot_product_attention" in out["2.1.1"], out["2.1.1"]


def test_a2s3_messages(pool, tmp_path):
    """The A2S3 failures say what to fix; a tuple return is noted, not penalised."""
    out = _outputs(_grade(pool, _submission(tmp_path / "a", "a2s3_no_zero_grad")))
    assert "zero_grad" in out["3.6"] and "differ from a reference epoch" in out["3.6"], out["3.6"]
    out = _outputs(_grade(pool, _submission(tmp_path / "b", "a2s3_eval_in_train_mode")))
    assert "model.eval()" in out["3.8"], out["3.8"]
    out = _outputs(_grade(pool, _submission(tmp_path / "c", "a2s3_no_truncation")))
    assert "512" in out["3.3"] and "truncation=True" in out["3.3"], out["3.3"]
    out = _outputs(_grade(pool, _submission(tmp_path / "d", "a2s3_tuple_returns")))
    assert "first number in [0, 1]" in out["3.8"], out["3.8"]
