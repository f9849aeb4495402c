"""Where a composite goes wrong: the first sub-module whose output (or gradient) departs from
the reference run with the student's own weights on the same input (trusted, pure: it runs in
the grader's process on data that came back from the worker).

A test of a composite (a block, a model, a stack the grader drives layer by layer) that has
already failed asks, for its message only:

    record = self.record_modules(block, x)            # the worker: forward hooks on named_modules()
    diff = localise.first_difference(record, reference, x, accept=("layer_norm_1", "attn"))
    line = localise.describe(diff, hidden=self.hidden, root="PreNormAttentionBlock")

(or ``localise.annotate(exc, lambda: ..., hidden=..., root=...)``, which never fails and returns
the test's own failure with the line added). Nothing here decides a verdict: a test calls it
after it has failed, so correct work pays nothing and every score stays as it was.

**Records.** One per call of a sub-module, ``{"path", "inputs", "output", "start", "end"}``:
the module path (``named_modules()``'s, "" for the composite itself), its tensor arguments, its
result (a tensor, or a list of them), and counters numbering the starts and ends of the calls
(a call's sub-calls start between its own start and end; ``end`` is None for a call that
raised). Records without counters are taken as a flat sequence in their order (a stack the
grader drives). The reference side is an ``nn.Module`` (run here with the same hooks on
``*args``) or records.

**The walk.** Over the reference's calls in the order they start, each matched with the
student's call of the same path and occurrence: a call whose inputs and output match is
skipped with everything inside it; the first whose input differs is reported (``kind="input"``:
the code before it, in the module that calls it, is wrong); a call whose output differs on the
same input is entered, and reported (``kind="output"``) when nothing inside it departs first: a
leaf computes differently, or a composite's own code between its sub-modules does. A call the
reference makes and the student's code does not (a module the student's model has) is
reported as ``kind="missing"``; paths the student's model does not have (another
parametrisation inside) are not compared. When every output matches, the parameter gradients
given are compared module by module in the order backward reaches them (``kind="gradient"``).

**Parts graded elsewhere** (``accept``, ``accept_inputs``): where such a part returns another
value than the reference's on the same input (or, for ``accept_inputs``, receives another
one), the reference run goes on with the student's value, so the walk names what the failing
test grades, not a defect that costs its points in its own part (the parts are listed in
``Difference.accepted``).

Length: the call-order walk, the reference run with hooks, gradient comparison and the message wording form one algorithm; kept together so it reads top to bottom.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch

TOLERANCE = 1e-4
MAX_RECORDS = 4096        # records read per run (the worker keeps 512; anything beyond is not its own)
COMPARED = "each sub-module compared with the reference holding your weights, on the same input"


@dataclasses.dataclass(frozen=True)
class Difference:
    """Where the student's run first departs from the reference's.

    ``kind``: "output" (the module returns other values on the same input; ``own``: it has
    sub-modules and they all match, so its own code between them differs), "input" (what it
    receives differs: the code of ``parent`` before the call), "missing" (the reference calls
    it there, the student's code does not), "gradient" (``param``'s gradient differs). ``path``
    is written as ``transformer[0].layer_norm_1``; "" is the composite itself. ``max_abs`` is the
    largest difference (None when shapes differ, a value is missing or not finite)."""
    path: str
    kind: str
    max_abs: float | None = None
    shapes: tuple | None = None           # (student's shape, reference's shape) when they differ
    nonfinite: bool = False               # the student's values hold NaN or infinities there
    parent: str = ""
    own: bool = False
    param: str = ""
    accepted: tuple = ()
    argument: int | None = None           # which argument differs ("input"), when the call has several


def module_path(name: str) -> str:
    """``transformer.0.layer_norm_1`` -> ``transformer[0].layer_norm_1`` (numbers index a container)."""
    out = ""
    for part in str(name).split(".") if name else ():
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


# -- comparing values -------------------------------------------------------------------------
@dataclasses.dataclass
class _Cmp:
    same: bool
    max_abs: float | None = None
    shapes: tuple | None = None
    nonfinite: bool = False


def _tensors(value) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def compare(student, reference, *, atol: float = TOLERANCE, rtol: float = TOLERANCE,
            shapes_only: bool = False) -> _Cmp:
    """Do two values (tensors, lists of them, or None) agree: same shapes and, unless
    ``shapes_only``, the same values within ``atol + rtol*|reference|``?"""
    if reference is None:
        return _Cmp(True)     # nothing to compare on the reference's side
    if isinstance(student, (list, tuple)) or isinstance(reference, (list, tuple)):
        a, b = _tensors(student), _tensors(reference)
        if len(a) != len(b):
            return _Cmp(False)
        worst = _Cmp(True)
        for x, y in zip(a, b):
            c = compare(x, y, atol=atol, rtol=rtol, shapes_only=shapes_only)
            if not c.same:
                if worst.same or c.shapes or c.nonfinite or (c.max_abs or 0) > (worst.max_abs or 0):
                    worst = c
                if c.shapes or c.nonfinite:
                    break
        return worst
    a_t, b_t = isinstance(student, torch.Tensor), isinstance(reference, torch.Tensor)
    if not a_t or not b_t:
        return _Cmp(a_t == b_t)
    if tuple(student.shape) != tuple(reference.shape):
        return _Cmp(False, shapes=(tuple(student.shape), tuple(reference.shape)))
    if shapes_only or student.numel() == 0:
        return _Cmp(True)
    a = student.detach().to("cpu", torch.float64)
    b = reference.detach().to("cpu", torch.float64)
    equal = a == b
    finite = torch.isfinite(a) & torch.isfinite(b)
    err = torch.where(finite, (a - b).abs(), torch.zeros_like(a))
    bad = ~equal & (~finite | (err > atol + rtol * torch.where(finite, b.abs(), torch.zeros_like(b))))
    if not bool(bad.any()):
        return _Cmp(True)
    finite_bad = bad & finite
    return _Cmp(False, max_abs=float(err[finite_bad].max()) if bool(finite_bad.any()) else None,
                nonfinite=bool((bad & ~finite).any()))


# -- records ------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Call:
    path: str
    inputs: list
    output: Any
    start: int
    end: int | None
    children: list = dataclasses.field(default_factory=list)
    key: tuple = ()


def _calls(record) -> list[_Call]:
    """The records of ``record`` (a worker record or a list of records) as calls in start order,
    each with its sub-calls and its key (display path, occurrence)."""
    items = record.get("modules") if isinstance(record, dict) else record
    calls = []
    for i, item in enumerate(items[:MAX_RECORDS] if isinstance(items, list) else ()):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            continue
        start, end = item.get("start"), item.get("end", 2 * i + 1)
        if type(start) is not int:
            start, end = 2 * i, 2 * i + 1
        inputs = item.get("inputs")
        calls.append(_Call(module_path(item["path"]), list(inputs) if isinstance(inputs, list) else [],
                           item.get("output"), start, end if type(end) is int else None))
    calls.sort(key=lambda c: c.start)
    seen: dict[str, int] = {}
    stack: list[_Call] = []
    roots = []
    for call in calls:
        call.key = (call.path, seen.get(call.path, 0))
        seen[call.path] = call.key[1] + 1
        while stack and stack[-1].end is not None and stack[-1].end < call.start:
            stack.pop()
        (stack[-1].children if stack else roots).append(call)
        stack.append(call)
    return roots


def _flatten(calls: list[_Call]) -> list[_Call]:
    out = []
    for call in calls:
        out.append(call)
        out.extend(_flatten(call.children))
    return out


def _selector(accept) -> Callable[[str], bool]:
    if callable(accept):
        return lambda path: bool(accept(path))
    names = {module_path(p) for p in (accept or ())}
    return lambda path: path in names


def _to_like(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return value.detach().to(device=like.device, dtype=like.dtype)


def record_reference(module: torch.nn.Module, args=(), kwargs=None, *, student=None, accept=(),
                     accept_inputs=(), atol: float = TOLERANCE, rtol: float = TOLERANCE) -> dict:
    """Run the (trusted) ``module`` on ``args`` with forward hooks on its named modules, as the
    worker records the student's: ``{"output", "modules", "paths", "error", "accepted"}``.
    Where a part selected by ``accept`` returns another value than the student's part recorded
    in ``student`` on the same input, the run goes on with the student's value (likewise for the
    inputs of the parts selected by ``accept_inputs``)."""
    own = {c.key: c for c in _flatten(_calls(student))} if student is not None else {}
    takes_output, takes_inputs = _selector(accept), _selector(accept_inputs)
    calls, counter, seen, open_calls, handles = [], [0], {}, {}, []

    def tick() -> int:
        counter[0] += 1
        return counter[0] - 1

    def hooks(path: str, key: int):
        def pre(mod, args, kwargs):
            occurrence = seen.get(path, 0)
            seen[path] = occurrence + 1
            theirs = own.get((path, occurrence))
            positions = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
            new_args = None
            if theirs is not None and takes_inputs(path) and len(theirs.inputs) >= len(positions) > 0:
                given = [theirs.inputs[j] for j in range(len(positions))]
                mine = [args[i] for i in positions]
                if all(isinstance(t, torch.Tensor) and t.shape == m.shape for t, m in zip(given, mine)) \
                        and not compare(given, mine, atol=atol, rtol=rtol).same:
                    new_args = list(args)
                    for i, t in zip(positions, given):
                        new_args[i] = _to_like(t, args[i])
            used = new_args if new_args is not None else args
            tensors = [a for a in list(used) + [kwargs[k] for k in sorted(kwargs)] if isinstance(a, torch.Tensor)]
            record = {"path": path, "inputs": [t.detach().clone() for t in tensors[:4]], "output": None,
                      "start": tick(), "end": None, "occurrence": occurrence, "accepted": new_args is not None}
            calls.append(record)
            open_calls.setdefault(key, []).append(record)
            return (tuple(new_args), kwargs) if new_args is not None else None

        def post(mod, args, kwargs, output):
            record = open_calls[key].pop()
            theirs = own.get((path, record["occurrence"]))
            replaced = None
            if (theirs is not None and takes_output(path) and isinstance(output, torch.Tensor)
                    and isinstance(theirs.output, torch.Tensor) and theirs.output.shape == output.shape
                    and len(theirs.inputs) >= len(record["inputs"])
                    and compare(theirs.inputs[:len(record["inputs"])], record["inputs"], atol=atol, rtol=rtol).same
                    and not compare(theirs.output, output, atol=atol, rtol=rtol).same):
                replaced = _to_like(theirs.output, output)
                record["accepted"] = True
            shown = replaced if replaced is not None else output
            record["output"] = ([o.detach().clone() if isinstance(o, torch.Tensor) else None for o in shown]
                                if isinstance(shown, (tuple, list)) else
                                shown.detach().clone() if isinstance(shown, torch.Tensor) else None)
            record["end"] = tick()
            return replaced
        return pre, post

    paths = []
    try:
        for name, mod in module.named_modules():
            path = module_path(name)
            paths.append(path)
            pre, post = hooks(path, len(paths))
            handles.append(mod.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(mod.register_forward_hook(post, with_kwargs=True))
        with torch.no_grad():
            output = module(*args, **(kwargs or {}))
    finally:
        for handle in handles:
            handle.remove()
    return {"output": output, "modules": calls, "paths": paths, "error": None,
            "accepted": list(dict.fromkeys(r["path"] for r in calls if r["accepted"]))}


# -- the walk -----------------------------------------------------------------------------------
def _param_grads(grads) -> dict[str, dict[str, Any]]:
    """{module path: {parameter: grad}} from ``{"a.b.weight": grad}`` or ``{"a.b": {"weight": grad}}``."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in (grads or {}).items():
        if not isinstance(name, str):
            continue
        if isinstance(value, dict):
            out.setdefault(module_path(name), {}).update({str(k): v for k, v in value.items()})
        else:
            path, _, param = name.rpartition(".")
            out.setdefault(module_path(path), {})[param] = value
    return out


def first_difference(student, reference, *args, atol: float = TOLERANCE, rtol: float = TOLERANCE,
                     shapes_only: bool = False, accept=(), accept_inputs=(), student_grads=None,
                     reference_grads=None, **kwargs) -> Difference | None:
    """The first place where ``student`` (records from the worker: ``record_modules``'s answer,
    or a list of records) departs from ``reference`` (an ``nn.Module`` holding the student's
    weights, run here on ``*args, **kwargs``; or records), or None when none is found (every
    recorded output matches, or the student's forward raised before the place it departs).
    ``shapes_only``: compare shapes, not values (for properties that leave values free).
    ``student_grads``/``reference_grads`` (``{"path.param": grad}`` or ``{path: {param: grad}}``):
    compared when every output matches. See the module docstring."""
    accepted: tuple = ()
    if isinstance(reference, torch.nn.Module):
        reference = record_reference(reference, args, kwargs, student=student, accept=accept,
                                     accept_inputs=accept_inputs, atol=atol, rtol=rtol)
        accepted = tuple((r["path"], r["start"]) for r in reference["modules"] if r.get("accepted"))
    elif not isinstance(reference, (list, dict)):
        return None         # nothing to compare with (e.g. a reference that is not shipped)
    mine = {c.key: c for c in _flatten(_calls(student))}
    stopped = isinstance(student, dict) and bool(student.get("error") or student.get("dropped"))
    known = {c.path for c in mine.values()}
    if isinstance(student, dict) and isinstance(student.get("paths"), list):
        known |= {module_path(p) for p in student["paths"] if isinstance(p, str)}
    kw = dict(atol=atol, rtol=rtol, shapes_only=shapes_only)

    def found(call, kind, cmp=None, **extra) -> Difference:
        """The Difference at ``call`` (a _Call, or a path for what follows every call)."""
        path, until = (call, None) if not isinstance(call, _Call) else \
            (call.path, call.end if kind == "output" and call.end is not None else call.start)
        before = tuple(dict.fromkeys(p for p, at in accepted if until is None or at < until))
        return Difference(path, kind, cmp.max_abs if cmp else None, cmp.shapes if cmp else None,
                          bool(cmp and cmp.nonfinite), accepted=before, **extra)

    def walk(calls: list[_Call], parent: str):
        for call in calls:
            theirs = mine.get(call.key)
            if theirs is None:
                if call.path not in known:
                    continue            # the student's model has no such part: nothing to compare
                return None if stopped else found(call, "missing", parent=parent)
            inputs, argument = _Cmp(True), None
            for i, (a, b) in enumerate(zip(theirs.inputs, call.inputs)):
                inputs, argument = compare(a, b, **kw), i
                if not inputs.same:
                    break
            if inputs.same and len(theirs.inputs) < len(call.inputs):
                inputs, argument = _Cmp(False), None        # the student's call got fewer arguments
            if not inputs.same:
                return found(call, "input", inputs, parent=parent,
                             argument=argument if len(call.inputs) > 1 else None)
            if theirs.end is None:       # it raised inside: only what happened before can be compared
                return walk(call.children, call.path)
            output = compare(theirs.output, call.output, **kw)
            if output.same:
                continue
            inside = walk(call.children, call.path)
            if inside is not None:
                return inside
            compared = any(c.key in mine for c in call.children)
            return found(call, "output", output, parent=parent, own=compared or call.path == "")
        return None

    roots = _calls(reference)
    diff = walk(roots, "")
    if diff is not None or stopped:
        return diff
    if not any(c.path == "" for c in roots) and isinstance(student, dict) and isinstance(reference, dict) \
            and "output" in student and "output" in reference:
        final = compare(student["output"], reference["output"], **kw)
        if not final.same:
            return found("", "output", final, own=True)
    if student_grads is None or reference_grads is None:
        return None
    # Backward reaches the modules in the reverse order of the forward's ends.
    order = [c.path for c in sorted(_flatten(roots), key=lambda c: c.end if c.end is not None else c.start,
                                     reverse=True)]
    ours, theirs_grads = _param_grads(reference_grads), _param_grads(student_grads)
    order = list(dict.fromkeys(order + sorted(ours, reverse=True)))
    for path in order:
        for param, expected in (ours.get(path) or {}).items():
            if not isinstance(expected, torch.Tensor):
                continue
            got = (theirs_grads.get(path) or {}).get(param)
            if not isinstance(got, torch.Tensor):
                return found(path, "gradient", _Cmp(False), param=param)
            cmp = compare(got, expected, atol=atol, rtol=rtol)
            if not cmp.same:
                return found(path, "gradient", cmp, param=param)
    return None


# -- messages -----------------------------------------------------------------------------------
def _amount(diff: Difference, hidden: bool) -> str:
    if diff.shapes:
        if hidden:
            return " (in shape)"
        mine, theirs = ("(" + ", ".join(str(d) for d in s) + ")" for s in diff.shapes)
        return f" (shape {mine}, the reference's {theirs})"
    if diff.nonfinite:
        return " (it holds NaN or infinite values)"
    if diff.max_abs is not None and not hidden:
        return f" by up to {diff.max_abs:.3g}"
    return ""


ORDINALS = ("first", "second", "third", "fourth")


def describe(diff: Difference | None, hidden: bool, root: str = "the model", compared: str | None = None) -> str:
    """One line for a failure message; "" for None. Visible tests get the size of the difference
    (or the shapes); hidden ones the place only. ``root``: the composite's name (for path "");
    ``compared``: what was compared, when not the values (default ``COMPARED``)."""
    if diff is None:
        return ""
    at = f"`{diff.path}`"
    caller = (f"`{diff.parent}`'s forward" if diff.parent else f"{root}.forward" if root.isidentifier() else root)
    amount = _amount(diff, hidden)
    if diff.kind == "input":
        which = ("its input" if diff.argument is None or diff.argument >= len(ORDINALS)
                 else f"its {ORDINALS[diff.argument]} argument")
        text = (f"in what {at} receives: {which} differs from the reference's{amount}, so look at the "
                f"code of {caller} that computes it")
    elif diff.kind == "missing":
        text = f"at {at}: the reference calls it there, and your {caller} does not (or calls it fewer times)"
    elif diff.kind == "gradient":
        text = (f"in the gradient of {at}'s {diff.param}: "
                + ("it receives none" if diff.max_abs is None and not diff.shapes and not diff.nonfinite
                   else f"it differs{amount}")
                + " (every output matches; this is the first gradient that departs, going backward "
                  "from the output)")
    elif diff.path == "":
        text = (f"in {caller}'s own code: every sub-module's output matches, but the output differs{amount}")
    elif diff.own:
        text = (f"in {at}'s own code: its sub-modules' outputs match, but its output differs{amount} "
                "on the same input")
    else:
        text = f"in {at}: its output differs{amount} on the same input"
    also = ""
    if diff.accepted:
        names = ", ".join(f"`{p}`" for p in diff.accepted[:3]) + (", ..." if len(diff.accepted) > 3 else "")
        one = len(diff.accepted) == 1
        also = (f" ({names} also differ{'s' if one else ''} from the reference: graded in {'its' if one else 'their'} "
                f"own part{'' if one else 's'}, so taken here as your code computes {'it' if one else 'them'})")
    return f"Where it goes wrong ({compared or COMPARED}): the first difference is {text}{also}."


def annotate(exc: AssertionError, find: Callable[[], Difference | None], hidden: bool,
             root: str = "the model", compared: str | None = None) -> AssertionError:
    """``exc`` (a test's failure) with the line of ``describe(find(), ...)`` added, as an exception
    of the same type; ``exc`` itself when ``find`` finds nothing or fails in any way (the
    failure and its verdict never depend on the localisation)."""
    try:
        line = describe(find(), hidden, root, compared)
        if not line:
            return exc
        annotated = type(exc)(f"{exc}\n  {line}")
    except Exception:   # noqa: BLE001 - a message aid: whatever goes wrong, the failure stays as it was
        return exc
    return annotated

