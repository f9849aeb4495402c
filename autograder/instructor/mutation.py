"""Mutants of a reference solution: single AST edits shaped like real deep-learning bugs.

Pure: stdlib only; nothing is imported from the solution, executed or graded (a later step
grades each mutant with the engine). ``mutants_of(source, path)`` returns :class:`Mutant`\\ s.

How an edit is emitted: an operator picks one expression node (two for
``mask-after-softmax``) and a replacement node; the mutated file is the ORIGINAL text with only
that node's span replaced by ``ast.unparse`` of the replacement (in parentheses where needed;
a span over several lines is padded with newlines inside the parentheses), so every other
character -- comments, formatting, line numbers -- is kept. Each mutant is checked: its text
must parse to exactly the original AST with that one replacement, and must ``compile()``.

Notebook exports (Colab's "Download .py") may hold IPython lines (``!pip ...``, ``%magic``):
they are read as ``pass`` (see :func:`as_python`), never edited, and kept in ``Mutant.source``;
for such a file the contract "the mutant compiles" holds for ``as_python(mutant.source)``.

Length (~770 lines, ~630 non-blank; over the ~400 target): fifteen operators, each a small
generator recognising the usual torch spellings (function/method, keyword/positional, in-place
forms) and the shapes the three references use, plus the splice-and-verify machinery (~200).
"""
from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

Edit = list  # [(old node in the original tree, new node)], the primary pair first


@dataclass(frozen=True)
class Mutant:
    """One edit of ``path``. ``line``: 1-based line of the edited node in the original source;
    ``function``: qualified name of the enclosing def ("" at module level, the class name in a
    class body); ``before``/``after``: the edited expression before and after, one line,
    stripped, at most 160 characters (two edits are joined by "; "); ``source``: the whole
    mutated file."""
    kind: str
    path: str
    line: int
    function: str
    before: str
    after: str
    source: str

    def describe(self) -> str:
        """E.g. "vit_solution.py:70 in MultiHeadedAttention.get_attention_weights: softmax-dim:
        `F.softmax(scores, dim=-1)` -> `F.softmax(scores, dim=-2)`"."""
        where = f"{self.path}:{self.line}" + (f" in {self.function}" if self.function else "")
        return f"{where}: {self.kind}: `{self.before}` -> `{self.after}`"


OPERATORS: dict[str, str] = {}      # kind -> the real bug it models
_OPS: dict[str, Callable[["_Ctx"], Iterator[Edit]]] = {}


def _operator(kind: str, description: str):
    def register(fn):
        OPERATORS[kind], _OPS[kind] = description, fn
        return fn
    return register


def mutants_of(source: str, path: str = "<source>", *, kinds: Iterable[str] | None = None,
               functions: Callable[[str], bool] | None = None,
               limit_per_kind: int | None = None) -> list[Mutant]:
    """All single-edit mutants of ``source`` (the text of ``path``, which is only recorded).

    ``kinds``: the operators to run (default all of :data:`OPERATORS`; an unknown one is a
    ValueError). ``functions``: keeps edits whose enclosing qualified name it accepts ("" for
    module level). ``limit_per_kind``: at most that many of each kind, the first in order.
    Code under ``if __name__ == "__main__":`` and inside f-strings is never edited.
    Ordered by line, then kind (then column); a mutated text equal to the original or to an
    earlier mutant's is dropped. Raises SyntaxError if the file does not parse.
    """
    chosen = list(OPERATORS) if kinds is None else list(dict.fromkeys(kinds))
    unknown = sorted(set(chosen) - set(OPERATORS))
    if unknown:
        raise ValueError(f"unknown mutation kinds {unknown}; known: {sorted(OPERATORS)}")
    python, magic = _neutral(source)
    ctx = _Ctx(ast.parse(python, filename=path))
    found = []
    for kind in chosen:
        for seq, edit in enumerate(_OPS[kind](ctx)):
            olds = [old for old, _ in edit]
            if all(ctx.editable(old, functions, magic) for old in olds):
                mutant = _emit(ctx, source, path, kind, edit)
                if mutant is not None:
                    found.append(((mutant.line, kind, olds[0].col_offset, seq), mutant))
    seen, count, out = {source}, Counter(), []
    for _, mutant in sorted(found, key=lambda f: f[0]):
        if mutant.source in seen:
            continue
        seen.add(mutant.source)
        if limit_per_kind is None or count[mutant.kind] < limit_per_kind:
            count[mutant.kind] += 1
            out.append(mutant)
    return out


def as_python(source: str) -> str:
    """``source`` as it is parsed: unchanged if it is valid Python, else with IPython lines
    (``!cmd``, ``%magic``, ``x = !cmd``, a ``%%cell`` magic line) read as ``pass`` and the body
    of a non-Python cell magic commented out up to the next blank line; line numbers kept."""
    return _neutral(source)[0]


# --- machinery ---------------------------------------------------------------------------

_MAGIC = re.compile(r"^(\s*)(?:[!%]|[\w.]+(?:\s*,\s*[\w.]+)*\s*=\s*[!%])")
_PY_CELL = re.compile(r"^%%(time|capture|prun)\b")


def _neutral(source: str) -> tuple[str, frozenset]:
    try:
        ast.parse(source)
        return source, frozenset()
    except SyntaxError:
        pass
    out, changed, skipping = [], set(), False
    for no, line in enumerate(source.split("\n"), 1):
        if skipping and line.strip():
            out.append("#" + line)
            changed.add(no)
            continue
        skipping = False
        match = _MAGIC.match(line)
        if match:
            skipping = line.startswith("%%") and not _PY_CELL.match(line)
            out.append(match.group(1) + "pass")
            changed.add(no)
        else:
            out.append(line)
    return "\n".join(out), frozenset(changed)


class _Ctx:
    """The parsed file: its nodes, each node's parent and enclosing def, the import names."""

    def __init__(self, tree: ast.Module):
        self.tree, self.parent, self.scope, self.frozen = tree, {}, {}, set()
        self._index(tree, "", False)
        self.nodes = list(ast.walk(tree))
        self.modules = {"torch", "F", "nn", "functional", "math", "np", "numpy"}
        self.f_alias = None
        for node in self.nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    self.modules.add((alias.asname or alias.name).split(".")[0])
                    full = alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
                    if full == "torch.nn.functional" and alias.asname:
                        self.f_alias = alias.asname
        self.dropouts = {t.attr for n in self.nodes if isinstance(n, ast.Assign)
                         and isinstance(n.value, ast.Call) and _name(n.value.func) == "Dropout"
                         for t in n.targets if isinstance(t, ast.Attribute)}

    def _index(self, node, qual, frozen):
        for child in ast.iter_child_nodes(node):
            self.parent[child] = node
            q, f = qual, frozen or isinstance(child, ast.JoinedStr)
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                q = f"{qual}.{child.name}" if qual else child.name
            if isinstance(node, ast.If) and _is_main(node.test) and child in node.body:
                f = True
            self.scope[child] = q
            if f:
                self.frozen.add(child)
            self._index(child, q, f)

    def editable(self, node, functions, magic) -> bool:
        if node in self.frozen or not hasattr(node, "lineno"):
            return False
        if any(no in magic for no in range(node.lineno, node.end_lineno + 1)):
            return False
        return functions is None or bool(functions(self.scope.get(node, "")))

    def calls(self, *names):
        return [n for n in self.nodes if isinstance(n, ast.Call) and _name(n.func) in names]

    def fn_form(self, call) -> bool:
        """``torch.f(x, ..)``/``F.f(x, ..)``/``f(x, ..)`` rather than the method ``x.f(..)``."""
        if isinstance(call.func, ast.Name):
            return True
        dotted = _dotted(call.func.value)
        return dotted is not None and dotted.split(".")[0] in self.modules

    def subject(self, call):
        """The tensor a call works on: the first argument of a function, a method's receiver."""
        if self.fn_form(call):
            return call.args[0] if call.args and not isinstance(call.args[0], ast.Starred) else None
        return call.func.value


def _emit(ctx, source, path, kind, edit) -> Mutant | None:
    edit = [(old, ast.parse(ast.unparse(new), mode="eval").body) for old, new in edit]
    expected = _dump_with(ctx.tree, ctx.parent, edit)
    lines = source.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)

    def offset(lineno, col):   # ast columns count UTF-8 bytes
        return starts[lineno - 1] + len(lines[lineno - 1].encode()[:col].decode("utf-8", "ignore"))

    spans = [(offset(o.lineno, o.col_offset), offset(o.end_lineno, o.end_col_offset)) for o, _ in edit]
    for wrap in (False, True):
        text = source
        for (a, b), (old, new) in sorted(zip(spans, edit), key=lambda e: e[0], reverse=True):
            extra = old.end_lineno - old.lineno
            new_text = ast.unparse(new)
            if wrap or extra:
                new_text = "(" + new_text + "\n" * extra + ")"
            text = text[:a] + new_text + text[b:]
        try:
            tree = ast.parse(as_python(text), filename=path)
            if ast.dump(tree) != expected:
                continue
            compile(tree, path, "exec")
        except (SyntaxError, ValueError):
            continue
        old = edit[0][0]
        return Mutant(kind, path, old.lineno, ctx.scope.get(old, ""),
                      "; ".join(_short(source[a:b]) for a, b in spans),
                      "; ".join(_short(ast.unparse(new)) for _, new in edit), text)
    return None


def _dump_with(tree, parent, edit) -> str:
    """ast.dump of ``tree`` with each old node replaced by its new one (restored after)."""
    undo = []
    for old, new in edit:
        holder = parent[old]
        for field, value in ast.iter_fields(holder):
            if value is old:
                setattr(holder, field, new)
                undo.append(lambda h=holder, f=field, o=old: setattr(h, f, o))
            elif isinstance(value, list) and any(v is old for v in value):
                i = next(i for i, v in enumerate(value) if v is old)
                value[i] = new
                undo.append(lambda v=value, i=i, o=old: v.__setitem__(i, o))
    try:
        return ast.dump(tree)
    finally:
        for restore in reversed(undo):
            restore()


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 160 else text[:157] + "..."


# --- small AST helpers ---------------------------------------------------------------------

def _is_main(test) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = {ast.dump(test.left), ast.dump(test.comparators[0])}
    return sides == {ast.dump(ast.Name("__name__", ast.Load())), ast.dump(ast.Constant("__main__"))}


def _name(e):
    """The last identifier of a name or attribute (``F.softmax`` -> "softmax")."""
    return e.attr if isinstance(e, ast.Attribute) else e.id if isinstance(e, ast.Name) else None


def _dotted(e):
    parts = []
    while isinstance(e, ast.Attribute):
        parts.append(e.attr)
        e = e.value
    return ".".join([e.id, *reversed(parts)]) if isinstance(e, ast.Name) else None


def _num(e):
    """The value of a numeric literal (``-1`` included), else None."""
    sign = 1
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, (ast.USub, ast.UAdd)):
        sign, e = (-1 if isinstance(e.op, ast.USub) else 1), e.operand
    if isinstance(e, ast.Constant) and type(e.value) in (int, float):
        return sign * e.value
    return None


def _int(e):
    value = _num(e)
    return value if isinstance(value, int) else None


def _arg(call, pos, kw):
    """A call's argument given by keyword ``kw`` or at position ``pos``, else None."""
    for k in call.keywords:
        if k.arg == kw:
            return k.value
    if pos is not None and len(call.args) > pos and not any(isinstance(a, ast.Starred) for a in call.args[:pos + 1]):
        return call.args[pos]
    return None


def _rebuild(node, repl: dict):
    """A copy of ``node`` with the nodes whose id() is in ``repl`` replaced."""
    if id(node) in repl:
        return repl[id(node)]
    if not isinstance(node, ast.AST):
        return node
    fields = {f: [_rebuild(v, repl) for v in value] if isinstance(value, list) else _rebuild(value, repl)
              for f, value in ast.iter_fields(node)}
    return type(node)(**fields)


def _sub(node, old, new):
    return _rebuild(node, {id(old): new})


def _with_kw(call, name, value):
    """A copy of ``call`` with keyword ``name`` set to ``value`` (replaced or appended)."""
    kws = [ast.keyword(k.arg, value if k.arg == name else k.value) for k in call.keywords]
    if not any(k.arg == name for k in call.keywords):
        kws.append(ast.keyword(name, value))
    return ast.Call(call.func, list(call.args), kws)


def _attr(value, name):
    return ast.Attribute(value, name, ast.Load())


def _method(receiver, name, args=(), keywords=()):
    return ast.Call(_attr(receiver, name), list(args), list(keywords))


class _Fill(ast.NodeTransformer):
    def __init__(self, subs):
        self.subs = subs

    def visit_Name(self, node):
        return self.subs.get(node.id, node)


def _tmpl(src: str, **subs):
    """The expression ``src`` with the names ``_X``... replaced by the given nodes."""
    return _Fill(subs).visit(ast.parse(src, mode="eval").body)


def _mentions(e, pattern) -> bool:
    return any(re.search(pattern, _name(n), re.I) for n in ast.walk(e) if isinstance(n, (ast.Name, ast.Attribute)))


def _has_matmul(e) -> bool:
    return any((isinstance(n, ast.BinOp) and isinstance(n.op, ast.MatMult))
               or (isinstance(n, ast.Call) and _name(n.func) in ("matmul", "bmm", "einsum", "mm"))
               for n in ast.walk(e))


# --- operators -----------------------------------------------------------------------------

@_operator("softmax-dim", "softmax/log_softmax over the wrong dimension (e.g. the queries instead of the keys)")
def _softmax_dim(ctx):
    for call in ctx.calls("softmax", "log_softmax", "Softmax", "LogSoftmax"):
        pos = 1 if ctx.fn_form(call) and _name(call.func).islower() else 0
        dim = _arg(call, pos, "dim")
        d = _int(dim)
        if d is not None:
            new = -2 if d == -1 else d + 1 if d < -1 else 1 if d == 0 else d - 1
            yield [(call, _sub(call, dim, ast.Constant(new)))]


def _sqrt_arg(ctx, e, inverse=False):
    """``d`` when ``e`` is sqrt(d)-like (``inverse``: 1/sqrt(d)-like), else None."""
    if isinstance(e, ast.Call) and _name(e.func) == ("rsqrt" if inverse else "sqrt"):
        return ctx.subject(e)
    if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Pow) and _num(e.right) == (-0.5 if inverse else 0.5):
        return e.left
    if inverse and isinstance(e, ast.BinOp) and isinstance(e.op, ast.Div) and _num(e.left) == 1:
        return _sqrt_arg(ctx, e.right)
    return None


def _scale_sites(ctx):
    """(node, x, s, d): ``node`` is ``x / s``, ``x * s``, ``s * x`` or ``x op= s`` scaling
    attention scores; ``d`` is the argument of s's sqrt (None for a scale held in a name)."""
    for node in ctx.nodes:
        if isinstance(node, ast.AugAssign):
            pairs = [(node.target, node.value)]
        elif isinstance(node, ast.BinOp):
            pairs = [(node.left, node.right)] + ([(node.right, node.left)] if isinstance(node.op, ast.Mult) else [])
        else:
            continue
        if not isinstance(node.op, (ast.Div, ast.Mult)):
            continue
        for x, s in pairs:
            if _num(x) is not None:   # the `1.0 / sqrt(d)` inside `scores * (1.0 / sqrt(d))`
                continue
            d = _sqrt_arg(ctx, s, inverse=isinstance(node.op, ast.Mult))
            if d is not None and _num(d) is None and not _mentions(d, r"eps|var|std"):
                yield node, x, s, d
                break
            if (isinstance(s, (ast.Name, ast.Attribute)) and re.search("scal", _name(s), re.I)
                    and (isinstance(node, ast.AugAssign) or _has_matmul(x))):
                yield node, x, s, None
                break


@_operator("scale-dropped", "the 1/sqrt(d) attention scale left out (sdpa: its explicit scale= dropped, or scale=1 given)")
def _scale_dropped(ctx):
    for node, x, s, d in _scale_sites(ctx):
        yield [(node.value, ast.Constant(1))] if isinstance(node, ast.AugAssign) else [(node, x)]
    for call in ctx.calls("scaled_dot_product_attention"):
        if _arg(call, None, "scale") is not None:
            yield [(call, ast.Call(call.func, list(call.args), [k for k in call.keywords if k.arg != "scale"]))]
        else:
            yield [(call, _with_kw(call, "scale", ast.Constant(1.0)))]


@_operator("scale-doubled", "the attention scale applied twice (scores / d instead of / sqrt(d))")
def _scale_doubled(ctx):
    for node, x, s, d in _scale_sites(ctx):
        if isinstance(node, ast.AugAssign):
            yield [(node.value, ast.BinOp(s, ast.Mult(), s))]
        else:
            yield [(node, ast.BinOp(node, node.op, s))]


@_operator("scale-sqrt-missing", "scores scaled by 1/d instead of 1/sqrt(d)")
def _scale_sqrt_missing(ctx):
    for node, x, s, d in _scale_sites(ctx):
        if d is None:
            continue
        if isinstance(node.op, ast.Div):
            new = d                                   # x / sqrt(d) -> x / d
        elif isinstance(s, ast.BinOp) and isinstance(s.op, ast.Div):
            new = ast.BinOp(s.left, ast.Div(), d)     # x * (1 / sqrt(d)) -> x * (1 / d)
        else:
            new = ast.BinOp(ast.Constant(1), ast.Div(), d)   # rsqrt(d), d ** -0.5
        yield [(s, new)]
    for call in ctx.calls("scaled_dot_product_attention"):
        if _arg(call, None, "scale") is None and call.args:
            yield [(call, _with_kw(call, "scale", _tmpl("1 / _Q.size(-1)", _Q=call.args[0])))]


@_operator("var-unbiased", "the variance's biasedness flipped (LayerNorm wants the biased one, torch.var's default is unbiased)")
def _var_unbiased(ctx):
    for call in ctx.calls("var", "std"):
        if ctx.fn_form(call) and (_dotted(call.func) or "").split(".")[0] in ("np", "numpy"):
            yield [(call, _with_kw(call, "ddof", ast.Constant(0 if _int(_arg(call, None, "ddof")) else 1)))]
            continue
        unbiased, correction = _arg(call, None, "unbiased"), _arg(call, None, "correction")
        if isinstance(unbiased, ast.Constant) and isinstance(unbiased.value, bool):
            yield [(call, _with_kw(call, "unbiased", ast.Constant(not unbiased.value)))]
        elif _num(correction) is not None:
            yield [(call, _with_kw(call, "correction", ast.Constant(0 if _num(correction) else 1)))]
        elif unbiased is None and correction is None:
            yield [(call, _with_kw(call, "unbiased", ast.Constant(False)))]
    for call in ctx.calls("mean"):   # hand-written ((x - m) ** 2).mean(dim) -> .sum(dim) / (n - 1)
        r = None if ctx.fn_form(call) else call.func.value
        dim = _arg(call, 0, "dim")
        if (isinstance(r, ast.BinOp) and isinstance(r.op, ast.Pow) and _num(r.right) == 2
                and dim is not None and not isinstance(dim, (ast.Tuple, ast.List))):
            total = _method(r, "sum", call.args, call.keywords)
            yield [(call, ast.BinOp(total, ast.Div(), _tmpl("_B.size(_D) - 1", _B=r.left, _D=dim)))]


def _epsish(e) -> bool:
    value = _num(e)
    return ((isinstance(e, (ast.Name, ast.Attribute)) and "eps" in _name(e).lower())
            or (isinstance(value, float) and 0 < value <= 1e-3))


@_operator("eps-outside-sqrt", "sqrt(var + eps) written sqrt(var) + eps")
def _eps_outside_sqrt(ctx):
    for node in ctx.nodes:
        if isinstance(node, ast.Call) and _name(node.func) in ("sqrt", "rsqrt"):
            inner = ctx.subject(node)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and _num(node.right) in (0.5, -0.5):
            inner = node.left
        else:
            continue
        if isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Add):
            for v, eps in ((inner.left, inner.right), (inner.right, inner.left)):
                if _epsish(eps):
                    yield [(node, ast.BinOp(_sub(node, inner, v), ast.Add(), eps))]
                    break


def _fillish(e) -> bool:
    if isinstance(e, ast.UnaryOp):
        e = e.operand
    return ((isinstance(e, ast.Constant) and type(e.value) in (int, float))
            or (isinstance(e, ast.Call) and _name(e.func) in ("float", "tensor", "full_like", "zeros_like", "ones_like"))
            or (isinstance(e, ast.Attribute) and e.attr in ("inf", "min", "max", "nan")))


def _wheres(ctx):
    """(call, x, cond) for ``torch.where(cond, x, fill)`` / ``torch.where(cond, fill, x)``."""
    for call in ctx.calls("where"):
        if ctx.fn_form(call) and len(call.args) == 3 and not call.keywords:
            cond, a, b = call.args
            if _fillish(b) and not _fillish(a):
                yield call, a, cond
            elif _fillish(a) and not _fillish(b):
                yield call, b, cond


@_operator("mask-skipped", "the attention/causal mask never applied (masked_fill or torch.where replaced by its input)")
def _mask_skipped(ctx):
    for call in ctx.calls("masked_fill", "masked_fill_"):
        x = ctx.subject(call)
        if x is not None:
            yield [(call, x)]
    for call, x, cond in _wheres(ctx):
        yield [(call, x)]


_FLIP = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt}


def _negated(c):
    if isinstance(c, ast.Compare) and len(c.ops) == 1 and type(c.ops[0]) in _FLIP:
        return ast.Compare(c.left, [_FLIP[type(c.ops[0])]()], c.comparators)
    if isinstance(c, ast.UnaryOp) and isinstance(c.op, (ast.Invert, ast.Not)):
        return c.operand
    if isinstance(c, ast.Call) and _name(c.func) == "logical_not" and len(c.args) == 1:
        return c.args[0]
    return ast.UnaryOp(ast.Invert(), c)


@_operator("mask-inverted", "the mask condition negated (mask == 0 <-> != 0, m <-> ~m, tril <-> triu): the wrong positions hidden")
def _mask_inverted(ctx):
    for call in ctx.calls("masked_fill", "masked_fill_"):
        mask = _arg(call, 1 if ctx.fn_form(call) else 0, "mask")
        if mask is not None:
            yield [(call, _sub(call, mask, _negated(mask)))]
    for call, x, cond in _wheres(ctx):
        yield [(call, _sub(call, cond, _negated(cond)))]
    for call in ctx.calls("tril", "triu"):
        other = "triu" if _name(call.func) == "tril" else "tril"
        func = _attr(call.func.value, other) if isinstance(call.func, ast.Attribute) else ast.Name(other, ast.Load())
        yield [(call, _sub(call, call.func, func))]


def _stores(stmt) -> set:
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


@_operator("mask-after-softmax", "the mask applied to the softmax's probabilities instead of to the scores")
def _mask_after_softmax(ctx):
    bodies = [b for n in ctx.nodes for f in ("body", "orelse", "finalbody")
              for b in [getattr(n, f, None)] if isinstance(b, list)]
    for body in bodies:
        for i, first in enumerate(body):
            call = first.value if isinstance(first, (ast.Assign, ast.Expr)) else None
            if not (isinstance(call, ast.Call) and _name(call.func) in ("masked_fill", "masked_fill_")):
                continue
            scores = ctx.subject(call)
            if isinstance(first, ast.Assign) and len(first.targets) == 1 and isinstance(first.targets[0], ast.Name):
                name = first.targets[0].id
            elif isinstance(first, ast.Expr) and isinstance(scores, ast.Name):
                name = scores.id
            else:
                continue
            fill = call.args[1:] if ctx.fn_form(call) else call.args
            watched = {name} | {n.id for a in fill + [k.value for k in call.keywords] for n in ast.walk(a) if isinstance(n, ast.Name)}
            for later in body[i + 1:]:
                sm = next((c for c in ast.walk(later) if isinstance(c, ast.Call) and _name(c.func) in ("softmax", "log_softmax")
                           and isinstance(ctx.subject(c), ast.Name) and ctx.subject(c).id == name), None)
                if sm is not None:
                    yield [(call, scores), (sm, _method(sm, "masked_fill", fill, call.keywords))]
                    break
                if _stores(later) & watched:
                    break


_RESHAPES = ("view", "reshape", "flatten", "unflatten", "view_as", "reshape_as")


def _next_to_reshape(ctx, call) -> bool:
    """``call`` (a method call) reshapes-then-transposes or transposes-then-reshapes."""
    x = call.func.value
    while isinstance(x, ast.Call) and _name(x.func) == "contiguous":
        x = x.func.value
    if isinstance(x, ast.Call) and _name(x.func) in _RESHAPES:
        return True
    if isinstance(x, ast.Name) and any(
            isinstance(n, ast.Assign) and ctx.scope.get(n) == ctx.scope.get(x) and isinstance(n.value, ast.Call)
            and _name(n.value.func) in _RESHAPES and any(_name(t) == x.id for t in n.targets) for n in ctx.nodes):
        return True
    node = call
    while True:   # followed, through .contiguous(), by a reshape
        attr = ctx.parent.get(node)
        outer = ctx.parent.get(attr)
        if not (isinstance(attr, ast.Attribute) and isinstance(outer, ast.Call) and outer.func is attr):
            return False
        if attr.attr != "contiguous":
            return attr.attr in _RESHAPES
        node = outer


def _transposed_shape(v, i, j) -> str:
    """Source of the shape of ``v.transpose(i, j)`` as reshape arguments, for any rank."""
    if (i < 0) != (j < 0):
        return f"{v}.transpose({i}, {j}).shape"
    a, b = sorted((i, j))
    parts = [f"*{v}.shape[:{a}]" if a else "", f"{v}.shape[{b}]", f"*{v}.shape[{a + 1}:{b}]" if b > a + 1 else "",
             f"{v}.shape[{a}]", f"*{v}.shape[{b + 1}:]" if b != -1 else ""]
    return ", ".join(p for p in parts if p)


@_operator("view-for-transpose", "a transpose/permute next to a reshape done by a reshape to the same shape: right shape, scrambled order")
def _view_for_transpose(ctx):
    for call in ctx.calls("transpose", "permute"):
        if ctx.fn_form(call) or call.keywords or not _next_to_reshape(ctx, call):
            continue
        args = call.args[0].elts if len(call.args) == 1 and isinstance(call.args[0], (ast.Tuple, ast.List)) else call.args
        dims = [_int(a) for a in args]
        if not dims or None in dims:
            continue
        x, simple = call.func.value, _dotted(call.func.value) is not None
        v = "_X" if simple else "t"
        if _name(call.func) == "permute":
            shape = ", ".join(f"{v}.shape[{d}]" for d in dims)
        elif len(dims) == 2 and dims[0] != dims[1]:
            shape = _transposed_shape(v, *dims)
        else:
            continue
        src = f"_X.reshape({shape})" if simple else f"(lambda t: t.reshape({shape}))(_X)"
        yield [(call, _tmpl(src, _X=x))]


_LOSS = re.compile(r"(_loss|cross_entropy|_with_logits|Loss)$")


@_operator("reduction-swapped", "sum <-> mean (reduction=, losses, and token- vs sequence-level averaging of a masked loss)")
def _reduction_swapped(ctx):
    for call in ctx.calls("sum", "mean"):
        if isinstance(call.func, ast.Attribute):
            other = "mean" if call.func.attr == "sum" else "sum"
            yield [(call, _sub(call, call.func, _attr(call.func.value, other)))]
    for call in ctx.nodes:
        if not isinstance(call, ast.Call):
            continue
        red = _arg(call, None, "reduction")
        if isinstance(red, ast.Constant) and red.value in ("mean", "sum"):
            yield [(call, _sub(call, red, ast.Constant("sum" if red.value == "mean" else "mean")))]
        elif red is None and _LOSS.search(_name(call.func) or ""):
            yield [(call, _with_kw(call, "reduction", ast.Constant("sum")))]
    for node in ctx.nodes:   # masked average: total / mask.sum() -> / mask.size(0); per-row counts -> their mean
        count = node.right if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) else None
        if (isinstance(count, ast.Call) and _name(count.func) == "sum" and not ctx.fn_form(count)
                and any(isinstance(c, ast.Call) and _name(c.func) == "sum" for c in ast.walk(node.left))):
            by_row = count.args or count.keywords
            yield [(count, _method(count, "mean") if by_row else _tmpl("_M.size(0)", _M=count.func.value))]


@_operator("dropout-in-eval", "dropout left on in eval mode (training=True, F.dropout for a Dropout module, .eval() -> .train())")
def _dropout_in_eval(ctx):
    functional = ctx.f_alias or '__import__("torch").nn.functional'
    for call in [n for n in ctx.nodes if isinstance(n, ast.Call)]:
        name, training = _name(call.func), _arg(call, None, "training")
        if name == "dropout" and ctx.fn_form(call) and training is not None and _num(training) != 1:
            yield [(call, _sub(call, training, ast.Constant(True)))]
        elif name == "eval" and isinstance(call.func, ast.Attribute) and not call.args and not call.keywords:
            yield [(call, _sub(call, call.func, _attr(call.func.value, "train")))]
        elif len(call.args) == 1 and not call.keywords and not isinstance(call.args[0], ast.Starred):
            f = call.func
            if isinstance(f, ast.Call) and _name(f.func) == "Dropout":
                p = _arg(f, 0, "p") or ast.Constant(0.5)
            elif isinstance(f, ast.Attribute) and f.attr in ctx.dropouts:
                p = _attr(f, "p")
            else:
                continue
            yield [(call, _tmpl(f"{functional}.dropout(_X, p=_P, training=True)", _X=call.args[0], _P=p))]
    for node in ctx.nodes:
        if isinstance(node, ast.Attribute) and node.attr == "training" and isinstance(node.ctx, ast.Load):
            yield [(node, ast.Constant(True))]


_NOT_TENSOR = {"size", "dim", "numel", "item", "tolist", "len", "int", "float", "range", "isinstance", "max", "min"}


def _tensorish(ctx, e) -> bool:
    if isinstance(e, ast.BinOp):
        return isinstance(e.op, ast.MatMult) or _tensorish(ctx, e.left) or _tensorish(ctx, e.right)
    if isinstance(e, ast.Call) and _name(e.func) not in _NOT_TENSOR:
        root = (_dotted(e.func) or "").split(".")[0]
        return (root in {"self", "torch", "F", "nn", ctx.f_alias}
                or (isinstance(e.func, ast.Attribute) and _tensorish(ctx, e.func.value)))
    return False


@_operator("detached", "a forward's result (or an intermediate) cut from the graph by .detach(), or a needed .detach() removed")
def _detached(ctx):
    for node in ctx.nodes:
        if ctx.scope.get(node, "").rsplit(".", 1)[-1] != "forward":
            continue
        value = None
        if isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            if isinstance(value, ast.Tuple):
                value = next((e for e in value.elts if not isinstance(e, (ast.Tuple, ast.Starred))), None)
            if isinstance(value, ast.Constant):
                value = None
        elif (isinstance(node, ast.Assign) and len(node.targets) == 1
              and isinstance(node.targets[0], (ast.Name, ast.Attribute)) and _tensorish(ctx, node.value)):
            value = node.value
        if value is not None:
            yield [(value, _method(value, "detach"))]
    for call in ctx.calls("detach"):
        if isinstance(call.func, ast.Attribute) and not call.args and not call.keywords:
            yield [(call, call.func.value)]


def _intish(e) -> bool:
    if _int(e) is not None or isinstance(e, (ast.Name, ast.Attribute)):
        return True
    if isinstance(e, ast.Call):
        return _name(e.func) in ("len", "int", "size", "randint", "min", "max")
    return (isinstance(e, ast.BinOp) and isinstance(e.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv))
            and _intish(e.left) and _intish(e.right))


def _shift(e, d):
    """``e + d``, folded: ``k`` -> ``k+d``, ``T + 1`` -> ``T`` / ``T + 2``."""
    if _int(e) is not None:
        return ast.Constant(_int(e) + d)
    if isinstance(e, ast.BinOp) and isinstance(e.op, (ast.Add, ast.Sub)) and _int(e.right) is not None:
        off = (_int(e.right) if isinstance(e.op, ast.Add) else -_int(e.right)) + d
        e, d = e.left, off
        if off == 0:
            return e
    return ast.BinOp(e, ast.Add() if d > 0 else ast.Sub(), ast.Constant(abs(d)))


@_operator("off-by-one", "a range stop or slice bound one too small or too large")
def _off_by_one(ctx):
    for node in ctx.nodes:
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
                and 1 <= len(node.args) <= 3 and not node.keywords):
            bound, shown = node.args[0 if len(node.args) == 1 else 1], node
        elif isinstance(node, ast.Slice):
            sub = ctx.parent.get(node)
            sub = ctx.parent.get(sub) if isinstance(sub, ast.Tuple) else sub
            for bound in (node.lower, node.upper):
                if bound is not None and _intish(bound):
                    shown = sub if isinstance(sub, ast.Subscript) and isinstance(sub.ctx, ast.Load) else bound
                    for d in (-1, 1):
                        yield [(shown, _sub(shown, bound, _shift(bound, d)))]
            continue
        else:
            continue
        if _intish(bound):
            for d in (-1, 1):
                yield [(shown, _sub(shown, bound, _shift(bound, d)))]


_NOT_SWAPPED = {"isinstance", "issubclass", "setattr", "getattr", "hasattr", "super", "print", "zip", "enumerate",
                "range", "min", "max", "open", "map", "filter", "sorted", "format", "dict", "list", "tuple", "set",
                "cls",   # and (below) constructors, whose arguments are sizes, not tensors
                "view", "reshape", "expand", "repeat", "tile", "zeros", "ones", "empty", "rand", "randn", "full",
                "arange", "new_zeros", "new_ones", "new_empty", "new_full", "randint"}


@_operator("args-swapped", "two positional tensor arguments swapped (matmul(q, k) -> matmul(k, q), attention(q, k, v) -> (k, q, v))")
def _args_swapped(ctx):
    for node in ctx.nodes:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            a, b = _dotted(node.left), _dotted(node.right)
            if a and b and a != b:
                yield [(node, ast.BinOp(node.right, ast.MatMult(), node.left))]
        elif isinstance(node, ast.Call) and (_name(node.func) or "A")[0].islower() and _name(node.func) not in _NOT_SWAPPED:
            for a, b in zip(node.args, node.args[1:]):
                if _dotted(a) and _dotted(b) and _dotted(a) != _dotted(b):
                    yield [(node, _rebuild(node, {id(a): b, id(b): a}))]
