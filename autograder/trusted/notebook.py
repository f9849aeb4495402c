"""Notebook (.ipynb) to module source, as data: the notebook is parsed as JSON, never run.

Code cells are joined in order; IPython-only lines (``!shell``, ``%magic``, ``%%cell``
magics) become comments so the module still parses. Markdown cells are dropped.
"""
from __future__ import annotations

import json


class NotebookError(Exception):
    pass


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    if not isinstance(source, str):
        raise NotebookError("a cell's source is neither text nor a list of lines")
    return source


def _neutralize(line: str) -> str:
    stripped = line.lstrip()
    if stripped.startswith(("!", "%")):
        indent = line[: len(line) - len(stripped)]
        return f"{indent}pass  # [autograder] IPython line removed: {stripped[:120]}"
    return line


def notebook_to_module(data: bytes) -> str:
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookError(f"it is not valid notebook JSON ({exc})") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise NotebookError("it has no list of cells")
    chunks = []
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = _cell_source(cell)
        if source.lstrip().startswith("%%"):
            chunks.append(f"# [autograder] cell {i} is a cell magic and was skipped\n")
            continue
        chunks.append(f"# [autograder] cell {i}\n" + "\n".join(_neutralize(l) for l in source.splitlines()) + "\n")
    return "\n".join(chunks)
