"""Substitutes for notebook-only front ends, installed in the worker before a notebook loads.

A grading machine has no Jupyter kernel and no widgets. What a notebook gets instead:

- ``tqdm.notebook`` and ``tqdm.auto`` (and ``tqdm.autonotebook``) are plain ``tqdm``: the
  widget bar needs ipywidgets ("IProgress not found") and its destructor then fails again;
  the plain bar iterates, counts, takes ``set_postfix`` and works as a context manager.
- ``IPython`` (when it is not installed) is an inert package: ``from IPython.display import
  display, clear_output, HTML, Markdown`` and any other name import; calling them does
  nothing. ``get_ipython()`` returns ``None`` there, like outside a kernel.
- ``namespace()``: what a kernel puts in a notebook's globals: ``display`` (inert) and
  ``get_ipython()``, an inert shell whose ``system``/``getoutput``/``run_line_magic``/
  ``run_cell_magic`` run nothing (``getoutput`` answers ``[]``). The rewritten lines
  ``x = !cmd`` and nbconvert's ``get_ipython().system(...)`` call it.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types


class _Inert:
    """Accepts any construction, call or attribute; does nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return None

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert()

    def __repr__(self):
        return "<inert notebook front end>"


def _inert_function(*args, **kwargs):
    return None


class InertShell:
    """What ``get_ipython()`` returns in a loaded notebook: shell lines and magics run nothing."""

    def system(self, *args, **kwargs):
        return None

    def getoutput(self, *args, **kwargs):
        return []

    def run_line_magic(self, *args, **kwargs):
        return None

    def run_cell_magic(self, *args, **kwargs):
        return None

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _inert_function


_SHELL = InertShell()


def get_ipython() -> InertShell:
    return _SHELL


def namespace() -> dict:
    """Names a notebook kernel defines in every notebook's globals."""
    return {"get_ipython": get_ipython, "display": _inert_function}


class _InertModule(types.ModuleType):
    """A stand-in module: functions of IPython.display are inert, any other name an inert class."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name in ("display", "clear_output", "update_display", "publish_display_data"):
            return _inert_function
        if name == "get_ipython":
            return lambda: None
        if name == "version_info":      # libraries probing IPython (matplotlib) see a recent one
            return (99, 0, 0)
        return _Inert


class _InertIPythonFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``IPython`` and ``IPython.*`` as inert modules (used only when IPython is absent)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "IPython" or fullname.startswith("IPython."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _InertModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def _plain_tqdm_modules() -> None:
    try:
        import tqdm
        import tqdm.std as std
    except ImportError:
        return
    for name in ("notebook", "auto", "autonotebook"):
        module = types.ModuleType(f"tqdm.{name}")
        module.__doc__ = "Plain tqdm standing in for a notebook front end (see autograder.common.notebook_frontends)."
        module.tqdm = std.tqdm
        module.trange = std.trange
        module.tqdm_notebook = std.tqdm
        module.tnrange = std.trange
        module.TqdmExperimentalWarning = getattr(std, "TqdmExperimentalWarning", Warning)
        module.__all__ = ["tqdm", "trange"]
        sys.modules[module.__name__] = module
        setattr(tqdm, name, module)
    tqdm.tqdm_notebook = std.tqdm
    tqdm.tnrange = std.trange


def install() -> None:
    """Put the substitutes in place in this process (idempotent)."""
    _plain_tqdm_modules()
    if not any(isinstance(f, _InertIPythonFinder) for f in sys.meta_path):
        if "IPython" not in sys.modules and importlib.util.find_spec("IPython") is None:
            sys.meta_path.append(_InertIPythonFinder())
