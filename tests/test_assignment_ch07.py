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
    """The arguments a reference receives: tensors, and strings as they are."""
    return {k: v if isinstance(v, str) else torch.tensor(v) for k, v in case.items()}


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

def test_fit_reference_is_mlp_lib_standardizer_and_every_case_holds_the_deliberate_features(spec):
    """Every case: a constant feature whose std computes to exactly 0, one whose std computes to rounding
    noise (so that ``std == 0`` misses it), both scaled by 1; a feature with a tiny genuine spread; and a
    case in small units, where adding 1e-8 to the standard deviations shows."""
    part = spec.part("standardizer_fit")
    for seed in range(5):
        cases = part.cases(np.random.default_rng(seed))
        small_units = 0
        for case in cases:
            X = case["X"]
            mean, scale = (t.numpy() for t in part.reference(**tensors(case)))
            fitted = normalization.Standardizer().fit(X)
            np.testing.assert_allclose(mean, fitted.mean_, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(scale, fitted.scale_, rtol=1e-12)
            constant = np.ptp(X, axis=0) == 0
            std = X.std(axis=0)
            assert np.all(scale[constant] == 1.0)
            assert (std[constant] == 0).sum() == 1 and (std[constant] > 0).sum() == 1
            assert np.all(std[constant] < 1e-15)
            tiny = ~constant & (std < 1e-2) & (np.abs(X.mean(axis=0) - 0.7) < 0.01)
            assert tiny.sum() >= 1, "every case has a feature with a tiny genuine spread"
            small_units += bool(np.all(std[~constant] < 1.1e-2))
            assert X.shape[0] != X.shape[1]
        assert small_units >= 1


def test_transform_cases_are_not_standardized_by_their_own_statistics(spec):
    part = spec.part("standardizer_transform")
    for case in part.cases(np.random.default_rng(2)):
        Z = part.reference(**tensors(case)).numpy()
        np.testing.assert_allclose(Z, (case["X"] - case["mean"]) / case["scale"], rtol=1e-12)
        assert np.abs(Z.mean(axis=0)).max() > 0.1          # re-fitting on X would give mean 0
        assert (case["scale"] == 1.0).any()
    assert any(np.sort(c["scale"])[-2] < 1e-2 for c in part.cases(np.random.default_rng(2))), "a case in small units"


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
    assert sorted(c["mode"] for c in cases) == ["inference", "training", "training", "training"]
    for case in cases:
        training = case["mode"] == "training"
        beta = np.zeros_like(case["gamma"])
        _, cache, _, _ = normalization.batchnorm_forward(case["x"], case["gamma"], beta, case["running_mean"],
                                                         case["running_var"], training=training,
                                                         eps=float(case["eps"]))
        want = normalization.batchnorm_backward(case["dout"], cache)
        via_adapter = part.call(_MlpLibStudent(), **case)
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
        got = part.call(Student(), **case)
        ref = [t.numpy() for t in part.reference(**tensors(case))]
        dx_ok = np.allclose(got[0], ref[0], rtol=part.rtol, atol=part.atol)
        assert dx_ok == (case["mode"] == "inference")


# -- bugs the catalogue does not hold (written after reading it) ------------------------------------
def _fit_two_bugs(X):
    """Two bugs at once: the sample standard deviation, and constant features found by std == 0."""
    std = X.std(axis=0, ddof=1)
    return X.mean(axis=0), np.where(std == 0, 1.0, std)


def _fit_whole_matrix(X):
    """One mean and one standard deviation for the whole matrix, repeated for every feature."""
    d = X.shape[1]
    return np.full(d, X.mean()), np.full(d, X.std())


def _transform_safe_division(X, mean, scale):
    return (X - mean) / (scale + 1e-8)


def _bn_forward(x, gamma, beta, running_mean, running_var, *, training, momentum=0.1, eps=1e-5,
                with_beta=True, keras=False, biased_running=False, eval_eps=True):
    n = x.shape[0]
    if training:
        mean, var = x.mean(axis=0), x.var(axis=0)
        xc, inv_std = x - mean, 1.0 / np.sqrt(var + eps)
        weight = 1.0 - momentum if keras else momentum
        new_mean = (1.0 - weight) * running_mean + weight * mean
        new_var = (1.0 - weight) * running_var + weight * (var if biased_running else var * n / (n - 1))
    else:
        xc = x - running_mean
        inv_std = 1.0 / np.sqrt(running_var + (eps if eval_eps else 0.0))
        new_mean, new_var = running_mean.copy(), running_var.copy()
    out = gamma * xc * inv_std + (beta if with_beta else 0.0)
    return out, {"training": training, "xc": xc, "gamma": gamma, "inv_std": inv_std}, new_mean, new_var


def _bn_forward_without_beta(x, gamma, beta, running_mean, running_var, *, training, momentum=0.1, eps=1e-5):
    return _bn_forward(x, gamma, beta, running_mean, running_var, training=training, momentum=momentum, eps=eps,
                       with_beta=False)


def _bn_forward_keras_and_biased(x, gamma, beta, running_mean, running_var, *, training, momentum=0.1, eps=1e-5):
    return _bn_forward(x, gamma, beta, running_mean, running_var, training=training, momentum=momentum, eps=eps,
                       keras=True, biased_running=True)


def _bn_forward_eval_without_eps(x, gamma, beta, running_mean, running_var, *, training, momentum=0.1, eps=1e-5):
    return _bn_forward(x, gamma, beta, running_mean, running_var, training=training, momentum=momentum, eps=eps,
                       eval_eps=False)


def _backward_training_formula_always(dout, cache):
    """The training-mode formula in both modes: cache['training'] is never looked at."""
    xc, gamma, inv_std = cache["xc"], cache["gamma"], cache["inv_std"]
    xhat, n = xc * inv_std, dout.shape[0]
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    return gamma * inv_std / n * (n * dout - dbeta - xhat * dgamma), dgamma, dbeta


def _backward_without_gamma(dout, cache):
    """dx is the gradient with respect to xhat's input, but gamma is forgotten."""
    xc, inv_std = cache["xc"], cache["inv_std"]
    xhat, n = xc * inv_std, dout.shape[0]
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    if not cache["training"]:
        return dout * inv_std, dgamma, dbeta
    return inv_std / n * (n * dout - dbeta - xhat * dgamma), dgamma, dbeta


UNCATALOGUED = [
    support.Bug("standardizer_fit", "two bugs at once: N - 1 and constant features found by std == 0", _fit_two_bugs,
                may_name=frozenset({"sample standard deviation (N - 1)", "constant feature detected by std == 0"})),
    support.Bug("standardizer_fit", "one mean and standard deviation for the whole matrix", _fit_whole_matrix),
    support.Bug("standardizer_transform", "1e-8 added to the scale when dividing", _transform_safe_division),
    support.Bug("batchnorm_forward_train", "beta forgotten", _bn_forward_without_beta),
    support.Bug("batchnorm_forward_train", "two bugs at once: Keras momentum and biased running variance",
                _bn_forward_keras_and_biased,
                may_name=frozenset({"momentum weights the old value (Keras)", "biased variance in the running statistics"})),
    support.Bug("batchnorm_forward_eval", "eps forgotten at inference", _bn_forward_eval_without_eps),
    support.Bug("batchnorm_backward", "the training formula in inference mode too", _backward_training_formula_always),
    support.Bug("batchnorm_backward", "gamma forgotten in dx", _backward_without_gamma),
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
