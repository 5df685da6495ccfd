"""Plots of a fitted estimator's training history (needs matplotlib).

``plot_history(est)`` draws the three curves to look at when a deep network
trains badly: the loss (and validation loss/score), the learning rate, and the
L2 norm of each Dense layer's kernel gradient per epoch, on a log scale, where
vanishing gradients show as lower layers' norms orders of magnitude below the
output layer's, and exploding gradients as norms that grow epoch after epoch.

matplotlib is imported only when ``plot_history`` is called, so fastnn itself
does not depend on it (``pip install ".[plot]"`` or ``pip install matplotlib``).
"""

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted

__all__ = ["plot_history"]

_INSTALL_HINT = (
    "fastnn.plot.plot_history requires matplotlib. Install it with "
    "`pip install matplotlib`, or `pip install \".[plot]\"` from fastnn's source directory."
)


def _import_pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return plt


def _series(values):
    """A history list as a float array (``None`` or missing -> empty)."""
    if values is None:
        return np.empty(0)
    return np.asarray(values, dtype=float)


def _history(est):
    """The per-epoch series to plot, from ``history_`` or, for estimators without
    one (e.g. scikit-learn's MLPs), from ``loss_curve_`` / ``validation_scores_`` /
    ``loss_``."""
    h = getattr(est, "history_", None)
    if isinstance(h, dict):
        return {k: h.get(k) for k in ("loss", "val_loss", "val_score", "lr", "grad_norm")}
    out = {"loss": getattr(est, "loss_curve_", None), "val_loss": None,
           "val_score": getattr(est, "validation_scores_", None), "lr": None, "grad_norm": None}
    if out["loss"] is None and getattr(est, "loss_", None) is not None:
        out["loss"] = [est.loss_]
    if out["loss"] is None:
        raise ValueError(
            f"{type(est).__name__} has no training history to plot: expected a "
            "`history_` dict (fastnn estimators), a `loss_curve_` or a `loss_` attribute.")
    return out


def _epochs(n, est):
    """x values: epochs 1..n; a lone final value (lbfgs) sits at ``n_iter_``."""
    if n == 1 and getattr(est, "solver", None) == "lbfgs" and getattr(est, "n_iter_", None):
        return np.array([float(est.n_iter_)])
    return np.arange(1, n + 1, dtype=float)


def _style(n):
    """Markers when there are too few points for a line to show."""
    return {"marker": "o", "markersize": 4} if n <= 2 else {}


def _no_data(ax, text):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
            fontsize="small", color="0.4", wrap=True)


def _layer_labels(n):
    """'layer 1', ..., 'layer n-1', 'output' for n Dense layers."""
    return [f"layer {i + 1}" for i in range(n - 1)] + ["output"]


def _best_epoch(est, h, lbfgs):
    """(epoch, restored, why) of the best epoch, or None: when validating,
    the epoch whose weights early stopping keeps (fastnn with
    ``restore_best_weights``, scikit-learn always) or would keep: the highest
    validation score, or with ``monitor='val_loss'`` the last epoch that
    lowered the validation loss by more than ``tol`` (Keras's rule); else the
    lowest training loss."""
    if lbfgs:
        return None
    score, loss = _series(h["val_score"]), _series(h["loss"])
    val_loss = _series(h["val_loss"])
    restored = bool(getattr(est, "early_stopping", False)) and \
        bool(getattr(est, "restore_best_weights", True))
    if getattr(est, "monitor", "val_score") == "val_loss" and val_loss.size \
            and not np.isnan(val_loss).all():
        best, epoch = None, None
        for e, v in enumerate(val_loss, start=1):
            if best is None or v < best - est.tol:
                best, epoch = v, e
        return epoch, restored, "validation loss"
    if score.size and not np.isnan(score).all():
        return int(np.nanargmax(score)) + 1, restored, "validation score"
    if loss.size > 1 and not np.isnan(loss).all():
        return int(np.nanargmin(loss)) + 1, False, "training loss"
    return None


# Where a legend may go inside its axes, in order of preference.
_LEGEND_SPOTS = ("upper right", "upper left", "lower left", "lower right", "center right",
                 "center left", "upper center", "lower center", "center")


def _legend_clear_of(ax, handles, curves, fig):
    """A legend on `ax` at the first spot where it covers none of `curves`
    (lines of `ax` and of its twin). When no spot is free, the y axes get
    headroom above the curves, the height of the legend, and the legend goes
    there."""
    legend = ax.legend(handles=handles, fontsize="small")
    for headroom in (False, True):
        if headroom:
            box = legend.get_window_extent()
            fraction = min(0.6, (box.height + 10) / ax.bbox.height)
            for a in {ax, *(line.axes for line in curves)}:
                lo, hi = a.get_ylim()
                a.set_ylim(lo, lo + (hi - lo) / (1 - fraction))
        fig.draw_without_rendering()  # the final layout: where things really are
        paths = [_display_path(line) for line in curves]
        for spot in _LEGEND_SPOTS:
            legend.set_loc(spot)
            box = legend.get_window_extent().padded(2)
            if not any(p is not None and p.intersects_bbox(box, filled=False) for p in paths):
                return legend
    legend.set_loc("upper center")
    return legend


def _display_path(line):
    """A line's finite points as a path in display (pixel) coordinates."""
    from matplotlib.path import Path

    xy = np.asarray(line.get_xydata(), dtype=float)
    xy = xy[np.isfinite(xy).all(axis=1)]
    if not len(xy):
        return None
    if len(xy) == 1:  # a lone marker: a tiny segment, so it can be hit
        xy = np.vstack([xy, xy])
    return Path(line.get_transform().transform(xy))


def plot_history(est, *, axes=None, figsize=None, log_lr=True, log_grad=True):
    """Plot a fitted estimator's training history in three panels.

    1. Training loss per epoch and, when recorded (``early_stopping=True``),
       the validation loss; the validation score (accuracy for a classifier,
       R² for a regressor) on a twin y axis. A dotted vertical line marks the
       best epoch (by the estimator's ``monitor`` on the validation data,
       else lowest training loss); its
       legend entry says when early stopping restored that epoch's weights.
       The legend goes where it covers no curve (above them if need be).
    2. The learning rate per epoch (the rate of the epoch's last step).
    3. The L2 norm of each Dense layer's kernel gradient, averaged over the
       epoch's steps: one line per layer, "layer 1" ... "output".

    Whatever the history lacks is left out with a note in its panel: lbfgs
    records only its final loss (one point at ``n_iter_``), and estimators
    without ``history_`` (e.g. scikit-learn's MLPs) are plotted from
    ``loss_curve_`` and ``validation_scores_``.

    Parameters
    ----------
    est : fitted fastnn.MLPClassifier or fastnn.MLPRegressor
        Also a fitted Pipeline ending in one (its last step is plotted), or any
        fitted estimator with ``loss_curve_`` or ``loss_``.
    axes : sequence of 3 matplotlib Axes, optional
        Panels to draw into (e.g. a row of ``plt.subplots(1, 3)``). By default
        a new figure with one row of three panels is made.
    figsize : (float, float), optional
        Size of the new figure, default ``(14, 4)``; ignored with ``axes``.
    log_lr : bool, default=True
        Log scale for the learning-rate axis.
    log_grad : bool, default=True
        Log scale for the gradient-norm axis.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the panels. ``fig.axes`` holds the three panels, in
        order, plus the twin axis of the validation score when there is one.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``est`` is not fitted.
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from fastnn import MLPClassifier
    >>> from fastnn.plot import plot_history
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(64, 64), early_stopping=True,
    ...                     max_iter=20).fit(X / 16, y)      # doctest: +SKIP
    >>> fig = plot_history(clf)                               # doctest: +SKIP
    >>> fig.savefig("history.png")                            # doctest: +SKIP
    """
    est = _fitted_final_estimator(est)
    plt = _import_pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = _figure_and_axes(plt, axes, figsize)
    h = _history(est)
    lbfgs = getattr(est, "solver", None) == "lbfgs"
    xlabel = "iteration" if lbfgs else "epoch"
    missing = "lbfgs records none" if lbfgs else f"{type(est).__name__} records none"
    handles, loss_axes = _plot_loss_panel(axes[0], est, h, lbfgs)
    _plot_lr_panel(axes[1], est, _series(h["lr"]), log_lr, missing)
    _plot_grad_panel(axes[2], plt, est, h["grad_norm"], log_grad, missing)
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if handles:  # placed last: it needs the final layout of the whole figure
        curves = [line for ax in loss_axes for line in ax.lines
                  if line.get_gid() != "best_epoch"]
        _legend_clear_of(axes[0], handles, curves, fig)
    return fig


def _fitted_final_estimator(est):
    """est, or the last step of a Pipeline; NotFittedError if not fitted."""
    if hasattr(est, "steps") and hasattr(est, "_final_estimator"):  # Pipeline
        check_is_fitted(est)
        est = est._final_estimator
    check_is_fitted(est)
    return est


def _figure_and_axes(plt, axes, figsize):
    """A new one-row figure of three panels, or the given axes and their figure."""
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=figsize or (14, 4), layout="constrained")
        return fig, list(axes)
    axes = list(np.ravel(np.asarray(axes, dtype=object)))
    if len(axes) != 3:
        raise ValueError(f"axes must hold 3 matplotlib Axes, got {len(axes)}")
    try:  # the root Figure, also when the axes live in a SubFigure
        fig = axes[0].get_figure(root=True)
    except TypeError:  # matplotlib < 3.10: no root argument
        fig = axes[0].figure
    return fig, axes


def _plot_loss_panel(ax_loss, est, h, lbfgs):
    """(1) loss, validation loss, validation score on a twin axis, the best
    epoch; returns the legend handles and the axes whose lines it must not cover."""
    loss, val_loss, val_score = _series(h["loss"]), _series(h["val_loss"]), _series(h["val_score"])
    handles, loss_axes = [], [ax_loss]
    if loss.size:
        label = "final training loss (lbfgs)" if lbfgs and loss.size == 1 else "training loss"
        handles += ax_loss.plot(_epochs(loss.size, est), loss, label=label,
                                color="C0", **_style(loss.size))
    else:
        _no_data(ax_loss, "no loss recorded")
    if val_loss.size:
        handles += ax_loss.plot(_epochs(val_loss.size, est), val_loss, label="validation loss",
                                color="C1", **_style(val_loss.size))
    if val_score.size:
        ax_score = ax_loss.twinx()
        name = "accuracy" if is_classifier(est) else "R²"
        handles += ax_score.plot(_epochs(val_score.size, est), val_score, color="C2",
                                 linestyle="--", label=f"validation score ({name})",
                                 **_style(val_score.size))
        ax_score.set_ylabel(f"validation {name}")
        loss_axes.append(ax_score)
        # draw the loss axes (and its legend) above the twin's line
        ax_loss.set_zorder(ax_score.get_zorder() + 1)
        ax_loss.patch.set_visible(False)
    best = _best_epoch(est, h, lbfgs)
    if best is not None:
        epoch, restored, what = best
        label = f"best epoch ({epoch}, {what})"
        if restored:
            label += ": weights restored"
        handles.append(ax_loss.axvline(epoch, color="0.3", linestyle=":", linewidth=1.2,
                                       label=label, gid="best_epoch"))
    ax_loss.set_title("loss")
    ax_loss.set_ylabel("loss")
    return handles, loss_axes


def _plot_lr_panel(ax_lr, est, lr, log_lr, missing):
    """(2) learning rate."""
    if lr.size:
        ax_lr.plot(_epochs(lr.size, est), lr, color="C3", **_style(lr.size))
        if log_lr:
            ax_lr.set_yscale("log")
    else:
        _no_data(ax_lr, f"no per-epoch learning rate\n({missing})")
    ax_lr.set_title("learning rate")
    ax_lr.set_ylabel("learning rate")


def _plot_grad_panel(ax_grad, plt, est, grads, log_grad, missing):
    """(3) per-layer gradient norms."""
    grads = np.asarray(grads, dtype=float) if grads is not None and len(grads) else None
    if grads is not None:
        if grads.ndim == 1:
            grads = grads[:, None]
        n_dense = grads.shape[1]
        colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, n_dense))
        x = _epochs(grads.shape[0], est)
        for j, label in enumerate(_layer_labels(n_dense)):
            ax_grad.plot(x, grads[:, j], color=colors[j], label=label, **_style(grads.shape[0]))
        if log_grad:
            ax_grad.set_yscale("log")
        # beside the panel: with many layers no spot inside is free
        ax_grad.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small",
                       frameon=False, handlelength=1.5)
    else:
        _no_data(ax_grad, f"no gradient norms recorded\n({missing})")
    ax_grad.set_title("gradient norm per layer")
    ax_grad.set_ylabel("mean L2 norm of kernel gradient")
