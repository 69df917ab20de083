"""Tests for nin_course/ui/plots.py (Agg backend: nothing is shown)."""
import math

import matplotlib
import numpy as np
import pytest
import torch

from nin_course.train.history import History
from nin_course.ui import plots
from nin_course.ui.plots import LivePlot, figure_png, in_notebook, plot_history, show_images

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def make_history(num_epochs=3, with_test=True):
    history = History()
    for epoch in range(1, num_epochs + 1):
        history.append(epoch=epoch, train_loss=1.0 / epoch, train_acc=0.5 + 0.1 * epoch,
                       test_loss=1.2 / epoch if with_test else math.nan,
                       test_acc=0.45 + 0.1 * epoch if with_test else math.nan,
                       examples_per_sec=1000.0, seconds=1.0)
    return history


def labels(ax):
    return [line.get_label() for line in ax.get_lines()]


def test_plot_history_draws_loss_and_accuracy_curves():
    history = make_history()
    fig = plot_history(history)
    loss_ax, acc_ax = fig.axes
    assert labels(loss_ax) == ["train loss", "test loss"]
    assert labels(acc_ax) == ["train acc", "test acc"]
    np.testing.assert_allclose(loss_ax.get_lines()[0].get_ydata(), history.train_loss)
    np.testing.assert_allclose(acc_ax.get_lines()[1].get_xdata(), [1, 2, 3])
    assert loss_ax.get_xlabel() == "epoch" and acc_ax.get_ylabel() == "accuracy"
    assert loss_ax.get_title() and acc_ax.get_title()


def test_plot_history_without_test_data_and_on_given_axes():
    fig = plot_history(make_history(with_test=False).as_dict())  # a dict works too
    assert [labels(ax) for ax in fig.axes] == [["train loss"], ["train acc"]]
    fig, ax = plt.subplots()
    assert plot_history(make_history(), ax=ax) is fig
    assert labels(ax) == ["train loss", "test loss", "train acc", "test acc"]
    fig, axes = plt.subplots(1, 2)
    plot_history(make_history(), ax=axes)
    assert labels(axes[1]) == ["train acc", "test acc"]


def test_loss_axis_starts_at_zero_so_a_flat_run_looks_flat():
    flat = History()
    for epoch in (1, 2, 3):  # a run at the plateau: losses within a thousandth of ln(10)
        flat.append(epoch=epoch, train_loss=2.3026 + 0.0005 * epoch, train_acc=0.1,
                    test_loss=2.3026, test_acc=0.1, examples_per_sec=1.0, seconds=1.0)
    loss_ax = plot_history(flat, num_classes=10).axes[0]
    bottom, top = loss_ax.get_ylim()
    assert bottom == 0 and top >= 2.3026
    chance = [line for line in loss_ax.get_lines() if line.get_label().startswith("ln 10")]
    np.testing.assert_allclose(chance[0].get_ydata(), math.log(10))
    assert "ln 10 (uniform guess)" not in labels(plot_history(flat).axes[0])


def test_live_plot_does_nothing_outside_a_notebook():
    assert not in_notebook()
    live = LivePlot()
    assert not live.active
    live.update(make_history())
    live.update(History())
    assert plt.get_fignums() == []


def test_live_plot_updates_one_output_in_a_notebook(monkeypatch):
    shown = []

    class Handle:
        def update(self, image):
            shown.append(("update", image))

    def display(image, display_id=False):
        assert display_id
        shown.append(("display", image))
        return Handle()
    monkeypatch.setattr(plots, "in_notebook", lambda: True)
    monkeypatch.setattr("IPython.display.display", display)
    live = LivePlot()
    live.update(make_history(1))
    live.update(make_history(2))
    assert [what for what, _ in shown] == ["display", "update"]
    assert all(image.data.startswith(b"\x89PNG") for _, image in shown)
    assert plt.get_fignums() == []  # each figure closed once displayed
    assert not LivePlot(enabled=False).active


def test_show_images_float_nchw_with_class_names():
    X = torch.randn(5, 1, 8, 8)  # normalised: values outside [0, 1]
    fig = show_images(X, labels=torch.tensor([0, 1, 2, 1, 0]), classes=["a", "b", "c"], ncols=3)
    assert len(fig.axes) == 6  # 2 rows of 3
    assert [ax.get_title() for ax in fig.axes[:5]] == ["a", "b", "c", "b", "a"]
    image = fig.axes[0].get_images()[0].get_array()
    assert image.shape == (8, 8) and 0 <= image.min() and image.max() <= 1


def test_show_images_uint8_nhwc_and_grey():
    X = np.random.default_rng(0).integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8)
    fig = show_images(X, labels=["cat", "dog", "cat", "dog"])
    assert [ax.get_title() for ax in fig.axes] == ["cat", "dog", "cat", "dog"]
    assert fig.axes[0].get_images()[0].get_array().shape == (8, 8, 3)
    fig = show_images(torch.zeros(2, 28, 28, dtype=torch.uint8))  # Fashion-MNIST's .data
    assert fig.axes[0].get_images()[0].get_array().shape == (28, 28)
    with pytest.raises(ValueError, match="batch"):
        show_images(torch.zeros(8, 8))
    with pytest.raises(ValueError, match="channels"):
        show_images(torch.zeros(2, 5, 8, 8))


def test_figure_png_is_a_png_of_the_figure_size():
    fig = plot_history(make_history())
    fig.set_size_inches(3, 2)
    png = figure_png(fig, dpi=50)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (150, 100)  # (3 in x 50 dpi, 2 in x 50 dpi): no tight bbox
