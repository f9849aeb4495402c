"""The deploy file: what an installed copy of the grader is, stated by whoever built it.

``autograder/deploy.json`` holds ``{"assignment": NAME, "kind": KIND, "rate_limit": {...}}``.
KIND is ``"gradescope"`` (the autograder zip: the reference is installed), ``"student_bundle"``
(the reference is replayed from its recording; server data are absent by design) or, in a
checkout, ``"checkout"`` (the default when the key is missing).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import autograder

PATH = Path(autograder.__file__).resolve().parent / "deploy.json"
KINDS = ("checkout", "gradescope", "student_bundle")


@dataclass(frozen=True)
class Deploy:
    assignment: str
    kind: str = "checkout"
    rate_limit: dict = field(default_factory=dict)

    def to_json(self) -> bytes:
        data = {"assignment": self.assignment, "kind": self.kind}
        if self.rate_limit:
            data["rate_limit"] = self.rate_limit
        return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def read(path: Path | None = None) -> Deploy:
    """The deploy file (``PATH`` unless given); raises OSError / ValueError / KeyError when it is
    missing or malformed."""
    path = Path(path or PATH)
    data = json.loads(path.read_text())
    kind = data.get("kind", "checkout")
    if kind not in KINDS:
        raise ValueError(f"{path}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return Deploy(str(data["assignment"]), kind, dict(data.get("rate_limit") or {}))


def kind() -> str:
    """This installation's kind; ``"checkout"`` when the file is missing or unreadable."""
    try:
        return read().kind
    except (OSError, ValueError, KeyError):
        return "checkout"
