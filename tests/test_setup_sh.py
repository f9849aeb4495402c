"""The built Gradescope zip, deployed as Gradescope deploys it: unpacked into a temporary
/autograder root, installed by its own setup.sh (a virtual environment of its own, python3
left alone), then run_autograder grades the reference (full marks) and the template (zero);
the zip is built with a limit of one graded submission a day, so a second submission within
the day gets the first one's result carried over.

To keep CI fast, the new environment is first seeded with hard links to the packages of the
environment running the tests (torch alone is 750 MB to copy); setup.sh still runs every
step, and its pip finds them installed."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import jsonschema
import pytest

from autograder.instructor.build import autograder_zip
from autograder.engine.formats import gradescope_json
from support import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ASSIGNMENT = "ift6135_vit_lstm"


def system_packages():
    return subprocess.run(["python3", "-m", "pip", "list", "--format=freeze"], capture_output=True,
                          text=True, check=True).stdout


def unpack(archive, folder):
    """Unzip keeping the run bits, as Gradescope's unzip does."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = zf.extract(info, folder)
            os.chmod(path, (info.external_attr >> 16) & 0o777)


def seed_venv(venv: Path) -> None:
    """Create ``venv`` with python3 and hard-link this environment's packages into it (when
    python3 is this Python's version and the folders share a file system)."""
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    version = subprocess.run(["python3", "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                             text=True, check=True).stdout.strip()
    if version != str(sys.version_info[:2]) or sys.prefix == sys.base_prefix:
        return
    ours = Path(sysconfig.get_paths()["purelib"])
    theirs = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    for entry in ours.iterdir():
        if entry.name.startswith(("__editable__", "autograder", "pip", "setuptools", "_distutils_hack",
                                  "distutils-precedence", "__pycache__")) or (theirs / entry.name).exists():
            continue
        linked = subprocess.run(["cp", "-al", str(entry), str(theirs / entry.name)], capture_output=True)
        if linked.returncode != 0:
            return   # another file system: setup.sh installs everything itself


def run_autograder(root, submission, env, created_at, previous=()):
    shutil.rmtree(root / "submission", ignore_errors=True)
    shutil.copytree(submission, root / "submission")
    (root / "submission_metadata.json").write_text(json.dumps({
        "id": 1, "created_at": created_at, "assignment": {"title": ASSIGNMENT, "total_points": "37.0"},
        "users": [{"email": "s@example.edu", "id": 1, "name": "S"}], "previous_submissions": list(previous)}))
    proc = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(data, gradescope_json.schema())
    return data


def test_built_zip_installs_with_its_setup_sh_and_grades(tmp_path):
    before = system_packages()
    root = tmp_path / "autograder"
    unpack(autograder_zip(ASSIGNMENT, tmp_path / "out", {"submissions": 1, "window_hours": 24}), root / "source")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "AUTOGRADER_PROJECT", "AUTOGRADER_PYTHON")}
    env["AUTOGRADER_ROOT"] = str(root)
    env["TORCH_INDEX_URL"] = "pypi"   # the CPU-only index is out of this machine's reach; pip's own config
    seed_venv(root / "venv")
    proc = subprocess.run(["bash", str(root / "source" / "setup.sh")], cwd=root / "source", env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert system_packages() == before
    listed = subprocess.run([str(root / "venv" / "bin" / "python"), "-m", "autograder", "list"],
                            capture_output=True, text=True, check=True, env=env, cwd=root)
    assert listed.stdout.split() == [ASSIGNMENT]          # the zip holds that assignment only

    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    full = run_autograder(root, ROOT / "reference" / ASSIGNMENT, env, "2024-03-01T10:00:00-08:00")
    assert full["score"] == sum(t["max_score"] for t in full["tests"]) == 37
    assert full["extra_data"]["assignment"] == ASSIGNMENT
    assert full["output"].startswith("Submission limit: this is graded submission 1 of 1")
    first = {"submission_time": "2024-03-01T10:00:00-08:00", "score": 37.0, "autograder_error": False,
             "results": full}
    carried = run_autograder(root, ROOT / "student_template" / ASSIGNMENT, env, "2024-03-01T12:00:00-08:00", [first])
    assert carried["score"] == 37 and carried["output"].startswith("Submission limit reached")
    assert carried["tests"] == full["tests"]
    zero = run_autograder(root, ROOT / "student_template" / ASSIGNMENT, env, "2024-03-02T11:00:00-08:00", [first])
    assert zero["score"] == 0 and not zero["extra_data"]["grader_error"]
    assert len(zero["tests"]) == len(full["tests"])
