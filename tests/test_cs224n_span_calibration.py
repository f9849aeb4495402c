"""The span-corruption checks are calibrated: the reference and the real variants of correct
work pass them under many seeds, and every span-corruption bug of the spec fails exactly the
test of its own property, whatever the seed.

Runs the suite's own cases (test_suites/cs224n_pretraining/test_span_corruption.py, CASES)
in-process on the trusted reference and on variants of it, each with one step replaced.
"""
import contextlib
import io
import random

import numpy as np
import pytest
import torch

from autograder.engine.registry import import_file, reference_module
from support import ROOT

SUITE = ROOT / "test_suites" / "cs224n_pretraining"
suite = import_file(SUITE / "test_span_corruption.py", "_autograder_suites.cs224n_pretraining.test_span_corruption")
span = suite.span
Reference = reference_module("cs224n_pretraining", "dataset").CharCorruptionDataset
MASK, PAD = span.MASK, span.PAD
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),   # randint with a float bound
              pytest.mark.slow]                                          # thousands of draws per case


def drawer(cls):
    def draw(plan, block_size, seed):
        with contextlib.redirect_stdout(io.StringIO()):
            ds = cls("\n".join(doc for doc, _ in plan), block_size)
        random.seed(seed)
        torch.manual_seed(seed)
        np.random.seed(seed)
        drawn = [(doc, [ds[i] for _ in range(n)]) for i, (doc, n) in enumerate(plan)]
        return drawn, dict(ds.stoi), "\n".join(doc for doc, _ in plan)
    return draw


def grade(cls, seed_offset: int) -> tuple[set[str], list[str]]:
    """(the span tests failed, what was reported without cost), with the suite's cases."""
    failed, noticed = set(), []
    for number, case in suite.CASES.items():
        try:
            reports = suite.evaluate_case(drawer(cls), case, 1000 * seed_offset)
        except Exception:   # noqa: BLE001 - a crash fails the test
            failed.add(number)
            continue
        if any(r.problems((case.aspect,)) for r in reports):
            failed.add(number)
        noticed += [n for r in reports for n in r.notices()]
    return failed, noticed


def variant(truncate=None, mask_length=None, arrange=None, x_length=-1):
    """A reference-like dataset with one step replaced; ``x_length`` is len(x) - block_size."""
    class Variant(Reference):
        def __getitem__(self, idx):
            doc = self.data[idx]
            top = int(self.block_size * 7 / 8)
            doc = truncate(doc, top, self.block_size) if truncate else doc[:random.randint(4, top)]
            n = mask_length(len(doc)) if mask_length else random.randint(0, len(doc) // 2)
            start = random.randint(0, len(doc) - n)
            prefix, masked, suffix = doc[:start], doc[start:start + n], doc[start + n:]
            text = arrange(prefix, masked, suffix) if arrange else prefix + MASK + suffix + MASK + masked
            text += PAD * (self.block_size + 1 + x_length - len(text))
            return (torch.tensor([self.stoi[c] for c in text[:-1]], dtype=torch.long),
                    torch.tensor([self.stoi[c] for c in text[1:]], dtype=torch.long))
    return Variant


def _window(doc, top, _):
    n = random.randint(4, top)
    start = random.randint(0, max(0, len(doc) - n))
    return doc[start:start + n]


def _short_crash(doc, top, _):
    if len(doc) < 4:
        raise ValueError("document too short")
    return doc[:random.randint(4, top)]


def _quarter_with_noise(n):
    """int(L/4) plus a small integer noise, none on short documents (never above a quarter there)."""
    return max(0, int(n / 4) + (random.randint(-1, 1) if n >= 8 else 0))


def _uniform_to_half(n):
    """Uniform in [1, 2L/4]."""
    return random.randint(1, 2 * n // 4) if 2 * n // 4 >= 1 else 0


def _normal_around_quarter(n):
    return min(n, max(0, round(random.gauss(n / 4, n / 8))))


def _torch_draws(doc, top, _):
    return doc[:int(torch.randint(4, top + 1, (1,)))]


# correct work as real students wrote it: every test passes, under every seed
ACCEPTED = {
    "reference": Reference,
    "a trailing MASK after the masked content": variant(arrange=lambda p, m, s: p + MASK + s + MASK + m + MASK),
    "x and y of length block_size": variant(x_length=0),
    "trailing MASK, length block_size": variant(arrange=lambda p, m, s: p + MASK + s + MASK + m + MASK, x_length=0),
    "masked length int(L/4) plus small noise": variant(mask_length=_quarter_with_noise),
    "masked length uniform in [1, 2L/4]": variant(mask_length=_uniform_to_half),
    "masked length normal around L/4": variant(mask_length=_normal_around_quarter),
    "truncation drawn with torch": variant(truncate=_torch_draws, mask_length=_normal_around_quarter),
}

# each real bug fails exactly the test of its property
BUGS = {
    # truncation
    "not a prefix": (variant(truncate=_window), {"1.3"}),
    "length 3 possible": (variant(truncate=lambda d, top, _: d[:random.randint(3, top)]), {"1.3"}),
    "top + 1 possible": (variant(truncate=lambda d, top, _: d[:random.randint(4, top + 1)]), {"1.3"}),
    "float bound to randint": (variant(truncate=lambda d, top, b: d[:random.randint(4, b * 7 / 8)]), {"1.3"}),
    "fixed length": (variant(truncate=lambda d, top, _: d[:top]), {"1.3"}),
    "crash on short documents": (variant(truncate=_short_crash), {"1.5"}),
    # masked length
    "mask averages a half": (variant(mask_length=lambda n: random.randint(0, n)), {"1.4"}),
    "mask averages an eighth": (variant(mask_length=lambda n: random.randint(0, n // 4)), {"1.4"}),
    "mask length not random": (variant(mask_length=lambda n: n // 4), {"1.4"}),
    "crash on the empty document": (variant(mask_length=lambda n: random.randint(1, max(1, n // 2))
                                            if n else random.randint(1, 0)), {"1.5"}),
    # layout
    "character lost after the mask": (variant(arrange=lambda p, m, s: p + MASK + s[1:] + MASK + m), {"1.2"}),
    "character repeated": (variant(arrange=lambda p, m, s: p + MASK + (p[-1:] + s) + MASK + m), {"1.2"}),
    "prefix, masked, suffix order": (variant(arrange=lambda p, m, s: p + MASK + m + MASK + s), {"1.2"}),
    "padding not at the end": (variant(arrange=lambda p, m, s: PAD + p + MASK + s + MASK + m), {"1.2"}),
}

# what only the project checks: reported, never counted
NOTICED = {
    "top length impossible": (variant(truncate=lambda d, top, _: d[:random.randint(4, top - 1)]), "to be possible"),
    "only the two ends": (variant(truncate=lambda d, top, _: d[:random.choice((4, top))]), "took only"),
}


@pytest.mark.parametrize("offset", range(6))
def test_reference_passes_under_many_seeds(offset):
    assert grade(Reference, offset) == (set(), [])


@pytest.mark.parametrize("offset, name", list(enumerate(sorted(set(ACCEPTED) - {"reference"}), start=7)))
def test_real_variants_of_correct_work_pass(offset, name):
    failed, _ = grade(ACCEPTED[name], offset)
    assert failed == set(), name


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_each_bug_fails_exactly_its_own_test(bug):
    cls, expected = BUGS[bug]
    assert grade(cls, 3)[0] == expected, bug


@pytest.mark.parametrize("name", sorted(NOTICED))
def test_project_only_findings_are_reported_without_cost(name):
    cls, words = NOTICED[name]
    failed, noticed = grade(cls, 2)
    assert failed == set(), name
    assert any(words in n for n in noticed), noticed
