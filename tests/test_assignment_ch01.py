"""Chapter 1's exercise (solutions/ch01_perceptron_mlp): spec, solution, release, mutants.

The grading machinery must prove, for this assignment: the instructor's solution gets every
point, the released stubs get none, and every typical mistake of the spec's mutant catalogue
loses the points of its own part (with the diagnosis it names) while every other part keeps
its points. Those checks run in-process on hidden-style cases (references from torch, float64);
one slow test runs the real sandboxed pipeline (``python -m autograder check``) end to end.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mlp_lib.modules import Perceptron

import assignment_support as support

ASSIGNMENT = "ch01_perceptron_mlp"
SOURCE, RELEASED = support.notebook_paths(ASSIGNMENT)
SEEDS = (20251122, 7)            # stand-ins for the instructor's secret seed
course, spec, hidden_cases, solution = support.fixtures(ASSIGNMENT, seeds=SEEDS)
MUTANTS = support.mutant_ids(ASSIGNMENT)
UNDERSTANDING = ["needs_hidden_layer", "novikoff_bound"]      # Parts 7 and 8: what the chapter teaches to predict


def test_spec_has_at_least_four_parts_matching_the_notebook_cells(spec):
    assert len(spec.parts) >= 4
    assert [p.id for p in spec.parts] == ["perceptron_predict", "perceptron_train", "affine_forward",
                                          "sigmoid", "softmax", "mlp_forward", *UNDERSTANDING]
    assert sum(p.points for p in spec.parts) == 14
    assert all(len(p.mutants) >= 3 for p in spec.parts), "every part needs a catalogue of typical mistakes"


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


# -- what every assignment must prove (tests/assignment_support.py) -----------------------------------

def test_solution_gets_every_point_on_hidden_cases(spec, hidden_cases, solution):
    support.assert_solution_gets_every_point(spec, hidden_cases, solution)


def test_released_stubs_get_no_point(spec, hidden_cases):
    support.assert_stubs_get_no_point(spec, hidden_cases, RELEASED)


@pytest.mark.parametrize("part_id, mutant", MUTANTS)
def test_each_mutant_loses_its_own_part_only_with_its_diagnosis(spec, hidden_cases, solution, part_id, mutant):
    support.assert_mutant_loses_its_part_only(spec, hidden_cases, solution, part_id, mutant)


@pytest.mark.slow
def test_solution_and_release_through_the_sandboxed_check(course):
    support.assert_sandboxed_check(course, SOURCE, RELEASED, points=14)


# -- Parts 7 to 9: understanding, graded automatically and by hand --------------------------------------

def test_the_separable_tables_are_exactly_the_known_threshold_functions(spec):
    """The reference's list of functions one perceptron computes has the known sizes (14 of 16 functions of
    2 bits, 104 of 256 of 3 bits, 1882 of 65536 of 4 bits), and on 2 and 3 bits it agrees with what the
    learning rule finds: it stops on exactly those tables (the convergence theorem) and never on the others."""
    grading = __import__(spec.part("needs_hidden_layer").cases.__module__)
    assert [len(grading._threshold_tables(d)) for d in (2, 3, 4)] == [14, 104, 1882]
    for d in (2, 3):
        X = grading._bits(d)
        for code in range(2 ** 2 ** d):
            y = np.array([(code >> k) & 1 for k in range(2 ** d)])
            unit = Perceptron(d)
            mistakes = unit.fit(X, y, epochs=300)
            assert (mistakes[-1] == 0) == grading._is_separable(X, y), (d, y)


def test_hidden_functions_are_balanced_and_hold_the_traps(hidden_cases):
    for cases in hidden_cases.values():
        answers = [str(c.expected["answer"]) for c in cases["needs_hidden_layer"]]
        assert answers.count("one perceptron") == answers.count("hidden layer needed") == 5
        sizes = sorted({c.inputs["X"].shape[1] for c in cases["needs_hidden_layer"]})
        assert sizes == [2, 3, 4]


def test_novikoff_reference_bounds_the_mistakes_of_mlp_lib_perceptron(spec, hidden_cases):
    part = spec.part("novikoff_bound")
    for cases in hidden_cases.values():
        for case in cases["novikoff_bound"]:
            X, y, u = (case.inputs[k] for k in ("X", "y", "u"))
            bound = float(case.expected["bound"])
            mistakes = Perceptron(X.shape[1]).fit(X, y, epochs=10_000)
            assert mistakes[-1] == 0 and sum(mistakes) <= bound and set(y.tolist()) == {0, 1}
            again = part.reference(*(torch.tensor(v) for v in (X, y, 7.5 * u))).item()
            assert np.isclose(again, bound, rtol=1e-12)


(test_hidden_cases_of_the_understanding_parts_vary_with_the_secret_seed,
 test_a_constant_answer_or_a_random_guess_loses_each_understanding_part,
 test_each_typical_mistake_of_the_understanding_parts_explains_the_right_answer,
 test_the_written_answer_is_left_to_the_formgrader_with_a_rubric) = support.understanding_checks(
    ASSIGNMENT, UNDERSTANDING, written_answer="xor-answer", points=3)


@pytest.mark.slow
def test_grading_records_the_written_answer_in_the_gradebook_for_the_formgrader(tmp_path):
    """``grade`` scores the automatic parts and records the written answer in nbgrader's gradebook as a cell
    that still needs a manual grade: its points count in the maximum, not in the automatic score."""
    import shutil

    from nbgrader.api import Gradebook

    from autograder.cli import main
    from autograder.course import Course

    shutil.copytree(support.ROOT / "solutions" / ASSIGNMENT, tmp_path / "solutions" / ASSIGNMENT)
    submitted = tmp_path / "course" / "submitted" / "alice" / ASSIGNMENT
    submitted.mkdir(parents=True)
    shutil.copy(SOURCE, submitted / SOURCE.name)
    assert main(["--course", str(tmp_path), "grade", "--no-progress", "--workers", "1"]) == 0
    gb = Gradebook(Course.open(tmp_path).db_url)
    try:
        submission = gb.find_submission(ASSIGNMENT, "alice")
        written = [g for nb in submission.notebooks for g in nb.grades if g.name == "xor-answer"]
        assert [(g.max_score, g.auto_score, g.needs_manual_grade) for g in written] == [(3.0, None, True)]
        assert (submission.score, submission.max_score) == (14.0, 17.0)
    finally:
        gb.close()
