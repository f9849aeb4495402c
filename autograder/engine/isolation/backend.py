"""Which worker pool a grading uses: the fork server (Linux, the server's) or the portable one.

``new_pool`` is where every grading makes its pool; ``pool_for`` preloads an assignment's libraries
and the modules its starter code imports.
"""
from __future__ import annotations

import sys

from autograder import settings
from autograder.engine.isolation.portable_pool import PortableWorkerPool
from autograder.engine.isolation.workers import WorkerPool

BACKEND_VARIABLE = "AUTOGRADER_WORKERS"   # "fork" (Linux, the server's) or "portable" (any OS)


def backend() -> str:
    """The worker backend new pools use: AUTOGRADER_WORKERS, else "fork" on Linux, "portable" elsewhere."""
    chosen = settings.current().workers
    if chosen in ("fork", "portable"):
        return chosen
    if chosen:
        raise ValueError(f"{BACKEND_VARIABLE} must be 'fork' or 'portable', not {chosen!r}")
    return "fork" if sys.platform == "linux" else "portable"


def new_pool(libraries: tuple[str, ...] = (), **options) -> "WorkerPool":
    """A worker pool of the backend this machine uses (see ``backend``); every grading makes its pool here.
    ``options``: those of ``WorkerPool`` (``preload``, ``memory_limit_mib``, ``output_cap``)."""
    if backend() == "portable":
        return PortableWorkerPool(libraries=libraries, **options)
    return WorkerPool(libraries=libraries, **options)


def pool_for(assignment: str, **options) -> "WorkerPool":
    """``new_pool`` whose fork server preloads the assignment's libraries and ``preload`` modules
    (an unknown assignment: none; the caller reports it). Imports no torch here."""
    from autograder.engine import registry
    try:
        loaded = registry.load_assignment(assignment)
        libraries, preload = loaded.libraries, loaded.preload
    except Exception:   # noqa: BLE001 - an unknown or broken assignment is reported by the caller
        libraries, preload = (), ()
    return new_pool(libraries, preload=preload, **options)
