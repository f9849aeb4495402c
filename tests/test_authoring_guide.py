"""docs/adding_an_assignment.md cannot drift: every file it shows is the worked example's file,
and the worked example (the mini assignment) passes `autograder verify`."""
import os
import re
import subprocess
import sys

import pytest

from support import MINI_PROJECT, ROOT

GUIDE = ROOT / "docs" / "adding_an_assignment.md"
BLOCK = re.compile(r"```python title=(\S+)\n(.*?)```", re.S)


def test_every_file_the_guide_shows_is_the_example_file():
    shown = BLOCK.findall(GUIDE.read_text())
    assert {path for path, _ in shown} >= {
        "tests/fixtures/mini_project/test_suites/mini/assignment.py",
        "tests/fixtures/mini_project/test_suites/mini/test_mini.py",
        "tests/fixtures/mini_project/reference/mini/norm.py",
        "tests/fixtures/mini_project/student_template/mini/norm.py"}
    for path, text in shown:
        assert (ROOT / path).read_text() == text, f"{path} differs from what the guide shows"


@pytest.mark.e2e
def test_the_worked_example_passes_verify():
    proc = subprocess.run([sys.executable, "-m", "autograder", "verify", "mini"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env={**os.environ, "AUTOGRADER_PROJECT": str(MINI_PROJECT)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all checks passed" in proc.stdout and "the template earns zero" in proc.stdout


def test_the_readme_points_to_the_guide():
    assert "docs/adding_an_assignment.md" in (ROOT / "README.md").read_text()
