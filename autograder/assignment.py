"""What an assignment declares: the files students submit, its points and its bans.

Each assignment has ``test_suites/<name>/assignment.py`` defining ``ASSIGNMENT``; the
test modules ``test_*.py`` beside it hold the graded unittest cases.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SubmissionFile:
    """One file students hand in, staged under ``name`` whatever it was called.

    ``aliases`` are other names the handout or starter code used; ``.ipynb`` versions of
    any of the names are accepted and converted to a module.

    ``loader="notebook"`` loads a notebook export statement by statement instead of importing
    it (see ``autograder.common.notebook_loader``): shell lines, top-level calls and loops
    are not run, a broken cell does not sink the rest, ``keep_first`` names keep their first
    definition, and every value assigned to a ``watch`` name is recorded in order.
    ``expected_names`` are the graded names the file should define (for clear messages).

    ``loader="data"`` files (data, parameter files, predictions) are staged as bytes and never
    imported. ``provided`` is the path of a pristine copy of a file students are given and must
    not change (or data the grader brings): that copy is always the one staged, and a
    submitted file that differs from it is reported in the output.
    """
    name: str
    aliases: tuple[str, ...] = ()
    max_bytes: int = 2_000_000
    loader: str = "module"                   # "module" | "notebook" | "data"
    keep_first: tuple[str, ...] = ()
    watch: tuple[str, ...] = ()
    expected_names: tuple[str, ...] = ()
    provided: str = ""                       # pristine copy staged instead of the student's

    @property
    def module(self) -> str:
        return self.name.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Ban:
    """Functions students may not use in part of one file.

    ``scope`` names the classes or functions of ``file`` the ban covers (empty: the whole
    file). ``names`` are dotted API names caught by the static scan, however imported or
    aliased; ``runtime_ops`` are substrings of op names caught by the worker's op log
    while a test with ``@enforce_ban(key)`` runs.
    """
    key: str
    file: str
    names: tuple[str, ...]
    runtime_ops: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Assignment:
    name: str
    title: str
    files: tuple[SubmissionFile, ...]
    total_points: float
    bans: tuple[Ban, ...] = ()
    default_time_limit: float = 60.0
    extra_credit: tuple[str, ...] = ()      # numbers of tests whose points come on top of total_points
    libraries: tuple[str, ...] = ()         # installed packages tests may use in the worker (self.library),
                                            # imported by the fork server once, before it forks
    preload: tuple[str, ...] = ()           # installed modules the starter code imports (matplotlib.pyplot):
                                            # the fork server imports them once, so no test's worker pays
                                            # for them; not reachable through self.library

    def file(self, name: str) -> SubmissionFile:
        for f in self.files:
            if f.name == name or f.module == name:
                return f
        raise KeyError(name)

    def ban(self, key: str) -> Ban:
        for b in self.bans:
            if b.key == key:
                return b
        raise KeyError(f"assignment {self.name} declares no ban {key!r}")
