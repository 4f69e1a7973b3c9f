"""mlp_lib.modules against the same torch model (built with interop.to_torch)."""
import numpy as np
import pytest
import torch

from mlp_lib import interop
from mlp_lib import modules as M

ACTIVATIONS = [
    lambda: M.Sigmoid(), lambda: M.Tanh(), lambda: M.ReLU(), lambda: M.LeakyReLU(0.2), lambda: M.ELU(0.7),
    lambda: M.Softplus(beta=2.0, threshold=5.0), lambda: M.SiLU(), lambda: M.GELU(), lambda: M.GELU("tanh"),
]
ACT_IDS = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "silu", "gelu", "gelu_tanh"]


class _FixedMask(torch.nn.Module):
    """torch stand-in for a Dropout layer, applying mlp_lib's mask (so both sides drop the same units)."""

    def __init__(self, mask, p):
        super().__init__()
        self.mask, self.scale = torch.tensor(mask.astype(np.float64)), 1.0 / (1.0 - p)

    def forward(self, x):
        return x * self.mask * self.scale


def _mlp(make_act, rng, dims, p=0.3):
    d0, d1, d2, c = dims
    return M.Sequential(
        M.Linear(d0, d1, rng=rng), M.BatchNorm1d(d1), make_act(), M.Dropout(p, rng=rng),
        M.Linear(d1, d2, rng=rng), make_act(), M.Linear(d2, c, rng=rng),
    )


def _random_dims(rng):
    return tuple(int(v) for v in rng.integers(3, 9, size=4))


def _use_same_masks(model, tmodel):
    """In training mode, make the torch twin's Dropout apply the mask mlp_lib drew in its last forward."""
    for i, layer in enumerate(model):
        if isinstance(layer, M.Dropout) and model.training:
            tmodel[i] = _FixedMask(layer._cache["mask"], layer.p)
    return tmodel


def _assert_grads_match(model, tmodel):
    tgrads = {name: p.grad.detach().numpy() for name, p in tmodel.named_parameters()}
    ours = dict(model.named_parameters())
    assert ours.keys() == tgrads.keys()
    for name, p in ours.items():
        expected = interop.weight_from_torch(tgrads[name]) if p.data.ndim == 2 else tgrads[name]
        np.testing.assert_allclose(p.grad, expected, rtol=1e-7, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("make_act", ACTIVATIONS, ids=ACT_IDS)
def test_sequential_mlp_forward_and_backward_match_torch_autograd(make_act, rng):
    dims = _random_dims(rng)
    model = _mlp(make_act, rng, dims)
    n = int(rng.integers(6, 15))
    x = rng.standard_normal((n, dims[0]))
    tmodel = interop.to_torch(model)  # before the forward pass, which moves the running statistics
    out = model(x)
    _use_same_masks(model, tmodel)
    xt = torch.tensor(x, requires_grad=True)
    tout = tmodel(xt)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-7, atol=1e-12)

    dout = rng.standard_normal(out.shape)
    dx = model.backward(dout)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-7, atol=1e-12)
    _assert_grads_match(model, tmodel)
    # the running statistics were updated exactly as torch's
    np.testing.assert_allclose(model[1].running_mean, tmodel[1].running_mean.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(model[1].running_var, tmodel[1].running_var.numpy(), rtol=1e-10)


@pytest.mark.parametrize("make_act", ACTIVATIONS[:3], ids=ACT_IDS[:3])
def test_eval_mode_uses_running_statistics_and_no_dropout_like_torch(make_act, rng):
    dims = _random_dims(rng)
    model = _mlp(make_act, rng, dims, p=0.5)
    for _ in range(3):  # move the running statistics away from (0, 1)
        model(rng.standard_normal((10, dims[0])) * 2 + 1)
    model.eval()
    assert not any(m.training for m in model.modules())
    tmodel = interop.to_torch(model)
    assert not tmodel.training and isinstance(tmodel[3], torch.nn.Dropout)
    x = rng.standard_normal((7, dims[0]))
    xt = torch.tensor(x, requires_grad=True)
    out, tout = model(x), tmodel(xt)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-7, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx = model.backward(dout)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-7, atol=1e-12)
    _assert_grads_match(model, tmodel)
    running = model[1].running_mean.copy()
    model(x)
    np.testing.assert_array_equal(model[1].running_mean, running)  # eval leaves them alone


def test_train_and_eval_switch_every_nested_module(rng):
    model = M.Sequential(M.Linear(3, 3, rng=rng), M.Residual(M.Sequential(M.BatchNorm1d(3), M.Dropout(0.1, rng=rng))))
    assert model.eval() is model
    assert [m.training for m in model.modules()] == [False] * 6
    model.train()
    assert all(m.training for m in model.modules())
    x = rng.standard_normal((4, 3))
    model.eval()
    np.testing.assert_array_equal(model(x), model(x))  # deterministic in eval mode
    model.train()
    assert not np.array_equal(model(x), model(x))  # dropout and batch statistics in training mode


def test_gradients_accumulate_over_two_backward_calls_like_torch(rng):
    model = _mlp(lambda: M.Tanh(), rng, (5, 6, 4, 3), p=0.0)
    x = rng.standard_normal((8, 5))
    tmodel = interop.to_torch(model)
    out = model(x)
    _use_same_masks(model, tmodel)
    xt = torch.tensor(x, requires_grad=True)
    tout = tmodel(xt)
    d1, d2 = rng.standard_normal(out.shape), rng.standard_normal(out.shape)
    model.backward(d1)
    dx2 = model.backward(d2)
    tout.backward(torch.tensor(d1), retain_graph=True)
    dx1_torch = xt.grad.clone()
    tout.backward(torch.tensor(d2))
    _assert_grads_match(model, tmodel)
    # dx is returned, not accumulated: the second call gives the gradient for d2 alone
    np.testing.assert_allclose(dx2, (xt.grad - dx1_torch).numpy(), rtol=1e-7, atol=1e-12)


def test_zero_grad_resets_every_gradient_and_the_next_backward_starts_fresh(rng):
    model = _mlp(lambda: M.ReLU(), rng, (4, 5, 5, 2), p=0.0)
    x, dout = rng.standard_normal((6, 4)), rng.standard_normal((6, 2))
    model(x)
    model.backward(dout)
    handed_out = {n: p.grad for n, p in model.named_parameters()}
    first = {n: g.copy() for n, g in handed_out.items()}
    assert all(np.any(g != 0) for g in first.values())
    model.zero_grad()
    for p in model.parameters():
        np.testing.assert_array_equal(p.grad, np.zeros_like(p.data))
    model(x)
    model.backward(dout)
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad, first[n])
    model.backward(dout)  # accumulates
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad, 2 * first[n])
        np.testing.assert_array_equal(handed_out[n], first[n])  # no gradient array is modified in place


def test_accumulate_grad_never_modifies_the_arrays_it_is_given(rng):
    prm = M.Parameter(rng.standard_normal((3, 2)).astype(np.float32))
    g1, g2 = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    g1_before = g1.copy()
    prm.accumulate_grad(g1)
    prm.accumulate_grad(g2)
    np.testing.assert_array_equal(g1, g1_before)
    assert prm.grad.dtype == np.float32
    np.testing.assert_allclose(prm.grad, (g1 + g2).astype(np.float32), rtol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        prm.accumulate_grad(np.ones((2, 3)))


def test_backward_without_input_grad_gives_the_same_parameter_gradients(rng):
    model = M.Sequential(M.Dropout(0.0, rng=rng), M.Linear(4, 6, rng=rng), M.ReLU(), M.Linear(6, 3, rng=rng))
    x, dout = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    model(x)
    model.backward(dout)
    full = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    assert model.backward(dout, input_grad=False) is None
    for p, g in zip(model.parameters(), full):
        np.testing.assert_array_equal(p.grad, g)


def test_residual_adds_the_skip_path_in_both_passes_like_torch(rng):
    block = M.Sequential(M.Linear(4, 4, rng=rng), M.Tanh(), M.Linear(4, 4, rng=rng))
    model = M.Sequential(M.Residual(block), M.Linear(4, 2, rng=rng))
    x = rng.standard_normal((5, 4))
    tmodel = interop.to_torch(model)
    xt = torch.tensor(x, requires_grad=True)
    out, tout = model(x), tmodel(xt)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-7, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(model.backward(dout), xt.grad.numpy(), rtol=1e-7, atol=1e-12)
    _assert_grads_match(model, tmodel)
    with pytest.raises(ValueError, match="shape"):
        M.Residual(M.Linear(4, 3, rng=rng))(x)


def test_linear_default_init_follows_torch_bounds_and_accepts_a_custom_init(rng):
    lin = M.Linear(50, 7, rng=rng)
    assert lin.weight.shape == (50, 7) and lin.bias.shape == (7,)
    bound = 1 / np.sqrt(50)
    assert np.abs(lin.weight.data).max() <= bound and np.abs(lin.bias.data).max() <= bound
    assert np.abs(lin.weight.data).max() > 0.8 * bound  # uses the whole range
    seen = []

    def init(shape, gen):
        seen.append(shape)
        return gen.standard_normal(shape)

    lin2 = M.Linear(3, 4, rng=0, init=init, dtype=np.float32)
    assert seen == [(3, 4)] and lin2.weight.dtype == np.float32
    np.testing.assert_array_equal(lin2.bias.data, np.zeros(4, np.float32))
    assert M.Linear(3, 4, rng=5, bias=False).bias is None
    with pytest.raises(ValueError, match="init returned shape"):
        M.Linear(3, 4, rng=0, init=lambda shape, gen: np.zeros((4, 3)))
    with pytest.raises(TypeError, match="rng"):
        M.Linear(3, 4, rng=None)
    with pytest.raises(TypeError):
        M.Linear(3, 4, rng=0, bais=False)


def test_float32_models_stay_float32(rng):
    model = M.Sequential(M.Linear(4, 5, rng=rng, dtype=np.float32), M.BatchNorm1d(5, dtype=np.float32),
                         M.GELU(), M.Linear(5, 2, rng=rng, dtype=np.float32))
    x = rng.standard_normal((6, 4)).astype(np.float32)
    out = model(x)
    dx = model.backward(rng.standard_normal(out.shape).astype(np.float32))
    assert out.dtype == dx.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


def test_repr_reads_like_torch(rng):
    model = M.Sequential(M.Linear(4, 8, rng=rng), M.BatchNorm1d(8), M.LeakyReLU(0.1), M.Dropout(0.25, rng=rng),
                         M.Linear(8, 3, rng=rng, bias=False))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=8, bias=True)\n"
        "  (1): BatchNorm1d(8, eps=1e-05, momentum=0.1)\n"
        "  (2): LeakyReLU(negative_slope=0.1)\n"
        "  (3): Dropout(p=0.25)\n"
        "  (4): Linear(in_features=8, out_features=3, bias=False)\n"
        ")")
    tlines = repr(interop.to_torch(model)).splitlines()
    assert tlines[1] == repr(model).splitlines()[1]  # Linear lines are identical to torch's
    assert repr(model[0].weight) == "Parameter(shape=(4, 8), dtype=float64)"


def test_sequential_supports_indexing_len_iteration_and_parameter_order(rng):
    layers = [M.Linear(2, 3, rng=rng), M.ReLU(), M.Linear(3, 1, rng=rng)]
    model = M.Sequential(*layers)
    assert len(model) == 3 and list(model) == layers and model[2] is layers[2] and model.layers == layers
    assert model[-1] is layers[2] and list(model[:2]) == layers[:2]
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert model.parameters()[0] is layers[0].weight
    with pytest.raises(TypeError, match=r"layers\[1\]"):
        M.Sequential(layers[0], lambda x: x)


def test_backward_before_forward_is_an_error(rng):
    with pytest.raises(RuntimeError, match="before forward"):
        M.Linear(2, 2, rng=rng).backward(np.ones((1, 2)))
    with pytest.raises(RuntimeError, match="before forward"):
        M.ReLU().backward(np.ones((1, 2)))


def test_state_dict_round_trip_restores_weights_and_running_statistics(rng):
    model = _mlp(lambda: M.ReLU(), rng, (4, 6, 5, 3), p=0.0)
    x = rng.standard_normal((8, 4))
    model(x)
    saved = model.state_dict()
    tkeys = [k for k in interop.to_torch(model).state_dict() if not k.endswith("num_batches_tracked")]
    assert list(saved) == tkeys
    model.eval()
    before = model(x)
    model.train()
    for p in model.parameters():
        p.data = p.data + 1.0
    model(x * 3)  # moves the running statistics
    assert not np.allclose(model.eval()(x), before)
    model.load_state_dict(saved)
    np.testing.assert_array_equal(model(x), before)
    saved["0.weight"][...] = 0.0  # the model holds copies
    assert np.any(model[0].weight.data != 0)
    with pytest.raises(ValueError, match="missing"):
        model.load_state_dict({k: v for k, v in saved.items() if k != "0.bias"})
    with pytest.raises(ValueError, match="shape"):
        model.load_state_dict(saved | {"0.weight": np.zeros((6, 4))})


def test_interop_round_trip_preserves_every_array_and_the_output(rng):
    model = M.Sequential(M.Linear(5, 7, rng=rng), M.BatchNorm1d(7), M.SiLU(), M.Dropout(0.2, rng=rng),
                         M.Residual(M.Sequential(M.Linear(7, 7, rng=rng), M.Softplus(beta=1.5))),
                         M.Linear(7, 3, rng=rng))
    model(rng.standard_normal((9, 5)))  # non-trivial running statistics
    model.eval()
    tmodel = interop.to_torch(model)
    back = interop.from_torch(tmodel, rng=0)
    assert repr(back) == repr(model) and not back.training
    for (name, a), (tname, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert name == tname
        np.testing.assert_array_equal(a, b)
    tsd = tmodel.state_dict()
    np.testing.assert_array_equal(tsd["0.weight"].numpy(), model[0].weight.data.T)
    x = rng.standard_normal((4, 5))
    np.testing.assert_allclose(back(x), tmodel(torch.tensor(x)).detach().numpy(), rtol=1e-12)
    np.testing.assert_array_equal(back(x), model(x))
    back[0].weight.data[0, 0] += 1.0  # nothing is shared
    assert back[0].weight.data[0, 0] != model[0].weight.data[0, 0]
    with pytest.raises(ValueError, match="rng"):
        interop.from_torch(tmodel)


def test_from_torch_reproduces_a_torch_initialized_model(rng):
    torch.manual_seed(int(rng.integers(1000)))
    tmodel = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ELU(alpha=0.5), torch.nn.Linear(4, 2, bias=False))
    model = interop.from_torch(tmodel)
    x = rng.standard_normal((3, 6))
    np.testing.assert_allclose(model(x), tmodel(torch.tensor(x)).detach().numpy(), rtol=1e-12)
    with pytest.raises(TypeError, match="Conv1d"):
        interop.from_torch(torch.nn.Sequential(torch.nn.Conv1d(1, 1, 1)))


def _separable(rng, n=80, d=3, margin=0.3):
    w = rng.standard_normal(d)
    X = rng.standard_normal((4 * n, d))
    z = X @ w / np.linalg.norm(w) + 0.2
    keep = np.abs(z) > margin
    return X[keep][:n], (z[keep][:n] > 0).astype(np.int64)


@pytest.mark.parametrize("shuffle", [False, True])
def test_perceptron_mistakes_reach_zero_on_separable_data(shuffle, rng):
    X, y = _separable(rng)
    p = M.Perceptron(X.shape[1], rng=rng if shuffle else None)
    mistakes = p.fit(X, y, epochs=200, rng=rng if shuffle else None)
    assert mistakes[-1] == 0 and mistakes[0] > 0 and len(mistakes) < 200
    np.testing.assert_array_equal(p.predict(X), y)
    assert set(np.unique(p.predict(rng.standard_normal((50, 3))))) <= {0, 1}


def test_perceptron_update_rule_uses_the_bias_as_a_weight_on_a_constant_input():
    p = M.Perceptron(2, lr=0.5)
    X = np.array([[1.0, 2.0], [3.0, -1.0]])
    y = np.array([1, 0])
    # example 1: yhat = 0 (w = 0), y = 1 -> w += 0.5 * [1, 2, 1]
    # example 2: w.[3, -1, 1] = 0.5*(3 - 2 + 1) = 1 > 0 -> yhat = 1, y = 0 -> w -= 0.5 * [3, -1, 1]
    assert p.fit(X, y, epochs=1) == [2]
    np.testing.assert_allclose(p.coef, [0.5 - 1.5, 1.0 + 0.5, 0.5 - 0.5])
    np.testing.assert_allclose(p.weights, [-1.0, 1.5])
    assert p.bias == 0.0


def test_perceptron_never_separates_xor():
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    mistakes = M.Perceptron(2).fit(X, np.array([0, 1, 1, 0]), epochs=50)
    assert len(mistakes) == 50 and min(mistakes) > 0


def test_perceptron_rejects_labels_outside_zero_one():
    with pytest.raises(ValueError, match="y"):
        M.Perceptron(2).fit(np.zeros((2, 2)), np.array([-1, 1]), epochs=1)


def test_modules_reject_bad_inputs_with_clear_errors(rng):
    lin = M.Linear(3, 2, rng=rng)
    with pytest.raises(ValueError, match="NaN"):
        lin(np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        lin(np.ones((2, 4)))
    with pytest.raises(TypeError, match="float32"):
        lin(np.ones((2, 3), dtype=np.float32))
    out = lin(np.ones((2, 3)))
    with pytest.raises(ValueError, match="dout"):
        lin.backward(np.ones((2, 3)))
    with pytest.raises(TypeError, match="dout"):
        lin.backward(out.tolist())
    bn = M.BatchNorm1d(3)
    with pytest.raises(ValueError, match="at least 2 rows"):
        bn(np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        bn(np.ones((4, 2)))
    with pytest.raises(ValueError, match="p"):
        M.Dropout(1.5, rng=0)
    with pytest.raises(ValueError, match="approximate"):
        M.GELU("fast")
    with pytest.raises(ValueError, match="shape"):
        lin.weight.accumulate_grad(np.ones((2, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_module_rejects_nonfinite_input_and_keeps_its_statistics(bad, training, rng):
    bn = M.BatchNorm1d(3).train(training)
    bn(rng.standard_normal((5, 3)))
    mean, var = bn.running_mean, bn.running_var
    x = rng.standard_normal((5, 3))
    x[2, 1] = bad
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        bn(x)
    assert bn.running_mean is mean and bn.running_var is var


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_module_agrees_with_the_functional_core(training, rng):
    from mlp_lib.normalization import batchnorm_backward, batchnorm_forward

    n, d = int(rng.integers(3, 12)), int(rng.integers(2, 7))
    bn = M.BatchNorm1d(d, momentum=0.3, eps=1e-3)
    bn.weight.data, bn.bias.data = rng.standard_normal(d), rng.standard_normal(d)
    bn.running_mean, bn.running_var = rng.standard_normal(d), rng.random(d) + 0.5
    bn.train(training)
    x, dout = rng.standard_normal((n, d)) * 2 + 1, rng.standard_normal((n, d))
    out_f, cache, mean_f, var_f = batchnorm_forward(x, bn.weight.data, bn.bias.data, bn.running_mean,
                                                    bn.running_var, training=training, momentum=0.3, eps=1e-3)
    np.testing.assert_allclose(bn(x), out_f, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(bn.running_mean, mean_f, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(bn.running_var, var_f, rtol=1e-12)
    for got, want in zip((bn.backward(dout), bn.weight.grad, bn.bias.grad), batchnorm_backward(dout, cache)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_to_torch_keeps_float32(rng):
    model = M.Sequential(M.Linear(3, 4, rng=rng, dtype=np.float32), M.BatchNorm1d(4, dtype=np.float32), M.ReLU())
    tmodel = interop.to_torch(model)
    assert all(p.dtype == torch.float32 for p in tmodel.parameters())
    x = rng.standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x), tmodel(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert interop.from_torch(tmodel)[0].weight.dtype == np.float32
