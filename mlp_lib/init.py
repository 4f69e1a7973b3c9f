"""Weight initialization schemes.

Chapter 4. Shapes are mlp_lib's ``(D_in, D_out)``: ``fan_in = shape[0]`` and
``fan_out = shape[1]``. torch's ``nn.Linear`` stores the transpose
``(D_out, D_in)`` and computes the same two numbers from it, so every scheme
here draws from the same distribution as its ``torch.nn.init`` namesake applied
to the transposed weight.

Every sampler takes an explicit ``rng`` (a ``np.random.Generator`` or an int
seed) and a ``dtype`` keyword (float64 by default; float32 also accepted).
Samples are drawn in float64 and then cast.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from mlp_lib._checks import as_generator, float_dtype, one_of, positive, positive_int, real_number

__all__ = [
    "fans", "calculate_gain",
    "zeros", "constant", "normal", "uniform",
    "xavier_uniform", "xavier_normal",
    "kaiming_uniform", "kaiming_normal",
    "lecun_normal", "lecun_uniform",
    "torch_default_linear",
]

# torch.nn.init.calculate_gain's table (the conv names are linear too).
_LINEAR_GAIN = ("linear", "conv1d", "conv2d", "conv3d",
                "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid")
NONLINEARITIES = _LINEAR_GAIN + ("tanh", "relu", "leaky_relu", "selu")
MODES = ("fan_in", "fan_out")


def _shape(shape) -> tuple[int, ...]:
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"shape must be a tuple of ints, got {type(shape).__name__}")
    return tuple(positive_int(f"shape[{i}]", s) for i, s in enumerate(shape))


def fans(shape):
    """``(fan_in, fan_out)`` of a weight of shape (D_in, D_out). Chapter 4.

    ``fan_in = D_in`` (inputs feeding each unit), ``fan_out = D_out``. The same
    numbers as ``torch.nn.init._calculate_fan_in_and_fan_out`` on torch's
    (D_out, D_in) weight. Only 2-D weight shapes have fans: a bias (1-D) has
    none (initialize it with ``zeros``, ``uniform`` or ``torch_default_linear``).
    """
    shape = _shape(shape)
    if len(shape) != 2:
        raise ValueError(f"shape must be a 2-D weight shape (D_in, D_out) to have fans, got {shape}")
    return shape[0], shape[1]


def calculate_gain(nonlinearity, param=None):
    """Recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``. Chapter 4.

    ``linear``/``sigmoid`` (and torch's conv names): 1; ``tanh``: 5/3;
    ``relu``: sqrt(2); ``leaky_relu``: sqrt(2 / (1 + slope^2)) with
    ``slope = param`` (default 0.01); ``selu``: 3/4. ``param`` is used only by
    ``leaky_relu`` and ignored otherwise, as in torch (``kaiming_*`` pass their
    ``a`` for every nonlinearity).
    """
    one_of("nonlinearity", nonlinearity, NONLINEARITIES)
    if nonlinearity in _LINEAR_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4
    # leaky_relu
    slope = 0.01 if param is None else real_number("param (the leaky_relu negative slope)", param)
    return math.sqrt(2.0 / (1 + slope**2))


def zeros(shape, *, dtype=np.float64):
    """All-zero array of ``shape``. Chapter 4 (biases; not weights: zeros never break symmetry)."""
    return np.zeros(_shape(shape), dtype=float_dtype("dtype", dtype))


def constant(shape, value, *, dtype=np.float64):
    """Array of ``shape`` filled with ``value``. Chapter 4."""
    return np.full(_shape(shape), real_number("value", value), dtype=float_dtype("dtype", dtype))


def normal(shape, *, std, mean=0.0, rng, dtype=np.float64):
    """Samples of N(mean, std^2), array of ``shape``. Chapter 4."""
    shape = _shape(shape)
    std = positive("std", std, allow_zero=True)
    mean = real_number("mean", mean)
    dtype = float_dtype("dtype", dtype)
    return as_generator(rng).normal(mean, std, size=shape).astype(dtype, copy=False)


def uniform(shape, *, low, high, rng, dtype=np.float64):
    """Samples of U(low, high), array of ``shape``. Chapter 4."""
    shape = _shape(shape)
    low, high = real_number("low", low), real_number("high", high)
    if not low < high:
        raise ValueError(f"low must be < high, got low={low!r}, high={high!r}")
    dtype = float_dtype("dtype", dtype)
    return as_generator(rng).uniform(low, high, size=shape).astype(dtype, copy=False)


def xavier_uniform(shape, *, gain=1.0, rng, dtype=np.float64):
    """Glorot/Xavier uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)).

    Shape (D_in, D_out). Chapter 4. Same as ``torch.nn.init.xavier_uniform_``
    on the transposed weight.
    """
    fan_in, fan_out = fans(shape)
    gain = positive("gain", gain)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(shape, low=-bound, high=bound, rng=rng, dtype=dtype)


def xavier_normal(shape, *, gain=1.0, rng, dtype=np.float64):
    """Glorot/Xavier normal: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)).

    Shape (D_in, D_out). Chapter 4. Same as ``torch.nn.init.xavier_normal_``.
    """
    fan_in, fan_out = fans(shape)
    gain = positive("gain", gain)
    return normal(shape, std=gain * math.sqrt(2.0 / (fan_in + fan_out)), rng=rng, dtype=dtype)


def _kaiming_std(shape, a, mode, nonlinearity) -> float:
    fan_in, fan_out = fans(shape)
    one_of("mode", mode, MODES)
    gain = calculate_gain(nonlinearity, real_number("a", a))
    return gain / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def kaiming_uniform(shape, *, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng, dtype=np.float64):
    """He/Kaiming uniform: U(-b, b), b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).

    Shape (D_in, D_out). Chapter 4. ``mode="fan_in"`` keeps the forward
    variance, ``"fan_out"`` the backward one. Same as
    ``torch.nn.init.kaiming_uniform_`` on the transposed weight (including the
    defaults: leaky_relu with ``a = 0`` is ReLU's gain sqrt(2)).
    """
    bound = math.sqrt(3.0) * _kaiming_std(shape, a, mode, nonlinearity)
    return uniform(shape, low=-bound, high=bound, rng=rng, dtype=dtype)


def kaiming_normal(shape, *, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng, dtype=np.float64):
    """He/Kaiming normal: N(0, std^2), std = gain / sqrt(fan).

    Shape (D_in, D_out). Chapter 4. Same as ``torch.nn.init.kaiming_normal_``
    (an untruncated normal).
    """
    return normal(shape, std=_kaiming_std(shape, a, mode, nonlinearity), rng=rng, dtype=dtype)


def lecun_normal(shape, *, rng, dtype=np.float64):
    """LeCun normal: N(0, 1 / fan_in). Shape (D_in, D_out). Chapter 4.

    The initialization of self-normalizing (SELU) networks; torch spells it
    ``kaiming_normal_(w, nonlinearity="linear")``. Keras's ``lecun_normal``
    truncates the normal at two standard deviations; this one does not.
    """
    return kaiming_normal(shape, nonlinearity="linear", rng=rng, dtype=dtype)


def lecun_uniform(shape, *, rng, dtype=np.float64):
    """LeCun uniform: U(-sqrt(3 / fan_in), sqrt(3 / fan_in)), variance 1 / fan_in.

    Shape (D_in, D_out). Chapter 4. torch: ``kaiming_uniform_(w, nonlinearity="linear")``.
    """
    return kaiming_uniform(shape, nonlinearity="linear", rng=rng, dtype=dtype)


def torch_default_linear(in_features, out_features, *, rng, dtype=np.float64):
    """torch's default ``nn.Linear`` initialization: ``(W, b)``.

    Shapes: W (in_features, out_features), b (out_features,). Chapter 4.

    torch initializes its weight with ``kaiming_uniform_(a=sqrt(5))``, i.e.
    gain sqrt(2 / (1 + 5)) = 1/sqrt(3) and bound sqrt(3) * gain / sqrt(fan_in)
    = 1 / sqrt(fan_in), and its bias with U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    Both use ``bound = 1 / sqrt(in_features)``. W is drawn first, then b.
    """
    in_features = positive_int("in_features", in_features)
    out_features = positive_int("out_features", out_features)
    bound = 1.0 / math.sqrt(in_features)
    rng = as_generator(rng)
    W = uniform((in_features, out_features), low=-bound, high=bound, rng=rng, dtype=dtype)
    b = uniform((out_features,), low=-bound, high=bound, rng=rng, dtype=dtype)
    return W, b
