"""What the fork server imports before any test: each assignment's ``libraries`` and ``preload``.

A module the starter code imports and the fork server has not imported is paid for again by
every test's worker (matplotlib.pyplot: about 0.4 s per test of uw_attention's A2S1).
"""
import ast
import importlib.util
import shutil
import sys

import pytest

from autograder.common.notebook_source import parse_skipping_broken_blocks
from autograder.engine import registry
from autograder.engine.isolation.backend import new_pool
from support import ask, readable_folder

WARMED_UP = ("torch", "numpy")   # the fork server's own warm-up (worker.zygote.warm_up)


def starter_imports(assignment: str) -> set[str]:
    """Dotted names of the installed, non-standard modules the starter's files import at top level."""
    folder = registry.template_dir(assignment)
    own = {p.stem for p in folder.iterdir()}
    names = set()
    for path in folder.glob("*.py"):
        for node in parse_skipping_broken_blocks(path.read_text(), path.name).body:   # notebooks' ! lines too
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return {n for n in names
            if n.split(".")[0] not in sys.stdlib_module_names and n.split(".")[0] not in own
            and n.split(".")[0] not in WARMED_UP and importlib.util.find_spec(n.split(".")[0]) is not None}


@pytest.mark.parametrize("assignment", registry.names())
def test_what_the_starter_imports_is_imported_once_by_the_fork_server(assignment):
    loaded = registry.load_assignment(assignment)
    warm = set(loaded.libraries) | set(loaded.preload)
    missing = sorted(n for n in starter_imports(assignment) if n not in warm)
    assert not missing, (f"{assignment}'s starter imports {missing}, which every test's worker would import "
                         f"again: add them to the assignment's preload (it has {sorted(warm)})")


@pytest.mark.parametrize("assignment", registry.names())
def test_the_server_installs_what_the_starter_imports(assignment):
    """build's requirements.txt pins the distributions of ``preload`` too: on the server the
    notebook's own imports work as they did in Colab and on the student's machine."""
    from importlib import metadata
    from autograder.instructor.requirements_lock import locked
    pins = locked(assignment)
    provided = metadata.packages_distributions()
    for module in registry.load_assignment(assignment).preload:
        dists = {d.lower().replace("_", "-") for d in provided.get(module.split(".")[0], ())}
        assert dists and dists & set(pins), f"{module} ({sorted(dists)}) is not in {assignment}'s requirements"


def _value(reply: dict):
    assert reply.get("ok"), reply
    return reply["value"]


def test_a_worker_finds_the_preloaded_modules_already_imported():
    folder = readable_folder("preload-", {"probe.py": "import sys\nSEEN = ['tabnanny' in sys.modules, "
                                                      "'mailbox' in sys.modules]\n"})
    try:
        with new_pool((), preload=("tabnanny",)) as pool:
            worker = pool.spawn(str(folder), {"probe": {"loader": "module"}}, "cpu")
            try:
                module = _value(ask(worker, {"op": "import", "module": "probe", "keep": True}))
                seen = _value(ask(worker, {"op": "getattr", "target": module["ref"], "name": "SEEN"}))
            finally:
                worker.kill()
    finally:
        shutil.rmtree(folder)
    assert seen == {"list": [True, False]} or seen == [True, False], seen
