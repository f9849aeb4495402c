"""Running a submitted file as a program, the way a handout runs it: ``python src/<script> ARGS``.

Called in a worker, never in the trusted process. ``run_script`` lays out an assignment root
in a fresh scratch folder (the staged code files copied under ``src/``, the staged data
files linked at the root, where handouts keep them), then runs ``src/<script>`` once, as
``python`` would: as ``__main__`` (so an ``if __name__ == "__main__":`` guard runs), with
``sys.argv`` set, the script's folder first on ``sys.path`` (flat imports such as
``import utils`` work), ``__file__`` absolute, and the working directory the root or
``src/``. What it prints is captured (capped) and returned as data with what it raised.
The time limit is the request's (the trusted side's deadline); the scratch folder is removed.
"""
from __future__ import annotations

import contextlib
import io
import os
import runpy
import shutil
import sys
import tempfile
import traceback

MAX_OUTPUT = 64 * 1024


class CappedText(io.TextIOBase):
    """A text stream keeping the first ``cap`` characters written and counting the rest."""

    def __init__(self, cap: int):
        super().__init__()
        self.cap = cap
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        text = str(text)
        room = max(self.cap - self.size, 0)
        self.parts.append(text[:room])
        self.size += min(len(text), room)
        self.dropped += len(text) - min(len(text), room)
        return len(text)

    def text(self) -> str:
        return "".join(self.parts)


def _plain_names(staged_dir: str, names) -> list[str]:
    """The staged files named (basenames of regular files in the staged folder only)."""
    out = []
    for name in names:
        if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
            raise ValueError(f"bad staged file name {name!r}")
        if os.path.isfile(os.path.join(staged_dir, name)):
            out.append(name)
    return out


def _lay_out(staged_dir: str, code, data) -> str:
    """A fresh assignment root: ``src/`` holding copies of ``code``, the root links to ``data`` (or copies)."""
    root = tempfile.mkdtemp(prefix="assignment-")
    src = os.path.join(root, "src")
    os.mkdir(src)
    for name in _plain_names(staged_dir, code):
        shutil.copyfile(os.path.join(staged_dir, name), os.path.join(src, name))
    for name in _plain_names(staged_dir, data):
        try:
            os.symlink(os.path.join(staged_dir, name), os.path.join(root, name))
        except OSError:        # no symbolic links here (Windows without the privilege): a copy
            shutil.copyfile(os.path.join(staged_dir, name), os.path.join(root, name))
    return root


def _describe(exc: BaseException, root: str) -> dict:
    """Type, message and the frames of files under ``root`` (paths relative to it), as data."""
    try:
        message = str(exc)
    except BaseException:   # noqa: BLE001
        message = "<the exception's message could not be printed>"
    frames = []
    for frame in traceback.extract_tb(exc.__traceback__):
        path = os.path.abspath(frame.filename)
        if not frame.filename.startswith("<") and path.startswith(root + os.sep):
            frames.append({"file": os.path.relpath(path, root), "line": frame.lineno,
                           "function": frame.name, "code": (frame.line or "")[:300]})
    if isinstance(exc, SyntaxError) and exc.filename:
        frames.append({"file": os.path.basename(exc.filename), "line": exc.lineno or 0,
                       "function": "<module>", "code": (exc.text or "").strip()[:300]})
    info = {"type": type(exc).__name__[:200], "message": message[:4000], "frames": frames[-8:]}
    if isinstance(exc, OSError) and exc.filename is not None:
        info["filename"] = str(exc.filename)[:500]
    if isinstance(exc, ImportError) and exc.name is not None:
        info["module"] = str(exc.name)[:200]
    if isinstance(exc, SystemExit):
        info["exit_code"] = repr(exc.code)[:200]
    return info


def run_script(staged_dir: str, script: str, code=(), data=(), cwd: str = "", args=(),
               max_output: int = MAX_OUTPUT) -> dict:
    """Run the staged file ``script`` as ``python src/<script> *args`` from the root (``cwd=""``),
    or as ``python <script> *args`` from ``src/`` (``cwd="src"``).

    Returns ``{"argv", "cwd", "stdout", "stderr", "cut", "error"}``: ``cut`` counts the characters
    of output beyond ``max_output`` (dropped); ``error`` is None when the script ran to its end or
    exited with status 0 (else type, message, frames; ``exit_code`` for ``sys.exit``).
    """
    if cwd not in ("", "src") or not all(isinstance(a, str) for a in args):
        raise ValueError("cwd must be '' or 'src' and args strings")
    if not _plain_names(staged_dir, [script]):
        raise FileNotFoundError(f"{script} was not staged")
    root = os.path.realpath(_lay_out(staged_dir, list(code) + [script], data))
    src = os.path.join(root, "src")
    here = os.path.join(root, cwd) if cwd else root
    path = os.path.join(src, script)
    argv = [os.path.relpath(path, here), *args]
    saved_cwd, saved_argv, saved_path = os.getcwd(), sys.argv, list(sys.path)
    before = set(sys.modules)
    out, err = CappedText(max_output), CappedText(max_output)
    error = None
    try:
        os.chdir(here)
        sys.argv = list(argv)
        sys.path.insert(0, src)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(path, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            error = _describe(exc, root)
    except BaseException as exc:   # noqa: BLE001 - the script may raise anything
        error = _describe(exc, root)
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        sys.path[:] = saved_path
        for module in set(sys.modules) - before:     # what the script imported from the root goes with it
            if str(getattr(sys.modules[module], "__file__", None) or "").startswith(root + os.sep):
                del sys.modules[module]
        shutil.rmtree(root, ignore_errors=True)
    return {"argv": argv, "cwd": cwd, "stdout": out.text(), "stderr": err.text(),
            "cut": out.dropped + err.dropped, "error": error}
