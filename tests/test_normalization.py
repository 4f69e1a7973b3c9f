"""mlp_lib.normalization against torch (float64): batch norm and the Standardizer."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.preprocessing import StandardScaler

from conftest import to_torch
from mlp_lib.normalization import Standardizer, batchnorm_backward, batchnorm_forward

RTOL = 1e-7


def random_problem(rng, *, n=None, d=None, dtype=np.float64):
    """Random (N, D) batch with feature-wise offsets/scales, random affine params and running stats."""
    n = int(rng.integers(2, 40)) if n is None else n
    d = int(rng.integers(1, 12)) if d is None else d
    x = (rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.normal(size=d) * 2).astype(dtype)
    gamma = rng.normal(size=d).astype(dtype)
    beta = rng.normal(size=d).astype(dtype)
    running_mean = rng.normal(size=d).astype(dtype)
    running_var = rng.uniform(0.2, 3.0, size=d).astype(dtype)
    return x, gamma, beta, running_mean, running_var


def torch_batchnorm(x, gamma, beta, running_mean, running_var, dout, *, training, momentum, eps):
    """torch's F.batch_norm forward + autograd; returns out, grads and the (updated) running stats."""
    xt, gt, bt = to_torch(x, True), to_torch(gamma, True), to_torch(beta, True)
    rm, rv = to_torch(running_mean), to_torch(running_var)
    out = F.batch_norm(xt, rm, rv, gt, bt, training=training, momentum=momentum, eps=eps)
    out.backward(to_torch(dout))
    return (out.detach().numpy(), xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy(),
            rm.numpy(), rv.numpy())


def numerical_grad(f, a, h=1e-6):
    """Central differences of the scalar f() with respect to every entry of a (modified and restored)."""
    grad = np.zeros_like(a)
    it = np.nditer(a, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = a[i]
        a[i] = old + h
        plus = f()
        a[i] = old - h
        minus = f()
        a[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("momentum, eps", [(0.1, 1e-5), (0.37, 1e-3)])
def test_batchnorm_forward_and_backward_match_torch_autograd(rng, training, momentum, eps):
    for _ in range(5):  # several random shapes
        x, gamma, beta, rm, rv = random_problem(rng)
        dout = rng.normal(size=x.shape)
        out, cache, new_rm, new_rv = batchnorm_forward(x, gamma, beta, rm, rv, training=training,
                                                       momentum=momentum, eps=eps)
        dx, dgamma, dbeta = batchnorm_backward(dout, cache)
        t_out, t_dx, t_dgamma, t_dbeta, t_rm, t_rv = torch_batchnorm(
            x, gamma, beta, rm, rv, dout, training=training, momentum=momentum, eps=eps)
        np.testing.assert_allclose(out, t_out, rtol=RTOL)
        np.testing.assert_allclose(new_rm, t_rm, rtol=RTOL)
        np.testing.assert_allclose(new_rv, t_rv, rtol=RTOL)
        # dx is a difference of O(1) terms in training mode: entries that cancel to
        # near zero get an absolute tolerance at round-off level of the terms' scale.
        scale = np.abs(gamma * cache["inv_std"]).max() * np.abs(dout).max()
        np.testing.assert_allclose(dx, t_dx, rtol=RTOL, atol=1e-12 * scale)
        np.testing.assert_allclose(dgamma, t_dgamma, rtol=RTOL, atol=1e-12 * np.abs(dout).sum())
        np.testing.assert_allclose(dbeta, t_dbeta, rtol=RTOL, atol=1e-12 * np.abs(dout).sum())


def test_batchnorm_training_normalizes_with_biased_and_tracks_unbiased_variance(rng):
    x, gamma, beta, rm, rv = random_problem(rng, n=7, d=3)
    out, _, new_rm, new_rv = batchnorm_forward(x, np.ones(3), np.zeros(3), rm, rv,
                                               training=True, momentum=1.0, eps=1e-12)
    # With gamma=1, beta=0 the output has zero mean and (biased) unit variance per feature;
    # with momentum=1 the running stats are exactly the batch stats.
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=0), 1, rtol=1e-9)
    np.testing.assert_allclose(new_rm, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(new_rv, x.var(axis=0, ddof=1), rtol=1e-12)


@pytest.mark.parametrize("momentum", [0.1, 0.25])
def test_batchnorm_running_stats_over_several_steps_match_torch_batchnorm1d(rng, momentum):
    d = int(rng.integers(2, 9))
    eps = 1e-5
    bn = torch.nn.BatchNorm1d(d, momentum=momentum, eps=eps, dtype=torch.float64)
    gamma, beta = rng.normal(size=d), rng.normal(size=d)
    with torch.no_grad():
        bn.weight.copy_(to_torch(gamma))
        bn.bias.copy_(to_torch(beta))
    rm, rv = np.zeros(d), np.ones(d)  # torch's initial running stats
    bn.train()
    for _ in range(6):
        x = rng.normal(size=(int(rng.integers(2, 30)), d)) * 2 + 1
        out, _, rm, rv = batchnorm_forward(x, gamma, beta, rm, rv, training=True, momentum=momentum, eps=eps)
        np.testing.assert_allclose(out, bn(to_torch(x)).detach().numpy(), rtol=RTOL)
        np.testing.assert_allclose(rm, bn.running_mean.numpy(), rtol=RTOL)
        np.testing.assert_allclose(rv, bn.running_var.numpy(), rtol=RTOL)
    bn.eval()
    x = rng.normal(size=(5, d))
    out, _, rm_eval, rv_eval = batchnorm_forward(x, gamma, beta, rm, rv, training=False,
                                                 momentum=momentum, eps=eps)
    np.testing.assert_allclose(out, bn(to_torch(x)).detach().numpy(), rtol=RTOL)
    np.testing.assert_array_equal(rm_eval, rm)
    np.testing.assert_array_equal(rv_eval, rv)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_backward_matches_finite_differences(rng, training):
    x, gamma, beta, rm, rv = random_problem(rng, n=6, d=4)
    dout = rng.normal(size=x.shape)

    def f():  # scalar whose gradient is the backward pass driven by dout
        return np.sum(batchnorm_forward(x, gamma, beta, rm, rv, training=training)[0] * dout)

    _, cache, _, _ = batchnorm_forward(x, gamma, beta, rm, rv, training=training)
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    for analytic, wrt in ((dx, x), (dgamma, gamma), (dbeta, beta)):
        np.testing.assert_allclose(analytic, numerical_grad(f, wrt), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_forward_and_backward_leave_inputs_and_cache_unchanged(rng, training):
    args = random_problem(rng)
    originals = [a.copy() for a in args]
    out, cache, new_rm, new_rv = batchnorm_forward(*args, training=training)
    for a, orig in zip(args, originals):
        np.testing.assert_array_equal(a, orig)
    # The returned running stats are new arrays, not views of the inputs.
    assert not np.shares_memory(new_rm, args[3]) and not np.shares_memory(new_rv, args[4])
    dout = rng.normal(size=out.shape)
    dout_orig, cache_orig = dout.copy(), copy.deepcopy(cache)
    batchnorm_backward(dout, cache)
    np.testing.assert_array_equal(dout, dout_orig)
    for key, value in cache_orig.items():
        np.testing.assert_array_equal(cache[key], value)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_preserves_float32(rng, training):
    args = random_problem(rng, dtype=np.float32)
    out, cache, new_rm, new_rv = batchnorm_forward(*args, training=training)
    grads = batchnorm_backward(rng.normal(size=out.shape).astype(np.float32), cache)
    assert all(a.dtype == np.float32 for a in (out, new_rm, new_rv, *grads))


def test_batchnorm_training_rejects_a_single_example_like_torch(rng):
    x, gamma, beta, rm, rv = random_problem(rng, n=1)
    with pytest.raises(ValueError, match="x must have at least 2 rows"):
        batchnorm_forward(x, gamma, beta, rm, rv, training=True)
    with pytest.raises(ValueError):
        F.batch_norm(to_torch(x), to_torch(rm), to_torch(rv), training=True)
    # Eval mode uses running statistics, so one example is fine.
    out, *_ = batchnorm_forward(x, gamma, beta, rm, rv, training=False)
    assert out.shape == x.shape


def test_batchnorm_rejects_bad_input_naming_the_argument(rng):
    x, gamma, beta, rm, rv = random_problem(rng, n=5, d=3)
    ok = dict(x=x, gamma=gamma, beta=beta, running_mean=rm, running_var=rv)

    def call(**changes):
        kwargs = {**ok, **changes}
        options = {k: kwargs.pop(k) for k in ("training", "momentum", "eps") if k in kwargs}
        options.setdefault("training", True)
        return batchnorm_forward(*kwargs.values(), **options)

    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\)"):
        call(gamma=np.ones(4))
    with pytest.raises(ValueError, match="running_var must have shape"):
        call(running_var=np.ones((3, 1)))
    with pytest.raises(ValueError, match="x must be 2-D"):
        call(x=x[0])
    with pytest.raises(TypeError, match="x must be a float32 or float64"):
        call(x=x.astype(np.int64))
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="x contains NaN"):
        call(x=bad)
    with pytest.raises(TypeError, match="share one dtype"):
        call(gamma=gamma.astype(np.float32))
    with pytest.raises(ValueError, match="running_var must be >= 0"):
        call(running_var=-rv)
    with pytest.raises(ValueError, match="momentum"):
        call(momentum=1.5)
    with pytest.raises(ValueError, match="eps"):
        call(eps=0.0)
    with pytest.raises(TypeError, match="training"):
        call(training="yes")
    with pytest.raises(TypeError):
        batchnorm_forward(x, gamma, beta, rm, rv)  # training is required: no silent default
    with pytest.raises(TypeError):
        batchnorm_forward(x, gamma, beta, rm, rv, training=True, mode="train")
    _, cache, _, _ = call()
    with pytest.raises(ValueError, match=r"dout must have shape \(5, 3\)"):
        batchnorm_backward(rng.normal(size=(5, 2)), cache)
    with pytest.raises(TypeError, match="cache"):
        batchnorm_backward(rng.normal(size=(5, 3)), (x,))


# ---------------------------------------------------------------------------
# Standardizer
# ---------------------------------------------------------------------------

def test_standardizer_matches_sklearn_standard_scaler_fitted_on_training_data_only(rng):
    X_train = rng.normal(size=(50, 6)) * rng.uniform(0.1, 10, size=6) + rng.normal(size=6) * 5
    X_test = rng.normal(size=(20, 6)) * 3
    ours, ref = Standardizer(), StandardScaler()
    np.testing.assert_allclose(ours.fit_transform(X_train), ref.fit_transform(X_train), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ours.transform(X_test), ref.transform(X_test), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.scale_, ref.scale_, rtol=1e-12)
    # The test set's own statistics play no part.
    assert np.abs(ours.transform(X_test).mean(axis=0)).max() > 0.1


def test_standardizer_leaves_zero_variance_features_unscaled(rng):
    X = rng.normal(size=(30, 4))
    X[:, 1] = 0.1  # constant: its computed mean carries rounding error
    X[:, 3] = -7.0
    Z = Standardizer().fit_transform(X)
    ref = StandardScaler().fit(X)
    np.testing.assert_array_equal(ref.scale_[[1, 3]], 1.0)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(Z[:, [1, 3]], 0, atol=1e-14)
    np.testing.assert_allclose(Z, ref.transform(X), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(Z[:, [0, 2]].std(axis=0), 1, rtol=1e-12)


def test_standardizer_inverse_transform_round_trips(rng):
    X = rng.normal(size=(25, 5)) * 4 + 2
    s = Standardizer().fit(X)
    np.testing.assert_allclose(s.inverse_transform(s.transform(X)), X, rtol=1e-12, atol=1e-12)


def test_standardizer_preserves_dtype_and_does_not_modify_x(rng):
    X = (rng.normal(size=(20, 3)) * 2 + 1).astype(np.float32)
    X_orig = X.copy()
    s = Standardizer()
    Z = s.fit_transform(X)
    assert Z.dtype == np.float32 and s.inverse_transform(Z).dtype == np.float32
    np.testing.assert_array_equal(X, X_orig)
    assert s.transform(X.astype(np.float64)).dtype == np.float64


def test_standardizer_rejects_transform_before_fit_and_wrong_feature_count(rng):
    s = Standardizer()
    with pytest.raises(RuntimeError, match="not fitted"):
        s.transform(rng.normal(size=(3, 2)))
    with pytest.raises(RuntimeError, match="not fitted"):
        s.inverse_transform(rng.normal(size=(3, 2)))
    s.fit(rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match=r"X must have shape \(\?, 3\)"):
        s.transform(rng.normal(size=(4, 2)))
    with pytest.raises(ValueError, match=r"Z must have shape \(\?, 3\)"):
        s.inverse_transform(rng.normal(size=(4, 5)))
    with pytest.raises(ValueError, match="X must be 2-D"):
        s.transform(rng.normal(size=3))
    with pytest.raises(TypeError, match="X must be a float32 or float64"):
        Standardizer().fit(np.arange(6).reshape(3, 2))
    with pytest.raises(ValueError, match="at least one row"):
        Standardizer().fit(np.zeros((0, 3)))
