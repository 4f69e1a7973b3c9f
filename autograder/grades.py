"""The grade of each student and assignment: auto-graded points + manual points − late penalty.

One place computes what every export format, the feedback's summary and the class report show:

* auto-graded parts from ``result.json`` (a score entered in nbgrader's formgrader for a part's
  test cell overrides it);
* manually graded cells (free-response answers, tasks) from nbgrader's gradebook, ``pending``
  until someone grades them (counted as 0 meanwhile);
* the late penalty from the deadline policy and the submission time, computed now (an extension
  granted after grading needs no re-grade) and kept apart from the raw points.

Statuses are read only through :func:`status_kind`, the one place that knows their shape.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import deadlines, formgrader, matching, results
from .spec import SpecError


def status_kind(status) -> str:
    """The family of a result status ("graded", "missing", "flagged", "timeout", ...)."""
    kind = getattr(status, "kind", None)
    if isinstance(kind, str):
        return kind
    return str(status).split(":", 1)[0].strip() or "graded"


def status_reason(status) -> str:
    """Why the status is what it is (empty for a plain "graded")."""
    reason = getattr(status, "reason", None)
    if isinstance(reason, str):
        return reason
    return str(status).partition(":")[2].strip()


@dataclass
class Grade:
    student: str
    assignment: str
    status: str                          # a result's status, or missing / ungraded / not graded
    message: str = ""
    parts: dict = field(default_factory=dict)         # part id -> points (after manual overrides)
    part_max: dict = field(default_factory=dict)      # part id -> max points
    overridden: dict = field(default_factory=dict)    # part id -> (auto points, manual points)
    manual: dict = field(default_factory=dict)        # manual cell grade_id -> points or None (pending)
    manual_max: dict = field(default_factory=dict)
    comments: dict = field(default_factory=dict)      # grade_id -> grader's comment
    extra_credit: float = 0.0
    lateness: deadlines.Lateness | None = None
    result: object = None
    problems: list = field(default_factory=list)      # unmatched or blocked files

    @property
    def kind(self) -> str:
        return status_kind(self.status)

    @property
    def held(self) -> bool:
        """Grading could not settle the score: a person must look (``pending``, never a silent 0)."""
        return self.result is not None and self.kind == "held"

    @property
    def review(self) -> list:
        """What grading flagged for a person (copies...); it never changes a score."""
        return list(getattr(self.result, "review", []) or [])

    @property
    def auto_score(self) -> float:
        return sum(self.parts.values())

    @property
    def manual_score(self) -> float:
        return sum(v for v in self.manual.values() if v is not None)

    @property
    def pending(self) -> list[str]:
        return [gid for gid, v in self.manual.items() if v is None]

    @property
    def raw_score(self) -> float:
        return self.auto_score + self.manual_score + self.extra_credit

    @property
    def max_score(self) -> float:
        return sum(self.part_max.values()) + sum(self.manual_max.values())

    @property
    def penalty(self) -> float:
        if self.lateness is None or not self.lateness.penalty_fraction:
            return 0.0
        return min(self.raw_score, self.lateness.penalty_fraction * self.max_score)

    @property
    def score(self) -> float:
        return max(0.0, self.raw_score - self.penalty)

    @property
    def open(self) -> bool:
        """The student's due date is still ahead."""
        import datetime as dt

        due = self.lateness.due if self.lateness else None
        return due is not None and due > dt.datetime.now(dt.timezone.utc)

    @property
    def graded(self) -> bool:
        """Has a number a platform can take: a grading result, or nothing submitted (and not due yet
        is no zero)."""
        return (self.result is not None and not self.held) or (self.kind == "missing" and not self.open)


def assess(course, assignments, students, *, gradebook_grades: dict | None = None) -> list[Grade]:
    """Every (student, assignment) pair, in assignment then student order."""
    if gradebook_grades is None:
        from .gradebook import manual_grades

        gradebook_grades = manual_grades(course, assignments)
    out = []
    for assignment in assignments:
        part_max = auto_parts(course, assignment)
        manual_cells = formgrader.manual_cells(course, assignment)
        for student in students:
            out.append(_grade(course, assignment, student, part_max, manual_cells,
                              gradebook_grades.get((student, assignment), {})))
    return out


def _grade(course, assignment, student, part_max, manual_cells, entered) -> Grade:
    result = results.load(course, student, assignment)
    found = matching.submission_files(course, student, assignment)
    grade = Grade(student=student, assignment=assignment, status="", part_max=dict(part_max),
                  manual_max={g: c.points for g, c in manual_cells.items()}, result=result,
                  problems=list(found.problems))
    grade.lateness = deadlines.lateness(course, student, assignment)
    if result is not None:
        grade.status, grade.message = status_kind(result.status), status_reason(result.status)
        points = {pid: v.points for nb in result.notebooks.values() for pid, v in nb.parts.items()}
        grade.parts = {pid: float(points.get(pid, 0.0)) for pid in part_max}
    else:
        grade.parts = {pid: 0.0 for pid in part_max}
        if found.blocked:
            grade.status, grade.message = "not graded", "; ".join(found.problems)
        elif found.files:
            grade.status, grade.message = "ungraded", "submitted but not graded yet"
        else:
            grade.status = "missing"
            grade.message = "; ".join(found.problems) if found.problems else "nothing submitted"
    for pid in part_max:
        entry = entered.get(pid)
        if entry is not None and entry.manual_score is not None and result is not None:
            grade.overridden[pid] = (grade.parts[pid], float(entry.manual_score))
            grade.parts[pid] = float(entry.manual_score)
        if entry is not None and result is not None:
            grade.extra_credit += entry.extra_credit
    for gid in manual_cells:
        entry = entered.get(gid)
        if result is None or grade.kind == "missing":
            grade.manual[gid] = 0.0
        elif entry is None:
            grade.manual[gid] = None                      # not recorded yet: a person has to look
        elif entry.manual_score is not None:
            grade.manual[gid] = float(entry.manual_score)
            grade.extra_credit += entry.extra_credit
        else:
            grade.manual[gid] = None if entry.needs_manual_grade else 0.0
    grade.comments = {gid: e.comment for gid, e in entered.items() if e.comment}
    return grade


def auto_parts(course, assignment: str) -> dict[str, float]:
    """part id -> points of the auto-graded parts, from the source's test cells (the spec loader
    checks that they agree with the grading spec, so no spec — and no torch — is needed here)."""
    from . import notebooks

    if not course.spec_path(assignment).is_file():
        raise SpecError(f"{assignment}: no grading spec at {course.spec_path(assignment)}")
    out = {}
    for path in course.source_notebooks(assignment):
        for gid, cell in notebooks.test_cells(notebooks.read_trusted(path)).items():
            out[gid] = float(notebooks.nbgrader_meta(cell).get("points", 0))
    return out


def exported_assignments(course, requested=None, *, everything: bool = False) -> list[str]:
    """The assignments an export lists: those asked for; else every assignment that was graded
    (a result exists), is past its due date, or is marked ``released = true`` (``released = false``
    hides one)."""
    import datetime as dt

    if requested:
        for name in requested:
            auto_parts(course, name)               # an unknown assignment is a one-line error
        return list(requested)
    names = course.assignments()
    if everything:
        return names
    now = dt.datetime.now(dt.timezone.utc)
    out = []
    for name in names:
        policy = deadlines.policy(course, name)
        if policy.released is not None:
            if policy.released:
                out.append(name)
            continue
        graded = any(status_kind(r.status) != "missing" for r in
                     (results.load(course, s, name) for s in course.students()) if r is not None)
        if graded or (policy.due is not None and policy.due < now):
            out.append(name)
    return out


def feedback_sections(course, assignment: str, students) -> dict:
    """{(student, notebook): HTML} for the feedback pages: manual points, the grader's comments, the
    late penalty and the total (auto + manual − penalty). Empty where there is nothing to add."""
    import html

    from . import notebooks

    owner = {}
    for path in course.source_notebooks(assignment):
        for cell in notebooks.read_trusted(path)["cells"]:
            if notebooks.grade_id(cell):
                owner[notebooks.grade_id(cell)] = path.stem
    e = html.escape
    out = {}
    for g in assess(course, [assignment], list(students)):
        if g.result is None:
            continue
        for notebook in g.result.notebooks:
            rows = []
            for gid, points in g.manual.items():
                if owner.get(gid) == notebook:
                    shown = "not graded yet" if points is None else f"{points:g} / {g.manual_max[gid]:g}"
                    rows.append(f"<tr><td><code>{e(gid)}</code></td><td>{shown}</td><td>graded by hand</td></tr>")
            for pid, (auto, manual) in g.overridden.items():
                if owner.get(pid) == notebook:
                    rows.append(f"<tr><td><code>{e(pid)}</code></td><td>{manual:g} / {g.part_max[pid]:g}</td>"
                                f"<td>set by your grader (the tests gave {auto:g})</td></tr>")
            comments = [f"<li><code>{e(gid)}</code>: {e(text)}</li>" for gid, text in g.comments.items()
                        if owner.get(gid) == notebook]
            late = g.lateness.describe() if g.lateness else ""
            if not (rows or comments or late or g.extra_credit):
                continue
            parts = ["<h2>Grading by hand, lateness and total</h2>"]
            if rows:
                parts.append("<table><thead><tr><th>Cell</th><th>Points</th><th></th></tr></thead><tbody>"
                             + "".join(rows) + "</tbody></table>")
            if comments:
                parts.append("<h3>Comments from your grader</h3><ul>" + "".join(comments) + "</ul>")
            total = (f"Auto-graded {g.auto_score:g} + graded by hand {g.manual_score:g}"
                     + (f" + extra credit {g.extra_credit:g}" if g.extra_credit else "")
                     + (f" − late penalty {g.penalty:g} ({e(late)})" if g.penalty else "")
                     + f" = <strong>{g.score:g} / {g.max_score:g}</strong> for {e(assignment)}")
            if late and not g.penalty:
                total += f" ({e(late)})"
            if g.pending:
                total += " — some answers are not graded yet"
            parts.append(f"<p class='status'>{total}</p>")
            out[(g.student, notebook)] = "\n".join(parts) + "\n"
    return out
