"""Helpers the project's tests share (fixtures live in conftest.py, which imports from here).

Test modules import from this module only, never from conftest or from one another:

* paths: ``ROOT``, ``FIXTURES``, the mini project (``MINI_PROJECT``, its reference source
  ``MINI_REFERENCE`` and the secret marker of its hidden material ``MINI_SECRET``);
* grading: ``grade_valid``, ``explain`` (a started worker pool is conftest's ``assignment_pools``);
* submissions as edits of a reference: ``apply_edits``, ``edited_submission``, ``replace_def``;
* what must hold whatever a submission does: ``assert_valid_results``, ``assert_contained``,
  ``file_fingerprint`` / ``grader_files``, ``processes_left`` / ``processes_after_teardown``;
* result tables: ``by_number``, and ``assert_parts`` with the course's points per part of
  ``ift6135_vit_lstm`` (``IFT6135_PARTS``).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import jsonschema

from autograder.engine.formats import gradescope_json

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
MINI_PROJECT = FIXTURES / "mini_project"
MINI_SECRET = "SECRET-MINI-HIDDEN-7d1f0c"   # in the mini project's hidden test file
MINI_REFERENCE = (MINI_PROJECT / "reference" / "mini" / "norm.py").read_text()   # the mini assignment's norm.py


# -- grading ---------------------------------------------------------------------------------
def grade_valid(assignment: str, submission: Path, pool, seed: int):
    """Grade on the CPU with ``pool`` and check the result renders to schema-valid results.json."""
    from autograder.engine.runner import grade
    result = grade(assignment, submission, device="cpu", seed=seed, pool=pool)
    assert_valid_results(result)
    return result


def explain(result, width: int = 300) -> str:
    """One line per test (number, status, score, the start of its output), for assertion messages."""
    return "\n".join(f"  {t.number} {t.status} {t.score}/{t.max_score}: {t.output[:width]!r}" for t in result.tests)


def by_number(result) -> dict:
    return {t.number: t for t in result.tests}


# -- submissions as edits of a reference -------------------------------------------------------
def apply_edits(text: str, edits, what: str = "the file") -> str:
    """``text`` with each ``(old, new)`` of ``edits`` made; each ``old`` must occur exactly once."""
    for old, new in edits:
        assert text.count(old) == 1, f"the edit does not apply once to {what}: {old[:80]!r}"
        text = text.replace(old, new)
    return text


def edited_submission(into: Path, reference: Path, edits: dict, files=None) -> Path:
    """A submission folder ``into``: the reference's ``files`` (default: its ``*.py``) copied, then
    ``edits`` (``{file: [(old, new), ...]}``, the fixture modules' format) made to the named files."""
    into.mkdir(parents=True)
    for f in (files if files is not None else reference.glob("*.py")):
        shutil.copy(f, into / f.name)
    for name, pairs in edits.items():
        (into / name).write_text(apply_edits((reference / name).read_text(), pairs, name))
    return into


def replace_def(source, name, body):
    """Replace the body of ``def name`` (a method of Norm or a function) with ``body`` lines."""
    lines = source.splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip().startswith(f"def {name}("))
    indent = len(lines[start]) - len(lines[start].lstrip()) + 4
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) >= indent):
        end += 1
    new = [" " * indent + l for l in body.splitlines()]
    return "\n".join(lines[:start + 1] + new + [""] + lines[end:]) + "\n"


# -- what must hold whatever a submission does --------------------------------------------------
def assert_valid_results(result):
    """Every result produced in the tests must render to schema-valid results.json."""
    data = json.loads(gradescope_json.render(result))
    jsonschema.validate(data, gradescope_json.schema())
    return data


def file_fingerprint(paths) -> str:
    """Hash of (path, size, mtime, mode) of every file under ``paths``."""
    digest = hashlib.sha256()
    for top in map(Path, paths):
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for f in files:
            st = f.stat()
            digest.update(f"{f}:{st.st_size}:{st.st_mtime_ns}:{st.st_mode}\n".encode())
    return digest.hexdigest()


def grader_files(project: Path) -> list[Path]:
    """What a submission must never change: the grader, the assignment, key Python files."""
    import torch
    return [ROOT / "autograder", project, Path(torch.__file__), Path(os.__file__), Path(json.__file__).parent]


def assert_contained(result, secrets=(MINI_SECRET,)):
    """What holds whatever a submission does: results.json valid and under its cap, no secret
    in it, and (as root) no process of the worker user left behind."""
    data = assert_valid_results(result)
    rendered = gradescope_json.render(result)
    assert len(rendered.encode()) <= gradescope_json.MAX_TOTAL_BYTES
    for secret in secrets:
        assert secret not in rendered, "a secret from the hidden tests leaked into results.json"
    match = re.search(r"workers run as (\S+) \(uid (\d+)\)", str(result.extra.get("sandbox", "")))
    if match:
        left = processes_left(match.group(1), int(match.group(2)))
        assert not left, f"{len(left)} processes of the worker user outlived grading"
    return data


def processes_left(name: str, uid: int) -> list[int]:
    """Processes of the worker user ``name`` once its grading released it; [] while another grading
    (a parallel test) holds it, since its workers are then legitimately alive."""
    import fcntl
    from autograder.engine.isolation import privileges
    fd = os.open(os.path.join(privileges.LOCK_DIR, name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []
        return processes_after_teardown(uid)
    finally:
        os.close(fd)


def processes_after_teardown(uid: int, timeout: float = 30.0) -> list[int]:
    """Processes of ``uid`` once killed ones had ``timeout`` s to be torn down (a fork bomb of
    torch-sized processes takes seconds on a busy machine)."""
    import time
    from autograder.engine.isolation import privileges
    deadline = time.monotonic() + timeout
    while True:
        left = privileges.processes_of(uid)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


# -- ift6135_vit_lstm: points per part ----------------------------------------------------------
# Points of each part (the course's): LSTM forward and loss; LayerNorm, split/merge heads,
# attention weights, apply_attention, MHA forward, get_patches, pre-norm block, ViT forward, ViT loss.
IFT6135_PARTS = {"1.1": 5, "1.2": 4, "2.1": 5, "2.2": 4, "2.3": 8, "2.4": 2, "2.5": 3, "2.6": 2, "2.7": 1,
                 "2.8": 2, "2.9": 1}


def assert_parts(result, partial: dict, words: tuple, parts: dict = IFT6135_PARTS) -> None:
    """Every part earns its points but those of ``partial``; each failing test scores 0 and its
    message holds every one of ``words``."""
    earned = {part: sum(t.score for t in result.tests if t.number.rsplit(".", 1)[0] == part) for part in parts}
    report = "\n".join(f"  {t.number} {t.score}/{t.max_score}: {t.output[:400]!r}"
                       for t in result.tests if t.score != t.max_score)
    assert earned == {**parts, **partial}, report
    for t in result.tests:
        if t.score != t.max_score:
            assert t.score == 0, report
            missing = [w for w in words if w.lower() not in t.output.lower()]
            assert not missing, f"{t.number} does not name the bug ({missing}):\n{report}"


def strip_comments(src: str) -> str:
    """``src`` without its comments (lines and code kept as they were)."""
    import io
    import tokenize
    lines = src.split("\n")
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            lines[row - 1] = lines[row - 1][:col].rstrip()
    return "\n".join(lines)


def readable_folder(prefix: str, files: dict[str, str]) -> Path:
    """A fresh folder under /tmp holding ``files`` ({name: text}) that a worker user may read
    (0755/0644); the caller removes it (``shutil.rmtree``)."""
    import tempfile
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(folder, 0o755)
    for name, text in files.items():
        (folder / name).write_text(text)
        os.chmod(folder / name, 0o644)
    return folder


def ask(worker, header: dict, payload: bytes = b"") -> dict:
    """One raw request to a worker of a pool (``WorkerPool.spawn``); the reply's header."""
    from autograder.wire import framing
    framing.send_frame(worker.sock, header, payload)
    reply, _ = framing.recv_frame(worker.sock)
    return reply
