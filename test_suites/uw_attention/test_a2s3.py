"""A2S3 §3: the pieces of the HuggingFace fine-tuning notebook, graded offline on the CPU.

Neither ``roberta-base`` nor ``gpt3mix/sst2`` can be downloaded when grading: the tests use a
tiny RoBERTa-architecture model (2 layers, hidden 32, dropout 0.2) and a BPE tokenizer
trained on a small hand-written corpus (``tiny_roberta.py``, ``sst2_tiny.tsv``). The objects
the student's code receives (tokenizer, model, optimizer, DataLoader) are built in the
worker from the same data the trusted reference uses here; all of it stays on the CPU, so
an epoch is reproduced exactly (one thread on both sides, same seed for dropout).

What is graded, and how the real variations are treated:

- ``SST2Dataset``: ``__len__``, ``__getitem__`` (the ``SST2Example`` itself: its ``text`` and
  ``label`` are compared) and ``__iter__`` (the examples, in order).
- ``SST2Dataset.collate_fn``: ``text_encoding`` holds ``input_ids`` and ``attention_mask``
  equal to the tokenizer's output with ``padding=True, max_length=512, truncation=True``
  (int64, padded to the longest text of the batch, cut at 512 tokens); ``label_encoding`` is
  an int64 tensor of shape (B,). ``text_encoding`` may be the ``BatchEncoding`` or a plain
  dict. The tokenizer is the given class attribute ``SST2Dataset.tokenizer`` (set by the
  given ``__init__``); the module-level name ``tokenizer`` is pointed at the same tokenizer, so
  a collate_fn that uses the notebook's global works too.
- ``compute_accuracy(predictions, labels)`` gets two int64 tensors of shape (N,) (what the
  notebook's evaluate builds) and must return the fraction correct; a float, an int, a 0-d
  tensor or a numpy scalar are accepted.
- ``train_one_epoch(model, dataloader, optimizer, epoch)`` is given a model in eval mode
  (so it must call ``model.train()``; dropout is on), AdamW (lr 1e-3, larger than the
  notebook's so a mistake shows) and a DataLoader of ready batches (``{"text_encoding":
  BatchEncoding, "label_encoding": LongTensor}``, made by the reference collate, so a
  collate_fn bug is not charged twice). After the epoch every parameter must equal the
  reference epoch (``model(**text_encoding, labels=labels).loss``, then zero_grad, backward,
  step once per batch) within 1e-5: a missing ``zero_grad`` accumulates gradients, a step
  before the backward or a missing ``model.train()`` changes the weights. Its return value is
  not graded (a loss, a tuple, None are all fine). Forwarding the whole ``text_encoding``
  with ``**`` is fine (neither RoBERTa's tokenizer nor this one makes ``token_type_ids``).
- ``evaluate(model, dataloader)`` is given a model in train mode with no gradients; it must
  return the accuracy of the eval-mode model's argmax predictions, leave the model in eval
  mode (``model.eval()``) and compute no gradients (every ``.grad`` still ``None``). A tuple
  return such as ``(accuracy, loss)`` is accepted: its first element that is a number in
  [0, 1] is taken as the accuracy. (Whether the forward ran under ``torch.no_grad()`` cannot be
  seen from outside when no backward is called; the report questions cover it.)
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from autograder.suite import GradedTestCase, Remote, number, sibling, time_limit, visibility, weight
from autograder.suite.checks import describe
from autograder.suite.draw import generator, randint

HERE = Path(__file__).parent
POINTS = sibling(__file__, "assignment").POINTS
tiny = sibling(__file__, "tiny_roberta")
load_notes = sibling(__file__, "load_notes")
HIDDEN = "after_published"
MODULE = "A2S3"
NOTED_NAMES = ("SST2Example", "SST2Dataset", "compute_accuracy", "train_one_epoch", "evaluate", "tqdm")
# (load notes about statements defining these are shown in every test; all of them in 3.1)
LR = 1e-3
LONG_TEXT = " ".join(["the film is a warm and funny joy"] * 80)   # > 512 tokens


def _one_thread(fn):
    """Run ``fn()`` with one intra-op thread, like the worker (bitwise-identical results)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(threads)


def ref_collate(tokenizer, rows):
    texts = [r["text"] for r in rows]
    enc = tokenizer(texts, padding=True, max_length=512, truncation=True, return_tensors="pt")
    return enc, torch.tensor([r["label"] for r in rows], dtype=torch.long)


def _number(value):
    """A Python float for a float/int/0-d tensor/numpy scalar, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        return float(value.reshape(()).item())
    try:
        import numpy as np
        if isinstance(value, (np.generic, np.ndarray)) and np.size(value) == 1:
            return float(np.asarray(value).reshape(()))
    except (TypeError, ValueError):
        pass
    return None


class _A2S3Case(GradedTestCase):

    atol = rtol = 1e-5

    def a2s3(self, every_note: bool = False):
        """The student's module; the first call of a test shows what loading it skipped."""
        if not getattr(self, "_load_notes_shown", False):
            self._load_notes_shown = True
            load_notes.show(self, MODULE, names=NOTED_NAMES, everything=every_note)
        return self.student(MODULE)

    # -- objects in the worker --------------------------------------------------------
    def worker_tokenizer(self):
        T, tk = self.library("transformers"), self.library("tokenizers")
        tok = T.PreTrainedTokenizerFast(tokenizer_object=tk.Tokenizer.from_str(tiny.tokenizer_json()),
                                        **tiny.tokenizer_kwargs())
        try:
            self.a2s3().tokenizer = tok      # the notebook's global, for a collate_fn that uses it
        except AssertionError:
            pass
        return tok

    def student_dataset(self, tok, rows):
        ds = self.a2s3().SST2Dataset(tok, rows)
        return ds

    def worker_model(self, state):
        T = self.library("transformers")
        model = T.RobertaForSequenceClassification(T.RobertaConfig(**tiny.config_dict()))
        model.load_state_dict({k: v for k, v in state.items()})
        return model

    def worker_batches(self, tok, rows, batch_size):
        """A DataLoader (in the worker) yielding ready batches made by the reference collate."""
        batches = []
        for i in range(0, len(rows), batch_size):
            chunk = rows[i:i + batch_size]
            enc = self.keep(tok, [r["text"] for r in chunk], padding=True, max_length=512, truncation=True,
                            return_tensors="pt")
            labels = self.put(torch.tensor([r["label"] for r in chunk], dtype=torch.long), device="cpu")
            batches.append({"text_encoding": enc, "label_encoding": labels})
        torch_lib = self.library("torch")
        data = self.library("torch.utils.data")
        return data.DataLoader(batches, batch_size=None, shuffle=False, generator=torch_lib.Generator())

    def ref_batches(self, rows, batch_size):
        tok = tiny.make_tokenizer()
        return [ref_collate(tok, rows[i:i + batch_size]) for i in range(0, len(rows), batch_size)]

    def example(self, proxy, row, what):
        """Check that ``proxy`` is an SST2Example with ``row``'s text and label."""
        if not isinstance(proxy, Remote):
            raise AssertionError(f"{what} should be the SST2Example itself; got {describe(proxy)}.")
        for field in ("text", "label"):
            try:
                got = getattr(proxy, field)
            except AssertionError as exc:
                raise AssertionError(f"{what} should be an SST2Example (with .text and .label): {exc}") from None
            if got != row[field]:
                raise AssertionError(f"{what}.{field} is {got!r}; expected {row[field]!r}"
                                     + ("" if not self.hidden else " (hidden values)"))


class TestDataset(_A2S3Case):

    def check_dataset(self, rows):
        tok = self.worker_tokenizer()
        ds = self.student_dataset(tok, rows)
        n = len(ds)
        if n != len(rows):
            raise AssertionError(f"len(SST2Dataset(tokenizer, rows)) with {len(rows)} rows is {n}; "
                                 f"expected {len(rows)} (the number of examples in self.sample_list).")
        for i in sorted({0, len(rows) // 2, len(rows) - 1}):
            self.example(ds[i], rows[i], f"dataset[{i}]")
        items = list(iter(ds))
        if len(items) != len(rows):
            raise AssertionError(f"iterating over SST2Dataset gave {len(items)} items; expected {len(rows)} "
                                 "(every example once, in order).")
        for i, (item, row) in enumerate(zip(items, rows)):
            self.example(item, row, f"item {i} of iter(dataset)")

    @weight(POINTS["3.1"])
    @number("3.1")
    @time_limit(60)
    def test_dataset(self):
        """SST2Dataset: __len__, __getitem__ (the SST2Example) and __iter__ (in order) on 10 examples"""
        self.a2s3(every_note=True)
        self.check_dataset(tiny.raw_rows(range(10)))


class TestCollate(_A2S3Case):

    def check_collate(self, rows, what):
        tok = self.worker_tokenizer()
        a2s3 = self.a2s3()
        self.student_dataset(tok, rows)    # the given __init__ sets SST2Dataset.tokenizer
        examples = [a2s3.SST2Example(r["text"], r["label"]) for r in rows]
        batch = self.keep(a2s3.SST2Dataset.collate_fn, examples)
        self.check_batch(batch, rows, what)

    def check_batch(self, batch, rows, what):
        ref_enc, ref_labels = ref_collate(tiny.make_tokenizer(), rows)
        try:
            text_encoding = batch["text_encoding"]
            labels = batch["label_encoding"]
        except AssertionError as exc:
            raise AssertionError(f"{what} should return a dict with keys 'text_encoding' and 'label_encoding': "
                                 f"{exc}") from None
        for key in ("input_ids", "attention_mask"):
            try:
                got = text_encoding[key]
            except AssertionError as exc:
                raise AssertionError(f"{what}['text_encoding'] should be the tokenizer's output (with "
                                     f"{key!r}): {exc}") from None
            label = f"{what}['text_encoding']['{key}']"
            self.assert_tensor(got, what=label)
            if tuple(got.shape) != tuple(ref_enc[key].shape):
                hint = ""
                if got.shape[-1] > 512:
                    hint = " Truncate to max_length=512 (truncation=True)."
                elif got.dim() == 2 and got.shape[-1] > ref_enc[key].shape[-1]:
                    hint = " Pad to the longest text of the batch (padding=True), not to max_length."
                raise AssertionError(f"{label} has shape {tuple(got.shape)}; expected {tuple(ref_enc[key].shape)}: "
                                     f"one row per example, padded to the longest and cut at 512 tokens.{hint}")
            self.assert_tensor(got, dtype=torch.long, what=label)
            self.assert_close(got, ref_enc[key], what=label, atol=0, rtol=0,
                              hint="tokenizer(texts, padding=True, max_length=512, truncation=True, "
                                   "return_tensors='pt'), with the texts in the batch's order.")
        self.assert_tensor(labels, shape=(len(rows),), dtype=torch.long, what=f"{what}['label_encoding']")
        self.assert_close(labels, ref_labels, what=f"{what}['label_encoding']", atol=0, rtol=0,
                          hint="torch.LongTensor of the labels, in the batch's order.")

    @weight(POINTS["3.2"])
    @number("3.2")
    @time_limit(60)
    def test_collate_padding(self):
        """collate_fn: input_ids/attention_mask padded to the longest text, labels as a LongTensor (B,)"""
        rows = tiny.raw_rows([4, 0, 13, 7])
        self.check_collate(rows, "SST2Dataset.collate_fn(4 examples of different lengths)")

    @weight(POINTS["3.3"])
    @number("3.3")
    @time_limit(60)
    def test_collate_truncation(self):
        """collate_fn: a text longer than 512 tokens is cut at max_length=512"""
        rows = tiny.raw_rows([2, 5]) + [{"text": LONG_TEXT, "label": 1}]
        self.check_collate(rows, "SST2Dataset.collate_fn(3 examples, one longer than 512 tokens)")

    @weight(POINTS["3.4"])
    @number("3.4")
    @visibility(HIDDEN)
    @time_limit(60)
    def test_collate_random(self):
        """SST2Dataset + collate_fn through a DataLoader on random examples and batch sizes"""
        n_rows = len(tiny.examples())
        for seed in self.seeds(2):
            g = generator(seed)
            idx = torch.randperm(n_rows, generator=g)[:randint(g, 3, 12)].tolist()
            rows = tiny.raw_rows(idx)
            bs = randint(g, 1, 5)
            tok = self.worker_tokenizer()
            a2s3 = self.a2s3()
            ds = self.student_dataset(tok, rows)
            loader = self.library("torch.utils.data").DataLoader(
                ds, batch_size=bs, shuffle=False, collate_fn=a2s3.SST2Dataset.collate_fn,
                generator=self.library("torch").Generator())
            for b, batch in enumerate(loader):
                self.check_batch(batch, rows[b * bs:(b + 1) * bs],
                                 f"batch {b} of DataLoader(SST2Dataset(...), batch_size={bs}, "
                                 "collate_fn=SST2Dataset.collate_fn)")


class TestAccuracy(_A2S3Case):

    def check_accuracy(self, preds, labels):
        what = f"compute_accuracy(predictions, labels) with {len(labels)} int64 predictions"
        got = self.a2s3().compute_accuracy(preds, labels)
        value = _number(got)
        if value is None:
            raise AssertionError(f"{what} should return the accuracy as a float; got {describe(got)}.")
        expected = (preds == labels).double().mean().item()
        if not math.isclose(value, expected, abs_tol=1e-6):
            shown = "" if self.hidden else f"; expected {expected:.4f}"
            raise AssertionError(f"{what} returned {value:.4f}{shown}: the fraction of predictions equal to "
                                 "their label (a number in [0, 1]).")

    @weight(POINTS["3.5"])
    @number("3.5")
    @time_limit(60)
    def test_compute_accuracy(self):
        """compute_accuracy: the fraction of correct predictions"""
        self.check_accuracy(torch.tensor([1, 0, 1, 1, 0, 0, 1, 0]), torch.tensor([1, 1, 1, 0, 0, 1, 1, 0]))
        self.check_accuracy(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 1]))
        self.check_accuracy(torch.tensor([0, 0, 0, 0, 1]), torch.tensor([1, 1, 1, 1, 0]))


class TestTrainOneEpoch(_A2S3Case):

    def check_epoch(self, rows, batch_size, seed, weights_seed):
        state = tiny.initial_state(weights_seed)
        what = (f"train_one_epoch(model, dataloader, optimizer, epoch=0) on {len(rows)} examples in batches "
                f"of {batch_size} (tiny RoBERTa, AdamW lr={LR})")
        # the student's epoch, in the worker
        tok = self.worker_tokenizer()
        model = self.worker_model(state)
        model.eval()
        torch_lib = self.library("torch")
        optimizer = torch_lib.optim.AdamW(model.parameters(), lr=LR, eps=1e-8)
        loader = self.worker_batches(tok, rows, batch_size)
        torch_lib.manual_seed(seed)
        self.keep(self.a2s3().train_one_epoch, model, loader, optimizer, 0)
        got = torch_lib.nn.utils.parameters_to_vector(model.parameters())
        training = model.training

        # the reference epoch, here
        def reference():
            ref = tiny.make_model()
            ref.load_state_dict(state)
            opt = torch.optim.AdamW(ref.parameters(), lr=LR, eps=1e-8)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                ref.train()
                for enc, labels in self.ref_batches(rows, batch_size):
                    loss = ref(**enc, labels=labels).loss
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            names = [(n, p.numel()) for n, p in ref.named_parameters()]
            return torch.nn.utils.parameters_to_vector(ref.parameters()).detach(), names
        expected, names = _one_thread(reference)

        self.assert_tensor(got, shape=expected.shape, what=f"the parameters after {what}")
        if training is not True:
            raise AssertionError(f"after {what} the model is in eval mode: call model.train() at the start of "
                                 "the epoch (the model was given in eval mode; dropout must be on while training).")
        diff = (got.double() - expected.double()).abs()
        if bool((diff > 1e-5 + 1e-5 * expected.double().abs()).any()):
            start, worst = 0, []
            for name, n in names:
                d = diff[start:start + n].max().item()
                if d > 1e-5:
                    worst.append(name)
                start += n
            unchanged = bool(torch.equal(got, self.initial_vector(state, names)))
            hint = ("the parameters did not change: call optimizer.step() after loss.backward(), once per batch."
                    if unchanged else
                    "per batch: loss = model(**text_encoding, labels=labels).loss, then optimizer.zero_grad(), "
                    "loss.backward(), optimizer.step() (without zero_grad the gradients of earlier batches "
                    "add up); model.train() first.")
            raise AssertionError(f"after {what} the parameters differ from a reference epoch (largest difference "
                                 f"{diff.max().item():.2e}, in {', '.join(worst[:4])}"
                                 f"{' ...' if len(worst) > 4 else ''}).\n  Hint: {hint}")

    @staticmethod
    def initial_vector(state, names):
        return torch.cat([state[n].reshape(-1) for n, _ in names])

    @weight(POINTS["3.6"])
    @number("3.6")
    @time_limit(60)
    def test_train_one_epoch(self):
        """train_one_epoch: one epoch (3 batches of 4) reproduces the reference weights exactly"""
        self.check_epoch(tiny.raw_rows(range(12)), 4, seed=447, weights_seed=3)

    @weight(POINTS["3.7"])
    @number("3.7")
    @visibility(HIDDEN)
    @time_limit(60)
    def test_train_one_epoch_random(self):
        """train_one_epoch on random examples, batch size, seed and initial weights"""
        n_rows = len(tiny.examples())
        seed = self.seeds(1)[0]
        g = generator(seed)
        idx = torch.randperm(n_rows, generator=g)[:randint(g, 6, 14)].tolist()
        self.check_epoch(tiny.raw_rows(idx), randint(g, 2, 5), seed=randint(g, 0, 10_000),
                         weights_seed=randint(g, 0, 10_000))


class TestEvaluate(_A2S3Case):

    def check_evaluate(self, rows, batch_size, weights_seed):
        state = tiny.initial_state(weights_seed)
        what = f"evaluate(model, dataloader) on {len(rows)} examples in batches of {batch_size} (tiny RoBERTa)"
        tok = self.worker_tokenizer()
        model = self.worker_model(state)
        model.train()
        loader = self.worker_batches(tok, rows, batch_size)
        self.library("torch").manual_seed(0)
        got = self.a2s3().evaluate(model, loader)
        training = model.training
        grads = self.grads(model)

        def reference():
            ref = tiny.make_model()
            ref.load_state_dict(state)
            ref.eval()
            correct = total = 0
            with torch.no_grad():
                for enc, labels in self.ref_batches(rows, batch_size):
                    pred = ref(**enc).logits.argmax(-1)
                    correct += int((pred == labels).sum())
                    total += len(labels)
            return correct / total
        expected = _one_thread(reference)

        value = _number(got)
        if value is None and type(got) in (tuple, list):
            for item in got:
                v = _number(item)
                if v is not None and 0.0 <= v <= 1.0:
                    value = v
                    self.note(f"{what} returned {type(got).__name__} of {len(got)}; "
                              "its first number in [0, 1] is taken as the accuracy.")
                    break
        if value is None:
            raise AssertionError(f"{what} should return the accuracy as a float; got {describe(got)}.")
        if training is not False:
            raise AssertionError(f"after {what} the model is still in training mode: call model.eval() before "
                                 "predicting (dropout must be off when evaluating).")
        with_grad = [n for n, g in grads.items() if g is not None]
        if with_grad:
            raise AssertionError(f"after {what} some parameters have gradients ({', '.join(with_grad[:3])}): "
                                 "evaluate must not compute gradients (torch.no_grad(), no backward).")
        if not math.isclose(value, expected, abs_tol=1e-6):
            shown = "" if self.hidden else f"; expected {expected:.4f}"
            raise AssertionError(f"{what} returned {value:.4f}{shown}: the fraction of examples whose argmax "
                                 "of the (B, 2) logits equals the label, with the model in eval mode.")

    @weight(POINTS["3.8"])
    @number("3.8")
    @time_limit(60)
    def test_evaluate(self):
        """evaluate: accuracy of the eval-mode model, no gradients (12 examples, batches of 4)"""
        self.check_evaluate(tiny.raw_rows(range(20, 32)), 4, weights_seed=5)

    @weight(POINTS["3.9"])
    @number("3.9")
    @visibility(HIDDEN)
    @time_limit(60)
    def test_evaluate_random(self):
        """evaluate on random examples, batch size and weights"""
        n_rows = len(tiny.examples())
        seed = self.seeds(1)[0]
        g = generator(seed)
        idx = torch.randperm(n_rows, generator=g)[:randint(g, 5, 16)].tolist()
        self.check_evaluate(tiny.raw_rows(idx), randint(g, 1, 6), weights_seed=randint(g, 0, 10_000))
