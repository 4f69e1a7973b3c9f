"""Every grading spec's mutant catalogue, in-process, under five different secrets: each typical wrong
answer loses its part's points, and only those, and the feedback names it by its own description;
graded as if it were not in the catalogue, it is not mislabelled (no other mistake named, and the
generic finding the spec expects is found); the instructor's solution gets every point.

Runs for the fixture course and for every assignment in the repository's solutions/ (chapters
get this check for free). Outputs come from the same harness code the student's process runs
(:func:`autograder.pipeline.judge_in_process`), references from torch in float64.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import agtools  # noqa: E402
from autograder import booklinks, compare, notebooks, pipeline, references  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.spec import load_spec  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COURSES = {"fixture": agtools.FIXTURE, "repo": REPO}
SEEDS = (0x5EED, 1, 2, 3, 4)          # the hidden cases of five different secrets


def _assignments():
    """The fixture's assignment, and the repository's chapters (slow: their own tests cover them too)."""
    out = []
    for label, root in COURSES.items():
        marks = [pytest.mark.slow] if label == "repo" else []
        for name in Course.open(root).assignments():
            out.append(pytest.param(label, name, id=f"{label}:{name}", marks=marks))
    return out


_cache: dict = {}


def prepared(label: str, assignment: str):
    """(spec, plans by id, {seed: hidden cases by part}, the solution's namespace), computed once per assignment."""
    key = (label, assignment)
    if key not in _cache:
        course = Course.open(COURSES[label])
        spec = load_spec(course, assignment)
        cases = {seed: {k: v.cases for k, v in references.compute(spec, seed, "cpu").items()} for seed in SEEDS}
        namespace: dict = {}
        for path in course.source_notebooks(assignment):
            for code in notebooks.solution_namespace_cells(notebooks.read_trusted(path)["cells"]):
                exec(compile(code, f"<{path.name}>", "exec"), namespace)
        _cache[key] = (spec, {p.id: p for p in spec.plans()}, cases, namespace)
    return _cache[key]


def verdict(spec, plan, cases, namespace, *, without=None):
    """The part's verdict; ``without``: judged as if that mistake were not in the catalogue."""
    outs = pipeline.in_process_outputs(plan, namespace, [c.inputs for c in cases], spec.helpers)
    if outs.error is not None:
        return compare.judge_part(plan, cases, None, part_error=outs.error)
    catalogue = {k: v for k, v in pipeline.catalogue(spec.part(plan.id)).items() if k != without}
    return compare.judge_part(plan, cases, outs.cases, catalogue=catalogue)


def _same_outcome(a, b) -> bool:
    if (a.error is None) != (b.error is None):
        return False
    if a.error is not None:
        return compare._same_error(a.error, b.error)
    return a.outputs.keys() == b.outputs.keys() and all(
        np.array_equal(a.outputs[k], b.outputs[k], equal_nan=a.outputs[k].dtype.kind == "f") for k in a.outputs)


@pytest.mark.parametrize("label, assignment", _assignments())
def test_the_solution_scores_every_point(label, assignment):
    spec, plans, by_seed, namespace = prepared(label, assignment)
    for seed, cases in by_seed.items():
        for pid, plan in plans.items():
            v = verdict(spec, plan, cases[pid], namespace)
            assert v.status == "passed" and v.points == plan.points, (seed, pid, v.messages)


@pytest.mark.parametrize("label, assignment", _assignments())
def test_every_mistake_is_caught_under_any_secret_and_named_by_its_own_feedback(label, assignment):
    spec, plans, by_seed, namespace = prepared(label, assignment)
    assert any(p.mutants for p in spec.parts), "a spec should catalogue typical mistakes"
    for part in spec.parts:
        for name, mutant in part.mutants.items():
            assert mutant.feedback, f"{part.id}: mistake {name!r} has no feedback for the student"
            assert mutant.book is None or mutant.book in booklinks.labels(), (part.id, name, mutant.book)
            mutated = {**namespace, part.function: mutant.fn}
            for seed, cases in by_seed.items():
                mine = verdict(spec, plans[part.id], cases[part.id], mutated)
                assert mine.points == 0 and mine.status in ("failed", "error"), (seed, part.id, name, mine.messages)
                named = {d[len("mutant:"):] for d in mine.diagnoses if d.startswith("mutant:")}
                assert name in named, (seed, part.id, name, mine.messages)
                # another mistake named with it must give the same values on every case: a tie the feedback
                # states plainly ("match several known mistakes"), never a guess
                for other in named - {name}:
                    assert all(_same_outcome(c.mutants[name], c.mutants[other]) for c in cases[part.id]), \
                        (seed, part.id, name, "named with", other)


@pytest.mark.parametrize("label, assignment", _assignments())
def test_a_mistake_missing_from_the_catalogue_is_never_mislabelled(label, assignment):
    """Graded as a new, uncatalogued bug: no other mistake is named, and the expected generic finding is stated."""
    spec, plans, by_seed, namespace = prepared(label, assignment)
    seed, cases = next(iter(by_seed.items()))
    for part in spec.parts:
        for name, mutant in part.mutants.items():
            mutated = {**namespace, part.function: mutant.fn}
            v = verdict(spec, plans[part.id], cases[part.id], mutated, without=name)
            named = [d for d in v.diagnoses if d.startswith("mutant:")]    # "partly:" only states a fact
            assert not named, (part.id, name, "named as", named, v.messages)
            if mutant.diagnosis is not None:
                assert mutant.diagnosis in v.diagnoses, (part.id, name, v.messages)


@pytest.mark.parametrize("label, assignment", _assignments())
def test_each_mistake_costs_its_own_part_only(label, assignment):
    spec, plans, by_seed, namespace = prepared(label, assignment)
    seed, cases = next(iter(by_seed.items()))
    for part in spec.parts:
        for name, mutant in part.mutants.items():
            mutated = {**namespace, part.function: mutant.fn}
            for pid, plan in plans.items():
                if pid != part.id and part.function not in plan.functions:
                    other = verdict(spec, plan, cases[pid], mutated)
                    assert other.points == plan.points, (part.id, name, "also cost", pid, other.messages)


def test_the_readmes_minimal_example_is_a_working_assignment(tmp_path):
    """autograder/README.md's example, taken from the README itself: releases, grades, catches its mutants."""
    import json
    import re

    from autograder import release

    readme = (REPO / "autograder" / "README.md").read_text()
    nb = json.loads(re.search(r"```json\n(.*?)```", readme, re.S).group(1))
    spec_src = re.search(r"`solutions/ch99_relu/grading.py`:\n\n```python\n(.*?)```", readme, re.S).group(1)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    folder = tmp_path / "solutions" / "ch99_relu"
    folder.mkdir(parents=True)
    (folder / "relu.ipynb").write_text(json.dumps(nb))
    (folder / "grading.py").write_text(spec_src)
    course = Course.open(tmp_path)
    release.release(course)
    assert release.check(course) == []
    COURSES["readme"] = tmp_path
    try:
        test_the_solution_scores_every_point("readme", "ch99_relu")
        test_every_mistake_is_caught_under_any_secret_and_named_by_its_own_feedback("readme", "ch99_relu")
        test_a_mistake_missing_from_the_catalogue_is_never_mislabelled("readme", "ch99_relu")
    finally:
        COURSES.pop("readme")
