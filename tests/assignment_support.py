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
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from autograder import compare, notebooks, pipeline, references
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


# -- understanding parts and written answers (issue 14) ------------------------------------------------
BOOK_LABELS = frozenset(re.findall(r"\((ch\d\d-[A-Za-z0-9-]+)\)=", "\n".join(
    p.read_text(encoding="utf-8") for p in sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb")))))


def assert_hidden_cases_vary_with_the_seed(hidden_cases: dict, part_id: str) -> None:
    """Two secret seeds ask other questions (other inputs) with other answers, so a list of answers
    learnt from one grading round (or from the public cases) is worth nothing in the next."""
    (seed_a, cases_a), (seed_b, cases_b) = list(hidden_cases.items())[:2]
    a, b = cases_a[part_id], cases_b[part_id]

    def flat(cases, what):
        return [np.asarray(arr).tobytes() + str(np.asarray(arr).shape).encode()
                for case in cases for _, arr in sorted(getattr(case, what).items())]

    assert flat(a, "inputs") != flat(b, "inputs"), f"{part_id}: seeds {seed_a} and {seed_b} draw the same inputs"
    assert flat(a, "expected") != flat(b, "expected"), f"{part_id}: seeds {seed_a} and {seed_b} expect the same answers"


def _guesses(cases, rng) -> dict:
    """Guessing strategies that know the vocabulary and the shapes of the answers (more than a student
    does): every constant answer seen among the expected ones (for numbers: their median and 0 too), and
    three random guesses drawn from the same vocabulary or range."""
    names = list(cases[0].expected)
    pools = {name: np.concatenate([np.ravel(c.expected[name]) for c in cases]) for name in names}
    constants = {}
    for name, pool in pools.items():
        if pool.dtype.kind == "f":
            finite = pool[np.isfinite(pool)]
            constants[name] = [float(np.median(finite)), 0.0, float(finite.max())]
        else:
            constants[name] = list(np.unique(pool))
    strategies = {}
    for k in range(max(len(v) for v in constants.values())):
        strategies[f"constant #{k}"] = [
            {n: np.full(c.expected[n].shape, constants[n][min(k, len(constants[n]) - 1)],
                        dtype=c.expected[n].dtype) for n in names} for c in cases]
    for k in range(3):
        guess = []
        for c in cases:
            out = {}
            for n in names:
                pool, shape = pools[n], c.expected[n].shape
                if pool.dtype.kind == "f":
                    finite = pool[np.isfinite(pool)]
                    out[n] = rng.uniform(finite.min(), finite.max(), size=shape)
                else:
                    out[n] = rng.choice(np.unique(pool), size=shape)
            guess.append(out)
        strategies[f"random #{k}"] = guess
    return strategies


def assert_guesses_lose(spec, hidden_cases: dict, part_id: str, *, seed: int = 14) -> None:
    """A constant answer (each value of the vocabulary, the most common one included) and random guesses
    score nothing on the part, on every secret seed."""
    plan = {p.id: p for p in spec.plans()}[part_id]
    rng = np.random.default_rng(seed)
    for secret, cases in hidden_cases.items():
        for name, guess in _guesses(cases[part_id], rng).items():
            outs = [compare.CaseOutput(outputs=g) for g in guess]
            verdict = compare.judge_part(plan, cases[part_id], outs)
            assert verdict.points == 0, f"seed {secret}: the guess {name} earns the points of {part_id}"


def assert_mutants_explain_the_right_answer(spec, part_ids) -> None:
    """Every typical mistake of a new part tells the student what is wrong and where the book explains it."""
    for pid in part_ids:
        part = spec.part(pid)
        assert len(part.mutants) >= 4, f"{pid}: a catalogue of typical wrong answers, guesses included"
        for name, mutant in part.mutants.items():
            assert len(mutant.feedback) > 40, f"{pid}: mutant {name!r} has no feedback for the student"
            assert mutant.book in BOOK_LABELS, f"{pid}: mutant {name!r} points to {mutant.book!r}, no book section"


def assert_written_answer_is_graded_by_hand(source: Path, released: Path, grade_id: str, points: float) -> None:
    """A free-response question: a locked markdown question, then nbgrader's *manually graded answer*
    (markdown, solution + grade, unlocked, with points), whose model answer and rubric the release strips.
    The grading machinery leaves it to the formgrader: it is not a Part, restoring a submission keeps the
    student's text, and the executed code is the same with or without it. The experiment stays last."""
    src_cells = json.loads(Path(source).read_text(encoding="utf-8"))["cells"]
    rel_cells = json.loads(Path(released).read_text(encoding="utf-8"))["cells"]
    ids = [notebooks.grade_id(c) for c in src_cells]
    at = ids.index(grade_id)
    answer, question = src_cells[at], src_cells[at - 1]
    meta = notebooks.nbgrader_meta(answer)
    assert answer["cell_type"] == "markdown" and meta["solution"] and meta["grade"] and not meta["locked"]
    assert meta["points"] == points and meta["schema_version"] == 3
    text = notebooks.source_text(answer)
    assert "### BEGIN SOLUTION" in text and "### END SOLUTION" in text and "Rubric" in text
    assert question["cell_type"] == "markdown" and notebooks.nbgrader_meta(question)["locked"]
    assert grade_id not in notebooks.test_cells({"cells": src_cells})
    released_answer = next(c for c in rel_cells if notebooks.grade_id(c) == grade_id)
    assert notebooks.source_text(released_answer).strip() == "YOUR ANSWER HERE"
    assert "Rubric" not in Path(released).read_text(encoding="utf-8")
    # A submission with an answer written in: restored as the student's own cell, text kept.
    submitted = json.loads(json.dumps(rel_cells))
    written = next(c for c in submitted if notebooks.grade_id(c) == grade_id)
    written["source"] = "Because the two classes lie on the diagonals of the square."
    restored = notebooks.restore(src_cells, submitted, set(notebooks.test_cells({"cells": src_cells})))
    kept = [c for c in restored.cells if c.grade_id == grade_id]
    assert [(c.origin, c.cell_type, c.source) for c in kept] == [("student", "markdown", written["source"])]
    assert not restored.notes
    assert notebooks.grade_id(src_cells[-1]) == "experiment" and notebooks.grade_id(src_cells[-2]) == "experiment-text"


def understanding_checks(assignment: str, part_ids: list, *, written_answer: str, points: float):
    """The four tests of a chapter's understanding parts and written answer, to bind in its test module:
    hidden cases vary with the secret seed, guesses lose, every typical mistake explains the right answer,
    and the written answer is left to the formgrader (see the functions above)."""
    source, released = notebook_paths(assignment)

    @pytest.mark.parametrize("part_id", part_ids)
    def test_hidden_cases_of_the_understanding_parts_vary_with_the_secret_seed(hidden_cases, part_id):
        assert_hidden_cases_vary_with_the_seed(hidden_cases, part_id)

    @pytest.mark.parametrize("part_id", part_ids)
    def test_a_constant_answer_or_a_random_guess_loses_each_understanding_part(spec, hidden_cases, part_id):
        assert_guesses_lose(spec, hidden_cases, part_id)

    def test_each_typical_mistake_of_the_understanding_parts_explains_the_right_answer(spec):
        assert_mutants_explain_the_right_answer(spec, part_ids)

    def test_the_written_answer_is_left_to_the_formgrader_with_a_rubric():
        assert_written_answer_is_graded_by_hand(source, released, written_answer, points=points)

    return (test_hidden_cases_of_the_understanding_parts_vary_with_the_secret_seed,
            test_a_constant_answer_or_a_random_guess_loses_each_understanding_part,
            test_each_typical_mistake_of_the_understanding_parts_explains_the_right_answer,
            test_the_written_answer_is_left_to_the_formgrader_with_a_rubric)
