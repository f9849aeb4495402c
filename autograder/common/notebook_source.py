"""Reading notebook-export source as text and AST: pure functions, nothing is executed.

Shared by the worker's notebook loader, the trusted side's static scan and the ``.ipynb``
reader, so all three see the same statements of a file whose IPython lines or broken
cells make it invalid Python. IPython syntax is rewritten the way IPython's own input
transformers rewrite it, keeping every line number:

- a shell line ``!cmd`` or a line magic ``%magic args`` on its own becomes ``pass`` (it
  does not run on a grader);
- ``x = !cmd`` becomes ``x = get_ipython().getoutput('cmd')`` and ``x = %magic args``
  ``x = get_ipython().run_line_magic('magic', 'args')``, at any indentation (inside a
  function too); the loader's ``get_ipython()`` answers ``[]`` and ``None``;
- a cell magic ``%%name``: when the cell's body is Python run in the notebook's namespace
  (``%%time``, ``%%capture``, ``%%prun``) only the magic line becomes ``pass`` and the body
  stays; for any other (``%%bash``, ``%%writefile``, ``%%html``, ``%%timeit``, which leaves
  no names behind) the body is commented out up to the end of its cell: the next ``# %%``
  marker, or, in a file without markers (Colab's "Download .py"), the next blank line.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re

PYTHON_CELL_MAGICS = frozenset({"time", "capture", "prun"})

_CELL_MARKER = re.compile(r"^# %%")
_CELL_MAGIC = re.compile(r"^%%(\w+)")
_ALONE = re.compile(r"^(\s*)([!%].*)$")
_ASSIGNED = re.compile(r"^(\s*[\w.]+(?:\s*,\s*[\w.]+)*\s*=\s*)([!%])(.*)$")
_BLOCK_START = re.compile(r"^[^\s#)\]}]")


def _assigned(match: re.Match) -> str:
    lhs, kind, rest = match.groups()
    if kind == "!":
        return f"{lhs}get_ipython().getoutput({rest.strip()!r})"
    name, _, args = rest.lstrip("%").strip().partition(" ")
    return f"{lhs}get_ipython().run_line_magic({name!r}, {args.strip()!r})"


def memo_name(path: str) -> str:
    """The file, in a worker's scratch folder, where loading the notebook at ``path`` records its
    slow statements; the grader carries it from a visible test's worker to later workers."""
    return f".{hashlib.sha256(path.encode()).hexdigest()[:16]}.slow-lines.json"


def parse_memo(data: bytes) -> bytes | None:
    """A memo as the grader passes it on: only line numbers (at most 64), or None if malformed."""
    try:
        raw = json.loads(data)
        slow = sorted({int(x) for x in raw.get("slow", []) if type(x) is int and 0 < x < 10**6})[:64]
        cut = raw.get("cut") if type(raw.get("cut")) is int and 0 < raw.get("cut") < 10**6 else None
    except (ValueError, TypeError, AttributeError):
        return None
    return json.dumps({"slow": slow, "cut": cut}).encode()


def neutralize(source: str) -> str:
    """``source`` with IPython syntax rewritten as described in the module docstring."""
    lines = source.splitlines()
    has_markers = any(_CELL_MARKER.match(line) for line in lines)
    out: list[str] = []
    skipping = False
    for line in lines:
        if skipping:
            ends = _CELL_MARKER.match(line) if has_markers else not line.strip()
            if not ends:
                out.append("# " + line if line.strip() else line)
                continue
            skipping = False
        magic = _CELL_MAGIC.match(line)
        if magic:
            runs = magic.group(1) in PYTHON_CELL_MAGICS
            out.append(f"pass  # cell magic: {line[:100]}" + (" (the cell's body runs)" if runs
                                                               else " (the cell's body is not Python run here)"))
            skipping = not runs
            continue
        assigned = _ASSIGNED.match(line)
        if assigned:
            out.append(_assigned(assigned))
            continue
        out.append(_ALONE.sub(r"\1pass  # notebook line not run: \2", line))
    return "\n".join(out)


def parse_skipping_broken_blocks(source: str, filename: str, notes: list[str] | None = None) -> ast.Module:
    """Parse ``source``; a top-level block that does not parse is blanked (and noted) and parsing retried."""
    notes = notes if notes is not None else []
    lines = source.splitlines()
    for _ in range(200):
        try:
            return ast.parse("\n".join(lines), filename=filename)
        except SyntaxError as exc:
            bad = min(max((exc.lineno or 1) - 1, 0), max(len(lines) - 1, 0))
            start = bad
            while start > 0 and not _BLOCK_START.match(lines[start]):
                start -= 1
            end = bad + 1
            while end < len(lines) and not _BLOCK_START.match(lines[end]):
                end += 1
            notes.append(f"line {start + 1}-{end}: skipped, it does not parse ({exc.msg})")
            for i in range(start, end):
                lines[i] = ""
        except (ValueError, RecursionError, MemoryError) as exc:
            notes.append(f"the file could not be parsed ({type(exc).__name__})")
            break
    return ast.Module(body=[], type_ignores=[])
