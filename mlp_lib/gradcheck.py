"""Gradient checking: compare an analytic gradient with finite differences.

A backward pass is easy to get subtly wrong; the centered difference

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2 h)

is slow (two evaluations of ``f`` per input element) but needs nothing except
``f`` itself, so it is an independent check. Its error is O(h^2) from the
Taylor expansion plus O(eps / h) from rounding; with float64 (eps ~ 1e-16)
and h = 1e-5 both are around 1e-10 to 1e-11. In float32 (eps ~ 1e-7) the
rounding term alone is ~1e-2, which is why these functions require float64.

Reading :func:`rel_error` (the scale of CS231n's notes):

* below 1e-7: the gradients agree; expected for a smooth function in float64;
* 1e-7 to 1e-4: suspicious, unless ``f`` has kinks (ReLU, max) near the inputs;
* 1e-4 to 1e-2: probably wrong, or an input sits on a kink;
* above 1e-2: the analytic gradient is wrong.

Chapter 3.
"""
from __future__ import annotations

import numbers

import numpy as np

from mlp_lib._checks import expect_shape, float_array, positive

__all__ = ["numerical_gradient", "numerical_gradient_array", "rel_error"]


def _float64_input(x) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array (it is perturbed in place), got {type(x).__name__}")
    x = float_array("x", x)
    if x.dtype != np.float64:
        raise TypeError(f"x must be float64, got {x.dtype}: finite differences in float32 "
                        "lose about half the digits to rounding (cast with x.astype(np.float64))")
    if not x.flags.writeable:
        raise ValueError("x must be writeable: it is perturbed in place (and restored)")
    return x


def _scalar(value) -> float:
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(())[()]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"f must return a real scalar, got {type(value).__name__}")
    return float(value)


def _centered_differences(x, h, value_of, difference):
    """``grad[i] = difference(value_of(x + h e_i), value_of(x - h e_i)) / (2 h)`` for every index i.

    Each element of ``x`` is perturbed in place by +h and -h and then restored
    exactly (also when evaluating raises), so the function may close over ``x``.
    """
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        try:
            x[ix] = old + h
            plus = value_of(x)
            x[ix] = old - h
            minus = value_of(x)
        finally:
            x[ix] = old
        grad[ix] = difference(plus, minus) / (2.0 * h)
    return grad


def numerical_gradient(f, x, h=1e-5):
    """Centered-difference gradient of a scalar function.

    Shapes: x (any, float64) -> grad (same as x); ``f(x)`` returns a scalar.
    Each element of ``x`` is perturbed in place by +h and -h and then restored
    exactly (also when ``f`` raises), so ``f`` may close over ``x``. Chapter 3.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    x = _float64_input(x)
    h = positive("h", h)
    return _centered_differences(x, h, lambda x: _scalar(f(x)), lambda plus, minus: plus - minus)


def numerical_gradient_array(f, x, dout, h=1e-5):
    """Centered-difference gradient of ``sum(f(x) * dout)`` for array-valued ``f``.

    Shapes: x (any, float64), dout (the shape of ``f(x)``) -> dx (same as x).
    This is what a backward pass computes from the upstream gradient ``dout``:
    ``dx_i = sum_j dout_j * df_j/dx_i``. ``x`` is restored exactly after each
    perturbation. Chapter 3.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    x = _float64_input(x)
    dout = float_array("dout", dout)
    h = positive("h", h)

    def value_of(x):
        # a copy: f may return a view of x or reuse an output buffer
        return np.array(f(x), dtype=np.float64, copy=True)

    def difference(plus, minus):
        expect_shape("dout", dout, plus.shape)
        return np.sum((plus - minus) * dout)

    return _centered_differences(x, h, value_of, difference)


def rel_error(a, b):
    """Largest elementwise relative error ``max |a - b| / max(1e-8, |a| + |b|)``.

    Shapes: a (any), b (same) -> float. The 1e-8 floor keeps elements where both
    are (near) zero from dividing by zero. See the module docstring for how to
    read the value (below 1e-7 good in float64, above 1e-2 wrong). Chapter 3.
    """
    a = np.asarray(float_array("a", a), dtype=np.float64)
    b = np.asarray(float_array("b", b), dtype=np.float64)
    expect_shape("b", b, a.shape)
    if a.size == 0:
        raise ValueError("a and b are empty; there is no error to measure")
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
