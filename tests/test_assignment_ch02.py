"""Chapter 2's exercise (solutions/ch02_gradient_descent): spec, solution, release, mutants.

The grading machinery must prove, for this assignment: the instructor's solution gets every
point, the released stubs get none, and every typical mistake of the spec's mutant catalogue
loses the points of its own part (with the diagnosis it names) while every other part keeps
its points. Those checks run in-process on hidden-style cases (references from torch, float64).
Further tests check that the torch references follow the same conventions as mlp_lib's
optimizers and mini-batches (the book's and the public tests' oracle), and that the cases
really exercise what the mutants get wrong. Slow tests run the release check and the real
sandboxed pipeline (``python -m autograder check``) end to end.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mlp_lib import optim, training

import assignment_support as support

ASSIGNMENT = "ch02_gradient_descent"
SOURCE, RELEASED = support.notebook_paths(ASSIGNMENT)
SEEDS = (20251122, 7)            # stand-ins for the instructor's secret seed
course, spec, hidden_cases, solution = support.fixtures(ASSIGNMENT, seeds=SEEDS)
MUTANTS = support.mutant_ids(ASSIGNMENT)
PART_IDS = ["linear_regression_gd", "minibatches", "sgd_momentum_step", "adagrad_step", "rmsprop_step", "adam_step"]
UNDERSTANDING = ["lr_regimes", "adam_constant_gradient_steps"]   # Parts 7 and 8: what the chapter teaches to predict


def tensors(case: dict, names) -> list:
    return [torch.tensor(case[n]) for n in names]


def test_spec_has_the_six_parts_of_the_notebook_each_with_a_mutant_catalogue(spec):
    assert [p.id for p in spec.parts] == PART_IDS + UNDERSTANDING
    assert sum(p.points for p in spec.parts) == 19
    assert all(len(p.mutants) >= 4 for p in spec.parts), "every part needs a catalogue of typical mistakes"
    for part in spec.parts[2:len(PART_IDS)]:
        assert "state updated in place" in part.mutants, f"{part.id}: the in-place state mutant is missing"


# -- the references follow one convention with mlp_lib (the book's and the public tests' oracle) --------
def test_gd_reference_runs_reach_the_least_squares_solution_they_are_graded_against(spec):
    """On the 'converged' cases the reference is torch.linalg.lstsq; torch's own descent must get there."""
    part = spec.part("linear_regression_gd")
    converged = 0
    for seed in SEEDS:
        for case in part.cases(np.random.default_rng(seed)):
            if not case["converged"]:
                continue
            converged += 1
            descent = dict(case, converged=np.int64(0))
            w_gd, b_gd, losses_gd = part.reference(*tensors(descent, ("X", "y", "lr", "steps", "converged")))
            w_ls, b_ls, losses_ls = part.reference(*tensors(case, ("X", "y", "lr", "steps", "converged")))
            torch.testing.assert_close(w_gd, w_ls, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(b_gd, b_ls, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(losses_gd, losses_ls, rtol=0, atol=0)
            assert losses_gd.shape == (int(case["steps"]) + 1,)
    assert converged >= 2


def test_gd_reference_matches_mlp_lib_sgd_fed_full_batches(spec):
    """Batch gradient descent in the book (optim.SGD on full batches) and the grader's torch descent agree."""
    from mlp_lib import layers, losses

    part = spec.part("linear_regression_gd")
    for case in part.cases(np.random.default_rng(11))[:3]:
        X, y, lr, steps = case["X"], case["y"], float(case["lr"]), int(case["steps"])
        params, opt = [np.zeros((X.shape[1], 1)), np.zeros(1)], optim.SGD(lr=lr)
        state, history = opt.init_state(params), []
        for _ in range(steps):
            pred, cache = layers.linear_forward(X, *params)
            value, dpred = losses.mse_loss(pred, y[:, None])
            history.append(value)
            _, dW, db = layers.linear_backward(dpred, cache)
            params, state = opt.step(params, [dW, db], state)
        w, b, ref_losses = part.reference(*tensors(case, ("X", "y", "lr", "steps", "converged")))
        np.testing.assert_allclose(params[0][:, 0], w.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(params[1][0], b.item(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(history, ref_losses.numpy()[:-1], rtol=1e-10)


def test_minibatch_reference_is_mlp_lib_minibatches_for_two_epochs(spec):
    part = spec.part("minibatches")
    for case in part.cases(np.random.default_rng(3)):
        expected = part.reference(*tensors(case, ("X", "y", "batch_size", "seed")))
        gen = np.random.default_rng(int(case["seed"]))
        for epoch in range(2):
            batches = list(training.minibatches(case["X"], case["y"], batch_size=int(case["batch_size"]), rng=gen))
            Xe, ye, sizes = expected[3 * epoch: 3 * epoch + 3]
            np.testing.assert_array_equal(np.concatenate([xb for xb, _ in batches]), Xe.numpy())
            np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), ye.numpy())
            assert [len(yb) for _, yb in batches] == sizes.tolist()


def test_minibatch_cases_cover_partial_exact_and_oversized_batches(spec):
    kinds = set()
    for case in spec.part("minibatches").cases(np.random.default_rng(5)):
        n, b = case["X"].shape[0], int(case["batch_size"])
        kinds.add("oversized" if b > n else "exact" if n % b == 0 else "partial")
    assert kinds == {"oversized", "exact", "partial"}


def _library_run(opt, case, start_state=None):
    """mlp_lib optimizer over a case's gradient sequence with its learning rates; (trajectory, state)."""
    params, state = [case["w"].copy()], opt.init_state([case["w"]])
    if start_state is not None:
        state.update(start_state)
    trajectory = []
    for grad, lr in zip(case["grads"], case["lrs"]):
        params, state = dataclasses.replace(opt, lr=float(lr)).step(params, [grad], state)
        trajectory.append(params[0])
    return np.stack(trajectory), state


def test_momentum_reference_agrees_with_mlp_lib_sgd(spec):
    part = spec.part("sgd_momentum_step")
    for case in part.cases(np.random.default_rng(21)):
        opt = optim.SGD(lr=0.1, momentum=float(case["momentum"]), nesterov=bool(case["nesterov"]))
        start = {"t": 1, "momentum": [case["velocity"].copy()]} if case["velocity"].any() else None
        trajectory, state = _library_run(opt, case, start)
        ref_traj, ref_velocity = part.reference(*tensors(case, ("w", "velocity", "grads", "lrs", "momentum", "nesterov")))
        np.testing.assert_allclose(trajectory, ref_traj.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(state["momentum"][0], ref_velocity.numpy(), rtol=1e-12, atol=1e-14)


def test_adagrad_and_rmsprop_references_agree_with_mlp_lib(spec):
    part = spec.part("adagrad_step")
    for case in part.cases(np.random.default_rng(22)):
        opt = optim.Adagrad(lr=0.1, eps=float(case["eps"]))
        trajectory, state = _library_run(opt, case, {"sum": [case["sum_sq"].copy()]})
        ref_traj, ref_sum = part.reference(*tensors(case, ("w", "sum_sq", "grads", "lrs", "eps")))
        np.testing.assert_allclose(trajectory, ref_traj.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(state["sum"][0], ref_sum.numpy(), rtol=1e-12, atol=1e-30)
    part = spec.part("rmsprop_step")
    for case in part.cases(np.random.default_rng(23)):
        opt = optim.RMSprop(lr=0.1, alpha=float(case["alpha"]), eps=float(case["eps"]))
        trajectory, state = _library_run(opt, case, {"square_avg": [case["square_avg"].copy()]})
        ref_traj, ref_avg = part.reference(*tensors(case, ("w", "square_avg", "grads", "lrs", "alpha", "eps")))
        np.testing.assert_allclose(trajectory, ref_traj.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(state["square_avg"][0], ref_avg.numpy(), rtol=1e-12, atol=1e-30)


def test_adam_reference_agrees_with_mlp_lib_adam_from_fresh_and_mid_run_states(spec):
    part = spec.part("adam_step")
    starts = set()
    for case in part.cases(np.random.default_rng(24)):
        t = int(case["t"])
        starts.add(t == 0)
        opt = optim.Adam(lr=0.1, betas=(float(case["beta1"]), float(case["beta2"])), eps=float(case["eps"]))
        trajectory, state = _library_run(opt, case, {"t": t, "exp_avg": [case["m"].copy()],
                                                         "exp_avg_sq": [case["v"].copy()]})
        ref_traj, ref_m, ref_v, ref_t = part.reference(
            *tensors(case, ("w", "m", "v", "t", "grads", "lrs", "beta1", "beta2", "eps")))
        np.testing.assert_allclose(trajectory, ref_traj.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(state["exp_avg"][0], ref_m.numpy(), rtol=1e-12, atol=1e-30)
        np.testing.assert_allclose(state["exp_avg_sq"][0], ref_v.numpy(), rtol=1e-12, atol=1e-30)
        assert state["t"] == int(ref_t) == t + case["grads"].shape[0]
    assert starts == {True, False}, "cases must start both from a fresh state and from the middle of a run"


def test_step_cases_vary_the_learning_rate_and_include_tiny_gradients(spec):
    """What the mutants get wrong must be visible: lr changing between steps, eps comparable to sqrt(v)."""
    for pid in ("sgd_momentum_step", "adagrad_step", "rmsprop_step", "adam_step"):
        cases = spec.part(pid).cases(np.random.default_rng(25))
        assert all(np.ptp(c["lrs"]) > 0 for c in cases), f"{pid}: the learning rate must change between steps"
        if pid != "sgd_momentum_step":
            assert any(np.abs(c["grads"]).max() < 1e-3 for c in cases), f"{pid}: no case with tiny gradients"
    nesterov = {bool(c["nesterov"]) for c in spec.part("sgd_momentum_step").cases(np.random.default_rng(26))}
    assert nesterov == {True, False}


def test_classic_momentum_matches_torch_while_the_learning_rate_is_constant(spec):
    """The book's claim: Sutskever's form gives torch's iterates for a constant lr (velocity scaled by -lr)."""
    part = spec.part("sgd_momentum_step")
    classic = part.mutants["classic (Sutskever) formulation, lr inside the velocity"].fn
    rng = np.random.default_rng(27)
    for nesterov in (False, True):
        w = rng.standard_normal(4)
        grads = rng.standard_normal((6, 4))
        mine, state = w, {"velocity": np.zeros(4)}
        for g in grads:
            mine, state = classic(mine, g, state, lr=0.05, momentum=0.9, nesterov=nesterov)
        ref_traj, ref_v = part.reference(torch.tensor(w), torch.zeros(4), torch.tensor(grads), torch.full((6,), 0.05),
                                         torch.tensor(0.9), torch.tensor(nesterov))
        np.testing.assert_allclose(mine, ref_traj[-1].numpy(), rtol=1e-12)
        np.testing.assert_allclose(state["velocity"], -0.05 * ref_v.numpy(), rtol=1e-12)


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
    support.assert_sandboxed_check(course, SOURCE, RELEASED, points=19)


# -- Parts 7 to 9: understanding, graded automatically and by hand --------------------------------------

def test_each_predicted_regime_is_what_gradient_descent_does_on_the_bowl(hidden_cases):
    """Run the descent the regimes predict: from a start with a component along every eigenvector, the error
    shrinks without sign changes (smooth), shrinks while its steepest component flips sign every step
    (zig-zag), or grows (diverges)."""
    for cases in hidden_cases.values():
        for case in cases["lr_regimes"]:
            H = case.inputs["H"]
            lam, Q = np.linalg.eigh(H)
            for lr, regime in zip(case.inputs["lrs"], case.expected["regimes"]):
                sgd, theta, path = optim.SGD(lr=float(lr)), Q @ np.ones(len(lam)), []   # minimum at 0
                state = sgd.init_state([theta])
                for _ in range(60):
                    (theta,), state = sgd.step([theta], [H @ theta], state)
                    path.append(Q.T @ theta)              # the error in the eigenbasis: every direction present
                path = np.array(path)
                early = path[:12]                         # signs before the error is down to rounding
                flips = np.all(np.sign(early[1:, np.argmax(lam)]) == -np.sign(early[:-1, np.argmax(lam)]))
                if regime == "diverges":
                    assert np.linalg.norm(path[-1]) > 1e3
                else:
                    assert np.linalg.norm(path[-1]) < np.linalg.norm(path[0])
                    assert flips == (regime == "zig-zag") and (regime == "zig-zag" or np.all(early > 0))


def test_adam_steps_reference_is_mlp_lib_adam_and_the_unrolled_uncorrected_average(spec, hidden_cases):
    for cases in hidden_cases.values():
        for case in cases["adam_constant_gradient_steps"]:
            g, T = case.inputs["g"], int(case.inputs["steps"])
            lr, b1, b2, eps = (float(case.inputs[k]) for k in ("lr", "beta1", "beta2", "eps"))
            opt, params, steps = optim.Adam(lr=lr, betas=(b1, b2), eps=eps), [np.zeros_like(g)], []
            state = opt.init_state(params)
            m, v, theta, plain = np.zeros_like(g), np.zeros_like(g), np.zeros_like(g), []
            for _ in range(T):
                new, state = opt.step(params, [g], state)
                steps.append(new[0] - params[0])
                params = new
                m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
                plain.append(-lr * m / (np.sqrt(v) + eps))
            np.testing.assert_allclose(case.expected["corrected"], np.array(steps), rtol=1e-9, atol=1e-18)
            np.testing.assert_allclose(case.expected["uncorrected"], np.array(plain), rtol=1e-12, atol=0)
            assert (np.abs(g) < eps).any() and (np.abs(g) > 0.1).any()


(test_hidden_cases_of_the_understanding_parts_vary_with_the_secret_seed,
 test_a_constant_answer_or_a_random_guess_loses_each_understanding_part,
 test_each_typical_mistake_of_the_understanding_parts_explains_the_right_answer,
 test_the_written_answer_is_left_to_the_formgrader_with_a_rubric) = support.understanding_checks(
    ASSIGNMENT, UNDERSTANDING, written_answer="learning-rate-answer", points=3)
