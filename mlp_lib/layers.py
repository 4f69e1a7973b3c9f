"""Layers of the functional core: linear map, activations, softmax.

Every layer is a pair in the style of CS231n:

* ``name_forward(x, ...) -> (out, cache)`` computes the output and keeps in
  ``cache`` exactly what the backward pass needs;
* ``name_backward(dout, cache) -> dx`` (``linear_backward`` returns
  ``(dx, dW, db)``) turns the upstream gradient ``dout = dL/dout`` into the
  gradient with respect to the forward's array arguments.

Backward never mutates ``dout`` or the cache. Shapes follow mlp_lib's
conventions: a batch ``x`` is (N, D), a weight ``W`` is (D_in, D_out) and a
bias ``b`` is (D_out,); activations are elementwise and accept any shape.
float32 and float64 are preserved (constants below are Python floats, which
never upcast a float32 array).

Speed: these functions are benchmarked against torch, so they avoid needless
passes over the data. One trick recurs: ``np.where(x > 0, a, b)`` is several
times slower than arithmetic when the mask is unpredictable (about half of a
layer's pre-activations are positive), so piecewise formulas multiply by
boolean masks instead, in a way that stays exact (one of two terms is 0).

Each activation also exists as a plain callable (``sigmoid(x)``, ``relu(x)``,
...) and as its derivative (``sigmoid_grad(x)``, ``relu_grad(x)``, ...), which
the book uses for plots. Every formula, including the value used at a kink,
follows torch, which is the oracle of the tests.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import erf, expit

from mlp_lib._checks import (expect_shape, float_array, integer, one_of, positive, real_number, same_dtype,
                             upstream_gradient)

__all__ = [
    "linear_forward", "linear_backward",
    "sigmoid_forward", "sigmoid_backward", "sigmoid", "sigmoid_grad",
    "tanh_forward", "tanh_backward", "tanh", "tanh_grad",
    "relu_forward", "relu_backward", "relu", "relu_grad",
    "leaky_relu_forward", "leaky_relu_backward", "leaky_relu", "leaky_relu_grad",
    "elu_forward", "elu_backward", "elu", "elu_grad",
    "softplus_forward", "softplus_backward", "softplus", "softplus_grad",
    "silu_forward", "silu_backward", "silu", "silu_grad",
    "gelu_forward", "gelu_backward", "gelu", "gelu_grad",
    "softmax", "log_softmax", "softmax_forward", "softmax_backward",
    "log_softmax_forward", "log_softmax_backward",
]

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_KAPPA = 0.044715


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def _unpack(cache, size: int, producer: str) -> tuple:
    """The cache tuple made by ``producer``; a clear error for anything else."""
    if not isinstance(cache, tuple) or len(cache) != size:
        raise TypeError(f"cache must be the tuple returned by {producer}, got {type(cache).__name__}")
    return cache


def _upstream(dout, like: np.ndarray) -> np.ndarray:
    """``dout`` checked against the forward output (or input) it has the shape and dtype of."""
    return upstream_gradient(dout, shape=like.shape, dtype=like.dtype)


def _axis(axis, ndim: int) -> int:
    axis = integer("axis", axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis must be in [-{ndim}, {ndim}) for an input with {ndim} dimensions, got {axis}")
    return axis % ndim


# --------------------------------------------------------------------------
# linear
# --------------------------------------------------------------------------

def linear_forward(x, W, b):
    """Affine map ``out = x W + b``.

    Shapes: x (N, D_in), W (D_in, D_out), b (D_out,) or None -> out (N, D_out).
    Returns ``(out, cache)`` with ``cache = (x, W, b)``. Chapter 1.

    ``W`` is stored as (D_in, D_out) so that a batch multiplies from the left;
    torch's ``nn.Linear.weight`` is the transpose (see :mod:`mlp_lib.interop`).
    ``b=None`` is a layer without bias (torch's ``bias=False``).
    """
    x = float_array("x", x, ndim=2)
    W = float_array("W", W, ndim=2)
    expect_shape("W", W, (x.shape[1], None))
    if b is None:
        same_dtype(x=x, W=W)
    else:
        b = float_array("b", b, ndim=1)
        expect_shape("b", b, (W.shape[1],))
        same_dtype(x=x, W=W, b=b)
    return _linear(x, W, b), (x, W, b)


def linear_backward(dout, cache):
    """Gradients of the affine map ``out = x W + b``.

    Shapes: dout (N, D_out) -> dx (N, D_in), dW (D_in, D_out), db (D_out,)
    (``db`` is None for a layer without bias). Chapter 3::

        dx = dout W^T,    dW = x^T dout,    db = sum_n dout[n]

    (the bias is added to every row, so its gradient collects every row).
    """
    x, W, b = _unpack(cache, 3, "linear_forward")
    dout = upstream_gradient(dout, shape=(x.shape[0], W.shape[1]), dtype=x.dtype)
    return _linear_grads(dout, x, W, b)


# The two formulas, unchecked. linear_forward/linear_backward check their
# arguments and call them; modules.Linear checks its input once per call and
# calls them too, without re-scanning the layer's own weights for NaN on every
# step (for a (784, 256) weight that scan costs as much as the bias and ReLU).

def _linear(x, W, b):
    """``x W + b`` (b may be None)."""
    out = x @ W
    if b is not None:
        out += b  # in place on the fresh product: no second (N, D_out) array
    return out


def _linear_grads(dout, x, W, b, *, input_grad=True):
    """``(dx, dW, db)`` of ``x W + b``; dx is None without ``input_grad``, db without a bias."""
    dW = x.T @ dout
    db = None if b is None else dout.sum(axis=0)
    dx = dout @ W.T if input_grad else None
    return dx, dW, db


# --------------------------------------------------------------------------
# sigmoid and tanh (Chapter 1)
# --------------------------------------------------------------------------

def sigmoid_forward(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, elementwise.

    Shapes: x (any) -> out (same). ``cache = (out,)``. Chapter 1.

    Stable for large |x|: the naive formula overflows ``exp(-x)`` for
    x < -709 (float64); ``scipy.special.expit`` evaluates ``exp(x) / (1 + exp(x))``
    for x < 0 and ``1 / (1 + exp(-x))`` otherwise, so ``exp`` only ever sees
    non-positive arguments.
    """
    x = float_array("x", x)
    out = expit(x)
    return out, (out,)


def sigmoid_backward(dout, cache):
    """Shapes: dout (any) -> dx (same). ``sigmoid' = s (1 - s)`` from the cached output. Chapter 3."""
    (out,) = _unpack(cache, 1, "sigmoid_forward")
    dout = _upstream(dout, out)
    return dout * (out * (1.0 - out))


def sigmoid(x):
    """Shapes: x (any) -> same. The sigmoid as a plain function. Chapter 1."""
    return sigmoid_forward(x)[0]


def sigmoid_grad(x):
    """Shapes: x (any) -> same. Derivative ``s (1 - s)`` of the sigmoid at x. Chapter 1."""
    s = sigmoid(x)
    return s * (1.0 - s)


def tanh_forward(x):
    """Hyperbolic tangent, elementwise. Shapes: x (any) -> out (same). ``cache = (out,)``. Chapter 1."""
    x = float_array("x", x)
    out = np.tanh(x)
    return out, (out,)


def tanh_backward(dout, cache):
    """Shapes: dout (any) -> dx (same). ``tanh' = 1 - tanh^2`` from the cached output. Chapter 3."""
    (out,) = _unpack(cache, 1, "tanh_forward")
    dout = _upstream(dout, out)
    return dout * (1.0 - out * out)


def tanh(x):
    """Shapes: x (any) -> same. tanh as a plain function. Chapter 1."""
    return tanh_forward(x)[0]


def tanh_grad(x):
    """Shapes: x (any) -> same. Derivative ``1 - tanh(x)^2``. Chapter 1."""
    t = tanh(x)
    return 1.0 - t * t


# --------------------------------------------------------------------------
# ReLU and its variants (ReLU: Chapter 1; variants: Chapter 5)
# --------------------------------------------------------------------------

def relu_forward(x):
    """Rectified linear unit ``max(x, 0)``. Shapes: x (any) -> out (same). ``cache = (out,)``. Chapter 1."""
    x = float_array("x", x)
    out = np.maximum(x, 0.0)
    return out, (out,)


def relu_backward(dout, cache):
    """Shapes: dout (any) -> dx (same). Passes dout where the output is > 0.

    At x = 0 the derivative is taken to be 0, as in torch. Chapter 3.
    """
    (out,) = _unpack(cache, 1, "relu_forward")
    dout = _upstream(dout, out)
    # Multiplying by the 0/1 mask: np.where on random signs is several times slower.
    return np.multiply(dout, out > 0, dtype=out.dtype)


def relu(x):
    """Shapes: x (any) -> same. ReLU as a plain function. Chapter 1."""
    return relu_forward(x)[0]


def relu_grad(x):
    """Shapes: x (any) -> same. 1 where x > 0, else 0 (0 at the kink, like torch). Chapter 1."""
    x = float_array("x", x)
    return (x > 0).astype(x.dtype)


def leaky_relu_forward(x, *, negative_slope=0.01):
    """Leaky ReLU: ``x`` for x > 0, ``negative_slope * x`` otherwise.

    Shapes: x (any) -> out (same). ``cache = (x, negative_slope)``. Chapter 5.
    """
    x = float_array("x", x)
    slope = positive("negative_slope", negative_slope, allow_zero=True)
    out = np.multiply(x, slope, out=np.empty_like(x))  # out=: an array even for 0-d x
    # for x > 0 the identity is the larger of the two when slope <= 1, the smaller when slope > 1
    (np.maximum if slope <= 1.0 else np.minimum)(x, out, out=out)
    return out, (x, slope)


def _two_slopes(x, negative_slope):
    """1 where x > 0, ``negative_slope`` where x <= 0 (exact: each element adds a 0)."""
    local = np.multiply(x <= 0, negative_slope, dtype=x.dtype)
    local += x > 0
    return local


def leaky_relu_backward(dout, cache):
    """Shapes: dout (any) -> dx (same). Slope 1 for x > 0, ``negative_slope`` for x <= 0 (torch). Chapter 5."""
    x, slope = _unpack(cache, 2, "leaky_relu_forward")
    dout = _upstream(dout, x)
    dx = _two_slopes(x, slope)
    dx *= dout
    return dx


def leaky_relu(x, *, negative_slope=0.01):
    """Shapes: x (any) -> same. Leaky ReLU as a plain function. Chapter 5."""
    return leaky_relu_forward(x, negative_slope=negative_slope)[0]


def leaky_relu_grad(x, *, negative_slope=0.01):
    """Shapes: x (any) -> same. 1 where x > 0, else ``negative_slope``. Chapter 5."""
    x = float_array("x", x)
    return _two_slopes(x, positive("negative_slope", negative_slope, allow_zero=True))


def elu_forward(x, *, alpha=1.0):
    """Exponential linear unit: ``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise.

    Shapes: x (any) -> out (same). ``cache = (x, alpha)``. Chapter 5.
    ``expm1`` keeps precision for small |x|; it only sees x <= 0, so it never overflows.
    """
    x = float_array("x", x)
    alpha = positive("alpha", alpha, allow_zero=True)
    out = np.minimum(x, 0.0, out=np.empty_like(x))  # out=: an array even for 0-d x
    np.expm1(out, out=out)
    out *= alpha
    out += np.maximum(x, 0.0)  # exactly one of the two terms is nonzero
    return out, (x, alpha)


def _elu_local(x, alpha):
    # alpha * exp(x) from the input, as torch does: out + alpha would cancel for x << 0.
    local = np.minimum(x, 0.0, out=np.empty_like(x))
    np.exp(local, out=local)
    local *= alpha
    local *= x <= 0
    local += x > 0
    return local


def elu_backward(dout, cache):
    """Shapes: dout (any) -> dx (same). Slope 1 for x > 0, ``alpha * exp(x)`` for x <= 0 (torch). Chapter 5."""
    x, alpha = _unpack(cache, 2, "elu_forward")
    dout = _upstream(dout, x)
    return dout * _elu_local(x, alpha)


def elu(x, *, alpha=1.0):
    """Shapes: x (any) -> same. ELU as a plain function. Chapter 5."""
    return elu_forward(x, alpha=alpha)[0]


def elu_grad(x, *, alpha=1.0):
    """Shapes: x (any) -> same. Derivative of the ELU (``alpha`` at x = 0, like torch). Chapter 5."""
    x = float_array("x", x)
    return _elu_local(x, positive("alpha", alpha, allow_zero=True))


def softplus_forward(x, *, beta=1.0, threshold=20.0):
    """Softplus ``log(1 + exp(beta x)) / beta``, reverting to ``x`` where ``beta x > threshold``.

    Shapes: x (any) -> out (same). ``cache = (x, beta, threshold)``. Chapter 5.
    torch's formula: above the threshold the two differ by less than
    ``exp(-threshold)``. Below it, ``logaddexp(0, beta x)`` computes
    ``log(1 + exp(beta x))`` without overflow for any input.
    """
    x = float_array("x", x)
    beta = positive("beta", beta)
    threshold = real_number("threshold", threshold)
    bx = x * beta
    out = np.where(bx > threshold, x, np.logaddexp(0.0, bx) / beta)
    return out, (x, beta, threshold)


def _softplus_local(x, beta, threshold):
    bx = x * beta
    return np.where(bx > threshold, 1.0, expit(bx)).astype(x.dtype, copy=False)


def softplus_backward(dout, cache):
    """Shapes: dout (any) -> dx (same). Derivative ``sigmoid(beta x)``, 1 above the threshold. Chapter 5."""
    x, beta, threshold = _unpack(cache, 3, "softplus_forward")
    dout = _upstream(dout, x)
    return dout * _softplus_local(x, beta, threshold)


def softplus(x, *, beta=1.0, threshold=20.0):
    """Shapes: x (any) -> same. Softplus as a plain function. Chapter 5."""
    return softplus_forward(x, beta=beta, threshold=threshold)[0]


def softplus_grad(x, *, beta=1.0, threshold=20.0):
    """Shapes: x (any) -> same. Derivative of softplus: ``sigmoid(beta x)``. Chapter 5."""
    x = float_array("x", x)
    return _softplus_local(x, positive("beta", beta), real_number("threshold", threshold))


def silu_forward(x):
    """SiLU (swish) ``x * sigmoid(x)``. Shapes: x (any) -> out (same). ``cache = (x, sigmoid(x))``. Chapter 5."""
    x = float_array("x", x)
    s = expit(x)
    return x * s, (x, s)


def _silu_local(x, s):
    return s * (1.0 + x * (1.0 - s))


def silu_backward(dout, cache):
    """Shapes: dout (any) -> dx (same). Derivative ``s (1 + x (1 - s))`` with s = sigmoid(x). Chapter 5."""
    x, s = _unpack(cache, 2, "silu_forward")
    dout = _upstream(dout, x)
    return dout * _silu_local(x, s)


def silu(x):
    """Shapes: x (any) -> same. SiLU as a plain function. Chapter 5."""
    return silu_forward(x)[0]


def silu_grad(x):
    """Shapes: x (any) -> same. Derivative of SiLU. Chapter 5."""
    x, s = silu_forward(x)[1]
    return _silu_local(x, s)


def _gelu_tanh_inner(x):
    return _SQRT_2_OVER_PI * (x + _GELU_KAPPA * (x * x * x))


def gelu_forward(x, *, approximate="none"):
    """GELU ``x * Phi(x)`` with Phi the standard normal CDF.

    Shapes: x (any) -> out (same). ``cache = (x, approximate)``. Chapter 5.
    ``approximate="none"``: Phi(x) = (1 + erf(x / sqrt 2)) / 2, exact.
    ``approximate="tanh"``: Phi(x) ~ (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2,
    the approximation of Hendrycks & Gimpel, as in torch.
    """
    x = float_array("x", x)
    one_of("approximate", approximate, ("none", "tanh"))
    if approximate == "none":
        out = x * (0.5 * (1.0 + erf(x * _SQRT_HALF)))
    else:
        out = (0.5 * x) * (1.0 + np.tanh(_gelu_tanh_inner(x)))
    return out, (x, approximate)


def _gelu_local(x, approximate):
    if approximate == "none":
        cdf = 0.5 * (1.0 + erf(x * _SQRT_HALF))
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * (x * x))
        return cdf + x * pdf
    t = np.tanh(_gelu_tanh_inner(x))
    dinner = _SQRT_2_OVER_PI * (1.0 + (3.0 * _GELU_KAPPA) * (x * x))
    return 0.5 * (1.0 + t) + (0.5 * x) * (1.0 - t * t) * dinner


def gelu_backward(dout, cache):
    """Shapes: dout (any) -> dx (same). ``Phi(x) + x phi(x)`` (or the tanh form's derivative). Chapter 5."""
    x, approximate = _unpack(cache, 2, "gelu_forward")
    dout = _upstream(dout, x)
    return dout * _gelu_local(x, approximate)


def gelu(x, *, approximate="none"):
    """Shapes: x (any) -> same. GELU as a plain function. Chapter 5."""
    return gelu_forward(x, approximate=approximate)[0]


def gelu_grad(x, *, approximate="none"):
    """Shapes: x (any) -> same. Derivative of GELU. Chapter 5."""
    x = float_array("x", x)
    return _gelu_local(x, one_of("approximate", approximate, ("none", "tanh")))


# --------------------------------------------------------------------------
# softmax and log-softmax (forward: Chapter 1, backward: Chapter 3)
# --------------------------------------------------------------------------

def softmax_forward(x, *, axis=-1):
    """Softmax along ``axis``: ``exp(x) / sum(exp(x))``.

    Shapes: x (any, e.g. (N, C)) -> out (same), each slice along ``axis``
    sums to 1. ``cache = (out, axis)``. Chapter 1.
    Subtracting the maximum first changes nothing mathematically and keeps
    ``exp`` in (0, 1], so logits of size 1e4 do not overflow.
    """
    x = float_array("x", x)
    axis = _axis(axis, x.ndim)
    out = x - x.max(axis=axis, keepdims=True)
    np.exp(out, out=out)  # in place on our own temporary
    out /= out.sum(axis=axis, keepdims=True)
    return out, (out, axis)


def softmax_backward(dout, cache):
    """Shapes: dout (same as out) -> dx (same). Chapter 3.

    The Jacobian-vector product ``dx = y * (dout - sum(dout * y))`` (sum along
    ``axis``), without building the (C, C) Jacobian ``diag(y) - y y^T``.
    """
    out, axis = _unpack(cache, 2, "softmax_forward")
    dout = _upstream(dout, out)
    return out * (dout - (dout * out).sum(axis=axis, keepdims=True))


def softmax(x, *, axis=-1):
    """Shapes: x (any) -> same. Stable softmax along ``axis`` as a plain function. Chapter 1."""
    return softmax_forward(x, axis=axis)[0]


def log_softmax_forward(x, *, axis=-1):
    """Log-softmax along ``axis``: ``x - log(sum(exp(x)))``.

    Shapes: x (any, e.g. (N, C)) -> out (same). ``cache = (out, axis)``. Chapter 1.
    Computed as ``z - log(sum(exp(z)))`` with ``z = x - max(x)``: stable for
    large logits, and exact for very negative log-probabilities where
    ``log(softmax(x))`` would give ``log(0) = -inf``.
    """
    x = float_array("x", x)
    axis = _axis(axis, x.ndim)
    z = x - x.max(axis=axis, keepdims=True)
    out = z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return out, (out, axis)


def log_softmax_backward(dout, cache):
    """Shapes: dout (same as out) -> dx (same). ``dx = dout - softmax * sum(dout)`` along ``axis``. Chapter 3."""
    out, axis = _unpack(cache, 2, "log_softmax_forward")
    dout = _upstream(dout, out)
    return dout - np.exp(out) * dout.sum(axis=axis, keepdims=True)


def log_softmax(x, *, axis=-1):
    """Shapes: x (any) -> same. Stable log-softmax along ``axis`` as a plain function. Chapter 1."""
    return log_softmax_forward(x, axis=axis)[0]
