"""What a class's submissions look like on disk, and who submitted each.

Two layouts are understood:

* Gradescope's "Export Submissions" (the zip, or the folder it unpacks to): one folder
  ``submission_<id>/`` per submission and one ``submission_metadata.yml`` beside them, keyed
  by folder name, with Ruby-style keys (``:submitters:`` -> ``:name:``, ``:sid:``,
  ``:email:``; ``:created_at:``). A ``submission_metadata.yml`` or ``.json`` inside a
  folder is read too (the JSON in the autograder's format, with ``users``).
* One folder, zip, notebook or Python file per student, named after the student.

Nothing here runs or imports student code; it only lists paths and reads metadata.
"""
from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

EXPORT_METADATA = "submission_metadata.yml"
SUBMISSION_SUFFIXES = {".zip", ".ipynb", ".py"}
IGNORED = {"__MACOSX", ".DS_Store", "__pycache__"}


class BadBatchInput(Exception):
    """The submissions path cannot be read as a batch; the message says why and what was expected."""


@dataclass
class Submission:
    key: str                                   # unique, safe as a folder name
    path: Path
    students: list[dict] = field(default_factory=list)   # {"name", "sid", "email"}
    created_at: str = ""
    notes: list[str] = field(default_factory=list)


def safe_key(name: str) -> str:
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "submission"
    return key[:100]


def _plain(value):
    """YAML from Ruby: ``:name`` keys lose their colon; other values stay as they are."""
    if isinstance(value, dict):
        return {str(k).lstrip(":"): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _people(meta: dict) -> list[dict]:
    people = meta.get("submitters") or meta.get("users") or []
    out = []
    for p in people if isinstance(people, list) else []:
        if isinstance(p, dict):
            out.append({"name": str(p.get("name") or ""), "sid": str(p.get("sid") or p.get("id") or ""),
                        "email": str(p.get("email") or "")})
    return out


def _read_yaml(path: Path):
    try:
        import yaml
    except ImportError as exc:   # pragma: no cover - pyyaml comes with the grader's dependencies
        raise BadBatchInput(f"reading {path.name} needs PyYAML (pip install pyyaml)") from exc
    try:
        return _plain(yaml.safe_load(path.read_text(encoding="utf-8", errors="replace")) or {})
    except yaml.YAMLError as exc:
        raise BadBatchInput(f"{path} is not valid YAML: {str(exc)[:300]}") from exc


def _own_metadata(path: Path) -> tuple[dict, str]:
    """Metadata stored inside one submission folder, and a note when it is absent or unreadable."""
    if path.is_dir():
        for name in ("submission_metadata.json", EXPORT_METADATA):
            meta_path = path / name
            if meta_path.is_file():
                try:
                    meta = _plain(json.loads(meta_path.read_text()) if name.endswith(".json") else _read_yaml(meta_path))
                    return (meta if isinstance(meta, dict) else {}), ""
                except (ValueError, BadBatchInput) as exc:
                    return {}, f"{name} could not be read ({str(exc)[:120]}); identified by folder name."
    return {}, "no metadata: identified by its file or folder name."


def _export_root(path: Path) -> Path | None:
    if (path / EXPORT_METADATA).is_file():
        return path
    children = [c for c in path.iterdir() if c.is_dir() and c.name not in IGNORED]
    if len(children) == 1 and (children[0] / EXPORT_METADATA).is_file():
        return children[0]
    return None


def unpack_export(archive: Path, into: Path) -> Path:
    """Unzip an export archive (instructor-supplied) into ``into``; a bad archive is BadBatchInput."""
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BadBatchInput(f"{archive} is not a readable zip ({exc}); expected Gradescope's export zip "
                            "or a folder of submissions") from exc
    return into


def find_submissions(path: Path) -> list[Submission]:
    """The submissions under ``path`` (a folder), sorted by key; BadBatchInput when there are none."""
    path = Path(path)
    if not path.is_dir():
        raise BadBatchInput(f"{path} is not a folder or zip of submissions")
    root = _export_root(path)
    if root is not None:
        found = _from_export(root)
    else:
        found = _from_folder(path)
    if not found:
        raise BadBatchInput(f"no submissions found in {path}: expected Gradescope's export (folders beside a "
                            f"{EXPORT_METADATA}) or one folder, zip, notebook or .py file per student")
    keys: dict[str, int] = {}
    for s in found:                     # keys stay unique even when names collide after cleaning
        n = keys.get(s.key, 0)
        keys[s.key] = n + 1
        if n:
            s.key = f"{s.key}-{n + 1}"
    return sorted(found, key=lambda s: s.key)


def _from_export(root: Path) -> list[Submission]:
    metadata = _read_yaml(root / EXPORT_METADATA)
    if not isinstance(metadata, dict):
        raise BadBatchInput(f"{root / EXPORT_METADATA} does not map submission folders to their metadata")
    out = []
    for child in sorted(root.iterdir()):
        if child.name in IGNORED or child.name == EXPORT_METADATA or child.name.startswith("."):
            continue
        meta = metadata.get(child.name)
        sub = Submission(key=safe_key(child.name), path=child)
        if isinstance(meta, dict):
            sub.students, sub.created_at = _people(meta), str(meta.get("created_at") or "")
        else:
            own, note = _own_metadata(child)
            sub.students, sub.created_at = _people(own), str(own.get("created_at") or "")
            sub.notes.append(f"not listed in {EXPORT_METADATA}" + ("" if own else f"; {note}"))
        out.append(sub)
    return out


def _from_folder(path: Path) -> list[Submission]:
    out = []
    for child in sorted(path.iterdir()):
        if child.name in IGNORED or child.name.startswith("."):
            continue
        if not (child.is_dir() or child.suffix.lower() in SUBMISSION_SUFFIXES):
            continue
        own, note = _own_metadata(child)
        sub = Submission(key=safe_key(child.stem if child.is_file() else child.name), path=child,
                         students=_people(own), created_at=str(own.get("created_at") or ""))
        if not sub.students:
            sub.students = [{"name": child.stem if child.is_file() else child.name, "sid": "", "email": ""}]
            sub.notes.append(note or "its metadata names no student; identified by folder name.")
        out.append(sub)
    return out
