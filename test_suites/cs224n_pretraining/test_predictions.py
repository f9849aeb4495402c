"""§2(d, f, g): the trained models' files, and whether the Perceiver's predictions came from it.

Prediction files are read as text on the trusted side and scored against the dev answers
(``birth_dev.tsv``) and the hidden test answer key (``data/birth_test_gold.tsv``) by exact
match, one place per line (500 lines for dev, 437 for test), with the handout's thresholds:
pretrained vanilla at least 10% on dev and on test, the Perceiver at least 6% on dev and 5%
on test; the no-pretraining files must be present and well formed. Parameter files are
never unpickled here: the trusted side only checks that they are there and look like
``torch.save`` output. The last test (hidden, 0 points, for the instructor) loads
``perceiver.finetune.params`` into the student's own model inside the worker
(``torch.load(weights_only=True)``), regenerates a sample of dev predictions greedily with
the student's ``utils.sample``, as ``run.py evaluate`` does, and reports whether they match.
"""
from __future__ import annotations

import random
import re
from pathlib import Path

import torch

from autograder.suite import GradedTestCase, number, sibling, time_limit, visibility, weight

HERE = Path(__file__).parent
DATA = HERE / "data"
span = sibling(__file__, "span")
HIDDEN = "after_published"
SPLITS = {"dev": ("birth_dev.tsv", 500), "test": ("birth_test_gold.tsv", 437)}
PROVENANCE_SAMPLE = 16
N_HEAD = 8          # run.py's; the only size a parameter file does not record


def answers(split: str) -> list[str]:
    name, _ = SPLITS[split]
    return [line.split("\t")[1] for line in (DATA / name).read_text(encoding="utf-8").strip("\n").split("\n")]


class PredictionCase(GradedTestCase):

    def staged(self, name: str) -> Path | None:
        path = self.grading.run.staged.dir / name
        return path if path.is_file() else None

    def predictions(self, stem: str, split: str) -> list[str]:
        """The lines of ``<stem>.<split>.predictions``, after checking the file is there and has one line per question."""
        name = f"{stem}.{split}.predictions"
        path = self.staged(name)
        expected = SPLITS[split][1]
        source = "birth_dev.tsv" if split == "dev" else "birth_test_inputs.tsv"
        if path is None:
            raise AssertionError(f"{name} was not found in your submission (collect_submission.sh puts it at the "
                                 "top of the zip, beside src/).")
        text = path.read_bytes().decode("utf-8", errors="replace")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        lines = [line.rstrip("\r") for line in lines]
        if len(lines) != expected:
            raise AssertionError(f"{name}: {expected} lines expected (one prediction per line of {source}), "
                                 f"{len(lines)} found.")
        return lines

    def accuracy(self, stem: str, split: str) -> tuple[int, float]:
        lines = self.predictions(stem, split)
        gold = answers(split)
        correct = sum(p == g for p, g in zip(lines, gold))
        return correct, 100.0 * correct / len(gold)

    def require_accuracy(self, stem: str, split: str, threshold: float) -> None:
        correct, acc = self.accuracy(stem, split)
        name = f"{stem}.{split}.predictions"
        if acc < threshold:
            raise AssertionError(f"{name}: {correct} of {SPLITS[split][1]} correct ({acc:.1f}%); at least "
                                 f"{threshold:g}% is required.")
        self.note(f"{name}: {correct} of {SPLITS[split][1]} correct ({acc:.1f}%).")


class TestPredictions(PredictionCase):

    @weight(2)
    @number("4.1")
    @visibility("visible")
    @time_limit(30)
    def test_nopretrain_files(self):
        """No pretraining: vanilla.nopretrain.{dev,test}.predictions present, one line per question"""
        problems = []
        for split in ("dev", "test"):
            try:
                self.predictions("vanilla.nopretrain", split)
            except AssertionError as exc:
                problems.append(str(exc))
        if problems:
            raise AssertionError("\n".join(problems))
        _, acc = self.accuracy("vanilla.nopretrain", "dev")
        self.note(f"vanilla.nopretrain.dev.predictions: {acc:.1f}% correct (not graded; expected to be low).")

    @weight(3)
    @number("4.2")
    @visibility("visible")
    @time_limit(30)
    def test_vanilla_dev(self):
        """Pretrained vanilla model: at least 10% correct on dev"""
        self.require_accuracy("vanilla.pretrain", "dev", 10)

    @weight(5)
    @number("4.3")
    @visibility(HIDDEN)
    @time_limit(30)
    def test_vanilla_test(self):
        """Pretrained vanilla model: at least 10% correct on the held-out test set"""
        self.require_accuracy("vanilla.pretrain", "test", 10)

    @weight(2)
    @number("4.4")
    @visibility("visible")
    @time_limit(30)
    def test_perceiver_dev(self):
        """Perceiver: at least 6% correct on dev"""
        self.require_accuracy("perceiver.pretrain", "dev", 6)

    @weight(8)
    @number("4.5")
    @visibility(HIDDEN)
    @time_limit(30)
    def test_perceiver_test(self):
        """Perceiver: at least 5% correct on the held-out test set"""
        self.require_accuracy("perceiver.pretrain", "test", 5)

    @weight(1)
    @number("4.6")
    @visibility("visible")
    @time_limit(30)
    def test_parameter_files(self):
        """The three parameter files are present and look like torch.save output"""
        problems = []
        for name in ("vanilla.model.params", "vanilla.finetune.params", "perceiver.finetune.params"):
            path = self.staged(name)
            if path is None:
                problems.append(f"{name} was not found in your submission.")
                continue
            with open(path, "rb") as fh:
                head = fh.read(4)
            if head != b"PK\x03\x04" and not head.startswith(b"\x80"):
                problems.append(f"{name} is not a file written by torch.save (it starts with {head!r}).")
        if problems:
            raise AssertionError("\n".join(problems))

    @weight(0)
    @number("4.7")
    @visibility("hidden")
    @time_limit(240)
    def test_predictions_come_from_model(self):
        """For the instructor: perceiver.pretrain.dev.predictions regenerated from perceiver.finetune.params"""
        params = self.staged("perceiver.finetune.params")
        if params is None:
            raise AssertionError("perceiver.finetune.params was not submitted: nothing to check.")
        submitted = self.predictions("perceiver.pretrain", "dev")
        torch_lib = self.library("torch")
        try:
            state = self.keep(torch_lib.load, str(params), map_location="cpu", weights_only=True)
            weights = self.fetch(state)       # plain tensors, rebuilt from bytes (never unpickled here)
        except AssertionError as exc:
            raise AssertionError(f"perceiver.finetune.params could not be loaded as weights "
                                 f"(torch.load(weights_only=True)):\n{exc}") from None
        if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
            raise AssertionError("perceiver.finetune.params does not hold a state_dict of tensors.")
        config = self.config_from({k: tuple(v.shape) for k, v in weights.items()})
        model = self.student("model", device="cpu")
        gpt = model.GPT(model.GPTConfig(config["vocab_size"], config["block_size"], n_layer=config["n_layer"],
                                        n_head=N_HEAD, n_embd=config["n_embd"], perceiver=True,
                                        bottleneck_dim=config["bottleneck_dim"]))
        gpt.load_state_dict(state)
        gpt.eval()
        stoi = span.vocabulary((DATA / "wiki.txt").read_text(encoding="utf-8"))
        itos = {i: c for c, i in stoi.items()}
        questions = [line.split("\t")[0] for line in (DATA / "birth_dev.tsv").read_text(encoding="utf-8").split("\n")]
        rows = sorted(random.Random(self.seeds(1)[0]).sample(range(len(submitted)), PROVENANCE_SAMPLE))
        sample = self.student("utils", device="cpu").sample
        same, differing = 0, []
        for row in rows:
            x = torch.tensor([[stoi[c] for c in questions[row] + span.MASK if c in stoi]], dtype=torch.long)
            out = sample(gpt, x, 32, sample=False)
            completion = "".join(itos.get(int(i), "?") for i in out[0])
            pieces = completion.split(span.MASK)
            regenerated = pieces[1] if len(pieces) > 1 else ""
            if regenerated == submitted[row]:
                same += 1
            else:
                differing.append(f"line {row + 1}: submitted {submitted[row]!r}, regenerated {regenerated!r}")
        summary = (f"perceiver.finetune.params loaded into the student's GPT (n_layer {config['n_layer']}, n_head "
                   f"{N_HEAD}, n_embd {config['n_embd']}, bottleneck {config['bottleneck_dim']}, block size "
                   f"{config['block_size']}); {same} of {len(rows)} sampled dev predictions regenerated identically.")
        if same < len(rows) - 1:
            raise AssertionError(summary + " The submitted predictions do not come from this model:\n  "
                                 + "\n  ".join(differing[:6]))
        self.note(summary)

    @staticmethod
    def config_from(shapes: dict[str, tuple]) -> dict:
        try:
            vocab, n_embd = shapes["tok_emb.weight"]
            block_size = shapes["pos_emb"][1]
            bottleneck = shapes["down_block.C"][1]
        except (KeyError, ValueError, IndexError):
            raise AssertionError("perceiver.finetune.params does not hold a Perceiver GPT's weights (tok_emb.weight, "
                                 "pos_emb and down_block.C expected).") from None
        blocks = {int(m.group(1)) for k in shapes for m in [re.match(r"blocks\.(\d+)\.", k)] if m}
        return {"vocab_size": vocab, "n_embd": n_embd, "block_size": block_size, "bottleneck_dim": bottleneck,
                "n_layer": len(blocks) + 2}
