"""mlp_lib.losses against torch autograd (float64), with finite differences as a second oracle."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import to_torch
from mlp_lib import losses
from mlp_lib.gradcheck import numerical_gradient, rel_error

RTOL = 1e-10
ATOL = 1e-13  # scaled by the largest |value| of the reference
FD_TOL = 1e-7
SEEDS = [0, 1, 2, 3]


def assert_matches(actual, expected):
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().numpy()
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL * max(1.0, float(np.abs(expected).max())))


def assert_loss_matches(loss, expected):
    assert type(loss) is float
    np.testing.assert_allclose(loss, expected.item(), rtol=RTOL, atol=ATOL)


def random_shape(rng):
    return tuple(int(d) for d in rng.integers(1, 7, size=rng.integers(1, 4)))


def ssr_torch(p, t):
    return ((p - t) ** 2).sum()


def regression_case(seed):
    rng = np.random.default_rng(seed)
    shape = random_shape(rng)
    return rng.standard_normal(shape), rng.standard_normal(shape)


def bce_case(seed, *, hard_labels, scale=3.0):
    rng = np.random.default_rng(seed)
    shape = random_shape(rng)
    z = scale * rng.standard_normal(shape)
    y = rng.integers(0, 2, size=shape).astype(np.float64) if hard_labels else rng.uniform(0.0, 1.0, size=shape)
    return z, y


def classification_case(seed, scale=3.0):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 9)), int(rng.integers(2, 8))
    return scale * rng.standard_normal((n, c)), rng.integers(0, c, size=n)


REGRESSION = [(losses.ssr_loss, ssr_torch), (losses.mse_loss, F.mse_loss)]
regression_param = pytest.mark.parametrize("loss_fn, torch_fn", REGRESSION, ids=["ssr", "mse"])


# --------------------------------------------------------------------------
# agreement with torch and with finite differences
# --------------------------------------------------------------------------

@regression_param
@pytest.mark.parametrize("seed", SEEDS)
def test_regression_loss_and_gradient_match_torch_autograd(loss_fn, torch_fn, seed):
    pred, target = regression_case(seed)
    loss, dpred = loss_fn(pred, target)
    pt = to_torch(pred, requires_grad=True)
    lt = torch_fn(pt, to_torch(target))
    lt.backward()
    assert_loss_matches(loss, lt)
    assert_matches(dpred, pt.grad)


@regression_param
@pytest.mark.parametrize("seed", SEEDS)
def test_regression_gradient_matches_finite_differences(loss_fn, torch_fn, seed):
    pred, target = regression_case(seed)
    dpred = loss_fn(pred, target)[1]
    assert rel_error(dpred, numerical_gradient(lambda p: loss_fn(p, target)[0], pred)) < FD_TOL


def test_ssr_is_mse_times_the_number_of_elements(rng):
    pred, target = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    np.testing.assert_allclose(losses.ssr_loss(pred, target)[0], 15 * losses.mse_loss(pred, target)[0], rtol=1e-14)


@pytest.mark.parametrize("hard_labels", [True, False], ids=["binary-targets", "soft-targets"])
@pytest.mark.parametrize("seed", SEEDS)
def test_bce_with_logits_matches_torch_autograd(seed, hard_labels):
    z, y = bce_case(seed, hard_labels=hard_labels)
    loss, dz = losses.bce_with_logits_loss(z, y)
    zt = to_torch(z, requires_grad=True)
    lt = F.binary_cross_entropy_with_logits(zt, to_torch(y))
    lt.backward()
    assert_loss_matches(loss, lt)
    assert_matches(dz, zt.grad)


# Finite differences resolve a gradient element only down to ~1e-11 (float64 rounding of the
# loss divided by 2h), so their cases avoid elements that are nearly 0 for other reasons:
# confident predictions (large logits) and soft targets equal to sigmoid(z) by chance.

@pytest.mark.parametrize("seed", SEEDS)
def test_bce_with_logits_gradient_matches_finite_differences(seed):
    z, y = bce_case(seed, hard_labels=True, scale=1.0)
    dz = losses.bce_with_logits_loss(z, y)[1]
    assert rel_error(dz, numerical_gradient(lambda v: losses.bce_with_logits_loss(v, y)[0], z)) < FD_TOL


@pytest.mark.parametrize("seed", SEEDS + [4, 5])
def test_softmax_cross_entropy_matches_torch_autograd(seed):
    logits, y = classification_case(seed)
    loss, dlogits = losses.softmax_cross_entropy(logits, y)
    lt_in = to_torch(logits, requires_grad=True)
    lt = F.cross_entropy(lt_in, torch.as_tensor(y))
    lt.backward()
    assert_loss_matches(loss, lt)
    assert_matches(dlogits, lt_in.grad)


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_cross_entropy_gradient_matches_finite_differences(seed):
    logits, y = classification_case(seed, scale=1.0)  # moderate logits: no probability ~1e-6 (see above)
    dlogits = losses.softmax_cross_entropy(logits, y)[1]
    numeric = numerical_gradient(lambda v: losses.softmax_cross_entropy(v, y)[0], logits)
    assert rel_error(dlogits, numeric) < FD_TOL


def test_softmax_cross_entropy_gradient_is_softmax_minus_onehot_over_n(rng):
    logits, y = 2.0 * rng.standard_normal((6, 4)), rng.integers(0, 4, size=6)
    probs = F.softmax(to_torch(logits), dim=1).numpy()
    onehot = np.eye(4)[y]
    assert_matches(losses.softmax_cross_entropy(logits, y)[1], (probs - onehot) / 6)


def test_softmax_cross_entropy_accepts_any_integer_label_dtype(rng):
    logits, y = rng.standard_normal((5, 3)), rng.integers(0, 3, size=5)
    expected = losses.softmax_cross_entropy(logits, y)
    for dtype in (np.int32, np.uint8, np.int16):
        loss, dlogits = losses.softmax_cross_entropy(logits, y.astype(dtype))
        assert loss == expected[0]
        np.testing.assert_array_equal(dlogits, expected[1])


# --------------------------------------------------------------------------
# dtype, purity
# --------------------------------------------------------------------------

def all_losses(rng):
    """(name, function, first argument, second argument) for each loss on random data."""
    pred, target = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    z, y = 3.0 * rng.standard_normal((6, 1)), rng.uniform(size=(6, 1))
    logits, labels = 3.0 * rng.standard_normal((6, 5)), rng.integers(0, 5, size=6)
    return [("ssr", losses.ssr_loss, pred, target), ("mse", losses.mse_loss, pred, target),
            ("bce", losses.bce_with_logits_loss, z, y),
            ("cross-entropy", losses.softmax_cross_entropy, logits, labels)]


def test_losses_preserve_float32_and_return_python_floats(rng):
    for name, fn, first, second in all_losses(rng):
        f32 = first.astype(np.float32)
        s32 = second.astype(np.float32) if second.dtype.kind == "f" else second
        loss32, grad32 = fn(f32, s32)
        assert type(loss32) is float, name
        assert grad32.dtype == np.float32 and grad32.shape == first.shape, name
        # float32-appropriate tolerance against float64 on the same (rounded) inputs
        loss64, grad64 = fn(f32.astype(np.float64), s32.astype(np.float64) if s32.dtype.kind == "f" else s32)
        np.testing.assert_allclose(loss32, loss64, rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(grad32, grad64, rtol=1e-5, atol=1e-6, err_msg=name)


def test_losses_mutate_nothing_and_return_fresh_gradients(rng):
    for name, fn, first, second in all_losses(rng):
        first_before, second_before = first.copy(), second.copy()
        _, grad = fn(first, second)
        np.testing.assert_array_equal(first, first_before, err_msg=name)
        np.testing.assert_array_equal(second, second_before, err_msg=name)
        assert not np.shares_memory(grad, first) and not np.shares_memory(grad, second), name


# --------------------------------------------------------------------------
# numerical stability
# --------------------------------------------------------------------------

def test_bce_with_logits_is_finite_and_equals_torch_at_abs_z_800():
    z = np.array([800.0, -800.0, 800.0, -800.0, 750.0, -1e4])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.3, 1.0])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        loss, dz = losses.bce_with_logits_loss(z, y)
    assert np.isfinite(loss) and np.isfinite(dz).all()
    zt = to_torch(z, requires_grad=True)
    lt = F.binary_cross_entropy_with_logits(zt, to_torch(y))
    lt.backward()
    assert_loss_matches(loss, lt)
    assert_matches(dz, zt.grad)


def test_bce_with_logits_of_a_confident_correct_prediction_is_not_rounded_to_zero():
    # log(1 + exp(-40)) ~ 4e-18 is below float64's resolution next to 1: log1p keeps it
    z, y = np.array([40.0]), np.array([1.0])
    loss, _ = losses.bce_with_logits_loss(z, y)
    lt = F.binary_cross_entropy_with_logits(to_torch(z), to_torch(y))
    assert loss > 0
    np.testing.assert_allclose(loss, lt.item(), rtol=1e-12)


def test_bce_with_logits_is_symmetric_under_swapping_the_classes(rng):
    # L(z, y) = L(-z, 1 - y) exactly: the confident negative case (z = -40, y = 0) keeps its
    # 4e-18 too (torch's (1 - y) z - log_sigmoid(z) cancels to 0 there)
    z = np.concatenate([[40.0, 5.0], 3.0 * rng.standard_normal(6)])
    y = np.concatenate([[1.0, 1.0], rng.integers(0, 2, size=6).astype(np.float64)])
    loss, dz = losses.bce_with_logits_loss(z, y)
    loss_swapped, dz_swapped = losses.bce_with_logits_loss(-z, 1.0 - y)
    assert loss_swapped == loss
    # sigmoid(z) - y rounds differently on the two sides (like torch's): equal up to rounding
    np.testing.assert_allclose(dz_swapped, -dz, rtol=1e-13, atol=1e-17)


def test_softmax_cross_entropy_is_stable_for_logits_of_size_1e4():
    logits, y = classification_case(7, scale=1e4)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        loss, dlogits = losses.softmax_cross_entropy(logits, y)
    assert np.isfinite(loss) and np.isfinite(dlogits).all()
    lt_in = to_torch(logits, requires_grad=True)
    lt = F.cross_entropy(lt_in, torch.as_tensor(y))
    lt.backward()
    assert_loss_matches(loss, lt)
    assert_matches(dlogits, lt_in.grad)


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------

@pytest.mark.parametrize("loss_fn", [losses.ssr_loss, losses.mse_loss], ids=["ssr", "mse"])
def test_regression_losses_reject_bad_input_naming_the_argument(loss_fn, rng):
    pred = rng.standard_normal((4, 1))
    with pytest.raises(ValueError, match=r"target must have shape \(4, 1\), got shape \(4,\)"):
        loss_fn(pred, rng.standard_normal(4))  # would silently broadcast to (4, 4)
    with pytest.raises(TypeError, match="pred must be a float32 or float64"):
        loss_fn(np.arange(4).reshape(4, 1), pred)
    with pytest.raises(TypeError, match="target must be a float32 or float64"):
        loss_fn(pred, np.ones((4, 1), dtype=int))
    with pytest.raises(TypeError, match="pred: float32"):
        loss_fn(pred.astype(np.float32), pred)
    with pytest.raises(ValueError, match="pred contains NaN or inf"):
        loss_fn(np.full((4, 1), np.nan), pred)
    with pytest.raises(ValueError, match="target contains NaN or inf"):
        loss_fn(pred, np.full((4, 1), -np.inf))
    with pytest.raises(ValueError, match="pred is empty"):
        loss_fn(np.zeros((0, 1)), np.zeros((0, 1)))


def test_bce_with_logits_rejects_bad_targets_naming_the_argument(rng):
    z = rng.standard_normal(5)
    with pytest.raises(ValueError, match=r"target must hold probabilities in \[0, 1\]"):
        losses.bce_with_logits_loss(z, np.array([0.0, 1.0, -1.0, 1.0, 0.0]))  # {-1, 1} labels
    with pytest.raises(ValueError, match=r"target must hold probabilities in \[0, 1\]"):
        losses.bce_with_logits_loss(z, np.full(5, 1.5))
    with pytest.raises(TypeError, match="target must be a float32 or float64"):
        losses.bce_with_logits_loss(z, np.array([0, 1, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"target must have shape \(5,\), got shape \(5, 1\)"):
        losses.bce_with_logits_loss(z, np.zeros((5, 1)))
    with pytest.raises(ValueError, match="logits contains NaN or inf"):
        losses.bce_with_logits_loss(np.full(5, np.inf), np.zeros(5))


@pytest.mark.parametrize("logits, y, error, message", [
    (np.zeros((4, 3)), np.array([0, 1, 3, 2]), ValueError, r"y must hold class indices in \[0, 3\)"),
    (np.zeros((4, 3)), np.array([0, -1, 2, 2]), ValueError, r"y must hold class indices in \[0, 3\)"),
    (np.zeros((4, 3)), np.array([0.0, 1.0, 2.0, 1.0]), TypeError, "y must be an integer array"),
    (np.zeros((4, 3)), np.array([True, False, True, True]), TypeError, "y must be an integer array"),
    (np.zeros((4, 3)), np.array([0, 1, 2]), ValueError, r"y must have shape \(4,\)"),
    (np.zeros((4, 3)), np.array([[0], [1], [2], [1]]), ValueError, r"y must be 1-D"),
    (np.zeros(3), np.array([0]), ValueError, "logits must be 2-D"),
    (np.zeros((4, 3), dtype=np.int64), np.array([0, 1, 2, 1]), TypeError, "logits must be a float32 or float64"),
    (np.full((4, 3), np.nan), np.array([0, 1, 2, 1]), ValueError, "logits contains NaN or inf"),
    (np.zeros((0, 3)), np.array([], dtype=int), ValueError, r"logits must have shape \(N, C\) with N, C >= 1"),
])
def test_softmax_cross_entropy_rejects_bad_input_naming_the_argument(logits, y, error, message):
    with pytest.raises(error, match=message):
        losses.softmax_cross_entropy(logits, y)
