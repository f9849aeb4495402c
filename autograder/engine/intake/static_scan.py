"""Static scan for banned functions: reads the submitted source as an AST, never runs it.

Resolves what each name in the ban's scope refers to, through imports under other names
(``from torch.nn import functional as G``), assignments (``ln = F.layer_norm``),
``getattr`` with constant-foldable strings (``getattr(F, "layer_" + "norm")``), star
imports, module-level helpers the scope calls, and module-level containers and objects a
banned function was put in (``FNS = [F.layer_norm]``, ``D["ln"] = ...``, ``ns.f = ...``,
``FNS.append(...)``, ``setattr(ns, "f", ...)``, ``globals()["f"] = ...``, a ``global``
written by a function). A scope name bound by an assignment or an import instead of a
``def`` (``self_attention = torch_attention``) is scanned through that binding. Dynamic
code (``exec``, ``eval``, ``compile``, ``__import__``, ``importlib``) in scope is reported
too: it defeats the scan.

Length: one walk of the AST with the rules of every ban kind (names, aliases, containers); split, the rules would lose the shared scope tracking.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from autograder.assignment import Ban
from autograder.common.notebook_source import neutralize, parse_skipping_broken_blocks

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


def _module_statements(body: list[ast.stmt]):
    """Statements run at module level: the top level and the blocks in it (not function or class bodies)."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _module_statements(getattr(stmt, field, None) or [])
        for handler in getattr(stmt, "handlers", None) or []:
            yield from _module_statements(handler.body)


def _binds(stmt: ast.stmt) -> set[str]:
    """Names a module-level statement binds as a whole (``def x``, ``x = ...``, ``import x``, ``for x in``)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names if a.name != "*"}
    targets = []
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
        targets = [stmt.target]
    elif isinstance(stmt, (ast.For, ast.AsyncFor)):
        targets = [stmt.target]
    elif isinstance(stmt, (ast.With, ast.AsyncWith)):
        targets = [i.optional_vars for i in stmt.items if i.optional_vars is not None]
    names = set()
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names


def _scope_nodes(tree: ast.Module, scope: tuple[str, ...], keep_first: tuple[str, ...] = ()) -> list[ast.AST]:
    """The scoped definitions, module-level statements patching them, and helpers they call.

    A name defined twice counts by its last definition (what an import leaves), or by its
    first for ``keep_first`` names (what the notebook loader grades). A scope name bound by
    an assignment, an import or a block instead of a ``def`` is scanned through that statement.
    """
    if not scope:
        return [tree]
    defs: dict[str, ast.AST] = {}
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if n.name not in keep_first or n.name not in defs:
                defs[n.name] = n
    wanted = []
    for name in scope:
        bindings = [stmt for stmt in tree.body if name in _binds(stmt) or any(
            name in _binds(inner) for inner in _module_statements([stmt]) if inner is not stmt)]
        if name in keep_first:
            bindings = bindings[:1]
        else:   # the last binding made at the top level, and any made later in a block
            last = max((i for i, stmt in enumerate(bindings) if name in _binds(stmt)), default=0)
            bindings = bindings[last:]
        wanted.extend(b for b in bindings if all(b is not w for w in wanted))
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


# -- module-level containers and objects holding banned functions ---------------------------
_DYNAMIC_NAMESPACES = ("globals", "vars", "locals")
_BUILTINS = ("builtins", "__builtins__")


def _key(node: ast.AST) -> str | None:
    """``FNS``, ``ns.f``; a subscript stands for its container (``D["k"]`` -> ``D``)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _key(node.value)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, (ast.Subscript, ast.Starred)):
        return _key(node.value)
    return None


class _Taint:
    """Module-level names (dotted keys) and definitions that hold or use a banned function."""

    def __init__(self, tree: ast.Module, resolver: "_Resolver", ban: Ban):
        self.resolver, self.ban = resolver, ban
        self.keys: dict[str, tuple[int, str]] = {}       # "FNS" -> (line, what it holds)
        self.defs: dict[str, tuple[int, str]] = {}       # "helper" -> (line, what it uses)
        self.computed: list[tuple[int, str]] = []        # stored under a name the scan cannot compute
        self.imported = set(resolver.aliases)
        defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        writes = [(stmt, None) for stmt in _module_statements(tree.body)]
        for node in ast.walk(tree):   # functions writing module globals (``global FNS``)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names = {n for g in ast.walk(node) if isinstance(g, ast.Global) for n in g.names}
                if names:
                    writes.extend((stmt, names) for stmt in ast.walk(node) if isinstance(stmt, ast.stmt))
        for _ in range(8):   # to a fixed point: FNS = [F.layer_norm]; G = FNS; H = {"g": G}
            before = (len(self.keys), len(self.defs))
            for name, node in defs.items():
                if name not in self.defs:
                    what = self.mentions(node)
                    if what:
                        self.defs[name] = (node.lineno, what)
            for stmt, only in writes:
                self._learn(stmt, only)
            if (len(self.keys), len(self.defs)) == before:
                break

    def mentions(self, node: ast.AST) -> str | None:
        """What banned function the expression (or definition) holds or uses, if any."""
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Name, ast.Attribute, ast.Call)):
                dotted = self.resolver.resolve(sub)
                if dotted and _matches(dotted, self.ban.names):
                    return dotted
            if isinstance(sub, (ast.Name, ast.Attribute)):
                held = self.held(sub)
                if held:
                    return held[1]
        return None

    def held(self, node: ast.AST) -> tuple[str, str] | None:
        """(key, what) when ``node`` (a name or attribute chain) reaches a tainted key or definition."""
        raw = _key(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
        if not raw:
            return None
        root = raw.split(".")[0]
        if root in self.defs and raw == root:
            return raw, self.defs[root][1]
        for key, (_, what) in self.keys.items():
            if raw == key or raw.startswith(key + ".") or (key.startswith(raw + ".") and root not in self.imported):
                return key, what
        return None

    def _learn(self, stmt: ast.stmt, only: set[str] | None) -> None:
        targets, values = self._writes(stmt)
        if not targets:
            return
        what = None
        for value in values:
            what = what or self.mentions(value)
        if not what:
            return
        for target in targets:
            if target is None:   # globals()[name] = ..., with a name the scan cannot compute
                self.computed.append((getattr(stmt, "lineno", 0), what))
                continue
            if only is not None and target.split(".")[0] not in only:
                continue
            keys = [target]
            parts = target.split(".")
            if parts[0] in _BUILTINS and len(parts) > 1:
                keys.append(".".join(parts[1:]))    # builtins.ln = ... makes a bare name ln
            for key in keys:
                self.keys.setdefault(key, (getattr(stmt, "lineno", 0), what))

    def _writes(self, stmt: ast.stmt) -> tuple[list[str | None], list[ast.AST]]:
        """The keys ``stmt`` writes and the expressions it writes into them."""
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            keys = []
            for target in targets:
                for node in (target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]):
                    keys.append(self._target_key(node))
            return keys, [stmt.value] if stmt.value is not None else []
        if isinstance(stmt, (ast.For, ast.AsyncFor)):
            return [_key(n) for n in ast.walk(stmt.target) if isinstance(n, ast.Name)], [stmt.iter]
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            return [_key(i.optional_vars) for i in stmt.items if i.optional_vars is not None], \
                [i.context_expr for i in stmt.items]
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            call = stmt.value
            values = list(call.args) + [k.value for k in call.keywords]
            if isinstance(call.func, ast.Name) and call.func.id == "setattr" and len(call.args) >= 2:
                base, attr = _key(call.args[0]), _fold_str(call.args[1])
                return [f"{base}.{attr}" if base and attr else base], values[2:]
            if isinstance(call.func, ast.Attribute):   # FNS.append(...), D.update(...), globals().update(...)
                owner = call.func.value
                if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) \
                        and owner.func.id in _DYNAMIC_NAMESPACES:
                    keys = [k.arg for k in call.keywords if k.arg] + [
                        _fold_str(k) for a in call.args if isinstance(a, ast.Dict) for k in a.keys if k is not None]
                    return keys or [None], values
                return [_key(owner)], values
        return [], []

    @staticmethod
    def _target_key(node: ast.AST) -> str | None:
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Call) \
                and isinstance(node.value.func, ast.Name) and node.value.func.id in _DYNAMIC_NAMESPACES:
            return _fold_str(node.slice)   # globals()["ln"] = ...: the name ln, or None if computed
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "__builtins__":
            return _fold_str(node.slice)
        return _key(node)


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
    taint = _Taint(tree, resolver, ban)
    findings: list[Finding] = []
    reported: set[tuple[int, str]] = set()

    def report(node: ast.AST, what: str) -> None:
        key = (getattr(node, "lineno", 0), what)
        if key not in reported:
            reported.add(key)
            findings.append(Finding(filename, key[0], what))

    if ban.scope:
        for line, what in taint.computed:
            report(ast.Pass(lineno=line), f"stores {what} under a computed name ({ban.reason or 'banned here'})")

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
                held = taint.held(node) if isinstance(node, (ast.Name, ast.Attribute)) \
                    and isinstance(node.ctx, ast.Load) else None
                if held and held[0] in taint.keys:
                    line = taint.keys[held[0]][0]
                    report(node, f"uses {held[0]}, which holds {held[1]} (set at line {line}; "
                                 f"{ban.reason or 'banned here'})")
    # A chain like torch.nn.functional.layer_norm is reported once, at its longest match.
    findings.sort(key=lambda f: (f.line, -len(f.what)))
    unique: dict[int, Finding] = {}
    for f in findings:
        unique.setdefault(f.line, f)
    return sorted(unique.values(), key=lambda f: f.line)
