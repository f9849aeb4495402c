"""uw_attention on a corpus shaped like real course work: the points each part must get.

Each folder of tests/fixtures/uw_attention/real_work/ is one student's upload as it came
from Colab ("Download .py" with shell lines and magics verbatim, ``# %%`` exports, .ipynb of
nbformat 4 and 3), with the real given cells: A2S1's seeded setup cell (normalised and
rounded in place, so it must run for ``key``/``value`` to be the handout's K and V), A2S3's
``from tqdm.notebook import tqdm`` and tqdm-wrapped loops. Correct work earns every point of
its file; each real bug loses the points of its own part, with a message naming it. A
folder holds one file, so the other files' tests fail as missing (0 points, not listed).
"""
import os
from pathlib import Path

import pytest

from support import grade_valid

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "uw_attention"
CORPUS = ROOT / "tests" / "fixtures" / ASSIGNMENT / "real_work"
SEED = int(os.environ.get("UW_ATTENTION_SEED", "447"))

A2S1 = {"1.2.1": 2, "1.2.2": 2, "1.3.1": 2, "1.3.2": 2, "1.4.1": 1, "1.4.2": 1}
A2S2 = {"2.1.1": 1, "2.1.2": 1, "2.1.3": 1, "2.1.4": 1, "2.1.5": 1, "2.1.6": 2, "2.1.7": 1, "2.1.8": 1,
        "2.1.9": 1, "2.1.10": 1, "2.1.11": 1, "2.1.12": 1, "2.1.13": 2, "2.1.14": 2, "2.1.15": 2, "2.1.16": 1}
A2S3 = {"3.1": 1, "3.2": 1, "3.3": 1, "3.4": 1, "3.5": 1, "3.6": 2, "3.7": 1, "3.8": 1, "3.9": 1}

# fixture: (points per part of its file, {part: words its failure message must contain})
EXPECTED = {
    # A2S1, right answers built every way real exports build them
    "a2s1_colab_lstsq": (A2S1, {}),                  # zeros + item assignment, lstsq [0].T, 1e6 * key, row-2 normalisation
    "a2s1_percent_inplace": (A2S1, {}),              # `# %%` export; .solution.T; 1.4.1 and 1.4.2 edit one m_key in place
    "a2s1_colab_timed_cells": (A2S1, {}),            # %%time cells, `info = !nvidia-smi` in a function, typed-in numbers
    "a2s1_ipynb_v4": (A2S1, {}),                     # .ipynb (nbformat 4) with outputs and a %%time cell
    "a2s1_ipynb_v3": (A2S1, {}),                     # .ipynb (nbformat 3: worksheets, input, heading cells)
    # A2S1, real bugs
    "a2s1_bug_lstsq_all_keys_142": ({**A2S1, "1.4.2": 0}, {"1.4.2": ["only k2", "[0, 1, 3]"]}),
    "a2s1_bug_unscaled_identity": ({**A2S1, "1.2.2": 0}, {"1.2.2": ["query122", "max abs error"]}),
    # A2S2: DEVICE = 'cuda' in a later cell, §2.2 redefines self_attention, %%time training cell
    "a2s2_colab_cuda_redefined": (A2S2, {}),
    # A2S3
    "a2s3_colab_tqdm_notebook": (A2S3, {}),          # the given tqdm.notebook, datasets and hub downloads, main()
    "a2s3_ipynb_auto_display": (A2S3, {}),           # tqdm.auto, IPython.display in the loop, `x = !cmd`, (acc, loss)
    "a2s3_py_plain_tqdm_no_zero_grad": ({**A2S3, "3.6": 0, "3.7": 0}, {"3.6": ["zero_grad"]}),
}


@pytest.fixture(scope="module")
def pool(assignment_pools):
    return assignment_pools(ASSIGNMENT)


def _explain(result) -> str:
    return "\n".join(f"  {t.number} {t.status} {t.score}/{t.max_score}: {t.output[:400]!r}"
                     for t in result.tests)


def test_every_corpus_folder_has_an_expectation():
    assert {p.name for p in CORPUS.iterdir() if p.is_dir()} == set(EXPECTED)
    assert len(EXPECTED) >= 8


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_corpus_fixture_gets_the_expected_points_per_part(pool, fixture):
    points, messages = EXPECTED[fixture]
    result = grade_valid(ASSIGNMENT, CORPUS / fixture, pool, SEED)
    got = {t.number: t.score for t in result.tests if t.number in points}
    assert got == points, _explain(result)
    for t in result.tests:
        assert "grader error" not in t.output.lower(), _explain(result)
        assert "could not finish because of an unexpected condition" not in t.output, _explain(result)
        assert "IProgress" not in t.output, _explain(result)     # tqdm.notebook without Jupyter widgets
        if t.number not in points:
            assert t.score == 0 and "not found in your submission" in t.output, _explain(result)
    outputs = {t.number: t.output for t in result.tests}
    for part, words in messages.items():
        for word in words:
            assert word in outputs[part], (part, word, outputs[part])
