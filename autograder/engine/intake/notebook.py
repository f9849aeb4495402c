"""Notebook (.ipynb) to module source, as data: the notebook is parsed as JSON, never run.

Every nbformat version is read: v4 (``cells`` with ``source``), v3 and v2 (``worksheets``,
each with ``cells`` whose code is in ``input``) and v1 (``cells`` whose code is in ``code``
or ``input``). A cell's text may be a string or a list of lines. Code cells are joined in
order, each after a ``# %% cell N`` marker; markdown, heading and raw cells are dropped.
IPython syntax is then rewritten by ``autograder.common.notebook_source.neutralize``, the same
rewrite the loader and the static scan apply to ``.py`` exports (so ``%%time`` cells keep
their body, ``%%bash`` cells do not, ``x = !cmd`` stays an assignment).

A small reader rather than ``nbformat``: the grader needs the code cells' text only, and
nbformat would bring jsonschema, traitlets and jupyter_core into the deployment for it.
"""
from __future__ import annotations

import json

from autograder.common.notebook_source import neutralize


class NotebookError(Exception):
    pass


def _text(value, what: str) -> str:
    if isinstance(value, list):
        return "".join(s for s in value if isinstance(s, str))
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    raise NotebookError(f"{what} is neither text nor a list of lines")


def _cells(nb: dict) -> list:
    """The notebook's cells in order, whatever its nbformat version."""
    if isinstance(nb.get("worksheets"), list):   # nbformat 2 and 3
        cells = []
        for sheet in nb["worksheets"]:
            if isinstance(sheet, dict) and isinstance(sheet.get("cells"), list):
                cells.extend(sheet["cells"])
        return cells
    if isinstance(nb.get("cells"), list):        # nbformat 4 (and 1)
        return nb["cells"]
    raise NotebookError("it has no list of cells")


def code_cells(data: bytes) -> list[str]:
    """The source text of each code cell, in order."""
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookError(f"it is not valid notebook JSON ({exc})") from None
    if not isinstance(nb, dict):
        raise NotebookError("it has no list of cells")
    sources = []
    for cell in _cells(nb):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        if "source" in cell:
            text = cell["source"]
        elif "input" in cell:
            text = cell["input"]
        else:
            text = cell.get("code")
        sources.append(_text(text, "a cell's source"))
    return sources


def notebook_to_module(data: bytes) -> str:
    """The notebook's code cells as one module source (see the module docstring)."""
    chunks = [f"# %% cell {i}\n{source}\n" for i, source in enumerate(code_cells(data))]
    return neutralize("\n".join(chunks)) + "\n"
