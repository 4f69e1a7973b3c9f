"""Grading spec of Chapter 1's exercise: the perceptron and the forward pass of an MLP.

Every Part draws its cases from the grader's rng and is judged against a torch reference
computed in float64 (on the grading device). Conventions, as stated in the exercise and in
the book (``mlp_lib.modules.Perceptron`` follows them too):

* perceptron labels are {0, 1}; ``predict = 1`` where ``X @ w[:-1] + w[-1] > 0``, else 0
  (the step is 0 at 0); the bias is the *last* entry of the augmented weight vector ``w``,
  the weight of a constant +1 appended to every input;
* training starts from ``w = 0``, visits the examples in the given order (no shuffling),
  updates ``w += lr * (y_i - yhat_i) * [x_i, 1]`` after each example, counts the mistakes
  of each epoch and stops after the first epoch without mistakes (or after ``epochs``);
* linear layers are ``x @ W + b`` with ``W`` of shape (D_in, D_out); torch's ``F.linear``
  wants the transpose, which :func:`mlp_lib.interop.weight_to_torch` provides.

Perceptron cases hold multiples of 1/8 (or small integers), which make every dot product exact,
so ties ``z == 0`` really occur in every case (the step's value at 0 is tested everywhere) while
numpy and torch agree bit for bit. Besides random cases, every part has deliberate hard cases
whose structure is fixed and whose values come from the rng: ties, a zero row, exact zeros,
scores of size 1000, a square matrix (where a transpose fits), one layer only. Each mutant is a
typical mistake with the feedback a student who made it reads; the autograder's tests check
that each one loses the points of its own part, and only those, and is named by its feedback.
"""
import functools
import itertools

import numpy as np
import torch
import torch.nn.functional as F

from autograder.spec import Mutant, Part
from mlp_lib.interop import weight_to_torch

PUBLIC_SEED = 19580101
# the locked cells the answers may rely on: the imports, and the answers' vocabulary of Parts 7 and on
SETUP = ("setup", "understanding-setup")


def _torch_weight(W):
    """mlp_lib's (D_in, D_out) weight as torch's (D_out, D_in), on W's device (the interop translation)."""
    return torch.as_tensor(weight_to_torch(W.detach().cpu().numpy()), device=W.device)


# -- perceptron_predict -------------------------------------------------------------------
def _integer_points(rng, n, d, high=3):
    return rng.integers(-high, high + 1, size=(n, d)).astype(np.float64)


def _dyadic(rng, shape, high, denominator):
    """Multiples of 1/denominator in [-high, high]: sums of their products are exact in float64."""
    return rng.integers(-high * denominator, high * denominator + 1, size=shape) / denominator


def predict_cases(rng):
    # Every case has points exactly on the boundary (z == 0), so the step's value at 0 is graded in each
    # one, points whose label flips when the bias is left out, and a nonzero bias different from w[0], so
    # its position matters: small integers, D = 1, and real-looking values (multiples of 1/8, exact too).
    cases = []
    for n, d, denominator in ((int(rng.integers(12, 30)), int(rng.integers(2, 5)), 1),
                              (int(rng.integers(8, 16)), 1, 1),
                              (int(rng.integers(12, 30)), int(rng.integers(2, 6)), 8),
                              (int(rng.integers(20, 40)), int(rng.integers(3, 7)), 8)):
        w = _dyadic(rng, d + 1, 2, denominator)
        w[0] = 1.0                                   # solvable for X[:, 0]: the boundary can be hit exactly
        w[-1] = float(rng.choice([-1.5, -0.5, 0.5, 1.5, 2.5]))
        X = _dyadic(rng, (n, d), 3, denominator)
        on_boundary, half_bias = np.split(rng.choice(n, size=5, replace=False), [3])
        X[on_boundary, 0] = -(X[on_boundary, 1:] @ w[1:-1] + w[-1])               # z = 0 exactly
        X[half_bias, 0] = -(X[half_bias, 1:] @ w[1:-1] + w[-1] / 2)               # z = b / 2: without b, the sign flips
        cases.append({"X": X, "w": w})
    return cases


def predict_reference(X, w):
    z = X @ w[:-1] + w[-1]
    return (z > 0).to(torch.int64)


def _predict_ge(X, w):
    return (X @ w[:-1] + w[-1] >= 0).astype(np.int64)


def _predict_bias_first(X, w):
    return (X @ w[1:] + w[0] > 0).astype(np.int64)


def _predict_no_bias(X, w):
    return (X @ w[:-1] > 0).astype(np.int64)


def _predict_bool(X, w):
    return X @ w[:-1] + w[-1] > 0


def _predict_sign(X, w):
    return np.where(X @ w[:-1] + w[-1] > 0, 1, -1)


# -- perceptron_train ----------------------------------------------------------------------
def train_cases(rng):
    cases = []
    # Separable, exact arithmetic: labelled by an integer hyperplane, points on it removed.
    for _ in range(2):
        d = int(rng.integers(2, 4))
        w_star = rng.integers(-3, 4, size=d + 1).astype(np.float64)
        w_star[0] = w_star[0] or 1.0
        X = _integer_points(rng, 40, d)
        z = X @ w_star[:-1] + w_star[-1]
        X, z = X[z != 0][:25], z[z != 0][:25]
        cases.append({"X": X, "y": (z > 0).astype(np.int64), "epochs": np.int64(50), "lr": np.float64(1.0)})
    # Not separable (random labels), exact arithmetic: every epoch runs, ties occur.
    d = int(rng.integers(2, 4))
    X = _integer_points(rng, 15, d)
    cases.append({"X": X, "y": rng.integers(0, 2, size=15), "epochs": np.int64(6), "lr": np.float64(0.5)})
    # Real-valued, separable with a margin, another learning rate.
    d = int(rng.integers(2, 5))
    u = rng.standard_normal(d + 1)
    X = rng.standard_normal((60, d))
    z = X @ u[:-1] + u[-1]
    keep = np.abs(z) > 0.3
    cases.append({"X": X[keep][:30], "y": (z[keep][:30] > 0).astype(np.int64), "epochs": np.int64(100),
                  "lr": np.float64(0.25)})
    # Real-valued XOR-like labels: never separable.
    X = rng.standard_normal((12, 2))
    cases.append({"X": X, "y": ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(np.int64), "epochs": np.int64(5),
                  "lr": np.float64(1.0)})
    # Every label 0: w = 0 predicts them all (H(0) = 0), so one epoch without a mistake ends the run.
    n = int(rng.integers(5, 12))
    cases.append({"X": _integer_points(rng, n, int(rng.integers(2, 5))), "y": np.zeros(n, dtype=np.int64),
                  "epochs": np.int64(8), "lr": np.float64(1.0)})
    return cases


def train_reference(X, y, epochs, lr):
    n, d = X.shape
    Xa = torch.cat([X, torch.ones((n, 1), dtype=X.dtype, device=X.device)], dim=1)
    w = torch.zeros(d + 1, dtype=X.dtype, device=X.device)
    mistakes = []
    for _ in range(int(epochs)):
        count = 0
        for i in range(n):
            yhat = 1 if float(torch.dot(Xa[i], w)) > 0 else 0
            err = int(y[i]) - yhat
            if err != 0:
                w = w + lr * err * Xa[i]
                count += 1
        mistakes.append(count)
        if count == 0:
            break
    return w, torch.tensor(mistakes, dtype=torch.int64)


def train_call(student, X, y, epochs, lr):
    return student.perceptron_train(X, y, epochs=int(epochs), lr=float(lr))


def _augmented(X):
    return np.hstack([X, np.ones((X.shape[0], 1))])


def _train_loop(X, y, epochs, lr, *, order=None, stop=True, step_ge=False, learn_bias=True,
                count_after=False):
    Xa = _augmented(X)
    w = np.zeros(Xa.shape[1])
    mistakes = []
    for epoch in range(epochs):
        idx = range(len(y)) if order is None else order(epoch, len(y))
        count = 0
        for i in idx:
            z = Xa[i] @ w
            yhat = int(z >= 0) if step_ge else int(z > 0)
            err = y[i] - yhat
            if err:
                step = lr * err * Xa[i]
                if not learn_bias:
                    step[-1] = 0.0
                w = w + step
                count += 1
        if count_after:
            count = int(((Xa @ w > 0).astype(int) != y).sum())
        mistakes.append(count)
        if stop and mistakes[-1] == 0:
            break
    return w, np.array(mistakes, dtype=np.int64)


def _train_no_early_stop(X, y, *, epochs, lr=1.0):
    return _train_loop(X, y, epochs, lr, stop=False)


def _train_shuffled(X, y, *, epochs, lr=1.0):
    rng = np.random.default_rng(0)
    return _train_loop(X, y, epochs, lr, order=lambda e, n: rng.permutation(n))


def _train_step_ge(X, y, *, epochs, lr=1.0):
    return _train_loop(X, y, epochs, lr, step_ge=True)


def _train_no_bias(X, y, *, epochs, lr=1.0):
    return _train_loop(X, y, epochs, lr, learn_bias=False)


def _train_mistakes_after_epoch(X, y, *, epochs, lr=1.0):
    return _train_loop(X, y, epochs, lr, count_after=True)


def _train_bias_first(X, y, *, epochs, lr=1.0):
    w, mistakes = _train_loop(X, y, epochs, lr)
    return np.concatenate([w[-1:], w[:-1]]), mistakes


def _train_batch(X, y, *, epochs, lr=1.0):
    # One update per epoch with the summed corrections of all examples (the "batch" perceptron).
    Xa = _augmented(X)
    w = np.zeros(Xa.shape[1])
    mistakes = []
    for _ in range(epochs):
        err = y - (Xa @ w > 0).astype(int)
        w = w + lr * err @ Xa
        mistakes.append(int(np.count_nonzero(err)))
        if mistakes[-1] == 0:
            break
    return w, np.array(mistakes, dtype=np.int64)


# -- affine_forward ---------------------------------------------------------------------------
def _distinct_sizes(rng, k, low=2, high=10):
    """k distinct ints in [low, high): N != D_in != D_out, so a transposed result cannot fit by accident."""
    return [int(v) for v in rng.choice(np.arange(low, high), size=k, replace=False)]


def affine_cases(rng):
    cases = []
    for _ in range(3):
        n, d, m = _distinct_sizes(rng, 3)
        cases.append({"x": rng.standard_normal((n, d)), "W": rng.standard_normal((d, m)), "b": rng.standard_normal(m)})
    n, d = _distinct_sizes(rng, 2)               # square W: here a transposed W fits, with other values
    cases.append({"x": rng.standard_normal((n, d)), "W": rng.standard_normal((d, d)), "b": rng.standard_normal(d)})
    n, d, m = _distinct_sizes(rng, 3)            # a zero input row: its output row is b exactly
    x = rng.standard_normal((n, d))
    x[0] = 0.0
    cases.append({"x": x, "W": rng.standard_normal((d, m)), "b": rng.standard_normal(m)})
    return cases


def affine_reference(x, W, b):
    return F.linear(x, _torch_weight(W), b)


def _affine_no_bias(x, W, b):
    return x @ W


def _affine_transposed_output(x, W, b):
    return (x @ W + b).T


def _affine_transposed_weight(x, W, b):
    return x @ W.T + b


# -- sigmoid ----------------------------------------------------------------------------------
def sigmoid_cases(rng):
    cases = [{"x": 4.0 * rng.standard_normal((int(rng.integers(2, 8)), int(rng.integers(2, 8))))} for _ in range(2)]
    cases.append({"x": 3.0 * rng.standard_normal(int(rng.integers(3, 12)))})             # any shape: 1-D
    cases.append({"x": 3.0 * rng.standard_normal((2, int(rng.integers(2, 4)), int(rng.integers(2, 5))))})   # 3-D
    big = 800.0 * rng.standard_normal((int(rng.integers(3, 7)), int(rng.integers(3, 7))))
    big[0, 0], big[-1, -1] = 1000.0, -1000.0     # both directions overflow a naive exp
    big[0, -1] = 0.0                             # sigmoid(0) = 0.5 exactly
    cases.append({"x": big})
    return cases


def sigmoid_reference(x):
    return torch.sigmoid(x)


def _sigmoid_exp_ratio(x):
    e = np.exp(x)
    return e / (1.0 + e)


def _sigmoid_overflow_warning(x):
    return 1.0 / (1.0 + np.exp(-x))             # right values, but exp(1000) overflows (numpy warns)


def _sigmoid_sign(x):
    return 1.0 / (1.0 + np.exp(np.clip(x, -700, 700)))


def _sigmoid_in_place(x):
    pos = x >= 0
    e = np.exp(-np.abs(x))
    x[pos] = 1.0 / (1.0 + e[pos])
    x[~pos] = e[~pos] / (1.0 + e[~pos])
    return x


# -- softmax ----------------------------------------------------------------------------------
def softmax_cases(rng):
    cases = []
    for _ in range(2):
        n, c = _distinct_sizes(rng, 2)
        cases.append({"x": 2.0 * rng.standard_normal((n, c))})
    k = int(rng.integers(3, 7))
    cases.append({"x": rng.standard_normal((k, k))})                    # square: x.max(axis=1) broadcasts wrongly
    n, c = _distinct_sizes(rng, 2, low=3)
    x = 3.0 * rng.standard_normal((n, c))
    x[0] += 1000.0                                # overflows a naive exp
    x[1] -= 1000.0                                # 1000 below row 0: one maximum for the batch leaves 0 / 0 here
    x[2, :2] = x[2].max() + 1.0                   # two equal maxima in a row
    cases.append({"x": x})
    return cases


def softmax_reference(x):
    return torch.softmax(x, dim=1)


def _softmax_naive(x):
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def _softmax_wrong_axis(x):
    e = np.exp(x - x.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _softmax_global_max(x):
    e = np.exp(x - x.max())
    return e / e.sum(axis=1, keepdims=True)


def _softmax_in_place(x):
    x -= x.max(axis=1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=1, keepdims=True)
    return x


def _softmax_no_keepdims(x):
    e = np.exp(x - x.max(axis=1))
    return e / e.sum(axis=1, keepdims=True)


# -- mlp_forward ------------------------------------------------------------------------------
# Cases carry the network as `dims` (D_0, ..., D_L) and one flat vector `theta` holding
# W_1, b_1, ..., W_L, b_L in turn; the adapter below rebuilds the list of (W, b) pairs.
def mlp_cases(rng):
    # Depth 1 (a single linear layer: no ReLU at all) to 4; N and the widths all differ, so skipping a
    # layer changes the output's shape.
    cases = []
    for depth in (1, 2, 3, 4):
        n, *dims = _distinct_sizes(rng, depth + 2, high=12)
        dims = np.array(dims, dtype=np.int64)
        size = int(sum(a * b + b for a, b in zip(dims[:-1], dims[1:])))
        cases.append({"x": rng.standard_normal((n, int(dims[0]))), "dims": dims, "theta": rng.standard_normal(size)})
    return cases


def mlp_call(student, x, dims, theta):
    params, k = [], 0
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        d_in, d_out = int(d_in), int(d_out)
        W = theta[k:k + d_in * d_out].reshape(d_in, d_out)   # views of theta: an in-place change shows
        k += d_in * d_out
        b = theta[k:k + d_out]
        k += d_out
        params.append((W, b))
    return student.mlp_forward(x, params)


def mlp_reference(x, dims, theta):
    h, k = x, 0
    pairs = list(zip(dims[:-1].tolist(), dims[1:].tolist()))
    for layer, (d_in, d_out) in enumerate(pairs):
        W = theta[k:k + d_in * d_out].reshape(d_in, d_out)
        k += d_in * d_out
        b = theta[k:k + d_out]
        k += d_out
        h = F.linear(h, _torch_weight(W), b)
        if layer < len(pairs) - 1:
            h = torch.relu(h)
    return h


def _mlp_relu_on_output(x, params):
    h = x
    for W, b in params:
        h = np.maximum(h @ W + b, 0.0)
    return h


def _mlp_no_activation(x, params):
    h = x
    for W, b in params:
        h = h @ W + b
    return h


def _mlp_sigmoid_hidden(x, params):
    h = x
    for i, (W, b) in enumerate(params):
        h = h @ W + b
        if i < len(params) - 1:
            h = 1.0 / (1.0 + np.exp(-h))
    return h


def _mlp_no_bias(x, params):
    h = x
    for i, (W, b) in enumerate(params):
        h = h @ W
        if i < len(params) - 1:
            h = np.maximum(h, 0.0)
    return h


def _mlp_skips_last_layer(x, params):
    h = x
    for W, b in params[:-1]:
        h = np.maximum(h @ W + b, 0.0)
    return h


# == Understanding: what the chapter teaches you to predict (Parts 7 and 8) =====================
# Both parts are graded like the others, on hidden cases drawn from the secret seed. Their answers
# need only numpy and the standard library. Each mutant below is a typical wrong answer (guesses
# included) with the feedback a student who gave it should read.

ONE_PERCEPTRON = "one perceptron"
HIDDEN_LAYER = "hidden layer needed"


# -- needs_hidden_layer: is a Boolean function linearly separable? --------------------------------
def _bits(d):
    """The 2**d inputs of a d-bit Boolean function, row k = the binary digits of k."""
    return np.array(list(itertools.product((0.0, 1.0), repeat=d)))


@functools.lru_cache(maxsize=None)
def _threshold_tables(d):
    """Every truth table (in the order of _bits) that one perceptron computes, for d <= 4.

    Integer weights in [-3, 3] and biases b + 1/4 with 2b an integer in [-15, 15] reach all of them:
    tests/test_assignment_ch01.py checks the known counts 14, 104 and 1882.
    """
    X = _bits(d)
    W = np.array(list(itertools.product(range(-3, 4), repeat=d)), dtype=np.float64).T      # (d, 7**d)
    biases = np.arange(-15, 16) / 2.0 + 0.25
    z = (X @ W)[:, :, None] + biases                                                    # (2**d, 7**d, 31)
    tables = (z > 0).reshape(len(X), -1).T.astype(np.int64)
    return frozenset(map(tuple, np.unique(tables, axis=0)))


def _canonical(X, y):
    """y reordered to the order of _bits: row k of X is the binary number k."""
    index = (np.asarray(X) @ (2.0 ** np.arange(X.shape[1] - 1, -1, -1))).astype(np.int64)
    out = np.empty(len(y), dtype=np.int64)
    out[index] = np.asarray(y)
    return out


def _is_separable(X, y):
    return tuple(_canonical(X, y).tolist()) in _threshold_tables(X.shape[1])


def _epochs_to_learn(X, y, cap=1000):
    """Epochs the perceptron rule (Part 2's conventions) needs on (X, y) in this order; None if it never stops."""
    Xa = np.hstack([X, np.ones((len(X), 1))])
    w = np.zeros(Xa.shape[1])
    for epoch in range(1, cap + 1):
        mistakes = 0
        for x_i, y_i in zip(Xa, y):
            y_hat = 1 if x_i @ w > 0 else 0
            if y_hat != y_i:
                w = w + (y_i - y_hat) * x_i
                mistakes += 1
        if mistakes == 0:
            return epoch
    return None


def _is_monotone(table, d):
    """Non-decreasing in every input (the tables a perceptron with non-negative weights can compute)."""
    X = _bits(d)
    index = {tuple(row): k for k, row in enumerate(X)}
    for k, row in enumerate(X):
        for j in range(d):
            if row[j] == 0.0:
                up = row.copy()
                up[j] = 1.0
                if table[index[tuple(up)]] < table[k]:
                    return False
    return True


def _pair_xor(table, d):
    """The table is XOR or XNOR of two of the inputs, whatever the others are."""
    X = _bits(d)
    for i, j in itertools.combinations(range(d), 2):
        parity = (X[:, i] != X[:, j]).astype(np.int64)
        if np.array_equal(table, parity) or np.array_equal(table, 1 - parity):
            return True
    return False


def _is_gate(table, d):
    """AND, OR or NOT of literals: a single 1 or a single 0 in the table, or one input (or its negation)."""
    X = _bits(d)
    single_input = any(np.array_equal(table, X[:, j]) or np.array_equal(table, 1 - X[:, j]) for j in range(d))
    return int(np.sum(table)) in (0, 1, len(table) - 1, len(table)) or single_input


def _hidden_case(rng, d, table):
    order = rng.permutation(2 ** d)
    return {"X": _bits(d)[order], "y": np.asarray(table, dtype=np.int64)[order]}


def needs_hidden_cases(rng):
    """Ten functions of 2 to 4 bits, five of each answer, in a random order. On purpose: XOR or XNOR;
    the parity of 3 bits (no two-input XOR hides in it); a function of 3 bits that is not separable and
    holds no two-input XOR; a random one of 4 bits that is not separable; a monotone one of 4 bits that
    is not separable either, (x_i and x_j) or (x_k and x_l); a separable function of 2 bits that is not
    monotone (a negative weight) and a monotone separable one of 3 bits that is no single gate (several
    ones and zeros), both in an order the learning rule gets right within 5 epochs; a single gate of 4
    bits (one 1 or one 0 in the table); a separable one the learning rule needs at least 8 epochs for,
    in the order given, of 3 and of 4 bits."""
    separable = {d: sorted(_threshold_tables(d)) for d in (2, 3, 4)}

    def pick_separable(d, accept):
        while True:
            table = np.array(separable[d][rng.integers(len(separable[d]))])
            if accept(table):
                return table

    def learnt_within_5_epochs(d, accept):
        """A separable table and an order of its rows that the learning rule gets right in 5 epochs."""
        while True:
            case = _hidden_case(rng, d, pick_separable(d, accept))
            if _epochs_to_learn(case["X"], case["y"], cap=5) is not None:
                return case

    def pick_other(d, accept):
        while True:
            table = rng.integers(0, 2, size=2 ** d)
            if tuple(table.tolist()) not in _threshold_tables(d) and accept(table):
                return table

    parity2 = (_bits(2).sum(axis=1) % 2).astype(np.int64)
    parity3 = (_bits(3).sum(axis=1) % 2).astype(np.int64)
    i, j, k, l = rng.permutation(4)
    X4 = _bits(4)
    two_pairs = ((X4[:, i] * X4[:, j] + X4[:, k] * X4[:, l]) > 0).astype(np.int64)
    cases = [_hidden_case(rng, 2, parity2 if rng.random() < 0.5 else 1 - parity2),
             _hidden_case(rng, 3, parity3 if rng.random() < 0.5 else 1 - parity3),
             _hidden_case(rng, 3, pick_other(3, lambda t: not _pair_xor(t, 3))),
             _hidden_case(rng, 4, pick_other(4, lambda t: not _pair_xor(t, 4))),
             _hidden_case(rng, 4, two_pairs),
             learnt_within_5_epochs(2, lambda t: not _is_monotone(t, 2)),
             learnt_within_5_epochs(3, lambda t: _is_monotone(t, 3) and not _is_gate(t, 3)),
             _hidden_case(rng, 4, pick_separable(4, lambda t: t.sum() in (1, 15)))]
    for d in (3, 4):
        while True:                                  # hard for the learning rule, in the order given
            case = _hidden_case(rng, d, pick_separable(d, lambda t: 2 <= t.sum() <= 2 ** d - 2))
            if _epochs_to_learn(case["X"], case["y"]) >= 8:
                cases.append(case)
                break
    return [cases[i] for i in rng.permutation(len(cases))]


def needs_hidden_reference(X, y):
    return np.array(ONE_PERCEPTRON if _is_separable(X.cpu().numpy(), y.cpu().numpy()) else HIDDEN_LAYER)


def _needs_always_one(X, y):
    return ONE_PERCEPTRON


def _needs_always_hidden(X, y):
    return HIDDEN_LAYER


def _needs_only_pair_xor(X, y):
    table = _canonical(X, y)
    return HIDDEN_LAYER if _pair_xor(table, X.shape[1]) else ONE_PERCEPTRON


def _needs_not_monotone(X, y):
    return ONE_PERCEPTRON if _is_monotone(_canonical(X, y), X.shape[1]) else HIDDEN_LAYER


def _needs_gates_only(X, y):
    # "A perceptron computes AND, OR and NOT": one 1 or one 0 in the table (or a single input).
    return ONE_PERCEPTRON if _is_gate(_canonical(X, y), X.shape[1]) else HIDDEN_LAYER


def _needs_five_epochs(X, y):
    epochs = _epochs_to_learn(X, y, cap=5)
    return ONE_PERCEPTRON if epochs is not None else HIDDEN_LAYER


# -- novikoff_bound: the convergence theorem's bound on the number of mistakes ---------------------
def novikoff_cases(rng):
    cases = []
    while len(cases) < 5:
        d = int(rng.integers(2, 5))
        u = rng.standard_normal(d + 1) * rng.uniform(0.3, 4.0)      # any length: the bound needs the unit vector
        if not cases:                                # a boundary at distance 1 from the origin: the bias matters
            u[-1] = np.linalg.norm(u[:-1]) * rng.choice([-1.0, 1.0])
        X = rng.uniform(-2.0, 2.0, size=(200, d))
        margin = (X @ u[:-1] + u[-1]) / np.linalg.norm(u)
        keep = np.abs(margin) > 0.05
        n = int(rng.integers(10, 40))
        X, margin = X[keep][:n], margin[keep][:n]
        if (margin > 0).sum() >= 2 and (margin < 0).sum() >= 2:    # both classes, or the rule has nothing to do
            cases.append({"X": X, "y": (margin > 0).astype(np.int64), "u": u})
    return cases


def novikoff_reference(X, y, u):
    Xa = torch.cat([X, torch.ones((X.shape[0], 1), dtype=X.dtype, device=X.device)], dim=1)
    R = torch.linalg.vector_norm(Xa, dim=1).max()
    gamma = ((2 * y - 1).to(X.dtype) * (Xa @ (u / torch.linalg.vector_norm(u)))).min()
    return (R / gamma) ** 2


def _novikoff_parts(X, y, u, *, augment_R=True, normalize=True, signs=True, reduce=np.min):
    Xa = np.hstack([X, np.ones((len(X), 1))])
    R = np.linalg.norm(Xa if augment_R else X, axis=1).max()
    s = (2 * y - 1) if signs else y
    gamma = reduce(s * (Xa @ (u / np.linalg.norm(u) if normalize else u)))
    return R, gamma


def _novikoff_R_without_one(X, y, u):
    R, gamma = _novikoff_parts(X, y, u, augment_R=False)
    return (R / gamma) ** 2


def _novikoff_u_not_unit(X, y, u):
    R, gamma = _novikoff_parts(X, y, u, normalize=False)
    return (R / gamma) ** 2


def _novikoff_labels_as_signs(X, y, u):
    R, gamma = _novikoff_parts(X, y, u, signs=False)
    with np.errstate(divide="ignore"):
        return (R / gamma) ** 2


def _novikoff_not_squared(X, y, u):
    R, gamma = _novikoff_parts(X, y, u)
    return R / gamma


def _novikoff_mean_margin(X, y, u):
    R, gamma = _novikoff_parts(X, y, u, reduce=np.mean)
    return (R / gamma) ** 2


def _novikoff_bias_ignored(X, y, u):
    R = np.linalg.norm(X, axis=1).max()
    gamma = np.min((2 * y - 1) * (X @ (u[:-1] / np.linalg.norm(u[:-1]))))
    return (R / gamma) ** 2


def _novikoff_constant(X, y, u):
    return 100.0


_XOR_BOOK = "ch01-xor"
_RULE_BOOK = "ch01-learning-rule"
UNDERSTANDING_PARTS = [
    Part(id="needs_hidden_layer", points=2, function="needs_hidden_layer", outputs=("answer",),
         cases=needs_hidden_cases, reference=needs_hidden_reference,
         mutants={
             "always one perceptron": Mutant(_needs_always_one, book=_XOR_BOOK, feedback=(
                 "Not every Boolean function is linearly separable: XOR needs a hidden layer, and so do most "
                 "functions of 3 or 4 bits. Decide for each table, e.g. with the learning rule and the "
                 "convergence theorem.")),
             "always hidden layer": Mutant(_needs_always_hidden, book=_RULE_BOOK, feedback=(
                 "Many Boolean functions are computed by one perceptron (AND, OR, majority, any function "
                 "whose ones lie on one side of a hyperplane). On separable data the learning rule stops "
                 "after an epoch without mistakes: use it to find out.")),
             "hidden layer only for XOR of two inputs": Mutant(_needs_only_pair_xor, book=_XOR_BOOK, feedback=(
                 "XOR of two inputs is the smallest example, not the only one: the parity of 3 bits, or "
                 "'exactly one of three', is not linearly separable either. Test separability itself, not "
                 "a resemblance to XOR.")),
             "hidden layer whenever not monotone": Mutant(_needs_not_monotone, book="ch01-perceptron", feedback=(
                 "A perceptron's weights can be negative: 'x2 and not x1' is computed by w = (-1, 1), b = -0.5. "
                 "A function that decreases in some input can still be linearly separable.")),
             "perceptron = AND / OR / NOT only": Mutant(_needs_gates_only, book="ch01-perceptron", feedback=(
                 "One perceptron computes every function whose two classes are split by a hyperplane, "
                 "e.g. majority (x1 + x2 + x3 > 1.5), not only the gates with a single 1 or a single 0.")),
             "learning rule run for 5 epochs": Mutant(_needs_five_epochs, book=_RULE_BOOK, feedback=(
                 "The learning rule can need more epochs than you think before its first epoch without a "
                 "mistake. The convergence theorem bounds the mistakes by (R/gamma)^2, which can be large "
                 "for a small margin: give it hundreds of epochs before you conclude 'not separable'.")),
         }),
    Part(id="novikoff_bound", points=2, function="novikoff_bound", outputs=("bound",),
         cases=novikoff_cases, reference=novikoff_reference,
         mutants={
             "R computed without the constant input": Mutant(_novikoff_R_without_one, book=_RULE_BOOK, feedback=(
                 "R is the largest norm of the augmented inputs (x1, ..., xd, 1): the constant 1 is part "
                 "of every input the rule adds to the weights.")),
             "u not normalised": Mutant(_novikoff_u_not_unit, book=_RULE_BOOK, feedback=(
                 "The margin gamma is measured with a unit vector: divide u by its norm first. Otherwise "
                 "the bound changes when u is rescaled, although the boundary does not.")),
             "labels {0, 1} used as signs": Mutant(_novikoff_labels_as_signs, book=_RULE_BOOK, feedback=(
                 "The margin of an example is (2y - 1) u.x, which is positive on the right side for both "
                 "classes; multiplying by y in {0, 1} makes every class-0 margin 0.")),
             "R / gamma not squared": Mutant(_novikoff_not_squared, book=_RULE_BOOK, feedback=(
                 "The bound on the number of mistakes is (R / gamma) squared.")),
             "mean margin instead of the smallest": Mutant(_novikoff_mean_margin, book=_RULE_BOOK, feedback=(
                 "gamma is the smallest margin over the examples, the one closest to the boundary.")),
             "bias ignored": Mutant(_novikoff_bias_ignored, book="ch01-perceptron", feedback=(
                 "u is the augmented vector (w, b): its last entry is the bias, the weight of the constant "
                 "input. Keep it in the margins and in the norm.")),
             "a constant": Mutant(_novikoff_constant, book=_RULE_BOOK, feedback=(
                 "The bound depends on the data and on u: compute R and gamma for each case.")),
         }),
]


PARTS = [
    Part(id="perceptron_predict", points=1, function="perceptron_predict", outputs=("labels",),
         cases=predict_cases, reference=predict_reference, forbid=("mlp_lib.modules.Perceptron",),
         mutants={
             "step is 1 at z = 0": Mutant(
                 _predict_ge, book="ch01-perceptron",
                 feedback="a point exactly on the boundary (z = 0) gets label 1: the step is H(z) = 1 only for "
                          "z > 0, so compare with > 0, not >= 0."),
             "bias taken from w[0]": Mutant(
                 _predict_bias_first, book="ch01-perceptron",
                 feedback="the bias is read from w[0]: it is the LAST entry, w[-1], and the weights are w[:-1] "
                          "(the weight of a constant 1 appended to each input)."),
             "no bias": Mutant(
                 _predict_no_bias, book="ch01-perceptron",
                 feedback="the bias w[-1] is never added: z = X @ w[:-1] + w[-1]."),
             "boolean labels": Mutant(
                 _predict_bool, book="ch01-perceptron",
                 feedback="the labels are booleans (True/False): return the integers 0 and 1, e.g. with "
                          ".astype(np.int64)."),
             "labels in {-1, +1}": Mutant(
                 _predict_sign, book="ch01-perceptron",
                 feedback="the labels are -1 and +1: this perceptron's labels are 0 and 1 (H(z) = 0 for z <= 0)."),
         }),
    Part(id="perceptron_train", points=3, function="perceptron_train", outputs=("w", "mistakes"),
         cases=train_cases, reference=train_reference, call=train_call,
         forbid=("mlp_lib.modules.Perceptron",),
         mutants={
             "no early stop": Mutant(
                 _train_no_early_stop, book="ch01-learning-rule",
                 feedback="training goes on after an epoch without mistakes: stop right after the first epoch "
                          "with no mistake, so that its 0 is the last entry of mistakes."),
             "shuffled order": Mutant(
                 _train_shuffled, book="ch01-learning-rule",
                 feedback="the examples are visited in a shuffled order: every epoch visits them in the given "
                          "order, i = 0, 1, ..., N - 1."),
             "step is 1 at z = 0": Mutant(
                 _train_step_ge, book="ch01-learning-rule",
                 feedback="an example with z = 0 is predicted 1: H(0) = 0, as in Part 1. It matters from the "
                          "very first example, where w = 0 gives z = 0."),
             "bias never updated": Mutant(
                 _train_no_bias, book="ch01-learning-rule",
                 feedback="the bias (the last weight) never changes: each input is augmented with a constant 1, "
                          "so the bias moves by lr * (y_i - yhat_i) * 1 like the other weights."),
             "mistakes counted after the epoch": Mutant(
                 _train_mistakes_after_epoch, book="ch01-learning-rule",
                 feedback="the mistakes are counted after the epoch, with its final weights: a mistake is an "
                          "update, an example predicted wrongly with the weights of the moment it is visited."),
             "bias returned first": Mutant(
                 _train_bias_first, book="ch01-learning-rule",
                 feedback="w is returned with the bias first: the bias is the last entry, w[-1], as in Part 1."),
             "batch updates": Mutant(
                 _train_batch, book="ch01-learning-rule",
                 feedback="the weights are updated once per epoch with the summed corrections: the perceptron "
                          "rule updates right after each example, so later examples of the epoch see the new "
                          "weights."),
         }),
    Part(id="affine_forward", points=1, function="affine_forward", outputs=("out",),
         cases=affine_cases, reference=affine_reference, forbid=("mlp_lib.layers.linear_forward",),
         mutants={
             "no bias": Mutant(
                 _affine_no_bias, diagnosis="row_offset", book="ch01-anatomy",
                 feedback="the bias b is never added: out = x @ W + b adds b to every row."),
             "transposed output": Mutant(
                 _affine_transposed_output, diagnosis="transposed", book="ch01-anatomy",
                 feedback="out is transposed: it has one row per example, shape (N, D_out), as x @ W + b gives."),
             "W transposed": Mutant(
                 _affine_transposed_weight, book="ch01-anatomy",
                 feedback="W is used transposed (x @ W.T): W already has shape (D_in, D_out), column k holding "
                          "the weights into unit k, so the product is x @ W."),
         }),
    Part(id="sigmoid", points=1, function="sigmoid", outputs=("out",), stable=True,
         cases=sigmoid_cases, reference=sigmoid_reference, forbid=("mlp_lib.layers.sigmoid_forward",),
         mutants={
             "exp(x) / (1 + exp(x))": Mutant(
                 _sigmoid_exp_ratio, diagnosis="unstable", book="ch01-activations",
                 feedback="e^x / (1 + e^x) overflows for large positive x (inf / inf = NaN): give each entry the "
                          "form whose exponential sees -|x|, 1 / (1 + e^-|x|) for x >= 0 and e^-|x| / (1 + e^-|x|) "
                          "for x < 0."),
             "exp overflows (numpy warns)": Mutant(
                 _sigmoid_overflow_warning, diagnosis="warning", book="ch01-activations",
                 feedback="np.exp overflows somewhere (numpy warns) even though the values come out right: "
                          "1 / (1 + np.exp(-x)) does so for x = -1000, and so does np.where(x >= 0, ..., ...) "
                          "with an exponential of x or -x in a branch, since np.where computes both branches for "
                          "every entry. Compute e = np.exp(-np.abs(x)) once and build both forms from it."),
             "sign error": Mutant(
                 _sigmoid_sign, book="ch01-activations",
                 feedback="the result is sigmoid(-x) = 1 / (1 + e^x): sigma(x) = 1 / (1 + e^-x) tends to 1 for "
                          "large positive x."),
             "in place": Mutant(
                 _sigmoid_in_place, diagnosis="mutated_input", book="ch01-activations",
                 feedback="x is overwritten with the result: build the result in a new array (np.where does) "
                          "and leave x unchanged."),
         }),
    Part(id="softmax", points=2, function="softmax", outputs=("probs",), stable=True,
         cases=softmax_cases, reference=softmax_reference,
         forbid=("mlp_lib.layers.softmax_forward", "mlp_lib.layers.log_softmax"),
         mutants={
             "no max subtraction": Mutant(
                 _softmax_naive, diagnosis="unstable", book="ch01-softmax",
                 feedback="np.exp overflows for scores of size 1000 (inf / inf = NaN): subtract each row's "
                          "maximum before np.exp, which does not change the result."),
             "normalised over the batch axis": Mutant(
                 _softmax_wrong_axis, diagnosis="wrong_axis", book="ch01-softmax",
                 feedback="each column is normalised (max and sum over axis 0, the batch): every ROW is one "
                          "example's probability vector, so reduce over axis=1."),
             "one max for the whole batch": Mutant(
                 _softmax_global_max, diagnosis="unstable", book="ch01-softmax",
                 feedback="one maximum, x.max(), is subtracted for the whole batch: a row far below it "
                          "underflows to 0 / 0. Subtract each row's own maximum, x.max(axis=1, keepdims=True)."),
             "max subtracted without keepdims": Mutant(
                 _softmax_no_keepdims, book="ch01-softmax",
                 feedback="x.max(axis=1) has shape (N,) and is subtracted along each row, entry k from column k "
                          "(it broadcasts only when N == C): keep the axis, x.max(axis=1, keepdims=True)."),
             "in place": Mutant(
                 _softmax_in_place, diagnosis="mutated_input", book="ch01-softmax",
                 feedback="x is changed in place (x -= ..., np.exp(x, out=x)): compute in new arrays and leave "
                          "x unchanged."),
         }),
    Part(id="mlp_forward", points=2, function="mlp_forward", outputs=("scores",),
         cases=mlp_cases, reference=mlp_reference, call=mlp_call,
         forbid=("mlp_lib.layers.linear_forward", "mlp_lib.modules.Sequential", "mlp_lib.modules.Linear"),
         mutants={
             "ReLU after the output layer": Mutant(
                 _mlp_relu_on_output, book="ch01-forward-pass",
                 feedback="a ReLU follows the last layer too: the output layer is linear, and scores may be "
                          "negative."),
             "no activation": Mutant(
                 _mlp_no_activation, book="ch01-forward-pass",
                 feedback="there is no ReLU between the layers: every layer except the last is followed by "
                          "max(z, 0), or the network collapses into one affine map."),
             "sigmoid hidden units": Mutant(
                 _mlp_sigmoid_hidden, book="ch01-forward-pass",
                 feedback="the hidden layers use a sigmoid: this network's hidden activation is the ReLU, "
                          "max(z, 0)."),
             "no biases": Mutant(
                 _mlp_no_bias, book="ch01-forward-pass",
                 feedback="the biases are never added: each layer computes h @ W + b."),
             "last layer skipped": Mutant(
                 _mlp_skips_last_layer, book="ch01-forward-pass",
                 feedback="the last layer is never applied: the loop runs over every pair (W, b) of params, and "
                          "only after the last one is there no ReLU."),
         }),
    *UNDERSTANDING_PARTS,
]
