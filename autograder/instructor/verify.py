"""``verify``: what an instructor checks before uploading an assignment.

The reference earns full marks, the template earns zero without a grader error, every
test has points (or is informational, at 0) and a time limit, numbers are unique, and the
points add up to the configured total.
"""
from __future__ import annotations

from dataclasses import dataclass

from autograder.engine import registry
from autograder.engine.runner import grade
from autograder.engine.spec import collect_tests, spec_of


@dataclass
class Check:
    ok: bool
    what: str
    detail: str = ""


def _graded(assignment: str, folder, **options):
    result = grade(assignment, folder, **options)
    broken = [t for t in result.tests if t.outcome == "error"]
    return result, broken


def _why(result, tests) -> str:
    """The real cause, for the instructor: a grader error's exception, or each test's message
    (with the last line of its traceback when the test could not finish)."""
    if result.grader_error:
        details = [t.output for t in result.tests if t.visibility != "visible"] or [result.output]
        lines = [l.strip() for l in details[0].strip().splitlines() if l.strip()]
        return "grader error: " + " | ".join(lines[-3:])
    out = []
    for t in tests[:5]:
        cause = (t.extra.get("traceback") or "").strip().splitlines()[-1:] or [t.output.strip()[:200]]
        out.append(f"{t.number or ''} {t.name}: {cause[0][:300]}".strip())
    return "\n        ".join(out)


def verify(name: str, **options) -> tuple[list[Check], list[str]]:
    """(checks, informational lines) for assignment ``name``; ``options`` go to ``grade``."""
    assignment = registry.load_assignment(name)
    cases = collect_tests(name)
    checks: list[Check] = []
    info: list[str] = []

    specs = [spec_of(c) for c in cases]
    no_limit = [s.id for s in specs if s.time_limit is None]
    checks.append(Check(not no_limit, "every test has its own time limit (@time_limit)", ", ".join(no_limit[:5])))
    no_weight = [s.id for s in specs if s.points is None]
    checks.append(Check(not no_weight, "every test has points (@weight; 0 for informational tests)",
                        ", ".join(no_weight[:5])))
    numbers = [s.number for s in specs]
    dupes = sorted({n for n in numbers if n is not None and numbers.count(n) > 1})
    checks.append(Check(None not in numbers and not dupes, "every test has a unique @number",
                        f"duplicated: {', '.join(dupes)}" if dupes else ""))
    declared = {b.key for b in assignment.bans}
    unknown = sorted({f"{s.id.rsplit('.', 1)[-1]}: {key!r}" for s in specs for key in s.bans if key not in declared})
    checks.append(Check(not unknown, "every @enforce_ban key names a ban the assignment declares",
                        f"{', '.join(unknown[:5])}; declared: {', '.join(sorted(declared)) or 'none'}"))
    regular = sum(s.weight for s in specs if s.number not in assignment.extra_credit)
    extra = sum(s.weight for s in specs if s.number in assignment.extra_credit)
    checks.append(Check(abs(regular - assignment.total_points) < 1e-9,
                        f"points add up to the configured total ({assignment.total_points:g})",
                        f"the tests hold {regular:g}"))

    visible = [s for s in specs if s.visible]
    info.append(f"{len(specs)} tests: {len(visible)} visible ({sum(s.weight for s in visible):g} points), "
                f"{len(specs) - len(visible)} hidden ({sum(s.weight for s in specs if not s.visible):g} points)"
                + (f"; {extra:g} extra-credit points on top of {assignment.total_points:g}" if extra else ""))

    reference, broken = _graded(name, registry.reference_dir(name), **options)
    short = [t for t in reference.tests if not t.passed]
    checks.append(Check(not reference.grader_error and not short and reference.score == reference.max_score,
                        f"the reference earns full marks ({reference.score:g}/{reference.max_score:g})",
                        _why(reference, short)))
    template, broken = _graded(name, registry.template_dir(name), **options)
    scoring = [f"{t.number} {t.name}" for t in template.tests if t.score > 0]
    checks.append(Check(template.score == 0 and not scoring, "the template earns zero", "; ".join(scoring[:5])))
    checks.append(Check(not template.grader_error and not broken,
                        "the template is graded without a grader error or a test that could not finish",
                        _why(template, broken)))
    info.append(f"grading took {reference.execution_time:.1f} s for the reference and "
                f"{template.execution_time:.1f} s for the template")
    return checks, info


def render(name: str, checks: list[Check], info: list[str]) -> str:
    lines = [f"verify {name}"]
    for c in checks:
        lines.append(f"  {'ok  ' if c.ok else 'FAIL'}  {c.what}" + (f"\n        {c.detail}" if c.detail and not c.ok else ""))
    lines.extend(f"  info  {line}" for line in info)
    failed = sum(not c.ok for c in checks)
    lines.append(f"  {'all checks passed' if not failed else f'{failed} check(s) failed'}")
    return "\n".join(lines)


def report_mutants(name: str, *, max_mutants: int | None = None, jobs: int | None = None, device: str = "cpu") -> int:
    """``verify --mutants``: print the mutation report (progress on stderr). 0, or 1 when the
    reference is not graded full marks or the suite rejects a declared correct reading (the score
    itself is information, never a failure)."""
    import sys
    from autograder.instructor import mutants

    report = mutants.mutation_report(name, max_mutants=max_mutants or mutants.DEFAULT_MAX, jobs=jobs,
                                     device=device, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(mutants.render(report))
    return 0 if report.baseline_ok and not report.count("rejected") else 1
