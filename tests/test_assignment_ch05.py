"""Chapter 5's exercise (solutions/ch05_relu_variants): spec, solution, release, mutants.

The grading machinery must prove, for this assignment: the instructor's solution gets every
point, the released stubs get none, and every typical mistake of the spec's mutant catalogue
loses the points of its own part (with the diagnosis it names) while every other part keeps
its points. Those checks run in-process on hidden-style cases (references from torch, float64).
Two more oracles back the references up: mlp_lib's own layers (tested against torch in
test_layers.py) must agree with them on every case, and the cases must really contain what the
mutants are caught by (exact zeros at the kinks, inputs that overflow a naive exp, dead units
with zeros in them). Slow tests run the real sandboxed pipeline and the release check.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder import pipeline, references
from mlp_lib import diagnostics, layers

import assignment_support as support

ASSIGNMENT = "ch05_relu_variants"
SOURCE, RELEASED = support.notebook_paths(ASSIGNMENT)
SEEDS = (20251122, 7)            # stand-ins for the instructor's secret seed
course, spec, hidden_cases, solution = support.fixtures(ASSIGNMENT, seeds=SEEDS)
answer_namespace = support.answer_namespace
MUTANTS = support.mutant_ids(ASSIGNMENT)
PART_IDS = ["relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward", "elu_forward",
            "elu_backward", "softplus_forward", "softplus_backward", "dead_unit_fraction"]
UNDERSTANDING = ["rectifier_std_ratio", "diagnose_dead_units"]   # Parts 10 and 11: what the chapter teaches


def test_spec_has_the_graded_parts_of_the_chapter_in_order(spec):
    assert [p.id for p in spec.parts] == PART_IDS + UNDERSTANDING
    assert sum(p.points for p in spec.parts) == 14
    assert all(len(p.mutants) >= 3 for p in spec.parts), "every part needs a catalogue of typical mistakes"


def test_solution_runs_the_hidden_cases_without_floating_point_warnings(spec, hidden_cases):
    """Overflow is part of what is graded: the model answer itself must never overflow."""
    namespace = answer_namespace(SOURCE)
    for seed, cases in hidden_cases.items():
        for plan in spec.plans():
            outs = pipeline.in_process_outputs(plan, namespace, [c.inputs for c in cases[plan.id]])
            assert outs.error is None
            # underflow (exp(-1000) = 0) is the right answer, not a defect; overflow and nan are
            caught = [w for case in outs.cases for w in case.warnings if "underflow" not in w]
            assert not caught, f"seed {seed}, {plan.id}: {caught}"


def test_the_harness_records_the_overflow_of_a_naive_formula(spec, hidden_cases):
    """The warning check above can fail: a mutant that overflows leaves its warnings in the record."""
    part = spec.part("softplus_forward")
    namespace = answer_namespace(SOURCE)
    namespace[part.function] = part.mutants["naive log(1 + exp(beta x))"].fn
    plan = next(p for p in spec.plans() if p.id == part.id)
    outs = pipeline.in_process_outputs(plan, namespace, [c.inputs for c in hidden_cases[SEEDS[0]][part.id]])
    assert any("overflow" in w for case in outs.cases for w in case.warnings)


# -- the references against a second oracle (mlp_lib), and what the cases contain ---------------------
def _mlp_lib_value(part_id: str, inputs: dict) -> np.ndarray:
    """The same quantity computed with mlp_lib (its own caches, its own option names)."""
    x = inputs.get("x")
    if part_id == "relu_forward":
        return layers.relu(x)
    if part_id == "relu_backward":
        return layers.relu_backward(inputs["dout"], layers.relu_forward(x)[1])
    if part_id.startswith("leaky_relu"):
        out, cache = layers.leaky_relu_forward(x, negative_slope=float(inputs["negative_slope"]))
        return out if part_id.endswith("forward") else layers.leaky_relu_backward(inputs["dout"], cache)
    if part_id.startswith("elu"):
        out, cache = layers.elu_forward(x, alpha=float(inputs["alpha"]))
        return out if part_id.endswith("forward") else layers.elu_backward(inputs["dout"], cache)
    if part_id.startswith("softplus"):
        out, cache = layers.softplus_forward(x, beta=float(inputs["beta"]), threshold=float(inputs["threshold"]))
        return out if part_id.endswith("forward") else layers.softplus_backward(inputs["dout"], cache)
    if part_id == "dead_unit_fraction":
        return np.float64(diagnostics.dead_relu_fraction(inputs["z"]))
    raise AssertionError(part_id)


@pytest.mark.parametrize("part_id", PART_IDS)
def test_torch_references_agree_with_mlp_lib_on_every_case(hidden_cases, part_id):
    for seed, cases in hidden_cases.items():
        for i, case in enumerate(cases[part_id]):
            (expected,) = case.expected.values()
            np.testing.assert_allclose(_mlp_lib_value(part_id, case.inputs), expected, rtol=1e-12, atol=1e-300,
                                       err_msg=f"seed {seed}, {part_id} case {i}")


def test_activation_cases_put_exact_zeros_where_the_kink_is_graded(hidden_cases):
    for cases in hidden_cases.values():
        for pid in PART_IDS[:-1]:
            for case in cases[pid]:
                x = case.inputs["x"]
                assert np.count_nonzero(x == 0) >= 2 and (x > 0).any() and (x < 0).any(), pid
                if "dout" in case.inputs:
                    dout = case.inputs["dout"]
                    assert dout.shape == x.shape and np.all(dout != 0) and not np.all(dout == dout.flat[0])


def test_elu_and_softplus_cases_overflow_a_naive_exp(hidden_cases):
    for cases in hidden_cases.values():
        for pid in ("elu_forward", "elu_backward", "softplus_forward", "softplus_backward"):
            with np.errstate(over="ignore"):
                assert any(np.isinf(np.exp(c.inputs["x"])).any() for c in cases[pid]), pid
            for c in cases[pid]:
                assert all(np.isfinite(v).all() for v in c.expected.values()), pid
        # the case that catches a threshold compared with x instead of beta * x:
        # x below the threshold but beta * x far above exp's overflow
        band = [c for c in cases["softplus_forward"]
                if ((c.inputs["x"] <= c.inputs["threshold"]) & (c.inputs["beta"] * c.inputs["x"] > 710)).any()]
        assert band


def test_softplus_cases_cover_both_sides_of_the_threshold_and_several_betas(hidden_cases):
    for cases in hidden_cases.values():
        sides = set()
        for c in cases["softplus_forward"]:
            bx = c.inputs["beta"] * c.inputs["x"]
            sides |= {bool(v) for v in (bx > c.inputs["threshold"]).ravel()}
        assert sides == {True, False}
        assert len({float(c.inputs["beta"]) for c in cases["softplus_forward"]}) >= 3


def test_dead_unit_cases_separate_units_from_entries_and_strict_from_loose(hidden_cases):
    for cases in hidden_cases.values():
        fractions, strict, rows = [], [], []
        for c in cases["dead_unit_fraction"]:
            z = c.inputs["z"]
            n, d = z.shape
            assert n != d
            dead = (z <= 0).all(axis=0)
            fractions.append(dead.mean())
            strict.append((z < 0).all(axis=0).mean())
            rows.append((z <= 0).all(axis=1).mean())
            np.testing.assert_allclose(float(c.expected["fraction"]), dead.mean(), rtol=0, atol=0)
            # units alive on a single example: sparse, but not dead
            assert ((z > 0).sum(axis=0) == 1).any()
        assert any(f > 0 for f in fractions) and any(f == 0 for f in fractions)
        assert any(s < f for s, f in zip(strict, fractions)), "no dead unit with an exact zero: < vs <= untested"
        assert any(r != f for r, f in zip(rows, fractions)), "the axis-swapped answer is never wrong"


def test_public_cases_are_not_the_hidden_ones(spec):
    public = references.compute(spec, spec.public_seed, "cpu")
    hidden = references.compute(spec, SEEDS[0], "cpu")
    for pid in PART_IDS:
        a, b = public[pid].cases[0].inputs, hidden[pid].cases[0].inputs
        assert any(a[k].shape != b[k].shape or not np.array_equal(a[k], b[k]) for k in a), pid


def test_reference_of_relu_backward_uses_torchs_zero_at_the_kink(spec):
    part = spec.part("relu_backward")
    x = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    dout = torch.tensor([0.5, 0.7, -0.3], dtype=torch.float64)
    assert part.reference(dout, x).tolist() == [0.0, 0.0, -0.3]


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


# -- Parts 10 to 12: understanding, graded automatically and by hand ------------------------------------

@pytest.mark.parametrize("slope", [0.0, 0.1, 0.3])
def test_rectifier_std_ratio_is_what_a_wide_random_stack_does(spec, slope):
    """He et al.'s argument against a simulation with mlp_lib's layers: wide layers, He, Xavier and scaled
    variances mixed, the ratio of standard deviations of the first and last pre-activations."""
    rng = np.random.default_rng(51)
    widths = np.array([64, 800, 800, 800, 800, 800])
    weight_var = np.array([1.0, 2.0, 1.0, 1.5, 2.0]) / widths[:-1]
    z = rng.standard_normal((2000, widths[0])) @ (np.sqrt(weight_var[0]) * rng.standard_normal(widths[:2]))
    first = z.std()
    for n_in, n_out, v in zip(widths[1:-1], widths[2:], weight_var[1:]):
        h = layers.leaky_relu_forward(z, negative_slope=slope)[0] if slope else layers.relu_forward(z)[0]
        z = h @ (np.sqrt(v) * rng.standard_normal((n_in, n_out)))
    predicted = spec.part("rectifier_std_ratio").reference(
        torch.tensor(widths), torch.tensor(weight_var), torch.tensor(slope)).item()
    assert z.std() / first == pytest.approx(predicted, rel=0.05)


def _dead_curve_of_a_run(init_bias, optimizer, epochs=3, n_hidden=2, layer=0):
    """The chapter's experiments, shortened: the dead fraction of one hidden layer at initialization and after
    each epoch of training on the digits (He weights, batches of 32)."""
    from mlp_lib import data, init, losses
    from mlp_lib.modules import Linear, ReLU, Sequential
    from mlp_lib.training import fit
    digits = data.load_digits(seed=0)
    gen = np.random.default_rng(2015)
    he = (lambda shape, rng: init.kaiming_normal(shape, nonlinearity="relu", rng=rng))
    body = []
    for i in range(n_hidden):
        body += [Linear(64 if i == 0 else 100, 100, rng=gen, init=he), ReLU()]
    model = Sequential(*body, Linear(100, 10, rng=gen, init=he))
    model.layers[0].bias.data[:] = init_bias

    def dead(model):
        z = diagnostics.layer_activations(model, digits.X_train)[2 * layer]
        return diagnostics.dead_relu_fraction(z)

    class Tracker:
        def __init__(self):
            self.log = [dead(model)]

        def on_epoch_end(self, epoch, history, model):
            self.log.append(dead(model))

    tracker = Tracker()
    fit(model, loss=losses.softmax_cross_entropy, optimizer=optimizer, X=digits.X_train, y=digits.y_train,
        epochs=epochs, batch_size=32, rng=2015, callbacks=[tracker])
    return np.array(tracker.log)


def test_dead_unit_diagnoses_of_the_chapters_own_experiments(spec):
    """Biases at -6 kill the first layer from the start; Adam at 0.03 kills the second layer during the first
    epochs; Adam at 0.001 leaves the layers alive. The reference's thresholds name each cause."""
    from mlp_lib import optim
    curves = np.array([_dead_curve_of_a_run(-6.0, optim.SGD(lr=0.05)),
                       _dead_curve_of_a_run(0.0, optim.Adam(lr=0.03), n_hidden=3, layer=1),
                       _dead_curve_of_a_run(0.0, optim.Adam(lr=0.001), n_hidden=3, layer=1)])
    causes, fixes = spec.part("diagnose_dead_units").reference(torch.tensor(curves))
    assert list(causes) == ["dead from initialization", "killed during training", "no dead units"], curves
    assert list(fixes) == ["initialize the biases at zero", "lower the learning rate", "keep the settings"]


(test_hidden_cases_of_the_understanding_parts_vary_with_the_secret_seed,
 test_a_constant_answer_or_a_random_guess_loses_each_understanding_part,
 test_each_typical_mistake_of_the_understanding_parts_explains_the_right_answer,
 test_the_written_answer_is_left_to_the_formgrader_with_a_rubric) = support.understanding_checks(
    ASSIGNMENT, UNDERSTANDING, written_answer="dead-units-answer", points=3)
