"""The result model: what grading decided, independent of any output format."""
from __future__ import annotations

from dataclasses import dataclass, field


OUTCOMES = ("passed", "failed", "error", "server_only", "not_run", "banned")


@dataclass
class TestResult:
    """One test's verdict. ``outcome`` says what happened: passed; failed (the student's doing,
    partial credit included); error (the test itself could not finish: a grader bug); server_only
    (the student bundle cannot decide it); not_run (the grading's budget ran out); banned."""
    __test__ = False   # not a pytest test class
    name: str
    max_score: float
    score: float = 0.0
    number: str | None = None
    output: str = ""
    visibility: str = "visible"
    tags: tuple[str, ...] = ()
    execution_time: float = 0.0
    status: str = "failed"                   # "passed" | "failed"
    extra: dict = field(default_factory=dict)  # instructor-only details (never shown to students)
    leaderboard: dict | None = None          # {"name", "value", "order"} from @leaderboard, if set
    outcome: str = "failed"                  # one of OUTCOMES
    notes: tuple[str, ...] = ()              # the grader's notes to the student (also in ``output``)

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class GradingResult:
    assignment: str
    tests: list[TestResult] = field(default_factory=list)
    output: str = ""
    execution_time: float = 0.0
    grader_error: bool = False
    extra: dict = field(default_factory=dict)
    total_points: float | None = None      # what the assignment is out of (its configuration)
    extra_credit: float = 0.0              # points on top of it

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tests), 6)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests), 6)

    def out_of(self) -> str:
        """'37 points' or '38 points (+2 extra credit)': the one wording of the total, fixed by the
        assignment whatever the submission does (tests that could not run keep their points)."""
        total = self.total_points if self.total_points is not None else self.max_score - self.extra_credit
        return f"{_pts(total)} points" + (f" (+{_pts(self.extra_credit)} extra credit)" if self.extra_credit else "")

    def summary(self) -> str:
        """For students: what the visible score covers and what hidden tests hold."""
        visible = [t for t in self.tests if t.visibility == "visible"]
        hidden = [t for t in self.tests if t.visibility != "visible"]
        lines = [f"Visible tests: {_pts(sum(t.score for t in visible))} of "
                 f"{_pts(sum(t.max_score for t in visible))} points ({len(visible)} tests)."]
        if hidden:
            lines.append(f"{len(hidden)} hidden tests hold {_pts(sum(t.max_score for t in hidden))} more points; "
                         "their results are shown when grades are published. Your visible score "
                         "is not your final score.")
        lines.append(f"The assignment is out of {self.out_of()}.")
        return "\n".join(lines)

    def staff_summary(self) -> str:
        """For instructors: the whole score, visible and hidden apart."""
        visible = [t for t in self.tests if t.visibility == "visible"]
        hidden = [t for t in self.tests if t.visibility != "visible"]
        parts = [f"visible {_pts(sum(t.score for t in visible))}/{_pts(sum(t.max_score for t in visible))}"]
        if hidden:
            parts.append(f"hidden {_pts(sum(t.score for t in hidden))}/{_pts(sum(t.max_score for t in hidden))}")
        return f"Total: {_pts(self.score)} of {self.out_of()}; {', '.join(parts)}."


def _pts(x: float) -> str:
    return f"{x:g}"


def grader_error_result(assignment: str, traceback_text: str) -> GradingResult:
    """What students see when the grader itself broke: score 0, a visible note, details hidden."""
    return GradingResult(
        assignment=assignment,
        grader_error=True,
        output="The autograder itself failed while grading this submission. This is not your "
               "fault; the course staff have been notified through the grader log. Please "
               "resubmit later or contact the staff.",
        tests=[
            TestResult(name="grader error", max_score=0.0, score=0.0, status="failed", outcome="error",
                       output="The autograder hit an internal error. Your submission was not graded."),
            TestResult(name="grader error (details for staff)", max_score=0.0, score=0.0, status="failed", outcome="error",
                       visibility="hidden", output=traceback_text[-20000:]),
        ],
    )
