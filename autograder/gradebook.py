"""Grades go into nbgrader's own gradebook (``nbgrader.api.Gradebook``), so nbgrader's tools see them.

The assignment's cells are recorded with nbgrader's ``SaveCells`` preprocessor (run after the same
preprocessors as in ``generate_assignment``); each graded part's points become the ``auto_score``
of the grade of its test cell. Only the grader's main process writes (one writer); sqlite gets a
30 s busy timeout by default, and any SQLAlchemy URL works (``--db-url``, ``AUTOGRADER_DB_URL``,
``[grading] db_url``). As root, a sqlite gradebook is made 0600.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .course import Course
from .results import AssignmentResult

# nbgrader.api.Gradebook runs the `alembic` executable when it creates a database.
_BIN = os.path.dirname(sys.executable)


def _sqlite_path(db_url: str) -> Path | None:
    if not db_url.startswith("sqlite:///"):
        return None
    return Path(db_url[len("sqlite:///"):].split("?", 1)[0])


@contextlib.contextmanager
def open_gradebook(course: Course):
    import warnings

    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")
    path = _sqlite_path(course.db_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
    gb = Gradebook(course.db_url)
    try:
        with warnings.catch_warnings():
            # nbgrader 0.9's add_submission trips SQLAlchemy 2's autoflush warnings (harmless)
            warnings.simplefilter("ignore", SAWarning)
            yield gb
    finally:
        gb.close()
        if path is not None and path.exists():
            os.chmod(path, 0o600)


def record_assignment(course: Course, assignment: str, source_notebooks: dict) -> None:
    """Create/update the assignment, its notebooks and their cells in the gradebook (nbgrader's SaveCells)."""
    import nbformat
    from nbgrader.converters.generate_assignment import GenerateAssignment
    from nbgrader.preprocessors import SaveCells

    from . import deadlines

    due = deadlines.policy(course, assignment).due
    with open_gradebook(course) as gb:
        gb.update_or_create_assignment(assignment, duedate=deadlines.as_utc_naive(due))
    chain = []
    for cls in GenerateAssignment.class_traits()["preprocessors"].default():
        chain.append(cls)
        if cls is SaveCells:
            break
    for name, nb in sorted(source_notebooks.items()):
        nb = nbformat.reads(json.dumps(nb), as_version=4)      # joins multi-line sources, as nbformat.read does
        resources = {"nbgrader": {"db_url": course.db_url, "assignment": assignment, "notebook": name},
                     "unique_key": name}
        for cls in chain:
            nb, resources = cls().preprocess(nb, resources)


def record_results(course: Course, results: list[AssignmentResult], *, part_notebook: dict) -> None:
    """Write the auto scores of graded submissions, in one session (nothing for missing submissions).

    Also, for nbgrader's formgrader: the autograded notebooks (:mod:`autograder.formgrader`), the
    submission time and extension, the roster's names, and ``needs_manual_grade`` — false on
    auto-graded parts, true on the parts of a held notebook (its score waits for a person) and on
    answered manually graded cells that have no manual score yet. Manual scores and comments are
    never touched: a re-grade keeps them.
    """
    from . import deadlines, formgrader
    from . import roster as roster_mod

    answered = {(r.student, r.assignment): formgrader.write_autograded(course, r) for r in results}
    results = [r for r in results if any(nb.status.kind != "missing" for nb in r.notebooks.values())]
    if not results:
        return
    roster = roster_mod.load(course)
    manual = {a: formgrader.manual_cells(course, a) for a in {r.assignment for r in results}}
    with open_gradebook(course) as gb:
        for result in results:
            person = roster.by_id.get(result.student) if roster else None
            gb.update_or_create_student(result.student, **_student_fields(person))
            policy = deadlines.policy(course, result.assignment)
            submitted = deadlines.read_timestamp(course, result.student, result.assignment)
            sub = gb.update_or_create_submission(result.assignment, result.student,
                                                 timestamp=deadlines.as_utc_naive(submitted))
            due, own_due = policy.due, policy.due_for(result.student)
            sub.extension = (own_due - due) if due is not None and own_due is not None and own_due != due else None
            for nb in result.notebooks.values():
                for pid, verdict in nb.parts.items():
                    grade = gb.find_grade(pid, part_notebook[pid], result.assignment, result.student)
                    if nb.status.pending:              # held: the score is not known until a person looks
                        grade.needs_manual_grade = grade.manual_score is None
                        continue
                    grade.auto_score = float(verdict.points)
                    grade.needs_manual_grade = False
            for gid, cell in manual[result.assignment].items():
                grade = gb.find_grade(gid, cell.notebook, result.assignment, result.student)
                if answered[(result.student, result.assignment)].get(gid, False):
                    grade.auto_score = None
                    grade.needs_manual_grade = grade.manual_score is None
                else:                                # left as released: 0, as nbgrader does
                    grade.auto_score = 0.0
                    grade.needs_manual_grade = False
        gb.db.commit()


def _student_fields(person) -> dict:
    if person is None:
        return {}
    first, last = person.first_and_last
    return {"first_name": first or None, "last_name": last or None, "email": person.email or None,
            "lms_user_id": person.lms_id or None}


def manual_grades(course: Course, assignments) -> dict:
    """{(student, assignment): {grade_id: ManualGrade}} — what people entered in the formgrader.

    Reads without creating anything: no gradebook yet means no manual grades."""
    path = _sqlite_path(course.db_url)
    if path is not None and not path.is_file():
        return {}
    from nbgrader.api import MissingEntry

    out: dict = {}
    with open_gradebook(course) as gb:
        for assignment in assignments:
            try:
                record = gb.find_assignment(assignment)
            except MissingEntry:        # never graded
                continue
            for sub in record.submissions:
                grades = {}
                for nb in sub.notebooks:
                    comments = {c.name: (c.manual_comment or "") for c in nb.comments}
                    for g in nb.grades:
                        grades[g.name] = ManualGrade(manual_score=g.manual_score, extra_credit=g.extra_credit or 0.0,
                                                     needs_manual_grade=bool(g.needs_manual_grade),
                                                     comment=comments.get(g.name, ""))
                    for name, text in comments.items():
                        if name not in grades and text:
                            grades[name] = ManualGrade(comment=text)
                out[(sub.student.id, assignment)] = grades
    return out


@dataclass(frozen=True)
class ManualGrade:
    manual_score: float | None = None
    extra_credit: float = 0.0
    needs_manual_grade: bool = False
    comment: str = ""


def auto_scores(course: Course, assignment: str, student: str) -> dict[str, float]:
    """{grade_id: auto_score} as nbgrader sees it (for tests and audits)."""
    with open_gradebook(course) as gb:
        sub = gb.find_submission(assignment, student)
        return {g.name: g.auto_score for nb in sub.notebooks for g in nb.grades}
