"""Chapter 6's exercise (solutions/ch06_hyperparameter_tuning): spec, solution, release, mutants.

The grading machinery must prove, for this assignment: the instructor's solution gets every
point, the released stubs get none, and every typical mistake of the spec's mutant catalogue
loses the points of its own part (with the diagnosis it names) while every other part keeps
its points. The references must follow the conventions the book teaches, so ``mlp_lib.tuning``
(which the book uses) passes the hidden cases too; the log-uniform part also has a statistical
output, whose tolerance is checked here on many seeds. One slow test runs the real sandboxed
pipeline (``python -m autograder check``) end to end.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mlp_lib import tuning

import assignment_support as support

ASSIGNMENT = "ch06_hyperparameter_tuning"
SOURCE, RELEASED = support.notebook_paths(ASSIGNMENT)
SEEDS = (20251122, 6)            # stand-ins for the instructor's secret seed
course, spec, hidden_cases, solution = support.fixtures(ASSIGNMENT, seeds=SEEDS)
verdicts = support.verdicts
MUTANTS = support.mutant_ids(ASSIGNMENT)
PART_IDS = ["grid", "log_uniform", "random_search", "kfold_indices", "expected_improvement", "best_trial"]
UNDERSTANDING = ["sweep_advice", "search_coverage"]          # Parts 7 and 8: what the chapter teaches to predict


def test_spec_has_six_parts_matching_the_notebook_cells(spec):
    assert [p.id for p in spec.parts] == PART_IDS + UNDERSTANDING
    assert sum(p.points for p in spec.parts) == 14
    assert all(len(p.mutants) >= 6 for p in spec.parts), "every part needs a catalogue of typical mistakes"


# ------------------------------------------------------------------ the references follow mlp_lib's conventions

def _mlp_lib_namespace() -> dict:
    """The exercise's functions written with mlp_lib.tuning, the library the book uses."""
    def log_uniform(low, high, n, *, rng):
        dist = tuning.LogUniform(low, high)
        return np.array([dist.sample(rng) for _ in range(n)])

    def random_search(objective, space, n_trials, *, rng):
        table = tuning.random_search(objective, {k: tuning.LogUniform(*b) for k, b in space.items()},
                                     n_trials=n_trials, rng=rng)
        return [{k: row[k] for k in space} for row in table], np.array(table.column("score"))

    def kfold_indices(n, k, *, shuffle=False, rng=None):
        return tuning.kfold_indices(n, k, shuffle=shuffle, rng=rng)

    return {"grid": tuning.grid, "log_uniform": log_uniform, "random_search": random_search,
            "kfold_indices": kfold_indices, "expected_improvement": tuning.expected_improvement}


def test_mlp_lib_tuning_passes_the_hidden_cases(spec, hidden_cases):
    """grid order, draw order, fold convention and EI formula: the grader and the book agree.

    (best_trial's NaN rule has no counterpart in mlp_lib: its searches never record a NaN score.)
    """
    namespace = _mlp_lib_namespace()
    for cases in hidden_cases.values():
        for pid, v in verdicts(spec, namespace, cases, list(namespace)).items():
            assert v.status == "passed", f"mlp_lib's {pid}: {v.messages}"


def test_kfold_reference_matches_scikit_learn_without_shuffling(spec):
    from sklearn.model_selection import KFold

    part = spec.part("kfold_indices")
    checked = 0
    for case in part.cases(np.random.default_rng(11)):
        if int(case["shuffle"]):
            continue
        n, k = int(case["n"]), int(case["k"])
        val, train, sizes = part.reference(*(torch.tensor(case[a]) for a in ("n", "k", "shuffle", "seed")))
        want = list(KFold(n_splits=k).split(np.zeros(n)))
        np.testing.assert_array_equal(val.numpy(), np.concatenate([v for _, v in want]))
        np.testing.assert_array_equal(train.numpy(), np.concatenate([t for t, _ in want]))
        assert sizes.tolist() == [len(v) for _, v in want]
        checked += 1
    assert checked >= 2


def test_ei_reference_is_a_gaussian_expectation(spec):
    """Monte Carlo: E[max(F - best - xi, 0)] (or best - F - xi) for F ~ N(mu, sigma^2), per entry."""
    part = spec.part("expected_improvement")
    rng = np.random.default_rng(12)
    for case in part.cases(rng)[:2] + part.cases(rng)[2:4]:
        got = part.reference(**{k: torch.tensor(v) for k, v in case.items()}).numpy()
        sign = 1.0 if int(case["maximize"]) else -1.0
        for i in np.flatnonzero(case["sigma"] > 0.05)[:4]:
            f = case["mu"][i] + case["sigma"][i] * rng.standard_normal(400_000)
            mc = np.mean(np.maximum(sign * (f - case["best"]) - case["xi"], 0.0))
            assert abs(got[i] - mc) < 0.02 * case["sigma"][i] + 1e-4, (i, got[i], mc)


def test_ei_cases_hold_certain_predictions_with_d_exactly_zero(spec):
    part = spec.part("expected_improvement")
    cases = part.cases(np.random.default_rng(13))
    assert {int(c["maximize"]) for c in cases} == {0, 1} and any(float(c["xi"]) > 0 for c in cases)
    for case in cases:
        sign = 1.0 if int(case["maximize"]) else -1.0
        d = sign * (case["mu"] - case["best"]) - case["xi"]
        certain = case["sigma"] == 0
        assert np.any(certain & (d == 0)) and np.any(certain & (d > 0)) and np.any(certain & (d < 0))
        ei = part.reference(**{k: torch.tensor(v) for k, v in case.items()}).numpy()
        assert np.all(np.isfinite(ei)) and np.all(ei > -1e-12)


def test_best_trial_cases_have_ties_nan_and_both_directions(spec):
    part = spec.part("best_trial")
    cases = part.cases(np.random.default_rng(14))
    assert {int(c["maximize"]) for c in cases} == {0, 1}
    assert any(math.isnan(c["scores"][0]) for c in cases if int(c["maximize"]) == 1)
    assert any(math.isnan(c["scores"][0]) for c in cases if int(c["maximize"]) == 0)
    for case in cases:
        s = case["scores"]
        assert np.any(np.isfinite(s))
        extreme = np.nanmax(s) if int(case["maximize"]) else np.nanmin(s)
        index = int(part.reference(torch.tensor(s), torch.tensor(case["lrs"]), torch.tensor(case["maximize"]))[0])
        assert index == int(np.flatnonzero(s == extreme)[0])          # the earliest of the tied best scores
    assert sum(np.sum(c["scores"] == (np.nanmax(c["scores"]) if int(c["maximize"]) else np.nanmin(c["scores"]))) >= 2
               for c in cases) >= 3


def test_grid_cases_have_unsorted_keys_and_values(spec):
    part = spec.part("grid")
    table = part.cases.__globals__["NAMES"]           # the names the spec's adapter uses
    for case in part.cases(np.random.default_rng(15)):
        names = [table[int(i)] for i in case["names"]]
        if len(names) > 1:
            assert names != sorted(names)
        start = 0
        for size in case["sizes"].tolist():
            v = case["values"][start:start + size]
            assert size == 1 or not np.all(np.diff(v) > 0)
            start += size


@pytest.mark.parametrize("seed", range(6))
def test_decile_check_has_a_wide_margin_for_correct_samplers(spec, seed):
    """On more seeds, the 200 000-draw decile fractions of the solution stay far from the rounding edges."""
    part = spec.part("log_uniform")
    for case in part.cases(np.random.default_rng(100 + seed)):
        low, high = float(case["low"]), float(case["high"])
        x = np.exp(np.log(low) + np.random.default_rng(int(case["seed"]) + 1).random(200_000)
                   * (np.log(high) - np.log(low)))
        t = (np.log(x) - np.log(low)) / (np.log(high) - np.log(low))
        fractions = np.histogram(t, bins=10, range=(0.0, 1.0))[0] / x.size
        assert np.max(np.abs(fractions - 0.1)) < 0.0035        # the rounding edges are at 0.005


def test_torch_sampled_log_uniform_lands_on_the_decile_reference():
    """The distribution behind the reference, sampled by torch itself, has equal deciles."""
    generator = torch.Generator().manual_seed(2012)
    low, high = 1e-5, 3.0
    x = torch.exp(torch.empty(200_000, dtype=torch.float64).uniform_(math.log(low), math.log(high), generator=generator))
    t = (torch.log(x) - math.log(low)) / (math.log(high) - math.log(low))
    fractions = torch.histc(t, bins=10, min=0.0, max=1.0) / x.numel()
    assert torch.allclose(torch.round(fractions, decimals=2), torch.full((10,), 0.1, dtype=torch.float64))


def test_adapters_name_the_keys_as_the_spec_says(spec):
    """The grid and random-search adapters (self-contained code sent to the kernel) use the spec's NAMES."""
    table = spec.part("grid").cases.__globals__["NAMES"]

    class Recorder:
        def grid(self, space):
            self.keys = list(space)
            return []

        def random_search(self, objective, space, n_trials, *, rng):
            self.keys = list(space)
            return [], []

    for part_id, function in (("grid", "grid"), ("random_search", "random_search")):
        part = spec.part(part_id)
        case = part.cases(np.random.default_rng(16))[0]
        student = Recorder()
        part.call(student, **case)
        assert student.keys == [table[int(i)] for i in case["names"]], function


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

def _digits_run(lr, X, y, epochs, *, width=32, batch_size=64, seed=0):
    """The chapter's sweep network (one hidden layer of ReLUs, plain SGD) trained on (X, y): the training
    loss on (X, y) and the validation accuracy, before training and after each epoch. A run that overflows
    (mlp_lib refuses non-finite values) is recorded as nan from there on."""
    from mlp_lib import data, losses, optim
    from mlp_lib.modules import Linear, ReLU, Sequential
    from mlp_lib.training import accuracy, evaluate, fit
    digits = data.load_digits(seed=0)
    gen = np.random.default_rng(seed)
    model = Sequential(Linear(64, width, rng=gen), ReLU(), Linear(width, 10, rng=gen))
    loss, acc = [], []

    class Measure:
        def on_epoch_end(self, epoch=None, history=None, model=model):
            loss.append(evaluate(model, losses.softmax_cross_entropy, X, y)[0])
            acc.append(accuracy(model(digits.X_val), digits.y_val))

    Measure().on_epoch_end()
    with np.errstate(all="ignore"):
        try:
            fit(model, loss=losses.softmax_cross_entropy, optimizer=optim.SGD(lr=lr), X=X, y=y, epochs=epochs,
                batch_size=batch_size, rng=seed, callbacks=[Measure()])
        except ValueError:
            pass
    missing = epochs + 1 - len(loss)
    return np.array(loss + [np.nan] * missing), np.array(acc + [acc[-1]] * missing)


def test_sweep_advice_on_the_chapters_own_runs(spec):
    """The chapter's runs, shortened: eta = 1e-4 barely moves, eta = 0.1 trains, eta = 3 explodes, and the wide
    network on 300 images with 30% wrong labels overfits. The statement's thresholds name each one."""
    from mlp_lib import data
    digits = data.load_digits(seed=0)
    noise = np.random.default_rng(1958)
    X_noisy, y_noisy = digits.X_train[:300], digits.y_train[:300].copy()
    relabel = noise.random(300) < 0.3
    y_noisy[relabel] = noise.integers(0, 10, size=int(relabel.sum()))
    runs = [_digits_run(lr, digits.X_train, digits.y_train, 10) for lr in (1e-4, 0.1, 3.0)]
    runs.append(_digits_run(0.1, X_noisy, y_noisy, 60, width=128, batch_size=32))
    width = max(len(r[0]) for r in runs)
    pad = [(np.r_[l, [l[-1]] * (width - len(l))], np.r_[a, [a[-1]] * (width - len(a))]) for l, a in runs]
    advice = spec.part("sweep_advice").reference(torch.tensor(np.array([l for l, _ in pad])),
                                                 torch.tensor(np.array([a for _, a in pad])))
    assert list(advice) == ["raise the learning rate", "keep the settings", "lower the learning rate", "stop earlier"]


def test_search_coverage_reference_against_draws(spec):
    """The three probabilities against sampling: 200,000 uniform and log-uniform draws, and 20,000 random
    searches of n_trials log-uniform trials each."""
    part = spec.part("search_coverage")
    rng = np.random.default_rng(12)
    for case in part.cases(np.random.default_rng(13)):
        low, high, a, b, n = (case[k] for k in ("low", "high", "a", "b", "n_trials"))
        uniform, log_uniform, found = (v.item() for v in part.reference(*(torch.tensor(case[k]) for k in
                                                                           ("low", "high", "a", "b", "n_trials"))))
        u = rng.uniform(low, high, size=200_000)
        g = np.exp(rng.uniform(np.log(low), np.log(high), size=200_000))
        searches = np.exp(rng.uniform(np.log(low), np.log(high), size=(20_000, int(n))))
        assert np.mean((u >= a) & (u <= b)) == pytest.approx(uniform, abs=0.005)
        assert np.mean((g >= a) & (g <= b)) == pytest.approx(log_uniform, abs=0.005)
        assert np.mean(((searches >= a) & (searches <= b)).any(axis=1)) == pytest.approx(found, abs=0.015)


(test_hidden_cases_of_the_understanding_parts_vary_with_the_secret_seed,
 test_a_constant_answer_or_a_random_guess_loses_each_understanding_part,
 test_each_typical_mistake_of_the_understanding_parts_explains_the_right_answer,
 test_the_written_answer_is_left_to_the_formgrader_with_a_rubric) = support.understanding_checks(
    ASSIGNMENT, UNDERSTANDING, written_answer="test-set-answer", points=3)
