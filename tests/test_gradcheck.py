"""mlp_lib.gradcheck: finite differences agree with torch autograd, restore their input, and
rel_error follows CS231n's definition."""
import numpy as np
import pytest
import torch

from conftest import to_torch
from mlp_lib.gradcheck import numerical_gradient, numerical_gradient_array, rel_error

SEEDS = [0, 1, 2]


def smooth_scalar(x):
    """A smooth, non-separable scalar function, written once for numpy and torch."""
    lib = torch if isinstance(x, torch.Tensor) else np
    return (lib.sin(x) * x**2).sum() + lib.log(1.0 + (x**2).sum())


def smooth_array(x, A):
    """A smooth array-valued function (N, D) -> (N, M): every output depends on many inputs."""
    lib = torch if isinstance(x, torch.Tensor) else np
    return lib.tanh(x @ A) * lib.exp(-0.1 * x).sum()


@pytest.mark.parametrize("seed", SEEDS)
def test_numerical_gradient_matches_torch_autograd(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(tuple(int(d) for d in rng.integers(1, 6, size=2)))
    numeric = numerical_gradient(lambda v: float(smooth_scalar(v)), x)
    xt = to_torch(x, requires_grad=True)
    smooth_scalar(xt).backward()
    assert numeric.shape == x.shape and numeric.dtype == np.float64
    assert rel_error(numeric, xt.grad.numpy()) < 1e-7


@pytest.mark.parametrize("seed", SEEDS)
def test_numerical_gradient_array_matches_torch_vector_jacobian_product(seed):
    rng = np.random.default_rng(seed)
    n, d, m = (int(v) for v in rng.integers(1, 6, size=3))
    x, A = rng.standard_normal((n, d)), rng.standard_normal((d, m))
    dout = rng.standard_normal((n, m))
    numeric = numerical_gradient_array(lambda v: smooth_array(v, A), x, dout)
    xt = to_torch(x, requires_grad=True)
    smooth_array(xt, to_torch(A)).backward(to_torch(dout))
    assert numeric.shape == x.shape
    assert rel_error(numeric, xt.grad.numpy()) < 1e-7


def test_numerical_gradient_array_of_the_identity_is_dout(rng):
    # f returns x itself (a view that the next perturbation changes): the result must not alias it
    x, dout = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    assert rel_error(numerical_gradient_array(lambda v: v, x, dout), dout) < 1e-9


def test_numerical_gradient_works_on_a_0d_array():
    x = np.array(0.7)
    numeric = numerical_gradient(lambda v: float(np.sin(v)), x)
    xt = to_torch(x, requires_grad=True)
    torch.sin(xt).backward()
    assert rel_error(numeric, xt.grad.numpy()) < 1e-9


def test_numerical_gradients_restore_x_exactly(rng):
    x = rng.standard_normal((4, 3))
    before = x.copy()
    numerical_gradient(lambda v: float(smooth_scalar(v)), x)
    np.testing.assert_array_equal(x, before, strict=True)
    numerical_gradient_array(lambda v: np.tanh(v), x, rng.standard_normal((4, 3)))
    np.testing.assert_array_equal(x, before, strict=True)


def test_numerical_gradient_perturbs_in_place_so_closures_over_x_see_it(rng):
    # the CS231n pattern: f ignores its argument and reads the array it closed over
    W = rng.standard_normal((3, 2))
    numeric = numerical_gradient(lambda _: float((W**3).sum()), W)
    Wt = to_torch(W, requires_grad=True)
    (Wt**3).sum().backward()
    assert rel_error(numeric, Wt.grad.numpy()) < 1e-7


def test_x_is_restored_when_f_raises(rng):
    x = rng.standard_normal(5)
    before = x.copy()
    calls = []

    def failing(v):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("boom")
        return float(v.sum())

    with pytest.raises(RuntimeError, match="boom"):
        numerical_gradient(failing, x)
    np.testing.assert_array_equal(x, before, strict=True)
    calls.clear()
    with pytest.raises(RuntimeError, match="boom"):
        numerical_gradient_array(lambda v: np.array([failing(v)]), x, np.array([0.5]))
    np.testing.assert_array_equal(x, before, strict=True)


def test_finite_differences_expose_a_wrong_analytic_gradient(rng):
    x = rng.standard_normal((4, 3))
    right = 2.0 * x                  # d/dx sum(x^2)
    wrong = x                        # a forgotten factor of 2
    numeric = numerical_gradient(lambda v: float((v**2).sum()), x)
    assert rel_error(right, numeric) < 1e-7
    assert rel_error(wrong, numeric) > 1e-2


# --------------------------------------------------------------------------
# rel_error
# --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_rel_error_matches_cs231n_definition_computed_by_torch(seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((5, 4))
    b = a + 1e-6 * rng.standard_normal((5, 4))
    b[0, 0], a[0, 0] = 3e-9, 0.0  # near zero: the 1e-8 floor of the denominator applies
    at, bt = to_torch(a), to_torch(b)
    expected = ((at - bt).abs() / torch.clamp(at.abs() + bt.abs(), min=1e-8)).max().item()
    assert type(rel_error(a, b)) is float
    assert rel_error(a, b) == pytest.approx(expected, rel=1e-12)
    assert rel_error(b, a) == rel_error(a, b)


def test_rel_error_is_zero_for_equal_and_one_for_opposite_arrays(rng):
    a = rng.standard_normal(7)
    assert rel_error(a, a.copy()) == 0.0
    assert rel_error(a, -a) == 1.0
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0


def test_rel_error_accepts_float32_and_scalars(rng):
    a = rng.standard_normal(4).astype(np.float32)
    assert rel_error(a, a) == 0.0
    assert rel_error(1.0, 1.0) == 0.0


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------

def test_gradient_checks_require_a_float64_array(rng):
    f = lambda v: float(v.sum())  # noqa: E731
    with pytest.raises(TypeError, match="x must be float64"):
        numerical_gradient(f, rng.standard_normal(3).astype(np.float32))
    with pytest.raises(TypeError, match="x must be a float32 or float64"):
        numerical_gradient(f, np.arange(3))
    with pytest.raises(TypeError, match="x must be a numpy array"):
        numerical_gradient(f, [1.0, 2.0])
    with pytest.raises(TypeError, match="x must be float64"):
        numerical_gradient_array(lambda v: v, rng.standard_normal(3).astype(np.float32), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        numerical_gradient(f, np.array([1.0, np.nan]))
    readonly = rng.standard_normal(3)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="x must be writeable"):
        numerical_gradient(f, readonly)


def test_gradient_checks_reject_bad_f_h_and_dout(rng):
    x = rng.standard_normal(3)
    with pytest.raises(TypeError, match="f must be callable"):
        numerical_gradient(3.0, x)
    with pytest.raises(TypeError, match="f must be callable"):
        numerical_gradient_array(None, x, np.ones(3))
    with pytest.raises(TypeError, match="f must return a real scalar"):
        numerical_gradient(lambda v: v * 2, x)
    with pytest.raises(ValueError, match="h must be > 0"):
        numerical_gradient(lambda v: float(v.sum()), x, h=0.0)
    with pytest.raises(ValueError, match="h must be > 0"):
        numerical_gradient_array(lambda v: v, x, np.ones(3), h=-1e-5)
    with pytest.raises(ValueError, match=r"dout must have shape \(3,\), got shape \(4,\)"):
        numerical_gradient_array(lambda v: v, x, rng.standard_normal(4))
    with pytest.raises(TypeError, match="dout must be a float32 or float64"):
        numerical_gradient_array(lambda v: v, x, np.arange(3))


def test_rel_error_rejects_mismatched_or_nonfinite_input(rng):
    with pytest.raises(ValueError, match=r"b must have shape \(3,\), got shape \(3, 1\)"):
        rel_error(np.zeros(3), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="a contains NaN or inf"):
        rel_error(np.array([np.nan]), np.array([1.0]))
    with pytest.raises(ValueError, match="empty"):
        rel_error(np.zeros(0), np.zeros(0))
    with pytest.raises(TypeError, match="b must be a float32 or float64"):
        rel_error(np.zeros(3), np.zeros(3, dtype=int))
