"""mlp_lib.regularization against torch (float64): dropout, penalties, clipping, max-norm."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import to_torch
from mlp_lib.regularization import (
    clip_grad_norm,
    clip_grad_value,
    dropout_backward,
    dropout_forward,
    elastic_net_penalty,
    l1_penalty,
    l2_penalty,
    max_norm,
)

RTOL = 1e-7


def random_shape(rng):
    return int(rng.integers(1, 30)), int(rng.integers(1, 30))


def random_weights(rng, count=3):
    return [rng.normal(size=random_shape(rng)) * rng.uniform(0.1, 3) for _ in range(count)]


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.1, 0.5, 0.85])
def test_dropout_with_torchs_own_mask_matches_torch_dropout_and_autograd(rng, p):
    x = rng.normal(size=random_shape(rng))
    dout = rng.normal(size=x.shape)
    xt = to_torch(x, True)
    torch.manual_seed(int(rng.integers(2**31)))
    out_t = F.dropout(xt, p=p, training=True)
    out_t.backward(to_torch(dout))
    mask = out_t.detach().numpy() != 0  # x has no zeros, so torch's kept units are its nonzeros
    out, cache = dropout_forward(x, p=p, training=True, mask=mask)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=RTOL)
    np.testing.assert_allclose(dropout_backward(dout, cache), xt.grad.numpy(), rtol=RTOL)


@pytest.mark.parametrize("p", [0.2, 0.6])
def test_dropout_matches_torch_autograd_of_x_times_mask_over_keep_probability(rng, p):
    x = rng.normal(size=random_shape(rng))
    dout = rng.normal(size=x.shape)
    mask = rng.random(x.shape) >= p
    xt = to_torch(x, True)
    out_t = xt * to_torch(mask.astype(np.float64)) / (1 - p)
    out_t.backward(to_torch(dout))
    out, cache = dropout_forward(x, p=p, training=True, mask=mask.astype(np.float64))  # 0/1 mask
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=RTOL)
    np.testing.assert_allclose(dropout_backward(dout, cache), xt.grad.numpy(), rtol=RTOL)
    np.testing.assert_array_equal(cache["mask"], mask)


def test_dropout_p0_is_identity_and_p1_gives_zeros_like_torch(rng):
    x = rng.normal(size=(8, 5))
    dout = rng.normal(size=x.shape)
    out, cache = dropout_forward(x, p=0.0, training=True, rng=rng)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)
    np.testing.assert_array_equal(out, F.dropout(to_torch(x), p=0.0, training=True).numpy())

    xt = to_torch(x, True)
    out_t = F.dropout(xt, p=1.0, training=True)
    out_t.backward(to_torch(dout))
    out, cache = dropout_forward(x, p=1.0, training=True, rng=rng)
    np.testing.assert_array_equal(out, out_t.detach().numpy())
    np.testing.assert_array_equal(out, 0)
    np.testing.assert_array_equal(dropout_backward(dout, cache), xt.grad.numpy())


def test_dropout_in_eval_mode_is_the_identity_and_marks_the_cache(rng):
    x = rng.normal(size=(6, 4))
    dout = rng.normal(size=x.shape)
    out, cache = dropout_forward(x, p=0.5, training=False)  # no rng needed
    np.testing.assert_array_equal(out, F.dropout(to_torch(x), p=0.5, training=False).numpy())
    np.testing.assert_array_equal(out, x)
    assert out is not x
    assert cache["training"] is False and cache["mask"] is None
    dx = dropout_backward(dout, cache)
    np.testing.assert_array_equal(dx, dout)
    assert dx is not dout


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_drops_a_fraction_p_and_preserves_the_mean(rng, p):
    n = 200_000
    x = rng.uniform(0.5, 2.0, size=(400, n // 400))
    out, cache = dropout_forward(x, p=p, training=True, rng=rng)
    dropped = 1 - cache["mask"].mean()
    # Binomial(n, p): 5 standard deviations.
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / n)
    np.testing.assert_array_equal(out == 0, ~cache["mask"])
    np.testing.assert_allclose(out[cache["mask"]], x[cache["mask"]] / (1 - p), rtol=1e-15)
    # E[out] = x; Var[out_i] = x_i^2 p / (1-p), independent across entries.
    sd_of_mean = math.sqrt(np.sum(x**2) * p / (1 - p)) / n
    assert abs(out.mean() - x.mean()) < 5 * sd_of_mean


def test_dropout_mask_is_reproducible_from_the_seed_and_differs_across_seeds(rng):
    x = rng.normal(size=(50, 40))
    a, _ = dropout_forward(x, p=0.5, training=True, rng=123)
    b, _ = dropout_forward(x, p=0.5, training=True, rng=np.random.default_rng(123))
    c, _ = dropout_forward(x, p=0.5, training=True, rng=124)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    gen = np.random.default_rng(7)
    first, _ = dropout_forward(x, p=0.5, training=True, rng=gen)
    second, _ = dropout_forward(x, p=0.5, training=True, rng=gen)
    assert not np.array_equal(first, second)  # the generator advances


def test_dropout_forward_and_backward_leave_their_inputs_unchanged(rng):
    x = rng.normal(size=(7, 9))
    mask = (rng.random(x.shape) > 0.3).astype(np.float64)
    x_orig, mask_orig = x.copy(), mask.copy()
    out, cache = dropout_forward(x, p=0.3, training=True, mask=mask)
    np.testing.assert_array_equal(x, x_orig)
    np.testing.assert_array_equal(mask, mask_orig)
    dout = rng.normal(size=x.shape)
    dout_orig, cache_orig = dout.copy(), copy.deepcopy(cache)
    dropout_backward(dout, cache)
    np.testing.assert_array_equal(dout, dout_orig)
    np.testing.assert_array_equal(cache["mask"], cache_orig["mask"])
    assert cache["scale"] == cache_orig["scale"]


def test_dropout_preserves_float32(rng):
    x = rng.normal(size=(5, 6)).astype(np.float32)
    out, cache = dropout_forward(x, p=0.4, training=True, rng=rng)
    assert out.dtype == np.float32
    assert dropout_backward(rng.normal(size=x.shape).astype(np.float32), cache).dtype == np.float32


def test_dropout_rejects_bad_input_naming_the_argument(rng):
    x = rng.normal(size=(4, 3))
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        dropout_forward(x, p=1.2, training=True, rng=rng)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        dropout_forward(x, p=-0.1, training=False)
    with pytest.raises(TypeError, match="p must be a real number"):
        dropout_forward(x, p="0.5", training=True, rng=rng)
    with pytest.raises(ValueError, match="needs rng"):
        dropout_forward(x, p=0.5, training=True)
    with pytest.raises(ValueError, match="either rng or mask"):
        dropout_forward(x, p=0.5, training=True, rng=rng, mask=np.ones(x.shape, bool))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        dropout_forward(x, p=0.5, training=True, rng=0.5)
    with pytest.raises(ValueError, match=r"mask must have shape \(4, 3\)"):
        dropout_forward(x, p=0.5, training=True, mask=np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="mask must hold only 0 and 1"):
        dropout_forward(x, p=0.5, training=True, mask=np.full(x.shape, 2.0))
    with pytest.raises(TypeError, match="x must be a float32 or float64"):
        dropout_forward(np.ones((2, 2), dtype=np.int32), p=0.5, training=True, rng=rng)
    with pytest.raises(ValueError, match="x contains NaN"):
        dropout_forward(np.full((2, 2), np.nan), p=0.5, training=True, rng=rng)
    with pytest.raises(TypeError, match="training"):
        dropout_forward(x, p=0.5, training=1, rng=rng)
    with pytest.raises(TypeError):
        dropout_forward(x, 0.5, True, rng)  # options are keyword-only
    _, cache = dropout_forward(x, p=0.5, training=True, rng=rng)
    with pytest.raises(ValueError, match=r"dout must have shape \(4, 3\)"):
        dropout_backward(rng.normal(size=(4, 2)), cache)


# ---------------------------------------------------------------------------
# Penalties
# ---------------------------------------------------------------------------

def torch_penalty(weights, fn):
    """Value and autograd gradients of fn(list of tensors) -> scalar tensor."""
    ts = [to_torch(w, True) for w in weights]
    value = fn(ts)
    value.backward()
    return value.item(), [t.grad.numpy() for t in ts]


def assert_penalty_matches(ours, ref):
    (value, grads), (t_value, t_grads) = ours, ref
    assert isinstance(value, float)
    np.testing.assert_allclose(value, t_value, rtol=RTOL)
    assert len(grads) == len(t_grads)
    for g, tg in zip(grads, t_grads):
        np.testing.assert_allclose(g, tg, rtol=RTOL)


def test_l2_penalty_matches_torch_autograd(rng):
    weights, lam = random_weights(rng), float(rng.uniform(0.01, 2))
    assert_penalty_matches(l2_penalty(weights, lam),
                           torch_penalty(weights, lambda ts: 0.5 * lam * sum((t**2).sum() for t in ts)))


def test_l1_penalty_matches_torch_autograd_with_zero_subgradient_at_zero(rng):
    weights, lam = random_weights(rng), float(rng.uniform(0.01, 2))
    weights[0][rng.random(weights[0].shape) < 0.3] = 0.0
    weights[1][0] = 0.0
    ref = torch_penalty(weights, lambda ts: lam * sum(t.abs().sum() for t in ts))
    ours = l1_penalty(weights, lam)
    assert_penalty_matches(ours, ref)
    for w, g in zip(weights, ours[1]):
        np.testing.assert_array_equal(g[w == 0], 0.0)


@pytest.mark.parametrize("l1_ratio", [0.3, 0.75])
def test_elastic_net_penalty_matches_torch_autograd(rng, l1_ratio):
    weights, lam = random_weights(rng), float(rng.uniform(0.01, 2))
    weights[2][rng.random(weights[2].shape) < 0.2] = 0.0

    def ref(ts):
        l1 = sum(t.abs().sum() for t in ts)
        l2 = sum((t**2).sum() for t in ts)
        return lam * (l1_ratio * l1 + (1 - l1_ratio) / 2 * l2)

    assert_penalty_matches(elastic_net_penalty(weights, lam, l1_ratio), torch_penalty(weights, ref))


def test_elastic_net_reduces_to_l1_and_l2_at_the_ends(rng):
    weights, lam = random_weights(rng), float(rng.uniform(0.01, 2))
    assert_penalty_matches(elastic_net_penalty(weights, lam, 1.0), l1_penalty(weights, lam))
    assert_penalty_matches(elastic_net_penalty(weights, lam, 0.0), l2_penalty(weights, lam))


@pytest.mark.parametrize("penalty", [l2_penalty, l1_penalty,
                                     lambda w, lam: elastic_net_penalty(w, lam, 0.5)])
def test_penalties_return_new_arrays_of_the_weights_dtype(rng, penalty):
    weights = [w.astype(np.float32) for w in random_weights(rng)]
    originals = [w.copy() for w in weights]
    _, grads = penalty(weights, 0.3)
    for w, orig, g in zip(weights, originals, grads):
        np.testing.assert_array_equal(w, orig)
        assert g.dtype == np.float32 and not np.shares_memory(g, w)


def test_penalties_reject_bad_input_naming_the_argument(rng):
    weights = random_weights(rng, 2)
    for penalty in (l2_penalty, l1_penalty):
        with pytest.raises(ValueError, match="lam must be >= 0"):
            penalty(weights, -0.1)
        with pytest.raises(TypeError, match="weights must be a list"):
            penalty(weights[0], 0.1)  # a bare array would be iterated row by row
        with pytest.raises(TypeError, match=r"weights\[1\] must be a float32 or float64"):
            penalty([weights[0], np.ones((2, 2), dtype=np.int64)], 0.1)
        bad = weights[1].copy()
        bad.flat[0] = np.inf
        with pytest.raises(ValueError, match=r"weights\[1\] contains NaN or inf"):
            penalty([weights[0], bad], 0.1)
    with pytest.raises(ValueError, match=r"l1_ratio must be in \[0, 1\]"):
        elastic_net_penalty(weights, 0.1, 1.5)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        elastic_net_penalty(weights, -1.0, 0.5)


# ---------------------------------------------------------------------------
# Gradient clipping
# ---------------------------------------------------------------------------

def torch_clip_grad_norm(grads, max_norm_value, norm_type):
    params = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = to_torch(g)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm_value, norm_type=norm_type)
    return [p.grad.numpy() for p in params], total.item()


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("fraction", [0.3, 2.0])  # max_norm as a fraction of the total: clipped / not clipped
def test_clip_grad_norm_matches_torch_clip_grad_norm_(rng, norm_type, fraction):
    grads = random_weights(rng, 4)
    _, total = torch_clip_grad_norm(grads, 1.0, norm_type)
    max_norm_value = fraction * total
    originals = [g.copy() for g in grads]
    clipped, ours_total = clip_grad_norm(grads, max_norm_value, norm_type=norm_type)
    t_clipped, t_total = torch_clip_grad_norm(grads, max_norm_value, norm_type)
    assert isinstance(ours_total, float)
    np.testing.assert_allclose(ours_total, t_total, rtol=RTOL)
    for c, tc, g, orig in zip(clipped, t_clipped, grads, originals):
        np.testing.assert_allclose(c, tc, rtol=RTOL)
        np.testing.assert_array_equal(g, orig)
        assert not np.shares_memory(c, g)
    joint = clip_grad_norm(clipped, 1e9, norm_type=norm_type)[1]
    if fraction < 1:
        assert joint <= max_norm_value
    else:
        for c, g in zip(clipped, grads):
            np.testing.assert_array_equal(c, g)


def test_clip_grad_norm_of_zero_gradients_and_of_no_gradients_matches_torch(rng):
    grads = [np.zeros((3, 2)), np.zeros(4)]
    clipped, total = clip_grad_norm(grads, 1.0)
    t_clipped, t_total = torch_clip_grad_norm(grads, 1.0, 2.0)
    assert total == t_total == 0.0
    for c, tc in zip(clipped, t_clipped):
        np.testing.assert_array_equal(c, tc)
    assert clip_grad_norm([], 1.0) == ([], 0.0)


def test_clip_grad_value_matches_torch_clip_grad_value_(rng):
    grads = random_weights(rng, 3)
    clip_value = float(rng.uniform(0.2, 1.0))
    params = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = to_torch(g)
    torch.nn.utils.clip_grad_value_(params, clip_value)
    originals = [g.copy() for g in grads]
    clipped = clip_grad_value(grads, clip_value)
    for c, p, g, orig in zip(clipped, params, grads, originals):
        np.testing.assert_array_equal(c, p.grad.numpy())
        np.testing.assert_array_equal(g, orig)
    assert any((np.abs(g) > clip_value).any() for g in grads)  # the case actually clips


def test_clipping_rejects_bad_input_naming_the_argument(rng):
    grads = random_weights(rng, 2)
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        clip_grad_norm(grads, -1.0)
    with pytest.raises(ValueError, match="norm_type must be > 0"):
        clip_grad_norm(grads, 1.0, norm_type=0)
    with pytest.raises(TypeError, match="norm_type"):
        clip_grad_norm(grads, 1.0, norm_type="inf")  # use math.inf: no string options
    with pytest.raises(TypeError):
        clip_grad_norm(grads, 1.0, 2.0)  # norm_type is keyword-only
    with pytest.raises(TypeError, match="grads must be a list"):
        clip_grad_norm(grads[0], 1.0)
    with pytest.raises(ValueError, match=r"grads\[0\] contains NaN"):
        clip_grad_norm([np.full(3, np.nan)], 1.0)
    with pytest.raises(ValueError, match="clip_value must be >= 0"):
        clip_grad_value(grads, -0.5)
    with pytest.raises(TypeError, match=r"grads\[1\] must be a float32 or float64"):
        clip_grad_value([grads[0], np.arange(3)], 0.5)


# ---------------------------------------------------------------------------
# Max-norm
# ---------------------------------------------------------------------------

def test_max_norm_matches_torch_renorm_on_the_transposed_weight(rng):
    d_in, d_out = random_shape(rng)
    W = rng.normal(size=(d_in, d_out + 1)) * rng.uniform(0.2, 3, size=d_out + 1)
    column_norms = np.linalg.norm(W, axis=0)
    bound = float(np.median(column_norms))
    assert (column_norms > bound).any() and (column_norms < bound).any()  # both cases occur
    W_orig = W.copy()
    ours = max_norm(W, bound)
    ref = torch.renorm(to_torch(W).T, p=2, dim=0, maxnorm=bound).T.numpy()
    np.testing.assert_allclose(ours, ref, rtol=RTOL)
    np.testing.assert_array_equal(W, W_orig)
    assert np.all(np.linalg.norm(ours, axis=0) <= bound)
    np.testing.assert_array_equal(ours[:, column_norms <= bound], W[:, column_norms <= bound])


def test_max_norm_over_rows_matches_torch_renorm_dim0(rng):
    W = rng.normal(size=(7, 5)) * 2
    bound = float(np.median(np.linalg.norm(W, axis=1)))
    np.testing.assert_allclose(max_norm(W, bound, axis=1),
                               torch.renorm(to_torch(W), p=2, dim=0, maxnorm=bound).numpy(), rtol=RTOL)


def test_max_norm_preserves_float32_and_rejects_bad_input(rng):
    W = rng.normal(size=(4, 3)).astype(np.float32)
    assert max_norm(W, 0.5).dtype == np.float32
    with pytest.raises(ValueError, match="max_norm must be > 0"):
        max_norm(W, 0.0)
    with pytest.raises(ValueError, match="W must be 2-D"):
        max_norm(W[0], 1.0)
    with pytest.raises(ValueError, match="axis"):
        max_norm(W, 1.0, axis=2)
    with pytest.raises(TypeError, match="W must be a float32 or float64"):
        max_norm(np.ones((2, 2), dtype=np.int64), 1.0)
