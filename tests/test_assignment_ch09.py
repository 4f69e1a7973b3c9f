"""Chapter 9's exercise (solutions/ch09_dropout): spec, solution, release, mutants.

The grading machinery must prove, for this assignment: the instructor's solution gets every
point, the released stubs get none, and every typical mistake of the spec's mutant catalogue
loses the points of its own part (with the diagnosis it names) while every part that does not
call the mutated function keeps its points. Two more oracles back the references up: mlp_lib's
regularization functions (tested against torch in test_regularization.py) must agree with them
on every case, and the cases must really contain what the mutants are caught by (drop rates
other than 0.5, both modes, columns on both sides of the bound and one exactly on it). The
sampling parts are exact: consecutive calls on one Generator, each compared with the masks the
same seed draws, so an output that depends on the call count cannot pass. Slow tests run the real
sandboxed pipeline and the release check.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder import pipeline, references
from autograder.course import Course
from autograder.spec import load_spec
from mlp_lib import layers, regularization

import assignment_support as support

ASSIGNMENT = "ch09_dropout"
SOURCE, RELEASED = support.notebook_paths(ASSIGNMENT)
SEEDS = (20251122, 9)            # stand-ins for the instructor's secret seed
course, spec, hidden_cases, solution = support.fixtures(ASSIGNMENT, seeds=SEEDS)
answer_namespace, verdicts = support.answer_namespace, support.verdicts
MUTANTS = support.mutant_ids(ASSIGNMENT)
PART_IDS = ["dropout_forward", "dropout_forward_rng", "dropout_backward", "max_norm", "mlp_forward",
            "mlp_forward_rng"]
CALLS = 3                        # adapters.CALLS: consecutive calls on one Generator
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
    for pid in ("mlp_forward", "mlp_forward_rng"):
        assert plans[pid].functions == ("mlp_forward", "dropout_forward")
    for pid in ("dropout_forward", "dropout_forward_rng", "dropout_backward", "max_norm"):
        assert len(plans[pid].functions) == 1


def test_a_broken_dropout_forward_costs_the_mlp_parts_too(spec, hidden_cases):
    """The MLP parts really run the student's dropout_forward (so a mistake there shows in both)."""
    namespace = answer_namespace(SOURCE)          # mlp_forward looks dropout_forward up in this dict
    namespace["dropout_forward"] = spec.part("dropout_forward").mutants["no 1/(1 - p) scaling"].fn
    results = verdicts(spec, namespace, hidden_cases[SEEDS[0]], ["mlp_forward", "mlp_forward_rng"])
    assert all(v.points == 0 for v in results.values()), {k: v.messages for k, v in results.items()}


# -- the references against a second oracle (mlp_lib), and what the cases contain ---------------------
def _mlp_lib_mlp(inputs: dict, masks=None, rng=None) -> np.ndarray:
    """mlp_lib's MLP with dropout: given masks, drawing them from ``rng``, or (neither) evaluation mode."""
    h = inputs["x"]
    for l in (1, 2, 3):
        p = float(inputs["p_input"] if l == 1 else inputs["p_hidden"])
        if masks is not None or rng is not None:
            h, _ = regularization.dropout_forward(h, p=p, training=True, rng=rng,
                                                  mask=None if masks is None else masks[l - 1])
        h, _ = layers.linear_forward(h, inputs[f"W{l}"], inputs[f"b{l}"])
        if l < 3:
            h = layers.relu(h)
    return h


def _mlp_lib_values(part_id: str, inputs: dict) -> list[np.ndarray]:
    """The same quantities computed with mlp_lib (its own option names and caches)."""
    if part_id == "dropout_forward":
        p, x = float(inputs["p"]), inputs["x"]
        if inputs["mode"] == "training":
            out, cache = regularization.dropout_forward(x, p=p, training=True, mask=inputs["mask"])
            return [out, cache["mask"]]
        out, cache = regularization.dropout_forward(x, p=p, training=False)
        return [out, np.array(cache["mask"] is None)]
    if part_id == "dropout_forward_rng":
        gen = np.random.default_rng(int(inputs["seed"]))
        calls = [regularization.dropout_forward(inputs["x"], p=float(inputs["p"]), training=True, rng=gen)
                 for _ in range(CALLS)]
        return [np.stack([out for out, _ in calls]), np.stack([cache["mask"] for _, cache in calls])]
    if part_id == "dropout_backward":
        dout, p = inputs["dout"], float(inputs["p"])
        if inputs["mode"] == "training":
            _, cache = regularization.dropout_forward(np.ones_like(dout), p=p, training=True, mask=inputs["mask"])
        else:
            _, cache = regularization.dropout_forward(np.ones_like(dout), p=p, training=False)
        return [regularization.dropout_backward(dout, cache)]
    if part_id == "max_norm":
        return [regularization.max_norm(inputs["W"], float(inputs["c"]))]
    if part_id == "mlp_forward":
        masks = [inputs["m0"], inputs["m1"], inputs["m2"]] if inputs["mode"] == "training" else None
        return [_mlp_lib_mlp(inputs, masks)]
    if part_id == "mlp_forward_rng":
        gen = np.random.default_rng(int(inputs["seed"]))
        return [np.stack([_mlp_lib_mlp(inputs, rng=gen) for _ in range(CALLS)])]
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
        assert {str(c["mode"]) for c in fwd} == {"training", "inference"}
        assert any(c["mode"] == "training" and float(c["p"]) != 0.5 for c in fwd)
        for c in fwd + [c.inputs for c in cases["dropout_backward"]]:
            assert c["mask"].dtype == bool and c["mask"].any() and not c["mask"].all()
        assert any(np.ndim(c["x"]) != 2 for c in fwd)                         # any shape
        bwd = [c.inputs for c in cases["dropout_backward"]]
        assert {str(c["mode"]) for c in bwd} == {"training", "inference"}
        for c in bwd:
            dout = c["dout"]
            assert np.all(dout != 0) and not np.all(dout == dout.flat[0])      # random upstream gradients
        ps = [float(c.inputs["p"]) for c in cases["dropout_forward_rng"]]
        assert any(p != 0.5 for p in ps)
        assert sorted(np.ndim(c.inputs["x"]) for c in cases["dropout_forward_rng"]) == [1, 2, 2, 3]
        for c in cases["dropout_forward_rng"]:
            keeps = c.expected["mask"]                                          # CALLS masks in a row
            assert keeps.shape == (CALLS, *c.inputs["x"].shape)
            assert not np.array_equal(keeps[0], keeps[1])                       # consecutive calls differ
            if np.ndim(c.inputs["x"]) >= 2:
                assert not np.all(keeps == keeps[..., :1])                      # rows are not all-or-nothing
                assert not np.all(keeps == keeps[:, :1])                        # examples do not share a mask


def test_max_norm_cases_have_columns_on_both_sides_of_the_bound_and_one_exactly_on_it(hidden_cases):
    for cases in hidden_cases.values():
        assert sum(bool((np.linalg.norm(c.inputs["W"], axis=0) == float(c.inputs["c"])).any())
                   for c in cases["max_norm"]) == 1
        assert any(not (np.linalg.norm(c.inputs["W"], axis=0) > float(c.inputs["c"])).any() for c in cases["max_norm"])
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
        training = [c.inputs for c in cases["mlp_forward"] if c.inputs["mode"] == "training"]
        assert training and any(float(c["p_input"]) != float(c["p_hidden"]) for c in training)
        assert any(float(c["p_input"]) > 0 for c in training)
        assert any(c.inputs["mode"] == "inference" for c in cases["mlp_forward"])
        for c in training:
            for m in ("m1", "m2"):
                assert not c[m].all()


def test_sampling_parts_cannot_be_passed_by_outputs_that_depend_on_the_call_count(spec, hidden_cases, solution):
    """Outputs with the right average and fresh values at every call, but not the masks of the seed: the
    evaluation-mode scores plus a term that alternates with the call count (the average over an even
    number of calls is exact) earn nothing, and neither does dropout with its own Generator."""
    calls = {"n": 0}

    def counting_mlp(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
        scores = solution["mlp_forward"](x, params, p_input=p_input, p_hidden=p_hidden, training=False)
        calls["n"] += 1
        return scores * (1.0 + 0.1 * (-1) ** calls["n"])

    def own_generator_dropout(x, *, p, training, rng=None, mask=None):
        return solution["dropout_forward"](x, p=p, training=training, rng=np.random.default_rng(calls["n"]),
                                           mask=mask)

    for namespace, pid in (({**solution, "mlp_forward": counting_mlp}, "mlp_forward_rng"),
                           ({**solution, "dropout_forward": own_generator_dropout}, "dropout_forward_rng")):
        v = verdicts(spec, namespace, hidden_cases[SEEDS[0]], [pid])[pid]
        assert v.points == 0, (pid, v.messages)


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


# -- bugs the catalogue does not hold (written after reading it) ------------------------------------
_CATALOGUE = {part.id: {name: m.fn for name, m in part.mutants.items()}
              for part in load_spec(Course.open(support.ROOT), ASSIGNMENT).parts}
_dropout = support.answer_namespace(SOURCE)["dropout_forward"]
_dropout_unscaled = _CATALOGUE["dropout_forward"]["no 1/(1 - p) scaling"]
_dropout_inverted_mask = _CATALOGUE["dropout_forward"]["mask inverted (True = drop)"]
_dropout_one_mask_per_feature = _CATALOGUE["dropout_forward_rng"]["one mask shared by all examples"]


def _original_dropout(x, *, p, training, rng=None, mask=None):
    """Srivastava et al.'s formulation: no scaling in training, times 1 - p at test time."""
    if not training:
        return x * (1.0 - p), (None, p)
    return _dropout_unscaled(x, p=p, training=True, rng=rng, mask=mask)


def _dropout_inverted_and_unscaled(x, *, p, training, rng=None, mask=None):
    """Two bugs at once: the mask used as a drop-mask, and no 1/(1 - p)."""
    out, cache = _dropout_inverted_mask(x, p=p, training=training, rng=rng, mask=mask)
    return (out * (1.0 - p), cache) if training else (out, cache)


def _dropout_backward_eval_zeros(dout, cache):
    keep, p = cache
    return np.zeros_like(dout) if keep is None else dout * keep / (1.0 - p)


def _max_norm_without_epsilon(W, c):
    norms = np.linalg.norm(W, axis=0, keepdims=True)
    return W * np.where(norms > c, c / np.where(norms > 0, norms, 1.0), 1.0)


def _mlp(x, params, *, p_input, p_hidden, training, masks=None, rng=None, one_rate=False, relu_scores=False,
         dropout=_dropout):
    """A ReLU MLP with dropout; ``dropout`` is the dropout_forward it calls."""
    h = x
    for l, (W, b) in enumerate(params):
        if training:
            p = p_hidden if (one_rate or l > 0) else p_input
            h, _ = dropout(h, p=p, training=True, rng=rng, mask=None if masks is None else masks[l])
        h = h @ W + b
        if l < len(params) - 1 or relu_scores:
            h = np.maximum(h, 0.0)
    return h


def _mlp_one_rate(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    return _mlp(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks, rng=rng,
                one_rate=True)


def _mlp_calling(dropout, relu_scores=False):
    def mlp_forward(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
        return _mlp(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks, rng=rng,
                    relu_scores=relu_scores, dropout=dropout)
    return mlp_forward


UNCATALOGUED = [
    support.Bug("dropout_forward", "original dropout: no scaling in training, times 1 - p at test time",
                _original_dropout),
    support.Bug("dropout_forward", "two bugs at once: the mask used as a drop-mask, and no 1/(1 - p)",
                _dropout_inverted_and_unscaled),
    support.Bug("dropout_backward", "zeros in evaluation mode", _dropout_backward_eval_zeros),
    support.Bug("max_norm", "c / norm, without torch's 1e-7", _max_norm_without_epsilon),
    support.Bug("mlp_forward", "p_hidden at every site, the input's included", _mlp_one_rate),
    support.Bug("mlp_forward", "a right mlp_forward calling a dropout_forward without 1/(1 - p)",
                fn_of={"mlp_forward": _mlp_calling(_dropout_unscaled), "dropout_forward": _dropout_unscaled},
                may_name=frozenset({"no 1/(1 - p) scaling"})),
    support.Bug("mlp_forward", "two bugs in two functions: ReLU on the scores, and an inverted mask in dropout",
                fn_of={"mlp_forward": _mlp_calling(_dropout_inverted_mask, relu_scores=True),
                       "dropout_forward": _dropout_inverted_mask}),
    support.Bug("mlp_forward_rng", "dropout_forward draws one mask per feature, shared by the examples",
                fn_of={"mlp_forward": _mlp_calling(_dropout_one_mask_per_feature),
                       "dropout_forward": _dropout_one_mask_per_feature}),
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
    support.assert_mutant_loses_its_part_only(spec, hidden_cases, solution, part_id, mutant, callers_may_break=True)


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
