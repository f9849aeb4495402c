"""The worker-side notebook loader, on exports shaped like real Colab downloads.

(These fixtures are ours, so running them in the test process is fine; in grading the
loader only ever runs inside a worker.)
"""
import json
from pathlib import Path

import pytest
import torch

from autograder.common import notebook_loader
from autograder.common.notebook_loader import load_notebook

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

TEMPLATE = Path(__file__).resolve().parents[1] / "student_template" / "uw_attention"
HANDOUT_K = [[0.47, 0.65, 0.60], [0.64, 0.50, -0.59], [-0.03, -0.48, -0.88], [0.43, -0.83, 0.35]]
HANDOUT_V = [[-0.07, -0.88, 0.47], [0.37, -0.93, -0.07], [-0.25, -0.75, 0.61], [0.94, 0.20, 0.28]]


def load(tmp_path, text=EXPORT, name="nb.py", **options):
    path = tmp_path / name
    path.write_text(text)
    return load_notebook(str(path), f"nb_{abs(hash(str(path)))}", device="cpu", **options)


def test_export_hazards_are_survived_and_explained(tmp_path):
    result = load(tmp_path, keep_first=("graded",), watch=("m_key",))
    mod = result.module
    assert mod.graded(2) == 4 and mod.other() == 1 and mod.DEVICE == "cpu"
    notes = "\n".join(result.notes)
    for expected in ("does not parse", "gdown_is_not_installed", "`check_query(m_key)`: raised NameError",
                     "first definition (line 18) is the one graded", "`for epoch in range(10**9):`: raised NameError",
                     "`main()`: raised NameError", "`slow = [i for i in range(10**10)]`: stopped after",
                     "ZeroDivisionError", "SystemExit", "DEVICE = 'cuda'"):
        assert expected in notes, (expected, notes)


def test_top_level_calls_and_in_place_operations_run(tmp_path):
    """The given setup cell of A2S1 gives the handout's K and V only when every statement runs."""
    mod = load(tmp_path, (TEMPLATE / "A2S1.py").read_text()).module
    assert mod.key.tolist() == torch.tensor(HANDOUT_K).tolist()
    assert mod.value.tolist() == torch.tensor(HANDOUT_V).tolist()


def test_watched_name_records_rebindings_calls_and_the_end(tmp_path):
    history = load(tmp_path, watch=("m_key",)).history["m_key"]
    assert [(e["event"], e["line"]) for e in history] == [("call", 14), ("rebound", 15), ("final", 32)]
    assert history[0]["function"] == "check_query"
    assert [e["value"][2].tolist() for e in history] == [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.0, 0.0, 1.0]]


def test_value_at_the_check_is_kept_when_edited_in_place_afterwards(tmp_path):
    text = ("import torch\nm_key = torch.zeros(4, 3)\nm_key[2] = 1.0\nprint(check(m_key))\n"
            "m_key[2] = 2.0\ncheck(3, key=m_key)\n")
    history = load(tmp_path, "def check(*a, **k):\n    return 0\n" + text, watch=("m_key",)).history["m_key"]
    calls = [(e["function"], float(e["value"][2, 0])) for e in history if e["event"] == "call"]
    assert calls == [("check", 1.0), ("check", 2.0)] and float(history[-1]["value"][2, 0]) == 2.0


def test_without_keep_first_the_last_definition_wins(tmp_path):
    assert load(tmp_path).module.graded(2) == 6


def test_keep_first_survives_rebinding_by_assignment_import_and_blocks(tmp_path):
    text = ("def graded():\n    return 1\ngraded = None\nfrom os.path import join as graded\n"
            "if True:\n    def graded():\n        return 2\nlate = graded()\n")
    result = load(tmp_path, text, keep_first=("graded",))
    assert result.module.graded() == 1 and result.module.late == 1
    assert sum("rebinds graded" in n for n in result.notes) == 3, result.notes


def test_clean_file_loads_without_notes(tmp_path):
    result = load(tmp_path, "import torch\nX = torch.ones(2)\ndef f():\n    return X.sum()\n")
    assert result.notes == [] and float(result.module.f()) == 2.0


def test_a_statement_that_hit_the_time_cap_is_skipped_by_later_workers(tmp_path):
    text = "import torch\nX = torch.ones(2)\nslow = [i for i in range(10**10)]\nY = 3\n"
    first = load(tmp_path, text)
    second = load(tmp_path, text)
    assert any("stopped after" in n for n in first.notes)
    assert any("when first loaded" in n for n in second.notes)
    assert float(second.module.X.sum()) == 2.0 and second.module.Y == 3


def test_the_load_budget_bounds_a_file_of_many_slow_statements(tmp_path, monkeypatch):
    """Past the budget only definitions and imports run; later workers stop at the same line."""
    monkeypatch.setattr(notebook_loader, "STATEMENT_TIME_CAP_S", 0.5)
    monkeypatch.setattr(notebook_loader, "LOAD_BUDGET_S", 0.5)
    naps = "".join(f"nap{i} = time.sleep(0.2)\n" for i in range(8))
    text = f"import time\n{naps}def graded():\n    return 1\nlast = 1\n"
    first = load(tmp_path, text)
    assert first.module.graded() == 1 and not hasattr(first.module, "last")
    assert any("load budget" in n for n in first.notes), first.notes
    second = load(tmp_path, text)
    assert not hasattr(second.module, "last") and any("load budget" in n for n in second.notes)
    ran_first = {n for n in vars(first.module) if n.startswith("nap")}
    assert {n for n in vars(second.module) if n.startswith("nap")} <= ran_first


def test_ipython_syntax_is_handled_as_ipython_does(tmp_path):
    text = '''import torch
%%time
timed = torch.ones(2)

%%bash
echo not python
ls -la

def gpu_name():
    info = !nvidia-smi -L
    return info

pwd = %pwd
get_ipython().system('pip install x')
get_ipython().run_cell_magic('time', '', 'from_nbconvert = 5\\nalso = from_nbconvert + 1\\n')
'''
    result = load(tmp_path, text)
    mod = result.module
    assert mod.timed.tolist() == [1.0, 1.0] and mod.gpu_name() == [] and mod.pwd is None
    assert mod.from_nbconvert == 5 and mod.also == 6
    assert not any("parse" in n for n in result.notes), result.notes


def test_cell_magics_in_a_percent_export_end_at_the_next_cell(tmp_path):
    text = "# %%\n%%writefile helper.py\nimport os\n\nos.remove('x')\n# %%\nafter = 1\n"
    result = load(tmp_path, text)
    assert result.module.after == 1 and result.notes == []


def test_notebook_front_ends_are_substituted(tmp_path):
    text = '''from tqdm.notebook import tqdm
from tqdm.auto import trange
import tqdm as tqdm_module
from IPython.display import display, clear_output, HTML, Markdown

def run(items):
    total = 0
    with tqdm(items, desc="Train", total=len(items)) as tq:
        for x in tq:
            total += x
            tq.set_postfix({"loss": x})
    clear_output(wait=True)
    display(HTML("<b>done</b>"), Markdown("**done**"))
    return total + sum(trange(2)) + len(list(tqdm_module.notebook.tqdm(range(3))))

shell = get_ipython()
displayed = display("shown")
'''
    result = load(tmp_path, text)
    assert result.notes == [], result.notes
    assert result.module.run([1, 2, 3]) == 6 + 1 + 3
    assert result.module.displayed is None and result.module.shell.getoutput("ls") == []


def test_output_while_loading_is_discarded(tmp_path, capsys):
    load(tmp_path, "for i in range(3):\n    print('noise', i)\nX = 1\n")
    assert "noise" not in capsys.readouterr().out


@pytest.mark.parametrize("hazard", ["input('name? ')", "import antigravity_not_here", "raise KeyboardInterrupt"])
def test_a_statement_that_raises_anything_is_skipped(tmp_path, hazard):
    result = load(tmp_path, f"{hazard}\nafter = 2\n")
    assert result.module.after == 2 and len(result.notes) == 1 and "skipped" in result.notes[0]


# -- .ipynb files of every nbformat version (read on the trusted side, as data) -------------
def _v4(cells):
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}


def _code(source, key="source"):
    return {"cell_type": "code", key: source, "metadata": {}, "outputs": []}


def test_ipynb_v4_cells_become_a_loadable_module(tmp_path):
    from autograder.engine.intake.notebook import notebook_to_module
    nb = _v4([{"cell_type": "markdown", "source": ["# Title\n", "%% not a magic in markdown\n"]},
              _code(["!pip install torch\n", "import torch\n", "X = torch.ones(2)"]),
              _code("%%time\nY = X * 2\n"),
              _code(["%%bash\n", "rm -rf /\n", "\n", "echo still bash\n"]),
              _code("def f():\n    out = !ls\n    return out\nZ = 1\n")])
    source = notebook_to_module(json.dumps(nb).encode())
    assert "Title" not in source and "pip install torch" in source
    mod = load(tmp_path, source).module
    assert mod.Y.tolist() == [2.0, 2.0] and mod.f() == [] and mod.Z == 1


def test_ipynb_v3_worksheets_are_read(tmp_path):
    from autograder.engine.intake.notebook import notebook_to_module
    nb = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": "A2S1"},
          "worksheets": [{"cells": [
              {"cell_type": "heading", "level": 1, "source": ["A2S1"]},
              {"cell_type": "code", "language": "python", "collapsed": False, "outputs": [],
               "input": ["import torch\n", "torch.manual_seed(447)\n", "key = torch.randn(4, 3)\n",
                         "key /= torch.norm(key, dim=1, keepdim=True)\n", "key.round_(decimals=2)"]},
              {"cell_type": "markdown", "source": "some text"},
              {"cell_type": "code", "language": "python", "input": "%matplotlib inline\nfirst = key[0]\n",
               "outputs": []}]}]}
    mod = load(tmp_path, notebook_to_module(json.dumps(nb).encode())).module
    assert mod.first.tolist() == torch.tensor(HANDOUT_K[0]).tolist()


def test_ipynb_v1_and_garbage(tmp_path):
    from autograder.engine.intake.notebook import NotebookError, notebook_to_module
    v1 = {"nbformat": 1, "cells": [{"cell_type": "code", "code": "A = 7\n"}, {"cell_type": "text", "text": "x"}]}
    assert load(tmp_path, notebook_to_module(json.dumps(v1).encode())).module.A == 7
    for bad in (b"\x00\xff", b"[1, 2]", json.dumps({"nbformat": 4}).encode(),
                json.dumps(_v4([_code(12)])).encode()):
        with pytest.raises(NotebookError):
            notebook_to_module(bad)


def test_the_statement_cap_works_without_sigalrm(monkeypatch):
    """Windows has no SIGALRM/setitimer (the portable backend): the cap comes from a timer thread."""
    import signal
    import time
    from autograder.common import notebook_loader
    monkeypatch.delattr(signal, "setitimer")
    started = time.monotonic()
    with pytest.raises(notebook_loader._StatementTimeout):
        with notebook_loader._time_cap(0.2):
            while time.monotonic() - started < 30:    # without the cap: no exception, the test fails
                pass


def test_the_inert_ipython_satisfies_libraries_that_probe_it():
    """matplotlib reads ``IPython.version_info`` when IPython is imported: the stand-in answers."""
    from autograder.common.notebook_frontends import _InertModule
    stand_in = _InertModule("IPython")
    assert stand_in.version_info[:2] >= (8, 24)
    assert stand_in.display("x") is None and stand_in.get_ipython() is None


def test_a_statement_is_described_by_its_first_line_as_ast_would_cut_it():
    """``_Loader.describe`` splits the file once; it names what ``ast.get_source_segment`` names,
    with \\r\\n, \\r and form feeds in the file and non-ASCII text before the statement."""
    import ast
    import types
    from autograder.common.notebook_loader import _Loader

    source = ('x = 1\r\ny = "é" ; z = 2\rif True:\n    pass\n\x0cw = 3\nprint("ü", 1)\n'
              'class A:\n    """doc"""\n    a = [1,\n 2]\n' + "t = '" + "long " * 20 + "'\n")
    loader = _Loader(types.ModuleType("m"), "m.py", source, (), (), None)
    for stmt in (s for s in ast.walk(ast.parse(source)) if isinstance(s, ast.stmt)):
        first = ast.get_source_segment(source, stmt).strip().splitlines()[0]
        assert loader.describe(stmt) == f"line {stmt.lineno} `{first[:70]}{' ...' if len(first) > 70 else ''}`"
