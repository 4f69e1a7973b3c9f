"""``check NOTEBOOK``: a student's self-check — the same pipeline as ``grade``, on PUBLIC cases only.

The cases come from the spec's ``PUBLIC_SEED`` (never the instructor's secret), the references
are computed here with torch on the CPU, and nothing is written to the gradebook or results.
"""
from __future__ import annotations

from pathlib import Path

from . import notebooks, pipeline, references
from .batch import release_extras
from .course import Course
from .spec import load_spec


def check_notebook(course: Course, path: str | Path, *, assignment: str | None = None,
                   device: str = "cpu") -> pipeline.NotebookResult:
    path = Path(path)
    assignment = assignment or path.resolve().parent.name
    if assignment not in course.assignments():
        raise ValueError(f"unknown assignment {assignment!r} (pass --assignment; known: {course.assignments()})")
    spec = load_spec(course, assignment)
    name = path.stem
    plans = [p for p in spec.plans() if p.notebook == name]
    sources = {p.stem: p for p in course.source_notebooks(assignment)}
    if name not in sources:
        raise ValueError(f"{assignment} has no notebook named {name}.ipynb (known: {sorted(sources)})")
    data = references.for_checking(spec, device=device)
    job = pipeline.NotebookJob(
        student="(self-check)", assignment=assignment, notebook=name, submission=path.read_bytes(),
        source_cells=notebooks.read_trusted(sources[name])["cells"], plans=plans,
        inputs={p.id: data[p.id].inputs for p in plans}, cases={p.id: data[p.id].cases for p in plans},
        limits=course.limits, extra_files=release_extras(course, assignment), label="public")
    return pipeline.run_job(job)


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
