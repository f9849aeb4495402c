"""The pinned package set an assignment grades with, written by ``build`` as ``requirements.txt``.

``locked(assignment)`` is the closure, over the installed distributions' own requirements,
of the grader's dependencies (``pyproject.toml``'s, no extras) and of the distributions that
provide the assignment's declared ``libraries``, each pinned to the version installed where
``build`` runs (the environment the reference was verified and recorded in). Local version
labels are dropped (``2.13.0+cpu`` pins ``torch==2.13.0``: the CPU-only index and PyPI
serve the same version under their own labels). Two builds from the same environment give
the same file, whenever they run. Instructor-side only: nothing here runs at grading time.
"""
from __future__ import annotations

import re
import sys
from importlib import metadata

HEADER = ("# python {python}: pinned by `autograder build {assignment}` from the environment the reference\n"
          "# was verified in. Install with: pip install -r requirements.txt (setup.sh does).\n")
PYTHON_LINE = re.compile(r"^# python (\d+\.\d+):", re.M)


def python_of(text: str) -> str | None:
    """The Python version a requirements.txt written here was pinned on."""
    match = PYTHON_LINE.search(text)
    return match.group(1) if match else None


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _version(dist: metadata.Distribution) -> str:
    return dist.version.split("+", 1)[0]


def _requirements(dist: metadata.Distribution, extras: set[str] = frozenset()) -> list[str]:
    """Names of what ``dist`` requires in this environment (markers evaluated, extras as given)."""
    from packaging.requirements import Requirement
    names = []
    for text in dist.requires or ():
        req = Requirement(text)
        if req.marker is not None:
            envs = [{"extra": e} for e in (extras or {""})]
            if not any(req.marker.evaluate(env) for env in envs):
                continue
        names.append(req.name)
    return names


def _providers(modules: tuple[str, ...]) -> set[str]:
    """Distributions that provide the top-level packages of ``modules`` (``transformers.models``...)."""
    provided = metadata.packages_distributions()
    return {dist for module in modules for dist in provided.get(module.split(".")[0], ())}


def locked(assignment: str) -> dict[str, str]:
    """``{canonical name: version}`` of every distribution grading ``assignment`` needs."""
    from autograder.engine import registry
    roots = _requirements(metadata.distribution("autograder"))
    loaded = registry.load_assignment(assignment)
    roots += sorted(_providers(loaded.libraries + loaded.preload))   # what tests and the starter import
    pins: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = _canonical(todo.pop())
        if name in pins or name == "autograder":
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise RuntimeError(f"{name} is needed to grade {assignment} but is not installed here, so it "
                               "cannot be pinned: install the assignment's libraries and preload, verify, then build") from None
        pins[name] = _version(dist)
        todo.extend(_requirements(dist))
    return dict(sorted(pins.items()))


def requirements_txt(assignment: str) -> bytes:
    python = ".".join(map(str, sys.version_info[:2]))
    lines = [HEADER.format(assignment=assignment, python=python)]
    lines += [f"{name}=={version}\n" for name, version in locked(assignment).items()]
    return "".join(lines).encode()
