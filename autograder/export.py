"""``export``: a CSV with one row per student and assignment — every student with a folder in submitted/.

Columns: student, assignment, status, score, max_score, one column per part (its points), review, message.
A student with no (or an empty) folder for an assignment gets status ``missing`` and 0 points; a
submission that was never graded successfully gets ``ungraded``; a ``held`` one has no score yet
(``pending``). ``review`` counts what was flagged for a person to look at (copies); it never
changes a score.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from . import results
from .course import Course
from .spec import load_spec


def rows(course: Course, *, assignments=None) -> tuple[list[str], list[dict]]:
    part_columns: list[str] = []
    table = []
    for assignment in assignments or course.assignments():
        spec = load_spec(course, assignment)
        parts = [p.id for p in spec.parts]
        part_columns += [p for p in parts if p not in part_columns]
        max_score = sum(float(p.points) for p in spec.parts)
        for student in course.students():
            row = {"student": student, "assignment": assignment, "max_score": f"{max_score:g}"}
            result = results.load(course, student, assignment)
            if result is not None:
                points = result.part_points()
                pending = result.status.pending
                row.update(status=result.status.kind, score="pending" if pending else f"{result.score:g}",
                           message=result.status.reason, review=str(len(result.review)) if result.review else "")
                row.update({p: "pending" if pending else f"{points.get(p, 0.0):g}" for p in parts})
            else:
                folder = course.submission_dir(student, assignment)
                submitted = folder.is_dir() and any(folder.glob("*.ipynb"))
                row.update(status="ungraded" if submitted else "missing", score="0",
                           message="submitted but not graded yet" if submitted else "nothing submitted")
                row.update({p: "0" for p in parts})
            table.append(row)
    header = ["student", "assignment", "status", "score", "max_score", *part_columns, "review", "message"]
    return header, table


def to_csv(course: Course, *, assignments=None) -> str:
    header, table = rows(course, assignments=assignments)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue()


def write(course: Course, path: Path | None = None, *, assignments=None) -> Path:
    from .course import write_private

    path = Path(path) if path is not None else course.work / "grades.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, to_csv(course, assignments=assignments).encode())
    return path
