"""mlp_lib.data: the digits splits and the synthetic data sets."""
import dataclasses
from collections import Counter

import numpy as np
import pytest
import sklearn.datasets
from sklearn.preprocessing import StandardScaler

from mlp_lib.data import (DataSplits, load_digits, make_circles, make_linear_regression, make_moons,
                          make_polynomial_regression, make_sine_regression, make_spirals, make_xor)


@pytest.fixture(scope="module")
def raw_digits():
    bunch = sklearn.datasets.load_digits()
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64)


def _rows_with_labels(X, y):
    """Rows of [X | y] in a canonical (lexicographic) order: a multiset of examples."""
    rows = np.column_stack([X, y])
    return rows[np.lexsort(rows.T[::-1])]


# ---------------------------------------------------------------- digits


def test_digits_splits_have_the_documented_types_and_shapes():
    d = load_digits(seed=0)
    assert isinstance(d, DataSplits)
    assert (d.n_classes, d.n_features) == (10, 64)
    for X, y in ((d.X_train, d.y_train), (d.X_val, d.y_val), (d.X_test, d.y_test)):
        assert X.dtype == np.float64 and y.dtype == np.int64
        assert X.ndim == 2 and X.shape[1] == 64 and y.shape == (X.shape[0],)
    assert d.X_test.shape[0] == int(np.ceil(0.15 * 1797))  # sklearn's rounding of the test share


def test_digits_splits_are_disjoint_and_cover_the_dataset(raw_digits):
    X, y = raw_digits
    d = load_digits(seed=3, scale=None)
    sizes = [d.y_train.size, d.y_val.size, d.y_test.size]
    assert sum(sizes) == y.size
    together = _rows_with_labels(np.concatenate([d.X_train, d.X_val, d.X_test]),
                                 np.concatenate([d.y_train, d.y_val, d.y_test]))
    # Same multiset of (image, label) as the data set, with sizes summing to N: no example
    # is lost, duplicated, or shared between two splits.
    np.testing.assert_array_equal(together, _rows_with_labels(X, y))


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_digits_splits_are_stratified_within_one_sample_per_stage(raw_digits, seed):
    _, y = raw_digits
    d = load_digits(seed=seed, scale=None)
    counts = np.bincount(y)
    test_c = np.bincount(d.y_test, minlength=10)
    val_c = np.bincount(d.y_val, minlength=10)
    train_c = np.bincount(d.y_train, minlength=10)
    # Stage 1 carves the test split from the whole set; each class within one sample of its share.
    assert np.abs(test_c - counts * d.y_test.size / y.size).max() < 1
    # Stage 2 splits the remainder into train and val, again within one sample per class.
    rest = counts - test_c
    assert np.abs(val_c - rest * d.y_val.size / rest.sum()).max() < 1
    assert np.abs(train_c - rest * d.y_train.size / rest.sum()).max() < 1
    # Composed, every split is within two samples of its share of the whole set.
    for c, size in ((train_c, d.y_train.size), (val_c, d.y_val.size), (test_c, d.y_test.size)):
        assert np.abs(c - counts * size / y.size).max() < 2


def test_digits_standardization_uses_train_statistics_only():
    raw = load_digits(seed=5, scale=None)
    std = load_digits(seed=5, scale="standardize")
    scaler = StandardScaler().fit(raw.X_train)  # sklearn: biased std, constant features unscaled
    np.testing.assert_allclose(std.X_train, scaler.transform(raw.X_train), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std.X_val, scaler.transform(raw.X_val), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std.X_test, scaler.transform(raw.X_test), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std.X_train.mean(axis=0), 0.0, atol=1e-12)
    varying = raw.X_train.std(axis=0) > 0
    np.testing.assert_allclose(std.X_train[:, varying].std(axis=0), 1.0, rtol=1e-12)
    # val/test were not standardized with their own statistics.
    assert np.abs(std.X_val.mean(axis=0)).max() > 1e-3
    assert np.abs(std.X_test.mean(axis=0)).max() > 1e-3
    np.testing.assert_array_equal(std.y_val, raw.y_val)


def test_digits_unit_scale_divides_by_the_pixel_maximum():
    raw = load_digits(seed=2, scale=None)
    unit = load_digits(seed=2, scale="unit")
    assert raw.X_train.max() == 16.0 and raw.X_train.min() == 0.0
    np.testing.assert_array_equal(unit.X_train, raw.X_train / 16.0)
    np.testing.assert_array_equal(unit.X_test, raw.X_test / 16.0)


def test_digits_same_seed_gives_identical_splits_and_different_seeds_differ():
    a, b, c = load_digits(seed=11), load_digits(seed=11), load_digits(seed=12)
    for field in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.y_train, c.y_train)
    assert not np.array_equal(a.X_test, c.X_test)


def test_digits_split_sizes_follow_the_requested_fractions():
    d = load_digits(seed=0, val_size=0.2, test_size=0.1, scale=None)
    assert d.y_test.size == int(np.ceil(0.1 * 1797))
    assert abs(d.y_val.size - 0.2 * 1797) <= 1


def test_digits_splits_are_frozen():
    d = load_digits(seed=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.X_train = d.X_val


@pytest.mark.parametrize("kwargs, error", [
    (dict(scale="minmax"), ValueError),
    (dict(val_size=0.5, test_size=0.5), ValueError),
    (dict(val_size=0.0), ValueError),
    (dict(test_size=-0.1), ValueError),
    (dict(seed=1.5), TypeError),
    (dict(seed=-1), ValueError),
    (dict(seed=np.random.default_rng(0)), TypeError),
])
def test_digits_rejects_bad_options(kwargs, error):
    with pytest.raises(error):
        load_digits(**kwargs)


def test_digits_rejects_unknown_options():
    with pytest.raises(TypeError):
        load_digits(shuffle=True)


def test_subset_is_a_stratified_training_subset_and_keeps_val_test():
    d = load_digits(seed=4)
    s = d.subset(100, seed=9)
    assert s.X_train.shape == (100, 64) and s.y_train.shape == (100,)
    counts = np.bincount(d.y_train, minlength=10)
    assert np.abs(np.bincount(s.y_train, minlength=10) - counts * 100 / counts.sum()).max() < 1
    # The subset is a sub-multiset of the training examples (same labels, nothing repeated).
    train_rows = Counter(tuple(r) + (t,) for r, t in zip(d.X_train.tolist(), d.y_train.tolist()))
    subset_rows = Counter(tuple(r) + (t,) for r, t in zip(s.X_train.tolist(), s.y_train.tolist()))
    assert all(train_rows[row] >= k for row, k in subset_rows.items())
    for field in ("X_val", "y_val", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(s, field), getattr(d, field))
    np.testing.assert_array_equal(d.subset(100, seed=9).X_train, s.X_train)
    assert not np.array_equal(d.subset(100, seed=10).y_train, s.y_train)


def test_subset_of_the_full_size_is_a_permutation_of_the_training_split():
    d = load_digits(seed=1, scale=None)
    s = d.subset(d.y_train.size, seed=0)
    np.testing.assert_array_equal(_rows_with_labels(s.X_train, s.y_train), _rows_with_labels(d.X_train, d.y_train))


@pytest.mark.parametrize("n, error", [(5, ValueError), (10_000, ValueError), (0, ValueError), (50.0, TypeError)])
def test_subset_rejects_sizes_it_cannot_stratify(n, error):
    with pytest.raises(error):
        load_digits(seed=0).subset(n, seed=0)


def test_subset_requires_a_seed():
    with pytest.raises(TypeError):
        load_digits(seed=0).subset(100)


# ---------------------------------------------------------------- synthetic classification


def test_xor_labels_are_the_xor_of_the_sign_quadrants(rng):
    X, y = make_xor(500, rng=rng)
    assert X.shape == (500, 2) and X.dtype == np.float64
    assert y.shape == (500,) and y.dtype == np.int64
    assert np.abs(X).max() <= 1
    expected = np.where(np.sign(X[:, 0]) * np.sign(X[:, 1]) < 0, 1, 0)
    np.testing.assert_array_equal(y, expected)
    assert 0.4 < y.mean() < 0.6


def test_xor_noise_jitters_points_but_keeps_the_clean_labels():
    X0, y0 = make_xor(300, rng=5)
    X1, y1 = make_xor(300, noise=0.1, rng=5)
    np.testing.assert_array_equal(y0, y1)
    assert abs((X1 - X0).std() - 0.1) < 0.01  # 600 draws: the sample std is within ~3% of 0.1


def _same_point_sets(A, B):
    np.testing.assert_allclose(A[np.lexsort(A.T[::-1])], B[np.lexsort(B.T[::-1])], atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 101, 200])
def test_moons_without_noise_are_sklearns_points_shuffled(n):
    X, y = make_moons(n, noise=0.0, rng=0)
    Xs, ys = sklearn.datasets.make_moons(n, shuffle=False, noise=None)
    assert X.shape == (n, 2) and y.dtype == np.int64
    for c in (0, 1):
        _same_point_sets(X[y == c], Xs[ys == c])


@pytest.mark.parametrize("n", [1, 2, 101, 200])
def test_circles_without_noise_are_sklearns_points_shuffled(n):
    X, y = make_circles(n, noise=0.0, factor=0.3, rng=0)
    Xs, ys = sklearn.datasets.make_circles(n, shuffle=False, noise=None, factor=0.3)
    assert X.shape == (n, 2) and y.dtype == np.int64
    for c in (0, 1):
        _same_point_sets(X[y == c], Xs[ys == c])
    np.testing.assert_allclose(np.linalg.norm(X[y == 1], axis=1), 0.3)


def test_moons_noise_is_gaussian_with_the_given_std():
    clean, y0 = make_moons(4000, noise=0.0, rng=3)
    noisy, y1 = make_moons(4000, noise=0.2, rng=3)
    np.testing.assert_array_equal(y0, y1)  # same shuffle, then the noise
    assert abs((noisy - clean).std() - 0.2) < 0.01


@pytest.mark.parametrize("n, k", [(300, 3), (301, 3), (50, 5), (7, 2)])
def test_spirals_points_lie_on_their_class_arm(n, k):
    X, y = make_spirals(n, n_classes=k, noise=0.0, rng=1)
    assert X.shape == (n, 2) and y.shape == (n,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=k)
    assert counts.sum() == n and counts.max() - counts.min() <= 1
    r = np.linalg.norm(X, axis=1)
    t = 2 * np.pi * y / k + 4 * r
    np.testing.assert_allclose(X, np.stack([r * np.sin(t), r * np.cos(t)], axis=1), atol=1e-12)
    assert r.max() == pytest.approx(1.0)


def test_spirals_noise_perturbs_the_angle_only():
    X, _ = make_spirals(300, noise=0.2, rng=2)
    Xc, _ = make_spirals(300, noise=0.0, rng=2)
    r, rc = np.linalg.norm(X, axis=1), np.linalg.norm(Xc, axis=1)
    np.testing.assert_allclose(np.sort(r), np.sort(rc), atol=1e-12)
    assert np.abs(X - Xc).max() > 0.01


@pytest.mark.parametrize("make, kwargs", [
    (make_xor, dict(noise=0.3)),
    (make_moons, dict(noise=0.1)),
    (make_circles, dict(noise=0.1)),
    (make_spirals, dict(noise=0.2)),
    (make_linear_regression, dict(slope=2.0, intercept=1.0, noise=0.1)),
    (make_polynomial_regression, dict(coefficients=[1.0, 0.0, -2.0], noise=0.1)),
    (make_sine_regression, dict(noise=0.1)),
])
def test_synthetic_sets_are_reproducible_from_the_seed(make, kwargs):
    a = make(60, rng=7, **kwargs)
    b = make(60, rng=np.random.default_rng(7), **kwargs)
    c = make(60, rng=8, **kwargs)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("make, kwargs", [
    (make_xor, dict()),
    (make_moons, dict(noise=0.1)),
    (make_spirals, dict(noise=0.2)),
    (make_linear_regression, dict(slope=2.0, intercept=1.0, noise=0.1)),
])
def test_synthetic_sets_require_an_explicit_rng(make, kwargs):
    with pytest.raises(TypeError):
        make(10, **kwargs)
    with pytest.raises(TypeError, match="rng"):
        make(10, rng=None, **kwargs)


@pytest.mark.parametrize("call, error", [
    (lambda: make_xor(0, rng=0), ValueError),
    (lambda: make_xor(10.0, rng=0), TypeError),
    (lambda: make_moons(10, noise=-0.1, rng=0), ValueError),
    (lambda: make_circles(10, noise=0.1, factor=1.0, rng=0), ValueError),
    (lambda: make_spirals(10, n_classes=1, noise=0.1, rng=0), ValueError),
    (lambda: make_spirals(2, n_classes=3, noise=0.1, rng=0), ValueError),
    (lambda: make_linear_regression(10, slope="steep", intercept=0.0, noise=0.1, rng=0), TypeError),
    (lambda: make_linear_regression(10, slope=[[1.0]], intercept=0.0, noise=0.1, rng=0), TypeError),
    (lambda: make_polynomial_regression(10, coefficients=[], noise=0.1, rng=0), TypeError),
    (lambda: make_polynomial_regression(10, coefficients=[1.0], noise=0.1, x_range=(1, -1), rng=0), ValueError),
    (lambda: make_sine_regression(10, noise=0.1, frequency=float("nan"), rng=0), TypeError),
])
def test_synthetic_sets_reject_bad_arguments(call, error):
    with pytest.raises(error):
        call()


# ---------------------------------------------------------------- synthetic regression


def test_linear_regression_without_noise_is_exactly_the_line(rng):
    X, y = make_linear_regression(200, slope=-1.5, intercept=0.7, noise=0.0, x_range=(-2, 3), rng=rng)
    assert X.shape == (200, 1) and y.shape == (200, 1) and y.dtype == np.float64
    assert X.min() >= -2 and X.max() <= 3
    np.testing.assert_allclose(y[:, 0], -1.5 * X[:, 0] + 0.7, rtol=1e-14)


def test_linear_regression_with_several_slopes_is_a_plane_and_least_squares_recovers_it(rng):
    w = np.array([1.0, -2.0, 0.5])
    X, y = make_linear_regression(5000, slope=w, intercept=3.0, noise=0.1, rng=rng)
    assert X.shape == (5000, 3) and y.shape == (5000, 1)
    A = np.column_stack([X, np.ones(len(X))])
    coef, *_ = np.linalg.lstsq(A, y[:, 0], rcond=None)
    np.testing.assert_allclose(coef, [1.0, -2.0, 0.5, 3.0], atol=0.02)
    residual = y[:, 0] - A @ coef
    assert residual.std() == pytest.approx(0.1, rel=0.05)


def test_polynomial_regression_uses_lowest_degree_first(rng):
    c = [0.5, -1.0, 0.0, 2.0]
    X, y = make_polynomial_regression(100, coefficients=c, noise=0.0, x_range=(-2, 2), rng=rng)
    x = X[:, 0]
    assert X.shape == (100, 1) and y.shape == (100, 1)
    np.testing.assert_allclose(y[:, 0], 0.5 - x + 2 * x**3, rtol=1e-13, atol=1e-13)
    assert -2 <= x.min() and x.max() <= 2


def test_sine_regression_without_noise_is_the_sine(rng):
    X, y = make_sine_regression(100, noise=0.0, frequency=3.0, rng=rng)
    assert X.shape == (100, 1) and y.shape == (100, 1)
    assert -np.pi <= X.min() and X.max() <= np.pi
    np.testing.assert_allclose(y, np.sin(3.0 * X), rtol=1e-14)
