"""Failures of student code, as seen by a test: each one fails that test with its message.

They subclass AssertionError so that unittest reports them as failures (the student's
doing), not errors (the grader's).
"""
from __future__ import annotations

import re
import signal


class StudentCodeFailure(AssertionError):
    """Base class: the message is written for the student."""


class StudentException(StudentCodeFailure):
    """Student code raised an exception (SystemExit included)."""


class WorkerDied(StudentCodeFailure):
    """The worker process ended while running student code."""


class WorkerTimeout(StudentCodeFailure):
    """Student code ran past the test's time limit; the worker was killed."""


class BadReply(StudentCodeFailure):
    """The worker answered with something that is not a valid reply."""


class MissingSubmissionFile(StudentCodeFailure):
    """A file this test needs was not found in the submission."""


class BannedFunctionUsed(StudentCodeFailure):
    """A banned function was found by the static scan or the op log."""


def describe_exit(status: int | None) -> str:
    if status is None:
        return "the worker process running your code stopped answering"
    if status >= 0:
        return (f"the worker process running your code exited with code {status} "
                "(does your code call sys.exit(), os._exit() or exit() at import or inside a function?)")
    try:
        name = signal.Signals(-status).name
    except ValueError:
        name = f"signal {-status}"
    hint = {"SIGKILL": "it was killed: usually by running out of memory or by the resource limits",
            "SIGSEGV": "a segmentation fault: a crash inside native code",
            "SIGABRT": "it aborted: a failed assertion inside native code"}.get(name, "it received a signal")
    return f"the worker process running your code was ended by {name} ({hint})"


_DUMP_HEAD = re.compile(r"^(Stack|Current thread 0x[0-9a-f]+|Thread 0x[0-9a-f]+) \(most recent call first\):$")
_DUMP_FRAME = re.compile(r'^  File "(.*)", line (\d+) in (.*)$')


def split_stack_dump(text: str) -> tuple[str, list[tuple[str, int, str]]]:
    """A worker's output without the stack dump it printed when asked where it hung, and that
    dump's frames ``(file, line, function)``, innermost first."""
    kept, frames, in_dump = [], [], False
    for line in text.split("\n"):
        if _DUMP_HEAD.match(line):
            in_dump, frames = True, []
            continue
        match = _DUMP_FRAME.match(line) if in_dump else None
        if match:
            frames.append((match.group(1), int(match.group(2)), match.group(3)))
            continue
        in_dump = False
        kept.append(line)
    return "\n".join(kept), frames


def hang_location(frames: list[tuple[str, int, str]], student_dir: str) -> str:
    """'vit_solution.py, line 42, in get_patches': the innermost frame in the student's files."""
    prefix = student_dir.rstrip("/") + "/"
    for file, line, function in frames:
        if file.startswith(prefix):
            return f"{file[len(prefix):]}, line {line}, in {function}"
    return ""
