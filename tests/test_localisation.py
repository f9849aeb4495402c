"""Where a model goes wrong: a failing composite test names the first sub-module that departs
from the reference run with the student's weights on the same input (autograder.suite.localise,
recorded in the worker by autograder.worker.call_capture.record_modules).

First ``first_difference`` on toy modules (pure, in this process), then a few bug fixtures graded
for real, only the tests that fail on them: visible messages carry the size of the difference,
hidden ones the place only. The verdicts themselves are the ones the bug tables expect
(test_ift6135_bugs.py, test_cs224n_pretraining.py, test_uw_attention.py).
"""
import re
import shutil

import pytest
import torch
import torch.nn as nn

from autograder.engine import runner
from autograder.engine.registry import import_file, load_assignment
from autograder.suite import Difference, first_difference, localise
from autograder.suite.decorators import attribute
from autograder.worker.call_capture import record_modules
from support import FIXTURES, ROOT, apply_edits, edited_submission, explain, grade_valid


# -- toy modules ---------------------------------------------------------------------------------
class Norm(nn.Module):
    def __init__(self, n, unbiased=False):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(n)), nn.Parameter(torch.zeros(n))
        self.unbiased = unbiased

    def forward(self, x):
        centred = x - x.mean(-1, keepdim=True)
        return centred / torch.sqrt(x.var(-1, keepdim=True, unbiased=self.unbiased) + 1e-5) * self.weight + self.bias


class Attention(nn.Module):
    def __init__(self, n, scaled=True):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(n, n), nn.Linear(n, n), nn.Linear(n, n)
        self.scaled = scaled

    def forward(self, x):
        scores = self.q(x) @ self.k(x).transpose(-2, -1)
        return (scores / (x.shape[-1] ** 0.5 if self.scaled else 1.0)).softmax(-1) @ self.v(x)


class Block(nn.Module):
    def __init__(self, n=6, kind="pre", unbiased=False, scaled=True):
        super().__init__()
        self.kind = kind
        self.norm_1, self.attn, self.norm_2 = Norm(n, unbiased), Attention(n, scaled), Norm(n)
        self.mlp = nn.Sequential(nn.Linear(n, 2 * n), nn.ReLU(), nn.Linear(2 * n, n))

    def forward(self, x):
        if self.kind == "post":
            h = self.norm_1(x + self.attn(x))
            return self.norm_2(h + self.mlp(h))
        h = x + self.attn(self.norm_1(x))
        if self.kind == "one_norm":
            return h + self.mlp(self.norm_1(h))
        out = h + self.mlp(self.norm_2(h))
        return out.tanh() if self.kind == "tanh" else out


class Model(nn.Module):
    def __init__(self, kinds=("pre", "pre"), head="cls", **options):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(kind=k, **options) for k in kinds])
        self.head = nn.Linear(6, 3)
        self.pool = head

    def forward(self, x):
        x = self.blocks(x)
        x = x.mean(1) if self.pool == "mean" else x[:, 0]
        logits = self.head(x)
        return logits.softmax(-1) if self.pool == "softmax" else logits


def _pair(**options):
    """(student, reference, x): the reference holds the student's (random) weights."""
    torch.manual_seed(0)
    reference = Model()
    with torch.no_grad():
        for p in reference.parameters():
            p.copy_(torch.randn(p.shape) * 0.5 + (1.0 if p.dim() == 1 and p.shape[0] == 6 else 0.0))
    student = Model(**options)
    student.load_state_dict(reference.state_dict())
    return student, reference, torch.randn(2, 5, 6)


def _diff(options=None, **kw) -> Difference:
    student, reference, x = _pair(**(options or {}))
    return first_difference(record_modules(student, [x]), reference, x, **kw)


def _no_numbers(line: str) -> bool:
    """No digit outside the backticked place names (`blocks[0].attn`)."""
    return not re.search(r"\d", re.sub(r"`[^`]*`", "", line))


def test_a_correct_model_has_no_difference():
    assert _diff() is None


def test_a_wrong_leaf_is_named_with_its_difference():
    diff = _diff({"unbiased": True})
    assert (diff.path, diff.kind, diff.own) == ("blocks[0].norm_1", "output", False)
    assert diff.max_abs is not None and diff.max_abs > 1e-3
    visible, hidden = localise.describe(diff, hidden=False), localise.describe(diff, hidden=True)
    assert "`blocks[0].norm_1`: its output differs by up to " in visible and f"{diff.max_abs:.3g}" in visible
    assert "`blocks[0].norm_1`" in hidden and "differs" in hidden and _no_numbers(hidden), hidden


def test_attention_without_scale_names_attn():
    diff = _diff({"scaled": False})
    assert (diff.path, diff.kind, diff.own) == ("blocks[0].attn", "output", True)   # q, k, v all match
    assert "in `blocks[0].attn`'s own code" in localise.describe(diff, hidden=False)


def test_a_wrong_input_names_the_code_that_computes_it():
    diff = _diff({"kinds": ("post", "pre")})
    assert (diff.path, diff.kind, diff.parent) == ("blocks[0].norm_1", "input", "blocks[0]")
    assert "look at the code of `blocks[0]`'s forward" in localise.describe(diff, hidden=False)


def test_a_module_never_called_is_named():
    diff = _diff({"kinds": ("pre", "one_norm")})
    assert (diff.path, diff.kind) == ("blocks[1].norm_2", "missing")
    assert "the reference calls it there" in localise.describe(diff, hidden=True)


def test_the_composites_own_code():
    diff = _diff({"kinds": ("pre", "tanh")})
    assert (diff.path, diff.kind, diff.own) == ("blocks[1]", "output", True)
    diff = _diff({"head": "softmax"})
    assert (diff.path, diff.kind, diff.own) == ("", "output", True)
    assert "in Model.forward's own code" in localise.describe(diff, hidden=False, root="Model")
    diff = _diff({"head": "mean"})
    assert (diff.path, diff.kind, diff.parent) == ("head", "input", "")


def test_parts_graded_elsewhere_are_taken_as_the_student_computes_them():
    # norm_1 of both blocks is wrong (graded in its own part) and block 1 is post-norm
    diff = _diff({"unbiased": True, "kinds": ("pre", "post")}, accept=lambda p: p.endswith("norm_1"))
    assert (diff.path, diff.kind) == ("blocks[1].norm_1", "input")
    assert diff.accepted == ("blocks[0].norm_1",)
    assert "`blocks[0].norm_1` also differs from the reference" in localise.describe(diff, hidden=True)


def test_recording_leaves_the_module_as_it_was_and_keeps_records_until_a_crash():
    student, _, x = _pair()
    student.blocks[1].mlp[2] = nn.Linear(12, 4)      # the second block crashes on its residual
    record = record_modules(student, [x])
    assert record["error"].startswith("RuntimeError") and record["output"] is None
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in student.modules())
    paths = [r["path"] for r in record["modules"]]
    assert paths[:3] == ["", "blocks", "blocks.0"] and "blocks.1.mlp.2" in paths
    assert next(r for r in record["modules"] if r["path"] == "blocks.1")["end"] is None   # it raised
    reference = Model()
    reference.load_state_dict({k: v for k, v in student.state_dict().items() if "blocks.1.mlp.2" not in k},
                              strict=False)
    diff = first_difference(record, reference, x, shapes_only=True)
    assert (diff.path, diff.kind, diff.shapes) == ("blocks[1].mlp[2]", "output", ((2, 5, 4), (2, 5, 6)))
    assert "(shape (2, 5, 4), the reference's (2, 5, 6))" in localise.describe(diff, hidden=False)
    assert "(in shape)" in localise.describe(diff, hidden=True)


def test_gradients_are_compared_going_backward_when_every_output_matches():
    step = [{"path": f"layer_{i}.proj", "inputs": [torch.ones(2)], "output": torch.ones(2)} for i in (1, 2)]
    grads = {"layer_1.proj": {"weight": torch.ones(2, 2)}, "layer_2.proj": {"weight": torch.ones(2, 2)}}
    wrong = {"layer_1.proj": {"weight": torch.zeros(2, 2)}, "layer_2.proj": {"weight": None}}
    diff = first_difference(step, step, student_grads=wrong, reference_grads=grads)
    assert (diff.path, diff.kind, diff.param, diff.max_abs) == ("layer_2.proj", "gradient", "weight", None)
    assert "it receives none" in localise.describe(diff, hidden=False)
    diff = first_difference(step, step, student_grads={**wrong, "layer_2.proj": {"weight": torch.ones(2, 2)}},
                            reference_grads=grads)
    assert (diff.path, diff.max_abs) == ("layer_1.proj", 1.0)
    assert first_difference(step, step, student_grads=grads, reference_grads=grads) is None


def test_localising_never_changes_a_failure():
    exc = AssertionError("wrong")
    assert localise.annotate(exc, lambda: None, hidden=False) is exc
    assert localise.annotate(exc, lambda: 1 / 0, hidden=False) is exc
    assert first_difference([], object()) is None          # a reference that is not shipped
    out = localise.annotate(exc, lambda: Difference("attn", "output", 0.5), hidden=False)
    assert type(out) is AssertionError and str(out).startswith("wrong\n  Where it goes wrong")


# -- bug fixtures, graded ------------------------------------------------------------------------
IFT = "ift6135_vit_lstm"
CS224N = "cs224n_pretraining"
UW = "uw_attention"
IFT_BUGS = import_file(FIXTURES / IFT / "bugs.py", "_ift6135_fixture_bugs").BUGS
CS224N_BUGS = import_file(FIXTURES / CS224N / "bugs.py", "_cs224n_fixture_bugs").BUGS
VIT = "vit_solution.py"
NORM_2_READS_X = {VIT: [("        return h + self.linear(self.layer_norm_2(h))",
                         "        return h + self.linear(self.layer_norm_2(x))  # BUG: the second norm reads x")]}
UP_BLOCK_MEAN = {"model.py": [(
    "        x = x_input + self.attn(self.ln1(y), x_input)          # keys/values: y; queries: input\n",
    "        x = x_input + y.mean(dim=1, keepdim=True) + self.attn(self.ln1(y), x_input)   # BUG: mixes positions\n")]}


COLLECT = runner.collect_tests


def _grade(assignment, submission, numbers, pool, seed, monkeypatch) -> dict:
    """Grade only the tests ``numbers`` (each must fail); their outputs."""
    monkeypatch.setattr(runner, "collect_tests", lambda name, **kw: [
        c for c in COLLECT(name, **kw) if attribute(getattr(c, c._testMethodName), "__number__") in numbers])
    result = grade_valid(assignment, submission, pool, seed)
    assert {t.number for t in result.tests} == set(numbers), explain(result)
    assert all(t.status == "failed" and t.score == 0 for t in result.tests), explain(result)
    return {t.number: t.output for t in result.tests}


def _line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip().startswith("Where it goes wrong")]
    assert len(lines) == 1, output
    return lines[0]


def _edits(*edits) -> dict:
    merged = {}
    for edit in edits:
        for name, pairs in edit.items():
            merged.setdefault(name, []).extend(pairs)
    return merged


def _visible(line: str, place: str) -> None:
    assert place in line and re.search(r"by up to \d|shape \(", line), line


def _hidden(line: str, place: str) -> None:
    assert place in line and _no_numbers(line), line


def test_ift6135_block_and_vit_name_the_module(assignment_pools, tmp_path, monkeypatch):
    pool = assignment_pools(IFT)
    out = _grade(IFT, edited_submission(tmp_path / "a", ROOT / "reference" / IFT, IFT_BUGS["prenorm_is_postnorm"]),
                 ("2.7.1", "2.7.2"), pool, 2022, monkeypatch)
    _visible(_line(out["2.7.1"]), "in what `layer_norm_1` receives")
    _hidden(_line(out["2.7.2"]), "in what `layer_norm_1` receives")
    assert "PreNormAttentionBlock.forward" in _line(out["2.7.1"])
    # a LayerNorm bug (graded in 2.1) is taken as the student computes it; the mean pool is named
    edits = _edits(IFT_BUGS["layernorm_unbiased_var"], IFT_BUGS["vit_forward_mean_pool"])
    out = _grade(IFT, edited_submission(tmp_path / "b", ROOT / "reference" / IFT, edits),
                 ("2.8.1", "2.8.2"), pool, 2022, monkeypatch)
    for number, check in (("2.8.1", _visible), ("2.8.2", _hidden)):
        line = _line(out[number])
        check(line, "in what `mlp_head` receives")
        assert "`transformer` also differs from the reference" in line, line


def test_ift6135_the_right_norm_and_the_forward_itself(assignment_pools, tmp_path, monkeypatch):
    edits = _edits(NORM_2_READS_X, IFT_BUGS["vit_forward_softmax"])
    out = _grade(IFT, edited_submission(tmp_path / "s", ROOT / "reference" / IFT, edits),
                 ("2.7.1", "2.8.1"), assignment_pools(IFT), 2022, monkeypatch)
    _visible(_line(out["2.7.1"]), "in what `layer_norm_2` receives")
    line = _line(out["2.8.1"])
    _visible(line, "in VisionTransformer.forward's own code")
    assert "`transformer` also differs" in line, line        # the block bug is graded in 2.7


def _cs224n_submission(tmp_path, edits):
    names = {f.name for f in load_assignment(CS224N).files}
    reference = ROOT / "reference" / CS224N
    return edited_submission(tmp_path, reference, edits, files=[p for p in reference.iterdir() if p.name in names])


def test_cs224n_perceiver_names_the_block(assignment_pools, tmp_path, monkeypatch):
    pool = assignment_pools(CS224N)
    out = _grade(CS224N, _cs224n_submission(tmp_path / "a", CS224N_BUGS["swapped_cross_attention_args"]),
                 ("2.4", "2.5"), pool, 2023, monkeypatch)
    line = _line(out["2.4"])                  # it crashes in blocks[0]; the cause is before it
    _visible(line, "in what `down_block.attn` receives: its first argument")
    assert "(shape (1, 8, 32), the reference's (2, 11, 32))" in line, line     # length 5 < m passes
    _hidden(_line(out["2.5"]), "in what `down_block.attn` receives")
    out = _grade(CS224N, _cs224n_submission(tmp_path / "b", UP_BLOCK_MEAN), ("2.5",), pool, 2023, monkeypatch)
    line = _line(out["2.5"])                  # not causal: which positions move is compared
    _hidden(line, "in what `up_block.ln2` receives")
    assert "which positions" in line, line


def test_uw_minGPT_stack_names_the_layer(assignment_pools, tmp_path, monkeypatch):
    submission = tmp_path / "s"
    submission.mkdir()
    for f in (ROOT / "reference" / UW).glob("*.py"):
        shutil.copy(f, submission / f.name)
    shutil.copy(FIXTURES / UW / "no_scale" / "A2S2.py", submission / "A2S2.py")
    out = _grade(UW, submission, ("2.1.15", "2.1.16"), assignment_pools(UW), 447, monkeypatch)
    _visible(_line(out["2.1.15"]), "in `layer_1.self_attention`: its output differs")
    _hidden(_line(out["2.1.16"]), "in `layer_1.self_attention`: its output differs")


def test_the_helpers_edit_once():
    # the edits above still apply to the references as they are
    apply_edits((ROOT / "reference" / IFT / VIT).read_text(), NORM_2_READS_X[VIT], VIT)
    apply_edits((ROOT / "reference" / CS224N / "model.py").read_text(), UP_BLOCK_MEAN["model.py"], "model.py")


@pytest.mark.parametrize("name", ["layer_norm_1", "transformer.0.layer_norm_1", "layers.10.attn.q"])
def test_module_paths_read_like_python(name):
    assert localise.module_path(name) == {"layer_norm_1": "layer_norm_1",
                                          "transformer.0.layer_norm_1": "transformer[0].layer_norm_1",
                                          "layers.10.attn.q": "layers[10].attn.q"}[name]
