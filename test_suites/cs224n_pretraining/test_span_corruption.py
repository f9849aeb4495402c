"""§2(e) span corruption: ``CharCorruptionDataset.__getitem__``, graded by its properties.

The examples are drawn in the worker from the student's dataset built on corpora they have
never seen (several documents, short ones, an empty one, non-ASCII text) at several block
sizes, including ones where block_size*7/8 is not an integer (50, 23, 33, 77). Every
document is drawn hundreds or thousands of times (in one request); the worker's
``random``, ``torch`` and ``numpy`` generators are seeded with fixed seeds before drawing, so
a verdict is the same on every run. The thresholds (``span.py``) are calibrated in the
project's tests: the reference passes under many seeds and every real bug fails.
"""
from __future__ import annotations

from pathlib import Path

from autograder.suite import GradedTestCase, number, time_limit, visibility, weight
from autograder.trusted.registry import import_file

HERE = Path(__file__).parent
span = import_file(HERE / "span.py", "_autograder_suites.cs224n_pretraining.span")
HIDDEN = "after_published"

LONG = [
    "Marguerite Oyelaran. Marguerite Oyelaran (born 3 May 1911 in Ibadan) was a botanist whose survey of "
    "savanna grasses, published in three volumes, is still cited by field ecologists today .",
    "Tobias Hallqvist. Hallqvist grew up on a farm near Umea, trained as a clockmaker in Geneva and later "
    "built the tower clock of the cathedral in his home town, finished in 1862 .",
]
SHORT = ["abc", "Hi", "", "x", "four", "fiver"]
NON_ASCII = ("Zoë Ångström-Łukasiewicz. Née à Kraków, elle a étudié à São Paulo puis à Tōkyō (東京), où "
             "elle a dirigé l'orchestre « Ça ira » jusqu'en 1979 — sans jamais quitter son piano .")
HIDDEN_CORPUS = [
    "Ilse Varga-Moreno. Ilse Varga-Moreno, born in Debrecen in 1934, designed bridges across the Danube and "
    "taught structural engineering for forty years at the technical university .",
    "Kwame Asante-Boateng. Asante-Boateng is a Ghanaian novelist; born in Kumasi, he writes about trade "
    "routes, markets and the families that keep them going .",
    "Ana", "", "Pérez Ødegård, Ñuñoa → Bodø",
]


def each(docs: list[str], repeats: int) -> list[tuple[str, int]]:
    return [(doc, repeats) for doc in docs]


_LONG, _REST = HIDDEN_CORPUS[:2], HIDDEN_CORPUS[2:]
# number: (cases, aspects checked, seed). A case is (plan, block_size); a plan lists
# (document, times drawn). The range checks need one document drawn often at each block size
# (both ends of [4, int(block_size*7/8)] must come up).
CASES = {
    "1.1": ([(each(LONG, 50), 64), (each(LONG, 50), 128)], ("format",), 224),
    "1.2": ([(each(LONG, 150), 64), (each(LONG, 150), 128)], ("format", "layout"), 224),
    "1.3": ([([(LONG[0], 600), (LONG[1], 100)], 50), ([(LONG[1], 1700)], 128), ([(LONG[0], 300)], 23)],
            ("format", "layout", "truncation"), 224),
    "1.4": ([(each(LONG, 200), 64), (each(LONG, 300), 128)], ("format", "layout", "masked"), 224),
    "1.5": ([(each(SHORT, 50) + [(NON_ASCII, 300)], 64)], ("format", "layout", "short"), 224),
    "1.6": ([([(_LONG[0], 500), (_LONG[1], 200)] + each(_REST, 50), 33),
             ([(_LONG[0], 200), (_LONG[1], 1000)] + each(_REST, 50), 77),
             (each(_LONG, 300), 128)], span.ASPECTS, 5),
}


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
            if "non-integer" in text:
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

    def run_checks(self, number: str) -> span.SpanReport:
        cases, aspects, seed = CASES[number]
        report = span.evaluate(self.draw, cases, aspects, seed, reveal=not self.hidden)
        problems = report.message(aspects)
        if problems:
            raise AssertionError(f"Over {report.draws} examples drawn from your CharCorruptionDataset:\n{problems}")
        return report


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
        """Span corruption: prefix ⁇ suffix ⁇ masked, padded at the end; no character lost or repeated"""
        self.run_checks("1.2")

    @weight(2)
    @number("1.3")
    @visibility("visible")
    @time_limit(90)
    def test_truncation(self):
        """Span corruption: truncation keeps a prefix of random length in [4, int(block_size*7/8)]"""
        self.run_checks("1.3")

    @weight(2)
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
    def test_short_empty_and_non_ascii(self):
        """Span corruption: documents shorter than 4 characters, an empty one and non-ASCII text"""
        self.run_checks("1.5")

    @weight(2)
    @number("1.6")
    @visibility(HIDDEN)
    @time_limit(120)
    def test_hidden_corpus(self):
        """Span corruption: every property on another corpus and other block sizes"""
        self.run_checks("1.6")
