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
* the two-layer network is Linear -> ReLU -> Linear -> softmax cross-entropy;
* the numerical gradient uses centered differences with ``h = 1e-5`` and restores ``x``
  exactly; it is graded on known smooth scalar functions against torch's autograd gradient,
  with a tolerance that the centered difference's O(h^2) error meets and the forward
  difference's O(h) error does not.

Backward passes get random upstream gradients (never ones). Shapes are drawn so that N, D_in,
D_out (and H, C) differ, which lets the grader tell a transposed result or a sum over the wrong
axis from other mistakes. Each mutant is a typical mistake; tests/test_assignment_ch03.py checks
that each loses the points of its own part, and only those, with the diagnosis it names.
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
    for _ in range(4):
        n, d_in, d_out = _distinct_sizes(rng, 3, 2, 10)
        cases.append({"dout": rng.standard_normal((n, d_out)), "x": rng.standard_normal((n, d_in)),
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
    return cases


def sigmoid_reference(dout, x):
    x = x.clone().requires_grad_(True)
    torch.sigmoid(x).backward(dout)
    return x.grad


def sigmoid_call(student, dout, x):
    out = 1.0 / (1.0 + np.exp(-x))          # the forward pass; the cache holds its output
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
        n, c = _distinct_sizes(rng, 2, 2, 11)
        logits = scale * rng.standard_normal((n, c))
        if scale > 100:
            logits[0, 0] = 1000.0            # exp overflows unless the row maximum is subtracted
        cases.append({"logits": logits, "y": rng.integers(0, c, size=n)})
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


def _ce_sum(logits, y):
    logp_y, d = _ce_terms(logits, y)
    return -np.sum(logp_y), d


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
    return cases


def two_layer_reference(X, y, W1, b1, W2, b2):
    W1, b1, W2, b2 = (t.clone().requires_grad_(True) for t in (W1, b1, W2, b2))
    loss = F.cross_entropy(torch.relu(X @ W1 + b1) @ W2 + b2, y)
    loss.backward()
    return loss.detach(), W1.grad, b1.grad, W2.grad, b2.grad


def two_layer_call(student, X, y, W1, b1, W2, b2):
    loss, grads = student.two_layer_loss_and_grads({"W1": W1, "b1": b1, "W2": W2, "b2": b2}, X, y)
    return loss, grads["W1"], grads["b1"], grads["W2"], grads["b2"]


def _two_layer(params, X, y, *, mean=True, mask="z", relu_backward=True, dW1_T=False, db1_axis=0):
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
        dZ1 = dA1 * ((Z1 if mask == "z" else dA1) > 0)
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


# -- numerical_gradient -----------------------------------------------------------------------------
# Four smooth scalar functions, written twice: in numpy (the adapter, sent to the student's
# process) and in torch (the reference). ``which`` picks one.
def numgrad_cases(rng):
    shapes = [(int(rng.integers(3, 7)),), (int(rng.integers(2, 4)), int(rng.integers(2, 5))),
              (2, 2, int(rng.integers(2, 4))), (int(rng.integers(4, 8)),)]
    return [{"x": rng.standard_normal(shape), "which": np.int64(k)} for k, shape in enumerate(shapes)]


def numgrad_reference(x, which):
    v = x.clone().requires_grad_(True)
    k = int(which)
    if k == 0:
        f = torch.sum(torch.sin(v) * v ** 2)
    elif k == 1:
        f = torch.logsumexp(v.reshape(-1), dim=0)
    elif k == 2:
        f = torch.sum(v ** 2) ** 1.5 + torch.sum(torch.tanh(v) * v.reshape(-1)[0])
    else:
        f = torch.sum(torch.exp(0.5 * v) * torch.cos(v))
    f.backward()
    return v.grad, v.grad


def numgrad_call(student, x, which):
    """Called twice on the same array: the second gradient is right only if the first call restored x."""
    k = int(which)

    def f(v):
        if k == 0:
            return float(np.sum(np.sin(v) * v ** 2))
        if k == 1:
            m = v.max()
            return float(m + np.log(np.sum(np.exp(v - m))))
        if k == 2:
            return float(np.sum(v ** 2) ** 1.5 + np.sum(np.tanh(v) * v.reshape(-1)[0]))
        return float(np.sum(np.exp(0.5 * v) * np.cos(v)))

    first = np.array(student.numerical_gradient(f, x), dtype=np.float64)
    return first, student.numerical_gradient(f, x)


def _numgrad_forward(f, x, h=1e-5):
    grad = np.zeros_like(x)
    fx = f(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        grad[ix] = (f(x) - fx) / h
        x[ix] = old
    return grad


def _numgrad_not_restored(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        x[ix] += h
        f_plus = f(x)
        x[ix] -= 2 * h
        f_minus = f(x)
        grad[ix] = (f_plus - f_minus) / (2 * h)
    return grad


def _numgrad_divides_by_h(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        f_plus = f(x)
        x[ix] = old - h
        f_minus = f(x)
        x[ix] = old
        grad[ix] = (f_plus - f_minus) / h
    return grad


def _numgrad_large_h(f, x, h=1e-5):
    # h = 1e-2 "to be safe from rounding": the O(h^2) truncation error is now ~1e-5.
    grad = np.zeros_like(x)
    h = 1e-2
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        f_plus = f(x)
        x[ix] = old - h
        f_minus = f(x)
        x[ix] = old
        grad[ix] = (f_plus - f_minus) / (2 * h)
    return grad


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
def _check_row(rng, m, target, scale):
    """An analytic gradient and a finite-difference one whose relative error (the chapter's, elementwise
    max with the floor) is `target`: one small entry carries it, the others agree to much better, and a
    few entries are exactly 0 in both (dead ReLU units), where only the floor avoids 0 / 0."""
    a = scale * rng.standard_normal(m)
    zeros = rng.choice(m, size=int(rng.integers(1, 3)), replace=False)
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
    cases = []
    for _ in range(4):
        k, m = int(rng.integers(6, 11)), int(rng.integers(6, 30))
        labels = [CORRECT, SUSPICIOUS, PROBABLY_WRONG, WRONG] + list(rng.choice(list(_BANDS), size=k - 4))
        rows = []
        for label in (labels[i] for i in rng.permutation(k)):
            low, high = _BANDS[label]
            target = float(np.exp(rng.uniform(np.log(low), np.log(high))))
            rows.append(_check_row(rng, m, target, scale=10.0 ** rng.uniform(-4.0, 2.0)))
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
    """Ten checks of (W1, b1, W2, b2), with the first layer's pre-activations z1 and the step h."""
    kinds = ["correct", "correct", "correct", "kink", "kink", "kink", "kink",
             "bug: first layer, no kink", "bug: second layer, kink nearby", "bug: everything"]
    cases, subtle = [], True
    for kind in (kinds[i] for i in rng.permutation(len(kinds))):
        h = float(10.0 ** rng.uniform(-6.0, -4.0))
        n, units = int(rng.integers(8, 40)), int(rng.integers(4, 16))
        z1 = rng.standard_normal((n, units)) * rng.uniform(0.5, 3.0)
        z1[np.abs(z1) < 20 * h] = 20 * h                               # far from the kink, by default
        near = rng.random() < 0.5 or kind in ("kink", "bug: second layer, kink nearby")
        if near and kind != "bug: first layer, no kink":
            z1[rng.integers(n), rng.integers(units)] = rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 0.9) * h
        if rng.random() < 0.5:                                          # a very negative one: |z| matters
            z1[rng.integers(n), rng.integers(units)] = -rng.uniform(5.0, 50.0)
        good = 10.0 ** rng.uniform(-12.0, -8.0, size=4)
        bad = 10.0 ** rng.uniform(-6.5, -1.0, size=4)                   # some in 1e-7..1e-4: still a failure
        rel = good.copy()
        if kind == "kink" or kind == "bug: first layer, no kink":
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
         mutants={"dW transposed": Mutant(_affine_dW_transposed, diagnosis="transposed"),
                  "db summed over the wrong axis": Mutant(_affine_db_wrong_axis, diagnosis="wrong_axis"),
                  "db averaged over the batch": Mutant(_affine_db_mean, diagnosis="missing_factor_n"),
                  "dW divided by N": Mutant(_affine_dW_mean, diagnosis="missing_factor_n"),
                  "dx sign error": Mutant(_affine_dx_sign, diagnosis="sign_flip")}),
    Part(id="sigmoid_backward", points=1, function="sigmoid_backward", outputs=("dx",),
         cases=activation_cases, reference=sigmoid_reference, call=sigmoid_call,
         forbid=("mlp_lib.layers.sigmoid_grad", "mlp_lib.modules.Sigmoid"),
         mutants={"uses the cache as the input x": Mutant(_sigmoid_of_cache),
                  "modifies dout in place": Mutant(_sigmoid_in_place, diagnosis="mutated_input"),
                  "ignores dout": Mutant(_sigmoid_no_dout),
                  "tanh's derivative": Mutant(_sigmoid_tanh_formula)}),
    Part(id="tanh_backward", points=1, function="tanh_backward", outputs=("dx",),
         cases=activation_cases, reference=tanh_reference, call=tanh_call,
         forbid=("mlp_lib.layers.tanh_grad", "mlp_lib.modules.Tanh"),
         mutants={"1 - out instead of 1 - out^2": Mutant(_tanh_no_square),
                  "uses the cache as the input x": Mutant(_tanh_of_cache),
                  "modifies dout in place": Mutant(_tanh_in_place, diagnosis="mutated_input"),
                  "sigmoid's derivative": Mutant(_tanh_sigmoid_formula)}),
    Part(id="softmax_cross_entropy", points=2, function="softmax_cross_entropy", outputs=("loss", "dlogits"),
         cases=softmax_ce_cases, reference=softmax_ce_reference,
         forbid=("mlp_lib.layers.softmax", "mlp_lib.layers.softmax_forward", "mlp_lib.layers.log_softmax",
                 "mlp_lib.layers.log_softmax_forward"),
         mutants={"no max subtraction": Mutant(_ce_naive, diagnosis="unstable"),
                  "gradient without 1/N": Mutant(_ce_grad_no_mean, diagnosis="extra_factor_n"),
                  "sum instead of mean": Mutant(_ce_sum, diagnosis="extra_factor_n"),
                  "gradient sign error": Mutant(_ce_sign, diagnosis="sign_flip"),
                  "modifies logits in place": Mutant(_ce_in_place, diagnosis="mutated_input")}),
    Part(id="two_layer_loss_and_grads", points=2, function="two_layer_loss_and_grads",
         outputs=("loss", "dW1", "db1", "dW2", "db2"),
         cases=two_layer_cases, reference=two_layer_reference, call=two_layer_call,
         forbid=("mlp_lib.modules.Sequential", "mlp_lib.modules.Linear"),
         mutants={"gradients without 1/N": Mutant(_two_layer_no_mean, diagnosis="extra_factor_n"),
                  "ReLU mask taken from the gradient": Mutant(_two_layer_mask_on_gradient),
                  "ReLU backward skipped": Mutant(_two_layer_no_relu_backward),
                  "dW1 transposed": Mutant(_two_layer_dW1_transposed, diagnosis="transposed"),
                  "db1 summed over the wrong axis": Mutant(_two_layer_db1_wrong_axis)}),
    Part(id="numerical_gradient", points=2, function="numerical_gradient",
         outputs=("grad", "grad_again"), pure=False,
         cases=numgrad_cases, reference=numgrad_reference, call=numgrad_call, rtol=1e-6, atol=1e-8,
         forbid=("mlp_lib.gradcheck.numerical_gradient_array",),
         mutants={"forward differences": Mutant(_numgrad_forward),
                  "x not restored": Mutant(_numgrad_not_restored),
                  "divides by h instead of 2h": Mutant(_numgrad_divides_by_h, diagnosis="scaled"),
                  "h = 1e-2": Mutant(_numgrad_large_h),
                  "perturbs whole rows": Mutant(_numgrad_first_axis_only)}),
    *UNDERSTANDING_PARTS,
]
