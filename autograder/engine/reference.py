"""Where ``self.reference(module)`` gets the course's solution: stated by the caller, never guessed.

The engine is given a ``ReferenceSource`` (``GradingOptions.reference``):

* ``InstalledReference`` (the default): the reference files installed beside the suites
  (a checkout, the Gradescope zip), imported in the grading process.
* the student bundle's replay and the build's recording, both in
  ``autograder.instructor.reference_replay``: the same two-method protocol.

``bundle`` tells the engine that the suite's server-side data are absent by design, so a test
that cannot open one is decided on the server rather than counted as a grader error.
"""
from __future__ import annotations

from typing import Protocol

from autograder.engine import registry


class ReferenceNotShipped(Exception):
    """A test asked for the reference where none is available (the student bundle's check)."""


class ReferenceSource(Protocol):
    bundle: bool   # True: server-only data and the reference's code are absent by design

    def module(self, assignment: str, module: str) -> object:
        """What ``self.reference(module)`` returns; raises ReferenceNotShipped when there is none."""


class InstalledReference:
    """The reference files under ``reference/<assignment>/``, imported here (instructor code)."""
    bundle = False

    def module(self, assignment: str, module: str) -> object:
        if not (registry.reference_dir(assignment) / f"{module}.py").is_file():
            raise ReferenceNotShipped(module)
        return registry.reference_module(assignment, module)
