"""Reading notebook-export source as text and AST: pure functions, nothing is executed.

Shared by the worker's notebook loader and the trusted side's static scan, so both see the
same statements of a file whose shell lines or broken cells make it invalid Python.
"""
from __future__ import annotations

import ast
import re

_MAGIC = re.compile(r"^(\s*)([!%].*)$")
_BLOCK_START = re.compile(r"^[^\s#)\]}]")


def neutralize(source: str) -> str:
    """``!shell`` and ``%magic`` lines become ``pass`` (same line numbers)."""
    return "\n".join(_MAGIC.sub(r"\1pass  # notebook line not run", line) for line in source.splitlines())


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
