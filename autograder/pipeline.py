"""Grading one submitted notebook: small single-purpose steps, run in order (like nbgrader's preprocessors).

:data:`STEPS` is the pipeline. Each step reads and extends a :class:`Context`; a step that settles
the outcome early (an unreadable file, a missing notebook) sets ``ctx.done`` and the remaining
steps are skipped except :func:`score`, which always runs. Everything here is plain data and
numpy: a :class:`NotebookJob` can be pickled to a local worker process or a Dask worker, and no
step imports torch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import notebooks, sandbox, static_checks
from .compare import CaseData, PartVerdict, judge_part
from .limits import Limits

STATUS_ORDER = ("unreadable", "flagged", "crashed", "timeout", "missing", "graded")


@dataclass
class NotebookJob:
    """Everything a worker needs to grade one student's notebook (picklable, no paths required)."""

    student: str
    assignment: str
    notebook: str                       # notebook name (file stem)
    submission: bytes | None            # the submitted .ipynb (None: not submitted)
    source_cells: list                  # the source notebook's cells (trusted, with hidden tests)
    plans: list                         # PartPlan of this notebook's parts
    inputs: dict                        # part id -> list of {name: ndarray}
    cases: dict                         # part id -> list of CaseData (expected outputs: grader only)
    limits: Limits
    extra_files: dict = field(default_factory=dict)    # release files copied into the working dir
    label: str = "hidden"               # "hidden" (grade) or "public" (check)


@dataclass
class NotebookResult:
    student: str
    assignment: str
    notebook: str
    status: str                         # graded | missing | unreadable | timeout | crashed | flagged: ...
    message: str = ""
    parts: dict = field(default_factory=dict)          # part id -> PartVerdict
    notes: list = field(default_factory=list)          # what restoring/executing changed or saw
    cell_errors: list = field(default_factory=list)    # [cell label, exception name] of failing cells
    log: str = ""                                      # the kernel's output (instructors only)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(v.points for v in self.parts.values())

    @property
    def max_score(self) -> float:
        return sum(v.max_points for v in self.parts.values())

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["parts"] = {k: v.to_dict() for k, v in self.parts.items()}
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "NotebookResult":
        data = dict(data)
        data["parts"] = {k: PartVerdict.from_dict(v) for k, v in data.get("parts", {}).items()}
        return cls(**data)


@dataclass
class Context:
    job: NotebookJob
    raw_cells: list | None = None
    cells: list | None = None
    flags: list = field(default_factory=list)
    execution: sandbox.Execution | None = None
    outputs: dict = field(default_factory=dict)
    verdicts: dict = field(default_factory=dict)
    status: str = "graded"
    message: str = ""
    notes: list = field(default_factory=list)
    done: bool = False


# -- the steps, in order -----------------------------------------------------------------
def read_submission(ctx: Context) -> None:
    """Missing notebook -> 'missing'; bad JSON, wrong format, too large -> 'unreadable'."""
    job = ctx.job
    if job.submission is None:
        ctx.status, ctx.message, ctx.done = "missing", f"{job.notebook}.ipynb was not submitted", True
        return
    try:
        ctx.raw_cells = notebooks.read_submission(job.submission, max_bytes=job.limits.max_notebook_mb << 20)
    except notebooks.Unreadable as exc:
        ctx.status, ctx.message, ctx.done = "unreadable", f"{job.notebook}.ipynb: {exc}", True


def restore_instructor_cells(ctx: Context) -> None:
    """Locked and test cells come from the source; deleted ones are re-inserted (nbgrader's OverwriteCells)."""
    restored = notebooks.restore(ctx.job.source_cells, ctx.raw_cells, {p.id for p in ctx.job.plans})
    ctx.cells = restored.cells
    ctx.notes += restored.notes


def check_static(ctx: Context) -> None:
    """torch/tensorflow/jax in answers, or mlp_lib's own implementation of a graded function -> flagged."""
    ctx.flags += static_checks.check_cells(ctx.cells, ctx.job.plans)


def strip_hidden_tests(ctx: Context) -> None:
    """Hidden test sections never reach the student's process (recording is done by the kernel itself)."""
    for cell in ctx.cells:
        if cell.origin == "instructor":
            cell.source = notebooks.strip_hidden_tests(cell.source)


def execute(ctx: Context) -> None:
    """Run the notebook in the sandbox; bring back the recorded outputs."""
    job = ctx.job
    ctx.execution, ctx.outputs = sandbox.run_notebook(ctx.cells, job.plans, job.inputs, job.limits,
                                                      extra_files=job.extra_files)
    ex = ctx.execution
    if ex.status != "ok":
        ctx.status, ctx.message = ex.status, ex.message
    if ex.preloaded:
        ctx.notes.append(f"{', '.join(ex.preloaded)} was loaded by the grader or an instructor cell "
                         "(not counted against the student)")


def check_runtime(ctx: Context) -> None:
    """torch imported while running, or a graded name bound to mlp_lib's function -> flagged."""
    ctx.flags += static_checks.runtime_flags(ctx.outputs, ctx.job.plans, ctx.execution.banned_imports)


def judge(ctx: Context) -> None:
    """Compare every part's outputs with the references (in this process, never in the student's)."""
    job = ctx.job
    for plan in job.plans:
        outs = ctx.outputs.get(plan.id)
        if outs is None:
            verdict = judge_part(plan, job.cases[plan.id], None, label=job.label, part_error=_never_recorded(ctx, plan))
        elif outs.error is not None:
            verdict = judge_part(plan, job.cases[plan.id], None, label=job.label, part_error=outs.error)
        else:
            verdict = judge_part(plan, job.cases[plan.id], outs.cases, label=job.label)
            warned = sorted({w for case in outs.cases for w in case.warnings})
            if warned and verdict.status == "passed":
                verdict.messages.append(f"warnings (no points lost): {'; '.join(warned[:3])}")
        ctx.verdicts[plan.id] = verdict


def apply_flags(ctx: Context) -> None:
    """A flagged part scores 0 whatever its outputs; the notebook's status names the first reason."""
    for flag in ctx.flags:
        targets = [p.id for p in ctx.job.plans] if flag.part == static_checks.ALL_PARTS else [flag.part]
        for pid in targets:
            v = ctx.verdicts.get(pid)
            if v is None:
                continue
            v.points = 0.0
            v.status = "flagged"
            if flag.reason not in v.messages:
                v.messages.insert(0, flag.reason)
    if ctx.flags:
        # a flag outranks a timeout or a crash: the instructor must see it; the message keeps the rest
        reasons = list(dict.fromkeys(f.reason for f in ctx.flags))
        if ctx.status != "graded" and ctx.message:
            reasons.append(f"{ctx.status}: {ctx.message}")
        ctx.status = f"flagged: {ctx.flags[0].reason}"
        ctx.message = "; ".join(reasons)


def _never_recorded(ctx: Context, plan) -> str:
    ex = ctx.execution
    if ex is not None and not ex.finished:
        return f"no outputs: the notebook stopped before {plan.id} was reached ({ex.message})"
    return f"no outputs were recorded for {plan.function}"


STEPS = (read_submission, restore_instructor_cells, check_static, strip_hidden_tests, execute, check_runtime,
         judge, apply_flags)


def score(ctx: Context) -> NotebookResult:
    """The result: every part of the notebook appears, with 0 points where nothing was earned."""
    job = ctx.job
    parts = {}
    for plan in job.plans:
        verdict = ctx.verdicts.get(plan.id)
        if verdict is None:
            verdict = PartVerdict(plan.id, 0.0, plan.points, "missing", [ctx.message or "not graded"],
                                  cases=len(job.cases[plan.id]), failed_cases=len(job.cases[plan.id]))
        parts[plan.id] = verdict
    ex = ctx.execution
    cell_errors = []
    if ex is not None and ctx.cells is not None:
        code = [c for c in ctx.cells if c.cell_type == "code"]
        for i, name in sorted(ex.cell_errors.items()):
            if i < len(code):
                label = code[i].grade_id or f"code cell {i + 1}"
                cell_errors.append([label, code[i].origin, name])
    return NotebookResult(student=job.student, assignment=job.assignment, notebook=job.notebook,
                          status=ctx.status, message=ctx.message, parts=parts, notes=ctx.notes,
                          cell_errors=cell_errors, log=ex.log if ex else "", seconds=ex.seconds if ex else 0.0)


def run_job(job: NotebookJob) -> NotebookResult:
    """Grade one notebook. Raises only for grader-side failures (the caller keeps earlier results)."""
    start = time.monotonic()
    ctx = Context(job=job)
    for step in STEPS:
        if ctx.done:
            break
        step(ctx)
    result = score(ctx)
    result.seconds = time.monotonic() - start
    return result


def combine_status(results: list[NotebookResult]) -> tuple[str, str]:
    """An assignment's status: graded only if every notebook is, else the most serious notebook's."""
    if not results:
        return "missing", "nothing submitted"
    bad = [r for r in results if r.status != "graded"]
    if not bad:
        return "graded", ""

    def rank(r):
        key = r.status.split(":")[0]
        return STATUS_ORDER.index(key) if key in STATUS_ORDER else 0

    worst = min(bad, key=rank)
    return worst.status, (worst.message if len(results) == 1 else f"{worst.notebook}: {worst.message}")


def in_process_outputs(plan, namespace: dict, inputs: list[dict]):
    """Outputs of functions living in *this* process (mutant tests, trusted solutions): no sandbox."""
    import numpy as np

    from . import harness
    from .compare import CaseOutput

    outputs = sandbox.PartOutputs()
    part = {"function": plan.function, "uses": list(plan.uses), "call_name": plan.call_name,
            "call_source": plan.call_source}
    try:
        fn, outputs.modules = harness.make_caller(part, namespace)
    except Exception as exc:   # noqa: BLE001
        outputs.error = str(exc)
        return outputs
    for case in inputs:
        args = {k: np.array(v, copy=True) for k, v in case.items()}
        values, error, caught = harness.call_case(fn, args, list(plan.outputs))
        outputs.cases.append(CaseOutput(outputs=values, inputs_after=args, error=error, warnings=caught))
    return outputs


def judge_in_process(plan, namespace: dict, cases: list[CaseData], *, label: str = "hidden") -> PartVerdict:
    outs = in_process_outputs(plan, namespace, [c.inputs for c in cases])
    if outs.error is not None:
        return judge_part(plan, cases, None, label=label, part_error=outs.error)
    return judge_part(plan, cases, outs.cases, label=label)
