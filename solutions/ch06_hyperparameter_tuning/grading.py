"""Grading spec of Chapter 6's exercise: the pieces of a hyperparameter search.

Every Part draws its cases from the grader's rng and is judged against a torch reference
computed in float64. The conventions, as stated in the exercise and followed by
``mlp_lib.tuning`` (which the book uses):

* ``grid(space)``: every combination, as a list of dicts, in the order of
  ``itertools.product`` over the keys in the dict's insertion order (the *last* key varies
  fastest); the reference is ``torch.cartesian_prod`` of the value lists, which has the same
  order. ``space`` is left unchanged.
* ``log_uniform(low, high, n, *, rng)``: ``x_i = exp(log low + u_i (log high - log low))`` with
  ``u = rng.random(n)``, i.e. one standard uniform per sample, in order
  (``rng.uniform(log low, log high, size=n)`` and ``low * (high / low) ** rng.random(n)``
  give the same numbers). The reference draws the same uniforms from a Generator with the
  case's seed and does the rest with torch. A second output checks the *distribution*
  whatever the stream: 200 000 draws from another seed, their ``t = (log x - log low) /
  (log high - log low)`` counted in ten equal bins of [0, 1), each fraction rounded to two
  decimals, must all be 0.10 (each bin's fraction has a standard deviation of 0.00067, so the
  rounding boundaries 0.095 and 0.105 are 7.5 standard deviations away: a correct sampler
  fails with probability below 1e-12 per case).
* ``random_search(objective, space, n_trials, *, rng)``: ``space`` maps names to
  ``(low, high)``; trial after trial, and within a trial key after key in the dict's order,
  each value is one log-uniform draw (one uniform each); every config is evaluated once, in
  order. Returns ``(configs, scores)``. The reference reproduces the draws as
  ``Generator(seed).random((n_trials, n_keys))`` (row-major: the same order).
* ``kfold_indices(n, k, *, shuffle=False, rng=None)``: scikit-learn's ``KFold`` convention:
  fold sizes ``n // k`` and the first ``n % k`` folds one larger; fold ``i`` validates on the
  ``i``-th block of ``order`` (``arange(n)``, or ``rng.permutation(n)`` when shuffling) and
  trains on the rest; index arrays are integers, sorted. Reference: ``torch.arange`` (or the
  Generator's permutation) cut by ``torch.split``.
* ``expected_improvement(mu, sigma, best, *, xi=0.0, maximize=True)``: with
  ``d = mu - best - xi`` (maximize) or ``d = best - mu - xi`` (minimize),
  ``EI = d Phi(d / sigma) + sigma phi(d / sigma)`` where ``sigma > 0`` and ``max(d, 0)`` where
  ``sigma == 0``; ``Phi`` and ``phi`` from ``torch.distributions.Normal(0, 1)``. Cases hold
  exact zeros of sigma with ``d`` positive, negative and exactly 0 (dyadic numbers make
  ``d == 0`` exact), where an unguarded ``0 / 0`` gives NaN.
* ``best_trial(results, *, maximize=True)``: the row with the highest (lowest) ``"score"``;
  ties go to the earliest row; NaN scores (failed trials) never win; ``results`` is left
  unchanged. Reference: ``torch.argmax`` (``argmin``), which returns the first of tied
  extremes, after NaN is replaced by -inf (+inf).

Each mutant is a typical mistake; tests/test_assignment_ch06.py checks that each one loses
the points of its own part, and only those.
"""
import itertools
import math

import numpy as np
import torch

from autograder.spec import Mutant, Part

PUBLIC_SEED = 20120229               # JMLR 13 (2012), where Bergstra and Bengio's paper appeared
# the locked cells the answers may rely on: the imports, and the answers' vocabulary of Parts 7 and on
SETUP = ("setup", "understanding-setup")

# Hyperparameter names used to build the dicts; the cases pick them in orders that are *not*
# alphabetical, so that sorting the keys changes the result.
NAMES = ("width", "lr", "momentum", "decay", "batch", "dropout")
DECILE_DRAWS = 200_000


def _names_order(rng, k):
    """k distinct indices into NAMES whose names are not in alphabetical order (for k >= 2)."""
    while True:
        idx = rng.choice(len(NAMES), size=k, replace=False)
        names = [NAMES[i] for i in idx]
        if k == 1 or names != sorted(names):
            return idx.astype(np.int64)


# -- grid -------------------------------------------------------------------------------------
def grid_cases(rng):
    cases = []
    for sizes in ([3, 2], [2, 3, 2], [1, 4, 2], [4], [2, 2, 1, 3]):
        k = len(sizes)
        values = []
        for s in sizes:
            if rng.random() < 0.5:
                v = rng.choice(np.arange(1, 200), size=s, replace=False).astype(np.float64)   # integer-valued
            else:
                v = 10.0 ** rng.uniform(-5, 1, size=s)
            if s > 1 and np.all(np.diff(v) > 0):
                v = v[::-1].copy()                  # never ascending: sorting the values must show
            values.append(v)
        cases.append({"values": np.concatenate(values), "sizes": np.array(sizes, dtype=np.int64),
                      "names": _names_order(rng, k)})
    return cases


def grid_call(student, values, sizes, names):
    keys = [("width", "lr", "momentum", "decay", "batch", "dropout")[int(i)] for i in names]
    space, start = {}, 0
    for key, size in zip(keys, sizes.tolist()):
        space[key] = values[start:start + size].tolist()
        start += size
    before = {key: list(v) for key, v in space.items()}
    configs = student.grid(space)
    if not isinstance(configs, list):
        raise TypeError(f"grid must return a list of dicts, got {type(configs).__name__}")
    table = []
    for i, config in enumerate(configs):
        if not isinstance(config, dict):
            raise TypeError(f"grid()[{i}] is a {type(config).__name__}, expected a dict {{name: value}}")
        if set(config) != set(keys):
            raise ValueError(f"grid()[{i}] has the keys {sorted(config)}, expected {sorted(keys)}")
        table.append([float(config[key]) for key in keys])
    unchanged = list(space) == list(before) and all(space[key] == before[key] for key in before)
    return np.array(table, dtype=np.float64).reshape(len(configs), len(keys)), np.int64(unchanged)


def grid_reference(values, sizes, names):
    axes = torch.split(values, sizes.tolist())
    table = torch.cartesian_prod(*axes) if len(axes) > 1 else axes[0].reshape(-1, 1)
    return table, torch.tensor(1, dtype=torch.int64)


def _grid_first_key_fastest(space):
    keys = list(space)[::-1]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(space[k] for k in keys))]


def _grid_sorted_keys(space):
    keys = sorted(space)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(space[k] for k in keys))]


def _grid_sorted_values(space):
    keys = list(space)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(sorted(space[k]) for k in keys))]


def _grid_zip(space):
    keys = list(space)
    return [dict(zip(keys, combo)) for combo in zip(*(space[k] for k in keys))]


def _grid_one_dict_reused(space):
    keys, config, out = list(space), {}, []
    for combo in itertools.product(*(space[k] for k in keys)):
        config.update(zip(keys, combo))
        out.append(config)                       # the same dict object every time
    return out


def _grid_pops_keys(space):
    if not space:
        return [{}]
    key = list(space)[0]
    values = space.pop(key)                      # recursion that consumes the caller's dict
    return [{key: v, **rest} for v in values for rest in _grid_pops_keys(space)]


def _grid_tuples(space):
    return list(itertools.product(*space.values()))


# -- log_uniform ------------------------------------------------------------------------------
def log_uniform_cases(rng):
    bounds = [(10.0 ** rng.uniform(-6, -4), 10.0 ** rng.uniform(-2, 0)),     # learning-rate-like
              (10.0 ** rng.uniform(-3, -1), 10.0 ** rng.uniform(1, 2)),     # spans 1
              (rng.uniform(0.5, 1.0), rng.uniform(2.0, 3.0)),                # narrow
              (10.0 ** rng.uniform(-9, -8), 10.0 ** rng.uniform(2, 3))]      # eleven decades
    return [{"low": np.float64(lo), "high": np.float64(hi), "n": np.int64(rng.integers(5, 60)),
             "seed": np.int64(rng.integers(0, 2**31))} for lo, hi in bounds]


def log_uniform_call(student, low, high, n, seed):
    low, high = float(low), float(high)
    samples = np.asarray(student.log_uniform(low, high, int(n), rng=np.random.default_rng(int(seed))))
    many = np.asarray(student.log_uniform(low, high, 200_000, rng=np.random.default_rng(int(seed) + 1)),
                      dtype=np.float64)
    if many.shape != (200_000,):
        raise ValueError(f"log_uniform(low, high, 200000, rng=...) returned shape {many.shape}, expected (200000,)")
    with np.errstate(all="ignore"):
        t = (np.log(many) - np.log(low)) / (np.log(high) - np.log(low))
    counts, _ = np.histogram(t[np.isfinite(t)], bins=10, range=(0.0, 1.0))
    return samples, np.round(counts / many.size, 2)


def log_uniform_reference(low, high, n, seed):
    u = torch.tensor(np.random.default_rng(int(seed)).random(int(n)), dtype=torch.float64, device=low.device)
    log_low, log_high = torch.log(low), torch.log(high)
    return torch.exp(log_low + u * (log_high - log_low)), torch.full((10,), 0.1, dtype=torch.float64)


def _lu_uniform(low, high, n, *, rng):
    return rng.uniform(low, high, size=n)


def _lu_log10_then_exp(low, high, n, *, rng):
    return np.exp(rng.uniform(np.log10(low), np.log10(high), size=n))


def _lu_bounds_not_logged(low, high, n, *, rng):
    return np.exp(rng.uniform(low, high, size=n))


def _lu_global_rng(low, high, n, *, rng):
    return np.exp(np.random.uniform(np.log(low), np.log(high), size=n))


def _lu_normal_in_log_space(low, high, n, *, rng):
    a, b = np.log(low), np.log(high)
    return np.exp(rng.normal((a + b) / 2, (b - a) / 6, size=n))


def _lu_one_draw_repeated(low, high, n, *, rng):
    return np.full(n, np.exp(rng.uniform(np.log(low), np.log(high))))


def _lu_geometric_grid(low, high, n, *, rng):
    return np.geomspace(low, high, n)


def _lu_log_of_uniform(low, high, n, *, rng):
    return np.log(rng.uniform(np.exp(low), np.exp(high), size=n))


# -- random_search ----------------------------------------------------------------------------
def random_search_cases(rng):
    cases = []
    for k, n_trials in ((2, 6), (3, 5), (1, 7), (4, 4)):
        lows = 10.0 ** rng.uniform(-5, -1, size=k)
        highs = lows * 10.0 ** rng.uniform(1, 4, size=k)
        centers = rng.uniform(np.log10(lows), np.log10(highs))
        cases.append({"lows": lows, "highs": highs, "n_trials": np.int64(n_trials),
                      "seed": np.int64(rng.integers(0, 2**31)), "centers": centers,
                      "weights": rng.uniform(0.5, 2.0, size=k), "names": _names_order(rng, k)})
    return cases


def random_search_call(student, lows, highs, n_trials, seed, centers, weights, names):
    keys = [("width", "lr", "momentum", "decay", "batch", "dropout")[int(i)] for i in names]
    space = {key: (float(lo), float(hi)) for key, lo, hi in zip(keys, lows, highs)}
    calls = []

    def objective(config):
        # A smooth bump in log10 space with its top at `centers`; counts its calls.
        calls.append(dict(config))
        return -sum(float(w) * (float(np.log10(config[key])) - float(c)) ** 2
                    for key, w, c in zip(keys, weights, centers))

    returned = student.random_search(objective, space, int(n_trials), rng=np.random.default_rng(int(seed)))
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        raise TypeError("random_search must return a pair (configs, scores)")
    configs, scores = returned
    configs = list(configs)
    for i, config in enumerate(configs):
        if not isinstance(config, dict) or set(config) != set(keys):
            raise ValueError(f"configs[{i}] must be a dict with the keys {sorted(keys)}, got {config!r}"[:200])
    table = np.array([[float(config[key]) for key in keys] for config in configs], dtype=np.float64)
    return table.reshape(len(configs), len(keys)), np.asarray(scores, dtype=np.float64), np.int64(len(calls))


def random_search_reference(lows, highs, n_trials, seed, centers, weights, names):
    k = lows.shape[0]
    u = np.random.default_rng(int(seed)).random((int(n_trials), k))       # trial by trial, key by key
    u = torch.tensor(u, dtype=torch.float64, device=lows.device)
    log_low, log_high = torch.log(lows), torch.log(highs)
    configs = torch.exp(log_low + u * (log_high - log_low))
    scores = -(weights * (torch.log10(configs) - centers) ** 2).sum(dim=1)
    return configs, scores, n_trials.clone()


def _lu(low, high, rng):
    return math.exp(math.log(low) + rng.random() * (math.log(high) - math.log(low)))


def _rs_key_major(objective, space, n_trials, *, rng):
    columns = {key: [_lu(lo, hi, rng) for _ in range(n_trials)] for key, (lo, hi) in space.items()}
    configs = [{key: columns[key][t] for key in space} for t in range(n_trials)]
    return configs, np.array([objective(c) for c in configs])


def _rs_one_config_repeated(objective, space, n_trials, *, rng):
    config = {key: _lu(lo, hi, rng) for key, (lo, hi) in space.items()}
    configs = [dict(config) for _ in range(n_trials)]
    return configs, np.array([objective(c) for c in configs])


def _rs_new_generator(objective, space, n_trials, *, rng):
    rng = np.random.default_rng(0)
    configs = [{key: _lu(lo, hi, rng) for key, (lo, hi) in space.items()} for _ in range(n_trials)]
    return configs, np.array([objective(c) for c in configs])


def _rs_uniform(objective, space, n_trials, *, rng):
    configs = [{key: lo + rng.random() * (hi - lo) for key, (lo, hi) in space.items()} for _ in range(n_trials)]
    return configs, np.array([objective(c) for c in configs])


def _rs_sorted_by_score(objective, space, n_trials, *, rng):
    configs = [{key: _lu(lo, hi, rng) for key, (lo, hi) in space.items()} for _ in range(n_trials)]
    scored = sorted(((objective(c), c) for c in configs), key=lambda p: -p[0])
    return [c for _, c in scored], np.array([s for s, _ in scored])


def _rs_objective_twice(objective, space, n_trials, *, rng):
    configs, scores, best = [], [], -math.inf
    for _ in range(n_trials):
        config = {key: _lu(lo, hi, rng) for key, (lo, hi) in space.items()}
        configs.append(config)
        scores.append(objective(config))
        if objective(config) > best:             # a second training run for the same trial
            best = scores[-1]
    return configs, np.array(scores)


def _rs_sorted_keys(objective, space, n_trials, *, rng):
    configs = [{key: _lu(*space[key], rng) for key in sorted(space)} for _ in range(n_trials)]
    return configs, np.array([objective(c) for c in configs])


def _rs_one_trial_short(objective, space, n_trials, *, rng):
    configs = [{key: _lu(lo, hi, rng) for key, (lo, hi) in space.items()} for _ in range(1, n_trials)]
    return configs, np.array([objective(c) for c in configs])


# -- kfold_indices ----------------------------------------------------------------------------
def kfold_cases(rng):
    cases = []
    for n, k, shuffle in ((int(rng.integers(21, 40)) * 5 + 3, 5, 0),     # n % k == 3
                          (int(rng.integers(21, 40)) * 5 + 3, 5, 1),
                          (int(rng.integers(5, 12)) * 4, 4, 1),         # divides evenly
                          (int(rng.integers(7, 15)), 2, 0),
                          (int(rng.integers(5, 9)), 0, 1),              # k = n: leave-one-out
                          (int(rng.integers(30, 60)) * 7 + 6, 7, 0)):   # n % k == k - 1
        k = n if k == 0 else k
        cases.append({"n": np.int64(n), "k": np.int64(k), "shuffle": np.int64(shuffle),
                      "seed": np.int64(rng.integers(0, 2**31))})
    return cases


def kfold_call(student, n, k, shuffle, seed):
    rng = np.random.default_rng(int(seed)) if int(shuffle) else None
    folds = student.kfold_indices(int(n), int(k), shuffle=bool(shuffle), rng=rng)
    folds = list(folds)
    if len(folds) != int(k):
        raise ValueError(f"kfold_indices returned {len(folds)} folds, expected k = {int(k)}")
    trains, vals = [], []
    for i, fold in enumerate(folds):
        if not isinstance(fold, (tuple, list)) or len(fold) != 2:
            raise TypeError(f"fold {i} must be a pair (train_idx, val_idx)")
        trains.append(np.asarray(fold[0]).ravel())
        vals.append(np.asarray(fold[1]).ravel())
    return (np.concatenate(vals), np.concatenate(trains), np.array([v.size for v in vals], dtype=np.int64))


def kfold_reference(n, k, shuffle, seed):
    n_, k_ = int(n), int(k)
    sizes = [n_ // k_ + 1] * (n_ % k_) + [n_ // k_] * (k_ - n_ % k_)
    if int(shuffle):
        order = torch.tensor(np.random.default_rng(int(seed)).permutation(n_), dtype=torch.int64, device=n.device)
    else:
        order = torch.arange(n_, device=n.device)
    every = torch.arange(n_, device=n.device)
    vals, trains = [], []
    for block in torch.split(order, sizes):
        in_val = torch.zeros(n_, dtype=torch.bool, device=n.device)
        in_val[block] = True
        vals.append(every[in_val])               # sorted
        trains.append(every[~in_val])
    return torch.cat(vals), torch.cat(trains), torch.tensor(sizes, dtype=torch.int64)


def _folds_from_sizes(n, sizes, order):
    folds, start = [], 0
    every = np.arange(n)
    for size in sizes:
        val = np.sort(order[start:start + size])
        folds.append((np.setdiff1d(every, val), val))
        start += size
    return folds


def _order(n, shuffle, rng):
    return rng.permutation(n) if shuffle else np.arange(n)


def _kf_remainder_last(n, k, *, shuffle=False, rng=None):
    sizes = [n // k] * (k - n % k) + [n // k + 1] * (n % k)
    return _folds_from_sizes(n, sizes, _order(n, shuffle, rng))


def _kf_remainder_dropped(n, k, *, shuffle=False, rng=None):
    return _folds_from_sizes(n, [n // k] * k, _order(n, shuffle, rng))


def _kf_remainder_in_last_fold(n, k, *, shuffle=False, rng=None):
    return _folds_from_sizes(n, [n // k] * (k - 1) + [n - (k - 1) * (n // k)], _order(n, shuffle, rng))


def _kf_ceil_sizes(n, k, *, shuffle=False, rng=None):
    size = -(-n // k)
    sizes = [min(size, n - i * size) for i in range(k)]
    return _folds_from_sizes(n, [max(s, 0) for s in sizes], _order(n, shuffle, rng))


def _kf_interleaved(n, k, *, shuffle=False, rng=None):
    order = _order(n, shuffle, rng)
    every = np.arange(n)
    folds = []
    for i in range(k):
        val = np.sort(order[i::k])
        folds.append((np.setdiff1d(every, val), val))
    return folds


def _kf_shuffle_ignored(n, k, *, shuffle=False, rng=None):
    sizes = [n // k + 1] * (n % k) + [n // k] * (k - n % k)
    return _folds_from_sizes(n, sizes, np.arange(n))


def _kf_unsorted(n, k, *, shuffle=False, rng=None):
    order = _order(n, shuffle, rng)
    sizes = [n // k + 1] * (n % k) + [n // k] * (k - n % k)
    folds, start = [], 0
    for size in sizes:
        val = order[start:start + size]          # left in shuffled order
        folds.append((np.setdiff1d(np.arange(n), val), val))
        start += size
    return folds


def _kf_train_is_everything(n, k, *, shuffle=False, rng=None):
    sizes = [n // k + 1] * (n % k) + [n // k] * (k - n % k)
    return [(np.arange(n), val) for _, val in _folds_from_sizes(n, sizes, _order(n, shuffle, rng))]


def _kf_global_rng(n, k, *, shuffle=False, rng=None):
    sizes = [n // k + 1] * (n % k) + [n // k] * (k - n % k)
    return _folds_from_sizes(n, sizes, np.random.permutation(n) if shuffle else np.arange(n))


# -- expected_improvement ---------------------------------------------------------------------
def ei_cases(rng):
    cases = []
    for maximize, xi in ((1, 0.0), (1, 0.25), (0, 0.0), (0, 0.125), (1, 0.5)):
        n = int(rng.integers(12, 30))
        best = float(rng.integers(-8, 9)) / 4                      # dyadic: d == 0 is exact below
        mu = best + rng.uniform(-2.0, 2.0, size=n)
        sigma = 10.0 ** rng.uniform(-2, 0.5, size=n)
        sign = 1.0 if maximize else -1.0
        # sigma == 0 with d > 0, d < 0 and d == 0 exactly (mu = best +- xi, all dyadic)
        mu[:3] = best + sign * xi + np.array([0.75, -0.5, 0.0]) * sign
        sigma[:3] = 0.0
        mu[3] = best + sign * xi                                   # d == 0 with sigma > 0: EI = sigma phi(0)
        sigma[4] = 1e-12                                           # tiny sigma: |z| huge
        mu[5], sigma[5] = best + sign * (xi - 3.0), 0.4            # far below: EI tiny but positive
        order = rng.permutation(n)
        cases.append({"mu": mu[order], "sigma": sigma[order], "best": np.float64(best), "xi": np.float64(xi),
                      "maximize": np.int64(maximize)})
    return cases


def ei_call(student, mu, sigma, best, xi, maximize):
    return student.expected_improvement(mu, sigma, float(best), xi=float(xi), maximize=bool(maximize))


def ei_reference(mu, sigma, best, xi, maximize):
    d = (mu - best - xi) if int(maximize) else (best - mu - xi)
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64, device=mu.device),
                                        torch.tensor(1.0, dtype=torch.float64, device=mu.device))
    safe = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
    z = d / safe
    ei = d * normal.cdf(z) + safe * torch.exp(normal.log_prob(z))
    return torch.where(sigma > 0, ei, torch.clamp(d, min=0.0))


def _phi(z):
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _cdf(z):
    return 0.5 * (1.0 + np.vectorize(math.erf)(np.asarray(z, dtype=np.float64) / math.sqrt(2.0)))


def _ei_from_d(d, sigma):
    safe = np.where(sigma > 0, sigma, 1.0)
    z = d / safe
    return np.where(sigma > 0, d * _cdf(z) + safe * _phi(z), np.maximum(d, 0.0))


def _ei_missing_xi(mu, sigma, best, *, xi=0.0, maximize=True):
    return _ei_from_d((mu - best) if maximize else (best - mu), sigma)


def _ei_xi_added(mu, sigma, best, *, xi=0.0, maximize=True):
    return _ei_from_d((mu - best + xi) if maximize else (best - mu + xi), sigma)


def _ei_maximize_ignored(mu, sigma, best, *, xi=0.0, maximize=True):
    return _ei_from_d(mu - best - xi, sigma)                # the maximization formula for minimization too


def _ei_pdf_for_cdf(mu, sigma, best, *, xi=0.0, maximize=True):
    d = (mu - best - xi) if maximize else (best - mu - xi)
    safe = np.where(sigma > 0, sigma, 1.0)
    z = d / safe
    return np.where(sigma > 0, d * _phi(z) + safe * _phi(z), np.maximum(d, 0.0))


def _ei_cdf_for_pdf(mu, sigma, best, *, xi=0.0, maximize=True):
    d = (mu - best - xi) if maximize else (best - mu - xi)
    safe = np.where(sigma > 0, sigma, 1.0)
    z = d / safe
    return np.where(sigma > 0, d * _cdf(z) + safe * _cdf(z), np.maximum(d, 0.0))


def _ei_no_sigma_guard(mu, sigma, best, *, xi=0.0, maximize=True):
    d = (mu - best - xi) if maximize else (best - mu - xi)
    z = d / sigma                                           # 0 / 0 = NaN where sigma == 0 and d == 0
    return d * _cdf(z) + sigma * _phi(z)


def _ei_zero_when_certain(mu, sigma, best, *, xi=0.0, maximize=True):
    d = (mu - best - xi) if maximize else (best - mu - xi)
    return np.where(sigma > 0, _ei_from_d(d, sigma), 0.0)


def _ei_sigma_as_variance(mu, sigma, best, *, xi=0.0, maximize=True):
    d = (mu - best - xi) if maximize else (best - mu - xi)
    return _ei_from_d(d, np.sqrt(sigma))


def _ei_missing_sigma_factor(mu, sigma, best, *, xi=0.0, maximize=True):
    d = (mu - best - xi) if maximize else (best - mu - xi)
    safe = np.where(sigma > 0, sigma, 1.0)
    z = d / safe
    return np.where(sigma > 0, d * _cdf(z) + _phi(z), np.maximum(d, 0.0))


# -- best_trial -------------------------------------------------------------------------------
def best_cases(rng):
    cases = []
    for maximize, n, n_nan, nan_first in ((1, 12, 2, True), (0, 15, 3, True), (1, 9, 0, False),
                                          (0, 20, 1, False), (1, 6, 5, False)):
        scores = np.round(rng.uniform(-1.0, 1.0, size=n), 1)           # one decimal: ties happen
        extreme = scores.max() if maximize else scores.min()
        tie = rng.choice(np.flatnonzero(scores != extreme), size=min(2, int(np.sum(scores != extreme))), replace=False)
        scores[tie] = extreme                                          # at least three tied best scores
        nan_at = rng.choice(n, size=n_nan, replace=False)
        if nan_first:
            nan_at[0] = 0
        keep = np.flatnonzero(scores == extreme)
        scores[nan_at] = np.nan
        if not np.any(scores == extreme):                              # never NaN out every best score
            scores[keep[-1]] = extreme
        cases.append({"scores": scores, "lrs": 10.0 ** rng.uniform(-4, 0, size=n), "maximize": np.int64(maximize)})
    return cases


def best_call(student, scores, lrs, maximize):
    results = [{"trial": i, "lr": float(lr), "score": float(s)} for i, (lr, s) in enumerate(zip(lrs, scores))]
    before = [repr(row) for row in results]
    row = student.best_trial(results, maximize=bool(maximize))
    if not isinstance(row, dict) or "trial" not in row:
        raise TypeError(f"best_trial must return one of the rows (a dict), got {type(row).__name__}")
    unchanged = [repr(r) for r in results] == before
    return np.int64(row["trial"]), np.int64(unchanged)


def best_reference(scores, lrs, maximize):
    if int(maximize):
        index = torch.argmax(torch.nan_to_num(scores, nan=-math.inf))
    else:
        index = torch.argmin(torch.nan_to_num(scores, nan=math.inf))
    return index.to(torch.int64), torch.tensor(1, dtype=torch.int64)


def _best_last_tie(results, *, maximize=True):
    best = None
    for row in results:
        s = row["score"]
        if math.isnan(s):
            continue
        if best is None or (s >= best["score"] if maximize else s <= best["score"]):
            best = row
    return best


def _best_maximize_ignored(results, *, maximize=True):
    scores = np.array([r["score"] for r in results])
    return results[int(np.nanargmax(scores))]


def _best_nan_not_skipped(results, *, maximize=True):
    scores = np.array([r["score"] for r in results])
    return results[int(np.argmax(scores) if maximize else np.argmin(scores))]


def _best_builtin_max(results, *, maximize=True):
    if maximize:
        return max(results, key=lambda r: r["score"])
    return min(results, key=lambda r: r["score"])


def _best_sorted_last(results, *, maximize=True):
    ok = [r for r in results if not math.isnan(r["score"])]
    ranked = sorted(ok, key=lambda r: r["score"])
    return ranked[-1] if maximize else ranked[0]


def _best_sorts_in_place(results, *, maximize=True):
    results.sort(key=lambda r: (math.isnan(r["score"]), -r["score"] if maximize else r["score"]))
    return results[0]


def _best_minimize_inverted(results, *, maximize=True):
    scores = np.array([r["score"] for r in results])
    filled = np.where(np.isnan(scores), -np.inf, scores)
    return results[int(np.argmax(filled) if maximize else np.argmax(-filled))]   # -(-inf) = +inf wins


# == Understanding: what the chapter teaches you to predict (Parts 7 and 8) =====================
# Graded like the other parts, on hidden cases from the secret seed; the answers need only numpy and
# the standard library. Each mutant is a typical wrong answer (guesses included) with the feedback a
# student who gave it should read, and the book section that explains the right one.
LOWER_LR, RAISE_LR, STOP_EARLIER, KEEP = ("lower the learning rate", "raise the learning rate", "stop earlier",
                                          "keep the settings")


# -- sweep_advice: what to change, from a run's training loss and validation accuracy -------------
def _sweep_run(rng, kind, epochs, *, overflow=False, wiggle=False):
    """(training loss, validation accuracy), at the start and after each epoch, of a run on 10 classes."""
    t = np.arange(epochs + 1) / epochs
    start = np.log(10.0) * rng.uniform(0.98, 1.03)
    noise = rng.normal(0.0, 0.004, size=epochs + 1)
    if kind == "too large":                     # the loss blows up; the network ends at chance
        top = 10.0 ** rng.uniform(1.0, 4.0)
        loss = start * np.exp(np.log(top / start) * t ** rng.uniform(0.5, 2.0))
        if overflow or rng.random() < 0.3:
            loss[-int(rng.integers(1, 4)):] = rng.choice([np.nan, np.inf]) if not overflow else np.nan
        acc = np.clip(0.1 + rng.uniform(0.0, 0.3) * np.sin(np.pi * t) * (t < 0.3) + noise, 0.0, 1.0)
    elif kind == "too small":                   # ten epochs barely move the weights
        loss = start * (1 - rng.uniform(0.01, 0.06) * t)
        acc = np.clip(rng.uniform(0.05, 0.15) + rng.uniform(0.05, 0.3) * t + noise, 0.0, 1.0)
    elif kind == "overfits":                    # memorizes the noise: validation peaks, then falls
        loss = start * np.exp(-rng.uniform(3.0, 6.0) * t)
        peak_at, peak = rng.uniform(0.2, 0.5), rng.uniform(0.8, 0.95)
        acc = np.where(t <= peak_at, 0.1 + (peak - 0.1) * np.sqrt(t / peak_at),
                       peak - rng.uniform(0.08, 0.15) * (t - peak_at) / (1 - peak_at))
        acc = np.clip(acc + noise, 0.0, 1.0)
    else:                                       # good: falls and levels off
        loss = start * np.exp(-rng.uniform(1.5, 3.5) * t)
        final = rng.uniform(0.85, 0.97)
        acc = 0.1 + (final - 0.1) * (1 - np.exp(-rng.uniform(4.0, 8.0) * t)) / (1 - np.exp(-4.0))
        acc = np.clip(np.minimum(acc, final) + noise / 2, 0.0, 1.0)
        if wiggle:                              # its best epoch is not the last, by a hair
            acc[-1] = acc.max() - rng.uniform(0.003, 0.008)
    return loss, acc


_SWEEP = {"too large": LOWER_LR, "too small": RAISE_LR, "overfits": STOP_EARLIER, "good": KEEP}


def sweep_cases(rng):
    cases = []
    for _ in range(5):
        epochs, n_runs = int(rng.integers(10, 31)), int(rng.integers(6, 9))
        kinds = list(_SWEEP) + list(rng.choice(list(_SWEEP), size=n_runs - 4))
        # kinds[0] diverges to nan, kinds[3] is a good run whose best epoch is just before the last
        runs = [_sweep_run(rng, kinds[i], epochs, overflow=i == 0, wiggle=i == 3) for i in rng.permutation(n_runs)]
        cases.append({"train_loss": np.array([r[0] for r in runs]), "val_acc": np.array([r[1] for r in runs])})
    return cases


def _advice(loss, acc):
    if not np.all(np.isfinite(loss)) or loss[-1] > loss[0]:
        return LOWER_LR
    if loss[-1] > 0.9 * loss[0]:
        return RAISE_LR
    if acc.max() - acc[-1] > 0.03:
        return STOP_EARLIER
    return KEEP


def sweep_reference(train_loss, val_acc):
    return np.array([_advice(l, a) for l, a in zip(train_loss.cpu().numpy(), val_acc.cpu().numpy())])


def _sweep_nan_unseen(train_loss, val_acc):
    def advice(loss, acc):
        if loss[-1] > loss[0]:                  # False for nan
            return LOWER_LR
        if loss[-1] > 0.9 * loss[0]:
            return RAISE_LR
        return STOP_EARLIER if acc.max() - acc[-1] > 0.03 else KEEP
    return np.array([advice(l, a) for l, a in zip(train_loss, val_acc)])


def _sweep_accuracy_only(train_loss, val_acc):
    # "a low final validation accuracy means the learning rate is too small"
    return np.array([RAISE_LR if a[-1] < 0.5 else STOP_EARLIER if a.max() - a[-1] > 0.03 else KEEP
                     for a in val_acc])


def _sweep_overfit_lower_lr(train_loss, val_acc):
    advice = sweep_reference(torch.tensor(train_loss), torch.tensor(val_acc))
    return np.where(advice == STOP_EARLIER, LOWER_LR, advice)


def _sweep_first_vs_last(train_loss, val_acc):
    # overfitting judged by comparing the last validation accuracy with the first
    def advice(loss, acc):
        a = _advice(loss, acc)
        return (STOP_EARLIER if acc[-1] < acc[0] else KEEP) if a in (STOP_EARLIER, KEEP) else a
    return np.array([advice(l, a) for l, a in zip(train_loss, val_acc)])


def _sweep_any_drop(train_loss, val_acc):
    # any epoch after the best one counts as overfitting, however small the drop
    def advice(loss, acc):
        a = _advice(loss, acc)
        return (STOP_EARLIER if np.argmax(acc) < len(acc) - 1 else KEEP) if a in (STOP_EARLIER, KEEP) else a
    return np.array([advice(l, a) for l, a in zip(train_loss, val_acc)])


def _sweep_always(label):
    def guess(train_loss, val_acc):
        return np.array([label] * len(train_loss))
    guess.__name__ = "_sweep_always_" + label.replace(" ", "_")
    return guess


# -- search_coverage: uniform against log-uniform draws, and the chance that random search finds a range --
def coverage_cases(rng):
    cases = []
    for k in range(6):
        low = 10.0 ** rng.uniform(-6.0, -2.0)
        high = low * 10.0 ** rng.uniform(2.0, 5.0)
        span = np.log(high / low)
        # positions of a and b on the log scale of the range (0 = low, 1 = high): inside for even k,
        # reaching beyond the bottom (k = 1), the top (k = 3) or both (k = 5) of the range
        u, v = np.sort(rng.uniform(0.05, 0.95, size=2))
        if k in (1, 5):
            u = rng.uniform(-0.3, -0.05)
        if k in (3, 5):
            v = rng.uniform(1.05, 1.3)
        v = max(v, u + 0.05)
        cases.append({"low": np.float64(low), "high": np.float64(high), "a": np.float64(low * np.exp(u * span)),
                      "b": np.float64(low * np.exp(v * span)), "n_trials": np.int64(rng.integers(5, 61))})
    return cases


def coverage_call(student, low, high, a, b, n_trials):
    return student.search_coverage(float(low), float(high), float(a), float(b), int(n_trials))


def coverage_reference(low, high, a, b, n_trials):
    lo, hi = torch.maximum(a, low), torch.minimum(b, high)
    uniform = torch.clamp(hi - lo, min=0) / (high - low)
    log_share = torch.clamp(torch.log(hi) - torch.log(lo), min=0) / (torch.log(high) - torch.log(low))
    return uniform, log_share, 1 - (1 - log_share) ** n_trials


def _coverage(low, high, a, b, n, *, clip=True, hit=None, log_formula=None):
    lo, hi = (max(a, low), min(b, high)) if clip else (a, b)
    uniform = max(hi - lo, 0.0) / (high - low)
    log_share = log_formula(lo, hi) if log_formula else max(np.log(hi) - np.log(lo), 0.0) / np.log(high / low)
    return uniform, log_share, (hit or (lambda s: 1 - (1 - s) ** n))(log_share)


def _coverage_no_clip(low, high, a, b, n_trials):
    return _coverage(low, high, a, b, n_trials, clip=False)


def _coverage_swapped(low, high, a, b, n_trials):
    uniform, log_share, _ = _coverage(low, high, a, b, n_trials)
    return log_share, uniform, 1 - (1 - uniform) ** n_trials


def _coverage_union_bound(low, high, a, b, n_trials):
    return _coverage(low, high, a, b, n_trials, hit=lambda s: n_trials * s)


def _coverage_all_trials(low, high, a, b, n_trials):
    return _coverage(low, high, a, b, n_trials, hit=lambda s: s**n_trials)


def _coverage_whole_decades(low, high, a, b, n_trials):
    def decades(lo, hi):
        return max(np.floor(np.log10(hi)) - np.ceil(np.log10(lo)), 0.0) / np.log10(high / low)
    return _coverage(low, high, a, b, n_trials, log_formula=decades)


def _coverage_constant(low, high, a, b, n_trials):
    return 0.5, 0.5, 0.5


_LR_BOOK = "ch06-lr"
_RANDOM_BOOK = "ch06-random"
UNDERSTANDING_PARTS = [
    Part(id="sweep_advice", points=2, function="sweep_advice", outputs=("advice",),
         cases=sweep_cases, reference=sweep_reference,
         mutants={
             "a loss that became nan not seen": Mutant(_sweep_nan_unseen, book=_LR_BOOK, feedback=(
                 "A loss that overflowed is inf or nan, and nan compares False with everything: a run whose loss "
                 "is not finite has diverged, the clearest sign of a learning rate that is too large.")),
             "judged by the validation accuracy alone": Mutant(_sweep_accuracy_only, book=_LR_BOOK, feedback=(
                 "A run that ends at chance can have a learning rate that is too small (its loss barely moved) or "
                 "too large (its loss exploded): the training loss tells the two failure modes apart.")),
             "overfitting cured by a lower learning rate": Mutant(_sweep_overfit_lower_lr, book="ch06-epochs",
                                                                  feedback=(
                 "A validation accuracy that peaks and then falls while the training loss keeps falling is "
                 "overfitting: too many epochs. Stop at the validation peak (early stopping).")),
             "last validation accuracy against the first": Mutant(_sweep_first_vs_last, book="ch06-epochs",
                                                                  feedback=(
                 "An overfitting run still ends far above where it started; what matters is the fall from the "
                 "validation peak to the last epoch.")),
             "any epoch after the best counts": Mutant(_sweep_any_drop, book="ch06-noise", feedback=(
                 "Validation scores are noisy: a last epoch a few thousandths below the best is not overfitting. "
                 "Look for a clear fall from the peak.")),
             "always keep": Mutant(_sweep_always(KEEP), book=_LR_BOOK, feedback=(
                 "Read each run's curves: the learning rate has two failure modes, and the number of epochs a third.")),
             "always lower the learning rate": Mutant(_sweep_always(LOWER_LR), book=_LR_BOOK, feedback=(
                 "Only a loss that rises or overflows calls for a lower learning rate.")),
         }),
    Part(id="search_coverage", points=2, function="search_coverage", outputs=("uniform", "log_uniform", "found"),
         cases=coverage_cases, reference=coverage_reference, call=coverage_call,
         mutants={
             "good range not cut to the search range": Mutant(_coverage_no_clip, book=_RANDOM_BOOK, feedback=(
                 "Only the part of the good range inside [low, high] can be drawn: intersect the two ranges first "
                 "(a share is never negative or above 1).")),
             "uniform and log-uniform swapped": Mutant(_coverage_swapped, book=_RANDOM_BOOK, feedback=(
                 "Under a uniform draw the share is a ratio of lengths; under a log-uniform draw, a ratio of "
                 "lengths of the logarithms (every decade equally likely). Random search draws scale parameters "
                 "log-uniformly.")),
             "n times the share": Mutant(_coverage_union_bound, book=_RANDOM_BOOK, feedback=(
                 "The trials are independent: the chance that none lands in the range is (1 - s)^n, so the "
                 "chance that at least one does is 1 - (1 - s)^n, not n s (which can exceed 1).")),
             "all trials in the range": Mutant(_coverage_all_trials, book=_RANDOM_BOOK, feedback=(
                 "s^n is the chance that every trial lands in the range; one good trial is enough: 1 - (1 - s)^n.")),
             "whole decades only": Mutant(_coverage_whole_decades, book=_RANDOM_BOOK, feedback=(
                 "A log-uniform draw spreads evenly over the logarithm, fractions of decades included: use "
                 "log(b) - log(a), not a count of whole decades.")),
             "a constant": Mutant(_coverage_constant, book=_RANDOM_BOOK, feedback=(
                 "The shares depend on the ranges and the chance on the number of trials: compute them for each case.")),
         }),
]


PARTS = [
    Part(id="grid", points=1, function="grid", outputs=("configs", "space_unchanged"),
         cases=grid_cases, reference=grid_reference, call=grid_call,
         forbid=("mlp_lib.tuning.grid_search",),
         mutants={"first key varies fastest": Mutant(_grid_first_key_fastest),
                  "keys in alphabetical order": Mutant(_grid_sorted_keys),
                  "values sorted": Mutant(_grid_sorted_values),
                  "zip instead of product": Mutant(_grid_zip),
                  "one dict object reused": Mutant(_grid_one_dict_reused),
                  "pops the keys of space": Mutant(_grid_pops_keys),
                  "tuples instead of dicts": Mutant(_grid_tuples)}),
    Part(id="log_uniform", points=2, function="log_uniform", outputs=("samples", "decile_fractions"),
         cases=log_uniform_cases, reference=log_uniform_reference, call=log_uniform_call, rtol=1e-9, atol=0.0,
         forbid=("mlp_lib.tuning.LogUniform", "mlp_lib.tuning.sample_configs", "mlp_lib.tuning.random_search"),
         mutants={"uniform, not log-uniform": Mutant(_lu_uniform),
                  "log10 bounds, natural exp": Mutant(_lu_log10_then_exp),
                  "bounds not logged": Mutant(_lu_bounds_not_logged),
                  "numpy's global random state": Mutant(_lu_global_rng),
                  "normal in log space": Mutant(_lu_normal_in_log_space),
                  "one draw repeated": Mutant(_lu_one_draw_repeated),
                  "geometric grid": Mutant(_lu_geometric_grid),
                  "log of a uniform": Mutant(_lu_log_of_uniform)}),
    Part(id="random_search", points=2, function="random_search", outputs=("configs", "scores", "calls"),
         cases=random_search_cases, reference=random_search_reference, call=random_search_call, atol=0.0,
         forbid=("mlp_lib.tuning.sample_configs", "mlp_lib.tuning.LogUniform"),
         mutants={"all values of one key first": Mutant(_rs_key_major),
                  "one config repeated": Mutant(_rs_one_config_repeated),
                  "a new Generator inside": Mutant(_rs_new_generator),
                  "uniform, not log-uniform": Mutant(_rs_uniform),
                  "trials sorted by score": Mutant(_rs_sorted_by_score),
                  "objective called twice per trial": Mutant(_rs_objective_twice),
                  "keys drawn in alphabetical order": Mutant(_rs_sorted_keys),
                  "one trial short": Mutant(_rs_one_trial_short)}),
    Part(id="kfold_indices", points=2, function="kfold_indices", outputs=("val", "train", "sizes"),
         cases=kfold_cases, reference=kfold_reference, call=kfold_call,
         forbid=("mlp_lib.tuning.stratified_kfold_indices",),
         mutants={"extra examples in the last folds": Mutant(_kf_remainder_last),
                  "remainder dropped": Mutant(_kf_remainder_dropped),
                  "remainder all in the last fold": Mutant(_kf_remainder_in_last_fold),
                  "ceil(n / k) per fold": Mutant(_kf_ceil_sizes),
                  "interleaved folds": Mutant(_kf_interleaved),
                  "shuffle ignored": Mutant(_kf_shuffle_ignored),
                  "validation indices not sorted": Mutant(_kf_unsorted),
                  "training set includes the fold": Mutant(_kf_train_is_everything),
                  "numpy's global random state": Mutant(_kf_global_rng)}),
    Part(id="expected_improvement", points=2, function="expected_improvement", outputs=("ei",),
         cases=ei_cases, reference=ei_reference, call=ei_call, atol=1e-9,
         mutants={"missing xi": Mutant(_ei_missing_xi),
                  "xi added instead of subtracted": Mutant(_ei_xi_added),
                  "wrong sign for minimization": Mutant(_ei_maximize_ignored),
                  "pdf where the cdf belongs": Mutant(_ei_pdf_for_cdf),
                  "cdf where the pdf belongs": Mutant(_ei_cdf_for_pdf),
                  "no guard for sigma = 0": Mutant(_ei_no_sigma_guard, diagnosis="unstable"),
                  "zero where sigma = 0": Mutant(_ei_zero_when_certain),
                  "sigma treated as a variance": Mutant(_ei_sigma_as_variance),
                  "missing sigma factor": Mutant(_ei_missing_sigma_factor)}),
    Part(id="best_trial", points=1, function="best_trial", outputs=("trial", "results_unchanged"),
         cases=best_cases, reference=best_reference, call=best_call,
         forbid=("mlp_lib.tuning.TrialTable",),
         mutants={"ties go to the last trial": Mutant(_best_last_tie),
                  "maximize ignored": Mutant(_best_maximize_ignored),
                  "NaN not skipped": Mutant(_best_nan_not_skipped),
                  "built-in max with NaN": Mutant(_best_builtin_max),
                  "sorted, last of the ties": Mutant(_best_sorted_last),
                  "sorts the results in place": Mutant(_best_sorts_in_place),
                  "minimize by negating -inf": Mutant(_best_minimize_inverted)}),
    *UNDERSTANDING_PARTS,
]
