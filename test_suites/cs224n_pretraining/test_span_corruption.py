"""§2(e) span corruption: ``CharCorruptionDataset.__getitem__``, graded by its properties.

The examples are drawn in the worker from the student's dataset built on corpora they have
never seen (long documents, short ones, an empty one, non-ASCII text) at several block
sizes, including ones where block_size*7/8 is not an integer (50, 23, 33, 77). Every
document is drawn hundreds or thousands of times (in one request); the worker's
``random``, ``torch`` and ``numpy`` generators are seeded with fixed seeds before drawing, so
a verdict is the same on every run.

Each test grades one property (``span.py``: format, layout, truncation, masked length, short
documents), on a corpus shown in its messages and on a held-out one that is not, so a defect
costs the points of its own property once (the course graded all ten points on its own
data; its public grader's rules are the floor). The thresholds are calibrated in the
project's tests: the reference and real variants pass under many seeds, every real bug fails
the test of its property.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autograder.suite import GradedTestCase, number, sibling, time_limit, visibility, weight

HERE = Path(__file__).parent
span = sibling(__file__, "span")

LONG = [
    "Marguerite Oyelaran. Marguerite Oyelaran (born 3 May 1911 in Ibadan) was a botanist whose survey of "
    "savanna grasses, published in three volumes, is still cited by field ecologists today .",
    "Tobias Hallqvist. Hallqvist grew up on a farm near Umea, trained as a clockmaker in Geneva and later "
    "built the tower clock of the cathedral in his home town, finished in 1862 .",
]
SHORT = ["abc", "Hi", "", "x", "four", "fiver"]
NON_ASCII = ("Zoë Ångström-Łukasiewicz. Née à Kraków, elle a étudié à São Paulo puis à Tōkyō (東京), où "
             "elle a dirigé l'orchestre « Ça ira » jusqu'en 1979 — sans jamais quitter son piano .")
HELD_OUT = [    # drawn by every test, never shown in its messages
    "Ilse Varga-Moreno. Ilse Varga-Moreno, born in Debrecen in 1934, designed bridges across the Danube and "
    "taught structural engineering for forty years at the technical university .",
    "Kwame Asante-Boateng. Asante-Boateng is a Ghanaian novelist; born in Kumasi, he writes about trade "
    "routes, markets and the families that keep them going .",
    "Ana", "", "Pérez Ødegård, Ñuñoa → Bodø",
]


def each(docs: list[str], repeats: int) -> list[tuple[str, int]]:
    return [(doc, repeats) for doc in docs]


@dataclass(frozen=True)
class Cases:
    """What one test draws: cases shown in its messages, held-out ones that are not (a case is
    (plan, block_size), a plan lists (document, times drawn)), the aspect it grades, its seed."""
    shown: list
    held_out: list
    aspect: str
    seed: int = 224


_H_LONG, _H_SHORT = HELD_OUT[:2], HELD_OUT[2:]
# Only the truncation test draws at block sizes where block_size*7/8 is not an integer (50,
# 23, 33, 77), so a float bound given to random.randint costs the truncation points only. The
# range is reported once a document is read 12 times per possible length at a block size.
CASES = {
    "1.1": Cases([(each(LONG, 50), 64), (each(LONG, 50), 128)],
                 [(each(_H_LONG, 50), 40), (each(_H_LONG, 50), 96)], "format"),
    "1.2": Cases([(each(LONG + [NON_ASCII], 150), 64), (each(LONG + [NON_ASCII], 150), 128)],
                 [(each(_H_LONG, 150), 40), (each(_H_LONG, 150), 96)], "layout"),
    "1.3": Cases([([(LONG[0], 600), (LONG[1], 100)], 50), ([(LONG[1], 1700)], 128), ([(LONG[0], 300)], 23)],
                 [([(_H_LONG[0], 500), (_H_LONG[1], 200)], 33), ([(_H_LONG[0], 200), (_H_LONG[1], 1000)], 77)],
                 "truncation"),
    "1.4": Cases([(each(LONG, 300), 64), (each(LONG, 800), 128)],
                 [(each(_H_LONG, 400), 40), (each(_H_LONG, 500), 96)], "masked"),
    "1.5": Cases([(each(SHORT, 50), 64)], [(each(_H_SHORT, 50), 40), (each(_H_SHORT, 50), 96)], "short"),
}


def evaluate_case(draw, case: Cases, seed_offset: int = 0):
    """(report on the shown cases, report on the held-out ones) for one test's aspect."""
    aspects = (case.aspect,)
    return (span.evaluate(draw, case.shown, aspects, case.seed + seed_offset),
            span.evaluate(draw, case.held_out, aspects, case.seed + seed_offset + 1, reveal=False))


class SpanCase(GradedTestCase):
    """Draws examples from the student's CharCorruptionDataset and checks them with ``span``."""

    def draw(self, plan: list[tuple[str, int]], block_size: int, seed: int):
        """``[(doc, [(x, y), ...])]`` and the student's ``stoi``; ``plan`` says how often to draw each document."""
        docs = [doc for doc, _ in plan]
        corpus = "\n".join(docs)
        label = f"CharCorruptionDataset(<corpus of {len(docs)} documents>, block_size={block_size})"
        dataset = self.student("dataset")
        ds = dataset.CharCorruptionDataset(corpus, block_size)
        stoi = ds.stoi
        self.library("random").seed(seed)
        self.library("torch").manual_seed(seed)
        self.library("numpy").random.seed(seed)
        B, F, O = self.library("builtins"), self.library("functools"), self.library("operator")
        indices = [i for i, (_, repeats) in enumerate(plan) for _ in range(repeats)]
        try:
            draws = B.list(B.map(F.partial(O.getitem, ds), indices))
        except AssertionError as exc:
            text = str(exc)
            what = "ds[i] raised " + text.split(" raised ", 1)[1] if " raised " in text else text
            hint = ""
            if "non-integer" in text or "cannot be interpreted as an integer" in text:   # Python < 3.12, >= 3.12
                hint = (f"\n  Hint: random.randint needs integer bounds, and block_size*7/8 = {block_size * 7 / 8:g} "
                        f"is not an integer here: use int(block_size*7/8).")
            raise AssertionError(f"Drawing examples from {label}: {what}{hint}") from None
        if not isinstance(draws, list) or len(draws) != len(indices):
            raise AssertionError(f"Drawing examples from {label} did not give one example per index.")
        out, start = [], 0
        for doc, repeats in plan:
            out.append((doc, draws[start:start + repeats]))
            start += repeats
        return out, stoi, corpus

    def run_checks(self, number: str) -> None:
        """Fail with the problems of the test's aspect; report what only the project checks."""
        case = CASES[number]
        shown, held_out = evaluate_case(self.draw, case)
        problems = []
        if shown.problems((case.aspect,)):
            problems.append(f"Over {shown.draws} examples drawn from your CharCorruptionDataset:\n"
                            f"{shown.message((case.aspect,))}")
        if held_out.problems((case.aspect,)):
            sizes = " and ".join(str(b) for b in sorted({b for _, b in case.held_out}))
            problems.append(f"Over {held_out.draws} examples drawn on a held-out corpus (block sizes {sizes}; its "
                            f"documents are not shown):\n{held_out.message((case.aspect,))}")
        noticed = shown.notices((case.aspect,)) + held_out.notices((case.aspect,))
        if noticed:
            self.note("Also noticed (not counted: the course's grader does not check this):\n"
                      + "\n".join(f"  - {n}" for n in noticed[:6]))
        if problems:
            raise AssertionError("\n".join(problems))


class TestSpanCorruption(SpanCase):

    @weight(1)
    @number("1.1")
    @visibility("visible")
    @time_limit(60)
    def test_format(self):
        """Span corruption: Long tensors x, y of one length with x[1:] == y[:-1]; PAD 0, MASK 1"""
        self.run_checks("1.1")

    @weight(2)
    @number("1.2")
    @visibility("visible")
    @time_limit(60)
    def test_layout(self):
        """Span corruption: prefix ⁇ suffix ⁇ masked (a trailing ⁇ allowed), padded; no character lost or repeated"""
        self.run_checks("1.2")

    @weight(3)
    @number("1.3")
    @visibility("visible")
    @time_limit(90)
    def test_truncation(self):
        """Span corruption: truncation keeps a prefix of random length in [4, int(block_size*7/8)]"""
        self.run_checks("1.3")

    @weight(3)
    @number("1.4")
    @visibility("visible")
    @time_limit(90)
    def test_masked_length(self):
        """Span corruption: the masked length is random and averages a quarter of the truncated length"""
        self.run_checks("1.4")

    @weight(1)
    @number("1.5")
    @visibility("visible")
    @time_limit(60)
    def test_short_documents(self):
        """Span corruption: documents shorter than 4 characters (an empty one too) are kept whole"""
        self.run_checks("1.5")
