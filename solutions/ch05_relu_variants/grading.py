"""Grading spec of Chapter 5's exercise: ReLU, leaky ReLU, ELU and softplus (forward and backward
passes) and the fraction of dead units of a layer.

Every Part draws its cases from the grader's rng and is judged against a torch reference computed
in float64 (on the grading device): ``torch.nn.functional`` for the forward passes, autograd for
the backward passes. Conventions, as stated in the exercise and in the book (``mlp_lib.layers``
computes the same values):

* every forward pass returns ``(out, cache)`` with ``cache = (x, *options)``: ``(x,)`` for ReLU,
  ``(x, negative_slope)``, ``(x, alpha)``, ``(x, beta, threshold)``; the backward passes are
  graded on caches of exactly that form, built here from the case's inputs, so that a mistake in
  a forward pass never costs the points of a backward pass;
* derivatives at the kink follow torch: ReLU's is 0 at ``x = 0``, leaky ReLU's is
  ``negative_slope``, ELU's is ``alpha``;
* softplus is torch's formula: ``x`` where ``beta * x > threshold`` (strictly), else
  ``log(1 + exp(beta * x)) / beta``; its derivative is 1 above the threshold, else
  ``sigmoid(beta * x)``;
* ``dead_unit_fraction(z)``: z holds pre-activations (N, D) (N examples, D units); a unit is
  dead when ``z <= 0`` on all N examples; the result is the fraction of the D units that are dead.

ELU and softplus must be computed without overflow (the statement says so): those four parts are
``stable``, so a case in which numpy warns about an overflow, an invalid value or a division by
zero fails even when the values are right (an np.where that discards an overflowed branch).

Deliberate hard cases (structure fixed, values from the rng): exact zeros wherever the value at
the kink matters, +-1000 and +-750 wherever a formula can overflow, arrays of any shape (1-D, 2-D
with N != D, 3-D); for softplus, entries where ``x`` and ``beta * x`` fall on different sides of
the threshold (beta > 1 and beta < 1, with small thresholds, where the two branches differ by
far more than the tolerance) and entries where ``x`` is below the threshold but ``beta * x`` is
far above exp's overflow; upstream gradients are random normals (never ones). The dead-unit
cases have N != D; among the dead columns, strictly negative ones, ones with exact zeros (so that
``<`` and ``<=`` disagree) and one that is exactly 0 throughout (zero weights); columns inactive
on all but one example; and examples on which every unit is <= 0.
Each mistake carries the feedback a student who made it gets; tests/test_assignment_ch05.py and
tests/test_autograder_mutants.py check that each loses the points of its own part, and only
those, and is named by that feedback.
"""
import numpy as np
import torch
import torch.nn.functional as F

import adapters
from autograder.spec import Mutant, Part

PUBLIC_SEED = 20100621           # ICML 2010 opened on 21 June 2010; Nair & Hinton's ReLU paper was there
# the locked cells the answers may rely on: the imports, and the answers' vocabulary of Parts 7 and on
SETUP = ("setup", "understanding-setup")


def _shapes(rng):
    """Four shapes: two 2-D with N != D, one 1-D, one 3-D (activations work elementwise on any shape)."""
    n, d = (int(v) for v in rng.choice(np.arange(3, 12), size=2, replace=False))
    m, k = (int(v) for v in rng.choice(np.arange(3, 12), size=2, replace=False))
    return [(n, d), (m, k), (int(rng.integers(8, 20)),), (2, int(rng.integers(2, 5)), int(rng.integers(3, 6)))]


def _with_zeros(rng, shape, scale=3.0, extreme=False):
    """Normal values with about one entry in five set to exactly 0 (and, if ``extreme``, +-1000 and +-750)."""
    x = scale * rng.standard_normal(shape)
    flat = x.reshape(-1)
    idx = rng.permutation(flat.size)
    n_zero = max(2, flat.size // 5)
    flat[idx[:n_zero]] = 0.0
    if extreme:
        flat[idx[n_zero:n_zero + 4]] = [1000.0, 750.0, -1000.0, -750.0]
    return x


# -- relu_forward / relu_backward -------------------------------------------------------------------
def relu_forward_cases(rng):
    return [{"x": _with_zeros(rng, shape)} for shape in _shapes(rng)]


def relu_forward_reference(x):
    return F.relu(x)


def _relu_fwd_in_place(x):
    np.maximum(x, 0.0, out=x)
    return x, (x,)


def _relu_fwd_min(x):
    return np.minimum(x, 0.0), (x,)


def _relu_fwd_abs(x):
    return np.abs(x), (x,)


def _relu_fwd_mask(x):
    return (x > 0).astype(x.dtype), (x,)


def relu_backward_cases(rng):
    return [{"dout": rng.standard_normal(shape), "x": _with_zeros(rng, shape)} for shape in _shapes(rng)]


def relu_backward_reference(dout, x):
    x = x.clone().requires_grad_(True)
    F.relu(x).backward(dout)
    return x.grad


def _relu_bwd_ge(dout, cache):
    (x,) = cache
    return dout * (x >= 0)


def _relu_bwd_dout_sign(dout, cache):
    return dout * (dout > 0)


def _relu_bwd_no_dout(dout, cache):
    (x,) = cache
    return (x > 0).astype(x.dtype)


def _relu_bwd_in_place(dout, cache):
    (x,) = cache
    dout[x <= 0] = 0.0
    return dout


def _relu_bwd_relu_of_dout(dout, cache):
    (x,) = cache
    return np.maximum(dout, 0.0) * (x > 0)


# -- leaky_relu_forward / leaky_relu_backward -------------------------------------------------------
def _slopes(rng):
    return [0.01, float(rng.uniform(0.05, 0.3)), float(rng.uniform(0.3, 0.9)), 0.2]


def leaky_forward_cases(rng):
    return [{"x": _with_zeros(rng, shape), "negative_slope": a} for shape, a in zip(_shapes(rng), _slopes(rng))]


def leaky_forward_reference(x, negative_slope):
    return F.leaky_relu(x, float(negative_slope))


def _leaky_fwd_slope_on_positive(x, *, negative_slope=0.01):
    return np.where(x > 0, negative_slope * x, x), (x, negative_slope)


def _leaky_fwd_default_slope(x, *, negative_slope=0.01):
    return np.where(x > 0, x, 0.01 * x), (x, negative_slope)


def _leaky_fwd_relu(x, *, negative_slope=0.01):
    return np.maximum(x, 0.0), (x, negative_slope)


def _leaky_fwd_in_place(x, *, negative_slope=0.01):
    x[x < 0] *= negative_slope
    return x, (x, negative_slope)


def _leaky_fwd_offset(x, *, negative_slope=0.01):
    # max(x, 0) + slope: the slope added instead of multiplied
    return np.where(x > 0, x, negative_slope), (x, negative_slope)


def leaky_backward_cases(rng):
    return [{"dout": rng.standard_normal(shape), "x": _with_zeros(rng, shape), "negative_slope": a}
            for shape, a in zip(_shapes(rng), _slopes(rng))]


def leaky_backward_reference(dout, x, negative_slope):
    x = x.clone().requires_grad_(True)
    F.leaky_relu(x, float(negative_slope)).backward(dout)
    return x.grad


def _leaky_bwd_no_slope(dout, cache):
    x, a = cache
    return dout * (x > 0)


def _leaky_bwd_slope_on_positive(dout, cache):
    x, a = cache
    return dout * np.where(x > 0, a, 1.0)


def _leaky_bwd_one_at_zero(dout, cache):
    x, a = cache
    return dout * np.where(x >= 0, 1.0, a)


def _leaky_bwd_no_dout(dout, cache):
    x, a = cache
    return np.where(x > 0, 1.0, a)


# -- elu_forward / elu_backward -----------------------------------------------------------------------
def _alphas(rng):
    return [1.0, float(rng.uniform(0.2, 0.8)), float(rng.uniform(1.5, 3.0)), 0.5]


def elu_forward_cases(rng):
    return [{"x": _with_zeros(rng, shape, extreme=True), "alpha": a} for shape, a in zip(_shapes(rng), _alphas(rng))]


def elu_forward_reference(x, alpha):
    return F.elu(x, float(alpha))


def _elu_fwd_mask_times_exp(x, *, alpha=1.0):
    # exp is evaluated everywhere and masked by multiplication: exp(1000) = inf, inf * 0 = nan
    return x * (x > 0) + alpha * (np.exp(x) - 1.0) * (x <= 0), (x, alpha)


def _elu_fwd_where_exp(x, *, alpha=1.0):
    # right values, but np.exp(1000) overflows in the branch np.where discards
    return np.where(x > 0, x, alpha * (np.exp(x) - 1.0)), (x, alpha)


def _elu_fwd_no_alpha(x, *, alpha=1.0):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))), (x, alpha)


def _elu_fwd_no_minus_one(x, *, alpha=1.0):
    return np.where(x > 0, x, alpha * np.exp(np.minimum(x, 0.0))), (x, alpha)


def _elu_fwd_alpha_everywhere(x, *, alpha=1.0):
    return alpha * np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))), (x, alpha)


def _elu_fwd_in_place(x, *, alpha=1.0):
    negative = x <= 0
    x[negative] = alpha * np.expm1(x[negative])
    return x, (x, alpha)


def elu_backward_cases(rng):
    return [{"dout": rng.standard_normal(shape), "x": _with_zeros(rng, shape, extreme=True), "alpha": a}
            for shape, a in zip(_shapes(rng), _alphas(rng))]


def elu_backward_reference(dout, x, alpha):
    x = x.clone().requires_grad_(True)
    F.elu(x, float(alpha)).backward(dout)
    return x.grad


def _elu_bwd_no_alpha(dout, cache):
    x, alpha = cache
    return dout * np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0)))


def _elu_bwd_mask_times_exp(dout, cache):
    x, alpha = cache
    return dout * ((x > 0) + alpha * np.exp(x) * (x <= 0))


def _elu_bwd_where_exp(dout, cache):
    x, alpha = cache
    return dout * np.where(x > 0, 1.0, alpha * np.exp(x))      # exp(1000) overflows, then is discarded


def _elu_bwd_one_at_zero(dout, cache):
    x, alpha = cache
    return dout * np.where(x >= 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))


def _elu_bwd_forward_value(dout, cache):
    # the ELU itself instead of its derivative on the negative side
    x, alpha = cache
    return dout * np.where(x > 0, 1.0, alpha * np.expm1(np.minimum(x, 0.0)))


def _elu_bwd_no_dout(dout, cache):
    x, alpha = cache
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))


# -- softplus_forward / softplus_backward -----------------------------------------------------------
def _softplus_case(rng, shape, beta, threshold, band):
    """Normal values with exact zeros, +-1000 and +-750, and three entries in ``band``:
    "above" — beta * x just above the threshold, x below it (beta > 1); "below" — x above the
    threshold, beta * x below it (beta < 1): there the two branches differ by far more than the
    tolerance; "under" — x just below the threshold (for a large beta, beta * x is far above exp's
    overflow)."""
    x = 3.0 * rng.standard_normal(shape)
    flat = x.reshape(-1)
    idx = rng.permutation(flat.size)
    flat[idx[:2]] = 0.0
    flat[idx[2:6]] = [1000.0, 750.0, -1000.0, -750.0]
    if band == "above":
        flat[idx[6:9]] = rng.uniform(1.05, 1.4, size=3) * threshold / beta
    elif band == "below":
        flat[idx[6:9]] = rng.uniform(0.75, 0.95, size=3) * threshold / beta
    else:
        flat[idx[6:9]] = rng.uniform(0.8, 0.99, size=3) * threshold             # "under"
    return {"x": x, "beta": beta, "threshold": threshold}


def softplus_cases(rng):
    n, d = (int(v) for v in rng.choice(np.arange(4, 12), size=2, replace=False))
    return [_softplus_case(rng, (n, d), 1.0, 20.0, "under"),                              # the defaults
            _softplus_case(rng, (d, n), float(rng.uniform(1.5, 3.0)), float(rng.uniform(1.0, 3.0)), "above"),
            _softplus_case(rng, (int(rng.integers(10, 20)),), float(rng.uniform(0.3, 0.7)),
                           float(rng.uniform(1.0, 3.0)), "below"),
            _softplus_case(rng, (2, int(rng.integers(2, 5)), int(rng.integers(3, 6))), float(rng.uniform(80.0, 120.0)),
                           20.0, "under")]


def softplus_forward_reference(x, beta, threshold):
    return F.softplus(x, float(beta), float(threshold))


def _softplus_fwd_naive(x, *, beta=1.0, threshold=20.0):
    return np.log(1.0 + np.exp(beta * x)) / beta, (x, beta, threshold)


def _softplus_fwd_no_beta(x, *, beta=1.0, threshold=20.0):
    return np.where(x > threshold, x, np.log1p(np.exp(np.minimum(x, threshold)))), (x, beta, threshold)


def _softplus_fwd_not_divided(x, *, beta=1.0, threshold=20.0):
    bx = beta * x
    return np.where(bx > threshold, x, np.log1p(np.exp(np.minimum(bx, threshold)))), (x, beta, threshold)


def _softplus_fwd_where_overflows(x, *, beta=1.0, threshold=20.0):
    # right values, but exp(beta * x) overflows in the branch np.where discards
    bx = beta * x
    return np.where(bx > threshold, x, np.log1p(np.exp(bx)) / beta), (x, beta, threshold)


def _softplus_fwd_threshold_on_x(x, *, beta=1.0, threshold=20.0):
    # compares x, not beta * x, with the threshold: exp(beta * x) overflows for large beta
    return np.where(x > threshold, x, np.log1p(np.exp(beta * np.minimum(x, threshold))) / beta), (x, beta, threshold)


def _softplus_fwd_threshold_on_x_stable(x, *, beta=1.0, threshold=20.0):
    # compares x, not beta * x, with the threshold, with a logarithm that never overflows
    bx = beta * x
    smooth = (np.maximum(bx, 0.0) + np.log1p(np.exp(-np.abs(bx)))) / beta
    return np.where(x > threshold, x, smooth), (x, beta, threshold)


def _softplus_fwd_relu_below(x, *, beta=1.0, threshold=20.0):
    # the branches swapped: ReLU-like below the threshold
    bx = beta * x
    return np.where(bx > threshold, np.log1p(np.exp(np.minimum(bx, 700.0))) / beta, np.maximum(x, 0.0)), \
        (x, beta, threshold)


def softplus_backward_cases(rng):
    cases = softplus_cases(rng)
    for case in cases:
        case["dout"] = rng.standard_normal(case["x"].shape)
    return [{"dout": c["dout"], "x": c["x"], "beta": c["beta"], "threshold": c["threshold"]} for c in cases]


def softplus_backward_reference(dout, x, beta, threshold):
    x = x.clone().requires_grad_(True)
    F.softplus(x, float(beta), float(threshold)).backward(dout)
    return x.grad


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))        # stable for any z


def _softplus_bwd_no_beta(dout, cache):
    x, beta, threshold = cache
    return dout * np.where(beta * x > threshold, 1.0, _sigmoid(x))


def _softplus_bwd_naive(dout, cache):
    x, beta, threshold = cache
    e = np.exp(beta * x)
    return dout * e / (1.0 + e)                   # inf / inf = nan for large beta * x


def _softplus_bwd_sigmoid_overflows(dout, cache):
    x, beta, threshold = cache
    bx = beta * x
    return dout * np.where(bx > threshold, 1.0, 1.0 / (1.0 + np.exp(-bx)))   # exp(1000) = inf: 1 / inf = 0


def _softplus_bwd_threshold_on_x(dout, cache):
    x, beta, threshold = cache
    return dout * np.where(x > threshold, 1.0, _sigmoid(beta * x))


def _softplus_bwd_extra_beta(dout, cache):
    x, beta, threshold = cache
    return dout * np.where(beta * x > threshold, 1.0, beta * _sigmoid(beta * x))


def _softplus_bwd_softplus(dout, cache):
    # the function instead of its derivative
    x, beta, threshold = cache
    bx = beta * x
    return dout * np.where(bx > threshold, 1.0, np.log1p(np.exp(np.minimum(bx, threshold))) / beta)


def _softplus_bwd_no_dout(dout, cache):
    x, beta, threshold = cache
    return np.where(beta * x > threshold, 1.0, _sigmoid(beta * x))


# -- dead_unit_fraction -------------------------------------------------------------------------------
def dead_cases(rng):
    cases = []
    # (N, D, dead units, units alive on a single example, examples with every unit <= 0: never none,
    # so that a wrong answer that happens to be 0 is not mistaken for the axis-swapped one)
    for n, d, n_dead, n_almost, n_silent in ((30, 12, 4, 2, 1), (7, 25, 9, 3, 2), (50, 40, 0, 5, 2),
                                             (16, 9, 3, 2, 3)):
        z = rng.standard_normal((n, d)) + 0.5
        silent = rng.choice(n, size=n_silent, replace=False)
        z[silent] = -np.abs(z[silent])                    # what the axis-swapped answer counts
        cols = rng.permutation(d)
        dead, almost = cols[:n_dead], cols[n_dead:n_dead + n_almost]
        z[:, dead] = -np.abs(z[:, dead])                  # dead: <= 0 on every example: strictly negative in
        for j in dead[2::2]:                              # dead[1::2], with two exact zeros in dead[2::2] ...
            z[rng.choice(n, size=2, replace=False), j] = 0.0
        z[:, dead[:1]] = 0.0                              # ... and exactly 0 throughout in dead[0] (zero weights)
        z[:, almost] = -np.abs(z[:, almost])              # alive on exactly one (non-silent) example
        awake = rng.choice(np.setdiff1d(np.arange(n), silent), size=n_almost)
        z[awake, almost] = rng.uniform(0.1, 1.0, size=n_almost)
        alive = np.setdiff1d(np.arange(d), dead)          # a few more exact zeros in units that are not dead
        negative = np.flatnonzero((z < 0) & np.isin(np.arange(d), alive))
        z.flat[rng.choice(negative, size=int(rng.integers(3, 8)), replace=False)] = 0.0
        cases.append({"z": z})
    return cases


def dead_reference(z):
    return (z <= 0).all(dim=0).to(torch.float64).mean()


def _dead_entries(z):
    return float(np.mean(z <= 0))


def _dead_zero_entries(z):
    return float(np.mean(z == 0))


def _dead_strict(z):
    return float(np.mean((z < 0).all(axis=0)))


def _dead_axis_swapped(z):
    return float(np.mean((z <= 0).all(axis=1)))


def _dead_any(z):
    return float(np.mean((z <= 0).any(axis=0)))


def _dead_count(z):
    return int(np.sum((z <= 0).all(axis=0)))


def _dead_equal_zero(z):
    # the test for ReLU *outputs* applied to pre-activations
    return float(np.mean((z == 0).all(axis=0)))


def _dead_relu_in_place(z):
    np.maximum(z, 0.0, out=z)
    return float(np.mean((z == 0).all(axis=0)))


# mlp_lib's versions of what the parts ask for (the *_forward/*_backward names are forbidden anyway).
_ACTIVATIONS = ("mlp_lib.layers.relu", "mlp_lib.layers.relu_grad", "mlp_lib.layers.leaky_relu",
                "mlp_lib.layers.leaky_relu_grad", "mlp_lib.layers.elu", "mlp_lib.layers.elu_grad",
                "mlp_lib.layers.softplus", "mlp_lib.layers.softplus_grad")

THRESHOLD_ON_X = ("the threshold is compared with x: torch compares beta * x with it, returning x where "
                  "beta * x > threshold and log(1 + exp(beta * x)) / beta elsewhere.")
DOUT_IGNORED = "dx is the local derivative alone: multiply it by dout (the chain rule), elementwise."
IN_PLACE = ("{arg} is changed in place ({how}): the grader hands it over read-only; compute the result in a new "
            "array{hint}.")


# == Understanding: what the chapter teaches you to predict (Parts 10 and 11) ===================
# Graded like the other parts, on hidden cases from the secret seed; the answers need only numpy and
# the standard library. Each mutant is a typical wrong answer (guesses included) with the feedback a
# student who gave it should read, and the book section that explains the right one.
NO_DEAD_UNITS, DEAD_AT_INIT, KILLED = "no dead units", "dead from initialization", "killed during training"
KEEP, ZERO_BIASES, LOWER_LR = "keep the settings", "initialize the biases at zero", "lower the learning rate"


# -- rectifier_std_ratio: He et al.'s variance argument for (leaky) ReLU stacks -------------------
def std_ratio_cases(rng):
    cases = []
    slopes = [0.0, 0.0, 0.01, 0.1, 0.2, 0.3]
    for k in range(6):
        depth = int(rng.integers(3, 13))
        widths = rng.integers(16, 257, size=depth + 1)
        a = slopes[k] if k < 2 else float(rng.choice(slopes[2:]))
        var = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            rule = rng.choice(["He", "Xavier", "LeCun", "leaky He", "any"])
            v = {"He": 2 / n_in, "Xavier": 2 / (n_in + n_out), "LeCun": 1 / n_in,
                 "leaky He": 2 / ((1 + a**2) * n_in), "any": rng.uniform(0.3, 3.0) / n_in}[rule]
            var.append(v)
        cases.append({"widths": widths.astype(np.int64), "weight_var": np.array(var), "slope": np.float64(a)})
    return cases


def std_ratio_call(student, widths, weight_var, slope):
    return student.rectifier_std_ratio(widths, weight_var, float(slope))


def std_ratio_reference(widths, weight_var, slope):
    fan_in = widths[1:-1].to(weight_var.dtype)          # the inputs of layers 2 .. L
    factors = 0.5 * (1 + slope**2) * fan_in * weight_var[1:]
    return torch.sqrt(torch.prod(factors))


def _std_ratio(widths, weight_var, slope, *, kept=None, first=False, fan="in", root=True):
    kept = 0.5 * (1 + slope**2) if kept is None else kept
    fans = widths[:-1] if fan == "in" else widths[1:]
    factors = kept * fans * weight_var
    product = np.prod(factors if first else factors[1:])
    return float(np.sqrt(product) if root else product)


def _std_ratio_no_half(widths, weight_var, slope):
    return _std_ratio(widths, weight_var, slope, kept=1.0)


def _std_ratio_slope_not_squared(widths, weight_var, slope):
    return _std_ratio(widths, weight_var, slope, kept=0.5 * (1 + slope))


def _std_ratio_from_the_input(widths, weight_var, slope):
    return _std_ratio(widths, weight_var, slope, first=True)


def _std_ratio_variance(widths, weight_var, slope):
    return _std_ratio(widths, weight_var, slope, root=False)


def _std_ratio_fan_out(widths, weight_var, slope):
    return _std_ratio(widths, weight_var, slope, fan="out")


def _std_ratio_one(widths, weight_var, slope):
    return 1.0


# -- diagnose_dead_units: the dead fraction of a layer over training ------------------------------
def _dead_curve(rng, kind, epochs, few_at_init=False):
    """The fraction of a hidden layer's units that are dead (z <= 0 on the whole training set), at
    initialization (entry 0) and after each epoch, shaped like the chapter's measurements."""
    curve = np.empty(epochs + 1)
    if kind == "healthy":
        curve[:] = rng.uniform(0.0, 0.04, size=epochs + 1)
        curve[0] = rng.uniform(0.005, 0.03) if few_at_init else rng.choice([0.0, rng.uniform(0.005, 0.03)])
    elif kind == "bias":                       # negative biases: dead from the start, and dead units stay dead
        curve[0] = rng.uniform(0.3, 0.9)
        curve[1:] = curve[0] + np.cumsum(rng.uniform(0.0, 0.03, size=epochs))
    else:                                      # a learning rate that is too large: killed in the first epochs
        curve[0] = rng.choice([0.0, rng.uniform(0.005, 0.03)])
        onset = int(rng.integers(1, 4))
        curve[1:onset] = rng.uniform(0.0, 0.04, size=onset - 1)
        curve[onset:] = rng.uniform(0.25, 0.6) + np.cumsum(rng.normal(0.01, 0.02, size=epochs + 1 - onset))
    return np.clip(np.round(curve, 4), 0.0, 1.0)


_DEAD_KINDS = {"healthy": (NO_DEAD_UNITS, KEEP), "bias": (DEAD_AT_INIT, ZERO_BIASES), "lr": (KILLED, LOWER_LR)}


def dead_units_cases(rng):
    cases = []
    for _ in range(5):
        epochs, n_runs = int(rng.integers(8, 16)), int(rng.integers(6, 9))
        kinds = list(_DEAD_KINDS) + list(rng.choice(list(_DEAD_KINDS), size=n_runs - 3))
        # kinds[0] is a healthy run with a few units (a percent or two) dead at initialization, as is normal
        curves = [_dead_curve(rng, kinds[i], epochs, few_at_init=i == 0) for i in rng.permutation(n_runs)]
        cases.append({"dead_curves": np.array(curves)})
    return cases


def _dead_cause(curve):
    if curve[0] > 0.2:
        return DEAD_AT_INIT
    return KILLED if curve.max() > 0.2 else NO_DEAD_UNITS


_DEAD_FIX = {NO_DEAD_UNITS: KEEP, DEAD_AT_INIT: ZERO_BIASES, KILLED: LOWER_LR}


def dead_units_reference(dead_curves):
    causes = [_dead_cause(c) for c in dead_curves.cpu().numpy()]
    return np.array(causes), np.array([_DEAD_FIX[c] for c in causes])


def _dead(dead_curves, cause, fixes=None):
    causes = [cause(c) for c in dead_curves]
    fixes = {**_DEAD_FIX, **(fixes or {})}
    return np.array(causes), np.array([fixes[c] for c in causes])


def _dead_final_only(dead_curves):
    return _dead(dead_curves, lambda c: KILLED if c[-1] > 0.2 else NO_DEAD_UNITS)


def _dead_any_at_init(dead_curves):
    return _dead(dead_curves, lambda c: DEAD_AT_INIT if c[0] > 0 else _dead_cause(c))


def _dead_fixes_swapped(dead_curves):
    return _dead(dead_curves, _dead_cause, {DEAD_AT_INIT: LOWER_LR, KILLED: ZERO_BIASES})


def _dead_always_healthy(dead_curves):
    return np.array([NO_DEAD_UNITS] * len(dead_curves)), np.array([KEEP] * len(dead_curves))


def _dead_always_lr(dead_curves):
    return np.array([KILLED] * len(dead_curves)), np.array([LOWER_LR] * len(dead_curves))


_HE_BOOK = "ch05-he"
_DYING_BOOK = "ch05-dying"
UNDERSTANDING_PARTS = [
    Part(id="rectifier_std_ratio", points=2, function="rectifier_std_ratio", outputs=("ratio",),
         cases=std_ratio_cases, reference=std_ratio_reference, call=std_ratio_call,
         mutants={
             "the half that ReLU removes forgotten": Mutant(_std_ratio_no_half, book=_HE_BOOK, feedback=(
                 "A rectifier zeroes the negative half of a symmetric z: E[relu(z)^2] = Var(z) / 2, so each layer "
                 "multiplies the variance by (1/2) n_in Var(w), not n_in Var(w) as for a linear unit.")),
             "(1 + a) / 2 for leaky ReLU": Mutant(_std_ratio_slope_not_squared, book="ch05-leaky", feedback=(
                 "The negative half is multiplied by a, so its contribution to the second moment is multiplied "
                 "by a^2: the fraction that survives is (1 + a^2) / 2.")),
             "the first layer counted": Mutant(_std_ratio_from_the_input, book=_HE_BOOK, feedback=(
                 "The ratio is between z of the last layer and z of the first: the factors are those of layers 2 "
                 "to L, whose inputs are rectified. The first layer's input is the data, not a ReLU output.")),
             "variance ratio instead of the standard deviation": Mutant(_std_ratio_variance, book=_HE_BOOK, feedback=(
                 "The product of the per-layer factors is the ratio of the variances; the question asks for the "
                 "ratio of standard deviations, its square root.")),
             "fan-out instead of fan-in": Mutant(_std_ratio_fan_out, book=_HE_BOOK, feedback=(
                 "A pre-activation of layer l sums over the n_(l-1) inputs of that layer: the forward signal "
                 "depends on the fan-in.")),
             "always 1": Mutant(_std_ratio_one, book=_HE_BOOK, feedback=(
                 "Only He's choice, Var(w) = 2 / ((1 + a^2) n_in) in every layer, keeps the ratio at 1; compute the "
                 "product for the variances given (Xavier's halves the variance at every square layer).")),
         }),
    Part(id="diagnose_dead_units", points=2, function="diagnose_dead_units", outputs=("causes", "fixes"),
         cases=dead_units_cases, reference=dead_units_reference,
         mutants={
             "the final fraction only": Mutant(_dead_final_only, book=_DYING_BOOK, feedback=(
                 "At the end both kinds of run have many dead units; what tells the causes apart is *when* they "
                 "died: already at initialization (negative biases) or during the first epochs (large steps).")),
             "any dead unit at initialization": Mutant(_dead_any_at_init, book="ch05-dying-bias", feedback=(
                 "A few dead units at initialization (a percent or two) are normal in a random network; dying "
                 "from initialization means a large part of the layer, as with biases at -6.")),
             "fixes swapped": Mutant(_dead_fixes_swapped, book=_DYING_BOOK, feedback=(
                 "Units dead from the start were put there by their initialization (negative biases): start the "
                 "biases at zero. Units killed during training were thrown off the data by large steps: lower "
                 "the learning rate.")),
             "always healthy": Mutant(_dead_always_healthy, book=_DYING_BOOK, feedback=(
                 "Read each curve: a fraction of dead units of 30% or more is a layer that uses only part of "
                 "its capacity.")),
             "always the learning rate": Mutant(_dead_always_lr, book="ch05-dying-lr", feedback=(
                 "Too large a learning rate is one cause; a layer dead from initialization has another, and many "
                 "runs are healthy.")),
         }),
]


PARTS = [
    Part(id="relu_forward", points=1, function="relu_forward", outputs=("out", "_"),
         cases=relu_forward_cases, reference=relu_forward_reference, forbid=_ACTIVATIONS,
         mutants={"clips x in place": Mutant(_relu_fwd_in_place, diagnosis="mutated_input", book="ch05-definition",
                                             feedback=IN_PLACE.format(arg="x", how="np.maximum(x, 0, out=x), "
                                                                      "x[x < 0] = 0", hint=", np.maximum(x, 0.0)")),
                  "min instead of max": Mutant(_relu_fwd_min, book="ch05-definition", feedback=(
                      "the output is min(x, 0), the negative part: ReLU keeps the positive part, max(x, 0).")),
                  "absolute value": Mutant(_relu_fwd_abs, book="ch05-definition", feedback=(
                      "negative inputs come out positive (|x|): ReLU sends them to 0.")),
                  "the 0/1 mask instead of the output": Mutant(_relu_fwd_mask, book="ch05-definition", feedback=(
                      "the output is the 0/1 mask x > 0 (the derivative): the forward pass returns x itself "
                      "where x > 0."))}),
    Part(id="relu_backward", points=1, function="relu_backward", outputs=("dx",),
         cases=relu_backward_cases, reference=relu_backward_reference, call=adapters.relu_backward,
         forbid=_ACTIVATIONS,
         mutants={"derivative 1 at 0 (x >= 0)": Mutant(_relu_bwd_ge, book="ch05-gradient-one", feedback=(
                      "the gradient passes where x == 0 (x >= 0): ReLU's derivative at 0 is taken as 0, as in "
                      "torch, so the mask is x > 0.")),
                  "mask from the sign of dout": Mutant(_relu_bwd_dout_sign, book="ch05-gradient-one", feedback=(
                      "the mask is computed from dout (dout > 0): where the gradient passes is decided by the "
                      "forward input, x > 0.")),
                  "dout ignored": Mutant(_relu_bwd_no_dout, book="ch05-gradient-one", feedback=DOUT_IGNORED),
                  "zeroes dout in place": Mutant(_relu_bwd_in_place, diagnosis="mutated_input",
                                                 book="ch05-gradient-one",
                                                 feedback=IN_PLACE.format(arg="dout", how="dout[x <= 0] = 0",
                                                                          hint=", dout * (x > 0)")),
                  "ReLU applied to dout too": Mutant(_relu_bwd_relu_of_dout, book="ch05-gradient-one", feedback=(
                      "negative upstream gradients are dropped (ReLU applied to dout): only x decides where the "
                      "gradient passes, and there dout passes unchanged, whatever its sign."))}),
    Part(id="leaky_relu_forward", points=1, function="leaky_relu_forward", outputs=("out", "_"),
         cases=leaky_forward_cases, reference=leaky_forward_reference, forbid=_ACTIVATIONS,
         mutants={"slope applied on the positive side": Mutant(_leaky_fwd_slope_on_positive, book="ch05-leaky",
                                                               feedback=(
                      "the slope multiplies the positive inputs instead of the negative ones: x where x > 0, "
                      "negative_slope * x elsewhere.")),
                  "negative_slope ignored (always 0.01)": Mutant(_leaky_fwd_default_slope, book="ch05-leaky",
                                                                 feedback=(
                      "the negative_slope argument is ignored (0.01 is always used).")),
                  "plain ReLU": Mutant(_leaky_fwd_relu, book="ch05-leaky", feedback=(
                      "negative inputs are sent to 0 (a plain ReLU): leaky ReLU multiplies them by "
                      "negative_slope.")),
                  "scales x in place": Mutant(_leaky_fwd_in_place, diagnosis="mutated_input", book="ch05-leaky",
                                              feedback=IN_PLACE.format(
                                                  arg="x", how="x[x < 0] *= negative_slope",
                                                  hint=", np.where(x > 0, x, negative_slope * x)")),
                  "slope added instead of multiplied": Mutant(_leaky_fwd_offset, book="ch05-leaky", feedback=(
                      "negative inputs are replaced by negative_slope itself: they are multiplied by it, "
                      "negative_slope * x."))}),
    Part(id="leaky_relu_backward", points=1, function="leaky_relu_backward", outputs=("dx",),
         cases=leaky_backward_cases, reference=leaky_backward_reference, call=adapters.leaky_relu_backward,
         forbid=_ACTIVATIONS,
         mutants={"slope missing (ReLU's derivative)": Mutant(_leaky_bwd_no_slope, book="ch05-leaky", feedback=(
                      "the gradient is 0 where x <= 0 (ReLU's derivative): leaky ReLU's derivative there is "
                      "negative_slope.")),
                  "slope applied on the positive side": Mutant(_leaky_bwd_slope_on_positive, book="ch05-leaky",
                                                               feedback=(
                      "the slope is applied where x > 0: the derivative is 1 for x > 0 and negative_slope for "
                      "x <= 0.")),
                  "derivative 1 at 0": Mutant(_leaky_bwd_one_at_zero, book="ch05-leaky", feedback=(
                      "the derivative at x == 0 is taken as 1: torch takes the negative side's, negative_slope, "
                      "so the test is x > 0.")),
                  "dout ignored": Mutant(_leaky_bwd_no_dout, book="ch05-leaky", feedback=DOUT_IGNORED)}),
    Part(id="elu_forward", points=1, function="elu_forward", outputs=("out", "_"),
         cases=elu_forward_cases, reference=elu_forward_reference, stable=True, forbid=_ACTIVATIONS,
         mutants={"exp of positive inputs (inf * 0 = nan)": Mutant(_elu_fwd_mask_times_exp, diagnosis="unstable",
                                                                   book="ch05-elu", feedback=(
                      "np.exp is also evaluated on the large positive inputs, where it overflows to inf, and the "
                      "0/1 mask then makes inf * 0 = NaN: take the exponential of np.minimum(x, 0) only.")),
                  "np.where over an overflowing exp": Mutant(_elu_fwd_where_exp, diagnosis="warning",
                                                             book="ch05-elu", feedback=(
                      "np.where(x > 0, x, alpha * (np.exp(x) - 1)) evaluates np.exp on every entry: it overflows "
                      "on the large positive ones (numpy warns), even though np.where then discards those values, "
                      "and the statement asks for no overflow: take the exponential of np.minimum(x, 0).")),
                  "alpha missing": Mutant(_elu_fwd_no_alpha, book="ch05-elu", feedback=(
                      "alpha is missing on the negative side: it is alpha * (exp(x) - 1).")),
                  "exp(x) without the - 1": Mutant(_elu_fwd_no_minus_one, book="ch05-elu", feedback=(
                      "the - 1 is missing: the negative side is alpha * (exp(x) - 1), which is 0 at x = 0.")),
                  "alpha on both sides": Mutant(_elu_fwd_alpha_everywhere, book="ch05-elu", feedback=(
                      "alpha also multiplies the positive side: ELU is x itself for x > 0.")),
                  "overwrites x in place": Mutant(_elu_fwd_in_place, diagnosis="mutated_input", book="ch05-elu",
                                                  feedback=IN_PLACE.format(arg="x", how="x[x <= 0] = ...",
                                                                           hint=""))}),
    Part(id="elu_backward", points=1, function="elu_backward", outputs=("dx",),
         cases=elu_backward_cases, reference=elu_backward_reference, call=adapters.elu_backward, stable=True,
         forbid=_ACTIVATIONS,
         mutants={"alpha missing": Mutant(_elu_bwd_no_alpha, book="ch05-elu", feedback=(
                      "alpha is missing from the derivative on the negative side: it is alpha * exp(x).")),
                  "exp of positive inputs (inf * 0 = nan)": Mutant(_elu_bwd_mask_times_exp, diagnosis="unstable",
                                                                   book="ch05-elu", feedback=(
                      "np.exp is also evaluated on the large positive inputs, where it overflows to inf, and the "
                      "0/1 mask then makes inf * 0 = NaN: take the exponential of np.minimum(x, 0) only.")),
                  "np.where over an overflowing exp": Mutant(_elu_bwd_where_exp, diagnosis="warning",
                                                             book="ch05-elu", feedback=(
                      "np.where(x > 0, 1, alpha * np.exp(x)) evaluates np.exp on every entry: it overflows on the "
                      "large positive ones (numpy warns), even though np.where then discards those values, and the "
                      "statement asks for no overflow: take the exponential of np.minimum(x, 0).")),
                  "derivative 1 at 0": Mutant(_elu_bwd_one_at_zero, book="ch05-elu", feedback=(
                      "the derivative at x == 0 is taken as 1: torch takes the negative side's, alpha * exp(0) = "
                      "alpha, so the test is x > 0.")),
                  "the function instead of its derivative": Mutant(_elu_bwd_forward_value, book="ch05-elu",
                                                                   feedback=(
                      "the negative side uses ELU itself, alpha * (exp(x) - 1), instead of its derivative, "
                      "alpha * exp(x).")),
                  "dout ignored": Mutant(_elu_bwd_no_dout, book="ch05-elu", feedback=DOUT_IGNORED)}),
    Part(id="softplus_forward", points=1, function="softplus_forward", outputs=("out", "_"),
         cases=softplus_cases, reference=softplus_forward_reference, stable=True, forbid=_ACTIVATIONS,
         mutants={"naive log(1 + exp(beta x))": Mutant(_softplus_fwd_naive, diagnosis="unstable",
                                                       book="ch05-softplus", feedback=(
                      "log(1 + exp(beta * x)) is computed directly: exp overflows to inf for large beta * x, and "
                      "x is never returned above the threshold; use max(t, 0) + log1p(exp(-|t|)) with "
                      "t = beta * x, and x itself where beta * x > threshold.")),
                  "np.where over an overflowing exp": Mutant(_softplus_fwd_where_overflows, diagnosis="warning",
                                                             book="ch05-softplus", feedback=(
                      "np.exp(beta * x) is evaluated on every entry: it overflows where beta * x is large (numpy "
                      "warns), even though np.where then returns x there, and the statement asks for no "
                      "overflow: use log(1 + e^t) = max(t, 0) + log1p(exp(-|t|)), whose exp only sees t <= 0.")),
                  "beta missing": Mutant(_softplus_fwd_no_beta, book="ch05-softplus", feedback=(
                      "beta is ignored: softplus is log(1 + exp(beta * x)) / beta, and x where "
                      "beta * x > threshold.")),
                  "not divided by beta": Mutant(_softplus_fwd_not_divided, book="ch05-softplus", feedback=(
                      "the logarithm is not divided by beta: softplus is log(1 + exp(beta * x)) / beta.")),
                  "threshold compared with x instead of beta x": Mutant(_softplus_fwd_threshold_on_x,
                                                                        book="ch05-softplus", feedback=THRESHOLD_ON_X),
                  "threshold compared with x (stable log)": Mutant(_softplus_fwd_threshold_on_x_stable,
                                                                   book="ch05-softplus", feedback=THRESHOLD_ON_X),
                  "branches swapped": Mutant(_softplus_fwd_relu_below, book="ch05-softplus", feedback=(
                      "the two branches are swapped: where beta * x > threshold softplus returns x itself, "
                      "elsewhere log(1 + exp(beta * x)) / beta."))}),
    Part(id="softplus_backward", points=1, function="softplus_backward", outputs=("dx",),
         cases=softplus_backward_cases, reference=softplus_backward_reference, call=adapters.softplus_backward,
         stable=True, forbid=_ACTIVATIONS,
         mutants={"beta missing": Mutant(_softplus_bwd_no_beta, book="ch05-softplus", feedback=(
                      "the sigmoid is taken of x: the derivative of log(1 + exp(beta * x)) / beta is "
                      "sigmoid(beta * x).")),
                  "naive exp / (1 + exp) (inf / inf = nan)": Mutant(_softplus_bwd_naive, diagnosis="warning",
                                                                    book="ch05-softplus", feedback=(
                      "exp(beta * x) / (1 + exp(beta * x)) is computed directly: for large beta * x it is "
                      "inf / inf = NaN; compute the sigmoid from exp(-|t|), which never overflows, and use 1 "
                      "where beta * x > threshold.")),
                  "sigmoid 1 / (1 + exp(-t)) overflows": Mutant(_softplus_bwd_sigmoid_overflows, diagnosis="warning",
                                                                book="ch05-softplus", feedback=(
                      "1 / (1 + np.exp(-beta * x)) overflows where beta * x is very negative (numpy warns, even "
                      "though the result rounds to the right 0), and the statement asks for no overflow: "
                      "compute the sigmoid from exp(-|t|) with t = beta * x, as the statement shows.")),
                  "threshold compared with x instead of beta x": Mutant(_softplus_bwd_threshold_on_x,
                                                                        book="ch05-softplus", feedback=(
                      "the threshold is compared with x: torch compares beta * x with it, so the derivative is 1 "
                      "where beta * x > threshold and sigmoid(beta * x) elsewhere.")),
                  "an extra factor beta": Mutant(_softplus_bwd_extra_beta, book="ch05-softplus", feedback=(
                      "there is an extra factor beta: the derivative of log(1 + exp(beta * x)) / beta is "
                      "sigmoid(beta * x), the two betas cancel.")),
                  "the function instead of its derivative": Mutant(_softplus_bwd_softplus, book="ch05-softplus",
                                                                   feedback=(
                      "softplus itself is used instead of its derivative, sigmoid(beta * x).")),
                  "dout ignored": Mutant(_softplus_bwd_no_dout, book="ch05-softplus", feedback=DOUT_IGNORED)}),
    Part(id="dead_unit_fraction", points=2, function="dead_unit_fraction", outputs=("fraction",),
         cases=dead_cases, reference=dead_reference,
         forbid=("mlp_lib.diagnostics.dead_relu_fraction",),
         mutants={"fraction of non-positive entries": Mutant(_dead_entries, book="ch05-dying", feedback=(
                      "the fraction of non-positive entries is returned (a measure of sparsity): a unit, a column "
                      "of z, is dead only when it is <= 0 on every example, and the fraction is over the D "
                      "units.")),
                  "fraction of zero entries": Mutant(_dead_zero_entries, book="ch05-dying", feedback=(
                      "the fraction of entries equal to 0 is returned: z holds pre-activations, and a unit is dead "
                      "when its column is <= 0 on every example.")),
                  "< instead of <=": Mutant(_dead_strict, book="ch05-dying", feedback=(
                      "z == 0 is counted as active (z < 0): ReLU's output and gradient are 0 at z = 0 too, so a "
                      "unit with z <= 0 on every example is dead.")),
                  "axis swapped (examples instead of units)": Mutant(_dead_axis_swapped, diagnosis="wrong_axis",
                                                                     book="ch05-dying", feedback=(
                      "the test is made per example (row) instead of per unit (column): unit j is dead when "
                      "z[:, j] <= 0 for every n, a reduction over axis 0.")),
                  "any instead of all": Mutant(_dead_any, book="ch05-dying", feedback=(
                      "a unit counts as dead when it is <= 0 on some example: it must be <= 0 on all of them "
                      "(np.all).")),
                  "count instead of fraction": Mutant(_dead_count, book="ch05-dying", feedback=(
                      "the number of dead units is returned: return the fraction, that number divided by D.")),
                  "z == 0 (the test for ReLU outputs)": Mutant(_dead_equal_zero, book="ch05-dying", feedback=(
                      "the test is z == 0 on every example, the test for ReLU outputs: z holds pre-activations, "
                      "so a unit is dead when z <= 0 on every example.")),
                  "applies ReLU to z in place": Mutant(_dead_relu_in_place, diagnosis="mutated_input",
                                                       book="ch05-dying",
                                                       feedback=IN_PLACE.format(arg="z", how="ReLU applied to it",
                                                                                hint=""))}),
    *UNDERSTANDING_PARTS,
]
