"""Architecture diagrams of Network In Network, drawn with matplotlib alone.

- `linear_conv_vs_mlpconv()`: Fig. 1 of Lin et al. 2013, a linear convolution layer next to an
  mlpconv layer (the same local patch fed through a small MLP).
- `nin_overview()`: Fig. 2 of the paper, the whole network; the widths, kernels, pooling and map
  sizes are read from a model (by default the paper's CIFAR NIN, `CifarNiN()`), so the figure
  cannot disagree with the code.
- `vgg_block_vs_nin_block()`: Fig. 8.3.1 of d2l.ai, VGG and its block next to NiN and its block;
  the NiN side is read from `NiN()`.

Each function returns a `Diagram`, a `matplotlib.figure.Figure` built without pyplot, so nothing
is shown and nothing stays open in pyplot; `fig.savefig(...)` writes it, and in a notebook it shows
as a PNG when it is the last value of a cell, whichever backend is active. All three figures
colour layers the same way (`COLOURS`).
"""
import itertools

import matplotlib.colors as mcolors
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch, Polygon, Rectangle
from torch import nn

from ..layers import MLPConv
from ..models import VGG_ARCHS, VGG_WIDTHS, CifarNiN, NiN, shape_walk
from ..modes import evaluating
from .plots import figure_png

COLOURS = {"conv": "#9ecae1",  # a k x k convolution: a linear filter, then ReLU
           "mlp": "#fdae6b",   # 1x1 convolutions: the micro MLP of an mlpconv layer
           "pool": "#a1d99b",  # max or average pooling
           "head": "#cbc9e2",  # what turns maps into class scores: GAP, fully connected, softmax
           "data": "#e6e6e6"}  # inputs, feature maps, dropout, flatten
LEGEND = {"conv": "k x k convolution + ReLU", "mlp": "1x1 convolutions + ReLU (the micro MLP)",
          "pool": "pooling", "head": "classifier head", "data": "data, dropout"}
EDGE = "#404040"
VGG_FC_WIDTH = 4096  # VGG's two hidden fully connected layers (Simonyan & Zisserman; d2l.ai 8.2)


# ---------------------------------------------------------------- drawing primitives

class Diagram(Figure):
    """A Figure that a notebook shows as a PNG even before pyplot has set up its inline backend
    (a plain Figure made without pyplot would show as '<Figure size ...>')."""

    def _repr_png_(self):
        return figure_png(self, dpi=100)


def _canvas(figsize, ncols=1):
    """A Diagram with `ncols` Axes that have no frame, no ticks and equal x and y scales."""
    fig = Diagram(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.set_aspect("equal")
        ax.axis("off")
    return fig, axes


def _shade(colour, factor):
    """`colour` darkened by `factor` (1 keeps it), for the hidden faces of a box."""
    return tuple(factor * c for c in mcolors.to_rgb(colour))


def _arrow(ax, start, end, colour=EDGE):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=colour,
                                 lw=1.2, shrinkA=0, shrinkB=0, zorder=1))


def _box(ax, xy, text, kind, width, height=0.5, fontsize=9):
    """A rounded box in the colour of `kind`, centred on xy, with `text` in it."""
    x, y = xy
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, zorder=2,
                                boxstyle="round,pad=0,rounding_size=0.08", fc=COLOURS[kind],
                                ec=EDGE, lw=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=3)


def _tag(ax, xy, text, kind, fontsize=8):
    """Text in a rounded box of the colour of `kind`, sized to the text (labels on arrows)."""
    ax.text(*xy, text, ha="center", va="center", fontsize=fontsize, zorder=3,
            bbox={"boxstyle": "round,pad=0.3", "fc": COLOURS[kind], "ec": EDGE, "lw": 0.8})


def _cuboid(ax, x, side, thickness, colour):
    """Feature maps as a box: front face `thickness` (channels) x `side` (map height), centred
    on y = 0, receding by `side` (map width) at 45 degrees. Returns the x of its right end."""
    y, d = -side / 2, 0.35 * side  # d: the oblique projection of the map's width
    top, right = y + side, x + thickness
    ax.add_patch(Rectangle((x, y), thickness, side, fc=colour, ec=EDGE, lw=0.8))
    ax.add_patch(Polygon([(x, top), (right, top), (right + d, top + d), (x + d, top + d)],
                         fc=_shade(colour, 0.92), ec=EDGE, lw=0.8))
    ax.add_patch(Polygon([(right, y), (right + d, y + d), (right + d, top + d), (right, top)],
                         fc=_shade(colour, 0.8), ec=EDGE, lw=0.8))
    return right + d


def _colour_legend(fig, kinds, ncols=None):
    handles = [Patch(fc=COLOURS[k], ec=EDGE, label=LEGEND[k]) for k in kinds]
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols or len(kinds),
               fontsize=8.5, frameon=False)


# ---------------------------------------------------------------- Fig. 1 of the paper

def _slab(ax, origin, height, depth, colour, lines=6):
    """A feature map seen at an angle (a parallelogram with a pixel grid). Returns `at(u, v)`,
    the point at fraction u of its depth and v of its height."""
    (x0, y0), (dx, dy) = origin, depth

    def at(u, v):
        return x0 + u * dx, y0 + u * dy + v * height
    ax.add_patch(Polygon([at(0, 0), at(1, 0), at(1, 1), at(0, 1)], fc=colour, ec=EDGE, lw=1))
    for t in np.linspace(0, 1, lines + 1)[1:-1]:
        ax.plot(*zip(at(t, 0), at(t, 1)), color=EDGE, lw=0.3)
        ax.plot(*zip(at(0, t), at(1, t)), color=EDGE, lw=0.3)
    return at


def _patch_and_output(ax, output_x):
    """The input map with a local patch, and the output map with the point that patch gives.
    Returns the patch's corners and that point."""
    at_in = _slab(ax, (0.3, 0.3), 3.0, (1.6, 1.0), COLOURS["data"])
    corners = [at_in(u, v) for u, v in ((0.33, 0.4), (0.67, 0.4), (0.67, 0.7), (0.33, 0.7))]
    ax.add_patch(Polygon(corners, fc=COLOURS["conv"], ec=EDGE, lw=1.2, zorder=2))
    at_out = _slab(ax, (output_x, 0.3), 3.0, (1.6, 1.0), COLOURS["data"])
    point = at_out(0.5, 0.55)
    ax.add_patch(Circle(point, 0.09, fc="black", zorder=4))
    ax.text(1.1, 0.05, "input feature map\n(patch: k x k x C)", ha="center", va="top", fontsize=9)
    ax.text(output_x + 0.8, 0.05, "output feature map\n(one point per patch)", ha="center",
            va="top", fontsize=9)
    ax.set(xlim=(0, 10), ylim=(-0.8, 5.0))
    return corners, point


def _neurons(ax, x, n, colour, y_centre=2.5, spacing=0.6):
    """A column of n neurons at x; returns their centres."""
    centres = [(x, y_centre + spacing * (i - (n - 1) / 2)) for i in range(n)]
    for c in centres:
        ax.add_patch(Circle(c, 0.17, fc=colour, ec=EDGE, lw=1, zorder=3))
    return centres


def _link(ax, starts, ends, colour=EDGE, lw=0.6):
    for s in starts:
        for e in ends:
            ax.plot(*zip(s, e), color=colour, lw=lw, zorder=1)


def linear_conv_vs_mlpconv():
    """The paper's Fig. 1: (a) a linear convolution layer maps a local patch of the input, through
    one linear filter and a ReLU, to one point of the output map; (b) an mlpconv layer feeds the
    same patch through a small MLP (a few layers of neurons) to that point. Returns a Figure."""
    fig, (ax_a, ax_b) = _canvas((11, 4.1), ncols=2)
    corners, point = _patch_and_output(ax_a, output_x=7.6)
    _link(ax_a, corners, [point], colour="#3182bd", lw=1)
    ax_a.text(4.8, 4.4, "one linear filter, then ReLU\n" + r"$f = \max(w^{\top} x + b,\ 0)$",
              ha="center", va="center", fontsize=9.5)
    ax_a.set_title("(a) linear convolution layer", fontsize=12)

    corners, point = _patch_and_output(ax_b, output_x=7.6)
    layers = [_neurons(ax_b, x, n, COLOURS["mlp"]) for x, n in ((3.3, 4), (4.8, 4), (6.3, 1))]
    _link(ax_b, corners, layers[0], colour="#bdbdbd", lw=0.6)
    for inputs, outputs in itertools.pairwise(layers):
        _link(ax_b, inputs, outputs)
    _link(ax_b, layers[-1], [point], lw=1)
    ax_b.text(4.8, 4.4, "a small MLP, shared by all patches\n"
              + r"$f^{n} = \max(W^{n} f^{n-1} + b^{n},\ 0)$", ha="center", va="center",
              fontsize=9.5)
    ax_b.text(4.8, 0.9, "= a k x k conv, then 1x1 convs", ha="center", va="center", fontsize=9)
    ax_b.set_title("(b) mlpconv layer", fontsize=12)
    fig.suptitle("A linear convolution and an mlpconv layer (Lin et al. 2013, Fig. 1)",
                 fontsize=12)
    return fig


# ---------------------------------------------------------------- Fig. 2 of the paper

def _first(value):
    """The first of a (k, k) pair, or the int itself."""
    return value[0] if isinstance(value, tuple) else value


def _layer_name(layer, sep=", "):
    """A pooling or dropout layer in words: '3x3 max-pool, stride 2', 'dropout 0.5'."""
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        k, s = _first(layer.kernel_size), _first(layer.stride)
        kind = "max" if isinstance(layer, nn.MaxPool2d) else "avg"
        return f"{k}x{k} {kind}-pool{sep}stride {s}"
    if isinstance(layer, nn.Dropout):
        return f"dropout {layer.p:g}"
    return type(layer).__name__


def _mlpconv_stages(model, widths=None):
    """The mlpconv blocks of `model` and the layers between them, read by running it once.

    Returns (blocks, notes): blocks[i] = {'kernels': [5, 1, 1], 'widths': [192, 160, 96],
    'side': 32} (side: the width of its output maps); notes[i]: the layers before block i in
    words (notes[-1]: those after the last block). `widths` replaces the blocks' layer widths.
    """
    device = next(model.parameters()).device
    X = torch.zeros(1, model.in_channels, model.input_size, model.input_size, device=device)
    with evaluating(model):  # so that drawing never updates batch-norm statistics
        walk = shape_walk(model, X)
    blocks, notes = [], [[]]
    for layer, (_, shape) in zip(model.features.children(), walk):
        if isinstance(layer, MLPConv):
            convs = [m for m in layer if isinstance(m, nn.Conv2d)]
            blocks.append({"kernels": [_first(c.kernel_size) for c in convs],
                           "widths": [c.out_channels for c in convs], "side": shape[-1]})
            notes.append([])
        else:
            notes[-1].append(_layer_name(layer, sep="\n"))
    if widths is not None:
        if len(widths) != len(blocks) or not all(len(w) > 0 for w in widths):
            raise ValueError(f"widths needs one tuple of layer widths per mlpconv block of "
                             f"{type(model).__name__} ({len(blocks)} blocks), e.g. "
                             f"{tuple(tuple(b['widths']) for b in blocks)}; got {widths!r}")
        for block, w in zip(blocks, widths):
            micro = block["kernels"][1] if len(block["kernels"]) > 1 else 1
            block["kernels"] = block["kernels"][:1] + [micro] * (len(w) - 1)
            block["widths"] = list(w)
    return blocks, notes


def paper_notation(block):
    """A block as the paper writes it: {'kernels': [5, 1, 1], 'widths': [192, 160, 96]} ->
    '192(5x5)-160-96' (1x1 layers are written without their kernel)."""
    return "-".join(f"{w}({k}x{k})" if i == 0 or k != 1 else str(w)
                    for i, (k, w) in enumerate(zip(block["kernels"], block["widths"])))


def _draw_block(ax, x, index, block, side, thickness, gap=0.3):
    """One mlpconv block: a box of maps per layer, their widths below, its name above."""
    notation = paper_notation(block)
    boxes = sum(thickness(w) + 0.35 * side + gap for w in block["widths"]) - gap
    span = max(boxes, 2.2, 0.17 * len(notation))  # wide enough for the text above it
    start, x = x, x + (span - boxes) / 2
    for i, (k, w) in enumerate(zip(block["kernels"], block["widths"])):
        left = x
        x = _cuboid(ax, x, side, thickness(w), COLOURS["conv" if i == 0 else "mlp"]) + gap
        ax.text((left + x - gap) / 2, -1.75, f"{w}\n{k}x{k}", ha="center", va="top", fontsize=8)
    middle, end = start + span / 2, start + span
    ax.text(middle, 3.55, f"mlpconv {index + 1}", ha="center", va="bottom", fontsize=10,
            fontweight="bold")
    ax.text(middle, 3.1, notation, ha="center", va="bottom", fontsize=8.5)
    ax.text(middle, -2.55, f"maps {block['side']}x{block['side']}", ha="center", va="top",
            fontsize=8)
    ax.add_patch(FancyBboxPatch((start - 0.2, -3.0), span + 0.4, 7.1, ls="--", fc="none",
                                ec="#969696", boxstyle="round,pad=0,rounding_size=0.15"))
    return end


def _labelled_arrow(ax, x, notes, kind="pool", length=2.5):
    """An arrow from x, labelled with `notes` (the layers it stands for). Returns its end."""
    if not notes:
        length = 0.8
    _arrow(ax, (x + 0.15, 0), (x + length - 0.15, 0))
    if notes:
        _tag(ax, (x + length / 2, 0), "\n".join(notes), kind)
    return x + length


def _draw_scores(ax, x, num_classes):
    """The class scores after GAP, then their softmax as bars. Returns the right end."""
    n, cell = min(num_classes, 10), 0.28  # at most 10 cells drawn
    ys = cell * (np.arange(n)[::-1] - (n - 1) / 2)
    for y in ys:
        ax.add_patch(Rectangle((x, y - cell / 2), cell, cell, fc=COLOURS["head"], ec=EDGE, lw=0.8))
    ax.text(x + cell / 2, -1.75, f"{num_classes}\nscores", ha="center", va="top", fontsize=8)
    x = _labelled_arrow(ax, x + cell, ["softmax"], kind="head", length=1.9)
    logits = np.array([0.4, -0.6, 1.0, 3.2, 0.1, 1.6, -0.3, 0.8, 0.3, -1.1])[:n]  # made up
    probs = np.exp(logits) / np.exp(logits).sum()
    for y, p in zip(ys, probs):
        ax.add_patch(Rectangle((x, y - cell * 0.4), 1.4 * p / probs.max(), cell * 0.8,
                               fc=COLOURS["head"], ec=EDGE, lw=0.8))
    ax.text(x + 0.7, -1.75, "class\nprobabilities", ha="center", va="top", fontsize=8)
    return x + 1.4


def nin_overview(widths=None, model=None):
    """The paper's Fig. 2: input, the mlpconv layers (a box of feature maps per layer: its k x k
    convolution, then its 1x1 convolutions), the pooling between them, global average pooling and
    softmax. Returns a Figure.

    model: an ImageClassifier built of MLPConv blocks (default: the paper's CIFAR NIN,
    `CifarNiN()`); every width, kernel, pooling layer and map size shown is read from it.
    widths: one tuple of layer widths per block, to draw other widths than the model's.
    """
    model = CifarNiN() if model is None else model
    blocks, notes = _mlpconv_stages(model, widths)
    size, widest = model.input_size, max(max(b["widths"]) for b in blocks)

    def side(s):  # map side -> drawn height; the square root keeps small maps visible
        return max(3.0 * (s / size) ** 0.5, 0.6)

    def thickness(c):
        return 0.12 + 0.5 * c / widest
    fig, (ax,) = _canvas((12, 4.6))
    x = _cuboid(ax, 0, side(size), thickness(model.in_channels), COLOURS["data"])
    ax.text(x / 2, -1.75, f"input\n{model.in_channels}x{size}x{size}", ha="center", va="top",
            fontsize=8)
    for i, block in enumerate(blocks):
        x = _labelled_arrow(ax, x, notes[i])
        x = _draw_block(ax, x, i, block, side(block["side"]), thickness)
    num_classes = blocks[-1]["widths"][-1]
    head = "global average\npooling" if model.head_kind == "gap" else "flatten,\nfully connected"
    x = _labelled_arrow(ax, x, notes[-1] + [head], kind="head", length=2.4)
    x = _draw_scores(ax, x, num_classes)
    ax.set(xlim=(-0.3, x + 0.3), ylim=(-3.1, 4.2))
    _colour_legend(fig, ["data", "conv", "mlp", "pool", "head"])
    fig.suptitle(f"{type(model).__name__}: {len(blocks)} mlpconv layers, then "
                 f"{' '.join(head.split())} (after Lin et al. 2013, Fig. 2)", fontsize=12)
    return fig


# ---------------------------------------------------------------- Fig. 8.3.1 of d2l.ai

def _block_rows(block):
    """The layers of an mlpconv block as (text, kind) rows; the first kernel is written k x k."""
    layers, rows = list(block), []
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Conv2d):
            k = _first(layer.kernel_size)
            text = "k x k conv" if not rows else f"{k}x{k} conv"
            relu = any(isinstance(m, nn.ReLU) for m in layers[i + 1:i + 3])
            rows.append((text + (", ReLU" if relu else ""), "mlp" if rows else "conv"))
    return rows


def _nin_column(model):
    """What vgg_block_vs_nin_block draws for NiN, read from `model`: (block rows, rows after
    the block, the note on how often they repeat, the rows that end the network)."""
    layers = list(model.features.children())
    blocks = [layer for layer in layers if isinstance(layer, MLPConv)]
    pools = [i for i, layer in enumerate(layers) if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d))]
    repeated = [b for b in blocks if layers.index(b) < pools[-1]]
    after = [(_layer_name(layers[layers.index(blocks[0]) + 1]), "pool")]
    note = (f"block and pooling repeated {len(repeated)} times:\n"
            f"{', '.join(str(b.out_channels) for b in repeated)} channels, k = "
            f"{', '.join(str(_first(b[0].kernel_size)) for b in repeated)}")
    tail = [(f"NiN block, k = {_first(b[0].kernel_size)}, {b.out_channels} channels", "mlp")
            if isinstance(b, MLPConv) else (_layer_name(b), "data") for b in layers[pools[-1] + 1:]]
    head = "global average pooling" if model.head_kind == "gap" else "fully connected"
    return _block_rows(blocks[0]), after, note, [*tail, (head, "head")]


def _vgg_column(arch, num_classes):
    """The same for VGG, as d2l.ai 8.2 builds it: blocks of num_convs 3x3 convolutions (pad 1,
    ReLU) and a 2x2 max-pool, then three fully connected layers."""
    num_convs = VGG_ARCHS[arch]
    rows = [("3x3 conv, pad 1, ReLU", "conv"), ("2x2 max-pool, stride 2", "pool")]
    note = (f"block repeated {len(num_convs)} times:\n"
            f"{', '.join(str(w) for w in VGG_WIDTHS)} channels")
    fc = f"fully connected {VGG_FC_WIDTH}, ReLU, dropout"
    tail = [("flatten", "data"), (fc, "head"), (fc, "head"),
            (f"fully connected {num_classes}", "head")]
    return rows, [], note, tail


def _column(ax, x, title, block_title, rows, after, note, tail, pitch=0.75, width=3.6):
    """A column of boxes joined by arrows: a dashed frame around the block's rows, the rows
    after it, a line saying how often they repeat, then the rows that end the network."""
    ax.text(x, 1.25, title, ha="center", va="center", fontsize=12, fontweight="bold")
    ys = -pitch * np.arange(len(rows) + len(after) + 1 + len(tail))
    ys[len(rows) + len(after):] -= 0.25  # room below the block for the repeat note
    frame_bottom = ys[len(rows) - 1] - 0.4
    ax.add_patch(FancyBboxPatch((x - width / 2 - 0.2, frame_bottom), width + 0.4,
                                0.95 - frame_bottom, ls="--", fc="none", ec="#969696",
                                boxstyle="round,pad=0,rounding_size=0.15"))
    ax.text(x - width / 2 - 0.1, 0.55, block_title, ha="left", va="center", fontsize=9,
            style="italic")
    boxes = rows + after + [None] + tail
    for i, (y, row) in enumerate(zip(ys, boxes)):
        if row is None:
            ax.text(x, y, note, ha="center", va="center", fontsize=8.5, color="#525252",
                    zorder=3, bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "none"})
            continue
        _box(ax, (x, y), row[0], row[1], width, height=0.46)
        nxt = i + 2 if i + 1 < len(boxes) and boxes[i + 1] is None else i + 1
        if nxt < len(boxes):
            _arrow(ax, (x, y - 0.23), (x, ys[nxt] + 0.23))
    return ys


def vgg_block_vs_nin_block(arch="vgg11", num_classes=10):
    """d2l.ai's Fig. 8.3.1: VGG (a block of 3x3 convolutions and a 2x2 max-pool, repeated, then
    fully connected layers) next to NiN (a block of a k x k convolution and two 1x1
    convolutions, each with ReLU, and a 3x3 max-pool, repeated; then a NiN block with
    num_classes channels and global average pooling). The NiN column is read from
    `NiN(num_classes)`; the VGG column follows d2l.ai 8.2 with `VGG_ARCHS[arch]`. A Figure."""
    fig, (ax,) = _canvas((10, 7.2))
    _column(ax, 2.2, "VGG", "VGG block", *_vgg_column(arch, num_classes))
    counts = ", ".join(map(str, VGG_ARCHS[arch]))
    ax.text(4.35, 0, f"num_convs times\n({counts} in {arch.upper().replace('VGG', 'VGG-')})",
            ha="left", va="center", fontsize=8.5, color="#525252")
    ys = _column(ax, 8.6, "NiN", "NiN block", *_nin_column(NiN(num_classes)))
    ax.set(xlim=(0, 10.8), ylim=(ys[-1] - 0.5, 1.6))
    _colour_legend(fig, ["conv", "mlp", "pool", "head", "data"])
    fig.suptitle("A VGG block and a NiN block, and the networks built from them "
                 "(after d2l.ai, Fig. 8.3.1)", fontsize=12)
    return fig
