"""The worker-side notebook loader, on exports shaped like real Colab downloads.

(These fixtures are ours, so running them in the test process is fine; in grading the
loader only ever runs inside a worker.)
"""
import time

import torch

from autograder.untrusted.notebook_loader import load_notebook

EXPORT = '''# -*- coding: utf-8 -*-
"""# A2S1

Markdown cell turned into a string.
"""
!pip install -q gdown
%matplotlib inline
import torch
import gdown_is_not_installed
DEVICE = 'cpu'
K = torch.eye(3)
m_key = K.clone()
m_key[2] = torch.tensor([1.0, 2.0, 3.0])
check_query(m_key)
m_key = K.clone()
with torch.no_grad():
    m_key[2] = torch.tensor([0.0, 0.0, 1.0])
def graded(x):
    return 2 * x
broken = (
def other():
    return 1
def graded(x):
    return 3 * x
for epoch in range(10**9):
    train()
main()
slow = [i for i in range(10**10)]
boom = 1 / 0
import sys
exit_value = sys.exit(3)
DEVICE = 'cuda'
'''


def load(tmp_path, text=EXPORT, **options):
    path = tmp_path / "nb.py"
    path.write_text(text)
    started = time.monotonic()
    result = load_notebook(str(path), f"nb_{abs(hash(str(tmp_path)))}", device="cpu", **options)
    result.wall = time.monotonic() - started
    return result


def test_export_hazards_are_survived_and_explained(tmp_path):
    result = load(tmp_path, keep_first=("graded",), watch=("m_key",))
    mod = result.module
    assert mod.graded(2) == 4 and mod.other() == 1 and mod.DEVICE == "cpu"
    notes = "\n".join(result.notes)
    for expected in ("does not parse", "gdown_is_not_installed", "not run when grading: check_query(m_key)",
                     "first definition (line 18) is the one graded", "not run when grading: for epoch",
                     "not run when grading: main()", "stopped after", "ZeroDivisionError", "SystemExit",
                     "DEVICE = 'cuda'"):
        assert expected in notes, expected
    assert result.wall < 10


def test_each_binding_of_a_watched_name_is_recorded(tmp_path):
    history = load(tmp_path, watch=("m_key",)).history["m_key"]
    assert [h[2].tolist() for h in history] == [[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]]


def test_without_keep_first_the_last_definition_wins(tmp_path):
    assert load(tmp_path).module.graded(2) == 6


def test_clean_file_loads_without_notes(tmp_path):
    result = load(tmp_path, "import torch\nX = torch.ones(2)\ndef f():\n    return X.sum()\n")
    assert result.notes == [] and float(result.module.f()) == 2.0


def test_a_statement_that_hit_the_time_cap_is_skipped_by_later_workers(tmp_path):
    text = "import torch\nX = torch.ones(2)\nslow = [i for i in range(10**10)]\n"
    first = load(tmp_path, text)
    second = load(tmp_path, text)
    assert any("stopped after" in n for n in first.notes)
    assert any("when first loaded" in n for n in second.notes)
    assert second.wall < 1.0 and float(second.module.X.sum()) == 2.0
