"""GradingResult -> a terminal table for people: staff (``grade``, the Gradescope log) or a
student (``check``), each with its own summary line."""
from __future__ import annotations

from autograder.engine.results import GradingResult

MESSAGE_WIDTH = 100


def _first_line(text: str, width: int) -> tuple[str, bool]:
    """The first non-empty line, cut to ``width``; and whether anything of the message was left out."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    line = lines[0] if lines else ""
    if len(line) > width:     # keep both ends: what was called, and the verdict at the end
        head = width // 3
        return line[:head] + " ... " + line[-(width - head - 5):], True
    return line, len(lines) > 1


def render(result: GradingResult, *, details: bool = False, title: str | None = None,
           audience: str = "staff") -> str:
    """``audience`` "staff" ends with the whole score (hidden tests included); "student" with what
    the visible score covers. Without ``details`` each failure shows its first line, with a pointer
    to the whole message when more of it exists."""
    rows = []
    for t in result.tests:
        mark = "PASS" if t.passed else "FAIL"
        vis = "" if t.visibility == "visible" else " (hidden)"
        rows.append((t.number or "", mark, f"{t.score:g}/{t.max_score:g}", t.name + vis, t.output))
    w_num = max([len(r[0]) for r in rows] + [1])
    w_pts = max([len(r[2]) for r in rows] + [6])
    out = []
    if title:
        out.append(title)
    cut = False
    for num, mark, pts, name, output in rows:
        line = f"  {num:<{w_num}}  {mark}  {pts:>{w_pts}}  {name}"
        if mark == "FAIL" and output.strip():
            if details:
                line += "\n" + "\n".join("       " + l for l in output.splitlines())
            else:
                first, more = _first_line(output, MESSAGE_WIDTH)
                cut = cut or more
                line += f"\n  {'':<{w_num}}        {'':>{w_pts}}  -> {first}"
        out.append(line)
    if cut:
        out.append("  (messages are shortened here: --details prints each in full)")
    summary = result.staff_summary() if audience == "staff" else result.summary()
    out.append("  " + summary.replace("\n", "\n  "))
    return "\n".join(out)
