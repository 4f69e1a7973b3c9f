"""Grading spec of Chapter 9's exercise: inverted dropout (forward, sampling, backward), the max-norm
constraint, and the forward pass of an MLP with dropout in training and evaluation mode.

Every Part draws its cases from the grader's rng and is judged against a torch reference computed
in float64. Conventions, as stated in the exercise and in the book (``mlp_lib.regularization``
computes the same values):

* ``p`` is the probability of *dropping* a unit (torch's convention). A keep-mask is a boolean
  array of the shape of ``x``, True where the unit is kept. Inverted dropout: in training mode
  ``out = x * keep / (1 - p)``, which is what torch's ``F.dropout`` computes with its own mask;
  in evaluation mode ``out = x`` (a new array). ``p`` is in ``[0, 1)``;
* a mask is drawn as ``keep = rng.random(x.shape) >= p``: one call, on the Generator passed as
  ``rng``. The reference of the sampling part reproduces it with numpy's Generator from the same
  seed (torch has no way to draw numpy's stream) and applies torch to the result;
* ``dropout_forward`` returns ``(out, cache)`` with ``cache = (keep, p)`` in training mode and
  ``(None, p)`` in evaluation mode; ``dropout_backward`` is graded on caches of exactly that form,
  built here from the case's inputs, so that a mistake in the forward pass never costs the points
  of the backward pass; the reference gradient is torch's autograd through ``x * keep / (1 - p)``;
* ``max_norm(W, c)``: ``W`` has mlp_lib's shape ``(D_in, D_out)``, column ``j`` holds the incoming
  weights of unit ``j``; columns whose L2 norm exceeds ``c`` are scaled by ``c / (norm + 1e-7)``,
  the others are unchanged. Reference: ``torch.renorm(W.T, p=2, dim=0, maxnorm=c).T`` (torch
  stores the weight transposed, one row per unit);
* ``mlp_forward(x, params, *, p_input, p_hidden, training, masks=None, rng=None)``: ReLU hidden
  layers, ``params = [(W1, b1), ..., (WL, bL)]``; dropout on the input (``p_input``) and on the
  output of every hidden layer (``p_hidden``), never on the scores; ``masks[0]`` is the input's
  keep-mask and ``masks[l]`` the mask of hidden layer ``l``. Graded with three layers against the
  same computation written with ``torch.nn.functional`` (given the same masks), and in evaluation
  mode without any mask;
* the sampling of ``mlp_forward`` is graded statistically: on a network whose inputs, weights and
  biases are all positive every ReLU works in its linear regime whatever the masks, so the
  expected scores over the masks are *exactly* the evaluation-mode scores (the masks of different
  layers are independent and each has mean 1 after the 1/(1 - p) scaling). The kernel-side
  adapter averages ``N_SAMPLES`` training-mode passes drawn from one Generator; the tolerance
  (``STAT_RTOL``) is more than six standard errors of that average on every case (checked in
  tests/test_assignment_ch09.py), while a missing or doubled 1/(1 - p) is off by a factor of two
  or more. The adapter also checks that two consecutive passes use different masks.

Each mutant is a typical mistake; tests/test_assignment_ch09.py checks that each loses the points
of its own part (parts that call the mutated function through ``uses`` may lose theirs too), with
the diagnosis it names.
"""
import numpy as np
import torch
import torch.nn.functional as F

from autograder.spec import Mutant, Part

FORBID = ("mlp_lib.modules.Dropout", "mlp_lib.regularization.dropout_forward",
          "mlp_lib.regularization.dropout_backward")     # mlp_lib's dropout, in any part
PUBLIC_SEED = 20140614           # JMLR 15(56), June 2014: Srivastava et al.'s dropout paper
# the locked cells the answers may rely on: the imports, and the answers' vocabulary of Parts 7 and on
SETUP = ("setup", "understanding-setup")
N_SAMPLES = 4000                 # training-mode passes averaged by the statistical part
STAT_RTOL = 0.05


def _shape(rng):
    """A random shape: 2-D with N != D most of the time, sometimes 1-D or 3-D (dropout is elementwise)."""
    kind = int(rng.integers(0, 4))
    if kind == 0:
        return (int(rng.integers(8, 30)),)
    if kind == 1:
        return (2, int(rng.integers(2, 5)), int(rng.integers(3, 7)))
    n, d = (int(v) for v in rng.choice(np.arange(3, 13), size=2, replace=False))
    return (n, d)


def _keep_mask(rng, shape, p):
    """A keep-mask with P(keep) = 1 - p, and at least one kept and one dropped unit."""
    keep = rng.random(shape) >= p
    flat = keep.reshape(-1)
    flat[0], flat[-1] = True, False
    return keep


# -- dropout_forward (explicit mask, and evaluation mode) ---------------------------------------------
FORWARD_PS = (0.2, 0.5, 0.8, 0.35, 0.6, 0.1)
FORWARD_TRAINING = (1, 1, 1, 1, 0, 0)


def forward_cases(rng):
    cases = []
    for p, training in zip(FORWARD_PS, FORWARD_TRAINING):
        shape = _shape(rng) if training else (int(rng.integers(3, 9)), int(rng.integers(9, 15)))
        cases.append({"x": 3.0 * rng.standard_normal(shape), "p": np.float64(p), "training": np.int64(training),
                      "mask": _keep_mask(rng, shape, p)})
    return cases


def forward_call(student, x, p, training, mask):
    if int(training):
        returned = student.dropout_forward(x, p=float(p), training=True, mask=mask.copy())
    else:
        returned = student.dropout_forward(x, p=float(p), training=False)
    if not isinstance(returned, tuple) or len(returned) != 2:
        raise TypeError("dropout_forward must return a pair (out, cache)")
    out, cache = returned
    if not isinstance(cache, tuple) or len(cache) != 2:
        raise TypeError("the cache must be the pair (keep, p)")
    keep = cache[0]
    if not int(training):
        # in evaluation mode the cache holds no mask: (None, p)
        return out, np.array(keep is None)
    keep = np.asarray(keep)
    if keep.shape != x.shape:
        raise ValueError(f"the mask in the cache has shape {keep.shape}, expected the shape of x {x.shape}")
    return out, keep != 0


def forward_reference(x, p, training, mask):
    if int(training):
        return x * mask / (1.0 - p), mask.clone()
    return x.clone(), torch.tensor(True)


def _fwd_keep_probability(x, *, p, training, rng=None, mask=None):
    if not training:
        return x.copy(), (None, p)
    keep = rng.random(x.shape) < p if mask is None else mask
    return x * keep / p, (keep, p)


def _fwd_no_scaling(x, *, p, training, rng=None, mask=None):
    if not training:
        return x.copy(), (None, p)
    keep = rng.random(x.shape) >= p if mask is None else mask
    return x * keep, (keep, p)


def _fwd_scales_in_eval(x, *, p, training, rng=None, mask=None):
    if not training:
        return x / (1.0 - p), (None, p)
    keep = rng.random(x.shape) >= p if mask is None else mask
    return x * keep / (1.0 - p), (keep, p)


def _fwd_original_dropout(x, *, p, training, rng=None, mask=None):
    # Srivastava et al.'s formulation: no scaling in training, multiply by 1 - p at test time
    if not training:
        return x * (1.0 - p), (None, p)
    keep = rng.random(x.shape) >= p if mask is None else mask
    return x * keep, (keep, p)


def _fwd_training_ignored(x, *, p, training, rng=None, mask=None):
    # drops (and scales) in evaluation mode too
    keep = rng.random(x.shape) >= p if mask is None else mask
    return x * keep / (1.0 - p), (keep, p)


def _fwd_mask_inverted(x, *, p, training, rng=None, mask=None):
    if not training:
        return x.copy(), (None, p)
    keep = rng.random(x.shape) >= p if mask is None else mask
    return x * ~keep / (1.0 - p), (~keep, p)


def _fwd_mask_not_cached(x, *, p, training, rng=None, mask=None):
    if not training:
        return x.copy(), (None, p)
    keep = rng.random(x.shape) >= p if mask is None else mask
    return x * keep / (1.0 - p), (None, p)


def _fwd_in_place(x, *, p, training, rng=None, mask=None):
    if not training:
        return x, (None, p)
    keep = rng.random(x.shape) >= p if mask is None else mask
    x *= keep
    x /= 1.0 - p
    return x, (keep, p)


# -- dropout_forward with rng: the mask drawn as rng.random(x.shape) >= p -----------------------------
def sampling_cases(rng):
    cases = []
    for p in (0.5, 0.3, 0.75, 0.1):
        shape = _shape(rng)
        cases.append({"x": 2.0 * rng.standard_normal(shape), "p": np.float64(p),
                      "seed": np.int64(rng.integers(0, 2**31))})
    return cases


def sampling_call(student, x, p, seed):
    returned = student.dropout_forward(x, p=float(p), training=True, rng=np.random.default_rng(int(seed)))
    if not isinstance(returned, tuple) or len(returned) != 2:
        raise TypeError("dropout_forward must return a pair (out, cache)")
    out, cache = returned
    if not isinstance(cache, tuple) or len(cache) != 2:
        raise TypeError("the cache must be the pair (keep, p)")
    keep = np.asarray(cache[0])
    if keep.shape != x.shape:
        raise ValueError(f"the mask in the cache has shape {keep.shape}, expected the shape of x {x.shape}")
    return out, keep != 0


def sampling_reference(x, p, seed):
    # numpy's Generator from the same seed, one call: the stream torch cannot draw
    keep = np.random.default_rng(int(seed)).random(tuple(x.shape)) >= float(p)
    keep = torch.tensor(keep, device=x.device)
    return x * keep / (1.0 - p), keep


def _rng_keep_probability(x, *, p, training, rng=None, mask=None):
    return _fwd_keep_probability(x, p=p, training=training, rng=rng, mask=mask)


def _rng_global_state(x, *, p, training, rng=None, mask=None):
    if not training:
        return x.copy(), (None, p)
    keep = np.random.random(x.shape) >= p if mask is None else mask
    return x * keep / (1.0 - p), (keep, p)


def _rng_one_mask_per_feature(x, *, p, training, rng=None, mask=None):
    # one mask for the last axis, shared by every example
    if not training:
        return x.copy(), (None, p)
    keep = np.broadcast_to(rng.random(x.shape[-1:]) >= p, x.shape) if mask is None else mask
    return x * keep / (1.0 - p), (keep, p)


def _rng_fresh_generator(x, *, p, training, rng=None, mask=None):
    if not training:
        return x.copy(), (None, p)
    keep = np.random.default_rng().random(x.shape) >= p if mask is None else mask
    return x * keep / (1.0 - p), (keep, p)


def _rng_one_mask_per_example(x, *, p, training, rng=None, mask=None):
    # one keep/drop decision per example (row), for all its units
    if not training:
        return x.copy(), (None, p)
    keep = np.broadcast_to(rng.random((*x.shape[:-1], 1)) >= p, x.shape) if mask is None else mask
    return x * keep / (1.0 - p), (keep, p)


# -- dropout_backward ---------------------------------------------------------------------------------
BACKWARD_PS = (0.5, 0.25, 0.7, 0.4, 0.3)       # the eval case: 1/(1 - p) is no integer (never N)
BACKWARD_TRAINING = (1, 1, 1, 1, 0)


def backward_cases(rng):
    cases = []
    for p, training in zip(BACKWARD_PS, BACKWARD_TRAINING):
        shape = _shape(rng)
        cases.append({"dout": rng.standard_normal(shape), "mask": _keep_mask(rng, shape, p), "p": np.float64(p),
                      "training": np.int64(training)})
    return cases


def backward_call(student, dout, mask, p, training):
    cache = (mask, float(p)) if int(training) else (None, float(p))
    return student.dropout_backward(dout, cache)


def backward_reference(dout, mask, p, training):
    x = torch.zeros_like(dout).requires_grad_(True)
    out = x * mask / (1.0 - p) if int(training) else x * 1.0
    out.backward(dout)
    return x.grad


def _bwd_no_scaling(dout, cache):
    keep, p = cache
    return dout.copy() if keep is None else dout * keep


def _bwd_new_mask(dout, cache):
    keep, p = cache
    if keep is None:
        return dout.copy()
    fresh = np.random.default_rng().random(dout.shape) >= p
    return dout * fresh / (1.0 - p)


def _bwd_scales_in_eval(dout, cache):
    keep, p = cache
    return dout / (1.0 - p) if keep is None else dout * keep / (1.0 - p)


def _bwd_keep_probability(dout, cache):
    keep, p = cache
    return dout.copy() if keep is None else dout * keep / p


def _bwd_mask_ignored(dout, cache):
    keep, p = cache
    return dout.copy() if keep is None else dout / (1.0 - p)


def _bwd_in_place(dout, cache):
    keep, p = cache
    if keep is None:
        return dout
    dout *= keep
    dout /= 1.0 - p
    return dout


# -- max_norm -----------------------------------------------------------------------------------------
def max_norm_cases(rng):
    cases = []
    for kind in range(5):
        d_in, d_out = (int(v) for v in rng.choice(np.arange(3, 16), size=2, replace=False))
        # columns of very different norms: some far above the bound, some below
        W = rng.standard_normal((d_in, d_out)) * np.exp(rng.uniform(-1.5, 1.5, size=d_out))
        norms = np.linalg.norm(W, axis=0)
        if kind == 0:
            W[:, int(rng.integers(d_out))] = 0.0                     # a dead unit: norm 0 stays 0
        if kind == 3:
            c = 2.0 * norms.max()                                    # nothing to do
        elif kind == 4:
            c = 0.5 * norms.min()                                    # every column too long
        else:
            c = float(np.median(norms)) * rng.uniform(0.8, 1.2)
        cases.append({"W": W, "c": np.float64(c)})
    return cases


def max_norm_call(student, W, c):
    return student.max_norm(W, float(c))


def max_norm_reference(W, c):
    return torch.renorm(W.T, p=2, dim=0, maxnorm=float(c)).T


def _mn_rows(W, c):
    norms = np.linalg.norm(W, axis=1, keepdims=True)
    return W * np.where(norms > c, c / (norms + 1e-7), 1.0)


def _mn_every_column(W, c):
    norms = np.linalg.norm(W, axis=0, keepdims=True)
    return W * np.where(norms > 0, c / (norms + 1e-7), 1.0)


def _mn_squared_norm(W, c):
    sq = np.sum(W * W, axis=0, keepdims=True)
    return W * np.where(sq > c, c / (sq + 1e-7), 1.0)


def _mn_whole_matrix(W, c):
    norm = np.linalg.norm(W)
    return W * (c / (norm + 1e-7)) if norm > c else W.copy()


def _mn_clip_entries(W, c):
    return np.clip(W, -c, c)


def _mn_unit_norm(W, c):
    norms = np.linalg.norm(W, axis=0, keepdims=True)
    return W * np.where(norms > c, 1.0 / (norms + 1e-7), 1.0)


def _mn_in_place(W, c):
    norms = np.linalg.norm(W, axis=0, keepdims=True)
    W *= np.where(norms > c, c / (norms + 1e-7), 1.0)
    return W


# -- mlp_forward (given masks, and in evaluation mode) ------------------------------------------------
MLP_SETTINGS = ((0.2, 0.5, 1), (0.0, 0.5, 1), (0.1, 0.3, 1), (0.25, 0.6, 1), (0.2, 0.5, 0), (0.1, 0.4, 0))


def _mlp_params(rng, sizes, positive=False):
    params = {}
    for l, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        W = rng.standard_normal((d_in, d_out)) / np.sqrt(d_in)
        b = 0.1 * rng.standard_normal(d_out)
        if positive:
            W, b = np.abs(W), 0.05 + np.abs(b)
        params[f"W{l}"], params[f"b{l}"] = W, b
    return params


def _sizes(rng):
    n = int(rng.integers(4, 9))
    d, h1, h2, c = (int(v) for v in rng.choice(np.arange(3, 17), size=4, replace=False))
    return n, [d, h1, h2, c]


def mlp_cases(rng):
    cases = []
    for p_in, p_h, training in MLP_SETTINGS:
        n, sizes = _sizes(rng)
        case = {"x": rng.standard_normal((n, sizes[0]))}
        case.update(_mlp_params(rng, sizes))
        case["m0"] = _keep_mask(rng, (n, sizes[0]), p_in) if p_in > 0 else np.ones((n, sizes[0]), dtype=bool)
        case["m1"] = _keep_mask(rng, (n, sizes[1]), p_h)
        case["m2"] = _keep_mask(rng, (n, sizes[2]), p_h)
        case.update({"p_input": np.float64(p_in), "p_hidden": np.float64(p_h), "training": np.int64(training)})
        cases.append(case)
    return cases


def mlp_call(student, x, W1, b1, W2, b2, W3, b3, m0, m1, m2, p_input, p_hidden, training):
    params = [(W1, b1), (W2, b2), (W3, b3)]
    if int(training):
        return student.mlp_forward(x, params, p_input=float(p_input), p_hidden=float(p_hidden), training=True,
                                   masks=[m0.copy(), m1.copy(), m2.copy()])
    return student.mlp_forward(x, params, p_input=float(p_input), p_hidden=float(p_hidden), training=False)


def _torch_mlp(x, layers, masks, p_input, p_hidden):
    """Scores of the ReLU MLP; ``masks`` None = evaluation mode. Weights are mlp_lib's (D_in, D_out)."""
    h = x if masks is None else x * masks[0] / (1.0 - p_input)
    for l, (W, b) in enumerate(layers):
        h = F.linear(h, W.T, b)
        if l < len(layers) - 1:
            h = F.relu(h)
            if masks is not None:
                h = h * masks[l + 1] / (1.0 - p_hidden)
    return h


def mlp_reference(x, W1, b1, W2, b2, W3, b3, m0, m1, m2, p_input, p_hidden, training):
    masks = [m0, m1, m2] if int(training) else None
    return _torch_mlp(x, [(W1, b1), (W2, b2), (W3, b3)], masks, p_input, p_hidden)


def _mlp_sites(x, params, *, p_input, p_hidden, training, masks, rng, drop, scale_eval=False, output=False,
               relu_out=False, swap=False, skip_input=False, draw=None):
    """A configurable MLP forward pass for the mutants (``drop(h, p, keep) -> h``)."""
    if swap:
        p_input, p_hidden = p_hidden, p_input
    h = x
    L = len(params)
    keeps = list(masks) if masks is not None else None

    def site(h, p, i):
        if training:
            if keeps is not None:
                keep = keeps[i]
            else:
                keep = draw(rng, h.shape, p) if draw is not None else rng.random(h.shape) >= p
            return drop(h, p, keep)
        return h / (1.0 - p) if scale_eval else h

    if not skip_input:
        h = site(h, p_input, 0)
    for l, (W, b) in enumerate(params):
        h = h @ W + b
        if l < L - 1:
            h = np.maximum(h, 0.0)
            h = site(h, p_hidden, l + 1)
    if relu_out:
        h = np.maximum(h, 0.0)
    if output and training:
        h = h * (np.random.default_rng(0).random(h.shape) >= p_hidden) / (1.0 - p_hidden)
    return h


def _inverted(h, p, keep):
    return h * keep / (1.0 - p)


def _mlp_output_dropout(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    return _mlp_sites(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks, rng=rng,
                      drop=_inverted, output=True)


def _mlp_no_scaling(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    return _mlp_sites(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks, rng=rng,
                      drop=lambda h, p, keep: h * keep)


def _mlp_scales_in_eval(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    return _mlp_sites(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks, rng=rng,
                      drop=_inverted, scale_eval=True)


def _mlp_swapped_rates(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    return _mlp_sites(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks, rng=rng,
                      drop=_inverted, swap=True)


def _mlp_no_input_dropout(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    if masks is not None:
        masks = [None, *masks[1:]]
    return _mlp_sites(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks, rng=rng,
                      drop=_inverted, skip_input=True)


def _mlp_relu_on_scores(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    return _mlp_sites(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks, rng=rng,
                      drop=_inverted, relu_out=True)


def _mlp_in_place(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    if training:
        keep = masks[0] if masks is not None else rng.random(x.shape) >= p_input
        x *= keep
        x /= 1.0 - p_input
        masks = [np.ones(x.shape, dtype=bool), *masks[1:]] if masks is not None else None
        return _mlp_sites(x, params, p_input=0.0, p_hidden=p_hidden, training=True, masks=masks, rng=rng,
                          drop=_inverted)
    return _mlp_sites(x, params, p_input=p_input, p_hidden=p_hidden, training=False, masks=None, rng=None,
                      drop=_inverted)


# -- mlp_forward sampled: the average over many masks is the evaluation-mode output -------------------
def mean_cases(rng):
    cases = []
    for p_in, p_h in ((0.2, 0.5), (0.0, 0.5), (0.1, 0.3)):
        # wide layers: each score averages many dropped units, which keeps the sampling error small
        n = int(rng.integers(3, 7))
        sizes = [int(rng.integers(20, 40)), int(rng.integers(40, 70)), int(rng.integers(40, 70)),
                 int(rng.integers(3, 11))]
        case = {"x": 0.1 + np.abs(rng.standard_normal((n, sizes[0])))}
        case.update(_mlp_params(rng, sizes, positive=True))
        case.update({"p_input": np.float64(p_in), "p_hidden": np.float64(p_h),
                     "seed": np.int64(rng.integers(0, 2**31))})
        cases.append(case)
    return cases


def mean_call(student, x, W1, b1, W2, b2, W3, b3, p_input, p_hidden, seed):
    n_samples = 4000                  # = N_SAMPLES (the adapter's source is sent to the kernel alone)
    params = [(W1, b1), (W2, b2), (W3, b3)]
    gen = np.random.default_rng(int(seed))
    first = np.asarray(student.mlp_forward(x, params, p_input=float(p_input), p_hidden=float(p_hidden),
                                           training=True, rng=gen), dtype=np.float64)
    second = np.asarray(student.mlp_forward(x, params, p_input=float(p_input), p_hidden=float(p_hidden),
                                            training=True, rng=gen), dtype=np.float64)
    total = first + second
    for _ in range(n_samples - 2):
        total = total + np.asarray(student.mlp_forward(x, params, p_input=float(p_input),
                                                       p_hidden=float(p_hidden), training=True, rng=gen),
                                   dtype=np.float64)
    return total / n_samples, np.array(not np.array_equal(first, second))


def mean_reference(x, W1, b1, W2, b2, W3, b3, p_input, p_hidden, seed):
    # every pre-activation is positive whatever the masks: E[scores] is the evaluation-mode output
    return _torch_mlp(x, [(W1, b1), (W2, b2), (W3, b3)], None, p_input, p_hidden), torch.tensor(True)


def _mean_same_masks(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    # a new Generator with a fixed seed on every call: the same masks every time
    return _mlp_sites(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks,
                      rng=np.random.default_rng(0), drop=_inverted)


def _mean_scaled_twice(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    return _mlp_sites(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks, rng=rng,
                      drop=lambda h, p, keep: h * keep / (1.0 - p) ** 2)


def _mean_keep_probability(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    # keeps a unit with probability p but scales by 1 / (1 - p): biased unless p = 0.5
    return _mlp_sites(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks, rng=rng,
                      drop=_inverted, draw=lambda gen, shape, p: gen.random(shape) < p)


# == Understanding: what the chapter teaches you to predict (Parts 7 and 8) =====================
# Graded like the other parts, on hidden cases from the secret seed; the answers need only numpy and
# the standard library. Each mutant is a typical wrong answer (guesses included) with the feedback a
# student who gave it should read, and the book section that explains the right one.
CORRECT, NOT_SCALED, SCALED_AT_EVAL, KEEP_PROBABILITY, ACTIVE_AT_EVAL = (
    "correct inverted dropout", "not scaled during training", "scaled again at evaluation",
    "p used as the keep probability", "still dropping at evaluation")


# -- dropout_moments: mean and variance of the next layer's pre-activation under inverted dropout ---
def moments_cases(rng):
    cases = []
    for k in range(5):
        n, d, c = int(rng.integers(2, 9)), int(rng.integers(3, 21)), int(rng.integers(2, 7))
        h = np.maximum(rng.standard_normal((n, d)), 0.0) if k % 2 == 0 else rng.standard_normal((n, d))
        cases.append({"h": h, "W": rng.standard_normal((d, c)), "b": rng.standard_normal(c),
                      "p": np.float64([0.5, 0.2, 0.8, 0.1, 0.65][k])})
    return cases


def moments_call(student, h, W, b, p):
    return student.dropout_moments(h, W, b, p=float(p))


def moments_reference(h, W, b, p):
    return h @ W + b, p / (1 - p) * (h**2) @ (W**2)


def _moments_w_not_squared(h, W, b, *, p):
    return h @ W + b, p / (1 - p) * (h**2) @ W


def _moments_not_inverted(h, W, b, *, p):
    return h @ W + b, p * (1 - p) * (h**2) @ (W**2)


def _moments_one_mask(h, W, b, *, p):
    # every input dropped together: the variance of one Bernoulli factor times the whole sum
    return h @ W + b, p / (1 - p) * (h @ W) ** 2


def _moments_mean_shrunk(h, W, b, *, p):
    return (1 - p) * (h @ W) + b, p / (1 - p) * (h**2) @ (W**2)


def _moments_bias_in_variance(h, W, b, *, p):
    return h @ W + b, p / (1 - p) * ((h**2) @ (W**2) + b**2)


def _moments_no_noise(h, W, b, *, p):
    return h @ W + b, np.zeros((h.shape[0], W.shape[1]))


# -- diagnose_dropout: what an implementation does, from its outputs --------------------------------
def _implementation(rng, kind, h, p, calls):
    """Outputs of `calls` training-mode and `calls // 4` evaluation-mode calls of one implementation on h."""
    def inverted():
        return h * (rng.random((calls, h.size)) >= p) / (1 - p)
    if kind == NOT_SCALED:
        train = h * (rng.random((calls, h.size)) >= p)
    elif kind == KEEP_PROBABILITY:
        train = h * (rng.random((calls, h.size)) >= 1 - p) / p
    else:
        train = inverted()
    evaluation = np.tile(h, (calls // 4, 1))
    if kind == SCALED_AT_EVAL:
        evaluation = (1 - p) * evaluation
    elif kind == ACTIVE_AT_EVAL:
        evaluation = h * (rng.random((calls // 4, h.size)) >= p) / (1 - p)
    return train, evaluation


def dropout_cases(rng):
    kinds = [CORRECT, NOT_SCALED, SCALED_AT_EVAL, KEEP_PROBABILITY, ACTIVE_AT_EVAL] * 2
    cases = []
    for kind in (kinds[i] for i in rng.permutation(len(kinds))):
        d = int(rng.integers(4, 12))
        h = rng.uniform(0.2, 3.0, size=d)
        p = float(rng.choice([rng.uniform(0.1, 0.35), rng.uniform(0.65, 0.9)]))   # never 1/2: p and 1 - p differ
        train, evaluation = _implementation(rng, kind, h, p, calls=int(rng.integers(200, 401)))
        cases.append({"h": h, "p": np.float64(p), "train_out": train, "eval_out": evaluation})
    return cases


def dropout_call(student, h, p, train_out, eval_out):
    return student.diagnose_dropout(h, float(p), train_out, eval_out)


def _diagnosis(h, p, train_out, eval_out, *, eval_rows=None, kept_ratio=None, use_scale=True, use_fraction=True):
    evaluation = eval_out if eval_rows is None else eval_out[:eval_rows]
    if not np.allclose(evaluation, evaluation[0]):
        return ACTIVE_AT_EVAL
    if np.allclose(evaluation[0], (1 - p) * h):
        return SCALED_AT_EVAL
    kept = train_out != 0
    ratio = (train_out[kept] / np.broadcast_to(h, train_out.shape)[kept]).mean()
    dropped = 1 - kept.mean()
    if use_scale and np.isclose(ratio, 1.0):
        return NOT_SCALED
    right_scale = 1 / (1 - p) if kept_ratio is None else kept_ratio(p)
    if (not use_scale or np.isclose(ratio, right_scale)) and (not use_fraction or abs(dropped - p) < 0.1):
        return CORRECT
    return KEEP_PROBABILITY


def dropout_reference(h, p, train_out, eval_out):
    h, p, train_out, eval_out = h.cpu().numpy(), float(p), train_out.cpu().numpy(), eval_out.cpu().numpy()
    if not np.all(eval_out == eval_out[0]):
        return np.array(ACTIVE_AT_EVAL)
    if np.allclose(eval_out[0], (1 - p) * h, rtol=1e-12, atol=0):
        return np.array(SCALED_AT_EVAL)
    kept = train_out != 0
    scale = np.unique(np.round(train_out[kept] / np.broadcast_to(h, train_out.shape)[kept], 9))
    if len(scale) != 1:
        raise ValueError("diagnose_dropout case: the kept units are scaled by several factors")
    if np.isclose(scale[0], 1.0):
        return np.array(NOT_SCALED)
    return np.array(CORRECT if np.isclose(scale[0], 1 / (1 - p)) else KEEP_PROBABILITY)


def _dropout_train_mean_only(h, p, train_out, eval_out):
    # "the expectation is kept": the mean over the calls close to h means the training side is right
    d = _diagnosis(h, p, train_out, eval_out)
    if d in (ACTIVE_AT_EVAL, SCALED_AT_EVAL):
        return d
    return CORRECT if np.allclose(train_out.mean(axis=0), h, rtol=0.15) else NOT_SCALED


def _dropout_one_eval_call(h, p, train_out, eval_out):
    return _diagnosis(h, p, train_out, eval_out, eval_rows=1)


def _dropout_fraction_only(h, p, train_out, eval_out):
    d = _diagnosis(h, p, train_out, eval_out, use_scale=False)
    return d


def _dropout_paper_convention(h, p, train_out, eval_out):
    # p read as the paper's retention probability: kept units scaled by 1 / p
    return _diagnosis(h, p, train_out, eval_out, kept_ratio=lambda p: 1 / p, use_fraction=False)


def _dropout_always(label):
    def guess(h, p, train_out, eval_out):
        return label
    guess.__name__ = "_dropout_always_" + label.split()[0]
    return guess


_INVERTED_BOOK = "ch09-inverted"
UNDERSTANDING_PARTS = [
    Part(id="dropout_moments", points=2, function="dropout_moments", outputs=("mean", "var"),
         cases=moments_cases, reference=moments_reference, call=moments_call,
         mutants={
             "W not squared": Mutant(_moments_w_not_squared, book=_INVERTED_BOOK, feedback=(
                 "z_k = sum_j h~_j W_jk is a sum of independent terms, and Var(c X) = c^2 Var(X): each term "
                 "contributes W_jk^2 Var(h~_j) = W_jk^2 p / (1 - p) h_j^2.")),
             "p (1 - p) h^2, the variance without the rescaling": Mutant(_moments_not_inverted, book=_INVERTED_BOOK,
                                                                       feedback=(
                 "Inverted dropout multiplies the kept units by 1 / (1 - p), which multiplies the variance by "
                 "1 / (1 - p)^2: Var(h~_j) = p / (1 - p) h_j^2.")),
             "one mask for all inputs": Mutant(_moments_one_mask, book=_INVERTED_BOOK, feedback=(
                 "Each unit has its own independent mask, so the variances of the terms add up; squaring the whole "
                 "sum would assume all units are dropped together.")),
             "the mean shrunk by 1 - p": Mutant(_moments_mean_shrunk, book=_INVERTED_BOOK, feedback=(
                 "Inverted dropout keeps the expectation: E[h~_j] = (1 - p) h_j / (1 - p) = h_j, so the mean of the "
                 "pre-activation is the full network's, h W + b.")),
             "the bias counted in the variance": Mutant(_moments_bias_in_variance, book=_INVERTED_BOOK, feedback=(
                 "The bias is not dropped: it shifts the mean and adds nothing to the variance.")),
             "no variance": Mutant(_moments_no_noise, book=_INVERTED_BOOK, feedback=(
                 "Dropout keeps the mean but adds multiplicative noise, of variance p / (1 - p) h_j^2 per unit.")),
         }),
    Part(id="diagnose_dropout", points=2, function="diagnose_dropout", outputs=("diagnosis",),
         cases=dropout_cases, reference=dropout_reference, call=dropout_call,
         mutants={
             "the training mean only": Mutant(_dropout_train_mean_only, book=_INVERTED_BOOK, feedback=(
                 "Using p as the keep probability with the matching 1 / p scaling also keeps the mean: look at "
                 "how many units are dropped and at the factor on the kept ones.")),
             "one evaluation call": Mutant(_dropout_one_eval_call, book=_INVERTED_BOOK, feedback=(
                 "In evaluation mode dropout is the identity, and it must give the same output every time: compare "
                 "all the evaluation calls, not one.")),
             "the dropped fraction only": Mutant(_dropout_fraction_only, book=_INVERTED_BOOK, feedback=(
                 "Dropping the right fraction is not enough: inverted dropout also multiplies the kept units by "
                 "1 / (1 - p), or the next layer sees inputs (1 - p) times smaller than at test time.")),
             "the paper's convention": Mutant(_dropout_paper_convention, book=_INVERTED_BOOK, feedback=(
                 "In this book (and torch) p is the probability of dropping a unit; the paper's p is the "
                 "retention probability. Kept units are scaled by 1 / (1 - p).")),
             "always correct": Mutant(_dropout_always(CORRECT), book=_INVERTED_BOOK, feedback=(
                 "Check both modes: the dropped fraction and the scale of the kept units in training, and the "
                 "identity in evaluation.")),
             "always not scaled": Mutant(_dropout_always(NOT_SCALED), book=_INVERTED_BOOK, feedback=(
                 "Check both modes: the dropped fraction and the scale of the kept units in training, and the "
                 "identity in evaluation.")),
         }),
]


PARTS = [
    Part(id="dropout_forward", points=2, function="dropout_forward", outputs=("out", "mask"),
         cases=forward_cases, reference=forward_reference, call=forward_call, forbid=FORBID,
         mutants={"p used as the keep probability": Mutant(_fwd_keep_probability, diagnosis="scaled"),
                  "no 1/(1 - p) scaling": Mutant(_fwd_no_scaling, diagnosis="scaled"),
                  "1/(1 - p) scaling in evaluation mode": Mutant(_fwd_scales_in_eval, diagnosis="scaled"),
                  "original dropout (scale by 1 - p at test time)": Mutant(_fwd_original_dropout, diagnosis="scaled"),
                  "training flag ignored (dropout in evaluation mode)": Mutant(_fwd_training_ignored),
                  "mask inverted (True = drop)": Mutant(_fwd_mask_inverted),
                  "mask not stored in the cache": Mutant(_fwd_mask_not_cached),
                  "x modified in place": Mutant(_fwd_in_place, diagnosis="mutated_input")}),
    Part(id="dropout_forward_rng", points=1, function="dropout_forward", outputs=("out", "mask"),
         cases=sampling_cases, reference=sampling_reference, call=sampling_call, forbid=FORBID,
         mutants={"p used as the keep probability": Mutant(_rng_keep_probability),
                  "numpy's global random state": Mutant(_rng_global_state),
                  "one mask shared by all examples": Mutant(_rng_one_mask_per_feature),
                  "a fresh unseeded Generator": Mutant(_rng_fresh_generator),
                  "one decision per example": Mutant(_rng_one_mask_per_example)}),
    Part(id="dropout_backward", points=2, function="dropout_backward", outputs=("dx",),
         cases=backward_cases, reference=backward_reference, call=backward_call, forbid=FORBID,
         mutants={"no 1/(1 - p) scaling": Mutant(_bwd_no_scaling, diagnosis="scaled"),
                  "a new mask drawn in the backward pass": Mutant(_bwd_new_mask),
                  "1/(1 - p) scaling in evaluation mode": Mutant(_bwd_scales_in_eval, diagnosis="scaled"),
                  "p used as the keep probability": Mutant(_bwd_keep_probability, diagnosis="scaled"),
                  "mask ignored": Mutant(_bwd_mask_ignored),
                  "dout modified in place": Mutant(_bwd_in_place, diagnosis="mutated_input")}),
    Part(id="max_norm", points=2, function="max_norm", outputs=("W_new",),
         cases=max_norm_cases, reference=max_norm_reference, call=max_norm_call,
         forbid=("mlp_lib.regularization.max_norm",),
         mutants={"rows instead of columns": Mutant(_mn_rows, diagnosis="wrong_axis"),
                  "every column rescaled to norm c": Mutant(_mn_every_column),
                  "squared norm compared with c": Mutant(_mn_squared_norm),
                  "one norm for the whole matrix": Mutant(_mn_whole_matrix),
                  "entries clipped to [-c, c]": Mutant(_mn_clip_entries),
                  "long columns scaled to norm 1": Mutant(_mn_unit_norm, diagnosis="scaled"),
                  "W modified in place": Mutant(_mn_in_place, diagnosis="mutated_input")}),
    Part(id="mlp_forward", points=2, function="mlp_forward", outputs=("scores",),
         cases=mlp_cases, reference=mlp_reference, call=mlp_call, uses=("dropout_forward",), forbid=FORBID,
         mutants={"dropout applied to the output scores": Mutant(_mlp_output_dropout),
                  "no 1/(1 - p) scaling": Mutant(_mlp_no_scaling),
                  "1/(1 - p) scaling in evaluation mode": Mutant(_mlp_scales_in_eval),
                  "p_input and p_hidden swapped": Mutant(_mlp_swapped_rates),
                  "no dropout on the input": Mutant(_mlp_no_input_dropout),
                  "ReLU applied to the scores": Mutant(_mlp_relu_on_scores),
                  "x modified in place": Mutant(_mlp_in_place, diagnosis="mutated_input")}),
    Part(id="mlp_forward_mean", points=1, function="mlp_forward", outputs=("mean_scores", "fresh_masks"),
         cases=mean_cases, reference=mean_reference, call=mean_call, uses=("dropout_forward",), forbid=FORBID,
         rtol=STAT_RTOL, atol=0.0,
         mutants={"the same masks on every call": Mutant(_mean_same_masks),
                  "no 1/(1 - p) scaling": Mutant(_mlp_no_scaling),
                  "1/(1 - p) applied twice": Mutant(_mean_scaled_twice),
                  "keep probability p, scaling 1/(1 - p)": Mutant(_mean_keep_probability)}),
    *UNDERSTANDING_PARTS,
]
