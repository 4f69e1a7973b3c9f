"""Loss functions: ``loss(scores, target) -> (loss, dscores)``.

Each loss returns the loss as a Python float and its gradient with respect to
the first argument (the network's output, "scores"), with that argument's shape
and dtype, so that a backward pass can start from it directly. Regression
losses compare against float targets of the same shape; classification losses
average over the batch, like torch's default ``reduction="mean"``. Chapter 1
introduces the losses; Chapter 3 uses their gradients to start backpropagation.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from mlp_lib._checks import expect_shape, float_array, label_array, same_dtype

__all__ = ["ssr_loss", "mse_loss", "bce_with_logits_loss", "softmax_cross_entropy"]


def _pair(first: str, a, second: str, b) -> tuple[np.ndarray, np.ndarray]:
    """Two float arrays of one shape and dtype (no broadcasting: a silent
    (N,) vs (N, 1) broadcast would turn N residuals into N^2)."""
    a = float_array(first, a)
    b = float_array(second, b)
    expect_shape(second, b, a.shape)
    same_dtype(**{first: a, second: b})
    if a.size == 0:
        raise ValueError(f"{first} is empty (shape {a.shape}); a loss needs at least one element")
    return a, b


def ssr_loss(pred, target):
    """Sum of squared residuals ``sum((pred - target)^2)``.

    Shapes: pred (any), target (same) -> (loss: float, dpred: same as pred).
    ``dpred = 2 (pred - target)``. Chapter 1 (the loss of least squares).
    """
    pred, target = _pair("pred", pred, "target", target)
    residual = pred - target
    loss = float(np.vdot(residual, residual))
    residual *= 2.0  # reuse the temporary: dpred = 2 * residual
    return loss, residual


def mse_loss(pred, target):
    """Mean squared error over all elements, like ``torch.nn.functional.mse_loss``.

    Shapes: pred (any), target (same) -> (loss: float, dpred: same as pred).
    ``dpred = 2 (pred - target) / pred.size``. Chapter 1.
    """
    pred, target = _pair("pred", pred, "target", target)
    residual = pred - target
    loss = float(np.vdot(residual, residual)) / residual.size
    residual *= 2.0 / residual.size
    return loss, residual


def bce_with_logits_loss(logits, target):
    """Binary cross-entropy on logits, averaged over all elements.

    Shapes: logits (any, e.g. (N,) or (N, 1)), target (same, floats in [0, 1])
    -> (loss: float, dlogits: same as logits). Chapter 1.

    With z the logit and y the target, ``-[y log s(z) + (1 - y) log(1 - s(z))]``
    equals ``max(z, 0) - z y + log(1 + exp(-|z|))``: ``exp`` never sees a
    positive argument, so |z| = 800 neither overflows nor takes ``log(0)``
    (this is also torch's formula). ``dlogits = (sigmoid(z) - y) / size``.
    """
    logits, target = _pair("logits", logits, "target", target)
    if target.min() < 0 or target.max() > 1:
        raise ValueError(f"target must hold probabilities in [0, 1], got values in "
                         f"[{target.min()}, {target.max()}]")
    per_element = np.maximum(logits, 0.0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
    loss = float(per_element.mean())
    dlogits = expit(logits)
    dlogits -= target
    dlogits /= logits.size
    return loss, dlogits


def softmax_cross_entropy(logits, y):
    """Softmax followed by the negative log-likelihood, averaged over the batch.

    Shapes: logits (N, C), y (N,) integer class indices in [0, C)
    -> (loss: float, dlogits: (N, C)). Chapter 1 (loss), Chapter 3 (gradient).

    ``loss = -mean_i log softmax(logits_i)[y_i]`` (torch's ``cross_entropy``),
    computed through a stable log-softmax; ``dlogits = (softmax - onehot(y)) / N``.
    """
    logits = float_array("logits", logits, ndim=2)
    n, c = logits.shape
    if n == 0 or c == 0:
        raise ValueError(f"logits must have shape (N, C) with N, C >= 1, got shape {logits.shape}")
    y = label_array("y", y, n=n, num_classes=c)
    rows = np.arange(n)
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z)
    sums = probs.sum(axis=1, keepdims=True)
    log_probs_of_labels = z[rows, y] - np.log(sums[:, 0])
    loss = -float(log_probs_of_labels.mean())
    probs /= sums
    probs[rows, y] -= 1.0
    probs /= n
    return loss, probs
