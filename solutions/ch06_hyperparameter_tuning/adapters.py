"""How Chapter 6's parts call the student's functions (runs in the student's process: numpy and the stdlib).

The parts take and return dicts and lists; the adapters build them from a case's arrays and hand
back arrays. Dicts and lists cannot be handed over read-only as arrays are, so the adapters check
what the statements ask of them — ``space`` and ``results`` left as they were, every configuration
a new dict — and raise a message that says what was changed.
"""
import numpy as np

# Hyperparameter names; a case picks them by index, in an order that is not alphabetical.
NAMES = ("width", "lr", "momentum", "decay", "batch", "dropout")


def keys_of(names):
    return [NAMES[int(i)] for i in names]


def check_space_unchanged(function, space, before):
    """Raise when ``function`` changed the dict ``space`` (``before``: a deep copy taken before the call)."""
    if list(space) != list(before):
        raise ValueError(f"{function} changed its argument space: its keys were {list(before)}, they are now "
                         f"{list(space)}; leave space as it was")
    for key, values in before.items():
        if list(space[key]) != list(values):
            raise ValueError(f"{function} changed its argument space: the values of {key!r} were changed or "
                             "reordered; leave space as it was")


def grid(student, values, sizes, names):
    keys, space, start = keys_of(names), {}, 0
    for key, size in zip(keys, sizes.tolist()):
        space[key] = values[start:start + size].tolist()
        start += size
    before = {key: list(v) for key, v in space.items()}
    configs = student.grid(space)
    check_space_unchanged("grid", space, before)
    if not isinstance(configs, list):
        raise TypeError(f"grid must return a list of dicts, got {type(configs).__name__}")
    for i, config in enumerate(configs):
        if not isinstance(config, dict):
            raise TypeError(f"grid()[{i}] is a {type(config).__name__}, expected a dict {{name: value}}")
        if set(config) != set(keys):
            raise ValueError(f"grid()[{i}] has the keys {sorted(config)}, expected {sorted(keys)}")
    if len({id(config) for config in configs}) != len(configs):
        raise ValueError("grid returned the same dict object more than once: every configuration must be a new dict")
    table = [[float(config[key]) for key in keys] for config in configs]
    return np.array(table, dtype=np.float64).reshape(len(configs), len(keys))


def log_uniform(student, low, high, n, seed):
    """The first ``n`` samples from a seeded Generator, and the decile fractions of 200 000 more."""
    samples = np.asarray(student.log_uniform(low, high, n, rng=np.random.default_rng(seed)))
    many = np.asarray(student.log_uniform(low, high, 200_000, rng=np.random.default_rng(seed + 1)), dtype=np.float64)
    if many.shape != (200_000,):
        raise ValueError(f"log_uniform(low, high, 200000, rng=...) returned shape {many.shape}, expected (200000,)")
    with np.errstate(all="ignore"):
        t = (np.log(many) - np.log(low)) / (np.log(high) - np.log(low))
    counts, _ = np.histogram(t[np.isfinite(t)], bins=10, range=(0.0, 1.0))
    return samples, np.round(counts / many.size, 2)


def random_search(student, lows, highs, n_trials, seed, centers, weights, names):
    keys = keys_of(names)
    space = {key: (float(lo), float(hi)) for key, lo, hi in zip(keys, lows, highs)}
    before = dict(space)
    calls = []

    def objective(config):
        # A smooth bump in log10 space with its top at `centers`; counts its calls.
        calls.append(dict(config))
        return -sum(float(w) * (float(np.log10(config[key])) - float(c)) ** 2
                    for key, w, c in zip(keys, weights, centers))

    returned = student.random_search(objective, space, n_trials, rng=np.random.default_rng(seed))
    check_space_unchanged("random_search", space, before)
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        raise TypeError("random_search must return a pair (configs, scores)")
    configs, scores = returned
    configs = list(configs)
    for i, config in enumerate(configs):
        if not isinstance(config, dict) or set(config) != set(keys):
            raise ValueError(f"configs[{i}] must be a dict with the keys {sorted(keys)}, got {config!r}"[:200])
    table = np.array([[float(config[key]) for key in keys] for config in configs], dtype=np.float64)
    return table.reshape(len(configs), len(keys)), np.asarray(scores, dtype=np.float64), np.int64(len(calls))


def kfold_indices(student, n, k, shuffle, seed):
    """The folds as (every validation fold concatenated, every training fold concatenated, fold sizes)."""
    rng = np.random.default_rng(seed) if shuffle else None
    folds = list(student.kfold_indices(n, k, shuffle=shuffle, rng=rng))
    if len(folds) != k:
        raise ValueError(f"kfold_indices returned {len(folds)} folds, expected k = {k}")
    trains, vals = [], []
    for i, fold in enumerate(folds):
        if not isinstance(fold, (tuple, list)) or len(fold) != 2:
            raise TypeError(f"fold {i} must be a pair (train_idx, val_idx)")
        trains.append(np.asarray(fold[0]).ravel())
        vals.append(np.asarray(fold[1]).ravel())
    return np.concatenate(vals), np.concatenate(trains), np.array([v.size for v in vals], dtype=np.int64)


def best_trial(student, scores, lrs, maximize):
    """The trial number of the row best_trial returns; ``results`` must be left as it was."""
    results = [{"trial": i, "lr": float(lr), "score": float(s)} for i, (lr, s) in enumerate(zip(lrs, scores))]
    rows, before = list(results), [repr(row) for row in results]
    row = student.best_trial(results, maximize=maximize)
    if [id(r) for r in results] != [id(r) for r in rows]:
        raise ValueError("best_trial reordered (or shortened) the list results itself: leave it as it was")
    if [repr(r) for r in results] != before:
        raise ValueError("best_trial changed a row of results: leave the rows as they were")
    if not isinstance(row, dict) or "trial" not in row:
        raise TypeError(f"best_trial must return one of the rows (a dict), got {type(row).__name__}")
    return np.int64(row["trial"])
