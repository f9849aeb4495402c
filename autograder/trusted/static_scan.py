"""Static scan for banned functions: reads the submitted source as an AST, never runs it.

Resolves what each name in the ban's scope refers to, through imports under other names
(``from torch.nn import functional as G``), assignments (``ln = F.layer_norm``),
``getattr`` with constant-foldable strings (``getattr(F, "layer_" + "norm")``), star
imports, and module-level helpers the scope calls. Dynamic code (``exec``, ``eval``,
``compile``, ``__import__``, ``importlib``) in scope is reported too: it defeats the scan.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from autograder.assignment import Ban
from autograder.notebook_source import neutralize, parse_skipping_broken_blocks

DYNAMIC_CALLS = {"exec", "eval", "compile", "__import__"}


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.what}"


def _fold_str(node: ast.AST) -> str | None:
    """The value of a string expression built only from constants, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _fold_str(node.left), _fold_str(node.right)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                parts.append(value.value)
            elif isinstance(value, ast.FormattedValue):
                inner = _fold_str(value.value)
                if inner is None:
                    return None
                parts.append(inner)
            else:
                return None
        return "".join(parts)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"
            and len(node.args) == 1 and isinstance(node.args[0], (ast.List, ast.Tuple))):
        sep = _fold_str(node.func.value)
        items = [_fold_str(e) for e in node.args[0].elts]
        if sep is not None and all(i is not None for i in items):
            return sep.join(items)
    return None


class _Resolver:
    """Maps local names to the dotted names they stand for."""

    def __init__(self):
        self.aliases: dict[str, str] = {}
        self.star_modules: list[str] = []

    def learn(self, node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    self.aliases[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    self.aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                if a.name == "*":
                    self.star_modules.append(node.module)
                else:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Assign):
            target = self.resolve(node.value)
            if target:
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        self.aliases[t.id] = target

    def resolve(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base else None
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                and len(node.args) >= 2):
            base = self.resolve(node.args[0])
            attr = _fold_str(node.args[1])
            return f"{base}.{attr}" if base and attr else None
        return None


def _matches(dotted: str, banned: tuple[str, ...]) -> str | None:
    for b in banned:
        if dotted == b or dotted.startswith(b + "."):
            return b
        # The same function reached through another torch path (torch.nn.modules.normalization.LayerNorm).
        if dotted.startswith("torch.") and dotted.rsplit(".", 1)[-1] == b.rsplit(".", 1)[-1] and "." in b[6:]:
            return b
    return None


def _scope_nodes(tree: ast.Module, scope: tuple[str, ...], keep_first: tuple[str, ...] = ()) -> list[ast.AST]:
    """The scoped definitions, module-level statements patching them, and helpers they call.

    A name defined twice counts by its last definition (what an import leaves), or by its
    first for ``keep_first`` names (what the notebook loader grades).
    """
    if not scope:
        return [tree]
    defs: dict[str, ast.AST] = {}
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if n.name not in keep_first or n.name not in defs:
                defs[n.name] = n
    wanted = [defs[name] for name in scope if name in defs]
    for stmt in tree.body:   # e.g. LayerNorm.forward = some_function
        if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id in scope
                for t in stmt.targets):
            wanted.append(stmt)
    seen = {id(n) for n in wanted}
    queue = list(wanted)
    while queue:
        node = queue.pop()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in defs and id(defs[sub.id]) not in seen:
                seen.add(id(defs[sub.id]))
                wanted.append(defs[sub.id])
                queue.append(defs[sub.id])
    return wanted


def scan_source(source: str, filename: str, ban: Ban, *, notebook: bool = False,
                keep_first: tuple[str, ...] = ()) -> list[Finding]:
    """Findings of ``ban`` in ``source``.

    A module that does not parse yields no findings (its import reports the syntax error);
    a notebook export is read as the notebook loader reads it (shell lines neutralised,
    broken blocks skipped). Code nested too deeply to be read (a RecursionError in the scan)
    is one finding: it cannot be shown free of the banned functions.
    """
    try:
        return _scan(source, filename, ban, notebook, keep_first)
    except RecursionError:
        return [Finding(filename, 0, "cannot be checked for banned functions: its code is nested too deeply "
                                     "to be read (simplify the deeply nested expression)")]


def _scan(source: str, filename: str, ban: Ban, notebook: bool, keep_first: tuple[str, ...]) -> list[Finding]:
    if notebook:
        tree = parse_skipping_broken_blocks(neutralize(source), filename)
    else:
        try:
            tree = ast.parse(source, filename=filename)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return []
    resolver = _Resolver()
    for stmt in tree.body:
        resolver.learn(stmt)
    findings: list[Finding] = []
    reported: set[tuple[int, str]] = set()

    def report(node: ast.AST, what: str) -> None:
        key = (getattr(node, "lineno", 0), what)
        if key not in reported:
            reported.add(key)
            findings.append(Finding(filename, key[0], what))

    for root in _scope_nodes(tree, ban.scope, keep_first):
        for node in ast.walk(root):
            if isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign)):
                resolver.learn(node)
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imported = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [f"{node.module}.{a.name}" for a in node.names if node.module]
                for dotted in imported:
                    if _matches(dotted, ban.names):
                        report(node, f"imports {dotted} ({ban.reason or 'banned here'})")
                if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                        a.name.split(".")[0] == "importlib" for a in node.names) or (
                        isinstance(node, ast.ImportFrom) and (node.module or "").startswith("importlib")):
                    report(node, "imports importlib (dynamic imports defeat the banned-function check)")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in DYNAMIC_CALLS:
                report(node, f"calls {node.func.id}() (dynamic code defeats the banned-function check)")
            if isinstance(node, (ast.Name, ast.Attribute, ast.Call)):
                dotted = resolver.resolve(node)
                if dotted is None and isinstance(node, ast.Name) and resolver.star_modules:
                    for module in resolver.star_modules:
                        if _matches(f"{module}.{node.id}", ban.names):
                            dotted = f"{module}.{node.id}"
                if dotted:
                    hit = _matches(dotted, ban.names)
                    if hit:
                        report(node, f"uses {dotted} ({ban.reason or 'banned here'})")
    # A chain like torch.nn.functional.layer_norm is reported once, at its longest match.
    findings.sort(key=lambda f: (f.line, -len(f.what)))
    unique: dict[int, Finding] = {}
    for f in findings:
        unique.setdefault(f.line, f)
    return sorted(unique.values(), key=lambda f: f.line)
