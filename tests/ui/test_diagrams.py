"""Tests for nin_course/ui/diagrams.py: the architecture figures say what the models are."""
import itertools
import re
import time

import matplotlib
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from torch import nn

from nin_course.layers import MLPConv
from nin_course.models import CifarNiN, NiN, shape_walk
from nin_course.ui import diagrams

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend

pytestmark = pytest.mark.usefixtures("one_thread")
DRAWINGS = [diagrams.linear_conv_vs_mlpconv, diagrams.nin_overview,
            diagrams.vgg_block_vs_nin_block]


def texts(fig):
    """Every visible string in the figure (titles, labels, legend), newlines made spaces."""
    return [" ".join(t.get_text().split()) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip()]


def face_colours(fig):
    """The fill colours of all patches of the figure and of the boxes around texts, '#rrggbb'."""
    patches = [p for ax in fig.axes for p in ax.patches]
    patches += [t.get_bbox_patch() for t in fig.findobj(Text) if t.get_bbox_patch()]
    return {matplotlib.colors.to_hex(p.get_facecolor()) for p in patches}


@pytest.fixture(scope="module")
def figures():
    return {draw.__name__: draw() for draw in DRAWINGS}


@pytest.mark.parametrize("draw", DRAWINGS, ids=lambda draw: draw.__name__)
def test_draws_a_figure_quickly_without_pyplot(draw, figures):
    open_before = plt.get_fignums()
    start = time.process_time()  # CPU time: other jobs on a shared machine do not count
    fig = draw()  # the first draw (in `figures`) paid for the imports and caches
    FigureCanvasAgg(fig).draw()
    seconds = time.process_time() - start
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == open_before, f"{draw.__name__} left a pyplot figure open"
    assert seconds < 1.5, f"{draw.__name__} took {seconds:.2f} s of CPU to draw; keep it under a second"
    assert fig._repr_png_().startswith(b"\x89PNG")  # a notebook shows it as an image


@pytest.mark.parametrize("name", [draw.__name__ for draw in DRAWINGS])
def test_no_two_texts_overlap(name, figures):
    fig = figures[name]
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    boxes = [(t.get_text(), t.get_window_extent(renderer).expanded(0.98, 0.9))
             for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), f"{name}: the texts {a!r} and {b!r} overlap"


@pytest.mark.parametrize("name", [draw.__name__ for draw in DRAWINGS])
def test_one_colour_per_kind_of_layer_in_every_figure(name, figures):
    used = face_colours(figures[name])
    kinds = ("conv", "mlp") if name == "linear_conv_vs_mlpconv" else ("conv", "mlp", "pool", "head")
    for kind in kinds:
        assert diagrams.COLOURS[kind] in used, f"{name} does not use the {kind} colour"


def test_linear_conv_vs_mlpconv_has_the_papers_two_panels(figures):
    fig = figures["linear_conv_vs_mlpconv"]
    assert [ax.get_title() for ax in fig.axes] == ["(a) linear convolution layer",
                                                   "(b) mlpconv layer"]
    shown = " ".join(texts(fig))
    assert "input feature map" in shown and "output feature map" in shown
    assert "MLP" in shown and "Fig. 1" in shown


def test_cifar_overview_shows_the_papers_network(figures):
    """Sec. 4.2 of Lin et al. and the released model: the numbers typed in as the paper has them."""
    shown = " | ".join(texts(figures["nin_overview"]))
    for label in ("mlpconv 1", "mlpconv 2", "mlpconv 3", "192(5x5)-160-96", "192(5x5)-192-192",
                  "192(3x3)-192-10", "maps 32x32", "maps 16x16", "maps 8x8", "input 3x32x32",
                  "3x3 max-pool stride 2", "3x3 avg-pool stride 2", "global average pooling",
                  "softmax"):
        assert label in shown, f"nin_overview does not show {label!r}"
    assert shown.count("dropout 0.5") == 2


def test_cifar_overview_numbers_are_the_models(figures):
    """The width and kernel under every box, and every map size, are those of CifarNiN()."""
    model = CifarNiN()
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    expected = [f"{c.out_channels} {c.kernel_size[0]}x{c.kernel_size[1]}" for c in convs]
    shown = texts(figures["nin_overview"])
    assert [t for t in shown if re.fullmatch(r"\d+ (\d+)x\1", t)] == expected
    walk = shape_walk(model, torch.zeros(1, 3, 32, 32))
    sizes = [f"maps {shape[1]}x{shape[2]}" for name, shape in walk if "MLPConv" in name]
    assert [t for t in shown if t.startswith("maps ")] == sizes


def test_overview_of_other_widths_and_of_d2l_nin():
    shown = texts(diagrams.nin_overview(widths=((64, 32), (64, 64), (64, 10))))
    assert {"64(5x5)-32", "64(5x5)-64", "64(3x3)-10"} <= set(shown)
    with pytest.raises(ValueError, match="one tuple of layer widths per mlpconv block"):
        diagrams.nin_overview(widths=((64, 32),))
    shown = texts(diagrams.nin_overview(model=NiN()))
    assert {"mlpconv 4", "96(11x11)-96-96", "10(3x3)-10-10", "maps 54x54", "maps 5x5",
            "input 1x224x224"} <= set(shown)


def test_vgg_block_vs_nin_block_reads_nin_from_the_model(figures):
    shown = texts(figures["vgg_block_vs_nin_block"])
    for label in ("VGG", "NiN", "VGG block", "NiN block", "3x3 conv, pad 1, ReLU",
                  "2x2 max-pool, stride 2", "fully connected 4096, ReLU, dropout",
                  "fully connected 10", "k x k conv, ReLU", "3x3 max-pool, stride 2",
                  "dropout 0.5", "NiN block, k = 3, 10 channels", "global average pooling"):
        assert label in shown, f"vgg_block_vs_nin_block does not show {label!r}"
    first_block = NiN().features[0]
    num_1x1 = sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in first_block)
    assert shown.count("1x1 conv, ReLU") == num_1x1 == 2
    blocks = [m for m in NiN().features if isinstance(m, MLPConv)]
    assert any(", ".join(str(b.out_channels) for b in blocks[:-1]) in t for t in shown)
    shown = texts(diagrams.vgg_block_vs_nin_block(num_classes=100))
    assert {"NiN block, k = 3, 100 channels", "fully connected 100"} <= set(shown)
