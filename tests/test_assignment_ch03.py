"""Chapter 3's exercise (solutions/ch03_backpropagation): spec, solution, release, mutants.

The grading machinery must prove, for this assignment: the instructor's solution gets every
point, the released stubs get none, and every typical mistake of the spec's mutant catalogue
loses the points of its own part (with the diagnosis it names) while every other part keeps
its points. Those checks run in-process on hidden-style cases (references from torch, float64);
the slow tests run the real sandboxed pipeline (``python -m autograder check``) end to end.

The torch references are themselves checked against the second oracle, ``mlp_lib`` (whose
functional core is tested against torch in tests/test_layers.py and tests/test_losses.py), so
that the spec's conventions (cache formats, mean over the batch, W of shape (D_in, D_out)) are
the book's.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder import pipeline, references
from mlp_lib import gradcheck, layers, losses

import assignment_support as support

ASSIGNMENT = "ch03_backpropagation"
SOURCE, RELEASED = support.notebook_paths(ASSIGNMENT)
SEEDS = (20251122, 7)            # stand-ins for the instructor's secret seed
course, spec, hidden_cases, solution = support.fixtures(ASSIGNMENT, seeds=SEEDS)
answer_namespace = support.answer_namespace
MUTANTS = support.mutant_ids(ASSIGNMENT)
UNDERSTANDING = ["gradcheck_verdicts", "gradcheck_diagnosis"]   # Parts 7 and 8: what the chapter teaches to predict


def tensors(case: dict) -> dict:
    return {k: torch.tensor(v) for k, v in case.items()}


def test_spec_has_the_six_parts_of_the_exercise_matching_the_notebook_cells(spec):
    assert [p.id for p in spec.parts] == ["affine_backward", "sigmoid_backward", "tanh_backward",
                                          "softmax_cross_entropy", "two_layer_loss_and_grads",
                                          "numerical_gradient", *UNDERSTANDING]
    assert sum(p.points for p in spec.parts) == 14
    assert all(len(p.mutants) >= 4 for p in spec.parts), "every part needs a catalogue of typical mistakes"


def test_solution_passes_the_tolerances_on_many_seeds(spec):
    """The tolerances (notably the numerical gradient's) hold with margin, not by luck of two seeds."""
    namespace = answer_namespace(SOURCE)
    plans = {p.id: p for p in spec.plans()}
    for seed in range(5):
        data = references.compute(spec, seed, "cpu")
        for pid in ("numerical_gradient", "softmax_cross_entropy", "two_layer_loss_and_grads"):
            v = pipeline.judge_in_process(spec, plans[pid], namespace, data[pid].cases)
            assert v.status == "passed", f"seed {seed}, part {pid}: {v.messages}"


# -- the torch references follow mlp_lib's conventions (the second oracle) -----------------------

def test_affine_reference_matches_mlp_lib_linear_backward_on_its_cache(spec):
    part = spec.part("affine_backward")
    for case in part.cases(np.random.default_rng(1)):
        _, cache = layers.linear_forward(case["x"], case["W"], case["b"])
        want = layers.linear_backward(case["dout"], cache)
        got = part.reference(**tensors(case))
        for w, g in zip(want, got):
            np.testing.assert_allclose(g.numpy(), w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("part_id, forward, backward", [
    ("sigmoid_backward", layers.sigmoid_forward, layers.sigmoid_backward),
    ("tanh_backward", layers.tanh_forward, layers.tanh_backward),
])
def test_activation_references_match_mlp_lib_on_its_output_cache(spec, part_id, forward, backward):
    part = spec.part(part_id)
    cases = part.cases(np.random.default_rng(2))
    assert {c["x"].ndim for c in cases} == {1, 2, 3}, "activations are graded on inputs of any shape"
    for case in cases:
        _, cache = forward(case["x"])
        want = backward(case["dout"], cache)
        np.testing.assert_allclose(part.reference(**tensors(case)).numpy(), want, rtol=1e-12, atol=1e-14)


def test_softmax_ce_reference_matches_mlp_lib_and_cases_contain_overflowing_logits(spec):
    part = spec.part("softmax_cross_entropy")
    cases = part.cases(np.random.default_rng(3))
    for case in cases:
        loss, dlogits = losses.softmax_cross_entropy(case["logits"], case["y"])
        ref_loss, ref_d = part.reference(**tensors(case))
        np.testing.assert_allclose(ref_loss.item(), loss, rtol=1e-12)
        np.testing.assert_allclose(ref_d.numpy(), dlogits, rtol=1e-10, atol=1e-15)
    # at least one case overflows a softmax that does not subtract the row maximum
    assert any(np.max(c["logits"]) > 710 for c in cases)


def test_two_layer_reference_matches_the_books_composition_of_mlp_lib_layers(spec):
    part = spec.part("two_layer_loss_and_grads")
    for case in part.cases(np.random.default_rng(4)):
        Z1, c1 = layers.linear_forward(case["X"], case["W1"], case["b1"])
        A1, cr = layers.relu_forward(Z1)
        S, c2 = layers.linear_forward(A1, case["W2"], case["b2"])
        loss, dS = losses.softmax_cross_entropy(S, case["y"])
        dA1, dW2, db2 = layers.linear_backward(dS, c2)
        _, dW1, db1 = layers.linear_backward(layers.relu_backward(dA1, cr), c1)
        ref = part.reference(**tensors(case))
        for want, got in zip((loss, dW1, db1, dW2, db2), ref):
            np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-10, atol=1e-14)


class _MlpLibStudent:
    """A 'student' whose numerical_gradient is mlp_lib's (to run the spec's adapter)."""
    numerical_gradient = staticmethod(gradcheck.numerical_gradient)


def test_numerical_gradient_adapter_functions_are_the_references_functions(spec):
    """The numpy functions sent to the student's process and the torch ones of the reference are
    the same functions: mlp_lib's centered differences of the former match torch's autograd of the
    latter to the accuracy of h = 1e-5, the grading tolerance leaves a margin, and mlp_lib (which
    perturbs x in place and writes each old value back) leaves x exactly as it was."""
    part = spec.part("numerical_gradient")
    cases = part.cases(np.random.default_rng(5))
    assert len({c["function"] for c in cases}) == 4, "each of the four functions is graded"
    assert any(c["x"].ndim > 1 for c in cases), "inputs of several dimensions catch loops over axis 0 only"
    assert {c["reads_x"] for c in cases} == {True, False}, "some functions must read x itself"
    for case in cases:
        x = case["x"].copy()
        numeric, changed = part.call(_MlpLibStudent(), x, case["function"], case["reads_x"])
        np.testing.assert_array_equal(x, case["x"])
        assert not changed.any()
        exact = part.reference(torch.tensor(case["x"]), case["function"], torch.tensor(case["reads_x"]))[0].numpy()
        assert np.allclose(numeric, exact, rtol=part.rtol / 10, atol=part.atol / 10), \
            f"{case['function']}: finite differences {numeric} vs autograd {exact}"


def test_every_numerical_gradient_case_holds_an_exact_zero_and_entries_that_h_does_not_give_back(spec):
    """Restoring x by arithmetic changes some entries in every case, the same ones whichever way it is
    done, and leaves the exact 0 alone."""
    h = 1e-5
    for seed in range(5):
        for case in spec.part("numerical_gradient").cases(np.random.default_rng(seed)):
            x = case["x"]
            one_way, other_way = ((x + h) - 2 * h) + h != x, (x - h) + h != x
            assert (x == 0).any() and one_way.sum() >= 2 and np.array_equal(one_way, other_way)


def test_forward_differences_fail_every_numerical_gradient_case(spec):
    """O(h) truncation is caught in each case, not only in a lucky one."""
    part = spec.part("numerical_gradient")
    forward = part.mutants["forward differences"].fn

    class Student:
        numerical_gradient = staticmethod(forward)

    for case in part.cases(np.random.default_rng(6)):
        got, _ = part.call(Student(), case["x"].copy(), case["function"], case["reads_x"])
        exact = part.reference(torch.tensor(case["x"]), case["function"], torch.tensor(case["reads_x"]))[0].numpy()
        assert not np.allclose(got, exact, rtol=part.rtol, atol=part.atol)


def test_hard_cases_hit_the_kink_and_an_underflowing_label_whatever_the_seed(spec):
    for seed in range(5):
        rng = np.random.default_rng(seed)
        two_layer = spec.part("two_layer_loss_and_grads").cases(rng)
        assert any(((c["X"] @ c["W1"] + c["b1"]) == 0).any() for c in two_layer), "no pre-activation exactly 0"
        ce = spec.part("softmax_cross_entropy").cases(rng)
        z = [c["logits"] - c["logits"].max(axis=1, keepdims=True) for c in ce]
        assert any((zi[np.arange(len(c["y"])), c["y"]] < -745).any() for zi, c in zip(z, ce)), \
            "no label whose probability underflows to 0"


# -- bugs the catalogue does not hold (written after reading it) ----------------------------------------
def _affine_dW_and_db_averaged(dout, cache):
    x, W, b = cache
    return dout @ W.T, x.T @ dout / x.shape[0], dout.mean(axis=0)          # two bugs: both divided by N


def _affine_db_keepdims(dout, cache):
    x, W, b = cache
    return dout @ W.T, x.T @ dout, dout.sum(axis=0, keepdims=True)


def _sigmoid_derivative_sign(dout, cache):
    (out,) = cache
    return dout * out * (out - 1.0)


def _ce_one_hot_by_columns(logits, y):
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    d = np.exp(log_p)
    d[:, y] -= 1.0                                                          # every row, at every label's column
    return -float(log_p[np.arange(n), y].mean()), d / n


def _two_layer_forgets_b2(params, X, y):
    return _two_layer_with(params, X, y, lambda S, p: S - p["b2"])


def _two_layer_with(params, X, y, adjust_scores, ce=None):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    Z1 = X @ W1 + b1
    A1 = np.maximum(Z1, 0.0)
    S = adjust_scores(A1 @ W2 + b2, params)
    loss, dS = (ce or _ce_reference_like)(S, y)
    dA1 = dS @ W2.T
    dZ1 = dA1 * (Z1 > 0)
    return loss, {"W1": X.T @ dZ1, "b1": dZ1.sum(axis=0), "W2": A1.T @ dS, "b2": dS.sum(axis=0)}


def _ce_reference_like(S, y):
    n = S.shape[0]
    z = S - S.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    d = np.exp(log_p)
    d[np.arange(n), y] -= 1.0
    return -float(log_p[np.arange(n), y].mean()), d / n


def _ce_gradient_without_mean(logits, y):
    loss, d = _ce_reference_like(logits, y)
    return loss, d * logits.shape[0]


def _two_layer_calls_a_wrong_cross_entropy(params, X, y):
    return _two_layer_with(params, X, y, lambda S, p: S, ce=_ce_gradient_without_mean)


def _student_centered(f, x, h, *, quotient, restore):
    """A student's centered-difference loop, whose quotient and restoring step are given."""
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        f_plus = f(x)
        x[ix] = old - h
        f_minus = f(x)
        x[ix] = restore(x[ix], old)
        grad[ix] = quotient(f_plus - f_minus, h)
    return grad


def _numgrad_precedence(f, x, h=1e-5):
    return _student_centered(f, x, h, quotient=lambda diff, h: diff / 2 * h,    # (difference / 2) * h
                             restore=lambda now, old: old)


def _numgrad_restores_by_adding_h_back(f, x, h=1e-5):
    return _student_centered(f, x, h, quotient=lambda diff, h: diff / (2 * h),
                             restore=lambda now, old: now + h)                  # (old - h) + h: not always old


UNCATALOGUED = [
    support.Bug("affine_backward", "two bugs: dW and db both divided by N", _affine_dW_and_db_averaged,
                may_name=frozenset({"dW divided by N", "db averaged over the batch"})),
    support.Bug("affine_backward", "db kept as a (1, D_out) row", _affine_db_keepdims),
    support.Bug("sigmoid_backward", "the derivative written s * (s - 1)", _sigmoid_derivative_sign),
    support.Bug("softmax_cross_entropy", "one-hot subtracted with d[:, y] (every row)", _ce_one_hot_by_columns),
    support.Bug("two_layer_loss_and_grads", "b2 left out of the forward pass", _two_layer_forgets_b2),
    support.Bug("two_layer_loss_and_grads",
                "two bugs in two parts: it calls a softmax_cross_entropy whose gradient lacks 1/N",
                fn_of={"two_layer_loss_and_grads": _two_layer_calls_a_wrong_cross_entropy,
                       "softmax_cross_entropy": _ce_gradient_without_mean},
                may_name=frozenset({"gradients without 1/N"})),
    support.Bug("numerical_gradient", "divides by 2 then multiplies by h (precedence)", _numgrad_precedence),
    support.Bug("numerical_gradient", "x restored as (old - h) + h", _numgrad_restores_by_adding_h_back,
                may_name=frozenset({"x restored by adding and subtracting h"})),
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

def test_verdict_cases_are_read_with_mlp_lib_rel_error_and_cover_every_band_far_from_its_edges(hidden_cases):
    bands = {"correct": (0, 1e-7), "suspicious": (1e-7, 1e-4), "probably wrong": (1e-4, 1e-2), "wrong": (1e-2, 1)}
    for cases in hidden_cases.values():
        seen, without_wrong = set(), 0
        for case in cases["gradcheck_verdicts"]:
            dead_units = {"correct": [], "suspicious": []}
            for a, n, verdict in zip(case.inputs["analytic"], case.inputs["numeric"], case.expected["verdicts"]):
                low, high = bands[str(verdict)]
                r = gradcheck.rel_error(a, n)
                assert 3 * low <= r and (r <= high / 3 or verdict == "wrong")
                dead_units.get(str(verdict), []).append(((a == 0) & (n == 0)).any())
                seen.add(str(verdict))
            # where only the floor avoids 0 / 0 (a correct check), and a failing check without dead units
            assert any(dead_units["correct"]) and not all(dead_units["suspicious"])
            without_wrong += "wrong" not in case.expected["verdicts"]
        assert seen == set(bands) and without_wrong == 1


def _two_layer_grads(params, X, y, *, db2_bug=False):
    z1, c1 = layers.linear_forward(X, params["W1"], params["b1"])
    a1, cr = layers.relu_forward(z1)
    z2, c2 = layers.linear_forward(a1, params["W2"], params["b2"])
    loss, dz2 = losses.softmax_cross_entropy(z2, y)
    da1, dW2, db2 = layers.linear_backward(dz2, c2)
    _, dW1, db1 = layers.linear_backward(layers.relu_backward(da1, cr), c1)
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": 2 * db2 if db2_bug else db2}, z1


def test_diagnosis_reference_names_what_really_happens_in_a_two_layer_check(spec):
    """The chapter's experiment, run with mlp_lib: a clean check passes, an input moved next to a kink fails
    the first layer only (the reference blames the kink, and torch agrees with backpropagation), a backward
    pass with a wrong db2 is a bug."""
    rng = np.random.default_rng(33)
    params = {"W1": rng.standard_normal((5, 6)), "b1": rng.standard_normal(6),
              "W2": rng.standard_normal((6, 3)), "b2": rng.standard_normal(3)}
    X, y = rng.standard_normal((8, 5)), rng.integers(0, 3, size=8)
    z1 = X @ params["W1"] + params["b1"]
    n, k = np.unravel_index(np.argmin(np.where(z1 > 0, z1, np.inf)), z1.shape)
    X_kink = X.copy()
    X_kink[n] += (3e-6 - z1[n, k]) * params["W1"][:, k] / (params["W1"][:, k] @ params["W1"][:, k])
    reference = spec.part("gradcheck_diagnosis").reference
    for inputs, bug, wanted in ((X, False, "gradients correct"), (X_kink, False, "finite difference crosses a kink"),
                                (X, True, "bug in the backward pass")):
        _, grads, z = _two_layer_grads(params, inputs, y, db2_bug=bug)
        rel = []
        for name in ("W1", "b1", "W2", "b2"):
            def loss_of(value, name=name):
                return _two_layer_grads({**params, name: value}, inputs, y)[0]
            rel.append(gradcheck.rel_error(grads[name], gradcheck.numerical_gradient(loss_of, params[name].copy())))
        got = reference(torch.tensor(rel), torch.tensor(z), torch.tensor(1e-5))
        assert str(got) == wanted, (rel, wanted)


(test_hidden_cases_of_the_understanding_parts_vary_with_the_secret_seed,
 test_a_constant_answer_or_a_random_guess_loses_each_understanding_part,
 test_each_typical_mistake_of_the_understanding_parts_explains_the_right_answer,
 test_the_written_answer_is_left_to_the_formgrader_with_a_rubric) = support.understanding_checks(
    ASSIGNMENT, UNDERSTANDING, written_answer="finite-differences-answer", points=3)
