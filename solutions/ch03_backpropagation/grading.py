"""Grading spec of Chapter 3's exercise: backward passes, softmax cross-entropy, a two-layer
network's gradients, and a numerical gradient.

Every Part draws its cases from the grader's rng and is judged against a torch reference computed
in float64 with autograd (on the grading device). Conventions, as stated in the exercise and in
the book (``mlp_lib.layers`` and ``mlp_lib.losses`` follow them too):

* a linear layer is ``out = x @ W + b`` with ``W`` of shape (D_in, D_out); its cache is the
  tuple ``(x, W, b)`` that ``mlp_lib.layers.linear_forward`` returns;
* the sigmoid's and tanh's caches are ``(out,)``, the *output* of the forward pass, as
  ``mlp_lib.layers.sigmoid_forward`` / ``tanh_forward`` return them;
* softmax cross-entropy averages over the batch (torch's ``F.cross_entropy``) and returns
  ``(loss, dlogits)``;
* the two-layer network is Linear -> ReLU -> Linear -> softmax cross-entropy, ReLU's derivative
  0 where Z1 <= 0 (torch's); the student may write it out or call their Parts 1 and 4 (the
  statement says so, and the grader names those parts when they are wrong too);
* the numerical gradient uses centered differences with ``h = 1e-5``, perturbs ``x`` in place
  and restores it exactly; it is graded on known smooth scalar functions (a string option
  names one) against torch's autograd gradient, with a tolerance that the centered difference's
  O(h^2) error meets and the forward difference's O(h) error does not, and by its consequences:
  some functions read ``x`` itself rather than their argument, and the entries of ``x`` that
  differ after the call (bit for bit) are an output, which must be all zeros.

Backward passes get random upstream gradients (never ones). Shapes are drawn so that N, D_in,
D_out (and H, C) differ, which lets the grader tell a transposed result or a sum over the wrong
axis from other mistakes. Besides random cases, every part has deliberate hard cases whose
structure is fixed: a zero row and column of dout, x == 0 and saturated activations, logits of
size 1000 whose label is far below the row's maximum, pre-activations exactly 0, a function
reading x itself, entries of x that adding and subtracting h does not give back. Each mutant is a
typical mistake with the feedback a student who made it reads; tests/test_assignment_ch03.py and
tests/test_autograder_mutants.py check that each loses the points of its own part, and only
those, and is named by its feedback.
"""
import numpy as np
import torch
import torch.nn.functional as F

from autograder.spec import Mutant, Part

PUBLIC_SEED = 19861009       # Nature's issue of Rumelhart, Hinton & Williams: 9 October 1986
# the locked cells the answers may rely on: the imports, and the answers' vocabulary of Parts 7 and on
SETUP = ("setup", "understanding-setup")


def _distinct_sizes(rng, k, low, high):
    """k distinct ints in [low, high): distinct dimensions make shape mistakes identifiable."""
    return [int(v) for v in rng.choice(np.arange(low, high), size=k, replace=False)]


# -- affine_backward ------------------------------------------------------------------------
def affine_cases(rng):
    cases = []
    for k in range(5):
        n, d_in, d_out = _distinct_sizes(rng, 3, 2, 10)
        dout = rng.standard_normal((n, d_out))
        if k == 4:                               # an example and an output unit that get no gradient
            dout[int(rng.integers(n)), :] = 0.0
            dout[:, int(rng.integers(d_out))] = 0.0
        cases.append({"dout": dout, "x": rng.standard_normal((n, d_in)),
                      "W": rng.standard_normal((d_in, d_out)), "b": rng.standard_normal(d_out)})
    return cases


def affine_reference(dout, x, W, b):
    x, W, b = (t.clone().requires_grad_(True) for t in (x, W, b))
    (x @ W + b).backward(dout)
    return x.grad, W.grad, b.grad


def affine_call(student, dout, x, W, b):
    return student.affine_backward(dout, (x, W, b))


def _affine_dW_transposed(dout, cache):
    x, W, b = cache
    return dout @ W.T, dout.T @ x, dout.sum(axis=0)


def _affine_db_wrong_axis(dout, cache):
    x, W, b = cache
    return dout @ W.T, x.T @ dout, dout.sum(axis=1)


def _affine_db_mean(dout, cache):
    x, W, b = cache
    return dout @ W.T, x.T @ dout, dout.mean(axis=0)


def _affine_dW_mean(dout, cache):
    x, W, b = cache
    return dout @ W.T, x.T @ dout / x.shape[0], dout.sum(axis=0)


def _affine_dx_sign(dout, cache):
    x, W, b = cache
    return -(dout @ W.T), x.T @ dout, dout.sum(axis=0)


# -- sigmoid_backward / tanh_backward ---------------------------------------------------------
def activation_cases(rng):
    shapes = [(int(rng.integers(2, 7)), int(rng.integers(2, 7))), (int(rng.integers(3, 9)),),
              (2, int(rng.integers(2, 5)), int(rng.integers(2, 5)))]
    cases = []
    for shape in shapes + [shapes[0]]:
        cases.append({"dout": rng.standard_normal(shape), "x": rng.uniform(-4.0, 4.0, size=shape)})
    x = cases[-1]["x"].reshape(-1)               # x == 0 (the largest derivative) and saturated units
    x[:3] = (0.0, float(rng.uniform(12.0, 20.0)), -float(rng.uniform(12.0, 20.0)))
    return cases


def sigmoid_reference(dout, x):
    x = x.clone().requires_grad_(True)
    torch.sigmoid(x).backward(dout)
    return x.grad


def sigmoid_call(student, dout, x):
    out = 1.0 / (1.0 + np.exp(-x))          # the forward pass; the cache holds its output,
    out.setflags(write=False)               # read-only like every input
    return student.sigmoid_backward(dout, (out,))


def _sigmoid_of_cache(dout, cache):
    (out,) = cache
    s = 1.0 / (1.0 + np.exp(-out))         # treats the cached output as the input x
    return dout * s * (1.0 - s)


def _sigmoid_in_place(dout, cache):
    (out,) = cache
    dout *= out * (1.0 - out)
    return dout


def _sigmoid_no_dout(dout, cache):
    (out,) = cache
    return out * (1.0 - out)


def _sigmoid_tanh_formula(dout, cache):
    (out,) = cache
    return dout * (1.0 - out * out)


def tanh_reference(dout, x):
    x = x.clone().requires_grad_(True)
    torch.tanh(x).backward(dout)
    return x.grad


def tanh_call(student, dout, x):
    out = np.tanh(x)
    out.setflags(write=False)
    return student.tanh_backward(dout, (out,))


def _tanh_no_square(dout, cache):
    (out,) = cache
    return dout * (1.0 - out)


def _tanh_of_cache(dout, cache):
    (out,) = cache
    return dout * (1.0 - np.tanh(out) ** 2)   # treats the cached output as the input x


def _tanh_in_place(dout, cache):
    (out,) = cache
    dout *= 1.0 - out * out
    return dout


def _tanh_sigmoid_formula(dout, cache):
    (out,) = cache
    return dout * out * (1.0 - out)


# -- softmax_cross_entropy ----------------------------------------------------------------------
def softmax_ce_cases(rng):
    cases = []
    for scale in (1.0, 3.0, 1000.0, 1.0):
        n, c = _distinct_sizes(rng, 2, 3, 11)
        logits = scale * rng.standard_normal((n, c))
        y = rng.integers(0, c, size=n)
        if scale > 100:
            logits[0, 0] = 1000.0            # exp overflows unless the row maximum is subtracted
            y[1] = int(np.argmin(logits[1]))  # a label ~1000 below its row's maximum: its probability underflows
        else:
            logits[0, :2] = logits[0].max() + 1.0    # a tie for the maximum
        cases.append({"logits": logits, "y": y})
    return cases


def softmax_ce_reference(logits, y):
    logits = logits.clone().requires_grad_(True)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    return loss.detach(), logits.grad


def _log_softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _ce_naive(logits, y):
    n = logits.shape[0]
    e = np.exp(logits)
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(n), y]))
    d = p.copy()
    d[np.arange(n), y] -= 1.0
    return loss, d / n


def _ce_terms(logits, y):
    """The per-example log-probabilities of the labels and the un-averaged gradient p - onehot(y)."""
    n = logits.shape[0]
    logp = _log_softmax(logits)
    d = np.exp(logp)
    d[np.arange(n), y] -= 1.0
    return logp[np.arange(n), y], d


def _ce_grad_no_mean(logits, y):
    logp_y, d = _ce_terms(logits, y)
    return -np.mean(logp_y), d


def _ce_loss_summed(logits, y):
    logp_y, d = _ce_terms(logits, y)
    return -np.sum(logp_y), d / logits.shape[0]


def _ce_log_of_probabilities(logits, y):
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        loss = -np.mean(np.log(p[np.arange(n), y]))          # log(0) = -inf where p underflowed
    d = p.copy()
    d[np.arange(n), y] -= 1.0
    return loss, d / n


def _ce_sign(logits, y):
    logp_y, d = _ce_terms(logits, y)
    return -np.mean(logp_y), -d / logits.shape[0]


def _ce_in_place(logits, y):
    n = logits.shape[0]
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    d = np.exp(logp)
    d[np.arange(n), y] -= 1.0
    return -np.mean(logp[np.arange(n), y]), d / n


# -- two_layer_loss_and_grads ---------------------------------------------------------------------
def two_layer_cases(rng):
    cases = []
    for _ in range(4):
        n, d, h, c = _distinct_sizes(rng, 4, 2, 13)
        cases.append({"X": rng.standard_normal((n, d)), "y": rng.integers(0, c, size=n),
                      "W1": rng.standard_normal((d, h)) / np.sqrt(d), "b1": 0.1 * rng.standard_normal(h),
                      "W2": rng.standard_normal((h, c)) / np.sqrt(h), "b2": 0.1 * rng.standard_normal(c)})
    # Pre-activations exactly 0 (ReLU's kink, derivative 0 there): multiples of 1/8 make X @ W1 exact, and
    # b1 cancels it in a few entries.
    n, d, h, c = _distinct_sizes(rng, 4, 3, 13)
    X, W1 = rng.integers(-8, 9, size=(n, d)) / 8.0, rng.integers(-4, 5, size=(d, h)) / 8.0
    b1 = rng.integers(-4, 5, size=h) / 8.0
    for i, j in zip(rng.choice(n, size=3, replace=False), rng.choice(h, size=3, replace=False)):
        b1[j] = -(X[i] @ W1[:, j])
    cases.append({"X": X, "y": rng.integers(0, c, size=n), "W1": W1, "b1": b1,
                  "W2": rng.standard_normal((h, c)) / np.sqrt(h), "b2": 0.1 * rng.standard_normal(c)})
    return cases


def two_layer_reference(X, y, W1, b1, W2, b2):
    W1, b1, W2, b2 = (t.clone().requires_grad_(True) for t in (W1, b1, W2, b2))
    loss = F.cross_entropy(torch.relu(X @ W1 + b1) @ W2 + b2, y)
    loss.backward()
    return loss.detach(), W1.grad, b1.grad, W2.grad, b2.grad


def two_layer_call(student, X, y, W1, b1, W2, b2):
    loss, grads = student.two_layer_loss_and_grads({"W1": W1, "b1": b1, "W2": W2, "b2": b2}, X, y)
    return loss, grads["W1"], grads["b1"], grads["W2"], grads["b2"]


def _two_layer(params, X, y, *, mean=True, mask="z", relu_backward=True, dW1_T=False, db1_axis=0,
               kink_one=False):
    """The correct computation, with one switch per typical mistake."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    n = X.shape[0]
    Z1 = X @ W1 + b1
    A1 = np.maximum(Z1, 0.0)
    S = A1 @ W2 + b2
    logp = _log_softmax(S)
    loss = -np.mean(logp[np.arange(n), y])
    dS = np.exp(logp)
    dS[np.arange(n), y] -= 1.0
    if mean:
        dS /= n
    dW2, db2 = A1.T @ dS, dS.sum(axis=0)
    dA1 = dS @ W2.T
    if not relu_backward:
        dZ1 = dA1
    else:
        dZ1 = dA1 * ((Z1 >= 0) if kink_one else ((Z1 if mask == "z" else dA1) > 0))
    dW1 = dZ1.T @ X if dW1_T else X.T @ dZ1
    db1 = dZ1.sum(axis=db1_axis)
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def _two_layer_no_mean(params, X, y):
    return _two_layer(params, X, y, mean=False)


def _two_layer_mask_on_gradient(params, X, y):
    return _two_layer(params, X, y, mask="grad")


def _two_layer_no_relu_backward(params, X, y):
    return _two_layer(params, X, y, relu_backward=False)


def _two_layer_dW1_transposed(params, X, y):
    return _two_layer(params, X, y, dW1_T=True)


def _two_layer_db1_wrong_axis(params, X, y):
    return _two_layer(params, X, y, db1_axis=1)


def _two_layer_relu_derivative_one_at_zero(params, X, y):
    return _two_layer(params, X, y, kink_one=True)


# -- numerical_gradient -----------------------------------------------------------------------------
# Four smooth scalar functions, written twice: in numpy (the adapter, sent to the student's process)
# and in torch (the reference). The string option ``function`` names one; with ``reads_x`` the
# function the student gets ignores its argument and reads x itself (as ``lambda _: loss(params)``
# does), so only a gradient that perturbs x in place sees anything change.
FUNCTIONS = ("sin_times_square", "logsumexp", "norm_cubed_plus_tanh", "exp_times_cos")
H = 1e-5


def _values(rng, count, *, drifting):
    """Normal draws that restoring by arithmetic changes whichever way it is done (``drifting``:
    ((v + h) - 2h) + h != v and (v - h) + h != v, a few values in 10^5), or that it changes in neither
    way (a quarter of them). With only these two kinds in x, every way of restoring by arithmetic
    changes the same entries: the mistake has one set of values, which the feedback can name."""
    found = []
    while len(found) < count:
        v = rng.standard_normal(1 << 12 if not drifting else 1 << 16)
        first, second = (((v + H) - 2 * H) + H) != v, ((v - H) + H) != v
        found += v[(first & second) if drifting else ~(first | second)].tolist()
    return found[:count]


def _numgrad_input(rng, shape):
    """x with, at random places, an exact 0 and two values that adding and subtracting h does not give
    back; its other entries are given back either way."""
    x = np.array(_values(rng, int(np.prod(shape)), drifting=False)).reshape(shape)
    x.reshape(-1)[rng.choice(x.size, size=3, replace=False)] = [0.0, *_values(rng, 2, drifting=True)]
    return x


def numgrad_cases(rng):
    shapes = [(int(rng.integers(3, 7)),), (int(rng.integers(2, 4)), int(rng.integers(2, 5))),
              (2, 2, int(rng.integers(2, 4))), (int(rng.integers(4, 8)),)]
    cases = [{"x": _numgrad_input(rng, shape), "function": name, "reads_x": False}
             for name, shape in zip(FUNCTIONS, shapes)]
    for shape, name in zip([(int(rng.integers(2, 4)), int(rng.integers(2, 5))), (int(rng.integers(3, 7)),)],
                           rng.permutation(FUNCTIONS)[:2]):          # f reads x itself, not its argument
        cases.append({"x": _numgrad_input(rng, shape), "function": str(name), "reads_x": True})
    return cases


def numgrad_reference(x, function, reads_x):
    v = x.clone().requires_grad_(True)
    if function == "sin_times_square":
        f = torch.sum(torch.sin(v) * v ** 2)
    elif function == "logsumexp":
        f = torch.logsumexp(v.reshape(-1), dim=0)
    elif function == "norm_cubed_plus_tanh":
        f = torch.sum(v ** 2) ** 1.5 + torch.sum(torch.tanh(v) * v.reshape(-1)[0])
    else:
        f = torch.sum(torch.exp(0.5 * v) * torch.cos(v))
    f.backward()
    return v.grad, torch.zeros(x.shape, dtype=torch.int64, device=x.device)


def numgrad_call(student, x, function, reads_x):
    """The gradient, and which entries of x differ (bit for bit) after the call: x must be restored."""
    def value(v):
        if function == "sin_times_square":
            return float(np.sum(np.sin(v) * v ** 2))
        if function == "logsumexp":
            m = v.max()
            return float(m + np.log(np.sum(np.exp(v - m))))
        if function == "norm_cubed_plus_tanh":
            return float(np.sum(v ** 2) ** 1.5 + np.sum(np.tanh(v) * v.reshape(-1)[0]))
        return float(np.sum(np.exp(0.5 * v) * np.cos(v)))

    before = x.copy()
    grad = student.numerical_gradient((lambda _: value(x)) if reads_x else value, x)
    return grad, (x != before).astype(np.int64)


def _numgrad_forward(f, x, h=1e-5):
    grad = np.zeros_like(x)
    fx = f(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        grad[ix] = (f(x) - fx) / h
        x[ix] = old
    return grad


def _centered(f, x, h, *, denominator=2.0, restore="exact"):
    """Centered differences one entry at a time, with one switch per typical mistake. ``restore``:
    "exact" (write the old value back), "by arithmetic" (add h back) or "never"."""
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] += h
        f_plus = f(x)
        x[ix] -= 2 * h
        f_minus = f(x)
        if restore == "exact":
            x[ix] = old
        elif restore == "by arithmetic":
            x[ix] += h                   # not always the float x held before
        grad[ix] = (f_plus - f_minus) / (denominator * h)
    return grad


def _numgrad_not_restored(f, x, h=1e-5):
    return _centered(f, x, h, restore="never")


def _numgrad_restored_by_arithmetic(f, x, h=1e-5):
    return _centered(f, x, h, restore="by arithmetic")


def _numgrad_perturbs_a_copy(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[ix] += h
        minus[ix] -= h
        grad[ix] = (f(plus) - f(minus)) / (2 * h)
    return grad


def _numgrad_divides_by_h(f, x, h=1e-5):
    return _centered(f, x, h, denominator=1.0)


def _numgrad_large_h(f, x, h=1e-5):
    return _centered(f, x, 1e-2)         # "to be safe from rounding": the O(h^2) truncation error is now ~1e-5


def _numgrad_first_axis_only(f, x, h=1e-5):
    # Loops over range(len(x)) and perturbs whole rows: wrong for anything but 1-D inputs.
    grad = np.zeros_like(x)
    for i in range(x.shape[0]):
        old = x[i].copy()
        x[i] = old + h
        f_plus = f(x)
        x[i] = old - h
        f_minus = f(x)
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


_DOUT_IN_PLACE = ("dout is changed in place (dout *= ...): the grader hands it over read-only, and the caller may "
                  "still need it. Return a new array, dout * ({local}).")
# == Understanding: what the chapter teaches you to predict (Parts 7 and 8) =====================
# Graded like the other parts, on hidden cases from the secret seed; the answers need only numpy and
# the standard library. Each mutant is a typical wrong answer (guesses included) with the feedback a
# student who gave it should read, and the book section that explains the right one.
CORRECT, SUSPICIOUS, PROBABLY_WRONG, WRONG = "correct", "suspicious", "probably wrong", "wrong"
GRADIENTS_CORRECT, KINK, BUG = "gradients correct", "finite difference crosses a kink", "bug in the backward pass"
_BANDS = {CORRECT: (1e-12, 3e-8), SUSPICIOUS: (3e-7, 3e-5), PROBABLY_WRONG: (3e-4, 3e-3), WRONG: (3e-2, 0.9)}


def _verdict(rel):
    if not rel < 1e-7:
        return SUSPICIOUS if rel < 1e-4 else PROBABLY_WRONG if rel < 1e-2 else WRONG
    return CORRECT


# -- gradcheck_verdicts: read the relative error of each check -------------------------------------
def _check_row(rng, m, target, scale, dead_units):
    """An analytic gradient and a finite-difference one whose relative error (the chapter's, elementwise
    max with the floor) is `target`: one small entry carries it, the others agree to much better. With
    `dead_units`, a few entries are exactly 0 in both (dead ReLU units), where only the floor avoids 0 / 0."""
    a = scale * rng.standard_normal(m)
    zeros = rng.choice(m, size=int(rng.integers(1, 3)) if dead_units else 0, replace=False)
    a[zeros] = 0.0
    small = np.argsort(np.abs(a))
    j = next(k for k in small if a[k] != 0.0)          # the worst entry is a small one: norms hide it
    noise = target * 10.0 ** -rng.uniform(1.5, 3.0, size=m)
    b = a * (1 + 2 * noise / (1 - noise) * rng.choice([-1.0, 1.0], size=m))
    delta = 2 * target / (1 - target)
    b[j] = a[j] * (1 + delta)                           # |a - b| / (|a| + |b|) = target there
    b[zeros] = 0.0
    return a, b


def verdict_cases(rng):
    """Four matrices of 6 to 10 checks. In each, a 'correct' check has dead units (0 / 0 without the floor)
    and a 'suspicious' one has none (so forgetting the floor does not turn every answer into 'wrong'); the
    other checks have them at random. The first matrix holds no 'wrong' check, so one verdict for the
    whole matrix is not 'wrong' there either."""
    cases = []
    for c in range(4):
        k, m = int(rng.integers(6, 11)), int(rng.integers(6, 30))
        bands = [CORRECT, SUSPICIOUS, PROBABLY_WRONG] + ([WRONG] if c else [])
        labels = bands + list(rng.choice(bands, size=k - len(bands)))
        rows = []
        for i in rng.permutation(k):
            low, high = _BANDS[labels[i]]
            target = float(np.exp(rng.uniform(np.log(low), np.log(high))))
            dead_units = i == 0 or (i != 1 and rng.random() < 0.5)
            rows.append(_check_row(rng, m, target, scale=10.0 ** rng.uniform(-4.0, 2.0), dead_units=dead_units))
        cases.append({"analytic": np.array([a for a, _ in rows]), "numeric": np.array([b for _, b in rows])})
    return cases


def verdict_reference(analytic, numeric):
    rel = ((analytic - numeric).abs() / torch.clamp((analytic.abs() + numeric.abs()), min=1e-8)).amax(dim=1)
    return np.array([_verdict(float(r)) for r in rel.cpu()])


def _verdicts_of(rel):
    return np.array([_verdict(float(r)) for r in rel])


def _verdict_mean(analytic, numeric):
    return _verdicts_of((np.abs(analytic - numeric) / np.maximum(1e-8, np.abs(analytic) + np.abs(numeric))).mean(axis=1))


def _verdict_absolute(analytic, numeric):
    return _verdicts_of(np.abs(analytic - numeric).max(axis=1))


def _verdict_no_floor(analytic, numeric):
    with np.errstate(invalid="ignore"):
        return _verdicts_of((np.abs(analytic - numeric) / (np.abs(analytic) + np.abs(numeric))).max(axis=1))


def _verdict_norms(analytic, numeric):
    return _verdicts_of(np.linalg.norm(analytic - numeric, axis=1)
                        / (np.linalg.norm(analytic, axis=1) + np.linalg.norm(numeric, axis=1)))


def _verdict_whole_matrix(analytic, numeric):
    rel = (np.abs(analytic - numeric) / np.maximum(1e-8, np.abs(analytic) + np.abs(numeric))).max()
    return np.array([_verdict(rel)] * len(analytic))


def _verdict_always(label):
    def guess(analytic, numeric):
        return np.array([label] * len(analytic))
    guess.__name__ = "_verdict_always_" + label.replace(" ", "_")
    return guess


# -- gradcheck_diagnosis: a failing check of a two-layer ReLU network, bug or kink? -----------------
def diagnosis_cases(rng):
    """Ten checks of (W1, b1, W2, b2), with the first layer's pre-activations z1 and the step h. Two bugs
    fail the first layer only, far from the kink: one with every unit active (z1 > h everywhere, so the
    sign of z1 alone says 'no kink' too), one where z1 may be very negative (only |z1| says 'no kink')."""
    kinds = ["correct", "correct", "kink", "kink", "kink", "kink", "bug: first layer, every unit active",
             "bug: first layer, no kink", "bug: second layer, kink nearby", "bug: everything"]
    cases, subtle = [], True
    for kind in (kinds[i] for i in rng.permutation(len(kinds))):
        h = float(10.0 ** rng.uniform(-6.0, -4.0))
        n, units = int(rng.integers(8, 40)), int(rng.integers(4, 16))
        z1 = rng.standard_normal((n, units)) * rng.uniform(0.5, 3.0)
        z1[np.abs(z1) < 20 * h] = 20 * h                               # far from the kink, by default
        if kind == "bug: first layer, every unit active":
            z1 = np.abs(z1)
        else:
            at_kink, far_below = zip(*np.unravel_index(rng.choice(n * units, size=2, replace=False), z1.shape))
            near = rng.random() < 0.5 or kind in ("kink", "bug: second layer, kink nearby")
            if near and kind != "bug: first layer, no kink":
                z1[at_kink] = rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 0.9) * h
            if rng.random() < 0.5:                                      # a very negative one: |z| matters
                z1[far_below] = -rng.uniform(5.0, 50.0)
        good = 10.0 ** rng.uniform(-12.0, -8.0, size=4)
        bad = 10.0 ** rng.uniform(-6.5, -1.0, size=4)                   # some in 1e-7..1e-4: still a failure
        rel = good.copy()
        if kind == "kink" or kind.startswith("bug: first layer"):
            rel[:2] = bad[:2]
            if kind == "kink" and subtle:               # a failure the table calls only 'suspicious'
                rel[:2], subtle = 10.0 ** rng.uniform(-6.5, -5.0, size=2), False
        elif kind == "bug: second layer, kink nearby":
            rel[2:] = bad[2:]
        elif kind == "bug: everything":
            rel = bad
        cases.append({"rel_errors": rel, "z1": z1, "h": np.float64(h)})
    return cases


def diagnosis_call(student, rel_errors, z1, h):
    return student.gradcheck_diagnosis(rel_errors, z1, float(h))


def diagnosis_reference(rel_errors, z1, h):
    fails = (rel_errors > 1e-7).cpu().numpy()
    if not fails.any():
        return np.array(GRADIENTS_CORRECT)
    if fails[2:].any():
        return np.array(BUG)
    return np.array(KINK if bool((z1.abs() < h).any()) else BUG)


def _diagnosis(rel_errors, z1, h, *, threshold=1e-7, near=lambda z, h: np.abs(z) < h, use_layers=True, use_z=True):
    fails = rel_errors > threshold
    if not fails.any():
        return GRADIENTS_CORRECT
    if use_layers and fails[2:].any():
        return BUG
    if not use_z:
        return KINK
    return KINK if near(z1, h).any() else BUG


def _diagnosis_ignores_z(rel_errors, z1, h):
    return _diagnosis(rel_errors, z1, h, use_z=False)


def _diagnosis_ignores_layers(rel_errors, z1, h):
    return _diagnosis(rel_errors, z1, h, use_layers=False)


def _diagnosis_signed_z(rel_errors, z1, h):
    return _diagnosis(rel_errors, z1, h, near=lambda z, h: z < h)


def _diagnosis_exact_zero(rel_errors, z1, h):
    return _diagnosis(rel_errors, z1, h, near=lambda z, h: z == 0.0)


def _diagnosis_lenient(rel_errors, z1, h):
    # "Below 1e-4 is fine": the table's 'suspicious' band taken as a pass.
    return _diagnosis(rel_errors, z1, h, threshold=1e-4)


def _diagnosis_always(label):
    def guess(rel_errors, z1, h):
        return label
    guess.__name__ = "_diagnosis_always_" + label.split()[0]
    return guess


_CHECK_BOOK = "ch03-gradcheck"
_KINK_BOOK = "ch03-kinks"
UNDERSTANDING_PARTS = [
    Part(id="gradcheck_verdicts", points=2, function="gradcheck_verdicts", outputs=("verdicts",),
         cases=verdict_cases, reference=verdict_reference,
         mutants={
             "mean relative error": Mutant(_verdict_mean, book=_CHECK_BOOK, feedback=(
                 "The relative error of a check is the largest one over the entries: a single wrong entry "
                 "is a bug, however many others agree. Averaging hides it.")),
             "absolute error": Mutant(_verdict_absolute, book=_CHECK_BOOK, feedback=(
                 "An absolute error means little without the size of the gradient: divide each |a - b| by "
                 "|a| + |b| (floored at 1e-8) before comparing with the table.")),
             "no floor: 0 / 0 where both are 0": Mutant(_verdict_no_floor, book=_CHECK_BOOK, feedback=(
                 "Where both gradients are exactly 0 (a dead ReLU unit) the ratio is 0 / 0 = nan; the "
                 "denominator is max(1e-8, |a| + |b|) for that reason.")),
             "ratio of norms": Mutant(_verdict_norms, book=_CHECK_BOOK, feedback=(
                 "Compare entry by entry: ||a - b|| / (||a|| + ||b||) is dominated by the large entries, so a "
                 "small entry that is completely wrong passes unnoticed.")),
             "one verdict for all the checks": Mutant(_verdict_whole_matrix, book=_CHECK_BOOK, feedback=(
                 "Each row is its own gradient check: take the maximum over the entries of that row only.")),
             "always correct": Mutant(_verdict_always(CORRECT), book=_CHECK_BOOK, feedback=(
                 "Compute each check's relative error and read it against the chapter's table.")),
             "always wrong": Mutant(_verdict_always(WRONG), book=_CHECK_BOOK, feedback=(
                 "Compute each check's relative error and read it against the chapter's table.")),
         }),
    Part(id="gradcheck_diagnosis", points=2, function="gradcheck_diagnosis", outputs=("diagnosis",),
         cases=diagnosis_cases, reference=diagnosis_reference, call=diagnosis_call,
         mutants={
             "kink whenever only the first layer fails": Mutant(_diagnosis_ignores_z, book=_KINK_BOOK, feedback=(
                 "A kink can only fool the check if some pre-activation lies within h of 0, so that x - h and "
                 "x + h fall on different sides of it. If every |z1| is larger than h, a first-layer failure "
                 "is a bug.")),
             "kink even when the second layer fails": Mutant(_diagnosis_ignores_layers, book=_KINK_BOOK, feedback=(
                 "Perturbing W2 or b2 never moves z1 across the kink, so the second layer's check is unaffected "
                 "by it: if dW2 or db2 fails, the backward pass has a bug.")),
             "z1 < h instead of |z1| < h": Mutant(_diagnosis_signed_z, book=_KINK_BOOK, feedback=(
                 "The finite difference straddles the kink when the pre-activation is within h of 0 on either "
                 "side, |z1| < h; a very negative z1 is nowhere near it.")),
             "only exact zeros count": Mutant(_diagnosis_exact_zero, book=_KINK_BOOK, feedback=(
                 "z1 need not be exactly 0: any |z1| < h puts the two evaluations x - h and x + h on "
                 "different sides of the kink.")),
             "errors below 1e-4 taken as a pass": Mutant(_diagnosis_lenient, book=_CHECK_BOOK, feedback=(
                 "For a check that passes, the relative error is below 1e-7; between 1e-7 and 1e-4 the check "
                 "has failed and needs an explanation (a kink, or a bug).")),
             "always a bug": Mutant(_diagnosis_always(BUG), book=_KINK_BOOK, feedback=(
                 "A failing check is not always a bug: near a ReLU's kink the finite difference is the one "
                 "that is wrong. And a check below 1e-7 everywhere is a pass.")),
             "always a kink": Mutant(_diagnosis_always(KINK), book=_KINK_BOOK, feedback=(
                 "Blame the kink only when the pattern fits: the first layer fails, the second passes, and "
                 "some pre-activation lies within h of 0.")),
         }),
]


PARTS = [
    Part(id="affine_backward", points=2, function="affine_backward", outputs=("dx", "dW", "db"),
         cases=affine_cases, reference=affine_reference, call=affine_call,
         forbid=("mlp_lib.layers.linear_backward", "mlp_lib.modules.Linear"),
         mutants={
             "dW transposed": Mutant(
                 _affine_dW_transposed, diagnosis="transposed", book="ch03-local-gradients",
                 feedback="dW is dout.T @ x, the transpose: dW has the shape of W, (D_in, D_out), so it is "
                          "x.T @ dout."),
             "db summed over the wrong axis": Mutant(
                 _affine_db_wrong_axis, diagnosis="reduced_other_axis", book="ch03-local-gradients",
                 feedback="db is summed over the output units (axis 1): b is added to every ROW, so its gradient "
                          "sums dout over the batch, dout.sum(axis=0), shape (D_out,)."),
             "db averaged over the batch": Mutant(
                 _affine_db_mean, diagnosis="missing_factor_n", book="ch03-local-gradients",
                 feedback="db is the mean of dout over the batch: b is added to every row, so each row "
                          "contributes its whole gradient: db = dout.sum(axis=0)."),
             "dW divided by N": Mutant(
                 _affine_dW_mean, diagnosis="missing_factor_n", book="ch03-local-gradients",
                 feedback="dW is divided by N: the 1/N of a mean loss is already in dout, so dW = x.T @ dout."),
             "dx sign error": Mutant(
                 _affine_dx_sign, diagnosis="sign_flip", book="ch03-local-gradients",
                 feedback="dx has the wrong sign: out = x @ W + b, so dx = dout @ W.T."),
         }),
    Part(id="sigmoid_backward", points=1, function="sigmoid_backward", outputs=("dx",),
         cases=activation_cases, reference=sigmoid_reference, call=sigmoid_call,
         forbid=("mlp_lib.layers.sigmoid_grad", "mlp_lib.modules.Sigmoid"),
         mutants={
             "uses the cache as the input x": Mutant(
                 _sigmoid_of_cache, book="ch03-local-gradients",
                 feedback="the sigmoid is applied again to the cache: the cache holds the OUTPUT s = sigmoid(x), "
                          "so the derivative is s * (1 - s) directly."),
             "modifies dout in place": Mutant(
                 _sigmoid_in_place, diagnosis="mutated_input", book="ch03-local-gradients",
                 feedback=_DOUT_IN_PLACE.format(local="s * (1 - s)")),
             "ignores dout": Mutant(
                 _sigmoid_no_dout, book="ch03-local-gradients",
                 feedback="the local derivative s * (1 - s) is returned without dout: the chain rule multiplies "
                          "it by the upstream gradient, dx = dout * s * (1 - s)."),
             "tanh's derivative": Mutant(
                 _sigmoid_tanh_formula, book="ch03-local-gradients",
                 feedback="this is tanh's derivative, 1 - out**2: the sigmoid's is s * (1 - s)."),
         }),
    Part(id="tanh_backward", points=1, function="tanh_backward", outputs=("dx",),
         cases=activation_cases, reference=tanh_reference, call=tanh_call,
         forbid=("mlp_lib.layers.tanh_grad", "mlp_lib.modules.Tanh"),
         mutants={
             "1 - out instead of 1 - out^2": Mutant(
                 _tanh_no_square, book="ch03-local-gradients",
                 feedback="the square is missing: tanh'(x) = 1 - tanh(x)**2 = 1 - out**2."),
             "uses the cache as the input x": Mutant(
                 _tanh_of_cache, book="ch03-local-gradients",
                 feedback="tanh is applied again to the cache: the cache holds the OUTPUT out = tanh(x), so the "
                          "derivative is 1 - out**2 directly."),
             "modifies dout in place": Mutant(
                 _tanh_in_place, diagnosis="mutated_input", book="ch03-local-gradients",
                 feedback=_DOUT_IN_PLACE.format(local="1 - out**2")),
             "sigmoid's derivative": Mutant(
                 _tanh_sigmoid_formula, book="ch03-local-gradients",
                 feedback="this is the sigmoid's derivative, out * (1 - out): tanh's is 1 - out**2."),
         }),
    Part(id="softmax_cross_entropy", points=2, function="softmax_cross_entropy", outputs=("loss", "dlogits"),
         cases=softmax_ce_cases, reference=softmax_ce_reference, stable=True,
         forbid=("mlp_lib.layers.softmax", "mlp_lib.layers.softmax_forward", "mlp_lib.layers.log_softmax",
                 "mlp_lib.layers.log_softmax_forward"),
         mutants={
             "no max subtraction": Mutant(
                 _ce_naive, diagnosis="unstable", book="ch03-local-gradients",
                 feedback="np.exp overflows for logits of size 1000 (inf / inf = NaN): subtract each row's "
                          "maximum before exponentiating; it does not change P."),
             "log of probabilities that underflowed": Mutant(
                 _ce_log_of_probabilities, diagnosis="unstable", book="ch03-local-gradients",
                 feedback="the loss takes np.log of a probability, which underflows to 0 when the label's logit "
                          "is ~1000 below the row's maximum (log 0 = -inf): compute log P = z - log(sum(exp(z))) "
                          "from the shifted logits z."),
             "gradient without 1/N": Mutant(
                 _ce_grad_no_mean, diagnosis="extra_factor_n", book="ch03-local-gradients",
                 feedback="dlogits is P - Y, without 1/N: the loss is the mean over the batch, so its gradient is "
                          "(P - Y) / N."),
             "loss summed over the batch": Mutant(
                 _ce_loss_summed, diagnosis="extra_factor_n", book="ch03-local-gradients",
                 feedback="the loss is summed over the batch: it is the mean, -1/N sum_n log P[n, y_n]."),
             "gradient sign error": Mutant(
                 _ce_sign, diagnosis="sign_flip", book="ch03-local-gradients",
                 feedback="dlogits has the wrong sign: it is (P - Y) / N, the probabilities minus the one-hot "
                          "labels."),
             "modifies logits in place": Mutant(
                 _ce_in_place, diagnosis="mutated_input", book="ch03-local-gradients",
                 feedback="logits is changed in place (logits -= max): subtract into a new array, "
                          "z = logits - logits.max(axis=1, keepdims=True)."),
         }),
    Part(id="two_layer_loss_and_grads", points=2, function="two_layer_loss_and_grads",
         outputs=("loss", "dW1", "db1", "dW2", "db2"),
         cases=two_layer_cases, reference=two_layer_reference, call=two_layer_call,
         forbid=("mlp_lib.modules.Sequential", "mlp_lib.modules.Linear"),
         mutants={
             "gradients without 1/N": Mutant(
                 _two_layer_no_mean, diagnosis="extra_factor_n", book="ch03-two-layer",
                 feedback="the gradients miss the 1/N of the mean loss: dS = (P - Y) / N, and every other "
                          "gradient follows from dS."),
             "ReLU mask taken from the gradient": Mutant(
                 _two_layer_mask_on_gradient, book="ch03-two-layer",
                 feedback="the ReLU's mask is taken from the gradient (dA1 > 0): it comes from the forward pass, "
                          "dZ1 = dA1 * (Z1 > 0)."),
             "ReLU backward skipped": Mutant(
                 _two_layer_no_relu_backward, book="ch03-two-layer",
                 feedback="the gradient goes through the ReLU unchanged: multiply by its derivative, "
                          "dZ1 = dA1 * (Z1 > 0)."),
             "ReLU derivative 1 at 0": Mutant(
                 _two_layer_relu_derivative_one_at_zero, book="ch03-kinks",
                 feedback="where Z1 == 0 the ReLU's derivative is taken as 1 (Z1 >= 0): the convention, "
                          "torch's and the book's, is 0 at the kink, dZ1 = dA1 * (Z1 > 0)."),
             "dW1 transposed": Mutant(
                 _two_layer_dW1_transposed, diagnosis="transposed", book="ch03-two-layer",
                 feedback="dW1 is transposed (dZ1.T @ X): dW1 has the shape of W1, (D, H), so it is X.T @ dZ1."),
             "db1 summed over the wrong axis": Mutant(
                 _two_layer_db1_wrong_axis, book="ch03-two-layer",
                 feedback="db1 sums dZ1 over the hidden units (axis 1): b1 is added to every row, so sum over the "
                          "batch, dZ1.sum(axis=0), shape (H,)."),
         }),
    Part(id="numerical_gradient", points=2, function="numerical_gradient",
         outputs=("grad", "x_changed"), pure=False,
         cases=numgrad_cases, reference=numgrad_reference, call=numgrad_call, rtol=1e-6, atol=1e-8,
         forbid=("mlp_lib.gradcheck.numerical_gradient_array",),
         mutants={
             "forward differences": Mutant(
                 _numgrad_forward, book="ch03-gradcheck",
                 feedback="these are forward differences, (f(x + h) - f(x)) / h, whose error is of order h: use "
                          "centered differences, (f(x + h e_i) - f(x - h e_i)) / (2h), accurate to order h**2."),
             "x not restored": Mutant(
                 _numgrad_not_restored, book="ch03-gradcheck",
                 feedback="x is left perturbed (each entry ends at its value - h): save the old value and write it "
                          "back after the two evaluations, x[ix] = old."),
             "x restored by adding and subtracting h": Mutant(
                 _numgrad_restored_by_arithmetic, book="ch03-gradcheck",
                 feedback="x is restored by adding and subtracting h, which does not always give back the same "
                          "float (some entries of x changed in their last bits): save the old value and write it "
                          "back, x[ix] = old."),
             "perturbs a copy of x": Mutant(
                 _numgrad_perturbs_a_copy, book="ch03-gradcheck",
                 feedback="a copy of x is perturbed: f may read x itself rather than its argument (as "
                          "lambda _: loss(params) does), so perturb x in place, one entry at a time, and restore it."),
             "divides by h instead of 2h": Mutant(
                 _numgrad_divides_by_h, book="ch03-gradcheck",
                 feedback="the difference is divided by h: f(x + h) and f(x - h) are 2h apart, so divide by 2h."),
             "h = 1e-2": Mutant(
                 _numgrad_large_h, book="ch03-gradcheck",
                 feedback="h is much larger than the h argument (1e-5), so the truncation error, of order h**2, is "
                          "too large: use the h you are given."),
             "perturbs whole rows": Mutant(
                 _numgrad_first_axis_only, book="ch03-gradcheck",
                 feedback="whole rows x[i] are perturbed at once: the gradient needs one entry at a time, for "
                          "every index of x (np.ndindex(x.shape) visits them all, for any shape)."),
         }),
    *UNDERSTANDING_PARTS,
]
