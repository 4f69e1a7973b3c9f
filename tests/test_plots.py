"""mlp_lib.plots: what is drawn (lines, labels, images, extents), not pixels."""
import matplotlib

matplotlib.use("Agg")  # headless; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from mlp_lib.plots import (PALETTE, STYLE, plot_activation_functions, plot_decision_boundary,  # noqa: E402
                           plot_history, plot_layer_histograms, plot_percentiles, style)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labels(ax):
    """Labels of the data lines (matplotlib names helper artists such as axhline '_child<n>')."""
    return [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]


# ---------------------------------------------------------------- style


def test_style_hides_top_and_right_spines_and_uses_the_palette():
    with style():
        fig, ax = plt.subplots()
        line, = ax.plot([0, 1], [0, 1])
    assert not ax.spines["top"].get_visible() and not ax.spines["right"].get_visible()
    assert ax.spines["left"].get_visible()
    assert to_hex(line.get_color()) == to_hex(PALETTE[0])
    assert STYLE["font.size"] >= 10
    # The context manager leaves the global settings alone.
    assert plt.rcParams["axes.spines.top"] == matplotlib.rcParamsDefault["axes.spines.top"]


# ---------------------------------------------------------------- history


def test_plot_history_draws_one_panel_per_metric_with_a_line_per_split():
    history = {"train_loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7],
               "train_accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.45, 0.6, 0.7]}
    axes = plot_history(history)
    assert len(axes) == 2 and all(isinstance(a, Axes) for a in axes)
    loss_ax, acc_ax = axes
    assert loss_ax.figure is acc_ax.figure
    assert (loss_ax.get_ylabel(), acc_ax.get_ylabel()) == ("loss", "accuracy")
    assert loss_ax.get_xlabel() == "epoch"
    assert _labels(loss_ax) == ["train", "val"] and _labels(acc_ax) == ["train", "val"]
    train = loss_ax.get_lines()[0]
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(train.get_ydata(), [1.0, 0.6, 0.4])
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["train", "val"]
    assert not loss_ax.spines["top"].get_visible()


def test_plot_history_draws_the_chosen_metrics_into_given_axes():
    fig, ax = plt.subplots()
    history = {"loss": [3.0, 2.0, 1.5, 1.2], "train_accuracy": [0.1, 0.2, 0.3, 0.4]}
    axes = plot_history(history, metrics=["loss"], ax=ax)
    assert axes == [ax]
    assert _labels(ax) == ["loss"]
    assert len(ax.get_lines()) == 1


def test_plot_history_reads_a_training_history_and_skips_empty_series():
    from mlp_lib.training import History

    h = History(train_loss=[0.9, 0.5, 0.4], train_accuracy=[0.6, 0.8, 0.85], lr=[0.1, 0.1, 0.01],
                seconds=[0.2, 0.2, 0.2])  # no validation data: val_* are empty
    loss_ax, acc_ax = plot_history(h)
    assert _labels(loss_ax) == ["train"] and _labels(acc_ax) == ["train"]
    (lr_ax,) = plot_history(h, metrics=["lr"])
    assert _labels(lr_ax) == ["lr"]
    regression = History(train_loss=[2.0, 1.0], val_loss=[2.5, 1.5])
    (only_loss,) = plot_history(regression.to_dict())  # to_dict's best_epoch entry is metadata, ignored
    assert _labels(only_loss) == ["train", "val"]
    with pytest.raises(ValueError, match="accuracy"):
        plot_history(regression, metrics=["loss", "accuracy"])


@pytest.mark.parametrize("history, kwargs, error", [
    ({"train_loss": [1.0]}, dict(metrics=["accuracy"]), ValueError),
    ({"train_loss": [1.0]}, dict(metrics="loss"), TypeError),
    ({"train_loss": [[1.0, 2.0]]}, dict(), ValueError),
    ({"train_loss": ["a"]}, dict(), ValueError),
    ({}, dict(), ValueError),
    ({"lr": [0.1, 0.01]}, dict(), ValueError),  # neither loss nor accuracy: metrics must be named
    ([1.0, 2.0], dict(), TypeError),
])
def test_plot_history_rejects_bad_histories(history, kwargs, error):
    with pytest.raises(error):
        plot_history(history, **kwargs)


def test_plot_history_needs_one_axes_per_metric():
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="2 matplotlib Axes"):
        plot_history({"train_loss": [1.0], "train_accuracy": [0.5]}, ax=ax)


# ---------------------------------------------------------------- decision boundary


def test_decision_boundary_image_covers_the_padded_data_and_shows_the_predictions(rng):
    X = rng.uniform(-2, 3, size=(60, 2))
    y = (X[:, 0] > 0.5).astype(np.int64)
    ax = plot_decision_boundary(lambda g: (g[:, 0] > 0.5).astype(np.int64), X, y, resolution=50, padding=0.25)
    (img,) = ax.images
    x0, x1, y0, y1 = img.get_extent()
    np.testing.assert_allclose([x0, x1, y0, y1], [X[:, 0].min() - 0.25, X[:, 0].max() + 0.25,
                                                  X[:, 1].min() - 0.25, X[:, 1].max() + 0.25])
    assert ax.get_xlim() == pytest.approx((x0, x1)) and ax.get_ylim() == pytest.approx((y0, y1))
    Z = np.asarray(img.get_array())
    assert Z.shape == (50, 50)
    # origin="lower": column j is x = linspace(x0, x1, 50)[j]; the prediction depends on x only.
    gx = np.linspace(x0, x1, 50)
    np.testing.assert_array_equal(Z, np.tile((gx > 0.5).astype(int), (50, 1)))
    assert [c.get_label() for c in ax.collections] == ["class 0", "class 1"]
    assert sum(c.get_offsets().shape[0] for c in ax.collections) == 60


def test_decision_boundary_accepts_scores_and_passes_the_inputs_dtype(rng):
    X = rng.normal(size=(30, 2)).astype(np.float32)
    y = rng.integers(0, 3, size=30)
    seen = {}

    def scores(g):
        seen["dtype"], seen["shape"] = g.dtype, g.shape
        return np.stack([g[:, 0], g[:, 1], -g[:, 0]], axis=1)

    _, ax = plt.subplots()
    out = plot_decision_boundary(scores, X, y, ax=ax, resolution=20)
    assert out is ax
    assert seen == {"dtype": np.float32, "shape": (400, 2)}
    Z = np.asarray(ax.images[0].get_array())
    gx, gy = np.meshgrid(np.linspace(X[:, 0].min() - 0.5, X[:, 0].max() + 0.5, 20),
                         np.linspace(X[:, 1].min() - 0.5, X[:, 1].max() + 0.5, 20))
    expected = np.stack([gx, gy, -gx], axis=-1).astype(np.float32).argmax(axis=-1)
    np.testing.assert_array_equal(Z, expected)
    assert len(ax.collections) == len(np.unique(y))


@pytest.mark.parametrize("predict, X, y, error", [
    (lambda g: g[:, 0], np.zeros((3, 2)), np.zeros(3, dtype=int), ValueError),   # float 1-D: ambiguous
    (lambda g: g[:, :1], np.zeros((3, 2)), np.zeros(3, dtype=int), ValueError),   # one score column
    (lambda g: np.zeros(len(g), int), np.zeros((3, 3)), np.zeros(3, dtype=int), ValueError),
    (lambda g: np.zeros(len(g), int), np.zeros((3, 2)), np.zeros(4, dtype=int), ValueError),
    (lambda g: np.zeros(len(g), int), np.zeros((3, 2)), np.zeros(3), TypeError),
    ("not callable", np.zeros((3, 2)), np.zeros(3, dtype=int), TypeError),
    (lambda g: -np.ones(len(g), int), np.zeros((3, 2)), np.zeros(3, dtype=int), ValueError),
])
def test_decision_boundary_rejects_bad_inputs(predict, X, y, error):
    with pytest.raises(error):
        plot_decision_boundary(predict, X, y, resolution=5)


# ---------------------------------------------------------------- histograms, activations, percentiles


def test_layer_histograms_draw_one_titled_panel_per_array(rng):
    values = [rng.normal(scale=s, size=(50, 4)) for s in (0.5, 1.0, 2.0)]
    axes = plot_layer_histograms(values, labels=["tanh 1", "tanh 2", "tanh 3"], bins=20)
    assert len(axes) == 3
    for a, v, name in zip(axes, values, ["tanh 1", "tanh 2", "tanh 3"]):
        assert len(a.patches) == 20
        assert sum(p.get_height() for p in a.patches) == v.size
        assert a.get_title().startswith(name) and f"std {v.std():.3g}" in a.get_title()
    default = plot_layer_histograms(values[:2])
    assert [a.get_title().splitlines()[0] for a in default] == ["layer 1", "layer 2"]


def test_layer_histograms_reject_mismatched_labels_and_axes(rng):
    values = [rng.normal(size=10), rng.normal(size=10)]
    with pytest.raises(ValueError, match="labels"):
        plot_layer_histograms(values, labels=["only one"])
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="axes"):
        plot_layer_histograms(values, axes=ax)
    with pytest.raises(TypeError):
        plot_layer_histograms(np.zeros((3, 3)))


def test_activation_functions_plot_functions_and_derivatives():
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    fns = {"sigmoid": (sig, lambda z: sig(z) * (1 - sig(z))), "relu": (lambda z: np.maximum(z, 0), None)}
    ax_f, ax_df = plot_activation_functions(fns)
    assert _labels(ax_f) == ["sigmoid", "relu"]
    assert _labels(ax_df) == ["sigmoid"]  # relu has no derivative given
    x = ax_f.get_lines()[0].get_xdata()
    np.testing.assert_array_equal(x, np.linspace(-5, 5, 401))
    np.testing.assert_allclose(ax_df.get_lines()[0].get_ydata(), sig(x) * (1 - sig(x)))
    assert to_hex(ax_f.get_lines()[1].get_color()) == to_hex(PALETTE[1])
    assert (ax_f.get_title(), ax_df.get_title()) == ("activation", "derivative")
    custom = plot_activation_functions({"tanh": (np.tanh, None)}, x=np.linspace(-2, 2, 11))[0]
    np.testing.assert_array_equal(custom.get_lines()[0].get_xdata(), np.linspace(-2, 2, 11))


def test_activation_functions_reject_non_pairs():
    with pytest.raises(TypeError, match="pair"):
        plot_activation_functions({"tanh": np.tanh})
    with pytest.raises(TypeError):
        plot_activation_functions({})


def test_percentiles_draw_one_curve_per_percentile_over_steps(rng):
    samples = [rng.normal(loc=0.1 * t, size=200) for t in range(12)]
    ax = plot_percentiles(samples, steps=np.arange(12) * 100, label="no BN")
    assert _labels(ax) == ["no BN p15", "no BN p50", "no BN p85"]
    for line, q in zip(ax.get_lines(), (15, 50, 85)):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(12) * 100)
        np.testing.assert_allclose(line.get_ydata(), [np.percentile(s, q) for s in samples])
    # A (T, M) array works the same, and the curves go into a given Axes.
    _, ax2 = plt.subplots()
    assert plot_percentiles(np.stack(samples), percentiles=(50,), ax=ax2) is ax2
    np.testing.assert_allclose(ax2.get_lines()[0].get_ydata(), [np.median(s) for s in samples])
    np.testing.assert_array_equal(ax2.get_lines()[0].get_xdata(), np.arange(12))


@pytest.mark.parametrize("samples, kwargs, error", [
    ([], dict(), TypeError),
    ([np.zeros(3), np.zeros(0)], dict(), ValueError),
    ([np.zeros(3)], dict(steps=[0, 1]), ValueError),
    ([np.zeros(3)], dict(percentiles=(50, 150)), ValueError),
    (np.zeros(3), dict(), ValueError),
])
def test_percentiles_reject_bad_inputs(samples, kwargs, error):
    with pytest.raises(error):
        plot_percentiles(samples, **kwargs)


def test_no_plot_function_calls_show(monkeypatch, rng):
    def forbidden(*args, **kwargs):
        raise AssertionError("plt.show called")

    monkeypatch.setattr(plt, "show", forbidden)
    plot_history({"train_loss": [1.0, 0.5]})
    plot_decision_boundary(lambda g: np.zeros(len(g), int), rng.normal(size=(5, 2)), np.zeros(5, int),
                           resolution=4)
    plot_layer_histograms([rng.normal(size=10)])
    plot_activation_functions({"tanh": (np.tanh, None)})
    plot_percentiles([rng.normal(size=10)])
