"""Importing an instructor's file (a suite, its helpers, an assignment config) under a private
module name, once per process. Standard library only: the grader imports it before torch."""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path


def import_private(path: Path, module_name: str) -> types.ModuleType:
    """Import the file ``path`` as ``module_name`` (cached; a failed import leaves nothing behind)."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module
