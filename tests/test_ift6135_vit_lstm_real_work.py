"""Real-work corpus of ift6135_vit_lstm: accepted variants earn full marks, real bugs lose the
points of their own part only, with a message naming the bug.

The fixtures (tests/fixtures/ift6135_vit_lstm/real_work.py) are edits of the reference: the
other projection layouts of MultiHeadedAttention, both readings of
get_patches(flatten_channels=False), unfold-based patches, debugging prints, and real bugs.
Graded on the CPU; the hidden tests' inputs depend on the seed, and the table holds for any.
"""
import os
import shutil
from pathlib import Path

import pytest

from autograder.engine.registry import import_file
from conftest import FIXTURES, ROOT, assignment_pool, grade_valid

ASSIGNMENT = "ift6135_vit_lstm"
REFERENCE = ROOT / "reference" / ASSIGNMENT
SEED = int(os.environ.get("IFT6135_BUGS_SEED", "2022"))
CORPUS = import_file(FIXTURES / ASSIGNMENT / "real_work.py", "_ift6135_fixture_real_work").CORPUS

# Points of each part (the course's): LSTM forward and loss; LayerNorm, split/merge heads,
# attention weights, apply_attention, MHA forward, get_patches, pre-norm block, ViT forward, ViT loss.
PARTS = {"1.1": 5, "1.2": 4, "2.1": 5, "2.2": 4, "2.3": 8, "2.4": 2, "2.5": 3, "2.6": 2, "2.7": 1,
         "2.8": 2, "2.9": 1}

# fixture: ({part: points earned where below full}, words every failing test's message contains)
EXPECTED = {
    "mha_four_linears_inline": ({}, ()),
    "mha_fused_chunked": ({}, ()),
    "mha_fused_heads_first": ({}, ()),              # lost 2.5.3 before issue 10
    "mha_fused_heads_first_inline": ({}, ()),       # lost 2.5.3 before issue 10
    "mha_raw_parameters": ({}, ()),
    "mha_inline_raw_parameters": ({}, ()),
    "patches_grid_as_vectors": ({}, ()),            # lost all of 2.6 before issue 10
    "patches_functional_unfold": ({}, ()),
    "patches_tensor_unfold": ({}, ()),              # lost all of 2.6 before issue 10
    "debug_prints": ({}, ()),
    "bug_patches_3_channels_unfold": ({"2.6": 1}, ("assuming 3",)),
    "bug_mha_view_scrambles_positions": ({"2.5": 1}, ("permut", "positions")),
    "bug_mha_adds_residual": ({"2.5": 2}, ("no residual",)),
    "bug_mha_inline_raw_adds_residual": ({"2.5": 2}, ("could not be read", "no known layout", "softmax")),
    "bug_vit_loss_hardcoded_cuda": ({"2.9": 0}, ("cuda",)),
}


@pytest.fixture(scope="module")
def pool():
    with assignment_pool(ASSIGNMENT) as started:
        yield started


def _submission(tmp_path: Path, name: str, corpus: dict = CORPUS) -> Path:
    """The reference with the fixture's edits applied."""
    sub = tmp_path / name
    sub.mkdir()
    for f in REFERENCE.glob("*.py"):
        shutil.copy(f, sub / f.name)
    for filename, replacements in corpus[name].items():
        text = (sub / filename).read_text()
        for old, new in replacements:
            assert text.count(old) == 1, f"{name}: the edit does not apply once to {filename}: {old[:80]!r}"
            text = text.replace(old, new)
        (sub / filename).write_text(text)
    return sub


def test_every_fixture_has_an_expectation():
    assert set(CORPUS) == set(EXPECTED)
    assert len(CORPUS) >= 8
    assert sum(PARTS.values()) == 37


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_scores_its_parts(name, pool, tmp_path):
    assert_parts(grade_valid(ASSIGNMENT, _submission(tmp_path, name), pool, SEED), *EXPECTED[name])


def assert_parts(result, partial: dict, words: tuple) -> None:
    """Every part earns its points but those of ``partial``; each failing test scores 0 and its
    message holds every one of ``words``."""
    earned = {part: sum(t.score for t in result.tests if t.number.rsplit(".", 1)[0] == part) for part in PARTS}
    report = "\n".join(f"  {t.number} {t.score}/{t.max_score}: {t.output[:400]!r}"
                       for t in result.tests if t.score != t.max_score)
    assert earned == {**PARTS, **partial}, report
    for t in result.tests:
        if t.score != t.max_score:
            assert t.score == 0, report
            missing = [w for w in words if w.lower() not in t.output.lower()]
            assert not missing, f"{t.number} does not name the bug ({missing}):\n{report}"
