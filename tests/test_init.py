"""mlp_lib.init against torch.nn.init: fans, gains and the sampled distributions.

Distributions are checked three ways on ~20,000 samples: a two-sample KS test
against torch's own sampler (applied to the transposed (D_out, D_in) weight), a
one-sample KS test against the distribution torch's documentation gives (with
torch's fans and gains), and mean/std/range bounds of 5 standard errors. The
seeds are fixed (the ``rng`` fixture), so these tests are deterministic; with a
wrong scale (a swapped fan, a missing gain) the KS p-values are ~0.
"""
import math

import numpy as np
import pytest
import scipy.stats
import torch

from mlp_lib import init

SHAPE = (300, 70)  # (D_in, D_out): fan_in != fan_out, so a swapped fan cannot pass
P_MIN = 1e-3


def torch_fans(shape):
    """torch's fans of the mlp_lib shape (D_in, D_out): computed on the (D_out, D_in) weight."""
    return torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape[::-1]))


def symmetric_uniform(bound):
    return scipy.stats.uniform(loc=-bound, scale=2 * bound)


def xavier_std(shape, gain):
    fan_in, fan_out = torch_fans(shape)
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


def kaiming_std(shape, a, mode, nonlinearity):
    fan_in, fan_out = torch_fans(shape)
    return torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)


# name: (ours(shape, rng), torch's in-place init(tensor, generator), expected scipy distribution(shape))
CASES = {
    "normal": (lambda s, r: init.normal(s, std=0.3, mean=-0.2, rng=r),
               lambda t, g: torch.nn.init.normal_(t, mean=-0.2, std=0.3, generator=g),
               lambda s: scipy.stats.norm(-0.2, 0.3)),
    "uniform": (lambda s, r: init.uniform(s, low=-0.1, high=0.4, rng=r),
                lambda t, g: torch.nn.init.uniform_(t, a=-0.1, b=0.4, generator=g),
                lambda s: scipy.stats.uniform(-0.1, 0.5)),
    "xavier_uniform": (lambda s, r: init.xavier_uniform(s, rng=r),
                       lambda t, g: torch.nn.init.xavier_uniform_(t, generator=g),
                       lambda s: symmetric_uniform(math.sqrt(3) * xavier_std(s, 1.0))),
    "xavier_uniform_tanh_gain": (
        lambda s, r: init.xavier_uniform(s, gain=init.calculate_gain("tanh"), rng=r),
        lambda t, g: torch.nn.init.xavier_uniform_(t, gain=torch.nn.init.calculate_gain("tanh"), generator=g),
        lambda s: symmetric_uniform(math.sqrt(3) * xavier_std(s, 5 / 3))),
    "xavier_normal": (lambda s, r: init.xavier_normal(s, gain=1.5, rng=r),
                      lambda t, g: torch.nn.init.xavier_normal_(t, gain=1.5, generator=g),
                      lambda s: scipy.stats.norm(0, xavier_std(s, 1.5))),
    "kaiming_uniform_default": (
        lambda s, r: init.kaiming_uniform(s, rng=r),
        lambda t, g: torch.nn.init.kaiming_uniform_(t, generator=g),
        lambda s: symmetric_uniform(math.sqrt(3) * kaiming_std(s, 0, "fan_in", "leaky_relu"))),
    "kaiming_uniform_fan_out_relu": (
        lambda s, r: init.kaiming_uniform(s, mode="fan_out", nonlinearity="relu", rng=r),
        lambda t, g: torch.nn.init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu", generator=g),
        lambda s: symmetric_uniform(math.sqrt(3) * kaiming_std(s, 0, "fan_out", "relu"))),
    "kaiming_normal_leaky": (
        lambda s, r: init.kaiming_normal(s, a=0.2, rng=r),
        lambda t, g: torch.nn.init.kaiming_normal_(t, a=0.2, generator=g),
        lambda s: scipy.stats.norm(0, kaiming_std(s, 0.2, "fan_in", "leaky_relu"))),
    "kaiming_normal_fan_out_tanh": (
        lambda s, r: init.kaiming_normal(s, mode="fan_out", nonlinearity="tanh", rng=r),
        lambda t, g: torch.nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="tanh", generator=g),
        lambda s: scipy.stats.norm(0, kaiming_std(s, 0, "fan_out", "tanh"))),
    "lecun_normal": (lambda s, r: init.lecun_normal(s, rng=r),
                     lambda t, g: torch.nn.init.kaiming_normal_(t, nonlinearity="linear", generator=g),
                     lambda s: scipy.stats.norm(0, kaiming_std(s, 0, "fan_in", "linear"))),
    "lecun_uniform": (lambda s, r: init.lecun_uniform(s, rng=r),
                      lambda t, g: torch.nn.init.kaiming_uniform_(t, nonlinearity="linear", generator=g),
                      lambda s: symmetric_uniform(math.sqrt(3) * kaiming_std(s, 0, "fan_in", "linear"))),
}


def assert_sample_statistics(sample, dist):
    """Mean, std and range of a sample within 5 standard errors of the distribution's."""
    n = sample.size
    mean, std = dist.mean(), dist.std()
    assert abs(sample.mean() - mean) < 5 * std / math.sqrt(n)
    # Standard error of the sample std ~ std * sqrt((excess kurtosis + 2) / (4 n)): 1/2n normal, 1/5n uniform.
    excess_kurtosis = dist.stats(moments="k")
    assert abs(sample.std() / std - 1) < 5 * math.sqrt((excess_kurtosis + 2) / (4 * n))
    low, high = dist.support()
    if np.isfinite(low):  # uniform: inside the bounds and reaching close to both ends
        width = high - low
        assert low <= sample.min() < low + 10 * width / n
        assert high - 10 * width / n < sample.max() <= high


@pytest.mark.parametrize("name", CASES)
def test_initializer_samples_the_same_distribution_as_torch_nn_init(rng, name):
    ours, theirs, expected = CASES[name]
    sample = ours(SHAPE, rng)
    assert sample.shape == SHAPE and sample.dtype == np.float64
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    torch_sample = theirs(torch.empty(SHAPE[::-1]), gen).numpy()
    assert scipy.stats.ks_2samp(sample.ravel(), torch_sample.ravel()).pvalue > P_MIN
    dist = expected(SHAPE)
    assert scipy.stats.kstest(sample.ravel(), dist.cdf).pvalue > P_MIN
    assert_sample_statistics(sample.ravel(), dist)


def test_torch_default_linear_samples_like_torch_nn_linear(rng):
    d_in, d_out = 40, 2000
    W, b = init.torch_default_linear(d_in, d_out, rng=rng)
    assert W.shape == (d_in, d_out) and b.shape == (d_out,)
    torch.manual_seed(int(rng.integers(2**31)))
    layer = torch.nn.Linear(d_in, d_out)
    for ours, theirs in ((W, layer.weight), (b, layer.bias)):
        theirs = theirs.detach().numpy()
        assert scipy.stats.ks_2samp(ours.ravel(), theirs.ravel()).pvalue > P_MIN
        # torch's documented bound: U(-1/sqrt(in_features), 1/sqrt(in_features)).
        dist = symmetric_uniform(1 / math.sqrt(layer.in_features))
        assert scipy.stats.kstest(ours.ravel(), dist.cdf).pvalue > P_MIN
        assert_sample_statistics(ours.ravel(), dist)


def test_torch_default_linear_bound_is_kaiming_uniform_with_a_sqrt5(rng):
    # What torch's reset_parameters computes: kaiming_uniform_(a=sqrt(5)) on the (out, in) weight.
    d_in, d_out = 37, 11
    torch_bound = math.sqrt(3) * kaiming_std((d_in, d_out), math.sqrt(5), "fan_in", "leaky_relu")
    W, b = init.torch_default_linear(d_in, d_out, rng=rng)
    assert np.abs(W).max() <= torch_bound * (1 + 1e-12)
    assert np.abs(b).max() <= torch_bound * (1 + 1e-12)
    np.testing.assert_allclose(torch_bound, 1 / math.sqrt(d_in), rtol=1e-14)


@pytest.mark.parametrize("shape", [(3, 5), (128, 10), (1, 1), (7, 300)])
def test_fans_match_torch_on_the_transposed_weight(shape):
    assert init.fans(shape) == torch_fans(shape)


def test_fans_reject_shapes_without_two_dimensions():
    with pytest.raises(ValueError, match=r"2-D weight shape \(D_in, D_out\)"):
        init.fans((5,))
    with pytest.raises(ValueError, match=r"2-D weight shape"):
        init.fans((2, 3, 4))
    with pytest.raises(ValueError):  # torch refuses 1-D too
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(5))


@pytest.mark.parametrize("nonlinearity, param", [
    ("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("selu", None),
    ("conv1d", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 0), ("leaky_relu", 3.0),
    ("relu", 0.3),  # param is ignored outside leaky_relu, as in torch
])
def test_calculate_gain_matches_torch(nonlinearity, param):
    ours = init.calculate_gain(nonlinearity, param)
    assert isinstance(ours, float)
    np.testing.assert_allclose(ours, torch.nn.init.calculate_gain(nonlinearity, param), rtol=1e-15)


@pytest.mark.parametrize("name", CASES)
def test_initializer_is_reproducible_from_the_seed(rng, name):
    ours = CASES[name][0]
    np.testing.assert_array_equal(ours((20, 10), 5), ours((20, 10), np.random.default_rng(5)))
    assert not np.array_equal(ours((20, 10), 5), ours((20, 10), 6))
    gen = np.random.default_rng(9)
    assert not np.array_equal(ours((20, 10), gen), ours((20, 10), gen))  # the generator advances


def test_torch_default_linear_is_reproducible_from_the_seed():
    a, b = init.torch_default_linear(6, 4, rng=3), init.torch_default_linear(6, 4, rng=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("sampler", [
    lambda **kw: init.normal((3, 2), std=1.0, **kw),
    lambda **kw: init.uniform((3, 2), low=0.0, high=1.0, **kw),
    lambda **kw: init.xavier_uniform((3, 2), **kw),
    lambda **kw: init.xavier_normal((3, 2), **kw),
    lambda **kw: init.kaiming_uniform((3, 2), **kw),
    lambda **kw: init.kaiming_normal((3, 2), **kw),
    lambda **kw: init.lecun_normal((3, 2), **kw),
    lambda **kw: init.lecun_uniform((3, 2), **kw),
    lambda **kw: init.torch_default_linear(3, 2, **kw)[0],
])
def test_samplers_require_an_explicit_rng_and_honour_dtype(sampler):
    with pytest.raises(TypeError, match="rng"):
        sampler()
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        sampler(rng=None)
    assert sampler(rng=0).dtype == np.float64
    assert sampler(rng=0, dtype=np.float32).dtype == np.float32
    np.testing.assert_array_equal(sampler(rng=0, dtype=np.float32), sampler(rng=0).astype(np.float32))
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        sampler(rng=0, dtype=np.int32)


def test_zeros_and_constant_fill_the_shape():
    z = init.zeros((4, 3))
    assert z.shape == (4, 3) and z.dtype == np.float64 and not z.any()
    c = init.constant((5,), 0.25, dtype=np.float32)
    assert c.dtype == np.float32
    np.testing.assert_array_equal(c, torch.nn.init.constant_(torch.empty(5, dtype=torch.float32), 0.25).numpy())
    with pytest.raises(TypeError, match="value must be a finite real number"):
        init.constant((2,), float("nan"))


def test_initializers_reject_bad_options_naming_the_argument():
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        init.calculate_gain("softmax")
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        init.kaiming_normal((3, 2), nonlinearity="Relu", rng=0)
    with pytest.raises(ValueError, match="mode must be one of"):
        init.kaiming_uniform((3, 2), mode="fan_avg", rng=0)
    with pytest.raises(TypeError, match="negative slope"):
        init.calculate_gain("leaky_relu", "0.2")
    with pytest.raises(ValueError, match=r"shape\[1\] must be > 0"):
        init.xavier_uniform((3, 0), rng=0)
    with pytest.raises(ValueError, match=r"shape\[0\] must be > 0"):
        init.normal((-2, 3), std=1.0, rng=0)
    with pytest.raises(TypeError, match=r"shape\[0\] must be an int"):
        init.zeros((2.5, 3))
    with pytest.raises(TypeError, match="shape must be a tuple"):
        init.zeros("3x2")
    with pytest.raises(ValueError, match="std must be >= 0"):
        init.normal((3, 2), std=-1.0, rng=0)
    with pytest.raises(ValueError, match="low must be < high"):
        init.uniform((3, 2), low=1.0, high=0.0, rng=0)
    with pytest.raises(ValueError, match="gain must be > 0"):
        init.xavier_normal((3, 2), gain=0.0, rng=0)
    with pytest.raises(TypeError, match="a must be a finite real number"):
        init.kaiming_uniform((3, 2), a=float("nan"), rng=0)
    with pytest.raises(ValueError, match="in_features must be > 0"):
        init.torch_default_linear(0, 3, rng=0)
    with pytest.raises(TypeError):
        init.xavier_uniform((3, 2), 1.0, 0)  # options are keyword-only
    with pytest.raises(ValueError, match=r"2-D weight shape"):
        init.kaiming_uniform((5,), rng=0)  # a bias has no fans
