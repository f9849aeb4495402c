"""§2(b, d): the given NameDataset still works with the student's vocabulary (0 points: a check
that given code was not broken, reported to the student); the London baseline (2 points)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from autograder.suite import GradedTestCase, number, time_limit, visibility, weight
from autograder.trusted.registry import import_file

HERE = Path(__file__).parent
span = import_file(HERE / "span.py", "_autograder_suites.cs224n_pretraining.span")

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
        """london_baseline.py: the accuracy of always predicting "London" on birth_dev.tsv (5.0%)"""
        baseline = self.student("london_baseline")
        value = baseline.main()
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise AssertionError(f"london_baseline.main() returned {type(value).__name__}; it must return the "
                                 "accuracy on birth_dev.tsv, as a percentage (e.g. 5.0) or a fraction.")
        if abs(value - 5.0) > 0.01 and abs(value - 0.05) > 1e-4:
            raise AssertionError(f"london_baseline.main() returned {value:g}; predicting \"London\" for every line "
                                 "of birth_dev.tsv is right 25 times in 500, so 5.0 (percent) or 0.05 was expected. "
                                 "Use utils.evaluate_places(path, ['London'] * number_of_lines).")
