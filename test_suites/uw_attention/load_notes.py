"""What the notebook loader skipped in a student's file, added to a test's output.

The loader runs every statement of an export as Colab did; what it could not run (shell
lines aside) it explains in notes: a statement that raised, one stopped by the time cap,
a cell that does not parse, a redefinition of a graded name.
"""
from __future__ import annotations

import re

LIMIT = 12


def show(case, module: str, *, names: tuple[str, ...] = (), everything: bool = False) -> None:
    """Add ``module``'s load notes to ``case``'s output: all of them when ``everything``, else
    the unparsable cells and the notes about a statement that defines or changes one of
    ``names`` (``def name``, ``name = ...``, ``name.round_(...)``, an import of it)."""
    notes = case.load_notes(module) or []
    if isinstance(notes, str):
        notes = notes.splitlines()
    patterns = [_about(n) for n in names]
    picked = [n for n in notes if isinstance(n, str)
              and (everything or "parse" in n or any(p.search(n) for p in patterns))]
    if not picked:
        return
    case.note(f"{module}.py as loaded for grading (every statement runs as in Colab, except):")
    for text in picked[:LIMIT]:
        case.note(f"  {text}")
    if len(picked) > LIMIT:
        case.note(f"  ... and {len(picked) - LIMIT} more")


def _about(name: str) -> re.Pattern:
    """Notes (``line N `statement`: ...``) whose statement starts with ``name``, defines or imports it."""
    n = re.escape(name)
    return re.compile(rf"`(?:(?:async\s+)?(?:def|class)\s+)?{n}\b|`(?:from\s+\S+\s+)?import\b[^`]*\b{n}\b"
                      rf"|\b{n} is defined again|rebinds {n}\b")
