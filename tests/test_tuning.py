"""mlp_lib.tuning: search spaces, searches, expected improvement, k-fold splits."""
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch
from sklearn.model_selection import KFold

from conftest import to_torch
from mlp_lib.tuning import (Choice, IntUniform, LogUniform, TrialTable, Uniform, bayesian_search,
                            expected_improvement, grid, grid_search, kfold_indices, random_search,
                            sample_configs, stratified_kfold_indices)

# ---------------------------------------------------------------- grid


def test_grid_varies_the_last_key_fastest_in_insertion_order():
    space = {"lr": [0.1, 0.01], "width": [16, 32, 64], "act": ["relu", "tanh"]}
    expected = [{"lr": lr, "width": w, "act": a}
                for lr in space["lr"] for w in space["width"] for a in space["act"]]
    configs = grid(space)
    assert configs == expected
    assert [list(c) for c in configs] == [["lr", "width", "act"]] * 12
    # Reordering the dict reorders the loops.
    swapped = grid({"act": ["relu", "tanh"], "lr": [0.1, 0.01]})
    assert [(c["act"], c["lr"]) for c in swapped] == [("relu", 0.1), ("relu", 0.01), ("tanh", 0.1), ("tanh", 0.01)]


@pytest.mark.parametrize("space, error", [
    ({"lr": LogUniform(1e-4, 1e-1)}, TypeError),
    ({"lr": []}, ValueError),
    ({}, ValueError),
    ({"lr": 0.1}, TypeError),
    ({"score": [1, 2]}, ValueError),
    ({1: [1, 2]}, TypeError),
    ([("lr", [0.1])], TypeError),
])
def test_grid_rejects_bad_spaces(space, error):
    with pytest.raises(error):
        grid(space)


# ---------------------------------------------------------------- distributions


def test_log_uniform_is_uniform_in_log_space(rng):
    dist = LogUniform(1e-5, 1e-1)
    samples = np.array([dist.sample(rng) for _ in range(4000)])
    assert samples.min() >= 1e-5 and samples.max() <= 1e-1
    lo, hi = math.log(1e-5), math.log(1e-1)
    assert scipy.stats.kstest(np.log(samples), "uniform", args=(lo, hi - lo)).pvalue > 1e-3
    # The test has power: samples uniform in linear space are nowhere near uniform in log space.
    linear = rng.uniform(1e-5, 1e-1, size=4000)
    assert scipy.stats.kstest(np.log(linear), "uniform", args=(lo, hi - lo)).pvalue < 1e-10
    # Each decade gets about a quarter of the samples.
    per_decade = np.histogram(np.log10(samples), bins=[-5, -4, -3, -2, -1])[0]
    assert scipy.stats.chisquare(per_decade).pvalue > 1e-3


def test_uniform_samples_pass_a_ks_test(rng):
    dist = Uniform(-2.0, 3.0)
    samples = np.array([dist.sample(rng) for _ in range(3000)])
    assert scipy.stats.kstest(samples, "uniform", args=(-2.0, 5.0)).pvalue > 1e-3


def test_int_uniform_includes_both_ends_equally_often(rng):
    dist = IntUniform(3, 7)
    samples = np.array([dist.sample(rng) for _ in range(5000)])
    assert all(isinstance(dist.sample(rng), int) for _ in range(5))
    counts = np.bincount(samples, minlength=8)[3:]
    assert counts.sum() == 5000 and (counts > 0).all()
    assert scipy.stats.chisquare(counts).pvalue > 1e-3


def test_choice_picks_every_option_equally_often(rng):
    dist = Choice(["relu", "tanh", "gelu"])
    samples = [dist.sample(rng) for _ in range(3000)]
    counts = [samples.count(o) for o in ("relu", "tanh", "gelu")]
    assert sum(counts) == 3000
    assert scipy.stats.chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("make, error", [
    (lambda: LogUniform(0.0, 1.0), ValueError),
    (lambda: LogUniform(1e-2, 1e-3), ValueError),
    (lambda: Uniform(1.0, 1.0), ValueError),
    (lambda: Uniform(0.0, float("inf")), TypeError),
    (lambda: IntUniform(5, 2), ValueError),
    (lambda: IntUniform(1.0, 4), TypeError),
    (lambda: Choice([]), ValueError),
    (lambda: Choice("abc"), TypeError),
])
def test_distributions_reject_bad_bounds(make, error):
    with pytest.raises(error):
        make()


def test_sample_configs_is_reproducible_and_treats_lists_as_choices():
    space = {"lr": LogUniform(1e-4, 1e-1), "width": [16, 32], "depth": IntUniform(1, 3)}
    a = sample_configs(space, 50, rng=3)
    assert a == sample_configs(space, 50, rng=np.random.default_rng(3))
    assert a != sample_configs(space, 50, rng=4)
    assert all(list(c) == ["lr", "width", "depth"] for c in a)
    assert {c["width"] for c in a} == {16, 32}
    assert all(1e-4 <= c["lr"] <= 1e-1 and c["depth"] in (1, 2, 3) for c in a)


def test_sample_configs_requires_an_explicit_rng():
    with pytest.raises(TypeError):
        sample_configs({"lr": Uniform(0, 1)}, 3)
    with pytest.raises(TypeError, match="rng"):
        sample_configs({"lr": Uniform(0, 1)}, 3, rng=None)


# ---------------------------------------------------------------- searches and TrialTable


def test_grid_search_evaluates_every_config_in_grid_order():
    seen = []

    def objective(config):
        seen.append(dict(config))
        return config["a"] * 10 + config["b"]

    table = grid_search(objective, {"a": [1, 2], "b": [3, 4, 5]})
    assert seen == grid({"a": [1, 2], "b": [3, 4, 5]})
    assert table.column("trial") == list(range(6))
    assert table.column("score") == [13.0, 14.0, 15.0, 23.0, 24.0, 25.0]
    assert table.columns == ["trial", "a", "b", "score", "seconds"]
    assert all(s >= 0 for s in table.column("seconds"))
    assert table.best() == table[5]
    assert table.best(maximize=False)["score"] == 13.0


def test_a_minimizing_search_reports_the_lowest_score_as_best():
    table = grid_search(lambda c: (c["x"] - 2) ** 2, {"x": [0, 1, 2, 3]}, maximize=False)
    assert table.maximize is False
    assert table.best()["x"] == 2
    assert table.best(maximize=True)["x"] == 0


def test_trial_table_best_breaks_ties_by_the_earliest_trial():
    rows = [{"trial": i, "x": i, "score": s, "seconds": 0.0} for i, s in enumerate([1.0, 3.0, 3.0, 0.5])]
    table = TrialTable(rows)
    assert table.best()["trial"] == 1
    assert table.best(maximize=False)["trial"] == 3
    with pytest.raises(ValueError):
        TrialTable().best()
    with pytest.raises(ValueError, match="score"):
        TrialTable([{"trial": 0, "x": 1}])
    with pytest.raises(KeyError):
        table.column("lr")


def test_trial_table_renders_a_readable_table():
    table = grid_search(lambda c: c["lr"] * 2, {"lr": [0.1, 0.01]})
    md = table.to_markdown().splitlines()
    assert md[0] == "| trial | lr | score | seconds |"
    assert md[1] == "|---|---|---|---|"
    assert md[2].startswith("| 0 | 0.1 | 0.2 |")
    assert md[3].startswith("| 1 | 0.01 | 0.02 |")
    text = repr(table)
    assert "2 trials" in text and "lr" in text and "score" in text and "0.02" in text


def test_the_objective_cannot_change_the_recorded_config():
    def objective(config):
        config["lr"] = 123.0
        return 0.0

    table = grid_search(objective, {"lr": [0.1]})
    assert table[0]["lr"] == 0.1


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "0.5", None, True])
def test_searches_reject_an_objective_that_returns_no_finite_score(bad):
    with pytest.raises(ValueError, match="finite real score"):
        grid_search(lambda c: bad, {"x": [1]})


def test_random_search_is_reproducible_and_samples_the_space():
    space = {"lr": LogUniform(1e-4, 1.0), "act": ["relu", "tanh"]}
    a = random_search(lambda c: -c["lr"], space, n_trials=8, rng=1)
    b = random_search(lambda c: -c["lr"], space, n_trials=8, rng=1)
    assert len(a) == 8 and a.column("lr") == b.column("lr")
    assert a.column("lr") == [c["lr"] for c in sample_configs(space, 8, rng=1)]
    assert a.best()["lr"] == min(a.column("lr"))


def _quadratic_in_log_lr(config):
    """Peaks at lr = 10**-2.5 with score 0."""
    return -(math.log10(config["lr"]) + 2.5) ** 2


LR_SPACE = {"lr": LogUniform(1e-6, 1.0)}


def test_bayesian_search_finds_the_optimum_of_a_quadratic_in_log_lr():
    for seed in range(3):
        table = bayesian_search(_quadratic_in_log_lr, LR_SPACE, n_trials=10, n_initial=4, rng=seed)
        assert len(table) == 10
        assert abs(math.log10(table.best()["lr"]) + 2.5) < 0.05  # within 12% of the optimal lr


def test_bayesian_search_beats_random_search_with_the_same_budget():
    # Same budget (10 evaluations), same seeds; compare the best score found.
    bo = [bayesian_search(_quadratic_in_log_lr, LR_SPACE, n_trials=10, n_initial=4, rng=s).best()["score"]
          for s in range(5)]
    rs = [random_search(_quadratic_in_log_lr, LR_SPACE, n_trials=10, rng=s).best()["score"] for s in range(5)]
    assert np.median(bo) > np.median(rs)
    assert min(bo) > np.median(rs)  # not just on average: every BO run beats the typical random run


def test_bayesian_search_minimizes_when_asked():
    table = bayesian_search(lambda c: (math.log10(c["lr"]) + 2.5) ** 2, LR_SPACE, n_trials=10, n_initial=4,
                            rng=0, maximize=False)
    assert table.maximize is False
    assert abs(math.log10(table.best()["lr"]) + 2.5) < 0.05


def test_bayesian_search_starts_with_random_configs_and_handles_mixed_spaces():
    space = {"lr": LogUniform(1e-4, 1.0), "width": IntUniform(4, 64), "act": ["relu", "tanh"],
             "p": Uniform(0.0, 0.5)}

    def objective(c):
        penalty = 0.0 if c["act"] == "relu" else 0.5
        return -(math.log10(c["lr"]) + 2) ** 2 - ((c["width"] - 32) / 32) ** 2 - penalty - (c["p"] - 0.1) ** 2

    table = bayesian_search(objective, space, n_trials=8, n_initial=3, rng=2)
    initial = sample_configs(space, 3, rng=2)
    assert [{k: r[k] for k in space} for r in table.rows[:3]] == initial
    assert len(table) == 8 and table.column("trial") == list(range(8))
    for row in table:
        assert 1e-4 <= row["lr"] <= 1.0 and 4 <= row["width"] <= 64 and isinstance(row["width"], int)
        assert row["act"] in ("relu", "tanh") and 0 <= row["p"] <= 0.5
    again = bayesian_search(objective, space, n_trials=8, n_initial=3, rng=2)
    assert again.column("score") == table.column("score")


def test_bayesian_search_rejects_bad_options():
    with pytest.raises(TypeError):
        bayesian_search(_quadratic_in_log_lr, LR_SPACE, n_trials=5, rng=0, kernel="rbf")
    with pytest.raises(ValueError):
        bayesian_search(_quadratic_in_log_lr, LR_SPACE, n_trials=0, rng=0)
    with pytest.raises(TypeError):
        bayesian_search("not callable", LR_SPACE, n_trials=3, rng=0)
    with pytest.raises(ValueError):
        bayesian_search(_quadratic_in_log_lr, LR_SPACE, n_trials=3, rng=0, xi=-1.0)


# ---------------------------------------------------------------- expected improvement


def _ei_torch(mu, sigma, best, xi, maximize):
    mu, sigma = to_torch(mu), to_torch(sigma)
    d = (mu - best - xi) if maximize else (best - mu - xi)
    z = d / sigma
    normal = torch.distributions.Normal(torch.tensor(0.0), torch.tensor(1.0))
    return (d * normal.cdf(z) + sigma * normal.log_prob(z).exp()).numpy()


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("xi", [0.0, 0.05])
def test_expected_improvement_matches_the_closed_form_in_torch(rng, maximize, xi):
    shape = (int(rng.integers(3, 40)),)
    mu = rng.normal(size=shape)
    sigma = rng.uniform(0.05, 2.0, size=shape)
    best = float(rng.normal())
    got = expected_improvement(mu, sigma, best, xi=xi, maximize=maximize)
    assert got.shape == shape and got.dtype == np.float64
    np.testing.assert_allclose(got, _ei_torch(mu, sigma, best, xi, maximize), rtol=1e-10, atol=1e-15)


def test_expected_improvement_is_the_expectation_of_the_improvement(rng):
    # Second oracle: integrate max(y - best - xi, 0) against the N(mu, sigma²) density.
    for _ in range(5):
        mu, sigma, best, xi = rng.normal(), rng.uniform(0.1, 2.0), rng.normal(), rng.uniform(0, 0.2)
        pdf = scipy.stats.norm(mu, sigma).pdf
        integral, _ = scipy.integrate.quad(lambda t: (t - best - xi) * pdf(t), best + xi, np.inf, epsabs=1e-13)
        got = expected_improvement(np.array([mu]), np.array([sigma]), best, xi=xi)
        np.testing.assert_allclose(got, [integral], rtol=1e-7, atol=1e-12)


def test_expected_improvement_with_zero_sigma_is_the_plain_improvement():
    mu = np.array([1.0, 0.2, -1.0, 0.5])
    sigma = np.array([0.0, 0.0, 0.0, 1.0])
    got = expected_improvement(mu, sigma, 0.5)
    np.testing.assert_allclose(got[:3], [0.5, 0.0, 0.0], rtol=0, atol=0)
    np.testing.assert_allclose(got[3], _ei_torch(mu[3:], sigma[3:], 0.5, 0.0, True)[0], rtol=1e-12)
    np.testing.assert_allclose(expected_improvement(mu[:3], sigma[:3], 0.5, maximize=False), [0.0, 0.3, 1.5],
                               rtol=1e-15)


def test_expected_improvement_with_a_vanishing_sigma_tends_to_the_plain_improvement():
    mu = np.array([1.0, -1.0, 0.5])
    got = expected_improvement(mu, np.full(3, 1e-300), 0.0)  # |z| overflows to inf, silently
    np.testing.assert_allclose(got, [1.0, 0.0, 0.5], rtol=1e-15, atol=0)


def test_expected_improvement_preserves_float32_and_is_never_negative(rng):
    mu = rng.normal(size=50).astype(np.float32) - 10.0  # far below best: tiny EI
    sigma = rng.uniform(0.1, 1.0, size=50).astype(np.float32)
    got = expected_improvement(mu, sigma, 5.0)
    assert got.dtype == np.float32 and (got >= 0).all()


@pytest.mark.parametrize("call, error", [
    (lambda: expected_improvement(np.zeros(3), np.ones(4), 0.0), ValueError),
    (lambda: expected_improvement(np.zeros(3), -np.ones(3), 0.0), ValueError),
    (lambda: expected_improvement(np.zeros(3, dtype=int), np.ones(3), 0.0), TypeError),
    (lambda: expected_improvement(np.zeros(3), np.ones(3), float("nan")), TypeError),
    (lambda: expected_improvement(np.zeros(3), np.ones(3), 0.0, xi=-0.1), ValueError),
    (lambda: expected_improvement(np.zeros(3), np.ones(3), 0.0, 0.1), TypeError),  # options are keyword-only
])
def test_expected_improvement_rejects_bad_inputs(call, error):
    with pytest.raises(error):
        call()


# ---------------------------------------------------------------- k-fold


@pytest.mark.parametrize("n, k", [(10, 2), (10, 3), (17, 5), (100, 7), (5, 5)])
def test_kfold_without_shuffle_equals_sklearn_kfold(n, k):
    ours = kfold_indices(n, k, shuffle=False)
    theirs = list(KFold(n_splits=k, shuffle=False).split(np.zeros((n, 1))))
    assert len(ours) == k
    for (tr, va), (tr_s, va_s) in zip(ours, theirs):
        np.testing.assert_array_equal(tr, tr_s)
        np.testing.assert_array_equal(va, va_s)
        assert tr.dtype == np.int64 and va.dtype == np.int64


@pytest.mark.parametrize("n, k", [(10, 3), (101, 4), (64, 8)])
def test_kfold_with_shuffle_partitions_the_data(n, k):
    folds = kfold_indices(n, k, rng=0)
    vals = [va for _, va in folds]
    np.testing.assert_array_equal(np.sort(np.concatenate(vals)), np.arange(n))  # each index validated once
    sizes = [va.size for va in vals]
    assert sizes == [va.size for _, va in KFold(n_splits=k).split(np.zeros((n, 1)))]
    for tr, va in folds:
        assert np.intersect1d(tr, va).size == 0 and tr.size + va.size == n
        np.testing.assert_array_equal(tr, np.sort(tr))
    unshuffled = kfold_indices(n, k, shuffle=False)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(folds, unshuffled))
    again = kfold_indices(n, k, rng=np.random.default_rng(0))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))


@pytest.mark.parametrize("call, error", [
    (lambda: kfold_indices(10, 1, shuffle=False), ValueError),
    (lambda: kfold_indices(3, 4, shuffle=False), ValueError),
    (lambda: kfold_indices(10, 3), TypeError),  # shuffling needs an explicit rng
    (lambda: kfold_indices(10, 3, shuffle=False, rng=0), TypeError),
    (lambda: kfold_indices(10.0, 3, shuffle=False), TypeError),
    (lambda: kfold_indices(10, 3, False), TypeError),  # options are keyword-only
])
def test_kfold_rejects_bad_arguments(call, error):
    with pytest.raises(error):
        call()


@pytest.mark.parametrize("shuffle", [True, False])
def test_stratified_kfold_keeps_class_proportions_in_every_fold(rng, shuffle):
    y = np.repeat(np.arange(4), [30, 11, 7, 52])
    y = y[rng.permutation(y.size)]
    k = 5
    folds = stratified_kfold_indices(y, k, shuffle=shuffle, rng=rng if shuffle else None)
    vals = [va for _, va in folds]
    np.testing.assert_array_equal(np.sort(np.concatenate(vals)), np.arange(y.size))
    counts = np.bincount(y)
    for tr, va in folds:
        assert np.abs(np.bincount(y[va], minlength=4) - counts / k).max() < 1
        assert np.intersect1d(tr, va).size == 0 and tr.size + va.size == y.size
    sizes = [va.size for va in vals]
    assert max(sizes) - min(sizes) <= 1


def test_stratified_kfold_rejects_float_labels():
    with pytest.raises(TypeError):
        stratified_kfold_indices(np.zeros(10), 2, shuffle=False)
