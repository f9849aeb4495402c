"""Loading a notebook export statement by statement, as Colab ran it (runs in the worker).

A Colab "Download .py" is not a module: shell lines, downloads, top-level training, a
broken cell, graded functions redefined later. ``load_notebook`` runs every top-level
statement of the file in order, as the notebook did — calls, in-place operations, loops,
``if``/``try``/``with`` blocks included — except what must not or cannot run on a grader:

- IPython syntax is rewritten as IPython does (``autograder.common.notebook_source.neutralize``):
  shell lines and line magics do not run, ``%%time`` cells run their body, ``x = !cmd``
  stays an assignment (``get_ipython()`` is an inert shell); nbconvert's
  ``get_ipython().run_cell_magic('time', '', body)`` runs ``body``'s statements;
- a statement that does not parse is skipped with its top-level block (``parse_skipping_broken_blocks``);
- a statement that raises is skipped (the rest of the file still runs);
- a statement still running after ``STATEMENT_TIME_CAP_S`` (training, endless loops) is
  stopped and skipped; the line is written to a memo in the worker's scratch folder, shared
  by the workers of one grading, so later tests skip it without paying again;
- once the file's statements have used ``LOAD_BUDGET_S`` in all, only definitions and
  imports run; the line where that happened is memoised too (a file of many statements
  just under the cap costs a bounded time once, not every test);
- the network is blocked by the worker's sandbox and hub libraries are offline (the
  worker's environment), so downloads fail at once and are skipped like any failure.

Notebook-only front ends are substituted first (``notebook_frontends``: ``tqdm.notebook``
is plain ``tqdm``, IPython's display helpers are inert). What the file prints while loading
is discarded (the notes say what was skipped and why).

For ``keep_first`` names the first definition stays: a later ``def``/``class`` of the name
is not run, and a later statement that rebinds it (an assignment, an import, a block) runs
but the first definition is put back. For ``watch`` names the values are recorded as events
(``{"event", "line", "value"}``, plus ``"function"`` for ``"call"``): ``"rebound"`` (the
value before a statement rebinds the name), ``"call"`` (the value passed by name to a call
such as ``check_query(q, t, key=m_key)``, when that statement ran) and ``"final"``.
Afterwards a module-level ``DEVICE``/``device`` is pointed at the grading device. Every
skipped or changed statement is described in ``LoadResult.notes``.
"""
from __future__ import annotations

import ast
import contextlib
import copy
import io
import json
import os
import signal
import sys
import time
import types
from dataclasses import dataclass, field

import torch

from autograder.common.notebook_source import PYTHON_CELL_MAGICS, memo_name, neutralize, parse_skipping_broken_blocks
from autograder.common import notebook_frontends

STATEMENT_TIME_CAP_S = 2.0
LOAD_BUDGET_S = 6.0
MAX_NOTES = 60
MAX_EVENTS = 64


@dataclass
class LoadResult:
    module: types.ModuleType
    notes: list[str] = field(default_factory=list)
    history: dict[str, list[dict]] = field(default_factory=dict)


@contextlib.contextmanager
def _time_cap(seconds: float):
    """Raise ``_StatementTimeout`` in this (the main) thread after ``seconds``: with SIGALRM where
    there is one (POSIX), else (Windows, the portable backend) from a timer thread through
    ``_thread.interrupt_main``."""
    if hasattr(signal, "setitimer"):
        previous = signal.signal(signal.SIGALRM, _raise_timeout)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        return
    import _thread
    import threading
    fired = threading.Event()
    timer = threading.Timer(seconds, lambda: (fired.set(), _thread.interrupt_main()))
    timer.start()
    try:
        yield
    except KeyboardInterrupt:
        if fired.is_set():
            raise _StatementTimeout() from None
        raise
    finally:
        timer.cancel()


class _StatementTimeout(Exception):
    pass


class _Discard:
    """A text stream that drops what is written (the notebook's own output while loading)."""

    def write(self, text):
        return len(text) if isinstance(text, str) else 0

    def flush(self):
        pass

    def isatty(self):
        return False


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""


def _walk_here(stmt: ast.AST):
    """The nodes of ``stmt`` that run at its own level (not inside a def, class or lambda body)."""
    stack = [stmt]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if node is not stmt and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                      ast.ClassDef, ast.Lambda)):
                continue
            stack.append(child)


def _rebound_names(stmt: ast.stmt) -> set[str]:
    """Names the statement binds as a whole (``x = ...``, ``for x in``, ``import x``, ``def x``)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    names = set()
    for node in _walk_here(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


def _calls_with(stmt: ast.stmt, names: set[str]) -> list[tuple[str, str]]:
    """(name, called function) for each watched name passed by name as a call argument."""
    found = []
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return found
    for node in _walk_here(stmt):
        if isinstance(node, ast.Call):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if isinstance(arg, ast.Name) and arg.id in names:
                    found.append((arg.id, _dotted(node.func).rsplit(".", 1)[-1]))
    return found


def _cell_magic_body(stmt: ast.stmt) -> str | None:
    """The body of ``get_ipython().run_cell_magic('time', '', body)`` (nbconvert's form of a Python cell magic)."""
    value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
    if not (isinstance(value, ast.Call) and _dotted(value.func) == "get_ipython.run_cell_magic"
            and len(value.args) == 3 and all(isinstance(a, ast.Constant) and isinstance(a.value, str)
                                             for a in value.args)):
        return None
    return value.args[2].value if value.args[0].value in PYTHON_CELL_MAGICS else None


def _snapshot(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    try:
        return copy.deepcopy(value)
    except Exception:   # noqa: BLE001
        return value


def _raise_timeout(signum, frame):
    raise _StatementTimeout()


def _short(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:   # noqa: BLE001
        text = ""
    return text.splitlines()[0][:160] if text else ""


class _Memo:
    """What the first worker of a grading learnt about slow statements, for the later ones.

    Written as soon as it changes, so a worker killed by its test's time limit still spares
    the next one."""

    def __init__(self, path: str):
        self.path = path
        self.slow: set[int] = set()
        self.cut: int | None = None
        try:
            with open(path) as fh:
                data = json.load(fh)
            self.slow = {int(x) for x in data.get("slow", []) if isinstance(x, int)}
            self.cut = data.get("cut") if isinstance(data.get("cut"), int) else None
        except (OSError, ValueError, TypeError, AttributeError):
            pass

    def add_slow(self, line: int) -> None:
        self.slow.add(line)
        self._save()

    def set_cut(self, line: int) -> None:
        if self.cut is None:
            self.cut = line
            self._save()

    def _save(self) -> None:
        try:
            with open(self.path, "w") as fh:
                json.dump({"slow": sorted(self.slow), "cut": self.cut}, fh)
        except OSError:
            pass


class _Loader:
    def __init__(self, module: types.ModuleType, filename: str, source: str, keep_first, watch, memo: _Memo):
        self.module = module
        self.source = source
        self._lines: list[str] | None = None   # source split as the tokenizer counts lines (on first use)
        self.ns = module.__dict__
        self.filename = filename
        self.keep_first = set(keep_first)
        self.watch = set(watch)
        self.defined: dict[str, int] = {}
        self.notes: list[str] = []
        self.history: dict[str, list[dict]] = {name: [] for name in watch}
        self.memo = memo
        self.spent = 0.0

    # -- notes and records ----------------------------------------------------------
    def note(self, text: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(text)
        elif len(self.notes) == MAX_NOTES:
            self.notes.append("... more statements were skipped")

    def describe(self, stmt: ast.stmt) -> str:
        """``line N `its first line``` (cut at 70 characters). The source is split once per file:
        ``ast.get_source_segment`` splits the whole file at every call (a 20-note notebook spent
        100 ms there)."""
        if self._lines is None:
            self._lines = io.StringIO(self.source, newline="").readlines()   # \n, \r\n and \r, as ast counts
        line = self._lines[stmt.lineno - 1].rstrip("\r\n") if 0 < stmt.lineno <= len(self._lines) else ""
        raw = line.encode("utf-8")                                          # ast's columns are UTF-8 bytes
        end = stmt.end_col_offset if stmt.end_lineno == stmt.lineno and stmt.end_col_offset is not None else len(raw)
        first = raw[stmt.col_offset:end].decode("utf-8", errors="replace").strip() or type(stmt).__name__
        return f"line {stmt.lineno} `{first[:70]}{' ...' if len(first) > 70 else ''}`"

    def record(self, name: str, event: str, line: int, **extra) -> None:
        events = self.history[name]
        if name in self.ns and (len(events) < MAX_EVENTS - 1 or event == "final"):
            events.append({"event": event, "line": line, "value": _snapshot(self.ns[name]), **extra})

    # -- running --------------------------------------------------------------------
    def run(self, stmt: ast.stmt, cap: float) -> None:
        code = compile(ast.Module(body=[stmt], type_ignores=[]), self.filename, "exec")
        started = time.monotonic()
        try:
            with _time_cap(cap):
                exec(code, self.ns)   # noqa: S102 - this is the worker: student code runs here by design
        finally:
            self.spent += time.monotonic() - started

    def guarded(self, stmt: ast.stmt, exempt: bool) -> None:
        """Run ``stmt`` under the time cap (shorter when the load budget is nearly spent, unless
        ``exempt``); a statement that raises or runs past its cap is skipped with a note."""
        cap = STATEMENT_TIME_CAP_S if exempt else max(min(STATEMENT_TIME_CAP_S, LOAD_BUDGET_S - self.spent), 0.05)
        try:
            self.run(stmt, cap)
        except _StatementTimeout:
            if cap < STATEMENT_TIME_CAP_S:
                self.memo.set_cut(stmt.lineno)
                self.note(f"{self.describe(stmt)}: stopped when the file's load budget of {LOAD_BUDGET_S:g} s "
                          "ran out, and skipped")
            else:
                self.memo.add_slow(stmt.lineno)
                self.note(f"{self.describe(stmt)}: stopped after {STATEMENT_TIME_CAP_S:g} s and skipped "
                          "(training and long loops do not run when grading)")
        except BaseException as exc:   # noqa: BLE001 - SystemExit in a cell must not end the load
            self.note(f"{self.describe(stmt)}: raised {type(exc).__name__}: {_short(exc)}; skipped")

    def skipped(self, stmt: ast.stmt, exempt: bool) -> bool:
        """Whether an earlier worker (the memo) or the load budget says ``stmt`` is not run (noted)."""
        if stmt.lineno in self.memo.slow:
            self.note(f"{self.describe(stmt)}: skipped, it ran past {STATEMENT_TIME_CAP_S:g} s when first loaded")
            return True
        if exempt:
            return False
        if self.spent >= LOAD_BUDGET_S:
            self.memo.set_cut(stmt.lineno)
        if self.spent >= LOAD_BUDGET_S or (self.memo.cut is not None and stmt.lineno >= self.memo.cut):
            self.note(f"{self.describe(stmt)}: not run, the file's statements used up the load budget of "
                      f"{LOAD_BUDGET_S:g} s (definitions and imports still run)")
            return True
        return False

    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
            return   # a markdown cell, a docstring, a rewritten shell line
        body = _cell_magic_body(stmt)
        if body is not None:
            self.cell_magic(stmt, body)
            return
        definition = isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        if definition and stmt.name in self.keep_first and stmt.name in self.defined:
            self.note(f"line {stmt.lineno}: {stmt.name} is defined again; the first definition "
                      f"(line {self.defined[stmt.name]}) is the one graded")
            return
        exempt = definition or isinstance(stmt, (ast.Import, ast.ImportFrom))
        if self.skipped(stmt, exempt):
            return
        rebound = _rebound_names(stmt)
        for name in rebound & self.watch:
            self.record(name, "rebound", stmt.lineno)
        calls = [(name, fn, _snapshot(self.ns[name])) for name, fn in _calls_with(stmt, self.watch) if name in self.ns]
        graded = {name: self.ns[name] for name in self.keep_first & set(self.defined) if name in self.ns}
        self.guarded(stmt, exempt)
        for name, value in graded.items():
            if self.ns.get(name) is not value:
                self.ns[name] = value
                self.note(f"{self.describe(stmt)} rebinds {name}; the first definition "
                          f"(line {self.defined[name]}) is the one graded")
        for name in rebound & self.keep_first:
            if name in self.ns and name not in self.defined:
                self.defined[name] = stmt.lineno
        for name, function, value in calls:
            if len(self.history[name]) < MAX_EVENTS - 1:
                self.history[name].append({"event": "call", "line": stmt.lineno, "function": function,
                                           "value": value})

    def cell_magic(self, stmt: ast.stmt, body: str) -> None:
        try:
            tree = ast.parse(neutralize(body), filename=self.filename)
        except (SyntaxError, ValueError) as exc:
            self.note(f"line {stmt.lineno}: the cell magic's body does not parse ({exc}); skipped")
            return
        ast.increment_lineno(tree, stmt.lineno - 1)
        for inner in tree.body:
            self.statement(inner)


def load_notebook(path: str, name: str, *, keep_first=(), watch=(), device: str = "cpu") -> LoadResult:
    """Build module ``name`` from the notebook export at ``path`` (see the module docstring)."""
    notebook_frontends.install()
    with open(path, encoding="utf-8", errors="replace") as fh:
        source = neutralize(fh.read())
    module = types.ModuleType(name)
    module.__file__ = path
    module.__dict__.update(notebook_frontends.namespace())
    sys.modules[name] = module
    # in this worker's own scratch folder: the grader carries it on from visible tests' workers
    memo_dir = os.environ.get("TMPDIR") or os.path.dirname(path)
    memo = _Memo(os.path.join(memo_dir, memo_name(path)))
    loader = _Loader(module, path, source, keep_first, watch, memo)
    tree = parse_skipping_broken_blocks(source, path, loader.notes)
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = _Discard()
    try:
        for stmt in tree.body:
            loader.statement(stmt)
    finally:
        sys.stdout, sys.stderr = stdout, stderr
    for watched in watch:
        loader.record(watched, "final", len(source.splitlines()))
    for key in ("DEVICE", "device"):
        value = loader.ns.get(key)
        if isinstance(value, torch.device) or (isinstance(value, str) and value.split(":")[0] in ("cpu", "cuda", "mps")):
            if str(value) != device:
                loader.note(f"{key} = {str(value)!r} in the notebook; set to {device!r} for grading")
            loader.ns[key] = torch.device(device) if isinstance(value, torch.device) else device
    return LoadResult(module, loader.notes, loader.history)
