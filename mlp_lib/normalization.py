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

from mlp_lib._checks import (expect_shape, flag, float_array, positive, probability, same_dtype,
                             upstream_gradient)

__all__ = ["batchnorm_forward", "batchnorm_backward", "Standardizer"]

_CACHE_KEYS = {"training", "xc", "gamma", "inv_std"}


def batchnorm_forward(x, gamma, beta, running_mean, running_var, *, training,
                      momentum=0.1, eps=1e-5):
    """Batch normalization over the batch axis.

    Shapes: x (N, D); gamma, beta, running_mean, running_var (D,) ->
    out (N, D), cache, new_running_mean (D,), new_running_var (D,).
    Chapter 7. For each feature, over the m = N examples of the batch::

        mu_B = 1/m sum_i x_i,    sigma_B^2 = 1/m sum_i (x_i - mu_B)^2,
        xhat_i = (x_i - mu_B) / sqrt(sigma_B^2 + eps),    y_i = gamma xhat_i + beta

    in training mode; eval mode normalizes with ``running_mean`` and
    ``running_var`` instead of ``mu_B`` and ``sigma_B^2``.

    Training mode returns running statistics updated as torch does
    (``momentum`` weights the new statistic; the running variance uses the
    *unbiased* batch variance ``m/(m-1) sigma_B^2``). Eval mode returns copies
    of the running statistics. No input is ever modified. torch's
    ``momentum=None`` (cumulative average) is not supported.

    ``cache`` is the dict ``{"training", "xc", "gamma", "inv_std"}``: the
    centred input ``xc = x - mu_B`` (or ``x - running_mean``), gamma and
    ``inv_std = 1 / sqrt(var + eps)``; ``batchnorm_backward`` needs nothing else.

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
    training = flag("training", training)
    momentum = probability("momentum", momentum, allow_one=True)
    eps = positive("eps", eps)

    if not training:
        return _batchnorm_eval(x, gamma, beta, running_mean, running_var, eps)
    _check_batch_size(x)
    return _batchnorm_train(x, gamma, beta, running_mean, running_var, momentum, eps)


def batchnorm_backward(dout, cache):
    """Gradients of ``batchnorm_forward``.

    Shapes: dout (N, D) -> dx (N, D), dgamma (D,), dbeta (D,). Chapter 7.
    With ``g_i = dout_i`` and m = N, per feature::

        dL/dbeta = sum_i g_i,    dL/dgamma = sum_i g_i xhat_i,
        dL/dx_i = gamma / (m sqrt(sigma_B^2 + eps)) * (m g_i - dL/dbeta - xhat_i dL/dgamma)

    in training mode (the compact form: the batch statistics depend on every
    x_i, so every row of dx depends on the whole batch). Eval mode is an affine
    map per feature, ``dL/dx_i = gamma g_i / sqrt(running_var + eps)``.
    Neither ``dout`` nor the cache is modified.
    """
    if not isinstance(cache, dict) or not _CACHE_KEYS <= cache.keys():
        raise TypeError("cache must be the cache returned by batchnorm_forward")
    xc = cache["xc"]
    dout = upstream_gradient(dout, shape=xc.shape, dtype=xc.dtype)
    return _batchnorm_backward(dout, cache)


def _check_batch_size(x) -> None:
    if x.shape[0] < 2:
        raise ValueError(f"x must have at least 2 rows in training mode (a batch variance needs N >= 2), "
                         f"got shape {x.shape}")


# The formulas, unchecked: batchnorm_forward/batchnorm_backward check their
# arguments and call these; modules.BatchNorm1d checks its input once and calls
# them too. Arranged for speed, measured by `python -m bench mlp` (section 2):
# (N, D) passes over the data cost more than the arithmetic, so xhat = xc * inv_std
# is never materialized (it enters every formula through the (D,) factors
# gamma * inv_std and inv_std * dL/dgamma), and sum_i xc_i^2 and sum_i g_i xc_i
# are fused einsum reductions (no (N, D) product array).

def _batchnorm_train(x, gamma, beta, running_mean, running_var, momentum, eps):
    """Training mode -> (out, cache, new_running_mean, new_running_var)."""
    m = x.shape[0]
    mu_B = x.mean(axis=0)
    xc = x - mu_B
    var_B = np.einsum("ij,ij->j", xc, xc) / m  # sigma_B^2, biased: this is what normalizes
    inv_std = 1.0 / np.sqrt(var_B + eps)
    out = xc * (gamma * inv_std)  # gamma * xhat
    out += beta
    # torch keeps the unbiased variance as the running estimate of the population variance.
    new_running_mean = (1.0 - momentum) * running_mean + momentum * mu_B
    new_running_var = (1.0 - momentum) * running_var + momentum * (var_B * (m / (m - 1)))
    cache = {"training": True, "xc": xc, "gamma": gamma, "inv_std": inv_std}
    return out, cache, new_running_mean, new_running_var


def _batchnorm_eval(x, gamma, beta, running_mean, running_var, eps):
    """Eval mode -> (out, cache, copies of the running statistics)."""
    inv_std = 1.0 / np.sqrt(running_var + eps)
    xc = x - running_mean
    out = xc * (gamma * inv_std)
    out += beta
    cache = {"training": False, "xc": xc, "gamma": gamma, "inv_std": inv_std}
    return out, cache, running_mean.copy(), running_var.copy()


def _batchnorm_backward(dout, cache, *, input_grad=True):
    """-> (dx or None, dgamma, dbeta); dx is None without ``input_grad``."""
    xc, gamma, inv_std = cache["xc"], cache["gamma"], cache["inv_std"]
    m = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = np.einsum("ij,ij->j", dout, xc) * inv_std  # sum_i g_i xhat_i
    if not input_grad:
        return None, dgamma, dbeta
    if not cache["training"]:
        return dout * (gamma * inv_std), dgamma, dbeta
    # gamma inv_std / m * (m g - dbeta - xhat dgamma) = gamma inv_std * (g - dbeta/m - xc * (inv_std dgamma/m)),
    # accumulated in one (N, D) array
    dx = xc * (-inv_std * dgamma / m)
    dx += dout
    dx -= dbeta / m
    dx *= gamma * inv_std
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
