"""Chapter 7's exercise (solutions/ch07_batch_normalization): spec, solution, release, mutants.

The grading machinery must prove, for this assignment: the instructor's solution gets every
point, the released stubs get none, and every typical mistake of the spec's mutant catalogue
loses the points of its own part (with the diagnosis it names) while every other part keeps
its points. Those checks run in-process on hidden-style cases (references from torch, float64);
the slow tests run the real sandboxed pipeline (``python -m autograder check``) end to end.

The torch references are themselves checked against the second oracle, ``mlp_lib.normalization``
(tested against torch in tests/test_normalization.py), so that the spec's conventions (population
standard deviation, constant features left unscaled, biased variance to normalize, unbiased running
variance, momentum weighting the new statistic, the cache format) are the book's.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder import references
from mlp_lib import normalization

import assignment_support as support

ASSIGNMENT = "ch07_batch_normalization"
SOURCE, RELEASED = support.notebook_paths(ASSIGNMENT)
SEEDS = (20251122, 7)            # stand-ins for the instructor's secret seed
course, spec, hidden_cases, solution = support.fixtures(ASSIGNMENT, seeds=SEEDS)
verdicts = support.verdicts
MUTANTS = support.mutant_ids(ASSIGNMENT)
UNDERSTANDING = ["expected_running_stats", "which_statistics"]   # Parts 6 and 7: what the chapter teaches


def tensors(case: dict) -> dict:
    return {k: torch.tensor(v) for k, v in case.items()}


def _mlp_lib_standardizer_fit(X):
    fitted = normalization.Standardizer().fit(X)
    return fitted.mean_, fitted.scale_


def _mlp_lib_standardizer_transform(X, mean, scale):
    fitted = normalization.Standardizer().fit(np.zeros((1, X.shape[1])))   # then set the statistics given
    fitted.mean_, fitted.scale_ = mean, scale
    return fitted.transform(X)


MLP_LIB = {"standardizer_fit": _mlp_lib_standardizer_fit, "standardizer_transform": _mlp_lib_standardizer_transform,
           "batchnorm_forward": normalization.batchnorm_forward, "batchnorm_backward": normalization.batchnorm_backward}


def test_spec_has_the_five_parts_of_the_exercise_matching_the_notebook_cells(spec):
    assert [p.id for p in spec.parts] == ["standardizer_fit", "standardizer_transform", "batchnorm_forward_train",
                                          "batchnorm_forward_eval", "batchnorm_backward", *UNDERSTANDING]
    assert sum(p.points for p in spec.parts) == 14
    assert all(len(p.mutants) >= 4 for p in spec.parts), "every part needs a catalogue of typical mistakes"
    assert all(p.rtol <= 1e-7 for p in spec.parts)


def test_solution_passes_on_many_seeds(spec, solution):
    """The tolerances hold with margin, not by luck of two seeds."""
    for seed in range(5):
        cases = {pid: data.cases for pid, data in references.compute(spec, seed, "cpu").items()}
        for pid, v in verdicts(spec, solution, cases).items():
            assert v.status == "passed", f"seed {seed}, part {pid}: {v.messages}"


def test_mlp_lib_implementations_pass_the_hidden_cases(spec, hidden_cases):
    """mlp_lib (which the book uses) and the grader agree on every convention."""
    library_parts = [p.id for p in spec.parts if p.function in MLP_LIB]
    for cases in hidden_cases.values():
        for pid, v in verdicts(spec, MLP_LIB, cases, library_parts).items():
            assert v.status == "passed", f"mlp_lib's {pid}: {v.messages}"


# -- the torch references follow mlp_lib's conventions (the second oracle) -----------------------

def test_fit_reference_is_mlp_lib_standardizer_and_constant_features_get_scale_one_exactly(spec):
    part = spec.part("standardizer_fit")
    cases = part.cases(np.random.default_rng(1))
    n_constant = 0
    for case in cases:
        X = case["X"]
        mean, scale = (t.numpy() for t in part.reference(**tensors(case)))
        fitted = normalization.Standardizer().fit(X)
        np.testing.assert_allclose(mean, fitted.mean_, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(scale, fitted.scale_, rtol=1e-12)
        constant = np.ptp(X, axis=0) == 0
        n_constant += int(constant.sum())
        assert np.all(scale[constant] == 1.0) and np.all(X.std(axis=0)[constant] == 0.0)
        tiny = (X.std(axis=0) > 0) & (X.std(axis=0) < 1e-2)
        assert tiny.sum() == 1, "every case has one feature with a tiny genuine spread"
        assert X.shape[0] != X.shape[1]
    assert n_constant == 3, "three of the four cases hold one exactly constant feature"


def test_transform_cases_are_not_standardized_by_their_own_statistics(spec):
    part = spec.part("standardizer_transform")
    for case in part.cases(np.random.default_rng(2)):
        Z = part.reference(**tensors(case)).numpy()
        np.testing.assert_allclose(Z, (case["X"] - case["mean"]) / case["scale"], rtol=1e-12)
        assert np.abs(Z.mean(axis=0)).max() > 0.1          # re-fitting on X would give mean 0
        assert (case["scale"] == 1.0).any()


def test_train_reference_matches_mlp_lib_forward_and_cases_cover_the_conventions(spec):
    part = spec.part("batchnorm_forward_train")
    cases = part.cases(np.random.default_rng(3))
    for case in cases:
        out, cache, new_mean, new_var = normalization.batchnorm_forward(
            case["x"], case["gamma"], case["beta"], case["running_mean"], case["running_var"], training=True,
            momentum=float(case["momentum"]), eps=float(case["eps"]))
        ref = [t.numpy() for t in part.reference(**tensors(case))]
        for want, got in zip((out, cache["xc"], cache["inv_std"], new_mean, new_var), ref):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        assert float(case["momentum"]) != 0.5 and case["x"].shape[0] != case["x"].shape[1]
    assert min(c["x"].shape[0] for c in cases) == 2, "a batch of two: biased and unbiased variance differ by 2x"
    assert any((c["x"].var(axis=0) < float(c["eps"])).any() for c in cases), "a feature whose variance is below eps"
    assert len({float(c["eps"]) for c in cases}) > 1 and len({float(c["momentum"]) for c in cases}) == len(cases)


def test_eval_reference_matches_mlp_lib_forward_and_includes_a_single_example(spec):
    part = spec.part("batchnorm_forward_eval")
    cases = part.cases(np.random.default_rng(4))
    for case in cases:
        out, cache, new_mean, new_var = normalization.batchnorm_forward(
            case["x"], case["gamma"], case["beta"], case["running_mean"], case["running_var"], training=False,
            momentum=float(case["momentum"]), eps=float(case["eps"]))
        ref = [t.numpy() for t in part.reference(**tensors(case))]
        for want, got in zip((out, cache["xc"], cache["inv_std"], new_mean, new_var), ref):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert min(c["x"].shape[0] for c in cases) == 1


class _MlpLibStudent:
    """A 'student' whose backward pass is mlp_lib's (to run the spec's adapter)."""
    batchnorm_backward = staticmethod(normalization.batchnorm_backward)


def test_backward_adapter_cache_is_mlp_lib_forward_cache_and_reference_is_its_backward(spec):
    part = spec.part("batchnorm_backward")
    cases = part.cases(np.random.default_rng(5))
    assert sorted(int(c["training"]) for c in cases) == [0, 1, 1, 1]
    for case in cases:
        training = bool(int(case["training"]))
        beta = np.zeros_like(case["gamma"])
        _, cache, _, _ = normalization.batchnorm_forward(case["x"], case["gamma"], beta, case["running_mean"],
                                                         case["running_var"], training=training,
                                                         eps=float(case["eps"]))
        want = normalization.batchnorm_backward(case["dout"], cache)
        via_adapter = part.call(_MlpLibStudent(), **{k: v.copy() for k, v in case.items()})
        ref = [t.numpy() for t in part.reference(**tensors(case))]
        for w, a, r in zip(want, via_adapter, ref):
            np.testing.assert_allclose(a, w, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(r, w, rtol=1e-10, atol=1e-12)


def test_constant_statistics_mutant_is_right_in_inference_mode_and_caught_in_training_mode(spec):
    """The classic mistake is only wrong where the statistics depend on x: each training case shows it."""
    part = spec.part("batchnorm_backward")
    wrong = part.mutants["batch mean and variance treated as constants"].fn

    class Student:
        batchnorm_backward = staticmethod(wrong)

    for case in part.cases(np.random.default_rng(6)):
        got = part.call(Student(), **{k: v.copy() for k, v in case.items()})
        ref = [t.numpy() for t in part.reference(**tensors(case))]
        dx_ok = np.allclose(got[0], ref[0], rtol=part.rtol, atol=part.atol)
        assert dx_ok == (int(case["training"]) == 0)


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


# -- Parts 6 to 8: understanding, graded automatically and by hand --------------------------------------

@pytest.mark.parametrize("keras", [False, True])
def test_expected_running_stats_are_the_average_of_many_simulated_layers(spec, keras):
    """4000 independent features with the same mean and variance are 4000 independent runs of the running
    averages: torch's rule through mlp_lib's batchnorm_forward, Keras' written out (weight of the old value,
    biased batch variance). Their averages match the expectations of the reference."""
    rng = np.random.default_rng(70)
    d, m, steps, mu, var = 4000, 4, 60, 3.0, 4.0
    momentum = 0.95 if keras else 0.05
    running_mean, running_var = np.zeros(d), np.ones(d)
    for _ in range(steps):
        x = mu + np.sqrt(var) * rng.standard_normal((m, d))
        if keras:
            running_mean = momentum * running_mean + (1 - momentum) * x.mean(axis=0)
            running_var = momentum * running_var + (1 - momentum) * x.var(axis=0)
        else:
            _, _, running_mean, running_var = normalization.batchnorm_forward(
                x, np.ones(d), np.zeros(d), running_mean, running_var, training=True, momentum=momentum)
    expected_mean, expected_var = spec.part("expected_running_stats").reference(
        torch.tensor([mu]), torch.tensor([var]), torch.tensor(m), torch.tensor(steps), torch.tensor(momentum),
        torch.tensor(keras))
    assert running_mean.mean() == pytest.approx(expected_mean.item(), rel=0.01)
    assert running_var.mean() == pytest.approx(expected_var.item(), rel=0.03)


def test_which_statistics_cases_are_mlp_lib_standardizers_of_distinct_data(hidden_cases):
    """Every pipeline's statistics are those of an mlp_lib Standardizer fitted on the named data, the three
    candidates differ, and the training split has blank features (scale 1) that the test split has not."""
    for cases in hidden_cases.values():
        for case in cases["which_statistics"]:
            X_train, X_test = case.inputs["X_train"], case.inputs["X_test"]
            data = {"the training split": X_train, "training and test together": np.vstack([X_train, X_test]),
                    "the data being predicted": X_test}
            fitted = {name: _mlp_lib_standardizer_fit(X) for name, X in data.items()}
            for mean, scale, answer in zip(case.inputs["means"], case.inputs["scales"], case.expected["fitted_on"]):
                np.testing.assert_allclose(mean, fitted[str(answer)][0], rtol=1e-12)
                np.testing.assert_allclose(scale, fitted[str(answer)][1], rtol=1e-12)
            assert ((X_train == 0).all(axis=0) & (X_test != 0).any(axis=0)).any()
            assert len({tuple(np.round(f[0], 6)) for f in fitted.values()}) == 3


(test_hidden_cases_of_the_understanding_parts_vary_with_the_secret_seed,
 test_a_constant_answer_or_a_random_guess_loses_each_understanding_part,
 test_each_typical_mistake_of_the_understanding_parts_explains_the_right_answer,
 test_the_written_answer_is_left_to_the_formgrader_with_a_rubric) = support.understanding_checks(
    ASSIGNMENT, UNDERSTANDING, written_answer="inference-answer", points=3)
