"""Running a batch's jobs on a Dask distributed cluster (``--cluster tcp://host:port``).

Each job (the submission's bytes, no shared disk needed) runs ``batch_job.grade_one`` on a
worker, which grades it in a child process exactly as a local batch does; the worker
needs this grader installed. Dask is an optional extra (``pip install autograder[cluster]``),
imported only here.
"""
from __future__ import annotations

from typing import Callable

from autograder.batch.inputs import BadBatchInput
from autograder.batch.job import Job, grade_one
from autograder.batch.model import GRADER_ERROR, Outcome


def _client(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise BadBatchInput("--cluster needs Dask: pip install 'autograder[cluster]' "
                            "(or pip install dask distributed)") from None
    try:
        return Client(address, timeout=30)
    except (OSError, TimeoutError) as exc:
        raise BadBatchInput(f"could not reach the Dask scheduler at {address}: {exc}") from None


def run_on_cluster(address: str, jobs: list[Job], done: Callable[[Outcome], None]) -> None:
    """Submit every job to the cluster at ``address``; ``done`` is called here as each one finishes."""
    from distributed import as_completed

    client = _client(address)
    try:
        futures = {client.submit(grade_one, job, key=f"autograder-{job.assignment}-{job.key}", pure=False): job
                   for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                done(future.result())
            except Exception as exc:   # noqa: BLE001 - a lost worker fails that submission only
                done(Outcome(job.key, GRADER_ERROR, None, repr(exc), 0.0, f"the cluster could not grade it: {exc}"))
    finally:
        client.close()
