"""Fixtures shared by the project's tests. Helpers live in tests/support.py: import them from there."""
import pytest

from support import MINI_PROJECT


@pytest.fixture
def mini_project(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_PROJECT", str(MINI_PROJECT))
    return MINI_PROJECT


@pytest.fixture(scope="session")
def assignment_pools():
    """``assignment_pools(name)``: a started worker pool for gradings of the project's assignment
    ``name``, made once per session (per xdist worker) and closed at its end.

    A pool's only assignment-specific state is the libraries its fork server preloads, so
    assignments with the same libraries (and the same worker backend) share one pool. Each
    grading still gets a fresh worker per test; a fork server killed by a submission is
    restarted by the pool. Tests that grade hostile code against the worker user (red team,
    isolation) make their own pools: ``support.assert_contained`` checks the worker user's
    processes once its grading released it, which a session-long pool never does.
    """
    from autograder.engine.isolation.backend import backend, new_pool
    from autograder.engine.registry import load_assignment
    pools = {}

    def pool(assignment: str):
        loaded = load_assignment(assignment)
        key = (backend(), tuple(loaded.libraries), tuple(loaded.preload))
        if key not in pools:
            pools[key] = new_pool(key[1], preload=key[2]).start()
        return pools[key]

    yield pool
    for started in pools.values():
        started.close()
