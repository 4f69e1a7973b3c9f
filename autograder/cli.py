"""``python -m autograder``: release, references, check, grade, feedback, export (``--help`` on each)."""
from __future__ import annotations

import argparse
import os
import sys

from .course import Course
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

    p = sub.add_parser("check", parents=[common], help="self-check a notebook on public cases",
                       description="Run a notebook through the grading pipeline on PUBLIC cases; prints "
                                   "per-part results. Exit status 0 when every part passes.")
    p.add_argument("notebook", help="path to the .ipynb (renamed copies are fine: the assignment is found "
                                    "from the notebook's graded cells)")
    p.add_argument("--assignment", help="assignment name, when the notebook's cells cannot tell")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")

    p = sub.add_parser("grade", parents=[common], help="autograde submissions",
                       description="Autograde submitted/<student>/<assignment>/ into autograded/ and the "
                                   "gradebook.")
    p.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    p.add_argument("--student", action="append", help="only this student (repeatable)")
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run the jobs on this Dask distributed scheduler instead of local workers")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None,
                   help="device for references computed on the fly (default: autograder.toml's, else auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("feedback", parents=[common], help="write per-student HTML feedback",
                       description="Write feedback/<student>/<assignment>/<notebook>.html from stored results.")
    p.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    p.add_argument("--student", action="append", help="only this student (repeatable)")

    p = sub.add_parser("export", parents=[common], help="write the grades CSV",
                       description="One row per student x assignment, per-part columns, total and status.")
    p.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    p.add_argument("--output", metavar="CSV", default=None, help="output file (default: WORK/grades.csv)")
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
        private = args.command in ("grade", "references", "feedback", "export")
        # results, references, gradebook: readable by the grader's user only
        old_umask = os.umask(0o077) if private else None
        try:
            return _run(course, args)
        finally:
            if old_umask is not None:
                os.umask(old_umask)
    except (UsageError, SpecError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(course: Course, args) -> int:
    command = args.command
    if command == "release":
        return _release(course, args)
    if command == "references":
        return _references(course, args)
    if command == "check":
        from .selfcheck import check_notebook, report

        result = check_notebook(course, args.notebook, assignment=args.assignment, device=args.device,
                                error=UsageError)
        print(report(result))
        return 0 if all(v.status == "passed" for v in result.parts.values()) else 1
    if command == "grade":
        from .batch import grade

        rep = grade(course, assignments=args.assignment, students=args.student, workers=args.workers,
                    scheduler=args.scheduler, device=args.device, progress=not args.no_progress)
        for res in rep.graded:
            print(f"{res.student:20s} {res.assignment:24s} {res.score:6g}/{res.max_score:g}  {res.status}")
        for student, assignment, message in rep.errors:
            print(f"ERROR {student} {assignment}: {message}", file=sys.stderr)
        return 0 if rep.ok else 2
    if command == "feedback":
        from .feedback import write_all

        paths = write_all(course, assignments=args.assignment, students=args.student)
        print(f"wrote {len(paths)} feedback pages under {course.feedback_dir}")
        return 0
    if command == "export":
        from .export import write

        path = write(course, args.output, assignments=args.assignment)
        print(f"wrote {path}")
        return 0
    raise AssertionError(command)


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
    from . import references
    from .spec import load_spec

    for name in args.assignment or course.assignments():
        spec = load_spec(course, name)
        device = references.resolve_device(args.device or course.device)
        seed = course.secret()
        data = references.compute(spec, seed, device)
        references.store(course, spec, data, seed=seed, device=device)
        cases = sum(len(d.cases) for d in data.values())
        print(f"{name}: {len(data)} parts, {cases} hidden cases, references on {device} -> "
              f"{course.references_dir / (name + '.npz')}")
    return 0
