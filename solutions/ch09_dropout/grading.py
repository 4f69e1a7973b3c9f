"""Grading spec of Chapter 9's exercise: inverted dropout (forward, sampling, backward), the max-norm
constraint, and the forward pass of an MLP with dropout in training and evaluation mode.

Every Part draws its cases from the grader's rng and is judged against a torch reference computed
in float64. Conventions, as stated in the exercise and in the book (``mlp_lib.regularization``
computes the same values):

* ``p`` is the probability of *dropping* a unit (torch's convention). A keep-mask is a boolean
  array of the shape of ``x``, True where the unit is kept. Inverted dropout: in training mode
  ``out = x * keep / (1 - p)``, which is what torch's ``F.dropout`` computes with its own mask;
  in evaluation mode ``out = x`` as a new array (returning ``x`` itself fails). ``p`` is in
  ``[0, 1)``;
* a mask is drawn as ``keep = rng.random(x.shape) >= p``: one call, on the Generator passed as
  ``rng``. The sampling parts (2 and 6) call the student's function ``adapters.CALLS`` times in a
  row on one Generator made from the case's seed, and their references draw the same stream with
  numpy's Generator (torch has no way to draw numpy's stream): every call is checked exactly, so
  no output that depends on the call count (rather than on the masks) can pass, and consecutive
  calls must use consecutive masks;
* ``dropout_forward`` returns ``(out, cache)`` with ``cache = (keep, p)`` in training mode and
  ``(None, p)`` in evaluation mode; ``dropout_backward`` is graded on caches of exactly that form,
  built by the adapter from the case's inputs, so that a mistake in the forward pass never costs
  the points of the backward pass; the reference gradient is torch's autograd through
  ``x * keep / (1 - p)``; in evaluation mode ``dx`` is a new array;
* ``max_norm(W, c)``: ``W`` has mlp_lib's shape ``(D_in, D_out)``, column ``j`` holds the incoming
  weights of unit ``j``; columns whose L2 norm exceeds ``c`` (strictly) are scaled by
  ``c / (norm + 1e-7)``, the others are unchanged, in a new array. Reference:
  ``torch.renorm(W.T, p=2, dim=0, maxnorm=c).T`` (torch stores the weight transposed, one row per
  unit). One case holds a column of norm exactly ``c`` (exact in every formulation);
* ``mlp_forward(x, params, *, p_input, p_hidden, training, masks=None, rng=None)``: ReLU hidden
  layers, ``params = [(W1, b1), ..., (WL, bL)]``; dropout on the input (``p_input``) and on the
  output of every hidden layer (``p_hidden``), never on the scores; ``masks[0]`` is the input's
  keep-mask and ``masks[l]`` the mask of hidden layer ``l``. Graded with three layers against the
  same computation written with ``torch.nn.functional``: given the masks, in evaluation mode, and
  drawing the masks from ``rng`` (input first, then each hidden layer; ``p_input > 0`` there so
  that every site draws). The statement asks ``mlp_forward`` to call the student's
  ``dropout_forward`` (``uses``): a mistake there may cost these parts too, and the feedback says so.

Inputs are read-only in every part (an in-place change fails in the call). The adapters live in
``adapters.py`` (sent to the student's process). Every mistake carries the feedback a student who
made it reads, and the book section that explains the right way; tests/test_assignment_ch09.py
checks that each loses the points of its own part (parts that call the mutated function through
``uses`` may lose theirs too) and is named by its feedback.
"""
import numpy as np
import torch
import torch.nn.functional as F

import adapters
from autograder.spec import Mutant, Part

FORBID = ("mlp_lib.modules.Dropout", "mlp_lib.regularization.dropout_forward",
          "mlp_lib.regularization.dropout_backward")     # mlp_lib's dropout, in any part
PUBLIC_SEED = 20140614           # JMLR 15(56), June 2014: Srivastava et al.'s dropout paper
# the locked cells the answers may rely on: the imports, and the answers' vocabulary of Parts 7 and on
SETUP = ("setup", "understanding-setup")


def _shape(rng, kind=None):
    """A random shape: 2-D with N != D most of the time, sometimes 1-D or 3-D (dropout is elementwise);
    ``kind`` 0 (1-D), 1 (3-D) or 2 (2-D) fixes the number of dimensions."""
    kind = int(rng.integers(0, 4)) if kind is None else kind
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
FORWARD_MODES = ("training", "training", "training", "training", "inference", "inference")


def forward_cases(rng):
    cases = []
    for p, mode in zip(FORWARD_PS, FORWARD_MODES):
        shape = _shape(rng) if mode == "training" else (int(rng.integers(3, 9)), int(rng.integers(9, 15)))
        cases.append({"x": 3.0 * rng.standard_normal(shape), "p": np.float64(p), "mode": mode,
                      "mask": _keep_mask(rng, shape, p)})
    return cases


def forward_reference(x, p, mode, mask):
    if mode == "training":
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


def _fwd_returns_x_in_eval(x, *, p, training, rng=None, mask=None):
    if not training:
        return x, (None, p)
    keep = rng.random(x.shape) >= p if mask is None else mask
    return x * keep / (1.0 - p), (keep, p)


def _fwd_in_place(x, *, p, training, rng=None, mask=None):
    if not training:
        return x.copy(), (None, p)
    keep = rng.random(x.shape) >= p if mask is None else mask
    x *= keep
    x /= 1.0 - p
    return x, (keep, p)


# -- dropout_forward with rng: the mask drawn as rng.random(x.shape) >= p -----------------------------
def sampling_cases(rng):
    """Batches of 2-D and 3-D shapes (where a mask shared by the examples, or one decision per example,
    shows) and a 1-D one; the adapter draws CALLS masks in a row from each case's seed."""
    cases = []
    for p, kind in ((0.5, 2), (0.3, 1), (0.75, 2), (0.1, 0)):
        shape = _shape(rng, kind)
        cases.append({"x": 2.0 * rng.standard_normal(shape), "p": np.float64(p),
                      "seed": np.int64(rng.integers(0, 2**31))})
    return cases


def sampling_reference(x, p, seed):
    # numpy's Generator from the same seed, one draw per call: the stream torch cannot draw
    gen = np.random.default_rng(int(seed))
    keep = torch.tensor(np.stack([gen.random(tuple(x.shape)) >= float(p) for _ in range(adapters.CALLS)]),
                        device=x.device)
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
BACKWARD_MODES = ("training", "training", "training", "training", "inference")


def backward_cases(rng):
    cases = []
    for p, mode in zip(BACKWARD_PS, BACKWARD_MODES):
        shape = _shape(rng)
        cases.append({"dout": rng.standard_normal(shape), "mask": _keep_mask(rng, shape, p), "p": np.float64(p),
                      "mode": mode})
    return cases


def backward_reference(dout, mask, p, mode):
    x = torch.zeros_like(dout).requires_grad_(True)
    out = x * mask / (1.0 - p) if mode == "training" else x * 1.0
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


def _bwd_returns_dout_in_eval(dout, cache):
    keep, p = cache
    return dout if keep is None else dout * keep / (1.0 - p)


def _bwd_in_place(dout, cache):
    keep, p = cache
    if keep is None:
        return dout.copy()
    dout *= keep
    dout /= 1.0 - p
    return dout


# -- max_norm -----------------------------------------------------------------------------------------
def max_norm_cases(rng):
    """Columns on both sides of the bound, a dead unit, nothing to do (a new array all the same), every
    column too long, and a column whose norm is exactly c (3a, 4a with a = 2**-9: exact in every
    formulation), which stays as it is: only norms strictly above c are scaled."""
    cases = []
    for kind in range(6):
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
        elif kind == 5:
            a = 2.0 ** -9                                            # small: c / (c + 1e-7) is far from 1
            c = 5.0 * a
            W *= c / float(np.median(norms))                         # the other columns around the bound
            j, (r1, r2) = int(rng.integers(d_out)), (int(v) for v in rng.choice(d_in, size=2, replace=False))
            W[:, j] = 0.0
            W[r1, j], W[r2, j] = 3.0 * a, 4.0 * a                     # norm exactly 5a = c
        else:
            c = float(np.median(norms)) * rng.uniform(0.8, 1.2)
        cases.append({"W": W, "c": np.float64(c)})
    return cases


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


def _mn_at_least_c(W, c):
    norms = np.linalg.norm(W, axis=0, keepdims=True)
    return W * np.where(norms >= c, c / (norms + 1e-7), 1.0)


def _mn_returns_W(W, c):
    norms = np.linalg.norm(W, axis=0, keepdims=True)
    if (norms <= c).all():
        return W
    return W * np.where(norms > c, c / (norms + 1e-7), 1.0)


def _mn_in_place(W, c):
    norms = np.linalg.norm(W, axis=0, keepdims=True)
    W *= np.where(norms > c, c / (norms + 1e-7), 1.0)
    return W


# -- mlp_forward (given masks, and in evaluation mode) ------------------------------------------------
MLP_SETTINGS = ((0.2, 0.5, "training"), (0.0, 0.5, "training"), (0.1, 0.3, "training"), (0.25, 0.6, "training"),
                (0.2, 0.5, "inference"), (0.1, 0.4, "inference"))


def _mlp_params(rng, sizes):
    params = {}
    for l, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{l}"] = rng.standard_normal((d_in, d_out)) / np.sqrt(d_in)
        params[f"b{l}"] = 0.1 * rng.standard_normal(d_out)
    return params


def _sizes(rng):
    n = int(rng.integers(4, 9))
    d, h1, h2, c = (int(v) for v in rng.choice(np.arange(3, 17), size=4, replace=False))
    return n, [d, h1, h2, c]


def mlp_cases(rng):
    cases = []
    for p_in, p_h, mode in MLP_SETTINGS:
        n, sizes = _sizes(rng)
        case = {"x": rng.standard_normal((n, sizes[0]))}
        case.update(_mlp_params(rng, sizes))
        case["m0"] = _keep_mask(rng, (n, sizes[0]), p_in) if p_in > 0 else np.ones((n, sizes[0]), dtype=bool)
        case["m1"] = _keep_mask(rng, (n, sizes[1]), p_h)
        case["m2"] = _keep_mask(rng, (n, sizes[2]), p_h)
        case.update({"p_input": np.float64(p_in), "p_hidden": np.float64(p_h), "mode": mode})
        cases.append(case)
    return cases


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


def mlp_reference(x, W1, b1, W2, b2, W3, b3, m0, m1, m2, p_input, p_hidden, mode):
    masks = [m0, m1, m2] if mode == "training" else None
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


# -- mlp_forward drawing its masks from rng: consecutive calls, each exact -----------------------------
def rng_mlp_cases(rng):
    """Random networks and rates (p_input > 0: every site draws its mask), N and every width distinct."""
    cases = []
    for p_in, p_h in ((0.2, 0.5), (0.1, 0.3), (0.35, 0.6)):
        n, sizes = _sizes(rng)
        case = {"x": rng.standard_normal((n, sizes[0]))}
        case.update(_mlp_params(rng, sizes))
        case.update({"p_input": np.float64(p_in), "p_hidden": np.float64(p_h),
                     "seed": np.int64(rng.integers(0, 2**31))})
        cases.append(case)
    return cases


def rng_mlp_reference(x, W1, b1, W2, b2, W3, b3, p_input, p_hidden, seed):
    # the masks of adapters.CALLS consecutive calls, drawn as the statement says (rng.random(h.shape) >= p,
    # input first) from numpy's Generator with the case's seed: the stream torch cannot draw
    gen = np.random.default_rng(int(seed))
    n, widths, rates = x.shape[0], (x.shape[1], W1.shape[1], W2.shape[1]), (p_input, p_hidden, p_hidden)
    runs = []
    for _ in range(adapters.CALLS):
        masks = [torch.tensor(gen.random((n, w)) >= float(rate), device=x.device) for w, rate in zip(widths, rates)]
        runs.append(_torch_mlp(x, [(W1, b1), (W2, b2), (W3, b3)], masks, p_input, p_hidden))
    return torch.stack(runs)


def _rng_mlp_same_masks(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    # a new Generator with a fixed seed on every call: the same masks every time
    return _mlp_sites(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks,
                      rng=np.random.default_rng(0), drop=_inverted)


def _rng_mlp_scaled_twice(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    return _mlp_sites(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks, rng=rng,
                      drop=lambda h, p, keep: h * keep / (1.0 - p) ** 2)


def _rng_mlp_keep_probability(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    # keeps a unit with probability p but scales by 1 / (1 - p)
    return _mlp_sites(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks, rng=rng,
                      drop=_inverted, draw=lambda gen, shape, p: gen.random(shape) < p)


def _rng_mlp_global_state(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    return _mlp_sites(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks, rng=rng,
                      drop=_inverted, draw=lambda gen, shape, p: np.random.random(shape) >= p)


def _rng_mlp_hidden_masks_first(x, params, *, p_input, p_hidden, training, masks=None, rng=None):
    # the masks drawn at the start, hidden layers first, the input's last
    if training and masks is None:
        n, (W1, _), (W2, _) = x.shape[0], params[0], params[1]
        m1, m2 = rng.random((n, W1.shape[1])) >= p_hidden, rng.random((n, W2.shape[1])) >= p_hidden
        masks = [rng.random(x.shape) >= p_input, m1, m2]
    return _mlp_sites(x, params, p_input=p_input, p_hidden=p_hidden, training=training, masks=masks, rng=rng,
                      drop=_inverted)


UNSCALED_FEEDBACK = ("in training mode the kept units are not divided by 1 - p: inverted dropout computes x * keep / (1 - p), "
              "which keeps the expectation of every output equal to its input, so that evaluation mode is the "
              "identity.")
MASK_INVERTED = ("the mask is used as a drop-mask; the keep-mask is True where a unit is kept: out = x * keep / (1 - p), "
                 "and the cache holds that keep-mask.")
MASK_NOT_CACHED = ("the cache does not hold the mask of training mode: cache = (keep, p), the mask that the backward "
                   "pass needs.")
X_IN_PLACE = "x is changed in place (x *= keep): the grader hands x and the mask over read-only. Return a new array."
OUTPUT_DROPPED = ("the scores are dropped out too; dropout goes on the input and on the hidden layers' outputs, never "
                  "on the scores.")
RATES_SWAPPED = ("the input is dropped with p_hidden and the hidden layers with p_input; p_input is the input's drop "
                 "probability, p_hidden the hidden layers'.")
INPUT_NOT_DROPPED = ("the input x is not dropped out; dropout applies to the input of every layer, x (with p_input) "
                     "included.")
RELU_ON_SCORES = "a ReLU is applied to the output scores; the last layer is linear."
MLP_NOT_SCALED = ("in training mode the kept activations are not divided by 1 - p: inverted dropout computes "
                  "h * keep / (1 - p) at every dropout site.")


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
         cases=forward_cases, reference=forward_reference, call=adapters.dropout_given_mask, new_arrays=True,
         forbid=FORBID,
         mutants={
             "p used as the keep probability": Mutant(
                 _fwd_keep_probability, book="ch09-inverted",
                 feedback="kept units are divided by p; p is the probability of dropping a unit (torch's "
                          "convention), so they are divided by the keep probability 1 - p."),
             "no 1/(1 - p) scaling": Mutant(_fwd_no_scaling, book="ch09-inverted", feedback=UNSCALED_FEEDBACK),
             "1/(1 - p) scaling in evaluation mode": Mutant(
                 _fwd_scales_in_eval, book="ch09-inverted",
                 feedback="in evaluation mode x is divided by 1 - p; inverted dropout scales in training mode only, "
                          "and evaluation mode returns x unchanged (a copy)."),
             "training flag ignored (dropout in evaluation mode)": Mutant(
                 _fwd_training_ignored, book="ch09-inverted",
                 feedback="units are dropped in evaluation mode too; with training=False nothing is dropped and "
                          "nothing is scaled (no mask, no rng)."),
             "mask inverted (True = drop)": Mutant(_fwd_mask_inverted, book="ch09-thinned", feedback=MASK_INVERTED),
             "mask not stored in the cache": Mutant(_fwd_mask_not_cached, book="ch09-inverted",
                                                    feedback=MASK_NOT_CACHED),
             "x returned itself in evaluation mode": Mutant(
                 _fwd_returns_x_in_eval, diagnosis="returned_input", book="ch09-inverted",
                 feedback="in evaluation mode x itself is returned; the statement asks for a copy (x.copy()), so that "
                          "what the caller does with out never changes x."),
             "x modified in place": Mutant(_fwd_in_place, diagnosis="mutated_input", book="ch09-inverted",
                                           feedback=X_IN_PLACE),
         }),
    Part(id="dropout_forward_rng", points=1, function="dropout_forward", outputs=("out", "mask"),
         cases=sampling_cases, reference=sampling_reference, call=adapters.dropout_from_rng, forbid=FORBID,
         mutants={
             "p used as the keep probability": Mutant(
                 _rng_keep_probability, book="ch09-thinned",
                 feedback="the mask keeps a unit where rng.random(...) < p; p is the drop probability: "
                          "keep = rng.random(x.shape) >= p (and kept units are divided by 1 - p)."),
             "numpy's global random state": Mutant(
                 _rng_global_state, book="ch09-thinned",
                 feedback="the mask is drawn from numpy's global random state (np.random.random, np.random.rand); "
                          "draw it from the Generator passed as rng: keep = rng.random(x.shape) >= p."),
             "one mask shared by all examples": Mutant(
                 _rng_one_mask_per_feature, book="ch09-thinned",
                 feedback="one mask for the last axis is drawn and shared by every example; the mask has the shape "
                          "of the whole batch x: every unit of every example is kept or dropped on its own."),
             "a fresh unseeded Generator": Mutant(
                 _rng_fresh_generator, book="ch09-thinned",
                 feedback="the mask comes from a new Generator (np.random.default_rng()) instead of the rng passed "
                          "in; draw from rng, so that one seed gives one sequence of masks."),
             "one decision per example": Mutant(
                 _rng_one_mask_per_example, book="ch09-thinned",
                 feedback="one keep/drop decision is drawn per example, for all its units; every unit of every "
                          "example is kept or dropped on its own: rng.random(x.shape) >= p."),
             # the training-mode mistakes of Part 1 show here too
             "no 1/(1 - p) scaling": Mutant(_fwd_no_scaling, book="ch09-inverted", feedback=UNSCALED_FEEDBACK),
             "mask inverted (True = drop)": Mutant(_fwd_mask_inverted, book="ch09-thinned", feedback=MASK_INVERTED),
             "mask not stored in the cache": Mutant(_fwd_mask_not_cached, book="ch09-inverted",
                                                    feedback=MASK_NOT_CACHED),
             "x modified in place": Mutant(_fwd_in_place, diagnosis="mutated_input", book="ch09-inverted",
                                           feedback=X_IN_PLACE),
         }),
    Part(id="dropout_backward", points=2, function="dropout_backward", outputs=("dx",),
         cases=backward_cases, reference=backward_reference, call=adapters.dropout_backward, new_arrays=True,
         forbid=FORBID,
         mutants={
             "no 1/(1 - p) scaling": Mutant(
                 _bwd_no_scaling, book="ch09-inverted",
                 feedback="dx = dout * keep misses the 1 / (1 - p) of the forward pass: dx = dout * keep / (1 - p)."),
             "a new mask drawn in the backward pass": Mutant(
                 _bwd_new_mask, book="ch09-inverted",
                 feedback="dx uses a new random mask; the gradient flows through the units the forward pass kept: "
                          "use the mask of the cache."),
             "1/(1 - p) scaling in evaluation mode": Mutant(
                 _bwd_scales_in_eval, diagnosis="scaled", book="ch09-inverted",
                 feedback="in evaluation mode dx is divided by 1 - p; the layer is the identity there, so dx is a "
                          "copy of dout."),
             "p used as the keep probability": Mutant(
                 _bwd_keep_probability, book="ch09-inverted",
                 feedback="dx is divided by p; the forward pass divides by 1 - p (p is the drop probability), and so "
                          "does its gradient."),
             "mask ignored": Mutant(
                 _bwd_mask_ignored, book="ch09-inverted",
                 feedback="dx is dout / (1 - p) everywhere; the dropped units had no effect on the output, so their "
                          "gradient is 0: multiply by the mask."),
             "dout returned itself in evaluation mode": Mutant(
                 _bwd_returns_dout_in_eval, diagnosis="returned_input", book="ch09-inverted",
                 feedback="in evaluation mode dout itself is returned; the statement asks for a new array "
                          "(dout.copy())."),
             "dout modified in place": Mutant(
                 _bwd_in_place, diagnosis="mutated_input", book="ch09-inverted",
                 feedback="dout is changed in place: the grader hands dout and the cache over read-only. Return a "
                          "new array."),
         }),
    Part(id="max_norm", points=2, function="max_norm", outputs=("W_new",),
         cases=max_norm_cases, reference=max_norm_reference, new_arrays=True,
         forbid=("mlp_lib.regularization.max_norm",),
         mutants={
             "rows instead of columns": Mutant(
                 _mn_rows, diagnosis="wrong_axis", book="ch09-recipe",
                 feedback="the norms are those of the rows; the incoming weights of unit j are the column W[:, j] "
                          "(W has shape (D_in, D_out)): take the norms over axis 0."),
             "every column rescaled to norm c": Mutant(
                 _mn_every_column, book="ch09-recipe",
                 feedback="every column is rescaled to norm c; only the columns whose norm exceeds c are scaled, the "
                          "others stay as they are."),
             "squared norm compared with c": Mutant(
                 _mn_squared_norm, book="ch09-recipe",
                 feedback="the squared norm is compared with c (and divides it); the bound is on the L2 norm "
                          "itself, the square root of the sum of squares."),
             "one norm for the whole matrix": Mutant(
                 _mn_whole_matrix, book="ch09-recipe",
                 feedback="one norm is computed for the whole matrix; the bound is on each unit's incoming weights, "
                          "one norm per column."),
             "entries clipped to [-c, c]": Mutant(
                 _mn_clip_entries, book="ch09-recipe",
                 feedback="the entries are clipped to [-c, c]; max-norm rescales a whole column whose L2 norm exceeds "
                          "c, which keeps its direction."),
             "long columns scaled to norm 1": Mutant(
                 _mn_unit_norm, book="ch09-recipe",
                 feedback="the long columns are scaled to norm 1 (divided by their norm); they are scaled to norm c: "
                          "times c / (norm + 1e-7)."),
             "columns of norm exactly c scaled too": Mutant(
                 _mn_at_least_c, book="ch09-recipe",
                 feedback="a column whose norm equals c is scaled too (norm >= c); only norms strictly above c are "
                          "scaled, as torch.renorm does, so a column of norm exactly c stays as it is."),
             "W returned itself when no column is too long": Mutant(
                 _mn_returns_W, diagnosis="returned_input", book="ch09-recipe",
                 feedback="when no column is too long, W itself is returned; the statement asks for a new array in "
                          "every case (W.copy() when there is nothing to scale)."),
             "W modified in place": Mutant(
                 _mn_in_place, diagnosis="mutated_input", book="ch09-recipe",
                 feedback="W is changed in place (W *= ...): the grader hands W over read-only. Return a new array."),
         }),
    Part(id="mlp_forward", points=2, function="mlp_forward", outputs=("scores",),
         cases=mlp_cases, reference=mlp_reference, call=adapters.mlp_given_masks, uses=("dropout_forward",),
         forbid=FORBID,
         mutants={
             "dropout applied to the output scores": Mutant(_mlp_output_dropout, book="ch09-where",
                                                            feedback=OUTPUT_DROPPED),
             "no 1/(1 - p) scaling": Mutant(_mlp_no_scaling, book="ch09-inverted", feedback=MLP_NOT_SCALED),
             "1/(1 - p) scaling in evaluation mode": Mutant(
                 _mlp_scales_in_eval, book="ch09-inverted",
                 feedback="in evaluation mode the activations are divided by 1 - p; evaluation mode is the "
                          "deterministic network, with no dropout and no scaling."),
             "p_input and p_hidden swapped": Mutant(_mlp_swapped_rates, book="ch09-where", feedback=RATES_SWAPPED),
             "no dropout on the input": Mutant(_mlp_no_input_dropout, book="ch09-where", feedback=INPUT_NOT_DROPPED),
             "ReLU applied to the scores": Mutant(_mlp_relu_on_scores, book="ch09-where", feedback=RELU_ON_SCORES),
             "x modified in place": Mutant(
                 _mlp_in_place, diagnosis="mutated_input", book="ch09-where",
                 feedback="x is changed in place: the grader hands x, the parameters and the masks over read-only. "
                          "Compute into new arrays."),
         }),
    Part(id="mlp_forward_rng", points=1, function="mlp_forward", outputs=("scores",),
         cases=rng_mlp_cases, reference=rng_mlp_reference, call=adapters.mlp_from_rng, uses=("dropout_forward",),
         forbid=FORBID,
         mutants={
             "the same masks on every call": Mutant(
                 _rng_mlp_same_masks, book="ch09-ensemble",
                 feedback="every call draws the same masks (a Generator with a fixed seed made inside the "
                          "function?); draw them from the rng passed in, which moves on with every draw, so that "
                          "each call runs a new thinned network."),
             "no 1/(1 - p) scaling": Mutant(_mlp_no_scaling, book="ch09-inverted", feedback=MLP_NOT_SCALED),
             "1/(1 - p) applied twice": Mutant(
                 _rng_mlp_scaled_twice, book="ch09-inverted",
                 feedback="the kept activations are divided by 1 - p twice; once is what keeps the expectation: "
                          "h * keep / (1 - p)."),
             "keep probability p, scaling 1/(1 - p)": Mutant(
                 _rng_mlp_keep_probability, book="ch09-thinned",
                 feedback="the masks keep a unit where rng.random(...) < p; p is the drop probability: "
                          "keep = rng.random(h.shape) >= p."),
             "numpy's global random state": Mutant(
                 _rng_mlp_global_state, book="ch09-thinned",
                 feedback="the masks are drawn from numpy's global random state (np.random.random, np.random.rand); "
                          "draw them from the Generator passed as rng."),
             "masks drawn hidden layers first": Mutant(
                 _rng_mlp_hidden_masks_first, book="ch09-where",
                 feedback="the masks are not drawn in the order of the layers (the hidden layers' before the "
                          "input's); draw each mask just before its dropout site, the input's first."),
             # the mistakes of Part 5 show here too
             "dropout applied to the output scores": Mutant(_mlp_output_dropout, book="ch09-where",
                                                            feedback=OUTPUT_DROPPED),
             "p_input and p_hidden swapped": Mutant(_mlp_swapped_rates, book="ch09-where", feedback=RATES_SWAPPED),
             "no dropout on the input": Mutant(_mlp_no_input_dropout, book="ch09-where", feedback=INPUT_NOT_DROPPED),
             "ReLU applied to the scores": Mutant(_mlp_relu_on_scores, book="ch09-where", feedback=RELU_ON_SCORES),
         }),
    *UNDERSTANDING_PARTS,
]
