"""The book's figures: training curves, decision boundaries, histograms,
activation functions, percentile curves. Throughout.

matplotlib only, through its object API: every function draws into the Axes
it is given (or a new figure's, made with pyplot so notebooks show it) and
returns the Axes (a list of them for multi-panel figures); none calls
``plt.show``. The look comes from :data:`STYLE` — readable font sizes, no
top/right spines, the Okabe-Ito colour-blind-safe palette — applied with
``with style(): ...`` (or ``plt.rcParams.update(STYLE)`` in a notebook).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from cycler import cycler

from mlp_lib._checks import float_array, label_array, positive, positive_int

__all__ = [
    "PALETTE",
    "STYLE",
    "style",
    "plot_history",
    "plot_decision_boundary",
    "plot_layer_histograms",
    "plot_activation_functions",
    "plot_percentiles",
]

# Okabe & Ito (2008), "Color Universal Design": distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.8,
    "savefig.bbox": "tight",
    "axes.prop_cycle": cycler(color=list(PALETTE)),
}


@contextlib.contextmanager
def style():
    """Context manager applying :data:`STYLE` to the figures created inside it."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def _new_axes(n: int = 1, *, width: float = 4.5, height: float = 3.2):
    """n side-by-side Axes in a new figure (styled), as a list.

    The figure is made through pyplot so that notebooks display it inline;
    nothing here calls ``plt.show``.
    """
    import matplotlib.pyplot as plt

    with style():
        _, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False, layout="constrained")
    return list(axes[0])


def _tidy(ax) -> None:
    """Apply the style's spines to an Axes we were handed (it may predate the style)."""
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


def _legend(ax, **kwargs) -> None:
    """A legend when something is labelled (matplotlib warns on an empty one)."""
    if any(not label.startswith("_") for label in ax.get_legend_handles_labels()[1]):
        ax.legend(**kwargs)


def _axes_list(name: str, axes, n: int, *, width: float = 4.5) -> list:
    from matplotlib.axes import Axes

    if axes is None:
        return _new_axes(n, width=width)
    if isinstance(axes, Axes):
        axes = [axes]
    axes = list(np.ravel(np.asarray(axes, dtype=object)))
    if len(axes) != n or not all(isinstance(a, Axes) for a in axes):
        raise ValueError(f"{name} must be None or {n} matplotlib Axes, got {len(axes)} objects")
    for a in axes:
        _tidy(a)
    return axes


# ---------------------------------------------------------------- training curves

SPLIT_PREFIXES = ("train_", "val_", "test_")


def _metric_of(key: str) -> str:
    for prefix in SPLIT_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


DEFAULT_METRICS = ("loss", "accuracy")


def plot_history(history, *, metrics: Sequence[str] | None = None, ax=None) -> list:
    """Training curves, one panel per metric. Chapter 2 and throughout.

    history: a mapping from series name to its values per epoch, e.g.
    ``{"train_loss": [...], "val_loss": [...], "train_accuracy": [...]}``, or
    anything with such ``items()`` (:class:`mlp_lib.training.History`). A
    series belongs to metric ``m`` when its name is ``m`` or ``<split>_m``
    with split train/val/test; its legend label is the split. Empty series
    (e.g. no validation data) are skipped. ``metrics=None`` plots "loss" and
    "accuracy", whichever have data; an explicit list must all have data.
    ax: None (new figure), or one Axes per metric. Returns the list of Axes,
    one per metric (a list even for one metric). The x axis counts epochs from 1.
    """
    items = getattr(history, "items", None)
    if isinstance(history, (str, bytes)) or not callable(items):
        raise TypeError(f"history must be a mapping from name to a list of values, got {type(history).__name__}")
    by_metric: dict[str, list[tuple[str, object]]] = {}
    for key, values in items():
        if not isinstance(key, str):
            raise TypeError(f"history keys must be strings, got {key!r}")
        by_metric.setdefault(_metric_of(key), []).append((key, values))
    if metrics is None:
        metrics = [m for m in DEFAULT_METRICS if any(_length(v) for _, v in by_metric.get(m, []))]
        if not metrics:
            raise ValueError(f"history has no loss or accuracy values; pass metrics=[...] "
                             f"(it has {sorted(by_metric)})")
    else:
        if isinstance(metrics, str):
            raise TypeError(f"metrics must be a list of names, got the string {metrics!r}")
        metrics = list(metrics)
        empty = [m for m in metrics if not any(_length(v) for _, v in by_metric.get(m, []))]
        if empty or not metrics:
            raise ValueError(f"metrics {empty} have no values in history (it has {sorted(by_metric)})")
    from matplotlib.ticker import MaxNLocator

    axes = _axes_list("ax", ax, len(metrics))
    for metric, a in zip(metrics, axes):
        for key, values in by_metric[metric]:
            v = np.asarray(values)
            if v.ndim != 1 or v.dtype.kind not in "iuf":
                raise ValueError(f"history[{key!r}] must be a 1-D list of numbers, got shape {v.shape}, "
                                 f"dtype {v.dtype}")
            if v.size == 0:
                continue
            label = key[: -len(metric) - 1] if key != metric else metric
            a.plot(np.arange(1, v.size + 1), v.astype(np.float64), label=label)
        a.set_xlabel("epoch")
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.set_ylabel(metric)
        _legend(a)
    return axes


def _length(values) -> int:
    """Number of entries of a series; 0 for scalars and other non-sequences (metadata such as best_epoch)."""
    try:
        return len(values)
    except TypeError:
        return 0


# ---------------------------------------------------------------- decision boundary


def plot_decision_boundary(predict_fn: Callable[[np.ndarray], np.ndarray], X, y, *, ax=None,
                           resolution: int = 200, padding: float = 0.5):
    """Predicted class regions of a 2-D classifier, with the data on top. Chapters 1-3.

    predict_fn: maps a (M, 2) array (X's dtype) to class labels (M,) of an
    integer dtype, or to class scores (M, C) with C >= 2 (the argmax is
    taken). X: (N, 2); y: (N,) labels. The region image covers X's bounding
    box widened by ``padding`` on every side, sampled on a
    ``resolution x resolution`` grid. Returns the Axes.
    """
    from matplotlib.colors import ListedColormap

    X = float_array("X", X, ndim=2)
    if X.shape[1] != 2 or X.shape[0] == 0:
        raise ValueError(f"X must have shape (N, 2) with N >= 1 (a 2-D input space), got {X.shape}")
    y = label_array("y", y, n=X.shape[0])
    resolution = positive_int("resolution", resolution)
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    padding = positive("padding", padding, allow_zero=True)
    if not callable(predict_fn):
        raise TypeError(f"predict_fn must be callable, got {predict_fn!r}")
    (x0, y0), (x1, y1) = X.min(axis=0) - padding, X.max(axis=0) + padding
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(X.dtype)
    pred = np.asarray(predict_fn(grid))
    if pred.ndim == 2 and pred.shape[0] == grid.shape[0] and pred.shape[1] >= 2:
        labels = pred.argmax(axis=1)
    elif pred.shape == (grid.shape[0],) and pred.dtype.kind in "iu":
        labels = pred
    else:
        raise ValueError(f"predict_fn must return integer labels of shape ({grid.shape[0]},) or scores of shape "
                         f"({grid.shape[0]}, C) with C >= 2, got shape {pred.shape}, dtype {pred.dtype} "
                         "(for one logit per example, wrap it: lambda g: (f(g)[:, 0] > 0).astype(int))")
    if labels.min() < 0 or y.min() < 0:
        raise ValueError("class labels (y and predict_fn's output) must be >= 0")
    n_classes = int(max(labels.max(), y.max())) + 1
    if n_classes > len(PALETTE):
        raise ValueError(f"at most {len(PALETTE)} classes can be drawn, got {n_classes}")
    colors = PALETTE[:n_classes]
    ax = _axes_list("ax", ax, 1)[0]
    ax.imshow(labels.reshape(resolution, resolution), origin="lower", extent=(x0, x1, y0, y1),
              cmap=ListedColormap(colors), vmin=-0.5, vmax=n_classes - 0.5, alpha=0.25,
              interpolation="nearest", aspect="auto")
    for c in range(n_classes):
        pts = X[y == c]
        if pts.size:
            ax.scatter(pts[:, 0], pts[:, 1], s=14, color=colors[c], edgecolors="white", linewidths=0.4,
                       label=f"class {c}")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    _legend(ax, loc="best")
    return ax


# ---------------------------------------------------------------- distributions per layer


def plot_layer_histograms(values: Sequence[np.ndarray], *, labels: Sequence[str] | None = None, bins: int = 50,
                          axes=None) -> list:
    """One histogram per layer, side by side (activations or gradients). Chapter 5.

    values: a list of arrays (any shapes; all entries count), one per layer.
    labels: panel titles (default ``layer 1``, ``layer 2``, ...); each title
    also shows the mean and standard deviation. axes: None or one Axes per
    array. Returns the list of Axes.
    """
    if isinstance(values, np.ndarray) or not isinstance(values, Sequence) or len(values) == 0:
        raise TypeError("values must be a non-empty list of arrays, one per layer")
    arrays = [float_array(f"values[{i}]", v) for i, v in enumerate(values)]
    if labels is None:
        labels = [f"layer {i + 1}" for i in range(len(arrays))]
    elif isinstance(labels, str) or len(labels) != len(arrays):
        raise ValueError(f"labels must be a list of {len(arrays)} strings, got {labels!r}")
    bins = positive_int("bins", bins)
    # Many layers (Chapter 5 plots ten) get narrower panels so the row stays page-wide.
    axs = _axes_list("axes", axes, len(arrays), width=min(4.5, max(2.0, 14.0 / len(arrays))))
    for a, v, label in zip(axs, arrays, labels):
        flat = v.ravel().astype(np.float64)
        a.hist(flat, bins=bins, color=PALETTE[0], alpha=0.85)
        a.set_title(f"{label}\nmean {flat.mean():.3g}, std {flat.std():.3g}")
        a.set_yticks([])
    return axs


def plot_activation_functions(fns: Mapping[str, tuple[Callable, Callable | None]], *, x=None, axes=None) -> list:
    """Activation functions (left panel) and their derivatives (right panel). Chapter 4.

    fns: ``{name: (f, df)}`` with f and df elementwise functions of a float64
    array (df may be None to skip the derivative). x: the 1-D grid (default
    ``np.linspace(-5, 5, 401)``). axes: None or two Axes. Returns ``[ax_f, ax_df]``.
    """
    if not isinstance(fns, Mapping) or len(fns) == 0:
        raise TypeError("fns must be a non-empty dict {name: (f, df)}")
    x = np.linspace(-5.0, 5.0, 401) if x is None else float_array("x", x, ndim=1)
    ax_f, ax_df = _axes_list("axes", axes, 2)
    for i, (name, pair) in enumerate(fns.items()):
        if not (isinstance(pair, tuple) and len(pair) == 2 and callable(pair[0])
                and (pair[1] is None or callable(pair[1]))):
            raise TypeError(f"fns[{name!r}] must be a pair (f, df) of functions (df may be None)")
        f, df = pair
        color = PALETTE[i % len(PALETTE)]
        ax_f.plot(x, np.asarray(f(x)), color=color, label=name)
        if df is not None:
            ax_df.plot(x, np.asarray(df(x)), color=color, label=name)
    ax_f.set_title("activation")
    ax_df.set_title("derivative")
    for a in (ax_f, ax_df):
        a.set_xlabel("$z$")
        a.axhline(0.0, color="0.6", linewidth=0.8, zorder=0)
        _legend(a)
    return [ax_f, ax_df]


def plot_percentiles(samples, *, steps=None, percentiles: Sequence[float] = (15, 50, 85), ax=None,
                     label: str | None = None):
    """Percentiles of a quantity over training steps. Chapter 7.

    The batch-normalization paper's figure: how the distribution of a unit's
    input drifts during training, drawn as its 15th, 50th and 85th percentiles
    per step. samples: a list of arrays (one per step; all entries count) or
    a 2-D array (T, M). steps: x values (default 0..T-1). label: prefix of the
    legend entries (e.g. "with BN"). Returns the Axes.
    """
    if isinstance(samples, np.ndarray):
        samples = float_array("samples", samples, ndim=2)
        rows = list(samples)
    elif isinstance(samples, Sequence) and len(samples) > 0:
        rows = [float_array(f"samples[{i}]", s).ravel() for i, s in enumerate(samples)]
    else:
        raise TypeError("samples must be a (T, M) array or a non-empty list of arrays, one per step")
    if any(r.size == 0 for r in rows) or not rows:
        raise ValueError("samples must hold at least one value per step")
    qs = [float(q) for q in percentiles]
    if not qs or any(not 0 <= q <= 100 for q in qs):
        raise ValueError(f"percentiles must be a non-empty list of numbers in [0, 100], got {percentiles!r}")
    steps = np.arange(len(rows)) if steps is None else np.asarray(steps)
    if steps.shape != (len(rows),):
        raise ValueError(f"steps must have shape ({len(rows)},), got {steps.shape}")
    curves = np.stack([np.percentile(r.astype(np.float64), qs) for r in rows])  # (T, len(qs))
    ax = _axes_list("ax", ax, 1)[0]
    for j, q in enumerate(qs):
        name = f"p{q:g}" if label is None else f"{label} p{q:g}"
        ax.plot(steps, curves[:, j], color=PALETTE[j % len(PALETTE)], label=name)
    ax.set_xlabel("step")
    _legend(ax)
    return ax
