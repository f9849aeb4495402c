"""Remove hidden test methods from a suite's source, for the student bundle.

Which methods are hidden is decided by importing the suite (the decorators, however they
are spelled, e.g. ``@visibility(HIDDEN)``); the source is then cut by line ranges so the
rest of the file stays as written.
"""
from __future__ import annotations

import ast
import inspect
from collections import defaultdict
from pathlib import Path

from autograder.suite.decorators import attribute
from autograder.trusted.runner import _method, collect_tests


def hidden_methods(assignment: str) -> dict[Path, dict[str, set[str]]]:
    """``{test file: {class name: {method names}}}`` of every non-visible test, where it is defined."""
    found: dict[Path, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for case in collect_tests(assignment):
        method = _method(case)
        if attribute(method, "__visibility__", "visible") == "visible":
            continue
        name = case._testMethodName
        owner = next(k for k in type(case).__mro__ if name in vars(k))
        found[Path(inspect.getfile(owner)).resolve()][owner.__name__].add(name)
    return found


def strip_methods(source: str, doomed: dict[str, set[str]]) -> str:
    """``source`` without the methods ``doomed[class]`` (decorators included); raises if one stays."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    cuts: list[tuple[int, int, str]] = []          # (first line, last line, replacement), 1-based
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef) or node.name not in doomed:
            continue
        removed = [f for f in node.body
                   if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name in doomed[node.name]]
        for i, f in enumerate(removed):
            first = min([f.lineno] + [d.lineno for d in f.decorator_list])
            keep_body = i == 0 and len(removed) == len(node.body)
            cuts.append((first, f.end_lineno, " " * f.col_offset + "pass\n" if keep_body else ""))
    for first, last, replacement in sorted(cuts, reverse=True):
        lines[first - 1:last] = [replacement] if replacement else []
    stripped = "".join(lines)
    left = {(c.name, f.name) for c in ast.walk(ast.parse(stripped)) if isinstance(c, ast.ClassDef)
            for f in c.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
    kept = {(c, m) for c, ms in doomed.items() for m in ms} & left
    if kept:
        raise RuntimeError(f"could not strip hidden tests {sorted(kept)}")
    return stripped
