"""Grades in each learning platform's import format (``export --format canvas|moodle|gradescope``).

* **Canvas** — Gradebook "Import" CSV: ``Student`` ("Last, First"), ``ID`` (Canvas user id),
  ``SIS User ID``, ``SIS Login ID``, ``Section``, then one column per assignment, and a
  ``Points Possible`` row as in Canvas's own export. Canvas matches an existing assignment by the
  id in its column title ("Chapter 5 (123456)"); a title it does not know creates a new assignment.
  Give the course's gradebook export as ``--template`` to use its exact titles and student
  identifiers (assignments are found by ``lms_name`` in autograder.toml or by their name).
* **Moodle** — Gradebook "Import → CSV file": ``First name``, ``Last name``, ``ID number``,
  ``Email address``, one column per assignment; map "Email address" (or "ID number") to the user and
  each column to its grade item. With ``--template`` an assignment's grading worksheet (downloaded
  from the assignment, "Download grading worksheet") is filled in instead, for its "Upload grading
  worksheet" (one assignment per worksheet; rows matched by e-mail address).
* **Gradescope** — the layout of Gradescope's grade export: ``First Name``, ``Last Name``,
  ``SID``, ``Email``, ``Sections``, then per assignment its score, ``- Max Points``,
  ``- Submission Time`` and ``- Lateness (H:M:S)``; students are matched by e-mail or SID.

Students on the roster without a grade get an empty cell where nothing can be said yet (not graded,
or not due), never a silent zero; 0 means "nothing was submitted and the deadline passed".
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from . import deadlines
from .roster import name_key


class ExportError(ValueError):
    """The export cannot be written as asked (a template that does not fit)."""


def _cell(g) -> str:
    return f"{round(g.score, 6):g}" if g.graded else ""


def _title(course, assignment: str) -> str:
    return deadlines.policy(course, assignment).lms_name or assignment


def _csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _by_student(table) -> dict:
    return {(g.student, g.assignment): g for g in table}


def _unreachable(roster, platform: str, what: str, reachable) -> list[str]:
    """A warning naming the roster students the platform has no way to recognise."""
    missing = [p.id for p in roster if not reachable(p)]
    if not missing:
        return []
    return [f"{len(missing)} students have no {what} in the roster ({platform} cannot match them): "
            f"{', '.join(missing[:10])}"]


def _max(table, assignment) -> str:
    for g in table:
        if g.assignment == assignment:
            return f"{g.max_score:g}"
    return ""


# -- Canvas ------------------------------------------------------------------------------------------
CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID", "Root Account", "Section")


def canvas(course, table, roster, assignments, *, template: Path | None = None) -> tuple[str, list[str]]:
    grades = _by_student(table)
    warnings = []
    titles = {a: _title(course, a) for a in assignments}
    identity = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    known_rows: dict[str, dict] = {}
    if template is not None:
        header, rows = _read_template(template)
        identity = [h for h in header if h in CANVAS_IDENTITY]
        if "Student" not in identity or not ({"ID", "SIS User ID", "SIS Login ID"} & set(identity)):
            raise ExportError(f"{template}: not a Canvas gradebook export (no Student and ID columns)")
        titles = {a: _template_column(header, a, titles[a], template) for a in assignments}
        for row in rows:
            if row.get("Student", "").strip().lower().startswith("points possible"):
                continue
            person = roster.find(lms_id=row.get("ID", ""), sis_id=row.get("SIS User ID", ""),
                                 login_id=row.get("SIS Login ID", ""))
            if person is not None:
                known_rows[person.id] = row
    out = [identity + [titles[a] for a in assignments],
           ["    Points Possible"] + [""] * (len(identity) - 1) + [_max(table, a) for a in assignments]]
    for person in roster:
        row = known_rows.get(person.id)
        values = {"Student": person.sortable_name, "ID": person.lms_id, "SIS User ID": person.sis_id,
                  "SIS Login ID": person.login_id, "Section": person.section}
        if row is not None:
            values.update({k: row.get(k, "") for k in identity})
        elif template is not None:
            warnings.append(f"{person.id} is not in the Canvas template (Canvas will not find them)")
        out.append([values.get(k, "") for k in identity] + [_cell(grades[(person.id, a)]) for a in assignments])
    if template is None:
        warnings += _unreachable(roster, "Canvas", "Canvas ID, SIS User ID or SIS Login ID",
                                 lambda p: p.lms_id or p.sis_id or p.login_id)
    return _csv(out), warnings


def _read_template(path: Path) -> tuple[list[str], list[dict]]:
    text = Path(path).read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    return [h.strip() for h in reader.fieldnames or []], [{(k or "").strip(): (v or "") for k, v in r.items()}
                                                          for r in reader]


def _template_column(header, assignment, title, template) -> str:
    wanted = {name_key(title), name_key(assignment)}
    for column in header:
        bare = re.sub(r"\s*\(\d+\)\s*$", "", column)
        if name_key(column) in wanted or name_key(bare) in wanted:
            return column
    choices = [h for h in header if h not in CANVAS_IDENTITY]
    raise ExportError(f"{template}: no column for {assignment} (looked for {title!r}; set lms_name in "
                      f"[assignments.{assignment}] to one of: {', '.join(choices[:20])})")


# -- Moodle ------------------------------------------------------------------------------------------
def moodle(course, table, roster, assignments, *, template: Path | None = None) -> tuple[str, list[str]]:
    grades = _by_student(table)
    if template is not None:
        return _moodle_worksheet(course, grades, roster, assignments, template)
    out = [["First name", "Last name", "ID number", "Email address"] + [_title(course, a) for a in assignments]]
    for person in roster:
        out.append([*person.first_and_last, person.sis_id, person.email]
                   + [_cell(grades[(person.id, a)]) for a in assignments])
    return _csv(out), _unreachable(roster, "Moodle", "e-mail or ID number", lambda p: p.email or p.sis_id)


def _moodle_worksheet(course, grades, roster, assignments, template) -> tuple[str, list[str]]:
    if len(assignments) != 1:
        raise ExportError("a Moodle grading worksheet is one assignment's: pass --assignment with --template")
    (assignment,) = assignments
    text = Path(template).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ExportError(f"{template}: empty")
    header = [h.strip().lower() for h in rows[0]]
    if "grade" not in header:
        raise ExportError(f"{template}: no 'Grade' column (download the worksheet with Moodle in English)")
    grade_col = header.index("grade")
    email_col = next((i for i, h in enumerate(header) if h in ("email address", "email")), None)
    if email_col is None:
        raise ExportError(f"{template}: no 'Email address' column (show e-mail addresses in Moodle's identity fields)")
    warnings, filled = [], set()
    for row in rows[1:]:
        if len(row) <= max(grade_col, email_col):
            continue
        person = roster.find(email=row[email_col])
        if person is None:
            warnings.append(f"worksheet row {row[0]!r} ({row[email_col]}) is not on the roster (left as it was)")
            continue
        row[grade_col] = _cell(grades[(person.id, assignment)])
        filled.add(person.id)
    missing = [p.id for p in roster if p.id not in filled]
    if missing:
        warnings.append(f"{len(missing)} roster students are not in the worksheet: {', '.join(missing[:10])}")
    return _csv(rows), warnings


# -- Gradescope --------------------------------------------------------------------------------------
def gradescope(course, table, roster, assignments, *, template: Path | None = None) -> tuple[str, list[str]]:
    if template is not None:
        raise ExportError("the gradescope format takes no --template")
    grades = _by_student(table)
    header = ["First Name", "Last Name", "SID", "Email", "Sections"]
    for a in assignments:
        t = _title(course, a)
        header += [t, f"{t} - Max Points", f"{t} - Submission Time", f"{t} - Lateness (H:M:S)"]
    out = [header]
    for person in roster:
        row = [*person.first_and_last, person.sis_id, person.email, person.section]
        for a in assignments:
            g = grades[(person.id, a)]
            late = g.lateness
            row += [_cell(g), f"{g.max_score:g}",
                    late.submitted.isoformat(timespec="seconds") if late and late.submitted else "",
                    _hms(late.late_by.total_seconds()) if late and late.submitted else ""]
        out.append(row)
    return _csv(out), _unreachable(roster, "Gradescope", "e-mail or SID", lambda p: p.email or p.sis_id)


def _hms(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


WRITERS = {"canvas": canvas, "moodle": moodle, "gradescope": gradescope}
