"""Staging: finding the expected files in messy uploads, refusing hostile ones."""
import json
import os
import zipfile

import pytest

from autograder.assignment import Assignment, SubmissionFile
from autograder.engine.intake.staging import stage

ASSIGNMENT = Assignment(name="t", title="t", total_points=1, files=(
    SubmissionFile("vit_solution.py", aliases=("vit_solution_template.py",), max_bytes=10_000),
    SubmissionFile("lstm_solution.py"),
))


@pytest.fixture
def scratch(tmp_path):
    d = tmp_path / "staged"
    d.mkdir()
    return d


def test_nested_folder_and_alias(tmp_path, scratch):
    (tmp_path / "up" / "a2" / "code").mkdir(parents=True)
    (tmp_path / "up" / "a2" / "code" / "vit_solution_template.py").write_text("X = 1\n")
    (tmp_path / "up" / "lstm_solution.py").write_text("Y = 2\n")
    (tmp_path / "up" / "conftest.py").write_text("import os\n")
    staged = stage(tmp_path / "up", ASSIGNMENT, scratch)
    assert sorted(os.listdir(scratch)) == ["lstm_solution.py", "vit_solution.py"]
    assert (scratch / "vit_solution.py").read_text() == "X = 1\n"
    assert staged.found["vit_solution.py"] == "a2/code/vit_solution_template.py"
    assert any("as vit_solution.py" in n for n in staged.notes)


def test_zip_with_traversal_and_symlink_is_refused_but_the_rest_is_staged(tmp_path, scratch):
    z = tmp_path / "sub.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../../vit_solution.py", "EVIL = 1\n")
        link = zipfile.ZipInfo("lstm_solution.py")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
        zf.writestr("folder/vit_solution.py", "GOOD = 1\n")
    staged = stage(z, ASSIGNMENT, scratch)
    assert (scratch / "vit_solution.py").read_text() == "GOOD = 1\n"
    assert [m.name for m in staged.missing] == ["lstm_solution.py"]
    assert any("leaving the archive" in n for n in staged.notes)
    assert any("symbolic link" in n for n in staged.notes)
    assert not (tmp_path.parent / "vit_solution.py").exists()


def test_symlink_in_folder_is_not_followed(tmp_path, scratch):
    (tmp_path / "up").mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("hidden answer key")
    os.symlink(secret, tmp_path / "up" / "vit_solution.py")
    staged = stage(tmp_path / "up", ASSIGNMENT, scratch)
    assert "vit_solution.py" not in staged.found
    assert any("symbolic link" in n for n in staged.notes)


def test_oversized_file_is_refused(tmp_path, scratch):
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "vit_solution.py").write_text("#" * 20_000)
    staged = stage(tmp_path / "up", ASSIGNMENT, scratch)
    assert [m.name for m in staged.missing] == ["vit_solution.py", "lstm_solution.py"]
    assert any("limit" in n for n in staged.notes)


def test_notebook_is_converted_and_shell_lines_neutralized(tmp_path, scratch):
    nb = {"cells": [{"cell_type": "markdown", "source": ["# Title"]},
                    {"cell_type": "code", "source": ["!pip install torch\n", "%matplotlib inline\n", "A = 3\n"]},
                    {"cell_type": "code", "source": "%%bash\nls\n"}]}
    (tmp_path / "lstm_solution.ipynb").write_text(json.dumps(nb))
    staged = stage(tmp_path / "lstm_solution.ipynb", ASSIGNMENT, scratch)
    source = (scratch / "lstm_solution.py").read_text()
    ns = {}
    exec(compile(source, "lstm_solution.py", "exec"), ns)   # test-side check that it parses and runs
    assert ns["A"] == 3 and "pip install" in source
    assert staged.found["lstm_solution.py"] == "lstm_solution.ipynb"


def test_garbage_notebook_is_reported(tmp_path, scratch):
    (tmp_path / "lstm_solution.ipynb").write_bytes(b"\x00\xffnot json")
    staged = stage(tmp_path / "lstm_solution.ipynb", ASSIGNMENT, scratch)
    assert "lstm_solution.py" not in staged.found
    assert any("notebook" in n for n in staged.notes)


def test_missing_submission_path(tmp_path, scratch):
    staged = stage(tmp_path / "nothing-here", ASSIGNMENT, scratch)
    assert len(staged.missing) == 2


def test_a_corrupt_zip_member_or_a_deeply_nested_notebook_costs_only_that_file(tmp_path, scratch):
    """A member whose bytes fail their CRC, a notebook nested past the parser's depth: that file is
    not graded, with the reason; the other files are staged as usual (no grader error)."""
    upload = tmp_path / "upload.zip"
    with zipfile.ZipFile(upload, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("vit_solution.py", "".join(f"x{i} = {i * 7919 % 104729}\n" for i in range(400)))
        zf.writestr("lstm_solution.py", "y = 2\n")
    raw = bytearray(upload.read_bytes())
    start = raw.index(b"vit_solution.py") + len(b"vit_solution.py")    # inside its compressed data
    raw[start + 20:start + 40] = b"\x00" * 20
    upload.write_bytes(bytes(raw))
    staged = stage(upload, ASSIGNMENT, scratch)
    assert [s.name for s in staged.missing] == ["vit_solution.py"] and "lstm_solution.py" in staged.found
    assert any("vit_solution.py could not be read from your upload" in n for n in staged.notes), staged.notes

    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / "vit_solution.ipynb").write_text("[" * 4_000 + "]" * 4_000)
    (deep / "lstm_solution.py").write_text("y = 2\n")
    (tmp_path / "scratch2").mkdir()
    staged = stage(deep, ASSIGNMENT, tmp_path / "scratch2")
    assert [s.name for s in staged.missing] == ["vit_solution.py"] and "lstm_solution.py" in staged.found
    assert any("vit_solution.ipynb could not be read as a notebook" in n for n in staged.notes), staged.notes
