"""nin_course/analysis.py: layer names, counts and receptive fields, against hand-computed
values."""
import pytest
import torch
from torch import nn

from nin_course.analysis import (conv_padding, count_layers, layer_name, leaf_layers, output_stride,
                                 receptive_field)
from nin_course.models import CifarNiN, nin_block


def test_receptive_field_against_hand_computed_values():
    assert receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3))) == 5
    assert receptive_field(nn.Sequential(nn.Conv2d(1, 1, 2, stride=2), nn.Conv2d(1, 1, 3))) == 6
    assert receptive_field(nin_block(1, 96, 11, 4, 0)) == 11
    assert receptive_field(nin_block(1, 96, 11, 4, 0, micro_kernel_size=3)) == 11 + 2 * 2 * 4


def test_layer_names_tell_apart_layers_that_compute_different_things():
    assert layer_name(nn.Conv2d(1, 96, 11, stride=(4, 4))) == "Conv2d 1->96 11x11/4"
    assert layer_name(nn.Conv2d(8, 8, 3, padding="valid")) == "Conv2d 8->8 3x3"
    assert layer_name(nn.Conv2d(8, 8, 4, padding="same")) == \
        "Conv2d 8->8 4x4 pad (top 1, bottom 2, left 1, right 2)"
    assert layer_name(nn.Conv2d(8, 8, 3, padding="same", dilation=2)) == \
        "Conv2d 8->8 3x3 pad 2 dilation 2"
    assert layer_name(nn.Conv2d(8, 8, 3, padding=(1, 0))) == "Conv2d 8->8 3x3 pad (1, 0)"
    assert layer_name(nn.Conv2d(8, 8, 1, bias=False)) == "Conv2d 8->8 1x1 without bias"
    assert layer_name(nn.MaxPool2d(3, 2, padding=1)) == "MaxPool2d 3x3/2 pad 1"
    for padding in (1, "same"):  # the name says what the layer does to a map's size
        X = torch.zeros(1, 8, 7, 7)
        assert nn.Conv2d(8, 8, 3, padding=padding)(X).shape == X.shape


def test_output_stride_and_receptive_field_of_the_papers_cifar_nin():
    # hand-computed: 5x5 (r 5), 1x1, 1x1, 3x3/2 pool (r 7, jump 2), 5x5 (r 15), 3x3/2 pool
    # (r 19, jump 4), 3x3 (r 27): one position of the 8x8 class maps sees 27x27 pixels
    features = CifarNiN().features
    assert receptive_field(features) == 27 and output_stride(features) == 4


@pytest.mark.parametrize("padding, expected", [(1, (1, 1, 1, 1)), ("same", (1, 1, 1, 1)),
                                               ("valid", (0, 0, 0, 0)), ((2, 0), (2, 2, 0, 0))])
def test_conv_padding_reads_every_spelling(padding, expected):
    assert conv_padding(nn.Conv2d(1, 1, 3, padding=padding)) == expected


def test_leaf_layers_and_counts_follow_the_forward_order():
    block = nin_block(1, 96, 11, 4, 0, num_1x1=2, micro_kernel_size=3)
    assert [type(m).__name__ for m in leaf_layers(block)] == ["Conv2d", "ReLU"] * 3
    assert count_layers(block, nn.Conv2d) == 3 and count_layers(block, nn.Conv2d, 3) == 2
    assert count_layers(block, nn.Conv2d, (11, 11)) == 1 and count_layers(block, nn.ReLU) == 3
