"""§2(b, d): the given NameDataset still works with the student's vocabulary (0 points: a check
that given code was not broken, reported to the student); the London baseline (2 points).

The London baseline's starter is four comment lines, no interface: the script is run in the
worker as the handout runs scripts (``python src/london_baseline.py`` from the assignment
root, then from ``src/`` for scripts that read ``../birth_dev.tsv``), given the arguments its
argparse declares (the dev file, a predictions file to write), and the figure it prints is
read (``baseline.py``). The course graded this figure in the write-up, not with its
autograder: a figure that cannot be read, or a run that failed for want of something the
grading machine lacks, is reported without cost; a wrong figure or a crash is a real bug.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from autograder.suite import GradedTestCase, number, sibling, time_limit, visibility, weight

HERE = Path(__file__).parent
span = sibling(__file__, "span")
baseline = sibling(__file__, "baseline")

ROWS = ["Where was Oskar Lindqvist born?\tMalmo", "Where was Amara Nwosu born?\tEnugu",
        "Where was Yusuf Demir born?\tIzmir", "Where was Clara Benedetti born?\tVerona"]
CORPUS = "\n".join(["Oskar Lindqvist. Lindqvist was born in Malmo and raced bicycles .",
                    "Amara Nwosu. Born in Enugu, Nwosu studied chemistry ."] + [r.replace("\t", " ") for r in ROWS])
BLOCK = 64


class TestGivenCode(GradedTestCase):

    @weight(0)
    @number("3.1")
    @visibility("visible")
    @time_limit(60)
    def test_name_dataset(self):
        """NameDataset builds question/answer examples with your CharCorruptionDataset's vocabulary"""
        dataset = self.student("dataset")
        names = dataset.NameDataset(dataset.CharCorruptionDataset(CORPUS, BLOCK), "\n".join(ROWS) + "\n")
        n = len(names)
        if n != len(ROWS):
            raise AssertionError(f"len(NameDataset) on a file of {len(ROWS)} lines (ending in a newline) is {n}, "
                                 f"{len(ROWS)} expected.")
        stoi = span.vocabulary(CORPUS)
        vocab = SimpleNamespace(stoi=stoi, itos={i: c for c, i in stoi.items()}, block_size=BLOCK)
        expected = self.reference("dataset").NameDataset(vocab, "\n".join(ROWS) + "\n")
        for i in range(len(ROWS)):
            got = names[i]
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise AssertionError(f"NameDataset[{i}] must return a pair (x, y).")
            for name, value, ref in (("x", got[0], expected[i][0]), ("y", got[1], expected[i][1])):
                self.assert_close(value, ref, what=f"NameDataset[{i}] ({ROWS[i]!r}): {name}", atol=0, rtol=0,
                                  hint="NameDataset is given code: it must use the vocabulary (stoi) of the "
                                       "CharCorruptionDataset, PAD id 0 and MASK id 1, with its __init__ unchanged.")

    @weight(2)
    @number("3.2")
    @visibility("visible")
    @time_limit(60)
    def test_london_baseline(self):
        """london_baseline.py, run as the handout runs scripts, prints the accuracy of always predicting "London" on birth_dev.tsv (5.0%)"""
        runs = self.run_baseline()
        finished = [run for run in runs if run["error"] is None]
        figures = [(run, baseline.read_figure(run["stdout"])) for run in finished]
        decided = [(run, figure) for run, figure in figures if figure.verdict != "undecided"]
        if decided:
            run, figure = decided[0]
            shown = "\n".join(f"    {line}" for line in figure.lines)
            if figure.verdict == "wrong":
                raise AssertionError(f"{_command(run)} printed:\n{shown}\nbut predicting \"London\" for every line of "
                                     f"birth_dev.tsv gets {baseline.EXPECTED}: that figure was expected. Use "
                                     "utils.evaluate_places(path, [\"London\"] * number_of_lines), which returns "
                                     "(total, correct).")
            self.note(f"{_command(run)} printed:\n{shown}")
            return
        if finished:
            run, figure = figures[0]
            printed = "\n".join(f"    {line}" for line in figure.lines) or "    (no number)"
            self.note(f"{_command(run)} ran, but no accuracy could be read from what it printed:\n{printed}\n"
                      f"{NOT_COUNTED} (Expected: {baseline.EXPECTED}.)")
            return
        modules = {f.module for f in self.grading.run.assignment.files}
        real = [run for run in runs if not _not_ours_to_judge(run, modules)]
        run = (real or runs)[0]
        failure = _failure(run)
        if real:
            raise AssertionError(failure)
        self.note(f"{failure}\nIt was run from the assignment root and from src/; the grading machine could not "
                  f"give it what it needed. {NOT_COUNTED}")

    def run_baseline(self) -> list[dict]:
        """Runs of the script, from the assignment root and then from src/, until one prints a figure."""
        staged = self.grading.run.staged
        path = staged.dir / SCRIPT
        source = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        if path.is_file() and not baseline.has_code(source):
            raise AssertionError("london_baseline.py has no code yet, only the starter's comments: it should compute "
                                 "the accuracy of predicting \"London\" for every line of birth_dev.tsv and print it.")
        code = sorted(name for name in staged.found if name.endswith(".py"))
        data = sorted(name for name in staged.found if not name.endswith(".py"))
        runs = []
        for cwd, dev in (("", baseline.DEV_FILE), ("src", "../" + baseline.DEV_FILE)):
            run = self.run_script(SCRIPT, code=code, data=data, cwd=cwd, args=baseline.arguments(source, dev))
            runs.append(run)
            if run["error"] is None and baseline.read_figure(run["stdout"]).verdict != "undecided":
                break
        return runs


SCRIPT = "london_baseline.py"
NOT_COUNTED = ("This is not counted against you: the course graded the baseline's figure in your write-up, "
               "not with its autograder.")
OUT_OF_REACH = ("FileNotFoundError", "NotADirectoryError", "IsADirectoryError", "PermissionError")


def _command(run: dict) -> str:
    where = "from src/" if run["cwd"] == "src" else "from the assignment root"
    return f"`python {' '.join(run['argv'])}` ({where})"


def _not_ours_to_judge(run: dict, modules: set[str]) -> bool:
    """The run failed for want of something the grading machine does not have: a file outside the
    assignment, a library that is not installed, or command-line arguments it could not supply."""
    error = run["error"]
    if error["type"] in OUT_OF_REACH:
        return True
    if error["type"] == "ModuleNotFoundError":
        module = str(error.get("module") or "").split(".")[0]
        return module not in modules
    return error["type"] == "SystemExit" and "usage:" in run["stderr"]


def _failure(run: dict) -> str:
    error = run["error"]
    if error["type"] == "SystemExit":
        head = f"{_command(run)} exited with status {error.get('exit_code')}"
    else:
        head = f"{_command(run)} raised {error['type']}: {error['message'][:500]}"
    lines = [head]
    for frame in error.get("frames", [])[-4:]:
        lines.append(f'  File "{frame["file"]}", line {frame["line"]}, in {frame["function"]}')
        if frame.get("code"):
            lines.append(f"    {frame['code']}")
    if run["stderr"].strip():
        lines.append("  It wrote to stderr:\n    " + "\n    ".join(run["stderr"].strip().splitlines()[-6:]))
    return "\n".join(lines)
