"""``export``: the grades as a CSV, in the long format or a learning platform's import format.

Every student of the roster appears (plus anyone else who submitted, in the long format only);
only assignments that were graded, are past due or are marked released appear, unless
``--assignment`` or ``--all`` says otherwise (a chapter never handed out must not become zeros in
the platform). Scores are :mod:`autograder.grades`' final scores: auto + manual − late penalty.

* ``long`` (default): one row per student x assignment — status (its kind; the reason is the
  message), final score, maximum, the raw points, the late penalty, auto and manual points,
  submission time, due date and lateness, one column per part named ``<assignment>/<part>``,
  ``review`` (how many things grading flagged for a person, such as copies: never a change of
  score), the message. A ``held`` submission's score is ``pending``.
* ``canvas``, ``moodle``, ``gradescope``: one row per roster student, one column per assignment,
  in each platform's import format (:mod:`autograder.lms`).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from . import grades, lms
from . import roster as roster_mod
from .course import Course, write_private

FORMATS = ("long", "canvas", "moodle", "gradescope")


def _number(value: float) -> str:
    return f"{round(value, 6):g}"


def long_rows(course: Course, table: list[grades.Grade], roster) -> tuple[list[str], list[dict]]:
    part_columns: list[str] = []
    rows = []
    for g in table:
        parts = [f"{g.assignment}/{p}" for p in [*g.part_max, *g.manual_max]]
        part_columns += [c for c in parts if c not in part_columns]
        person = roster.by_id.get(g.student) if roster else None
        late = g.lateness
        blank = "pending" if g.held else ""
        row = {"student": g.student, "assignment": g.assignment, "status": g.kind,
               "score": _number(g.score) if g.graded else blank, "max_score": _number(g.max_score),
               "raw_score": _number(g.raw_score) if g.graded else blank, "late_penalty": _number(g.penalty),
               "auto_score": _number(g.auto_score), "manual_score": _number(g.manual_score),
               "manual_pending": " ".join(g.pending),
               "submitted": late.submitted.isoformat(timespec="minutes") if late and late.submitted else "",
               "due": late.due.isoformat(timespec="minutes") if late and late.due else "",
               "late": late.describe() if late else "",
               "name": person.display_name if person else "", "email": person.email if person else "",
               "section": person.section if person else ""}
        row.update({f"{g.assignment}/{p}": blank if g.held else _number(v) for p, v in g.parts.items()})
        row["review"] = str(len(g.review)) if g.review else ""
        row.update({f"{g.assignment}/{p}": "" if v is None else _number(v) for p, v in g.manual.items()})
        message = [g.message] if g.message else []
        if roster is not None and g.student not in roster:
            message.append("not on the roster")
        message += [f"{p}: entered by hand ({a:g} -> {m:g})" for p, (a, m) in g.overridden.items()]
        row["message"] = "; ".join(message)
        rows.append(row)
    header = ["student", "assignment", "status", "score", "max_score", "raw_score", "late_penalty", "auto_score",
              "manual_score", "manual_pending", "submitted", "due", "late", "name", "email", "section",
              *part_columns, "review", "message"]
    return header, rows


def to_csv(header: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, restval="", lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def render(course: Course, *, fmt: str = "long", assignments=None, everything: bool = False,
           template: Path | None = None) -> tuple[str, list[str]]:
    """(CSV text, warnings for the instructor)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    roster = roster_mod.load(course)
    names = grades.exported_assignments(course, assignments, everything=everything)
    students = roster_mod.class_list(course, roster)
    table = grades.assess(course, names, students)
    warnings = _warnings(table, roster, fmt)
    if fmt == "long":
        if template is not None:
            raise ValueError("--template is for the canvas and moodle formats")
        return to_csv(*long_rows(course, table, roster)), warnings
    if roster is None:
        raise ValueError(f"the {fmt} format needs the class list (roster.csv) to name students the way "
                         f"{fmt.capitalize()} does: install one with `collect --roster FILE`")
    text, more = lms.WRITERS[fmt](course, table, roster, names, template=template)
    return text, warnings + more


def _warnings(table, roster, fmt) -> list[str]:
    out = []
    pending = [g for g in table if g.pending and g.result is not None]
    if pending:
        out.append(f"{len(pending)} submissions still need manual grading (counted as 0 until graded): "
                   + ", ".join(f"{g.student}/{g.assignment}" for g in pending[:10]) + (" ..." if len(pending) > 10 else ""))
    waiting = [g for g in table if not g.graded]
    if waiting:
        out.append(f"{len(waiting)} submissions are not graded (left blank): "
                   + ", ".join(f"{g.student}/{g.assignment} ({g.status})" for g in waiting[:10])
                   + (" ..." if len(waiting) > 10 else ""))
    if roster is not None:
        strays = sorted({g.student for g in table if g.student not in roster})
        if strays:
            where = "listed" if fmt == "long" else "left out (the platform cannot know them)"
            out.append(f"{len(strays)} students are not on the roster, {where}: {', '.join(strays[:10])}")
    return out


def write(course: Course, path: Path | None = None, *, fmt: str = "long", assignments=None, everything: bool = False,
          template: Path | None = None) -> tuple[Path, list[str]]:
    default = "grades.csv" if fmt == "long" else f"grades-{fmt}.csv"
    path = Path(path) if path is not None else course.work / default
    text, warnings = render(course, fmt=fmt, assignments=assignments, everything=everything, template=template)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, text.encode("utf-8"))
    return path, warnings
