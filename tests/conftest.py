import contextlib
import hashlib
import json
import os
import re
from pathlib import Path

import jsonschema
import pytest

from autograder.engine.formats import gradescope_json

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
MINI_PROJECT = FIXTURES / "mini_project"
MINI_SECRET = "SECRET-MINI-HIDDEN-7d1f0c"   # in the mini project's hidden test file


@contextlib.contextmanager
def assignment_pool(assignment: str):
    """A started worker pool preloading ``assignment``'s libraries, for a test module's gradings."""
    from autograder.engine.registry import load_assignment
    from autograder.engine.isolation.backend import new_pool
    with new_pool(load_assignment(assignment).libraries) as pool:
        pool.start()
        yield pool


def grade_valid(assignment: str, submission: Path, pool, seed: int):
    """Grade on the CPU with ``pool`` and check the result renders to schema-valid results.json."""
    from autograder.engine.runner import grade
    result = grade(assignment, submission, device="cpu", seed=seed, pool=pool)
    assert_valid_results(result)
    return result


def assert_valid_results(result):
    """Every result produced in the tests must render to schema-valid results.json."""
    data = json.loads(gradescope_json.render(result))
    jsonschema.validate(data, gradescope_json.schema())
    return data


@pytest.fixture
def mini_project(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_PROJECT", str(MINI_PROJECT))
    return MINI_PROJECT


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
