"""Argument validation shared by every mlp_lib module: the one vocabulary.

Bad input gets a clear error that names the argument and what was expected,
never a silent wrong answer: shapes, dtypes, NaN/inf, and unknown options.
Every check of one value returns what it accepted (normalised: a float, an
ndarray, a ``np.dtype``), so a caller writes ``lr = positive("lr", lr)``.

Arrays: :func:`float_array`, :func:`array_list`, :func:`label_array`,
:func:`expect_shape`, :func:`same_dtype`, :func:`upstream_gradient`.
Scalars: :func:`flag`, :func:`real_number`, :func:`positive`,
:func:`probability`, :func:`integer`, :func:`positive_int`, :func:`one_of`, :func:`float_dtype`.
Randomness: :func:`as_generator`.

TypeError means the kind of value is wrong (a list where an array belongs, an
int array, a string for a number); ValueError means the kind is right and the
value is not (a shape, a range, NaN in an array). A NaN or inf *number* is a
TypeError: it is not a finite real number.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


# --------------------------------------------------------------------------- arrays

def float_array(name: str, x, *, ndim: int | tuple[int, ...] | None = None,
                allow_nonfinite: bool = False) -> np.ndarray:
    """Return ``x`` as a float32/float64 ndarray (no copy), or raise.

    TypeError for anything that is not a floating-point array (ints, bools,
    objects, lists of them); ValueError for a wrong number of dimensions or for
    NaN/inf values (unless ``allow_nonfinite``).
    """
    if not isinstance(x, np.ndarray):
        if isinstance(x, (list, tuple)) or isinstance(x, numbers.Real):
            x = np.asarray(x)
        else:
            raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {x.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if x.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want}, got shape {x.shape}")
    if not allow_nonfinite and not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def array_list(name: str, arrays) -> list[np.ndarray]:
    """A list (or tuple) of float arrays, one per layer, each checked by :func:`float_array`.

    A bare array is refused: iterating over it would silently give its rows.
    """
    if isinstance(arrays, np.ndarray) or not isinstance(arrays, Sequence):
        raise TypeError(f"{name} must be a list of arrays (one per layer), got {type(arrays).__name__}")
    return [float_array(f"{name}[{i}]", a) for i, a in enumerate(arrays)]


def label_array(name: str, y, *, n: int | None = None, num_classes: int | None = None) -> np.ndarray:
    """Return integer class labels of shape (N,), checked against N and C."""
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array of class indices, got dtype {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape (N,), got shape {y.shape}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got shape {y.shape}")
    if num_classes is not None and y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{name} must hold class indices in [0, {num_classes}), "
                         f"got values in [{y.min()}, {y.max()}]")
    return y


def expect_shape(name: str, x: np.ndarray, shape: tuple) -> None:
    """Raise ValueError unless ``x.shape`` matches ``shape`` (None = any size)."""
    ok = x.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, x.shape))
    if not ok:
        want = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ValueError(f"{name} must have shape {want}, got shape {x.shape}")


def same_dtype(**arrays: np.ndarray) -> None:
    """Raise TypeError when float arrays that meet in one computation disagree."""
    dtypes = {name: a.dtype for name, a in arrays.items()}
    if len(set(dtypes.values())) > 1:
        listing = ", ".join(f"{k}: {v}" for k, v in dtypes.items())
        raise TypeError(f"arrays must share one dtype ({listing})")


def upstream_gradient(dout, *, shape: tuple, dtype, allow_nonfinite: bool = False) -> np.ndarray:
    """The gradient ``dout = dL/dout`` a backward pass receives, checked against its forward output.

    It must be a float ndarray (or, for a 0-d output, a Python float) with
    exactly the ``shape`` and ``dtype`` of the output it is the gradient of
    (None in ``shape`` = any size). A gradient is computed, never typed in: a
    list is refused. TypeError for the wrong kind of value or another dtype;
    ValueError for another shape, or NaN/inf unless ``allow_nonfinite``.
    """
    if not isinstance(dout, (np.ndarray, numbers.Real)):
        raise TypeError(f"dout must be a numpy array, got {type(dout).__name__}")
    dout = float_array("dout", dout, allow_nonfinite=allow_nonfinite)
    expect_shape("dout", dout, shape)
    if dout.dtype != dtype:
        raise TypeError(f"dout must have the dtype of the forward pass (dout: {dout.dtype}, cache: {np.dtype(dtype)})")
    return dout


# --------------------------------------------------------------------------- scalars

def flag(name: str, value) -> bool:
    """True or False (a numpy bool counts); TypeError for anything else, 0 and 1 included."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def real_number(name: str, value, *, allow_nonfinite: bool = False) -> float:
    """A real number as a float; a 0-d numeric array counts as a number, a bool does not.

    TypeError for anything else, and for NaN/inf unless ``allow_nonfinite``.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fiu":
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a {'' if allow_nonfinite else 'finite '}real number, got {value!r}")
    if not allow_nonfinite and not math.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def positive(name: str, value, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or >= 0 with ``allow_zero``)."""
    return _above_zero(name, real_number(name, value), allow_zero)


def probability(name: str, value, *, allow_one: bool = False) -> float:
    """A real number in [0, 1) (or [0, 1] with ``allow_one``); NaN is out of range."""
    value = real_number(name, value, allow_nonfinite=True)
    if not (0 <= value and (value <= 1 if allow_one else value < 1)):
        raise ValueError(f"{name} must be in {'[0, 1]' if allow_one else '[0, 1)'}, got {value!r}")
    return value


def integer(name: str, value) -> int:
    """An int (a numpy integer counts, a bool does not); TypeError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return int(value)


def positive_int(name: str, value, *, allow_zero: bool = False) -> int:
    """An int > 0 (or >= 0 with ``allow_zero``)."""
    return _above_zero(name, integer(name, value), allow_zero)


def _above_zero(name: str, value, allow_zero: bool):
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return value


def one_of(name: str, value, choices) -> object:
    """``value`` itself if it is one of ``choices``, else ValueError listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(map(repr, choices))}, got {value!r}")
    return value


def float_dtype(name: str, dtype) -> np.dtype:
    """float32 or float64 (as a type, a string or a ``np.dtype``) -> ``np.dtype``; TypeError otherwise.

    None is refused: ``np.dtype(None)`` would silently mean float64.
    """
    try:
        dt = None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}")
    return dt


# --------------------------------------------------------------------------- randomness

def as_generator(rng, name: str = "rng") -> np.random.Generator:
    """Accept a ``np.random.Generator`` or an int seed; never global state."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name} must be a numpy.random.Generator or an int seed, got {type(rng).__name__} "
                    "(randomness is explicit in mlp_lib: pass rng=np.random.default_rng(seed))")
