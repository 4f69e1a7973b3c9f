"""The one place that builds grading jobs, for ``grade`` (hidden cases) and ``check`` (public cases) alike.

A :class:`NotebookJob` is what a worker receives: the submission's bytes, the instructor cells
needed to restore it (answers blanked: the solutions never travel), the parts' plans, the
inputs, the limits — and never an expected value or a mistake's output; those stay in the
grading process (:class:`GraderData`), which judges what comes back.

Submissions are read as files, not links: every component of the path under ``submitted/`` is
checked with ``lstat`` and the notebook opened with ``O_NOFOLLOW``; a symbolic link, a hard link,
a FIFO or a device anywhere makes the submission ``unreadable`` with a message the instructor can
act on (an archive extracted with its links, a student folder linked to another one).
"""
from __future__ import annotations

import functools
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from . import notebooks, rounds, sandbox
from .limits import Limits
from .status import Status

_PACKAGE = Path(__file__).resolve().parent


@dataclass
class NotebookJob:
    """Everything a worker needs to run one student's notebook (picklable; no expected values)."""

    student: str
    assignment: str
    notebook: str                       # the source notebook's name (file stem)
    submission: bytes | None            # the submitted .ipynb (None: not submitted, or see `problem`)
    problem: Status | None              # decided before any work: e.g. unreadable (a link)
    source_cells: list                  # the source's cells with answers blanked and hidden tests removed
    setup: tuple                        # grade_ids of the instructor cells the answers may rely on
    plans: list                         # PartPlan of this notebook's parts
    inputs: dict                        # part id -> list of {name: ndarray}
    helpers: dict                       # the spec's kernel-safe modules: name -> source
    limits: Limits
    sealed: bool                        # run in a sealed job (untrusted code); False: a self-check
    extras: dict = field(default_factory=dict)     # release files copied into the job's home
    label: str = "hidden"               # "hidden" (grade) or "public" (check)
    key: str = ""                       # what the result depends on (an unchanged key needs no re-grade)


@dataclass
class GraderData:
    """What only the grading process holds about an assignment: cases with references and mistakes' outputs."""

    spec: object
    data: dict                          # part id -> references.PartData
    references: str                     # how the references were obtained
    round: str


def instructor_view(source_cells: list) -> list:
    """The source notebook as a worker may see it: answer cells emptied, hidden test sections removed."""
    out = []
    for cell in source_cells:
        cell = dict(cell)
        if notebooks.is_solution_cell(cell):
            cell["source"] = ""
        elif notebooks.is_instructor_cell(cell):
            cell["source"] = notebooks.strip_hidden_tests(notebooks.source_text(cell))
        out.append(cell)
    return out


def release_extras(course, assignment: str) -> dict[str, bytes]:
    """Non-notebook files of the release (data files...), copied into each job's home."""
    base = course.release_dir / assignment
    extras = {}
    if base.is_dir():
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.suffix != ".ipynb" and path.stat().st_size <= 16 << 20:
                extras[str(path.relative_to(base))] = path.read_bytes()
    return extras


# -- reading submissions as plain files -----------------------------------------------------------
class NotAFile(Exception):
    """The submission is a link, a FIFO or a device (the message says which and where)."""


def read_plain_file(path: Path, base: Path, limit: int) -> bytes | None:
    """The bytes of ``path`` (at most ``limit`` + 1), or None when it does not exist.

    Every component below ``base`` must be a real directory, and the file a regular file with one
    link; anything else raises :class:`NotAFile`."""
    rel = path.relative_to(base)
    current = base
    for part in rel.parts:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode):
            raise NotAFile(f"{current.relative_to(base)} is a symbolic link, not a file or folder: replace it "
                           "with the real content (an archive extracted with its links?)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NotAFile(f"{rel} cannot be opened as a plain file ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise NotAFile(f"{rel} is not a regular file (a FIFO, a socket or a device)")
        if st.st_nlink != 1:
            raise NotAFile(f"{rel} is a hard link ({st.st_nlink} names for one file): submit a copy")
        return fh.read(limit + 1)      # one byte more than allowed: 'too large' is detected, not read


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of the grader's own code (part of every job's key: new grader code, new grades)."""
    h = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*.py")):
        h.update(str(path.relative_to(_PACKAGE)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _job_key(submission: bytes | None, problem, spec, grader: GraderData, limits: Limits, sealed: bool) -> str:
    h = hashlib.sha256()
    for part in (spec.fingerprint, grader.references.split(" (")[0], grader.round, repr(limits), str(sealed),
                 code_fingerprint(), str(problem)):
        h.update(part.encode())
        h.update(b"\0")
    h.update(submission or b"")
    for pid, pdata in sorted(grader.data.items()):
        for case in pdata.inputs:
            for name, arr in case.items():
                h.update(f"{pid}/{name}/{arr.dtype}/{arr.shape}".encode())
                h.update(arr.tobytes())
    return h.hexdigest()[:24]


def build_jobs(course, spec, grader: GraderData, students, *, sealed: bool, label: str = "hidden",
               submissions: dict | None = None, only_notebook: str | None = None) -> list[NotebookJob]:
    """One job per student × source notebook. ``submissions``: {(student, notebook): path} overrides
    the default ``submitted/<student>/<assignment>/<notebook>.ipynb`` (renamed files found by a matcher,
    a file given to ``check``)."""
    limits = course.limits
    plans = spec.plans()
    sources = {p.stem: instructor_view(notebooks.read_trusted(p)["cells"]) for p in course.source_notebooks(spec.name)}
    extras = release_extras(course, spec.name)
    jobs = []
    for student in students:
        for name, source in sorted(sources.items()):
            if only_notebook is not None and name != only_notebook:
                continue
            nb_plans = [p for p in plans if p.notebook == name]
            path = (submissions or {}).get((student, name),
                                           course.submission_dir(student, spec.name) / f"{name}.ipynb")
            submission, problem = None, None
            try:
                base = course.submitted_dir if _under(path, course.submitted_dir) else path.parent
                submission = read_plain_file(path, base, limits.max_notebook_mb << 20)
            except NotAFile as exc:
                problem = Status("unreadable", f"not a plain file: {exc}")
            job = NotebookJob(
                student=student, assignment=spec.name, notebook=name, submission=submission, problem=problem,
                source_cells=source, setup=spec.setup, plans=nb_plans,
                inputs={p.id: grader.data[p.id].inputs for p in nb_plans}, helpers=dict(spec.helpers),
                limits=limits, sealed=sealed, extras=extras, label=label)
            job.key = _job_key(submission, problem, spec, grader, limits, sealed)
            jobs.append(job)
    return jobs


def _under(path: Path, base: Path) -> bool:
    try:
        path.relative_to(base)
        return True
    except ValueError:
        return False


def grader_data(course, spec, *, device: str | None = None) -> GraderData:
    from . import references

    data, how = references.for_grading(course, spec, device=device)
    return GraderData(spec=spec, data=data, references=how, round=rounds.current(course))


def check_data(spec, *, device: str = "cpu") -> GraderData:
    from . import references

    return GraderData(spec=spec, data=references.for_checking(spec, device=device), references="public cases",
                      round="public")


def sealed_by_default() -> bool:
    """Sealed wherever the host can seal a job."""
    return not sandbox.sealing_problems()
