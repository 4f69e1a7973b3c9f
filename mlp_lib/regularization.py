"""Regularization: dropout, weight penalties, gradient clipping, max-norm.

Chapter 8 introduces the penalties (L2/weight decay, L1, elastic net) and
max-norm constraints, Chapter 9 dropout; gradient clipping belongs to the
optimization story of Chapter 4. Every function here is pure: it returns new
arrays and never modifies its arguments.
"""
from __future__ import annotations

import math

import numpy as np

from mlp_lib._checks import (array_list, as_generator, expect_shape, flag, float_array, positive, probability,
                             real_number)

__all__ = [
    "dropout_forward", "dropout_backward",
    "l2_penalty", "l1_penalty", "elastic_net_penalty",
    "clip_grad_norm", "clip_grad_value",
    "max_norm",
]


# ---------------------------------------------------------------------------
# Dropout (Chapter 9)
# ---------------------------------------------------------------------------

def _keep_mask(name: str, mask, shape: tuple) -> np.ndarray:
    """An explicit keep-mask: boolean, or numbers that are all 0 or 1."""
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        if mask.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a boolean or 0/1 array, got dtype {mask.dtype}")
        if not np.isin(mask, (0, 1)).all():
            raise ValueError(f"{name} must hold only 0 and 1 (1 = keep the unit)")
        mask = mask.astype(bool)
    expect_shape(name, mask, shape)
    return mask


def dropout_forward(x, *, p, training, rng=None, mask=None):
    """Inverted dropout.

    Shapes: x (N, D) (any shape works) -> out (same shape), cache. Chapter 9.

    ``p`` is the probability of *dropping* a unit (torch's convention). In
    training mode each unit is kept with probability ``1 - p`` and kept units
    are scaled by ``1 / (1 - p)``, so the expected output equals ``x`` and eval
    mode needs no rescaling: eval mode is the identity (the output is a copy).
    ``p = 1`` drops everything and returns zeros, as torch does.

    In training mode give either ``rng`` (a ``np.random.Generator`` or an int
    seed) to sample the mask, or ``mask`` (boolean or 0/1, x's shape, True/1 =
    keep) to use a fixed one, e.g. to reproduce another framework's mask. Both
    are ignored in eval mode. The cache holds the boolean keep-mask
    (``cache["mask"]``; None in eval mode).
    """
    x = float_array("x", x)
    p = probability("p", p, allow_one=True)
    training = flag("training", training)
    if not training:
        return x.copy(), {"training": False, "mask": None, "scale": 1.0}

    if rng is None and mask is None:
        raise ValueError("dropout in training mode needs rng (a Generator or int seed) or an explicit mask")
    if rng is not None and mask is not None:
        raise ValueError("give either rng or mask, not both")
    if mask is None:
        # U >= p has probability exactly 1 - p: keep.
        keep = as_generator(rng).random(x.shape) >= p
    else:
        keep = _keep_mask("mask", mask, x.shape)
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    out = x * keep
    out *= scale  # in place on the fresh product: one (N, D) temporary, not two
    return out, {"training": True, "mask": keep, "scale": scale}


def dropout_backward(dout, cache):
    """Gradient of ``dropout_forward``: dout (shape of x) -> dx. Chapter 9.

    Dropped units get zero gradient, kept units ``dout / (1 - p)``; eval mode
    passes ``dout`` through (as a copy).
    """
    if not isinstance(cache, dict) or not {"training", "mask", "scale"} <= cache.keys():
        raise TypeError("cache must be the cache returned by dropout_forward")
    dout = float_array("dout", dout)
    if not cache["training"]:
        return dout.copy()
    expect_shape("dout", dout, cache["mask"].shape)
    dx = dout * cache["mask"]
    dx *= cache["scale"]
    return dx


# ---------------------------------------------------------------------------
# Weight penalties (Chapter 8)
# ---------------------------------------------------------------------------

def _sum_squares(w: np.ndarray) -> float:
    return float(np.sum(np.square(w, dtype=np.float64)))


def l2_penalty(weights, lam):
    """L2 penalty (weight decay) over a list of weight arrays.

    Shapes: weights [W_1, ..., W_L] (any shapes) -> value (float), grads [same shapes].
    Chapter 8.

    ``value = lam / 2 * sum_l ||W_l||^2`` and ``grad_l = lam * W_l``. Biases
    are usually not penalized: pass only the weight matrices.
    """
    weights = array_list("weights", weights)
    lam = positive("lam", lam, allow_zero=True)
    value = 0.5 * lam * sum(_sum_squares(w) for w in weights)
    return value, [lam * w for w in weights]


def l1_penalty(weights, lam):
    """L1 penalty over a list of weight arrays.

    Shapes: weights [W_1, ..., W_L] -> value (float), grads [same shapes]. Chapter 8.

    ``value = lam * sum_l ||W_l||_1``; the gradient is the subgradient
    ``lam * sign(W_l)``, which is 0 where a weight is exactly 0 (as torch's
    autograd of ``abs`` gives).
    """
    weights = array_list("weights", weights)
    lam = positive("lam", lam, allow_zero=True)
    value = lam * sum(float(np.sum(np.abs(w), dtype=np.float64)) for w in weights)
    return value, [lam * np.sign(w) for w in weights]


def elastic_net_penalty(weights, lam, l1_ratio):
    """Elastic-net penalty: a mix of L1 and L2.

    Shapes: weights [W_1, ..., W_L] -> value (float), grads [same shapes]. Chapter 8.

    scikit-learn's convention (``ElasticNet``'s ``alpha``/``l1_ratio``)::

        value = lam * (l1_ratio * ||W||_1 + (1 - l1_ratio) / 2 * ||W||^2)
        grad  = lam * (l1_ratio * sign(W) + (1 - l1_ratio) * W)

    summed over the list. ``l1_ratio = 1`` is ``l1_penalty(weights, lam)``,
    ``l1_ratio = 0`` is ``l2_penalty(weights, lam)``.
    """
    weights = array_list("weights", weights)
    lam = positive("lam", lam, allow_zero=True)
    l1_ratio = probability("l1_ratio", l1_ratio, allow_one=True)
    l1 = sum(float(np.sum(np.abs(w), dtype=np.float64)) for w in weights)
    l2 = sum(_sum_squares(w) for w in weights)
    value = lam * (l1_ratio * l1 + 0.5 * (1.0 - l1_ratio) * l2)
    grads = [lam * (l1_ratio * np.sign(w) + (1.0 - l1_ratio) * w) for w in weights]
    return value, grads


# ---------------------------------------------------------------------------
# Gradient clipping (Chapter 4)
# ---------------------------------------------------------------------------

def _norm_type(value) -> float:
    value = real_number("norm_type", value, allow_nonfinite=True)  # math.inf is the max norm
    if not value > 0:  # NaN included
        raise ValueError(f"norm_type must be > 0 or math.inf, got {value!r}")
    return value


def _vector_norm(w: np.ndarray, ord_: float) -> float:
    flat = np.abs(w.ravel()).astype(np.float64)
    if flat.size == 0:
        return 0.0
    if ord_ == math.inf:
        return float(flat.max())
    return float(np.linalg.norm(flat, ord=ord_))


def clip_grad_norm(grads, max_norm, *, norm_type=2.0):
    """Rescale a list of gradients so that their joint norm is at most ``max_norm``.

    Shapes: grads [g_1, ..., g_L] (any shapes) -> (clipped [same shapes], total_norm float).
    Chapter 4.

    torch's ``torch.nn.utils.clip_grad_norm_`` formula, without the in-place update:
    ``total_norm`` is the ``norm_type``-norm of all gradients viewed as one
    vector (``math.inf`` = largest absolute entry), and every gradient is
    multiplied by ``min(max_norm / (total_norm + 1e-6), 1)``. ``total_norm`` is
    the norm *before* clipping. Returns new arrays.
    """
    grads = array_list("grads", grads)
    max_norm = positive("max_norm", max_norm, allow_zero=True)
    norm_type = _norm_type(norm_type)
    if not grads:
        return [], 0.0
    per_array = np.array([_vector_norm(g, norm_type) for g in grads])
    total_norm = _vector_norm(per_array, norm_type)
    # Always multiply (by 1 when not clipping), as torch does.
    coef = min(max_norm / (total_norm + 1e-6), 1.0)
    return [g * coef for g in grads], total_norm


def clip_grad_value(grads, clip_value):
    """Clamp every gradient entry to ``[-clip_value, clip_value]``.

    Shapes: grads [g_1, ..., g_L] -> [same shapes]. Chapter 4.
    Same as ``torch.nn.utils.clip_grad_value_`` but returns new arrays.
    """
    grads = array_list("grads", grads)
    clip_value = positive("clip_value", clip_value, allow_zero=True)
    return [np.clip(g, -clip_value, clip_value) for g in grads]


# ---------------------------------------------------------------------------
# Max-norm constraint (Chapter 8)
# ---------------------------------------------------------------------------

def max_norm(W, max_norm, *, axis=0):
    """Project W so that each unit's weight vector has L2 norm at most ``max_norm``.

    Shapes: W (D_in, D_out) -> (D_in, D_out), a new array. Chapter 8.

    ``axis`` is the axis the norm runs over (numpy's convention). The default
    ``axis=0`` takes the norm of each *column* ``W[:, j]``, the incoming weights
    of output unit ``j`` in mlp_lib's (D_in, D_out) layout, which is the
    max-norm constraint of Srivastava et al. (2014). Columns whose norm exceeds
    ``max_norm`` are scaled by ``max_norm / (norm + 1e-7)``; the others are
    unchanged. torch equivalent, on torch's transposed (D_out, D_in) weight:
    ``torch.renorm(weight, p=2, dim=0, maxnorm=max_norm)`` (the same 1e-7).
    """
    W = float_array("W", W, ndim=2)
    bound = positive("max_norm", max_norm)
    if isinstance(axis, bool) or axis not in (0, 1, -1, -2):
        raise ValueError(f"axis must be 0 (columns) or 1 (rows) of the 2-D W, got {axis!r}")
    norms = np.sqrt(np.sum(W * W, axis=axis, keepdims=True))
    factor = np.where(norms > bound, bound / (norms + 1e-7), 1.0).astype(W.dtype)
    return W * factor
