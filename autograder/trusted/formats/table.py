"""GradingResult -> a terminal table for people."""
from __future__ import annotations

from autograder.trusted.results import GradingResult


def _first_line(text: str, width: int) -> str:
    line = next((l.strip() for l in text.splitlines() if l.strip()), "")
    return line if len(line) <= width else line[: width - 3] + "..."


def render(result: GradingResult, *, details: bool = False, title: str | None = None) -> str:
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
    for num, mark, pts, name, output in rows:
        line = f"  {num:<{w_num}}  {mark}  {pts:>{w_pts}}  {name}"
        if mark == "FAIL" and output.strip():
            line += f"\n  {'':<{w_num}}        {'':>{w_pts}}  -> {_first_line(output, 100)}"
            if details:
                line += "\n" + "\n".join("       " + l for l in output.splitlines()[:30])
        out.append(line)
    out.append(f"  Total: {result.score:g} / {result.max_score:g}")
    out.append("  " + result.summary().replace("\n", "\n  "))
    return "\n".join(out)
