"""A2S1 §1.2-1.4: crafting queries (and keys) for unscaled attention softmax(q Kᵀ) V.

An answer's error is the largest absolute difference between the attention output and
the target, computed here in float64 with a stable softmax (so q = 1e6 * k0 is fine);
an error of at most 0.05 gets full credit. Single queries may have shape (3,) or (1, 3).
"""
from pathlib import Path

import numpy as np
import torch

from autograder.suite import GradedTestCase, Remote, number, sibling, time_limit, weight

POINTS = sibling(__file__, "assignment").POINTS
load_notes = sibling(__file__, "load_notes")

TOL = 0.05            # the handout's full-credit error
KEY_TOL = 1e-6        # rows of m_key that must stay equal to K
NORM_TOL = 1e-3       # |new k2| - 1 in 1.4.2

K = torch.tensor([[0.47, 0.65, 0.60],
                  [0.64, 0.50, -0.59],
                  [-0.03, -0.48, -0.88],
                  [0.43, -0.83, 0.35]], dtype=torch.float64)
V = torch.tensor([[-0.07, -0.88, 0.47],
                  [0.37, -0.93, -0.07],
                  [-0.25, -0.75, 0.61],
                  [0.94, 0.20, 0.28]], dtype=torch.float64)


def attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """softmax(q keysᵀ) values in float64: (n, 3), (4, 3), (4, 3) -> (n, 3)."""
    scores = q @ keys.T
    scores = scores - scores.max(dim=-1, keepdim=True).values
    weights = scores.exp()
    return (weights / weights.sum(dim=-1, keepdim=True)) @ values


def fmt(t: torch.Tensor) -> str:
    return np.array2string(t.numpy(), precision=4, suppress_small=True, separator=", ")


def as_matrix(value, name: str, rows: int) -> torch.Tensor:
    """The student's value as a float64 (rows, 3) tensor; (3,) is accepted when rows == 1."""
    if isinstance(value, (list, tuple)) and value and all(type(v) is torch.Tensor for v in value):
        try:
            value = torch.stack([v.to(torch.float64) for v in value])
        except RuntimeError:
            pass
    if isinstance(value, np.ndarray) or (isinstance(value, (list, tuple)) and value
                                         and all(isinstance(v, (int, float, list, tuple)) for v in value)):
        try:
            value = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            pass
    if type(value) is not torch.Tensor:
        got = "None (still the TODO?)" if value is None else f"a {type(value).__name__}"
        if isinstance(value, Remote):
            got = f"an object of type {value._type_name}"
        raise AssertionError(f"{name} should be a torch tensor of shape ({rows}, 3); got {got}.")
    if value.is_complex() or value.dtype == torch.bool:
        raise AssertionError(f"{name} should be a real-valued tensor; got dtype {value.dtype}.")
    t = value.detach().to(torch.float64)
    if rows == 1 and tuple(t.shape) == (3,):
        t = t.reshape(1, 3)
    if tuple(t.shape) != (rows, 3):
        accepted = "(1, 3) or (3,)" if rows == 1 else f"({rows}, 3)"
        raise AssertionError(f"{name} has shape {tuple(value.shape)}; expected {accepted}.")
    if not bool(torch.isfinite(t).all()):
        raise AssertionError(f"{name} contains NaN or infinite values: {fmt(t)}.")
    return t


class _QueryCase(GradedTestCase):

    def answer(self, name: str, rows: int) -> torch.Tensor:
        """The student's ``name`` as a (rows, 3) float64 tensor; what the loader skipped about it is shown."""
        load_notes.show(self, "A2S1", names=(name, "key", "value"), everything=name == "query121")
        return as_matrix(getattr(self.student("A2S1"), name), name, rows)

    def check_output(self, q: torch.Tensor, keys: torch.Tensor, target: torch.Tensor, what: str) -> None:
        out = attention(q, keys, V)
        if not bool(torch.isfinite(out).all()):
            raise AssertionError(f"{what}: the attention output is not finite (the scores overflow).")
        error = float((out - target).abs().max())
        if error > TOL:
            raise AssertionError(
                f"{what}: max abs error {error:.4g}, above the tolerance {TOL}.\n"
                f"  attention output: {fmt(out)}\n  target:           {fmt(target)}")
        self.note(f"{what}: max abs error {error:.2g} (tolerance {TOL}).")


class TestSelection(_QueryCase):

    @weight(POINTS["1.2.1"])
    @number("1.2.1")
    @time_limit(20)
    def test_select_v0(self):
        """1.2.1 query121 selects v0"""
        self.check_output(self.answer("query121", 1), K, V[0:1], "softmax(query121 Kᵀ) V compared with v0")

    @weight(POINTS["1.2.2"])
    @number("1.2.2")
    @time_limit(20)
    def test_identity(self):
        """1.2.2 query122 selects every value (identity)"""
        self.check_output(self.answer("query122", 4), K, V, "softmax(query122 Kᵀ) V compared with V")


class TestAveraging(_QueryCase):

    @weight(POINTS["1.3.1"])
    @number("1.3.1")
    @time_limit(20)
    def test_average_all(self):
        """1.3.1 query131 averages all four values"""
        self.check_output(self.answer("query131", 1), K, V.mean(dim=0, keepdim=True),
                          "softmax(query131 Kᵀ) V compared with the mean of v0..v3")

    @weight(POINTS["1.3.2"])
    @number("1.3.2")
    @time_limit(20)
    def test_average_first_two(self):
        """1.3.2 query132 averages v0 and v1"""
        self.check_output(self.answer("query132", 1), K, V[0:2].mean(dim=0, keepdim=True),
                          "softmax(query132 Kᵀ) V compared with the mean of v0 and v1")


class TestInteractions(_QueryCase):
    """§1.4 reuses the name m_key: 1.4.1 is graded from the value m_key had when the file checked
    it (its own check_query call), 1.4.2 from its last value.

    The loader records m_key's value before each rebinding, at each call it is passed to, and
    at the end (``"rebound"``, ``"call"``, ``"final"`` events, in the file's order)."""

    def m_key_events(self) -> list[dict]:
        load_notes.show(self, "A2S1", names=("m_key",))
        events = [e for e in self.history("A2S1", "m_key") or () if isinstance(e, dict) and "value" in e]
        if not events:
            raise AssertionError("m_key is never assigned in your A2S1.py, so §1.4 could not be graded.")
        return events

    def check_keys(self, m_key: torch.Tensor, part: str) -> None:
        moved = [i for i in (0, 1, 3) if float((m_key[i] - K[i]).abs().max()) > KEY_TOL]
        if moved:
            rows = ", ".join(f"k{i} = {fmt(m_key[i])} (K has {fmt(K[i])})" for i in moved)
            raise AssertionError(
                f"{part}: only k2 (row 2 of m_key) may change, but row(s) {moved} differ from K "
                f"(tolerance {KEY_TOL:g}): {rows}.")

    def candidates_141(self, events: list[dict]) -> list[tuple[dict, torch.Tensor]]:
        """The values m_key had before 1.4.2 that change k2: those the file passed to check_query
        first, then the others in order (a plain copy of K is not an answer)."""
        changed = []
        for e in events:
            try:
                m = as_matrix(e["value"], "m_key", 4)
            except AssertionError:
                continue
            if float((m[2] - K[2]).abs().max()) > KEY_TOL:
                changed.append((e, m))
        earlier = [c for c in changed if c[0].get("event") != "final"] or changed
        checked = [c for c in earlier if c[0].get("function") == "check_query"]
        return checked + [c for c in earlier if c not in checked]

    @weight(POINTS["1.4.1"])
    @number("1.4.1")
    @time_limit(20)
    def test_average_three(self):
        """1.4.1 m_key (its value when checked): a new k2 makes query132 average v0, v1 and v2"""
        events = self.m_key_events()
        candidates = self.candidates_141(events)
        q = self.answer("query132", 1)
        target = V[0:3].mean(dim=0, keepdim=True)
        what = "softmax(query132 m_keyᵀ) V compared with the mean of v0, v1 and v2"
        if not candidates:
            m_key = as_matrix(events[0]["value"], "m_key (its first value, for 1.4.1)", 4)
            self.check_keys(m_key, "1.4.1")
            self.check_output(q, m_key, target, what + " (m_key's k2 is still K's k2)")
            return
        failures = []
        for event, m_key in candidates:
            try:
                self.check_keys(m_key, "1.4.1")
                self.check_output(q, m_key, target, what)
            except AssertionError as exc:
                failures.append((event, exc))
                continue
            if len(events) > 2:
                self.note(f"1.4.1 graded from the value m_key had at line {event.get('line')} "
                          f"({_where(event)}); 1.4.2 from its last value.")
            return
        event, exc = failures[0]
        raise AssertionError(f"{exc}\n  (m_key as it was at line {event.get('line')}, {_where(event)})") from None

    @weight(POINTS["1.4.2"])
    @number("1.4.2")
    @time_limit(20)
    def test_return_v2(self):
        """1.4.2 m_key (last value): a unit-length k2 makes query132 return v2"""
        m_key = as_matrix(self.m_key_events()[-1]["value"], "m_key (its last value, for 1.4.2)", 4)
        self.check_keys(m_key, "1.4.2")
        norm = float(m_key[2].norm())
        if abs(norm - 1) > NORM_TOL:
            raise AssertionError(f"1.4.2: the new k2 = {fmt(m_key[2])} has length {norm:.4g}; "
                                 f"it must have length 1 (within {NORM_TOL:g}).")
        q = self.answer("query132", 1)
        self.check_output(q, m_key, V[2:3], "softmax(query132 m_keyᵀ) V compared with v2")


def _where(event: dict) -> str:
    kind = event.get("event")
    if kind == "call":
        return f"passed to {event.get('function')}(...)"
    return "before m_key was assigned again" if kind == "rebound" else "at the end of the file"
