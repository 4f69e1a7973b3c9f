"""Grading one submitted notebook: small single-purpose steps in two halves, like nbgrader's preprocessors.

The **worker half** (:data:`WORKER_STEPS`, run by :func:`run_on_worker` wherever the job is sent —
a local worker process or a Dask worker) reads the submission, restores the instructor's cells,
analyses the student's code under limits and runs the recording in a sealed job. It holds the
inputs and nothing else: no expected value, no mistake's output.

The **grader half** (:data:`GRADER_STEPS`, run by :func:`grade_on_grader` in the process that
built the job) judges what came back against the references, explains what is wrong, and scores.

Each step reads and extends a context; a step that settles the outcome early (an unreadable file,
a missing notebook, code that could not be analysed) sets a status and the remaining steps of that
half are skipped. Statuses are values (:class:`autograder.status.Status`), never parsed strings.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import analysis, notebooks, sandbox
from .compare import PartVerdict, judge_part
from .jobs import GraderData, NotebookJob
from .status import GRADED, Status, most_serious


# -- what travels back from the worker --------------------------------------------------------------
@dataclass
class WorkerResult:
    """The worker half's findings: facts about the submission and the raw outputs of its recording."""

    student: str
    assignment: str
    notebook: str
    key: str
    status: Status = GRADED
    notes: list = field(default_factory=list)
    cells: list = field(default_factory=list)          # the recording's cells: {"label", "kind"}
    functions: dict = field(default_factory=dict)      # the student's functions: name -> {"source", "calls", ...}
    defined: list = field(default_factory=list)        # every name the student's cells bind at top level
    refused_imports: list = field(default_factory=list)   # [cell label, module] not allowed for answers
    dynamic_code: list = field(default_factory=list)      # [cell label, [how]]: code built at run time
    execution: sandbox.Execution | None = None
    outputs: dict = field(default_factory=dict)        # part id -> sandbox.PartOutputs or None
    seconds: float = 0.0


@dataclass
class _Work:
    job: NotebookJob
    result: WorkerResult
    raw_cells: list | None = None
    restored: list | None = None
    analysed: list | None = None
    recording: sandbox.Recording | None = None

    @property
    def settled(self) -> bool:
        return self.result.status.kind in ("missing", "unreadable", "held")


def read_submission(w: _Work) -> None:
    """A link -> unreadable; not submitted -> missing; bad JSON, wrong format, too large -> unreadable."""
    job = w.job
    if job.problem is not None:
        w.result.status = job.problem
    elif job.submission is None:
        w.result.status = Status("missing", f"{job.notebook}.ipynb was not submitted")
    else:
        try:
            w.raw_cells = notebooks.read_submission(job.submission, max_bytes=job.limits.max_notebook_mb << 20)
        except notebooks.Unreadable as exc:
            w.result.status = Status("unreadable", f"{job.notebook}.ipynb: {exc}")


def restore_instructor_cells(w: _Work) -> None:
    """Locked and test cells come from the source (by grade_id, or by their text if the metadata was lost)."""
    restored = notebooks.restore(w.job.source_cells, w.raw_cells, {p.id for p in w.job.plans})
    w.restored = restored.cells
    w.result.notes += restored.notes
    if not restored.anchored:
        w.result.status = Status("held", f"{w.job.notebook}.ipynb has lost its grading metadata and none of its "
                                         "cells matches the assignment's text: the instructor must look at it")


def analyse_code(w: _Work) -> None:
    """Magics rewritten, imports and functions listed — under limits, in a child process; else held."""
    cells = _cells_to_run(w.restored, w.job)
    try:
        w.analysed = analysis.analyse([c.source for c in cells if c.origin != "record"],
                                      seconds=w.job.limits.analysis_seconds)
    except analysis.AnalysisFailed as exc:
        w.result.status = Status("held", f"the grader could not analyse the code within its limits ({exc}); "
                                         "the score is pending until the instructor looks")
        return
    allowed = {p for plan in w.job.plans for p in plan.allow}
    recording_cells, found = [], iter(w.analysed)
    for cell in cells:
        if cell.origin == "record":
            recording_cells.append({"source": "", "kind": "record", "part": cell.part, "label": cell.label})
            continue
        info = next(found)
        recording_cells.append({"source": info.source, "kind": cell.origin, "part": None, "label": cell.label})
        if cell.origin == "student":
            w.result.defined = sorted(set(w.result.defined) | set(info.names))
            if info.dynamic:
                w.result.dynamic_code.append([cell.label, info.dynamic])
            for fname, fn in info.functions.items():
                w.result.functions[fname] = {**fn, "cell": cell.label}
            for module in info.imports:
                top = module.partition(".")[0]
                if top not in allowed and not _stdlib(top):
                    w.result.refused_imports.append([cell.label, module])
    w.result.cells = [{"label": c["label"], "kind": c["kind"]} for c in recording_cells]
    w.recording = sandbox.Recording(
        cells=recording_cells,
        parts={p.id: p.kernel_part(w.job.inputs[p.id]) for p in w.job.plans},
        inputs=w.job.inputs, helpers=w.job.helpers,
        calls={p.call_name: p.call_source for p in w.job.plans if p.call_name},
        allow=tuple(sorted(allowed)), extras=w.job.extras)


def execute(w: _Work) -> None:
    """Run the recording in a sealed job; bring back the outputs (raises SandboxError for grader-side faults)."""
    ex, outputs = sandbox.run(w.recording, w.job.limits, sealed=w.job.sealed)
    w.result.execution, w.result.outputs = ex, outputs
    if ex.status != "ok":
        w.result.status = Status(ex.status, ex.message)
    if ex.limits_hit.get("pids"):
        w.result.notes.append(f"the notebook reached its limit of {w.job.limits.nproc} processes "
                              f"({ex.limits_hit['pids']} forks refused)")
    if ex.limits_hit.get("oom_kills") and ex.status == "ok":
        w.result.notes.append(f"{ex.limits_hit['oom_kills']} process(es) of the notebook were killed for using "
                              f"more than {w.job.limits.memory_mb} MiB together")


WORKER_STEPS = (read_submission, restore_instructor_cells, analyse_code, execute)


@dataclass
class _Cell:
    source: str
    origin: str          # setup | student | record
    label: str
    part: str | None = None


def _cells_to_run(restored: list, job: NotebookJob) -> list[_Cell]:
    """Setup cells, the student's code cells and a record point per graded part, in notebook order —
    up to the last record point (nothing after it can change a recorded answer)."""
    out, code_number = [], 0
    for cell in restored:
        if cell.cell_type != "code":
            continue
        code_number += 1
        label = f"code cell {code_number}" + (f" ({cell.grade_id})" if cell.grade_id else "")
        if cell.origin == "student":
            out.append(_Cell(cell.source, "student", label))
        elif cell.part is not None:
            out.append(_Cell("", "record", label, cell.part))
        elif cell.grade_id in job.setup:
            out.append(_Cell(cell.source, "setup", label))
    last = max((i for i, c in enumerate(out) if c.origin == "record"), default=-1)
    return out[:last + 1]


def _stdlib(top: str) -> bool:
    import sys

    return top in sys.stdlib_module_names


def run_on_worker(job: NotebookJob) -> WorkerResult:
    """The worker half. Raises only for grader-side failures (the caller keeps earlier results)."""
    start = time.monotonic()
    w = _Work(job=job, result=WorkerResult(student=job.student, assignment=job.assignment,
                                           notebook=job.notebook, key=job.key))
    for step in WORKER_STEPS:
        if w.settled:
            break
        step(w)
    w.result.seconds = time.monotonic() - start
    return w.result


# -- the grader half -----------------------------------------------------------------------------------
@dataclass
class NotebookResult:
    student: str
    assignment: str
    notebook: str
    status: Status
    parts: dict = field(default_factory=dict)          # part id -> PartVerdict
    notes: list = field(default_factory=list)          # what restoring/executing changed or saw
    cell_errors: list = field(default_factory=list)    # [cell label, kind, exception name]
    review: list = field(default_factory=list)         # {"part", "kind", "source", "similarity", ...}: for a person
    log: str = ""                                      # the kernel's output (instructors only)
    seconds: float = 0.0
    key: str = ""

    @property
    def score(self) -> float:
        return sum(v.points for v in self.parts.values())

    @property
    def max_score(self) -> float:
        return sum(v.max_points for v in self.parts.values())

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["status"] = self.status.to_dict()
        d["parts"] = {k: v.to_dict() for k, v in self.parts.items()}
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "NotebookResult":
        data = dict(data)
        data["status"] = Status.from_dict(data["status"])
        data["parts"] = {k: PartVerdict.from_dict(v) for k, v in data.get("parts", {}).items()}
        return cls(**data)


@dataclass
class _Grading:
    job: NotebookJob
    worker: WorkerResult
    grader: GraderData
    verdicts: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    review: list = field(default_factory=list)


def judge(g: _Grading) -> None:
    """Every part's outputs against the references and the catalogue of known mistakes."""
    if g.worker.execution is None:          # settled before running: nothing to judge
        return
    for plan in g.job.plans:
        cases = g.grader.data[plan.id].cases
        outs = g.worker.outputs.get(plan.id)
        if plan.function not in g.worker.defined:
            # a fact from the grader's own reading of the submission: no graded function, no points
            g.verdicts[plan.id] = judge_part(plan, cases, None, label=g.job.label,
                                             part_error=f"{plan.function} is not defined in your notebook: write "
                                                        f"it as a function (def {plan.function}(...):)")
        elif outs is None:
            g.verdicts[plan.id] = judge_part(plan, cases, None, label=g.job.label,
                                             part_error=_never_recorded(g.worker, plan))
        elif outs.error is not None:
            g.verdicts[plan.id] = judge_part(plan, cases, None, label=g.job.label, part_error=outs.error)
        else:
            g.verdicts[plan.id] = judge_part(plan, cases, outs.cases, label=g.job.label,
                                             catalogue=catalogue(g.grader.spec.part(plan.id)))


def name_earlier_causes(g: _Grading) -> None:
    """A part that calls the student's function of another part which failed: say so (it may be the cause)."""
    graded = {p.function: p for p in g.job.plans}
    for plan in g.job.plans:
        verdict = g.verdicts.get(plan.id)
        if verdict is None or verdict.status == "passed":
            continue
        calls = set(g.worker.functions.get(plan.function, {}).get("calls", [])) | set(plan.uses)
        for name in sorted(calls):
            other = graded.get(name)
            if other is None or other.id == plan.id:
                continue
            theirs = g.verdicts.get(other.id)
            if theirs is not None and theirs.status != "passed":
                verdict.messages.append(f"{plan.function} calls your {name} (part {other.id}), which is wrong "
                                        f"too: fix {other.id} first — this part may then pass as well.")


def note_refused_imports(g: _Grading) -> None:
    allowed = sorted({p for plan in g.job.plans for p in plan.allow})
    for label, module in g.worker.refused_imports[:5]:
        g.notes.append(f"{label} imports {module}, which is not available while answers are recorded: answers "
                       f"may use {', '.join(['the Python standard library', *allowed])}")


def review_dynamic_code(g: _Grading) -> None:
    """Code built at run time (exec of a string, a marshalled code object) may hide whose code an answer is:
    a person should look. The score is unchanged."""
    for label, how in g.worker.dynamic_code:
        g.review.append({"kind": "code built at run time", "cell": label, "how": how,
                         "why": f"{label} builds code at run time ({', '.join(how)}): check that the answer is the "
                                "student's own"})


GRADER_STEPS = (judge, name_earlier_causes, note_refused_imports, review_dynamic_code)


def catalogue(part) -> dict:
    """{mutant name: (feedback, book label)} of a spec part."""
    return {name: (m.feedback or name, m.book) for name, m in part.mutants.items()}


def _never_recorded(worker: WorkerResult, plan) -> str:
    ex = worker.execution
    if ex is not None and not ex.finished:
        return f"no outputs: the notebook stopped before {plan.id} was reached ({ex.message})"
    return f"no outputs were recorded for {plan.function}"


def grade_on_grader(job: NotebookJob, worker: WorkerResult, grader: GraderData) -> NotebookResult:
    """The grader half: judge, explain, score. Every part appears, with 0 points where nothing was earned."""
    g = _Grading(job=job, worker=worker, grader=grader)
    for step in GRADER_STEPS:
        step(g)
    status = worker.status
    parts = {}
    for plan in job.plans:
        verdict = g.verdicts.get(plan.id)
        if verdict is None:
            n = len(grader.data[plan.id].cases)
            word = "pending" if status.kind == "held" else "missing"
            verdict = PartVerdict(plan.id, 0.0, plan.points, word, [status.reason or "not graded"], cases=n,
                                  failed_cases=n)
        parts[plan.id] = verdict
    cell_errors = []
    ex = worker.execution
    if ex is not None:
        for i, name in sorted(ex.cell_errors.items()):
            if i < len(worker.cells):
                cell = worker.cells[i]
                cell_errors.append([cell["label"], cell["kind"], name])
    return NotebookResult(student=job.student, assignment=job.assignment, notebook=job.notebook, status=status,
                          parts=parts, notes=worker.notes + g.notes, cell_errors=cell_errors, review=g.review,
                          log=ex.log if ex else "", seconds=worker.seconds, key=job.key)


def grade_notebook(job: NotebookJob, grader: GraderData) -> NotebookResult:
    """Both halves in this process (``check``, tests)."""
    return grade_on_grader(job, run_on_worker(job), grader)


def combine_status(results: list[NotebookResult]) -> Status:
    """An assignment's status: graded only if every notebook is, else the most serious notebook's."""
    return most_serious([r.status for r in results], labels=[r.notebook for r in results])


# -- in this process (tests of the specs, the instructor's own solution) -------------------------------
def in_process_outputs(plan, namespace: dict, inputs: list[dict], helpers: dict | None = None):
    """Outputs of functions living in *this* process, called exactly as the harness calls them."""
    from . import references
    from .compare import CaseOutput
    from .inside import harness

    outputs = sandbox.PartOutputs()
    try:
        adapters = harness.load_adapters(helpers or {}, {plan.call_name: plan.call_source} if plan.call_name else {})
        fn = harness.make_caller(plan.kernel_part(inputs), namespace, adapters)
    except Exception as exc:   # noqa: BLE001
        outputs.error = str(exc)
        return outputs
    for case in inputs:
        values, error, caught = harness.call_case(fn, references.student_arguments(case, writable=not plan.pure),
                                                  list(plan.outputs))
        outputs.cases.append(CaseOutput(outputs=values, error=error, warnings=caught))
    return outputs


def judge_in_process(spec, plan, namespace: dict, cases: list, *, label: str = "hidden") -> PartVerdict:
    outs = in_process_outputs(plan, namespace, [c.inputs for c in cases], spec.helpers)
    if outs.error is not None:
        return judge_part(plan, cases, None, label=label, part_error=outs.error)
    return judge_part(plan, cases, outs.cases, label=label, catalogue=catalogue(spec.part(plan.id)))
