"""nin_course.ui.toys: the XOR strip follows its rule, defeats a linear filter, not an mlpconv."""
import matplotlib
import pytest
import torch
from torch import nn

from nin_course.layers import MLPConv, conv1x1
from nin_course.ui.toys import (PATCH_SIZE, accuracy, best_line_accuracy, patch_grid, patches,
                                plot_decision_boundaries, train_full_batch, xor_labels, xor_strips)

matplotlib.use("Agg")


def test_shapes_and_value_range():
    X, y = xor_strips(5, width=7)
    assert X.shape == (5, 1, 1, 7) and y.shape == (5, 1, 1, 6)
    assert X.min() >= -1 and X.max() < 1
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    assert patches(X).shape == (5 * 6, 2)


def test_labels_follow_the_rule():
    X, y = xor_strips(50, width=9, seed=3)
    for n, j in [(0, 0), (7, 3), (49, 7)]:
        a, b = X[n, 0, 0, j].item(), X[n, 0, 0, j + 1].item()
        assert y[n, 0, 0, j].item() == float((a > 0) == (b > 0))
    # patches() lists the pixel pairs in the order of the labels
    torch.testing.assert_close(xor_labels(patches(X)[:, None, None, :]).reshape(-1), y.reshape(-1))
    balance = xor_strips(1000, width=9, seed=3)[1].mean().item()
    assert 0.47 < balance < 0.53, f"the classes should be balanced; {balance:.3f} are 1"


def test_seeding_is_local_and_repeatable():
    torch.manual_seed(1)
    X1, y1 = xor_strips(4, seed=7)
    torch.manual_seed(2)
    X2, y2 = xor_strips(4, seed=7)
    torch.testing.assert_close(X1, X2)
    torch.testing.assert_close(y1, y2)
    assert not torch.equal(X1, xor_strips(4, seed=8)[0])


def test_too_narrow_raises():
    with pytest.raises(ValueError, match="width"):
        xor_strips(3, width=1)


def test_no_line_separates_the_classes():
    """The best straight line gets about 2/3 right (uniform XOR), a fitted linear filter less."""
    X, y = xor_strips(256, seed=0)
    best = best_line_accuracy(patches(X), y.reshape(-1))
    assert 0.6 < best < 0.72, best
    torch.manual_seed(0)
    linear = nn.Conv2d(1, 1, PATCH_SIZE)  # logistic regression on each 2-pixel patch
    train_full_batch(linear, X, y, num_steps=200)
    assert accuracy(linear, X, y) < 0.7


def test_an_mlpconv_separates_the_classes():
    X, y = xor_strips(128, seed=0)
    Xt, yt = xor_strips(128, seed=1)
    torch.manual_seed(0)
    model = nn.Sequential(MLPConv(1, (16, 16), PATCH_SIZE), conv1x1(16, 1))
    losses = train_full_batch(model, X, y, num_steps=200)
    assert losses[-1] < losses[0] / 4
    assert accuracy(model, Xt, yt) > 0.9


def test_training_is_deterministic():
    X, y = xor_strips(16, seed=0)
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model = nn.Sequential(MLPConv(1, (4,), PATCH_SIZE), conv1x1(4, 1))
        results.append(train_full_batch(model, X, y, num_steps=20))
    assert results[0] == results[1]


def test_patch_grid_orientation():
    images, u, v = patch_grid(resolution=3)
    assert images.shape == (9, 1, 1, 2)
    # row i, column j of the grid is the image (u[j], v[i]), as contourf(u, v, Z) reads it
    torch.testing.assert_close(images[1 * 3 + 2, 0, 0], torch.tensor([u[2], v[1]]))


def test_plot_decision_boundaries_draws_one_panel_per_model():
    X, y = xor_strips(8, seed=0)
    models = {"linear": nn.Conv2d(1, 1, PATCH_SIZE), "also linear": nn.Conv2d(1, 1, PATCH_SIZE)}
    fig = plot_decision_boundaries(models, X, y, resolution=11)
    titles = [ax.get_title() for ax in fig.axes]
    assert "linear" in titles and "also linear" in titles
    matplotlib.pyplot.close(fig)


def test_training_runs_on_one_thread_and_restores_the_count():
    before = torch.get_num_threads()
    X, y = xor_strips(4, seed=0)
    seen = []

    class Spy(nn.Conv2d):
        def forward(self, X):
            seen.append(torch.get_num_threads())
            return super().forward(X)

    train_full_batch(Spy(1, 1, PATCH_SIZE), X, y, num_steps=2)
    assert seen == [1, 1] and torch.get_num_threads() == before
