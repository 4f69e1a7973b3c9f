"""Hyperparameter search: grids, random search, Bayesian optimisation, k-fold
cross-validation. Chapter 6.

A search *space* is a dict from hyperparameter name to either a list of values
(a grid axis, or a uniform choice when sampling) or a distribution
(:class:`LogUniform`, :class:`Uniform`, :class:`IntUniform`, :class:`Choice`).
An *objective* is a function ``objective(config: dict) -> float`` returning a
score, higher is better unless the search is told ``maximize=False``. Every
search returns a :class:`TrialTable`.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from mlp_lib._checks import as_generator, flag, float_array, integer, positive_int, real_number

__all__ = [
    "LogUniform",
    "Uniform",
    "IntUniform",
    "Choice",
    "grid",
    "sample_configs",
    "TrialTable",
    "grid_search",
    "random_search",
    "bayesian_search",
    "expected_improvement",
    "kfold_indices",
    "stratified_kfold_indices",
]

RESERVED_COLUMNS = ("trial", "score", "seconds")


# ---------------------------------------------------------------- distributions


@dataclasses.dataclass(frozen=True)
class Uniform:
    """Uniform on [low, high). Chapter 6."""

    low: float
    high: float

    def __post_init__(self):
        low, high = real_number("low", self.low), real_number("high", self.high)
        if not low < high:
            raise ValueError(f"Uniform needs low < high, got low={low}, high={high}")

    def sample(self, rng) -> float:
        return float(as_generator(rng).uniform(self.low, self.high))


@dataclasses.dataclass(frozen=True)
class LogUniform:
    """log(x) uniform on [log low, log high): every decade equally likely. Chapter 6.

    The right prior for scale parameters such as learning rates and weight
    decay, whose effect depends on their order of magnitude.
    """

    low: float
    high: float

    def __post_init__(self):
        low, high = real_number("low", self.low), real_number("high", self.high)
        if not 0 < low < high:
            raise ValueError(f"LogUniform needs 0 < low < high, got low={low}, high={high}")

    def sample(self, rng) -> float:
        return float(math.exp(as_generator(rng).uniform(math.log(self.low), math.log(self.high))))


@dataclasses.dataclass(frozen=True)
class IntUniform:
    """Integers low, low+1, ..., high (both ends included), equally likely. Chapter 6."""

    low: int
    high: int

    def __post_init__(self):
        for name in ("low", "high"):
            integer(f"IntUniform {name}", getattr(self, name))
        if not self.low <= self.high:
            raise ValueError(f"IntUniform needs low <= high, got low={self.low}, high={self.high}")

    def sample(self, rng) -> int:
        return int(as_generator(rng).integers(self.low, self.high, endpoint=True))


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of ``options``, equally likely. Chapter 6."""

    options: tuple

    def __post_init__(self):
        if isinstance(self.options, (str, bytes)) or not isinstance(self.options, Sequence):
            raise TypeError(f"Choice options must be a list or tuple, got {self.options!r}")
        if len(self.options) == 0:
            raise ValueError("Choice needs at least one option")
        object.__setattr__(self, "options", tuple(self.options))

    def sample(self, rng):
        return self.options[int(as_generator(rng).integers(len(self.options)))]


DISTRIBUTIONS = (Uniform, LogUniform, IntUniform, Choice)


def _check_space(space, *, allow_distributions: bool) -> dict:
    if not isinstance(space, Mapping):
        raise TypeError(f"space must be a dict from name to values, got {type(space).__name__}")
    if len(space) == 0:
        raise ValueError("space must name at least one hyperparameter")
    checked = {}
    for key, values in space.items():
        if not isinstance(key, str):
            raise TypeError(f"space keys must be strings, got {key!r}")
        if key in RESERVED_COLUMNS:
            raise ValueError(f"space key {key!r} clashes with a TrialTable column {RESERVED_COLUMNS}")
        if isinstance(values, DISTRIBUTIONS):
            if not allow_distributions:
                raise TypeError(f"space[{key!r}] is a {type(values).__name__}; a grid needs an explicit list of values")
            checked[key] = values
        elif isinstance(values, (list, tuple)):
            if len(values) == 0:
                raise ValueError(f"space[{key!r}] is empty")
            checked[key] = Choice(tuple(values)) if allow_distributions else list(values)
        else:
            kinds = "a list of values or a distribution (Uniform, LogUniform, IntUniform, Choice)" \
                if allow_distributions else "a list of values"
            raise TypeError(f"space[{key!r}] must be {kinds}, got {values!r}")
    return checked


def grid(space: Mapping[str, list]) -> list[dict]:
    """Every combination of the listed values, as a list of config dicts. Chapter 6.

    Order: ``itertools.product`` over the keys in the dict's insertion order,
    so the *last* key varies fastest (like nested for-loops written in key
    order)::

        grid({"lr": [0.1, 0.01], "width": [16, 32]})
        # [{'lr': 0.1, 'width': 16}, {'lr': 0.1, 'width': 32},
        #  {'lr': 0.01, 'width': 16}, {'lr': 0.01, 'width': 32}]
    """
    space = _check_space(space, allow_distributions=False)
    keys = list(space)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(space[k] for k in keys))]


def sample_configs(space: Mapping, n: int, *, rng) -> list[dict]:
    """``n`` configs drawn independently from ``space``. Chapter 6.

    Distributions are sampled with their ``sample``; a plain list is a uniform
    choice among its values. Keys are drawn in the dict's order, config after
    config, so the same ``rng`` seed gives the same configs.
    """
    space = _check_space(space, allow_distributions=True)
    n = positive_int("n", n)
    gen = as_generator(rng)
    return [{k: dist.sample(gen) for k, dist in space.items()} for _ in range(n)]


# ---------------------------------------------------------------- results


class TrialTable:
    """The trials of a search, one row per evaluated config. Chapter 6.

    Each row is a dict ``{"trial": i, <config...>, "score": float, "seconds": float}``
    (``trial`` counts from 0 in evaluation order; ``seconds`` is the objective's
    wall-clock time). ``maximize`` records the direction of the search and is
    the default direction of :meth:`best`.
    """

    def __init__(self, rows: Sequence[Mapping] = (), *, maximize: bool = True):
        self.maximize = flag("maximize", maximize)
        self.rows: list[dict] = []
        for row in rows:
            self.append(row)

    def append(self, row: Mapping) -> None:
        missing = [c for c in RESERVED_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"a TrialTable row needs the columns {RESERVED_COLUMNS}, missing {missing}")
        self.rows.append(dict(row))

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]

    @property
    def columns(self) -> list[str]:
        """Column names: ``trial``, the config keys in first-seen order, ``score``, ``seconds``."""
        names = ["trial"]
        for row in self.rows:
            names.extend(k for k in row if k not in RESERVED_COLUMNS and k not in names)
        return names + ["score", "seconds"]

    def column(self, name: str) -> list:
        """The values of one column, in trial order (None where a row lacks the key)."""
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; columns are {self.columns}")
        return [row.get(name) for row in self.rows]

    def best(self, *, maximize: bool | None = None) -> dict:
        """The row with the highest score (lowest with ``maximize=False``; default: the search's direction).

        Ties go to the earliest trial.
        """
        if not self.rows:
            raise ValueError("best() of an empty TrialTable")
        maximize = self.maximize if maximize is None else flag("maximize", maximize)
        scores = np.asarray(self.column("score"), dtype=np.float64)
        i = int(np.argmax(scores) if maximize else np.argmin(scores))
        return dict(self.rows[i])

    def to_markdown(self, *, digits: int = 4) -> str:
        """A Markdown table (floats with ``digits`` significant digits)."""
        names = self.columns
        cells = [[_fmt(row.get(c, ""), digits) for c in names] for row in self.rows]
        lines = ["| " + " | ".join(names) + " |", "|" + "|".join("---" for _ in names) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in cells]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:  # rendered by Jupyter
        return self.to_markdown()

    def __repr__(self) -> str:
        names = self.columns
        cells = [[_fmt(row.get(c, ""), 4) for c in names] for row in self.rows]
        widths = [max([len(n)] + [len(r[j]) for r in cells]) for j, n in enumerate(names)]
        lines = ["  ".join(n.rjust(w) for n, w in zip(names, widths))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
        direction = "maximize" if self.maximize else "minimize"
        return f"TrialTable({len(self.rows)} trials, {direction})\n" + "\n".join(lines)


def _fmt(value, digits: int) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _evaluate(objective: Callable, config: dict, trial: int) -> dict:
    start = time.perf_counter()
    score = objective(dict(config))  # a copy: the objective may not edit the recorded config
    seconds = time.perf_counter() - start
    try:
        score = real_number("score", score)
    except TypeError:  # the objective's result, not an argument: a ValueError
        raise ValueError(f"objective must return a finite real score, got {score!r} for config {config}") from None
    return {"trial": trial, **config, "score": score, "seconds": seconds}


def _check_objective(objective) -> None:
    if not callable(objective):
        raise TypeError(f"objective must be callable as objective(config) -> float, got {objective!r}")


def grid_search(objective: Callable[[dict], float], space: Mapping[str, list], *,
                maximize: bool = True) -> TrialTable:
    """Evaluate ``objective`` on every config of :func:`grid` (in its order). Chapter 6."""
    _check_objective(objective)
    table = TrialTable(maximize=flag("maximize", maximize))
    for i, config in enumerate(grid(space)):
        table.append(_evaluate(objective, config, i))
    return table


def random_search(objective: Callable[[dict], float], space: Mapping, *, n_trials: int, rng,
                  maximize: bool = True) -> TrialTable:
    """Evaluate ``objective`` on ``n_trials`` configs from :func:`sample_configs`. Chapter 6."""
    _check_objective(objective)
    table = TrialTable(maximize=flag("maximize", maximize))
    for i, config in enumerate(sample_configs(space, n_trials, rng=rng)):
        table.append(_evaluate(objective, config, i))
    return table


# ---------------------------------------------------------------- Bayesian optimisation


def expected_improvement(mu, sigma, best: float, *, xi: float = 0.0, maximize: bool = True) -> np.ndarray:
    """Expected improvement over ``best`` of a Gaussian prediction N(mu, sigma²). Chapter 6.

    mu, sigma: arrays of one shape (the surrogate's mean and standard deviation);
    returns an array of that shape. For maximisation, with ``d = mu - best - xi``
    and ``z = d / sigma``::

        EI = d * Phi(z) + sigma * phi(z)

    (Phi, phi: standard normal cdf and pdf); for minimisation ``d = best - mu - xi``.
    ``xi >= 0`` demands a margin of improvement (more exploration). Where
    ``sigma == 0`` the prediction is certain and ``EI = max(d, 0)``.
    """
    from scipy.special import ndtr

    mu = float_array("mu", mu)
    sigma = float_array("sigma", sigma)
    if mu.shape != sigma.shape:
        raise ValueError(f"mu and sigma must have the same shape, got {mu.shape} and {sigma.shape}")
    if (sigma < 0).any():
        raise ValueError("sigma must be >= 0 (a standard deviation)")
    best = real_number("best", best)
    xi = real_number("xi", xi)
    if xi < 0:
        raise ValueError(f"xi must be >= 0, got {xi}")
    flag("maximize", maximize)
    d = (mu - best - xi) if maximize else (best - mu - xi)
    certain = sigma == 0
    safe_sigma = np.where(certain, 1.0, sigma)  # avoids 0/0; those entries are replaced below
    with np.errstate(over="ignore", under="ignore"):
        # A tiny sigma sends |z| to inf: then Phi(z) is 0 or 1 and phi(z) is 0, which is the right limit.
        z = d / safe_sigma
        pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        ei = d * ndtr(z) + safe_sigma * pdf
    ei = np.where(certain, np.maximum(d, 0.0), ei)
    # The closed form can dip a few ulps below 0 far in the left tail; EI is an expectation of max(., 0).
    return np.maximum(ei, 0.0).astype(mu.dtype, copy=False)


class _Encoder:
    """Maps configs to points of the unit cube where the GP lives.

    Uniform and IntUniform dims are scaled linearly to [0, 1], LogUniform dims
    linearly in log space (so a length scale means "so many decades"), Choice
    dims one-hot.
    """

    def __init__(self, space: dict):
        self.space = space

    def encode(self, config: dict) -> np.ndarray:
        out = []
        for key, dist in self.space.items():
            v = config[key]
            if isinstance(dist, LogUniform):
                out.append((math.log(v) - math.log(dist.low)) / (math.log(dist.high) - math.log(dist.low)))
            elif isinstance(dist, (Uniform, IntUniform)):
                span = dist.high - dist.low
                out.append((v - dist.low) / span if span else 0.0)
            else:  # Choice
                out.extend(1.0 if v == opt else 0.0 for opt in dist.options)
        return np.asarray(out, dtype=np.float64)

    def encode_all(self, configs: list[dict]) -> np.ndarray:
        return np.stack([self.encode(c) for c in configs])


def bayesian_search(objective: Callable[[dict], float], space: Mapping, *, n_trials: int, rng,
                    n_initial: int = 5, candidates: int = 1000, xi: float = 0.0,
                    maximize: bool = True) -> TrialTable:
    """Bayesian optimisation with a Gaussian-process surrogate. Chapter 6.

    The first ``n_initial`` configs are random (:func:`sample_configs`). Each
    later trial fits ``sklearn.gaussian_process.GaussianProcessRegressor``
    (Matern-5/2 kernel with one length scale per dimension, times a constant,
    plus a WhiteKernel for noisy scores; ``normalize_y=True``) to all scores so
    far, draws ``candidates`` random configs, and evaluates the one with the
    largest :func:`expected_improvement` over the best score so far. The GP
    sees the configs through the unit-cube encoding of ``_Encoder`` (log-scale
    dims in log space). Same ``rng`` seed, same trials (for a deterministic
    objective).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    _check_objective(objective)
    space = _check_space(space, allow_distributions=True)
    n_trials = positive_int("n_trials", n_trials)
    n_initial = positive_int("n_initial", n_initial)
    candidates = positive_int("candidates", candidates)
    xi = real_number("xi", xi)
    if xi < 0:
        raise ValueError(f"xi must be >= 0, got {xi}")
    maximize = flag("maximize", maximize)
    gen = as_generator(rng)
    encoder = _Encoder(space)
    sign = 1.0 if maximize else -1.0  # the GP always maximises sign * score

    table = TrialTable(maximize=maximize)
    for i, config in enumerate(sample_configs(space, min(n_initial, n_trials), rng=gen)):
        table.append(_evaluate(objective, config, i))

    for i in range(len(table), n_trials):
        configs = [{k: row[k] for k in space} for row in table]
        X = encoder.encode_all(configs)
        y = sign * np.asarray(table.column("score"), dtype=np.float64)
        kernel = (ConstantKernel(1.0, (1e-3, 1e3))
                  * Matern(length_scale=np.full(X.shape[1], 0.3), length_scale_bounds=(1e-2, 1e2), nu=2.5)
                  + WhiteKernel(1e-3, (1e-8, 1e0)))
        gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, n_restarts_optimizer=2,
                                      random_state=int(gen.integers(2**31 - 1)))
        with warnings.catch_warnings():
            # A fitted kernel hyperparameter at its bound is routine with a handful of points
            # and changes nothing for the user; the search itself stays valid.
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(X, y)
        pool = sample_configs(space, candidates, rng=gen)
        mu, sd = gp.predict(encoder.encode_all(pool), return_std=True)
        ei = expected_improvement(mu, np.maximum(sd, 0.0), float(y.max()), xi=xi, maximize=True)
        table.append(_evaluate(objective, pool[int(np.argmax(ei))], i))
    return table


# ---------------------------------------------------------------- cross-validation


def kfold_indices(n: int, k: int, *, shuffle: bool = True, rng=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """k-fold cross-validation splits of ``n`` examples: a list of k ``(train_idx, val_idx)``. Chapter 6.

    Each example is in exactly one validation fold. Fold sizes are ``n // k``,
    and the first ``n % k`` folds get one extra example (sklearn's ``KFold``).
    Without shuffling, fold i is a contiguous block — the same splits as
    ``KFold(k, shuffle=False)``; with ``shuffle=True`` (needs ``rng``) the
    examples are permuted first. Index arrays are int64 and sorted.
    """
    n = positive_int("n", n)
    k = positive_int("k", k)
    if not 2 <= k <= n:
        raise ValueError(f"k must be in [2, n={n}], got {k}")
    shuffle = flag("shuffle", shuffle)
    if shuffle:
        if rng is None:
            raise TypeError("rng is required when shuffle=True (randomness is explicit in mlp_lib)")
        order = as_generator(rng).permutation(n)
    else:
        if rng is not None:
            raise TypeError("rng given but shuffle=False: nothing would be random")
        order = np.arange(n)
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return [_split(n, order[bounds[i]:bounds[i + 1]]) for i in range(k)]


def _split(n: int, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    in_val = np.zeros(n, dtype=bool)
    in_val[val] = True
    all_idx = np.arange(n, dtype=np.int64)
    return all_idx[~in_val], all_idx[in_val]


def stratified_kfold_indices(y, k: int, *, shuffle: bool = True, rng=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """k folds that keep the class proportions of ``y`` (shape (N,)). Chapter 6.

    The examples of each class (permuted if ``shuffle``) are dealt to the folds
    in turn, continuing where the previous class stopped, so every fold holds
    each class to within one example of its share and fold sizes differ by at
    most one. (The same guarantees as sklearn's ``StratifiedKFold``, though not
    its exact assignment.) Index arrays are int64 and sorted.
    """
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"y must be an integer array of class labels, got dtype {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D of shape (N,), got shape {y.shape}")
    n = y.shape[0]
    k = positive_int("k", k)
    if not 2 <= k <= n:
        raise ValueError(f"k must be in [2, N={n}], got {k}")
    shuffle = flag("shuffle", shuffle)
    if shuffle and rng is None:
        raise TypeError("rng is required when shuffle=True (randomness is explicit in mlp_lib)")
    if not shuffle and rng is not None:
        raise TypeError("rng given but shuffle=False: nothing would be random")
    gen = as_generator(rng) if shuffle else None
    order = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        order.append(gen.permutation(members) if shuffle else members)
    order = np.concatenate(order)
    fold_of = np.arange(n) % k  # position-wise dealing: balanced per class and overall
    return [_split(n, order[fold_of == i]) for i in range(k)]
