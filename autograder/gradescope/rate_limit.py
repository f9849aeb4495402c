"""Rate limiting on Gradescope: at most N graded submissions per student in any window of H hours.

Off unless the deployment's ``deploy.json`` has ``"rate_limit": {"submissions": N,
"window_hours": H}`` (``autograder build --rate-limit N/H``). The count comes from
``submission_metadata.json``: ``created_at`` of this submission and the
``previous_submissions`` (``submission_time``, ``autograder_error``, and ``results`` on the
latest one). Each graded result records the times of the graded submissions in its window
(``extra_data.rate_limit.graded_at``), so carried-over and failed submissions never count;
without that record, every earlier submission without an autograder error counts. A result
the grader failed on (``extra_data.grader_error``, run_autograder's start-up fallback too) never
counts and is never carried over.

Over the limit, the submission is not graded: the latest earlier result is carried over,
with an explanation at the top and the time the next graded submission is possible. When
the metadata or the earlier result cannot be read, the submission is graded (a missing
file must never cost a student their grade) and the reason is noted.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from autograder.engine.formats.results_reader import from_json
from autograder.engine.results import GradingResult


@dataclass(frozen=True)
class RateLimit:
    submissions: int
    window_hours: float

    @classmethod
    def from_config(cls, config: dict) -> "RateLimit | None":
        """The limit a deploy.json sets, or None (off). Raises ValueError on a malformed one."""
        spec = config.get("rate_limit")
        if not spec:
            return None
        limit = cls(int(spec["submissions"]), float(spec["window_hours"]))
        if limit.submissions < 1 or limit.window_hours <= 0:
            raise ValueError(f"rate_limit needs submissions >= 1 and window_hours > 0, not {spec}")
        return limit


@dataclass
class Decision:
    allowed: bool                                  # grade this submission
    message: str                                   # for the student, at the top of the output
    graded_at: list[datetime] = field(default_factory=list)   # graded submissions in the window
    carried: GradingResult | None = None           # the earlier result, when not allowed


def parse_time(value) -> datetime:
    """An ISO-8601 time as Gradescope writes it (offset or ``Z``; none means UTC)."""
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _latest(previous: list[dict]) -> dict | None:
    dated = [p for p in previous if isinstance(p, dict) and p.get("submission_time")]
    return max(dated, key=lambda p: parse_time(p["submission_time"]), default=None)


def graded_history(previous: list[dict]) -> list[datetime]:
    """Times of the earlier submissions that were graded (see the module docstring)."""
    latest = _latest([p for p in previous if isinstance(p, dict) and not _failed(p)])
    recorded = (((latest or {}).get("results") or {}).get("extra_data") or {}).get("rate_limit", {})
    if isinstance(recorded, dict) and isinstance(recorded.get("graded_at"), list):
        return [parse_time(t) for t in recorded["graded_at"]]
    return [parse_time(p["submission_time"]) for p in previous
            if isinstance(p, dict) and p.get("submission_time") and not _failed(p)]


def _failed(previous: dict) -> bool:
    """An earlier submission the grader failed on (Gradescope's flag, or our own record of it,
    run_autograder's start-up fallback included): it never counts and is never carried over."""
    results = previous.get("results")
    extra = (results.get("extra_data") or {}) if isinstance(results, dict) else {}
    return bool(previous.get("autograder_error")) or bool(isinstance(extra, dict) and extra.get("grader_error"))


def decide(limit: RateLimit, metadata: dict) -> Decision:
    """Whether this submission may be graded; over the limit, the earlier result to carry over."""
    now = parse_time(metadata["created_at"])
    previous = metadata.get("previous_submissions") or []
    window = timedelta(hours=limit.window_hours)
    recent = sorted(t for t in graded_history(previous) if now - window < t <= now)
    rule = f"{limit.submissions} graded submission{'s' if limit.submissions > 1 else ''} in any " \
           f"{limit.window_hours:g} hours"
    if len(recent) < limit.submissions:
        return Decision(True, f"Submission limit: this is graded submission {len(recent) + 1} of {rule}.",
                        recent + [now])
    latest = _latest(previous)
    if not latest or not isinstance(latest.get("results"), dict):
        return Decision(True, f"Submission limit ({rule}) reached, but your earlier result could not be found, "
                              "so this submission was graded.", recent + [now])
    if _failed(latest):
        return Decision(True, f"Submission limit ({rule}) reached, but the grader failed on your latest "
                              "submission, so this one was graded.", recent + [now])
    carried = from_json(latest["results"])
    next_at = recent[len(recent) - limit.submissions] + window
    message = (f"Submission limit reached ({rule}): this submission was NOT graded. The results below are "
               f"those of your submission of {_stamp(parse_time(latest['submission_time']))}, carried over. "
               f"Your next submission can be graded from {_stamp(next_at)}.")
    return Decision(False, message, recent, carried)


def check(config: dict, metadata_path: Path) -> Decision | None:
    """The decision for this deployment (None when rate limiting is off); never raises."""
    try:
        limit = RateLimit.from_config(config)
    except (TypeError, ValueError, KeyError) as exc:
        return Decision(True, f"(Submission limit not applied: the deployment's rate_limit is malformed: {exc}.)")
    if limit is None:
        return None
    try:
        return decide(limit, json.loads(Path(metadata_path).read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return Decision(True, f"(Submission limit not applied: submission metadata unreadable: "
                              f"{type(exc).__name__}.)")


def apply(decision: Decision, result: GradingResult) -> GradingResult:
    """``result`` with the decision's message on top and the graded times recorded for next time."""
    counted = decision.graded_at[:-1] if decision.allowed and result.grader_error else decision.graded_at
    result.output = decision.message + ("\n" + result.output if result.output else "")
    result.extra = {**result.extra, "rate_limit": {"graded_at": [t.isoformat() for t in counted],
                                                   "carried_over": not decision.allowed}}
    return result
