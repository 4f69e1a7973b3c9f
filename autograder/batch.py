"""``grade``: every submission of every student, one job per notebook, on local workers or a Dask cluster.

The main process does everything that needs the course's private data — the spec, the secret, the
references, the gradebook — and ships plain :class:`~autograder.pipeline.NotebookJob` objects to
workers (one local process per core by default, or ``--scheduler ADDRESS`` for Dask
``distributed``). Results come back as data; the main process writes them (atomically), and a
helper process of its own writes nbgrader's gradebook (see :class:`_GradebookWriter`). A job that fails on the grader's side (a worker dies, a sandbox error) is reported and
the student's previous result is kept.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from . import gradebook, matching, notebooks, pipeline, references, results
from .course import Course
from .spec import load_spec


@dataclass
class GradeReport:
    graded: list = field(default_factory=list)      # AssignmentResult saved
    errors: list = field(default_factory=list)      # (student, assignment, message): previous result kept

    @property
    def ok(self) -> bool:
        return not self.errors


def _submission_bytes(path: Path, limit: int) -> bytes | None:
    if not path.is_file():
        return None
    with open(path, "rb") as fh:
        return fh.read(limit + 1)          # one byte more than allowed: 'too large' is detected, not read


def release_extras(course: Course, assignment: str) -> dict[str, bytes]:
    """Non-notebook files of the release (data files...), copied into each job's working directory."""
    base = course.release_dir / assignment
    extras = {}
    if base.is_dir():
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.suffix != ".ipynb" and path.stat().st_size <= 16 << 20:
                extras[str(path.relative_to(base))] = path.read_bytes()
    return extras


def build_jobs(course: Course, spec, data, students, *, label="hidden") -> list[pipeline.NotebookJob]:
    limits = course.limits
    plans = spec.plans()
    sources = {p.stem: notebooks.read_trusted(p) for p in course.source_notebooks(spec.name)}   # plain JSON
    extras = release_extras(course, spec.name)
    jobs = []
    for student in students:
        # issue 13: files found by their cells, not only by name; a blocked submission (two files
        # for one notebook) is not graded (the run's summary reports it)
        found = matching.submission_files(course, student, spec.name)
        if found.blocked:
            continue
        for name, source in sorted(sources.items()):
            nb_plans = [p for p in plans if p.notebook == name]
            path = found.files.get(name)
            submission = _submission_bytes(path, limits.max_notebook_mb << 20) if path else None
            jobs.append(pipeline.NotebookJob(
                student=student, assignment=spec.name, notebook=name, submission=submission,
                source_cells=source["cells"], plans=nb_plans,
                inputs={p.id: data[p.id].inputs for p in nb_plans},
                cases={p.id: data[p.id].cases for p in nb_plans},
                limits=limits, extra_files=extras, label=label))
    return jobs


def run_jobs(jobs, *, workers: int = 1, scheduler: str | None = None):
    """Yield (job, NotebookResult or the exception of a grader-side failure), in completion order."""
    inline = [j for j in jobs if j.submission is None]
    remote = [j for j in jobs if j.submission is not None]
    for job in inline:                      # nothing to execute: 'missing' without a worker
        yield job, pipeline.run_job(job)
    if scheduler:
        yield from _run_dask(remote, scheduler)
    elif workers <= 1:
        for job in remote:
            yield job, _guarded(job)
    else:
        yield from _run_local(remote, workers)


def _guarded(job):
    try:
        return pipeline.run_job(job)
    except Exception as exc:   # noqa: BLE001 - a grader-side failure of one job must not stop the batch
        return exc


def _warm_up() -> None:
    """Import what a job needs while the first jobs are being sent (spawned workers start empty)."""
    from . import pipeline  # noqa: F401


def _run_local(jobs, workers: int):
    pending, attempts = list(jobs), {}
    while pending:
        retry = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                 initializer=_warm_up) as pool:
            futures = {pool.submit(_guarded, job): job for job in pending}
            for fut in as_completed(futures):
                job = futures[fut]
                try:
                    yield job, fut.result()
                except BrokenProcessPool as exc:
                    key = (job.student, job.assignment, job.notebook)
                    attempts[key] = attempts.get(key, 0) + 1
                    if attempts[key] < 2:
                        retry.append(job)
                    else:
                        yield job, RuntimeError(f"a grading worker died twice on this notebook ({exc})")
        pending = retry


def _run_dask(jobs, address: str):
    from distributed import Client
    from distributed import as_completed as dask_completed

    with Client(address, set_as_default=False) as client:
        futures = client.map(_guarded, jobs, pure=False)
        owner = {f.key: j for f, j in zip(futures, jobs)}
        for fut in dask_completed(futures, loop=client.loop):
            job = owner[fut.key]
            try:
                yield job, fut.result()
            except Exception as exc:   # noqa: BLE001 - a lost worker, a serialization error...
                yield job, exc


def grade(course: Course, *, assignments=None, students=None, workers: int | None = None,
          scheduler: str | None = None, device: str | None = None, progress: bool = True) -> GradeReport:
    report = GradeReport()
    workers = workers or os.cpu_count() or 1
    if os.geteuid() == 0:
        # submissions, results, gradebook, secret: nothing under the working area is for the sandbox
        course.work.mkdir(parents=True, exist_ok=True)
        os.chmod(course.work, 0o700)
    all_students = students or course.submitted_students()
    with _GradebookWriter() as writer:
        for name in assignments or course.assignments():
            _grade_assignment(course, name, all_students, report, writer,
                              workers=workers, scheduler=scheduler, device=device, progress=progress)
    return report


def _grade_assignment(course, name, all_students, report, writer, *, workers, scheduler, device, progress):
    sources = {p.stem: notebooks.read_trusted(p) for p in course.source_notebooks(name)}
    # recorded by the helper while this process loads the spec (torch) and the jobs run
    recorded = writer.submit(gradebook.record_assignment, course, name, sources)
    spec = load_spec(course, name)
    data, how = references.for_grading(course, spec, device=device)
    jobs = build_jobs(course, spec, data, all_students)
    expected: dict[str, int] = {}
    for job in jobs:
        expected[job.student] = expected.get(job.student, 0) + 1
    done: dict[str, list] = {}
    failed: dict[str, str] = {}
    finished: dict[str, int] = {}
    saved = []
    bar = _progress_bar(len(jobs), f"grading {name}", progress)
    for job, outcome in run_jobs(jobs, workers=workers, scheduler=scheduler):
        bar.update(1)
        if isinstance(outcome, BaseException):
            failed.setdefault(job.student, f"{job.notebook}: {type(outcome).__name__}: {outcome}")
        else:
            done.setdefault(job.student, []).append(outcome)
        finished[job.student] = finished.get(job.student, 0) + 1
        if finished[job.student] < expected[job.student]:
            continue
        if job.student in failed:
            report.errors.append((job.student, name, f"{failed[job.student]} (previous result kept)"))
            continue
        result = results.AssignmentResult.combine(job.student, name, done[job.student],
                                                  spec_fingerprint=spec.fingerprint, references=how)
        results.save(course, result)           # atomically, as soon as the student is complete
        report.graded.append(result)
        saved.append(result)
    bar.close()
    try:
        recorded.result()
        writer.submit(gradebook.record_results, course, saved, part_notebook=spec.notebook_of).result()
    except Exception as exc:   # noqa: BLE001 - a locked or unreachable database, a dead helper
        report.errors.append(("*", name, f"gradebook not updated ({type(exc).__name__}: {exc}); "
                                         "results are written to autograded/"))


class _GradebookWriter:
    """nbgrader's gradebook, written by one helper process.

    Importing nbgrader takes about a second of CPU. In a process of its own it happens on the core
    that the main process leaves idle while it imports torch for the spec, and the main process
    never pays for it. The helper's calls run in order, one at a time (one writer per database).
    """

    def __enter__(self):
        self.pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"),
                                        initializer=_import_nbgrader)
        return self

    def submit(self, fn, *args, **kwargs):
        return self.pool.submit(fn, *args, **kwargs)

    def __exit__(self, *exc):
        self.pool.shutdown(wait=True, cancel_futures=True)
        return False


def _import_nbgrader() -> None:
    import nbgrader.api  # noqa: F401
    import nbgrader.preprocessors  # noqa: F401


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="nb", disable=not enabled, file=sys.stderr, leave=True)
