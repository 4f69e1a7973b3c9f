"""Chapter 1's exercise (solutions/ch01_perceptron_mlp): spec, solution, release, mutants.

The grading machinery must prove, for this assignment: the instructor's solution gets every
point, the released stubs get none, and every typical mistake of the spec's mutant catalogue
loses the points of its own part (with the diagnosis it names) while every other part keeps
its points. Those checks run in-process on hidden-style cases (references from torch, float64);
one slow test runs the real sandboxed pipeline (``python -m autograder check``) end to end.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder import pipeline, references, release
from autograder.course import Course
from autograder.spec import load_spec
from mlp_lib.modules import Perceptron

ASSIGNMENT = "ch01_perceptron_mlp"
ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
RELEASED = ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
SEEDS = (20251122, 7)            # stand-ins for the instructor's secret seed


@pytest.fixture(scope="module")
def course():
    return Course.open(ROOT)


@pytest.fixture(scope="module")
def spec(course):
    return load_spec(course, ASSIGNMENT)


@pytest.fixture(scope="module")
def hidden_cases(spec):
    """{seed: {part id: [CaseData]}} with torch references, computed once."""
    return {seed: {pid: data.cases for pid, data in references.compute(spec, seed, "cpu").items()}
            for seed in SEEDS}


def answer_namespace(path: Path) -> dict:
    """Execute a notebook's setup and answer cells (not its tests) and return the namespace."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    namespace: dict = {}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] == "code" and (meta.get("solution") or meta.get("grade_id") == "setup"):
            exec(compile("".join(cell["source"]), f"<{path.name}:{meta.get('grade_id')}>", "exec"), namespace)
    return namespace


def verdicts(spec, namespace: dict, cases: dict) -> dict:
    plans = {p.id: p for p in spec.plans()}
    return {pid: pipeline.judge_in_process(plans[pid], namespace, cases[pid]) for pid in plans}


def test_spec_has_at_least_four_parts_matching_the_notebook_cells(spec):
    assert len(spec.parts) >= 4
    assert [p.id for p in spec.parts] == ["perceptron_predict", "perceptron_train", "affine_forward",
                                          "sigmoid", "softmax", "mlp_forward"]
    assert sum(p.points for p in spec.parts) == 10
    assert all(len(p.mutants) >= 3 for p in spec.parts), "every part needs a catalogue of typical mistakes"


def test_solution_gets_every_point_on_hidden_cases(spec, hidden_cases):
    namespace = answer_namespace(SOURCE)
    for seed, cases in hidden_cases.items():
        for pid, v in verdicts(spec, namespace, cases).items():
            assert v.status == "passed", f"seed {seed}, part {pid}: {v.messages}"


def test_released_stubs_get_no_point(spec, hidden_cases):
    namespace = answer_namespace(RELEASED)
    for pid, v in verdicts(spec, namespace, hidden_cases[SEEDS[0]]).items():
        assert v.points == 0 and v.status in ("error", "failed"), f"{pid}: {v.status} {v.messages}"
        assert "NotImplementedError" in " ".join(v.messages)


MUTANTS = [(part.id, name) for part in load_spec(Course.open(ROOT), ASSIGNMENT).parts for name in part.mutants]


@pytest.mark.parametrize("part_id, mutant", MUTANTS, ids=[f"{p}:{m}" for p, m in MUTANTS])
def test_each_mutant_loses_its_own_part_only_with_its_diagnosis(spec, hidden_cases, part_id, mutant):
    part = spec.part(part_id)
    namespace = answer_namespace(SOURCE)
    namespace[part.function] = part.mutants[mutant].fn
    for seed, cases in hidden_cases.items():
        results = verdicts(spec, namespace, cases)
        v = results[part_id]
        assert v.points == 0, f"seed {seed}: mutant {mutant!r} of {part_id} was not caught: {v.messages}"
        wanted = part.mutants[mutant].diagnosis
        if wanted is not None:
            assert wanted in v.diagnoses, f"seed {seed}: {mutant!r} diagnosed {v.diagnoses}, wanted {wanted}"
        others = {pid: r.status for pid, r in results.items() if pid != part_id and r.status != "passed"}
        assert not others, f"seed {seed}: mutant {mutant!r} of {part_id} also broke {others}"


def test_perceptron_references_agree_with_mlp_lib_perceptron(spec):
    """The two oracles of the perceptron parts (torch reference, mlp_lib) follow one convention."""
    predict, train = spec.part("perceptron_predict"), spec.part("perceptron_train")
    rng = np.random.default_rng(1958)
    for case in predict.cases(rng):
        unit = Perceptron(case["X"].shape[1])
        unit.coef = case["w"].copy()
        expected = predict.reference(torch.tensor(case["X"]), torch.tensor(case["w"])).numpy()
        np.testing.assert_array_equal(unit.predict(case["X"]), expected)
    for case in train.cases(rng):
        unit = Perceptron(case["X"].shape[1], lr=float(case["lr"]))
        mistakes = unit.fit(case["X"], case["y"], epochs=int(case["epochs"]))
        w, ref_mistakes = train.reference(*(torch.tensor(case[k]) for k in ("X", "y", "epochs", "lr")))
        assert mistakes == ref_mistakes.tolist()
        np.testing.assert_array_equal(unit.coef, w.numpy())


def test_perceptron_cases_exercise_the_step_at_zero_and_both_endings(spec):
    """Hidden cases must contain points with z == 0, runs that converge and runs that do not."""
    rng = np.random.default_rng(3)
    predict_cases = spec.part("perceptron_predict").cases(rng)
    assert any(((c["X"] @ c["w"][:-1] + c["w"][-1]) == 0).any() for c in predict_cases)
    train = spec.part("perceptron_train")
    endings = []
    for case in train.cases(rng):
        _, mistakes = train.reference(*(torch.tensor(case[k]) for k in ("X", "y", "epochs", "lr")))
        endings.append(int(mistakes[-1]) == 0)
    assert any(endings) and not all(endings)


def test_mlp_reference_matches_a_torch_sequential_built_through_interop(spec):
    from mlp_lib.interop import to_torch_sequential
    from mlp_lib.modules import Linear, ReLU, Sequential

    part = spec.part("mlp_forward")
    for case in part.cases(np.random.default_rng(5)):
        dims, theta, k, layers = case["dims"], case["theta"], 0, []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            W = theta[k:k + a * b].reshape(a, b)
            k += a * b
            layers.append(Linear.from_arrays(W, theta[k:k + b]))
            k += b
            if i < len(dims) - 2:
                layers.append(ReLU())
        model = to_torch_sequential(Sequential(*layers))
        with torch.no_grad():
            want = model(torch.tensor(case["x"])).numpy()
        got = part.reference(*(torch.tensor(case[n]) for n in ("x", "dims", "theta"))).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_release_is_generated_from_the_source(course):
    assert release.check(course, [ASSIGNMENT]) == []


@pytest.mark.slow
def test_solution_and_release_through_the_sandboxed_check(course):
    from autograder.selfcheck import check_notebook

    solved = check_notebook(course, SOURCE)
    assert solved.score == solved.max_score == 10
    assert not solved.cell_errors, f"public tests or the experiment failed on the solution: {solved.cell_errors}"
    stub = check_notebook(course, RELEASED)
    assert stub.score == 0
