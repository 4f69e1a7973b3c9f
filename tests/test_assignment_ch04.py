"""Chapter 4's exercise (solutions/ch04_saturation_initialization): spec, solution, release, mutants.

The grading machinery must prove, for this assignment: the instructor's solution gets every
point, the released stubs get none, and every typical mistake of the spec's mutant catalogue
loses the points of its own part (with the diagnosis it names) while every other part keeps
its points. The two initializers are graded statistically, so this file also checks that the
statistical references are torch's (torch's own initializers land on them) and that the
tolerance is wide enough for the solution on many seeds yet narrow enough for every mutant.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from autograder import pipeline, references
from mlp_lib import diagnostics, init, regularization

import assignment_support as support

ASSIGNMENT = "ch04_saturation_initialization"
SOURCE, RELEASED = support.notebook_paths(ASSIGNMENT)
SEEDS = (20251122, 4)            # stand-ins for the instructor's secret seed
course, spec, hidden_cases, solution = support.fixtures(ASSIGNMENT, seeds=SEEDS)
verdicts = support.verdicts
MUTANTS = support.mutant_ids(ASSIGNMENT)
INIT_PARTS = ("xavier_uniform", "kaiming_normal")
UNDERSTANDING = ["diagnose_training", "variance_ratios"]     # Parts 6 and 7: what the chapter teaches to predict


def test_spec_has_five_parts_matching_the_notebook_cells(spec):
    assert [p.id for p in spec.parts] == ["xavier_uniform", "kaiming_normal", "layer_gradient_norms",
                                          "saturation_fraction", "clip_grad_norm", *UNDERSTANDING]
    assert sum(p.points for p in spec.parts) == 14
    assert all(len(p.mutants) >= 5 for p in spec.parts), "every part needs a catalogue of typical mistakes"


# ---------------------------------------------------------------------------- the statistical parts

def _torch_statistics(part_id, case, generator):
    """The adapter's statistics, computed on >= 10^6 weights drawn by torch.nn.init itself."""
    d_in, d_out = int(case["d_in"]), int(case["d_out"])
    draws, total = [], 0
    while total < 1_000_000:
        w = torch.empty(d_out, d_in, dtype=torch.float64)          # torch's (D_out, D_in) layout
        if part_id == "xavier_uniform":
            torch.nn.init.xavier_uniform_(w, gain=float(case["gain"]), generator=generator)
        else:
            torch.nn.init.kaiming_normal_(w, a=float(case["a"]), mode=("fan_in", "fan_out")[int(case["mode"])],
                                          nonlinearity="leaky_relu", generator=generator)
        draws.append(w.flatten())
        total += w.numel()
    x = torch.cat(draws)
    m2 = torch.mean(x * x)
    stats = {"rms": float(torch.sqrt(m2)), "std_over_rms": float(x.std(correction=0) / torch.sqrt(m2)),
             "kurtosis": float(torch.mean(x ** 4) / m2 ** 2)}
    if part_id == "xavier_uniform":
        stats["max_abs"] = float(x.abs().max())
    return stats


@pytest.mark.parametrize("part_id", INIT_PARTS)
def test_torch_initializers_land_on_the_statistical_references(spec, hidden_cases, part_id):
    """The references read torch's formulas right: torch's own samples match them within the tolerance."""
    part = spec.part(part_id)
    generator = torch.Generator().manual_seed(2010)
    for case in hidden_cases[SEEDS[0]][part_id]:
        got = _torch_statistics(part_id, case.inputs, generator)
        for name, value in got.items():
            want = float(case.expected[name])
            assert abs(value / want - 1) < part.rtol / 3, f"{part_id} {case.inputs}: torch's {name} {value} vs {want}"


def test_mlp_lib_implementations_pass_the_hidden_cases(spec, hidden_cases):
    """mlp_lib (which the book uses) and the grader agree on every convention of the four shared functions."""
    namespace = {"xavier_uniform": init.xavier_uniform, "kaiming_normal": init.kaiming_normal,
                 "saturation_fraction": diagnostics.saturation_fraction,
                 "clip_grad_norm": regularization.clip_grad_norm}
    for cases in hidden_cases.values():
        for pid, v in verdicts(spec, namespace, cases, list(namespace)).items():
            assert v.status == "passed", f"mlp_lib's {pid}: {v.messages}"


@pytest.mark.parametrize("part_id", INIT_PARTS)
def test_statistical_tolerance_has_a_wide_margin_for_the_solution(spec, solution, part_id):
    """On five more seeds, the solution's statistics stay within a third of the tolerance."""
    part = spec.part(part_id)
    plan = next(p for p in spec.plans() if p.id == part_id)
    worst = 0.0
    for seed in range(5):
        cases = references.compute(spec, seed, "cpu")[part_id].cases
        outs = pipeline.in_process_outputs(plan, solution, [c.inputs for c in cases])
        assert outs.error is None
        for case, out in zip(cases, outs.cases):
            assert out.error is None, out.error
            for name in ("rms", "std_over_rms", "max_abs", "kurtosis"):
                if name in case.expected:
                    worst = max(worst, abs(float(out.outputs[name]) / float(case.expected[name]) - 1))
    assert worst < part.rtol / 3, f"{part_id}: a statistic of the solution was {worst:.2%} off (tolerance {part.rtol:.0%})"


def test_initializer_cases_cover_both_fan_orders_modes_slopes_and_gains(spec):
    rng = np.random.default_rng(11)
    xavier = spec.part("xavier_uniform").cases(rng)
    assert any(c["d_in"] > 2 * c["d_out"] for c in xavier) and any(c["d_out"] > 2 * c["d_in"] for c in xavier)
    assert any(c["gain"] == 1.0 for c in xavier) and any(c["gain"] > 1.5 for c in xavier)
    kaiming = spec.part("kaiming_normal").cases(rng)
    assert {int(c["mode"]) for c in kaiming} == {0, 1}
    assert any(c["a"] == 0 for c in kaiming) and any(c["a"] > 0 for c in kaiming)
    for c in kaiming:                    # every case is large and far from square: swapped fans show
        assert max(c["d_in"], c["d_out"]) > 2 * min(c["d_in"], c["d_out"])


def test_saturation_cases_hold_boundary_values_and_intermediate_fractions(spec):
    part = spec.part("saturation_fraction")
    for case in part.cases(np.random.default_rng(12)):
        a, t = case["a"], float(case["threshold"])
        if int(case["kind"]) == 0:
            assert (a == t).sum() >= 3
        else:
            assert (np.abs(a) == 1.0 - t).sum() >= 6
            assert 1.0 - (1.0 - t) >= t         # so that 1 - |a| < t and |a| > 1 - t agree on the boundary
        fraction = float(part.reference(torch.tensor(a), torch.tensor(case["kind"]), torch.tensor(t)))
        assert 0.0 < fraction < 1.0


def test_clip_cases_clip_and_do_not_clip_and_feel_the_eps(spec):
    part = spec.part("clip_grad_norm")
    ratios = [float(c["max_norm"]) / float(np.linalg.norm(c["flat"])) for c in part.cases(np.random.default_rng(13))]
    totals = [float(np.linalg.norm(c["flat"])) for c in part.cases(np.random.default_rng(13))]
    assert any(r > 1 for r in ratios) and any(r < 1 for r in ratios)
    assert any(r < 1 and 1e-6 / t > 1e-5 for r, t in zip(ratios, totals)), "no case where the 1e-6 matters"


def test_layer_norm_reference_is_torch_vector_norm_of_each_layer(spec):
    part = spec.part("layer_gradient_norms")
    for case in part.cases(np.random.default_rng(14)):
        tensors = {k: torch.tensor(v) for k, v in case.items()}
        got = part.reference(**tensors).numpy()
        start, by_layer = 0, {}
        for r, c, l in zip(case["rows"], case["cols"], case["layer"]):
            size = int(r * c if c else r)
            by_layer.setdefault(int(l), []).append(case["flat"][start:start + size])
            start += size
        assert start == case["flat"].size
        want = [math.sqrt(sum(float(np.sum(g * g)) for g in arrays)) for _, arrays in sorted(by_layer.items())]
        np.testing.assert_allclose(got, want, rtol=1e-12)


# -- what every assignment must prove (tests/assignment_support.py) -----------------------------------

def test_solution_gets_every_point_on_hidden_cases(spec, hidden_cases, solution):
    support.assert_solution_gets_every_point(spec, hidden_cases, solution)


def test_released_stubs_get_no_point(spec, hidden_cases):
    support.assert_stubs_get_no_point(spec, hidden_cases, RELEASED)


@pytest.mark.parametrize("part_id, mutant", MUTANTS)
def test_each_mutant_loses_its_own_part_only_with_its_diagnosis(spec, hidden_cases, solution, part_id, mutant):
    support.assert_mutant_loses_its_part_only(spec, hidden_cases, solution, part_id, mutant, unchecked=INIT_PARTS, others_on_first_seed_only=True)


@pytest.mark.slow
def test_solution_and_release_through_the_sandboxed_check(course):
    support.assert_sandboxed_check(course, SOURCE, RELEASED, points=14)


# -- Parts 6 to 8: understanding, graded automatically and by hand --------------------------------------

def _digits_mlp(n_hidden, activation, weight_init=None, *, n_in=64, width=100, seed=0):
    from mlp_lib.modules import Linear, Sequential
    gen = np.random.default_rng(seed)
    layers = [Linear(n_in, width, rng=gen, init=weight_init), activation()]
    for _ in range(n_hidden - 1):
        layers += [Linear(width, width, rng=gen, init=weight_init), activation()]
    return Sequential(*layers, Linear(width, 10, rng=gen, init=weight_init))


def _measure(model, X, y, steps=20):
    """The measurements of diagnose_training on a real run: layer norms, norm history, saturation."""
    from mlp_lib import losses, optim
    from mlp_lib.modules import Linear, Sigmoid
    sigmoid_outputs = [a for layer, a in zip(model, diagnostics.layer_activations(model, X))
                       if isinstance(layer, Sigmoid)]
    saturation = [diagnostics.saturation_fraction(a, kind="sigmoid") for a in sigmoid_outputs]
    sgd, state, history, first = optim.SGD(lr=0.1), None, [], None
    with np.errstate(all="ignore"):
        for _ in range(steps):
            try:
                model.zero_grad()
                _, dscores = losses.softmax_cross_entropy(model(X), y)
                model.backward(dscores)
            except ValueError:                        # mlp_lib refuses the overflowed activations
                history.append(np.inf)
                break
            grads = [p.grad for p in model.parameters()]
            history.append(float(np.sqrt(sum(float((g**2).sum()) for g in grads))))
            if first is None:
                first = [float(np.linalg.norm(np.concatenate([p.grad.ravel() for p in layer.parameters()])))
                         for layer in model if isinstance(layer, Linear)]
            state = optim.apply_step(sgd, model.parameters(), state)
    n_hidden = len(first) - 1
    return np.array([first]), np.array([history + [history[-1]] * (steps - len(history))]), \
        np.array([(saturation or [0.0] * n_hidden)])


def test_diagnoses_of_the_chapters_own_networks(spec):
    """The thresholds of the statement, applied to the networks the chapter trains (mlp_lib, the digits):
    10 sigmoid layers with the default initialization vanish, ReLU with He initialization is healthy, ReLU
    with 1.5 times the He scale explodes within a few SGD steps, sigmoid units on raw pixels saturate the
    first layer. The synthetic hidden runs imitate these measurements."""
    from mlp_lib import data
    from mlp_lib.modules import ReLU, Sigmoid
    digits, raw = data.load_digits(seed=0), data.load_digits(seed=0, scale=None)
    X, y, X_raw = digits.X_train[:256], digits.y_train[:256], raw.X_train[:256]

    def he(c):
        return lambda shape, rng: c * init.kaiming_normal(shape, nonlinearity="relu", rng=rng)

    reference = spec.part("diagnose_training").reference
    for model, inputs, wanted in ((_digits_mlp(10, Sigmoid), X, "vanishing gradients"),
                                  (_digits_mlp(8, ReLU, he(1.0)), X, "healthy"),
                                  (_digits_mlp(8, ReLU, he(1.5)), X, "exploding gradients"),
                                  (_digits_mlp(2, Sigmoid), X_raw,
                                   "first layer saturated by the inputs")):
        diagnoses, _ = reference(*(torch.tensor(m) for m in _measure(model, inputs, y)))
        assert list(diagnoses) == [wanted]


def test_variance_ratios_are_what_random_linear_networks_do_on_average(spec):
    """Monte Carlo over weight draws: for fixed weights and inputs of variance 1, a pre-activation of the last
    layer has variance ||W_1 ... W_L||_F^2 / n_L on average over its units, and the gradient reaching an input
    ||W_1 ... W_L||_F^2 / n_0 (upstream gradients of variance 1)."""
    part = spec.part("variance_ratios")
    rng = np.random.default_rng(9)
    for case in part.cases(np.random.default_rng(10))[:3]:
        widths, bounds = case["widths"], case["bounds"]
        squares = []
        for _ in range(400):
            product = np.eye(widths[0])
            for n_in, n_out, a in zip(widths[:-1], widths[1:], bounds):
                product = product @ rng.uniform(-a, a, size=(n_in, n_out))
            squares.append((product**2).sum())
        forward, backward = (v.item() for v in part.reference(torch.tensor(widths), torch.tensor(bounds)))
        assert np.mean(squares) / widths[-1] == pytest.approx(forward, rel=0.1)
        assert np.mean(squares) / widths[0] == pytest.approx(backward, rel=0.1)


(test_hidden_cases_of_the_understanding_parts_vary_with_the_secret_seed,
 test_a_constant_answer_or_a_random_guess_loses_each_understanding_part,
 test_each_typical_mistake_of_the_understanding_parts_explains_the_right_answer,
 test_the_written_answer_is_left_to_the_formgrader_with_a_rubric) = support.understanding_checks(
    ASSIGNMENT, UNDERSTANDING, written_answer="top-layer-answer", points=3)
