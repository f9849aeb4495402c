"""The London baseline's printed figure is read in every form real scripts print it, at the
precision printed; a readable wrong figure is wrong, anything else is undecided. The script's
arguments are the ones its argparse declares and the grader can supply, and the worker-side
runner runs it as ``python src/<script>`` would, leaving nothing behind."""
import pytest

from autograder.engine.registry import import_file
from support import ROOT

baseline = import_file(ROOT / "test_suites" / "cs224n_pretraining" / "baseline.py",
                       "_autograder_suites.cs224n_pretraining.baseline")

RIGHT = ["Correct: 25.0 out of 500.0: 5.0%", "(500.0, 25.0)", "percent correct: 0.05",
         "Accuracy with London Baseline: 0.05", "25 out of 500 : 5.0 %", "London baseline accuracy: 5.00%",
         "tensor(0.0500)", "np.float64(0.05)", "0.05", "accuracy 5.00e-02", "Accuracy: 5",
         "loading...\nCorrect: 25 out of 500\ndone in 0.31 s"]
WRONG = ["Correct: 0.0 out of 500.0: 0.0%", "(500.0, 0.0)", "(500.0, 24.0)", "London accuracy: 20.0",
         "Accuracy: 4%", "Correct: 117 out of 2000: 5.85%", "0.00"]
UNDECIDED = ["", "done", "Done in 0.32 s", "500", "Loaded 500 examples", "Accuracy: 0.1", "Accuracy: 0.0",
             "Accuracy: nan"]


@pytest.mark.parametrize("output", RIGHT)
def test_the_right_figure_in_any_form(output):
    assert baseline.read_figure(output).verdict == "right"


@pytest.mark.parametrize("output", WRONG)
def test_a_readable_wrong_figure(output):
    figure = baseline.read_figure(output)
    assert figure.verdict == "wrong" and figure.lines == [output]


@pytest.mark.parametrize("output", UNDECIDED)
def test_nothing_readable_is_undecided(output):
    assert baseline.read_figure(output).verdict == "undecided"


def test_arguments_are_those_the_script_declares():
    run_py_like = ("import argparse\np = argparse.ArgumentParser()\np.add_argument('--reading_params_path')\n"
                   "p.add_argument('--eval_corpus_path', '-e', required=True)\np.add_argument('--outputs_path')\n")
    assert baseline.arguments(run_py_like, "birth_dev.tsv") == [
        "--eval_corpus_path", "birth_dev.tsv", "--outputs_path", baseline.OUTPUTS_FILE]
    assert baseline.arguments("import sys\nrows = open(sys.argv[1]).readlines()\n", "../birth_dev.tsv") == [
        "../birth_dev.tsv"]
    assert baseline.arguments("import utils\nprint(1)\n", "birth_dev.tsv") == []
    assert baseline.arguments("p.add_argument('function')\np.add_argument('--eval_corpus_path')\n", "d.tsv") == [
        "--eval_corpus_path", "d.tsv"]     # a positional it cannot supply is left out (argparse then says so)


def test_a_file_of_comments_has_no_code():
    starter = (ROOT / "student_template" / "cs224n_pretraining" / "london_baseline.py").read_text()
    assert not baseline.has_code(starter) and not baseline.has_code('"""docstring only"""\n')
    assert baseline.has_code(starter + "import utils\n")


def test_a_script_runs_as_the_handout_runs_it_and_leaves_no_trace(tmp_path):
    """The worker-side runner, in-process: ``__main__``, flat imports from src/, the working
    directory, argv; output captured and capped; cwd, argv, sys.path and sys.modules restored."""
    import os
    import sys
    from autograder.worker.script_runner import run_script
    (tmp_path / "helper_lb.py").write_text("VALUE = 7\n")
    (tmp_path / "data.tsv").write_text("a\tb\n")
    (tmp_path / "main_lb.py").write_text(
        "import os, sys\nimport helper_lb\n"
        "if __name__ == '__main__':\n"
        "    print(helper_lb.VALUE, os.path.basename(os.getcwd()), sys.argv[1:], open('../data.tsv').read().strip())\n"
        "    print('x' * 500)\n")
    before = (os.getcwd(), list(sys.argv), list(sys.path))
    run = run_script(str(tmp_path), "main_lb.py", code=["helper_lb.py"], data=["data.tsv"], cwd="src",
                     args=["--eval_corpus_path", "../data.tsv"], max_output=100)
    assert run["error"] is None and run["argv"] == ["main_lb.py", "--eval_corpus_path", "../data.tsv"]
    assert run["stdout"].startswith("7 src ['--eval_corpus_path', '../data.tsv'] a\tb\n") and run["cut"] > 0
    assert (os.getcwd(), sys.argv, sys.path) == before and "helper_lb" not in sys.modules
    failed = run_script(str(tmp_path), "main_lb.py", code=["helper_lb.py"], data=["data.tsv"])   # from the root
    assert failed["error"]["type"] == "FileNotFoundError" and failed["error"]["frames"][-1]["file"] == "src/main_lb.py"
