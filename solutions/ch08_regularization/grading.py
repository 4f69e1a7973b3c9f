"""Grading spec of Chapter 8's exercise: weight penalties, early stopping, SGD with weight decay.

Every Part draws its cases from the grader's rng and is judged against a reference computed in
the grader (float64): torch's autograd for the penalties, ``torch.optim.SGD`` for the optimizer
step, and a plain-Python transcription of the stopping rule for early stopping. Conventions, as
stated in the exercise and in the book (``mlp_lib`` computes the same values):

* the penalties take a list of weight arrays (any shapes) and a strength ``lam`` and return
  ``(value, grads)``, ``grads`` a list of arrays of the weights' shapes:

  - ``l2_penalty``: ``value = lam / 2 * sum_l ||W_l||^2``, ``grad_l = lam * W_l``;
  - ``l1_penalty``: ``value = lam * sum_l ||W_l||_1``, ``grad_l = lam * sign(W_l)``, 0 where
    ``W_l`` is exactly 0 (torch's autograd of ``abs``);
  - ``elastic_net_penalty(weights, lam, l1_ratio)``: scikit-learn's convention
    ``value = lam * (l1_ratio * ||W||_1 + (1 - l1_ratio) / 2 * ||W||^2)`` summed over the list,
    gradient ``lam * (l1_ratio * sign(W) + (1 - l1_ratio) * W)``;

  the list travels as one flat vector and its layout (``rows``, ``cols``; ``cols == 0`` is a
  1-D array); the arrays handed to the student are read-only *views* of it, so that an in-place
  change fails, and ``grads`` must be new arrays (returning a weight array fails). Every case
  holds exact zeros (the L1 kink) and several arrays of different scales;
* ``early_stopping(val_losses, *, patience, min_delta=0.0) -> (stop_epoch, best_epoch)``, epochs
  0-based: an epoch improves when ``loss < best - min_delta`` (strictly; the first epoch always
  improves and ``best`` changes only when an epoch improves); ``stop_epoch`` is the first epoch
  at which the number of consecutive epochs without improvement reaches ``patience``, or the
  last epoch when that never happens; ``best_epoch`` is the last epoch that improved. The cases
  are built from integers divided by 64 (exact in float64), so ties with the best value and
  losses exactly ``min_delta`` below it occur on purpose;
* ``sgd_step(params, grads, velocities, *, lr, momentum=0.0, weight_decay=0.0)`` is
  ``torch.optim.SGD(lr, momentum, weight_decay)`` (dampening 0, no Nesterov) with the decay on
  the **weights only**: arrays with ``ndim >= 2`` get ``g + weight_decay * p``, 1-D arrays
  (biases) are updated without decay; the reference uses two parameter groups. The grader runs
  3 to 6 steps from the case's velocities (zeros, or, in one case, those an earlier run left:
  torch's momentum buffers), feeding the student's own parameters and velocities back (as
  read-only copies), with a fixed random gradient sequence, and grades the parameters after every
  step (the velocities are the student's internal state and are not compared directly). Early
  stopping cases 4 to 9 are deliberate (ties, a loss exactly min_delta below the best, declines
  smaller than min_delta, a zig-zag, a run that never stops, a spike between declines).

The adapters live in ``adapters.py`` (sent to the student's process). Every mistake carries the
feedback a student who made it reads, and the book section that explains the right way.

Each mutant is a typical mistake; tests/test_assignment_ch08.py checks that each loses the points
of its own part, and only those, and is named by its feedback, on several seeds.
"""
import numpy as np
import torch

import adapters
from autograder.inside.harness import unpack_arrays
from autograder.spec import Mutant, Part

PUBLIC_SEED = 1992               # the year of Krogh & Hertz's weight-decay paper
# the locked cells the answers may rely on: the imports, and the answers' vocabulary of Parts 7 and on
SETUP = ("setup", "understanding-setup")


# -- shared layout of a list of arrays --------------------------------------------------------------
def _layout(rng, specs):
    """specs: list of (shape, scale); returns flat, rows, cols with about one entry in six set to 0."""
    rows, cols, parts = [], [], []
    for shape, scale in specs:
        size = int(np.prod(shape))
        values = scale * rng.standard_normal(size)
        values[rng.random(size) < 1 / 6] = 0.0           # exact zeros: the kink of |w|
        values[int(rng.integers(size))] = 0.0            # ... at least one per array
        rows.append(shape[0])
        cols.append(shape[1] if len(shape) == 2 else 0)
        parts.append(values)
    return (np.concatenate(parts), np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64))


def _weight_specs(rng):
    """Four lists of weights: a 3-layer MLP, a single matrix, a mix with a vector, tiny and large scales."""
    d = [int(v) for v in rng.integers(2, 9, size=4)]
    return [
        [((d[0], d[1]), 1.0), ((d[1], d[2]), 0.5), ((d[2], d[3]), 2.0)],
        [((int(rng.integers(5, 12)), int(rng.integers(2, 5))), 1.0)],
        [((d[1], d[0]), 0.1), ((int(rng.integers(3, 9)),), 3.0), ((d[3], d[2]), 1.0)],
        [((d[2], d[1]), 1e-3), ((d[0], d[3]), 10.0)],
    ]


def _lams(rng):
    return [float(10 ** rng.uniform(-3, -1)), float(rng.uniform(0.2, 2.0)), 1.0, float(10 ** rng.uniform(-4, -2))]


def penalty_cases(rng):
    cases = []
    for specs, lam in zip(_weight_specs(rng), _lams(rng)):
        flat, rows, cols = _layout(rng, specs)
        cases.append({"flat": flat, "rows": rows, "cols": cols, "lam": np.float64(lam)})
    return cases


def _leaves(flat, rows, cols):
    return [a.clone().requires_grad_(True) for a in unpack_arrays(flat, rows, cols)]


def _value_and_grads(value, leaves):
    value.backward()
    return value.detach(), torch.cat([t.grad.flatten() for t in leaves])


# -- l2_penalty ---------------------------------------------------------------------------------------
def l2_reference(flat, rows, cols, lam):
    leaves = _leaves(flat, rows, cols)
    return _value_and_grads(lam / 2 * sum((t ** 2).sum() for t in leaves), leaves)


def _l2_no_half(weights, lam):
    return lam * sum(float(np.sum(w * w)) for w in weights), [lam * w for w in weights]


def _l2_grad_2lam(weights, lam):
    return lam / 2 * sum(float(np.sum(w * w)) for w in weights), [2 * lam * w for w in weights]


def _l2_grad_no_lam(weights, lam):
    return lam / 2 * sum(float(np.sum(w * w)) for w in weights), [w.copy() for w in weights]


def _l2_norm_not_squared(weights, lam):
    return lam / 2 * sum(float(np.linalg.norm(w)) for w in weights), [lam * w for w in weights]


def _l2_mean(weights, lam):
    return lam / 2 * sum(float(np.mean(w * w)) for w in weights), [lam * w for w in weights]


def _l2_first_only(weights, lam):
    return lam / 2 * float(np.sum(weights[0] ** 2)), [lam * w if i == 0 else np.zeros_like(w)
                                                      for i, w in enumerate(weights)]


def _l2_in_place(weights, lam):
    value = lam / 2 * sum(float(np.sum(w * w)) for w in weights)
    for w in weights:
        w *= lam
    return value, weights


# -- l1_penalty ---------------------------------------------------------------------------------------
def l1_reference(flat, rows, cols, lam):
    leaves = _leaves(flat, rows, cols)
    return _value_and_grads(lam * sum(t.abs().sum() for t in leaves), leaves)


def _l1_value(weights, lam):
    return lam * sum(float(np.sum(np.abs(w))) for w in weights)


def _l1_one_at_zero(weights, lam):
    return _l1_value(weights, lam), [lam * np.where(w >= 0, 1.0, -1.0) for w in weights]


def _l1_grad_no_lam(weights, lam):
    return _l1_value(weights, lam), [np.sign(w) for w in weights]


def _l1_signed_sum(weights, lam):
    return lam * sum(float(np.sum(w)) for w in weights), [lam * np.sign(w) for w in weights]


def _l1_half(weights, lam):
    return lam / 2 * sum(float(np.sum(np.abs(w))) for w in weights), [lam * np.sign(w) for w in weights]


def _l1_l2_gradient(weights, lam):
    return _l1_value(weights, lam), [lam * w for w in weights]


def _l1_in_place(weights, lam):
    value = _l1_value(weights, lam)
    for w in weights:
        np.sign(w, out=w)
        w *= lam
    return value, weights


# -- elastic_net_penalty ------------------------------------------------------------------------------
def _l1_ratios(rng):
    return [float(rng.uniform(0.1, 0.4)), float(rng.uniform(0.6, 0.9)), 1.0, 0.0, 0.5]


def elastic_net_cases(rng):
    specs = _weight_specs(rng)
    specs.append([((int(rng.integers(3, 8)), int(rng.integers(3, 8))), 1.0), ((int(rng.integers(2, 6)),), 0.5)])
    lams = _lams(rng) + [float(rng.uniform(0.05, 0.5))]
    cases = []
    for spec, lam, rho in zip(specs, lams, _l1_ratios(rng)):
        flat, rows, cols = _layout(rng, spec)
        cases.append({"flat": flat, "rows": rows, "cols": cols, "lam": np.float64(lam), "l1_ratio": np.float64(rho)})
    return cases


def elastic_net_reference(flat, rows, cols, lam, l1_ratio):
    leaves = _leaves(flat, rows, cols)
    value = lam * sum(l1_ratio * t.abs().sum() + (1 - l1_ratio) / 2 * (t ** 2).sum() for t in leaves)
    return _value_and_grads(value, leaves)


def _en_sums(weights):
    return sum(float(np.sum(np.abs(w))) for w in weights), sum(float(np.sum(w * w)) for w in weights)


def _en_ratio_swapped(weights, lam, l1_ratio):
    l1, l2 = _en_sums(weights)
    rho = 1 - l1_ratio
    return lam * (rho * l1 + (1 - rho) / 2 * l2), [lam * (rho * np.sign(w) + (1 - rho) * w) for w in weights]


def _en_no_half(weights, lam, l1_ratio):
    l1, l2 = _en_sums(weights)
    return (lam * (l1_ratio * l1 + (1 - l1_ratio) * l2),
            [lam * (l1_ratio * np.sign(w) + (1 - l1_ratio) * w) for w in weights])


def _en_one_at_zero(weights, lam, l1_ratio):
    l1, l2 = _en_sums(weights)
    return (lam * (l1_ratio * l1 + (1 - l1_ratio) / 2 * l2),
            [lam * (l1_ratio * np.where(w >= 0, 1.0, -1.0) + (1 - l1_ratio) * w) for w in weights])


def _en_lam_on_l1_only(weights, lam, l1_ratio):
    l1, l2 = _en_sums(weights)
    return (lam * l1_ratio * l1 + (1 - l1_ratio) / 2 * l2,
            [lam * l1_ratio * np.sign(w) + (1 - l1_ratio) * w for w in weights])


def _en_grad_no_mix(weights, lam, l1_ratio):
    # the value is right; the gradient forgets the (1 - l1_ratio) of the L2 part
    l1, l2 = _en_sums(weights)
    return (lam * (l1_ratio * l1 + (1 - l1_ratio) / 2 * l2),
            [lam * (l1_ratio * np.sign(w) + w) for w in weights])


def _en_plain_sum(weights, lam, l1_ratio):
    # L1 + L2 without the mixing: lam * (||W||_1 + ||W||^2 / 2)
    l1, l2 = _en_sums(weights)
    return lam * (l1 + l2 / 2), [lam * (np.sign(w) + w) for w in weights]


# -- early_stopping -----------------------------------------------------------------------------------
# Losses are integers / 64: exact in float64, so "best - min_delta" is exact and ties are exact.
SCALE = 64.0


def _u_curve(rng, n, low, noise):
    """Integer losses: a noisy decay to ``low`` around epoch n/3, then a slow rise."""
    e = np.arange(n)
    turn = int(rng.integers(n // 4, n // 2))
    base = low + 60.0 * np.exp(-e / max(2.0, turn / 3)) + np.maximum(e - turn, 0) * rng.uniform(0.3, 1.0)
    return np.round(base + rng.integers(-noise, noise + 1, size=n))


def early_stopping_cases(rng):
    cases = []

    def add(ints, patience, min_delta_ints):
        cases.append({"val_losses": np.asarray(ints, dtype=np.float64) / SCALE, "patience": np.int64(patience),
                      "min_delta": np.float64(min_delta_ints / SCALE)})

    # 1-3. noisy U-shaped curves: plain patience, then a min_delta, then patience 1
    add(_u_curve(rng, int(rng.integers(40, 70)), 20, 2), int(rng.integers(3, 7)), 0)
    add(_u_curve(rng, int(rng.integers(40, 70)), 20, 3), int(rng.integers(3, 7)), int(rng.integers(1, 4)))
    add(_u_curve(rng, int(rng.integers(30, 50)), 20, 1), 1, 0)
    # 4. ties: the best value comes back exactly, again and again (< and <= disagree)
    k, p = int(rng.integers(3, 7)), int(rng.integers(3, 6))
    best = int(rng.integers(20, 40))
    head = np.linspace(best + 40, best + 2, k).round()
    add(np.concatenate([head, [best] * (p + 3), [best - 5], [best + 3] * (p + 2)]), p, 0)
    # 5. a loss exactly min_delta below the best, and improvements smaller than min_delta
    d, p = int(rng.integers(2, 5)), int(rng.integers(3, 6))
    b0 = int(rng.integers(40, 60))
    seq = [b0 + 30, b0, b0 - d, b0 - d, b0 - d - 1, b0 - 2 * d - 1, b0 - 2 * d - 1, b0 - 2 * d - 1]
    add(np.concatenate([seq, [b0 - 2 * d - 1] * (p + 2), [b0 - 4 * d] * 2, [b0] * (p + 2)]), p, d)
    # 6. a slow decline by steps smaller than min_delta: "best" must not follow it
    d = int(rng.integers(3, 6))
    p = d + int(rng.integers(1, 3))                   # patience > min_delta steps: the true rule improves in time
    b0 = int(rng.integers(60, 80))
    add([b0 + 20, b0] + [b0 - j for j in range(1, 3 * p)], p, d)
    # 7. a zig-zag that improves on the previous epoch but not on the best (and a late true improvement)
    p = int(rng.integers(4, 7))
    b0 = int(rng.integers(30, 50))
    zig = [b0 + 40, b0, b0 + 20] + [b0 + 19 - j for j in range(p - 2)] + [b0 - 3] + [b0 + 10 - j for j in range(p + 3)]
    add(zig, p, 0)
    # 8. steady improvement: the rule never fires, training runs to the end
    n = int(rng.integers(15, 30))
    add(np.arange(n)[::-1] * 3 + int(rng.integers(10, 30)), int(rng.integers(2, 5)), int(rng.integers(0, 3)))
    # 9. declines smaller than min_delta, a spike and its fall, then a true improvement: a "best" that follows
    #    every minimum and a comparison with the previous epoch both miss it, each in its own way
    d = int(rng.integers(2, 5))
    p = d + 4 + int(rng.integers(0, 3))
    b0 = int(rng.integers(40, 60))
    add([b0 + 30, b0] + [b0 - j for j in range(1, d + 1)] + [b0 + 10, b0 + 9 - d, b0 - d - 1] + [b0 + 20] * (p + 1),
        p, d)
    return cases


def early_stopping_reference(val_losses, patience, min_delta):
    """The rule in plain Python (written independently of mlp_lib.training.EarlyStopping)."""
    losses, patience, min_delta = val_losses.tolist(), int(patience), float(min_delta)
    best, best_epoch, without = None, None, 0
    for epoch, loss in enumerate(losses):
        if best is None or loss < best - min_delta:
            best, best_epoch, without = loss, epoch, 0
        else:
            without += 1
        if without >= patience:
            return torch.tensor(epoch), torch.tensor(best_epoch)
    return torch.tensor(len(losses) - 1), torch.tensor(best_epoch)


def _es(val_losses, patience, min_delta, *, improves, stops, update_best_always=False, reset=True):
    best, best_epoch, without = None, None, 0
    prev = None
    for epoch, loss in enumerate(val_losses):
        if best is None or improves(loss, best, prev, min_delta):
            best, best_epoch = loss, epoch
            if reset:
                without = 0
        else:
            without += 1
            if update_best_always:
                best = min(best, loss)
        prev = loss
        if stops(without, patience):
            return epoch, best_epoch
    return len(val_losses) - 1, best_epoch


def _strict(loss, best, prev, d):
    return loss < best - d


def _patience_plus_one(val_losses, *, patience, min_delta=0.0):
    return _es(val_losses, patience, min_delta, improves=_strict, stops=lambda w, p: w > p)


def _patience_minus_one(val_losses, *, patience, min_delta=0.0):
    return _es(val_losses, patience, min_delta, improves=_strict, stops=lambda w, p: w >= p - 1)


def _less_or_equal(val_losses, *, patience, min_delta=0.0):
    return _es(val_losses, patience, min_delta, improves=lambda l, b, q, d: l <= b - d, stops=lambda w, p: w >= p)


def _min_delta_ignored(val_losses, *, patience, min_delta=0.0):
    return _es(val_losses, patience, min_delta, improves=lambda l, b, q, d: l < b, stops=lambda w, p: w >= p)


def _best_is_stop(val_losses, *, patience, min_delta=0.0):
    stop, _ = _es(val_losses, patience, min_delta, improves=_strict, stops=lambda w, p: w >= p)
    return stop, stop


def _against_previous(val_losses, *, patience, min_delta=0.0):
    return _es(val_losses, patience, min_delta, improves=lambda l, b, q, d: l < (b if q is None else q) - d,
               stops=lambda w, p: w >= p)


def _best_follows_minimum(val_losses, *, patience, min_delta=0.0):
    return _es(val_losses, patience, min_delta, improves=_strict, stops=lambda w, p: w >= p, update_best_always=True)


def _counter_not_reset(val_losses, *, patience, min_delta=0.0):
    return _es(val_losses, patience, min_delta, improves=_strict, stops=lambda w, p: w >= p, reset=False)


def _one_based(val_losses, *, patience, min_delta=0.0):
    stop, best = _es(val_losses, patience, min_delta, improves=_strict, stops=lambda w, p: w >= p)
    return stop + 1, best + 1


def _min_delta_added(val_losses, *, patience, min_delta=0.0):
    # the "max" mode's test used for a loss: an improvement must be *above* best - min_delta
    return _es(val_losses, patience, min_delta, improves=lambda l, b, q, d: l < b + d, stops=lambda w, p: w >= p)


# -- sgd_step -----------------------------------------------------------------------------------------
def sgd_cases(rng):
    cases = []
    # (momentum, weight_decay, lr, steps, layout): with and without momentum, biases or not
    settings = [(0.9, float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.05, 0.2)), int(rng.integers(3, 7)), "mlp"),
                (0.0, float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.05, 0.2)), int(rng.integers(3, 7)), "mlp"),
                (float(rng.uniform(0.5, 0.8)), float(rng.uniform(0.05, 0.3)), float(rng.uniform(0.1, 0.5)),
                 int(rng.integers(3, 7)), "mixed"),
                (0.9, 0.0, float(rng.uniform(0.01, 0.1)), int(rng.integers(3, 7)), "mlp"),
                (float(rng.uniform(0.8, 0.99)), float(rng.uniform(1e-3, 1e-2)), float(rng.uniform(0.1, 1.0)),
                 int(rng.integers(3, 7)), "weights"),
                # a run resumed from the velocities an earlier run left (not zeros): velocities that are never
                # updated then differ from momentum ignored
                (float(rng.uniform(0.5, 0.9)), float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.05, 0.2)),
                 int(rng.integers(3, 7)), "mlp resumed")]
    for momentum, wd, lr, steps, kind in settings:
        d = [int(v) for v in rng.integers(2, 7, size=4)]
        if kind.startswith("mlp"):
            shapes = [(d[0], d[1]), (d[1],), (d[1], d[2]), (d[2],)]
        elif kind == "mixed":
            shapes = [(d[3],), (d[0], d[3]), (d[2], d[0]), (d[1],), (d[0],)]
        else:
            shapes = [(d[0], d[1]), (d[1], d[2])]
        specs = [(s, float(rng.uniform(0.5, 2.0))) for s in shapes]
        flat, rows, cols = _layout(rng, specs)
        grad_seq = rng.standard_normal((steps, flat.size)) * rng.uniform(0.1, 2.0)
        velocities = rng.standard_normal(flat.size) if kind == "mlp resumed" else np.zeros(flat.size)
        cases.append({"flat": flat, "rows": rows, "cols": cols, "velocities": velocities, "grad_seq": grad_seq,
                      "lr": np.float64(lr), "momentum": np.float64(momentum), "weight_decay": np.float64(wd)})
    return cases


def sgd_reference(flat, rows, cols, velocities, grad_seq, lr, momentum, weight_decay):
    leaves = [a.clone().requires_grad_(True) for a in unpack_arrays(flat, rows, cols)]
    weights = [t for t in leaves if t.ndim >= 2]
    biases = [t for t in leaves if t.ndim < 2]
    groups = [{"params": weights, "weight_decay": float(weight_decay)}]
    if biases:
        groups.append({"params": biases, "weight_decay": 0.0})
    opt = torch.optim.SGD(groups, lr=float(lr), momentum=float(momentum))
    if float(momentum) and bool(velocities.any()):        # resumed: torch's momentum buffers hold the velocities
        for t, v in zip(leaves, unpack_arrays(velocities, rows, cols)):
            opt.state[t]["momentum_buffer"] = v.clone()
    trajectory = []
    for k in range(grad_seq.shape[0]):
        for t, g in zip(leaves, unpack_arrays(grad_seq[k], rows, cols)):
            t.grad = g.clone()
        opt.step()
        trajectory.append(torch.cat([t.detach().flatten() for t in leaves]))
    return torch.stack(trajectory)


def _sgd(params, grads, velocities, *, lr, momentum, weight_decay, decay_on=lambda p: p.ndim >= 2,
         decoupled=False, decay_after=False, dampen=False, keep_velocity=False):
    new_params, new_velocities = [], []
    for p, g, v in zip(params, grads, velocities):
        wd = weight_decay if decay_on(p) else 0.0
        d = g if (decoupled or decay_after) else g + wd * p
        v_new = momentum * v + ((1 - momentum) * d if dampen else d)
        p_new = p - lr * (v_new if momentum else d)
        if decoupled:
            p_new = p_new - lr * wd * p
        if decay_after:
            p_new = p_new * (1 - lr * wd)
        new_params.append(p_new)
        new_velocities.append(v if keep_velocity else v_new)
    return new_params, new_velocities


def _sgd_decay_biases(params, grads, velocities, *, lr, momentum=0.0, weight_decay=0.0):
    return _sgd(params, grads, velocities, lr=lr, momentum=momentum, weight_decay=weight_decay,
                decay_on=lambda p: True)


def _sgd_decay_biases_only(params, grads, velocities, *, lr, momentum=0.0, weight_decay=0.0):
    return _sgd(params, grads, velocities, lr=lr, momentum=momentum, weight_decay=weight_decay,
                decay_on=lambda p: p.ndim < 2)


def _sgd_decoupled(params, grads, velocities, *, lr, momentum=0.0, weight_decay=0.0):
    return _sgd(params, grads, velocities, lr=lr, momentum=momentum, weight_decay=weight_decay, decoupled=True)


def _sgd_decay_after(params, grads, velocities, *, lr, momentum=0.0, weight_decay=0.0):
    return _sgd(params, grads, velocities, lr=lr, momentum=momentum, weight_decay=weight_decay, decay_after=True)


def _sgd_no_momentum(params, grads, velocities, *, lr, momentum=0.0, weight_decay=0.0):
    return _sgd(params, grads, velocities, lr=lr, momentum=0.0, weight_decay=weight_decay)


def _sgd_velocity_not_updated(params, grads, velocities, *, lr, momentum=0.0, weight_decay=0.0):
    return _sgd(params, grads, velocities, lr=lr, momentum=momentum, weight_decay=weight_decay, keep_velocity=True)


def _sgd_dampened(params, grads, velocities, *, lr, momentum=0.0, weight_decay=0.0):
    return _sgd(params, grads, velocities, lr=lr, momentum=momentum, weight_decay=weight_decay, dampen=True)


def _sgd_decay_sign(params, grads, velocities, *, lr, momentum=0.0, weight_decay=0.0):
    return _sgd(params, grads, velocities, lr=lr, momentum=momentum, weight_decay=-weight_decay)


def _sgd_in_place(params, grads, velocities, *, lr, momentum=0.0, weight_decay=0.0):
    new_velocities = []
    for p, g, v in zip(params, grads, velocities):
        d = g + (weight_decay * p if p.ndim >= 2 else 0.0)
        v_new = momentum * v + d
        p -= lr * v_new
        new_velocities.append(v_new)
    return params, new_velocities


# == Understanding: what the chapter teaches you to predict (Parts 6 and 7) =====================
# Graded like the other parts, on hidden cases from the secret seed; the answers need only numpy and
# the standard library. Each mutant is a typical wrong answer (guesses included) with the feedback a
# student who gave it should read, and the book section that explains the right one.
UNDERFITS, OVERFITS, GOOD_FIT = "underfits (high bias)", "overfits (high variance)", "good fit"
MORE_CAPACITY, MORE_REGULARIZATION, KEEP = ("more capacity or less regularization",
                                            "more regularization or more data", "keep the model")
_REMEDY = {UNDERFITS: MORE_CAPACITY, OVERFITS: MORE_REGULARIZATION, GOOD_FIT: KEEP}


# -- bias_variance_advice: training and validation errors against the noise floor -----------------
def _errors(rng, kind, noise):
    """(training MSE, validation MSE) of a regression model whose targets have noise variance `noise`.
    Every difference that decides is either below a fifth of the noise variance or above it."""
    if kind == "underfits":                     # both errors high and close: a straight line through a curve
        train = noise * (1 + rng.uniform(1.0, 5.0))
        return train, train + noise * rng.uniform(0.0, 0.2)
    if kind == "overfits":                      # threads between the training points, often below the floor
        train = noise * rng.uniform(0.1, 1.1)
        return train, train + noise * rng.uniform(1.0, 20.0)
    train = noise * rng.uniform(0.9, 1.15)      # the bottom of the U: just above the floor, a small gap
    return train, train + noise * rng.uniform(0.0, 0.2)


_BV_KINDS = {"underfits": UNDERFITS, "overfits": OVERFITS, "good": GOOD_FIT}


def bias_variance_cases(rng):
    cases = []
    for _ in range(6):
        noise = 10.0 ** rng.uniform(-2.0, 0.5)
        n_runs = int(rng.integers(4, 9))
        kinds = list(_BV_KINDS) + list(rng.choice(list(_BV_KINDS), size=n_runs - 3))
        runs = [_errors(rng, kinds[i], noise) for i in rng.permutation(n_runs)]
        cases.append({"train_err": np.array([t for t, _ in runs]), "val_err": np.array([v for _, v in runs]),
                      "noise": np.float64(noise)})
    return cases


def bias_variance_call(student, train_err, val_err, noise):
    return student.bias_variance_advice(train_err, val_err, float(noise))


def _bias_variance(train, val, noise, *, floor=True):
    if val - train > noise / 2:
        return OVERFITS
    if train - (noise if floor else 0.0) > noise / 2:
        return UNDERFITS
    return GOOD_FIT


def bias_variance_reference(train_err, val_err, noise):
    diagnoses = [_bias_variance(t, v, float(noise)) for t, v in zip(train_err.tolist(), val_err.tolist())]
    return np.array(diagnoses), np.array([_REMEDY[d] for d in diagnoses])


def _bv(train_err, val_err, noise, diagnose, remedy=None):
    remedy = {**_REMEDY, **(remedy or {})}
    diagnoses = [diagnose(t, v, noise) for t, v in zip(train_err, val_err)]
    return np.array(diagnoses), np.array([remedy[d] for d in diagnoses])


def _bv_validation_only(train_err, val_err, noise):
    return _bv(train_err, val_err, noise, lambda t, v, s: OVERFITS if v - s > s / 2 else GOOD_FIT)


def _bv_no_floor(train_err, val_err, noise):
    return _bv(train_err, val_err, noise, lambda t, v, s: _bias_variance(t, v, s, floor=False))


def _bv_remedies_swapped(train_err, val_err, noise):
    return _bv(train_err, val_err, noise, _bias_variance, {UNDERFITS: MORE_REGULARIZATION, OVERFITS: MORE_CAPACITY})


def _bv_low_training_error_is_good(train_err, val_err, noise):
    # "the training error is at (or below) the noise floor, so the model is good"
    return _bv(train_err, val_err, noise, lambda t, v, s: GOOD_FIT if t <= 1.15 * s else UNDERFITS)


def _bv_always(diagnosis):
    def guess(train_err, val_err, noise):
        return np.array([diagnosis] * len(train_err)), np.array([_REMEDY[diagnosis]] * len(train_err))
    guess.__name__ = "_bv_always_" + diagnosis.split()[0]
    return guess


# -- first_step_with_decay: Adam with an L2 penalty against AdamW, one step from a fresh state ------
def decay_step_cases(rng):
    cases = []
    for _ in range(5):
        d = int(rng.integers(6, 11))
        kinds = np.array([0, 1, 2, 3] + list(rng.integers(0, 4, size=d - 4)))[rng.permutation(d)]
        g = np.where(kinds == 0, 0.0,                                  # no data gradient: only the decay acts
             np.where(kinds == 1, 10.0 ** rng.uniform(-10.0, -8.0, size=d),   # as small as eps
             np.where(kinds == 2, rng.standard_normal(d), 10.0 * rng.standard_normal(d))))
        g = g * rng.choice([-1.0, 1.0], size=d)
        cases.append({"w": rng.standard_normal(d), "g": g, "lr": np.float64(10.0 ** rng.uniform(-4.0, -1.0)),
                      "lam": np.float64(10.0 ** rng.uniform(-3.0, 0.0)), "eps": np.float64(rng.choice([1e-8, 1e-6]))})
    return cases


def decay_step_call(student, w, g, lr, lam, eps):
    return student.first_step_with_decay(w, g, lr=float(lr), lam=float(lam), eps=float(eps))


def decay_step_reference(w, g, lr, lam, eps):
    results = []
    for cls in (torch.optim.Adam, torch.optim.AdamW):
        p = torch.nn.Parameter(w.clone())
        opt = cls([p], lr=float(lr), weight_decay=float(lam), eps=float(eps), foreach=False)
        p.grad = g.clone()
        opt.step()
        results.append(p.detach().clone())
    return tuple(results)


def _adam_first(w, g, lr, eps, *, correct=True):
    m, v = 0.1 * g, 0.001 * g**2                   # beta1 = 0.9, beta2 = 0.999 after one step from zero
    if correct:
        m, v = m / 0.1, v / 0.001
    return w - lr * m / (np.sqrt(v) + eps)


def _decay_coupled_both(w, g, *, lr, lam, eps):
    step = _adam_first(w, g + lam * w, lr, eps)
    return step, step.copy()


def _decay_decoupled_both(w, g, *, lr, lam, eps):
    step = _adam_first((1 - lr * lam) * w, g, lr, eps)
    return step, step.copy()


def _decay_without_lr(w, g, *, lr, lam, eps):
    return _adam_first(w, g + lam * w, lr, eps), _adam_first((1 - lam) * w, g, lr, eps)


def _decay_no_bias_correction(w, g, *, lr, lam, eps):
    return (_adam_first(w, g + lam * w, lr, eps, correct=False),
            _adam_first((1 - lr * lam) * w, g, lr, eps, correct=False))


def _decay_half(w, g, *, lr, lam, eps):
    # the gradient of (lam / 2) ||w||^2 taken as (lam / 2) w
    return _adam_first(w, g + lam / 2 * w, lr, eps), _adam_first((1 - lr * lam / 2) * w, g, lr, eps)


def _decay_sgd(w, g, *, lr, lam, eps):
    return w - lr * (g + lam * w), (1 - lr * lam) * w - lr * g


def _decay_nothing(w, g, *, lr, lam, eps):
    return w.copy(), w.copy()


_BV_BOOK = "ch08-bias-variance"
_ADAMW_BOOK = "ch08-adamw"
UNDERSTANDING_PARTS = [
    Part(id="bias_variance_advice", points=2, function="bias_variance_advice", outputs=("diagnoses", "fixes"),
         cases=bias_variance_cases, reference=bias_variance_reference, call=bias_variance_call,
         mutants={
             "the validation error alone": Mutant(_bv_validation_only, book="ch08-fitting", feedback=(
                 "A high validation error has two causes: an underfitting model has it too, with a training error "
                 "just as high. Overfitting is a large gap between validation and training error.")),
             "the noise floor ignored": Mutant(_bv_no_floor, book=_BV_BOOK, feedback=(
                 "No model can beat the noise variance on average: a training error close to it is as good as it "
                 "gets, not a sign of bias. Measure the bias by the excess over the floor.")),
             "remedies swapped": Mutant(_bv_remedies_swapped, book="ch08-what", feedback=(
                 "An underfitting model needs more capacity (or less regularization); an overfitting one needs "
                 "more regularization or more data.")),
             "a low training error means a good model": Mutant(_bv_low_training_error_is_good, book="ch08-fitting",
                                                               feedback=(
                 "A training error at or below the noise floor can be memorization: the degree-15 polynomial "
                 "fits its training points better than the noise allows and fails between them. Compare it "
                 "with the validation error.")),
             "always a good fit": Mutant(_bv_always(GOOD_FIT), book=_BV_BOOK, feedback=(
                 "Compare each run's training error with the noise floor, and its validation error with its "
                 "training error.")),
             "always overfitting": Mutant(_bv_always(OVERFITS), book=_BV_BOOK, feedback=(
                 "Some runs underfit (both errors high and close) and some fit well.")),
         }),
    Part(id="first_step_with_decay", points=2, function="first_step_with_decay", outputs=("adam_l2", "adamw"),
         cases=decay_step_cases, reference=decay_step_reference, call=decay_step_call,
         mutants={
             "AdamW computed as Adam + L2": Mutant(_decay_coupled_both, book=_ADAMW_BOOK, feedback=(
                 "AdamW decouples the decay: it multiplies the weights by 1 - lr * lam outside the adaptive step, "
                 "which sees only the data gradient. Adam + L2 adds lam * w to the gradient, and Adam then "
                 "normalizes it away.")),
             "Adam + L2 computed as AdamW": Mutant(_decay_decoupled_both, book=_ADAMW_BOOK, feedback=(
                 "With an L2 penalty (Adam's weight_decay) the term lam * w is part of the gradient, so it is "
                 "divided by sqrt(v-hat) too: a weight without data gradient takes a full step of size lr.")),
             "decay not multiplied by the learning rate": Mutant(_decay_without_lr, book=_ADAMW_BOOK, feedback=(
                 "torch's AdamW (and the chapter's) multiplies the decay by the learning rate: w (1 - lr * lam).")),
             "no bias correction": Mutant(_decay_no_bias_correction, book="ch02-adam", feedback=(
                 "After one step from zero, m-hat = g and v-hat = g^2 once corrected; without correction the step "
                 "is (1 - beta1) / sqrt(1 - beta2), about 3.2 times too large.")),
             "half the decay": Mutant(_decay_half, book="ch08-weight-decay", feedback=(
                 "The gradient of the penalty (lam / 2) ||w||^2 is lam * w, and weight decay multiplies w by "
                 "1 - lr * lam.")),
             "plain SGD steps": Mutant(_decay_sgd, book=_ADAMW_BOOK, feedback=(
                 "Adam's step is lr times m-hat / (sqrt(v-hat) + eps): after one step about lr * sign(g) in every "
                 "coordinate, whatever the size of g, unlike SGD's lr * g.")),
             "nothing moves": Mutant(_decay_nothing, book=_ADAMW_BOOK, feedback=(
                 "Both optimizers move every weight in their first step: compute each update.")),
         }),
]


PARTS = [
    Part(id="l2_penalty", points=2, function="l2_penalty", outputs=("value", "grads"),
         cases=penalty_cases, reference=l2_reference, call=adapters.l2_penalty, new_arrays=True,
         mutants={
             "missing 1/2 in the value": Mutant(
                 _l2_no_half, book="ch08-l2",
                 feedback="the value is lam * sum ||W||^2; the L2 penalty has a 1/2: lam / 2 * sum ||W||^2 (so that "
                          "its gradient is lam * W)."),
             "gradient 2 lam W": Mutant(
                 _l2_grad_2lam, diagnosis="scaled", book="ch08-l2",
                 feedback="the gradient is 2 * lam * W, the gradient of lam * ||W||^2; with the penalty's 1/2, "
                          "lam / 2 * ||W||^2, the gradient is lam * W."),
             "lam missing from the gradient": Mutant(
                 _l2_grad_no_lam, book="ch08-l2",
                 feedback="the gradient is W; lam multiplies the gradient too: lam * W."),
             "norm not squared": Mutant(
                 _l2_norm_not_squared, book="ch08-l2",
                 feedback="the value sums the norms ||W_l||; the penalty sums their squares ||W_l||^2, the sums of "
                          "the squared entries."),
             "mean instead of sum": Mutant(
                 _l2_mean, book="ch08-l2",
                 feedback="the value averages the squared entries of each array; the penalty sums them (np.sum, not "
                          "np.mean)."),
             "first weight array only": Mutant(
                 _l2_first_only, book="ch08-mlp-penalties",
                 feedback="only the first array of the list is penalized; the penalty and its gradients cover every "
                          "array of the list."),
             "scales the weights in place": Mutant(
                 _l2_in_place, diagnosis="mutated_input", book="ch08-mlp-penalties",
                 feedback="the weights are changed in place (w *= lam) and returned as the gradients: the grader "
                          "hands them over read-only. Return new arrays, lam * w."),
         }),
    Part(id="l1_penalty", points=2, function="l1_penalty", outputs=("value", "grads"),
         cases=penalty_cases, reference=l1_reference, call=adapters.l1_penalty, new_arrays=True,
         mutants={
             "subgradient 1 at 0": Mutant(
                 _l1_one_at_zero, book="ch08-l1",
                 feedback="the gradient is +lam where a weight is exactly 0; the convention is torch's (and "
                          "np.sign's): 0 there."),
             "lam missing from the gradient": Mutant(
                 _l1_grad_no_lam, book="ch08-l1",
                 feedback="the gradient is sign(W); lam multiplies the gradient too: lam * sign(W)."),
             "sum of W instead of |W|": Mutant(
                 _l1_signed_sum, book="ch08-l1",
                 feedback="the value sums the weights themselves; the L1 penalty sums their absolute values."),
             "value halved like L2's": Mutant(
                 _l1_half, book="ch08-l1",
                 feedback="the value has a 1/2, like the L2 penalty's; the L1 penalty is lam * sum |W| (its gradient "
                          "is lam * sign(W))."),
             "L2's gradient lam W": Mutant(
                 _l1_l2_gradient, book="ch08-l1",
                 feedback="the gradient is lam * W, the L2 penalty's; the gradient of lam * |w| is lam * sign(w)."),
             "sign taken in place": Mutant(
                 _l1_in_place, diagnosis="mutated_input", book="ch08-l1",
                 feedback="the weights are changed in place (np.sign(w, out=w)): the grader hands them over "
                          "read-only. Return new arrays, lam * np.sign(w)."),
         }),
    Part(id="elastic_net_penalty", points=2, function="elastic_net_penalty", outputs=("value", "grads"),
         cases=elastic_net_cases, reference=elastic_net_reference, call=adapters.elastic_net_penalty,
         new_arrays=True,
         mutants={
             "l1_ratio on the L2 part": Mutant(
                 _en_ratio_swapped, book="ch08-elastic-net",
                 feedback="l1_ratio and 1 - l1_ratio are swapped: l1_ratio weights the L1 part, 1 - l1_ratio the L2 "
                          "part."),
             "missing 1/2 on the L2 part": Mutant(
                 _en_no_half, book="ch08-elastic-net",
                 feedback="the L2 part has no 1/2; scikit-learn's convention is lam * (l1_ratio * ||W||_1 + "
                          "(1 - l1_ratio) / 2 * ||W||^2)."),
             "subgradient 1 at 0": Mutant(
                 _en_one_at_zero, book="ch08-elastic-net",
                 feedback="the L1 part of the gradient is +lam * l1_ratio where a weight is exactly 0; sign(0) = 0 "
                          "there, as in Part 2."),
             "lam on the L1 part only": Mutant(
                 _en_lam_on_l1_only, book="ch08-elastic-net",
                 feedback="lam multiplies the L1 part only; it multiplies the whole mixture, the L2 part too."),
             "(1 - l1_ratio) missing from the gradient": Mutant(
                 _en_grad_no_mix, book="ch08-elastic-net",
                 feedback="the value is right, but the L2 part of the gradient is lam * W; it is "
                          "lam * (1 - l1_ratio) * W."),
             "L1 + L2 without the mixing": Mutant(
                 _en_plain_sum, book="ch08-elastic-net",
                 feedback="the penalty adds the whole L1 and L2 penalties; l1_ratio mixes them: "
                          "l1_ratio * L1 + (1 - l1_ratio) * L2."),
         }),
    Part(id="early_stopping", points=2, function="early_stopping", outputs=("stop_epoch", "best_epoch"),
         cases=early_stopping_cases, reference=early_stopping_reference, call=adapters.early_stopping,
         forbid=("mlp_lib.training.EarlyStopping",),
         mutants={
             "patience off by one (stops one epoch late)": Mutant(
                 _patience_plus_one, book="ch08-early-stopping",
                 feedback="training stops one epoch late: it stops at the first epoch where the count of epochs "
                          "without improvement reaches patience (count >= patience), not where it exceeds it."),
             "patience off by one (stops one epoch early)": Mutant(
                 _patience_minus_one, book="ch08-early-stopping",
                 feedback="training stops one epoch early: the count of consecutive epochs without improvement must "
                          "reach patience, not patience - 1."),
             "<= instead of <": Mutant(
                 _less_or_equal, book="ch08-early-stopping",
                 feedback="a loss equal to best - min_delta (with min_delta = 0, a tie with the best) counts as an "
                          "improvement; an epoch improves only when loss < best - min_delta, strictly."),
             "min_delta ignored": Mutant(
                 _min_delta_ignored, book="ch08-early-stopping",
                 feedback="min_delta is ignored: an epoch improves only when its loss is below best - min_delta."),
             "best epoch reported as the stop epoch": Mutant(
                 _best_is_stop, book="ch08-early-stopping",
                 feedback="best_epoch is the epoch where training stopped; it is the last epoch that improved (whose "
                          "weights early stopping restores)."),
             "compared with the previous epoch, not the best": Mutant(
                 _against_previous, book="ch08-early-stopping",
                 feedback="each loss is compared with the previous epoch's; it is compared with the best loss so "
                          "far."),
             "best follows every new minimum": Mutant(
                 _best_follows_minimum, book="ch08-early-stopping",
                 feedback="best moves to every loss below it, even one that does not improve by more than min_delta; "
                          "best and best_epoch change only when an epoch improves."),
             "counter not reset on improvement": Mutant(
                 _counter_not_reset, book="ch08-early-stopping",
                 feedback="the count of epochs without improvement is not reset to 0 when an epoch improves; it counts "
                          "consecutive epochs."),
             "1-based epochs": Mutant(
                 _one_based, book="ch08-early-stopping",
                 feedback="the epochs are numbered from 1; they are numbered from 0 (the first loss is epoch 0)."),
             "min_delta added instead of subtracted": Mutant(
                 _min_delta_added, book="ch08-early-stopping",
                 feedback="the test is loss < best + min_delta; an improvement must beat the best by more than "
                          "min_delta: loss < best - min_delta."),
         }),
    Part(id="sgd_step", points=2, function="sgd_step", outputs=("trajectory",),
         cases=sgd_cases, reference=sgd_reference, call=adapters.sgd_trajectory,
         forbid=("mlp_lib.optim.SGD", "mlp_lib.optim.apply_step"),
         mutants={
             "weight decay on the biases too": Mutant(
                 _sgd_decay_biases, book="ch08-weight-decay",
                 feedback="the biases (1-D arrays) are decayed too; weight decay applies to the weights only, the "
                          "arrays with ndim >= 2."),
             "weight decay on the biases instead of the weights": Mutant(
                 _sgd_decay_biases_only, book="ch08-weight-decay",
                 feedback="weight decay is applied to the 1-D arrays (the biases) instead of the weights; it applies to "
                          "the arrays with ndim >= 2 only."),
             "weight decay added after the update (decoupled)": Mutant(
                 _sgd_decoupled, book="ch08-adamw",
                 feedback="the decay is applied apart from the gradient (p - lr * v - lr * weight_decay * p, decoupled "
                          "as in AdamW); here it is added to the gradient before the velocity update, so it goes "
                          "through the momentum: g + weight_decay * p."),
             "decay applied to the updated weights": Mutant(
                 _sgd_decay_after, book="ch08-weight-decay",
                 feedback="the weights are shrunk after the step (times 1 - lr * weight_decay); the decay is added to "
                          "the gradient before the velocity update: g + weight_decay * p."),
             "momentum ignored": Mutant(
                 _sgd_no_momentum, book="ch08-weight-decay",
                 feedback="the step uses the gradient alone (p - lr * g); with momentum it uses the velocity: "
                          "v = momentum * v + g, then p - lr * v."),
             "velocities never updated": Mutant(
                 _sgd_velocity_not_updated, book="ch08-weight-decay",
                 feedback="the velocities returned are the ones given; return the updated ones, "
                          "v = momentum * v + g, which the next step starts from."),
             "dampened momentum (1 - momentum) g": Mutant(
                 _sgd_dampened, book="ch08-weight-decay",
                 feedback="the velocity update is dampened, v = momentum * v + (1 - momentum) * g; torch's SGD "
                          "(dampening 0) adds the whole gradient: v = momentum * v + g."),
             "weight decay with the wrong sign": Mutant(
                 _sgd_decay_sign, book="ch08-weight-decay",
                 feedback="weight_decay * p is subtracted from the gradient; it is added (g + weight_decay * p), which "
                          "pulls the weights toward 0."),
             "updates the parameters in place": Mutant(
                 _sgd_in_place, diagnosis="mutated_input", book="ch08-weight-decay",
                 feedback="the parameters are changed in place (p -= ...): the grader hands params, grads and "
                          "velocities over read-only. Return new arrays."),
         }),
    *UNDERSTANDING_PARTS,
]
