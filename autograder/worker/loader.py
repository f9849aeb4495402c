"""Importing a student's staged module, and describing what went wrong when it fails."""
from __future__ import annotations

import os
import sys
import traceback
import types

from autograder.common.private_import import import_private


def load_module(staged_dir: str, module: str) -> types.ModuleType:
    """Import ``<staged_dir>/<module>.py`` under the name ``module``.

    The staged folder goes first on ``sys.path`` so the student's files can import each
    other (``from lstm_solution import ...``); staging put nothing else there.
    """
    path = os.path.join(staged_dir, module + ".py")
    if staged_dir not in sys.path:
        sys.path.insert(0, staged_dir)
    return import_private(path, module)


def describe_exception(exc: BaseException, staged_dir: str) -> dict:
    """Type, message and the student's own frames of an exception, as plain data."""
    try:
        message = str(exc)
    except BaseException:
        message = "<the exception's message could not be printed>"
    frames = []
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(staged_dir + os.sep):
            frames.append({"file": os.path.basename(frame.filename), "line": frame.lineno,
                           "function": frame.name, "code": (frame.line or "")[:300]})
    if isinstance(exc, SyntaxError) and exc.filename and exc.filename.startswith(staged_dir):
        frames.append({"file": os.path.basename(exc.filename), "line": exc.lineno or 0,
                       "function": "<module>", "code": (exc.text or "").strip()[:300]})
    info = {"type": type(exc).__name__[:200], "message": message[:4000], "frames": frames[-8:]}
    if isinstance(exc, SystemExit):
        info["exit_code"] = repr(exc.code)[:200]
    return info
