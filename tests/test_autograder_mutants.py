"""Every grading spec's mutant catalogue, in-process: each typical wrong answer loses its part's points
and only those, with the diagnosis the spec names; the instructor's solution gets every point.

Runs for the fixture course and for every assignment in the repository's solutions/ (chapters
get this check for free). Outputs come from the same harness code the student's process runs
(:func:`autograder.pipeline.judge_in_process`), references from torch in float64.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import agtools  # noqa: E402
from autograder import notebooks, pipeline, references  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.spec import load_spec  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COURSES = {"fixture": agtools.FIXTURE, "repo": REPO}
SEED = 0x5EED


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
    """(spec, plans by id, hidden cases by part, the solution's namespace), computed once per assignment."""
    key = (label, assignment)
    if key not in _cache:
        course = Course.open(COURSES[label])
        spec = load_spec(course, assignment)
        data = references.compute(spec, SEED, "cpu")
        namespace: dict = {}
        for path in course.source_notebooks(assignment):
            for code in notebooks.solution_namespace_cells(notebooks.read_trusted(path)["cells"]):
                exec(compile(code, f"<{path.name}>", "exec"), namespace)
        _cache[key] = (spec, {p.id: p for p in spec.plans()}, {k: v.cases for k, v in data.items()}, namespace)
    return _cache[key]


def verdicts(plans, cases, namespace):
    return {pid: pipeline.judge_in_process(plan, namespace, cases[pid]) for pid, plan in plans.items()}


@pytest.mark.parametrize("label, assignment", _assignments())
def test_the_solution_scores_every_point(label, assignment):
    spec, plans, cases, namespace = prepared(label, assignment)
    for pid, verdict in verdicts(plans, cases, namespace).items():
        assert verdict.status == "passed" and verdict.points == plans[pid].points, (pid, verdict.messages)


@pytest.mark.parametrize("label, assignment", _assignments())
def test_every_mutant_loses_its_part_only_with_its_diagnosis(label, assignment):
    spec, plans, cases, namespace = prepared(label, assignment)
    assert any(p.mutants for p in spec.parts), "a spec should catalogue typical mistakes"
    for part in spec.parts:
        for name, mutant in part.mutants.items():
            mutated = dict(namespace)
            mutated[part.function] = mutant.fn
            result = verdicts(plans, cases, mutated)
            mine = result[part.id]
            assert mine.points == 0 and mine.status in ("failed", "error"), (part.id, name, mine.messages)
            assert mine.messages, (part.id, name)
            if mutant.diagnosis is not None:
                assert mutant.diagnosis in mine.diagnoses, (part.id, name, mine.messages)
                assert "Likely cause" in " ".join(mine.messages)
            for pid, other in result.items():
                if pid != part.id and part.function not in plans[pid].functions:
                    assert other.points == plans[pid].points, (part.id, name, "also cost", pid, other.messages)


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
        test_every_mutant_loses_its_part_only_with_its_diagnosis("readme", "ch99_relu")
    finally:
        COURSES.pop("readme")
