"""Batch normalization and input standardization.

Chapter 7. ``batchnorm_forward``/``batchnorm_backward`` follow torch's
``nn.BatchNorm1d`` conventions exactly:

* training mode normalizes with the batch mean and the *biased* batch variance
  (divide by N);
* the running statistics are updated with the *unbiased* batch variance
  (divide by N - 1), and ``momentum`` weights the *new* statistic:
  ``new = (1 - momentum) * old + momentum * batch_stat``;
* eval mode normalizes with the running statistics and leaves them unchanged.

Nothing is updated in place: the forward pass returns the new running
statistics, and the caller decides where to keep them.

``Standardizer`` is the data-preprocessing counterpart (scikit-learn's
``StandardScaler``): statistics are fitted on the training set only and then
applied unchanged to validation and test data.
"""
from __future__ import annotations

import numpy as np

from mlp_lib._checks import expect_shape, float_array, positive, probability, same_dtype

__all__ = ["batchnorm_forward", "batchnorm_backward", "Standardizer",
           "batchnorm_train_kernel", "batchnorm_eval_kernel", "batchnorm_backward_kernel"]


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def batchnorm_forward(x, gamma, beta, running_mean, running_var, *, training,
                      momentum=0.1, eps=1e-5):
    """Batch normalization over the batch axis.

    Shapes: x (N, D); gamma, beta, running_mean, running_var (D,) ->
    out (N, D), cache, new_running_mean (D,), new_running_var (D,).
    Chapter 7.

    ``out = gamma * (x - mu) / sqrt(var + eps) + beta`` where, in training mode,
    ``mu`` and ``var`` are the batch mean and *biased* batch variance, and in
    eval mode they are ``running_mean`` and ``running_var``.

    Training mode returns running statistics updated as torch does
    (``momentum`` weights the new statistic; the running variance uses the
    *unbiased* batch variance). Eval mode returns copies of the running
    statistics. No input is ever modified. torch's ``momentum=None``
    (cumulative average) is not supported.

    Training mode needs N >= 2: a single example has no batch variance
    (torch raises too).
    """
    x = float_array("x", x, ndim=2)
    n, d = x.shape
    # No ndim check here: expect_shape's message names the expected shape (D,).
    gamma = float_array("gamma", gamma)
    beta = float_array("beta", beta)
    running_mean = float_array("running_mean", running_mean)
    running_var = float_array("running_var", running_var)
    for name, arr in (("gamma", gamma), ("beta", beta),
                      ("running_mean", running_mean), ("running_var", running_var)):
        expect_shape(name, arr, (d,))
    same_dtype(x=x, gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var)
    if (running_var < 0).any():
        raise ValueError("running_var must be >= 0 (it is a variance)")
    training = _check_bool("training", training)
    momentum = probability("momentum", momentum, allow_one=True)
    eps = positive("eps", eps)

    if training and n < 2:
        raise ValueError(f"x must have at least 2 rows in training mode (a batch variance needs "
                         f"N >= 2), got shape {x.shape}")
    if training:
        return batchnorm_train_kernel(x, gamma, beta, running_mean, running_var, momentum, eps)
    return batchnorm_eval_kernel(x, gamma, beta, running_mean, running_var, eps)


# The two kernels below are batchnorm_forward without its argument checks.
# modules.BatchNorm1d checks its input once and calls them, so the formulas live
# here only. They are arranged for speed: the only (N, D) arrays allocated are
# the centered input and the output (xhat = xc * inv_std is never materialized),
# because extra (N, D) temporaries cost more than the arithmetic.

def batchnorm_train_kernel(x, gamma, beta, running_mean, running_var, momentum, eps):
    """Unchecked training-mode batch norm -> (out, cache, new_running_mean, new_running_var)."""
    n = x.shape[0]
    mean = x.mean(axis=0)
    xc = x - mean
    var = np.einsum("ij,ij->j", xc, xc) / n  # biased: this is what normalizes
    inv_std = 1.0 / np.sqrt(var + eps)
    out = xc * (gamma * inv_std)
    out += beta
    # torch keeps the unbiased variance as the running estimate of the population variance.
    new_running_mean = (1.0 - momentum) * running_mean + momentum * mean
    new_running_var = (1.0 - momentum) * running_var + momentum * (var * (n / (n - 1)))
    cache = {"training": True, "xc": xc, "gamma": gamma, "inv_std": inv_std}
    return out, cache, new_running_mean, new_running_var


def batchnorm_eval_kernel(x, gamma, beta, running_mean, running_var, eps):
    """Unchecked eval-mode batch norm -> (out, cache, copies of the running statistics)."""
    inv_std = 1.0 / np.sqrt(running_var + eps)
    xc = x - running_mean
    out = xc * (gamma * inv_std)
    out += beta
    cache = {"training": False, "xc": xc, "gamma": gamma, "inv_std": inv_std}
    return out, cache, running_mean.copy(), running_var.copy()


def batchnorm_backward(dout, cache):
    """Gradients of ``batchnorm_forward``.

    Shapes: dout (N, D) -> dx (N, D), dgamma (D,), dbeta (D,). Chapter 7.

    Training mode uses the compact form (the batch statistics depend on x, so
    every row of dx depends on the whole batch)::

        dx = (1/N) * gamma * inv_std * (N * dout - sum(dout) - xhat * sum(dout * xhat))

    Eval mode is an affine map per feature, so ``dx = dout * gamma * inv_std``.
    Neither ``dout`` nor the cache is modified.
    """
    if not isinstance(cache, dict) or not {"training", "xc", "gamma", "inv_std"} <= cache.keys():
        raise TypeError("cache must be the cache returned by batchnorm_forward")
    xc = cache["xc"]
    dout = float_array("dout", dout, ndim=2)
    expect_shape("dout", dout, xc.shape)
    same_dtype(dout=dout, x=xc)
    return batchnorm_backward_kernel(dout, cache)


def batchnorm_backward_kernel(dout, cache, *, input_grad=True):
    """Unchecked ``batchnorm_backward`` -> (dx or None, dgamma, dbeta)."""
    xc, gamma, inv_std = cache["xc"], cache["gamma"], cache["inv_std"]
    dbeta = dout.sum(axis=0)
    dgamma = np.einsum("ij,ij->j", dout, xc) * inv_std  # sum(dout * xhat)
    if not input_grad:
        return None, dgamma, dbeta
    scale = gamma * inv_std
    if not cache["training"]:
        return dout * scale, dgamma, dbeta
    n = dout.shape[0]
    # gamma*inv_std/N * (N*dout - dbeta - xhat*dgamma), built in one (N, D) array
    dx = xc * (-(inv_std * dgamma) / n)
    dx += dout
    dx -= dbeta / n
    dx *= scale
    return dx, dgamma, dbeta


class Standardizer:
    """Per-feature standardization ``(X - mean) / std`` fitted on training data.

    Shapes: fit(X (N, D)); transform(X (M, D)) -> (M, D). Chapter 7.

    The statistics (``mean_``, ``scale_``, both (D,)) come from ``fit`` on the
    training set only; applying them unchanged to validation and test data
    keeps information from those sets out of training. ``std`` is the
    population (biased) standard deviation, as in scikit-learn's
    ``StandardScaler``. Features that are constant in the training data are
    centered but left unscaled (``scale_ = 1``) instead of dividing by zero;
    "constant" uses scikit-learn's rounding-aware test (a variance that is
    only the rounding error of the mean counts as zero).

    The dtype of each transformed array is preserved.
    """

    def __init__(self):
        self.mean_ = None
        self.scale_ = None
        self.n_features_in_ = None

    def __repr__(self):
        if self.mean_ is None:
            return "Standardizer(not fitted)"
        return f"Standardizer(n_features_in_={self.n_features_in_})"

    def fit(self, X):
        """Learn per-feature mean and standard deviation from X (N, D), N >= 1. Returns self."""
        X = float_array("X", X, ndim=2)
        n, d = X.shape
        if n < 1:
            raise ValueError(f"X must have at least one row to fit on, got shape {X.shape}")
        mean = X.mean(axis=0)
        var = ((X - mean) ** 2).mean(axis=0)
        # A constant column's computed variance is not always exactly 0: the mean
        # carries rounding error. scikit-learn's bound on that error decides.
        eps = np.finfo(X.dtype).eps
        constant = var <= n * eps * var + (n * mean * eps) ** 2
        scale = np.sqrt(var)
        scale[constant] = 1.0
        self.mean_, self.scale_, self.n_features_in_ = mean, scale, d
        return self

    def _check_fitted(self, name: str, X):
        if self.mean_ is None:
            raise RuntimeError("this Standardizer is not fitted yet: call fit(X_train) before transform")
        X = float_array(name, X, ndim=2)
        expect_shape(name, X, (None, self.n_features_in_))
        return X

    def transform(self, X):
        """Standardize X (M, D) with the fitted statistics -> (M, D), X's dtype."""
        X = self._check_fitted("X", X)
        return (X - self.mean_.astype(X.dtype)) / self.scale_.astype(X.dtype)

    def fit_transform(self, X):
        """``fit(X)`` then ``transform(X)``: (N, D) -> (N, D)."""
        return self.fit(X).transform(X)

    def inverse_transform(self, Z):
        """Undo ``transform``: Z (M, D) -> Z * std + mean, Z's dtype."""
        Z = self._check_fitted("Z", Z)
        return Z * self.scale_.astype(Z.dtype) + self.mean_.astype(Z.dtype)
