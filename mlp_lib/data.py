"""Data sets: the real digits data (from scikit-learn, no download) and small
seeded synthetic problems. Chapter 1 and throughout.

Every function returns ``X`` as float64 of shape (N, D) and ``y`` as int64 of
shape (N,) for classification or float64 of shape (N, 1) for regression (the
shape a one-output linear layer produces). Everything random takes ``rng`` (a
``np.random.Generator`` or an int seed) and draws from nothing else, so the
same seed gives the same data.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from mlp_lib._checks import as_generator, one_of, positive, positive_int, real_number

__all__ = [
    "DataSplits",
    "load_digits",
    "make_xor",
    "make_moons",
    "make_circles",
    "make_spirals",
    "make_linear_regression",
    "make_polynomial_regression",
    "make_sine_regression",
]

# Pixel intensities of sklearn's digits are integers in [0, 16].
DIGITS_PIXEL_MAX = 16.0


@dataclasses.dataclass(frozen=True, eq=False)
class DataSplits:
    """Train/validation/test arrays of one data set. Chapter 1.

    ``X_*`` are float64 of shape (N_split, n_features); ``y_*`` are int64 of
    shape (N_split,) with classes in ``[0, n_classes)``. Frozen: the fields
    cannot be reassigned (the arrays themselves are ordinary numpy arrays).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    n_features: int

    def subset(self, n_train: int, *, seed: int) -> "DataSplits":
        """A copy whose training split is a stratified subset of ``n_train`` examples.

        Chapters 8-9 study small-data regimes. Validation and test splits are
        kept unchanged, and so is the scaling: it was fitted on the full
        training split, which keeps the val/test arrays identical across subset
        sizes (so their scores stay comparable).
        """
        n_total = self.y_train.shape[0]
        n_train = positive_int("n_train", n_train)
        seed = positive_int("seed", seed, allow_zero=True)
        if n_train < self.n_classes or n_train > n_total:
            raise ValueError(f"n_train must be in [{self.n_classes}, {n_total}] (at least one example "
                             f"per class, at most the training split), got {n_train}")
        if n_train == n_total:
            idx = np.random.default_rng(seed).permutation(n_total)
        else:
            from sklearn.model_selection import train_test_split

            idx, _ = train_test_split(np.arange(n_total), train_size=n_train,
                                      stratify=self.y_train, random_state=seed)
        return dataclasses.replace(self, X_train=self.X_train[idx].copy(), y_train=self.y_train[idx].copy())

    def __repr__(self) -> str:
        return (f"DataSplits(train={self.X_train.shape[0]}, val={self.X_val.shape[0]}, "
                f"test={self.X_test.shape[0]}, n_features={self.n_features}, n_classes={self.n_classes})")


def load_digits(*, seed: int = 0, val_size: float = 0.15, test_size: float = 0.15,
                scale: str | None = "standardize") -> DataSplits:
    """The 8x8 handwritten digits (1797 images, 64 features, 10 classes). Chapter 1.

    Returns a :class:`DataSplits` with stratified train/validation/test splits
    (``val_size`` and ``test_size`` are fractions of the whole data set; each
    split holds every class in the data set's proportions, up to rounding).
    ``seed`` fixes the splits: the same seed gives identical arrays.

    ``scale``:
      * ``"standardize"`` — per-feature zero mean and unit variance, with the
        statistics of the *training split only* (using them on val/test too is
        what keeps the evaluation honest); constant pixels are left unscaled.
      * ``"unit"`` — divide by 16, the largest pixel value, to land in [0, 1].
      * ``None`` — the raw pixel values 0..16 as float64.
    """
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    seed = positive_int("seed", seed, allow_zero=True)
    val_size = positive("val_size", val_size)
    test_size = positive("test_size", test_size)
    if val_size + test_size >= 1:
        raise ValueError(f"val_size + test_size must be < 1 to leave a training split, "
                         f"got {val_size} + {test_size}")
    one_of("scale", scale, ("standardize", "unit", None))

    bunch = _sk_load_digits()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)

    # Two independent integer seeds for the two splitting stages, both derived from `seed`.
    seed_test, seed_val = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=seed_test)
    # val_size is a fraction of the whole set; rescale it to a fraction of what is left.
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val_size / (1.0 - test_size), stratify=y_rest, random_state=seed_val)

    if scale == "standardize":
        from mlp_lib.normalization import Standardizer

        scaler = Standardizer()
        X_train = scaler.fit_transform(X_train)
        X_val, X_test = scaler.transform(X_val), scaler.transform(X_test)
    elif scale == "unit":
        X_train, X_val, X_test = (a / DIGITS_PIXEL_MAX for a in (X_train, X_val, X_test))

    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (X_train, X_val, X_test)]
    labels = [np.ascontiguousarray(a, dtype=np.int64) for a in (y_train, y_val, y_test)]
    return DataSplits(X_train=arrays[0], y_train=labels[0], X_val=arrays[1], y_val=labels[1],
                      X_test=arrays[2], y_test=labels[2],
                      n_classes=int(y.max()) + 1, n_features=X.shape[1])


# ---------------------------------------------------------------- classification


def _noise(noise) -> float:
    return positive("noise", noise, allow_zero=True)


def make_xor(n: int, *, noise: float = 0.0, rng) -> tuple[np.ndarray, np.ndarray]:
    """XOR: X of shape (n, 2), y of shape (n,) in {0, 1}. Chapter 1.

    Points are uniform in the square [-1, 1]²; the label is 1 exactly when
    the two coordinates have opposite signs, i.e. ``(x0 > 0) XOR (x1 > 0)`` —
    no single line separates the classes. ``noise`` is the standard deviation
    of Gaussian jitter added to the points *after* labelling, so with noise
    some points cross into the neighbouring quadrant.
    """
    n = positive_int("n", n)
    noise = _noise(noise)
    gen = as_generator(rng)
    X = gen.uniform(-1.0, 1.0, size=(n, 2))
    y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(np.int64)
    if noise > 0:
        X = X + noise * gen.standard_normal((n, 2))
    return X, y


def _shuffled(X: np.ndarray, y: np.ndarray, gen: np.random.Generator):
    perm = gen.permutation(X.shape[0])
    return X[perm], y[perm]


def make_moons(n: int, *, noise: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles: X (n, 2), y (n,) in {0, 1}. Chapter 3.

    The geometry of ``sklearn.datasets.make_moons``: n // 2 points evenly spaced
    on the upper unit half circle (class 0) and the rest on a lower half circle
    shifted to (1, 0.5) (class 1). The points are shuffled, then Gaussian noise
    of standard deviation ``noise`` is added to each coordinate.
    """
    n = positive_int("n", n)
    noise = _noise(noise)
    gen = as_generator(rng)
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0.0, np.pi, n_out)
    t_in = np.linspace(0.0, np.pi, n_in)
    X = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], axis=1),
                        np.stack([1.0 - np.cos(t_in), 0.5 - np.sin(t_in)], axis=1)])
    y = np.concatenate([np.zeros(n_out, np.int64), np.ones(n_in, np.int64)])
    X, y = _shuffled(X, y, gen)
    if noise > 0:
        X = X + noise * gen.standard_normal(X.shape)
    return X, y


def make_circles(n: int, *, noise: float, factor: float = 0.5, rng) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric circles: X (n, 2), y (n,) in {0, 1}. Chapter 3.

    The geometry of ``sklearn.datasets.make_circles``: n // 2 points evenly
    spaced on the unit circle (class 0) and the rest on a circle of radius
    ``factor`` (class 1, ``0 < factor < 1``). Shuffled, then Gaussian noise of
    standard deviation ``noise`` is added to each coordinate.
    """
    n = positive_int("n", n)
    noise = _noise(noise)
    factor = positive("factor", factor)
    if factor >= 1:
        raise ValueError(f"factor must be in (0, 1) (the inner circle's radius), got {factor}")
    gen = as_generator(rng)
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0.0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0.0, 2 * np.pi, n_in, endpoint=False)
    X = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], axis=1),
                        factor * np.stack([np.cos(t_in), np.sin(t_in)], axis=1)])
    y = np.concatenate([np.zeros(n_out, np.int64), np.ones(n_in, np.int64)])
    X, y = _shuffled(X, y, gen)
    if noise > 0:
        X = X + noise * gen.standard_normal(X.shape)
    return X, y


def make_spirals(n: int, *, n_classes: int = 3, noise: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class: X (n, 2), y (n,) in [0, n_classes). Chapter 3.

    CS231n's spiral data: class k has points at radius r evenly spaced in
    [0, 1] and angle ``t = 2*pi*k/n_classes + 4*r`` (each arm turns 4 radians;
    the arms are rotated evenly, a generalisation of CS231n's fixed offsets),
    at ``(r*sin t, r*cos t)``. ``noise`` is the standard deviation of Gaussian
    noise added to the *angle* (CS231n uses 0.2). Class sizes differ by at most
    one (the first ``n % n_classes`` classes get the extra points); the points
    are shuffled.
    """
    n = positive_int("n", n)
    n_classes = positive_int("n_classes", n_classes)
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    if n < n_classes:
        raise ValueError(f"n must be >= n_classes ({n_classes}) to give every class a point, got {n}")
    noise = _noise(noise)
    gen = as_generator(rng)
    sizes = [n // n_classes + (1 if k < n % n_classes else 0) for k in range(n_classes)]
    r = np.concatenate([np.linspace(0.0, 1.0, m) for m in sizes])
    y = np.repeat(np.arange(n_classes, dtype=np.int64), sizes)
    t = 2 * np.pi * y / n_classes + 4.0 * r
    if noise > 0:
        t = t + noise * gen.standard_normal(n)
    X = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
    return _shuffled(X, y, gen)


# ---------------------------------------------------------------- regression


def _x_range(x_range) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in x_range)
    except (TypeError, ValueError):
        raise TypeError(f"x_range must be a pair (low, high) of real numbers, got {x_range!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"x_range must be a finite pair with low < high, got {x_range!r}")
    return low, high


def make_linear_regression(n: int, *, slope, intercept: float, noise: float,
                           x_range=(-1.0, 1.0), rng) -> tuple[np.ndarray, np.ndarray]:
    """Noisy line (or plane): X (n, d), y (n, 1). Chapter 2.

    ``slope`` is a number (d = 1) or a 1-D sequence of d weights; X is uniform
    in ``x_range`` per feature and ``y = X @ slope + intercept + noise * eps``
    with standard normal eps.
    """
    n = positive_int("n", n)
    noise = _noise(noise)
    low, high = _x_range(x_range)
    w = np.atleast_1d(np.asarray(slope, dtype=np.float64)) if _is_real_or_reals(slope) else None
    if w is None or w.ndim != 1 or w.size == 0 or not np.isfinite(w).all():
        raise TypeError(f"slope must be a finite real number or a 1-D sequence of them, got {slope!r}")
    intercept = real_number("intercept", intercept)
    gen = as_generator(rng)
    X = gen.uniform(low, high, size=(n, w.size))
    y = X @ w + intercept
    if noise > 0:
        y = y + noise * gen.standard_normal(n)
    return X, y.reshape(n, 1)


def make_polynomial_regression(n: int, *, coefficients, noise: float, x_range=(-1.0, 1.0),
                               rng) -> tuple[np.ndarray, np.ndarray]:
    """Noisy polynomial of one variable: X (n, 1), y (n, 1). Chapter 2.

    ``coefficients`` are in increasing degree, ``c0 + c1*x + c2*x**2 + ...``
    (numpy.polynomial's order, *not* ``np.polyval``'s). X is uniform in
    ``x_range``; Gaussian noise of standard deviation ``noise`` is added to y.
    """
    n = positive_int("n", n)
    noise = _noise(noise)
    low, high = _x_range(x_range)
    c = np.asarray(coefficients, dtype=np.float64) if _is_real_or_reals(coefficients) else None
    if c is None or c.ndim != 1 or c.size == 0 or not np.isfinite(c).all():
        raise TypeError(f"coefficients must be a non-empty 1-D sequence of finite reals "
                        f"(lowest degree first), got {coefficients!r}")
    gen = as_generator(rng)
    x = gen.uniform(low, high, size=n)
    y = np.polynomial.polynomial.polyval(x, c)
    if noise > 0:
        y = y + noise * gen.standard_normal(n)
    return x.reshape(n, 1), y.reshape(n, 1)


def make_sine_regression(n: int, *, noise: float, frequency: float = 1.0,
                         x_range=(-np.pi, np.pi), rng) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sine wave ``y = sin(frequency * x)``: X (n, 1), y (n, 1). Chapter 3.

    A smooth non-polynomial target for the approximation-power demos (how many
    hidden units a one-hidden-layer network needs). X is uniform in
    ``x_range``; Gaussian noise of standard deviation ``noise`` is added to y.
    """
    n = positive_int("n", n)
    noise = _noise(noise)
    frequency = real_number("frequency", frequency)
    low, high = _x_range(x_range)
    gen = as_generator(rng)
    x = gen.uniform(low, high, size=n)
    y = np.sin(frequency * x)
    if noise > 0:
        y = y + noise * gen.standard_normal(n)
    return x.reshape(n, 1), y.reshape(n, 1)


def _is_real_or_reals(value) -> bool:
    """A real number, or a (nested) sequence/array of real numbers (no bools, no strings)."""
    if isinstance(value, (str, bytes, bool)):
        return False
    try:
        a = np.asarray(value)
    except (TypeError, ValueError):
        return False
    return a.dtype.kind in "iuf"

