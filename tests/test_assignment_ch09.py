"""Chapter 9's exercise (solutions/ch09_dropout): spec, solution, release, mutants.

The grading machinery must prove, for this assignment: the instructor's solution gets every
point, the released stubs get none, and every typical mistake of the spec's mutant catalogue
loses the points of its own part (with the diagnosis it names) while every part that does not
call the mutated function keeps its points. Two more oracles back the references up: mlp_lib's
regularization functions (tested against torch in test_regularization.py) must agree with them
on every case, and the cases must really contain what the mutants are caught by (drop rates
other than 0.5, both modes, columns on both sides of the bound). The statistical part is checked
for its premise (positive networks: the expectation over masks is exactly the eval output) and
for its margin (the tolerance is more than six standard errors of the solution's average).
Slow tests run the real sandboxed pipeline and the release check.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from autograder import pipeline, references
from mlp_lib import layers, regularization

import assignment_support as support

ASSIGNMENT = "ch09_dropout"
SOURCE, RELEASED = support.notebook_paths(ASSIGNMENT)
SEEDS = (20251122, 9)            # stand-ins for the instructor's secret seed
course, spec, hidden_cases, solution = support.fixtures(ASSIGNMENT, seeds=SEEDS)
answer_namespace, verdicts = support.answer_namespace, support.verdicts
MUTANTS = support.mutant_ids(ASSIGNMENT)
PART_IDS = ["dropout_forward", "dropout_forward_rng", "dropout_backward", "max_norm", "mlp_forward",
            "mlp_forward_mean"]
STATISTICAL = "mlp_forward_mean"
UNDERSTANDING = ["dropout_moments", "diagnose_dropout"]       # Parts 7 and 8: what the chapter teaches to predict


def test_spec_has_the_graded_parts_of_the_chapter_in_order(spec):
    assert [p.id for p in spec.parts] == PART_IDS + UNDERSTANDING
    assert sum(p.points for p in spec.parts) == 14
    assert all(len(p.mutants) >= 4 for p in spec.parts), "every part needs a catalogue of typical mistakes"


def test_solution_runs_the_hidden_cases_without_warnings(spec, hidden_cases, solution):
    for plan in spec.plans():
        outs = pipeline.in_process_outputs(plan, solution, [c.inputs for c in hidden_cases[SEEDS[0]][plan.id]])
        assert outs.error is None
        caught = [w for case in outs.cases for w in case.warnings]
        assert not caught, f"{plan.id}: {caught}"


def test_the_mlp_parts_declare_that_they_call_the_students_dropout(spec):
    plans = {p.id: p for p in spec.plans()}
    for pid in ("mlp_forward", "mlp_forward_mean"):
        assert plans[pid].functions == ("mlp_forward", "dropout_forward")
    for pid in ("dropout_forward", "dropout_forward_rng", "dropout_backward", "max_norm"):
        assert len(plans[pid].functions) == 1


def test_a_broken_dropout_forward_costs_the_mlp_parts_too(spec, hidden_cases):
    """The MLP parts really run the student's dropout_forward (so a mistake there shows in both)."""
    namespace = answer_namespace(SOURCE)          # mlp_forward looks dropout_forward up in this dict
    namespace["dropout_forward"] = spec.part("dropout_forward").mutants["no 1/(1 - p) scaling"].fn
    results = verdicts(spec, namespace, hidden_cases[SEEDS[0]], ["mlp_forward", "mlp_forward_mean"])
    assert all(v.points == 0 for v in results.values()), {k: v.messages for k, v in results.items()}


# -- the references against a second oracle (mlp_lib), and what the cases contain ---------------------
def _mlp_lib_mlp(inputs: dict, masks) -> np.ndarray:
    h = inputs["x"]
    for l in (1, 2, 3):
        if masks is not None:
            p = float(inputs["p_input"] if l == 1 else inputs["p_hidden"])
            h, _ = regularization.dropout_forward(h, p=p, training=True, mask=masks[l - 1])
        h, _ = layers.linear_forward(h, inputs[f"W{l}"], inputs[f"b{l}"])
        if l < 3:
            h = layers.relu(h)
    return h


def _mlp_lib_values(part_id: str, inputs: dict) -> list[np.ndarray]:
    """The same quantities computed with mlp_lib (its own option names and caches)."""
    if part_id == "dropout_forward":
        p, x = float(inputs["p"]), inputs["x"]
        if int(inputs["training"]):
            out, cache = regularization.dropout_forward(x, p=p, training=True, mask=inputs["mask"])
            return [out, cache["mask"]]
        out, cache = regularization.dropout_forward(x, p=p, training=False)
        return [out, np.array(cache["mask"] is None)]
    if part_id == "dropout_forward_rng":
        out, cache = regularization.dropout_forward(inputs["x"], p=float(inputs["p"]), training=True,
                                                    rng=np.random.default_rng(int(inputs["seed"])))
        return [out, cache["mask"]]
    if part_id == "dropout_backward":
        dout, p = inputs["dout"], float(inputs["p"])
        if int(inputs["training"]):
            _, cache = regularization.dropout_forward(np.ones_like(dout), p=p, training=True, mask=inputs["mask"])
        else:
            _, cache = regularization.dropout_forward(np.ones_like(dout), p=p, training=False)
        return [regularization.dropout_backward(dout, cache)]
    if part_id == "max_norm":
        return [regularization.max_norm(inputs["W"], float(inputs["c"]))]
    if part_id == "mlp_forward":
        masks = [inputs["m0"], inputs["m1"], inputs["m2"]] if int(inputs["training"]) else None
        return [_mlp_lib_mlp(inputs, masks)]
    if part_id == "mlp_forward_mean":
        return [_mlp_lib_mlp(inputs, None), np.array(True)]
    raise AssertionError(part_id)


@pytest.mark.parametrize("part_id", PART_IDS)
def test_torch_references_agree_with_mlp_lib_on_every_case(spec, hidden_cases, part_id):
    names = spec.part(part_id).graded_outputs
    for seed, cases in hidden_cases.items():
        for i, case in enumerate(cases[part_id]):
            for name, value in zip(names, _mlp_lib_values(part_id, case.inputs)):
                expected = case.expected[name]
                if expected.dtype == bool:
                    assert np.array_equal(np.asarray(value, dtype=bool), expected), f"seed {seed}, {part_id} {i}"
                else:
                    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-300,
                                               err_msg=f"seed {seed}, {part_id} case {i} output {name}")


def test_mlp_lib_passes_the_dropout_parts(spec, hidden_cases):
    """mlp_lib's dropout (the book's) follows the exercise's conventions, through thin adapters."""
    def dropout_forward(x, *, p, training, rng=None, mask=None):
        out, cache = regularization.dropout_forward(x, p=p, training=training, rng=rng, mask=mask)
        return out, (cache["mask"], p)

    def max_norm(W, c):
        return regularization.max_norm(W, float(c))

    namespace = {"dropout_forward": dropout_forward, "max_norm": max_norm}
    for cases in hidden_cases.values():
        for pid, v in verdicts(spec, namespace, cases, ["dropout_forward", "dropout_forward_rng", "max_norm"]).items():
            assert v.status == "passed", f"mlp_lib's {pid}: {v.messages}"


def test_dropout_cases_hold_both_modes_rates_other_than_a_half_and_real_masks(hidden_cases):
    for cases in hidden_cases.values():
        fwd = [c.inputs for c in cases["dropout_forward"]]
        assert {int(c["training"]) for c in fwd} == {0, 1}
        assert any(int(c["training"]) and float(c["p"]) != 0.5 for c in fwd)
        for c in fwd + [c.inputs for c in cases["dropout_backward"]]:
            assert c["mask"].dtype == bool and c["mask"].any() and not c["mask"].all()
        assert any(np.ndim(c["x"]) != 2 for c in fwd)                         # any shape
        bwd = [c.inputs for c in cases["dropout_backward"]]
        assert {int(c["training"]) for c in bwd} == {0, 1}
        for c in bwd:
            dout = c["dout"]
            assert np.all(dout != 0) and not np.all(dout == dout.flat[0])      # random upstream gradients
        ps = [float(c.inputs["p"]) for c in cases["dropout_forward_rng"]]
        assert any(p != 0.5 for p in ps)
        for c in cases["dropout_forward_rng"]:
            if np.ndim(c.inputs["x"]) >= 2:
                keep = c.expected["mask"]
                assert not np.all(keep == keep[..., :1])                         # rows are not all-or-nothing


def test_max_norm_cases_have_columns_on_both_sides_of_the_bound(hidden_cases):
    for cases in hidden_cases.values():
        kinds = set()
        for c in cases["max_norm"]:
            W, bound = c.inputs["W"], float(c.inputs["c"])
            assert W.shape[0] != W.shape[1]
            norms = np.linalg.norm(W, axis=0)
            above, below = (norms > bound).any(), (norms < bound).any()
            kinds.add((bool(above), bool(below)))
            row_norms = np.linalg.norm(W, axis=1)
            assert not np.allclose(row_norms, norms.mean())
        assert {(True, True), (False, True), (True, False)} <= kinds


def test_mlp_cases_use_different_rates_for_inputs_and_hidden_layers(hidden_cases):
    for cases in hidden_cases.values():
        training = [c.inputs for c in cases["mlp_forward"] if int(c.inputs["training"])]
        assert training and any(float(c["p_input"]) != float(c["p_hidden"]) for c in training)
        assert any(float(c["p_input"]) > 0 for c in training)
        assert any(not int(c.inputs["training"]) for c in cases["mlp_forward"])
        for c in training:
            for m in ("m1", "m2"):
                assert not c[m].all()


def test_statistical_cases_are_positive_networks_so_the_mean_is_exactly_the_eval_output(hidden_cases):
    """Positive inputs, weights and biases: every pre-activation >= its bias > 0 for every mask, so the
    network is linear in each (independent, mean-one) mask and E[scores] = eval-mode scores exactly."""
    rng = np.random.default_rng(0)
    for cases in hidden_cases.values():
        for c in cases[STATISTICAL]:
            inp = c.inputs
            assert np.all(inp["x"] > 0)
            for l in (1, 2, 3):
                assert np.all(inp[f"W{l}"] > 0) and np.all(inp[f"b{l}"] > 0)
            # the ReLUs never act: with any masks, the MLP equals the same computation without ReLU
            for _ in range(20):
                masks = [rng.random(inp["x"].shape) >= 0.5, rng.random((inp["x"].shape[0], inp["W1"].shape[1])) >= 0.5,
                         rng.random((inp["x"].shape[0], inp["W2"].shape[1])) >= 0.5]
                h = inp["x"] * masks[0] / 0.5
                for l in (1, 2):
                    z = h @ inp[f"W{l}"] + inp[f"b{l}"]
                    assert np.all(z > 0)
                    h = z * masks[l] / 0.5


def test_statistical_tolerance_is_more_than_six_standard_errors(spec, hidden_cases, solution):
    """The solution's per-sample scores give the standard error of the average the adapter computes."""
    grading = __import__(spec.part(STATISTICAL).reference.__module__)
    assert f"n_samples = {grading.N_SAMPLES}" in inspect.getsource(spec.part(STATISTICAL).call)
    for seed, cases in hidden_cases.items():
        for c in cases[STATISTICAL]:
            inp = c.inputs
            params = [(inp[f"W{l}"], inp[f"b{l}"]) for l in (1, 2, 3)]
            gen = np.random.default_rng(int(inp["seed"]))
            samples = np.array([solution["mlp_forward"](inp["x"], params, p_input=float(inp["p_input"]),
                                                        p_hidden=float(inp["p_hidden"]), training=True, rng=gen)
                                for _ in range(grading.N_SAMPLES)])
            expected = c.expected["mean_scores"]
            relative_se = samples.std(axis=0) / np.sqrt(grading.N_SAMPLES) / np.abs(expected)
            assert grading.STAT_RTOL > 6 * relative_se.max(), (seed, relative_se.max())
            # ... and the mean really converges to the reference
            assert np.all(np.abs(samples.mean(axis=0) - expected) < 5 * relative_se * np.abs(expected))


def test_public_cases_are_not_the_hidden_ones(spec):
    public = references.compute(spec, spec.public_seed, "cpu")
    hidden = references.compute(spec, SEEDS[0], "cpu")
    for pid in PART_IDS:
        a, b = public[pid].cases[0].inputs, hidden[pid].cases[0].inputs
        assert any(a[k].shape != b[k].shape or not np.array_equal(a[k], b[k]) for k in a), pid


def test_max_norm_reference_is_torch_renorm_on_the_rows_of_the_transposed_weight(spec):
    part = spec.part("max_norm")
    W = torch.tensor([[3.0, 0.3], [4.0, 0.4], [0.0, 0.0]], dtype=torch.float64)   # columns of norm 5 and 0.5
    got = part.reference(W, torch.tensor(1.0, dtype=torch.float64))
    np.testing.assert_allclose(got.numpy(), [[0.6, 0.3], [0.8, 0.4], [0.0, 0.0]], rtol=1e-6)


# -- what every assignment must prove (tests/assignment_support.py) -----------------------------------

def test_solution_gets_every_point_on_hidden_cases(spec, hidden_cases, solution):
    support.assert_solution_gets_every_point(spec, hidden_cases, solution)


def test_released_stubs_get_no_point(spec, hidden_cases):
    support.assert_stubs_get_no_point(spec, hidden_cases, RELEASED)


@pytest.mark.parametrize("part_id, mutant", MUTANTS)
def test_each_mutant_loses_its_own_part_only_with_its_diagnosis(spec, hidden_cases, solution, part_id, mutant):
    support.assert_mutant_loses_its_part_only(spec, hidden_cases, solution, part_id, mutant, unchecked=(STATISTICAL,), callers_may_break=True, others_on_first_seed_only=True)


@pytest.mark.slow
def test_solution_and_release_through_the_sandboxed_check(course):
    support.assert_sandboxed_check(course, SOURCE, RELEASED, points=14)


# -- Parts 7 to 9: understanding, graded automatically and by hand --------------------------------------

def test_dropout_moments_match_many_masks_drawn_by_mlp_lib(spec):
    part = spec.part("dropout_moments")
    rng = np.random.default_rng(90)
    for case in part.cases(np.random.default_rng(91))[:3]:
        h, W, b, p = case["h"], case["W"], case["b"], float(case["p"])
        samples, _ = regularization.dropout_forward(np.broadcast_to(h, (20_000, *h.shape)), p=p, training=True, rng=rng)
        z = samples @ W + b
        mean, var = (v.numpy() for v in part.reference(*(torch.tensor(case[k]) for k in ("h", "W", "b", "p"))))
        scale = np.sqrt(var / 20_000) + 1e-12
        assert np.all(np.abs(z.mean(axis=0) - mean) < 5 * scale)
        np.testing.assert_allclose(z.var(axis=0), var, rtol=0.1, atol=1e-9)


def test_diagnose_dropout_reference_names_mlp_lib_and_its_broken_variants(spec):
    """mlp_lib's dropout is correct; without the 1 / (1 - p), with the test-time weight scaling applied on top,
    with p read as the keep probability, or left in training mode at evaluation, it is diagnosed as such."""
    reference = spec.part("diagnose_dropout").reference
    rng = np.random.default_rng(92)
    h, p = rng.uniform(0.2, 3.0, size=6), 0.3
    x = np.broadcast_to(h, (300, 6))

    def train(p_drop, scale):
        out, _ = regularization.dropout_forward(x, p=p_drop, training=True, rng=rng)
        return out * scale

    def evaluation(training=False, scale=1.0):
        return regularization.dropout_forward(x[:40], p=p, training=training, rng=rng)[0] * scale

    implementations = {"correct inverted dropout": (train(p, 1.0), evaluation()),
                       "not scaled during training": (train(p, 1 - p), evaluation()),
                       "scaled again at evaluation": (train(p, 1.0), evaluation(scale=1 - p)),
                       "p used as the keep probability": (train(1 - p, 1.0), evaluation()),
                       "still dropping at evaluation": (train(p, 1.0), evaluation(training=True))}
    for wanted, (train_out, eval_out) in implementations.items():
        got = reference(torch.tensor(h), torch.tensor(p), torch.tensor(train_out), torch.tensor(eval_out))
        assert str(got) == wanted


(test_hidden_cases_of_the_understanding_parts_vary_with_the_secret_seed,
 test_a_constant_answer_or_a_random_guess_loses_each_understanding_part,
 test_each_typical_mistake_of_the_understanding_parts_explains_the_right_answer,
 test_the_written_answer_is_left_to_the_formgrader_with_a_rubric) = support.understanding_checks(
    ASSIGNMENT, UNDERSTANDING, written_answer="output-dropout-answer", points=3)
