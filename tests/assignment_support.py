"""What every chapter's exercise test needs, written once.

Each ``tests/test_assignment_chNN.py`` proves, for its assignment: the instructor's solution gets
every point on hidden-style cases, the released stubs get none, and every mutant of the spec's
catalogue (a typical wrong answer) loses the points of its own part, with the diagnosis it
names, while the other parts keep theirs. The checks run in-process, as
:mod:`autograder.pipeline` judges (torch references in float64); one slow test per chapter runs
the real sandboxed ``check``. The chapter module adds what is particular to its functions.

Usage in a chapter's test module::

    import assignment_support as support

    ASSIGNMENT = "ch03_backpropagation"
    SOURCE, RELEASED = support.notebook_paths(ASSIGNMENT)
    course, spec, hidden_cases, solution = support.fixtures(ASSIGNMENT)
    MUTANTS = support.mutant_ids(ASSIGNMENT)
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from autograder import notebooks, pipeline, references
from autograder.course import Course
from autograder.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SEEDS = (20251122, 7)            # stand-ins for the instructor's secret seed


def notebook_paths(assignment: str) -> tuple[Path, Path]:
    """(the source notebook in solutions/, the released one in exercises/)."""
    return (ROOT / "solutions" / assignment / f"{assignment}.ipynb",
            ROOT / "exercises" / assignment / f"{assignment}.ipynb")


def fixtures(assignment: str, seeds=SEEDS):
    """Module-scoped fixtures ``course``, ``spec``, ``hidden_cases`` ({seed: {part id: [CaseData]}},
    references computed once) and ``solution`` (the source notebook's answer namespace)."""
    source, _ = notebook_paths(assignment)

    @pytest.fixture(scope="module", name="course")
    def course_fixture():
        return Course.open(ROOT)

    @pytest.fixture(scope="module", name="spec")
    def spec_fixture(course):
        return load_spec(course, assignment)

    @pytest.fixture(scope="module", name="hidden_cases")
    def hidden_cases_fixture(spec):
        return {seed: {pid: data.cases for pid, data in references.compute(spec, seed, "cpu").items()}
                for seed in seeds}

    @pytest.fixture(scope="module", name="solution")
    def solution_fixture():
        return answer_namespace(source)

    return course_fixture, spec_fixture, hidden_cases_fixture, solution_fixture


def mutant_ids(assignment: str) -> list:
    """pytest params (part id, mutant name) of the spec's catalogue, with readable ids."""
    spec = load_spec(Course.open(ROOT), assignment)
    return [pytest.param(part.id, name, id=f"{part.id}:{name}") for part in spec.parts for name in part.mutants]


def answer_namespace(path: Path) -> dict:
    """Execute a notebook's answer cells and the locked code before them (not its tests, not the
    experiment) and return the namespace, as the grader's in-process checks do."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    namespace: dict = {}
    for code in notebooks.solution_namespace_cells(cells):
        exec(compile(code, f"<{Path(path).name}>", "exec"), namespace)
    return namespace


def verdicts(spec, namespace: dict, cases: dict, part_ids=None) -> dict:
    """{part id: PartVerdict} of ``namespace``'s functions on ``cases`` (all parts, or ``part_ids``)."""
    plans = {p.id: p for p in spec.plans()}
    return {pid: pipeline.judge_in_process(spec, plans[pid], namespace, cases[pid]) for pid in (part_ids or plans)}


# -- the checks every assignment must pass -------------------------------------------------------------

def assert_solution_gets_every_point(spec, hidden_cases: dict, solution: dict) -> None:
    for seed, cases in hidden_cases.items():
        for pid, v in verdicts(spec, solution, cases).items():
            assert v.status == "passed", f"seed {seed}, part {pid}: {v.messages}"


def assert_stubs_get_no_point(spec, hidden_cases: dict, released: Path) -> None:
    namespace = answer_namespace(released)
    for pid, v in verdicts(spec, namespace, next(iter(hidden_cases.values()))).items():
        assert v.points == 0 and v.status in ("error", "failed"), f"{pid}: {v.status} {v.messages}"
        assert "NotImplementedError" in " ".join(v.messages)


def assert_mutant_loses_its_part_only(spec, hidden_cases: dict, solution: dict, part_id: str, mutant: str, *,
                                      unchecked=(), callers_may_break=False, others_on_first_seed_only=False):
    """The mutant scores 0 on its part on every seed and the feedback names it; the other parts keep theirs.

    ``unchecked``: parts that cannot see the mutant and are too slow to re-run for each one (they
    call no function but their own). ``callers_may_break``: a part that calls the mutated function
    (an MLP forward calling the student's dropout) may lose points too, as in the generic
    ``test_autograder_mutants``. ``others_on_first_seed_only``: the other parts run on one seed.
    """
    part = spec.part(part_id)
    namespace = dict(solution)       # the solution's own functions keep calling the solution's helpers
    namespace[part.function] = part.mutants[mutant].fn
    plans = {p.id: p for p in spec.plans()}
    others = [pid for pid in plans if pid != part_id and pid not in unchecked
              and not (callers_may_break and part.function in plans[pid].functions)]
    for pid in unchecked:
        assert callers_may_break or pid == part_id or part.function not in plans[pid].functions, \
            f"{pid} calls {part.function}: it must be checked against this mutant"
    for i, (seed, cases) in enumerate(hidden_cases.items()):
        with np.errstate(all="ignore"):          # several mutants overflow on purpose
            results = verdicts(spec, namespace, cases,
                               [part_id] + (others if i == 0 or not others_on_first_seed_only else []))
        v = results[part_id]
        assert v.points == 0, f"seed {seed}: mutant {mutant!r} of {part_id} was not caught: {v.messages}"
        assert f"mutant:{mutant}" in v.diagnoses, f"seed {seed}: {mutant!r} was not named: {v.messages}"
        broken = {pid: r.status for pid, r in results.items() if pid != part_id and r.status != "passed"}
        assert not broken, f"seed {seed}: mutant {mutant!r} of {part_id} also broke {broken}"


def assert_sandboxed_check(course, source: Path, released: Path, points: float) -> None:
    """The real pipeline (confined kernel, public cases): the solution gets ``points``, with no error in
    its public tests or its experiment; the release gets 0."""
    from autograder.selfcheck import check_notebook

    solved = check_notebook(course, source)
    assert solved.score == solved.max_score == points
    assert not solved.cell_errors, f"public tests or the experiment failed on the solution: {solved.cell_errors}"
    stub = check_notebook(course, released)
    assert stub.score == 0


# -- bugs the catalogue does not hold --------------------------------------------------------------------
@dataclass(frozen=True)
class Bug:
    """A plausible mistake written *after* the catalogue, to test the feedback on bugs nobody foresaw.

    ``fn`` replaces the part's function (``fn_of`` replaces several functions at once, for two bugs
    in two parts); ``may_name``: the catalogued mistakes the feedback may name for it because this
    bug gives exactly their values (an empty set: the feedback must not name any)."""

    part: str
    description: str
    fn: Callable | None = None
    fn_of: dict = field(default_factory=dict)
    may_name: frozenset = frozenset()


def feedback_for(spec, hidden_cases: dict, solution: dict, bug: Bug):
    """The part's verdict on the first seed with ``bug`` in place of the right function(s)."""
    part = spec.part(bug.part)
    namespace = {**solution, **({part.function: bug.fn} if bug.fn is not None else {}), **bug.fn_of}
    cases = next(iter(hidden_cases.values()))
    with np.errstate(all="ignore"):
        return verdicts(spec, namespace, cases, [bug.part])[bug.part]


def outcome(verdict, bug: Bug) -> str:
    """'named' (a catalogued mistake it may be named as), 'unknown' (honestly: no specific cause, or a
    provable fact), or 'wrongly named'."""
    named = {d.split(":", 1)[1] for d in verdict.diagnoses if d.startswith("mutant:")}
    if named - set(bug.may_name):
        return "wrongly named"
    return "named" if named else "unknown"


def assert_uncatalogued_bugs_are_never_wrongly_named(spec, hidden_cases: dict, solution: dict, bugs) -> None:
    assert len(bugs) >= 3, "write at least three bugs the catalogue does not hold"
    assert any(len(b.fn_of) + (b.fn is not None) >= 2 or "two bugs" in b.description for b in bugs), \
        "one of them should be two bugs at once"
    for bug in bugs:
        assert not (set(bug.may_name) - set(spec.part(bug.part).mutants)), bug
        v = feedback_for(spec, hidden_cases, solution, bug)
        assert v.points == 0, f"{bug.description}: not caught ({v.messages})"
        assert outcome(v, bug) != "wrongly named", f"{bug.description}: {v.diagnoses} {v.messages}"
