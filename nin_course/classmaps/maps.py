"""Class confidence maps: what the last mlpconv layer of a NIN sees, class by class (Fig. 4).

With global average pooling, the last mlpconv layer makes one map per class and the logit of
class c is the mean of map c (Lin et al. 2013, sec. 3.2), so map c shows *where* in the image
the evidence for class c lies. This module extracts the maps (`class_maps`), upsamples them to
the image (`upsample`), lays them over it (`overlay`), draws the paper's Fig. 4 for a few images
(`plot_class_maps`), averages where the evidence lies over many images
(`mean_true_and_other_maps`). `ui.widgets.ClassMapViewer` browses them interactively.
"""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.nn import functional as F

from ..data.loaders import resize_images
from ..modes import evaluating


def class_maps(model, X):
    """The last mlpconv's maps, one per class: (N, C, H, W) -> (N, num_classes, h, w).

    `model` is an ImageClassifier (NiN, CifarNiN ...): the maps are `model.features(X)`, taken
    in eval mode (dropout off) without gradients; the model's mode is restored afterwards. With
    a 'gap' head, `class_maps(model, X).mean(dim=(2, 3))` is exactly `model(X)`.
    """
    if not hasattr(model, "features") or not hasattr(model, "num_classes"):
        raise ValueError(f"class_maps needs a NIN with .features and .num_classes (NiN, CifarNiN); "
                         f"got {type(model).__name__}")
    model.check_input(X)
    with evaluating(model):
        maps = model.features(X)  # (N, num_classes, h, w)
    if maps.ndim != 4 or maps.shape[1] != model.num_classes:
        raise ValueError(f"the last layer of {type(model).__name__} gives maps of shape "
                         f"{tuple(maps.shape)}, not one map per class ({model.num_classes})")
    return maps


def upsample(maps, size):
    """Bilinear upsampling of maps to `size` (an int or (H, W)): (..., h, w) -> (..., H, W).

    Takes one map (h, w), the maps of one image (K, h, w) or a batch (N, K, h, w), as float32;
    each map is resized on its own by `loaders.resize_images` (at the same size: the maps).
    """
    maps = torch.as_tensor(maps, dtype=torch.float32)
    if maps.ndim not in (2, 3, 4):
        raise ValueError(f"upsample takes maps (h, w), (K, h, w) or (N, K, h, w); got shape "
                         f"{tuple(maps.shape)}")
    batch = maps.reshape(-1, 1, *maps.shape[-2:])  # every map as its own one-channel image
    big = resize_images(batch, size)  # (N * K, 1, H, W)
    return big.reshape(*maps.shape[:-2], *big.shape[-2:])


def image_hwc(image):
    """One image as a float array (H, W, 3) in [0, 1]: from uint8 (H, W, C) or float (C, H, W)."""
    image = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = image.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"expected one image (H, W, C) or (C, H, W) with 1 or 3 channels; got "
                         f"shape {image.shape}")
    image = image.astype(np.float32) / 255 if image.dtype == np.uint8 else image.astype(np.float32)
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else np.clip(image, 0, 1)


def overlay(image, heat, alpha=0.5, cmap="jet", vmax=None):
    """`heat` (h, w), upsampled to the image, coloured and blended over it: (H, W, 3) in [0, 1].

    image: uint8 (H, W, C) or float (C, H, W) in [0, 1]. The colours run from 0 to `vmax`
    (default: the map's maximum); give several maps the same vmax to compare them. alpha is the
    weight of the colours. Only positive evidence is coloured: the maps of NiN and CifarNiN come
    out of a ReLU, so 0 is "no evidence" there, but a network without a last ReLU (FashionNiN,
    `last_relu=False`) also has negative values, evidence against the class, which this shows
    as 0 (plot -heat to see them).
    """
    rgb = image_hwc(image)
    heat = upsample(heat, rgb.shape[:2]).cpu().numpy()  # (H, W)
    top = float(heat.max()) if vmax is None else float(vmax)
    scaled = np.clip(heat / top, 0, 1) if top > 0 else np.zeros_like(heat)
    colours = matplotlib.colormaps[cmap](scaled)[..., :3]  # (H, W, 3)
    return (1 - alpha) * rgb + alpha * colours


def top_activations(maps, fraction=0.1):
    """Keep the largest `fraction` of each image's map values, 0 elsewhere, as the paper's
    Fig. 4 shows them ("only top 10% activations"): (N, K, h, w) -> (N, K, h, w). The cut is
    per image, over all K maps and positions together, so the classes stay comparable."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], e.g. 0.1 for the top 10%; got {fraction}")
    maps = torch.as_tensor(maps, dtype=torch.float32)
    flat = maps.reshape(len(maps), -1)
    cut = torch.quantile(flat, 1 - fraction, dim=1).reshape(-1, *[1] * (maps.ndim - 1))
    return torch.where(maps >= cut, maps, torch.zeros_like(maps))


def plot_class_maps(images, maps, classes, labels=None, alpha=0.5, cmap="jet", top=None):
    """The paper's Fig. 4: each image, then its map for every class laid over it. A Figure.

    images: N images, uint8 (N, H, W, C) or float (N, C, H, W); maps: (N, K, h, w) from
    `class_maps`; classes: K names; labels: N true classes (their column is framed). The maps
    of one image share one colour scale, so the brightest column is the strongest class.
    top=0.1 shows only each image's top 10% of activations, as the paper's figure does. End
    the cell with plt.show() to display it.
    """
    maps = torch.as_tensor(maps).cpu()
    if top is not None:
        maps = top_activations(maps, top)
    N, K = maps.shape[:2]
    fig, axes = plt.subplots(N, K + 1, figsize=(1.1 * (K + 1), 1.25 * N), squeeze=False,
                             layout="constrained")
    for i in range(N):
        axes[i, 0].imshow(image_hwc(images[i]))
        if labels is not None:
            axes[i, 0].set_title(str(classes[int(labels[i])]), fontsize=8)
        top = float(maps[i].max())
        for k in range(K):
            ax = axes[i, k + 1]
            ax.imshow(overlay(images[i], maps[i, k], alpha, cmap, vmax=top))
            if i == 0:
                ax.set_title(str(classes[k]), fontsize=8)
            if labels is not None and k == int(labels[i]):
                ax.patch.set_edgecolor("lime")  # frame the true class
                ax.patch.set_linewidth(4)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[:, 0]:
        ax.axis("off")
    return fig


def mean_true_and_other_maps(maps, labels):
    """Where the evidence lies on average: (mean true-class map, mean other-class map), each (h, w).

    maps: (N, K, h, w) from `class_maps`; labels: N true classes. Each map is divided by its
    maximum first, so that every map counts alike whatever its scale; maps whose maximum is
    <= 0 (a ReLU map that is 0 everywhere) are left out: they say nothing about where. A mean
    over no maps is NaN everywhere.
    """
    maps = torch.as_tensor(maps, dtype=torch.float32).cpu()
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    if maps.ndim != 4 or labels.shape != maps.shape[:1]:
        raise ValueError(f"expected maps (N, K, h, w) and N labels; got maps of shape "
                         f"{tuple(maps.shape)} and labels of shape {tuple(labels.shape)}")
    peaks = maps.amax(dim=(2, 3))  # (N, K)
    scaled = maps / peaks[:, :, None, None].clamp_min(1e-12)  # every live map's maximum is 1
    is_true = F.one_hot(labels, maps.shape[1]).bool()  # (N, K)
    live = peaks > 0
    return scaled[is_true & live].mean(dim=0), scaled[~is_true & live].mean(dim=0)
