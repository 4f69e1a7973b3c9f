"""Argument validation shared by every mlp_lib module.

Bad input gets a clear error that names the argument and what was expected,
never a silent wrong answer: shapes, dtypes, NaN/inf, and unknown options.
"""
from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def float_array(name: str, x, *, ndim: int | tuple[int, ...] | None = None,
                allow_nonfinite: bool = False) -> np.ndarray:
    """Return ``x`` as a float32/float64 ndarray (no copy), or raise.

    TypeError for anything that is not a floating-point array (ints, bools,
    objects, lists of them); ValueError for a wrong number of dimensions or for
    NaN/inf values.
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


def positive(name: str, value, *, allow_zero: bool = False) -> float:
    """A real number > 0 (or >= 0 with ``allow_zero``); a 0-d numeric array counts as a number."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fiu":
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return float(value)


def probability(name: str, value, *, allow_one: bool = False) -> float:
    """A real number in [0, 1) (or [0, 1] with ``allow_one``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    upper_ok = value <= 1 if allow_one else value < 1
    if not (0 <= value and upper_ok):
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return float(value)


def positive_int(name: str, value, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return int(value)


def one_of(name: str, value, choices) -> object:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(map(repr, choices))}, got {value!r}")
    return value


def as_generator(rng, name: str = "rng") -> np.random.Generator:
    """Accept a ``np.random.Generator`` or an int seed; never global state."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name} must be a numpy.random.Generator or an int seed, got {type(rng).__name__} "
                    "(randomness is explicit in mlp_lib: pass rng=np.random.default_rng(seed))")
