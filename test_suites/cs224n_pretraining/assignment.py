"""Stanford CS224N (Winter 2023) Assignment 5: span corruption, pretraining and the Perceiver.

Students upload ``assignment5_submission.zip`` (or its contents): ``src/*.py``, the data
files, three parameter files and six prediction files. Only the files below are staged;
``run.py`` and ``trainer.py`` are not graded. ``attention.py`` is given and must not change:
the grader stages its own copy (the reference's) and reports a submitted copy that differs.
The data files are the grader's own copies (``data/``); the test answer key
(``data/birth_test_gold.tsv``) is read only by the trusted suites, never staged.
``london_baseline.py`` is a script (the starter is four comment lines, no interface): it is
staged as a file and run as a program in the worker (test 3.2), never imported.

Points: ``COURSE_PARTS`` maps the parts the course autograded (33 points) to the tests that
grade them here; ``PROJECT_ADDITIONS`` are the tests the project adds (the course graded the
Perceiver only through its test accuracy, and the baseline's figure in the write-up).
"""
from pathlib import Path

from autograder.assignment import Assignment, SubmissionFile

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
REFERENCE = HERE.parents[1] / "reference" / "cs224n_pretraining"

PARAMS = ("vanilla.model.params", "vanilla.finetune.params", "perceiver.finetune.params")
PREDICTIONS = tuple(f"{stem}.{split}.predictions" for stem in ("vanilla.nopretrain", "vanilla.pretrain",
                                                                 "perceiver.pretrain") for split in ("dev", "test"))

ASSIGNMENT = Assignment(
    name="cs224n_pretraining",
    title="CS224N A5: span corruption, pretraining and the Perceiver",
    files=(
        SubmissionFile("dataset.py", expected_names=("NameDataset", "CharCorruptionDataset")),
        SubmissionFile("model.py", expected_names=("GPTConfig", "DownProjectBlock", "UpProjectBlock", "GPT")),
        SubmissionFile("attention.py", provided=str(REFERENCE / "attention.py")),
        SubmissionFile("utils.py", expected_names=("sample", "evaluate_places")),
        SubmissionFile("london_baseline.py", loader="data"),     # a script: run (test 3.2), never imported
        *(SubmissionFile(name, loader="data", provided=str(DATA / name))
          for name in ("wiki.txt", "birth_dev.tsv", "birth_places_train.tsv")),
        *(SubmissionFile(name, loader="data", max_bytes=64_000_000) for name in PARAMS),
        *(SubmissionFile(name, loader="data", max_bytes=1_000_000) for name in PREDICTIONS),
    ),
    total_points=43,
    # plain standard-library helpers the suites call in the worker (drawing many examples in one request)
    libraries=("builtins", "functools", "operator", "random", "numpy"),
    preload=("tqdm",),   # run.py's own import
)


# The course's autograded parts: (its points, the tests grading that part here). The project
# gives (d) 2 points instead of 5 and (f) 8 instead of 10, because it spends 15 of its 43
# points on the additions below; (e) and (g)(i) carry the course's points.
COURSE_PARTS = {
    "(d) predictions without pretraining": (5, ("4.1",)),
    "(e) span corruption": (10, ("1.1", "1.2", "1.3", "1.4", "1.5")),
    "(f) pretrained vanilla predictions, at least 10%": (10, ("4.2", "4.3")),
    "(g)(i) Perceiver, at least 5% on the test set": (8, ("4.5",)),
}
# Tests the course did not autograde: why each is here.
PROJECT_ADDITIONS = {
    **{n: "the Perceiver's code, which the course graded only through its test accuracy"
       for n in ("2.1", "2.2", "2.3", "2.4", "2.5", "2.6", "2.7", "2.8")},
    "3.1": "given code still works with the student's vocabulary (0 points, a report)",
    "3.2": "the London baseline of (d), whose figure the course graded in the write-up",
    "4.4": "the handout's Perceiver dev threshold (6%), beside the graded test threshold",
    "4.6": "the three parameter files collect_submission.sh packs are present",
    "4.7": "the instructor's check that the Perceiver's predictions come from its weights (0 points)",
}
