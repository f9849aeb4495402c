"""The ``autograder`` command: one verb per workflow.

  autograder list                                   assignment names, one per line
  autograder grade ASSIGNMENT SUBMISSION [--results PATH]
                                                    grade a folder, zip or file; print a table
  autograder check [ASSIGNMENT] [PATH]              a student's local run of the visible tests
  autograder verify ASSIGNMENT                      reference full marks, template zero, points add up
  autograder build ASSIGNMENT [-o DIR]              Gradescope zip and student bundle
  autograder batch ASSIGNMENT SUBMISSIONS [-o DIR]  grade a whole class (parallel, resumable)
  autograder gradescope                             what run_autograder runs on Gradescope
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

from autograder.trusted.workers import WorkerPool, new_pool   # stdlib only: importable before torch

DEPLOY_CONFIG = Path(__file__).resolve().parent / "deploy.json"


def _pool_for(assignment: str) -> WorkerPool:
    """A worker pool whose fork server preloads the assignment's libraries (no torch import here)."""
    from autograder.trusted import registry
    try:
        libraries = registry.load_assignment(assignment).libraries
    except Exception:   # noqa: BLE001 - an unknown assignment is reported by the command itself
        libraries = ()
    return new_pool(libraries)


def _cmd_list(args) -> int:
    from autograder.trusted import registry
    for name in registry.names():
        print(name)
    return 0


def _cmd_grade(args) -> int:
    with _pool_for(args.assignment) as pool:
        if args.isolation == "process":
            pool.start()   # the fork server imports torch while this process does the same
        return _grade_and_report(args, pool)


def _grade_and_report(args, pool: WorkerPool) -> int:
    from autograder.trusted import registry
    from autograder.trusted.formats import gradescope_json, table
    from autograder.trusted.runner import grade

    if args.assignment not in registry.names():
        print(f"autograder: unknown assignment {args.assignment!r}; known: {', '.join(registry.names())}",
              file=sys.stderr)
        return 2
    if args.submission == "-":      # the path in the environment (batch: kept off the command line)
        args.submission = os.environ.get("AUTOGRADER_SUBMISSION", "")
    if not args.submission or not Path(args.submission).exists():
        print(f"autograder: {args.submission or 'the submission'} does not exist", file=sys.stderr)
        return 2
    result = grade(args.assignment, Path(args.submission), device=args.device, isolation=args.isolation,
                   seed=args.seed, pool=pool)
    if args.results:
        gradescope_json.write(result, Path(args.results))
    print(table.render(result, details=args.details, title=f"{args.assignment}: {args.submission}"))
    if args.results:
        print(f"  results.json written to {args.results}")
    return 1 if result.grader_error else 0


def _cmd_gradescope(args) -> int:
    """Grade /autograder/submission into /autograder/results/results.json; always writes the file."""
    root = Path(os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    if not (root / "submission").is_dir():
        print(f"autograder gradescope: {root / 'submission'} is not a folder: this is not a Gradescope "
              "autograder root (set AUTOGRADER_ROOT to one), so nothing was graded or written; "
              "to grade an upload here, use `autograder grade ASSIGNMENT PATH`", file=sys.stderr)
        return 2
    _private_to_the_grader(root / "submission_metadata.json")
    try:
        assignment = json.loads(DEPLOY_CONFIG.read_text())["assignment"]
    except Exception:   # noqa: BLE001 - _gradescope reports it in results.json
        assignment = "unknown"
    with _pool_for(assignment) as pool:
        pool.start()
        return _gradescope(args, pool)


def _private_to_the_grader(path: Path) -> None:
    """Gradescope's metadata holds earlier results, hidden tests included: only the grader (root)
    reads it, before any worker exists (the rate limit reads it later, as root)."""
    try:
        os.chmod(path, 0o600)
    except OSError:
        pass


def _gradescope(args, pool: WorkerPool) -> int:
    from autograder.trusted import rate_limit
    from autograder.trusted.formats import gradescope_json, table
    from autograder.trusted.results import grader_error_result
    from autograder.trusted.runner import grade

    root = Path(os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    results = root / "results" / "results.json"
    started = time.monotonic()
    assignment = "unknown"
    try:
        config = json.loads(DEPLOY_CONFIG.read_text())
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
            result = grade(assignment, root / "submission", device=args.device, on_progress=write_partial, pool=pool)
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


def _cmd_verify(args) -> int:
    from autograder.trusted import registry
    from autograder.trusted.verify import render, verify

    if args.assignment not in registry.names():
        print(f"autograder: unknown assignment {args.assignment!r}; known: {', '.join(registry.names())}",
              file=sys.stderr)
        return 2
    with _pool_for(args.assignment) as pool:
        pool.start()
        checks, info = verify(args.assignment, device=args.device, pool=pool)
    print(render(args.assignment, checks, info))
    return 0 if all(c.ok for c in checks) else 1


def _cmd_check(args) -> int:
    """The student's local check: the visible tests, in the same isolated engine, offline."""
    from autograder.trusted import registry

    words = list(args.words)
    known = registry.names()
    assignment = words.pop(0) if words and words[0] in known else None
    path = Path(words.pop(0) if words else ".")
    if words or not path.exists():
        print("usage: autograder check [ASSIGNMENT] [PATH]" if words else f"autograder: {path} does not exist",
              file=sys.stderr)
        return 2
    if assignment is None:
        found = registry.detect(path)
        if not found:
            print(f"autograder: no assignment's files found in {path}; name one of: {', '.join(known)}",
                  file=sys.stderr)
            return 2
        assignment = found[0]
    with _pool_for(assignment) as pool:
        pool.start()
        return _check(args, assignment, path, pool)


def _check(args, assignment: str, path: Path, pool: WorkerPool) -> int:
    from autograder.suite.decorators import attribute
    from autograder.trusted import registry
    from autograder.trusted.build import HIDDEN_SUMMARY
    from autograder.trusted.formats import table
    from autograder.trusted.results import GradingResult
    from autograder.trusted.runner import _method, collect_tests, grade

    result = grade(assignment, path, device=args.device, visible_only=True, pool=pool)
    hidden = [m for m in map(_method, collect_tests(assignment))
              if attribute(m, "__visibility__", "visible") != "visible"]
    server = [t for t in result.tests if t.extra.get("decided_on_server")]
    local = GradingResult(assignment, [t for t in result.tests if t not in server], result.output,
                          result.execution_time, result.grader_error, result.extra,
                          result.total_points, result.extra_credit)
    print(table.render(local, details=args.details, title=f"{assignment}: visible tests on {path}",
                       audience="student"))
    if server:
        print(f"  {len(server)} visible tests ({sum(t.max_score for t in server):g} points) need more of the "
              "reference solution than its recorded answers, or data that stay on the server: they are "
              "decided there, after you submit:")
        for t in server:
            print(f"    {t.number or '':<8}  SERVER  {t.max_score:g} pts  {t.name}")
    count, points = len(hidden), sum(float(attribute(m, "__weight__", 0) or 0) for m in hidden)
    stripped = registry.suite_dir(assignment) / HIDDEN_SUMMARY      # the student bundle's record of them
    if not hidden and stripped.is_file():
        recorded = json.loads(stripped.read_text())
        count, points = int(recorded["tests"]), float(recorded["points"])
    if count:
        print(f"  {count} hidden tests ({points:g} points) are not run here: they are decided on the "
              "server, after you submit.")
    return 0 if all(t.passed for t in local.tests) and not result.grader_error else 1


def _cmd_batch(args) -> int:
    from autograder.trusted.batch import BatchOptions, run_batch
    from autograder.trusted.batch_inputs import BadBatchInput

    options = BatchOptions(regrade=args.regrade, timeout_s=args.timeout, device=args.device,
                           cluster=args.cluster, plots=not args.no_plots)
    if args.workers is not None:
        options.workers = args.workers
    try:
        records = run_batch(args.assignment, Path(args.submissions), Path(args.output), options)
    except BadBatchInput as exc:
        print(f"autograder batch: {exc}", file=sys.stderr)
        return 2
    return 0 if all(r.status == "graded" for r in records) else 1


def _cmd_build(args) -> int:
    from autograder.trusted import registry
    from autograder.trusted.build import build

    if args.assignment not in registry.names():
        print(f"autograder: unknown assignment {args.assignment!r}; known: {', '.join(registry.names())}",
              file=sys.stderr)
        return 2
    rate_limit = None
    if args.rate_limit:
        try:
            count, hours = args.rate_limit.lower().rstrip("h").split("/")
            rate_limit = {"submissions": int(count), "window_hours": float(hours)}
            if rate_limit["submissions"] < 1 or rate_limit["window_hours"] <= 0:
                raise ValueError
        except ValueError:
            print(f"autograder: --rate-limit takes N/HOURS (e.g. 3/24h), not {args.rate_limit!r}", file=sys.stderr)
            return 2
    upload, bundle = build(args.assignment, Path(args.output), rate_limit)
    print(f"Gradescope autograder zip: {upload}\nstudent bundle:            {bundle}")
    if not args.quick:
        from autograder.trusted.build import server_decided
        undecided = server_decided(args.assignment, bundle)
        print(f"visible tests the bundle's check leaves to the server: {len(undecided) or 'none'}")
        for test, why in undecided.items():
            print(f"  {test}: {why}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autograder", description="Grade attention/transformer assignments.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list the assignments")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("grade", help="grade one submission (folder, zip or file)")
    p.add_argument("assignment")
    p.add_argument("submission", help="a folder, zip or file; - reads its path from AUTOGRADER_SUBMISSION")
    p.add_argument("--results", help="write results.json here")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--isolation", default="process", choices=["process", "none"],
                   help="'none' runs student code in this process: only for measuring the floor")
    p.add_argument("--seed", type=int, help="seed for hidden tests' inputs (default: drawn per run)")
    p.add_argument("--details", action="store_true", help="print every failing test's full output")
    p.set_defaults(func=_cmd_grade)

    p = sub.add_parser("verify", help="check an assignment before uploading it (reference full, template zero)")
    p.add_argument("assignment")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("check", help="run the visible tests on your work, as the server will")
    p.add_argument("words", nargs="*", metavar="[ASSIGNMENT] [PATH]",
                   help="assignment (detected from the files when omitted) and folder (default: .)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--details", action="store_true", help="print every failing test's full output")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("build", help="write the Gradescope autograder zip and the student bundle")
    p.add_argument("assignment")
    p.add_argument("-o", "--output", default="build", help="folder for the two zips (default: build)")
    p.add_argument("--rate-limit", metavar="N/HOURS",
                   help="grade at most N submissions per student in any HOURS window (default: no limit)")
    p.add_argument("--quick", action="store_true",
                   help="skip listing the visible tests the student bundle cannot decide (two gradings)")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("batch", help="grade a whole class: Gradescope's export, or one folder or zip per student")
    p.add_argument("assignment")
    p.add_argument("submissions", help="Gradescope's export (zip or folder) or a folder of submissions")
    p.add_argument("-o", "--output", default="build/batch", help="results folder (default: build/batch)")
    p.add_argument("-j", "--workers", type=int, help="submissions graded at once (default: the number of cores)")
    p.add_argument("--timeout", type=float, default=600.0, help="wall-time cap per submission, seconds (600)")
    p.add_argument("--regrade", action="store_true", help="grade again submissions already graded in --output")
    p.add_argument("--cluster", metavar="tcp://HOST:PORT", help="grade on this Dask scheduler's workers")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--no-plots", action="store_true", help="skip scores.png and pass_rates.png")
    p.set_defaults(func=_cmd_batch)

    p = sub.add_parser("gradescope", help="grade $AUTOGRADER_ROOT/submission as Gradescope does")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.set_defaults(func=_cmd_gradescope)

    args = parser.parse_args(argv)
    if getattr(args, "device", None) == "cuda" and not _cuda_available():
        print(f"autograder {args.command}: --device cuda was asked for, but CUDA is not available on this "
              "machine (torch.cuda.is_available() is False); use --device cpu or auto", file=sys.stderr)
        return 2
    return args.func(args)


def _cuda_available() -> bool:
    """Whether this machine can grade on CUDA (imports torch: only asked when cuda is requested)."""
    import torch
    return bool(torch.cuda.is_available())


if __name__ == "__main__":
    sys.exit(main())
