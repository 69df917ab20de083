"""nin_course.classmaps.maps: the last mlpconv's maps are the evidence GAP averages into the
logits."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch.nn import functional as F

from nin_course.classmaps.maps import (class_maps, mean_true_and_other_maps, overlay,
                                       plot_class_maps, top_activations, upsample)
from nin_course.models import CifarNiN

CLASSES = [f"class {k}" for k in range(10)]


@pytest.mark.parametrize("num_classes", [10, 100])
def test_one_map_per_class(num_classes, cifar_images):
    torch.manual_seed(0)
    maps = class_maps(CifarNiN(num_classes=num_classes), cifar_images[1])
    assert maps.shape == (4, num_classes, 8, 8)
    assert not maps.requires_grad and (maps >= 0).all()  # ReLU outputs


def test_map_c_averages_to_logit_c_exactly_with_gap(cifar_nin, cifar_images):
    """Sec. 3.2: with GAP the logit of class c is the mean of map c, nothing more."""
    X = cifar_images[1]
    maps = class_maps(cifar_nin, X)
    with torch.no_grad():
        logits = cifar_nin.eval()(X)
    assert torch.equal(maps.mean(dim=(2, 3)), logits)


def test_fc_head_maps_are_not_the_logits(cifar_images):
    torch.manual_seed(0)
    model = CifarNiN(head="fc").eval()
    maps = class_maps(model, cifar_images[1])
    assert maps.shape == (4, 10, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(maps.mean(dim=(2, 3)), model(cifar_images[1]))


def test_class_maps_uses_eval_mode_and_restores_the_mode(cifar_nin, cifar_images):
    cifar_nin.train()
    first, second = class_maps(cifar_nin, cifar_images[1]), class_maps(cifar_nin, cifar_images[1])
    assert torch.equal(first, second), "dropout must be off while the maps are taken"
    assert cifar_nin.training
    cifar_nin.eval()


def test_class_maps_explains_a_wrong_model():
    with pytest.raises(ValueError, match="features"):
        class_maps(torch.nn.Linear(3, 10), torch.zeros(1, 3, 32, 32))


@pytest.mark.parametrize("shape", [(8, 8), (10, 8, 8), (2, 10, 8, 8)])
def test_upsample_to_the_image_size(shape):
    maps = torch.rand(shape)
    big = upsample(maps, 32)
    assert big.shape == (*shape[:-2], 32, 32)
    assert torch.allclose(upsample(torch.full(shape, 2.0), (32, 24)), torch.tensor(2.0))


def test_upsample_is_torchs_bilinear_interpolation_of_each_map():
    maps = torch.rand(2, 3, 4, 5)  # (N, K, h, w)
    reference = F.interpolate(maps, size=(9, 11), mode="bilinear", align_corners=False)
    assert torch.equal(upsample(maps, (9, 11)), reference)
    assert upsample(maps.double(), 9).dtype == torch.float32


def test_upsample_rejects_a_vector():
    with pytest.raises(ValueError, match="maps"):
        upsample(torch.rand(8), 32)


def test_overlay_blends_the_map_over_the_image(cifar_images):
    images, X, _ = cifar_images
    heat = torch.rand(8, 8)
    blended = overlay(images[0], heat)  # uint8 (H, W, C) image
    assert blended.shape == (32, 32, 3) and blended.min() >= 0 and blended.max() <= 1
    np.testing.assert_allclose(overlay(images[0], heat, alpha=0), images[0].numpy() / 255,
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(overlay(X[0], heat, alpha=0.3), overlay(images[0], heat, 0.3),
                               rtol=0, atol=1e-6)  # a float (C, H, W) image gives the same
    assert not np.allclose(overlay(images[0], heat, alpha=1), overlay(images[0], heat, alpha=0))


def test_plot_class_maps_draws_an_image_and_a_map_per_class(cifar_nin, cifar_images):
    images, X, labels = cifar_images
    fig = plot_class_maps(images[:2], class_maps(cifar_nin, X[:2]), CLASSES, labels[:2])
    assert isinstance(fig, Figure) and len(fig.axes) == 2 * 11
    plt.close(fig)


def test_top_activations_keeps_each_images_largest_tenth():
    maps = torch.arange(2 * 5 * 2 * 2, dtype=torch.float32).reshape(2, 5, 2, 2)  # 20 per image
    kept = top_activations(maps, 0.1)
    for image in range(2):  # the 2 largest of 20 values survive, in place; the rest are 0
        largest = maps[image].flatten().topk(2).values
        assert torch.equal(kept[image].flatten().topk(2).values, largest)
        assert int((kept[image] != 0).sum()) == 2
    with pytest.raises(ValueError, match="top 10%"):
        top_activations(maps, 0)


def test_plot_class_maps_with_the_papers_top_ten_percent(cifar_nin, cifar_images):
    images, X, labels = cifar_images
    fig = plot_class_maps(images[:1], class_maps(cifar_nin, X[:1]), CLASSES, labels[:1], top=0.1)
    assert len(fig.axes) == 11
    plt.close(fig)


def test_mean_true_and_other_maps_by_hand():
    maps = torch.zeros(2, 3, 2, 2)  # 2 images, 3 classes, 2x2 maps
    maps[0, 1] = torch.tensor([[4.0, 0.0], [0.0, 2.0]])  # image 0, true class 1: scaled by 4
    maps[1, 0] = torch.tensor([[0.0, 1.0], [0.0, 0.0]])  # image 1, true class 0
    maps[0, 2] = torch.tensor([[0.0, 0.0], [3.0, 0.0]])  # image 0, another class
    # maps[0, 0], maps[1, 1] and maps[1, 2] are 0 everywhere: left out
    true_mean, other_mean = mean_true_and_other_maps(maps, torch.tensor([1, 0]))
    torch.testing.assert_close(true_mean, torch.tensor([[0.5, 0.5], [0.0, 0.25]]))
    torch.testing.assert_close(other_mean, torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    again = mean_true_and_other_maps(10 * maps.numpy(), np.array([1, 0]))  # scale-free, arrays
    torch.testing.assert_close(again[0], true_mean)
    with pytest.raises(ValueError, match="N labels"):
        mean_true_and_other_maps(maps, torch.tensor([1, 0, 2]))
