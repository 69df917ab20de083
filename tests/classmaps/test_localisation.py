"""nin_course.classmaps.localisation: objects at known places on a canvas, and maps scored
against their boxes."""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from conftest import fake_fashion_mnist
from nin_course.classmaps.localisation import (CanvasData, box_area_fraction, box_iou, box_masks,
                                               cam_box_iou, cam_boxes, cam_localisation_rate,
                                               canvas_arrays, canvas_data, energy_in_box,
                                               localisation_table, place_on_canvas,
                                               plot_localisation, pointing_game, random_maps,
                                               tight_boxes, true_class_maps)
from nin_course.classmaps.maps import class_maps, upsample
from nin_course.data.arrays import DataNotFoundError, ImageArrays, load_arrays
from nin_course.models import CifarNiN
from nin_course.runs.spec import load_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def items(n=50, size=12, seed=0):
    """uint8 (n, size, size) images, each a random blob in a random sub-rectangle of its frame,
    zero elsewhere: (images, their tight boxes in frame pixels)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), dtype=np.uint8)
    boxes = np.zeros((n, 4), dtype=np.int64)
    for i in range(n):
        top, left = rng.integers(0, size - 2, size=2)
        bottom, right = top + rng.integers(2, size - top + 1), left + rng.integers(2, size - left + 1)
        blob = rng.integers(0, 256, size=(bottom - top, right - left), dtype=np.uint8)
        blob[0, 0] = blob[-1, -1] = 255  # pixels on every edge of the box, so the box is tight
        images[i, top:bottom, left:right] = blob
        boxes[i] = top, left, bottom, right
    return images, boxes


def peak_map(size, row, col):
    """A (size, size) map that is 0 except for 1 at (row, col)."""
    heat = np.zeros((size, size), dtype=np.float32)
    heat[row, col] = 1
    return heat


# --- objects on a canvas -------------------------------------------------------------------------

def test_tight_boxes_by_hand():
    images = np.zeros((2, 5, 6), dtype=np.uint8)
    images[0, 1:3, 2:5] = 9
    images[1, 4, 0] = 1
    np.testing.assert_array_equal(tight_boxes(images), [[1, 2, 3, 5], [4, 0, 5, 1]])


def test_placed_items_keep_their_pixels_and_tight_boxes():
    images, frame_boxes = items()
    canvases, boxes = place_on_canvas(images, canvas_size=30, seed=1)
    assert canvases.shape == (50, 30, 30, 1) and canvases.dtype == np.uint8
    assert boxes.shape == (50, 4) and boxes.dtype == np.int64
    for image, canvas, box, frame_box in zip(images, canvases[..., 0], boxes, frame_boxes):
        top, left, bottom, right = box
        assert 0 <= top < bottom <= 30 and 0 <= left < right <= 30
        inside = np.zeros_like(canvas, dtype=bool)
        inside[top:bottom, left:right] = True
        assert not canvas[~inside].any(), "every nonzero pixel lies in the box"
        crop = canvas[top:bottom, left:right]
        assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any(), \
            "each edge of the box holds a nonzero pixel: the box is tight"
        t, l, b, r = frame_box
        np.testing.assert_array_equal(crop, image[t:b, l:r])
        assert canvas.sum(dtype=np.int64) == image.sum(dtype=np.int64)


def test_box_is_the_items_not_the_frame():
    images = np.zeros((1, 28, 28), dtype=np.uint8)
    images[0, 3:25, 8:20] = 200  # a trouser-like item that does not fill its 28x28 frame
    _, boxes = place_on_canvas(images, canvas_size=28)  # the only position is (0, 0)
    np.testing.assert_array_equal(boxes, [[3, 8, 25, 20]])


def test_placement_is_reproducible_and_seeded():
    images, _ = items(n=40)
    first, first_boxes = place_on_canvas(images, 64, seed=3)
    again, again_boxes = place_on_canvas(images[..., None], 64, seed=3)  # (N, H, W, 1) too
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first_boxes, again_boxes)
    other, other_boxes = place_on_canvas(images, 64, seed=4)
    assert not np.array_equal(first_boxes, other_boxes) and not np.array_equal(first, other)


def test_positions_cover_the_canvas():
    images = np.full((400, 4, 4), 255, dtype=np.uint8)
    _, boxes = place_on_canvas(images, canvas_size=8, seed=0)
    assert set(boxes[:, 0]) == set(boxes[:, 1]) == set(range(5))  # 0 .. S - H, both ends


@pytest.mark.parametrize("images, canvas_size, match", [
    (np.zeros((2, 8, 8), dtype=np.float32), 16, "uint8"),
    (np.zeros((2, 8, 8, 3), dtype=np.uint8), 16, "grayscale"),
    (np.zeros((8, 8), dtype=np.uint8), 16, r"\(N, H, W\)"),
    (np.ones((2, 8, 8), dtype=np.uint8), 7, "at least as large"),
    (np.ones((2, 8, 8), dtype=np.uint8), 16.0, "canvas_size must be an int"),
    (np.zeros((2, 8, 8), dtype=np.uint8), 16, "blank"),
])
def test_place_on_canvas_explains_bad_inputs(images, canvas_size, match):
    with pytest.raises(ValueError, match=match):
        place_on_canvas(images, canvas_size)


@pytest.fixture(scope="module")
def tiny_arrays():
    x_train, y_train, x_test, y_test = fake_fashion_mnist(num_train=20, num_test=10)
    return ImageArrays("fashion-mnist", x_train, y_train, x_test, y_test,
                       [f"class {k}" for k in range(10)])


def test_canvas_arrays_places_both_splits(tiny_arrays):
    data = canvas_arrays(tiny_arrays, canvas_size=40, seed=5)
    assert isinstance(data, CanvasData)
    placed = data.arrays
    assert placed.name == "fashion-mnist-canvas40" and placed.image_shape == (1, 40, 40)
    assert placed.x_train.shape == (20, 40, 40, 1) and placed.x_test.shape == (10, 40, 40, 1)
    np.testing.assert_array_equal(placed.y_train, tiny_arrays.y_train)
    np.testing.assert_array_equal(placed.y_test, tiny_arrays.y_test)
    assert placed.classes == tiny_arrays.classes
    train_seed, test_seed = np.random.SeedSequence(5).spawn(2)
    for x, boxes, source, seed in ((placed.x_train, data.train_boxes, tiny_arrays.x_train,
                                    train_seed), (placed.x_test, data.test_boxes,
                                                  tiny_arrays.x_test, test_seed)):
        expected_x, expected_boxes = place_on_canvas(source, 40, seed)
        np.testing.assert_array_equal(x, expected_x)
        np.testing.assert_array_equal(boxes, expected_boxes)
    _, test_with_train_stream = place_on_canvas(tiny_arrays.x_test, 40, train_seed)
    assert not np.array_equal(test_with_train_stream, data.test_boxes), \
        "the splits are placed with different streams"
    again = canvas_arrays(tiny_arrays, canvas_size=40, seed=5)
    np.testing.assert_array_equal(again.arrays.x_test, placed.x_test)


def test_canvas_data_is_the_data_set_a_run_spec_names_with_its_boxes(tiny_data_root):
    data = canvas_data("fashion-mnist-canvas40", tiny_data_root)
    expected = canvas_arrays(load_arrays("fashion-mnist", tiny_data_root), 40)
    np.testing.assert_array_equal(data.test_boxes, expected.test_boxes)
    np.testing.assert_array_equal(data.train_boxes, expected.train_boxes)
    same = load_dataset("fashion-mnist-canvas40", tiny_data_root)  # what a RunSpec trains on
    assert data.arrays.name == same.name == "fashion-mnist-canvas40"
    np.testing.assert_array_equal(data.arrays.x_test, same.x_test)
    np.testing.assert_array_equal(data.arrays.x_train, same.x_train)


@pytest.mark.parametrize("name", ["fashion-mnist", "fashion-mnist-canvas", "-canvas64",
                                  "fashion-mnist-canvasXL"])
def test_canvas_data_explains_a_name_without_a_canvas(name):
    with pytest.raises(ValueError, match="canvas<S>"):
        canvas_data(name)


def test_canvas_arrays_refuses_colour_images():
    rng = np.random.default_rng(0)
    colour = ImageArrays("cifar10", rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8),
                         np.zeros(4, dtype=np.int64),
                         rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8),
                         np.zeros(2, dtype=np.int64), ["a"])
    with pytest.raises(ValueError, match="grayscale"):
        canvas_arrays(colour, canvas_size=16)


def test_real_fashion_mnist_boxes_are_tighter_than_the_frame():
    try:
        arrays = load_arrays("fashion-mnist", download=False)
    except DataNotFoundError as err:
        pytest.skip(f"real Fashion-MNIST not found: {err}")
    images = arrays.x_test[:200]
    canvases, boxes = place_on_canvas(images, canvas_size=64, seed=0)
    heights, widths = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (heights <= 28).all() and (widths <= 28).all()
    assert (widths < 28).mean() > 0.5, "most items are narrower than their frame"
    outside = ~box_masks(boxes, 64)
    assert not canvases[..., 0][outside].any()


# --- boxes ---------------------------------------------------------------------------------------

def test_box_masks_and_areas_by_hand():
    masks = box_masks(np.array([[1, 2, 3, 4]]), 5)
    expected = np.zeros((1, 5, 5), dtype=bool)
    expected[0, 1:3, 2:4] = True
    np.testing.assert_array_equal(masks, expected)
    np.testing.assert_allclose(box_area_fraction(np.array([[1, 2, 3, 4], [0, 0, 5, 5]]), 5),
                               [4 / 25, 1.0])


def test_box_iou_by_hand():
    a = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 0, 0]])
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [2, 2, 4, 4], [0, 0, 0, 0]])
    np.testing.assert_allclose(box_iou(a, b), [1 / 7, 1.0, 0.0, 0.0])


# --- scores against hand-made maps ---------------------------------------------------------------

BOX = np.array([[4, 6, 10, 12]])  # rows 4..9, columns 6..11 of a 16x16 canvas


def test_pointing_game_single_peaks():
    assert pointing_game(peak_map(16, 4, 6)[None], BOX) == 1.0   # the box's top-left pixel
    assert pointing_game(peak_map(16, 9, 11)[None], BOX) == 1.0  # its bottom-right pixel
    assert pointing_game(peak_map(16, 10, 8)[None], BOX) == 0.0  # one row below: ends exclusive
    assert pointing_game(peak_map(16, 5, 12)[None], BOX) == 0.0
    maps = torch.tensor(np.stack([peak_map(16, 5, 7), peak_map(16, 0, 0)]))  # a tensor too
    assert pointing_game(maps, np.repeat(BOX, 2, axis=0)) == 0.5


def test_pointing_game_ties_go_to_the_first_maximum():
    flat = np.zeros((2, 16, 16), dtype=np.float32)  # a dead map: its first maximum is (0, 0)
    assert pointing_game(flat, np.array([[0, 0, 3, 3], [4, 6, 10, 12]])) == 0.5
    two_peaks = peak_map(16, 5, 7) + peak_map(16, 12, 1)  # equal peaks; (5, 7) comes first
    assert pointing_game(two_peaks[None], BOX) == 1.0


def test_energy_of_a_map_positive_only_in_the_box_is_one():
    heat = -np.ones((16, 16), dtype=np.float32)  # negative values are not counted
    heat[4:10, 6:12] = np.arange(36).reshape(6, 6)
    assert energy_in_box(heat[None], BOX) == pytest.approx(1.0)


def test_energy_share_by_hand():
    heat = np.zeros((2, 16, 16), dtype=np.float32)
    heat[0, 5, 7], heat[0, 0, 0] = 3.0, 1.0  # 3 of 4 inside
    heat[1] = -2.0  # nothing positive: counts as 0
    assert energy_in_box(heat, np.repeat(BOX, 2, axis=0)) == pytest.approx((0.75 + 0) / 2)


def test_box_indicator_gives_iou_one():
    indicator = box_masks(BOX, 16).astype(np.float32)  # (1, 16, 16)
    np.testing.assert_array_equal(cam_boxes(indicator), BOX)
    np.testing.assert_allclose(cam_box_iou(indicator, BOX), [1.0])
    assert cam_localisation_rate(torch.tensor(indicator), BOX) == 1.0


def test_cam_takes_the_larger_of_two_blobs():
    heat = np.zeros((1, 16, 16), dtype=np.float32)
    heat[0, 1:3, 1:3] = 5.0       # small but brightest: 4 pixels
    heat[0, 8:14, 4:13] = 2.0     # larger and dimmer (2 >= 0.2 * 5): 54 pixels
    heat[0, 8:10, 14:16] = 0.5    # below 0.2 * 5: dropped
    np.testing.assert_array_equal(cam_boxes(heat), [[8, 4, 14, 13]])
    np.testing.assert_allclose(cam_box_iou(heat, np.array([[8, 4, 14, 13]])), [1.0])
    assert cam_localisation_rate(heat, np.array([[1, 1, 3, 3]])) == 0.0


def test_cam_regions_are_eight_connected():
    heat = np.zeros((1, 8, 8), dtype=np.float32)
    heat[0, 0:2, 0:2] = heat[0, 2:4, 2:4] = 1.0  # two squares touching at a corner: one region
    heat[0, 6, 0:5] = 1.0                        # 5 pixels: larger than either square alone
    np.testing.assert_array_equal(cam_boxes(heat), [[0, 0, 4, 4]])


def test_cam_threshold_moves_the_box():
    heat = np.zeros((1, 16, 16), dtype=np.float32)
    heat[0, 4:12, 4:12] = 1.0
    heat[0, 6:10, 6:10] = 10.0  # a bright core in a dim surround
    np.testing.assert_array_equal(cam_boxes(heat, threshold=0.05), [[4, 4, 12, 12]])
    np.testing.assert_array_equal(cam_boxes(heat, threshold=0.2), [[6, 6, 10, 10]])


def test_cam_of_a_map_without_positive_values_is_iou_zero():
    maps = np.stack([np.zeros((16, 16)), -np.ones((16, 16))]).astype(np.float32)
    np.testing.assert_array_equal(cam_boxes(maps), np.zeros((2, 4)))
    np.testing.assert_array_equal(cam_box_iou(maps, np.repeat(BOX, 2, axis=0)), [0.0, 0.0])


@pytest.mark.parametrize("maps, boxes, match", [
    (np.zeros((16, 16)), BOX, r"\(N, S, S\)"),
    (np.zeros((2, 16, 16)), BOX, r"\(2, 4\)"),
    (np.zeros((1, 16, 16)), BOX.astype(float), "integers"),
    (np.zeros((1, 8, 8)), BOX, "lie in the 8x8 maps"),
    (np.zeros((1, 16, 16)), np.array([[4, 6, 4, 12]]), "top < bottom"),
    (np.full((1, 16, 16), np.nan), BOX, "NaN"),
])
def test_scores_explain_bad_inputs(maps, boxes, match):
    for score in (pointing_game, energy_in_box, cam_box_iou):
        with pytest.raises(ValueError, match=match):
            score(maps, boxes)


# --- the chance baseline -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def random_boxes():
    """2000 boxes of 4..16 pixels a side on a 32x32 canvas."""
    rng = np.random.default_rng(7)
    sides = rng.integers(4, 17, size=(2000, 2))
    corners = rng.integers(0, 32 - sides + 1)
    return np.concatenate([corners, corners + sides], axis=1).astype(np.int64)


def test_random_maps_are_seeded_uniform():
    maps = random_maps(3, 8, seed=1)
    assert maps.shape == (3, 8, 8) and maps.dtype == np.float32
    assert 0 <= maps.min() and maps.max() < 1
    np.testing.assert_array_equal(maps, random_maps(3, 8, seed=1))
    assert not np.array_equal(maps, random_maps(3, 8, seed=2))


def test_random_maps_point_at_the_box_by_its_area(random_boxes):
    """Each hit is a Bernoulli(a_i) draw, a_i the box's share of the canvas: the hit rate's
    expectation is mean(a_i), its standard error sqrt(sum a_i (1 - a_i)) / N."""
    areas = box_area_fraction(random_boxes, 32)
    hits = pointing_game(random_maps(len(random_boxes), 32, seed=0), random_boxes)
    standard_error = np.sqrt(np.sum(areas * (1 - areas))) / len(areas)
    assert abs(hits - areas.mean()) < 4 * standard_error


def test_random_maps_energy_and_cam_box_follow_the_box_area(random_boxes):
    maps = random_maps(len(random_boxes), 32, seed=0)
    areas = box_area_fraction(random_boxes, 32)
    # one image's share has standard deviation about sqrt(a (1 - a) / (3 * 32**2)) < 0.01, so
    # the mean of 2000 is within about 0.0002 of mean(a)
    assert energy_in_box(maps, random_boxes) == pytest.approx(areas.mean(), abs=0.002)
    # 80% of the pixels pass 0.2 * max and join into one region that spans the canvas
    np.testing.assert_array_equal(cam_boxes(maps[:50]), np.tile([0, 0, 32, 32], (50, 1)))
    np.testing.assert_allclose(cam_box_iou(maps[:50], random_boxes[:50]), areas[:50])


# --- the table and the network's maps ------------------------------------------------------------

def test_localisation_table_rows_and_columns(random_boxes):
    boxes = random_boxes[:100]
    perfect = box_masks(boxes, 32).astype(np.float32)
    noise = random_maps(100, 32, seed=3)
    table = localisation_table({"perfect": torch.tensor(perfect), "random": noise}, boxes)
    assert isinstance(table, pd.DataFrame) and list(table.index) == ["perfect", "random"]
    assert list(table.columns) == ["pointing game", "energy in box", "mean IoU", "IoU>=0.5 rate",
                                   "box area fraction", "images"]
    assert table.loc["perfect", ["pointing game", "energy in box", "mean IoU",
                                 "IoU>=0.5 rate"]].tolist() == pytest.approx([1, 1, 1, 1])
    assert table.loc["random", "pointing game"] == pointing_game(noise, boxes)
    assert table.loc["random", "energy in box"] == energy_in_box(noise, boxes)
    assert table.loc["random", "IoU>=0.5 rate"] == cam_localisation_rate(noise, boxes)
    assert table.loc["random", "box area fraction"] == pytest.approx(
        box_area_fraction(boxes, 32).mean())
    assert (table["images"] == 100).all()


@pytest.fixture(scope="module")
def small_nin():
    torch.manual_seed(0)
    return CifarNiN(num_classes=10, in_channels=1)


def test_true_class_maps_pick_and_upsample_the_labelled_map(small_nin):
    torch.manual_seed(1)
    X, y = torch.rand(5, 1, 32, 32), torch.tensor([0, 3, 3, 9, 1])
    maps = true_class_maps(small_nin, X, y, batch_size=2)
    assert maps.shape == (5, 32, 32) and maps.dtype == torch.float32
    expected = upsample(class_maps(small_nin, X)[torch.arange(5), y], 32)  # (5, 32, 32)
    torch.testing.assert_close(maps, expected)
    torch.testing.assert_close(true_class_maps(small_nin, X, y.numpy(), batch_size=256), expected)


def test_true_class_maps_needs_one_class_per_image(small_nin):
    with pytest.raises(ValueError, match="one per image"):
        true_class_maps(small_nin, torch.rand(3, 1, 32, 32), torch.tensor([0, 1]))


# --- pictures ------------------------------------------------------------------------------------

def drawn_boxes(ax):
    """The (top, left, bottom, right) boxes drawn on ax, ends exclusive, by edge colour."""
    boxes = {}
    for patch in ax.patches:
        if isinstance(patch, Rectangle):
            x, y = patch.get_xy()
            top, left = round(y + 0.5), round(x + 0.5)
            box = [top, left, top + round(patch.get_height()), left + round(patch.get_width())]
            boxes.setdefault(patch.get_edgecolor()[:3], []).append(box)
    return boxes


LIME, RED = (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)


def test_plot_localisation_draws_true_boxes_on_the_images():
    images, _ = items(n=3, size=12)
    canvases, boxes = place_on_canvas(images, canvas_size=16, seed=0)
    fig = plot_localisation(canvases, boxes, titles=["a", "b", "c"])
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    for ax, box, title in zip(fig.axes, boxes, "abc"):
        assert drawn_boxes(ax) == {LIME: [box.tolist()]}
        assert ax.get_title() == title
    plt.close(fig)


def test_plot_localisation_draws_cam_boxes_and_their_iou():
    boxes = np.array([[4, 6, 10, 12], [2, 2, 8, 5]])
    canvases = (255 * box_masks(boxes, 16)).astype(np.uint8)[..., None]  # (2, 16, 16, 1)
    exact = box_masks(boxes, 16).astype(np.float32)  # maps that fill their boxes: IoU 1
    shifted = np.roll(exact, 3, axis=2)  # three pixels to the right
    small = torch.tensor(exact[:, ::2, ::2].copy())  # (2, 8, 8): upsampled to the image first
    fig = plot_localisation(canvases, boxes, {"exact": exact, "shifted": shifted,
                                              "small": small})
    axes = np.array(fig.axes[:8]).reshape(4, 2)
    assert axes[1, 0].get_ylabel() == "exact" and axes[2, 0].get_ylabel() == "shifted"
    for i, box in enumerate(boxes):
        assert drawn_boxes(axes[1, i]) == {LIME: [box.tolist()], RED: [box.tolist()]}
        assert axes[1, i].get_title() == "IoU 1.00"
        found = cam_boxes(shifted[i:i + 1])[0]
        assert drawn_boxes(axes[2, i])[RED] == [found.tolist()]
        assert axes[2, i].get_title() == f"IoU {box_iou(found[None], box[None])[0]:.2f}"
        found = cam_boxes(upsample(small[i:i + 1], 16))[0]
        assert drawn_boxes(axes[3, i])[RED] == [found.tolist()]
    plt.close(fig)


def test_plot_localisation_draws_no_box_for_a_dead_map():
    boxes = np.array([[4, 6, 10, 12]])
    canvases = np.zeros((1, 16, 16, 1), dtype=np.uint8)
    fig = plot_localisation(canvases, boxes, {"dead": np.zeros((1, 16, 16), np.float32)})
    assert drawn_boxes(fig.axes[1]) == {LIME: [boxes[0].tolist()]}
    assert fig.axes[1].get_title().startswith("no box")
    plt.close(fig)
