"""``check NOTEBOOK``: a student's self-check — the same pipeline as ``grade``, on PUBLIC cases only.

The cases come from the spec's ``PUBLIC_SEED`` (never the instructor's secret), the references
are computed here with torch on the CPU, and nothing is written to the gradebook or results.
"""
from __future__ import annotations

from pathlib import Path

from . import matching, notebooks, pipeline, references
from .batch import release_extras
from .course import Course
from .spec import load_spec


def check_notebook(course: Course, path: str | Path, *, assignment: str | None = None,
                   device: str = "cpu", error: type[Exception] = ValueError) -> pipeline.NotebookResult:
    """Grade ``path`` on public cases. A downloaded or renamed copy is fine: the assignment and the
    source notebook are recognised by the nbgrader grade_ids of its cells (``error`` is raised, with
    a message for the student, when they cannot be)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"no such notebook: {path}")
    if assignment is not None and assignment not in course.assignments():
        raise error(f"unknown assignment {assignment!r} (known: {', '.join(course.assignments())})")
    assignment, name = _identify(course, path, assignment, error)
    spec = load_spec(course, assignment)
    plans = [p for p in spec.plans() if p.notebook == name]
    sources = {p.stem: p for p in course.source_notebooks(assignment)}
    data = references.for_checking(spec, device=device)
    job = pipeline.NotebookJob(
        student="(self-check)", assignment=assignment, notebook=name, submission=path.read_bytes(),
        source_cells=notebooks.read_trusted(sources[name])["cells"], plans=plans,
        inputs={p.id: data[p.id].inputs for p in plans}, cases={p.id: data[p.id].cases for p in plans},
        limits=course.limits, extra_files=release_extras(course, assignment), label="public")
    return pipeline.run_job(job)


def _identify(course: Course, path: Path, assignment: str | None, error) -> tuple[str, str]:
    """(assignment, source notebook name) of a student's notebook, by :mod:`autograder.matching`
    (the release layout first, then the cells' grade_ids, then their content)."""
    try:
        match = matching.identify_file(course, path, assignment=assignment)
    except ValueError as exc:
        raise error(f"{path} is not a readable notebook ({exc})") from None
    if match.found:
        return match.assignment, match.notebook
    if match.alternatives:
        names = ", ".join(f"{a}/{n}" for a, n in match.alternatives)
        raise error(f"{path.name} matches several notebooks equally well ({names}); pass --assignment")
    raise error(f"{path.name} matches no assignment's notebook ({match.reason}); pass --assignment")


def report(result: pipeline.NotebookResult) -> str:
    lines = [f"{result.assignment}/{result.notebook}.ipynb — {result.score:g} / {result.max_score:g} points "
             f"on public cases (status: {result.status}{': ' + result.message if result.message else ''})"]
    for label, origin, name in result.cell_errors:
        if origin == "instructor":
            lines.append(f"  public tests in {label} failed: {name}")
        else:
            lines.append(f"  your {label} raised {name}")
    for pid, v in result.parts.items():
        mark = "ok " if v.status == "passed" else "XX "
        lines.append(f"  {mark}{pid}: {v.points:g}/{v.max_points:g}")
        for msg in v.messages:
            lines.append(f"       {msg}")
    for note in result.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)
