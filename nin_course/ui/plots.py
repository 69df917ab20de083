"""Plots: training curves, a live version of them for notebooks, and a grid of images.

Only matplotlib's object API is used, so any backend works (the tests use Agg). Every function
returns its figure; end a notebook cell with `plt.show()` so that the stored output is a PNG.
"""
import io
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import MaxNLocator


def figure_png(fig, dpi=100):
    """A Figure as PNG bytes, whatever matplotlib's backend: (width * dpi, height * dpi) pixels.

    `dpi=None` takes matplotlib's `savefig.dpi` setting (by default the figure's own dpi).
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def in_notebook():
    """True inside a Jupyter kernel (where figures can be displayed), False in a terminal/pytest."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def plot_history(history, ax=None, num_classes=None):
    """Loss and accuracy against epoch, for training and (when measured) test data.

    `history` is a History or its `as_dict()`. `ax` is None (a new figure with a loss panel and
    an accuracy panel), a pair of Axes (loss, accuracy), or one Axes for all curves (as d2l
    draws them). The loss axis starts at 0, so that a run that stays at one loss looks flat
    rather than zoomed into noise; with `num_classes`, a dotted line marks ln(num_classes), the
    loss of a uniform guess. Returns the figure.
    """
    h = history.as_dict() if hasattr(history, "as_dict") else history
    if ax is None:
        fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
    elif isinstance(ax, (list, tuple, np.ndarray)):
        loss_ax, acc_ax = ax
        fig = loss_ax.figure
    else:
        loss_ax = acc_ax = ax
        fig = ax.figure
    marker = "o" if len(h["epoch"]) <= 20 else None
    for axes, metric in ((loss_ax, "loss"), (acc_ax, "acc")):
        for split, style in (("train", "-"), ("test", "--")):
            values = h[f"{split}_{metric}"]
            if values and not all(math.isnan(v) for v in values):  # no test data: no test curve
                axes.plot(h["epoch"], values, style, marker=marker, label=f"{split} {metric}")
    if num_classes:
        loss_ax.axhline(math.log(num_classes), color="grey", linestyle=":",
                        label=f"ln {num_classes} (uniform guess)")
    loss_ax.set_ylim(bottom=0, top=max(loss_ax.get_ylim()[1], 0.1))
    loss_ax.set(xlabel="epoch", ylabel="loss" if loss_ax is not acc_ax else "loss / accuracy",
                title="Loss (cross-entropy)" if loss_ax is not acc_ax else "Training curves")
    if acc_ax is not loss_ax:
        acc_ax.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1.02))
    for axes in {id(loss_ax): loss_ax, id(acc_ax): acc_ax}.values():
        axes.grid(alpha=0.3)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        if axes.get_lines():
            axes.legend()
    return fig


class LivePlot:
    """Training curves redrawn in place, in one notebook output, after every epoch.

    Outside a notebook (a terminal, pytest) `update` does nothing, so code that uses it runs
    anywhere. `LivePlot(enabled=False)` turns it off everywhere.
    """

    def __init__(self, enabled=True):
        self.active = enabled and in_notebook()
        self._handle = None

    def update(self, history):
        """Redraw the curves of `history` (a History or its dict)."""
        if not self.active or len(history["epoch"] if isinstance(history, dict) else history) == 0:
            return
        from IPython.display import Image, display
        fig = plot_history(history)
        png = figure_png(fig, dpi=None)  # a PNG whatever the backend, so the output is an image
        plt.close(fig)  # and the inline backend does not show the figure a second time
        image = Image(data=png, format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)


def show_images(X, labels=None, classes=None, ncols=8):
    """A grid of images with their labels as titles. Returns the figure.

    X: a batch as a tensor or array, either float (N, C, H, W) (what models take; any range,
    rescaled per image for display) or uint8 (N, H, W, C) (how datasets store pixels), with
    C = 1 or 3; (N, H, W) for grey images. labels: N class indices or names; classes: the class
    names, used to turn indices into names.
    """
    images = _to_nhwc(X)
    N = len(images)
    if N == 0:
        raise ValueError("show_images got an empty batch; pass at least one image")
    ncols = min(ncols, N)
    nrows = math.ceil(N / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, 1.7 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= N:
            continue
        image = images[i]
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image,
                  cmap="gray" if image.shape[-1] == 1 else None)
        if labels is not None:
            ax.set_title(_label_name(labels[i], classes), fontsize=9)
    return fig


def _to_nhwc(X):
    """A batch as a float NumPy array (N, H, W, C) with values in [0, 1]."""
    X = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    if X.ndim == 3:
        X = X[..., None]  # (N, H, W) -> (N, H, W, 1)
    if X.ndim != 4:
        raise ValueError(f"show_images expects a batch (N, C, H, W) or (N, H, W, C); got shape "
                         f"{X.shape}. Add a batch dimension with X[None] for a single image.")
    channels_first = X.shape[1] in (1, 3) and (X.dtype != np.uint8 or X.shape[-1] not in (1, 3))
    if channels_first:
        X = X.transpose(0, 2, 3, 1)
    elif X.shape[-1] not in (1, 3):
        raise ValueError(f"show_images needs 1 or 3 colour channels, first (N, C, H, W) or last "
                         f"(N, H, W, C); got shape {X.shape}")
    if X.dtype == np.uint8:
        return X.astype(np.float32) / 255
    X = X.astype(np.float32)
    low = X.min(axis=(1, 2, 3), keepdims=True)
    high = X.max(axis=(1, 2, 3), keepdims=True)
    outside = (low < 0) | (high > 1)  # normalised images: stretch each one to [0, 1]
    return np.where(outside, (X - low) / np.maximum(high - low, 1e-12), X)


def _label_name(label, classes):
    label = label.item() if isinstance(label, (torch.Tensor, np.generic)) else label
    if classes is not None and isinstance(label, int):
        return str(classes[label])
    return str(label)
