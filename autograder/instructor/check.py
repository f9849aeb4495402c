"""``check``: a student's run of the visible tests, in the same isolated engine, offline.

Ships in the student bundle (with ``reference_replay``). In a bundle (its deploy file says
``student_bundle``) the reference's answers are replayed from the recording made at build time;
in a checkout the installed reference answers. Nothing here imports torch before ``check`` has
started its pool (the fork server's torch import then overlaps this process's).
"""
from __future__ import annotations

import json
from pathlib import Path

from autograder.engine import deploy, registry
from autograder.engine.isolation.backend import pool_for

HIDDEN_SUMMARY = "hidden_tests.json"    # in the bundle's suite folder: {"tests": n, "points": p}


def reference_source(assignment: str):
    """What answers ``self.reference`` for this installation (stated by its deploy file)."""
    if deploy.kind() == "student_bundle":
        from autograder.instructor.reference_replay import ReplayedReference
        return ReplayedReference(registry.suite_dir(assignment))
    from autograder.engine.reference import InstalledReference
    return InstalledReference()


def resolve(words: list[str]) -> tuple[str, Path]:
    """(assignment, path) from ``check [ASSIGNMENT] [PATH]``; ValueError with the message to print."""
    words = list(words)
    known = registry.names()
    assignment = words.pop(0) if words and words[0] in known else None
    path = Path(words.pop(0) if words else ".")
    if words:
        raise ValueError("usage: autograder check [ASSIGNMENT] [PATH]")
    if not path.exists():
        raise ValueError(f"autograder: {path} does not exist")
    if assignment is None:
        found = registry.detect(path)
        if not found:
            raise ValueError(f"autograder: no assignment's files found in {path}; name one of: {', '.join(known)}")
        assignment = found[0]
    return assignment, path


def check(assignment: str, path: Path, device: str = "auto", details: bool = False) -> int:
    """Print the visible tests' verdicts on ``path``; 0 when all pass, 1 otherwise."""
    with pool_for(assignment) as pool:
        pool.start()   # first: the fork server imports torch while this process does the same (the runner)
        from autograder.engine.formats import table
        from autograder.engine.results import GradingResult
        from autograder.engine.runner import collect_tests, grade
        from autograder.engine.spec import spec_of
        result = grade(assignment, path, device=device, visible_only=True, pool=pool,
                       reference=reference_source(assignment))
    hidden = [s for s in map(spec_of, collect_tests(assignment)) if s.visibility != "visible"]
    server = [t for t in result.tests if t.outcome == "server_only"]
    local = GradingResult(assignment, [t for t in result.tests if t not in server], result.output,
                          result.execution_time, result.grader_error, result.extra,
                          result.total_points, result.extra_credit)
    print(table.render(local, details=details, title=f"{assignment}: visible tests on {path}", audience="student"))
    if server:
        print(f"  {len(server)} visible tests ({sum(t.max_score for t in server):g} points) need more of the "
              "reference solution than its recorded answers, or data that stay on the server: they are "
              "decided there, after you submit:")
        for t in server:
            print(f"    {t.number or '':<8}  SERVER  {t.max_score:g} pts  {t.name}")
    count, points = len(hidden), sum(s.points for s in hidden)
    stripped = registry.suite_dir(assignment) / HIDDEN_SUMMARY      # the student bundle's record of them
    if not hidden and stripped.is_file():
        recorded = json.loads(stripped.read_text())
        count, points = int(recorded["tests"]), float(recorded["points"])
    if count:
        print(f"  {count} hidden tests ({points:g} points) are not run here: they are decided on the "
              "server, after you submit.")
    return 0 if all(t.passed for t in local.tests) and not result.grader_error else 1
