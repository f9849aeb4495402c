"""``autograder batch`` on the mini assignment: Gradescope's export layout, one folder or zip per
student, resumable, a hang or a crash costing only its own submission, grades.csv and the report."""
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import jsonschema
import pytest

from autograder.batch.run import BatchOptions, run_batch, write_summary
from autograder.batch.inputs import BadBatchInput, find_submissions
from autograder.engine.formats import gradescope_json
from support import MINI_PROJECT, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REFERENCE = (MINI_PROJECT / "reference" / "mini" / "norm.py").read_text()
BUGGY = REFERENCE.replace("return 2 * x", "return 3 * x")
EXPORT_METADATA = """\
submission_101:
  :submitters:
  - :name: Alice Adams
    :sid: '1001'
    :email: alice@example.edu
  :created_at: 2024-03-01 10:00:00.000000000 -08:00
  :score: 0.0
submission_102:
  :submitters:
  - :name: Bob Brown
    :sid: '1002'
    :email: bob@example.edu
  - :name: Bea Brown
    :sid: '1003'
    :email: bea@example.edu
  :created_at: 2024-03-01 11:00:00.000000000 -08:00
"""


def export_zip(tmp_path):
    """Gradescope's export: a top folder, submission_metadata.yml, one folder per submission."""
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as zf:
        top = "assignment_42_export/"
        zf.writestr(top + "submission_metadata.yml", EXPORT_METADATA)
        zf.writestr(top + "submission_101/norm.py", REFERENCE)
        zf.writestr(top + "submission_102/work/norm.py", BUGGY)
        zf.writestr(top + "submission_103/upload.zip", b"this is not a zip")   # not in the metadata
    return path


def rows(out):
    return {r["submission"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}


def valid_results(path):
    data = json.loads(path.read_text())
    jsonschema.validate(data, gradescope_json.schema())
    return data


@pytest.fixture(scope="module")
def graded_export(tmp_path_factory):
    os.environ["AUTOGRADER_PROJECT"] = str(MINI_PROJECT)
    try:
        tmp = tmp_path_factory.mktemp("batch")
        stream = io.StringIO()
        records = run_batch("mini", export_zip(tmp), tmp / "out", BatchOptions(workers=2, timeout_s=300), stream)
        return tmp, records, stream.getvalue()
    finally:
        os.environ.pop("AUTOGRADER_PROJECT")


def test_export_is_graded_with_identities_points_and_notes(graded_export):
    tmp, records, log = graded_export
    out = tmp / "out"
    table = rows(out)
    assert set(table) == {"submission_101", "submission_102", "submission_103"}
    alice, bob, bad = table["submission_101"], table["submission_102"], table["submission_103"]
    assert (alice["name"], alice["sid"], alice["email"]) == ("Alice Adams", "1001", "alice@example.edu")
    assert alice["status"] == "graded" and alice["score"] == alice["max_score"] == "4"
    assert bob["name"] == "Bob Brown; Bea Brown" and bob["sid"] == "1002; 1003"
    assert bob["score"] == "2" and bob["3 double(3) == 6"] == "0" and bob["1 Norm matches the reference"] == "1"
    assert bad["status"] == "graded" and bad["score"] == "0"
    assert "not listed in submission_metadata.yml" in bad["note"] and "not a valid zip" in bad["note"]
    for key in table:
        valid_results(out / key / "results.json")
    assert "4/4" not in log and "3/3" in log                       # the progress bar counted the three
    report = (out / "report.txt").read_text()
    assert "3 submissions: 3 graded" in report and " 33.3%  3 double(3) == 6" in report


def test_plots_are_written_as_png(graded_export):
    out = graded_export[0] / "out"
    for name in ("scores.png", "pass_rates.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_second_run_skips_what_is_already_graded(graded_export, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_PROJECT", str(MINI_PROJECT))
    src, out = graded_export[0], graded_export[0] / "out"
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/batch.json")}
    stream = io.StringIO()
    records = run_batch("mini", src / "export.zip", out, BatchOptions(workers=2, plots=False), stream)
    assert "3 submissions already graded" in stream.getvalue()
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/batch.json")} == before
    assert [r.result.score for r in records] == [4, 2, 0]


def test_without_matplotlib_the_report_says_how_to_get_plots(graded_export, tmp_path):
    code = ("import sys, pathlib; sys.modules['matplotlib'] = None\n"
            "from autograder.batch.run import write_summary, _load\n"
            "from autograder.batch.inputs import Submission\n"
            f"out = pathlib.Path({str(tmp_path)!r})\n"
            f"src = pathlib.Path({str(graded_export[0] / 'out')!r})\n"
            "records = [_load(src, Submission(k, src)) for k in ('submission_101', 'submission_102')]\n"
            "write_summary(records, out)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "report.txt").read_text()
    assert "plots skipped: matplotlib is not installed; pip install 'autograder[reports]'" in report
    assert not (tmp_path / "scores.png").exists() and (tmp_path / "grades.csv").is_file()


def test_a_hang_and_a_crash_cost_only_their_own_submission(tmp_path, monkeypatch):
    # the grading process itself hangs or dies (as a grader bug would), chosen by the submission's name
    project = tmp_path / "project"
    shutil.copytree(MINI_PROJECT, project)
    config = project / "test_suites" / "mini" / "assignment.py"
    config.write_text("import os, sys, time\n"            # batch passes the path in the environment
                      "if 'hangs' in os.environ.get('AUTOGRADER_SUBMISSION', ''): time.sleep(3600)\n"
                      "if 'crashes' in os.environ.get('AUTOGRADER_SUBMISSION', ''): os._exit(3)\n"
                      + config.read_text())
    monkeypatch.setenv("AUTOGRADER_PROJECT", str(project))
    for name in ("hangs", "crashes"):
        (tmp_path / "class" / name).mkdir(parents=True)
        (tmp_path / "class" / name / "norm.py").write_text(REFERENCE)
    out = tmp_path / "out"
    records = run_batch("mini", tmp_path / "class", out, BatchOptions(workers=2, timeout_s=3, plots=False), io.StringIO())
    status = {r.key: (r.status, r.note) for r in records}
    assert status["hangs"][0] == "timed out" and "cap of 3 s" in status["hangs"][1]
    assert status["crashes"][0] == "grader error" and "exited with code 3" in status["crashes"][1]
    for key in status:
        data = valid_results(out / key / "results.json")
        assert data["score"] == 0 and data["output"].startswith("Not graded:")
    assert {r["status"] for r in rows(out).values()} == {"timed out", "grader error"}


def test_one_folder_or_file_per_student_with_or_without_metadata(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "norm.py").write_text(REFERENCE)
    (tmp_path / "ann" / "submission_metadata.json").write_text(json.dumps(
        {"created_at": "2024-03-01T10:00:00Z", "users": [{"name": "Ann Lee", "id": 7, "email": "ann@x.edu"}]}))
    (tmp_path / "ben.zip").write_bytes(b"garbage")
    (tmp_path / "notes.txt").write_text("not a submission")
    subs = {s.key: s for s in find_submissions(tmp_path)}
    assert set(subs) == {"ann", "ben"}
    assert subs["ann"].students == [{"name": "Ann Lee", "sid": "7", "email": "ann@x.edu"}] and not subs["ann"].notes
    assert subs["ben"].students[0]["name"] == "ben" and "no metadata" in subs["ben"].notes[0]


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "is not a folder or zip of submissions"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no submissions found"),
    (lambda p: (p / "bad.zip").write_bytes(b"junk") and p / "bad.zip", "is not a readable zip"),
])
def test_bad_input_is_explained_without_a_traceback(tmp_path, make, message):
    source = make(tmp_path)
    env = {**os.environ, "AUTOGRADER_PROJECT": str(MINI_PROJECT)}
    proc = subprocess.run([sys.executable, "-m", "autograder", "batch", "mini", str(source), "-o", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(BadBatchInput, match="unknown assignment"):
        run_batch("no_such_assignment", tmp_path, tmp_path / "o")


def test_the_same_batch_runs_on_a_dask_cluster(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("AUTOGRADER_PROJECT", str(MINI_PROJECT))
    for name, source in (("ada", REFERENCE), ("bo", BUGGY)):
        (tmp_path / "class" / name).mkdir(parents=True)
        (tmp_path / "class" / name / "norm.py").write_text(source)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None,
                                  protocol="tcp") as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        records = run_batch("mini", tmp_path / "class", tmp_path / "out",
                            BatchOptions(cluster=cluster.scheduler_address, timeout_s=300, plots=False), io.StringIO())
    assert [(r.key, r.status, r.result.score) for r in records] == [("ada", "graded", 4), ("bo", "graded", 2)]
    assert rows(tmp_path / "out")["bo"]["3 double(3) == 6"] == "0"
    valid_results(tmp_path / "out" / "ada" / "results.json")


def test_relative_paths_as_in_the_readme(tmp_path):
    """`autograder batch mini class -o out` from the folder holding `class/`: both paths relative."""
    for name, source in (("ada", REFERENCE), ("bo", BUGGY)):
        (tmp_path / "class" / name).mkdir(parents=True)
        (tmp_path / "class" / name / "norm.py").write_text(source)
    env = {**os.environ, "AUTOGRADER_PROJECT": str(MINI_PROJECT), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "autograder", "batch", "mini", "class", "-o", "out", "-j", "1",
                           "--no-plots"], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    graded = rows(tmp_path / "out")
    assert {k: (r["status"], float(r["score"])) for k, r in graded.items()} == {"ada": ("graded", 4.0),
                                                                               "bo": ("graded", 2.0)}


def test_a_file_per_student_is_graded_as_the_assignments_file_or_marked_not_graded(tmp_path, monkeypatch):
    """A lone `ann.py` (named after the student) is graded as `norm.py` when the assignment has
    one code file; where it cannot be told which file it is, the status says "not graded" and why
    (never "graded" with a silent 0)."""
    monkeypatch.setenv("AUTOGRADER_PROJECT", str(MINI_PROJECT))
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "ann.py").write_text(REFERENCE)
    records = run_batch("mini", tmp_path / "class", tmp_path / "out", BatchOptions(workers=1, plots=False),
                        io.StringIO())
    assert [(r.key, r.status, r.result.score) for r in records] == [("ann", "graded", 4)]
    assert "Graded ann.py as norm.py" in records[0].result.output

    monkeypatch.delenv("AUTOGRADER_PROJECT")
    (tmp_path / "vit").mkdir()
    (tmp_path / "vit" / "bob.py").write_text("import torch\nclass Foo: pass\n")
    records = run_batch("ift6135_vit_lstm", tmp_path / "vit", tmp_path / "out2",
                        BatchOptions(workers=1, plots=False), io.StringIO())
    (record,) = records
    assert record.status == "not graded"
    assert "vit_solution.py, lstm_solution.py" in record.note and "not graded" in record.note
    data = valid_results(tmp_path / "out2" / "bob" / "results.json")
    assert data["score"] == 0 and "Not graded" in data["output"]
    assert rows(tmp_path / "out2")["bob"]["status"] == "not graded"


def test_a_lone_notebook_is_told_apart_by_the_names_it_defines(tmp_path):
    from autograder.engine.registry import load_assignment
    from autograder.engine.intake.staging import single_file_target
    uw = load_assignment("uw_attention")
    lone = tmp_path / "jane_doe.py"
    lone.write_text("import torch\nquery121 = torch.zeros(1, 3)\nm_key = None\n")
    spec, note = single_file_target(lone, uw)
    assert spec.name == "A2S1.py" and "jane_doe.py as A2S1.py" in note
    lone.write_text("def self_attention(Q, K, V):\n    pass\nquery121 = 1\n")    # names of two notebooks
    spec, note = single_file_target(lone, uw)
    assert spec is None and "cannot be told" in note


def test_plots_show_integer_bins_mean_median_and_hidden_tests(tmp_path):
    """One bin per point (integer counts), mean and median, visible and hidden tests told apart."""
    pytest.importorskip("matplotlib")
    from autograder.batch.model import Record
    from autograder.batch.reports.plots import plot_data, write_plots
    from autograder.engine.results import GradingResult, TestResult

    def record(key, visible_score, hidden_score, status="graded"):
        tests = [TestResult("v", 2, visible_score, number="1", status="passed" if visible_score == 2 else "failed"),
                 TestResult("h", 2, hidden_score, number="2", visibility="hidden",
                            status="passed" if hidden_score == 2 else "failed")]
        return Record(key, key, status=status, result=GradingResult("mini", tests))

    records = [record("a", 2, 2), record("b", 2, 0), record("c", 2, 0), record("d", 0, 0.5),
               record("e", 0, 0, status="timed out")]
    data = plot_data(records)
    assert data.graded == 4 and data.top == 4
    assert data.edges == [-0.5, 0.5, 1.5, 2.5, 3.5, 4.5] and data.counts == [0, 1, 2, 0, 1]
    assert data.mean == 2.125 and data.median == 2
    assert data.tests == [("1 v", 0.75, False), ("2 h", 0.25, True)]
    for path in write_plots(records, tmp_path):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
