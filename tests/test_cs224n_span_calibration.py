"""The span-corruption checks are calibrated: the reference passes them under many seeds, and
every span-corruption bug of the spec fails them, whatever the seed.

Runs the suite's own cases (test_suites/cs224n_pretraining/test_span_corruption.py, CASES)
in-process on the trusted reference and on variants of it, each with one real bug.
"""
import contextlib
import io
import random

import numpy as np
import pytest
import torch

from autograder.trusted.registry import import_file, reference_module
from conftest import ROOT

SUITE = ROOT / "test_suites" / "cs224n_pretraining"
suite = import_file(SUITE / "test_span_corruption.py", "_autograder_suites.cs224n_pretraining.test_span_corruption")
span = suite.span
Reference = reference_module("cs224n_pretraining", "dataset").CharCorruptionDataset
MASK, PAD = span.MASK, span.PAD
SEEDS = range(6)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")   # randint with a float bound


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


def failing(cls, seed_offset: int, numbers=None) -> set[str]:
    out = set()
    for number, (cases, aspects, seed) in suite.CASES.items():
        if numbers is not None and number not in numbers:
            continue
        try:
            report = span.evaluate(drawer(cls), cases, aspects, seed + 1000 * seed_offset)
        except Exception:   # noqa: BLE001 - a crash fails the test
            out.add(number)
            continue
        if report.problems(aspects):
            out.add(number)
    return out


def variant(truncate=None, mask_length=None, arrange=None):
    """A reference-like dataset with one step replaced."""
    class Variant(Reference):
        def __getitem__(self, idx):
            doc = self.data[idx]
            top = int(self.block_size * 7 / 8)
            doc = truncate(doc, top, self.block_size) if truncate else doc[:random.randint(4, top)]
            n = mask_length(len(doc)) if mask_length else random.randint(0, len(doc) // 2)
            start = random.randint(0, len(doc) - n)
            prefix, masked, suffix = doc[:start], doc[start:start + n], doc[start + n:]
            text = arrange(prefix, masked, suffix) if arrange else prefix + MASK + suffix + MASK + masked
            text += PAD * (self.block_size - len(text))
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


BUGS = {
    # truncation
    "not a prefix": (variant(truncate=_window), {"1.3", "1.6"}),
    "length 3 possible": (variant(truncate=lambda d, top, _: d[:random.randint(3, top)]), {"1.3", "1.6"}),
    "top length impossible": (variant(truncate=lambda d, top, _: d[:random.randint(4, top - 1)]), {"1.3", "1.6"}),
    "top + 1 possible": (variant(truncate=lambda d, top, _: d[:random.randint(4, top + 1)]), {"1.3", "1.6"}),
    "float bound to randint": (variant(truncate=lambda d, top, b: d[:random.randint(4, b * 7 / 8)]), {"1.3", "1.6"}),
    "fixed length": (variant(truncate=lambda d, top, _: d[:top]), {"1.3", "1.6"}),
    "only the two ends": (variant(truncate=lambda d, top, _: d[:random.choice((4, top))]), {"1.3", "1.6"}),
    "crash on short documents": (variant(truncate=_short_crash), {"1.5", "1.6"}),
    # masked length
    "mask averages a half": (variant(mask_length=lambda n: random.randint(0, n)), {"1.4", "1.6"}),
    "mask averages an eighth": (variant(mask_length=lambda n: random.randint(0, n // 4)), {"1.4", "1.6"}),
    "mask length not random": (variant(mask_length=lambda n: n // 4), {"1.4", "1.6"}),
    "crash on the empty document": (variant(mask_length=lambda n: random.randint(1, max(1, n // 2))
                                            if n else random.randint(1, 0)), {"1.5", "1.6"}),
    # layout
    "character lost after the mask": (variant(arrange=lambda p, m, s: p + MASK + s[1:] + MASK + m),
                                      {"1.2", "1.4", "1.6"}),
    "character repeated": (variant(arrange=lambda p, m, s: p + MASK + (p[-1:] + s) + MASK + m),
                           {"1.2", "1.4", "1.6"}),
    "prefix, masked, suffix order": (variant(arrange=lambda p, m, s: p + MASK + m + MASK + s), {"1.2", "1.4", "1.6"}),
    "padding not at the end": (variant(arrange=lambda p, m, s: PAD + p + MASK + s + MASK + m), {"1.2", "1.4", "1.6"}),
}


@pytest.mark.parametrize("offset", SEEDS)
def test_reference_passes_under_many_seeds(offset):
    assert failing(Reference, offset) == set()


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_each_bug_fails_under_other_seeds(bug):
    cls, expected = BUGS[bug]
    assert failing(cls, 3, expected) == expected, bug
