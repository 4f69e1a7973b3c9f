"""Grade a demonstration class end to end: ``python -m tools.demo_class`` (or ``make demo``).

It copies the fixture course (``tests/fixtures/course``: one assignment, five graded parts, 9
points) into ``_build/demo-class/``, writes the submissions of a class — a good student, a
partially correct one, a blank release, an empty folder, a renamed notebook, and a hostile
student per trick the grader must not fall for (patched asserts and torch, input transformers,
objects equal to everything, forged result files, infinite loops, ``os._exit``, a 10 GB
allocation, deleted or edited test cells, bad JSON, ...) — then runs the instructor's commands::

    python -m autograder --course _build/demo-class references --device cpu
    python -m autograder --course _build/demo-class grade
    python -m autograder --course _build/demo-class export
    python -m autograder --course _build/demo-class feedback

and compares ``course/grades.csv`` with the score and status each student should get. It prints
the table and exits 1 if any number is wrong. Open the feedback in
``_build/demo-class/course/feedback/<student>/fixture_affine/affine.html``.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

import agtools  # noqa: E402
from agtools import ASSIGNMENT, FULL, submit  # noqa: E402

MARKER = ".demo-class"


def build_class(dest: Path) -> dict:
    """Write the course and its submissions; student -> (expected score or (low, high), status prefix)."""
    if dest.exists():
        if not (dest / MARKER).exists():
            raise SystemExit(f"error: {dest} exists and was not made by this tool; choose another --dir")
        shutil.rmtree(dest)
    course = agtools.make_course(dest, limits=agtools.FAST_LIMITS)
    (dest / MARKER).write_text("made by python -m tools.demo_class; safe to delete\n")
    (course.release_dir / ASSIGNMENT / "data").mkdir(exist_ok=True)
    (course.release_dir / ASSIGNMENT / "data" / "hint.txt").write_text("a data file of the release")

    expected = agtools.normal_class(course)
    for student, (nb, score, status) in agtools.hostile_submissions(course, as_root=os.geteuid() == 0).items():
        submit(course, student, nb)
        expected[student] = (score, status)
    return expected


def run(dest: Path, workers: int) -> int:
    from autograder.cli import main as autograder

    expected = build_class(dest)
    print(f"demo class in {dest}: {len(expected)} students, assignment {ASSIGNMENT} ({FULL:g} points)\n")
    base = ["--course", str(dest)]
    for args in (["references", "--device", "cpu"], ["grade", "--workers", str(workers)], ["export"], ["feedback"]):
        print("$ python -m autograder " + " ".join(base + args), flush=True)
        rc = autograder(base + args)
        if rc != 0:
            print(f"error: the command exited {rc}")
            return 1

    csv_path = dest / "course" / "grades.csv"
    with csv_path.open(newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    wrong = 0
    print(f"\n{'student':24} {'score':>6} {'expected':>10}  {'status':40} ok")
    for student, (score, status) in sorted(expected.items()):
        row = rows.get(student)
        if row is None:
            print(f"{student:24} {'-':>6} {'':>10}  {'(no row in grades.csv)':40} NO")
            wrong += 1
            continue
        low, high = score if isinstance(score, tuple) else (score, score)
        got = float(row["score"])
        ok = low <= got <= high and row["status"].startswith(status)
        wrong += not ok
        shown = f"{low:g}" if low == high else f"{low:g}-{high:g}"
        print(f"{student:24} {got:>6g} {shown:>10}  {row['status'][:40]:40} {'ok' if ok else 'NO'}")
    extra = sorted(set(rows) - set(expected))
    if extra:
        print(f"unexpected rows in grades.csv: {extra}")
        wrong += 1
    print(f"\ngrades: {csv_path}\nfeedback: {dest / 'course' / 'feedback'}/<student>/{ASSIGNMENT}/affine.html")
    print("every number is right" if not wrong else f"{wrong} student(s) graded differently from what was expected")
    return 1 if wrong else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo_class", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "_build" / "demo-class",
                        help="where to create the demo course (default: _build/demo-class)")
    parser.add_argument("--workers", type=int, default=2, help="grading worker processes (default 2)")
    args = parser.parse_args(argv)
    return run(args.dir.resolve(), args.workers)


if __name__ == "__main__":
    raise SystemExit(main())
