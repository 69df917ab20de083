"""Small synthetic problems for the lessons, and a picture of what a model learned on them.

The XOR strip (lesson 02): one-row, one-channel images whose label at each position says
whether two neighbouring pixels have the same sign. The label is a function of a 2-pixel
receptive field that no straight line can separate (the four quadrants of XOR), so a single
linear filter, the "generalized linear model" of Lin et al. 2013 (sec. 1), cannot learn it,
while an mlpconv with the same receptive field can. With 2-pixel patches the decision boundary
lives in a plane and can be drawn (`plot_decision_boundaries`).
"""
import math
from contextlib import contextmanager

import matplotlib.pyplot as plt
import torch
from torch import nn

from ..layers import unfold_patches
from ..modes import evaluating

PATCH_SIZE = (1, 2)  # the receptive field of the XOR strip: two neighbouring pixels in a row


def xor_strips(num_images, width=9, seed=0):
    """Random one-row images and their per-position XOR labels.

    Returns X of shape (num_images, 1, 1, width), pixels uniform in [-1, 1), and y of shape
    (num_images, 1, 1, width - 1) with y[..., j] = 1.0 where pixels j and j + 1 have the same
    sign, else 0.0. The same seed gives the same data, whatever the global random state.
    """
    if width < 2:
        raise ValueError(f"width must be at least 2 pixels (one 2-pixel patch); got {width!r}")
    generator = torch.Generator().manual_seed(seed)
    X = 2 * torch.rand(num_images, 1, 1, width, generator=generator) - 1
    return X, xor_labels(X)


def xor_labels(X):
    """The rule: 1.0 where neighbouring pixels share a sign, (N, 1, 1, W) -> (N, 1, 1, W - 1)."""
    return (X[..., :-1] * X[..., 1:] > 0).float()


def patches(X):
    """Every 2-pixel patch of the strips as a point in the plane: (N, 1, 1, W) -> (N*(W-1), 2)."""
    return unfold_patches(X, PATCH_SIZE).reshape(-1, 2)  # (N, W-1, 2) -> (N*(W-1), 2)


def train_full_batch(model, X, y, num_steps=300, lr=0.05):
    """Fit per-position logits model(X) to 0/1 labels y with Adam on the whole set at once.

    `model` maps (N, 1, 1, W) to (N, 1, 1, W - 1) logits. No shuffling and no sampling, so the
    result depends only on the model's initial weights. Runs on one CPU thread (see
    `single_thread`). Returns the loss after each step.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    losses = []
    model.train()
    with single_thread():
        for _ in range(num_steps):
            loss = loss_fn(model(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    model.eval()
    return losses


@contextmanager
def single_thread():
    """torch on one CPU thread inside the block, the previous thread count restored after.

    Toy problems are a few thousand numbers: handing them to a thread pool costs more than it
    saves (many times more on a busy machine), and one thread gives the same sums everywhere.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@torch.no_grad()
def accuracy(model, X, y):
    """Fraction of positions where the sign of the logit model(X) matches the label y."""
    return ((model(X) > 0).float() == y).float().mean().item()


def best_line_accuracy(points, labels, num_angles=180, num_offsets=81):
    """The best accuracy of any straight-line boundary a*u + b*v = c found by a grid search.

    points: (M, 2) patches, labels: (M,) 0/1. Every direction (angle on a `num_angles` grid)
    and offset (`num_offsets` values in [-1.5, 1.5]) is tried, with both sides as class 1.
    This is an upper bound on what one linear filter with a 2-pixel receptive field can reach.
    """
    angles = torch.arange(num_angles) * (math.pi / num_angles)
    normals = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)  # (A, 2)
    offsets = torch.linspace(-1.5, 1.5, num_offsets)                        # (O,)
    projections = points @ normals.T                                        # (M, A)
    above = projections[:, :, None] > offsets                               # (M, A, O)
    agree = (above == labels.bool()[:, None, None]).float().mean(dim=0)     # (A, O)
    return torch.maximum(agree, 1 - agree).max().item()


def patch_grid(resolution=201, limit=1.0):
    """A resolution x resolution grid of 2-pixel images covering [-limit, limit]^2.

    Returns (images of shape (resolution**2, 1, 1, 2), u, v), u and v the (resolution,)
    coordinates of the first and the second pixel.
    """
    u = torch.linspace(-limit, limit, resolution)
    U, V = torch.meshgrid(u, u, indexing="xy")  # (resolution, resolution), V varies along rows
    images = torch.stack([U.reshape(-1), V.reshape(-1)], dim=1)[:, None, None, :]
    return images, u, u


@torch.no_grad()
def plot_decision_boundaries(models, X, y, resolution=201, max_points=400):
    """One panel per model: its P(label 1) over the plane of 2-pixel patches, and the data.

    `models` maps a title to a model taking (N, 1, 1, 2) images to (N, 1, 1, 1) logits (any
    model trained on `xor_strips`). X, y are strips as `xor_strips` returns them; the first
    `max_points` of their patches are drawn, coloured by label. Returns the figure.
    """
    images, u, v = patch_grid(resolution)
    points, labels = patches(X)[:max_points], y.reshape(-1)[:max_points]
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 4),
                             layout="constrained", squeeze=False)
    for ax, (title, model) in zip(axes[0], models.items()):
        with evaluating(model):
            prob = torch.sigmoid(model(images)).reshape(resolution, resolution)
        filled = ax.contourf(u, v, prob, levels=torch.linspace(0, 1, 11).tolist(),
                             cmap="RdBu_r", alpha=0.45)
        ax.contour(u, v, prob, levels=[0.5], colors="k", linewidths=1.5)
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="bwr", vmin=0, vmax=1, s=14,
                   edgecolors="white", linewidths=0.5)
        ax.set(title=title, xlabel="pixel j", ylabel="pixel j + 1", aspect="equal")
    fig.colorbar(filled, ax=axes[0].tolist(), label="P(same sign)", shrink=0.8)
    return fig
