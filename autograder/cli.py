"""``python -m autograder``: release, references, round, check, collect, grade, feedback, export, report,
formgrader, cluster (``--help`` on each)."""
from __future__ import annotations

import argparse
import os
import sys

from pathlib import Path

from .batch import GradingRefused
from .cluster import ClusterError
from .collect import CollectError
from .course import Course
from .deadlines import ConfigError
from .lms import ExportError
from .roster import RosterError
from .spec import SpecError


def _common(default) -> argparse.ArgumentParser:
    """Options accepted before or after the command (after it, they must not reset what came before)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--course", metavar="DIR", default=default,
                        help="course root holding solutions/ and exercises/ (default: $AUTOGRADER_COURSE, "
                             "else the repository root)")
    common.add_argument("--work", metavar="DIR", default=default,
                        help="instructor's working area: submitted/, autograded/, feedback/, gradebook, "
                             "private/ (default: COURSE/course)")
    common.add_argument("--db-url", metavar="URL", default=default,
                        help="SQLAlchemy URL of the nbgrader gradebook (default: sqlite WORK/gradebook.db "
                             "with a 30 s busy timeout)")
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__, parents=[_common(None)])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("release", parents=[common], help="regenerate exercises/ from solutions/ (nbgrader)",
                       description="Regenerate exercises/<assignment>/ with nbgrader generate_assignment.")
    p.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    p.add_argument("--check", action="store_true",
                   help="do not write: fail if exercises/ differs from what would be generated")

    p = sub.add_parser("references", parents=[common], help="compute and store the hidden references",
                       description="Compute the reference outputs of every part's hidden cases (torch, "
                                   "float64) and store them in private/references/.")
    p.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None,
                   help="torch device for the references (default: autograder.toml's, else auto)")

    p = sub.add_parser("round", parents=[common], help="show or start a grading round (hidden cases change)",
                       description="A grading round is an explicit instructor action (a new deadline, a "
                                   "resubmission window): hidden cases are drawn from the secret and the round, so "
                                   "they change with every round and stay the same within one.")
    p.add_argument("action", choices=("show", "new"), help="show the rounds, or start a new one")
    p.add_argument("--name", default="", help="what the new round is for (e.g. 'resubmission')")

    p = sub.add_parser("cluster", parents=[common], help="certificates for a secure Dask cluster",
                       description="Write a private CA and TLS certificates for the scheduler, the workers and "
                                   "the grader (client) into WORK/private/tls (or --out).")
    p.add_argument("action", choices=("certs",))
    p.add_argument("--out", metavar="DIR", default=None, help="folder for the certificates")
    p.add_argument("--host", action="append", default=None,
                   help="a host name or IP the scheduler and workers are reached at (repeatable; "
                        "default: localhost and 127.0.0.1)")

    p = sub.add_parser("check", parents=[common], help="self-check a notebook on public cases",
                       description="Run a notebook through the grading pipeline on PUBLIC cases; prints "
                                   "per-part results. Exit status 0 when every part passes.")
    p.add_argument("notebook", help="path to the .ipynb (renamed copies are fine: the assignment is found "
                                    "from the notebook's graded cells)")
    p.add_argument("--assignment", help="assignment name, when the notebook's cells cannot tell")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    p.add_argument("--no-public-tests", action="store_true",
                   help="only record the answers (skip running the whole notebook for its public tests)")

    p = sub.add_parser("collect", parents=[common], help="fill submitted/ from an LMS download",
                       description="Fill submitted/<student>/<assignment>/ from a Canvas or Moodle bulk download "
                                   "(zip) or a plain folder; notebooks are matched to their assignment by their "
                                   "cells. Prints what could not be placed.")
    p.add_argument("source", help="the downloaded zip, or a folder")
    p.add_argument("--roster", metavar="CSV", default=None,
                   help="the class list to install (id, first_name, last_name, name, email, sis_id, lms_id, "
                        "login_id, section); default: the course's WORK/roster.csv")
    p.add_argument("--lms", choices=("canvas", "moodle", "folder"), default=None,
                   help="the download's layout (default: recognised from its file names)")
    p.add_argument("--assignment", default=None,
                   help="the assignment this download is for (notebooks of another assignment are reported)")
    p.add_argument("--worksheet", metavar="CSV", default=None,
                   help="Moodle's grading worksheet of the assignment (e-mail addresses, submission times)")
    p.add_argument("--times", metavar="FILE", default=None,
                   help="submission times: Canvas's submissions API JSON, or a CSV (student, submitted)")
    p.add_argument("--timezone", default=None,
                   help="time zone of dates without an offset (Moodle's worksheet; default: [course] timezone)")
    p.add_argument("--locale", default="en", help="language of Moodle's worksheet dates (default en)")
    p.add_argument("--max-total-mb", type=int, default=None,
                   help="refuse downloads unpacking to more notebook data than this (default 2048)")

    p = sub.add_parser("grade", parents=[common], help="autograde submissions",
                       description="Autograde submitted/<student>/<assignment>/ into autograded/ and the "
                                   "gradebook. Ends with a summary; the full log is in WORK/logs/.")
    p.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    p.add_argument("--student", action="append", help="only this student (repeatable)")
    p.add_argument("--dry-run", action="store_true",
                   help="list what would be graded and what could not be matched; run nothing")
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run the jobs on this Dask distributed scheduler (tls://HOST:PORT) instead of local workers")
    p.add_argument("--regrade", action="store_true",
                   help="grade every submission, even those unchanged since their last result")
    p.add_argument("--allow-unsealed", action="store_true",
                   help="grade even where the students' code cannot be sealed (no root, no namespaces or "
                        "cgroups): only for notebooks you trust")
    p.add_argument("--allow-insecure-cluster", action="store_true",
                   help="accept a tcp:// scheduler (no TLS): only on a network no student can reach")
    p.add_argument("--no-worker-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="give up when the cluster has had no worker for this long (default 60)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None,
                   help="device for references computed on the fly (default: autograder.toml's, else auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("feedback", parents=[common], help="write per-student HTML feedback",
                       description="Write feedback/<student>/<assignment>/<notebook>.html from stored results.")
    p.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    p.add_argument("--student", action="append", help="only this student (repeatable)")

    p = sub.add_parser("export", parents=[common], help="write the grades CSV (long, or an LMS import file)",
                       description="Grades of every roster student: auto + manual points - late penalty. "
                                   "long: one row per student x assignment with parts, penalty and status; "
                                   "canvas, moodle, gradescope: the platform's import format. Lists the "
                                   "assignments graded, past due or released unless --assignment/--all.")
    p.add_argument("--format", choices=("long", "canvas", "moodle", "gradescope"), default="long")
    p.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    p.add_argument("--all", action="store_true", help="every assignment, even those not handed out yet")
    p.add_argument("--template", metavar="CSV", default=None,
                   help="canvas: the course's gradebook export; moodle: an assignment's grading worksheet")
    p.add_argument("--output", metavar="CSV", default=None,
                   help="output file (default: WORK/grades.csv, WORK/grades-<format>.csv)")

    p = sub.add_parser("report", parents=[common], help="write the class report (HTML, figures, similarity)",
                       description="One HTML page per assignment: score histogram, per-part pass rate, the most "
                                   "frequent diagnoses, late and flagged submissions, and code similarity "
                                   "between students and with mlp_lib and the solutions. Never changes a score.")
    p.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    p.add_argument("--output", metavar="DIR", default=None, help="output folder (default: WORK/report)")

    p = sub.add_parser("formgrader", parents=[common], help="start Jupyter with nbgrader's formgrader (manual grading)",
                       description="Start a Jupyter server at the course root with nbgrader's formgrader, whose "
                                   "Autograde and Generate feedback buttons run this grader. Open /formgrader.")
    p.add_argument("--port", type=int, default=8888)
    p.add_argument("--browser", action="store_true", help="open a browser")
    return parser


class UsageError(ValueError):
    """A mistake in what the user asked for: printed as one line, exit status 2."""


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        course = Course.open(args.course, work=args.work, db_url=args.db_url)
        if not course.source_dir.is_dir():
            raise UsageError(f"{course.root} is not a course: it has no {course.source_dir.name}/ folder "
                             "(pass --course DIR or set AUTOGRADER_COURSE)")
        private = args.command in ("grade", "references", "feedback", "export", "round", "cluster", "collect",
                                   "report", "formgrader")
        # results, references, gradebook: readable by the grader's user only
        old_umask = os.umask(0o077) if private else None
        try:
            return _run(course, args)
        finally:
            if old_umask is not None:
                os.umask(old_umask)
    except (UsageError, SpecError, FileNotFoundError, GradingRefused, ClusterError, ConfigError, RosterError,
            CollectError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _run(course: Course, args) -> int:
    command = args.command
    if command == "release":
        return _release(course, args)
    if command == "references":
        return _references(course, args)
    if command == "check":
        from .selfcheck import check_notebook, report

        result = check_notebook(course, args.notebook, assignment=args.assignment, device=args.device,
                                error=UsageError, public_tests=not args.no_public_tests)
        print(report(result))
        return 0 if all(v.status == "passed" for v in result.parts.values()) else 1
    if command == "collect":
        return _collect(course, args)
    if command == "grade":
        return _grade(course, args)
    if command == "round":
        from . import rounds

        if args.action == "new":
            entry = rounds.start_new(course, args.name)
            print(f"grading round {entry['id']} started: hidden cases are new from now on "
                  "(run `references` to store them)")
        for entry in rounds.history(course):
            mark = "*" if entry["id"] == rounds.current(course) else " "
            print(f"{mark} round {entry['id']}  {entry['started'] or '(course start)'}  {entry['name']}")
        return 0
    if command == "cluster":
        from .cluster import make_certificates

        out = Path(args.out) if args.out else course.tls_dir
        written = make_certificates(out, hosts=tuple(args.host or ("localhost", "127.0.0.1")))
        print(f"wrote {len(written)} files to {out}: ca.pem, and scheduler/worker/client .pem + -key.pem "
              "(keep the keys private; see autograder/README.md for the dask commands)")
        return 0
    if command == "feedback":
        from .feedback import write_all

        paths = write_all(course, assignments=args.assignment, students=args.student)
        print(f"wrote {len(paths)} feedback pages under {course.feedback_dir}")
        return 0
    if command == "export":
        from .export import write

        try:
            path, warnings = write(course, args.output, fmt=args.format, assignments=args.assignment,
                                   everything=args.all, template=args.template)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"wrote {path}")
        return 0
    if command == "report":
        from .report import write_report

        pages = write_report(course, assignments=args.assignment, output=args.output)
        for page in pages:
            print(f"wrote {page}")
        return 0
    if command == "formgrader":
        from .formgrader import server_command

        cmd = server_command(course, port=args.port, browser=args.browser)
        print(f"starting Jupyter at {course.root}; grade by hand at http://localhost:{args.port}/formgrader")
        os.chdir(course.root)                  # nbgrader reads nbgrader_config.py from the working directory
        os.execv(cmd[0], cmd)
    raise AssertionError(command)


def _collect(course: Course, args) -> int:
    from . import roster as roster_mod
    from .collect import DEFAULT_MAX_TOTAL_MB, collect

    if args.roster:
        path = roster_mod.install(course, args.roster)
        print(f"roster: {args.roster} -> {path}")
    roster = roster_mod.load(course)
    rep = collect(course, args.source, roster=roster, lms=args.lms, assignment=args.assignment,
                  worksheet=args.worksheet, times=args.times, timezone=args.timezone, locale=args.locale,
                  max_total_mb=args.max_total_mb or DEFAULT_MAX_TOTAL_MB)
    for line in rep.lines():
        print(line)
    print(f"log: {rep.log}")
    return 0


def _grade(course: Course, args) -> int:
    import time

    from . import summary
    from .spec import load_spec

    known = course.submitted_students()
    for student in args.student or []:
        if student not in known:
            raise UsageError(f"no student {student!r} in {course.submitted_dir} (known: "
                             f"{', '.join(known[:8])}{', ...' if len(known) > 8 else ''})")
    for name in args.assignment or []:
        if name not in course.assignments():
            load_spec(course, name)                  # the spec loader's one-line error
    assignments = args.assignment or course.assignments()
    students = args.student or known
    if args.dry_run:
        for line in summary.plan(course, assignments, students):
            print(line)
        return 0
    from .batch import grade

    start = time.monotonic()
    rep = grade(course, assignments=args.assignment, students=args.student, workers=args.workers,
                scheduler=args.scheduler, device=args.device, progress=not args.no_progress,
                regrade=args.regrade, allow_unsealed=args.allow_unsealed,
                allow_insecure_cluster=args.allow_insecure_cluster, no_worker_timeout=args.no_worker_timeout)
    for res in rep.graded:
        score = "pending" if res.status.pending else f"{res.score:g}/{res.max_score:g}"
        print(f"{res.student:20s} {res.assignment:32s} {score:>10s}  {res.status}")
    lines, blocked = summary.finish(course, rep, assignments, students, seconds=time.monotonic() - start)
    for line in lines:
        print(line, file=sys.stderr if rep.errors or rep.interrupted else sys.stdout)
    # 130: interrupted; 2: grader-side errors; 1: some submissions wait for the instructor (two notebooks for one)
    return 130 if rep.interrupted else 2 if not rep.ok else 1 if blocked else 0


def _release(course: Course, args) -> int:
    from . import release

    if not course.assignments() and not args.assignment:
        print(f"no assignments in {course.source_dir} (nothing to release)")
        if args.check:
            problems = release.check(course)
            for p in problems:
                print(f"  {p}")
            return 1 if problems else 0
        return 0
    if args.check:
        problems = release.check(course, args.assignment)
        if problems:
            print("exercises/ is out of date:")
            for p in problems:
                print(f"  {p}")
            return 1
        print("exercises/ matches solutions/")
        return 0
    for name in release.release(course, args.assignment):
        print(f"released {name} -> {course.release_dir / name}")
    return 0


def _references(course: Course, args) -> int:
    from . import references, rounds
    from .spec import load_spec

    for name in args.assignment or course.assignments():
        spec = load_spec(course, name)
        device = references.resolve_device(args.device or course.device)
        seed = rounds.hidden_seed(course)
        data = references.compute(spec, seed, device)
        references.store(course, spec, data, seed=seed, device=device, round_id=rounds.current(course))
        cases = sum(len(d.cases) for d in data.values())
        print(f"{name}: {len(data)} parts, {cases} hidden cases of round {rounds.current(course)}, references on {device} -> "
              f"{course.references_dir / (name + '.npz')}")
    return 0
