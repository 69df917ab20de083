"""nin_course.costs.compare: costs side by side against hand-computed numbers; weight copying by
order."""
from collections import OrderedDict

import pytest
import torch
from torch import nn

from nin_course.costs.compare import compare_models, copy_weights_by_order, readable
from nin_course.models import NiN


def toy_net():
    """Conv2d(1, 2, 3) on 1x4x4 -> 2x2x2, flattened to 8, Linear(8, 3)."""
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))


def test_compare_models_against_hand_computed_counts():
    table = compare_models({"toy": toy_net(), "conv only": nn.Sequential(nn.Conv2d(1, 2, 3))},
                           (1, 4, 4))
    toy = table.loc["toy"]
    conv_params, conv_flops = 1 * 2 * 3 * 3 + 2, 2 * (1 * 3 * 3) * 2 * (2 * 2)  # 2 per mult-add
    fc_params, fc_flops = 8 * 3 + 3, 2 * 8 * 3
    assert toy["params"] == conv_params + fc_params
    assert toy["FC params"] == fc_params
    assert toy["FLOPs/example"] == conv_flops + fc_flops
    assert toy["FC FLOPs/example"] == fc_flops
    assert toy["FC share of params"] == pytest.approx(fc_params / (conv_params + fc_params))
    assert toy["weight bytes"] == 4 * (conv_params + fc_params)
    assert table.loc["conv only", "FC params"] == 0
    assert list(table.index) == ["toy", "conv only"]


def test_a_nin_with_gap_has_no_fully_connected_parameters():
    table = compare_models({"NiN": NiN(), "NiN fc": NiN(head="fc", input_size=96)}, (1, 96, 96))
    assert table.loc["NiN", "FC params"] == 0
    assert table.loc["NiN fc", "FC params"] == 10 * 1 * 1 * 10 + 10  # 10 maps of 1x1 at 96 px


def test_readable_formats_counts_bytes_and_shares():
    row = readable(compare_models({"toy": toy_net()}, (1, 4, 4))).loc["toy"]
    assert row["params"] == "47" and row["FC share of params"] == "57.4%"
    assert row["weight bytes"] == "188 B"


def test_compare_models_needs_a_dict():
    with pytest.raises(ValueError, match="non-empty dict"):
        compare_models([toy_net()], (1, 4, 4))


def test_copy_weights_by_order_makes_two_namings_compute_the_same():
    source = toy_net()
    target = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), relu=nn.ReLU(),
                                       flatten=nn.Flatten(), fc=nn.Linear(8, 3)))
    pairs = copy_weights_by_order(source, target)
    assert pairs[0] == ("0.weight", "conv.weight") and pairs[-1] == ("3.bias", "fc.bias")
    X = torch.randn(2, 1, 4, 4)
    torch.testing.assert_close(target(X), source(X))


def test_copy_weights_by_order_names_the_misfit():
    with pytest.raises(ValueError, match="does not fit"):
        copy_weights_by_order(toy_net(), nn.Sequential(nn.Conv2d(1, 3, 3), nn.Linear(8, 3)))
    with pytest.raises(ValueError, match="entries"):
        copy_weights_by_order(toy_net(), nn.Sequential(nn.Conv2d(1, 2, 3)))


def test_the_books_nin_and_ours_compute_the_same_function():
    """d2l's NiN with its weights copied into ours: the same outputs (in eval mode)."""
    from d2l import torch as d2l

    from nin_course import reference
    torch.manual_seed(0)
    X = torch.randn(2, 1, 96, 96)
    theirs = reference.NiN(lr=0.05)
    theirs.apply_init([X], d2l.init_cnn)
    ours = NiN()
    copy_weights_by_order(theirs, ours)
    torch.testing.assert_close(ours.eval()(X), theirs.eval()(X))
