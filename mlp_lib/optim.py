"""Optimizers and learning-rate schedules: one pure contract. Chapter 2 (weight decay: Chapter 8).

Every optimizer is a frozen dataclass of keyword-only, validated hyperparameters
with two methods::

    state = opt.init_state(params)                      # params: list of arrays
    new_params, new_state = opt.step(params, grads, state)

``step`` is pure: it returns new arrays and a new state dict and mutates neither
``params``, ``grads`` nor ``state``. Because of that, a training loop can keep the
old weights (for early stopping), replay a step, or change the learning rate
between steps with ``dataclasses.replace(opt, lr=...)`` — which is exactly how a
schedule is applied: ``schedule.lr(epoch, base_lr)`` gives the rate of an epoch.

The update rules are torch.optim's (single-tensor code path, ``maximize=False``),
written out as their formulas, in Chapter 2's names, so a reader can check them
line by line against the book:

* ``SGD``: ``g += wd*p``; momentum ``v = mu*v + (1-dampening)*g`` (first step:
  ``v = g``); Nesterov uses ``g + mu*v``; ``p -= lr*direction``.
* ``Adagrad``: ``s += g²``; ``p -= lr/(1+(t-1)*lr_decay) * g/(sqrt(s)+eps)``.
* ``RMSprop``: ``v = alpha*v + (1-alpha)*g²`` (centered: minus the squared running mean
  of g), optional momentum on ``g/(sqrt(v)+eps)``.
* ``Adam``: ``t += 1`` *before* the bias corrections ``1-beta**t``;
  ``p -= lr/(1-b1**t) * m / (sqrt(v)/sqrt(1-b2**t) + eps)``.
* ``AdamW``: Adam with decoupled decay ``p *= 1 - lr*wd`` before the update.

One arrangement for speed: SGD's last line, ``p - lr * g``, is built in place in
the product (``_axpy``), so that a step allocates only the arrays it returns.
Two parameter-sized temporaries alive at once make glibc return and re-fault
memory (measured: ``p - lr * g`` is 1.3x slower on the bench MLP's parameters).

``apply_step`` is the single place where this contract meets the mutable
:class:`mlp_lib.modules.Parameter` objects of the module layer.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from mlp_lib._checks import flag, float_array, positive, positive_int, probability

__all__ = [
    "SGD", "Adagrad", "RMSprop", "Adam", "AdamW",
    "StepLR", "ExponentialLR", "CosineAnnealingLR",
    "apply_step",
]


# --------------------------------------------------------------------------- checks

def _set(obj, name: str, value) -> None:
    # Frozen dataclasses store normalised values through object.__setattr__.
    object.__setattr__(obj, name, value)


def _check_lists(params, grads) -> None:
    """params and grads: lists of arrays of equal length and matching shapes."""
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"params must be a list of numpy arrays, got {type(params).__name__}")
    if not isinstance(grads, (list, tuple)):
        raise TypeError(f"grads must be a list of numpy arrays, got {type(grads).__name__}")
    if len(params) != len(grads):
        raise ValueError(f"params and grads must have the same length, got {len(params)} and {len(grads)}")
    for i, (p, g) in enumerate(zip(params, grads)):
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{i}] must be a numpy array, got {type(p).__name__}")
        float_array(f"params[{i}]", p, allow_nonfinite=True)  # float32 or float64; no pass over the data
        if not isinstance(g, np.ndarray):
            raise TypeError(f"grads[{i}] must be a numpy array, got {type(g).__name__}")
        if g.shape != p.shape:
            raise ValueError(f"grads[{i}] must have the shape of params[{i}] {p.shape}, got shape {g.shape}")


def _check_state(state, n: int, keys: tuple[str, ...], params) -> None:
    if not isinstance(state, dict):
        raise TypeError(f"state must be the dict returned by init_state, got {type(state).__name__}")
    missing = [k for k in ("t", *keys) if k not in state]
    if missing:
        raise ValueError(f"state is missing {missing}: pass the dict returned by init_state(params)")
    for k in keys:
        if len(state[k]) != n:
            raise ValueError(f"state[{k!r}] holds {len(state[k])} arrays but params has {n}: "
                             "the state belongs to other parameters")
        for i, (s, p) in enumerate(zip(state[k], params)):
            if s.shape != p.shape:
                raise ValueError(f"state[{k!r}][{i}] has shape {s.shape} but params[{i}] has shape {p.shape}")


def _axpy(a: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A new array ``y + a * x``, built in place in the product (one new array, not two: see above)."""
    out = x * a
    out += y
    return out


def _lift_scalars(step):
    """Run ``step`` with 0-d arrays viewed as shape (1,), then restore the shapes.

    numpy turns 0-d results into scalars, not arrays; one wrapper keeps every
    rule's result an array of its parameter's shape.
    """
    @functools.wraps(step)
    def wrapper(self, params, grads, state):
        if not any(isinstance(x, np.ndarray) and x.ndim == 0 for x in [*params, *grads]):
            return step(self, params, grads, state)
        shapes = [np.shape(p) for p in params]

        def lift(xs):
            return [x.reshape(1) if isinstance(x, np.ndarray) and x.ndim == 0 else x for x in xs]

        def restore(xs):
            return [x.reshape(shape) for x, shape in zip(xs, shapes)]

        lifted = {k: lift(v) if isinstance(v, list) else v for k, v in state.items()}
        new_params, new_state = step(self, lift(params), lift(grads), lifted)
        return restore(new_params), {k: restore(v) if isinstance(v, list) else v for k, v in new_state.items()}
    return wrapper


def _zeros_like_all(params) -> list[np.ndarray]:
    _check_lists(params, params)
    return [np.zeros_like(p) for p in params]


# --------------------------------------------------------------------------- optimizers
# Names follow Chapter 2: g the gradient, p the parameter (theta), lr the rate
# (eta); each name holds one quantity.

@dataclass(frozen=True, kw_only=True)
class SGD:
    """Stochastic gradient descent with optional (Nesterov) momentum. Chapter 2.

    ``g += weight_decay * p``; with momentum mu, ``v = mu * v + (1 - dampening) * g``
    (the first step: ``v = g``) and the direction is ``v`` (Nesterov: ``g + mu * v``);
    ``p -= lr * direction``. Full-batch gradient descent and mini-batch SGD are
    this optimizer fed full or partial batches. ``momentum`` ∈ [0, 1),
    ``dampening`` ∈ [0, 1]; ``nesterov`` needs momentum > 0 and dampening 0 (as in torch).
    State: ``{"t": int, "momentum": [v, ...]}`` (velocities only when momentum > 0).
    """

    lr: float
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def __post_init__(self):
        _set(self, "lr", positive("lr", self.lr, allow_zero=True))
        _set(self, "momentum", probability("momentum", self.momentum))
        _set(self, "dampening", probability("dampening", self.dampening, allow_one=True))
        _set(self, "nesterov", flag("nesterov", self.nesterov))
        _set(self, "weight_decay", positive("weight_decay", self.weight_decay, allow_zero=True))
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0, "
                             f"got momentum={self.momentum}, dampening={self.dampening}")

    def init_state(self, params) -> dict:
        if self.momentum == 0:
            _check_lists(params, params)
            return {"t": 0}
        return {"t": 0, "momentum": _zeros_like_all(params)}

    @_lift_scalars
    def step(self, params, grads, state) -> tuple[list[np.ndarray], dict]:
        _check_lists(params, grads)
        keys = ("momentum",) if self.momentum != 0 else ()
        _check_state(state, len(params), keys, params)
        mu = self.momentum
        new_params, new_velocities = [], []
        for i, (p, g) in enumerate(zip(params, grads)):
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            if mu != 0:
                if state["t"] == 0:
                    v = g.copy()  # torch: the first velocity is the gradient itself
                else:
                    v = mu * state["momentum"][i] + (1 - self.dampening) * g
                new_velocities.append(v)
                g = g + mu * v if self.nesterov else v
            new_params.append(_axpy(-self.lr, g, p))  # p - lr * g
        new_state = {"t": state["t"] + 1}
        if mu != 0:
            new_state["momentum"] = new_velocities
        return new_params, new_state


@dataclass(frozen=True, kw_only=True)
class Adagrad:
    """Adagrad: per-coordinate rates shrinking with the summed squared gradients. Chapter 2.

    ``s += g²``; ``p -= lr_t * g / (sqrt(s) + eps)`` with ``lr_t = lr / (1 + (t - 1) * lr_decay)``.
    State: ``{"t": int, "sum": [s, ...]}`` (sums start at ``initial_accumulator_value``).
    """

    lr: float = 0.01
    lr_decay: float = 0.0
    weight_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    eps: float = 1e-10

    def __post_init__(self):
        _set(self, "lr", positive("lr", self.lr, allow_zero=True))
        _set(self, "lr_decay", positive("lr_decay", self.lr_decay, allow_zero=True))
        _set(self, "weight_decay", positive("weight_decay", self.weight_decay, allow_zero=True))
        _set(self, "initial_accumulator_value",
             positive("initial_accumulator_value", self.initial_accumulator_value, allow_zero=True))
        _set(self, "eps", positive("eps", self.eps, allow_zero=True))

    def init_state(self, params) -> dict:
        _check_lists(params, params)
        return {"t": 0, "sum": [np.full_like(p, self.initial_accumulator_value) for p in params]}

    @_lift_scalars
    def step(self, params, grads, state) -> tuple[list[np.ndarray], dict]:
        _check_lists(params, grads)
        _check_state(state, len(params), ("sum",), params)
        t = state["t"] + 1
        lr_t = self.lr / (1 + (t - 1) * self.lr_decay)
        new_params, new_sums = [], []
        for p, g, s in zip(params, grads, state["sum"]):
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            s = s + g * g
            new_sums.append(s)
            new_params.append(p - lr_t * (g / (np.sqrt(s) + self.eps)))
        return new_params, {"t": t, "sum": new_sums}


@dataclass(frozen=True, kw_only=True)
class RMSprop:
    """RMSprop: divide by a running RMS of the gradient. Chapter 2.

    ``v = alpha * v + (1 - alpha) * g²``; ``p -= lr * g / (sqrt(v) + eps)``.
    ``alpha`` ∈ [0, 1) is the smoothing constant; ``centered`` subtracts the squared
    running mean m of the gradient (``sqrt(v - m²)``: an estimate of its standard
    deviation); ``momentum`` ∈ [0, 1) keeps a velocity ``b = momentum * b + g / (...)``
    and steps along it. State: ``{"t", "square_avg", ["grad_avg"], ["momentum"]}``.
    """

    lr: float = 0.01
    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    centered: bool = False

    def __post_init__(self):
        _set(self, "lr", positive("lr", self.lr, allow_zero=True))
        _set(self, "alpha", probability("alpha", self.alpha))
        _set(self, "eps", positive("eps", self.eps, allow_zero=True))
        _set(self, "weight_decay", positive("weight_decay", self.weight_decay, allow_zero=True))
        _set(self, "momentum", probability("momentum", self.momentum))
        _set(self, "centered", flag("centered", self.centered))

    def _keys(self) -> tuple[str, ...]:
        return (("square_avg",) + (("grad_avg",) if self.centered else ())
                + (("momentum",) if self.momentum > 0 else ()))

    def init_state(self, params) -> dict:
        state = {"t": 0}
        for k in self._keys():
            state[k] = _zeros_like_all(params)
        return state

    @_lift_scalars
    def step(self, params, grads, state) -> tuple[list[np.ndarray], dict]:
        _check_lists(params, grads)
        _check_state(state, len(params), self._keys(), params)
        alpha = self.alpha
        new = {k: [] for k in self._keys()}
        new_params = []
        for i, (p, g) in enumerate(zip(params, grads)):
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            v = alpha * state["square_avg"][i] + (1 - alpha) * (g * g)
            new["square_avg"].append(v)
            if self.centered:
                m = state["grad_avg"][i]
                m = m + (1 - alpha) * (g - m)  # alpha * m + (1 - alpha) * g, in torch's lerp form
                new["grad_avg"].append(m)
                direction = g / (np.sqrt(v - m * m) + self.eps)
            else:
                direction = g / (np.sqrt(v) + self.eps)
            if self.momentum > 0:
                direction = self.momentum * state["momentum"][i] + direction
                new["momentum"].append(direction)
            new_params.append(p - self.lr * direction)
        return new_params, {"t": state["t"] + 1, **new}


def _check_betas(betas) -> tuple[float, float]:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    return (probability("betas[0]", betas[0]), probability("betas[1]", betas[1]))


def _adam_step(opt, params, grads, state, *, decoupled: bool, bias_correction: bool):
    """Adam's update, torch's arrangement of Chapter 2's formula (see Adam's docstring)."""
    _check_lists(params, grads)
    _check_state(state, len(params), ("exp_avg", "exp_avg_sq"), params)
    beta1, beta2 = opt.betas
    t = state["t"] + 1  # incremented *before* the bias corrections: step 1 divides by 1 - beta1
    correction1 = 1 - beta1 ** t if bias_correction else 1.0
    correction2 = 1 - beta2 ** t if bias_correction else 1.0
    new_params, new_m, new_v = [], [], []
    for p, g, m, v in zip(params, grads, state["exp_avg"], state["exp_avg_sq"]):
        if opt.weight_decay != 0:
            if decoupled:
                p = p * (1 - opt.lr * opt.weight_decay)
            else:
                g = g + opt.weight_decay * p
        m = m + (1 - beta1) * (g - m)  # beta1 * m + (1 - beta1) * g, in torch's lerp form
        v = beta2 * v + (1 - beta2) * (g * g)
        new_m.append(m)
        new_v.append(v)
        # p - lr * m_hat / (sqrt(v_hat) + eps), with m_hat = m / correction1, v_hat = v / correction2
        new_params.append(p - opt.lr / correction1 * (m / (np.sqrt(v) / math.sqrt(correction2) + opt.eps)))
    return new_params, {"t": t, "exp_avg": new_m, "exp_avg_sq": new_v}


@dataclass(frozen=True, kw_only=True)
class Adam:
    """Adam (Kingma & Ba), torch's formulation with L2 weight decay added to g. Chapter 2.

    ``t += 1``; ``m = beta1 * m + (1 - beta1) * g``; ``v = beta2 * v + (1 - beta2) * g²``;
    ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - beta1**t)`` and
    ``v_hat = v / (1 - beta2**t)``, computed as torch does:
    ``p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``.

    ``bias_correction=False`` exists only for the book's demonstration of why the
    correction matters: without it the first steps are ``lr*(1-b1)/sqrt(1-b2)``
    times too small/large (with zero-initialised moments m₁ = (1-b1)g, v₁ = (1-b2)g²).
    State: ``{"t": int, "exp_avg": [m, ...], "exp_avg_sq": [v, ...]}``.
    """

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    bias_correction: bool = True

    def __post_init__(self):
        _set(self, "lr", positive("lr", self.lr, allow_zero=True))
        _set(self, "betas", _check_betas(self.betas))
        _set(self, "eps", positive("eps", self.eps, allow_zero=True))
        _set(self, "weight_decay", positive("weight_decay", self.weight_decay, allow_zero=True))
        _set(self, "bias_correction", flag("bias_correction", self.bias_correction))

    def init_state(self, params) -> dict:
        return {"t": 0, "exp_avg": _zeros_like_all(params), "exp_avg_sq": _zeros_like_all(params)}

    @_lift_scalars
    def step(self, params, grads, state) -> tuple[list[np.ndarray], dict]:
        return _adam_step(self, params, grads, state, decoupled=False, bias_correction=self.bias_correction)


@dataclass(frozen=True, kw_only=True)
class AdamW:
    """AdamW (Loshchilov & Hutter): Adam with decoupled weight decay. Chapter 2.

    The decay shrinks the weights directly, ``p *= 1 - lr*weight_decay``, instead of
    entering the adaptive moments as an L2 gradient would.
    """

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 1e-2

    def __post_init__(self):
        _set(self, "lr", positive("lr", self.lr, allow_zero=True))
        _set(self, "betas", _check_betas(self.betas))
        _set(self, "eps", positive("eps", self.eps, allow_zero=True))
        _set(self, "weight_decay", positive("weight_decay", self.weight_decay, allow_zero=True))

    def init_state(self, params) -> dict:
        return {"t": 0, "exp_avg": _zeros_like_all(params), "exp_avg_sq": _zeros_like_all(params)}

    @_lift_scalars
    def step(self, params, grads, state) -> tuple[list[np.ndarray], dict]:
        return _adam_step(self, params, grads, state, decoupled=True, bias_correction=True)


# --------------------------------------------------------------------------- schedules

def _epoch(epoch) -> int:
    return positive_int("epoch", epoch, allow_zero=True)


@dataclass(frozen=True, kw_only=True)
class StepLR:
    """``lr = base_lr * gamma ** (epoch // step_size)``. Chapter 2."""

    step_size: int
    gamma: float = 0.1

    def __post_init__(self):
        _set(self, "step_size", positive_int("step_size", self.step_size))
        _set(self, "gamma", positive("gamma", self.gamma))

    def lr(self, epoch: int, base_lr: float) -> float:
        return positive("base_lr", base_lr, allow_zero=True) * self.gamma ** (_epoch(epoch) // self.step_size)


@dataclass(frozen=True, kw_only=True)
class ExponentialLR:
    """``lr = base_lr * gamma ** epoch``. Chapter 2."""

    gamma: float

    def __post_init__(self):
        _set(self, "gamma", positive("gamma", self.gamma))

    def lr(self, epoch: int, base_lr: float) -> float:
        return positive("base_lr", base_lr, allow_zero=True) * self.gamma ** _epoch(epoch)


@dataclass(frozen=True, kw_only=True)
class CosineAnnealingLR:
    """``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``. Chapter 2.

    torch's closed form (no warm restarts): past ``T_max`` the cosine climbs back up.
    """

    T_max: int
    eta_min: float = 0.0

    def __post_init__(self):
        _set(self, "T_max", positive_int("T_max", self.T_max))
        _set(self, "eta_min", positive("eta_min", self.eta_min, allow_zero=True))

    def lr(self, epoch: int, base_lr: float) -> float:
        base_lr = positive("base_lr", base_lr, allow_zero=True)
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * _epoch(epoch) / self.T_max)) / 2


# --------------------------------------------------------------------------- module bridge

def apply_step(optimizer, parameters, state: dict | None) -> dict:
    """One optimizer step on mutable Parameters; returns the new optimizer state. Chapter 2.

    ``parameters``: a sequence of objects with ``.data`` and ``.grad`` arrays (e.g.
    ``model.parameters()``). Reads them, calls the pure ``optimizer.step``, and
    rebinds each ``.data`` to the new array (the old array is left untouched, so a
    saved reference — a best-weights snapshot — stays valid). ``state=None``
    starts from ``optimizer.init_state``.
    """
    parameters = list(parameters)
    for i, prm in enumerate(parameters):
        if not (hasattr(prm, "data") and hasattr(prm, "grad")):
            raise TypeError(f"parameters[{i}] must have .data and .grad (an mlp_lib Parameter), "
                            f"got {type(prm).__name__}")
    params = [prm.data for prm in parameters]
    grads = [prm.grad for prm in parameters]
    if state is None:
        state = optimizer.init_state(params)
    new_params, new_state = optimizer.step(params, grads, state)
    for prm, new in zip(parameters, new_params):
        prm.data = new
    return new_state
