"""Translation between mlp_lib's conventions and torch's: the one place that does it.

mlp_lib writes a linear layer as ``out = x @ W + b`` with ``W`` of shape
(D_in, D_out): a batch x of shape (N, D_in) multiplies from the left, as in
the book's equations. torch's ``nn.Linear`` stores ``weight`` of shape
(D_out, D_in) and computes ``x @ weight.T + bias``. The two weights are
transposes of each other; biases, shape (D_out,), are the same in both.

Every conversion returns new arrays (never a view sharing memory), so that
changing one side cannot silently change the other. torch is imported lazily,
inside the functions that need it: ``import mlp_lib`` works without torch.
"""
from __future__ import annotations

import sys

import numpy as np

from mlp_lib._checks import float_array

__all__ = ["weight_to_torch", "weight_from_torch"]


def _as_numpy(value):
    """A torch tensor becomes a numpy array (detached, on the CPU); anything else passes through."""
    torch = sys.modules.get("torch")  # an object can only be a tensor if torch is already imported
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value


def weight_to_torch(W):
    """mlp_lib weight -> torch layout.

    Shapes: W (D_in, D_out) -> (D_out, D_in), a new C-contiguous numpy array
    with W's dtype, ready for ``torch.tensor(...)`` or ``nn.Linear.weight``.
    """
    W = float_array("W", W, ndim=2)
    return np.array(W.T, order="C", copy=True)


def weight_from_torch(weight):
    """torch weight -> mlp_lib layout.

    Shapes: weight (D_out, D_in), a torch tensor or numpy array -> W (D_in, D_out),
    a new C-contiguous numpy array with the weight's dtype.
    """
    weight = float_array("weight", _as_numpy(weight), ndim=2)
    return np.array(weight.T, order="C", copy=True)


# ---------------------------------------------------------------------------
# Whole models: mlp_lib.modules <-> torch.nn (Chapters 3 and 5)
# ---------------------------------------------------------------------------

__all__ += ["to_torch_sequential", "from_torch_sequential", "to_torch", "from_torch"]

# Activations whose constructor options carry over under the same names.
_ACTIVATION_OPTIONS = {
    "Sigmoid": (), "Tanh": (), "ReLU": (), "SiLU": (),
    "LeakyReLU": ("negative_slope",), "ELU": ("alpha",),
    "Softplus": ("beta", "threshold"), "GELU": ("approximate",),
}


def _torch_residual_class():
    import torch

    class TorchResidual(torch.nn.Module):
        """``x + block(x)``: torch has no built-in skip connection module."""

        def __init__(self, block):
            super().__init__()
            self.block = block

        def forward(self, x):
            return x + self.block(x)

    return TorchResidual


_RESIDUAL = None


def _residual_cls():
    global _RESIDUAL
    if _RESIDUAL is None:
        _RESIDUAL = _torch_residual_class()
    return _RESIDUAL


def _tensor(a):
    import torch

    return torch.tensor(np.array(a, copy=True))


def _layer_to_torch(layer):
    import torch
    from mlp_lib import modules as M

    nn = torch.nn
    name = type(layer).__name__
    if isinstance(layer, M.Sequential):
        return nn.Sequential(*(_layer_to_torch(child) for child in layer))
    if isinstance(layer, M.Residual):
        return _residual_cls()(_layer_to_torch(layer.block))
    if isinstance(layer, M.Linear):
        dtype = getattr(torch, str(layer.weight.dtype))
        t = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None, dtype=dtype)
        with torch.no_grad():
            t.weight.copy_(_tensor(weight_to_torch(layer.weight.data)))
            if layer.bias is not None:
                t.bias.copy_(_tensor(layer.bias.data))
        return t
    if isinstance(layer, M.BatchNorm1d):
        dtype = getattr(torch, str(layer.weight.dtype))
        t = nn.BatchNorm1d(layer.num_features, eps=layer.eps, momentum=layer.momentum, dtype=dtype)
        with torch.no_grad():
            t.weight.copy_(_tensor(layer.weight.data))
            t.bias.copy_(_tensor(layer.bias.data))
            t.running_mean.copy_(_tensor(layer.running_mean))
            t.running_var.copy_(_tensor(layer.running_var))
        return t
    if isinstance(layer, M.Dropout):
        return nn.Dropout(p=layer.p)
    if name in _ACTIVATION_OPTIONS and isinstance(layer, getattr(M, name)):
        return getattr(nn, name)(**{k: getattr(layer, k) for k in _ACTIVATION_OPTIONS[name]})
    raise TypeError(f"to_torch_sequential cannot translate a {name} layer")


def to_torch_sequential(model):
    """mlp_lib model -> ``torch.nn.Sequential`` with identical weights. Chapter 3.

    ``model``: a :class:`mlp_lib.modules.Sequential` (or a single layer, which
    becomes a one-layer Sequential). Linear weights are transposed (see
    :func:`weight_to_torch`), BatchNorm1d keeps its running statistics, eps and
    momentum, activations keep their options, Residual becomes a small torch
    module computing ``x + block(x)``, and the train/eval mode carries over.
    Parameters have the model's dtype. Dropout masks are random on both sides:
    to compare a training-mode pass, feed the same mask explicitly.
    """
    from mlp_lib import modules as M

    if not isinstance(model, M.Module):
        raise TypeError(f"model must be an mlp_lib Module, got {type(model).__name__}")
    seq = _layer_to_torch(model)
    if not isinstance(model, M.Sequential):
        import torch

        seq = torch.nn.Sequential(seq)
    return seq.train(model.training)


def _layer_from_torch(t, rng):
    import torch
    from mlp_lib import modules as M

    nn = torch.nn
    name = type(t).__name__
    if isinstance(t, nn.Sequential):
        return M.Sequential(*(_layer_from_torch(child, rng) for child in t))
    if isinstance(t, _residual_cls()):
        return M.Residual(_layer_from_torch(t.block, rng))
    if isinstance(t, nn.Linear):
        b = None if t.bias is None else _as_numpy(t.bias).copy()
        return M.Linear.from_arrays(weight_from_torch(t.weight), b)
    if isinstance(t, nn.BatchNorm1d):
        if t.momentum is None or not t.affine or not t.track_running_stats:
            raise ValueError("from_torch_sequential supports BatchNorm1d with affine=True, "
                             "track_running_stats=True and a float momentum")
        dtype = t.weight.dtype
        bn = M.BatchNorm1d(t.num_features, momentum=t.momentum, eps=t.eps,
                           dtype=np.float32 if dtype == torch.float32 else np.float64)
        bn.weight.data = _as_numpy(t.weight).copy()
        bn.bias.data = _as_numpy(t.bias).copy()
        bn.running_mean = _as_numpy(t.running_mean).copy()
        bn.running_var = _as_numpy(t.running_var).copy()
        return bn
    if isinstance(t, nn.Dropout):
        if rng is None:
            raise ValueError("the torch model contains Dropout: pass rng= to draw its masks")
        return M.Dropout(t.p, rng=rng)
    if name in _ACTIVATION_OPTIONS and isinstance(t, getattr(nn, name)):
        return getattr(M, name)(**{k: getattr(t, k) for k in _ACTIVATION_OPTIONS[name]})
    raise TypeError(f"from_torch_sequential cannot translate a torch {name} layer")


def from_torch_sequential(torch_seq, *, rng=None):
    """``torch.nn.Sequential`` -> :class:`mlp_lib.modules.Sequential` with identical weights. Chapter 3.

    The reverse of :func:`to_torch_sequential` (Linear, BatchNorm1d, Dropout, the
    activations above, nested Sequential, and its Residual). ``rng`` (a
    Generator or an int seed) is needed only when there is Dropout: one
    Generator is shared by all Dropout layers. Every array is a copy.
    """
    import torch

    from mlp_lib._checks import as_generator

    if not isinstance(torch_seq, torch.nn.Sequential):
        raise TypeError(f"torch_seq must be a torch.nn.Sequential, got {type(torch_seq).__name__}")
    gen = None if rng is None else as_generator(rng)
    return _layer_from_torch(torch_seq, gen).train(torch_seq.training)


# The short names used throughout the book.
to_torch = to_torch_sequential
from_torch = from_torch_sequential
