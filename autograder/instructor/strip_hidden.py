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

from autograder.engine.spec import collect_tests, spec_of


def hidden_methods(assignment: str) -> dict[Path, dict[str, set[str]]]:
    """``{test file: {class name: {method names}}}`` of every non-visible test, where it is defined."""
    found: dict[Path, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for case in collect_tests(assignment):
        if spec_of(case).visible:
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


_KEEP_METHODS = {"setUp", "tearDown", "setUpClass", "tearDownClass", "run"}    # unittest calls them
_KEEP_FUNCTIONS = {"setUpModule", "tearDownModule", "load_tests"}


def _defined(node: ast.stmt) -> set[str] | None:
    """What a removable top-level statement defines (None: never removed: imports, code, dunders)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names = {node.name}
    elif isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if not all(isinstance(t, ast.Name) for t in targets):
            return None
        names = {t.id for t in targets}
    else:
        return None
    return None if any(n.startswith("__") or n in _KEEP_FUNCTIONS for n in names) else names


def _is_test_class(node: ast.stmt) -> bool:
    return isinstance(node, ast.ClassDef) and any(
        isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name.startswith("test") for f in node.body)


def strip_unused(source: str) -> str:
    """``source`` without what nothing left in it uses: module-level functions, classes and
    constants, and helper methods of test classes, removed until none is left (a hidden test's
    corpus, seeds or helpers do not outlive it). Imports and test methods stay."""
    while True:
        tree = ast.parse(source)
        nodes: list[tuple[ast.stmt, set[str]]] = []       # (removable node, the names it defines)
        for top in tree.body:
            if _is_test_class(top):
                nodes += [(f, {f.name}) for f in top.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                          and not f.name.startswith("test") and f.name not in _KEEP_METHODS
                          and not f.name.startswith("__")]
            else:
                defined = _defined(top)
                if defined is not None:
                    nodes.append((top, defined))
        dead = []
        for node, names in nodes:
            inside = {id(n) for n in ast.walk(node)}
            used = set()
            for other in tree.body:
                if other is node:
                    continue
                for sub in ast.walk(other):
                    if id(sub) in inside:
                        continue
                    if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                        used.add(sub.id)
                    elif isinstance(sub, ast.Attribute):
                        used.add(sub.attr)
                    elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                        used.add(sub.value)
            if not names & used:
                dead.append(node)
        if not dead:
            return source
        lines = source.splitlines(keepends=True)
        for node in sorted(dead, key=lambda n: -n.lineno):
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            lines[first - 1:node.end_lineno] = []
        source = "".join(lines)
