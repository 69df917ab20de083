"""Do NIN's class maps find the object? Objects at known places, and three ways to score a map.

Lin et al. (2013, sec. 4.7 and Fig. 4) show that the class maps of the last mlpconv light up
where the object is, although the network was trained on labels alone. To measure it we need
images whose object boxes are known: `place_on_canvas` pastes each Fashion-MNIST item at a
random position on a larger blank canvas and records the tight box of its pixels, and
`canvas_arrays` does so for a whole data set (`canvas_data` by the name a RunSpec gives it, e.g.
'fashion-mnist-canvas64'). A map of one class per image, upsampled to the canvas
(`true_class_maps`), is then scored against the box:

- `pointing_game`: is the map's maximum inside the box?
- `energy_in_box`: what share of the map's positive mass lies inside the box?
- `cam_box_iou`, `cam_localisation_rate`: the box that CAM (Zhou et al. 2016) draws around the
  map's largest bright region, and its overlap with the true box;

and `localisation_table` puts the scores of several sets of maps side by side (a trained
network, an untrained one, and `random_maps`, the chance baseline). `plot_localisation` draws
images with their true boxes, and maps over them with the boxes CAM finds.

Boxes are int64 (N, 4) rows (top, left, bottom, right) in canvas pixels with exclusive ends, as
Python slices: the object of image i is canvas[i, top:bottom, left:right].
"""
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from scipy import ndimage

from ..data.arrays import ImageArrays, load_arrays
from .maps import image_hwc, class_maps, overlay, upsample

# 8-connectivity: pixels that touch at a corner are one region, as for the outlines that
# OpenCV's findContours traces (used by CAM's released box generator and by later WSOL benchmarks).
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


# --- objects on a canvas -------------------------------------------------------------------------

def place_on_canvas(images, canvas_size=64, seed=0):
    """Paste each image at a uniformly random position on a blank square canvas.

    images: uint8 grayscale (N, H, W) or (N, H, W, 1), black (0) background. Returns
    (canvases uint8 (N, S, S, 1), boxes int64 (N, 4)) with S = canvas_size: the box of image i
    is the tight box (top, left, bottom, right), ends exclusive, of its nonzero pixels on the
    canvas, not the H x W frame, which Fashion-MNIST items do not fill. The top-left corner of
    the frame is drawn uniformly from the (S - H + 1) x (S - W + 1) positions that keep it whole,
    with np.random.default_rng(seed) (`seed` is anything that function takes), so the same seed
    gives the same canvases.
    """
    x = _check_grayscale(images)  # (N, H, W)
    N, H, W = x.shape
    if not isinstance(canvas_size, (int, np.integer)) or canvas_size < max(H, W):
        raise ValueError(f"canvas_size must be an int at least as large as the images ({H}x{W}); "
                         f"got {canvas_size!r}")
    rng = np.random.default_rng(seed)
    tops = rng.integers(0, canvas_size - H + 1, size=N)
    lefts = rng.integers(0, canvas_size - W + 1, size=N)
    canvases = np.zeros((N, canvas_size, canvas_size, 1), dtype=np.uint8)
    for i in range(N):
        canvases[i, tops[i]:tops[i] + H, lefts[i]:lefts[i] + W, 0] = x[i]
    offsets = np.stack([tops, lefts, tops, lefts], axis=1)
    return canvases, (offsets + tight_boxes(x)).astype(np.int64)


def _check_grayscale(images):
    """uint8 (N, H, W) or (N, H, W, 1) -> (N, H, W), or a ValueError that says what is wrong."""
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.dtype != np.uint8 or x.ndim != 3:
        raise ValueError(f"place_on_canvas takes uint8 grayscale images (N, H, W) or (N, H, W, 1);"
                         f" got {x.dtype} of shape {np.shape(images)}. Convert floats with "
                         "(x * 255).round().astype(np.uint8); colour images have no black "
                         "background to place on a canvas")
    return x


def tight_boxes(images):
    """The box of each image's nonzero pixels: uint8 (N, H, W) -> int64 (N, 4), ends exclusive.

    Raises a ValueError for a blank image: it has no object to find.
    """
    nonzero = np.asarray(images) != 0  # (N, H, W)
    rows, cols = nonzero.any(axis=2), nonzero.any(axis=1)  # (N, H), (N, W)
    blank = np.flatnonzero(~rows.any(axis=1))
    if len(blank):
        raise ValueError(f"{len(blank)} image(s) are blank (no nonzero pixel), e.g. index "
                         f"{blank[0]}: they hold no object whose box could be found")
    H, W = rows.shape[1], cols.shape[1]
    top, left = rows.argmax(axis=1), cols.argmax(axis=1)  # first nonzero row, column
    bottom = H - rows[:, ::-1].argmax(axis=1)  # one past the last nonzero row
    right = W - cols[:, ::-1].argmax(axis=1)
    return np.stack([top, left, bottom, right], axis=1).astype(np.int64)


@dataclass(frozen=True)
class CanvasData:
    """A data set placed on canvases (`canvas_arrays`): the arrays and the object boxes.

    arrays: ImageArrays with images (N, S, S, 1); train_boxes, test_boxes: int64 (N, 4) as
    (top, left, bottom, right), ends exclusive, one per image of x_train and x_test.
    """
    arrays: ImageArrays
    train_boxes: np.ndarray
    test_boxes: np.ndarray


def canvas_arrays(arrays, canvas_size=64, seed=0):
    """`arrays` (grayscale ImageArrays) with every image placed on a canvas: a CanvasData.

    The train and test splits are placed with two independent streams spawned from `seed`
    (np.random.SeedSequence(seed).spawn(2)), so their positions differ and both are
    reproducible. The labels and classes are those of `arrays`; its name gets "-canvas<S>".
    """
    train_seed, test_seed = np.random.SeedSequence(seed).spawn(2)
    x_train, train_boxes = place_on_canvas(arrays.x_train, canvas_size, train_seed)
    x_test, test_boxes = place_on_canvas(arrays.x_test, canvas_size, test_seed)
    placed = ImageArrays(f"{arrays.name}-canvas{canvas_size}", x_train, arrays.y_train, x_test,
                         arrays.y_test, arrays.classes,
                         source=f"{arrays.source or arrays.name}, placed on {canvas_size}x"
                                f"{canvas_size} canvases (seed {seed})")
    return CanvasData(placed, train_boxes, test_boxes)


def canvas_data(name, root=None):
    """The data set that a RunSpec names '<data set>-canvas<S>', with its boxes: a CanvasData.

    The same images as spec.load_dataset(name) (canvas_arrays with seed 0), and the boxes that
    say where each object is. E.g. canvas_data('fashion-mnist-canvas64').
    """
    if not is_canvas_name(name):
        raise ValueError(f"{name!r} names no canvas data set; canvas data sets are called "
                         "'<data set>-canvas<S>', e.g. 'fashion-mnist-canvas64'")
    base, _, size = name.rpartition("-canvas")
    return canvas_arrays(load_arrays(base, root), int(size))


def is_canvas_name(name):
    """True for a name of the form '<data set>-canvas<S>' (S a whole number)."""
    base, canvas, size = name.rpartition("-canvas")
    return bool(canvas and base and size.isdigit())


# --- maps and boxes ------------------------------------------------------------------------------

def true_class_maps(model, X, y, batch_size=256):
    """The map of class y[i] for each image, upsampled to the input: float32 (N, S, S) on the CPU.

    model: an ImageClassifier (see classmaps.class_maps: eval mode, no gradients); X: inputs
    (N, C, S, S) prepared as in training; y: (N,) the class whose map to take per image (the
    labels, or the predictions). `upsample` stretches the h x w maps bilinearly over the image
    (align_corners=False), so each map cell covers an S/h x S/w patch. Taken batch_size images
    at a time, on the model's device.
    """
    y = torch.as_tensor(y, dtype=torch.long)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} images but y has {len(y)} classes; give one per image")
    device = next(model.parameters()).device
    size = tuple(X.shape[-2:])
    out = []
    for start in range(0, len(X), batch_size):
        maps = class_maps(model, X[start:start + batch_size].to(device))  # (B, K, h, w)
        chosen = maps[torch.arange(len(maps)), y[start:start + batch_size].to(device)]  # (B, h, w)
        out.append(upsample(chosen, size).cpu())  # (B, S, S)
    return torch.cat(out)


def random_maps(n, size, seed=0):
    """The chance baseline: i.i.d. uniform [0, 1) maps, float32 (n, size, size).

    What each score gives for them, with a the box area / size**2 (averaged over images):
    - pointing game: a (the maximum is at a uniformly random pixel);
    - energy in box: a, exactly (every pixel has the same expected share of the total);
    - CAM box: the pixels >= 0.2 * max are about 80% of the canvas and form one region spanning
      it, so the box is (nearly) the whole canvas: IoU about a, and an IoU >= 0.5 rate of 0
      whenever boxes cover less than half the canvas.
    """
    return np.random.default_rng(seed).random((n, size, size), dtype=np.float32)


def box_masks(boxes, size):
    """Each box as a mask of the canvas: int (N, 4) -> bool (N, size, size), True inside."""
    boxes = np.asarray(boxes)
    pixels = np.arange(size)
    in_rows = (pixels >= boxes[:, :1]) & (pixels < boxes[:, 2:3])  # (N, size)
    in_cols = (pixels >= boxes[:, 1:2]) & (pixels < boxes[:, 3:4])
    return in_rows[:, :, None] & in_cols[:, None, :]


def box_area_fraction(boxes, size):
    """Share of the size x size canvas each box covers: (N, 4) -> float64 (N,)."""
    boxes = np.asarray(boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / size ** 2


def box_iou(boxes_a, boxes_b):
    """Intersection over union of paired boxes (ends exclusive): (N, 4), (N, 4) -> (N,).

    Two empty boxes have IoU 0.
    """
    a, b = np.asarray(boxes_a, dtype=np.int64), np.asarray(boxes_b, dtype=np.int64)
    height = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    width = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = height * width
    union = _area(a) + _area(b) - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def _area(boxes):
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def _as_maps(maps):
    """maps, tensor or array, as a float numpy array (N, S, S), or a ValueError."""
    if isinstance(maps, torch.Tensor):
        maps = maps.detach().cpu().numpy()
    maps = np.asarray(maps)
    maps = maps if np.issubdtype(maps.dtype, np.floating) else maps.astype(np.float64)
    if maps.ndim != 3 or maps.shape[1] != maps.shape[2] or len(maps) == 0:
        raise ValueError(f"maps must be (N, S, S) with N >= 1, one square map per image upsampled "
                         f"to the canvas; got shape {maps.shape}. Take one class per image first")
    return maps


def _check_maps(maps, boxes):
    """maps (N, S, S) as a float numpy array and boxes as int64 (N, 4), or a ValueError."""
    maps, boxes = _as_maps(maps), np.asarray(boxes)
    if boxes.shape != (len(maps), 4) or not np.issubdtype(boxes.dtype, np.integer):
        raise ValueError(f"boxes must be integers (N, 4) = ({len(maps)}, 4), one (top, left, "
                         f"bottom, right) per map; got {boxes.dtype} of shape {boxes.shape}")
    S = maps.shape[1]
    if len(boxes) and ((boxes[:, :2] < 0).any() or (boxes[:, 2:] > S).any()
                       or (boxes[:, 2:] <= boxes[:, :2]).any()):
        raise ValueError(f"every box must lie in the {S}x{S} maps with top < bottom and "
                         "left < right (ends exclusive); were the maps upsampled to the canvas?")
    if not np.isfinite(maps).all():
        raise ValueError("maps hold NaN or infinite values: a diverged network has no maps to "
                         "score")
    return maps, boxes.astype(np.int64)


# --- scores ---------------------------------------------------------------------------------------

def pointing_game(maps, boxes):
    """Fraction of images whose map has its maximum inside the box.

    The pointing game of Zhang et al. (2016), without their 15-pixel tolerance around the box.

    maps: (N, S, S) float, tensor or array; boxes: (N, 4). Ties go to the first maximum in
    row-major order (np.argmax), so a flat map (all equal, e.g. a dead map of zeros) points at
    the top-left pixel and counts as a miss unless the box holds it.
    """
    maps, boxes = _check_maps(maps, boxes)
    S = maps.shape[1]
    rows, cols = np.divmod(maps.reshape(len(maps), -1).argmax(axis=1), S)
    inside = ((boxes[:, 0] <= rows) & (rows < boxes[:, 2])
              & (boxes[:, 1] <= cols) & (cols < boxes[:, 3]))
    return float(inside.mean())


def energy_in_box(maps, boxes):
    """Mean over images of the share of the map's positive mass that lies inside the box.

    maps: (N, S, S) float, tensor or array; boxes: (N, 4). Per image: sum of max(map, 0) in
    the box / sum of max(map, 0) over the canvas; a map with no positive value scores 0.
    """
    maps, boxes = _check_maps(maps, boxes)
    positive = np.clip(maps, 0, None)
    total = positive.sum(axis=(1, 2), dtype=np.float64)  # (N,)
    in_box = box_masks(boxes, maps.shape[1])  # (N, S, S)
    inside = np.where(in_box, positive, 0).sum(axis=(1, 2), dtype=np.float64)
    share = np.divide(inside, total, out=np.zeros_like(total), where=total > 0)
    return float(share.mean())


def cam_boxes(maps, threshold=0.2):
    """CAM's box for each map: (N, S, S) -> int64 (N, 4) (top, left, bottom, right), ends exclusive.

    The protocol of CAM (Zhou et al. 2016, "Learning Deep Features for Discriminative
    Localization"): keep the pixels >= threshold * the map's maximum, take the largest
    8-connected region (ties: the region met first in row-major order) and return its bounding
    box. A map whose maximum is <= 0 has no region and gets the empty box (0, 0, 0, 0).
    """
    maps = _as_maps(maps)
    boxes = np.zeros((len(maps), 4), dtype=np.int64)
    for i, heat in enumerate(maps):
        top = heat.max()
        if top <= 0:
            continue
        regions, count = ndimage.label(heat >= threshold * top, structure=EIGHT_CONNECTED)
        sizes = np.bincount(regions.ravel(), minlength=count + 1)[1:]  # pixels of regions 1..count
        rows, cols = ndimage.find_objects(regions)[int(sizes.argmax())]
        boxes[i] = rows.start, cols.start, rows.stop, cols.stop
    return boxes


def cam_box_iou(maps, boxes, threshold=0.2):
    """IoU of CAM's box (`cam_boxes`) with the true box, per image: float64 (N,).

    maps: (N, S, S) float, tensor or array; boxes: (N, 4). A map that is <= 0 everywhere gets 0.
    """
    maps, boxes = _check_maps(maps, boxes)
    return box_iou(cam_boxes(maps, threshold), boxes)


def cam_localisation_rate(maps, boxes, threshold=0.2, min_iou=0.5):
    """Fraction of images whose CAM box has IoU >= min_iou with the true box (CAM's criterion)."""
    return float((cam_box_iou(maps, boxes, threshold) >= min_iou).mean())


def localisation_table(maps_by_name, boxes, threshold=0.2, min_iou=0.5):
    """The scores of several sets of maps for the same boxes: a DataFrame, one row per name.

    maps_by_name: {"trained": maps, "untrained": maps, "random": maps, ...}, each (N, S, S);
    boxes: (N, 4). Columns: pointing game, energy in box, mean CAM IoU, the rate of CAM
    IoU >= min_iou, the mean box area fraction (the chance level of the first two) and the
    number of images.
    """
    rows = {}
    for name, maps in maps_by_name.items():
        maps, checked = _check_maps(maps, boxes)
        iou = cam_box_iou(maps, checked, threshold)
        rows[name] = {"pointing game": pointing_game(maps, checked),
                      "energy in box": energy_in_box(maps, checked),
                      "mean IoU": float(iou.mean()),
                      f"IoU>={min_iou} rate": float((iou >= min_iou).mean()),
                      "box area fraction": float(box_area_fraction(checked, maps.shape[1]).mean()),
                      "images": len(maps)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("maps")


# --- pictures -------------------------------------------------------------------------------------

TRUE_BOX = {"edgecolor": "lime", "linewidth": 1.5}
FOUND_BOX = {"edgecolor": "red", "linewidth": 1.5, "linestyle": "--"}


def plot_localisation(images, boxes, rows=None, titles=None, threshold=0.2, alpha=0.5):
    """Images with their true boxes and, below them, maps over the images with CAM's boxes.

    images: N images, uint8 (N, S, S, C) or float (N, C, S, S); boxes: their true boxes, int
    (N, 4) (top, left, bottom, right), ends exclusive (lime); titles: N strings over the first
    row. rows: {name: maps (N, h, w)}: one more row per entry, named on the left: each map
    upsampled and laid over its image (`overlay`: colours from 0 to the map's own maximum,
    negative values uncoloured), with the true box and the box `cam_boxes(maps, threshold)`
    finds (red, dashed), their IoU over the panel ("no box" for a map with no positive
    value). Returns the Figure; end the cell with plt.show().
    """
    boxes, rows = np.asarray(boxes), dict(rows or {})
    N, S = len(images), image_hwc(images[0]).shape[0]
    fig, axes = plt.subplots(1 + len(rows), N, figsize=(1.45 * N, 1.6 * (1 + len(rows)) + 0.3),
                             squeeze=False, layout="constrained")
    for i in range(N):
        axes[0, i].imshow(image_hwc(images[i]))
        _draw_box(axes[0, i], boxes[i], TRUE_BOX)
        if titles is not None:
            axes[0, i].set_title(str(titles[i]), fontsize=9)
    for r, (name, maps) in enumerate(rows.items(), start=1):
        maps = upsample(maps, S)  # (N, S, S): boxes in image pixels
        found = cam_boxes(maps, threshold)
        iou = box_iou(found, boxes)
        for i in range(N):
            axes[r, i].imshow(overlay(images[i], maps[i], alpha))
            _draw_box(axes[r, i], boxes[i], TRUE_BOX)
            _draw_box(axes[r, i], found[i], FOUND_BOX)
            empty = found[i, 2] <= found[i, 0]  # a map with no positive value: no box
            axes[r, i].set_title("no box (map <= 0)" if empty else f"IoU {iou[i]:.2f}",
                                 fontsize=9)
        axes[r, 0].set_ylabel(name, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Line2D([], [], color="lime", label="true box")]
    if rows:
        handles.append(Line2D([], [], color="red", linestyle="--",
                              label=f"CAM box (threshold {threshold:g} x max)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9,
               frameon=False)
    return fig


def _draw_box(ax, box, style):
    """A box (top, left, bottom, right), ends exclusive, around its pixels; none if empty."""
    top, left, bottom, right = (int(v) for v in box)
    if bottom > top and right > left:  # pixel k spans k - 0.5 .. k + 0.5 in imshow
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top,
                               fill=False, **style))
