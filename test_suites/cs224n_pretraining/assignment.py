"""Stanford CS224N (Winter 2023) Assignment 5: span corruption, pretraining and the Perceiver.

Students upload ``assignment5_submission.zip`` (or its contents): ``src/*.py``, the data
files, three parameter files and six prediction files. Only the files below are staged;
``run.py`` and ``trainer.py`` are not graded. ``attention.py`` is given and must not change:
the grader stages its own copy (the reference's) and reports a submitted copy that differs.
The data files are the grader's own copies (``data/``); the test answer key
(``data/birth_test_gold.tsv``) is read only by the trusted suites, never staged.
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
        SubmissionFile("london_baseline.py"),
        *(SubmissionFile(name, loader="data", provided=str(DATA / name))
          for name in ("wiki.txt", "birth_dev.tsv", "birth_places_train.tsv")),
        *(SubmissionFile(name, loader="data", max_bytes=64_000_000) for name in PARAMS),
        *(SubmissionFile(name, loader="data", max_bytes=1_000_000) for name in PREDICTIONS),
    ),
    total_points=43,
    # plain standard-library helpers the suites call in the worker (drawing many examples in one request)
    libraries=("builtins", "functools", "operator", "random", "numpy"),
)
