"""Batch records -> a short text report: statuses, score statistics, per-test pass rates."""
from __future__ import annotations

import statistics
from collections import Counter

from autograder.batch.model import GRADED, Record
from autograder.batch.reports.csv_grades import column, test_columns


def pass_rates(records: list[Record]) -> dict[str, float]:
    """{test column: fraction of graded submissions that passed it}."""
    graded = [r for r in records if r.status == GRADED and r.result]
    rates = {}
    for label in test_columns(records):
        passed = sum(any(column(t) == label and t.passed for t in r.result.tests) for r in graded)
        rates[label] = passed / len(graded) if graded else 0.0
    return rates


def render(records: list[Record]) -> str:
    counts = Counter(r.status for r in records)
    lines = [f"{len(records)} submissions: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))]
    scores = [r.result.score for r in records if r.status == GRADED and r.result]
    if scores:
        top = max((r.result.max_score for r in records if r.result), default=0)
        lines.append(f"scores of graded submissions (out of {top:g}): mean {statistics.mean(scores):.2f}, "
                     f"median {statistics.median(scores):g}, min {min(scores):g}, max {max(scores):g}")
    rates = pass_rates(records)
    if rates:
        lines.append("pass rate per test (graded submissions):")
        lines.extend(f"  {rate:6.1%}  {label}" for label, rate in rates.items())
    problems = [r for r in records if r.status != GRADED]
    if problems:
        lines.append("not graded:")
        lines.extend(f"  {r.key}: {r.status}: {r.note}" for r in problems)
    return "\n".join(lines)
