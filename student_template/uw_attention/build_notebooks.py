"""Build the starter notebooks (.ipynb) from their ``# %%`` sources (.py).

Cells start at ``# %%`` (code) or ``# %% [markdown]`` (markdown, written as ``#`` comment
lines). The output is nbformat 4 JSON, deterministic: the same .py always gives the same
bytes, so ``tests/test_uw_notebooks_in_sync.py`` can check the committed notebooks.

    python student_template/uw_attention/build_notebooks.py      # rewrites A2S1.ipynb, A2S2.ipynb, A2S3.ipynb
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = ("A2S1.py", "A2S2.py", "A2S3.py")
_MARKER = re.compile(r"^# %%(?:\s+\[(\w+)\])?\s*$")
METADATA = {
    "colab": {"provenance": []},
    "kernelspec": {"display_name": "Python 3", "name": "python3"},
    "language_info": {"name": "python"},
}


def _trim(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _uncomment(line: str) -> str:
    if line.startswith("# "):
        return line[2:]
    return line[1:] if line.startswith("#") else line


def _source(lines: list[str]) -> list[str]:
    """nbformat's list of lines: each ends with a newline except the last."""
    return [l + "\n" for l in lines[:-1]] + lines[-1:]


def split_cells(text: str) -> list[tuple[str, list[str]]]:
    """[(cell_type, lines)] of a ``# %%`` source, in order."""
    cells: list[tuple[str, list[str]]] = []
    kind, lines = "code", []
    for line in text.splitlines():
        match = _MARKER.match(line)
        if match:
            if _trim(lines):
                cells.append((kind, _trim(lines)))
            kind, lines = ("markdown" if match.group(1) == "markdown" else "code"), []
        else:
            lines.append(line)
    if _trim(lines):
        cells.append((kind, _trim(lines)))
    return cells


def to_notebook(text: str) -> dict:
    """The nbformat 4 notebook of a ``# %%`` source."""
    cells = []
    for kind, lines in split_cells(text):
        if kind == "markdown":
            cells.append({"cell_type": "markdown", "metadata": {},
                          "source": _source([_uncomment(l) for l in lines])})
        else:
            cells.append({"cell_type": "code", "execution_count": None, "metadata": {},
                          "outputs": [], "source": _source(lines)})
    return {"cells": cells, "metadata": METADATA, "nbformat": 4, "nbformat_minor": 0}


def render(text: str) -> str:
    """The .ipynb file's text for a ``# %%`` source."""
    return json.dumps(to_notebook(text), indent=1, ensure_ascii=False) + "\n"


def build(folder: Path = HERE) -> dict[str, str]:
    """{notebook file name: its text} for every source in ``folder``."""
    return {name.replace(".py", ".ipynb"): render((folder / name).read_text(encoding="utf-8"))
            for name in SOURCES}


def main() -> int:
    for name, text in build().items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
