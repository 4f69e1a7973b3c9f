"""Grading spec of Chapter 4's exercise: initialization, gradient norms, saturation, clipping.

Every Part draws its cases from the grader's rng and is judged against a torch reference
computed in float64. Conventions, as stated in the exercise and in the book:

* weights have mlp_lib's shape ``(D_in, D_out)``: ``fan_in = D_in``, ``fan_out = D_out``.
  torch stores the transpose ``(D_out, D_in)``; the references compute the fans with
  ``torch.nn.init._calculate_fan_in_and_fan_out`` on an empty tensor of that transposed shape
  and the gains with ``torch.nn.init.calculate_gain``, so the formulas are torch's own;
* ``xavier_uniform``: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``
  (``torch.nn.init.xavier_uniform_``);
* ``kaiming_normal``: N(0, std^2) with ``std = gain / sqrt(fan)``, ``gain = sqrt(2 / (1 + a^2))``
  (``torch.nn.init.kaiming_normal_`` with ``nonlinearity="leaky_relu"``), ``fan`` chosen by ``mode``;
* ``layer_gradient_norms``: one L2 norm per layer over all that layer's gradient arrays together
  (``torch.linalg.vector_norm`` of their concatenation);
* ``saturation_fraction``: sigmoid outputs are saturated when ``a < t`` or ``a > 1 - t``, tanh
  outputs when ``|a| > 1 - t`` (strict inequalities), the fraction counting every entry once;
* ``clip_grad_norm``: ``torch.nn.utils.clip_grad_norm_`` (global L2 norm, coefficient
  ``min(1, max_norm / (total + 1e-6))``), returning new arrays and the norm before clipping.

The two initializers are random, so they are graded statistically. The kernel-side adapter
(adapters.py) draws at least 10^6 weights with the student's function (seeded Generators) and
hands back the shape of one draw, the root mean square ``sqrt(E[w^2])``, the ratio of the standard
deviation to it (1 for a zero-mean distribution), the largest magnitude (uniform only), the
kurtosis ``E[w^4] / E[w^2]^2`` (1.8 for a uniform, 3 for a normal distribution) and whether
the function is reproducible from its ``rng`` (same seed: same matrix; another seed: another
matrix). The reference gives the exact values of those statistics; with 10^6 samples their
sampling errors are below 0.2% (the kurtosis of a normal sample, the noisiest, has a relative
standard error of 0.16%), so the 2% tolerance of these two parts is twelve standard errors
wide, while every mistake below is off by more than 8% in at least one case (or returns the
wrong shape, or is not reproducible from its rng). A mistake is recognised by the same
statistics: its own draws, made in the grader, land within the same 2% of a student's draws
that make the same mistake.

Deliberate hard cases (structure fixed, values from the rng): initializer shapes with fan_in >>
fan_out, fan_in << fan_out and square ones, the gains 1, 5/3 and sqrt(2), both modes, slope 0 and
slopes far from it; layers with one array, with no bias, with only 1-D arrays; activations exactly
on the saturation boundary, in 1-D and 3-D arrays; clipping cases that clip, that do not (the
arrays must still be new ones), and with a total norm so small that the 1e-6 matters.
"""
import math

import numpy as np
import torch

import adapters
from autograder.inside.harness import unpack_arrays
from autograder.spec import Mutant, Part

PUBLIC_SEED = 20100513           # AISTATS 2010, where Glorot & Bengio's paper appeared
# the locked cells the answers may rely on: the imports, and the answers' vocabulary of Parts 7 and on
SETUP = ("setup", "understanding-setup")
STAT_RTOL = 0.02


def _torch_fans(d_in, d_out):
    """(fan_in, fan_out) as torch computes them on its (D_out, D_in) weight."""
    return torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(int(d_out), int(d_in)))


# -- xavier_uniform ---------------------------------------------------------------------------------
def xavier_cases(rng):
    cases = []
    shapes = [(int(rng.integers(900, 1400)), int(rng.integers(250, 400))),     # fan_in >> fan_out
              (int(rng.integers(150, 300)), int(rng.integers(2000, 4000))),    # fan_in << fan_out
              (int(rng.integers(20, 60)), int(rng.integers(10, 20))),          # small: many draws
              (int(rng.integers(500, 700)),) * 2]                              # square
    gains = [5.0 / 3.0, 1.0, math.sqrt(2.0), float(rng.uniform(0.5, 0.8))]
    for (d_in, d_out), gain in zip(shapes, gains):
        cases.append({"d_in": d_in, "d_out": d_out, "gain": gain, "seed": int(rng.integers(0, 2**31))})
    return cases


def xavier_reference(d_in, d_out, gain, seed):
    fan_in, fan_out = _torch_fans(d_in, d_out)
    std = float(gain) * math.sqrt(2.0 / float(fan_in + fan_out))    # torch.nn.init.xavier_uniform_'s std
    bound = math.sqrt(3.0) * std                                     # ... and its bound
    one = torch.tensor(1.0, dtype=torch.float64)                     # std / rms of a zero-mean sample
    return (torch.stack([d_in, d_out]), torch.tensor(std, dtype=torch.float64), one,
            torch.tensor(bound, dtype=torch.float64), torch.tensor(1.8, dtype=torch.float64),
            torch.tensor(1, dtype=torch.int64))


def _xavier_no_gain(shape, *, gain=1.0, rng):
    a = math.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-a, a, size=shape)


def _xavier_std_as_bound(shape, *, gain=1.0, rng):
    a = gain * math.sqrt(2.0 / (shape[0] + shape[1]))
    return rng.uniform(-a, a, size=shape)


def _xavier_normal_instead(shape, *, gain=1.0, rng):
    return rng.normal(0.0, gain * math.sqrt(2.0 / (shape[0] + shape[1])), size=shape)


def _xavier_fan_in_only(shape, *, gain=1.0, rng):
    a = gain * math.sqrt(3.0 / shape[0])
    return rng.uniform(-a, a, size=shape)


def _xavier_gain_inside_sqrt(shape, *, gain=1.0, rng):
    a = math.sqrt(6.0 * gain / (shape[0] + shape[1]))
    return rng.uniform(-a, a, size=shape)


def _xavier_half_interval(shape, *, gain=1.0, rng):
    a = gain * math.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(0.0, a, size=shape)


def _xavier_global_rng(shape, *, gain=1.0, rng):
    a = gain * math.sqrt(6.0 / (shape[0] + shape[1]))
    return np.random.uniform(-a, a, size=shape)


def _xavier_torch_layout(shape, *, gain=1.0, rng):
    a = gain * math.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-a, a, size=(shape[1], shape[0]))


# -- kaiming_normal ---------------------------------------------------------------------------------
def kaiming_cases(rng):
    cases = []
    shapes = [(int(rng.integers(1000, 1500)), int(rng.integers(150, 300))),
              (int(rng.integers(150, 300)), int(rng.integers(1500, 3000))),
              (int(rng.integers(30, 60)), int(rng.integers(100, 200))),
              (int(rng.integers(1200, 1600)), int(rng.integers(400, 600)))]
    slopes = [0.0, 0.0, float(rng.uniform(0.3, 0.5)), float(rng.uniform(0.5, 0.7))]
    modes = ["fan_in", "fan_out", "fan_in", "fan_out"]
    for (d_in, d_out), a, mode in zip(shapes, slopes, modes):
        cases.append({"d_in": d_in, "d_out": d_out, "a": a, "mode": mode, "seed": int(rng.integers(0, 2**31))})
    return cases


def kaiming_reference(d_in, d_out, a, mode, seed):
    fan_in, fan_out = _torch_fans(d_in, d_out)
    fan = fan_in if mode == "fan_in" else fan_out
    gain = torch.nn.init.calculate_gain("leaky_relu", float(a))
    std = gain / math.sqrt(fan)                                       # torch.nn.init.kaiming_normal_'s std
    one = torch.tensor(1.0, dtype=torch.float64)                     # std / rms of a zero-mean sample
    return (torch.stack([d_in, d_out]), torch.tensor(std, dtype=torch.float64), one,
            torch.tensor(3.0, dtype=torch.float64), torch.tensor(1, dtype=torch.int64))


def _fan(shape, mode):
    return shape[0] if mode == "fan_in" else shape[1]


def _kaiming_fans_swapped(shape, *, a=0.0, mode="fan_in", rng):
    # torch's convention (fan_in = shape[1]) applied to mlp_lib's (D_in, D_out) shape
    fan = shape[1] if mode == "fan_in" else shape[0]
    return rng.normal(0.0, math.sqrt(2.0 / (1 + a * a)) / math.sqrt(fan), size=shape)


def _kaiming_no_gain(shape, *, a=0.0, mode="fan_in", rng):
    return rng.normal(0.0, 1.0 / math.sqrt(_fan(shape, mode)), size=shape)


def _kaiming_slope_not_squared(shape, *, a=0.0, mode="fan_in", rng):
    return rng.normal(0.0, math.sqrt(2.0 / (1 + a)) / math.sqrt(_fan(shape, mode)), size=shape)


def _kaiming_slope_ignored(shape, *, a=0.0, mode="fan_in", rng):
    return rng.normal(0.0, math.sqrt(2.0 / _fan(shape, mode)), size=shape)


def _kaiming_variance_as_std(shape, *, a=0.0, mode="fan_in", rng):
    return rng.normal(0.0, 2.0 / (1 + a * a) / _fan(shape, mode), size=shape)


def _kaiming_mode_ignored(shape, *, a=0.0, mode="fan_in", rng):
    return rng.normal(0.0, math.sqrt(2.0 / (1 + a * a)) / math.sqrt(shape[0]), size=shape)


def _kaiming_uniform_instead(shape, *, a=0.0, mode="fan_in", rng):
    bound = math.sqrt(3.0) * math.sqrt(2.0 / (1 + a * a)) / math.sqrt(_fan(shape, mode))
    return rng.uniform(-bound, bound, size=shape)


def _kaiming_xavier_instead(shape, *, a=0.0, mode="fan_in", rng):
    return rng.normal(0.0, math.sqrt(2.0 / (shape[0] + shape[1])), size=shape)


def _kaiming_global_rng(shape, *, a=0.0, mode="fan_in", rng):
    return np.random.normal(0.0, math.sqrt(2.0 / (1 + a * a)) / math.sqrt(_fan(shape, mode)), size=shape)


# -- layer_gradient_norms ---------------------------------------------------------------------------
# A list of layers, each a list of gradient arrays, travels as one flat vector and its layout:
# array k has shape (rows[k], cols[k]) (cols[k] == 0: 1-D of length rows[k]) and belongs to layer[k].
def _layout_case(rng, layer_sizes):
    rows, cols, layer, parts = [], [], [], []
    for l, kinds in enumerate(layer_sizes):
        d_in, d_out = (int(v) for v in rng.integers(2, 9, size=2))
        scale = 10.0 ** rng.uniform(-4, 2)          # layers of very different gradient sizes
        for kind in kinds:
            r, c = {"W": (d_in, d_out), "b": (d_out, 0), "g": (d_out, 0)}[kind]
            rows.append(r)
            cols.append(c)
            layer.append(l)
            parts.append(scale * rng.standard_normal(r * c if c else r))
    return {"flat": np.concatenate(parts), "rows": np.array(rows, dtype=np.int64),
            "cols": np.array(cols, dtype=np.int64), "layer": np.array(layer, dtype=np.int64)}


def norms_cases(rng):
    return [_layout_case(rng, [("W", "b")] * 3),
            _layout_case(rng, [("W", "b"), ("W",), ("g", "b"), ("W", "b")]),    # no bias; BatchNorm-like
            _layout_case(rng, [("W", "b")]),
            _layout_case(rng, [("W", "b", "g"), ("W", "b"), ("W", "b"), ("W", "b"), ("W",)])]


def norms_reference(flat, rows, cols, layer):
    arrays = unpack_arrays(flat, rows, cols)
    n_layers = int(layer.max()) + 1
    return torch.stack([torch.linalg.vector_norm(torch.cat([a.flatten() for a, l in zip(arrays, layer.tolist())
                                                            if l == i]))
                        for i in range(n_layers)])


def _norms_weights_only(layer_grads):
    return np.array([np.linalg.norm(grads[0]) for grads in layer_grads])


def _norms_sum_of_norms(layer_grads):
    return np.array([sum(np.linalg.norm(g) for g in grads) for grads in layer_grads])


def _norms_squared(layer_grads):
    return np.array([sum(np.sum(g * g) for g in grads) for grads in layer_grads])


def _norms_global(layer_grads):
    total = math.sqrt(sum(np.sum(g * g) for grads in layer_grads for g in grads))
    return np.full(len(layer_grads), total)


def _norms_max_abs(layer_grads):
    return np.array([max(np.abs(g).max() for g in grads) for grads in layer_grads])


def _norms_rms(layer_grads):
    return np.array([math.sqrt(np.mean(np.concatenate([g.ravel() for g in grads]) ** 2)) for grads in layer_grads])


def _norms_per_array(layer_grads):
    return np.array([np.linalg.norm(g) for grads in layer_grads for g in grads])


def _norms_in_place(layer_grads):
    out = []
    for grads in layer_grads:
        for g in grads:
            np.square(g, out=g)
        out.append(math.sqrt(sum(g.sum() for g in grads)))
    return np.array(out)


# -- saturation_fraction ----------------------------------------------------------------------------
def saturation_cases(rng):
    cases = []
    specs = [("sigmoid", 0.01, (int(rng.integers(40, 80)), int(rng.integers(20, 40))), 4.0),
             ("tanh", 0.01, (int(rng.integers(40, 80)), int(rng.integers(20, 40))), 2.0),
             ("sigmoid", 0.05, (int(rng.integers(200, 400)),), 3.0),                      # any shape: 1-D
             ("tanh", 0.05, (int(rng.integers(5, 9)), int(rng.integers(10, 20)), 6), 1.5),  # ... and 3-D
             ("sigmoid", 0.2, (int(rng.integers(30, 50)), int(rng.integers(30, 50))), 1.0)]
    for kind, t, shape, spread in specs:
        z = spread * rng.standard_normal(shape)
        a = 1.0 / (1.0 + np.exp(-z)) if kind == "sigmoid" else np.tanh(z)
        flat = a.reshape(-1)
        idx = rng.choice(flat.size, size=6, replace=False)
        # Values exactly on the boundary are not saturated (strict inequalities); 1 - (1 - t) >= t
        # holds in float64 for these t, so every correct formulation agrees on them.
        if kind == "sigmoid":
            flat[idx[:3]] = t
        else:
            flat[idx[:3]] = 1.0 - t
            flat[idx[3:]] = -(1.0 - t)
        cases.append({"a": a, "kind": kind, "threshold": t})
    return cases


def saturation_reference(a, kind, threshold):
    t = float(threshold)
    if kind == "sigmoid":
        saturated = (a < t) | (a > 1.0 - t)
    else:
        saturated = a.abs() > 1.0 - t
    return saturated.to(torch.float64).mean()


def _sat_lower_tail_only(a, *, kind, threshold=0.01):
    if kind == "sigmoid":
        return float(np.mean(a < threshold))
    return float(np.mean(a < -(1 - threshold)))


def _sat_non_strict(a, *, kind, threshold=0.01):
    if kind == "sigmoid":
        return float(np.mean((a <= threshold) | (a >= 1 - threshold)))
    return float(np.mean(np.abs(a) >= 1 - threshold))


def _sat_sigmoid_rule_for_tanh(a, *, kind, threshold=0.01):
    return float(np.mean((a < threshold) | (a > 1 - threshold)))


def _sat_threshold_ignored(a, *, kind, threshold=0.01):
    if kind == "sigmoid":
        return float(np.mean((a < 0.01) | (a > 0.99)))
    return float(np.mean(np.abs(a) > 0.99))


def _sat_count(a, *, kind, threshold=0.01):
    if kind == "sigmoid":
        return int(np.sum((a < threshold) | (a > 1 - threshold)))
    return int(np.sum(np.abs(a) > 1 - threshold))


def _sat_per_unit(a, *, kind, threshold=0.01):
    # fraction of units (last axis) saturated on every example
    s = (a < threshold) | (a > 1 - threshold) if kind == "sigmoid" else np.abs(a) > 1 - threshold
    return float(np.mean(s.reshape(-1, s.shape[-1]).all(axis=0)))


def _sat_tanh_near_zero(a, *, kind, threshold=0.01):
    if kind == "sigmoid":
        return float(np.mean((a < threshold) | (a > 1 - threshold)))
    return float(np.mean(np.abs(a) < threshold))


# -- clip_grad_norm ---------------------------------------------------------------------------------
def clip_cases(rng):
    cases = []
    # (number of arrays, gradient scale, max_norm as a multiple of the total norm): clipped, not clipped
    # (new arrays all the same), 1e-6 felt (1e-3) and dominant (1e-5: about 2% of the total), one array
    for n_arrays, scale, ratio in ((4, 1.0, 0.1), (3, 10.0, 3.0), (5, 1e-3, 0.2), (1, 2.0, 0.5), (6, 0.1, 0.02),
                                   (3, 1e-5, 0.3)):
        rows, cols, parts = [], [], []
        for k in range(n_arrays):
            r, c = int(rng.integers(2, 9)), int(rng.integers(0, 7))
            c = 0 if c == 1 else c
            rows.append(r)
            cols.append(c)
            parts.append(scale * rng.standard_normal(r * c if c else r))
        flat = np.concatenate(parts)
        total = float(np.linalg.norm(flat))
        cases.append({"flat": flat, "rows": np.array(rows, dtype=np.int64), "cols": np.array(cols, dtype=np.int64),
                      "max_norm": ratio * total * float(rng.uniform(0.9, 1.1))})
    return cases


def clip_reference(flat, rows, cols, max_norm):
    params = []
    for g in unpack_arrays(flat, rows, cols):
        p = torch.zeros(g.shape, dtype=torch.float64, device=g.device, requires_grad=True)
        p.grad = g.clone()
        params.append(p)
    total = torch.nn.utils.clip_grad_norm_(params, float(max_norm))
    return torch.cat([p.grad.flatten() for p in params]), total


def _clip_per_tensor(grads, max_norm):
    out = []
    for g in grads:
        n = np.linalg.norm(g)
        out.append(g * min(1.0, max_norm / (n + 1e-6)))
    return out, math.sqrt(sum(np.sum(g * g) for g in grads))


def _total(grads):
    return math.sqrt(sum(np.sum(g * g) for g in grads))


def _clip_no_eps(grads, max_norm):
    total = _total(grads)
    return [g * min(1.0, max_norm / total) for g in grads], total


def _clip_always(grads, max_norm):
    total = _total(grads)
    return [g * (max_norm / (total + 1e-6)) for g in grads], total


def _clip_in_place(grads, max_norm):
    total = _total(grads)
    coef = min(1.0, max_norm / (total + 1e-6))
    for g in grads:
        g *= coef
    return grads, total


def _clip_norm_after(grads, max_norm):
    total = _total(grads)
    clipped = [g * min(1.0, max_norm / (total + 1e-6)) for g in grads]
    return clipped, _total(clipped)


def _clip_sum_of_norms(grads, max_norm):
    total = sum(np.linalg.norm(g) for g in grads)
    return [g * min(1.0, max_norm / (total + 1e-6)) for g in grads], total


def _clip_squared_norm(grads, max_norm):
    total = sum(np.sum(g * g) for g in grads)
    return [g * min(1.0, max_norm / (total + 1e-6)) for g in grads], total


def _clip_inputs_when_small(grads, max_norm):
    total = _total(grads)
    if total <= max_norm:
        return grads, total                      # the caller's own arrays
    return [g * (max_norm / (total + 1e-6)) for g in grads], total


INIT = "ch04-rule-variance"
DRAW_FROM_RNG = ("the weights do not come from the rng argument (np.random's global functions, or a generator of "
                 "your own, ignore it), so the same seed does not give the same matrix: draw them with rng's methods.")


# == Understanding: what the chapter teaches you to predict (Parts 6 and 7) =====================
# Graded like the other parts, on hidden cases from the secret seed; the answers need only numpy and
# the standard library. Each mutant is a typical wrong answer (guesses included) with the feedback a
# student who gave it should read, and the book section that explains the right one.
HEALTHY, VANISHING, EXPLODING, SATURATED_INPUTS = ("healthy", "vanishing gradients", "exploding gradients",
                                                   "first layer saturated by the inputs")
KEEP, RELU_HE, CLIP, STANDARDIZE = ("keep the settings", "ReLU units with He initialization",
                                    "clip the gradient norm", "standardize the inputs")
_FIX = {HEALTHY: KEEP, VANISHING: RELU_HE, EXPLODING: CLIP, SATURATED_INPUTS: STANDARDIZE}


# -- diagnose_training: per-layer gradient norms, the gradient norm over the steps, saturation ------
def _run(rng, kind, depth, steps, overflow=None, tiny=False):
    """(layer norms (depth,), norm history (steps,), saturation (depth - 1,)) of one synthetic run.

    Shapes follow the chapter's measurements: a deep sigmoid network's layer norms fall geometrically
    towards the input (1e-3 to 1e-9 over the network); a ReLU network with too large weights has layer
    norms of one size (every layer's gradient is c^(L-1) times too large) and a gradient norm that blows
    up within a few steps; raw pixels saturate the first hidden layer only (about 30% of its units with the
    default initialization, none above). The overall scale is random."""
    scale = 10.0 ** (rng.uniform(-7.0, -5.0) if tiny else rng.uniform(-5.0, 1.0))
    jitter = np.exp(rng.normal(0.0, 0.15, size=depth))
    saturation = rng.uniform(0.0, 0.01, size=depth - 1)
    history = np.exp(np.cumsum(rng.normal(-0.02, 0.08, size=steps)))      # drifts down slowly, noisy
    if kind == "vanishing":
        fall = rng.uniform(3.0, 9.0)
        layers = 10.0 ** (-fall * (depth - 1 - np.arange(depth)) / (depth - 1)) * jitter
        if rng.random() < 0.5:                         # the top hidden layer pinned near 0 (Glorot and Bengio)
            saturation[-1] = rng.uniform(0.3, 0.9)
    elif kind == "exploding":
        layers = np.exp(rng.uniform(np.log(0.3), np.log(3.0), size=depth))
        scale = 10.0 ** rng.uniform(1.0, 3.0)
        start = int(rng.integers(2, steps // 2))
        growth = np.cumsum(rng.uniform(0.5, 2.0, size=steps - start))         # decades gained per step
        history[start:] *= 10.0 ** growth
        overflow = overflow if overflow is not None else rng.choice([None, np.inf, np.nan])
        if overflow is not None:
            history[-int(rng.integers(1, 4)):] = overflow           # the norm overflowed
    elif kind == "raw inputs":
        layers = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=depth))
        layers[0] *= 10.0 ** -rng.uniform(0.5, 1.5)
        saturation[0] = rng.uniform(0.25, 0.9)             # the book's raw pixels: about 0.3
    else:
        layers = np.exp(rng.uniform(np.log(0.3), np.log(3.0), size=depth))
    return scale * layers, scale * np.sqrt(depth) * history, saturation


_KINDS = {"healthy": HEALTHY, "vanishing": VANISHING, "exploding": EXPLODING, "raw inputs": SATURATED_INPUTS}


def training_cases(rng):
    cases = []
    for _ in range(5):
        depth, steps, n_runs = int(rng.integers(4, 11)), int(rng.integers(20, 41)), int(rng.integers(6, 9))
        kinds = list(_KINDS) + ["exploding"] + list(rng.choice(list(_KINDS), size=n_runs - 5))
        # kinds[0] is a healthy run with tiny gradients everywhere (a small loss scale), kinds[2] an exploding
        # run whose norm overflows to nan, kinds[4] one whose norm overflows to inf (so that missing the nan and
        # ignoring the history differ in every case); the other runs draw these at random.
        overflows = {2: np.nan, 4: np.inf}
        runs = [_run(rng, kinds[i], depth, steps, overflow=overflows.get(i), tiny=i == 0)
                for i in rng.permutation(n_runs)]
        cases.append({"layer_norms": np.array([r[0] for r in runs]), "norm_history": np.array([r[1] for r in runs]),
                      "saturation": np.array([r[2] for r in runs])})
    return cases


def _diagnose(layer_norms, norm_history, saturation):
    history = np.where(np.isnan(norm_history), np.inf, norm_history)
    if (history.max() / history[0]) > 1e3:
        return EXPLODING
    if layer_norms[0] < layer_norms[-1] / 100:
        return VANISHING
    if saturation[0] > 0.2 and (saturation[1:] < 0.02).all():
        return SATURATED_INPUTS
    return HEALTHY


def training_reference(layer_norms, norm_history, saturation):
    runs = zip(layer_norms.cpu().numpy(), norm_history.cpu().numpy(), saturation.cpu().numpy())
    diagnoses = [_diagnose(*run) for run in runs]
    return np.array(diagnoses), np.array([_FIX[d] for d in diagnoses])


def _training(layer_norms, norm_history, saturation, *, diagnose=_diagnose, fix=None):
    diagnoses = [diagnose(*run) for run in zip(layer_norms, norm_history, saturation)]
    fix = {**_FIX, **(fix or {})}
    return np.array(diagnoses), np.array([fix[d] for d in diagnoses])


def _training_layers_only(layer_norms, norm_history, saturation):
    # per-layer norms alone: a ReLU network whose every gradient is too large looks balanced
    return _training(layer_norms, np.ones_like(norm_history), saturation)


def _training_nan_unseen(layer_norms, norm_history, saturation):
    # max() of a history ending in nan is nan, and nan > 1e3 is False
    def diagnose(norms, history, sat):
        grew = np.max(history) / history[0] > 1e3
        return EXPLODING if grew else _diagnose(norms, np.ones_like(history), sat)
    return _training(layer_norms, norm_history, saturation, diagnose=diagnose)


def _training_upside_down(layer_norms, norm_history, saturation):
    return _training(layer_norms[:, ::-1], norm_history, saturation)


def _training_absolute(layer_norms, norm_history, saturation):
    # "a first-layer gradient below 1e-4 is a vanishing one": a size, not a ratio
    def diagnose(norms, history, sat):
        if _diagnose(norms, history, sat) == EXPLODING:
            return EXPLODING
        return VANISHING if norms[0] < 1e-4 else _diagnose(np.ones_like(norms), history, sat)
    return _training(layer_norms, norm_history, saturation, diagnose=diagnose)


def _training_saturation_ignored(layer_norms, norm_history, saturation):
    return _training(layer_norms, norm_history, np.zeros_like(saturation))


def _training_clip_vanishing(layer_norms, norm_history, saturation):
    return _training(layer_norms, norm_history, saturation, fix={VANISHING: CLIP})


def _training_relu_for_exploding(layer_norms, norm_history, saturation):
    return _training(layer_norms, norm_history, saturation, fix={EXPLODING: RELU_HE})


def _training_always_healthy(layer_norms, norm_history, saturation):
    return np.array([HEALTHY] * len(layer_norms)), np.array([KEEP] * len(layer_norms))


def _training_always_vanishing(layer_norms, norm_history, saturation):
    return np.array([VANISHING] * len(layer_norms)), np.array([RELU_HE] * len(layer_norms))


# -- variance_ratios: Glorot and Bengio's variance calculation for uniform weights ------------------
def variance_cases(rng):
    cases = []
    for _ in range(6):
        depth = int(rng.integers(2, 9))
        widths = rng.integers(5, 301, size=depth + 1)
        bounds = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            rule = rng.choice(["standard", "normalized", "any"])
            a = (1 / np.sqrt(n_in) if rule == "standard" else np.sqrt(6 / (n_in + n_out)) if rule == "normalized"
                 else rng.uniform(0.02, 0.3))
            bounds.append(a * rng.uniform(0.7, 1.4))
        cases.append({"widths": widths.astype(np.int64), "bounds": np.array(bounds)})
    return cases


def variance_reference(widths, bounds):
    var = bounds**2 / 3                                     # Var(U[-a, a]) = a^2 / 3
    n = widths.to(bounds.dtype)
    return torch.prod(n[:-1] * var), torch.prod(n[1:] * var)


def _ratios(widths, var, *, fan_forward=0, fan_backward=1):
    fans = (widths[:-1], widths[1:])
    return float(np.prod(fans[fan_forward] * var)), float(np.prod(fans[fan_backward] * var))


def _variance_a_squared(widths, bounds):
    return _ratios(widths, bounds**2)


def _variance_width_a(widths, bounds):
    # the variance of a uniform distribution of width a, not 2a
    return _ratios(widths, bounds**2 / 12)


def _variance_fans_swapped(widths, bounds):
    return _ratios(widths, bounds**2 / 3, fan_forward=1, fan_backward=0)


def _variance_same_both_ways(widths, bounds):
    forward, _ = _ratios(widths, bounds**2 / 3)
    return forward, forward


def _variance_std(widths, bounds):
    return _ratios(widths, bounds / np.sqrt(3))


def _variance_ones(widths, bounds):
    return 1.0, 1.0


_RECOGNISE_BOOK = "ch04-recognise"
_SCALES_BOOK = "ch04-xavier-scales"
UNDERSTANDING_PARTS = [
    Part(id="diagnose_training", points=2, function="diagnose_training", outputs=("diagnoses", "fixes"),
         cases=training_cases, reference=training_reference,
         mutants={
             "per-layer norms only": Mutant(_training_layers_only, book="ch04-exploding", feedback=(
                 "When the weights are too large every layer's gradient is too large by about the same "
                 "factor, so the layers look balanced; the symptom is the gradient norm growing from step to "
                 "step until it overflows. Look at the history too.")),
             "an overflowed history not seen": Mutant(_training_nan_unseen, book="ch04-exploding", feedback=(
                 "A run whose gradient norm overflowed ends in inf or nan, and np.max of an array holding nan "
                 "is nan, which compares False with everything: treat non-finite values as the explosion "
                 "they are.")),
             "ratio upside down": Mutant(_training_upside_down, book="ch04-products", feedback=(
                 "Gradients are products of one factor per layer from the loss down: vanishing gradients are "
                 "small in the first layer (column 0) compared with the output layer.")),
             "size of the first layer's norm": Mutant(_training_absolute, book=_RECOGNISE_BOOK, feedback=(
                 "A gradient norm is small or large only relative to the other layers of the same network "
                 "(the loss, the batch and the scale of the data set its overall size): compare the first "
                 "layer with the output layer, not with a fixed number.")),
             "saturation ignored": Mutant(_training_saturation_ignored, book="ch04-fix-inputs", feedback=(
                 "When the first hidden layer alone is saturated, its pre-activations are too large because "
                 "the inputs are (raw pixels up to 16): standardizing the inputs fixes it.")),
             "clipping against vanishing gradients": Mutant(_training_clip_vanishing, book="ch04-fix-clipping",
                                                            feedback=(
                 "Clipping bounds a gradient that is too large; it cannot make a vanishing gradient larger. "
                 "Vanishing gradients call for non-saturating units with a matching initialization.")),
             "ReLU against exploding gradients": Mutant(_training_relu_for_exploding, book="ch04-fix-clipping",
                                                        feedback=(
                 "The chapter's exploding gradients come from ReLU networks with too large weights: the remedy "
                 "it demonstrates is clipping the gradient norm.")),
             "always healthy": Mutant(_training_always_healthy, book=_RECOGNISE_BOOK, feedback=(
                 "Read each run's measurements: the norm history, the ratio of the first layer's gradient norm "
                 "to the output layer's, and the saturation of the hidden layers.")),
             "always vanishing": Mutant(_training_always_vanishing, book=_RECOGNISE_BOOK, feedback=(
                 "Read each run's measurements: many runs are healthy, and the others fail in different ways.")),
         }),
    Part(id="variance_ratios", points=2, function="variance_ratios", outputs=("forward", "backward"),
         cases=variance_cases, reference=variance_reference,
         mutants={
             "Var(U[-a, a]) = a^2": Mutant(_variance_a_squared, book="ch04-rule-variance", feedback=(
                 "The variance of U[-a, a] is a^2 / 3, not a^2.")),
             "variance of a uniform of width a": Mutant(_variance_width_a, book="ch04-rule-variance", feedback=(
                 "U[-a, a] has width 2a, and a uniform distribution of width w has variance w^2 / 12: "
                 "(2a)^2 / 12 = a^2 / 3.")),
             "fan-in and fan-out swapped": Mutant(_variance_fans_swapped, book=_SCALES_BOOK, feedback=(
                 "A pre-activation sums n_in products (forward: n_in Var(W) per layer); a backpropagated "
                 "gradient sums over the n_out units above (backward: n_out Var(W) per layer).")),
             "one ratio for both directions": Mutant(_variance_same_both_ways, book=_SCALES_BOOK, feedback=(
                 "The forward pass multiplies by n_in Var(W) per layer and the backward pass by n_out Var(W): "
                 "unless every layer is square they differ, which is why Glorot and Bengio compromise on "
                 "2 / (n_in + n_out).")),
             "standard deviations instead of variances": Mutant(_variance_std, book=_SCALES_BOOK, feedback=(
                 "Variances of independent terms add: each layer multiplies the variance by n Var(W), with "
                 "Var(W) = a^2 / 3, not the standard deviation a / sqrt(3).")),
             "the initialization keeps everything at 1": Mutant(_variance_ones, book=_SCALES_BOOK, feedback=(
                 "Only an initialization with n_in Var(W) = 1 (forward) or n_out Var(W) = 1 (backward) in "
                 "every layer keeps a ratio at 1; compute the product for the bounds given.")),
         }),
]


PARTS = [
    Part(id="xavier_uniform", points=2, function="xavier_uniform",
         outputs=("shape", "rms", "std_over_rms", "max_abs", "kurtosis", "reproducible"),
         cases=xavier_cases, reference=xavier_reference, call=adapters.xavier_statistics, rtol=STAT_RTOL,
         forbid=("mlp_lib.init.xavier_normal", "mlp_lib.init.kaiming_uniform", "mlp_lib.init.lecun_uniform"),
         mutants={"no gain": Mutant(_xavier_no_gain, book=INIT, feedback=(
                      "the gain is missing: the bound is a = gain * sqrt(6 / (fan_in + fan_out)), so the gain "
                      "multiplies it.")),
                  "std used as the bound": Mutant(_xavier_std_as_bound, book=INIT, feedback=(
                      "the bound is gain * sqrt(2 / (fan_in + fan_out)), which is the standard deviation Xavier "
                      "wants, not the bound: U(-a, a) has standard deviation a / sqrt(3), so "
                      "a = gain * sqrt(6 / (fan_in + fan_out)).")),
                  "normal instead of uniform": Mutant(_xavier_normal_instead, book=INIT, feedback=(
                      "the weights are normally distributed (see their kurtosis): xavier_uniform draws from the "
                      "uniform distribution U(-a, a), e.g. with rng.uniform(-a, a, size=shape).")),
                  "bound from fan_in only": Mutant(_xavier_fan_in_only, book=INIT, feedback=(
                      "the bound uses fan_in alone (gain * sqrt(3 / fan_in), He's rule): Xavier's bound uses both "
                      "fans, gain * sqrt(6 / (fan_in + fan_out)).")),
                  "gain inside the square root": Mutant(_xavier_gain_inside_sqrt, book=INIT, feedback=(
                      "the gain is inside the square root (sqrt(6 * gain / (fan_in + fan_out))): it multiplies "
                      "the bound, a = gain * sqrt(6 / (fan_in + fan_out)), so the variance grows with gain ** 2.")),
                  "U(0, a) instead of U(-a, a)": Mutant(_xavier_half_interval, book=INIT, feedback=(
                      "the weights are all positive, drawn from U(0, a): draw from U(-a, a), centred on 0.")),
                  "numpy's global random state": Mutant(_xavier_global_rng, book=INIT, feedback=DRAW_FROM_RNG),
                  "torch's (D_out, D_in) layout": Mutant(_xavier_torch_layout, book=INIT, feedback=(
                      "the matrix has torch's layout (D_out, D_in): in mlp_lib a weight matrix has the shape "
                      "(D_in, D_out) that it is given, so draw size=shape."))}),
    Part(id="kaiming_normal", points=2, function="kaiming_normal",
         outputs=("shape", "rms", "std_over_rms", "kurtosis", "reproducible"),
         cases=kaiming_cases, reference=kaiming_reference, call=adapters.kaiming_statistics, rtol=STAT_RTOL,
         forbid=("mlp_lib.init.calculate_gain", "mlp_lib.init.kaiming_uniform", "mlp_lib.init.lecun_normal"),
         mutants={"fan_in and fan_out swapped": Mutant(_kaiming_fans_swapped, book=INIT, feedback=(
                      "fan_in and fan_out are swapped: with mlp_lib's shape (D_in, D_out), fan_in = shape[0] and "
                      "fan_out = shape[1] (torch's weight is the transpose, so torch reads them the other way "
                      "round).")),
                  "no gain": Mutant(_kaiming_no_gain, book=INIT, feedback=(
                      "the gain is missing: std = gain / sqrt(fan) with gain = sqrt(2 / (1 + a ** 2)), sqrt(2) "
                      "for a plain ReLU.")),
                  "negative slope not squared": Mutant(_kaiming_slope_not_squared, book=INIT, feedback=(
                      "the gain uses 1 + a where it needs 1 + a ** 2: gain = sqrt(2 / (1 + a ** 2)).")),
                  "negative slope ignored": Mutant(_kaiming_slope_ignored, book=INIT, feedback=(
                      "the negative slope a is ignored (the gain is always sqrt(2)): the gain is "
                      "sqrt(2 / (1 + a ** 2)).")),
                  "variance used as the std": Mutant(_kaiming_variance_as_std, book=INIT, feedback=(
                      "the variance gain ** 2 / fan is used as the standard deviation: rng.normal takes the "
                      "standard deviation, gain / sqrt(fan).")),
                  "mode ignored": Mutant(_kaiming_mode_ignored, book=INIT, feedback=(
                      "mode is ignored (fan_in is always used): with mode=\"fan_out\" the standard deviation is "
                      "gain / sqrt(fan_out).")),
                  "uniform instead of normal": Mutant(_kaiming_uniform_instead, book=INIT, feedback=(
                      "the weights are uniformly distributed (see their kurtosis): kaiming_normal draws from the "
                      "normal distribution N(0, std ** 2), e.g. with rng.normal(0.0, std, size=shape).")),
                  "Xavier's variance": Mutant(_kaiming_xavier_instead, book=INIT, feedback=(
                      "the standard deviation is Xavier's, sqrt(2 / (fan_in + fan_out)): He's initialization uses "
                      "one fan, std = gain / sqrt(fan) with gain = sqrt(2 / (1 + a ** 2)).")),
                  "numpy's global random state": Mutant(_kaiming_global_rng, book=INIT, feedback=DRAW_FROM_RNG)}),
    Part(id="layer_gradient_norms", points=2, function="layer_gradient_norms", outputs=("norms",),
         cases=norms_cases, reference=norms_reference, call=adapters.layer_norms,
         forbid=("mlp_lib.diagnostics.per_layer_gradient_norms", "mlp_lib.diagnostics.gradient_norms"),
         mutants={"weights only (biases ignored)": Mutant(_norms_weights_only, book="ch04-recognise", feedback=(
                      "only the first array of each layer (its weights) is counted: a layer's norm covers all of "
                      "its gradient arrays together, sqrt(sum of dW ** 2 + sum of db ** 2).")),
                  "sum of the arrays' norms": Mutant(_norms_sum_of_norms, book="ch04-recognise", feedback=(
                      "a layer's norm is the sum of its arrays' norms, ||dW|| + ||db||: it is the norm of all of "
                      "them together, sqrt(||dW|| ** 2 + ||db|| ** 2).")),
                  "squared norms": Mutant(_norms_squared, book="ch04-recognise", feedback=(
                      "the norms are squared: take the square root of each layer's sum of squares.")),
                  "one global norm": Mutant(_norms_global, book="ch04-recognise", feedback=(
                      "every layer gets the same value, the norm of all the layers' gradients together: compute "
                      "one norm per layer, from that layer's arrays only.")),
                  "largest magnitude instead of L2": Mutant(_norms_max_abs, book="ch04-recognise", feedback=(
                      "each layer's largest gradient magnitude is returned: the L2 norm is the square root of the "
                      "sum of the squares.")),
                  "root mean square": Mutant(_norms_rms, book="ch04-recognise", feedback=(
                      "the root mean square is returned: the L2 norm is the square root of the sum of the "
                      "squares, not of their mean.")),
                  "one norm per array": Mutant(_norms_per_array, book="ch04-recognise", feedback=(
                      "one norm per gradient array is returned: return one per layer, shape (L,), each combining "
                      "all the arrays of that layer.")),
                  "squares in place": Mutant(_norms_in_place, diagnosis="mutated_input", book="ch04-recognise",
                                             feedback=(
                      "the gradient arrays are squared in place (np.square(g, out=g), g **= 2): the grader hands "
                      "them over read-only; compute g * g into a new array."))}),
    Part(id="saturation_fraction", points=2, function="saturation_fraction", outputs=("fraction",),
         cases=saturation_cases, reference=saturation_reference,
         mutants={"lower tail only": Mutant(_sat_lower_tail_only, book="ch04-saturated", feedback=(
                      "only the lower asymptote is counted: an output is saturated near either asymptote, so the "
                      "outputs above 1 - t count too.")),
                  "<= instead of <": Mutant(_sat_non_strict, book="ch04-saturated", feedback=(
                      "outputs exactly on the boundary are counted (<= or >=): the inequalities are strict, an "
                      "output equal to t or 1 - t (tanh: |a| equal to 1 - t) is not saturated.")),
                  "sigmoid rule for tanh": Mutant(_sat_sigmoid_rule_for_tanh, book="ch04-saturated", feedback=(
                      "tanh outputs are tested with the sigmoid's rule (a < t or a > 1 - t): tanh's asymptotes are "
                      "-1 and 1, so the test is |a| > 1 - t.")),
                  "threshold fixed at 0.01": Mutant(_sat_threshold_ignored, book="ch04-saturated", feedback=(
                      "the threshold argument is ignored (0.01 is always used): compare with threshold.")),
                  "count instead of fraction": Mutant(_sat_count, book="ch04-saturated", feedback=(
                      "the number of saturated entries is returned: return the fraction, that count divided by the "
                      "number of entries.")),
                  "units saturated on every example": Mutant(_sat_per_unit, book="ch04-saturated", feedback=(
                      "the fraction of units saturated on every example is returned: every entry counts once, "
                      "whatever the shape of a, so take the mean over all entries.")),
                  "tanh near 0 counted": Mutant(_sat_tanh_near_zero, book="ch04-saturated", feedback=(
                      "for tanh, outputs near 0 (|a| < t) are counted: tanh saturates near its asymptotes -1 and "
                      "1, where |a| > 1 - t."))}),
    Part(id="clip_grad_norm", points=2, function="clip_grad_norm", outputs=("clipped", "total_norm"),
         cases=clip_cases, reference=clip_reference, call=adapters.clip,
         mutants={"per-tensor clipping": Mutant(_clip_per_tensor, book="ch04-fix-clipping", feedback=(
                      "each array is clipped with its own norm: compute the total norm of all the arrays together "
                      "and multiply every array by the same coefficient.")),
                  "no eps": Mutant(_clip_no_eps, book="ch04-fix-clipping", feedback=(
                      "the 1e-6 is missing from the denominator: the coefficient is "
                      "min(1, max_norm / (total_norm + 1e-6)), torch's formula.")),
                  "scales up below the threshold": Mutant(_clip_always, book="ch04-fix-clipping", feedback=(
                      "the gradients are rescaled even when their norm is below max_norm (scaled up): the "
                      "coefficient is min(1, max_norm / (total_norm + 1e-6)), so small gradients come back "
                      "unchanged.")),
                  "in place": Mutant(_clip_in_place, diagnosis="mutated_input", book="ch04-fix-clipping", feedback=(
                      "the gradient arrays are multiplied in place (g *= c): the grader hands them over read-only; "
                      "return new arrays, g * c.")),
                  "norm after clipping returned": Mutant(_clip_norm_after, book="ch04-fix-clipping", feedback=(
                      "total_norm is the norm after clipping: return the norm of the gradients before clipping.")),
                  "sum of per-tensor norms": Mutant(_clip_sum_of_norms, book="ch04-fix-clipping", feedback=(
                      "the total norm is the sum of the arrays' norms: it is the norm of all the arrays together, "
                      "the square root of the sum of all their squared entries.")),
                  "squared norm": Mutant(_clip_squared_norm, book="ch04-fix-clipping", feedback=(
                      "the total norm is squared: take the square root of the sum of the squares.")),
                  "inputs returned when not clipping": Mutant(_clip_inputs_when_small, diagnosis="returned_input",
                                                              book="ch04-fix-clipping", feedback=(
                      "when no clipping is needed the input arrays themselves are returned: clip_grad_norm returns "
                      "new arrays in every case (multiplied by the coefficient 1, or copies)."))}),
    *UNDERSTANDING_PARTS,
]
