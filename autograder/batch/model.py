"""What a batch run decided per submission, apart from any output format."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder.engine.results import GradingResult

GRADED = "graded"
TIMED_OUT = "timed out"
GRADER_ERROR = "grader error"
NOT_GRADED = "not graded"      # nothing in the upload could be graded as the assignment's files


@dataclass
class Outcome:
    """What grading one submission produced, wherever it ran (a local thread or a cluster worker)."""
    key: str
    status: str                       # GRADED | TIMED_OUT | GRADER_ERROR | NOT_GRADED
    results: str | None               # the results.json text the grading process wrote, if any
    log: str = ""                     # the grading process's output (for staff)
    wall_s: float = 0.0
    note: str = ""


@dataclass
class Record:
    """One submission of the batch: who, what happened, and (when graded) its result."""
    key: str
    source: str
    students: list[dict] = field(default_factory=list)
    created_at: str = ""
    status: str = GRADER_ERROR
    note: str = ""
    wall_s: float = 0.0
    result: GradingResult | None = None      # not stored in batch.json: results.json holds it

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("result")
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def read(cls, path: Path) -> "Record":
        data = json.loads(Path(path).read_text())
        return cls(**{k: data[k] for k in ("key", "source", "students", "created_at", "status", "note", "wall_s")})
