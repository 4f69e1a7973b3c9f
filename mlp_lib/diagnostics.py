"""Looking inside a network: activation statistics, saturation, dead ReLUs,
gradient norms and update ratios. Chapters 4, 5 and 7.

The core functions take plain arrays, so they work with any model (mlp_lib's,
torch's via ``.detach().numpy()``, a hand-written one). Two helpers read an
mlp_lib model directly and only rely on duck typing: a model with a ``layers``
list of callables (:class:`mlp_lib.modules.Sequential`), and ``parameters()``
yielding objects with ``.data`` and ``.grad``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mlp_lib._checks import array_list, float_array, one_of, probability

__all__ = [
    "activation_stats",
    "saturation_fraction",
    "dead_relu_fraction",
    "gradient_norms",
    "update_ratios",
    "layer_activations",
    "per_layer_gradient_norms",
]

DEFAULT_PERCENTILES = (1, 25, 50, 75, 99)
# Distance from an asymptote that counts as saturated: sigmoid'(a) = a(1-a) < 0.0099
# there, about 4% of its peak 0.25; tanh'(a) = 1 - a² < 0.02 there.
DEFAULT_SATURATION_THRESHOLD = 0.01


def activation_stats(activations: Sequence[np.ndarray], *,
                     percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> list[dict]:
    """Summary statistics of each layer's activations. Chapter 5.

    activations: a list of arrays (any shape, typically (N, D_l)), one per layer.
    Returns one dict per array with Python floats: ``mean``, ``std`` (population),
    ``min``, ``max``, and ``p<q>`` for each percentile q (default p1, p25, p50,
    p75, p99; numpy's linear interpolation). Empty arrays are rejected.
    """
    arrays = array_list("activations", activations)
    qs = [float(q) for q in percentiles]
    if not qs or any(not 0 <= q <= 100 for q in qs):
        raise ValueError(f"percentiles must be a non-empty list of numbers in [0, 100], got {percentiles!r}")
    out = []
    for i, a in enumerate(arrays):
        if a.size == 0:
            raise ValueError(f"activations[{i}] is empty (shape {a.shape})")
        x = a.astype(np.float64, copy=False)
        stats = {"mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()), "max": float(x.max())}
        for q, v in zip(qs, np.percentile(x, qs)):
            stats[f"p{q:g}"] = float(v)
        out.append(stats)
    return out


def saturation_fraction(a, *, kind: str, threshold: float = DEFAULT_SATURATION_THRESHOLD) -> float:
    """Fraction of the entries of ``a`` that sit at an asymptote of the activation. Chapter 4.

    a: activations (outputs, not pre-activations) of any shape; every entry
    (one unit on one example) counts once.

    * ``kind="sigmoid"``: saturated when ``a < threshold`` or ``a > 1 - threshold``
      (default: a < 0.01 or a > 0.99); ``a`` must lie in [0, 1].
    * ``kind="tanh"``: saturated when ``|a| > 1 - threshold`` (default |a| > 0.99);
      ``a`` must lie in [-1, 1].

    A value outside the activation's range raises ValueError: it usually means
    pre-activations were passed.
    """
    one_of("kind", kind, ("sigmoid", "tanh"))
    a = float_array("a", a)
    threshold = probability("threshold", threshold)
    if threshold == 0 or threshold >= 0.5:
        raise ValueError(f"threshold must be in (0, 0.5), got {threshold}")
    if a.size == 0:
        raise ValueError("a is empty")
    if kind == "sigmoid":
        if a.min() < 0 or a.max() > 1:
            raise ValueError(f"sigmoid activations must lie in [0, 1], got values in [{a.min()}, {a.max()}] "
                             "(pre-activations passed by mistake?)")
        saturated = (a < threshold) | (a > 1 - threshold)
    else:
        if np.abs(a).max() > 1:
            raise ValueError(f"tanh activations must lie in [-1, 1], got values in [{a.min()}, {a.max()}] "
                             "(pre-activations passed by mistake?)")
        saturated = np.abs(a) > 1 - threshold
    return float(saturated.mean())


def dead_relu_fraction(pre_activations) -> float:
    """Fraction of ReLU units that are inactive for every example of the batch. Chapter 4.

    pre_activations: (N, D), the inputs z of a ReLU layer of D units. A unit is
    dead on this batch when ``z <= 0`` for all N examples: its output and its
    gradient (ReLU's derivative is 0 at 0) are then zero for the whole batch,
    so its incoming weights get no update from it. The ReLU outputs work too
    (``relu(z) == 0`` exactly when ``z <= 0``).
    """
    z = float_array("pre_activations", pre_activations, ndim=2)
    if z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(f"pre_activations must have shape (N, D) with N, D >= 1, got {z.shape}")
    return float((z <= 0).all(axis=0).mean())


def gradient_norms(grads: Sequence[np.ndarray]) -> list[float]:
    """L2 norm (Frobenius for matrices) of each gradient array. Chapters 4-5.

    grads: a list of arrays of any shapes. Returns a list of Python floats,
    ``sqrt(sum(g**2))`` per array, computed in float64.
    """
    return [float(np.linalg.norm(g.astype(np.float64, copy=False).ravel())) for g in array_list("grads", grads)]


def update_ratios(params: Sequence[np.ndarray], updates: Sequence[np.ndarray]) -> list[float]:
    """``||update|| / ||param||`` for each parameter array. Chapter 7.

    params: the parameter arrays before the step; updates: the change the step
    applies (``new - old``, e.g. ``-lr * grad`` for plain SGD), same shapes.
    A healthy learning rate typically gives ratios around 1e-3 for weight
    matrices. A zero-norm parameter (e.g. freshly zeroed biases) gives ``inf``
    for a non-zero update and 0.0 for a zero one.
    """
    ps = array_list("params", params)
    us = array_list("updates", updates)
    if len(ps) != len(us):
        raise ValueError(f"params and updates must have the same length, got {len(ps)} and {len(us)}")
    out = []
    for i, (p, u) in enumerate(zip(ps, us)):
        if p.shape != u.shape:
            raise ValueError(f"updates[{i}] must have the shape of params[{i}] {p.shape}, got {u.shape}")
        pn, un = gradient_norms([p, u])
        if pn == 0:
            out.append(math.inf if un > 0 else 0.0)
        else:
            out.append(un / pn)
    return out


# ---------------------------------------------------------------- model-level helpers


def _layers(model) -> list:
    layers = getattr(model, "layers", None)
    if layers is None:
        raise TypeError(f"model must have a `layers` list (e.g. mlp_lib.modules.Sequential), "
                        f"got {type(model).__name__}")
    layers = list(layers)
    for i, layer in enumerate(layers):
        if not callable(layer):
            raise TypeError(f"model.layers[{i}] is not callable: {layer!r}")
    return layers


def layer_activations(model, x) -> list[np.ndarray]:
    """The output of every layer of a sequential model on input ``x``. Chapters 4-5.

    model: anything with a ``layers`` list of callables applied in order
    (:class:`mlp_lib.modules.Sequential`). x: (N, D_in). Returns a list with
    one array per layer (a Linear's output is the next activation's
    pre-activation, which is what :func:`dead_relu_fraction` wants). The layers
    are simply called, so they run in whatever mode (train/eval) the model is in.
    """
    layers = _layers(model)
    h = float_array("x", x, ndim=2)
    outputs = []
    for layer in layers:
        h = layer(h)
        outputs.append(h)
    return outputs


def _grad_norm(param, where: str) -> float:
    if not hasattr(param, "grad"):
        raise TypeError(f"{where} has no `.grad` attribute (expected an mlp_lib Parameter)")
    if param.grad is None:
        return math.nan
    return gradient_norms([np.asarray(param.grad)])[0]


def per_layer_gradient_norms(model) -> dict[str, float]:
    """Norm of the gradient of each layer's parameters, read from ``.grad``. Chapters 4-5.

    For a model with a ``layers`` list, returns ``{"<index>:<LayerClass>": norm}``
    for every layer that has parameters (in layer order), where ``norm`` is the
    L2 norm over all that layer's parameter gradients together (weights and
    bias; the norm ``clip_grad_norm`` would see for the layer). A model without
    ``layers`` is treated as a single layer. A parameter whose ``.grad`` is
    None (no backward pass yet) makes its layer's norm NaN. Call after
    ``backward`` and before ``zero_grad``.
    """
    layers = list(getattr(model, "layers", None) or [model])
    norms = {}
    for i, layer in enumerate(layers):
        params_fn = getattr(layer, "parameters", None)
        if params_fn is None:
            continue
        params = list(params_fn())
        if not params:
            continue
        parts = [_grad_norm(p, f"a parameter of layer {i} ({type(layer).__name__})") for p in params]
        norms[f"{i}:{type(layer).__name__}"] = float(math.sqrt(sum(v * v for v in parts)))
    if not norms:
        raise ValueError(f"{type(model).__name__} has no parameters to read gradients from")
    return norms
