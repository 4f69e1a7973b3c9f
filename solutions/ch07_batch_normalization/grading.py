"""Grading spec of Chapter 7's exercise: input standardization and batch normalization.

Every Part draws its cases from the grader's rng and is judged against a torch reference computed
in float64. Conventions, as stated in the exercise and in the book (``mlp_lib.normalization``
follows them too, and so does PyTorch):

* ``standardizer_fit(X) -> (mean, scale)``: per-feature mean and *population* standard deviation
  (``torch.std(unbiased=False)``, dividing by N); a feature whose values are all equal (constant
  in X) gets ``scale = 1`` (left unscaled). Deliberate hard cases, in every case: a constant
  feature whose mean is computed exactly (a dyadic value: its computed standard deviation is
  exactly 0), a constant feature whose computed standard deviation is rounding noise (all 0.1,
  say: ``np.std`` gives about 1e-17, so a test ``std == 0`` misses it), and a feature with a tiny
  but genuine spread (std 1e-3), which a convention such as ``std < 1e-2 -> 1`` gets wrong; one
  case holds features measured in small units (standard deviations 1e-4 to 1e-2), where
  ``std + 1e-8`` shows. ``standardizer_transform(X, mean, scale)`` returns ``(X - mean) / scale``;
* ``batchnorm_forward(x, gamma, beta, running_mean, running_var, *, training, momentum=0.1,
  eps=1e-5) -> (out, cache, new_running_mean, new_running_var)``: training mode normalizes with
  the batch mean and the *biased* batch variance, ``eps`` inside the square root, and returns
  running statistics updated as ``(1 - momentum) * old + momentum * batch`` with the *unbiased*
  batch variance (``torch.nn.functional.batch_norm``); inference mode normalizes with the running
  statistics and returns them unchanged, as copies (the adapter fails a returned input array).
  Nothing is modified in place (inputs are read-only). The cache is the dict
  ``{"training", "xc", "gamma", "inv_std"}`` of ``mlp_lib.normalization.batchnorm_forward``:
  ``xc`` the centred input (by the batch mean, or the running mean in inference mode) and
  ``inv_std = 1 / sqrt(var + eps)``; ``xc`` and ``inv_std`` are graded;
* ``batchnorm_backward(dout, cache) -> (dx, dgamma, dbeta)``: the gradients of the forward pass
  (autograd through ``F.batch_norm``), in both modes (``mode``: "training" or "inference"). The
  adapter builds the cache from the case in numpy, read-only, so this part does not depend on the
  student's forward pass and an in-place change of the cache fails.

The adapters live in ``adapters.py`` (sent to the student's process). Every mistake carries the
feedback a student who made it reads, and the book section that explains the right way.

Shapes are drawn with N != D so that a statistic over the wrong axis shows; momentum is never 0.5
(where torch's and Keras' conventions coincide). tests/test_assignment_ch07.py checks that each
mutant loses the points of its own part, and only those, and is named by its feedback.
"""
import numpy as np
import torch
import torch.nn.functional as F

import adapters
from autograder.spec import Mutant, Part

PUBLIC_SEED = 20150211       # arXiv 1502.03167: Ioffe and Szegedy, 11 February 2015
# the locked cells the answers may rely on: the imports, and the answers' vocabulary of Parts 7 and on
SETUP = ("setup", "understanding-setup")


def _distinct_sizes(rng, k, low, high):
    """k distinct ints in [low, high): distinct dimensions make axis mistakes identifiable."""
    return [int(v) for v in rng.choice(np.arange(low, high), size=k, replace=False)]


# -- standardizer_fit -------------------------------------------------------------------------------
def _features(rng, n, d, log_std=(-1.0, 0.7)):
    """(n, d) features with different means and scales (standard deviations 10**log_std, at most 5: a
    mistake of 1e-8 then stays distinguishable from one of 0 when the grader compares with mistakes)."""
    return rng.normal(rng.uniform(-5.0, 5.0, d), 10.0 ** rng.uniform(*log_std, d), size=(n, d))


def _rounding_constant(rng, n):
    """A value v whose column of n copies has a computed standard deviation that is rounding noise
    (about 1e-17), not 0, in the usual formulations (its mean is not exactly v), over axis 0 of a
    matrix and on the column alone; None if no tenth from 0.1 to 1.9 does that for this n."""
    sign = float(rng.choice([-1.0, 1.0]))
    for k in rng.permutation(np.arange(1, 20)):
        M = np.full((n, 2), sign * int(k) / 10.0)
        stds = (M.std(axis=0)[0], np.sqrt(((M - M.mean(axis=0)) ** 2).mean(axis=0))[0], M.var(axis=0)[0],
                M[:, 0].std(), np.sqrt(((M[:, 0] - M[:, 0].mean()) ** 2).mean()))
        if all(v != 0 for v in stds):
            return float(M[0, 0])
    return None


def fit_cases(rng):
    """Every case holds three deliberate features: constant with an exact mean (std exactly 0),
    constant with a mean that carries a rounding error (std about 1e-17), tiny genuine spread."""
    cases = []
    for kind in ("scales", "scales", "small units", "scales"):
        while True:
            n, d = _distinct_sizes(rng, 2, 5, 14)
            v = _rounding_constant(rng, n)
            if d >= 4 and v is not None and (kind != "small units" or n >= 8):
                break
        X = _features(rng, n, d, (-4.0, -2.0) if kind == "small units" else (-1.0, 0.7))
        j_tiny, j_exact, j_round = (int(j) for j in rng.choice(d, size=3, replace=False))
        X[:, j_tiny] = 0.7 + 1e-3 * rng.standard_normal(n)          # genuine but tiny spread
        X[:, j_exact] = float(rng.choice([0.0, 2.5, -3.0, 0.75]))  # exactly constant, exact mean
        X[:, j_round] = v                                            # constant, mean with rounding error
        cases.append({"X": X})
    return cases


def fit_reference(X):
    constant = (X == X[0]).all(dim=0)
    return X.mean(dim=0), torch.where(constant, torch.ones_like(X[0]), X.std(dim=0, unbiased=False))


def _all_equal(X, axis=0):
    """The features (axis 0) or examples (axis 1) whose values are all equal."""
    return (X == X.take([0], axis=axis)).all(axis=axis)


def _fit_ddof1(X):
    return X.mean(axis=0), np.where(_all_equal(X), 1.0, X.std(axis=0, ddof=1))


def _fit_variance(X):
    return X.mean(axis=0), np.where(_all_equal(X), 1.0, X.var(axis=0))


def _fit_zero_scale(X):
    return X.mean(axis=0), X.std(axis=0)


def _fit_eps(X):
    return X.mean(axis=0), X.std(axis=0) + 1e-8


def _fit_threshold(X):
    std = X.std(axis=0)
    return X.mean(axis=0), np.where(std < 1e-2, 1.0, std)


def _fit_std_equals_zero(X):
    std = X.std(axis=0)
    return X.mean(axis=0), np.where(std == 0, 1.0, std)


def _fit_wrong_axis(X):
    return X.mean(axis=1), np.where(_all_equal(X, axis=1), 1.0, X.std(axis=1))


def _fit_in_place(X):
    mean = X.mean(axis=0)
    X -= mean
    return mean, np.where(_all_equal(X), 1.0, np.sqrt((X * X).mean(axis=0)))


# -- standardizer_transform -------------------------------------------------------------------------
def transform_cases(rng):
    """Random statistics, and one case in small units (scales 1e-4 to 1e-2), where dividing by anything
    but the scale given (scale + 1e-8, say) shows."""
    cases = []
    for kind in ("scales", "scales", "small units", "scales"):
        m, d = _distinct_sizes(rng, 2, 3, 12)
        scale = 10.0 ** rng.uniform(*((-4.0, -2.0) if kind == "small units" else (-1.0, 1.5)), d)
        scale[int(rng.integers(d))] = 1.0                     # a feature left unscaled
        mean = rng.uniform(-5.0, 5.0, d)
        X = mean + scale * rng.normal(0.3, 1.5, size=(m, d))  # not standardized by its own statistics
        cases.append({"X": X, "mean": mean, "scale": scale})
    return cases


def transform_reference(X, mean, scale):
    return (X - mean) / scale


def _transform_no_centring(X, mean, scale):
    return X / scale


def _transform_variance(X, mean, scale):
    return (X - mean) / scale ** 2


def _transform_refit(X, mean, scale):
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std == 0, 1.0, std)


def _transform_in_place(X, mean, scale):
    X -= mean
    X /= scale
    return X


def _transform_multiplies(X, mean, scale):
    return (X - mean) * scale


# -- batchnorm_forward, training mode ----------------------------------------------------------------
def _bn_inputs(rng, n, d, *, tiny=False):
    x = rng.normal(rng.uniform(-4.0, 4.0, d), rng.uniform(0.3, 5.0, d), size=(n, d))
    if tiny:
        x[:, int(rng.integers(d))] = 1.5 + 1e-3 * rng.standard_normal(n)    # variance below eps
    return {"x": x, "gamma": rng.uniform(0.5, 2.0, d) * rng.choice([-1.0, 1.0], d),
            "beta": rng.normal(0.0, 1.0, d), "running_mean": rng.normal(0.0, 1.0, d),
            "running_var": rng.uniform(0.5, 3.0, d)}


def bn_train_cases(rng):
    cases = []
    for n_range, momentum, eps, tiny in (((2, 3), 0.1, 1e-5, False), ((5, 13), 0.3, 1e-3, False),
                                         ((20, 41), 0.05, 1e-5, True), ((3, 10), 0.9, 1e-5, False)):
        while True:
            n, d = int(rng.integers(*n_range)), int(rng.integers(3, 9))
            if n != d:
                break
        cases.append(_bn_inputs(rng, n, d, tiny=tiny) | {"momentum": np.float64(momentum), "eps": np.float64(eps)})
    return cases


def bn_train_reference(x, gamma, beta, running_mean, running_var, momentum, eps):
    new_mean, new_var = running_mean.clone(), running_var.clone()     # F.batch_norm updates them in place
    out = F.batch_norm(x, new_mean, new_var, gamma, beta, training=True, momentum=float(momentum), eps=float(eps))
    xc = x - x.mean(dim=0)
    inv_std = torch.rsqrt(x.var(dim=0, unbiased=False) + float(eps))
    return out, xc, inv_std, new_mean, new_var


def _bn(x, gamma, beta, running_mean, running_var, *, training, momentum=0.1, eps=1e-5,
        norm_ddof=0, running_ddof=1, keras=False, eps_outside=False, axis=0, in_place=False,
        std_in_cache=False, no_momentum=False, eval_batch_stats=False, eval_updates=False,
        eval_var_as_std=False, eval_eps_outside=False, eval_no_copy=False):
    """The correct forward pass, with one switch per typical mistake (training or inference branch)."""
    if training or eval_batch_stats:
        n = x.shape[0]
        mean = x.mean(axis=axis, keepdims=axis == 1)
        xc = x - mean
        var = (xc * xc).sum(axis=axis, keepdims=axis == 1) / (n - norm_ddof if axis == 0 else x.shape[1])
        denom = np.sqrt(var) + eps if (eps_outside or (not training and eval_eps_outside)) else np.sqrt(var + eps)
        inv_std = 1.0 / denom
        out = gamma * xc * inv_std + beta
        if training or eval_updates:
            batch_mean = x.mean(axis=0)
            batch_var = x.var(axis=0, ddof=running_ddof if n > 1 else 0)
            new_weight = 1.0 - momentum if keras else momentum
            new_mean = (1.0 - new_weight) * running_mean + new_weight * batch_mean
            new_var = (1.0 - new_weight) * running_var + new_weight * batch_var
            if no_momentum:
                new_mean, new_var = batch_mean, batch_var
            if in_place:
                running_mean[...] = new_mean
                running_var[...] = new_var
                new_mean, new_var = running_mean, running_var
        else:
            new_mean, new_var = running_mean.copy(), running_var.copy()
    else:
        xc = x - running_mean
        if eval_var_as_std:
            denom = running_var + eps
        elif eval_eps_outside:
            denom = np.sqrt(running_var) + eps
        else:
            denom = np.sqrt(running_var + eps)
        inv_std = 1.0 / denom
        out = gamma * xc * inv_std + beta
        if eval_updates:
            batch_var = x.var(axis=0, ddof=1) if x.shape[0] > 1 else np.zeros_like(running_var)
            new_mean = (1.0 - momentum) * running_mean + momentum * x.mean(axis=0)
            new_var = (1.0 - momentum) * running_var + momentum * batch_var
        elif eval_no_copy:
            new_mean, new_var = running_mean, running_var
        else:
            new_mean, new_var = running_mean.copy(), running_var.copy()
    cache = {"training": training, "xc": xc, "gamma": gamma, "inv_std": 1.0 / inv_std if std_in_cache and training else inv_std}
    return out, cache, new_mean, new_var


def _mutant(**switches):
    def forward(x, gamma, beta, running_mean, running_var, *, training, momentum=0.1, eps=1e-5):
        return _bn(x, gamma, beta, running_mean, running_var, training=training, momentum=momentum, eps=eps,
                   **switches)
    forward.__name__ = "batchnorm_forward"
    return forward


# -- batchnorm_forward, inference mode ---------------------------------------------------------------
def bn_eval_cases(rng):
    cases = []
    for n in (1, 2, int(rng.integers(5, 12)), int(rng.integers(12, 30))):
        while True:
            d = int(rng.integers(3, 9))
            if d != n:
                break
        eps = 1e-5 if n != 2 else 1e-3
        cases.append(_bn_inputs(rng, n, d) | {"momentum": np.float64(0.1), "eps": np.float64(eps)})
    return cases


def bn_eval_reference(x, gamma, beta, running_mean, running_var, momentum, eps):
    new_mean, new_var = running_mean.clone(), running_var.clone()
    out = F.batch_norm(x, new_mean, new_var, gamma, beta, training=False, momentum=float(momentum), eps=float(eps))
    return out, x - running_mean, torch.rsqrt(running_var + float(eps)), new_mean, new_var


# -- batchnorm_backward ------------------------------------------------------------------------------
def bn_backward_cases(rng):
    cases = []
    for n_range, eps, mode in (((2, 3), 1e-5, "training"), ((6, 14), 1e-3, "training"), ((20, 41), 1e-5, "training"),
                               ((3, 10), 1e-5, "inference")):
        while True:
            n, d = int(rng.integers(*n_range)), int(rng.integers(3, 9))
            if n != d:
                break
        inputs = _bn_inputs(rng, n, d, tiny=n >= 20)
        cases.append({"dout": rng.standard_normal((n, d)), "x": inputs["x"], "gamma": inputs["gamma"],
                      "running_mean": inputs["running_mean"], "running_var": inputs["running_var"],
                      "eps": np.float64(eps), "mode": mode})
    return cases


def bn_backward_reference(dout, x, gamma, running_mean, running_var, eps, mode):
    x, gamma = x.clone().requires_grad_(True), gamma.clone().requires_grad_(True)
    beta = torch.zeros_like(gamma, requires_grad=True)
    F.batch_norm(x, running_mean.clone(), running_var.clone(), gamma, beta, training=mode == "training",
                 eps=float(eps)).backward(dout)
    return x.grad, gamma.grad, beta.grad


def _backward(dout, cache, *, constants=False, no_var_path=False, no_mean_path=False, dgamma_no_xhat=False,
              dgamma_xc=False, dbeta_mean=False, no_inv_n=False, in_place=False):
    """The correct backward pass, with one switch per typical mistake."""
    xc, gamma, inv_std = cache["xc"], cache["gamma"], cache["inv_std"]
    n = dout.shape[0]
    xhat = xc * inv_std
    dbeta = dout.mean(axis=0) if dbeta_mean else dout.sum(axis=0)
    if dgamma_no_xhat:
        dgamma = dout.sum(axis=0)
    elif dgamma_xc:
        dgamma = (dout * xc).sum(axis=0)
    else:
        dgamma = (dout * xhat).sum(axis=0)
    if not cache["training"] or constants:
        dx = dout * gamma * inv_std
    else:
        mean_term = 0.0 if no_mean_path else dout.mean(axis=0)
        var_term = 0.0 if no_var_path else xhat * (dout * xhat).mean(axis=0)
        if no_inv_n:        # gamma * inv_std * (N dout - sum(dout) - xhat sum(dout xhat)): the 1/N forgotten
            return gamma * inv_std * (n * dout - n * mean_term - n * var_term), dgamma, dbeta
        if in_place:
            dout -= mean_term
            dout -= var_term
            dout *= gamma * inv_std
            dx = dout
        else:
            dx = gamma * inv_std * (dout - mean_term - var_term)
    return dx, dgamma, dbeta


def _backward_mutant(**switches):
    def backward(dout, cache):
        return _backward(dout, cache, **switches)
    backward.__name__ = "batchnorm_backward"
    return backward


_FORBID_NORMALIZATION = ("mlp_lib.normalization.Standardizer", "mlp_lib.normalization._batchnorm_train",
                         "mlp_lib.normalization._batchnorm_eval",
                         "mlp_lib.normalization._batchnorm_backward", "mlp_lib.modules.BatchNorm1d",
                         "sklearn.preprocessing.StandardScaler")


# == Understanding: what the chapter teaches you to predict (Parts 6 and 7) =====================
# Graded like the other parts, on hidden cases from the secret seed; the answers need only numpy and
# the standard library. Each mutant is a typical wrong answer (guesses included) with the feedback a
# student who gave it should read, and the book section that explains the right one.
FIT_ON_TRAIN, FIT_ON_ALL, FIT_ON_PREDICTED = ("the training split", "training and test together",
                                              "the data being predicted")


# -- expected_running_stats: where the running statistics are after t steps, in torch's and Keras' terms --
def running_cases(rng):
    cases = []
    for k in range(6):
        keras = k % 2 == 1
        d = int(rng.integers(2, 7))
        if keras:
            momentum = [0.99, 0.9, float(rng.uniform(0.9, 0.999))][k // 2]
        else:
            momentum = [0.1, 0.01, float(rng.uniform(0.01, 0.3))][k // 2]
        cases.append({"mu": 3.0 * rng.standard_normal(d), "var": 10.0 ** rng.uniform(-1.0, 1.0, size=d),
                      "m": np.int64(rng.integers(2, 9) if k < 4 else rng.integers(9, 65)),
                      "steps": np.int64(rng.integers(1, 301)), "momentum": np.float64(momentum),
                      "keras": np.bool_(keras)})
    return [cases[i] for i in rng.permutation(len(cases))]


def running_call(student, mu, var, m, steps, momentum, keras):
    return student.expected_running_stats(mu, var, m=int(m), steps=int(steps), momentum=float(momentum),
                                          keras=bool(keras))


def running_reference(mu, var, m, steps, momentum, keras):
    alpha = 1 - momentum if bool(keras) else momentum          # the weight of the new batch statistic
    batch_var = var * (m - 1) / m if bool(keras) else var      # E of the variance the update uses
    old = (1 - alpha) ** steps                                  # what is left of the initial value
    return (1 - old) * mu, old * torch.ones_like(var) + (1 - old) * batch_var


def _running(mu, var, m, steps, momentum, keras, *, alpha=None, biased=None, start_var=1.0, offset=0):
    alpha = (1 - momentum if keras else momentum) if alpha is None else alpha
    biased = keras if biased is None else biased
    old = (1 - alpha) ** (steps + offset)
    return (1 - old) * mu, old * start_var + (1 - old) * (var * (m - 1) / m if biased else var)


def _running_keras_as_torch(mu, var, *, m, steps, momentum, keras):
    return _running(mu, var, m, steps, momentum, keras, alpha=momentum)


def _running_keras_unbiased(mu, var, *, m, steps, momentum, keras):
    return _running(mu, var, m, steps, momentum, keras, biased=False)


def _running_torch_biased(mu, var, *, m, steps, momentum, keras):
    return _running(mu, var, m, steps, momentum, keras, biased=True)


def _running_var_from_zero(mu, var, *, m, steps, momentum, keras):
    return _running(mu, var, m, steps, momentum, keras, start_var=0.0)


def _running_one_step_short(mu, var, *, m, steps, momentum, keras):
    return _running(mu, var, m, steps, momentum, keras, offset=-1)


def _running_converged(mu, var, *, m, steps, momentum, keras):
    return mu.copy(), var.copy()


# -- which_statistics: which data a standardizer was fitted on ----------------------------------------
def _fit(X):
    mean, scale = X.mean(axis=0), X.std(axis=0)
    return mean, np.where(scale == 0.0, 1.0, scale)


def statistics_cases(rng):
    cases = []
    for _ in range(5):
        d = int(rng.integers(6, 21))
        n_train, n_test = int(rng.integers(40, 121)), int(rng.integers(15, 51))
        levels = rng.uniform(1.0, 12.0, size=d)
        X_train = np.clip(np.round(levels + rng.normal(0.0, 3.0, size=(n_train, d))), 0, 16)
        X_test = np.clip(np.round(levels + rng.uniform(0.5, 3.0) + rng.normal(0.0, 3.0, size=(n_test, d))), 0, 16)
        blank = rng.choice(d, size=int(rng.integers(1, 3)), replace=False)
        X_train[:, blank] = 0.0                     # border pixels, blank in every training image ...
        X_test[: n_test // 3, blank] = rng.integers(1, 4, size=(n_test // 3, len(blank)))   # ... not in every test one
        fits = {FIT_ON_TRAIN: _fit(X_train), FIT_ON_ALL: _fit(np.vstack([X_train, X_test])),
                FIT_ON_PREDICTED: _fit(X_test)}
        n_pipelines = int(rng.integers(3, 7))
        kinds = list(fits) + list(rng.choice(list(fits), size=n_pipelines - 3))
        kinds = [kinds[i] for i in rng.permutation(n_pipelines)]
        cases.append({"X_train": X_train, "X_test": X_test, "means": np.array([fits[k][0] for k in kinds]),
                      "scales": np.array([fits[k][1] for k in kinds])})
    return cases


def statistics_reference(X_train, X_test, means, scales):
    def fit(X):
        scale = X.std(dim=0, unbiased=False)
        return X.mean(dim=0), torch.where(scale == 0, torch.ones_like(scale), scale)

    candidates = {FIT_ON_TRAIN: fit(X_train), FIT_ON_ALL: fit(torch.cat([X_train, X_test])),
                  FIT_ON_PREDICTED: fit(X_test)}
    answers = []
    for mean, scale in zip(means, scales):
        matches = [name for name, (m, s) in candidates.items()
                   if torch.allclose(mean, m, rtol=1e-9, atol=1e-12) and torch.allclose(scale, s, rtol=1e-9, atol=1e-12)]
        if len(matches) != 1:
            raise ValueError(f"which_statistics case: a pipeline matches {matches}")
        answers.append(matches[0])
    return np.array(answers)


def _which(X_train, X_test, means, scales, *, fit=_fit, order=(FIT_ON_TRAIN, FIT_ON_ALL), otherwise=FIT_ON_PREDICTED,
           compare_scales=True):
    candidates = {FIT_ON_TRAIN: fit(X_train), FIT_ON_ALL: fit(np.vstack([X_train, X_test])),
                  FIT_ON_PREDICTED: fit(X_test)}
    answers = []
    for mean, scale in zip(means, scales):
        for name in order:
            m, s = candidates[name]
            if np.allclose(mean, m) and (not compare_scales or np.allclose(scale, s)):
                answers.append(name)
                break
        else:
            answers.append(otherwise)
    return np.array(answers)


def _which_sample_std(X_train, X_test, means, scales):
    def fit(X):
        scale = X.std(axis=0, ddof=1)
        return X.mean(axis=0), np.where(scale == 0.0, 1.0, scale)
    return _which(X_train, X_test, means, scales, fit=fit)


def _which_zero_scale(X_train, X_test, means, scales):
    return _which(X_train, X_test, means, scales, fit=lambda X: (X.mean(axis=0), X.std(axis=0)))


def _which_no_third_shortcut(X_train, X_test, means, scales):
    return _which(X_train, X_test, means, scales, order=(FIT_ON_TRAIN,), otherwise=FIT_ON_ALL, compare_scales=False)


def _which_wrong_axis(X_train, X_test, means, scales):
    return _which(X_train, X_test, means, scales, fit=lambda X: (X.mean(axis=1), X.std(axis=1)))


def _which_always(label):
    def guess(X_train, X_test, means, scales):
        return np.array([label] * len(means))
    guess.__name__ = "_which_always_" + label.split()[-1]
    return guess


_MOMENTUM_BOOK = "ch07-momentum"
_LEAK_BOOK = "ch07-leakage"
UNDERSTANDING_PARTS = [
    Part(id="expected_running_stats", points=2, function="expected_running_stats",
         outputs=("running_mean", "running_var"), cases=running_cases, reference=running_reference,
         call=running_call,
         mutants={
             "Keras' momentum used as torch's": Mutant(_running_keras_as_torch, book=_MOMENTUM_BOOK, feedback=(
                 "In Keras the momentum is the weight of the *old* value (0.99 by default); in torch it is the weight "
                 "of the *new* batch statistic (0.1). Keras' 0.99 is torch's 0.01.")),
             "Keras' running variance unbiased": Mutant(_running_keras_unbiased, book="ch07-torch", feedback=(
                 "Keras updates its moving variance with the batch variance as it normalizes (divided by m), "
                 "whose expectation is (m - 1) / m times the population variance; only torch applies m / (m - 1).")),
             "torch's running variance biased": Mutant(_running_torch_biased, book=_MOMENTUM_BOOK, feedback=(
                 "torch's running variance is updated with the unbiased batch variance, m / (m - 1) times the one "
                 "that normalizes, so its expectation is the population variance.")),
             "running variance starting at 0": Mutant(_running_var_from_zero, book=_MOMENTUM_BOOK, feedback=(
                 "The running statistics start at mean 0 and variance 1 (torch and Keras alike), and after t steps "
                 "the initial value keeps the weight (1 - alpha)^t.")),
             "one step short": Mutant(_running_one_step_short, book=_MOMENTUM_BOOK, feedback=(
                 "Each of the t training-mode passes updates the running statistics once: the initial value keeps "
                 "the weight (1 - alpha)^t after t steps, not (1 - alpha)^(t - 1).")),
             "the population values": Mutant(_running_converged, book=_MOMENTUM_BOOK, feedback=(
                 "A running average forgets its initial value only gradually: after t steps it still keeps the "
                 "weight (1 - alpha)^t, which matters early in training or with a small momentum.")),
         }),
    Part(id="which_statistics", points=2, function="which_statistics", outputs=("fitted_on",),
         cases=statistics_cases, reference=statistics_reference,
         mutants={
             "sample standard deviation (ddof=1)": Mutant(_which_sample_std, book="ch07-standardizer", feedback=(
                 "The standardizer's scale is the population standard deviation (dividing by N, np.std's default), "
                 "as in Part 1: the statistics you compare with must be computed the same way.")),
             "zero-variance features left at scale 0": Mutant(_which_zero_scale, book="ch07-standardizer", feedback=(
                 "A feature constant in the data it was fitted on (a blank border pixel) gets scale 1, not 0: "
                 "compute the candidate statistics exactly as the standardizer does.")),
             "the second shortcut forgotten": Mutant(_which_no_third_shortcut, book=_LEAK_BOOK, feedback=(
                 "There are two tempting shortcuts: statistics of all the data (a leak), and statistics of the data "
                 "to be predicted (a fresh scaler at prediction time). Check for both.")),
             "statistics over the wrong axis": Mutant(_which_wrong_axis, book="ch07-standardizer", feedback=(
                 "Standardization is per feature: the mean and scale of each column, over the examples (axis 0).")),
             "always the training split": Mutant(_which_always(FIT_ON_TRAIN), book=_LEAK_BOOK, feedback=(
                 "Compare each pipeline's statistics with those of the training split, of all the data and of the "
                 "test data: several pipelines took a shortcut.")),
             "always all the data": Mutant(_which_always(FIT_ON_ALL), book=_LEAK_BOOK, feedback=(
                 "Compare each pipeline's statistics with those of the training split, of all the data and of the "
                 "test data: some pipelines did it right.")),
         }),
]


PARTS = [
    Part(id="standardizer_fit", points=2, function="standardizer_fit", outputs=("mean", "scale"),
         cases=fit_cases, reference=fit_reference, forbid=_FORBID_NORMALIZATION,
         mutants={
             "sample standard deviation (N - 1)": Mutant(
                 _fit_ddof1, book="ch07-standardizer",
                 feedback="scale divides by N - 1 (the sample standard deviation, np.std(ddof=1)); the statement asks "
                          "for the population standard deviation, which divides by N (np.std's default)."),
             "variance instead of standard deviation": Mutant(
                 _fit_variance, book="ch07-standardizer",
                 feedback="scale is the variance of each feature; it should be the standard deviation, the square "
                          "root of the variance."),
             "constant features keep scale 0": Mutant(
                 _fit_zero_scale, book="ch07-standardizer",
                 feedback="a feature whose values are all equal keeps its standard deviation (0, or rounding noise "
                          "near 1e-17) as its scale: such a feature gets scale 1, so that transforming never divides "
                          "by zero."),
             "1e-8 added to every standard deviation": Mutant(
                 _fit_eps, book="ch07-standardizer",
                 feedback="a small constant (like 1e-8) is added to every standard deviation: only the features "
                          "whose values are all equal get a special scale (1); every other feature is divided by its "
                          "exact standard deviation, however small."),
             "small genuine spread treated as constant": Mutant(
                 _fit_threshold, book="ch07-standardizer",
                 feedback="a feature with a tiny but genuine spread (a standard deviation around 1e-3) is treated as "
                          "constant: a threshold such as std < 1e-2 is too coarse. Only features whose values are "
                          "all equal get scale 1."),
             "constant feature detected by std == 0": Mutant(
                 _fit_std_equals_zero, book="ch07-standardizer",
                 feedback="constant features are detected with std == 0, which misses some: when the mean of a "
                          "column of equal values (all 0.1, say) carries a rounding error, its computed standard "
                          "deviation is about 1e-17, not 0. Test whether all values are equal instead: "
                          "np.ptp(X, axis=0) == 0, or (X == X[0]).all(axis=0)."),
             "statistics over the wrong axis": Mutant(
                 _fit_wrong_axis, diagnosis="wrong_axis", book="ch07-standardizer",
                 feedback="the statistics are computed over the features of each example (axis 1); they are per "
                          "feature, over the examples: axis 0."),
             "X centred in place": Mutant(
                 _fit_in_place, diagnosis="mutated_input", book="ch07-standardizer",
                 feedback="X is changed in place (X -= mean): the grader hands X over read-only. Compute X - mean "
                          "into a new array."),
         }),
    Part(id="standardizer_transform", points=1, function="standardizer_transform", outputs=("Z",),
         cases=transform_cases, reference=transform_reference, forbid=_FORBID_NORMALIZATION,
         mutants={
             "not centred": Mutant(
                 _transform_no_centring, diagnosis="row_offset", book="ch07-standardizer",
                 feedback="the mean is not subtracted: Z = (X - mean) / scale."),
             "divides by the variance": Mutant(
                 _transform_variance, book="ch07-standardizer",
                 feedback="X - mean is divided by scale squared; scale is already a standard deviation: divide by "
                          "it once."),
             "re-fitted on the data it transforms": Mutant(
                 _transform_refit, book="ch07-leakage",
                 feedback="the mean and scale are re-estimated from the X being transformed; use the mean and scale "
                          "given (fitted on the training data), the same for every set and every single example."),
             "X modified in place": Mutant(
                 _transform_in_place, diagnosis="mutated_input", book="ch07-standardizer",
                 feedback="X is changed in place (X -= mean, X /= scale): the grader hands X over read-only. Compute "
                          "(X - mean) / scale into a new array."),
             "multiplies by the scale": Mutant(
                 _transform_multiplies, book="ch07-standardizer",
                 feedback="X - mean is multiplied by scale; standardizing divides by it."),
         }),
    Part(id="batchnorm_forward_train", points=3, function="batchnorm_forward",
         outputs=("out", "xc", "inv_std", "new_running_mean", "new_running_var"),
         cases=bn_train_cases, reference=bn_train_reference, call=adapters.bn_forward_train,
         forbid=_FORBID_NORMALIZATION,
         mutants={
             "unbiased variance normalizes": Mutant(
                 _mutant(norm_ddof=1), book="ch07-transform",
                 feedback="x is normalized with the unbiased batch variance (divided by N - 1); the variance that "
                          "normalizes is the biased one (divided by N). Only the running variance uses N - 1."),
             "biased variance in the running statistics": Mutant(
                 _mutant(running_ddof=0), book="ch07-momentum",
                 feedback="the running variance is updated with the biased batch variance (divided by N); PyTorch's "
                          "update uses the unbiased one (divided by N - 1)."),
             "momentum weights the old value (Keras)": Mutant(
                 _mutant(keras=True), book="ch07-momentum",
                 feedback="momentum weights the old running value, as in Keras; here, as in PyTorch, it weights the "
                          "new batch statistic: new = (1 - momentum) * old + momentum * batch."),
             "eps outside the square root": Mutant(
                 _mutant(eps_outside=True), book="ch07-transform",
                 feedback="eps is added to the standard deviation (sqrt(var) + eps); it belongs inside the square "
                          "root: 1 / sqrt(var + eps)."),
             "normalized over the features (wrong axis)": Mutant(
                 _mutant(axis=1), book="ch07-transform",
                 feedback="the mean and variance are computed over the features of each example (axis 1); batch "
                          "normalization normalizes each feature over the batch: axis 0."),
             "running statistics updated in place": Mutant(
                 _mutant(in_place=True), diagnosis="mutated_input", book="ch07-momentum",
                 feedback="running_mean or running_var is changed in place: the grader hands them over read-only. "
                          "Return the updated statistics as new arrays."),
             "cache holds the standard deviation": Mutant(
                 _mutant(std_in_cache=True), book="ch07-backward-graph",
                 feedback="cache['inv_std'] holds the standard deviation sqrt(var + eps); it holds its inverse, "
                          "1 / sqrt(var + eps)."),
             "running statistics replaced by the batch's": Mutant(
                 _mutant(no_momentum=True), book="ch07-momentum",
                 feedback="the running statistics are replaced by the batch's; they are moving averages: "
                          "(1 - momentum) * old + momentum * batch."),
         }),
    Part(id="batchnorm_forward_eval", points=1, function="batchnorm_forward",
         outputs=("out", "xc", "inv_std", "new_running_mean", "new_running_var"),
         cases=bn_eval_cases, reference=bn_eval_reference, call=adapters.bn_forward_eval,
         forbid=_FORBID_NORMALIZATION,
         mutants={
             "batch statistics at inference": Mutant(
                 _mutant(eval_batch_stats=True), book="ch07-inference",
                 feedback="in inference mode x is normalized with the batch's own mean and variance; at inference "
                          "the layer uses the running statistics, so that an example's output does not depend on "
                          "the rest of its batch (which may hold a single example)."),
             "running statistics updated at inference": Mutant(
                 _mutant(eval_updates=True), book="ch07-inference",
                 feedback="the running statistics are updated in inference mode; they change in training mode only: "
                          "in inference mode return them unchanged (as copies)."),
             "running variance used as a standard deviation": Mutant(
                 _mutant(eval_var_as_std=True), book="ch07-inference",
                 feedback="x - running_mean is divided by running_var + eps; running_var is a variance: divide by "
                          "sqrt(running_var + eps)."),
             "eps outside the square root at inference": Mutant(
                 _mutant(eval_eps_outside=True), book="ch07-inference",
                 feedback="eps is added outside the square root (sqrt(running_var) + eps); it belongs inside: "
                          "1 / sqrt(running_var + eps)."),
             "running statistics returned without a copy": Mutant(
                 _mutant(eval_no_copy=True), diagnosis="returned_input", book="ch07-inference",
                 feedback="in inference mode running_mean and running_var are returned themselves; the statement "
                          "asks for copies (running_mean.copy()), so that the new statistics never share memory "
                          "with the old ones."),
         }),
    Part(id="batchnorm_backward", points=3, function="batchnorm_backward", outputs=("dx", "dgamma", "dbeta"),
         cases=bn_backward_cases, reference=bn_backward_reference, call=adapters.bn_backward,
         forbid=_FORBID_NORMALIZATION,
         mutants={
             "batch mean and variance treated as constants": Mutant(
                 _backward_mutant(constants=True), book="ch07-backward-graph",
                 feedback="in training mode dx = gamma * inv_std * dout treats the batch mean and variance as "
                          "constants (that is the gradient of inference mode); they depend on every x_i too: dx "
                          "sums three paths, through xhat, through the mean and through the variance."),
             "variance path missing": Mutant(
                 _backward_mutant(no_var_path=True), book="ch07-backward-graph",
                 feedback="dx has the path through the batch mean but not the one through the batch variance, "
                          "which depends on every x_i too: the term xhat * mean(dout * xhat) over the batch is "
                          "missing."),
             "mean path missing": Mutant(
                 _backward_mutant(no_mean_path=True), book="ch07-backward-graph",
                 feedback="dx has the path through the batch variance but not the one through the batch mean: the "
                          "term mean(dout) over the batch is missing."),
             "dgamma without xhat": Mutant(
                 _backward_mutant(dgamma_no_xhat=True), book="ch07-backward-graph",
                 feedback="dgamma is the sum of dout; since out = gamma * xhat + beta, dgamma is the sum over the "
                          "batch of dout * xhat."),
             "dgamma from the centred input instead of xhat": Mutant(
                 _backward_mutant(dgamma_xc=True), book="ch07-backward-graph",
                 feedback="dgamma sums dout * xc; it sums dout * xhat, with xhat = xc * inv_std."),
             "dbeta averaged over the batch": Mutant(
                 _backward_mutant(dbeta_mean=True), diagnosis="missing_factor_n", book="ch07-backward-graph",
                 feedback="dbeta is the mean of dout over the batch; beta is added to every row, so its gradient is "
                          "the sum over the rows."),
             "compact form without its 1/N": Mutant(
                 _backward_mutant(no_inv_n=True), diagnosis="extra_factor_n", book="ch07-backward-compact",
                 feedback="dx in training mode is N times too large: the compact form is gamma * inv_std / N * "
                          "(N dout - sum(dout) - xhat * sum(dout * xhat)), and its 1/N is missing."),
             "dout modified in place": Mutant(
                 _backward_mutant(in_place=True), diagnosis="mutated_input", book="ch07-backward-compact",
                 feedback="dout (or an array of the cache) is changed in place: the grader hands them over "
                          "read-only. Compute dx into a new array."),
         }),
    *UNDERSTANDING_PARTS,
]
