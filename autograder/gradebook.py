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

    with open_gradebook(course) as gb:
        gb.update_or_create_assignment(assignment)
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
    """Write the auto scores of graded submissions, in one session (nothing for missing submissions)."""
    results = [r for r in results if any(nb.status.kind != "missing" for nb in r.notebooks.values())]
    if not results:
        return
    with open_gradebook(course) as gb:
        for result in results:
            gb.update_or_create_student(result.student)
            gb.update_or_create_submission(result.assignment, result.student)
            for nb in result.notebooks.values():
                if nb.status.pending:          # held: the score is not known yet
                    continue
                for pid, verdict in nb.parts.items():
                    grade = gb.find_grade(pid, part_notebook[pid], result.assignment, result.student)
                    grade.auto_score = float(verdict.points)
        gb.db.commit()


def auto_scores(course: Course, assignment: str, student: str) -> dict[str, float]:
    """{grade_id: auto_score} as nbgrader sees it (for tests and audits)."""
    with open_gradebook(course) as gb:
        sub = gb.find_submission(assignment, student)
        return {g.name: g.auto_score for nb in sub.notebooks for g in nb.grades}
