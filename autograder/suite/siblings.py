"""``sibling(__file__, "span")``: a suite's own helper module, imported once, privately.

Suite folders are not packages: a test module reaches a helper file beside it (``span.py``,
``tiny_roberta.py``) with ``sibling``, which imports it under the private name
``_autograder_suites.<assignment>.<module>`` (the folder name is the assignment), so two
assignments' helpers of the same name never collide and each is imported once per process.
"""
from __future__ import annotations

import types
from pathlib import Path

from autograder.common.private_import import import_private


def sibling(test_file: str, module: str) -> types.ModuleType:
    """The helper module ``module`` (``"span"`` for ``span.py``) beside ``test_file`` (pass ``__file__``)."""
    folder = Path(test_file).resolve().parent
    return import_private(folder / f"{module}.py", f"_autograder_suites.{folder.name}.{module}")
