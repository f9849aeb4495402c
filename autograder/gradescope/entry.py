"""What ``run_autograder`` runs on Gradescope: grade ``$AUTOGRADER_ROOT/submission`` into
``results/results.json``. The file is always written, valid, whatever the submission does."""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

from autograder import settings
from autograder.engine import deploy
from autograder.engine.isolation.backend import pool_for
from autograder.engine.isolation.workers import WorkerPool


def run(device: str = "auto") -> int:
    """Grade the Gradescope root named by ``AUTOGRADER_ROOT`` (default ``/autograder``); 0 once
    results.json is written, 2 when the root is not a Gradescope root (nothing written)."""
    root = settings.current().root
    if not (root / "submission").is_dir():
        print(f"autograder gradescope: {root / 'submission'} is not a folder: this is not a Gradescope "
              "autograder root (set AUTOGRADER_ROOT to one), so nothing was graded or written; "
              "to grade an upload here, use `autograder grade ASSIGNMENT PATH`", file=sys.stderr)
        return 2
    _private_to_the_grader(root / "submission_metadata.json")
    try:
        assignment = deploy.read().assignment
    except Exception:   # noqa: BLE001 - _grade reports it in results.json
        assignment = "unknown"
    with pool_for(assignment) as pool:
        pool.start()
        return _grade(root, device, pool)


def _private_to_the_grader(path: Path) -> None:
    """Gradescope's metadata holds earlier results, hidden tests included: only the grader (root)
    reads it, before any worker exists (the rate limit reads it later, as root)."""
    try:
        os.chmod(path, 0o600)
    except OSError:
        pass


def _grade(root: Path, device: str, pool: WorkerPool) -> int:
    from autograder.engine.formats import gradescope_json, table
    from autograder.engine.results import grader_error_result
    from autograder.engine.runner import grade
    from autograder.gradescope import rate_limit

    results = root / "results" / "results.json"
    started = time.monotonic()
    assignment = "unknown"
    try:
        config = json.loads(deploy.PATH.read_text())
        assignment = config["assignment"]
        limit = rate_limit.check(config, root / "submission_metadata.json")    # None: no limit configured

        def write_partial(partial):   # a crash of the grader still leaves the tests done so far
            try:
                gradescope_json.write_atomic(results, gradescope_json.render(partial))
            except OSError as exc:    # a full disk: grading goes on, the final write tries again
                print(f"autograder: partial results.json not written ({exc})", file=sys.stderr)

        if limit is not None and not limit.allowed:
            result = rate_limit.apply(limit, limit.carried)
        else:
            result = grade(assignment, root / "submission", device=device, on_progress=write_partial, pool=pool)
            if limit is not None:
                result = rate_limit.apply(limit, result)
    except Exception:   # noqa: BLE001
        result = grader_error_result(assignment, traceback.format_exc())
        result.execution_time = time.monotonic() - started
    try:
        text = gradescope_json.render(result)
    except Exception:   # noqa: BLE001 - even rendering failed: fall back to the minimal valid file
        text = gradescope_json.render(grader_error_result(assignment, traceback.format_exc()))
    gradescope_json.write_atomic(results, text)
    print(table.render(result, details=True, title=f"{assignment}: {root / 'submission'}"))
    return 0
