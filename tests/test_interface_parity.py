"""Reference and template share one interface: same public names, signatures and defaults."""
import importlib.util
import inspect
import sys

import pytest

from autograder.engine import registry
from support import ROOT


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Files may import their siblings by flat name (cs224n's `import attention`): the file's own
    # folder is importable while it loads, and the siblings it imported are forgotten afterwards.
    folder = str(path.parent)
    before = set(sys.modules)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
        for added in set(sys.modules) - before:
            if str(getattr(sys.modules[added], "__file__", None) or "").startswith(folder):
                del sys.modules[added]
    return module


def public_interface(module):
    """{qualified name: signature text} of the public classes, functions and methods defined in module."""
    out = {}
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj):
            out[name] = str(inspect.signature(obj))
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                func = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                if inspect.isfunction(func):
                    out[f"{name}.{attr}"] = f"{type(member).__name__}{inspect.signature(func)}"
        elif inspect.isfunction(obj):
            out[name] = str(inspect.signature(obj))
    return out


# Notebook exports are not importable modules; tests/test_uw_notebooks_in_sync.py compares them by AST.
CASES = [(a, f.name) for a in registry.names() for f in registry.load_assignment(a).files if f.loader == "module"]


@pytest.mark.parametrize("assignment,filename", CASES)
def test_reference_and_template_share_one_interface(assignment, filename):
    ref = load(ROOT / "reference" / assignment / filename, f"ref_{assignment}_{filename[:-3]}")
    tpl = load(ROOT / "student_template" / assignment / filename, f"tpl_{assignment}_{filename[:-3]}")
    ref_api, tpl_api = public_interface(ref), public_interface(tpl)
    assert ref_api, f"{filename} defines no public interface"
    assert ref_api == tpl_api
