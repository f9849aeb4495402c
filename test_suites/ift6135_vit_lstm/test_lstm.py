"""Problem 1: the LSTM language model (lstm_solution.py), 9 points.

1.1  LSTM.forward  (5 points): log-probabilities over the vocabulary and the final (h, c); they
     backpropagate to every trainable parameter as the reference's do (a `.detach()` in forward
     leaves the values right and the model untrainable).
1.2  LSTM.loss     (4 points): per-sequence mean NLL over the valid tokens, then the batch mean.

The parts of the model given in the starter (embedding, nn.LSTM, classifier) are loaded with
the same weights as the reference model, so the outputs can be compared value by value.
Models are small (vocabulary 50, embeddings 16, hidden 12) so the tests run quickly.
"""
import torch
import torch.nn.functional as F

from autograder.suite.draw import generator, randint
from autograder.suite import GradedTestCase, describe, number, time_limit, visibility, weight

HIDDEN = "after_published"
VOCAB, EMBED, HIDDEN_SIZE = 50, 16, 12


def _lengths_mask(lengths, T: int) -> torch.Tensor:
    mask = torch.zeros(len(lengths), T)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1.0
    return mask


def _loss_inputs(g: torch.Generator, lengths, T: int, V: int = VOCAB):
    """log-probabilities (B, T, V), targets (B, T) with no padding id, mask (B, T) of 0/1."""
    B = len(lengths)
    log_probas = F.log_softmax(torch.randn(B, T, V, generator=g) * 2.0, dim=-1)
    targets = torch.randint(1, V, (B, T), generator=g)   # non-zero everywhere, padding included
    return log_probas, targets, _lengths_mask(lengths, T)


class _LSTMCase(GradedTestCase):

    atol = rtol = 1e-4

    # -- models --------------------------------------------------------------------
    def reference_model(self, g: torch.Generator, num_layers: int):
        """The reference LSTM with weights drawn from ``g``, and its state dict."""
        ref = self.reference("lstm_solution")
        model = ref.LSTM(VOCAB, EMBED, HIDDEN_SIZE, num_layers=num_layers)
        state = {}
        for key, value in model.state_dict().items():
            state[key] = torch.randn(value.shape, generator=g) * 0.5
        state["classifier.2.weight"] = state["embedding.weight"]   # tied, as in the starter
        model.load_state_dict(state)
        model.eval()
        return model, state

    def student_model(self, state: dict, num_layers: int, device: str | None = None):
        """The student's LSTM with the given weights, on the grading device."""
        lstm = self.student("lstm_solution", device=device)
        model = lstm.LSTM(VOCAB, EMBED, HIDDEN_SIZE, num_layers, False)
        model = model.to(device or self.device)
        model.load_state_dict(state)
        model.eval()
        return model

    def forward_pair(self, seed: int, B: int, T: int, num_layers: int, zero_state: bool):
        """(student output, reference output, description) for one forward call."""
        g = generator(seed)
        ref_model, state = self.reference_model(g, num_layers)
        inputs = torch.randint(0, VOCAB, (B, T), generator=g)
        shape = (num_layers, B, HIDDEN_SIZE)
        if zero_state:
            h0, c0 = torch.zeros(shape), torch.zeros(shape)
        else:
            h0, c0 = torch.randn(shape, generator=g) * 0.5, torch.randn(shape, generator=g) * 0.5
        model = self.student_model(state, num_layers)
        out = model(inputs, (h0, c0))
        with torch.no_grad():
            expected = ref_model(inputs, (h0, c0))
        what = (f"LSTM(vocabulary_size={VOCAB}, embedding_size={EMBED}, hidden_size={HIDDEN_SIZE}, "
                f"num_layers={num_layers}).forward on inputs of shape ({B}, {T})")
        return out, expected, what

    def unpack_forward(self, out, what: str, B: int, T: int, num_layers: int):
        """Validate the structure (log_probas, (h, c)) and the shapes; return the three tensors."""
        if not (isinstance(out, (tuple, list)) and len(out) == 2
                and isinstance(out[1], (tuple, list)) and len(out[1]) == 2):
            raise AssertionError(f"{what}: expected a tuple (log_probas, (h, c)), got {describe(out)}.")
        log_probas = self.assert_tensor(out[0], shape=(B, T, VOCAB), what=f"{what}: log_probas")
        h = self.assert_tensor(out[1][0], shape=(num_layers, B, HIDDEN_SIZE), what=f"{what}: h")
        c = self.assert_tensor(out[1][1], shape=(num_layers, B, HIDDEN_SIZE), what=f"{what}: c")
        return log_probas, h, c


class TestLSTMForward(_LSTMCase):

    @weight(1)
    @number("1.1.1")
    @time_limit(30)
    def test_forward_shapes_and_states(self):
        """LSTM forward: shapes of log_probas and of the final (h, c)"""
        for num_layers in (1, 2):
            B, T = 2, 6
            out, expected, what = self.forward_pair(11 + num_layers, B, T, num_layers, zero_state=True)
            _, h, c = self.unpack_forward(out, what, B, T, num_layers)
            self.assert_close(h, expected[1][0], what=f"{what}: final h",
                              hint="return the (h, c) that nn.LSTM gives back, unchanged.")
            self.assert_close(c, expected[1][1], what=f"{what}: final c",
                              hint="return the (h, c) that nn.LSTM gives back, unchanged.")

    @weight(2)
    @number("1.1.2")
    @time_limit(30)
    def test_forward_log_probabilities(self):
        """LSTM forward returns log-probabilities (log-softmax over the vocabulary) that backpropagate to every trainable parameter"""
        B, T, num_layers = 2, 5, 1
        out, expected, what = self.forward_pair(7, B, T, num_layers, zero_state=True)
        log_probas, _, _ = self.unpack_forward(out, what, B, T, num_layers)
        total = log_probas.double().exp().sum(dim=-1)
        self.assert_close(total, torch.ones(B, T, dtype=torch.float64), what=f"{what}: exp(log_probas).sum(-1)",
                          atol=1e-3, rtol=0,
                          hint="forward must return log-probabilities (F.log_softmax over the vocabulary "
                               "axis), not the classifier's raw logits.")
        self.assert_close(log_probas, expected[0], what=f"{what}: log_probas")
        self.check_gradients(generator(8), B, T, num_layers)

    @weight(2)
    @number("1.1.3")
    @visibility(HIDDEN)
    @time_limit(40)
    def test_forward_random(self):
        """LSTM forward on random inputs, initial states and layer counts"""
        for i, seed in enumerate(self.seeds(3)):
            g = generator(seed)
            B, T, num_layers = randint(g, 1, 4), randint(g, 3, 9), 1 + i % 2
            out, expected, what = self.forward_pair(seed + 1, B, T, num_layers, zero_state=False)
            what += " with non-zero initial states"
            log_probas, h, c = self.unpack_forward(out, what, B, T, num_layers)
            self.assert_close(log_probas, expected[0], what=f"{what}: log_probas")
            self.assert_close(h, expected[1][0], what=f"{what}: final h")
            self.assert_close(c, expected[1][1], what=f"{what}: final c")

    def check_gradients(self, g: torch.Generator, B: int, T: int, num_layers: int) -> None:
        """The gradient of <log_probas, W> (W random) for every trainable parameter equals that of the
        starter's modules composed as the handout says, embeddings learnt (the tied embedding then gets
        both of its gradients: as input and as output). No reference code: the expected gradients
        come from torch's own modules, so the student bundle decides this test locally too."""
        expected = _StarterLSTM(num_layers)
        state = {k: torch.randn(v.shape, generator=g) * 0.5 for k, v in expected.state_dict().items()}
        state["classifier.2.weight"] = state["embedding.weight"]   # tied, as in the starter
        expected.load_state_dict(state)
        inputs = torch.randint(0, VOCAB, (B, T), generator=g)
        shape = (num_layers, B, HIDDEN_SIZE)
        hidden = (torch.randn(shape, generator=g) * 0.5, torch.randn(shape, generator=g) * 0.5)
        upstream = torch.randn(B, T, VOCAB, generator=g)
        lstm = self.student("lstm_solution")
        model = lstm.LSTM(VOCAB, EMBED, HIDDEN_SIZE, num_layers, True).to(self.device)
        model.load_state_dict(state)
        model.eval()
        what = (f"LSTM(..., num_layers={num_layers}, learn_embeddings=True).forward on inputs of shape ({B}, {T}), "
                "then backward from log_probas")
        log_probas = self.keep_item(self.keep(model, inputs, hidden), 0)
        if log_probas.requires_grad is not True:
            raise AssertionError(f"{what}: log_probas does not require grad, so no parameter can be trained "
                                 "through it. Is the result detached (.detach(), .data, torch.no_grad()) in forward?")
        log_probas.backward(upstream)
        expected(inputs, hidden).backward(upstream)
        grads = self.grads(model)
        wanted = [(name, p.grad) for name, p in expected.named_parameters() if name in grads]   # tied: once
        for name, _ in wanted:
            if grads[name] is None:
                raise AssertionError(
                    f"{what}: parameter {name} received no gradient, so training would never change it. "
                    "Is something detached (.detach(), .data, torch.no_grad()) between it and log_probas?")
        for name, grad in wanted:
            self.assert_close(grads[name], grad, what=f"{what}: the gradient of {name}",
                              hint="forward must keep every step from the embeddings to log_probas in the "
                                   "autograd graph (no .detach() or .data on the way).")


class _StarterLSTM(torch.nn.Module):
    """The modules the starter gives (embedding, nn.LSTM, classifier tied to the embedding), composed
    as the handout's forward says: log_softmax(classifier(lstm(embedding(inputs), hidden))). Only
    its gradients are used (1.1.2); the values are compared with the reference's elsewhere."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCAB, EMBED, padding_idx=0)
        self.lstm = torch.nn.LSTM(EMBED, HIDDEN_SIZE, num_layers=num_layers, batch_first=True)
        self.classifier = torch.nn.Sequential(torch.nn.Linear(HIDDEN_SIZE, EMBED), torch.nn.ReLU(),
                                              torch.nn.Linear(EMBED, VOCAB, bias=False))
        self.classifier[2].weight = self.embedding.weight

    def forward(self, inputs, hidden):
        outputs, _ = self.lstm(self.embedding(inputs), hidden)
        return F.log_softmax(self.classifier(outputs), dim=-1)


class TestLSTMLoss(_LSTMCase):

    def loss_model(self):
        """The loss is graded on CPU tensors on every machine, so a hard-coded 'cuda' fails the
        same tests with or without a GPU."""
        lstm = self.student("lstm_solution", device="cpu")
        return lstm.LSTM(VOCAB, EMBED, HIDDEN_SIZE, 1, False)

    def expected_loss(self, log_probas, targets, mask):
        ref = self.reference("lstm_solution").LSTM(VOCAB, EMBED, HIDDEN_SIZE)
        return ref.loss(log_probas, targets, mask).detach()

    def check_loss(self, model, lengths, T, seed, what_extra=""):
        log_probas, targets, mask = _loss_inputs(generator(seed), lengths, T)
        value = model.loss(log_probas, targets, mask)
        what = (f"loss(log_probas, targets, mask) with log_probas of shape ({len(lengths)}, {T}, {VOCAB}) "
                f"and sequence lengths {list(lengths)}{what_extra}")
        value = self.assert_tensor(value, shape=(), what=what)
        self.assert_close(value, self.expected_loss(log_probas, targets, mask), what=what,
                          hint="for each sequence, average the negative log-likelihood over its own valid "
                               "tokens (mask == 1); then average these per-sequence values over the batch.")

    @weight(0.5)
    @number("1.2.1")
    @time_limit(30)
    def test_loss_no_padding(self):
        """LSTM loss on a batch without padding"""
        self.check_loss(self.loss_model(), [6, 6, 6], 6, seed=3)

    @weight(1)
    @number("1.2.2")
    @time_limit(30)
    def test_loss_different_lengths(self):
        """LSTM loss with sequences of different lengths (mean per sequence, then over the batch)"""
        self.check_loss(self.loss_model(), [7, 3, 1], 7, seed=4)

    @weight(1)
    @number("1.2.3")
    @visibility(HIDDEN)
    @time_limit(30)
    def test_loss_random(self):
        """LSTM loss on random batches and lengths"""
        model = self.loss_model()
        for seed in self.seeds(3):
            g = generator(seed)
            B, T = randint(g, 2, 5), randint(g, 4, 11)
            lengths = [randint(g, 1, T) for _ in range(B)]
            lengths[0] = T
            lengths[-1] = randint(g, 1, max(1, T // 2))
            self.check_loss(model, lengths, T, seed + 1)

    @weight(1)
    @number("1.2.4")
    @time_limit(30)
    def test_loss_differentiable(self):
        """LSTM loss is a float32 scalar that backpropagates to log_probas"""
        model = self.loss_model()
        log_probas, targets, mask = _loss_inputs(generator(5), [3, 3], 5)
        lp = self.put(log_probas, requires_grad=True, device="cpu")
        loss = self.keep(model.loss, lp, targets, mask)
        what = "loss(log_probas, targets, mask) with log_probas of shape (2, 5, 50) requiring grad"
        self.assert_tensor(self.fetch(loss), shape=(), dtype=torch.float32, what=what)
        if loss.requires_grad is not True:
            raise AssertionError(
                f"{what}: the returned loss does not require grad, so training cannot backpropagate "
                "through it. Compute it with torch operations on log_probas (no .item(), .detach(), "
                "numpy or torch.tensor(...) on the way).")
        loss.backward()
        expected_lp = log_probas.clone().requires_grad_(True)
        self.expected_loss_graph(expected_lp, targets, mask).backward()
        grad = lp.grad
        if grad is None:
            raise AssertionError(f"{what}: after loss.backward(), log_probas.grad is None: the loss is not "
                                 "connected to log_probas in the autograd graph.")
        self.assert_close(grad, expected_lp.grad, what=f"{what}: the gradient of the loss with respect to log_probas")

    def expected_loss_graph(self, log_probas, targets, mask):
        ref = self.reference("lstm_solution").LSTM(VOCAB, EMBED, HIDDEN_SIZE)
        return ref.loss(log_probas, targets, mask)

    @weight(0.5)
    @number("1.2.5")
    @time_limit(30)
    def test_loss_cpu_and_inputs_untouched(self):
        """LSTM loss works on CPU tensors and does not modify targets or mask"""
        # Equal lengths with padding: this test is about devices and side effects, not averaging.
        log_probas, targets, mask = _loss_inputs(generator(6), [4, 4, 4], 6)
        expected = self.expected_loss(log_probas, targets, mask)
        what = "loss(log_probas, targets, mask) on CPU tensors of shape (3, 6, 50), (3, 6), (3, 6)"
        model = self.loss_model()
        value = model.loss(log_probas, targets, mask)
        self.assert_tensor(value, shape=(), what=what)
        self.assert_close(value, expected, what=what,
                          hint="do not hard-code a device such as 'cuda': use the device of the inputs.")

        lp_r, targets_r, mask_r = (self.put(t, device="cpu") for t in (log_probas, targets, mask))
        value = model.loss(lp_r, targets_r, mask_r)
        self.assert_tensor(value, shape=(), what="loss(log_probas, targets, mask)")
        for name, proxy, original in (("targets", targets_r, targets), ("mask", mask_r, mask),
                                      ("log_probas", lp_r, log_probas)):
            after = self.fetch(proxy)
            if not torch.equal(self.assert_tensor(after, shape=original.shape, what=name), original):
                changed = int((after != original).sum())
                raise AssertionError(
                    f"loss(log_probas, targets, mask) modified its argument `{name}` in place "
                    f"({changed} values changed). Work on a copy (e.g. targets.clone()) or use "
                    "operations that return new tensors.")
