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

Inputs contain exact zeros wherever the value at the kink matters, and very large magnitudes
(|x| up to 1000) wherever a formula can overflow; upstream gradients are random normals (never
ones). The dead-unit cases have N != D, fully dead columns that contain exact zeros (so that
``<`` and ``<=`` disagree), and columns that are inactive on all but one example. Each mutant is a
typical mistake; tests/test_assignment_ch05.py checks that each loses the points of its own part,
and only those, with the diagnosis it names.
"""
import numpy as np
import torch
import torch.nn.functional as F

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


def relu_backward_call(student, dout, x):
    return student.relu_backward(dout, (x,))


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
    return [{"x": _with_zeros(rng, shape), "negative_slope": np.float64(a)}
            for shape, a in zip(_shapes(rng), _slopes(rng))]


def leaky_forward_reference(x, negative_slope):
    return F.leaky_relu(x, float(negative_slope))


def leaky_forward_call(student, x, negative_slope):
    return student.leaky_relu_forward(x, negative_slope=float(negative_slope))


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
    return [{"dout": rng.standard_normal(shape), "x": _with_zeros(rng, shape), "negative_slope": np.float64(a)}
            for shape, a in zip(_shapes(rng), _slopes(rng))]


def leaky_backward_reference(dout, x, negative_slope):
    x = x.clone().requires_grad_(True)
    F.leaky_relu(x, float(negative_slope)).backward(dout)
    return x.grad


def leaky_backward_call(student, dout, x, negative_slope):
    return student.leaky_relu_backward(dout, (x, float(negative_slope)))


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
    return [{"x": _with_zeros(rng, shape, extreme=True), "alpha": np.float64(a)}
            for shape, a in zip(_shapes(rng), _alphas(rng))]


def elu_forward_reference(x, alpha):
    return F.elu(x, float(alpha))


def elu_forward_call(student, x, alpha):
    return student.elu_forward(x, alpha=float(alpha))


def _elu_fwd_mask_times_exp(x, *, alpha=1.0):
    # exp is evaluated everywhere and masked by multiplication: exp(1000) = inf, inf * 0 = nan
    return x * (x > 0) + alpha * (np.exp(x) - 1.0) * (x <= 0), (x, alpha)


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
    return [{"dout": rng.standard_normal(shape), "x": _with_zeros(rng, shape, extreme=True), "alpha": np.float64(a)}
            for shape, a in zip(_shapes(rng), _alphas(rng))]


def elu_backward_reference(dout, x, alpha):
    x = x.clone().requires_grad_(True)
    F.elu(x, float(alpha)).backward(dout)
    return x.grad


def elu_backward_call(student, dout, x, alpha):
    return student.elu_backward(dout, (x, float(alpha)))


def _elu_bwd_no_alpha(dout, cache):
    x, alpha = cache
    return dout * np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0)))


def _elu_bwd_mask_times_exp(dout, cache):
    x, alpha = cache
    return dout * ((x > 0) + alpha * np.exp(x) * (x <= 0))


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
def _softplus_case(rng, shape, beta, threshold, *, with_band=False):
    x = _with_zeros(rng, shape, extreme=True)
    if with_band:
        # beta * x in (709, threshold * beta]: above the overflow of exp, below x = threshold
        flat = x.reshape(-1)
        flat[-3:] = rng.uniform(0.8, 0.99, size=3) * threshold
    return {"x": x, "beta": np.float64(beta), "threshold": np.float64(threshold)}


def softplus_cases(rng):
    shapes = _shapes(rng)
    return [_softplus_case(rng, shapes[0], 1.0, 20.0),
            _softplus_case(rng, shapes[1], float(rng.uniform(1.5, 3.0)), float(rng.uniform(8.0, 15.0))),
            _softplus_case(rng, shapes[2], float(rng.uniform(0.3, 0.7)), 20.0),
            _softplus_case(rng, shapes[3], float(rng.uniform(80.0, 120.0)), 20.0, with_band=True)]


def softplus_forward_reference(x, beta, threshold):
    return F.softplus(x, float(beta), float(threshold))


def softplus_forward_call(student, x, beta, threshold):
    return student.softplus_forward(x, beta=float(beta), threshold=float(threshold))


def _softplus_fwd_naive(x, *, beta=1.0, threshold=20.0):
    return np.log(1.0 + np.exp(beta * x)) / beta, (x, beta, threshold)


def _softplus_fwd_no_beta(x, *, beta=1.0, threshold=20.0):
    return np.where(x > threshold, x, np.log1p(np.exp(np.minimum(x, threshold)))), (x, beta, threshold)


def _softplus_fwd_not_divided(x, *, beta=1.0, threshold=20.0):
    bx = beta * x
    return np.where(bx > threshold, x, np.log1p(np.exp(np.minimum(bx, threshold)))), (x, beta, threshold)


def _softplus_fwd_threshold_on_x(x, *, beta=1.0, threshold=20.0):
    # compares x, not beta * x, with the threshold: exp(beta * x) overflows for large beta
    return np.where(x > threshold, x, np.log1p(np.exp(beta * np.minimum(x, threshold))) / beta), (x, beta, threshold)


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


def softplus_backward_call(student, dout, x, beta, threshold):
    return student.softplus_backward(dout, (x, float(beta), float(threshold)))


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))        # stable for any z


def _softplus_bwd_no_beta(dout, cache):
    x, beta, threshold = cache
    return dout * np.where(beta * x > threshold, 1.0, _sigmoid(x))


def _softplus_bwd_naive(dout, cache):
    x, beta, threshold = cache
    e = np.exp(beta * x)
    return dout * e / (1.0 + e)                   # inf / inf = nan for large beta * x


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
        z[:, dead] = -np.abs(z[:, dead])                  # dead: <= 0 on every example ...
        for j in dead[::2]:
            z[rng.choice(n, size=2, replace=False), j] = 0.0   # ... with exact zeros in half of them
        z[:, almost] = -np.abs(z[:, almost])              # alive on exactly one (non-silent) example
        awake = rng.choice(np.setdiff1d(np.arange(n), silent), size=n_almost)
        z[awake, almost] = rng.uniform(0.1, 1.0, size=n_almost)
        negative = np.flatnonzero(z < 0)                  # a few more exact zeros anywhere (liveness unchanged)
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
         mutants={"clips x in place": Mutant(_relu_fwd_in_place, diagnosis="mutated_input"),
                  "min instead of max": Mutant(_relu_fwd_min),
                  "absolute value": Mutant(_relu_fwd_abs),
                  "the 0/1 mask instead of the output": Mutant(_relu_fwd_mask)}),
    Part(id="relu_backward", points=1, function="relu_backward", outputs=("dx",),
         cases=relu_backward_cases, reference=relu_backward_reference, call=relu_backward_call,
         forbid=_ACTIVATIONS,
         mutants={"derivative 1 at 0 (x >= 0)": Mutant(_relu_bwd_ge),
                  "mask from the sign of dout": Mutant(_relu_bwd_dout_sign),
                  "dout ignored": Mutant(_relu_bwd_no_dout),
                  "zeroes dout in place": Mutant(_relu_bwd_in_place, diagnosis="mutated_input"),
                  "ReLU applied to dout too": Mutant(_relu_bwd_relu_of_dout)}),
    Part(id="leaky_relu_forward", points=1, function="leaky_relu_forward", outputs=("out", "_"),
         cases=leaky_forward_cases, reference=leaky_forward_reference, call=leaky_forward_call,
         forbid=_ACTIVATIONS,
         mutants={"slope applied on the positive side": Mutant(_leaky_fwd_slope_on_positive),
                  "negative_slope ignored (always 0.01)": Mutant(_leaky_fwd_default_slope),
                  "plain ReLU": Mutant(_leaky_fwd_relu),
                  "scales x in place": Mutant(_leaky_fwd_in_place, diagnosis="mutated_input"),
                  "slope added instead of multiplied": Mutant(_leaky_fwd_offset)}),
    Part(id="leaky_relu_backward", points=1, function="leaky_relu_backward", outputs=("dx",),
         cases=leaky_backward_cases, reference=leaky_backward_reference, call=leaky_backward_call,
         forbid=_ACTIVATIONS,
         mutants={"slope missing (ReLU's derivative)": Mutant(_leaky_bwd_no_slope),
                  "slope applied on the positive side": Mutant(_leaky_bwd_slope_on_positive),
                  "derivative 1 at 0": Mutant(_leaky_bwd_one_at_zero),
                  "dout ignored": Mutant(_leaky_bwd_no_dout)}),
    Part(id="elu_forward", points=1, function="elu_forward", outputs=("out", "_"),
         cases=elu_forward_cases, reference=elu_forward_reference, call=elu_forward_call,
         forbid=_ACTIVATIONS,
         mutants={"exp of positive inputs (inf * 0 = nan)": Mutant(_elu_fwd_mask_times_exp, diagnosis="unstable"),
                  "alpha missing": Mutant(_elu_fwd_no_alpha),
                  "exp(x) without the - 1": Mutant(_elu_fwd_no_minus_one),
                  "alpha on both sides": Mutant(_elu_fwd_alpha_everywhere),
                  "overwrites x in place": Mutant(_elu_fwd_in_place, diagnosis="mutated_input")}),
    Part(id="elu_backward", points=1, function="elu_backward", outputs=("dx",),
         cases=elu_backward_cases, reference=elu_backward_reference, call=elu_backward_call,
         forbid=_ACTIVATIONS,
         mutants={"alpha missing": Mutant(_elu_bwd_no_alpha),
                  "exp of positive inputs (inf * 0 = nan)": Mutant(_elu_bwd_mask_times_exp, diagnosis="unstable"),
                  "derivative 1 at 0": Mutant(_elu_bwd_one_at_zero),
                  "the function instead of its derivative": Mutant(_elu_bwd_forward_value),
                  "dout ignored": Mutant(_elu_bwd_no_dout)}),
    Part(id="softplus_forward", points=1, function="softplus_forward", outputs=("out", "_"),
         cases=softplus_cases, reference=softplus_forward_reference, call=softplus_forward_call,
         forbid=_ACTIVATIONS,
         mutants={"naive log(1 + exp(beta x))": Mutant(_softplus_fwd_naive, diagnosis="unstable"),
                  "beta missing": Mutant(_softplus_fwd_no_beta),
                  "not divided by beta": Mutant(_softplus_fwd_not_divided),
                  "threshold compared with x instead of beta x": Mutant(_softplus_fwd_threshold_on_x,
                                                                        diagnosis="unstable"),
                  "branches swapped": Mutant(_softplus_fwd_relu_below)}),
    Part(id="softplus_backward", points=1, function="softplus_backward", outputs=("dx",),
         cases=softplus_backward_cases, reference=softplus_backward_reference, call=softplus_backward_call,
         forbid=_ACTIVATIONS,
         mutants={"beta missing": Mutant(_softplus_bwd_no_beta),
                  "naive exp / (1 + exp) (inf / inf = nan)": Mutant(_softplus_bwd_naive, diagnosis="unstable"),
                  "an extra factor beta": Mutant(_softplus_bwd_extra_beta),
                  "the function instead of its derivative": Mutant(_softplus_bwd_softplus),
                  "dout ignored": Mutant(_softplus_bwd_no_dout)}),
    Part(id="dead_unit_fraction", points=2, function="dead_unit_fraction", outputs=("fraction",),
         cases=dead_cases, reference=dead_reference,
         forbid=("mlp_lib.diagnostics.dead_relu_fraction",),
         mutants={"fraction of non-positive entries": Mutant(_dead_entries),
                  "fraction of zero entries": Mutant(_dead_zero_entries),
                  "< instead of <=": Mutant(_dead_strict),
                  "axis swapped (examples instead of units)": Mutant(_dead_axis_swapped, diagnosis="wrong_axis"),
                  "any instead of all": Mutant(_dead_any),
                  "count instead of fraction": Mutant(_dead_count),
                  "z == 0 (the test for ReLU outputs)": Mutant(_dead_equal_zero),
                  "applies ReLU to z in place": Mutant(_dead_relu_in_place, diagnosis="mutated_input")}),
    *UNDERSTANDING_PARTS,
]
