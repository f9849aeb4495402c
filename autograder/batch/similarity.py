"""Pairs of submissions whose graded code is suspiciously similar, for the instructor's batch report.

Never part of any score: nothing here reads or writes a grade. The batch report shows the pairs
as a table (``report_table``) and a figure (``plot``); the caller decides whether to run it at all
(the batch's off flag). Pure functions over source text: nothing is imported or executed.

Method: MOSS's winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003) over a normalised token
stream. Each file is tokenized with the stdlib ``tokenize``; comments, docstrings (and any other
statement that is only a string), blank lines and indentation are dropped; every identifier
becomes ``N`` except keywords, builtins that are called (``len(``, ``range(``) and called
attributes not reached directly through ``self``/``cls`` (``.transpose(``, ``.softmax(``,
``nn.Linear(``): those are library API, which renaming cannot change, while every name a student
can rename (variables, parameters, ``self.q_proj``, own methods and classes) is ``N``. The rule
looks only at neighbouring tokens, so the given code normalises the same in the template and in
every submission. String literals become ``S`` (their text is as easy to change as a comment);
integers 0..16 are kept, other numbers become ``INT``/``FLOAT``. Hashes of the ``k``-grams of that
stream are winnowed: every run of ``window`` consecutive k-grams contributes its minimum, so any
copied run of at least ``k + window - 1`` tokens is caught whatever the edits around it.

Template exclusion: every k-gram hash of every template file is removed from every submission, so
given code, and a submission that only kept it, has no fingerprints. The tokens such k-grams cover
are given tokens, and a k-gram less than ``OWN_SHARE`` the student's own is dropped too: otherwise
the last line of any answer, run into the next given ``def`` line, would match across the class.
With at least ``COMMON_MIN_SUBMISSIONS`` submissions, a fingerprint found in more than
``common_share`` of them is also dropped (MOSS's ``-m``): that is the obvious solution, not a copy.

Similarity of a pair: shared fingerprints / the smaller submission's fingerprint count (a
fingerprint is a (graded file, hash) pair), so a copy of all of someone's work scores near 1 even
when the copier wrote more. Symmetric; 0..1. A pair is reported only if the shared k-grams also
cover ``min_shared_tokens`` tokens in both, so two tiny submissions cannot match by chance.

Cost: fingerprinting is linear in the class's code; pairs come from an inverted index
fingerprint -> submissions, so the work is O(total tokens + sum over fingerprints of m^2), m the
submissions sharing one (at most ``common_share`` of the class), instead of all-pairs diffs. Only
reported pairs get their matching lines worked out.

Why no library: copydetect 0.5.0 (PyPI, MIT, last release March 2024, one maintainer, "Beta")
imports matplotlib.pyplot, jinja2 and tqdm at package import and needs pygments and numpy; its
normalisation maps names, attributes and functions to single letters but keeps a docstring as a
string token, works on characters not tokens, hashes with Python's salted ``hash()`` (fingerprints
differ from run to run), and compares every pair of files. Our input is Python only, so the
stdlib tokenizer does the job without another pinned dependency.

Length: normalisation, winnowing, template exclusion, the index and the report/figure: one pipeline, read in order.
"""
from __future__ import annotations

import builtins
import hashlib
import io
import keyword
import re
import tokenize
from collections import defaultdict, deque
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

K = 12                      # tokens per k-gram: shorter matches are noise
WINDOW = 8                  # winnowing window: copies of >= K + WINDOW - 1 = 19 tokens always match
THRESHOLD = 0.5             # default similarity from which a pair is reported
MIN_SHARED_TOKENS = 40      # default: fewer matching tokens than this is never reported
OWN_SHARE = 0.5             # a k-gram must be at least this share the student's own tokens
COMMON_SHARE = 0.5          # default: a fingerprint in more than this share of a class is ignored
COMMON_MIN_SUBMISSIONS = 10  # ... but only from this many submissions on
MAX_CHARS = 1_000_000       # a longer file is compared on its first MAX_CHARS characters

_BUILTINS = frozenset(n for n in dir(builtins) if not n.startswith("_"))
_SELF = frozenset({"self", "cls"})
_STATEMENT_KEYWORDS = frozenset({"def", "class", "return", "import", "raise", "assert", "with", "while", "try",
                                 "except", "finally", "elif", "del", "pass", "break", "continue", "global",
                                 "nonlocal"})
_MOD = (1 << 61) - 1
_BASE = 1_000_003
_STRING_STARTS = {getattr(tokenize, n) for n in ("FSTRING_START", "TSTRING_START") if hasattr(tokenize, n)}
_STRING_ENDS = {getattr(tokenize, n) for n in ("FSTRING_END", "TSTRING_END") if hasattr(tokenize, n)}
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}

_TOLERANT = re.compile(r"""
  (?P<comment>\#[^\n]*)
| (?P<string>[rRbBuUfFtT]{0,3}(?:'''[\s\S]*?(?:'''|\Z)|\"\"\"[\s\S]*?(?:\"\"\"|\Z)
                               |'(?:\\.|[^'\\\n])*(?:'|$)|"(?:\\.|[^"\\\n])*(?:"|$)))
| (?P<number>0[xXoObB][0-9a-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?[jJ]?)
| (?P<name>[^\W\d]\w*)
| (?P<newline>\n)
| (?P<space>[^\S\n]+|\\\n)
| (?P<op>\*\*=|//=|>>=|<<=|\.\.\.|->|:=|[-+*/%&|^@=<>!]=|\*\*|//|<<|>>|\S)
""", re.VERBOSE | re.MULTILINE)


@dataclass(frozen=True)
class SimilarPair:
    """Two submissions (``a < b``) and how alike their graded code is, given code excluded.

    ``similarity``: shared fingerprints / the smaller submission's fingerprints, 0..1, symmetric.
    ``shared_lines``: per graded file, the matching line ranges as ``((a_first, a_last),
    (b_first, b_last))``, 1-based and inclusive, in a's order.
    """
    a: str
    b: str
    similarity: float
    shared_lines: dict[str, list[tuple[tuple[int, int], tuple[int, int]]]] = field(
        default_factory=dict, compare=False, hash=False)


@dataclass
class _File:
    lines: list[tuple[int, int]]            # per normalised token: its first and last source line
    kgrams: list[int]                       # hash of the k-gram starting at each token
    selected: dict[int, list[int]]          # winnowed hash -> k-gram start positions


# ---------------------------------------------------------------- tokens

def _text(source) -> str:
    if isinstance(source, (bytes, bytearray)):
        source = bytes(source).decode("utf-8", errors="replace")
    if not isinstance(source, str):
        return ""
    return source[:MAX_CHARS].replace("\x00", " ").replace("\r\n", "\n").replace("\r", "\n")


def _stdlib_tokens(src: str):
    """(kind, text, first line, last line), stdlib tokenizer; on failure the rest is re-read tolerantly."""
    out, safe, resume, fstring = [], 0, 1, None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(src).readline):
            if fstring is not None:                       # 3.12+: an f-string is many tokens
                fstring[0] += tok.type in _STRING_STARTS
                fstring[0] -= tok.type in _STRING_ENDS
                if fstring[0] == 0:
                    out.append(("STRING", "S", fstring[1], tok.end[0]))
                    fstring = None
            elif tok.type in _STRING_STARTS:
                fstring = [1, tok.start[0]]
            elif tok.type not in _SKIP and (tok.string.strip() or tok.type == tokenize.NEWLINE):
                kind = tokenize.tok_name.get(tok.type, "OP")
                out.append((kind if kind in ("NAME", "NUMBER", "STRING", "NEWLINE") else "OP",
                            tok.string, tok.start[0], tok.end[0]))
                if tok.type == tokenize.NEWLINE:
                    safe, resume = len(out), tok.start[0] + 1
        return out
    except Exception:                                     # TokenError, IndentationError, SyntaxError...
        tail = "\n".join(src.split("\n")[resume - 1:])
        return out[:safe] + _tolerant_tokens(tail, first_line=resume)


def _tolerant_tokens(src: str, first_line: int = 1):
    """A regex tokenizer that accepts anything: for what the stdlib tokenizer rejects."""
    out, line, depth, line_start = [], first_line, 0, True
    for m in _TOLERANT.finditer(src):
        kind, text = m.lastgroup, m.group()
        start = line
        line += text.count("\n")
        if kind == "newline":
            if depth == 0 and out and out[-1][0] != "NEWLINE":
                out.append(("NEWLINE", "\n", start, start))
            line_start = True
        elif kind in ("string", "number", "name", "op"):
            if line_start and depth and (text in _STATEMENT_KEYWORDS or text == "@"):
                depth = 0                                  # an unclosed bracket ends with its statement
                if out and out[-1][0] != "NEWLINE":
                    out.append(("NEWLINE", "\n", start, start))
            if kind == "op" and len(text) == 1:
                depth = max(0, depth + (text in "([{") - (text in ")]}"))
            out.append((kind.upper(), text, start, line))
            line_start = False
    return out


def _drop_string_statements(toks):
    """Remove docstrings: statements that are only (implicitly concatenated) string literals."""
    out, i, n = [], 0, len(toks)
    while i < n:
        if toks[i][0] == "STRING" and (not out or out[-1][0] == "NEWLINE"):
            j = i
            while j + 1 < n and toks[j + 1][0] == "STRING":
                j += 1
            if j + 1 == n or toks[j + 1][0] == "NEWLINE" or toks[j + 1][1] == ";":
                i = j + 2
                continue
        out.append(toks[i])
        i += 1
    return out


def _number(text: str) -> str:
    try:
        value = int(text.replace("_", ""), 0)
    except ValueError:
        return "FLOAT"
    return str(value) if value <= 16 else "INT"


def normalise(source: str) -> list[tuple[str, int, int]]:
    """The token stream fingerprints are taken from: (token, first line, last line)."""
    toks = _drop_string_statements(_stdlib_tokens(_text(source)))
    out = []
    for i, (kind, text, first, last) in enumerate(toks):
        if kind == "NAME":
            if keyword.iskeyword(text):
                norm = text
            else:
                called = i + 1 < len(toks) and toks[i + 1][1] == "("
                after_dot = i > 0 and toks[i - 1][1] == "."
                if called and after_dot:
                    norm = "N" if i > 1 and toks[i - 2][1] in _SELF else text
                else:
                    norm = text if called and not after_dot and text in _BUILTINS else "N"
        elif kind == "NUMBER":
            norm = _number(text)
        elif kind == "STRING":
            norm = "S"
        elif kind == "NEWLINE":
            norm = ";"
        else:
            norm = text
        if norm == ";" and (not out or out[-1][0] == ";"):
            continue
        out.append((norm, first, last))
    return out


# ---------------------------------------------------------------- fingerprints

@lru_cache(maxsize=1 << 16)
def _token_id(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8", "replace"), digest_size=8).digest(), "big") % _MOD


def _kgram_hashes(tokens: Sequence[str], k: int) -> list[int]:
    """Polynomial rolling hash of every k-gram (deterministic across runs, unlike ``hash``)."""
    if len(tokens) < k:
        return []
    ids = [_token_id(t) for t in tokens]
    top = pow(_BASE, k - 1, _MOD)
    h = 0
    for x in ids[:k]:
        h = (h * _BASE + x) % _MOD
    out = [h]
    for i in range(k, len(ids)):
        h = ((h - ids[i - k] * top) * _BASE + ids[i]) % _MOD
        out.append(h)
    return out


def _winnow(hashes: list[int], window: int) -> list[int]:
    """Robust winnowing: the rightmost minimum of every window, each position once."""
    chosen, last, q = [], -1, deque()
    w = max(1, min(window, len(hashes)))
    for i, h in enumerate(hashes):
        while q and hashes[q[-1]] >= h:
            q.pop()
        q.append(i)
        if q[0] <= i - w:
            q.popleft()
        if i >= w - 1 and q[0] != last:
            last = q[0]
            chosen.append(last)
    return chosen


def _analyse(source, k: int, window: int) -> _File:
    toks = normalise(source)
    kgrams = _kgram_hashes([t for t, _, _ in toks], k)
    selected: dict[int, list[int]] = defaultdict(list)
    for pos in _winnow(kgrams, window):
        selected[kgrams[pos]].append(pos)
    return _File([(a, b) for _, a, b in toks], kgrams, dict(selected))


def fingerprints(source: str, *, k: int = K, window: int = WINDOW) -> dict[int, list[tuple[int, int]]]:
    """Winnowed fingerprints of one file: hash -> the (first, last) source lines of each k-gram
    with that hash. Tokens normalised as the module says; never raises (an unreadable tail is
    read with a tolerant tokenizer, non-text input gives no fingerprints)."""
    k, window = max(1, int(k)), max(1, int(window))
    f = _analyse(source, k, window)
    return {h: [(f.lines[p][0], f.lines[p + k - 1][1]) for p in ps] for h, ps in f.selected.items()}


# ---------------------------------------------------------------- pairs

def similar_pairs(submissions: Mapping[str, Mapping[str, str]], template: Mapping[str, str], *,
                  threshold: float = THRESHOLD, min_shared_tokens: int = MIN_SHARED_TOKENS,
                  common_share: float | None = COMMON_SHARE, k: int = K, window: int = WINDOW,
                  ) -> list[SimilarPair]:
    """Pairs of submissions at or above ``threshold``, most similar first (ties by ids).

    ``submissions``: id -> {graded file path -> Python source}; a missing file has no
    fingerprints. ``template``: path -> the starter code; any k-gram of any template file is
    excluded everywhere. ``common_share``: with >= COMMON_MIN_SUBMISSIONS submissions, ignore
    fingerprints held by more than that share of them (None: keep all). Never raises on bad source.
    Cost: O(total tokens) to fingerprint, plus O(sum of m^2) over the inverted index (m: the
    submissions holding a fingerprint, at most common_share of the class), not all-pairs diffs.
    """
    k, window = max(1, int(k)), max(1, int(window))
    given: set[int] = set()
    for source in template.values():
        given.update(_analyse(source, k, window).kgrams)

    keys = sorted(submissions, key=str)
    ids = [str(s) for s in keys]
    files: list[dict[str, _File]] = []
    index: dict[tuple[str, int], list[int]] = defaultdict(list)
    sizes = []
    for n, key in enumerate(keys):
        mine = {}
        files_of = submissions[key]
        for path, source in (files_of.items() if isinstance(files_of, Mapping) else ()):
            f = _analyse(source, k, window)
            f.selected = _own(f, given, k)
            mine[str(path)] = f
            for h in f.selected:
                index[(str(path), h)].append(n)
        files.append(mine)
        sizes.append(sum(len(f.selected) for f in mine.values()))

    cap = len(ids)
    if common_share is not None and len(ids) >= COMMON_MIN_SUBMISSIONS:
        cap = max(2, int(common_share * len(ids)))
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for holders in index.values():
        if len(holders) > cap:
            for n in holders:
                sizes[n] -= 1
        elif len(holders) > 1:
            for x in range(len(holders)):
                for y in range(x + 1, len(holders)):
                    shared[(holders[x], holders[y])] += 1

    pairs = []
    for (x, y), count in shared.items():
        smaller = min(sizes[x], sizes[y])
        if smaller <= 0 or count / smaller < threshold:
            continue
        lines, tokens = _matches(files[x], files[y], index, cap, k, window)
        if tokens >= min_shared_tokens:
            pairs.append(SimilarPair(ids[x], ids[y], min(1.0, count / smaller), lines))
    pairs.sort(key=lambda p: (-p.similarity, p.a, p.b))
    return pairs


def _own(f: _File, given: set[int], k: int) -> dict[int, list[int]]:
    """The fingerprints of a student's own code: a k-gram found in the template is given, and so
    is every token it covers; a k-gram less than OWN_SHARE the student's own tokens is dropped
    (one that ends a student's block and runs into the next given ``def`` line, say)."""
    n = len(f.lines)
    mark = [0] * (n + 1)
    for p, h in enumerate(f.kgrams):
        if h in given:
            mark[p] += 1
            mark[min(n, p + k)] -= 1
    given_before, depth = [0], 0
    for i in range(n):
        depth += mark[i]
        given_before.append(given_before[-1] + (depth > 0))
    need = OWN_SHARE * k
    kept = {}
    for h, ps in f.selected.items():
        if h in given:
            continue
        ps = [p for p in ps if k - (given_before[p + k] - given_before[p]) >= need - 1e-9]
        if ps:
            kept[h] = ps
    return kept


def _matches(fa: dict[str, _File], fb: dict[str, _File], index, cap: int, k: int, window: int):
    """Line ranges of the matching code per file, and the tokens it covers (the smaller side)."""
    lines, cover_a, cover_b = {}, 0, 0
    for path in sorted(set(fa) & set(fb)):
        a, b = fa[path], fb[path]
        hits = sorted(hit for h in a.selected.keys() & b.selected.keys() if len(index[(path, h)]) <= cap
                      for hit in zip(a.selected[h], b.selected[h]))      # repeats: in order
        if not hits:
            continue
        cover_a += _covered([p for p, _ in hits], k)
        cover_b += _covered([q for _, q in hits], k)
        runs: list[list[int]] = []
        for p, q in hits:
            r = runs[-1] if runs else None
            if r and p <= r[1] + window + 1 and r[2] - window <= q <= r[3] + window + 1:
                r[1], r[2], r[3] = max(r[1], p + k - 1), min(r[2], q), max(r[3], q + k - 1)
            else:
                runs.append([p, p + k - 1, q, q + k - 1])
        ranges: list[list[int]] = []
        for p0, p1, q0, q1 in runs:                    # as lines, merging runs that overlap on both sides
            a0, a1, b0, b1 = a.lines[p0][0], a.lines[p1][1], b.lines[q0][0], b.lines[q1][1]
            r = ranges[-1] if ranges else None
            if r and a0 <= r[1] + 1 and b0 <= r[3] + 1 and b1 >= r[2] - 1:
                r[1], r[2], r[3] = max(r[1], a1), min(r[2], b0), max(r[3], b1)
            else:
                ranges.append([a0, a1, b0, b1])
        lines[path] = [((a0, a1), (b0, b1)) for a0, a1, b0, b1 in ranges]
    return lines, min(cover_a, cover_b)


def _covered(starts: list[int], k: int) -> int:
    total, end = 0, -1
    for s in sorted(set(starts)):
        total += s + k - max(s, end)
        end = s + k
    return total


# ---------------------------------------------------------------- report

def _ranges(pair: SimilarPair, most: int = 3) -> str:
    parts = []
    for path, ranges in pair.shared_lines.items():
        shown = ", ".join(f"{a0}-{a1}~{b0}-{b1}" for (a0, a1), (b0, b1) in ranges[:most])
        more = f" (+{len(ranges) - most})" if len(ranges) > most else ""
        parts.append(f"{path} {shown}{more}")
    return "; ".join(parts)


def report_table(pairs: Sequence[SimilarPair], limit: int = 20) -> str:
    """Plain-text table of the first ``limit`` pairs: a, b, similarity %, files, shared lines
    (``a's lines~b's lines``). Says so when there are none. For the instructor only."""
    if not pairs:
        return "similar submissions: none at or above the threshold"
    rows = [(p.a, p.b, f"{p.similarity:.0%}", ", ".join(p.shared_lines) or "-",
             _ranges(p)) for p in pairs[:limit]]
    head = ("a", "b", "similar", "files", "shared lines (a~b)")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
    lines = [f"similar submissions (given code excluded; not part of any score): {len(pairs)} pair(s)"]
    for r in [head] + rows:
        lines.append("  ".join(c.rjust(w) if i == 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     + "  " + r[4])
    if len(pairs) > limit:
        lines.append(f"... and {len(pairs) - limit} more")
    return "\n".join(lines)


def plot(pairs: Sequence[SimilarPair], ids: Sequence[str], path) -> Path | None:
    """Write a PNG: a heatmap of the flagged pairs' similarity among the submissions involved.
    Returns the path, or None when matplotlib is missing or drawing fails (never raises)."""
    try:
        from matplotlib.figure import Figure        # no pyplot: no global backend or state
    except Exception:
        return None
    try:
        involved = [i for i in ids if any(i in (p.a, p.b) for p in pairs)]
        where = {s: n for n, s in enumerate(involved)}
        side = max(4.0, min(16.0, 2.0 + 0.25 * len(involved)))
        fig = Figure(figsize=(side + 1.5, side))
        ax = fig.subplots()
        ax.set_title(f"similar pairs: {len(pairs)} among {len(ids)} submissions (given code excluded)", fontsize=10)
        if involved:
            grid = [[float("nan")] * len(involved) for _ in involved]
            for p in pairs:
                if p.a in where and p.b in where:
                    grid[where[p.a]][where[p.b]] = grid[where[p.b]][where[p.a]] = p.similarity
            image = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="Reds")
            fig.colorbar(image, ax=ax, label="similarity")
            if len(involved) <= 60:
                ax.set_xticks(range(len(involved)), involved, rotation=90, fontsize=7)
                ax.set_yticks(range(len(involved)), involved, fontsize=7)
        else:
            ax.text(0.5, 0.5, "no similar pairs", ha="center", va="center")
            ax.set_axis_off()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        return Path(path)
    except Exception:
        return None
