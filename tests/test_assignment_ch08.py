"""Chapter 8's exercise (solutions/ch08_regularization): spec, solution, release, mutants.

The grading machinery must prove, for this assignment: the instructor's solution gets every
point, the released stubs get none, and every typical mistake of the spec's mutant catalogue
loses the points of its own part (with the diagnosis it names) while every other part keeps its
points. Those checks run in-process on hidden-style cases with the grader's references (torch
autograd for the penalties, torch.optim.SGD with two parameter groups for the optimizer step, an
independent plain-Python rule for early stopping). mlp_lib is a second oracle: its penalties,
its EarlyStopping and its SGD must land on the same references. Because the cases are random,
every mutant must also be caught on many more seeds than the two used for the full check, and
the cases must contain what the mutants are caught by (exact zeros, ties, losses exactly
min_delta below the best, momentum on and off, biases). Slow tests run the real sandboxed
pipeline and the release check.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder import references
from mlp_lib import regularization
from mlp_lib.optim import SGD
from mlp_lib.training import EarlyStopping

import assignment_support as support

ASSIGNMENT = "ch08_regularization"
SOURCE, RELEASED = support.notebook_paths(ASSIGNMENT)
SEEDS = (20251122, 8)            # stand-ins for the instructor's secret seed
course, spec, hidden_cases, solution = support.fixtures(ASSIGNMENT, seeds=SEEDS)
verdicts = support.verdicts
MUTANTS = support.mutant_ids(ASSIGNMENT)
MANY_SEEDS = range(100, 125)     # more seeds, for the mutants only
PART_IDS = ["l2_penalty", "l1_penalty", "elastic_net_penalty", "early_stopping", "sgd_step"]
PENALTIES = PART_IDS[:3]
UNDERSTANDING = ["bias_variance_advice", "first_step_with_decay"]   # Parts 6 and 7: what the chapter teaches


@pytest.fixture(scope="module")
def many_cases(spec):
    return {seed: {pid: data.cases for pid, data in references.compute(spec, seed, "cpu").items()}
            for seed in MANY_SEEDS}


def test_spec_has_the_graded_parts_of_the_chapter_in_order(spec):
    assert [p.id for p in spec.parts] == PART_IDS + UNDERSTANDING
    assert sum(p.points for p in spec.parts) == 14
    assert all(len(p.mutants) >= 6 for p in spec.parts), "every part needs a catalogue of typical mistakes"


def test_solution_gets_every_point_on_many_more_seeds(spec, many_cases, solution):
    for seed, cases in many_cases.items():
        for pid, v in verdicts(spec, solution, cases).items():
            assert v.status == "passed", f"seed {seed}, part {pid}: {v.messages}"


def test_every_mutant_is_caught_on_many_more_seeds(spec, many_cases, solution):
    """The cases are built so that each mistake shows on every draw, not only on the two seeds above."""
    missed = []
    for part in spec.parts:
        for name, mutant in part.mutants.items():
            namespace = dict(solution)
            namespace[part.function] = mutant.fn
            for seed, cases in many_cases.items():
                if verdicts(spec, namespace, cases, [part.id])[part.id].points != 0:
                    missed.append((part.id, name, seed))
    assert not missed, f"mutants that passed on some seed: {missed}"


# -- the references against a second oracle (mlp_lib) -------------------------------------------------
def _mlp_lib_sgd_step(params, grads, velocities, *, lr, momentum=0.0, weight_decay=0.0):
    """mlp_lib's SGD as a step function with the exercise's convention: decay on ndim >= 2 only.

    The velocities are mlp_lib's momentum buffers; mlp_lib's first step copies the gradient
    into the buffer, which is what a zero buffer gives too."""
    out_p, out_v = [], []
    for p, g, v in zip(params, grads, velocities):
        opt = SGD(lr=lr, momentum=momentum, weight_decay=weight_decay if p.ndim >= 2 else 0.0)
        state = opt.init_state([p])
        if momentum:
            state = {"t": 1, "momentum": [v]}
        (new_p,), new_state = opt.step([p], [g], state)
        out_p.append(new_p)
        out_v.append(new_state["momentum"][0] if momentum else np.zeros_like(p))
    return out_p, out_v


def _mlp_lib_early_stopping(val_losses, *, patience, min_delta=0.0):
    rule = EarlyStopping(patience=patience, min_delta=min_delta)
    stop = next((e for e, v in enumerate(val_losses) if rule.update(v)), len(val_losses) - 1)
    return stop, rule.best_epoch


MLP_LIB = {"l2_penalty": regularization.l2_penalty, "l1_penalty": regularization.l1_penalty,
           "elastic_net_penalty": regularization.elastic_net_penalty,
           "early_stopping": _mlp_lib_early_stopping, "sgd_step": _mlp_lib_sgd_step}


def test_mlp_lib_passes_every_hidden_case(spec, hidden_cases, many_cases):
    """The book's library and the grader agree on every convention (the penalties' 1/2 and sign(0),
    the stopping rule's < and >=, torch's SGD with the decay on the weights only)."""
    for cases in list(hidden_cases.values()) + list(many_cases.values())[:5]:
        for pid, v in verdicts(spec, MLP_LIB, cases, PART_IDS).items():
            assert v.status == "passed", f"mlp_lib's {pid}: {v.messages}"


def test_early_stopping_reference_agrees_with_mlp_lib_on_random_runs(spec):
    part = spec.part("early_stopping")
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        losses = np.round(rng.uniform(0, 1, size=n) * 16) / 16 + np.arange(n)[::-1] * rng.choice([0, 1 / 32])
        patience, min_delta = int(rng.integers(1, 6)), float(rng.choice([0.0, 1 / 16, 1 / 8]))
        stop, best = part.reference(torch.tensor(losses), torch.tensor(patience), torch.tensor(min_delta))
        assert (int(stop), int(best)) == _mlp_lib_early_stopping(list(losses), patience=patience, min_delta=min_delta)


def test_sgd_reference_is_torch_sgd_with_the_decay_on_weights_only(spec):
    """Two parameter groups in the reference: the weights decay like torch's SGD(weight_decay),
    the biases move like SGD without decay."""
    part = spec.part("sgd_step")
    (case, *_) = part.cases(np.random.default_rng(5))          # the "mlp" layout: W, b, W, b, momentum 0.9
    tensors = {k: torch.tensor(v) for k, v in case.items()}
    trajectory = part.reference(**tensors).numpy()
    rows, cols = case["rows"], case["cols"]
    assert list(cols[1::2]) == [0, 0] and all(cols[::2] > 0)
    sizes = [int(r * c if c else r) for r, c in zip(rows, cols)]
    bounds = np.cumsum([0] + sizes)
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        p = torch.tensor(case["flat"][lo:hi], requires_grad=True)
        opt = torch.optim.SGD([p], lr=float(case["lr"]), momentum=float(case["momentum"]),
                              weight_decay=float(case["weight_decay"]) if cols[k] > 0 else 0.0)
        for step in range(case["grad_seq"].shape[0]):
            p.grad = torch.tensor(case["grad_seq"][step, lo:hi])
            opt.step()
            np.testing.assert_allclose(trajectory[step, lo:hi], p.detach().numpy(), rtol=1e-14, atol=1e-15)


# -- what the cases contain -----------------------------------------------------------------------
def test_penalty_cases_hold_exact_zeros_in_every_array_and_several_shapes(hidden_cases):
    for cases in hidden_cases.values():
        for pid in PENALTIES:
            n_arrays = set()
            for case in cases[pid]:
                flat, rows, cols = case.inputs["flat"], case.inputs["rows"], case.inputs["cols"]
                sizes = [int(r * c if c else r) for r, c in zip(rows, cols)]
                assert sum(sizes) == flat.size
                start = 0
                for size in sizes:
                    part = flat[start:start + size]
                    assert (part == 0).any() and (part != 0).any(), pid
                    start += size
                n_arrays.add(len(sizes))
                assert float(case.inputs["lam"]) > 0
            assert {1}.issubset(n_arrays) and max(n_arrays) >= 3, pid
            assert any((c.inputs["cols"] == 0).any() for c in cases[pid]), f"{pid}: no 1-D weight array"


def test_elastic_net_cases_cover_both_ends_and_the_middle_of_l1_ratio(hidden_cases):
    for cases in hidden_cases.values():
        ratios = {float(c.inputs["l1_ratio"]) for c in cases["elastic_net_penalty"]}
        assert {0.0, 1.0, 0.5} <= ratios and any(0 < r < 0.5 for r in ratios) and any(0.5 < r < 1 for r in ratios)


def test_early_stopping_cases_contain_ties_boundaries_and_runs_that_never_stop(spec, hidden_cases):
    for cases in hidden_cases.values():
        ties = boundary = never = False
        stops = []
        for case in cases["early_stopping"]:
            losses = case.inputs["val_losses"]
            np.testing.assert_array_equal(losses * 64, np.round(losses * 64))      # exact dyadic values
            d = float(case.inputs["min_delta"])
            best = np.minimum.accumulate(losses)
            ties |= d == 0 and bool((losses[1:] == best[:-1]).any())
            boundary |= d > 0 and bool((losses[1:] == best[:-1] - d).any())
            stop = int(case.expected["stop_epoch"])
            never |= stop == losses.size - 1
            stops.append(stop < losses.size - 1)
        assert ties and boundary and never and sum(stops) >= 5


def test_sgd_reference_resumes_from_the_velocities_given(spec):
    """The resumed case: torch's momentum buffers start from the case's velocities (the rule written out)."""
    part = spec.part("sgd_step")
    (case,) = [c for c in part.cases(np.random.default_rng(6)) if c["velocities"].any()]
    trajectory = part.reference(**{k: torch.tensor(v) for k, v in case.items()}).numpy()
    p, v = case["flat"].copy(), case["velocities"].copy()
    decayed = np.concatenate([np.full(int(r * c if c else r), 1.0 if c else 0.0)
                              for r, c in zip(case["rows"], case["cols"])])
    for step, g in enumerate(case["grad_seq"]):
        v = float(case["momentum"]) * v + g + float(case["weight_decay"]) * decayed * p
        p = p - float(case["lr"]) * v
        np.testing.assert_allclose(trajectory[step], p, rtol=1e-12, atol=1e-14)


def test_sgd_cases_cover_momentum_on_and_off_biases_and_decay(hidden_cases):
    for cases in hidden_cases.values():
        assert sum(bool(c.inputs["velocities"].any()) and float(c.inputs["momentum"]) > 0
                   for c in cases["sgd_step"]) == 1, "one run resumed from velocities that are not zero"
        settings = [(float(c.inputs["momentum"]), float(c.inputs["weight_decay"]), bool((c.inputs["cols"] == 0).any()))
                    for c in cases["sgd_step"]]
        assert any(m == 0 and wd > 0 and b for m, wd, b in settings)
        assert any(m > 0 and wd > 0 and b for m, wd, b in settings)
        assert any(not b for _, _, b in settings) and any(wd == 0 for _, wd, _ in settings)
        assert all(c.inputs["grad_seq"].shape[0] >= 3 for c in cases["sgd_step"])


def test_public_cases_are_not_the_hidden_ones(spec):
    public = references.compute(spec, spec.public_seed, "cpu")
    hidden = references.compute(spec, SEEDS[0], "cpu")
    for pid in PART_IDS:
        a, b = public[pid].cases[0].inputs, hidden[pid].cases[0].inputs
        assert any(a[k].shape != b[k].shape or not np.array_equal(a[k], b[k]) for k in a), pid


# -- bugs the catalogue does not hold (written after reading it) ------------------------------------
def _l2_two_bugs(weights, lam):
    """Two bugs at once: no 1/2 in the value, and lam forgotten in the gradient."""
    return lam * sum(float(np.sum(w * w)) for w in weights), [w.copy() for w in weights]


def _l2_last_array_skipped(weights, lam):
    """An off-by-one over the list: the last array is neither penalized nor given a gradient."""
    value = lam / 2 * sum(float(np.sum(w * w)) for w in weights[:-1])
    return value, [lam * w for w in weights[:-1]] + [np.zeros_like(weights[-1])]


def _l2_shortcut_at_lam_one(weights, lam):
    """A shortcut: with lam == 1 the gradients are the weights, so the weights themselves are returned."""
    value = lam / 2 * sum(float(np.sum(w * w)) for w in weights)
    return value, (list(weights) if lam == 1 else [lam * w for w in weights])


_SOLUTION = support.answer_namespace(SOURCE)


def _elastic_net_from_my_parts(weights, lam, l1_ratio):
    """Built from (right) L1 and L2 penalties, with the 1/2 of L2 applied a second time."""
    l1_value, l1_grads = _SOLUTION["l1_penalty"](weights, lam)
    l2_value, l2_grads = _SOLUTION["l2_penalty"](weights, lam)
    return (l1_ratio * l1_value + (1 - l1_ratio) / 2 * l2_value,
            [l1_ratio * g1 + (1 - l1_ratio) * g2 for g1, g2 in zip(l1_grads, l2_grads)])


def _replay(val_losses, patience, min_delta, *, improves, first_epoch=0, never_fired=None):
    """The stopping rule with its parts replaceable: the improvement test, the number of the first
    epoch, what is returned when the rule never fires (default: the last epoch)."""
    best, best_epoch, without = None, None, 0
    for epoch, loss in enumerate(val_losses, start=first_epoch):
        if best is None or improves(loss, best - min_delta):
            best, best_epoch, without = loss, epoch, 0
        else:
            without += 1
        if without >= patience:
            return epoch, best_epoch
    return (first_epoch + len(val_losses) - 1 if never_fired is None else never_fired), best_epoch


def _early_stopping_two_bugs(val_losses, *, patience, min_delta=0.0):
    """Two bugs at once: <= instead of <, and 1-based epochs."""
    return _replay(val_losses, patience, min_delta, improves=lambda loss, bound: loss <= bound, first_epoch=1)


def _early_stopping_never_stops_past_the_end(val_losses, *, patience, min_delta=0.0):
    """When the rule never fires, the number of epochs is returned instead of the last epoch."""
    return _replay(val_losses, patience, min_delta, improves=lambda loss, bound: loss < bound,
                   never_fired=len(val_losses))


def _early_stopping_patience_from_best(val_losses, *, patience, min_delta=0.0):
    """Stops when the epoch index is patience past the best epoch, counting the best epoch itself."""
    best, best_epoch = None, None
    for epoch, loss in enumerate(val_losses):
        if best is None or loss < best - min_delta:
            best, best_epoch = loss, epoch
        if epoch - best_epoch + 1 >= patience:
            return epoch, best_epoch
    return len(val_losses) - 1, best_epoch


def _sgd_lr_in_velocity(params, grads, velocities, *, lr, momentum=0.0, weight_decay=0.0):
    """Two bugs at once: the other momentum form (v = momentum * v + lr * g, then p - v), and the decay on
    every array, the biases included."""
    new_p, new_v = [], []
    for p, g, v in zip(params, grads, velocities):
        v = momentum * v + lr * (g + weight_decay * p)
        new_p.append(p - v)
        new_v.append(v)
    return new_p, new_v


def _sgd_nesterov(params, grads, velocities, *, lr, momentum=0.0, weight_decay=0.0):
    new_p, new_v = [], []
    for p, g, v in zip(params, grads, velocities):
        g = g + (weight_decay * p if p.ndim >= 2 else 0.0)
        v = momentum * v + g
        new_p.append(p - lr * (g + momentum * v))
        new_v.append(v)
    return new_p, new_v


UNCATALOGUED = [
    support.Bug("l2_penalty", "two bugs at once: no 1/2 in the value, lam missing from the gradient", _l2_two_bugs,
                may_name=frozenset({"missing 1/2 in the value", "lam missing from the gradient"})),
    support.Bug("l2_penalty", "the last weight array skipped", _l2_last_array_skipped),
    support.Bug("l2_penalty", "the weights themselves returned as gradients when lam == 1", _l2_shortcut_at_lam_one),
    support.Bug("elastic_net_penalty", "built from L1 and L2 penalties, the 1/2 applied twice",
                _elastic_net_from_my_parts),
    support.Bug("early_stopping", "two bugs at once: <= instead of <, and 1-based epochs", _early_stopping_two_bugs,
                may_name=frozenset({"<= instead of <", "1-based epochs"})),
    support.Bug("early_stopping", "patience counted from the best epoch itself (the same values as stopping one "
                "epoch early)", _early_stopping_patience_from_best,
                may_name=frozenset({"patience off by one (stops one epoch early)"})),
    support.Bug("early_stopping", "len(val_losses) returned when the rule never fires",
                _early_stopping_never_stops_past_the_end),
    support.Bug("sgd_step", "two bugs at once: lr inside the velocity, decay on the biases too", _sgd_lr_in_velocity,
                may_name=frozenset({"weight decay on the biases too"})),
    support.Bug("sgd_step", "Nesterov momentum", _sgd_nesterov),
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

def test_bias_variance_advice_on_the_chapters_polynomials(spec):
    """The chapter's regression task (noise variance 0.16): a straight line underfits, the degree-4 polynomial
    fits well when it has enough data (200 points), and the degree-15 polynomial on 20 points overfits."""
    from mlp_lib import data
    P = np.polynomial.polynomial
    coefficients, noise = [0.5, 1.0, -4.0, -1.0, 3.0], 0.4
    x_val, y_val = data.make_polynomial_regression(5000, coefficients=coefficients, noise=noise, rng=2)
    errors = []
    for degree, n in ((1, 200), (4, 200), (15, 20)):
        x, y = data.make_polynomial_regression(n, coefficients=coefficients, noise=noise, rng=1)
        c = P.polyfit(x.ravel(), y.ravel(), degree)
        errors.append((np.mean((P.polyval(x.ravel(), c) - y.ravel()) ** 2),
                       np.mean((P.polyval(x_val.ravel(), c) - y_val.ravel()) ** 2)))
    diagnoses, fixes = spec.part("bias_variance_advice").reference(
        torch.tensor([e[0] for e in errors]), torch.tensor([e[1] for e in errors]), torch.tensor(noise**2))
    assert list(diagnoses) == ["underfits (high bias)", "good fit", "overfits (high variance)"], errors
    assert list(fixes) == ["more capacity or less regularization", "keep the model", "more regularization or more data"]


def test_first_step_reference_is_mlp_lib_adam_with_weight_decay_and_adamw(spec, hidden_cases):
    from mlp_lib.optim import Adam, AdamW
    for cases in hidden_cases.values():
        for case in cases["first_step_with_decay"]:
            w, g = case.inputs["w"], case.inputs["g"]
            lr, lam, eps = (float(case.inputs[k]) for k in ("lr", "lam", "eps"))
            for opt, name in ((Adam(lr=lr, weight_decay=lam, eps=eps), "adam_l2"),
                              (AdamW(lr=lr, weight_decay=lam, eps=eps), "adamw")):
                (new,), _ = opt.step([w], [g], opt.init_state([w]))
                np.testing.assert_allclose(new, case.expected[name], rtol=1e-12, atol=1e-15)
            assert (g == 0).any() and (np.abs(g) < eps).any()


(test_hidden_cases_of_the_understanding_parts_vary_with_the_secret_seed,
 test_a_constant_answer_or_a_random_guess_loses_each_understanding_part,
 test_each_typical_mistake_of_the_understanding_parts_explains_the_right_answer,
 test_the_written_answer_is_left_to_the_formgrader_with_a_rubric) = support.understanding_checks(
    ASSIGNMENT, UNDERSTANDING, written_answer="bias-variance-answer", points=3)
