"""mlp_lib.layers against torch autograd (float64), with finite differences as a second oracle."""
import contextlib
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import to_torch
from mlp_lib import layers
from mlp_lib.gradcheck import numerical_gradient_array, rel_error
from mlp_lib.interop import weight_from_torch, weight_to_torch

RTOL = 1e-10
ATOL = 1e-13  # scaled by the largest |value| of the reference
FD_TOL = 1e-7
SEEDS = [0, 1, 2]


def assert_matches(actual, expected):
    """``actual`` (numpy) equals ``expected`` (tensor or array) in dtype, shape and value."""
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().numpy()
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL * scale)


def random_shape(rng, max_ndim=3):
    return tuple(int(d) for d in rng.integers(1, 7, size=rng.integers(1, max_ndim + 1)))


def upstream(rng, shape):
    """A random upstream gradient: never ones or zeros, so every element is weighted differently."""
    return rng.standard_normal(shape)


def away_from(x, points, margin=1e-3):
    """Move entries within ``margin`` of a kink to 10 * margin beyond it (finite differences
    straddling a kink measure the average of two slopes)."""
    x = x.copy()
    for p in points:
        near = np.abs(x - p) < margin
        x[near] = p + 10 * margin * np.where(x[near] >= p, 1.0, -1.0)
    return x


def copies(*objs):
    """Deep copies of the arrays in (nested tuples of) objects."""
    def cp(o):
        if isinstance(o, np.ndarray):
            return o.copy()
        if isinstance(o, tuple):
            return tuple(cp(i) for i in o)
        return o
    return cp(objs)


def assert_unchanged(before, after):
    if isinstance(before, np.ndarray):
        assert isinstance(after, np.ndarray)
        np.testing.assert_array_equal(after, before, strict=True)
    elif isinstance(before, tuple):
        assert len(before) == len(after)
        for b, a in zip(before, after):
            assert_unchanged(b, a)
    else:
        assert before == after


# --------------------------------------------------------------------------
# activations: one table drives forward, backward, plain callables, checks
# --------------------------------------------------------------------------

class Activation:
    def __init__(self, name, torch_fn, kwargs=None, kinks=()):
        self.name = name
        self.torch_fn = torch_fn
        self.kwargs = kwargs or {}
        self.kinks = kinks  # inputs where the function is not smooth (kept away from in FD checks)

    def forward(self, x):
        return getattr(layers, f"{self.name}_forward")(x, **self.kwargs)

    def backward(self, dout, cache):
        return getattr(layers, f"{self.name}_backward")(dout, cache)

    def plain(self, x):
        return getattr(layers, self.name)(x, **self.kwargs)

    def grad(self, x):
        return getattr(layers, f"{self.name}_grad")(x, **self.kwargs)

    def __repr__(self):
        opts = ",".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.name}({opts})" if opts else self.name


ACTIVATIONS = [
    Activation("sigmoid", torch.sigmoid),
    Activation("tanh", torch.tanh),
    Activation("relu", F.relu, kinks=(0.0,)),
    Activation("leaky_relu", F.leaky_relu, kinks=(0.0,)),
    Activation("leaky_relu", lambda t: F.leaky_relu(t, negative_slope=0.2), {"negative_slope": 0.2}, kinks=(0.0,)),
    Activation("leaky_relu", lambda t: F.leaky_relu(t, negative_slope=1.5), {"negative_slope": 1.5}, kinks=(0.0,)),
    Activation("elu", F.elu, kinks=(0.0,)),
    Activation("elu", lambda t: F.elu(t, alpha=0.7), {"alpha": 0.7}, kinks=(0.0,)),
    Activation("softplus", F.softplus),
    # threshold 5 at beta 2: inputs above 2.5 take the linear branch
    Activation("softplus", lambda t: F.softplus(t, beta=2.0, threshold=5.0), {"beta": 2.0, "threshold": 5.0},
               kinks=(2.5,)),
    Activation("silu", F.silu),
    Activation("gelu", F.gelu),
    Activation("gelu", lambda t: F.gelu(t, approximate="tanh"), {"approximate": "tanh"}),
]
ACT_IDS = [repr(a) for a in ACTIVATIONS]
act_param = pytest.mark.parametrize("act", ACTIVATIONS, ids=ACT_IDS)


@act_param
@pytest.mark.parametrize("seed", SEEDS)
def test_activation_forward_matches_torch(act, seed):
    rng = np.random.default_rng(seed)
    x = 3.0 * rng.standard_normal(random_shape(rng))
    out, _ = act.forward(x)
    assert_matches(out, act.torch_fn(to_torch(x)))


@act_param
@pytest.mark.parametrize("seed", SEEDS)
def test_activation_backward_matches_torch_autograd(act, seed):
    rng = np.random.default_rng(seed)
    shape = random_shape(rng)
    x = 3.0 * rng.standard_normal(shape)
    dout = upstream(rng, shape)
    _, cache = act.forward(x)
    dx = act.backward(dout, cache)
    xt = to_torch(x, requires_grad=True)
    act.torch_fn(xt).backward(to_torch(dout))
    assert_matches(dx, xt.grad)


@act_param
@pytest.mark.parametrize("seed", SEEDS)
def test_activation_backward_matches_finite_differences(act, seed):
    rng = np.random.default_rng(seed)
    shape = random_shape(rng)
    x = away_from(1.5 * rng.standard_normal(shape), act.kinks)
    dout = upstream(rng, shape)
    dx = act.backward(dout, act.forward(x)[1])
    dx_num = numerical_gradient_array(lambda v: act.forward(v)[0], x, dout)
    assert rel_error(dx, dx_num) < FD_TOL


@act_param
def test_activation_plain_callable_and_derivative_match_torch(act, rng):
    x = np.linspace(-6.0, 6.0, 241)  # the kind of grid the book plots; includes x = 0 exactly
    assert_matches(act.plain(x), act.torch_fn(to_torch(x)))
    dout = upstream(rng, x.shape)
    xt = to_torch(x, requires_grad=True)
    act.torch_fn(xt).backward(to_torch(dout))
    assert_matches(act.grad(x) * dout, xt.grad)


@act_param
@pytest.mark.parametrize("value", [-1.3, 0.0, 2.7])
def test_activation_accepts_a_python_float_like_a_0d_tensor(act, value, rng):
    dout = float(rng.standard_normal())
    out, cache = act.forward(value)
    dx = act.backward(dout, cache)
    xt = torch.tensor(value, requires_grad=True)
    act.torch_fn(xt).backward(torch.tensor(dout))
    assert_matches(np.asarray(out), act.torch_fn(torch.tensor(value)))
    assert_matches(np.asarray(dx), xt.grad)
    assert_matches(np.asarray(act.plain(value)), act.torch_fn(torch.tensor(value)))
    assert_matches(np.asarray(act.grad(value) * dout), xt.grad)


@pytest.mark.parametrize("act", [a for a in ACTIVATIONS if a.kinks == (0.0,)],
                         ids=[repr(a) for a in ACTIVATIONS if a.kinks == (0.0,)])
def test_activation_derivative_at_the_kink_is_the_one_torch_uses(act, rng):
    x = np.array([-1.0, 0.0, 0.0, 1.0, -0.0])
    dout = upstream(rng, x.shape)
    xt = to_torch(x, requires_grad=True)
    act.torch_fn(xt).backward(to_torch(dout))
    assert_matches(act.backward(dout, act.forward(x)[1]), xt.grad)


def test_relu_derivative_at_zero_is_zero():
    out, cache = layers.relu_forward(np.array([0.0, -0.0]))
    np.testing.assert_array_equal(layers.relu_backward(np.array([2.5, -1.5]), cache), [0.0, 0.0])
    np.testing.assert_array_equal(layers.relu_grad(np.array([0.0])), [0.0])


@act_param
def test_activation_preserves_float32(act, rng):
    shape = (6, 5)
    x64 = 3.0 * rng.standard_normal(shape)
    dout64 = upstream(rng, shape)
    x32, dout32 = x64.astype(np.float32), dout64.astype(np.float32)
    out32, cache32 = act.forward(x32)
    dx32 = act.backward(dout32, cache32)
    assert out32.dtype == np.float32 and dx32.dtype == np.float32
    assert act.plain(x32).dtype == np.float32 and act.grad(x32).dtype == np.float32
    # float32-appropriate tolerance, against the float64 computation of the same inputs
    out64, cache64 = act.forward(x32.astype(np.float64))
    dx64 = act.backward(dout32.astype(np.float64), cache64)
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-5, atol=1e-6)


@act_param
def test_activation_forward_and_backward_mutate_nothing(act, rng):
    x = 3.0 * rng.standard_normal((4, 7))
    dout = upstream(rng, x.shape)
    x_before = x.copy()
    out, cache = act.forward(x)
    np.testing.assert_array_equal(x, x_before)
    cache_before, dout_before = copies(cache, dout)
    dx = act.backward(dout, cache)
    assert_unchanged(cache_before, cache)
    np.testing.assert_array_equal(dout, dout_before)
    np.testing.assert_array_equal(x, x_before)
    assert not np.shares_memory(dx, dout) and not np.shares_memory(dx, x)


@act_param
def test_activation_rejects_integer_input(act):
    with pytest.raises(TypeError, match="x must be a float32 or float64"):
        act.forward(np.arange(6).reshape(2, 3))


@act_param
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_activation_rejects_nonfinite_input(act, bad):
    x = np.zeros((2, 3))
    x[1, 2] = bad
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        act.forward(x)


@act_param
def test_activation_backward_rejects_dout_of_wrong_shape(act, rng):
    _, cache = act.forward(rng.standard_normal((3, 4)))
    with pytest.raises(ValueError, match=r"dout must have shape \(3, 4\), got shape \(4, 3\)"):
        act.backward(rng.standard_normal((4, 3)), cache)
    with pytest.raises(ValueError, match=r"dout must have shape \(3, 4\)"):
        act.backward(rng.standard_normal(12), cache)


@act_param
def test_activation_backward_rejects_bad_dout_dtype_or_values(act, rng):
    _, cache = act.forward(rng.standard_normal((3, 4)))
    with pytest.raises(TypeError, match="dout must be a float32 or float64"):
        act.backward(np.ones((3, 4), dtype=np.int64), cache)
    with pytest.raises(TypeError, match="dout: float32"):
        act.backward(rng.standard_normal((3, 4)).astype(np.float32), cache)
    dout = rng.standard_normal((3, 4))
    dout[0, 0] = np.nan
    with pytest.raises(ValueError, match="dout contains NaN"):
        act.backward(dout, cache)


@pytest.mark.parametrize("call, message", [
    (lambda x: layers.leaky_relu_forward(x, negative_slope=-0.1), "negative_slope"),
    (lambda x: layers.elu_forward(x, alpha=-1.0), "alpha"),
    (lambda x: layers.softplus_forward(x, beta=0.0), "beta"),
    (lambda x: layers.gelu_forward(x, approximate="erf"), "approximate"),
    (lambda x: layers.softmax_forward(x, axis=2), "axis"),
    (lambda x: layers.log_softmax_forward(x, axis=-3), "axis"),
])
def test_invalid_option_values_raise_value_error_naming_the_option(call, message):
    with pytest.raises(ValueError, match=message):
        call(np.zeros((2, 3)))


@pytest.mark.parametrize("call, message", [
    (lambda x: layers.elu_forward(x, alpha="1"), "alpha"),
    (lambda x: layers.softplus_forward(x, threshold=None), "threshold"),
    (lambda x: layers.softmax_forward(x, axis=1.0), "axis"),
    (lambda x: layers.leaky_relu_forward(x, 0.1), "positional"),
    (lambda x: layers.gelu_forward(x, approx="tanh"), "approx"),
    (lambda x: layers.relu_forward(x, inplace=True), "inplace"),
])
def test_options_are_keyword_only_typed_and_unknown_ones_rejected(call, message):
    with pytest.raises(TypeError, match=message):
        call(np.zeros((2, 3)))


def test_backward_rejects_a_cache_from_another_layer(rng):
    _, cache = layers.sigmoid_forward(rng.standard_normal((2, 3)))
    with pytest.raises(TypeError, match="cache must be the tuple returned by linear_forward"):
        layers.linear_backward(rng.standard_normal((2, 3)), cache)


# --------------------------------------------------------------------------
# numerical stability at extreme inputs
# --------------------------------------------------------------------------

@contextlib.contextmanager
def strict_floats():
    """No overflow/invalid/divide-by-zero from numpy, and any warning is an error.
    (Underflow to 0 is the correct, silent result for e.g. sigmoid(-1000).)"""
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        yield


@act_param
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_activation_is_finite_without_warnings_at_plus_minus_1000(act, dtype, rng):
    x = np.array([-1000.0, -800.0, -50.0, 0.0, 50.0, 800.0, 1000.0], dtype=dtype)
    dout = upstream(rng, x.shape).astype(dtype)
    with strict_floats():
        out, cache = act.forward(x)
        dx = act.backward(dout, cache)
    assert np.isfinite(out).all() and np.isfinite(dx).all()
    xt = to_torch(x, requires_grad=True)
    act.torch_fn(xt).backward(to_torch(dout))
    if dtype == np.float64:
        assert_matches(out, act.torch_fn(to_torch(x)))
        assert_matches(dx, xt.grad)
    else:
        np.testing.assert_allclose(out, act.torch_fn(to_torch(x)).detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6, atol=1e-30)


def test_sigmoid_saturates_to_exactly_0_and_1_like_torch():
    x = np.array([-1000.0, 1000.0])
    with strict_floats():
        out = layers.sigmoid(x)
    np.testing.assert_array_equal(out, torch.sigmoid(to_torch(x)).numpy())
    np.testing.assert_array_equal(out, [0.0, 1.0])


@pytest.mark.parametrize("beta, threshold", [(1.0, 20.0), (3.0, 20.0), (0.5, 10.0)])
def test_softplus_is_stable_for_large_inputs(beta, threshold, rng):
    x = np.array([-1e5, -1e3, -30.0, 19.0, 21.0, 30.0, 700.0, 1e3, 1e5])
    dout = upstream(rng, x.shape)
    with strict_floats():
        out, cache = layers.softplus_forward(x, beta=beta, threshold=threshold)
        dx = layers.softplus_backward(dout, cache)
    xt = to_torch(x, requires_grad=True)
    F.softplus(xt, beta=beta, threshold=threshold).backward(to_torch(dout))
    assert_matches(out, F.softplus(to_torch(x), beta=beta, threshold=threshold))
    assert_matches(dx, xt.grad)


def test_softplus_stays_finite_where_torchs_exp_overflows(rng):
    # With a threshold this high torch evaluates log1p(exp(1000)) = inf; the exact value is
    # 1000 + log1p(exp(-1000)), which torch's logaddexp computes stably.
    beta, threshold = 1.5, 1e4
    x = np.array([-1e3, -5.0, 0.0, 5.0, 480.0, 1e3, 5e3])
    dout = upstream(rng, x.shape)
    with strict_floats():
        out, cache = layers.softplus_forward(x, beta=beta, threshold=threshold)
        dx = layers.softplus_backward(dout, cache)
    bx = beta * to_torch(x)
    assert_matches(out, torch.logaddexp(torch.zeros_like(bx), bx) / beta)
    assert_matches(dx, torch.sigmoid(bx) * to_torch(dout))


@pytest.mark.parametrize("name, torch_fn", [("softmax", F.softmax), ("log_softmax", F.log_softmax)])
def test_softmax_is_stable_for_logits_of_size_1e4(name, torch_fn, rng):
    x = 1e4 * rng.standard_normal((5, 8))
    dout = upstream(rng, x.shape)
    forward = getattr(layers, f"{name}_forward")
    backward = getattr(layers, f"{name}_backward")
    with strict_floats():
        out, cache = forward(x)
        dx = backward(dout, cache)
    assert np.isfinite(out).all()
    xt = to_torch(x, requires_grad=True)
    torch_fn(xt, dim=-1).backward(to_torch(dout))
    assert_matches(out, torch_fn(to_torch(x), dim=-1))
    assert_matches(dx, xt.grad)


# --------------------------------------------------------------------------
# softmax and log-softmax
# --------------------------------------------------------------------------

SOFTMAXES = [("softmax", F.softmax), ("log_softmax", F.log_softmax)]
softmax_param = pytest.mark.parametrize("name, torch_fn", SOFTMAXES, ids=[n for n, _ in SOFTMAXES])
AXIS_CASES = [((7, 5), -1), ((7, 5), 0), ((7, 5), 1), ((3, 4, 6), -1), ((3, 4, 6), 1), ((3, 4, 6), 0), ((9,), 0)]
axis_param = pytest.mark.parametrize("shape, axis", AXIS_CASES, ids=[f"{s}-axis{a}" for s, a in AXIS_CASES])


@softmax_param
@axis_param
def test_softmax_forward_and_backward_match_torch_autograd(name, torch_fn, shape, axis, rng):
    x = 4.0 * rng.standard_normal(shape)
    dout = upstream(rng, shape)
    out, cache = getattr(layers, f"{name}_forward")(x, axis=axis)
    dx = getattr(layers, f"{name}_backward")(dout, cache)
    xt = to_torch(x, requires_grad=True)
    yt = torch_fn(xt, dim=axis)
    yt.backward(to_torch(dout))
    assert_matches(out, yt)
    assert_matches(dx, xt.grad)
    assert_matches(getattr(layers, name)(x, axis=axis), yt)


@softmax_param
@axis_param
def test_softmax_backward_matches_finite_differences(name, torch_fn, shape, axis, rng):
    x = 2.0 * rng.standard_normal(shape)
    dout = upstream(rng, shape)
    forward = getattr(layers, f"{name}_forward")
    dx = getattr(layers, f"{name}_backward")(dout, forward(x, axis=axis)[1])
    dx_num = numerical_gradient_array(lambda v: forward(v, axis=axis)[0], x, dout)
    assert rel_error(dx, dx_num) < FD_TOL


def test_softmax_rows_sum_to_one_and_match_exp_of_log_softmax(rng):
    x = 5.0 * rng.standard_normal((6, 9))
    p = layers.softmax(x)
    np.testing.assert_allclose(p.sum(axis=1), np.ones(6), rtol=1e-14)
    np.testing.assert_allclose(np.exp(layers.log_softmax(x)), p, rtol=1e-13)


@softmax_param
def test_softmax_preserves_float32_and_mutates_nothing(name, torch_fn, rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    dout = upstream(rng, x.shape).astype(np.float32)
    x_before, dout_before = x.copy(), dout.copy()
    out, cache = getattr(layers, f"{name}_forward")(x)
    cache_before = copies(cache)[0]
    dx = getattr(layers, f"{name}_backward")(dout, cache)
    assert out.dtype == np.float32 and dx.dtype == np.float32
    assert_unchanged(cache_before, cache)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dout, dout_before)
    out64, cache64 = getattr(layers, f"{name}_forward")(x.astype(np.float64))
    np.testing.assert_allclose(out, out64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, getattr(layers, f"{name}_backward")(dout.astype(np.float64), cache64),
                               rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------
# linear
# --------------------------------------------------------------------------

def linear_case(rng):
    n, d_in, d_out = (int(v) for v in rng.integers(1, 9, size=3))
    x = rng.standard_normal((n, d_in))
    W = rng.standard_normal((d_in, d_out)) / np.sqrt(d_in)
    b = rng.standard_normal(d_out)
    dout = upstream(rng, (n, d_out))
    return x, W, b, dout


@pytest.mark.parametrize("seed", SEEDS + [3, 4])
def test_linear_forward_and_backward_match_torch_autograd(seed):
    x, W, b, dout = linear_case(np.random.default_rng(seed))
    out, cache = layers.linear_forward(x, W, b)
    dx, dW, db = layers.linear_backward(dout, cache)
    xt = to_torch(x, requires_grad=True)
    wt = to_torch(weight_to_torch(W), requires_grad=True)  # torch's (out, in) layout
    bt = to_torch(b, requires_grad=True)
    yt = F.linear(xt, wt, bt)
    yt.backward(to_torch(dout))
    assert_matches(out, yt)
    assert_matches(dx, xt.grad)
    assert_matches(dW, weight_from_torch(wt.grad))
    assert_matches(db, bt.grad)


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_without_bias_matches_torch_autograd(seed):
    x, W, _, dout = linear_case(np.random.default_rng(seed))
    out, cache = layers.linear_forward(x, W, None)
    dx, dW, db = layers.linear_backward(dout, cache)
    assert db is None
    xt = to_torch(x, requires_grad=True)
    wt = to_torch(weight_to_torch(W), requires_grad=True)
    yt = F.linear(xt, wt)
    yt.backward(to_torch(dout))
    assert_matches(out, yt)
    assert_matches(dx, xt.grad)
    assert_matches(dW, weight_from_torch(wt.grad))


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_backward_matches_finite_differences(seed):
    x, W, b, dout = linear_case(np.random.default_rng(seed))
    dx, dW, db = layers.linear_backward(dout, layers.linear_forward(x, W, b)[1])
    assert rel_error(dx, numerical_gradient_array(lambda v: layers.linear_forward(v, W, b)[0], x, dout)) < FD_TOL
    assert rel_error(dW, numerical_gradient_array(lambda v: layers.linear_forward(x, v, b)[0], W, dout)) < FD_TOL
    assert rel_error(db, numerical_gradient_array(lambda v: layers.linear_forward(x, W, v)[0], b, dout)) < FD_TOL


def test_linear_preserves_float32(rng):
    x, W, b, dout = linear_case(rng)
    f32 = [a.astype(np.float32) for a in (x, W, b, dout)]
    out, cache = layers.linear_forward(*f32[:3])
    grads = layers.linear_backward(f32[3], cache)
    assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    out64, cache64 = layers.linear_forward(*(a.astype(np.float64) for a in f32[:3]))
    np.testing.assert_allclose(out, out64, rtol=1e-5, atol=1e-5)
    for g32, g64 in zip(grads, layers.linear_backward(f32[3].astype(np.float64), cache64)):
        np.testing.assert_allclose(g32, g64, rtol=1e-5, atol=1e-5)


def test_linear_forward_and_backward_mutate_nothing(rng):
    x, W, b, dout = linear_case(rng)
    before = copies(x, W, b, dout)
    out, cache = layers.linear_forward(x, W, b)
    cache_before = copies(cache)[0]
    dx, dW, db = layers.linear_backward(dout, cache)
    assert_unchanged(before, (x, W, b, dout))
    assert_unchanged(cache_before, cache)
    for g in (dx, dW, db):
        assert not any(np.shares_memory(g, a) for a in (x, W, b, dout, out))


@pytest.mark.parametrize("make, error, message", [
    (lambda x, W, b: (x, np.zeros((W.shape[0] + 1, W.shape[1])), b), ValueError, r"W must have shape \(4, \?\)"),
    (lambda x, W, b: (x, W, np.zeros(W.shape[1] + 1)), ValueError, r"b must have shape \(3,\)"),
    (lambda x, W, b: (x, W, np.zeros((1, W.shape[1]))), ValueError, "b must be 1-D"),
    (lambda x, W, b: (x[0], W, b), ValueError, "x must be 2-D"),
    (lambda x, W, b: (x, W[:, 0], b), ValueError, "W must be 2-D"),
    (lambda x, W, b: (x.astype(np.int64), W, b), TypeError, "x must be a float32 or float64"),
    (lambda x, W, b: (x, W.astype(np.int32), b), TypeError, "W must be a float32 or float64"),
    (lambda x, W, b: (x, W, b.astype(bool)), TypeError, "b must be a float32 or float64"),
    (lambda x, W, b: (x.astype(np.float32), W, b), TypeError, "x: float32"),
    (lambda x, W, b: (np.where(x > 0, np.nan, x), W, b), ValueError, "x contains NaN or inf"),
    (lambda x, W, b: (x, np.full_like(W, np.inf), b), ValueError, "W contains NaN or inf"),
    (lambda x, W, b: (x, W, b - np.inf), ValueError, "b contains NaN or inf"),
])
def test_linear_forward_rejects_bad_input_naming_the_argument(make, error, message, rng):
    x, W, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    with pytest.raises(error, match=message):
        layers.linear_forward(*make(x, W, b))


def test_linear_backward_rejects_dout_that_does_not_match_the_cache(rng):
    _, cache = layers.linear_forward(rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3))
    with pytest.raises(ValueError, match=r"dout must have shape \(5, 3\), got shape \(5, 4\)"):
        layers.linear_backward(rng.standard_normal((5, 4)), cache)
    with pytest.raises(ValueError, match=r"dout must have shape \(5, 3\), got shape \(15,\)"):
        layers.linear_backward(rng.standard_normal(15), cache)
    with pytest.raises(TypeError, match="dout must be a float32 or float64"):
        layers.linear_backward(np.ones((5, 3), dtype=int), cache)
    with pytest.raises(ValueError, match="dout contains NaN or inf"):
        layers.linear_backward(np.full((5, 3), np.inf), cache)


# --------------------------------------------------------------------------
# the interop pieces these tests rely on
# --------------------------------------------------------------------------

def test_weight_to_torch_gives_the_layout_nn_linear_uses(rng):
    W, b = rng.standard_normal((4, 3)), rng.standard_normal(3)
    x = rng.standard_normal((6, 4))
    lin = torch.nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(weight_to_torch(W)))
        lin.bias.copy_(torch.tensor(b))
    assert tuple(lin.weight.shape) == (3, 4)
    assert_matches(layers.linear_forward(x, W, b)[0], lin(to_torch(x)))
    np.testing.assert_array_equal(weight_from_torch(lin.weight), W)  # a tensor with requires_grad is accepted


def test_weight_conversions_return_new_arrays_with_the_same_dtype(rng):
    W = rng.standard_normal((4, 3)).astype(np.float32)
    Wt = weight_to_torch(W)
    assert Wt.shape == (3, 4) and Wt.dtype == np.float32 and Wt.flags.c_contiguous
    assert not np.shares_memory(Wt, W)
    back = weight_from_torch(Wt)
    assert not np.shares_memory(back, Wt)
    np.testing.assert_array_equal(back, W)
    with pytest.raises(ValueError, match="W must be 2-D"):
        weight_to_torch(W[0])
    with pytest.raises(TypeError, match="weight must be a float32 or float64"):
        weight_from_torch(np.ones((3, 4), dtype=int))


def test_mlp_lib_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"  # makes any `import torch` fail
            "import numpy as np\n"
            "from mlp_lib import layers, losses, gradcheck, interop\n"
            "W = np.ones((2, 3)); assert interop.weight_from_torch(interop.weight_to_torch(W)).shape == (2, 3)\n"
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
