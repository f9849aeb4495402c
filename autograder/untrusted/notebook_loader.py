"""Loading a notebook export statement by statement (runs in the worker, never in the parent).

A Colab "Download .py" is not a module: shell lines, top-level training, downloads, a
broken cell, graded functions redefined later. ``load_notebook`` builds a module from the
definitions and values the file contains:

- ``!shell`` and ``%magic`` lines become ``pass``; statements that do not parse are skipped
  (the enclosing top-level block is blanked and parsing retried), so one broken cell does
  not sink the others;
- only imports (failures skipped), ``def``/``class``, assignments (each under a short time
  cap) and ``with torch.no_grad():`` blocks of those run; bare calls (``main()``,
  ``plt.show()``), loops, ``if``/``try``/other blocks are not run;
- for ``keep_first`` names the first definition stays and later redefinitions are skipped;
- for ``watch`` names, the last value of every binding is recorded in order (``m_key``
  assigned for 1.4.1, modified in place, then rebound for 1.4.2 gives two values);
- afterwards a module-level ``DEVICE``/``device`` is pointed at the grading device.

Every skipped or failed statement is described in ``LoadResult.notes``.
"""
from __future__ import annotations

import ast
import copy
import hashlib
import json
import os
import signal
import sys
import types
from dataclasses import dataclass, field

import torch

from autograder.notebook_source import neutralize, parse_skipping_broken_blocks

STATEMENT_TIME_CAP_S = 2.0
MAX_NOTES = 60
_NO_GRAD = ("torch.no_grad", "no_grad", "torch.inference_mode", "torch.enable_grad")


@dataclass
class LoadResult:
    module: types.ModuleType
    notes: list[str] = field(default_factory=list)
    history: dict[str, list] = field(default_factory=dict)


class _StatementTimeout(Exception):
    pass


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""


def _target_roots(stmt: ast.stmt) -> tuple[set[str], set[str]]:
    """(names rebound as a whole, names modified through a subscript or attribute)."""
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    bound, touched = set(), set()
    stack = list(targets)
    while stack:
        t = stack.pop()
        if isinstance(t, ast.Name):
            (touched if isinstance(stmt, ast.AugAssign) else bound).add(t.id)
        elif isinstance(t, (ast.Tuple, ast.List)):
            stack.extend(t.elts)
        elif isinstance(t, ast.Starred):
            stack.append(t.value)
        elif isinstance(t, (ast.Subscript, ast.Attribute)):
            root = t
            while isinstance(root, (ast.Subscript, ast.Attribute)):
                root = root.value
            if isinstance(root, ast.Name):
                touched.add(root.id)
    return bound, touched


def _snapshot(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    try:
        return copy.deepcopy(value)
    except Exception:   # noqa: BLE001
        return value


class _Loader:
    def __init__(self, module: types.ModuleType, filename: str, source: str, keep_first, watch):
        self.module = module
        self.source = source
        self.ns = module.__dict__
        self.filename = filename
        self.keep_first = set(keep_first)
        self.watch = set(watch)
        self.defined: dict[str, int] = {}
        self.notes: list[str] = []
        self.history: dict[str, list] = {name: [] for name in watch}
        self.slow_lines: set[int] = set()

    def note(self, text: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(text)
        elif len(self.notes) == MAX_NOTES:
            self.notes.append("... more statements were skipped")

    def run(self, stmt: ast.stmt, capped: bool = False) -> None:
        code = compile(ast.Module(body=[stmt], type_ignores=[]), self.filename, "exec")
        if not capped:
            exec(code, self.ns)   # noqa: S102 - this is the worker: student code runs here by design
            return
        previous = signal.signal(signal.SIGALRM, _raise_timeout)
        signal.setitimer(signal.ITIMER_REAL, STATEMENT_TIME_CAP_S)
        try:
            exec(code, self.ns)   # noqa: S102
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def statement(self, stmt: ast.stmt) -> None:
        line = stmt.lineno
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            try:
                self.run(stmt, capped=True)
            except BaseException as exc:   # noqa: BLE001
                self.note(f"line {line}: import not run ({type(exc).__name__}: {_short(exc)})")
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if stmt.name in self.keep_first and stmt.name in self.defined:
                self.note(f"line {line}: {stmt.name} is defined again; the first definition "
                          f"(line {self.defined[stmt.name]}) is the one graded")
                return
            self.defined.setdefault(stmt.name, line)
            self.guarded(stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
                return
            bound, touched = _target_roots(stmt)
            if bound & self.keep_first:
                self.note(f"line {line}: assignment to {', '.join(sorted(bound & self.keep_first))} not run "
                          "(the first definition is the one graded)")
                return
            for name in bound & self.watch:
                if name in self.ns:
                    self.history[name].append(_snapshot(self.ns[name]))
            self.guarded(stmt)
        elif isinstance(stmt, ast.With) and all(_dotted(item.context_expr) in _NO_GRAD for item in stmt.items):
            with torch.no_grad():
                for inner in stmt.body:
                    self.statement(inner)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            return   # a markdown cell or docstring
        elif isinstance(stmt, ast.Pass):
            return
        else:
            what = ast.get_source_segment(self.source, stmt) or type(stmt).__name__
            first = what.splitlines()[0][:80]
            self.note(f"line {line}: not run when grading: {first}")

    def guarded(self, stmt: ast.stmt) -> None:
        if stmt.lineno in self.slow_lines:
            self.note(f"line {stmt.lineno}: skipped, it ran past {STATEMENT_TIME_CAP_S:g} s when first loaded")
            return
        try:
            self.run(stmt, capped=True)
        except _StatementTimeout:
            self.slow_lines.add(stmt.lineno)
            self.note(f"line {stmt.lineno}: stopped after {STATEMENT_TIME_CAP_S:g} s and skipped")
        except BaseException as exc:   # noqa: BLE001 - SystemExit in a cell must not end the load
            self.note(f"line {stmt.lineno}: raised {type(exc).__name__}: {_short(exc)}; skipped")


def _read_slow_lines(path: str) -> set[int]:
    """Lines that hit the time cap in an earlier worker of this run (so each test does not pay again)."""
    try:
        with open(path) as fh:
            return {int(x) for x in json.load(fh) if isinstance(x, int)}
    except (OSError, ValueError, TypeError):
        return set()


def _raise_timeout(signum, frame):
    raise _StatementTimeout()


def _short(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:   # noqa: BLE001
        text = ""
    return text.splitlines()[0][:160] if text else ""


def load_notebook(path: str, name: str, *, keep_first=(), watch=(), device: str = "cpu") -> LoadResult:
    """Build module ``name`` from the notebook export at ``path`` (see the module docstring)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        source = neutralize(fh.read())
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    loader = _Loader(module, path, source, keep_first, watch)
    # shared by the workers of this submission: in their scratch folder (the staged one is read-only)
    memo_dir = os.environ.get("TMPDIR") or os.path.dirname(path)
    memo = os.path.join(memo_dir, f".{hashlib.sha256(path.encode()).hexdigest()[:16]}.slow-lines.json")
    loader.slow_lines = _read_slow_lines(memo)
    known_slow = set(loader.slow_lines)
    tree = parse_skipping_broken_blocks(source, path, loader.notes)
    for stmt in tree.body:
        loader.statement(stmt)
    if loader.slow_lines != known_slow:
        try:
            with open(memo, "w") as fh:
                json.dump(sorted(loader.slow_lines), fh)
        except OSError:
            pass
    for watched in watch:
        if watched in loader.ns:
            loader.history[watched].append(_snapshot(loader.ns[watched]))
    for key in ("DEVICE", "device"):
        value = loader.ns.get(key)
        if isinstance(value, torch.device) or (isinstance(value, str) and value.split(":")[0] in ("cpu", "cuda", "mps")):
            if str(value) != device:
                loader.note(f"{key} = {str(value)!r} in the notebook; set to {device!r} for grading")
            loader.ns[key] = torch.device(device) if isinstance(value, torch.device) else device
    return LoadResult(module, loader.notes, loader.history)
