"""Rosenblatt's perceptron and its learning rule. Chapter 1.

A single threshold unit, not a :class:`mlp_lib.modules.Module`: it has no
backward pass, and it learns by the perceptron rule rather than by gradients.
In Chapter 1's notation, with the bias as the weight of a constant +1 input
(``x~ = [x, 1]``, ``w~ = [w, b]``)::

    z = w^T x + b,    y_hat = H(z) = 1 if z > 0 else 0,
    w~ <- w~ + eta (y_i - y_hat_i) x~_i      (after each example)

``mlp_lib.modules.Perceptron`` is this class too (Chapter 1 imports it from there).
"""
from __future__ import annotations

import math

import numpy as np

from mlp_lib._checks import as_generator, float_array, label_array, positive, positive_int

__all__ = ["Perceptron"]


class Perceptron:
    """Rosenblatt's perceptron with the perceptron learning rule. Chapter 1.

    Labels are {0, 1}. ``predict(X) = 1`` where ``X @ w + b > 0``, else 0
    (the Heaviside step with H(0) = 0, as scikit-learn's ``Perceptron``).
    The bias is the weight of a constant +1 input: ``coef`` is ``w~ = [w, b]``,
    ``(n_features + 1,)`` numbers, the last one being the bias, and
    ``weights``/``bias`` are views of it. ``lr`` is the learning rate eta.
    Initial weights are zeros, or U(-0.5, 0.5)/sqrt(n_features + 1) from
    ``rng`` when one is given.
    """

    def __init__(self, n_features, *, rng=None, lr=1.0):
        self.n_features = positive_int("n_features", n_features)
        self.lr = positive("lr", lr)
        if rng is None:
            self.coef = np.zeros(self.n_features + 1)
        else:
            self.coef = (as_generator(rng).random(self.n_features + 1) - 0.5) / math.sqrt(self.n_features + 1)

    @property
    def weights(self) -> np.ndarray:
        return self.coef[:-1]

    @property
    def bias(self) -> float:
        return float(self.coef[-1])

    def _inputs(self, X) -> np.ndarray:
        X = float_array("X", X, ndim=2)
        if X.shape[1] != self.n_features:
            raise ValueError(f"X must have shape (N, {self.n_features}), got shape {X.shape}")
        return X

    def decision_function(self, X) -> np.ndarray:
        """Shapes: X (N, n_features) -> (N,) the pre-activations ``z = X w + b``."""
        X = self._inputs(X)
        return X @ self.weights + self.coef[-1]

    def predict(self, X) -> np.ndarray:
        """Shapes: X (N, n_features) -> (N,) int64 labels ``H(z)`` in {0, 1}."""
        return (self.decision_function(X) > 0).astype(np.int64)

    def fit(self, X, y, *, epochs, rng=None) -> list[int]:
        """Cycle through the data, ``w~ += lr * (y_i - y_hat_i) * x~_i`` after each example.

        Shapes: X (N, n_features), y (N,) in {0, 1}. Returns the number of
        mistakes in each epoch; stops early after an epoch without mistakes
        (the data are then separated and no weight can change). ``rng`` (a
        Generator or an int seed) shuffles the order every epoch; None keeps
        the given order.
        """
        X = self._inputs(X)
        y = label_array("y", y, n=X.shape[0], num_classes=2)
        epochs = positive_int("epochs", epochs)
        gen = None if rng is None else as_generator(rng)
        X_tilde = np.hstack([X.astype(np.float64), np.ones((X.shape[0], 1))])  # x~ = [x, 1]
        mistakes = []
        for _ in range(epochs):
            order = gen.permutation(X.shape[0]) if gen is not None else range(X.shape[0])
            count = 0
            for i in order:
                y_hat = 1 if X_tilde[i] @ self.coef > 0 else 0
                if y_hat != y[i]:
                    self.coef += self.lr * (y[i] - y_hat) * X_tilde[i]
                    count += 1
            mistakes.append(count)
            if count == 0:
                break
        return mistakes

    def __repr__(self) -> str:
        return f"Perceptron(n_features={self.n_features}, lr={self.lr})"
