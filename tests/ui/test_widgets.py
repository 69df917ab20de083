"""nin_course.ui.widgets: the cost explorer builds, follows its sliders, agrees with conv_cost;
the class-map viewer follows its controls."""
import ipywidgets as widgets
import pytest

from nin_course.costs.resources import conv_cost
from nin_course.ui import widgets as ui_widgets
from nin_course.ui.widgets import KERNEL_SIZES, ClassMapViewer, ConvCostExplorer, conv_cost_explorer

CLASSES = [f"class {k}" for k in range(10)]


def test_explorer_builds_with_its_initial_numbers():
    explorer = conv_cost_explorer(in_channels=192, out_channels=128, kernel_size=3, size=28)
    assert isinstance(explorer.widget, widgets.VBox)
    params, flops = conv_cost(192, 128, 3, 28, 28)
    assert params == 192 * 128 * 9 + 128  # hand count: weights + biases
    assert f"{params:,}" in explorer.output.value and f"{flops:,}" in explorer.output.value
    assert f"{params:,}" in repr(explorer)


def test_moving_a_slider_updates_the_displayed_numbers():
    explorer = ConvCostExplorer(in_channels=16, out_channels=32, kernel_size=3, size=8)
    before = explorer.output.value
    explorer.kernel_size.value = 5  # what a user's drag does: the observer recomputes
    explorer.in_channels.value = 24
    explorer.size.value = 10
    assert explorer.output.value != before
    assert explorer.costs() == {"kxk": conv_cost(24, 32, 5, 10, 10),
                                "1x1": conv_cost(24, 32, 1, 10, 10)}
    params, flops = conv_cost(24, 32, 5, 10, 10)
    params1, flops1 = conv_cost(24, 32, 1, 10, 10)
    for number in (params, flops, params1, flops1):
        assert f"{number:,}" in explorer.output.value
        assert f"{number:,}" in explorer.text()


def test_the_ratio_row_is_k_squared_for_flops():
    explorer = ConvCostExplorer(in_channels=8, out_channels=8, kernel_size=7, size=5)
    label, _, flops_ratio = explorer.rows()[2]
    assert label.startswith("7x7") and flops_ratio == f"{49:.2f}×"


def test_the_html_table_has_a_gap_between_columns():
    explorer = conv_cost_explorer()
    numbers = [cell for row in explorer.rows() for cell in row[1:]]
    for number in numbers:
        assert f"padding-left: 2em'>{number}</td>" in explorer.output.value
    assert explorer.output.value.count("padding-left") == len(numbers) + 2  # and the headers


def test_static_display_is_the_text_table():
    explorer = conv_cost_explorer()
    bundle = explorer._repr_mimebundle_()
    assert bundle["text/plain"] == explorer.text()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert " at 0x" not in explorer.text()  # no object addresses: the stored output is stable


def test_kernel_sizes_are_odd_and_checked():
    assert all(k % 2 == 1 for k in KERNEL_SIZES)
    with pytest.raises(ValueError, match="kernel_size"):
        conv_cost_explorer(kernel_size=4)


@pytest.mark.parametrize("kernel_size", KERNEL_SIZES)
def test_every_kernel_size_the_slider_offers_builds_and_agrees_with_conv_cost(kernel_size):
    explorer = ConvCostExplorer(in_channels=12, out_channels=20, kernel_size=kernel_size, size=9)
    assert explorer.kernel_size.options == KERNEL_SIZES  # the slider offers exactly these
    params, flops = conv_cost(12, 20, kernel_size, 9, 9)
    params1, flops1 = conv_cost(12, 20, 1, 9, 9)
    assert explorer.costs() == {"kxk": (params, flops), "1x1": (params1, flops1)}
    k = kernel_size
    assert [row[0] for row in explorer.rows()] == [f"{k}x{k} conv", "1x1 conv", f"{k}x{k} / 1x1"]
    assert explorer.rows()[2][2] == f"{k * k:.2f}×"  # FLOPs ratio k^2, hand count
    for number in (params, flops, params1, flops1):
        assert f"{number:,}" in explorer.output.value and f"{number:,}" in explorer.text()


@pytest.mark.parametrize("kernel_size", KERNEL_SIZES)
def test_dragging_the_kernel_slider_to_every_size_updates_the_table(kernel_size):
    explorer = ConvCostExplorer(in_channels=12, out_channels=20, kernel_size=3, size=9)
    explorer.kernel_size.value = kernel_size  # the observer recomputes, as on a drag
    params, flops = conv_cost(12, 20, kernel_size, 9, 9)
    assert explorer.costs()["kxk"] == (params, flops)
    assert f"{flops:,}" in explorer.output.value
    assert f"kernel_size={kernel_size})" in explorer.text()


def test_viewer_builds_and_updates_when_a_control_moves(cifar_nin, cifar_images):
    images, X, labels = cifar_images
    viewer = ClassMapViewer(cifar_nin, X, images, labels, CLASSES)
    assert viewer.image.value[:4] == b"\x89PNG"
    assert viewer.class_index.value == viewer.predicted(0)
    assert "image 0: true class class 0" in viewer.info.value
    before_image, before_info = viewer.image.value, viewer.info.value

    viewer.index.value = 3  # another image: the class follows its prediction
    assert viewer.class_index.value == viewer.predicted(3)
    assert "image 3: true class class 9" in viewer.info.value
    assert viewer.image.value != before_image and viewer.info.value != before_info

    other = (viewer.class_index.value + 1) % 10
    viewer.class_index.value = other
    assert f"map of class {CLASSES[other]}" in viewer.text()
    shown = viewer.image.value
    viewer.alpha.value = 0.9
    assert viewer.image.value != shown
    assert viewer._repr_mimebundle_()["text/plain"] == viewer.text()


def test_viewer_titles_name_the_map_size_once(cifar_nin, cifar_images, monkeypatch):
    images, X, labels = cifar_images
    viewer = ClassMapViewer(cifar_nin, X, images, labels, CLASSES)
    titles = []
    monkeypatch.setattr(ui_widgets, "figure_png",
                        lambda fig: titles.extend(ax.get_title() for ax in fig.axes) or b"")
    viewer.render()
    H, W = viewer.maps.shape[-2:]
    assert titles[1] == f"map {CLASSES[viewer.class_index.value]} ({H}×{W})"  # not "((8, 8))"


def test_viewer_checks_its_inputs(cifar_nin, cifar_images):
    images, X, labels = cifar_images
    with pytest.raises(ValueError, match="same number"):
        ClassMapViewer(cifar_nin, X, images[:2], labels, CLASSES)
