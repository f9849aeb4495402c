"""A warm grading process for a batch: grades one submission after another with one fork server.

``python -m autograder.batch.warm ASSIGNMENT DEVICE REPLY_FD`` reads jobs from stdin, one JSON
object a line: ``{"submission": path, "results": path}`` (paths on stdin and in this process's
environment, ``AUTOGRADER_SUBMISSION``, as for a cold grading; never on a command line others can
read). The first job starts the worker pool before anything else (the fork server imports torch
while this process does). Each job is graded by the usual engine (``runner.grade``, isolated
workers, as ``autograder grade`` does) and written to its ``results``; the grading's table goes to
stdout (the submission's grader.log) and ``{"done": true}`` to ``REPLY_FD``. EOF on stdin ends it.

What it saves per submission is only what carries nothing of a submission: this interpreter, the
grader's torch import and suites, and the fork server (which never runs student code). The walls
between submissions are a fresh grading's: every test still runs in a fresh worker, and between
two submissions ``WorkerPool.recycle`` drops the spare worker, kills every process of the worker
user and removes what it left (shared folders, SysV IPC), as acquiring the user for a new
grading does; each grading stages the submission into a folder of its own, removed afterwards.
The batch's per-submission cap kills this whole process (``batch.job``), as it kills a cold grading.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path


def main(argv: list[str]) -> int:
    assignment, device, reply_fd = argv[0], argv[1], int(argv[2])
    reply = os.fdopen(reply_fd, "w", buffering=1)
    pool = None
    try:
        for line in sys.stdin:
            job = json.loads(line)
            os.environ["AUTOGRADER_SUBMISSION"] = job["submission"]   # as for a cold grading process
            if pool is None:   # the first job (sent as soon as this process starts)
                from autograder.engine.isolation.backend import pool_for
                pool = pool_for(assignment)
                pool.start()   # first: the fork server imports torch while this process does (below)
                from autograder.engine.formats import gradescope_json, table
                from autograder.engine.runner import grade
            try:
                result = grade(assignment, Path(job["submission"]), device=device, pool=pool)
                gradescope_json.write(result, Path(job["results"]))
                print(table.render(result, title=f"{assignment}: {job['submission']}"), flush=True)
            finally:
                pool.recycle()        # nothing of this submission reaches the next one's workers
            reply.write(json.dumps({"done": True}) + "\n")
    finally:
        if pool is not None:
            pool.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception:   # noqa: BLE001 - the parent sees this process end and reports the submission
        traceback.print_exc()
        sys.exit(1)
