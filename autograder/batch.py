"""``grade``: every submission of every requested assignment, as one pool of jobs, on local workers or a cluster.

The grading process does everything that needs the course's private data — the specs, the
secret, the references and the mistakes' outputs, the gradebook — and sends workers
:class:`~autograder.jobs.NotebookJob` objects, which hold inputs but never an expected value. As
each job's worker half comes back, this process judges it (the grader half); when a student's
notebooks of an assignment are all in, their result is written atomically and queued for
nbgrader's gradebook, which a helper process writes while grading goes on.

Faults end cleanly: a job that fails on the grader's side (a lost worker, a broken sandbox, a full
disk) is reported and the student's previous result is kept; a broken spec or references file
affects its own assignment only; Ctrl-C stops the run without a traceback, records what finished
and says how to continue; and a re-run skips every submission whose notebook, spec, references,
limits, round and grader code are unchanged since its last result (``--regrade`` grades anyway).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from multiprocessing import get_context

from . import gradebook, jobs, matching, notebooks, pipeline, results, sandbox
from .course import Course
from .spec import SpecError, load_spec

GRADEBOOK_BATCH = 50        # results per gradebook write


class GradingRefused(RuntimeError):
    """Grading cannot start as asked (untrusted code on a host that cannot seal it, an unknown student)."""


@dataclass
class GradeReport:
    graded: list = field(default_factory=list)      # AssignmentResult saved this run
    skipped: list = field(default_factory=list)     # (student, assignment): unchanged since their last result
    errors: list = field(default_factory=list)      # (student, assignment, message): previous result kept
    interrupted: bool = False
    sealed: bool = True

    @property
    def ok(self) -> bool:
        return not self.errors and not self.interrupted


def sealing_decision(*, allow_unsealed: bool) -> bool:
    """True to seal every job; raises GradingRefused where the host cannot and unsealed grading was not allowed."""
    problems = sandbox.sealing_problems()
    if not problems:
        return True
    if not allow_unsealed:
        raise GradingRefused("this host cannot seal the students' code (" + "; ".join(problems) + "); grade as "
                             "root on Linux, or pass --allow-unsealed to grade trusted notebooks anyway")
    print("warning: grading WITHOUT a sealed sandbox (" + "; ".join(problems) + "): a hostile notebook could read "
          "the grader's files, reach the network and signal the grader", file=sys.stderr)
    return False


def grade(course: Course, *, assignments=None, students=None, workers: int | None = None,
          scheduler: str | None = None, device: str | None = None, progress: bool = True, regrade: bool = False,
          allow_unsealed: bool = False, allow_insecure_cluster: bool = False,
          no_worker_timeout: float = 60.0) -> GradeReport:
    # on a cluster the workers seal the jobs (each is checked before any job is sent); here, this host does
    sealed = (not allow_unsealed) if scheduler else sealing_decision(allow_unsealed=allow_unsealed)
    report = GradeReport(sealed=sealed)
    if os.geteuid() == 0:
        # submissions, results, gradebook, secret: nothing under the working area is for the sandbox
        course.work.mkdir(parents=True, exist_ok=True)
        os.chmod(course.work, 0o700)
    known = course.submitted_students()
    for student in students or []:
        if student not in known:
            raise GradingRefused(f"no student {student!r} in {course.submitted_dir} (known: "
                                 f"{', '.join(known[:8])}{', ...' if len(known) > 8 else ''})")
    everyone = students or known
    security = None
    if scheduler:
        from . import cluster

        security = cluster.security(course, allow_insecure=allow_insecure_cluster, address=scheduler)

    with _GradebookWriter() as writer:
        prepared, all_jobs = {}, []
        for name in assignments or course.assignments():
            try:
                prepared[name] = _prepare(course, name, writer, device)
            except Exception as exc:   # noqa: BLE001 - a broken spec or references: this assignment only
                report.errors.append(("*", name, f"not graded: {type(exc).__name__}: {exc}"))
                continue
            spec, grader = prepared[name]
            # issue 13: files are found by their cells, whatever their names; two files for one notebook
            # leave that student's assignment ungraded (the run's summary and `grade --dry-run` say so)
            found = {student: matching.submission_files(course, student, name) for student in everyone}
            ready = [student for student in everyone if not found[student].blocked]
            chosen = {(student, nb): path for student in ready for nb, path in found[student].files.items()}
            for job in jobs.build_jobs(course, spec, grader, ready, sealed=sealed, submissions=chosen):
                all_jobs.append(job)
        todo, expected = _select(course, all_jobs, regrade, report)
        collector = _Collector(course, prepared, expected, report, writer)
        bar = _progress_bar(len(todo), "grading", progress)
        try:
            for job, outcome in _run(todo, workers=workers, scheduler=scheduler, security=security,
                                     no_worker_timeout=no_worker_timeout):
                bar.update(1)
                collector.add(job, outcome)
        except KeyboardInterrupt:
            report.interrupted = True
        except Exception as exc:   # noqa: BLE001 - the cluster went away: keep what finished
            report.errors.append(("*", "*", f"{type(exc).__name__}: {exc}"))
        finally:
            bar.close()
            collector.flush_gradebook(final=True)
    if not report.interrupted:
        for name, (spec, _) in prepared.items():
            try:
                review_copies(course, spec)
            except Exception as exc:   # noqa: BLE001 - a review that fails costs no grade
                report.errors.append(("*", name, f"the copy review failed ({type(exc).__name__}: {exc}); "
                                                 "scores are unaffected"))
    return report


COPY = "copy"


def review_copies(course, spec) -> None:
    """Flag answers alike to another student's, to mlp_lib's implementation or to the solution, in each result's
    review list (the class report shows them side by side). Scores are never changed."""
    from . import report as class_report

    students = course.submitted_students()
    pairs, library = class_report.find_similar(course, spec, students)
    found: dict = {}
    for f in pairs:
        found.setdefault(f.left, []).append((f, f.right, "another student's answer"))
        found.setdefault(f.right, []).append((f, f.left, "another student's answer"))
    for f in library:
        found.setdefault(f.left, []).append((f, f.right, "a reference"))
    notebook_of = {p.function: spec.notebook_of[p.id] for p in spec.parts}
    for student in students:
        result = results.load(course, student, spec.name)
        if result is None:
            continue
        wanted: dict = {}
        for f, other, what in found.get(student, []):
            item = {"kind": COPY, "function": f.function, "alike_to": other, "similarity": round(f.score, 2),
                    "why": f"{f.function} is {f.score:.0%} alike to {other} ({what}), renamed variables and layout "
                           "aside: look at both (python -m autograder report shows them side by side)"}
            wanted.setdefault(notebook_of.get(f.function), []).append(item)
        changed = False
        for name, nb in result.notebooks.items():
            kept = [r for r in nb.review if r.get("kind") != COPY]
            new = kept + wanted.get(name, [])
            if new != nb.review:
                nb.review, changed = new, True
        if changed:
            results.save(course, result)


def _prepare(course, name, writer, device):
    sources = {p.stem: notebooks.read_trusted(p) for p in course.source_notebooks(name)}
    writer.submit(gradebook.record_assignment, course, name, sources)     # while this process loads torch
    spec = load_spec(course, name)
    return spec, jobs.grader_data(course, spec, device=device)


def _select(course, all_jobs, regrade, report):
    """The jobs to run: all of them with ``regrade``, else those whose student's result is out of date."""
    by_student: dict = {}
    for job in all_jobs:
        by_student.setdefault((job.student, job.assignment), []).append(job)
    todo, expected = [], {}
    for (student, assignment), group in by_student.items():
        if not regrade:
            previous = results.load(course, student, assignment)
            if previous is not None and previous.keys == {j.notebook: j.key for j in group}:
                report.skipped.append((student, assignment))
                continue
        expected[(student, assignment)] = len(group)
        todo += group
    return todo, expected


def _run(todo, *, workers, scheduler, security, no_worker_timeout):
    """(job, WorkerResult or exception), in completion order: no worker ever needed for a missing notebook."""
    remote = []
    for job in todo:
        if job.submission is None or job.problem is not None:
            yield job, pipeline.run_on_worker(job)
        else:
            remote.append(job)
    if not remote:
        return
    if scheduler:
        from . import cluster

        yield from cluster.run(remote, scheduler, security=security, no_worker_timeout=no_worker_timeout,
                               sealed=remote[0].sealed)
        return
    workers = workers or os.cpu_count() or 1
    if workers == 1:                 # no pool: the worker half runs here, one job after the other
        for job in remote:
            try:
                yield job, pipeline.run_on_worker(job)
            except Exception as exc:   # noqa: BLE001 - a grader-side failure of one job must not stop the batch
                yield job, exc
        return
    from .pool import LocalPool

    yield from LocalPool(workers, initializer=_warm_up).run(remote)


def _warm_up() -> None:
    """What a worker imports once (the analysis' IPython transformer included)."""
    from . import analysis, pipeline  # noqa: F401

    analysis.transformer()


class _Collector:
    """Judges each worker result as it arrives; writes a student's result when their notebooks are all in."""

    def __init__(self, course, prepared, expected, report, writer):
        self.course, self.prepared, self.expected = course, prepared, expected
        self.report, self.writer = report, writer
        self.done: dict = {}
        self.failed: dict = {}
        self.count: dict = {}
        self.unsent: dict = {}          # assignment -> results not yet in the gradebook

    def add(self, job, outcome) -> None:
        key = (job.student, job.assignment)
        spec, grader = self.prepared[job.assignment]
        if isinstance(outcome, BaseException):
            self.failed.setdefault(key, f"{job.notebook}: {type(outcome).__name__}: {outcome}")
        else:
            try:
                self.done.setdefault(key, []).append(pipeline.grade_on_grader(job, outcome, grader))
            except Exception as exc:   # noqa: BLE001 - a bug judging one notebook must not stop the batch
                self.failed.setdefault(key, f"{job.notebook}: judging failed ({type(exc).__name__}: {exc})")
        self.count[key] = self.count.get(key, 0) + 1
        if self.count[key] < self.expected[key]:
            return
        if key in self.failed:
            self.report.errors.append((job.student, job.assignment, f"{self.failed.pop(key)} (previous result kept)"))
            self.done.pop(key, None)
            return
        result = results.AssignmentResult.combine(job.student, job.assignment, self.done.pop(key),
                                                  spec_fingerprint=spec.fingerprint, references=grader.references,
                                                  round=grader.round)
        try:
            results.save(self.course, result)
        except OSError as exc:      # a full disk on the grader: the previous result stays
            self.report.errors.append((job.student, job.assignment, f"the result could not be written ({exc}); "
                                                                    "previous result kept"))
            return
        self.report.graded.append(result)
        self.unsent.setdefault(job.assignment, []).append(result)
        if len(self.unsent[job.assignment]) >= GRADEBOOK_BATCH:
            self.flush_gradebook()

    def flush_gradebook(self, *, final: bool = False) -> None:
        for assignment, batch in list(self.unsent.items()):
            if not batch:
                continue
            spec, _ = self.prepared[assignment]
            future = self.writer.submit(gradebook.record_results, self.course, batch, part_notebook=spec.notebook_of)
            self.writer.pending.append((assignment, future))
            self.unsent[assignment] = []
        if final:
            for assignment, future in self.writer.pending:
                try:
                    future.result()
                except Exception as exc:   # noqa: BLE001 - a locked or unreachable database, a dead helper
                    self.report.errors.append(("*", assignment, f"gradebook not updated ({type(exc).__name__}: "
                                                                f"{exc}); results are written to autograded/"))
            self.writer.pending = []


class _GradebookWriter:
    """nbgrader's gradebook, written by one helper process, in order, while grading goes on.

    Importing nbgrader takes about a second of CPU and a write of 500 results tens of seconds: in a
    process of its own, both overlap the grading instead of idling the workers. It dies with the
    grader, and ignores Ctrl-C so that what finished is still recorded.
    """

    def __enter__(self):
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"),
                                        initializer=_gradebook_helper_init)
        self.pending = []
        return self

    def submit(self, fn, *args, **kwargs):
        return self.pool.submit(fn, *args, **kwargs)

    def __exit__(self, *exc):
        self.pool.shutdown(wait=True, cancel_futures=False)
        return False


def _gradebook_helper_init() -> None:
    import signal

    from .pool import die_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    import nbgrader.api  # noqa: F401
    import nbgrader.preprocessors  # noqa: F401


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="nb", disable=not enabled, file=sys.stderr, leave=True)


def summary(report: GradeReport) -> list[str]:
    """The one-screen summary a run ends with."""
    kinds: dict = {}
    for r in report.graded:
        kinds[r.status.kind] = kinds.get(r.status.kind, 0) + 1
    review = sum(1 for r in report.graded if r.review)
    lines = [f"graded {len(report.graded)} submissions"
             + (f" ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})" if kinds else "")
             + (f"; {len(report.skipped)} unchanged since their last grading (skipped; --regrade grades them)"
                if report.skipped else "")]
    if review:
        lines.append(f"{review} flagged for a person to review (code built at run time, copies; the scores "
                     "are unchanged): see the review column of the export")
    if report.errors:
        lines.append(f"{len(report.errors)} errors (previous results kept):")
        lines += [f"  {s} {a}: {m}" for s, a, m in report.errors]
    if report.interrupted:
        lines.append("interrupted: the finished results are saved and in the gradebook; run the same command "
                     "again to grade the rest (finished submissions are skipped)")
    return lines
