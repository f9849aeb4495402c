"""Reading the London baseline: what arguments its script wants, and the figure it printed.

Trusted code with no student objects: it reads the submitted source as text (``ast``, never
run here) and the script's captured output (plain strings from the worker).

The starter ``london_baseline.py`` is four comment lines: real files are top-level scripts
that print the accuracy in their own words, e.g. ``Correct: 25.0 out of 500.0: 5.0%``,
``(500.0, 25.0)``, ``percent correct: 0.05``, ``Accuracy with London Baseline: 0.05`` or
``25 out of 500 : 5.0 %``. ``read_figure`` accepts the right figure in any such form: a
fraction (0.05), a percentage (5, marked by ``%`` or not) or a count pair (25 of 500), each
compared at the precision it was printed with. It calls the output wrong only when a line
that reports a figure (a keyword such as "accuracy", "correct", "%", "baseline", or a line
of bare numbers) holds a figure that can be read and is not the right one; otherwise the
figure is undecided.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

DEV_FILE = "birth_dev.tsv"
TOTAL, CORRECT = 500, 25                 # predicting "London" on birth_dev.tsv
FRACTION, PERCENT = CORRECT / TOTAL, 100 * CORRECT / TOTAL
EXPECTED = f"{CORRECT} of {TOTAL} right: {PERCENT:.1f}% (a fraction of {FRACTION:g})"
OUTPUTS_FILE = "london_baseline.dev.predictions"

NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?!\w)(\s*%)?")
FIGURE_WORDS = ("accura", "correct", "percent", "%", "baseline", "london", "score", "result", "precision")
EPS = 1e-9


# -- the script's arguments ---------------------------------------------------------------------
def has_code(source: str) -> bool:
    """Whether the file holds any statement besides a docstring (the starter holds only comments)."""
    try:
        body = ast.parse(source).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return True          # it will fail when run, with the reason
    return any(not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)) and not isinstance(s, ast.Pass)
               for s in body)


def _argparse_names(source: str) -> tuple[list[str], list[str]]:
    """(options, positionals) declared by ``add_argument`` calls in the source."""
    options, positionals = [], []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return options, positionals
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument" and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            flags = [n for n in names if n.startswith("-")]
            if flags:
                options.append(max(flags, key=len))
            elif node.args[0].value.isidentifier():
                positionals.append(node.args[0].value)
    return options, positionals


GENERIC_INPUTS = {"path", "file", "filename", "filepath", "data", "input", "corpus", "data_path", "file_path",
                  "input_path", "corpus_path", "input_file", "data_file"}


def _meaning(name: str) -> str | None:
    """What an argument of this name asks for: "outputs" (a predictions file to write), "eval" (the
    dev file) or None (anything else, e.g. run.py's parameter paths: never supplied)."""
    name = name.lower().lstrip("-").replace("-", "_")
    if "output" in name or "pred" in name:
        return "outputs"
    if any(k in name for k in ("eval", "dev", "gold", "tsv")) or name in GENERIC_INPUTS:
        return "eval"
    return None


def arguments(source: str, dev_path: str) -> list[str]:
    """Command-line arguments for the script: ``dev_path`` for the arguments that name the
    evaluation corpus, a predictions file in the working directory for those that name an
    output; options the script does not declare are never passed (argparse would refuse them)."""
    options, positionals = _argparse_names(source)
    values = {"eval": dev_path, "outputs": OUTPUTS_FILE}
    args: list[str] = []
    for name in positionals:
        meaning = _meaning(name)
        if meaning is None:
            break                # a positional we cannot supply: leave the rest out too
        args.append(values[meaning])
    for option in options:
        meaning = _meaning(option)
        if meaning is not None and option.startswith("--"):
            args += [option, values[meaning]]
    if not options and not positionals and re.search(r"\bsys\.argv\s*\[\s*1\s*\]", source):
        args.append(dev_path)    # reads its corpus from sys.argv[1]
    return args


# -- the printed figure ----------------------------------------------------------------------------
@dataclass
class Figure:
    verdict: str                                     # "right", "wrong" or "undecided"
    lines: list[str] = field(default_factory=list)   # the lines that decided it (the figure lines when undecided)


def _numbers(line: str) -> list[tuple[float, float, bool]]:
    """(value, half a unit of its last printed digit, marked as a percentage) of each number in ``line``."""
    out = []
    for match in NUMBER.finditer(line):
        text = match.group(0).rstrip("% \t")
        try:
            exponent = Decimal(text).as_tuple().exponent
            value = float(text)
        except (InvalidOperation, ValueError):
            continue
        if isinstance(exponent, int):
            out.append((value, 0.5 * 10.0 ** exponent, bool(match.group(1))))
    return out


def _readings(value: float, half: float, percent: bool) -> list[tuple[bool, bool]]:
    """(matches the right figure, printed precisely enough to tell) for each way the number can
    be read: a percentage, or a fraction. Precise enough: to a tenth of the figure (5% to the
    unit, 0.05 to two decimals), so "0.0" or "0.1" tell nothing about 0.05 either way."""
    out = []
    for target, applies in ((PERCENT, percent or 0 <= value <= 100), (FRACTION, not percent and 0 <= value <= 1)):
        if applies:
            precise = half <= target / 10 + EPS
            out.append((precise and abs(value - target) <= half + EPS, precise))
    return out


def _counts(numbers) -> list[float]:
    """Ratios a/b of the whole numbers a <= b printed on one line (a count out of a total)."""
    whole = [v for v, _, percent in numbers if not percent and v >= 0 and float(v).is_integer()]
    return [a / b for i, a in enumerate(whole) for j, b in enumerate(whole) if i != j and 0 <= a <= b and b > 0]


def _line_verdict(line: str) -> str:
    numbers = _numbers(line)
    ratios = _counts(numbers)
    if any(abs(r - FRACTION) <= EPS for r in ratios) or any(
            right for n in numbers for right, _ in _readings(*n)):
        return "right"
    lowered = line.lower()
    figure_line = any(w in lowered for w in FIGURE_WORDS) or not re.search(r"[a-z]{2,}", lowered.replace("tensor", ""))
    if not figure_line:
        return "undecided"
    wrong_number = any(readings and all(precise for _, precise in readings)
                       for readings in (_readings(*n) for n in numbers))
    wrong_count = any(b >= 100 for b in (v for v, _, p in numbers if not p)) and bool(ratios)
    return "wrong" if wrong_number or wrong_count else "undecided"


def read_figure(output: str) -> Figure:
    """The verdict on what the baseline printed: right when any line gives the right figure,
    wrong when some figure line gives a readable figure and none is right, else undecided."""
    lines = [l.strip() for l in output.splitlines() if l.strip()]
    verdicts = [(line, _line_verdict(line)) for line in lines]
    for kind in ("right", "wrong"):
        chosen = [line for line, v in verdicts if v == kind]
        if chosen:
            return Figure(kind, chosen[:5])
    return Figure("undecided", [line for line in lines if _numbers(line)][:5])
