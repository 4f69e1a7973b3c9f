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


def test_every_predict_case_has_ties_and_points_whose_label_depends_on_the_bias(spec):
    """The step's value at 0 and the bias are graded in every case, whatever the secret."""
    for seed in range(5):
        for c in spec.part("perceptron_predict").cases(np.random.default_rng(seed)):
            z = c["X"] @ c["w"][:-1] + c["w"][-1]
            without_bias = c["X"] @ c["w"][:-1]
            assert (z == 0).any(), "no point on the boundary"
            assert ((z > 0) != (without_bias > 0)).any(), "no label depends on the bias"
            assert c["w"][0] != c["w"][-1]


def test_training_cases_converge_at_once_later_and_never(spec):
    """Hidden runs stop after one epoch (all labels 0), after several, or run every epoch."""
    train = spec.part("perceptron_train")
    lengths = []
    for case in train.cases(np.random.default_rng(3)):
        _, mistakes = train.reference(*(torch.tensor(case[k]) for k in ("X", "y", "epochs", "lr")))
        lengths.append((len(mistakes), int(mistakes[-1]) == 0, int(case["epochs"])))
    assert (1, True, lengths[-1][2]) in lengths
    assert any(n > 1 and converged for n, converged, _ in lengths)
    assert any(n == epochs and not converged for n, converged, epochs in lengths)


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


# -- bugs the catalogue does not hold (written after reading it) ----------------------------------------
def _predict_sign_of_z(X, w):
    return np.sign(X @ w[:-1] + w[-1]).astype(np.int64)          # -1 / 0 / +1


def _train_cumulative_mistakes(X, y, *, epochs, lr=1.0):
    Xa = np.hstack([X, np.ones((X.shape[0], 1))])
    w, total, mistakes = np.zeros(Xa.shape[1]), 0, []
    for _ in range(epochs):
        before = total
        for x_i, y_i in zip(Xa, y):
            err = y_i - int(x_i @ w > 0)
            if err:
                w = w + lr * err * x_i
                total += 1
        mistakes.append(total)                                  # a running total, not this epoch's count
        if total == before:
            break
    return w, np.array(mistakes, dtype=np.int64)


def _train_frozen_bias_and_no_early_stop(X, y, *, epochs, lr=1.0):
    Xa = np.hstack([X, np.ones((X.shape[0], 1))])
    w, mistakes = np.zeros(Xa.shape[1]), []
    for _ in range(epochs):                                     # two bugs: never stops early...
        count = 0
        for x_i, y_i in zip(Xa, y):
            err = y_i - int(x_i @ w > 0)
            if err:
                w[:-1] = w[:-1] + lr * err * x_i[:-1]           # ...and never moves the bias
                count += 1
        mistakes.append(count)
    return w, np.array(mistakes, dtype=np.int64)


def _affine_bias_subtracted(x, W, b):
    return x @ W - b


def _softmax_normalised_by_the_batch_total(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum()


def _softmax_no_shift_and_columns(x):
    e = np.exp(x)                                               # two bugs: no shift, and columns
    return e / e.sum(axis=0, keepdims=True)


def _sigmoid_where_of_both_forms(x):
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-x)), np.exp(x) / (1.0 + np.exp(x)))


def _mlp_relu_before_each_layer(x, params):
    h = x
    for W, b in params:
        h = np.maximum(h, 0.0) @ W + b
    return h


def _affine_forgets_the_bias(x, W, b):
    return x @ W


def _mlp_through_affine_forward(x, params):
    h = x
    for i, (W, b) in enumerate(params):
        h = _affine_forgets_the_bias(h, W, b)                   # the student's own Part 3, which forgets b
        if i < len(params) - 1:
            h = np.maximum(h, 0.0)
    return h


UNCATALOGUED = [
    support.Bug("perceptron_predict", "labels from np.sign(z): -1, 0, +1", _predict_sign_of_z),
    support.Bug("perceptron_train", "mistakes as a running total over the epochs", _train_cumulative_mistakes),
    support.Bug("perceptron_train", "two bugs: the bias never moves and training never stops early",
                _train_frozen_bias_and_no_early_stop,    # w is exactly the catalogued frozen bias
                may_name=frozenset({"bias never updated"})),
    support.Bug("affine_forward", "the bias subtracted", _affine_bias_subtracted),
    support.Bug("sigmoid", "np.where with both naive forms: right values, overflow warnings",
                _sigmoid_where_of_both_forms, may_name=frozenset({"exp overflows (numpy warns)"})),
    support.Bug("softmax", "normalised by the total of the whole batch", _softmax_normalised_by_the_batch_total),
    support.Bug("softmax", "two bugs: no max shift, and normalised over columns", _softmax_no_shift_and_columns),
    support.Bug("mlp_forward", "ReLU before each layer instead of after", _mlp_relu_before_each_layer),
    support.Bug("mlp_forward", "two bugs in two parts: mlp_forward calls an affine_forward without bias",
                fn_of={"mlp_forward": _mlp_through_affine_forward, "affine_forward": _affine_forgets_the_bias},
                may_name=frozenset({"no biases"})),
]


def test_bugs_the_catalogue_does_not_hold_are_never_wrongly_named(spec, hidden_cases, solution):
    support.assert_uncatalogued_bugs_are_never_wrongly_named(spec, hidden_cases, solution, UNCATALOGUED)


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
