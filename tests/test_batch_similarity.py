"""``autograder batch`` compares the graded code of a class: planted near-copies are found, distinct
work is not, the template's given code is excluded, and nothing of it touches a score.

Most tests build a batch output folder (``batch.json`` per submission) and call
``similarity_report`` on it, without grading; one test runs ``autograder batch`` end to end on the
mini assignment (fast to grade) and checks the flag and that grades are byte-identical."""
import json
import os
import re
import subprocess
import sys
import zipfile

import pytest

from autograder.batch import run as batch_run
from autograder.batch.inputs import BadBatchInput
from autograder.batch.model import GRADED, TIMED_OUT, Record
from autograder.batch.run import BatchOptions, run_batch, similarity_report
from support import FIXTURES, MINI_PROJECT, ROOT, strip_comments

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

VIT_LSTM = "ift6135_vit_lstm"
FILES = ("vit_solution.py", "lstm_solution.py")
REFERENCE = {n: (ROOT / "reference" / VIT_LSTM / n).read_text() for n in FILES}
TEMPLATE = {n: (ROOT / "student_template" / VIT_LSTM / n).read_text() for n in FILES}
HALF_FINISHED = {n: (FIXTURES / VIT_LSTM / "half_finished" / n).read_text() for n in FILES}


def near_copy(src, names):
    """A copier's disguise: comments gone, names renamed, new comments and blank lines."""
    src = strip_comments(src)
    for old, new in names.items():
        src = re.sub(rf"\b{old}\b", new, src)
    return src.replace("\n\n", "\n\n# my own work\n\n")


COPY = {"vit_solution.py": near_copy(REFERENCE["vit_solution.py"],
                                     {"mean": "mu", "var": "variance", "hidden_states": "hs", "image": "img",
                                      "q_proj": "wq", "k_proj": "wk", "v_proj": "wv", "out_proj": "wo"}),
        "lstm_solution.py": near_copy(REFERENCE["lstm_solution.py"],
                                      {"logits": "scores", "targets": "labels", "hidden_states": "state"})}


def notebook(source):
    """``source`` as a notebook: its top half and bottom half in two code cells, a markdown cell between."""
    lines = source.splitlines(keepends=True)
    half = len(lines) // 2
    cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": lines[:half]},
             {"cell_type": "markdown", "metadata": {}, "source": ["# Part 2\n"]},
             {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": lines[half:]}]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


def write_folder(path, files):
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def vit_lstm_class(tmp_path, copier=True):
    """Submissions as students hand them in, and a batch output folder saying all were graded but
    erin's (an exact copy of alice's that timed out: not compared)."""
    cls = tmp_path / "class"
    paths = {"alice": write_folder(cls / "alice", REFERENCE),
             "carol": write_folder(cls / "carol", TEMPLATE),                 # handed in the starter code
             "dave": write_folder(cls / "dave", HALF_FINISHED),
             "erin": write_folder(cls / "erin", REFERENCE)}
    if copier:      # a zip: the ViT file under the handout's alias in a subfolder, the LSTM as a notebook
        paths["bob"] = cls / "bob.zip"
        with zipfile.ZipFile(paths["bob"], "w") as zf:
            zf.writestr("work/vit_solution_template.py", COPY["vit_solution.py"])
            zf.writestr("lstm_solution.ipynb", notebook(COPY["lstm_solution.py"]))
    out = tmp_path / "out"
    for key, path in paths.items():
        (out / key).mkdir(parents=True)
        status = TIMED_OUT if key == "erin" else GRADED
        (out / key / "batch.json").write_text(Record(key, str(path), status=status).to_json())
    return out


def table_pairs(text):
    """The (a, b) rows of similarity.txt's table."""
    table = text.split("\n\n", 1)[1].strip().splitlines()
    return [tuple(line.split()[:2]) for line in table[2:] if not line.startswith("...")]


def test_the_planted_copy_is_found_and_distinct_work_is_not(tmp_path):
    out = vit_lstm_class(tmp_path)
    lines = similarity_report(out, VIT_LSTM)              # from the output folder alone
    text = (out / "similarity.txt").read_text()
    assert table_pairs(text) == [("alice", "bob")]
    head = text.split("\n\n", 1)[0].lower()
    assert "never part of any score" in head and "not a verdict" in head and "50%" in head
    assert "given code excluded" in head and "among 4 graded submissions" in head      # erin timed out
    row = text.split("\n\n", 1)[1].splitlines()[2]
    similar = int(re.search(r"(\d+)%", row).group(1))
    assert similar >= 80 and "lstm_solution.py" in row and "vit_solution.py" in row   # the notebook was read
    assert "1 pair(s) at or above 50%" in lines[0] and "never part of any score" in lines[0]
    assert re.fullmatch(r"\s+\d+%\s+alice ~ bob", lines[1])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "similarity figure skipped" in lines[-1]
    else:
        assert lines[-1] == "plot: similarity.png"
        assert (out / "similarity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_a_copy_no_pair_is_reported_and_the_threshold_is_applied(tmp_path):
    out = vit_lstm_class(tmp_path, copier=False)
    lines = similarity_report(out, VIT_LSTM, figure=False)
    assert "no pair at or above the 50% threshold among 3 graded submissions" in lines[0]
    assert table_pairs((out / "similarity.txt").read_text()) == []
    assert not (out / "similarity.png").exists()
    # the half-finished work kept a quarter of the reference's code: listed only under a low threshold
    lines = similarity_report(out, VIT_LSTM, threshold=0.2, figure=False)
    assert table_pairs((out / "similarity.txt").read_text()) == [("alice", "dave")]
    assert "at or above 20%" in lines[0]


def test_records_and_current_paths_come_from_the_batch(tmp_path):
    """run_batch passes its records and where each submission is now (an export zip is unpacked
    again on every run, so an earlier run's paths are gone); a path that is gone is said so."""
    out = vit_lstm_class(tmp_path)
    records = [Record.read(p) for p in sorted(out.glob("*/batch.json"))]
    moved = tmp_path / "moved"
    (tmp_path / "class" / "bob.zip").rename(tmp_path / "bob_now.zip")
    lines = similarity_report(out, VIT_LSTM, records, {"bob": tmp_path / "bob_now.zip"}, figure=False)
    assert table_pairs((out / "similarity.txt").read_text()) == [("alice", "bob")]
    (tmp_path / "class" / "alice").rename(moved)
    lines = similarity_report(out, VIT_LSTM, records, {"bob": tmp_path / "bob_now.zip"}, figure=False)
    assert "no pair at or above" in lines[0] and any("not compared" in l and "alice" in l for l in lines)
    assert "Not compared (1; files no longer readable): alice." in (out / "similarity.txt").read_text()


def test_a_failure_is_one_line_of_the_report_and_never_raises(tmp_path, monkeypatch):
    out = vit_lstm_class(tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(batch_run.code_similarity, "similar_pairs", broken)
    lines = similarity_report(out, VIT_LSTM)
    assert lines == ["similarity: not computed (RuntimeError: boom); grades are unaffected"]
    assert similarity_report(out, "no_such_assignment")[0].startswith("similarity: not computed")


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan")])
def test_a_threshold_outside_0_to_1_is_refused_before_grading(tmp_path, threshold):
    with pytest.raises(BadBatchInput, match="similarity threshold"):
        run_batch(VIT_LSTM, tmp_path, tmp_path / "out", BatchOptions(similarity_threshold=threshold))


# ------------------------------------------------------------------ end to end, on the mini assignment

MINI_HEAD = "import torch\nimport torch.nn as nn\n\n\n"
MINI_NORM = """class Norm(nn.Module):
    def __init__(self, n, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n))

"""
ALICE = MINI_HEAD + '''def _moments(x, dim=-1):
    # first and second moments over one dimension, by hand
    count = x.shape[dim]
    total = x.sum(dim, keepdim=True)
    mean = total / count
    centred = x - mean
    var = (centred * centred).sum(dim, keepdim=True) / count
    return mean, var, centred


''' + MINI_NORM + '''    def forward(self, x):
        mean, var, centred = _moments(x)
        scale = 1.0 / torch.sqrt(var + self.eps)
        out = centred * scale
        return out * self.weight


def double(x):
    result = x + x
    return result
'''
BOB = MINI_HEAD + '''def stats(t, axis=-1):
    """Mean and variance of t."""
    size = t.shape[axis]
    s = t.sum(axis, keepdim=True)
    mu = s / size

    diff = t - mu
    sigma2 = (diff * diff).sum(axis, keepdim=True) / size
    return mu, sigma2, diff


''' + MINI_NORM + '''    def forward(self, inp):
        mu, sigma2, diff = stats(inp)   # my helper
        factor = 1.0 / torch.sqrt(sigma2 + self.eps)
        y = diff * factor
        return y * self.weight


def double(x):
    doubled = x + x
    return doubled
'''
CAROL = MINI_HEAD + MINI_NORM + '''    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1])
        rows = []
        for row in flat:
            m = row.mean()
            v = ((row - m) ** 2).mean()
            rows.append((row - m) / (v + self.eps).sqrt())
        return torch.stack(rows).reshape(x.shape) * self.weight


def double(x):
    return x * 2
'''


def snapshot(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_batch_end_to_end_flag_and_grades_untouched(tmp_path):
    """Graded with --no-similarity (no similarity file), then run again with it (nothing graded again):
    every graded submission of the folder is compared, and every file but the report and the
    figures is byte-identical, grades.csv included."""
    cls = tmp_path / "class"
    for key, text in {"alice": ALICE, "bob": BOB, "carol": CAROL,
                      "dave": (MINI_PROJECT / "reference" / "mini" / "norm.py").read_text()}.items():
        write_folder(cls / key, {"norm.py": text})
    env = {**os.environ, "AUTOGRADER_PROJECT": str(MINI_PROJECT), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "autograder", "batch", "mini", str(cls), "-o", str(tmp_path / "out"), "-j", "2"]
    first = subprocess.run(command + ["--no-similarity", "--no-plots"], capture_output=True, text=True,
                           timeout=300, env=env, cwd=ROOT)
    assert first.returncode == 0, first.stdout + first.stderr
    out = tmp_path / "out"
    before = snapshot(out)
    assert not any("similarity" in name for name in before)
    assert "similarity" not in before["report.txt"].decode()

    second = subprocess.run(command + ["--similarity-threshold", "0.5"], capture_output=True, text=True,
                            timeout=300, env=env, cwd=ROOT)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "4 submissions already graded" in second.stderr
    after = snapshot(out)
    assert table_pairs(after["similarity.txt"].decode()) == [("alice", "bob")]
    report = after["report.txt"].decode()
    assert report.startswith(before["report.txt"].decode().rstrip("\n"))
    assert "1 pair(s) at or above 50% among 4 graded submissions" in report and "alice ~ bob" in report
    unchanged = {n for n in before if n != "report.txt" and not n.endswith(".png")}
    assert {n: after[n] for n in unchanged} == {n: before[n] for n in unchanged}
    assert b"graded,4,4" in before["grades.csv"]
