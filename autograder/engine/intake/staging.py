"""Staging: from whatever the student uploaded to a scratch folder holding only the expected files.

Accepts a folder, a zip (or a folder holding one zip) or a single file. Each expected file
is looked for anywhere in the upload, under its name, its aliases, or as a notebook
(``.ipynb``, converted to a module). Only those files are copied, under their canonical
names; symlinks, path traversal, oversized files and oversized archives are refused.
Nothing is executed here.
"""
from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autograder.assignment import Assignment, SubmissionFile
from autograder.engine.intake.notebook import NotebookError, notebook_to_module

MAX_ARCHIVE_MEMBERS = 2000
MAX_ARCHIVE_BYTES = 200 * 1024 * 1024
IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__", ".git"}


@dataclass
class StagedSubmission:
    dir: Path
    found: dict[str, str] = field(default_factory=dict)      # canonical name -> where it was found
    missing: list[SubmissionFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)        # provided files the student changed

    def has(self, module_or_name: str) -> bool:
        return any(n == module_or_name or n.rsplit(".", 1)[0] == module_or_name for n in self.found)


@dataclass
class _Candidate:
    path: str                  # as shown to the student
    depth: int
    size: int
    read: callable


def _from_folder(root: Path, notes: list[str]) -> list[_Candidate]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = Path(dirpath).relative_to(root)
        dirnames[:] = [d for d in dirnames if d not in IGNORED_PARTS and not (Path(dirpath) / d).is_symlink()]
        for name in filenames:
            full = Path(dirpath) / name
            rel = (rel_dir / name).as_posix()
            info = os.lstat(full)
            if stat.S_ISLNK(info.st_mode):
                notes.append(f"Ignored {rel}: symbolic links are not accepted.")
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            if name.endswith(".zip"):
                out.extend(_from_zip(full, notes, prefix=rel + "/"))
                continue
            out.append(_Candidate(rel, len(rel_dir.parts), info.st_size,
                                  lambda full=full, n=info.st_size: _read_file(full, n)))
    return out


def _read_file(path: Path, limit: int) -> bytes:
    with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as fh:
        return fh.read(limit + 1)


def _from_zip(path: Path, notes: list[str], prefix: str = "") -> list[_Candidate]:
    try:
        archive = zipfile.ZipFile(path)
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        notes.append(f"Could not open {prefix or path.name}: not a valid zip ({exc}).")
        return []
    if len(members) > MAX_ARCHIVE_MEMBERS or sum(m.file_size for m in members) > MAX_ARCHIVE_BYTES:
        notes.append(f"Ignored {prefix or path.name}: the archive is too large "
                     f"({len(members)} entries, {sum(m.file_size for m in members)} bytes unpacked).")
        return []
    out = []
    for member in members:
        name = member.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if member.is_dir() or any(p in IGNORED_PARTS for p in parts):
            continue
        if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
            notes.append(f"Ignored {prefix}{name}: paths leaving the archive are not accepted.")
            continue
        if stat.S_ISLNK(member.external_attr >> 16):
            notes.append(f"Ignored {prefix}{name}: symbolic links are not accepted.")
            continue
        out.append(_Candidate(prefix + "/".join(parts), len(parts) - 1, member.file_size,
                              lambda a=archive, m=member: a.open(m).read(m.file_size + 1)))
    return out


def _wanted_names(spec: SubmissionFile) -> list[str]:
    """Accepted basenames in order of preference: the name, aliases, then notebooks."""
    stems = [spec.name] + list(spec.aliases)
    return stems + [s.rsplit(".", 1)[0] + ".ipynb" for s in stems]


def _gradable(spec: SubmissionFile) -> bool:
    return not spec.provided and spec.loader != "data" and spec.name.endswith(".py")


def _renamed(name: str, spec: SubmissionFile) -> str:
    """``name`` as the spec's file, keeping a notebook a notebook (it is converted when staged)."""
    return spec.module + ".ipynb" if name.lower().endswith(".ipynb") else spec.name


def single_file_target(path: Path, assignment: Assignment) -> tuple[SubmissionFile | None, str]:
    """Which of the assignment's files a lone uploaded ``.py``/``.ipynb`` is, and a note saying so.

    By its name when that is one the assignment accepts; else the only code file the assignment
    has; else the one file whose graded names (``expected_names``) the text defines, when exactly
    one does. ``(None, why)`` when it cannot be told: nothing is then graded as that file.
    Reads the file's text only; nothing is run.
    """
    path = Path(path)
    for spec in assignment.files:
        if path.name in _wanted_names(spec):
            return spec, ""
    code_files = [spec for spec in assignment.files if _gradable(spec)]
    if path.suffix.lower() not in (".py", ".ipynb") or not code_files:
        return None, f"{path.name} is not one of the files this assignment expects."
    if len(code_files) == 1:
        spec = code_files[0]
        return spec, f"Graded {path.name} as {spec.name}, the assignment's only code file."
    try:
        text = path.read_bytes()[:4_000_000].decode("utf-8", errors="replace")
    except OSError:
        text = ""
    defined = set(re.findall(r"(?:def|class)\s+([A-Za-z_]\w*)|^\s*([A-Za-z_]\w*)\s*=", text, re.M))
    names = {a or b for a, b in defined}
    matching = [spec for spec in code_files if spec.expected_names and names & set(spec.expected_names)]
    if len(matching) == 1:
        spec = matching[0]
        return spec, f"Graded {path.name} as {spec.name}: it defines {spec.name}'s graded names."
    choices = ", ".join(spec.name for spec in code_files)
    return None, (f"{path.name} is a single file, and which of the assignment's files ({choices}) it is cannot "
                  "be told from its name or content: not graded. Submit it under its file name.")


def stage(submission: Path, assignment: Assignment, scratch: Path) -> StagedSubmission:
    """Copy the expected files of ``submission`` into ``scratch`` (which must exist, empty)."""
    staged = StagedSubmission(dir=scratch)
    submission = Path(submission)
    if submission.is_symlink():
        staged.notes.append("The submission itself is a symbolic link: not accepted.")
        candidates = []
    elif submission.is_dir():
        candidates = _from_folder(submission, staged.notes)
    elif submission.is_file() and submission.suffix == ".zip":
        candidates = _from_zip(submission, staged.notes)
    elif submission.is_file():
        size = submission.stat().st_size
        spec, why = single_file_target(submission, assignment)
        if why:
            staged.notes.append(why)
        name = submission.name if spec is None else _renamed(submission.name, spec)
        candidates = [_Candidate(name, 0, size, lambda: _read_file(submission, size))]
    else:
        staged.notes.append(f"Nothing was submitted at {submission.name}.")
        candidates = []

    for spec in assignment.files:
        wanted = _wanted_names(spec)
        matches = [c for c in candidates if PurePosixPath(c.path).name in wanted]
        if spec.provided:
            _stage_provided(spec, matches, wanted, staged, scratch)
            continue
        if not matches:
            staged.missing.append(spec)
            continue
        matches.sort(key=lambda c: (wanted.index(PurePosixPath(c.path).name), c.depth, c.path))
        chosen = matches[0]
        if len(matches) > 1:
            others = ", ".join(c.path for c in matches[1:4])
            staged.notes.append(f"Several candidates for {spec.name}: graded {chosen.path} (also found {others}).")
        if chosen.size > spec.max_bytes:
            staged.notes.append(f"{chosen.path} is {chosen.size} bytes, over the {spec.max_bytes}-byte limit: not graded.")
            staged.missing.append(spec)
            continue
        try:
            data = chosen.read()[:spec.max_bytes + 1]
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError) as exc:
            staged.notes.append(f"{chosen.path} could not be read from your upload ({type(exc).__name__}: "
                                f"{str(exc)[:160]}): not graded. Upload it again (a fresh zip).")
            staged.missing.append(spec)
            continue
        if len(data) > spec.max_bytes:
            staged.notes.append(f"{chosen.path} is over the {spec.max_bytes}-byte limit: not graded.")
            staged.missing.append(spec)
            continue
        if chosen.path.endswith(".ipynb"):
            try:
                data = notebook_to_module(data).encode()
            except RecursionError:
                staged.notes.append(f"{chosen.path} could not be read as a notebook: it is nested too deeply.")
                staged.missing.append(spec)
                continue
            except NotebookError as exc:
                staged.notes.append(f"{chosen.path} could not be read as a notebook: {exc}")
                staged.missing.append(spec)
                continue
        target = scratch / spec.name
        with open(target, "wb") as fh:
            fh.write(data)
        os.chmod(target, 0o644)
        staged.found[spec.name] = chosen.path
        if PurePosixPath(chosen.path).name != spec.name:
            staged.notes.append(f"Graded {chosen.path} as {spec.name}.")
    return staged


def _normalized(data: bytes) -> bytes:
    """Text compared the way a reader sees it: line endings and trailing spaces do not count."""
    return b"\n".join(line.rstrip() for line in data.replace(b"\r\n", b"\n").split(b"\n")).strip()


def _stage_provided(spec: SubmissionFile, matches: list[_Candidate], wanted: list[str],
                    staged: StagedSubmission, scratch: Path) -> None:
    """Stage the pristine copy of a provided file; report a submitted copy that differs from it."""
    pristine = Path(spec.provided).read_bytes()
    staged.found[spec.name] = "the grader's copy"
    if matches:
        matches.sort(key=lambda c: (wanted.index(PurePosixPath(c.path).name), c.depth, c.path))
        chosen = matches[0]
        try:
            data = chosen.read()[:max(spec.max_bytes, len(pristine)) + 1]
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError):
            data = b""           # unreadable: reported as changed; the pristine copy is graded anyway
        staged.found[spec.name] = chosen.path
        if _normalized(data) != _normalized(pristine):
            staged.found[spec.name] = f"the grader's copy, not your changed {chosen.path}"
            staged.changed.append(spec.name)
            staged.notes.append(f"{chosen.path} differs from the provided {spec.name}, which must not be "
                                f"changed: your code was graded with the provided {spec.name} instead.")
    target = scratch / spec.name
    with open(target, "wb") as fh:
        fh.write(pristine)
    os.chmod(target, 0o644)
