"""Modules: a thin, PyTorch-like object layer over the functional core.

Chapters 1, 3, 5, 7 and 9. In the spirit of micrograd, there is no autograd
engine: every module's ``forward(x)`` keeps what its ``backward`` needs (the
cache of the functional ``*_forward``), and ``backward(dout)`` accumulates the
parameter gradients into ``Parameter.grad`` and returns ``dx``. A ``Sequential``
chains the backward passes in reverse order — backpropagation, spelled out.

Conventions shared with torch, so that :mod:`mlp_lib.interop` can translate
any model both ways: parameter names (``weight``, ``bias``; Sequential children
``"0"``, ``"1"``, ...), ``train()``/``eval()``, gradients that *accumulate*
until ``zero_grad()``, and ``state_dict()`` keys. One difference: a
``Linear.weight`` is (D_in, D_out) here and (D_out, D_in) in torch.

Validation: every module checks what it receives with :mod:`mlp_lib._checks`.
The activations and ``Dropout`` call the functional pairs, checks included.
``Linear`` and ``BatchNorm1d`` call the same formulas (private functions of
``layers`` and ``normalization``) without re-checking their own parameters on
every call: their input is checked fully (``BatchNorm1d`` gets the NaN/inf
check almost free from its statistics), ``dout`` for type, shape and dtype but
not scanned for NaN (it comes from the loss, whose scores are checked, or from
the next layer; a full scan per layer would cost as much as the layer's
elementwise work).

``backward(dout, *, input_grad=True)``: with ``input_grad=False`` a module skips
computing ``dx`` and returns None. Nothing needs the gradient of the network's
input during training, and for the first linear layer that saves a third of
its backward work (torch skips it too: the input has no ``requires_grad``).

``Perceptron`` (Chapter 1) is not a Module and lives in :mod:`mlp_lib.perceptron`;
it is importable from here too, where Chapter 1 imports it.
"""
from __future__ import annotations

import numpy as np

from mlp_lib import layers as L
from mlp_lib import normalization as N
from mlp_lib._checks import (as_generator, flag, float_array, float_dtype, one_of, positive, positive_int,
                             probability, real_number, upstream_gradient)
from mlp_lib.init import torch_default_linear
from mlp_lib.perceptron import Perceptron  # noqa: F401  (Chapter 1 imports it from mlp_lib.modules)
from mlp_lib.regularization import dropout_backward, dropout_forward

__all__ = [
    "Parameter", "Module", "Linear",
    "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "ELU", "Softplus", "SiLU", "GELU",
    "BatchNorm1d", "Dropout", "Sequential", "Residual",
]


class Parameter:
    """A trainable array and the gradient of the loss with respect to it. Chapter 3.

    ``data``: the float array. ``grad``: dL/d(data), the sum of the gradients
    given to ``accumulate_grad`` since the last ``zero_grad`` (zeros before the
    first one), an array of ``data``'s shape and dtype.
    """

    __slots__ = ("data", "_grad")

    def __init__(self, data):
        self.data = float_array("data", data)
        self.zero_grad()

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def zero_grad(self) -> None:
        self._grad = None  # no gradient has arrived: grad reads as zeros

    @property
    def grad(self) -> np.ndarray:
        if self._grad is None:
            self._grad = np.zeros_like(self.data)
        return self._grad

    @grad.setter
    def grad(self, g) -> None:
        self._grad = self._checked(g)

    def accumulate_grad(self, g) -> None:
        """``grad += g``, without modifying any array in place.

        The first gradient after ``zero_grad`` becomes ``grad`` itself (no copy,
        no addition to zeros); later ones are added into a new array. So hand
        over a fresh array, as every mlp_lib module does, and leave it alone.
        """
        g = self._checked(g)
        self._grad = g if self._grad is None else self._grad + g

    def _checked(self, g) -> np.ndarray:
        if not isinstance(g, np.ndarray) or g.shape != self.data.shape:
            raise ValueError(f"gradient must have the parameter's shape {self.data.shape}, "
                             f"got {getattr(g, 'shape', type(g).__name__)}")
        return g.astype(self.data.dtype, copy=False)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: parameters, children, train/eval mode, state dicts. Chapter 3.

    Subclasses call ``super().__init__()`` first, then assign ``Parameter``s,
    child ``Module``s and buffers (``register_buffer``) as attributes; they are
    found by ``parameters()``/``state_dict()`` in assignment order, like torch.
    Subclasses implement ``forward(x)`` and ``backward(dout, *, input_grad=True)``.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 "before assigning attributes")
        if name in d["_buffers"]:
            self._set_buffer(name, value)
            return
        if (not isinstance(value, (Parameter, Module)) and name not in d["_parameters"]
                and name not in d["_modules"]):
            object.__setattr__(self, name, value)  # a plain attribute (e.g. a forward cache): the common case
            return
        for registry in (self._parameters, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value) -> None:
        """A non-trainable array saved in ``state_dict`` (e.g. running statistics).

        Later assignments ``self.name = array`` replace it through the same check.
        """
        self._set_buffer(name, value)

    def _set_buffer(self, name: str, value) -> None:
        value = float_array(name, value)
        self._buffers[name] = value
        object.__setattr__(self, name, value)

    # -- the two passes
    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")

    def backward(self, dout, *, input_grad: bool = True):
        raise NotImplementedError(f"{type(self).__name__} must implement backward(dout)")

    def __call__(self, x):
        return self.forward(x)

    # -- traversal
    def named_parameters(self, prefix: str = "") -> list[tuple[str, Parameter]]:
        """``[(name, Parameter), ...]``: own parameters first, then children's, in assignment order."""
        out = [(prefix + name, p) for name, p in self._parameters.items()]
        for name, child in self._modules.items():
            out.extend(child.named_parameters(prefix + name + "."))
        return out

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> list[tuple[str, np.ndarray]]:
        out = [(prefix + name, b) for name, b in self._buffers.items()]
        for name, child in self._modules.items():
            out.extend(child.named_buffers(prefix + name + "."))
        return out

    def modules(self) -> list[Module]:
        """This module and all its descendants, depth first."""
        out = [self]
        for child in self._modules.values():
            out.extend(child.modules())
        return out

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode: bool = True) -> Module:
        mode = flag("mode", mode)
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # -- saving and restoring
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, keyed like torch's state_dict."""
        sd = {}
        self._fill_state_dict(sd, "")
        return sd

    def _fill_state_dict(self, sd: dict, prefix: str) -> None:
        # torch's order: a module's own parameters, its buffers, then its children.
        sd.update((prefix + name, p.data.copy()) for name, p in self._parameters.items())
        sd.update((prefix + name, b.copy()) for name, b in self._buffers.items())
        for name, child in self._modules.items():
            child._fill_state_dict(sd, prefix + name + ".")

    def load_state_dict(self, state_dict) -> None:
        """Replace parameters and buffers with copies from ``state_dict`` (exact keys, shapes, dtypes)."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        params = dict(self.named_parameters())
        buffers = self._buffer_owners()
        expected = set(params) | set(buffers)
        missing, unexpected = expected - set(state_dict), set(state_dict) - expected
        if missing or unexpected:
            raise ValueError(f"state_dict keys do not match the model: missing {sorted(missing)}, "
                             f"unexpected {sorted(unexpected)}")
        for name in expected:
            value = float_array(f"state_dict[{name!r}]", state_dict[name])
            current = params[name].data if name in params else getattr(*buffers[name])
            if value.shape != current.shape or value.dtype != current.dtype:
                raise ValueError(f"state_dict[{name!r}] must have shape {current.shape} and dtype "
                                 f"{current.dtype}, got {value.shape} {value.dtype}")
        for name in expected:
            if name in params:
                params[name].data = state_dict[name].copy()
            else:
                owner, attr = buffers[name]
                setattr(owner, attr, state_dict[name].copy())

    def _buffer_owners(self, prefix: str = "") -> dict[str, tuple[Module, str]]:
        out = {prefix + name: (self, name) for name in self._buffers}
        for name, child in self._modules.items():
            out.update(child._buffer_owners(prefix + name + "."))
        return out

    # -- printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)

    def _cached(self):
        cache = self.__dict__.get("_cache")
        if cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return cache


class Linear(Module):
    """Fully connected layer ``out = x @ W + b``. Chapter 1 (forward), Chapter 3 (backward).

    Shapes: x (N, in_features) -> out (N, out_features); ``weight`` (in_features,
    out_features), ``bias`` (out_features,). Default initialization is torch's
    (``init.torch_default_linear``: U(-1/sqrt(in), 1/sqrt(in)) for W, then b),
    drawn from ``rng``. ``init=f`` instead sets ``W = f((in_features, out_features), rng)``
    and the bias to zeros (Chapter 4's schemes, e.g.
    ``functools.partial(init.kaiming_normal, nonlinearity="relu")`` wrapped as
    ``lambda shape, rng: kaiming_normal(shape, rng=rng)``).
    """

    def __init__(self, in_features, out_features, *, rng, bias=True, dtype=np.float64, init=None):
        super().__init__()
        in_features = positive_int("in_features", in_features)
        out_features = positive_int("out_features", out_features)
        bias = flag("bias", bias)
        dt = float_dtype("dtype", dtype)
        gen = as_generator(rng)
        if init is None:
            W, b = torch_default_linear(in_features, out_features, rng=gen, dtype=dt)
        else:
            if not callable(init):
                raise TypeError(f"init must be a callable (shape, rng) -> W, got {init!r}")
            W = float_array("init(shape, rng)", init((in_features, out_features), gen), ndim=2)
            if W.shape != (in_features, out_features):
                raise ValueError(f"init returned shape {W.shape}, expected ({in_features}, {out_features})")
            W = W.astype(dt, copy=False)
            b = np.zeros(out_features, dtype=dt)
        self._set_arrays(W, b if bias else None)

    def _set_arrays(self, W, b) -> None:
        self.in_features, self.out_features = W.shape
        self.weight = Parameter(W)
        self.bias = Parameter(b) if b is not None else None

    @classmethod
    def from_arrays(cls, W, b=None) -> Linear:
        """A Linear holding copies of given W (D_in, D_out) and b (D_out,) or None (no bias)."""
        W = float_array("W", W, ndim=2).copy()
        if b is not None:
            b = float_array("b", b, ndim=1).copy()
            if b.shape != (W.shape[1],) or b.dtype != W.dtype:
                raise ValueError(f"b must have shape ({W.shape[1]},) and W's dtype {W.dtype}, "
                                 f"got {b.shape} {b.dtype}")
        self = cls.__new__(cls)
        Module.__init__(self)
        self._set_arrays(W, b)
        return self

    # linear_forward/linear_backward's formulas (the same private functions, the
    # same cache), minus their per-call validation of the layer's own W and b:
    # checking that a (784, 256) weight is finite on every call costs as much as
    # the bias and ReLU together. The input is still checked fully, dout for type,
    # shape and dtype.
    def forward(self, x):
        W = self.weight.data
        x = float_array("x", x, ndim=2)
        if x.shape[1] != W.shape[0]:
            raise ValueError(f"x must have shape (N, {W.shape[0]}), got shape {x.shape}")
        if x.dtype != W.dtype:
            raise TypeError(f"x has dtype {x.dtype} but this Linear layer holds {W.dtype} weights")
        b = None if self.bias is None else self.bias.data
        self._cache = (x, W, b)
        return L._linear(x, W, b)

    def backward(self, dout, *, input_grad: bool = True):
        x, W, b = self._cached()
        dout = upstream_gradient(dout, shape=(x.shape[0], W.shape[1]), dtype=x.dtype, allow_nonfinite=True)
        dx, dW, db = L._linear_grads(dout, x, W, b, input_grad=input_grad)
        self.weight.accumulate_grad(dW)
        if b is not None:
            self.bias.accumulate_grad(db)
        return dx

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _Activation(Module):
    """An elementwise activation: forward/backward delegate to ``layers``. Chapters 1 and 5.

    Subclasses name the functional pair and pass their checked options (keyword
    arguments of that pair) to ``__init__``; each option is also an attribute.
    """

    _forward = _backward = None  # set by subclasses (staticmethods of mlp_lib.layers)

    def __init__(self, **options):
        super().__init__()
        self._option_names = tuple(options)
        for name, value in options.items():
            setattr(self, name, value)

    def _options(self) -> dict:
        return {name: getattr(self, name) for name in self._option_names}

    def forward(self, x):
        out, self._cache = type(self)._forward(x, **self._options())
        return out

    def backward(self, dout, *, input_grad: bool = True):
        cache = self._cached()
        if not input_grad:
            return None  # no parameters: nothing else to compute
        return type(self)._backward(dout, cache)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._options().items())


class Sigmoid(_Activation):
    """Logistic sigmoid. Chapter 1."""
    _forward, _backward = staticmethod(L.sigmoid_forward), staticmethod(L.sigmoid_backward)


class Tanh(_Activation):
    """Hyperbolic tangent. Chapter 1."""
    _forward, _backward = staticmethod(L.tanh_forward), staticmethod(L.tanh_backward)


class ReLU(_Activation):
    """max(x, 0), derivative 0 at 0 as in torch. Chapter 1."""
    _forward, _backward = staticmethod(L.relu_forward), staticmethod(L.relu_backward)


class SiLU(_Activation):
    """x * sigmoid(x). Chapter 5."""
    _forward, _backward = staticmethod(L.silu_forward), staticmethod(L.silu_backward)


class LeakyReLU(_Activation):
    """x for x > 0, negative_slope * x otherwise. Chapter 5."""
    _forward, _backward = staticmethod(L.leaky_relu_forward), staticmethod(L.leaky_relu_backward)

    def __init__(self, negative_slope=0.01):
        super().__init__(negative_slope=positive("negative_slope", negative_slope, allow_zero=True))


class ELU(_Activation):
    """x for x > 0, alpha * (exp(x) - 1) otherwise. Chapter 5."""
    _forward, _backward = staticmethod(L.elu_forward), staticmethod(L.elu_backward)

    def __init__(self, alpha=1.0):
        super().__init__(alpha=positive("alpha", alpha, allow_zero=True))


class Softplus(_Activation):
    """log(1 + exp(beta x)) / beta, linear above the threshold (torch's formula). Chapter 5."""
    _forward, _backward = staticmethod(L.softplus_forward), staticmethod(L.softplus_backward)

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__(beta=positive("beta", beta), threshold=real_number("threshold", threshold))


class GELU(_Activation):
    """x * Phi(x); ``approximate="tanh"`` for the tanh approximation. Chapter 5."""
    _forward, _backward = staticmethod(L.gelu_forward), staticmethod(L.gelu_backward)

    def __init__(self, approximate="none"):
        super().__init__(approximate=one_of("approximate", approximate, ("none", "tanh")))


class BatchNorm1d(Module):
    """Batch normalization over the batch axis, torch's conventions. Chapter 7.

    Shapes: x (N, num_features) -> out (same). ``weight`` (gamma, ones) and
    ``bias`` (beta, zeros) are trainable; ``running_mean`` (zeros) and
    ``running_var`` (ones) are buffers, replaced (never modified in place) after
    each training-mode forward by the new statistics, computed exactly as
    ``batchnorm_forward`` does. Eval mode normalizes with the running statistics.
    """

    def __init__(self, num_features, *, momentum=0.1, eps=1e-5, dtype=np.float64):
        super().__init__()
        self.num_features = positive_int("num_features", num_features)
        self.momentum = probability("momentum", momentum, allow_one=True)
        self.eps = positive("eps", eps)
        dt = float_dtype("dtype", dtype)
        self.weight = Parameter(np.ones(self.num_features, dtype=dt))
        self.bias = Parameter(np.zeros(self.num_features, dtype=dt))
        self.register_buffer("running_mean", np.zeros(self.num_features, dtype=dt))
        self.register_buffer("running_var", np.ones(self.num_features, dtype=dt))

    def forward(self, x):
        gamma, beta = self.weight.data, self.bias.data
        # batchnorm_forward's checks on the input only: the layer's own parameters
        # and buffers are kept valid by construction. In training mode the NaN/inf
        # check comes after the statistics, below.
        x = float_array("x", x, ndim=2, allow_nonfinite=self.training)
        if x.shape[1] != self.num_features:
            raise ValueError(f"x must have shape (N, {self.num_features}), got shape {x.shape}")
        if x.dtype != gamma.dtype:
            raise TypeError(f"x has dtype {x.dtype} but this BatchNorm1d holds {gamma.dtype} parameters")
        if not self.training:
            out, self._cache, _, _ = N._batchnorm_eval(x, gamma, beta, self.running_mean, self.running_var,
                                                       self.eps)
            return out
        N._check_batch_size(x)
        # A NaN or inf anywhere in x makes its feature's inv_std NaN, so checking these
        # D numbers spares a scan of the N x D batch on every call. Only when one is not
        # finite is x scanned, to raise the usual error (a finite x whose sums overflow
        # passes, as it passes batchnorm_forward's check).
        with np.errstate(invalid="ignore"):  # inf - inf: reported just below
            out, cache, running_mean, running_var = N._batchnorm_train(
                x, gamma, beta, self.running_mean, self.running_var, self.momentum, self.eps)
        if not np.isfinite(cache["inv_std"]).all():
            float_array("x", x)
        self._cache = cache
        self.running_mean, self.running_var = running_mean, running_var  # replaced, never modified in place
        return out

    def backward(self, dout, *, input_grad: bool = True):
        cache = self._cached()
        xc = cache["xc"]
        dout = upstream_gradient(dout, shape=xc.shape, dtype=xc.dtype, allow_nonfinite=True)
        dx, dgamma, dbeta = N._batchnorm_backward(dout, cache, input_grad=input_grad)
        self.weight.accumulate_grad(dgamma)
        self.bias.accumulate_grad(dbeta)
        return dx

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class Dropout(Module):
    """Inverted dropout; ``p`` is the drop probability. Identity in eval mode. Chapter 9.

    The masks are drawn from ``rng`` (a Generator or an int seed), one new mask
    per training-mode forward.
    """

    def __init__(self, p=0.5, *, rng):
        super().__init__()
        self.p = probability("p", p, allow_one=True)
        self.rng = as_generator(rng)

    def forward(self, x):
        if self.training:
            out, self._cache = dropout_forward(x, p=self.p, training=True, rng=self.rng)
        else:
            out, self._cache = dropout_forward(x, p=self.p, training=False)
        return out

    def backward(self, dout, *, input_grad: bool = True):
        cache = self._cached()
        return dropout_backward(dout, cache) if input_grad else None

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _has_parameters(module: Module) -> bool:
    return bool(module._parameters) or any(_has_parameters(c) for c in module._modules.values())


class Sequential(Module):
    """Layers applied in order; backward runs them in reverse. Chapter 3.

    ``model[i]`` is a layer (a slice gives a new Sequential sharing the layers),
    ``len(model)``, ``for layer in model``; ``model.layers`` is the list.
    """

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"layers[{i}] must be an mlp_lib Module, got {type(layer).__name__}")
            setattr(self, str(i), layer)
        self.layers = list(layers)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(*self.layers[index])
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, dout, *, input_grad: bool = True):
        first_needed = 0
        if not input_grad:
            # Layers before the first one with parameters have no gradient to produce.
            first_needed = next((i for i, layer in enumerate(self.layers) if _has_parameters(layer)), None)
            if first_needed is None:
                return None
        for i in range(len(self.layers) - 1, first_needed - 1, -1):
            if i == first_needed and not input_grad:
                return self.layers[i].backward(dout, input_grad=False)
            dout = self.layers[i].backward(dout)
        return dout


class Residual(Module):
    """Skip connection ``out = x + block(x)``; the block must keep x's shape. Chapter 7.

    Backward adds the two paths: ``dx = dout + block.backward(dout)``.
    """

    def __init__(self, block):
        super().__init__()
        if not isinstance(block, Module):
            raise TypeError(f"block must be an mlp_lib Module, got {type(block).__name__}")
        self.block = block

    def forward(self, x):
        fx = self.block(x)
        if fx.shape != np.shape(x):
            raise ValueError(f"Residual block must keep its input's shape {np.shape(x)}, got {fx.shape}")
        self._cache = True
        return x + fx

    def backward(self, dout, *, input_grad: bool = True):
        self._cached()
        if not input_grad:
            return self.block.backward(dout, input_grad=False)
        return dout + self.block.backward(dout)
