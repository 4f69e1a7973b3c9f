"""mlp_lib.training: mini-batches, early stopping, fit (against a torch training loop), end to end on digits."""
import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mlp_lib import interop, optim
from mlp_lib import modules as M
from mlp_lib.data import load_digits
from mlp_lib.losses import mse_loss, softmax_cross_entropy
from mlp_lib.regularization import l2_penalty
from mlp_lib.training import EarlyStopping, History, accuracy, evaluate, fit, minibatches


# ------------------------------------------------------------------ minibatches

def _indexed_data(n, d=3):
    X = np.repeat(np.arange(n, dtype=np.float64)[:, None], d, axis=1)  # row i holds i
    return X, np.arange(n)


@pytest.mark.parametrize("n, batch_size", [(23, 5), (20, 5), (7, 10), (1, 1)])
def test_minibatches_cover_every_index_once_and_keep_the_partial_last_batch(n, batch_size, rng):
    X, y = _indexed_data(n)
    batches = list(minibatches(X, y, batch_size=batch_size, rng=rng))
    sizes = [xb.shape[0] for xb, _ in batches]
    assert sizes == [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    seen = np.concatenate([yb for _, yb in batches])
    np.testing.assert_array_equal(np.sort(seen), np.arange(n))
    for xb, yb in batches:  # rows and labels stay paired
        np.testing.assert_array_equal(xb[:, 0], yb)


def test_minibatches_reshuffle_on_every_call_and_repeat_with_the_seed():
    X, y = _indexed_data(50)
    gen = np.random.default_rng(3)
    epoch1 = np.concatenate([yb for _, yb in minibatches(X, y, batch_size=8, rng=gen)])
    epoch2 = np.concatenate([yb for _, yb in minibatches(X, y, batch_size=8, rng=gen)])
    assert not np.array_equal(epoch1, epoch2)
    again = np.random.default_rng(3)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in minibatches(X, y, batch_size=8, rng=again)]), epoch1)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in minibatches(X, y, batch_size=8, rng=3)]), epoch1)


def test_minibatches_without_shuffle_keep_the_order_and_batches_are_read_only_views():
    X, y = _indexed_data(10)
    batches = list(minibatches(X, y, batch_size=4, shuffle=False))
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), np.arange(10))
    assert np.shares_memory(batches[0][0], X)
    with pytest.raises(ValueError):
        batches[0][0][0, 0] = 1.0
    shuffled = next(minibatches(X, y, batch_size=4, rng=0))
    assert not np.shares_memory(shuffled[0], X) and not shuffled[0].flags.writeable


def test_minibatches_reject_bad_arguments():
    X, y = _indexed_data(10)
    with pytest.raises(ValueError, match="rng"):
        list(minibatches(X, y, batch_size=4))
    with pytest.raises(ValueError, match="batch_size"):
        list(minibatches(X, y, batch_size=0, rng=0))
    with pytest.raises(ValueError, match="y"):
        list(minibatches(X, y[:9], batch_size=4, rng=0))


def test_accuracy_accepts_scores_or_labels():
    y = np.array([0, 2, 1, 1])
    scores = np.array([[2.0, 1, 0], [0, 1, 3], [0, 5, 1], [9, 0, 0]])
    assert accuracy(scores, y) == 0.75
    assert accuracy(np.array([0, 2, 0, 0]), y) == 0.5
    with pytest.raises(ValueError, match="y"):
        accuracy(scores, y[:3])


# ------------------------------------------------------------------ early stopping

def _run(stopper, values):
    """Feed values until the stopper says stop; return the index where it stopped (or None)."""
    for i, v in enumerate(values):
        if stopper.update(v):
            return i
    return None


def test_early_stopping_waits_patience_epochs_after_the_best():
    es = EarlyStopping(patience=3)
    assert _run(es, [1.0, 0.8, 0.85, 0.9, 0.79, 0.8, 0.81, 0.82, 0.5]) == 7
    assert es.best == 0.79 and es.best_epoch == 4 and es.wait == 3


def test_early_stopping_min_delta_ignores_small_improvements():
    es = EarlyStopping(patience=2, min_delta=0.1)
    # 0.95 and 0.92 are better than 1.0 but not by more than 0.1
    assert _run(es, [1.0, 0.95, 0.92, 0.5]) == 2
    assert es.best_epoch == 0
    es = EarlyStopping(patience=2, min_delta=0.1)
    assert _run(es, [1.0, 0.95, 0.85, 0.8, 0.76]) == 4 and es.best_epoch == 2


def test_early_stopping_max_mode_and_nan():
    es = EarlyStopping(patience=2, mode="max")
    assert _run(es, [0.5, 0.7, 0.6, 0.7, 0.9]) == 3 and es.best == 0.7 and es.best_epoch == 1
    es = EarlyStopping(patience=2)
    assert _run(es, [1.0, float("nan"), float("nan")]) == 2 and es.best_epoch == 0
    es.reset()
    assert es.best is None and es.update(3.0) is False and es.best_epoch == 0


def test_early_stopping_rejects_bad_options():
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(patience=1, mode="lowest")
    with pytest.raises(ValueError, match="min_delta"):
        EarlyStopping(patience=1, min_delta=-1.0)
    with pytest.raises(TypeError):
        EarlyStopping(3)


# ------------------------------------------------------------------ fit

@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


def _small_mlp(seed, n_in=64, hidden=32, n_out=10, dropout=0.0):
    gen = np.random.default_rng(seed)
    layers = [M.Linear(n_in, hidden, rng=gen), M.ReLU()]
    if dropout:
        layers.append(M.Dropout(dropout, rng=gen))
    return M.Sequential(*layers, M.Linear(hidden, n_out, rng=gen))


def test_fit_is_reproducible_bit_for_bit_with_the_same_seeds(digits):
    def run(seed):
        model = _small_mlp(1, dropout=0.2)
        fit(model, loss=softmax_cross_entropy, optimizer=optim.Adam(lr=1e-2), X=digits.X_train[:300],
            y=digits.y_train[:300], epochs=3, batch_size=32, rng=seed)
        return model.state_dict()

    a, b, c = run(7), run(7), run(8)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_end_to_end_mlp_reaches_95_percent_test_accuracy_on_digits(digits):
    model = M.Sequential(M.Linear(64, 64, rng=0), M.ReLU(), M.Linear(64, 10, rng=1))
    history = fit(model, loss=softmax_cross_entropy, optimizer=optim.Adam(lr=3e-3), X=digits.X_train,
                  y=digits.y_train, epochs=40, batch_size=32, rng=2, validation=(digits.X_val, digits.y_val),
                  early_stopping=EarlyStopping(patience=8))
    test_loss, test_acc = evaluate(model, softmax_cross_entropy, digits.X_test, digits.y_test)
    assert test_acc >= 0.95, (test_acc, history.best_epoch)
    assert accuracy(model.eval()(digits.X_test), digits.y_test) == test_acc
    assert history.train_loss[-1] < history.train_loss[0] / 10


class _Recorder:
    def __init__(self):
        self.states = []

    def on_epoch_end(self, epoch, history, model):
        self.states.append(model.state_dict())


def test_early_stopping_in_fit_restores_the_best_weights(digits):
    # a tiny training set and a large step overfit quickly: the validation loss turns up
    model = _small_mlp(3, hidden=64)
    recorder = _Recorder()
    history = fit(model, loss=softmax_cross_entropy, optimizer=optim.Adam(lr=0.02), X=digits.X_train[:60],
                  y=digits.y_train[:60], epochs=60, batch_size=20, rng=0, validation=(digits.X_val, digits.y_val),
                  early_stopping=EarlyStopping(patience=4), callbacks=[recorder])
    best = history.best_epoch
    assert history.stopped_early and best == len(history) - 5
    assert history.val_loss[best] == min(history.val_loss)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, recorder.states[best][k])
    assert any(not np.array_equal(model.state_dict()[k], recorder.states[-1][k]) for k in recorder.states[-1])


def test_a_callback_returning_true_stops_training(digits):
    class StopAt:
        def on_epoch_end(self, epoch, history, model):
            return epoch == 2

    history = fit(_small_mlp(0), loss=softmax_cross_entropy, optimizer=optim.SGD(lr=0.1), X=digits.X_train[:100],
                  y=digits.y_train[:100], epochs=10, batch_size=50, rng=0, callbacks=[StopAt(), object()])
    assert len(history) == 3 and history.stopped_early
    assert len(history["train_accuracy"]) == 3 and history.val_loss == []
    assert len(history.seconds) == 3 and all(s > 0 for s in history.seconds)


def test_fit_records_the_scheduled_learning_rates_and_restores_the_mode(digits, capsys):
    model = _small_mlp(0).eval()
    history = fit(model, loss=softmax_cross_entropy, optimizer=optim.SGD(lr=0.4), X=digits.X_train[:64],
                  y=digits.y_train[:64], epochs=5, batch_size=64, rng=0,
                  schedule=optim.StepLR(step_size=2, gamma=0.5), progress=True)
    assert history["lr"] == [0.4, 0.4, 0.2, 0.2, 0.1]
    assert not model.training
    assert isinstance(history, History) and set(history.keys()) >= {"train_loss", "val_accuracy", "lr"}


def test_fit_handles_regression_targets_without_accuracy(rng):
    X = rng.standard_normal((40, 3))
    Y = X @ rng.standard_normal((3, 1)) + 0.5
    model = M.Sequential(M.Linear(3, 1, rng=rng))
    history = fit(model, loss=mse_loss, optimizer=optim.SGD(lr=0.1), X=X, y=Y, epochs=50, batch_size=10, rng=rng)
    assert history.train_accuracy == [] and history.train_loss[-1] < 1e-6


def _torch_loop(tmodel, opt, X, y, *, epochs, batch_size, seed, sched=None, lam=0.0, max_norm=None):
    gen = np.random.default_rng(seed)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for xb, yb in minibatches(X, y, batch_size=batch_size, rng=gen):
            opt.zero_grad()
            loss = F.cross_entropy(tmodel(torch.tensor(xb)), torch.tensor(yb))
            total += loss.item() * xb.shape[0]
            objective = loss + lam / 2 * sum((p ** 2).sum() for p in tmodel.parameters() if p.ndim == 2)
            objective.backward()
            if max_norm is not None:
                torch.nn.utils.clip_grad_norm_(tmodel.parameters(), max_norm)
            opt.step()
        losses.append(total / X.shape[0])
        if sched is not None:
            sched.step()
    return losses


@pytest.mark.parametrize("case", ["sgd_momentum", "adam", "sgd_schedule_penalty_clip"])
def test_fit_matches_a_torch_training_loop_step_for_step(case, digits):
    X, y = digits.X_train[:150], digits.y_train[:150]
    model = M.Sequential(M.Linear(64, 24, rng=5), M.Tanh(), M.BatchNorm1d(24), M.Linear(24, 10, rng=6))
    tmodel = interop.to_torch(model)
    kwargs, tkw = {}, {}
    if case == "sgd_momentum":
        opt = optim.SGD(lr=0.05, momentum=0.9, nesterov=True)
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    elif case == "adam":
        opt = optim.Adam(lr=3e-3, weight_decay=1e-3)
        topt = torch.optim.Adam(tmodel.parameters(), lr=3e-3, weight_decay=1e-3)
    else:
        opt = optim.SGD(lr=0.2, momentum=0.5)
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.2, momentum=0.5)
        kwargs = dict(schedule=optim.ExponentialLR(gamma=0.7), penalty=functools.partial(l2_penalty, lam=0.01),
                      clip_grad_norm=1.0)
        tkw = dict(sched=torch.optim.lr_scheduler.ExponentialLR(topt, gamma=0.7), lam=0.01, max_norm=1.0)
    history = fit(model, loss=softmax_cross_entropy, optimizer=opt, X=X, y=y, epochs=3, batch_size=32, rng=11,
                  **kwargs)
    tlosses = _torch_loop(tmodel, topt, X, y, epochs=3, batch_size=32, seed=11, **tkw)
    np.testing.assert_allclose(history.train_loss, tlosses, rtol=1e-9)
    back = interop.from_torch(tmodel)
    for (name, a), b in zip(model.state_dict().items(), back.state_dict().values()):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-11, err_msg=name)


def test_evaluate_restores_the_mode_and_weights_chunks_by_size(digits):
    model = _small_mlp(0, dropout=0.5)
    assert model.training
    whole = evaluate(model, softmax_cross_entropy, digits.X_val, digits.y_val)
    chunked = evaluate(model, softmax_cross_entropy, digits.X_val, digits.y_val, batch_size=64)
    assert model.training
    np.testing.assert_allclose(chunked, whole, rtol=1e-12)
    model.eval()
    assert whole[1] == accuracy(model(digits.X_val), digits.y_val)


def test_fit_rejects_bad_arguments(digits):
    model = _small_mlp(0)
    common = dict(loss=softmax_cross_entropy, optimizer=optim.SGD(lr=0.1), X=digits.X_train[:10],
                  y=digits.y_train[:10], batch_size=5, rng=0)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, epochs=0, **common)
    with pytest.raises(ValueError, match="validation"):
        fit(model, epochs=1, early_stopping=EarlyStopping(patience=1, monitor="val_loss"), **common)
    with pytest.raises(TypeError, match="rng"):
        fit(model, epochs=1, **(common | {"rng": None}))
    with pytest.raises(TypeError):
        fit(model, epochs=1, shuffle=False, **common)
