"""Grading spec of Chapter 7's exercise: input standardization and batch normalization.

Every Part draws its cases from the grader's rng and is judged against a torch reference computed
in float64. Conventions, as stated in the exercise and in the book (``mlp_lib.normalization``
follows them too, and so does PyTorch):

* ``standardizer_fit(X) -> (mean, scale)``: per-feature mean and *population* standard deviation
  (``torch.std(unbiased=False)``, dividing by N); a feature whose standard deviation is exactly 0
  (constant in X) gets ``scale = 1`` (left unscaled). ``standardizer_transform(X, mean, scale)``
  returns ``(X - mean) / scale``. The constant features of the cases hold values whose mean is
  computed exactly (0, 2.5, -3), so their standard deviation is exactly 0 in every correct
  formulation; every case also has a feature with a tiny but genuine spread (std 1e-3), which a
  convention such as ``std + 1e-8`` or ``std < 1e-2 -> 1`` gets wrong;
* ``batchnorm_forward(x, gamma, beta, running_mean, running_var, *, training, momentum=0.1,
  eps=1e-5) -> (out, cache, new_running_mean, new_running_var)``: training mode normalizes with
  the batch mean and the *biased* batch variance, ``eps`` inside the square root, and returns
  running statistics updated as ``(1 - momentum) * old + momentum * batch`` with the *unbiased*
  batch variance (``torch.nn.functional.batch_norm``); inference mode normalizes with the running
  statistics and returns them unchanged. Nothing is modified in place. The cache is the dict
  ``{"training", "xc", "gamma", "inv_std"}`` of ``mlp_lib.normalization.batchnorm_forward``:
  ``xc`` the centred input (by the batch mean, or the running mean in inference mode) and
  ``inv_std = 1 / sqrt(var + eps)``; ``xc`` and ``inv_std`` are graded;
* ``batchnorm_backward(dout, cache) -> (dx, dgamma, dbeta)``: the gradients of the forward pass
  (autograd through ``F.batch_norm``), in both modes. The adapter builds the cache from the case
  in numpy, so this part does not depend on the student's forward pass.

Shapes are drawn with N != D so that a statistic over the wrong axis shows; momentum is never 0.5
(where torch's and Keras' conventions coincide). tests/test_assignment_ch07.py checks that each
mutant loses the points of its own part, and only those, with the diagnosis it names.
"""
import numpy as np
import torch
import torch.nn.functional as F

from autograder.spec import Mutant, Part

PUBLIC_SEED = 20150211       # arXiv 1502.03167: Ioffe and Szegedy, 11 February 2015


def _distinct_sizes(rng, k, low, high):
    """k distinct ints in [low, high): distinct dimensions make axis mistakes identifiable."""
    return [int(v) for v in rng.choice(np.arange(low, high), size=k, replace=False)]


# -- standardizer_fit -------------------------------------------------------------------------------
def _features(rng, n, d):
    """(n, d) features with different means and scales."""
    return rng.normal(rng.uniform(-5.0, 5.0, d), 10.0 ** rng.uniform(-1.0, 1.5, d), size=(n, d))


def fit_cases(rng):
    cases = []
    for constant in (0.0, 2.5, -3.0, None):
        n, d = _distinct_sizes(rng, 2, 4, 13)
        X = _features(rng, n, d)
        j_tiny, j_const = (int(v) for v in rng.choice(d, size=2, replace=False))
        X[:, j_tiny] = 0.7 + 1e-3 * rng.standard_normal(n)          # genuine but tiny spread
        if constant is not None:
            X[:, j_const] = constant                                   # exactly constant: scale 1
        cases.append({"X": X})
    return cases


def fit_reference(X):
    std = X.std(dim=0, unbiased=False)
    return X.mean(dim=0), torch.where(std == 0, torch.ones_like(std), std)


def _fit_ddof1(X):
    std = X.std(axis=0, ddof=1)
    return X.mean(axis=0), np.where(std == 0, 1.0, std)


def _fit_variance(X):
    var = X.var(axis=0)
    return X.mean(axis=0), np.where(var == 0, 1.0, var)


def _fit_zero_scale(X):
    return X.mean(axis=0), X.std(axis=0)


def _fit_eps(X):
    return X.mean(axis=0), X.std(axis=0) + 1e-8


def _fit_threshold(X):
    std = X.std(axis=0)
    return X.mean(axis=0), np.where(std < 1e-2, 1.0, std)


def _fit_wrong_axis(X):
    std = X.std(axis=1)
    return X.mean(axis=1), np.where(std == 0, 1.0, std)


def _fit_in_place(X):
    mean = X.mean(axis=0)
    X -= mean
    std = np.sqrt((X * X).mean(axis=0))
    return mean, np.where(std == 0, 1.0, std)


# -- standardizer_transform -------------------------------------------------------------------------
def transform_cases(rng):
    cases = []
    for _ in range(4):
        m, d = _distinct_sizes(rng, 2, 3, 12)
        scale = 10.0 ** rng.uniform(-1.0, 1.5, d)
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


def bn_train_call(student, x, gamma, beta, running_mean, running_var, momentum, eps):
    result = student.batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True,
                                       momentum=float(momentum), eps=float(eps))
    if not isinstance(result, tuple) or len(result) != 4:
        raise TypeError("batchnorm_forward must return the tuple (out, cache, new_running_mean, new_running_var)")
    out, cache, new_running_mean, new_running_var = result
    if not isinstance(cache, dict) or not {"training", "xc", "gamma", "inv_std"} <= set(cache):
        raise TypeError("the cache must be a dict with the keys 'training', 'xc', 'gamma' and 'inv_std'")
    return out, cache["xc"], cache["inv_std"], new_running_mean, new_running_var


def bn_train_reference(x, gamma, beta, running_mean, running_var, momentum, eps):
    new_mean, new_var = running_mean.clone(), running_var.clone()     # F.batch_norm updates them in place
    out = F.batch_norm(x, new_mean, new_var, gamma, beta, training=True, momentum=float(momentum), eps=float(eps))
    xc = x - x.mean(dim=0)
    inv_std = torch.rsqrt(x.var(dim=0, unbiased=False) + float(eps))
    return out, xc, inv_std, new_mean, new_var


def _bn(x, gamma, beta, running_mean, running_var, *, training, momentum=0.1, eps=1e-5,
        norm_ddof=0, running_ddof=1, keras=False, eps_outside=False, axis=0, in_place=False,
        std_in_cache=False, no_momentum=False, eval_batch_stats=False, eval_updates=False,
        eval_var_as_std=False, eval_eps_outside=False):
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


def bn_eval_call(student, x, gamma, beta, running_mean, running_var, momentum, eps):
    result = student.batchnorm_forward(x, gamma, beta, running_mean, running_var, training=False,
                                       momentum=float(momentum), eps=float(eps))
    if not isinstance(result, tuple) or len(result) != 4:
        raise TypeError("batchnorm_forward must return the tuple (out, cache, new_running_mean, new_running_var)")
    out, cache, new_running_mean, new_running_var = result
    if not isinstance(cache, dict) or not {"training", "xc", "gamma", "inv_std"} <= set(cache):
        raise TypeError("the cache must be a dict with the keys 'training', 'xc', 'gamma' and 'inv_std'")
    return out, cache["xc"], cache["inv_std"], new_running_mean, new_running_var


def bn_eval_reference(x, gamma, beta, running_mean, running_var, momentum, eps):
    new_mean, new_var = running_mean.clone(), running_var.clone()
    out = F.batch_norm(x, new_mean, new_var, gamma, beta, training=False, momentum=float(momentum), eps=float(eps))
    return out, x - running_mean, torch.rsqrt(running_var + float(eps)), new_mean, new_var


# -- batchnorm_backward ------------------------------------------------------------------------------
def bn_backward_cases(rng):
    cases = []
    for n_range, eps, training in (((2, 3), 1e-5, 1), ((6, 14), 1e-3, 1), ((20, 41), 1e-5, 1), ((3, 10), 1e-5, 0)):
        while True:
            n, d = int(rng.integers(*n_range)), int(rng.integers(3, 9))
            if n != d:
                break
        inputs = _bn_inputs(rng, n, d, tiny=n >= 20)
        cases.append({"dout": rng.standard_normal((n, d)), "x": inputs["x"], "gamma": inputs["gamma"],
                      "running_mean": inputs["running_mean"], "running_var": inputs["running_var"],
                      "eps": np.float64(eps), "training": np.int64(training)})
    return cases


def bn_backward_call(student, dout, x, gamma, running_mean, running_var, eps, training):
    # The cache of mlp_lib.normalization.batchnorm_forward, built here so that this part is graded
    # on its own (it does not depend on the student's forward pass).
    if int(training):
        xc = x - x.mean(axis=0)
        inv_std = 1.0 / np.sqrt((xc * xc).mean(axis=0) + float(eps))
    else:
        xc = x - running_mean
        inv_std = 1.0 / np.sqrt(running_var + float(eps))
    cache = {"training": bool(int(training)), "xc": xc, "gamma": gamma, "inv_std": inv_std}
    return student.batchnorm_backward(dout, cache)


def bn_backward_reference(dout, x, gamma, running_mean, running_var, eps, training):
    x, gamma = x.clone().requires_grad_(True), gamma.clone().requires_grad_(True)
    beta = torch.zeros_like(gamma, requires_grad=True)
    F.batch_norm(x, running_mean.clone(), running_var.clone(), gamma, beta, training=bool(int(training)),
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


_FORBID_NORMALIZATION = ("mlp_lib.normalization.Standardizer", "mlp_lib.normalization.batchnorm_train_kernel",
                         "mlp_lib.normalization.batchnorm_eval_kernel",
                         "mlp_lib.normalization.batchnorm_backward_kernel", "mlp_lib.modules.BatchNorm1d",
                         "sklearn.preprocessing.StandardScaler")

PARTS = [
    Part(id="standardizer_fit", points=2, function="standardizer_fit", outputs=("mean", "scale"),
         cases=fit_cases, reference=fit_reference, forbid=_FORBID_NORMALIZATION,
         mutants={"sample standard deviation (N - 1)": Mutant(_fit_ddof1),
                  "variance instead of standard deviation": Mutant(_fit_variance),
                  "constant features keep scale 0": Mutant(_fit_zero_scale),
                  "1e-8 added to every standard deviation": Mutant(_fit_eps),
                  "small genuine spread treated as constant": Mutant(_fit_threshold),
                  "statistics over the wrong axis": Mutant(_fit_wrong_axis, diagnosis="wrong_axis"),
                  "X centred in place": Mutant(_fit_in_place, diagnosis="mutated_input")}),
    Part(id="standardizer_transform", points=1, function="standardizer_transform", outputs=("Z",),
         cases=transform_cases, reference=transform_reference, forbid=_FORBID_NORMALIZATION,
         mutants={"not centred": Mutant(_transform_no_centring, diagnosis="row_offset"),
                  "divides by the variance": Mutant(_transform_variance),
                  "re-fitted on the data it transforms": Mutant(_transform_refit),
                  "X modified in place": Mutant(_transform_in_place, diagnosis="mutated_input"),
                  "multiplies by the scale": Mutant(_transform_multiplies)}),
    Part(id="batchnorm_forward_train", points=3, function="batchnorm_forward",
         outputs=("out", "xc", "inv_std", "new_running_mean", "new_running_var"),
         cases=bn_train_cases, reference=bn_train_reference, call=bn_train_call, forbid=_FORBID_NORMALIZATION,
         mutants={"unbiased variance normalizes": Mutant(_mutant(norm_ddof=1)),
                  "biased variance in the running statistics": Mutant(_mutant(running_ddof=0)),
                  "momentum weights the old value (Keras)": Mutant(_mutant(keras=True)),
                  "eps outside the square root": Mutant(_mutant(eps_outside=True)),
                  "normalized over the features (wrong axis)": Mutant(_mutant(axis=1)),
                  "running statistics updated in place": Mutant(_mutant(in_place=True), diagnosis="mutated_input"),
                  "cache holds the standard deviation": Mutant(_mutant(std_in_cache=True)),
                  "running statistics replaced by the batch's": Mutant(_mutant(no_momentum=True))}),
    Part(id="batchnorm_forward_eval", points=1, function="batchnorm_forward",
         outputs=("out", "xc", "inv_std", "new_running_mean", "new_running_var"),
         cases=bn_eval_cases, reference=bn_eval_reference, call=bn_eval_call, forbid=_FORBID_NORMALIZATION,
         mutants={"batch statistics at inference": Mutant(_mutant(eval_batch_stats=True)),
                  "running statistics updated at inference": Mutant(_mutant(eval_updates=True)),
                  "running variance used as a standard deviation": Mutant(_mutant(eval_var_as_std=True)),
                  "eps outside the square root at inference": Mutant(_mutant(eval_eps_outside=True))}),
    Part(id="batchnorm_backward", points=3, function="batchnorm_backward", outputs=("dx", "dgamma", "dbeta"),
         cases=bn_backward_cases, reference=bn_backward_reference, call=bn_backward_call,
         forbid=_FORBID_NORMALIZATION,
         mutants={"batch mean and variance treated as constants": Mutant(_backward_mutant(constants=True)),
                  "variance path missing": Mutant(_backward_mutant(no_var_path=True)),
                  "mean path missing": Mutant(_backward_mutant(no_mean_path=True)),
                  "dgamma without xhat": Mutant(_backward_mutant(dgamma_no_xhat=True)),
                  "dgamma from the centred input instead of xhat": Mutant(_backward_mutant(dgamma_xc=True)),
                  "dbeta averaged over the batch": Mutant(_backward_mutant(dbeta_mean=True),
                                                          diagnosis="missing_factor_n"),
                  "compact form without its 1/N": Mutant(_backward_mutant(no_inv_n=True), diagnosis="extra_factor_n"),
                  "dout modified in place": Mutant(_backward_mutant(in_place=True), diagnosis="mutated_input")}),
]
