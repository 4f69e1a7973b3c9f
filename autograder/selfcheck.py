"""``check NOTEBOOK``: a student's self-check — the same pipeline as ``grade``, on PUBLIC cases only.

The cases come from the spec's ``PUBLIC_SEED`` (never the instructor's secret), the references
are computed here with torch on the CPU, and nothing is written to the gradebook or results.
"""
from __future__ import annotations

from pathlib import Path

from . import jobs, matching, notebooks, pipeline, sandbox
from .course import Course
from .spec import load_spec

STUDENT = "(self-check)"


def check_notebook(course: Course, path: str | Path, *, assignment: str | None = None,
                   device: str = "cpu", error: type[Exception] = ValueError,
                   public_tests: bool = True) -> pipeline.NotebookResult:
    """Grade ``path`` on public cases. A downloaded or renamed copy is fine: the assignment and the
    source notebook are recognised by its cells (grade_ids, then content; ``error`` is raised, with
    a message for the student, when they cannot be).

    The answers are recorded exactly as ``grade`` records them — sealed where this machine can
    seal a job, otherwise (a student's laptop) with the same allowlist applied by the kernel's
    import guard. With ``public_tests``, the whole notebook (public tests and experiment) then runs
    once more, unsealed, as the student would run it, to report which public tests fail."""
    path = Path(path)
    if not path.is_file():
        raise error(f"no such notebook: {path}")
    if assignment is not None and assignment not in course.assignments():
        raise error(f"unknown assignment {assignment!r} (known: {', '.join(course.assignments())})")
    assignment, name = _identify(course, path, assignment, error)
    spec = load_spec(course, assignment)
    grader = jobs.check_data(spec, device=device)
    (job,) = jobs.build_jobs(course, spec, grader, [STUDENT], sealed=jobs.sealed_by_default(), label="public",
                             submissions={(STUDENT, name): path.resolve()}, only_notebook=name)
    result = pipeline.grade_notebook(job, grader)
    if public_tests and result.status.kind == "graded":
        result.cell_errors += _public_test_errors(job)
    return result


def _public_test_errors(job) -> list:
    """[label, kind, exception] of the cells that fail when the whole notebook runs as the student runs it."""
    raw = notebooks.read_submission(job.submission, max_bytes=job.limits.max_notebook_mb << 20)
    restored = notebooks.restore(job.source_cells, raw, {p.id for p in job.plans}).cells
    cells, number = [], 0
    for cell in restored:
        if cell.cell_type != "code":
            continue
        number += 1
        label = f"code cell {number}" + (f" ({cell.grade_id})" if cell.grade_id else "")
        kind = "student" if cell.origin == "student" else "instructor"
        cells.append({"source": cell.source, "kind": kind, "part": None, "label": label})
    recording = sandbox.Recording(cells=cells, mode="notebook", extras=job.extras)
    try:
        ex, _ = sandbox.run(recording, job.limits, sealed=False)
    except sandbox.SandboxError as exc:
        return [["the whole notebook", "instructor", f"could not be run ({exc})"]]
    return [[cells[i]["label"], cells[i]["kind"], name] for i, name in sorted(ex.cell_errors.items())
            if cells[i]["kind"] == "instructor"]


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
             f"on public cases (status: {result.status})"]
    for label, kind, name in result.cell_errors:
        if kind == "instructor":
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
