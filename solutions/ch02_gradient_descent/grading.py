"""Grading spec of Chapter 2's exercise: gradient descent, mini-batches and the optimizers' update rules.

Every Part draws its cases from the grader's rng and is judged against a torch reference in
float64 (on the grading device). The conventions are the exercise's, which are torch's:

* ``linear_regression_gd`` starts from ``w = 0, b = 0`` and follows the gradient of the MSE
  ``mean((X @ w + b - y)**2)``; ``losses`` holds the MSE before every step and after the last
  (``steps + 1`` values). The reference runs the same descent with torch tensors (autograd for
  the gradient); on the well-conditioned, long runs (``converged = 1``) it is the least-squares
  solution of ``torch.linalg.lstsq`` instead, which plain descent must reach.
* ``minibatches`` draws ``perm = rng.permutation(N)`` once per call from the Generator it is
  given and yields ``X[perm[i:i + B]], y[perm[i:i + B]]`` in order, the last partial batch kept.
  The grader calls it twice with one Generator (two epochs): the second call must draw a new
  permutation.
* the step functions are pure, with explicit state; each case runs several steps from a given
  state (zeros = the start of training, or a state from the middle of a run) over a sequence of
  random gradients, with a learning rate that changes from step to step, and compares every
  iterate and the final state with ``torch.optim`` (SGD, Adagrad, RMSprop, Adam; ``foreach=False``)
  driven by the same gradients. Gradients of very different scales and several ``eps`` make
  the placement of ``eps`` matter, and a parameter whose gradient is always 0 makes a missing
  ``eps`` show (0 / 0). Purity is checked twice: the first step receives the case's own
  read-only arrays (an update in place fails there), and the one loop that drives every step
  function (``adapters.run_steps``, run in the student's process) reports a step that writes
  into the state dict it was given.

Besides random cases, every part has deliberate hard cases whose structure is fixed (one step
only, a large intercept, batches of one, a batch larger than N, a fresh and a mid-run state,
an always-zero gradient). Each mutant is a typical mistake with the feedback a student who made
it reads; the autograder's tests check that each one loses the points of its own part, and only
those, and is named by its feedback.
"""
import numpy as np
import torch

import adapters
from autograder.spec import Mutant, Part

PUBLIC_SEED = 19510901          # Robbins & Monro, Ann. Math. Statist. 22(3), September 1951
# the locked cells the answers may rely on: the imports, and the answers' vocabulary of Parts 7 and on
SETUP = ("setup", "understanding-setup")

_OPTIM_FORBID = ("mlp_lib.optim.SGD", "mlp_lib.optim.Adagrad", "mlp_lib.optim.RMSprop", "mlp_lib.optim.Adam",
                 "mlp_lib.optim.AdamW", "mlp_lib.optim.apply_step", "mlp_lib.training.fit")


# -- linear_regression_gd -----------------------------------------------------------------
def _regression_problem(rng, n, d):
    X = rng.standard_normal((n, d)) + rng.uniform(-1.0, 1.0, size=d)     # not centred: the bias matters
    y = X @ rng.standard_normal(d) + rng.uniform(-2.0, 2.0) + 0.3 * rng.standard_normal(n)
    A = np.hstack([X, np.ones((n, 1))])
    eigenvalues = np.linalg.eigvalsh(2.0 / n * A.T @ A)                   # Hessian of the MSE
    return X, y, eigenvalues


def gd_cases(rng):
    cases = []
    for _ in range(3):                       # a few steps from zero: the whole trajectory is graded
        n, d = int(rng.integers(15, 60)), int(rng.integers(1, 5))
        X, y, lam = _regression_problem(rng, n, d)
        lr = float(rng.uniform(0.3, 1.6)) / lam.max()                     # stable: lr * lambda_max < 2
        cases.append({"X": X, "y": y, "lr": np.float64(lr), "steps": np.int64(rng.integers(3, 25)),
                      "converged": np.int64(0)})
    n, d = int(rng.integers(15, 40)), int(rng.integers(2, 5))     # one step from zero, far from a zero intercept
    X, y, lam = _regression_problem(rng, n, d)
    y = y + float(rng.choice([-1.0, 1.0])) * rng.uniform(3.0, 5.0)
    cases.append({"X": X, "y": y, "lr": np.float64(float(rng.uniform(0.3, 1.6)) / lam.max()), "steps": np.int64(1),
                  "converged": np.int64(0)})
    for _ in range(2):                       # long, well-conditioned runs: must reach least squares
        while True:
            n, d = int(rng.integers(40, 100)), int(rng.integers(1, 4))
            X, y, lam = _regression_problem(rng, n, d)
            if lam.max() / lam.min() < 40:
                break
        cases.append({"X": X, "y": y, "lr": np.float64(1.0 / lam.max()), "steps": np.int64(2000),
                      "converged": np.int64(1)})
    return cases


def gd_call(student, X, y, lr, steps, converged):
    return student.linear_regression_gd(X, y, lr=float(lr), steps=int(steps))


def gd_reference(X, y, lr, steps, converged):
    n, d = X.shape
    if y.shape != (n,):          # e.g. the grader's transposed-inputs probe: no such alternative
        raise ValueError(f"y must have shape ({n},), got {tuple(y.shape)}")
    w = torch.zeros(d, dtype=X.dtype, device=X.device)
    b = torch.zeros((), dtype=X.dtype, device=X.device)
    losses = []
    for _ in range(int(steps)):
        w, b = w.requires_grad_(True), b.requires_grad_(True)
        loss = torch.nn.functional.mse_loss(X @ w + b, y)
        gw, gb = torch.autograd.grad(loss, (w, b))
        losses.append(loss.detach())
        w, b = (w - lr * gw).detach(), (b - lr * gb).detach()
    losses.append(torch.nn.functional.mse_loss(X @ w + b, y))
    if bool(converged):
        A = torch.cat([X, torch.ones((n, 1), dtype=X.dtype, device=X.device)], dim=1)
        solution = torch.linalg.lstsq(A, y[:, None]).solution[:, 0]
        w, b = solution[:-1], solution[-1]
    return w, b, torch.stack(losses)


def _gd_loop(X, y, lr, steps, *, grad_scale=1.0, mean=True, sign=1.0, learn_bias=True, sequential=False,
             final_loss=True):
    n, d = X.shape
    w, b = np.zeros(d), 0.0
    losses = []
    for _ in range(steps):
        r = X @ w + b - y
        losses.append(np.mean(r ** 2))
        scale = grad_scale * (2.0 / n if mean else 2.0)
        w = w - sign * lr * scale * (X.T @ r)
        if sequential:
            r = X @ w + b - y                 # b's gradient taken at the already-updated w
        if learn_bias:
            b = b - sign * lr * scale * r.sum()
    if final_loss:
        losses.append(np.mean((X @ w + b - y) ** 2))
    return w, b, np.array(losses)


def _gd_sum(X, y, *, lr, steps):
    with np.errstate(all="ignore"):
        return _gd_loop(X, y, lr, steps, mean=False)


def _gd_half_gradient(X, y, *, lr, steps):
    return _gd_loop(X, y, lr, steps, grad_scale=0.5)          # the gradient of MSE/2


def _gd_ascent(X, y, *, lr, steps):
    with np.errstate(all="ignore"):
        return _gd_loop(X, y, lr, steps, sign=-1.0)


def _gd_frozen_bias(X, y, *, lr, steps):
    return _gd_loop(X, y, lr, steps, learn_bias=False)


def _gd_sequential(X, y, *, lr, steps):
    return _gd_loop(X, y, lr, steps, sequential=True)


def _gd_no_final_loss(X, y, *, lr, steps):
    return _gd_loop(X, y, lr, steps, final_loss=False)


# -- minibatches ---------------------------------------------------------------------------
def minibatch_cases(rng):
    cases = []
    for kind in ("partial", "exact", "one short batch", "partial", "batches of one"):
        b = 1 if kind == "batches of one" else int(rng.integers(3, 7))
        if kind == "batches of one":
            n = int(rng.integers(3, 8))
        elif kind == "partial":
            n = b * int(rng.integers(2, 6)) + int(rng.integers(1, b))      # the last batch is partial
        elif kind == "exact":
            n = b * int(rng.integers(2, 6))
        else:                                                              # batch_size > N: one batch
            n = int(rng.integers(5, 10))
            b = n + int(rng.integers(1, 4))
        d = int(rng.integers(1, 5))
        y = rng.integers(0, 10, size=n) if kind == "exact" else rng.standard_normal(n)
        cases.append({"X": rng.standard_normal((n, d)), "y": y, "batch_size": np.int64(b),
                      "seed": np.int64(rng.integers(0, 2**31))})
    return cases


def minibatch_call(student, X, y, batch_size, seed):
    rng = np.random.default_rng(int(seed))
    out = []
    for _ in range(2):                      # two epochs from one Generator: each call reshuffles
        xs, ys, sizes = [], [], []
        for xb, yb in student.minibatches(X, y, batch_size=int(batch_size), rng=rng):
            xs.append(np.asarray(xb))
            ys.append(np.asarray(yb))
            sizes.append(len(xb))
        out += [np.concatenate(xs) if xs else np.empty((0, X.shape[1])),
                np.concatenate(ys) if ys else np.empty(0), np.array(sizes, dtype=np.int64)]
    return tuple(out)


def minibatch_reference(X, y, batch_size, seed):
    # The permutation is numpy's by definition of the exercise (rng.permutation(N)); torch gathers.
    rng = np.random.default_rng(int(seed))
    n, b = X.shape[0], int(batch_size)
    out = []
    for _ in range(2):
        perm = torch.as_tensor(rng.permutation(n), device=X.device)
        sizes = torch.tensor([min(b, n - start) for start in range(0, n, b)], dtype=torch.int64)
        out += [X[perm], y[perm], sizes]
    return tuple(out)


def _mb_no_shuffle(X, y, *, batch_size, rng):
    for start in range(0, len(X), batch_size):
        yield X[start:start + batch_size], y[start:start + batch_size]


def _mb_drop_last(X, y, *, batch_size, rng):
    perm = rng.permutation(len(X))
    for start in range(0, len(X) - batch_size + 1, batch_size):
        idx = perm[start:start + batch_size]
        yield X[idx], y[idx]


def _mb_two_permutations(X, y, *, batch_size, rng):
    Xs, ys = X[rng.permutation(len(X))], y[rng.permutation(len(y))]
    for start in range(0, len(X), batch_size):
        yield Xs[start:start + batch_size], ys[start:start + batch_size]


def _mb_shuffle_in_place(X, y, *, batch_size, rng):
    perm = rng.permutation(len(X))
    X[:] = X[perm]
    y[:] = y[perm]
    for start in range(0, len(X), batch_size):
        yield X[start:start + batch_size], y[start:start + batch_size]


def _mb_with_replacement(X, y, *, batch_size, rng):
    for start in range(0, len(X), batch_size):
        idx = rng.integers(0, len(X), size=min(batch_size, len(X) - start))
        yield X[idx], y[idx]


def _mb_fixed_seed(X, y, *, batch_size, rng):
    perm = np.random.default_rng(0).permutation(len(X))        # ignores the rng it was given
    for start in range(0, len(X), batch_size):
        idx = perm[start:start + batch_size]
        yield X[idx], y[idx]


# -- the optimizers' steps: shared case generation ------------------------------------------
def _shape(rng):
    return (int(rng.integers(2, 7)),) if rng.random() < 0.5 else (int(rng.integers(2, 5)), int(rng.integers(2, 5)))


def _steps(rng, shape, scale):
    t = int(rng.integers(4, 9))
    return scale * rng.standard_normal((t, *shape)), rng.uniform(0.005, 0.1, size=t)


def _torch_run(opt_class, w, grads, lrs, state=None, **options):
    """torch.optim over the same gradients, learning rate set before every step."""
    p = torch.nn.Parameter(w.clone())
    opt = opt_class([p], lr=float(lrs[0]), foreach=False, **options)
    if state is not None:
        opt.state[p].update(state)
    trajectory = []
    for k in range(grads.shape[0]):
        opt.param_groups[0]["lr"] = float(lrs[k])
        p.grad = grads[k].clone()
        opt.step()
        trajectory.append(p.detach().clone())
    return torch.stack(trajectory), opt.state[p]


# -- sgd_momentum_step ----------------------------------------------------------------------
def momentum_cases(rng):
    cases = []
    for k in range(4):
        shape = _shape(rng)
        grads, lrs = _steps(rng, shape, scale=1.0)
        start = np.zeros(shape) if k < 2 else rng.standard_normal(shape)     # first steps / mid-run
        cases.append({"w": rng.standard_normal(shape), "velocity": start, "grads": grads, "lrs": lrs,
                      "momentum": np.float64(rng.uniform(0.5, 0.95)), "nesterov": np.bool_(k % 2 == 1)})
    return cases


def momentum_reference(w, velocity, grads, lrs, momentum, nesterov):
    # A zero velocity is torch's fresh state (its first buffer is the gradient itself, = mu*0 + g).
    start = None if not bool(velocity.any()) else {"momentum_buffer": velocity.clone()}
    trajectory, state = _torch_run(torch.optim.SGD, w, grads, lrs, start, momentum=float(momentum),
                                   nesterov=bool(nesterov))
    return trajectory, state["momentum_buffer"]


def _momentum_classic(w, dw, state, *, lr, momentum, nesterov=False):
    # Sutskever et al.'s form: the learning rate inside the velocity.
    v = momentum * state["velocity"] - lr * dw
    w_new = w + (momentum * v - lr * dw if nesterov else v)
    return w_new, {"velocity": v}


def _momentum_no_nesterov(w, dw, state, *, lr, momentum, nesterov=False):
    v = momentum * state["velocity"] + dw
    return w - lr * v, {"velocity": v}


def _momentum_dampened(w, dw, state, *, lr, momentum, nesterov=False):
    v = momentum * state["velocity"] + (1 - momentum) * dw          # an average, not torch's sum
    return w - lr * (dw + momentum * v if nesterov else v), {"velocity": v}


def _momentum_dict_in_place(w, dw, state, *, lr, momentum, nesterov=False):
    state["velocity"] = momentum * state["velocity"] + dw          # a new array, in the caller's dict
    return w - lr * (dw + momentum * state["velocity"] if nesterov else state["velocity"]), state


def _momentum_in_place(w, dw, state, *, lr, momentum, nesterov=False):
    v = state["velocity"]
    v *= momentum
    v += dw
    w -= lr * (dw + momentum * v if nesterov else v)
    return w, state


# -- adagrad_step ----------------------------------------------------------------------------
def _eps_and_scale(rng, k, eps_choices):
    # Alternate ordinary gradients with a large eps and tiny gradients with the usual ones: either way eps
    # is comparable to sqrt(accumulator), so that eps inside the root, eps added and no eps all differ.
    if k % 2 == 0:
        return float(rng.choice([1e-3, 1e-2])), 1.0
    return float(rng.choice(eps_choices)), 1e-5


def _dead_coordinate(rng, grads):
    """One parameter whose gradient is 0 at every step (a dead unit): from a zero state its denominator
    is 0 + eps, so eps must be there."""
    grads = grads.copy()
    grads.reshape(grads.shape[0], -1)[:, int(rng.integers(0, grads[0].size))] = 0.0
    return grads


def adagrad_cases(rng):
    cases = []
    for k in range(4):
        shape = _shape(rng)
        eps, scale = _eps_and_scale(rng, k, (1e-10, 1e-6))
        grads, lrs = _steps(rng, shape, scale)
        if k < 2:
            grads = _dead_coordinate(rng, grads)
        start = np.zeros(shape) if k < 2 else scale**2 * rng.uniform(0.5, 5.0, size=shape)
        cases.append({"w": rng.standard_normal(shape), "sum_sq": start, "grads": grads, "lrs": lrs,
                      "eps": np.float64(eps)})
    return cases


def adagrad_reference(w, sum_sq, grads, lrs, eps):
    trajectory, state = _torch_run(torch.optim.Adagrad, w, grads, lrs, {"sum": sum_sq.clone()}, eps=float(eps))
    return trajectory, state["sum"]


def _adagrad_eps_inside(w, dw, state, *, lr, eps=1e-10):
    s = state["sum_sq"] + dw**2
    return w - lr * dw / np.sqrt(s + eps), {"sum_sq": s}


def _adagrad_no_accumulation(w, dw, state, *, lr, eps=1e-10):
    s = dw**2                                                          # forgets the past
    return w - lr * dw / (np.sqrt(s) + eps), {"sum_sq": s}


def _adagrad_no_sqrt(w, dw, state, *, lr, eps=1e-10):
    s = state["sum_sq"] + dw**2
    return w - lr * dw / (s + eps), {"sum_sq": s}


def _adagrad_no_eps(w, dw, state, *, lr, eps=1e-10):
    s = state["sum_sq"] + dw**2
    with np.errstate(all="ignore"):
        return w - lr * dw / np.sqrt(s), {"sum_sq": s}


def _adagrad_in_place(w, dw, state, *, lr, eps=1e-10):
    state["sum_sq"] += dw**2
    w -= lr * dw / (np.sqrt(state["sum_sq"]) + eps)
    return w, state


# -- rmsprop_step ----------------------------------------------------------------------------
def rmsprop_cases(rng):
    cases = []
    for k in range(4):
        shape = _shape(rng)
        eps, scale = _eps_and_scale(rng, k, (1e-8, 1e-6))
        grads, lrs = _steps(rng, shape, scale)
        if k < 2:
            grads = _dead_coordinate(rng, grads)
        start = np.zeros(shape) if k < 2 else scale**2 * rng.uniform(0.1, 2.0, size=shape)
        cases.append({"w": rng.standard_normal(shape), "square_avg": start, "grads": grads, "lrs": lrs,
                      "alpha": np.float64(rng.choice([0.9, 0.99, rng.uniform(0.8, 0.999)])), "eps": np.float64(eps)})
    return cases


def rmsprop_reference(w, square_avg, grads, lrs, alpha, eps):
    start = {"step": torch.tensor(0.0), "square_avg": square_avg.clone()}
    trajectory, state = _torch_run(torch.optim.RMSprop, w, grads, lrs, start, alpha=float(alpha), eps=float(eps))
    return trajectory, state["square_avg"]


def _rmsprop_eps_inside(w, dw, state, *, lr, alpha=0.99, eps=1e-8):
    v = alpha * state["square_avg"] + (1 - alpha) * dw**2
    return w - lr * dw / np.sqrt(v + eps), {"square_avg": v}


def _rmsprop_swapped_alpha(w, dw, state, *, lr, alpha=0.99, eps=1e-8):
    v = (1 - alpha) * state["square_avg"] + alpha * dw**2
    return w - lr * dw / (np.sqrt(v) + eps), {"square_avg": v}


def _rmsprop_sum(w, dw, state, *, lr, alpha=0.99, eps=1e-8):
    v = state["square_avg"] + dw**2                                    # AdaGrad's sum, not an average
    return w - lr * dw / (np.sqrt(v) + eps), {"square_avg": v}


def _rmsprop_no_eps(w, dw, state, *, lr, alpha=0.99, eps=1e-8):
    v = alpha * state["square_avg"] + (1 - alpha) * dw**2
    with np.errstate(all="ignore"):
        return w - lr * dw / np.sqrt(v), {"square_avg": v}


def _rmsprop_in_place(w, dw, state, *, lr, alpha=0.99, eps=1e-8):
    v = state["square_avg"]
    v *= alpha
    v += (1 - alpha) * dw**2
    return w - lr * dw / (np.sqrt(v) + eps), state


# -- adam_step ---------------------------------------------------------------------------------
def adam_cases(rng):
    cases = []
    for k in range(5):
        shape = _shape(rng)
        eps, scale = _eps_and_scale(rng, k, (1e-8, 1e-6))
        grads, lrs = _steps(rng, shape, scale)
        beta1, beta2 = (0.9, 0.999) if k % 2 == 0 else (float(rng.uniform(0.8, 0.95)), float(rng.uniform(0.9, 0.9999)))
        if k < 2:                                       # the first steps of training
            t, m, v = 0, np.zeros(shape), np.zeros(shape)
            grads = _dead_coordinate(rng, grads)
        else:                                           # early in a run (beta1**t >= 0.08: both corrections
            t = int(rng.integers(1, 12))                # matter), averages as a run leaves them: (1 - beta**t)
            m = (1 - beta1**t) * scale * 0.3 * rng.standard_normal(shape)     # times the gradients' moments
            v = (1 - beta2**t) * scale**2 * rng.uniform(0.1, 2.0, size=shape)
        cases.append({"w": rng.standard_normal(shape), "m": m, "v": v, "t": np.int64(t), "grads": grads, "lrs": lrs,
                      "beta1": np.float64(beta1), "beta2": np.float64(beta2), "eps": np.float64(eps)})
    return cases


def adam_reference(w, m, v, t, grads, lrs, beta1, beta2, eps):
    start = None
    if int(t) > 0:
        start = {"step": torch.tensor(float(t)), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
    trajectory, state = _torch_run(torch.optim.Adam, w, grads, lrs, start, betas=(float(beta1), float(beta2)),
                                   eps=float(eps))
    steps = torch.tensor(int(state["step"].item()), dtype=torch.int64)
    return trajectory, state["exp_avg"], state["exp_avg_sq"], steps


def _adam(w, dw, state, *, lr, beta1, beta2, eps, correct=True, t_after=False, eps_inside=False,
          correct_m_only=False, no_eps=False, store_corrected=False):
    t = state["t"] + 1
    tb = state["t"] if t_after else t                                  # t_after: the count before this step
    m = beta1 * state["m"] + (1 - beta1) * dw
    v = beta2 * state["v"] + (1 - beta2) * dw**2
    with np.errstate(divide="ignore", invalid="ignore"):
        m_hat = m / (1 - beta1**tb) if correct else m
        v_hat = v / (1 - beta2**tb) if correct and not correct_m_only else v
        denom = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + (0.0 if no_eps else eps)
        w_new = w - lr * m_hat / denom
    if store_corrected:
        m, v = m_hat, v_hat
    return w_new, {"t": t, "m": m, "v": v}


def _adam_no_bias_correction(w, dw, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    return _adam(w, dw, state, lr=lr, beta1=beta1, beta2=beta2, eps=eps, correct=False)


def _adam_t_incremented_after(w, dw, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    return _adam(w, dw, state, lr=lr, beta1=beta1, beta2=beta2, eps=eps, t_after=True)


def _adam_eps_inside(w, dw, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    return _adam(w, dw, state, lr=lr, beta1=beta1, beta2=beta2, eps=eps, eps_inside=True)


def _adam_corrects_m_only(w, dw, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    return _adam(w, dw, state, lr=lr, beta1=beta1, beta2=beta2, eps=eps, correct_m_only=True)


def _adam_no_eps(w, dw, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    return _adam(w, dw, state, lr=lr, beta1=beta1, beta2=beta2, eps=eps, no_eps=True)


def _adam_stores_corrected_moments(w, dw, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    return _adam(w, dw, state, lr=lr, beta1=beta1, beta2=beta2, eps=eps, store_corrected=True)


def _adam_in_place(w, dw, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    t = state["t"] + 1
    m, v = state["m"], state["v"]
    m *= beta1
    m += (1 - beta1) * dw
    v *= beta2
    v += (1 - beta2) * dw**2
    w -= lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
    return w, {"t": t, "m": m, "v": v}


def _adam_dict_in_place(w, dw, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    state["t"] += 1                      # new arrays, but written into the caller's dict
    t = state["t"]
    state["m"] = beta1 * state["m"] + (1 - beta1) * dw
    state["v"] = beta2 * state["v"] + (1 - beta2) * dw**2
    return w - lr * (state["m"] / (1 - beta1**t)) / (np.sqrt(state["v"] / (1 - beta2**t)) + eps), state


_IN_PLACE = ("the state's arrays (or w) are updated in place ({example}): the grader hands them over read-only. "
             "Compute new arrays and return them in a new dict.")
_DICT_REUSED = ("the new values are stored in the state dict the step was given: return a new dict {keys} and leave "
                "the old one as it was (the caller may still need it).")
_EPS_INSIDE = ("eps is inside the square root, sqrt({v} + eps): torch divides by sqrt({v}) + eps, which differs as soon "
               "as the gradients are tiny.")
_NO_EPS = ("eps is missing from the denominator: the step is g / (sqrt({v}) + eps). Without it, a parameter whose "
           "gradients have all been 0 gets 0 / 0 = NaN.")
# == Understanding: what the chapter teaches you to predict (Parts 7 and 8) =====================
# Graded like the other parts, on hidden cases from the secret seed; the answers need only numpy and
# the standard library. Each mutant is a typical wrong answer (guesses included) with the feedback a
# student who gave it should read, and the book section that explains the right one.
SMOOTH, ZIGZAG, DIVERGES = "smooth", "zig-zag", "diverges"


# -- lr_regimes: gradient descent on a quadratic bowl, one regime per learning rate ----------------
def _rotation(rng, d):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _regime_lrs(rng, lam_max, labels):
    """Learning rates putting eta * lambda_max well inside each regime's interval."""
    ranges = {SMOOTH: (0.2, 0.85), ZIGZAG: (1.15, 1.85), DIVERGES: (2.15, 3.5)}
    return np.array([rng.uniform(*ranges[label]) / lam_max for label in labels])


def regime_cases(rng):
    """Eight bowls, six learning rates each (two per regime, shuffled). The first bowl is a trap: its two
    eigenvectors are at 45 degrees to the axes, so the diagonal of H (and its trace) mislead. The second is
    nearly round (condition number below 1.4): there the smallest eigenvalue leaves the smooth regime
    too, while on the others it says 'smooth' to almost every learning rate."""
    cases = []
    L = float(np.exp(rng.uniform(np.log(0.5), np.log(50.0))))
    c = np.sqrt(0.5)
    Q = np.array([[c, -c], [c, c]])
    H = Q @ np.diag([L, L / 6]) @ Q.T                 # diagonal 7L/12, trace 7L/6, eigenvalues L and L/6
    products = np.array([0.9, 0.95, 1.5, 1.9, 2.5, 3.0])  # eta * lambda_max: smooth, smooth, zig-zag x2, diverges x2
    cases.append({"H": H, "lrs": products[rng.permutation(6)] / L})
    for k in range(7):
        d = int(rng.integers(2, 6))
        kappa = float(rng.uniform(1.05, 1.4) if k == 0 else np.exp(rng.uniform(np.log(3.0), np.log(100.0))))
        lam = np.exp(rng.uniform(0.0, np.log(kappa), size=d))
        lam[0], lam[1] = 1.0, kappa                   # the extremes are there
        lam *= float(np.exp(rng.uniform(np.log(0.1), np.log(20.0))))
        Q = _rotation(rng, d)
        H = (Q * lam) @ Q.T
        labels = [SMOOTH, SMOOTH, ZIGZAG, ZIGZAG, DIVERGES, DIVERGES]
        cases.append({"H": 0.5 * (H + H.T), "lrs": _regime_lrs(rng, lam.max(), [labels[i] for i in rng.permutation(6)])})
    return [cases[i] for i in rng.permutation(len(cases))]


def regime_reference(H, lrs):
    products = (lrs * torch.linalg.eigvalsh(H).max()).cpu().numpy()
    return np.array([SMOOTH if x < 1 else ZIGZAG if x < 2 else DIVERGES for x in products])


def _regimes_from(products):
    return np.array([SMOOTH if x < 1 else ZIGZAG if x < 2 else DIVERGES for x in products])


def _regime_diagonal(H, lrs):
    return _regimes_from(lrs * np.diag(H).max())


def _regime_smallest(H, lrs):
    return _regimes_from(lrs * np.linalg.eigvalsh(H).min())


def _regime_trace(H, lrs):
    return _regimes_from(lrs * np.trace(H))


def _regime_no_zigzag(H, lrs):
    # "eta must stay below 1 / lambda_max": anything above diverges.
    return np.array([SMOOTH if x < 1 else DIVERGES for x in lrs * np.linalg.eigvalsh(H).max()])


def _regime_two_only(H, lrs):
    # "converges below 2 / lambda_max": smooth and zig-zag not told apart.
    return np.array([SMOOTH if x < 2 else DIVERGES for x in lrs * np.linalg.eigvalsh(H).max()])


def _regime_always(label):
    def guess(H, lrs):
        return np.array([label] * len(lrs))
    guess.__name__ = f"_regime_always_{label.replace('-', '_')}"
    return guess


# -- adam_constant_gradient_steps: Adam's steps under a constant gradient --------------------------
def adam_steps_cases(rng):
    cases = []
    for k in range(5):
        d = int(rng.integers(3, 7))
        magnitude = 10.0 ** rng.uniform(-9.0, 1.0, size=d)
        magnitude[0], magnitude[1] = 10.0 ** rng.uniform(-10.0, -8.0), 10.0 ** rng.uniform(-1.0, 1.0)
        g = magnitude * rng.choice([-1.0, 1.0], size=d)
        beta1 = 0.9 if k == 0 else float(rng.uniform(0.8, 0.95))
        beta2 = 0.999 if k == 0 else float(rng.choice([0.99, 0.999, 0.9999]))
        cases.append({"g": g[rng.permutation(d)], "steps": np.int64(rng.integers(5, 41)),
                      "lr": np.float64(10.0 ** rng.uniform(-4.0, -1.0)), "beta1": np.float64(beta1),
                      "beta2": np.float64(beta2), "eps": np.float64(rng.choice([1e-8, 1e-6]))})
    return cases


def adam_steps_call(student, g, steps, lr, beta1, beta2, eps):
    return student.adam_constant_gradient_steps(g, steps=int(steps), lr=float(lr), beta1=float(beta1),
                                                beta2=float(beta2), eps=float(eps))


def adam_steps_reference(g, steps, lr, beta1, beta2, eps):
    T = int(steps)
    grads = g.expand(T, -1).clone()
    trajectory, _ = _torch_run(torch.optim.Adam, torch.zeros_like(g), grads, [float(lr)] * T,
                               betas=(float(beta1), float(beta2)), eps=float(eps))
    corrected = torch.diff(torch.cat([torch.zeros_like(g)[None], trajectory]), dim=0)
    t = torch.arange(1, T + 1, dtype=g.dtype, device=g.device)[:, None]
    uncorrected = -lr * (1 - beta1**t) * g / (torch.sqrt(1 - beta2**t) * g.abs() + eps)
    return corrected, uncorrected


def _adam_closed_form(g, steps, lr, beta1, beta2, eps, *, eps_inside=False):
    t = np.arange(1, steps + 1, dtype=np.float64)[:, None]
    m, v = (1 - beta1**t) * g, (1 - beta2**t) * g**2           # the moving averages from zero
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    if eps_inside:
        return -lr * m_hat / np.sqrt(v_hat + eps), -lr * m / np.sqrt(v + eps)
    return -lr * m_hat / (np.sqrt(v_hat) + eps), -lr * m / (np.sqrt(v) + eps)


def _adam_sign_steps(g, *, steps, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    t = np.arange(1, steps + 1, dtype=np.float64)[:, None]
    return -lr * np.sign(g) * np.ones((steps, 1)), -lr * (1 - beta1**t) / np.sqrt(1 - beta2**t) * np.sign(g)


def _adam_uncorrected_same(g, *, steps, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    corrected, _ = _adam_closed_form(g, steps, lr, beta1, beta2, eps)
    return corrected, corrected


def _adam_first_factor_forever(g, *, steps, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    corrected, _ = _adam_closed_form(g, steps, lr, beta1, beta2, eps)
    step1 = -lr * (1 - beta1) * g / (np.sqrt(1 - beta2) * np.abs(g) + eps)
    return corrected, np.tile(step1, (steps, 1))


def _adam_eps_inside_sqrt(g, *, steps, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    return _adam_closed_form(g, steps, lr, beta1, beta2, eps, eps_inside=True)


def _adam_t_from_zero(g, *, steps, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    # The counter used before it is incremented: the first correction divides by 1 - beta**0 = 0.
    t = np.arange(0, steps, dtype=np.float64)[:, None]
    m, v = (1 - beta1 ** (t + 1)) * g, (1 - beta2 ** (t + 1)) * g**2
    with np.errstate(divide="ignore", invalid="ignore"):
        corrected = -lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
    return corrected, -lr * m / (np.sqrt(v) + eps)


def _adam_steps_uphill(g, *, steps, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    corrected, uncorrected = _adam_closed_form(g, steps, lr, beta1, beta2, eps)
    return -corrected, -uncorrected


def _adam_sgd_steps(g, *, steps, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    return -lr * np.tile(g, (steps, 1)), -lr * np.tile(g, (steps, 1))


_LR_BOOK = "ch02-learning-rate"
_ADAM_BOOK = "ch02-adam"
UNDERSTANDING_PARTS = [
    Part(id="lr_regimes", points=2, function="lr_regimes", outputs=("regimes",),
         cases=regime_cases, reference=regime_reference,
         mutants={
             "diagonal of H instead of its eigenvalues": Mutant(_regime_diagonal, book=_LR_BOOK, feedback=(
                 "The error is multiplied by 1 - eta * lambda_i along each eigenvector of H, and H need not be "
                 "diagonal: its diagonal entries are not its eigenvalues (on a bowl turned by 45 degrees the "
                 "diagonal underestimates the steepest curvature). Use np.linalg.eigvalsh(H).")),
             "smallest eigenvalue": Mutant(_regime_smallest, book=_LR_BOOK, feedback=(
                 "The flattest direction sets the speed, the steepest one the regime: a run diverges or "
                 "zig-zags as soon as eta * lambda_max exceeds 2 or 1, whatever the other directions do.")),
             "trace of H": Mutant(_regime_trace, book=_LR_BOOK, feedback=(
                 "Each direction has its own factor 1 - eta * lambda_i; the regime is decided by the largest "
                 "eigenvalue alone, not by their sum.")),
             "diverges as soon as eta > 1 / lambda_max": Mutant(_regime_no_zigzag, book=_LR_BOOK, feedback=(
                 "With 1 < eta * lambda < 2 the factor 1 - eta * lambda lies in (-1, 0): the error changes sign "
                 "every step but still shrinks. That is the zig-zag regime; divergence starts at 2 / lambda_max.")),
             "smooth and zig-zag not told apart": Mutant(_regime_two_only, book=_LR_BOOK, feedback=(
                 "Below 2 / lambda_max the run converges, but between 1 / lambda_max and 2 / lambda_max the "
                 "steepest direction overshoots and flips sign every step: that is the zig-zag regime.")),
             "always smooth": Mutant(_regime_always(SMOOTH), book=_LR_BOOK, feedback=(
                 "The regime depends on eta * lambda_max: compute the largest eigenvalue of H for each bowl.")),
             "always diverges": Mutant(_regime_always(DIVERGES), book=_LR_BOOK, feedback=(
                 "Gradient descent converges on a quadratic whenever eta < 2 / lambda_max.")),
         }),
    Part(id="adam_constant_gradient_steps", points=2, function="adam_constant_gradient_steps",
         outputs=("corrected", "uncorrected"), cases=adam_steps_cases, reference=adam_steps_reference,
         call=adam_steps_call,
         mutants={
             "-lr * sign(g), eps ignored": Mutant(_adam_sign_steps, book=_ADAM_BOOK, feedback=(
                 "With bias correction the step is -lr * g / (|g| + eps): about -lr * sign(g) for ordinary "
                 "gradients, but much smaller when |g| is comparable to eps (a gradient of 1e-9 with eps = 1e-8 "
                 "moves the weight by lr / 11).")),
             "no difference without bias correction": Mutant(_adam_uncorrected_same, book=_ADAM_BOOK, feedback=(
                 "Without correction m_t = (1 - beta1^t) g and v_t = (1 - beta2^t) g^2 are biased towards their "
                 "zero start, so the step is lr (1 - beta1^t) / sqrt(1 - beta2^t) times larger or smaller: about "
                 "3.2 times too large at t = 1 with the default betas.")),
             "uncorrected factor frozen at t = 1": Mutant(_adam_first_factor_forever, book=_ADAM_BOOK, feedback=(
                 "The uncorrected step changes with t: its factor (1 - beta1^t) / sqrt(1 - beta2^t) starts at "
                 "(1 - beta1) / sqrt(1 - beta2) and tends to 1 as both averages forget their zero start.")),
             "eps inside the square root": Mutant(_adam_eps_inside_sqrt, book=_ADAM_BOOK, feedback=(
                 "Adam adds eps to the square root of v-hat, not inside it: sqrt(v_hat) + eps.")),
             "step counter used before it is incremented": Mutant(_adam_t_from_zero, book=_ADAM_BOOK, feedback=(
                 "t is incremented before it is used, so the first step divides by 1 - beta1 and 1 - beta2; "
                 "with t = 0 the correction divides by zero.")),
             "steps uphill": Mutant(_adam_steps_uphill, book=_ADAM_BOOK, feedback=(
                 "Adam steps against the gradient: the update is minus lr times m-hat over (sqrt(v-hat) + eps).")),
             "plain gradient steps": Mutant(_adam_sgd_steps, book=_ADAM_BOOK, feedback=(
                 "Adam divides the moving average of the gradient by the root of the moving average of its "
                 "square, so its step is about lr whatever the scale of g, unlike SGD's -lr * g.")),
         }),
]


PARTS = [
    Part(id="linear_regression_gd", points=3, function="linear_regression_gd", outputs=("w", "b", "losses"),
         cases=gd_cases, reference=gd_reference, call=gd_call,
         forbid=("mlp_lib.optim.SGD", "mlp_lib.training.fit"),
         mutants={
             "sum instead of mean (no 1/N)": Mutant(
                 _gd_sum, book="ch02-gradients",
                 feedback="the gradient is a sum over the examples, without 1/N: J is the MEAN squared error, so "
                          "grad_w = (2/N) X.T @ r and dJ/db = (2/N) sum(r). Without 1/N each step is N times too "
                          "large (and may diverge)."),
             "gradient of MSE/2 (factor 2 missing)": Mutant(
                 _gd_half_gradient, book="ch02-gradients",
                 feedback="the factor 2 of the gradient is missing (that is the gradient of MSE / 2): the "
                          "derivative of mean(r**2) is (2/N) X.T @ r for w and (2/N) sum(r) for b."),
             "gradient ascent (sign error)": Mutant(
                 _gd_ascent, book="ch02-update",
                 feedback="the parameters move up the gradient (w + lr * grad): descent subtracts it, "
                          "w <- w - lr * grad_w and b <- b - lr * dJ/db."),
             "bias never updated": Mutant(
                 _gd_frozen_bias, book="ch02-update",
                 feedback="b never moves from 0: the bias has its own gradient, (2/N) sum(r), and is updated in "
                          "the same step as w."),
             "b's gradient at the updated w": Mutant(
                 _gd_sequential, book="ch02-update",
                 feedback="b's gradient is computed after w was updated: both gradients use the residuals at the "
                          "current parameters; compute r once per step, then update w and b together."),
             "final loss missing": Mutant(
                 _gd_no_final_loss, book="ch02-cost",
                 feedback="losses has one value per step only: it holds the MSE before each step and, last, the "
                          "MSE after the final step, steps + 1 values in all."),
         }),
    Part(id="minibatches", points=2, function="minibatches",
         outputs=("X_epoch1", "y_epoch1", "sizes_epoch1", "X_epoch2", "y_epoch2", "sizes_epoch2"),
         cases=minibatch_cases, reference=minibatch_reference, call=minibatch_call,
         forbid=("mlp_lib.training.fit",),
         mutants={
             "no shuffling": Mutant(
                 _mb_no_shuffle, book="ch02-shuffling",
                 feedback="the batches come in the original order: draw perm = rng.permutation(N) and take the "
                          "rows perm[i:i + B] of X and y."),
             "last partial batch dropped": Mutant(
                 _mb_drop_last, book="ch02-minibatch",
                 feedback="the last, partial batch is dropped: keep it, so that every example appears exactly once "
                          "per epoch (start = 0, B, 2B, ... while start < N)."),
             "X and y shuffled with different permutations": Mutant(
                 _mb_two_permutations, book="ch02-shuffling",
                 feedback="X and y are shuffled with two different permutations, so rows no longer go with their "
                          "labels: draw ONE permutation and index both X and y with it."),
             "X and y shuffled in place": Mutant(
                 _mb_shuffle_in_place, diagnosis="mutated_input", book="ch02-shuffling",
                 feedback="X and y are shuffled in place (X[:] = X[perm]): index them with the permutation, which "
                          "makes new arrays, and leave the inputs unchanged."),
             "batches sampled with replacement": Mutant(
                 _mb_with_replacement, book="ch02-minibatch",
                 feedback="the batches are sampled with replacement (rng.integers): an epoch uses every example "
                          "exactly once, as consecutive slices of one permutation."),
             "own generator with a fixed seed": Mutant(
                 _mb_fixed_seed, book="ch02-shuffling",
                 feedback="the permutation comes from a generator of your own, with a fixed seed, so every epoch "
                          "has the same order: draw it from the rng argument, perm = rng.permutation(N), so that "
                          "each call reshuffles."),
         }),
    Part(id="sgd_momentum_step", points=3, function="sgd_momentum_step", outputs=("trajectory", "velocity"),
         cases=momentum_cases, reference=momentum_reference, call=adapters.momentum_call, forbid=_OPTIM_FORBID,
         mutants={
             "classic (Sutskever) formulation, lr inside the velocity": Mutant(
                 _momentum_classic, book="ch02-momentum",
                 feedback="the learning rate is inside the velocity (v <- mu*v - lr*g, w <- w + v: Sutskever's "
                          "form). torch keeps it outside, v <- mu*v + g and w <- w - lr*v: the iterates agree "
                          "only while lr is constant, and the velocity is -lr times torch's."),
             "nesterov ignored (heavy-ball direction)": Mutant(
                 _momentum_no_nesterov, book="ch02-momentum",
                 feedback="with nesterov=True the step still goes along the heavy-ball direction v_new "
                          "(which g + mu*v_old also equals): Nesterov's direction is g + mu*v_new, with the "
                          "velocity just updated."),
             "velocity as an average (dampening 1 - momentum)": Mutant(
                 _momentum_dampened, book="ch02-momentum",
                 feedback="the velocity is an average, mu*v + (1 - mu)*g: torch's buffer is a sum, mu*v + g "
                          "(dampening 0)."),
             "state updated in place": Mutant(
                 _momentum_in_place, diagnosis="mutated_input", book="ch02-momentum",
                 feedback=_IN_PLACE.format(example="v *= mu, w -= ...")),
             "state dict reused (new values in the caller's dict)": Mutant(
                 _momentum_dict_in_place, book="ch02-momentum",
                 feedback=_DICT_REUSED.format(keys="{'velocity': v_new}")),
         }),
    Part(id="adagrad_step", points=2, function="adagrad_step", outputs=("trajectory", "sum_sq"),
         cases=adagrad_cases, reference=adagrad_reference, call=adapters.adagrad_call, forbid=_OPTIM_FORBID,
         mutants={
             "eps inside the square root": Mutant(
                 _adagrad_eps_inside, book="ch02-adaptive", feedback=_EPS_INSIDE.format(v="s")),
             "eps missing": Mutant(_adagrad_no_eps, book="ch02-adaptive", feedback=_NO_EPS.format(v="s")),
             "no accumulation (current gradient only)": Mutant(
                 _adagrad_no_accumulation, book="ch02-adaptive",
                 feedback="sum_sq holds only the current squared gradient: AdaGrad's s is the running SUM of "
                          "every squared gradient so far, s + g**2."),
             "no square root": Mutant(
                 _adagrad_no_sqrt, book="ch02-adaptive",
                 feedback="the step divides by s + eps: it divides by the square root, sqrt(s) + eps."),
             "state updated in place": Mutant(
                 _adagrad_in_place, diagnosis="mutated_input", book="ch02-adaptive",
                 feedback=_IN_PLACE.format(example="s += g**2, w -= ...")),
         }),
    Part(id="rmsprop_step", points=2, function="rmsprop_step", outputs=("trajectory", "square_avg"),
         cases=rmsprop_cases, reference=rmsprop_reference, call=adapters.rmsprop_call, forbid=_OPTIM_FORBID,
         mutants={
             "eps inside the square root": Mutant(
                 _rmsprop_eps_inside, book="ch02-adaptive", feedback=_EPS_INSIDE.format(v="v")),
             "eps missing": Mutant(_rmsprop_no_eps, book="ch02-adaptive", feedback=_NO_EPS.format(v="v")),
             "alpha and 1 - alpha swapped": Mutant(
                 _rmsprop_swapped_alpha, book="ch02-adaptive",
                 feedback="alpha and 1 - alpha are swapped: alpha weights the OLD average, "
                          "v <- alpha*v + (1 - alpha)*g**2, so that it changes slowly."),
             "sum instead of moving average": Mutant(
                 _rmsprop_sum, book="ch02-adaptive",
                 feedback="square_avg is a sum, v + g**2 (AdaGrad's): RMSProp keeps a moving average, "
                          "alpha*v + (1 - alpha)*g**2."),
             "state updated in place": Mutant(
                 _rmsprop_in_place, diagnosis="mutated_input", book="ch02-adaptive",
                 feedback=_IN_PLACE.format(example="v *= alpha, v += ...")),
         }),
    Part(id="adam_step", points=3, function="adam_step", outputs=("trajectory", "m", "v", "t"),
         cases=adam_cases, reference=adam_reference, call=adapters.adam_call, forbid=_OPTIM_FORBID,
         mutants={
             "no bias correction": Mutant(
                 _adam_no_bias_correction, book="ch02-adam",
                 feedback="there is no bias correction: the step uses m / (1 - beta1**t) and v / (1 - beta2**t), "
                          "with the new t; without it the first steps are far too small."),
             "t incremented after the bias correction": Mutant(
                 _adam_t_incremented_after, book="ch02-adam",
                 feedback="the bias correction uses the old count: increment t first, so that the first step "
                          "divides by 1 - beta1 and 1 - beta2."),
             "eps inside the square root": Mutant(
                 _adam_eps_inside, book="ch02-adam", feedback=_EPS_INSIDE.format(v="v_hat")),
             "eps missing": Mutant(_adam_no_eps, book="ch02-adam", feedback=_NO_EPS.format(v="v_hat")),
             "bias correction of m only": Mutant(
                 _adam_corrects_m_only, book="ch02-adam",
                 feedback="only m is bias-corrected: v needs its own correction, v_hat = v / (1 - beta2**t)."),
             "state holds the corrected moments": Mutant(
                 _adam_stores_corrected_moments, book="ch02-adam",
                 feedback="the state holds the bias-corrected m_hat and v_hat: store the uncorrected moving "
                          "averages m and v, and correct them only to compute the step (the next step's "
                          "averages continue from the uncorrected ones)."),
             "state updated in place": Mutant(
                 _adam_in_place, diagnosis="mutated_input", book="ch02-adam",
                 feedback=_IN_PLACE.format(example="m *= beta1, m += ...")),
             "state dict reused (new values in the caller's dict)": Mutant(
                 _adam_dict_in_place, book="ch02-adam",
                 feedback=_DICT_REUSED.format(keys="{'t': ..., 'm': ..., 'v': ...}")),
         }),
    *UNDERSTANDING_PARTS,
]
