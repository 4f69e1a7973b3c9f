"""mlp_lib.diagnostics: statistics of activations and gradients, checked against torch."""
import math

import numpy as np
import pytest
import torch

from conftest import to_torch
from mlp_lib.diagnostics import (activation_stats, dead_relu_fraction, gradient_norms, layer_activations,
                                 per_layer_gradient_norms, saturation_fraction, update_ratios)
from mlp_lib.modules import Linear, ReLU, Sequential, Tanh


def _random_shape(rng, ndim):
    return tuple(int(s) for s in rng.integers(1, 9, size=ndim))


# ---------------------------------------------------------------- activation statistics


def test_activation_stats_match_torch(rng):
    arrays = [rng.normal(size=(int(rng.integers(5, 60)), int(rng.integers(1, 20)))) * s for s in (0.1, 1.0, 5.0)]
    stats = activation_stats(arrays)
    assert len(stats) == 3
    for a, s in zip(arrays, stats):
        t = to_torch(a).ravel()
        assert list(s) == ["mean", "std", "min", "max", "p1", "p25", "p50", "p75", "p99"]
        assert all(type(v) is float for v in s.values())
        np.testing.assert_allclose(s["mean"], t.mean().item(), rtol=1e-12)
        np.testing.assert_allclose(s["std"], t.std(correction=0).item(), rtol=1e-12)
        assert (s["min"], s["max"]) == (t.min().item(), t.max().item())
        q = torch.quantile(t, torch.tensor([0.01, 0.25, 0.5, 0.75, 0.99]))  # linear interpolation, as numpy
        np.testing.assert_allclose([s["p1"], s["p25"], s["p50"], s["p75"], s["p99"]], q.numpy(), rtol=1e-12)


def test_activation_stats_take_custom_percentiles_and_float32(rng):
    a = rng.normal(size=(40, 7)).astype(np.float32)
    (s,) = activation_stats([a], percentiles=(15, 50, 85))
    assert [k for k in s if k.startswith("p")] == ["p15", "p50", "p85"]
    q = torch.quantile(to_torch(a).double().ravel(), torch.tensor([0.15, 0.5, 0.85]))
    np.testing.assert_allclose([s["p15"], s["p50"], s["p85"]], q.numpy(), rtol=1e-12)


@pytest.mark.parametrize("bad, error", [
    (np.zeros((3, 3)), TypeError),             # one array instead of a list of arrays
    ([np.zeros((3, 3), dtype=int)], TypeError),
    ([np.array([[1.0, np.nan]])], ValueError),
    ([np.zeros((0, 3))], ValueError),
    ("activations", TypeError),
])
def test_activation_stats_reject_bad_inputs(bad, error):
    with pytest.raises(error):
        activation_stats(bad)


def test_activation_stats_reject_percentiles_outside_0_100():
    with pytest.raises(ValueError, match="percentiles"):
        activation_stats([np.zeros((2, 2))], percentiles=(50, 101))


# ---------------------------------------------------------------- saturation


def test_saturation_fraction_of_a_known_sigmoid_array():
    a = np.array([0.005, 0.01, 0.5, 0.99, 0.995, 0.0, 1.0, 0.3])
    # Strictly beyond the threshold: 0.005, 0.995, 0.0, 1.0 are saturated; 0.01 and 0.99 are not.
    assert saturation_fraction(a, kind="sigmoid") == 4 / 8
    assert saturation_fraction(a, kind="sigmoid", threshold=0.2) == 6 / 8


def test_saturation_fraction_matches_torch_for_sigmoid_and_tanh(rng):
    z = to_torch(rng.normal(scale=4.0, size=_random_shape(rng, 2)))
    for kind, act, saturated in (
        ("sigmoid", torch.sigmoid, lambda a, t: (a < t) | (a > 1 - t)),
        ("tanh", torch.tanh, lambda a, t: a.abs() > 1 - t),
    ):
        a = act(z)
        for t in (0.01, 0.05):
            expected = saturated(a, t).double().mean().item()
            assert saturation_fraction(a.numpy(), kind=kind, threshold=t) == pytest.approx(expected, abs=1e-15)


def test_saturation_fraction_of_a_known_tanh_array():
    a = np.array([[-1.0, -0.995, -0.99, 0.0], [0.5, 0.99, 0.999, 1.0]], dtype=np.float32)
    assert saturation_fraction(a, kind="tanh") == 4 / 8


@pytest.mark.parametrize("a, kwargs, error", [
    (np.array([0.5, 1.2]), dict(kind="sigmoid"), ValueError),   # outside [0, 1]: pre-activations?
    (np.array([-0.1, 0.5]), dict(kind="sigmoid"), ValueError),
    (np.array([0.5, -1.5]), dict(kind="tanh"), ValueError),
    (np.array([0.5]), dict(kind="relu"), ValueError),
    (np.array([0.5]), dict(), TypeError),                       # kind is required
    (np.array([0.5]), dict(kind="tanh", threshold=0.0), ValueError),
    (np.array([0.5]), dict(kind="tanh", threshold=0.6), ValueError),
    (np.array([1, 0]), dict(kind="sigmoid"), TypeError),
    (np.array([]), dict(kind="sigmoid"), ValueError),
])
def test_saturation_fraction_rejects_bad_inputs(a, kwargs, error):
    with pytest.raises(error):
        saturation_fraction(a, **kwargs)


# ---------------------------------------------------------------- dead ReLUs


def test_dead_relu_fraction_counts_units_off_for_every_example(rng):
    n, d = int(rng.integers(5, 30)), int(rng.integers(6, 25))
    z = rng.normal(size=(n, d))
    dead = rng.choice(d, size=d // 3, replace=False)
    z[:, dead] = -np.abs(z[:, dead])
    z[rng.integers(n), dead[0]] = 0.0  # exactly 0 is still dead: ReLU's derivative there is 0
    alive = np.setdiff1d(np.arange(d), dead)
    z[rng.integers(n, size=alive.size), alive] = np.abs(z[0, alive]) + 0.1  # one positive entry each
    expected = (to_torch(z) <= 0).all(dim=0).double().mean().item()
    assert expected == len(dead) / d
    assert dead_relu_fraction(z) == expected
    # The ReLU outputs give the same answer.
    assert dead_relu_fraction(torch.relu(to_torch(z)).numpy()) == expected


def test_a_unit_positive_on_a_single_example_is_not_dead():
    z = -np.ones((4, 3))
    z[2, 1] = 1e-9
    assert dead_relu_fraction(z) == 2 / 3


@pytest.mark.parametrize("bad, error", [
    (np.zeros(5), ValueError),
    (np.zeros((2, 3, 4)), ValueError),
    (np.zeros((0, 3)), ValueError),
    (np.zeros((3, 3), dtype=np.int64), TypeError),
    (np.array([[np.inf, 1.0]]), ValueError),
])
def test_dead_relu_fraction_rejects_bad_inputs(bad, error):
    with pytest.raises(error):
        dead_relu_fraction(bad)


# ---------------------------------------------------------------- gradient norms and update ratios


def test_gradient_norms_match_torch_vector_norm(rng):
    grads = [rng.normal(size=_random_shape(rng, nd)) for nd in (1, 2, 3, 2)]
    grads.append(rng.normal(size=(7, 3)).astype(np.float32))
    got = gradient_norms(grads)
    expected = [torch.linalg.vector_norm(to_torch(g).double()).item() for g in grads]
    assert all(type(v) is float for v in got)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_update_ratios_match_torch(rng):
    params = [rng.normal(size=_random_shape(rng, nd)) for nd in (2, 1)]
    updates = [-1e-3 * rng.normal(size=p.shape) for p in params]
    expected = [(torch.linalg.vector_norm(to_torch(u)) / torch.linalg.vector_norm(to_torch(p))).item()
                for p, u in zip(params, updates)]
    np.testing.assert_allclose(update_ratios(params, updates), expected, rtol=1e-12)


def test_update_ratio_of_a_zero_parameter_is_inf_or_zero():
    assert update_ratios([np.zeros(3), np.zeros(3)], [np.ones(3), np.zeros(3)]) == [math.inf, 0.0]


@pytest.mark.parametrize("params, updates, error", [
    ([np.ones(3)], [np.ones(4)], ValueError),
    ([np.ones(3)], [np.ones(3), np.ones(3)], ValueError),
    (np.ones(3), np.ones(3), TypeError),
    ([np.ones(3)], [np.ones(3, dtype=int)], TypeError),
])
def test_update_ratios_reject_mismatched_inputs(params, updates, error):
    with pytest.raises(error):
        update_ratios(params, updates)


# ---------------------------------------------------------------- model-level helpers


def _mlp(rng):
    return Sequential(Linear(5, 8, rng=rng), Tanh(), Linear(8, 6, rng=rng), ReLU(), Linear(6, 3, rng=rng))


def test_layer_activations_match_the_same_network_in_torch(rng):
    model = _mlp(rng)
    x = rng.normal(size=(11, 5))
    outs = layer_activations(model, x)
    assert [o.shape for o in outs] == [(11, 8), (11, 8), (11, 6), (11, 6), (11, 3)]
    W = [to_torch(m.weight.data) for m in model.layers[::2]]
    b = [to_torch(m.bias.data) for m in model.layers[::2]]
    h1 = torch.nn.functional.linear(to_torch(x), W[0].T, b[0])
    h2 = torch.tanh(h1)
    h3 = torch.nn.functional.linear(h2, W[1].T, b[1])
    h4 = torch.relu(h3)
    h5 = torch.nn.functional.linear(h4, W[2].T, b[2])
    for got, want in zip(outs, (h1, h2, h3, h4, h5)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(outs[-1], model(x))


def test_layer_activations_work_with_any_object_holding_callable_layers():
    class Fake:
        layers = [lambda x: 2 * x, np.tanh]

    x = np.array([[0.1, -0.3]])
    outs = layer_activations(Fake(), x)
    np.testing.assert_allclose(outs[0], 2 * x)
    np.testing.assert_allclose(outs[1], np.tanh(2 * x))


def test_layer_activations_reject_models_without_layers():
    with pytest.raises(TypeError, match="layers"):
        layer_activations(object(), np.zeros((2, 2)))
    with pytest.raises(TypeError, match="layers"):
        layer_activations(type("M", (), {"layers": [1]})(), np.zeros((2, 2)))
    with pytest.raises(TypeError):
        layer_activations(Sequential(), np.zeros((2, 2), dtype=int))


def test_per_layer_gradient_norms_combine_each_layers_parameter_gradients(rng):
    model = _mlp(rng)
    x = rng.normal(size=(9, 5))
    model(x)
    model.backward(rng.normal(size=(9, 3)))
    norms = per_layer_gradient_norms(model)
    assert list(norms) == ["0:Linear", "2:Linear", "4:Linear"]
    for (name, got), layer in zip(norms.items(), model.layers[::2]):
        flat = torch.cat([to_torch(layer.weight.grad).ravel(), to_torch(layer.bias.grad).ravel()])
        assert got == pytest.approx(torch.linalg.vector_norm(flat).item(), rel=1e-12)
        assert got > 0
    model.zero_grad()
    assert all(v == 0.0 for v in per_layer_gradient_norms(model).values())


def test_per_layer_gradient_norms_are_nan_for_missing_gradients_and_accept_a_single_module():
    class P:
        def __init__(self, data, grad):
            self.data, self.grad = data, grad

    class Single:
        def parameters(self):
            return [P(np.ones(2), np.array([3.0, 4.0])), P(np.ones(1), None)]

    class Ok:
        def parameters(self):
            return [P(np.ones(2), np.array([3.0, 4.0])), P(np.ones(1), np.array([12.0]))]

    assert math.isnan(per_layer_gradient_norms(Single())["0:Single"])
    assert per_layer_gradient_norms(Ok()) == {"0:Ok": 13.0}
    with pytest.raises(ValueError, match="no parameters"):
        per_layer_gradient_norms(Sequential(Tanh(), ReLU()))
