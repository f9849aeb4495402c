"""Property checks of span corruption (``CharCorruptionDataset.__getitem__``), on drawn examples.

Trusted code with no student objects: it receives the examples as plain data (drawn in the
worker by the suite, or in-process from reference code by the project's calibration tests)
and reports what is wrong, aspect by aspect:

- ``format``: Long 1-D tensors, x and y of one length (block_size - 1 or block_size, the
  same for every draw), ``x[1:] == y[:-1]``, ids inside the vocabulary; PAD is id 0, MASK 1.
- ``layout``: ``prefix ⁇ suffix ⁇ masked`` then PAD only, up to the end; the three pieces put
  back together (prefix + masked + suffix) are a stretch of the document, no character
  lost or repeated.
- ``short``: a document shorter than 4 characters is kept whole.
- ``truncation``: that stretch is a prefix of the document, its length is in
  [4, int(block_size*7/8)] (the whole document when it is shorter), and, for a document
  drawn at least 15 times per possible length, both ends of the range come up and at least
  half of the lengths in between.
- ``masked``: over documents longer than the range, the masked length averages a quarter
  of the truncated length (ratio of sums in [0.18, 0.32]) and really varies (at least 10%
  of the draws above a quarter and 10% below).
"""
from __future__ import annotations

from collections import Counter

import torch

MASK = "\u2047"
PAD = "\u25A1"
ASPECTS = ("format", "layout", "short", "truncation", "masked")
MIN_DRAWS_FOR_RANGE = 200     # for the masked-length statistics
DRAWS_PER_LENGTH = 15         # the range is checked when a document was drawn 15x per possible length:
                              # a correct implementation then misses an end with probability e^-15
RATIO_RANGE = (0.18, 0.32)
MIN_SIDE_FRACTION = 0.10


def vocabulary(corpus: str) -> dict[str, int]:
    """The vocabulary the given ``__init__`` builds: PAD 0, MASK 1, then the sorted characters."""
    return {ch: i for i, ch in enumerate([PAD, MASK] + sorted(set(corpus)))}


def upper(block_size: int) -> int:
    return int(block_size * 7 / 8)


def short(text: str, n: int = 40) -> str:
    return repr(text if len(text) <= n else text[:n - 3] + "...")


class SpanReport:
    """Problems found, per aspect, each kind counted once with its first example."""

    def __init__(self, reveal: bool = True):
        self.reveal = reveal
        self.kinds: dict[str, Counter] = {a: Counter() for a in ASPECTS}
        self.examples: dict[tuple[str, str], str] = {}
        self.draws = 0

    def add(self, aspect: str, kind: str, example: str = "") -> None:
        self.kinds[aspect][kind] += 1
        self.examples.setdefault((aspect, kind), example)

    def problems(self, aspects=ASPECTS) -> list[str]:
        out = []
        for aspect in aspects:
            for kind, count in self.kinds[aspect].items():
                line = f"{kind} ({count} of {self.draws} draws)" if count > 1 else kind
                example = self.examples[(aspect, kind)]
                if example and self.reveal:
                    line += f"\n      e.g. {example}"
                out.append(line)
        return out

    def message(self, aspects=ASPECTS) -> str:
        problems = self.problems(aspects)
        return "" if not problems else "\n".join(f"  - {p}" for p in problems[:8])


def check(report: SpanReport, doc: str, block_size: int, draws: list, stoi: dict[str, int],
          lengths: set | None = None, masked: list | None = None) -> None:
    """Check the ``draws`` (``(x, y)`` pairs) of one document against the spec.

    ``lengths`` collects len(x) - block_size (-1 or 0: it must be the same for every draw);
    ``masked`` collects (truncated length, masked length) pairs of documents longer than
    the truncation range, for ``check_masked``.
    """
    itos = {i: ch for ch, i in stoi.items()}
    top = upper(block_size)
    truncated_lengths = []
    where = f"document {short(doc)} with block_size {block_size}" if report.reveal else f"block_size {block_size}"
    for draw in draws:
        report.draws += 1
        text = _decode(report, draw, block_size, itos, where, lengths)
        if text is None:
            continue
        pieces = _layout(report, text, doc, where)
        if pieces is None:
            continue
        prefix, suffix, hidden = pieces
        whole = prefix + hidden + suffix
        if len(doc) < 4 and whole != doc:
            report.add("short", f"a document shorter than 4 characters must be kept whole; "
                       f"{short(doc)} became {short(whole)}", where)
            continue
        if not doc.startswith(whole):
            report.add("truncation", "the truncated text is not a prefix of the document (truncation must keep "
                       "doc[:L], the start of the document)", f"{where}: kept {short(whole)}")
            continue
        n = len(whole)
        if (len(doc) < 4 and n != len(doc)) or (len(doc) >= 4 and not 4 <= n <= top):
            expected = (f"the whole document ({len(doc)} characters, it is shorter than 4)" if len(doc) < 4
                        else f"a length in [4, {top}] = [4, int({block_size}*7/8)]")
            report.add("truncation", f"truncated length {n} where {expected} was expected", f"{where}")
            continue
        truncated_lengths.append(n)
        if masked is not None and len(doc) >= top:
            masked.append((n, len(hidden)))
    lo, hi = min(4, len(doc)), min(top, len(doc))
    values = top - 3 if len(doc) >= 4 else 1        # possible values of L (not all distinct once cut to the document)
    if truncated_lengths and len(truncated_lengths) >= DRAWS_PER_LENGTH * values:
        if min(truncated_lengths) != lo or max(truncated_lengths) != hi:
            report.add("truncation", f"over {len(truncated_lengths)} draws the truncated length ranged over "
                       f"[{min(truncated_lengths)}, {max(truncated_lengths)}], but every length in [{lo}, {hi}] "
                       "must be possible (randint's upper bound is included)", where)
        elif len(set(truncated_lengths)) < (hi - lo + 1) / 2:
            report.add("truncation", f"over {len(truncated_lengths)} draws the truncated length took only "
                       f"{len(set(truncated_lengths))} of the {hi - lo + 1} lengths in [{lo}, {hi}]: it must be "
                       "drawn at random over the whole range", where)


def check_masked(report: SpanReport, masked: list) -> None:
    """The masked length averages a quarter of the truncated length, with real spread."""
    if len(masked) < MIN_DRAWS_FOR_RANGE:
        return
    ratio = sum(m for _, m in masked) / sum(n for n, _ in masked)
    above = sum(m > n / 4 for n, m in masked) / len(masked)
    below = sum(m < n / 4 for n, m in masked) / len(masked)
    lo, hi = RATIO_RANGE
    if not lo <= ratio <= hi:
        report.add("masked", f"the masked span averaged {ratio:.2f} of the truncated length over {len(masked)} "
                   f"draws; it should average 1/4 (accepted: {lo} to {hi})")
    if above < MIN_SIDE_FRACTION or below < MIN_SIDE_FRACTION:
        report.add("masked", f"the masked length barely varies: {above:.0%} of {len(masked)} draws were longer "
                   f"than a quarter of the truncated length and {below:.0%} shorter; it must be random, "
                   "falling above and below a quarter")


def _decode(report, draw, block_size, itos, where, lengths):
    if not isinstance(draw, (tuple, list)) or len(draw) != 2:
        report.add("format", "__getitem__ must return a pair (x, y)", f"{where}: got {type(draw).__name__}")
        return None
    x, y = draw
    for name, t in (("x", x), ("y", y)):
        if type(t) is not torch.Tensor or t.dtype != torch.long or t.dim() != 1:
            got = (f"a {t.dtype} tensor of shape {tuple(t.shape)}" if isinstance(t, torch.Tensor)
                   else f"a {type(t).__name__}")
            report.add("format", f"{name} must be a 1-D torch.long tensor", f"{where}: got {got}")
            return None
    if len(x) != len(y) or len(x) not in (block_size - 1, block_size):
        report.add("format", f"x and y must both have length block_size - 1 = {block_size - 1} "
                   f"(or block_size = {block_size})", f"{where}: got lengths {len(x)} and {len(y)}")
        return None
    if lengths is not None:
        lengths.add(len(x) - block_size)     # -1 or 0, the same for every draw
    if not torch.equal(x[1:], y[:-1]):
        bad = int((x[1:] != y[:-1]).nonzero()[0][0])
        report.add("format", "y must be x shifted by one (x[1:] == y[:-1])", f"{where}: differs at x[{bad + 1}]")
        return None
    ids = torch.cat([x, y[-1:]]).tolist()
    if any(i not in itos for i in ids):
        report.add("format", "ids outside the vocabulary (encode with self.stoi)", where)
        return None
    return "".join(itos[i] for i in ids)


def _layout(report, text, doc, where):
    pad = text.find(PAD)
    body = text if pad < 0 else text[:pad]
    if pad >= 0 and text[pad:].strip(PAD):
        report.add("layout", "padding (□) must come only at the end", f"{where}: {short(text, 80)}")
        return None
    if pad < 0 and len(text) < len(doc) + 2:
        report.add("layout", "the example must be padded with □ to block_size", f"{where}: {short(text, 80)}")
        return None
    if body.count(MASK) != 2:
        report.add("layout", f"expected exactly two ⁇ (prefix ⁇ suffix ⁇ masked), found {body.count(MASK)}",
                   f"{where}: {short(body, 80)}")
        return None
    prefix, suffix, hidden = body.split(MASK)
    if (prefix + hidden + suffix) not in doc:
        report.add("layout", "prefix + masked + suffix is not a stretch of the document: characters were "
                   "lost, repeated or reordered (expected the layout prefix ⁇ suffix ⁇ masked)",
                   f"{where}: {short(body, 80)}")
        return None
    return prefix, suffix, hidden


def evaluate(draw, cases, aspects=ASPECTS, seed: int = 224, reveal: bool = True) -> SpanReport:
    """Draw and check every case; ``draw(plan, block_size, seed) -> (drawn, stoi, corpus)``.

    ``cases`` are ``(plan, block_size)`` pairs, a plan being ``[(document, times drawn)]``.
    Used by the suite (drawing in the worker) and by the calibration tests (in-process).
    """
    report = SpanReport(reveal=reveal)
    lengths: set[int] = set()
    for k, (plan, block_size) in enumerate(cases):
        drawn, stoi, corpus = draw(plan, block_size, seed + k)
        expected = vocabulary(corpus)
        if stoi != expected:
            report.add("format", "the vocabulary must be PAD (id 0), MASK (id 1), then the sorted characters "
                       "of the corpus (the given __init__ builds it; do not change it)")
            stoi = stoi if isinstance(stoi, dict) else expected
        masked: list = []
        for doc, draws in drawn:
            check(report, doc, block_size, draws, stoi, lengths, masked)
        check_masked(report, masked)
    if len(lengths) > 1:
        report.add("format", "x and y must always have length block_size - 1, or always block_size; "
                   "your examples had both")
    return report
