"""Property checks of span corruption (``CharCorruptionDataset.__getitem__``), on drawn examples.

Trusted code with no student objects: it receives the examples as plain data (drawn in the
worker by the suite, or in-process from reference code by the project's calibration tests)
and reports what is wrong, aspect by aspect. Each aspect is graded by one test and checks
its own property only, so a defect costs its points once. The course's public grader is the
floor: what its rules accept is accepted.

- ``format``: x and y are 1-D torch.long tensors of one length, block_size - 1 or
  block_size; ``x[1:] == y[:-1]``; the ids are the given vocabulary's (PAD 0, MASK 1, then
  the sorted characters of the corpus).
- ``layout``: the body (the example up to its first PAD) split at ⁇ gives prefix, suffix and
  masked content: 3 parts, or 4 whose last is empty (a ⁇ after the masked content, which the
  course's grader accepts); prefix + masked + suffix is a stretch of the document (no
  character lost, repeated or reordered).
- ``truncation``: the kept text is a prefix of the document, of length in
  [4, int(block_size*7/8)], and that length varies: for a document drawn at least 20 times,
  the standard deviation of L / min(len(doc), int(block_size*7/8)) is above 0.05 (the
  course's "truncated fraction" spread, on the part of the document truncation can keep).
- ``masked``: over documents longer than the truncation range, the mean of
  ``len(masked) - L/4`` is within ±1.5 (the course's rule; L read as the kept text's length
  or, as the course does, as the body's length less two), and the masked length is random:
  it varies between draws of the same truncated length (a fixed function such as ``L // 4``
  is not random, as the handout asks).
- ``short``: a document shorter than 4 characters (the empty one included) is kept whole.

Only the layout aspect reads the layout strictly. The others read each example as
leniently as they can (padding anywhere, the pieces in either order) and check only the
examples they can read, so a rare layout defect does not fail them; they fall back on the
course's layout-free reading (the count of characters other than PAD and ⁇) when no example
of a document can be read, and fail only when nothing at all can be read.

What only the project checks is reported without cost (``notices``): every truncated length
coming up (both ends, at least half of the lengths, for a document read 12 times per
possible length), the masked length's ratio to L within [0.18, 0.32] with draws on both
sides of a quarter, nothing but PAD after the first PAD, one x length for every draw.
"""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass

import torch

MASK = "\u2047"
PAD = "\u25A1"
ASPECTS = ("format", "layout", "truncation", "masked", "short")
DRAWS_PER_LENGTH = 12         # reachability is reported when a document was read 12x per possible length
MIN_DRAWS_FOR_SPREAD = 20     # per document, for the truncated length's spread
MIN_SPREAD_RANGE = 8          # ... when truncation can keep at least this many characters
TRUNCATED_SPREAD = 0.05       # the course's threshold on the truncated fraction's standard deviation
MIN_DRAWS_FOR_MASKED = 100    # per case, for the masked length's statistics
MASKED_MEAN_TOLERANCE = 1.5   # the course's: |mean(len(masked) - L/4)| <= 1.5
MASKED_SPREAD = 0.01          # the course's threshold on the masked length's standard deviation
RATIO_RANGE = (0.18, 0.32)    # project-only, reported
MIN_SIDE_FRACTION = 0.10      # project-only, reported


def vocabulary(corpus: str) -> dict[str, int]:
    """The vocabulary the given ``__init__`` builds: PAD 0, MASK 1, then the sorted characters."""
    return {ch: i for i, ch in enumerate([PAD, MASK] + sorted(set(corpus)))}


def upper(block_size: int) -> int:
    return int(block_size * 7 / 8)


def short(text: str, n: int = 40) -> str:
    return repr(text if len(text) <= n else text[:n - 3] + "...")


class SpanReport:
    """Problems (which cost) and notices (which do not) per aspect, each kind counted once with its first example."""

    def __init__(self, reveal: bool = True):
        self.reveal = reveal
        self.kinds: dict[str, Counter] = {a: Counter() for a in ASPECTS}
        self.noticed: dict[str, Counter] = {a: Counter() for a in ASPECTS}
        self.examples: dict[tuple[str, str], str] = {}
        self.pending: list[tuple[str, str, str]] = []   # (aspect, kind, example) a layout defect may explain
        self.draws = 0

    def add(self, aspect: str, kind: str, example: str = "") -> None:
        self.kinds[aspect][kind] += 1
        self.examples.setdefault((aspect, kind), example)

    def notice(self, aspect: str, kind: str, example: str = "") -> None:
        self.noticed[aspect][kind] += 1
        self.examples.setdefault((aspect, kind), example)

    def _lines(self, table, aspects) -> list[str]:
        out = []
        for aspect in aspects:
            for kind, count in table[aspect].items():
                line = f"{kind} ({count} of {self.draws} draws)" if count > 1 else kind
                example = self.examples[(aspect, kind)]
                if example and self.reveal:
                    line += f"\n      e.g. {example}"
                out.append(line)
        return out

    def problems(self, aspects=ASPECTS) -> list[str]:
        return self._lines(self.kinds, aspects)

    def notices(self, aspects=ASPECTS) -> list[str]:
        return self._lines(self.noticed, aspects)

    def message(self, aspects=ASPECTS) -> str:
        problems = self.problems(aspects)
        return "" if not problems else "\n".join(f"  - {p}" for p in problems[:8])


@dataclass
class Example:
    """One drawn example, read as leniently as possible."""
    text: str                                  # x, then y's last character when y is x shifted by one
    body_length: int                           # len(body) read off x up to its first PAD (the course's reading)
    content: int                               # characters other than PAD and ⁇ (the course's truncated length)
    parts: tuple[str, str, str] | None = None  # (prefix, suffix, masked), padding ignored
    whole: str | None = None                   # the pieces put back, when that is a stretch of the document
    swapped: bool = False                      # the pieces came as prefix ⁇ masked ⁇ suffix

    @property
    def masked(self) -> str | None:
        return None if self.parts is None else self.parts[1] if self.swapped else self.parts[2]

    @property
    def length(self) -> int:
        """The truncated length L: the kept text's, or the course's count when it cannot be put back."""
        return len(self.whole) if self.whole is not None else self.content


def split(body: str) -> tuple[str, str, str] | None:
    """(prefix, suffix, masked) by the course's rule: 3 parts, or 4 whose last is empty."""
    parts = body.split(MASK)
    if len(parts) == 4 and parts[3] == "":
        parts = parts[:3]
    return tuple(parts) if len(parts) == 3 else None


def check(report: SpanReport, doc: str, block_size: int, draws: list, stoi: dict[str, int],
          lengths: set | None = None, masked: list | None = None) -> None:
    """Check the ``draws`` (``(x, y)`` pairs) of one document.

    ``lengths`` collects len(x) - block_size (-1 or 0; one value expected over all draws);
    ``masked`` collects (L, masked length, body length) of documents longer than the
    truncation range, for ``check_masked``.
    """
    itos = {i: ch for ch, i in stoi.items()}
    where = f"document {short(doc)} with block_size {block_size}" if report.reveal else f"block_size {block_size}"
    examples = []
    for draw in draws:
        report.draws += 1
        example = _read(report, draw, block_size, itos, where, lengths)
        if example is not None:
            _layout(report, example, doc, where)
            examples.append(example)
    if not examples:
        return
    readable = [e for e in examples if e.whole is not None]
    if len(doc) < 4:
        _short(report, doc, readable, examples, where)
    else:
        _truncation(report, doc, block_size, readable, examples, where)
    if masked is not None and len(doc) >= upper(block_size):
        masked.extend((e.length, len(e.masked), e.body_length) for e in examples if e.parts is not None)


def _read(report, draw, block_size, itos, where, lengths) -> Example | None:
    """Record format problems; the example as text when its ids can be read at all."""
    if not isinstance(draw, (tuple, list)) or len(draw) != 2:
        report.add("format", "__getitem__ must return a pair (x, y)", f"{where}: got {type(draw).__name__}")
        return None
    x, y = draw
    for name, t in (("x", x), ("y", y)):
        if type(t) is not torch.Tensor or t.dtype != torch.long or t.dim() != 1:
            got = (f"a {t.dtype} tensor of shape {tuple(t.shape)}" if isinstance(t, torch.Tensor)
                   else f"a {type(t).__name__}")
            report.add("format", f"{name} must be a 1-D torch.long tensor", f"{where}: got {got}")
    if not all(type(t) is torch.Tensor and t.dim() == 1 and not t.is_floating_point() and not t.is_complex()
               for t in (x, y)):
        return None
    if len(x) != len(y) or len(x) not in (block_size - 1, block_size):
        report.add("format", f"x and y must both have length block_size - 1 = {block_size - 1} "
                   f"(or block_size = {block_size})", f"{where}: got lengths {len(x)} and {len(y)}")
    elif lengths is not None:
        lengths.add(len(x) - block_size)
    shifted = len(x) == len(y) and len(x) > 0 and torch.equal(x[1:].long(), y[:-1].long())
    if not shifted:
        report.add("format", "y must be x shifted by one (x[1:] == y[:-1])", where)
    ids = (torch.cat([x, y[-1:]]) if shifted else x).tolist()
    if any(i not in itos for i in ids):
        report.add("format", "ids outside the vocabulary (encode with self.stoi)", where)
        return None
    text = "".join(itos[i] for i in ids)
    x_text = text[:len(x)]
    return Example(text=text, body_length=len(x_text.split(PAD, 1)[0]),
                   content=sum(ch not in (PAD, MASK) for ch in text))


def _layout(report, example: Example, doc: str, where: str) -> None:
    """Record layout problems (the course's rule, strictly, one per draw) and read the pieces leniently."""
    text = example.text
    body = text.split(PAD, 1)[0]
    if text[len(body):].strip(PAD):
        report.notice("layout", "characters after the padding (□ is expected only at the end; "
                      "the course's grader ignores what follows the first □)", f"{where}: {short(text, 80)}")
    parts = split(body)
    problem = None
    if parts is None:
        problem = (f"expected prefix ⁇ suffix ⁇ masked (two ⁇, or a third right after the masked content) "
                   f"before the padding, found {body.count(MASK)} ⁇")
        parts = split(text.replace(PAD, ""))
    if parts is not None:
        prefix, suffix, hidden = parts
        example.parts = parts
        if prefix + hidden + suffix in doc:
            example.whole = prefix + hidden + suffix
        elif prefix + suffix + hidden in doc:
            example.whole, example.swapped = prefix + suffix + hidden, True
            problem = problem or ("the pieces come as prefix ⁇ masked ⁇ suffix; the masked content must come last "
                                  "(prefix ⁇ suffix ⁇ masked)")
        else:
            problem = problem or ("prefix + masked + suffix is not a stretch of the document: characters were "
                                  "lost, repeated or reordered (expected the layout prefix ⁇ suffix ⁇ masked)")
    if problem:
        report.add("layout", problem, f"{where}: {short(body, 80)}")


def _short(report, doc, readable, examples, where) -> None:
    """Kept whole: the pieces put back are the document (or, when none can be put back, as many
    characters). Recorded as pending: ``evaluate`` counts them unless a layout defect explains them."""
    for e in readable or examples:
        kept = e.whole if readable else e.content
        if kept != (doc if readable else len(doc)):
            became = short(kept) if readable else f"{kept} characters"
            report.pending.append(("short", f"a document shorter than 4 characters must be kept whole; {short(doc)} "
                                   f"became {became}", where))


def _truncation(report, doc, block_size, readable, examples, where) -> None:
    """Judged on the examples whose prefix piece is not empty (it shows where the kept text starts;
    with an empty one, a character lost or moved by a layout defect can look like a shorter or
    shifted text), or on the course's count when no example of the document can be read."""
    top = upper(block_size)
    anchored = [e for e in readable if e.parts[0]]
    for e in anchored:
        if not doc.startswith(e.whole):
            report.pending.append(("truncation", "the truncated text is not a prefix of the document (truncation "
                                   "must keep doc[:L], the start of the document)", f"{where}: kept {short(e.whole)}"))
    measured = [e.length for e in anchored] if readable else [e.length for e in examples]
    for n in measured:
        if not 4 <= n <= top:
            report.pending.append(("truncation", f"truncated length {n} where a length in [4, {top}] = "
                                   f"[4, int({block_size}*7/8)] was expected", where))
    room = min(len(doc), top)
    if len(measured) >= MIN_DRAWS_FOR_SPREAD and room >= MIN_SPREAD_RANGE:
        spread = statistics.pstdev(n / room for n in measured)
        if spread <= TRUNCATED_SPREAD:
            report.add("truncation", f"the truncated length barely varies (standard deviation {spread:.3f} of the "
                       f"fraction kept over {len(measured)} draws, above {TRUNCATED_SPREAD} expected): it must be "
                       f"drawn at random in [4, {top}]", where)
    lo, hi = 4, room
    if len(measured) >= DRAWS_PER_LENGTH * (top - 3):
        if min(measured) != lo or max(measured) != hi:
            report.notice("truncation", f"over {len(measured)} draws the truncated length ranged over "
                          f"[{min(measured)}, {max(measured)}]; the handout asks for every length in [{lo}, {hi}] "
                          "to be possible (randint's upper bound is included)", where)
        elif len(set(measured)) < (hi - lo + 1) / 2:
            report.notice("truncation", f"over {len(measured)} draws the truncated length took only "
                          f"{len(set(measured))} of the {hi - lo + 1} lengths in [{lo}, {hi}]", where)


def check_masked(report: SpanReport, masked: list, block_size: int) -> None:
    """The course's rules on the masked length (mean and spread), and the project's (reported)."""
    where = f"block_size {block_size}"
    if len(masked) < MIN_DRAWS_FOR_MASKED:
        report.add("masked", f"the masked content could be read from only {len(masked)} examples "
                   f"({MIN_DRAWS_FOR_MASKED} needed): expected prefix ⁇ suffix ⁇ masked", where)
        return
    by_length = statistics.fmean(m - n / 4 for n, m, _ in masked)
    by_body = statistics.fmean(m - (b - 2) / 4 for _, m, b in masked)
    if min(abs(by_length), abs(by_body)) > MASKED_MEAN_TOLERANCE:
        report.add("masked", f"the masked length averaged {by_length:+.2f} characters from a quarter of the truncated "
                   f"length over {len(masked)} draws ({where}); it should average a quarter "
                   f"(within ±{MASKED_MEAN_TOLERANCE:g})")
    groups = defaultdict(list)
    for n, m, _ in masked:
        groups[n].append(m)
    deviations = [m - statistics.fmean(g) for g in groups.values() if len(g) > 1 for m in g]
    repeated = sum(len(g) - 1 for g in groups.values() if len(g) > 1)
    if repeated and (sum(d * d for d in deviations) / repeated) ** 0.5 <= MASKED_SPREAD:
        report.add("masked", f"the masked length is not random: draws with the same truncated length always masked "
                   f"the same number of characters ({where}); it must be drawn at random, averaging a quarter")
    ratio = sum(m for _, m, _ in masked) / max(1, sum(n for n, _, _ in masked))
    above = sum(m > n / 4 for n, m, _ in masked) / len(masked)
    below = sum(m < n / 4 for n, m, _ in masked) / len(masked)
    lo, hi = RATIO_RANGE
    if not lo <= ratio <= hi:
        report.notice("masked", f"the masked span averaged {ratio:.2f} of the truncated length over {len(masked)} "
                      f"draws ({where})")
    if above < MIN_SIDE_FRACTION or below < MIN_SIDE_FRACTION:
        report.notice("masked", f"{above:.0%} of {len(masked)} draws masked more than a quarter of the truncated "
                      f"length and {below:.0%} less ({where}); the handout's masked length falls on both sides")


def _attribute_to_layout(report: SpanReport) -> None:
    """Count the pending problems, unless the layout defect found in the same draws explains them.

    A layout defect that loses or repeats characters also shortens or shifts the text read
    back: rarely into a text that looks truncated wrongly (so truncation problems are put down
    to it when it is at least ten times as frequent), often into a short document that looks
    cut (so short-document problems are put down to any layout defect). It is counted by the
    layout test; these are then reported, not counted again.
    """
    layout = sum(report.kinds["layout"].values())
    for aspect in ("truncation", "short"):
        pending = [(kind, example) for a, kind, example in report.pending if a == aspect]
        explained = layout >= 10 * len(pending) if aspect == "truncation" else layout > 0
        for kind, example in pending:
            if explained:
                report.notice(aspect, f"{kind}: probably the layout defect (counted by the layout test)", example)
            else:
                report.add(aspect, kind, example)
    report.pending.clear()


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
        if "masked" in aspects and any(len(doc) >= upper(block_size) for doc, _ in drawn):
            check_masked(report, masked, block_size)
    _attribute_to_layout(report)
    if len(lengths) > 1:
        report.notice("format", "x and y had length block_size - 1 in some draws and block_size in others "
                      "(a DataLoader needs one length)")
    return report
