"""Real-work corpus of ift6135_vit_lstm: accepted variants earn full marks, real bugs lose the
points of their own part only, with a message naming the bug.

The fixtures (tests/fixtures/ift6135_vit_lstm/real_work.py) are edits of the reference: the
other projection layouts of MultiHeadedAttention, both readings of
get_patches(flatten_channels=False), unfold-based patches, debugging prints, and real bugs.
Graded on the CPU; the hidden tests' inputs depend on the seed, and the table holds for any.
"""
import os
from pathlib import Path

import pytest

from autograder.engine.registry import import_file
from support import FIXTURES, IFT6135_PARTS as PARTS, ROOT, assert_parts, edited_submission, grade_valid

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ASSIGNMENT = "ift6135_vit_lstm"
REFERENCE = ROOT / "reference" / ASSIGNMENT
SEED = int(os.environ.get("IFT6135_BUGS_SEED", "2022"))
CORPUS = import_file(FIXTURES / ASSIGNMENT / "real_work.py", "_ift6135_fixture_real_work").CORPUS

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
def pool(assignment_pools):
    return assignment_pools(ASSIGNMENT)


def _submission(tmp_path: Path, name: str) -> Path:
    """The reference with the fixture's edits applied."""
    return edited_submission(tmp_path / name, REFERENCE, CORPUS[name])


def test_every_fixture_has_an_expectation():
    assert set(CORPUS) == set(EXPECTED)
    assert len(CORPUS) >= 8
    assert sum(PARTS.values()) == 37


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_scores_its_parts(name, pool, tmp_path):
    assert_parts(grade_valid(ASSIGNMENT, _submission(tmp_path, name), pool, SEED), *EXPECTED[name])
