"""Training loops: mini-batches, fit/evaluate, history, early stopping. Chapters 2, 6 and 8.

``fit`` is the loop every chapter from 2 on writes by hand, once, with the
pieces the book introduces along the way: a learning-rate schedule (Chapter 2),
a weight penalty and gradient clipping (Chapters 4 and 8), early stopping with
best-weights restore (Chapter 8), callbacks and a tqdm progress bar.

Determinism: the only randomness in ``fit`` is the shuffling, drawn from its
``rng`` (and whatever generators the model's own layers hold, e.g. Dropout).
The same seeds give bit-for-bit identical weights.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from mlp_lib._checks import (as_generator, flag, float_array, label_array, one_of, positive, positive_int,
                             real_number)
from mlp_lib.optim import apply_step
from mlp_lib.regularization import clip_grad_norm as _clip_grad_norm

__all__ = ["minibatches", "accuracy", "History", "EarlyStopping", "fit", "evaluate"]


def _inputs(X, y):
    X = float_array("X", X, ndim=2)
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have X's number of rows {X.shape[0]} as its first dimension, got shape {y.shape}")
    if y.dtype.kind not in "iuf":
        raise TypeError(f"y must hold integer class labels or float targets, got dtype {y.dtype}")
    return X, y


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def minibatches(X, y, *, batch_size, rng=None, shuffle=True):
    """Yield ``(X_batch, y_batch)`` pairs covering every example once. Chapter 2.

    Shapes: X (N, D), y (N,) or (N, ...) -> batches (B, D), (B, ...) with
    B = batch_size except for the last, partial batch, which is kept.
    ``shuffle=True`` draws a new permutation from ``rng`` (a Generator or an int
    seed) on every call, so calling it once per epoch reshuffles every epoch;
    ``shuffle=False`` keeps the order (``rng`` may be None).

    Batches are always *read-only views*: of one shuffled copy of the data made
    per call (one gather per epoch, then contiguous slices) or, without
    shuffling, of X and y themselves. Copy a batch before modifying it.
    """
    X, y = _inputs(X, y)
    batch_size = positive_int("batch_size", batch_size)
    shuffle = flag("shuffle", shuffle)
    n = X.shape[0]
    if shuffle:
        if rng is None:
            raise ValueError("minibatches(shuffle=True) needs rng (a Generator or an int seed)")
        order = as_generator(rng).permutation(n)
        X, y = X[order], y[order]
    for start in range(0, n, batch_size):
        yield _read_only(X[start:start + batch_size]), _read_only(y[start:start + batch_size])


def accuracy(scores_or_labels, y) -> float:
    """Fraction of correct predictions. Chapter 2.

    Shapes: scores (N, C) (argmax is the prediction) or predicted labels (N,),
    and y (N,) integer labels -> a float in [0, 1].
    """
    pred = np.asarray(scores_or_labels)
    if pred.ndim == 2:
        pred = pred.argmax(axis=1)
    elif pred.ndim != 1 or pred.dtype.kind not in "iu":
        raise ValueError("scores_or_labels must be scores of shape (N, C) or integer labels of shape (N,), "
                         f"got shape {pred.shape} dtype {pred.dtype}")
    y = label_array("y", y, n=pred.shape[0])
    if y.size == 0:
        raise ValueError("accuracy of an empty batch is undefined")
    return float(np.count_nonzero(pred == y)) / y.size


_HISTORY_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")


@dataclasses.dataclass(eq=False)
class History:
    """Per-epoch records of a ``fit`` run, readable like a dict of lists. Chapter 2.

    ``history["val_loss"][e]`` is the validation loss after epoch ``e`` (0-based).
    Accuracies are recorded for integer labels only; validation entries only
    with validation data. ``best_epoch``: the epoch early stopping judged best
    (without early stopping: the epoch of the lowest validation loss, else of
    the lowest training loss). ``stopped_early``: whether a criterion ended the run.
    """

    train_loss: list = dataclasses.field(default_factory=list)
    train_accuracy: list = dataclasses.field(default_factory=list)
    val_loss: list = dataclasses.field(default_factory=list)
    val_accuracy: list = dataclasses.field(default_factory=list)
    lr: list = dataclasses.field(default_factory=list)
    seconds: list = dataclasses.field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    def __getitem__(self, key: str) -> list:
        one_of("key", key, _HISTORY_KEYS)
        return getattr(self, key)

    def keys(self) -> tuple[str, ...]:
        return _HISTORY_KEYS

    def items(self):
        return [(k, getattr(self, k)) for k in _HISTORY_KEYS]

    def __iter__(self):
        return iter(_HISTORY_KEYS)

    def __len__(self) -> int:
        """Number of completed epochs."""
        return len(self.train_loss)

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in self.items()} | {"best_epoch": self.best_epoch}


class EarlyStopping:
    """Stop when the monitored value has not improved for ``patience`` epochs. Chapter 8.

    ``update(value) -> stop``: call once per epoch. An epoch *improves* when
    ``value < best - min_delta`` (mode "min") or ``value > best + min_delta``
    (mode "max"); the first value always improves; NaN never does. After
    ``patience`` consecutive epochs without improvement ``update`` returns True.
    ``best``, ``best_epoch`` (0-based count of ``update`` calls), ``improved``
    (did the last update improve) and ``wait`` describe the state.
    ``restore_best`` tells ``fit`` to reload the weights of ``best_epoch`` at the end.
    ``monitor`` names the History entry ``fit`` feeds in: by default "val_loss"
    with validation data, else "train_loss".
    """

    def __init__(self, *, patience, min_delta=0.0, mode="min", restore_best=True, monitor=None):
        self.patience = positive_int("patience", patience)
        self.min_delta = positive("min_delta", min_delta, allow_zero=True)
        self.mode = one_of("mode", mode, ("min", "max"))
        self.restore_best = flag("restore_best", restore_best)
        self.monitor = None if monitor is None else one_of("monitor", monitor, _HISTORY_KEYS[:4])
        self.reset()

    def reset(self) -> None:
        self.best = None
        self.best_epoch = None
        self.epoch = -1
        self.wait = 0
        self.improved = False

    def update(self, value) -> bool:
        value = real_number("value", value, allow_nonfinite=True)  # NaN is allowed: it never improves
        self.epoch += 1
        if math.isnan(value):
            self.improved = False
        elif self.best is None:
            self.improved = True
        elif self.mode == "min":
            self.improved = value < self.best - self.min_delta
        else:
            self.improved = value > self.best + self.min_delta
        if self.improved:
            self.best, self.best_epoch, self.wait = value, self.epoch, 0
        else:
            self.wait += 1
        return self.wait >= self.patience

    def __repr__(self) -> str:
        return (f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, mode={self.mode!r}, "
                f"restore_best={self.restore_best}, best={self.best}, best_epoch={self.best_epoch})")


def _is_classification(y) -> bool:
    return y.ndim == 1 and y.dtype.kind in "iu"


def evaluate(model, loss, X, y, *, batch_size=None):
    """Mean loss (and accuracy for integer labels, else None) in eval mode. Chapter 2.

    Shapes: X (N, D), y (N,) labels or targets. ``batch_size`` splits a large
    set into chunks (the mean is weighted by chunk size). The model's
    train/eval mode is restored afterwards. Returns ``(loss, accuracy)``.
    """
    X, y = _inputs(X, y)
    n = X.shape[0]
    if n == 0:
        raise ValueError("X is empty")
    step = n if batch_size is None else positive_int("batch_size", batch_size)
    was_training = model.training
    model.eval()
    try:
        total, correct = 0.0, 0
        classify = _is_classification(y)
        for start in range(0, n, step):
            xb, yb = X[start:start + step], y[start:start + step]
            scores = model(xb)
            value, _ = loss(scores, yb)
            total += value * xb.shape[0]
            if classify:
                correct += int(np.count_nonzero(scores.argmax(axis=1) == yb))
    finally:
        model.train(was_training)
    return total / n, (correct / n if classify else None)


def _progress(iterable, enabled: bool, total: int):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, unit="epoch", leave=False)


def fit(model, *, loss, optimizer, X, y, epochs, batch_size, rng, validation=None, schedule=None,
        early_stopping=None, callbacks=(), penalty=None, clip_grad_norm=None, progress=False) -> History:
    """Train ``model`` with mini-batch gradient steps; return the History. Chapters 2, 6 and 8.

    Each epoch: reshuffle (``minibatches`` with ``rng``); for each batch
    ``zero_grad``, forward, ``loss(scores, y_batch) -> (value, dscores)``,
    backward, optional penalty and clipping, ``optim.apply_step``. Then record
    the epoch's mean training loss (of the data term, as the model saw it in
    training mode, averaged over examples) and training accuracy, evaluate on
    ``validation=(X_val, y_val)`` in eval mode, and consult early stopping and
    the callbacks.

    * ``schedule``: ``schedule.lr(epoch, optimizer.lr)`` sets each epoch's rate
      (via ``dataclasses.replace``); the optimizer state carries over.
    * ``penalty``: callable ``weights -> (value, grads)`` on the list of weight
      matrices (the parameters with ndim >= 2; biases and BatchNorm scales are
      not penalized), e.g. ``functools.partial(l2_penalty, lam=1e-3)``; its
      gradients are added to the data gradients.
    * ``clip_grad_norm``: rescale all gradients to joint norm at most this
      (torch's ``clip_grad_norm_``), after the penalty.
    * ``early_stopping``: an :class:`EarlyStopping`; with ``restore_best`` the
      weights (and buffers) of its best epoch are loaded back at the end.
    * ``callbacks``: objects with an optional ``on_epoch_end(epoch, history, model)``;
      returning True stops training.
    * ``progress``: show a tqdm bar over epochs.

    The model ends in the train/eval mode it started in.
    """
    X, y = _inputs(X, y)
    epochs = positive_int("epochs", epochs)
    batch_size = positive_int("batch_size", batch_size)
    gen = as_generator(rng)
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError("validation must be a pair (X_val, y_val)")
        X_val, y_val = _inputs(*validation)
    if schedule is not None and not callable(getattr(schedule, "lr", None)):
        raise TypeError(f"schedule must have a method lr(epoch, base_lr), got {schedule!r}")
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(f"early_stopping must be an EarlyStopping, got {early_stopping!r}")
    if penalty is not None and not callable(penalty):
        raise TypeError(f"penalty must be a callable weights -> (value, grads), got {penalty!r}")
    if clip_grad_norm is not None:
        clip_grad_norm = positive("clip_grad_norm", clip_grad_norm)
    callbacks = tuple(callbacks)
    progress = flag("progress", progress)

    params = model.parameters()
    weights = [p for p in params if p.data.ndim >= 2]
    classify = _is_classification(y)
    monitor = None
    if early_stopping is not None:
        monitor = early_stopping.monitor or ("val_loss" if validation is not None else "train_loss")
        if monitor.startswith("val") and validation is None:
            raise ValueError(f"early stopping monitors {monitor!r} but no validation data was given")
        if monitor.endswith("accuracy") and not classify:
            raise ValueError(f"early stopping monitors {monitor!r} but y holds no class labels")
        early_stopping.reset()

    history = History()
    state = None
    best_state = None
    was_training = model.training
    bar = _progress(range(epochs), progress, epochs)
    try:
        for epoch in bar:
            start = time.perf_counter()
            opt = optimizer if schedule is None else dataclasses.replace(
                optimizer, lr=schedule.lr(epoch, optimizer.lr))
            model.train()
            total_loss, correct = 0.0, 0
            for xb, yb in minibatches(X, y, batch_size=batch_size, rng=gen):
                model.zero_grad()
                scores = model(xb)
                value, dscores = loss(scores, yb)
                model.backward(dscores, input_grad=False)
                total_loss += value * xb.shape[0]
                if classify:
                    correct += int(np.count_nonzero(scores.argmax(axis=1) == yb))
                if penalty is not None:
                    _, pgrads = penalty([p.data for p in weights])
                    for p, g in zip(weights, pgrads):
                        p.accumulate_grad(g)
                if clip_grad_norm is not None:
                    clipped, _ = _clip_grad_norm([p.grad for p in params], clip_grad_norm)
                    for p, g in zip(params, clipped):
                        p.grad = g
                state = apply_step(opt, params, state)

            n = X.shape[0]
            history.train_loss.append(total_loss / n)
            if classify:
                history.train_accuracy.append(correct / n)
            if validation is not None:
                val_loss, val_acc = evaluate(model, loss, X_val, y_val)
                history.val_loss.append(val_loss)
                if val_acc is not None:
                    history.val_accuracy.append(val_acc)
            history.lr.append(opt.lr)
            history.seconds.append(time.perf_counter() - start)

            stop = False
            if early_stopping is not None:
                stop = early_stopping.update(history[monitor][-1])
                if early_stopping.improved and early_stopping.restore_best:
                    best_state = model.state_dict()
            for cb in callbacks:
                hook = getattr(cb, "on_epoch_end", None)
                if hook is not None and hook(epoch, history, model) is True:
                    stop = True
            if progress:
                bar.set_postfix(loss=f"{history.train_loss[-1]:.4g}",
                                **({"val_loss": f"{history.val_loss[-1]:.4g}"} if history.val_loss else {}))
            if stop:
                history.stopped_early = epoch < epochs - 1
                break
    finally:
        if progress:
            bar.close()
        model.train(was_training)

    if early_stopping is not None:
        history.best_epoch = early_stopping.best_epoch
        if early_stopping.restore_best and best_state is not None:
            model.load_state_dict(best_state)
    else:
        curve = history.val_loss or history.train_loss
        finite = [v if math.isfinite(v) else math.inf for v in curve]
        history.best_epoch = int(np.argmin(finite)) if finite else None
    return history
