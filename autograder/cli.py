"""The ``autograder`` command: one verb per workflow.

  autograder list                                   assignment names, one per line
  autograder grade ASSIGNMENT SUBMISSION [--results PATH]
                                                    grade a folder, zip or file; print a table
  autograder check [ASSIGNMENT] [PATH]              a student's local run of the visible tests
  autograder verify ASSIGNMENT [--mutants]          reference full marks, template zero, points add up;
                                                    --mutants: the suite's mutation score
  autograder build ASSIGNMENT [-o DIR]              Gradescope zip and student bundle
  autograder batch ASSIGNMENT SUBMISSIONS [-o DIR]  grade a whole class (parallel, resumable)
  autograder gradescope                             what run_autograder runs on Gradescope
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder import settings
from autograder.engine import registry   # stdlib only: importable before torch
from autograder.engine.isolation.backend import pool_for


def _known(assignment: str) -> bool:
    if assignment in registry.names():
        return True
    print(f"autograder: {registry.unknown_message(assignment)}", file=sys.stderr)
    return False


def _cmd_list(args) -> int:
    for name in registry.names():
        print(name)
    return 0


def _cmd_grade(args) -> int:
    if not _known(args.assignment):
        return 2
    if args.submission == "-":      # the path in the environment (batch: kept off the command line)
        args.submission = settings.current().submission
    if not args.submission or not Path(args.submission).exists():
        print(f"autograder: {args.submission or 'the submission'} does not exist", file=sys.stderr)
        return 2
    with pool_for(args.assignment) as pool:
        if args.isolation != "none":
            pool.start()   # first: the fork server imports torch while this process does the same (below)
        from autograder.engine.formats import gradescope_json, table
        from autograder.engine.runner import grade
        in_process = None
        if args.isolation == "none":    # the benchmark's floor: student code in this very process
            from functools import partial
            from autograder.worker.worker import Worker
            in_process = partial(Worker, guard_bans=False)
        result = grade(args.assignment, Path(args.submission), device=args.device, seed=args.seed, pool=pool,
                       in_process=in_process, reference=_reference(args.assignment))
    if args.results:
        gradescope_json.write(result, Path(args.results))
    print(table.render(result, details=args.details, title=f"{args.assignment}: {args.submission}"))
    if args.results:
        print(f"  results.json written to {args.results}")
    return 1 if result.grader_error else 0


def _reference(assignment: str):
    """The student bundle replays the reference's recorded answers; elsewhere the engine's default."""
    from autograder.engine import deploy
    if deploy.kind() != "student_bundle":
        return None
    from autograder.instructor.check import reference_source
    return reference_source(assignment)


def _cmd_gradescope(args) -> int:
    from autograder.gradescope.entry import run
    return run(args.device)


def _cmd_verify(args) -> int:
    if not _known(args.assignment):
        return 2
    with pool_for(args.assignment) as pool:
        pool.start()   # first: the fork server imports torch while this process does the same (verify)
        from autograder.instructor.verify import render, report_mutants, verify
        checks, info = verify(args.assignment, device=args.device, pool=pool)
    print(render(args.assignment, checks, info), flush=True)
    code = 0 if all(c.ok for c in checks) else 1
    if args.mutants:
        code = max(code, report_mutants(args.assignment, max_mutants=args.max, jobs=args.jobs, device=args.device))
    return code


def _cmd_check(args) -> int:
    from autograder.instructor.check import check, resolve

    try:
        assignment, path = resolve(args.words)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return check(assignment, path, device=args.device, details=args.details)


def _cmd_batch(args) -> int:
    from autograder.batch.inputs import BadBatchInput
    from autograder.batch.run import BatchOptions, run_batch

    options = BatchOptions(regrade=args.regrade, timeout_s=args.timeout, device=args.device,
                           cluster=args.cluster, plots=not args.no_plots, similarity=not args.no_similarity,
                           similarity_threshold=args.similarity_threshold)
    if args.workers is not None:
        options.workers = args.workers
    try:
        records = run_batch(args.assignment, Path(args.submissions), Path(args.output), options)
    except BadBatchInput as exc:
        print(f"autograder batch: {exc}", file=sys.stderr)
        return 2
    return 0 if all(r.status == "graded" for r in records) else 1


def _cmd_build(args) -> int:
    from autograder.instructor.build import build, parse_rate_limit, server_decided

    if not _known(args.assignment):
        return 2
    try:
        rate_limit = parse_rate_limit(args.rate_limit) if args.rate_limit else None
    except ValueError as exc:
        print(f"autograder: {exc}", file=sys.stderr)
        return 2
    upload, bundle = build(args.assignment, Path(args.output), rate_limit)
    print(f"Gradescope autograder zip: {upload}\nstudent bundle:            {bundle}")
    if not args.quick:
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
    p.add_argument("--mutants", action="store_true",
                   help="then grade mutants of the reference and print the suite's mutation score")
    p.add_argument("--max", type=int, metavar="N", help="at most N mutants (default 40)")
    p.add_argument("-j", "--jobs", type=int, metavar="J", help="gradings at once (default: the number of cores)")
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
    p.add_argument("--no-plots", action="store_true", help="skip scores.png, pass_rates.png and similarity.png")
    p.add_argument("--no-similarity", action="store_true",
                   help="skip comparing submissions' code (similarity.txt/.png; never part of any score)")
    p.add_argument("--similarity-threshold", type=float, default=0.5, metavar="X",
                   help="list pairs at least this similar, 0 to 1, given code excluded (default: 0.5)")
    p.set_defaults(func=_cmd_batch)

    p = sub.add_parser("gradescope", help="grade $AUTOGRADER_ROOT/submission as Gradescope does")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.set_defaults(func=_cmd_gradescope)

    args = parser.parse_args(argv)
    if getattr(args, "device", None) == "cuda" and not _cuda_available():
        print(f"autograder {args.command}: --device cuda was asked for, but CUDA is not available on this "
              "machine (torch.cuda.is_available() is False); use --device cpu or auto", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except ModuleNotFoundError as exc:   # a deliverable ships only the verbs it runs
        if not (exc.name or "").startswith("autograder."):
            raise
        print(f"autograder {args.command}: not part of this installation ({exc.name} is not shipped here); "
              "run it from the project's checkout", file=sys.stderr)
        return 2


def _cuda_available() -> bool:
    """Whether this machine can grade on CUDA (imports torch: only asked when cuda is requested)."""
    import torch
    return bool(torch.cuda.is_available())


if __name__ == "__main__":
    sys.exit(main())
