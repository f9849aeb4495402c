"""Red-team basics on the real assignment: each hostile submission still gets valid results
with the right scores, and grading finishes in bounded time."""
import time

import pytest

from autograder.engine.runner import grade
from support import ROOT, assert_contained

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REFERENCE = ROOT / "reference" / "ift6135_vit_lstm"


def grade_with(tmp_path, prepend=None, append=None, **options):
    """Grade the reference with code added at the top or the bottom of its files."""
    sub = tmp_path / "upload"
    sub.mkdir()
    for path in REFERENCE.glob("*.py"):
        text = path.read_text()
        text = (prepend or {}).get(path.name, "") + text + (append or {}).get(path.name, "")
        (sub / path.name).write_text(text)
    started = time.monotonic()
    result = grade("ift6135_vit_lstm", sub, device="cpu", seed=3, **options)
    result.wall = time.monotonic() - started
    assert_contained(result, secrets=())
    assert not result.grader_error
    return result


def failing(result):
    return {t.number for t in result.tests if not t.passed}


def part(result, prefix):
    return [t for t in result.tests if t.number.startswith(prefix)]


def test_os_exit_at_import_sinks_only_that_file(tmp_path):
    result = grade_with(tmp_path, prepend={"lstm_solution.py": "import os\nos._exit(0)\n"})
    assert failing(result) == {t.number for t in part(result, "1.")}
    assert result.score == 28
    assert all("exited with code 0" in t.output for t in part(result, "1."))


def test_sys_exit_inside_mha_forward(tmp_path):
    patch = ("\ndef _exit_forward(self, hidden_states):\n    import sys\n    sys.exit(0)\n"
             "MultiHeadedAttention.forward = _exit_forward\n")
    result = grade_with(tmp_path, append={"vit_solution.py": patch})
    bad = failing(result)
    assert "2.5.2" in bad and "sys.exit(0)" in next(t.output for t in result.tests if t.number == "2.5.2")
    assert not any(n.startswith(("1.", "2.1.", "2.2.", "2.3.", "2.4.", "2.6.", "2.9.")) for n in bad)


def test_infinite_loop_in_layernorm_times_out_and_the_rest_is_graded(tmp_path):
    patch = "\ndef _spin(self, inputs):\n    while True:\n        pass\nLayerNorm.forward = _spin\n"
    result = grade_with(tmp_path, append={"vit_solution.py": patch}, time_scale=0.1)
    assert all(not t.passed and "time limit" in t.output for t in part(result, "2.1."))
    assert all(t.passed for t in part(result, "1.") + part(result, "2.2.") + part(result, "2.3."))
    assert result.wall < 120


def test_patched_comparisons_and_zero_attention_fail(tmp_path):
    patch = ("\nimport math, numpy\n"
             "torch.allclose = lambda *a, **k: True\n"
             "torch.equal = lambda *a, **k: True\n"
             "torch.testing.assert_close = lambda *a, **k: None\n"
             "math.isclose = lambda *a, **k: True\n"
             "MultiHeadedAttention.get_attention_weights = "
             "lambda self, q, k: torch.zeros(q.shape[0], q.shape[1], q.shape[2], k.shape[2])\n")
    result = grade_with(tmp_path, append={"vit_solution.py": patch})
    assert all(not t.passed for t in part(result, "2.3."))
    assert all(t.passed for t in part(result, "1.") + part(result, "2.1.") + part(result, "2.2."))


def test_lying_tensor_subclass_from_get_patches_fails(tmp_path):
    patch = ("\nclass _Liar(torch.Tensor):\n"
             "    @classmethod\n"
             "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
             "        return True\n"
             "_real_patches = VisionTransformer.get_patches\n"
             "def _lying_patches(self, image, patch_size, flatten_channels=True):\n"
             "    return _real_patches(self, image, patch_size, flatten_channels).as_subclass(_Liar)\n"
             "VisionTransformer.get_patches = _lying_patches\n")
    result = grade_with(tmp_path, append={"vit_solution.py": patch})
    patches = part(result, "2.6.")
    assert patches and all(not t.passed for t in patches)
    assert any("expected a torch.Tensor" in t.output for t in patches)


def test_printing_fake_results_and_pass_lines_changes_nothing(tmp_path):
    noise = 'print(\'{"score": 1000, "tests": []}\')\nprint("PASSED " * 50)\n'
    result = grade_with(tmp_path, prepend={"vit_solution.py": noise, "lstm_solution.py": noise})
    assert result.score == 37
