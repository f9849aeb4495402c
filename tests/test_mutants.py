"""autograder.instructor.mutants (``verify --mutants``): a small project whose survivors are known.

The reference has three student-written functions and one given one. The suite checks the
scaled scores by value (the three scale mutants are caught), the softmax only by shape on a
square input (softmax over the wrong dimension survives, with its changed replies listed), and
top_class's answer (an argmax of a sum: sum -> mean changes no output: equivalent). The given
function is identical in the template and is never mutated. A time stamp's test has replies that
differ between the two gradings of the reference: it is left out of the equivalence check.
"""
import shutil
import textwrap
from pathlib import Path

import pytest

from support import MINI_PROJECT

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

NAME = "mutation_mini"   # its own name: suites and references are cached per assignment name

ASSIGNMENT = """\
from autograder.assignment import Assignment, SubmissionFile

ASSIGNMENT = Assignment(name="mutation_mini", title="mutation testing fixture", total_points=3,
                        files=(SubmissionFile("attn.py"),))
"""

REFERENCE = """\
import math
import time
import torch


def scaled_scores(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


def attention_weights(scores):
    return torch.softmax(scores, dim=-1)


def top_class(x):
    return int(x.sum(-1).argmax())


def given_total(x):
    return x.sum()


def stamp():
    return time.time_ns()
"""

TEMPLATE = """\
import math
import time
import torch


def scaled_scores(q, k):
    raise NotImplementedError  # TODO


def attention_weights(scores):
    raise NotImplementedError  # TODO


def top_class(x):
    raise NotImplementedError  # TODO


def given_total(x):
    return x.sum()


def stamp():
    raise NotImplementedError  # TODO
"""

SUITE = """\
import torch

from autograder.suite import GradedTestCase, number, time_limit, visibility, weight


class TestAttn(GradedTestCase):
    @weight(1)
    @number("1")
    @time_limit(20)
    def test_scores(self):
        \"\"\"scaled scores by value\"\"\"
        g = torch.Generator().manual_seed(0)
        q, k = torch.randn(3, 4, generator=g), torch.randn(5, 4, generator=g)
        self.assert_close(self.student("attn").scaled_scores(q, k),
                          self.reference("attn").scaled_scores(q, k), what="scaled_scores")

    @weight(1)
    @number("2")
    @time_limit(20)
    def test_weights_shape(self):
        \"\"\"attention weights: shape only, on a square input\"\"\"
        s = torch.randn(3, 3, generator=torch.Generator().manual_seed(1))
        self.assert_tensor(self.student("attn").attention_weights(s), shape=(3, 3), what="the weights")

    @weight(1)
    @number("3")
    @time_limit(20)
    @visibility("hidden")
    def test_top_class(self):
        \"\"\"top class of a batch\"\"\"
        x = torch.randn(4, 5, generator=torch.Generator().manual_seed(2))
        self.assertEqual(self.student("attn").top_class(x), self.reference("attn").top_class(x))

    @weight(0)
    @number("4")
    @time_limit(20)
    def test_stamp(self):
        \"\"\"a time stamp (its reply differs from run to run)\"\"\"
        self.assertIsInstance(self.student("attn").stamp(), int)
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    shutil.copytree(MINI_PROJECT, root)
    files = {f"test_suites/{NAME}/assignment.py": ASSIGNMENT, f"test_suites/{NAME}/test_attn.py": SUITE,
             f"reference/{NAME}/attn.py": REFERENCE, f"student_template/{NAME}/attn.py": TEMPLATE}
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(text))
    monkeypatch.setenv("AUTOGRADER_PROJECT", str(root))
    return root


def test_candidates_skip_given_code_and_sample_round_robin(project):
    from autograder.instructor.mutants import candidates, sample
    files, found = candidates(NAME)
    assert files == ["attn.py"]
    assert {m.function for m in found} == {"scaled_scores", "attention_weights", "top_class"}   # not given_total
    assert sorted((m.function, m.kind) for m in found) == [
        ("attention_weights", "softmax-dim"), ("scaled_scores", "scale-doubled"), ("scaled_scores", "scale-dropped"),
        ("scaled_scores", "scale-sqrt-missing"), ("top_class", "reduction-swapped")]
    two = sample(found, 2)
    assert [m.kind for m in two] == ["scale-dropped", "softmax-dim"]      # one per kind first (registry order),
    assert sample(found, 2) == two and sample(found, 40) == found        # ... returned in the input's order


def test_mutation_report_classifies_the_known_survivors(project):
    from autograder.instructor.mutants import mutation_report, render
    report = mutation_report(NAME, jobs=2)
    assert report.baseline_ok, report.baseline_detail
    got = {(v.mutant.function, v.mutant.kind): (v.status, v.caught_by, v.changed) for v in report.verdicts}
    assert got == {
        ("scaled_scores", "scale-dropped"): ("caught", ["1"], []),
        ("scaled_scores", "scale-doubled"): ("caught", ["1"], []),
        ("scaled_scores", "scale-sqrt-missing"): ("caught", ["1"], []),
        ("attention_weights", "softmax-dim"): ("survived", [], ["2"]),
        ("top_class", "reduction-swapped"): ("equivalent", [], []),
    }
    assert report.nondeterministic == ["4"]
    text = render(report)
    assert text.splitlines()[-1] == "mutation score: 3/4"
    assert "attn.py:11 in attention_weights: softmax-dim: `torch.softmax(scores, dim=-1)` -> " \
           "`torch.softmax(scores, dim=-2)`" in text
    assert "equivalent (not counted): 1; accepted readings (not counted): 0; error (not counted): 0" in text
    assert "  attn.py: scaled_scores: 3/3" in text and "  attn.py: top_class: 0/0, 1 equivalent" in text


def test_a_reference_short_of_full_marks_stops_the_report(project):
    from autograder.instructor.mutants import mutation_report, render
    (project / f"reference/{NAME}/attn.py").write_text(REFERENCE.replace("return torch.softmax(scores, dim=-1)",
                                                                          "raise ValueError('broken')"))
    report = mutation_report(NAME, jobs=1, max_mutants=1)
    assert not report.baseline_ok and "2 (failed, 0/1)" in report.baseline_detail
    assert report.verdicts == []
    assert render(report).splitlines()[-1] == "mutation score: not computed (the reference must earn full marks)"


def _graded(digests, scores=None, outcome="failed"):
    from autograder.instructor.mutants import Graded
    scores = scores or {k: 1.0 for k in digests}
    return Graded(tests={k: {"name": k, "score": scores[k], "max_score": 1.0,
                             "outcome": outcome if scores[k] < 1 else "passed", "digest": d}
                         for k, d in digests.items()})


def test_classify_rules():
    from autograder.instructor.mutants import Graded, classify
    from autograder.instructor.mutation import Mutant
    m = Mutant("softmax-dim", "a.py", 1, "f", "x", "y", "")
    base = _graded({"1": "a", "2": "b"})
    assert classify(m, _graded({"1": "a", "2": "b"}), base, set()).status == "equivalent"
    v = classify(m, _graded({"1": "a", "2": "c"}), base, set())
    assert (v.status, v.changed) == ("survived", ["2"])
    assert classify(m, _graded({"1": "a", "2": "c"}), base, {"2"}).status == "equivalent"   # 2 is nondeterministic
    assert classify(m, _graded({"1": "z", "2": "c"}), base, {"1", "2"}).status == "survived"  # nothing to compare
    v = classify(m, _graded({"1": "a", "2": "c"}, {"1": 1.0, "2": 0.0}), base, set())
    assert (v.status, v.caught_by) == ("caught", ["2"])
    v = classify(m, _graded({"1": "a", "2": "c"}, {"1": 1.0, "2": 0.0}, outcome="error"), base, set())
    assert v.status == "error" and "2 (error)" in v.detail                     # a grader bug catches nothing
    assert classify(m, Graded(grader_error=True, why="boom"), base, set()).status == "error"
    again = _graded({"1": "a", "2": "d"})                          # 2 differs between two gradings of the mutant
    v = classify(m, _graded({"1": "a", "2": "c"}), base, set(), again)
    assert (v.status, v.changed) == ("survived", []) and "2, which also differ" in v.detail
    v = classify(m, _graded({"1": "x", "2": "c"}), base, set(), _graded({"1": "x", "2": "d"}))
    assert (v.status, v.changed) == ("survived", ["1"]) and "also in 2" in v.detail


def test_verify_mutants_command(project, capsys):
    from autograder.cli import main
    assert main(["verify", NAME, "--mutants", "--max", "1", "-j", "1"]) == 0   # the score is information
    out = capsys.readouterr()
    assert "all checks passed" in out.out
    assert "[1/1] not caught (survived or equivalent: decided at the end): attn.py:11 in attention_weights: " \
           "softmax-dim" in out.err   # progress on stderr
    assert out.out.rstrip("\n").splitlines()[-1] == "mutation score: 0/1"


def test_declared_correct_readings_are_set_apart_and_a_caught_one_is_a_fidelity_bug():
    from autograder.instructor.mutants import Verdict, apply_accepted
    from autograder.instructor.mutation import Mutant

    def mutant(after):
        return Mutant("swap-args", "vit.py", 9, "MHA.forward", "f(q, k, v)", after, "")

    verdicts = [Verdict(mutant("f(k, q, v)"), "survived", changed=["2.5.1"]),
                Verdict(mutant("f(q, v, k)"), "caught", caught_by=["2.5.1"]),
                Verdict(mutant("f(v, k, q)"), "survived"),
                Verdict(mutant("f(k, v, q)"), "equivalent")]
    accepted = {("vit.py", "MHA.forward", after): "a relabelling" for after in ("f(k, q, v)", "f(q, v, k)", "f(k, v, q)")}
    apply_accepted(verdicts, accepted)
    assert [(v.status, v.detail) for v in verdicts] == [
        ("accepted", "a relabelling"), ("rejected", "a correct reading (a relabelling) fails 2.5.1"),
        ("survived", ""), ("accepted", "a relabelling")]
