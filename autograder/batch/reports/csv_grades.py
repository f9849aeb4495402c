"""Batch records -> grades.csv: one row per submission, one column per test's points."""
from __future__ import annotations

import csv
import io

from autograder.batch.model import Record

FIXED = ["submission", "name", "sid", "email", "status", "score", "max_score"]


def _number_key(label: str) -> tuple:
    head = label.split(" ", 1)[0]
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in head.split(".")) + ((1, 0, label),)


def test_columns(records: list[Record]) -> list[str]:
    """One label per test seen in any result ("number name", or the name alone), in number order."""
    labels = {}
    for record in records:
        for t in record.result.tests if record.result else []:
            if t.max_score > 0 or t.score > 0:
                labels.setdefault(column(t), None)
    return sorted(labels, key=_number_key)


def column(test) -> str:
    return f"{test.number} {test.name}" if test.number else test.name


def render(records: list[Record]) -> str:
    """The CSV text. Students' names, ids and emails come from the metadata; several are joined with "; "."""
    columns = test_columns(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FIXED + columns + ["note"])
    for r in records:
        people = r.students or [{}]
        points = {column(t): t.score for t in (r.result.tests if r.result else [])}
        result = r.result
        writer.writerow([r.key] + ["; ".join(str(p.get(k, "")) for p in people) for k in ("name", "sid", "email")]
                        + [r.status, f"{result.score:g}" if result else "0", f"{result.max_score:g}" if result else "0"]
                        + [f"{points[c]:g}" if c in points else "" for c in columns] + [r.note])
    return buffer.getvalue()
