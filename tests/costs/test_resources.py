"""nin_course/costs/resources.py: counts against hand-computed numbers, FLOPs against the formula."""
import pytest
import torch
from torch import nn

from nin_course.costs.memory import memory_estimate
from nin_course.costs.resources import conv_cost, resource_summary, resource_table
from nin_course.models import CifarNiN, num_parameters

# d2l's NiN on 1x224x224, convolution by convolution: (C_in, C_out, k, H_out = W_out).
NIN_CONVS = [(1, 96, 11, 54), (96, 96, 1, 54), (96, 96, 1, 54),
             (96, 256, 5, 26), (256, 256, 1, 26), (256, 256, 1, 26),
             (256, 384, 3, 12), (384, 384, 1, 12), (384, 384, 1, 12),
             (384, 10, 3, 5), (10, 10, 1, 5), (10, 10, 1, 5)]


def conv_flops(c_in, c_out, k, h_out):
    """The standard count: 2 FLOPs (a multiply and an add) per weight per output position."""
    return 2 * c_in * c_out * k * k * h_out * h_out


@pytest.fixture(scope="module")
def nin_table(nin):
    return resource_table(nin, (1, 224, 224))


def test_conv_cost_against_hand_counts():
    assert conv_cost(3, 8, 3, 16, 16) == (3 * 8 * 9 + 8, 2 * 8 * 3 * 9 * 16 * 16)  # 224, 110592
    assert conv_cost(64, 32, 1, 28, 28) == (64 * 32 + 32, 2 * 64 * 32 * 28 * 28)   # 1x1
    # 5x5, stride 2, no padding: 16 -> 6
    assert conv_cost(3, 8, 5, 16, 16, stride=2, padding=0) == (608, 2 * 3 * 8 * 25 * 6 * 6)


def test_toy_net_table_against_hand_counts(toy_net):
    table = resource_table(toy_net(), (3, 16, 16), batch_size=4).set_index("layer")
    assert list(table.index) == ["input", "0", "1", "2", "3", "4", "total"]
    assert list(table["type"][1:-1]) == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert table.loc["0", "output shape"] == (8, 16, 16)
    assert table.loc["4", "output shape"] == (10,)
    assert list(table["params"]) == [0, 224, 0, 0, 0, 5130, 5354]
    assert list(table["FLOPs/example"]) == [0, 110592, 0, 0, 0, 2 * 512 * 10, 120832]
    assert list(table["MACs/example"]) == [0, 55296, 0, 0, 0, 5120, 60416]
    # batch 4, 4 bytes each: 4 * 4 * (3*16*16, 8*16*16, 8*16*16, 8*8*8, 512, 10)
    expected_bytes = [12288, 32768, 32768, 8192, 8192, 160]
    assert list(table["output bytes"][:-1]) == expected_bytes
    # kept for backward: the input (the conv keeps it), the ReLU's output (the conv's is not
    # kept), the pool's int64 indices (its input is the ReLU's output), nothing for the
    # flatten (a view), the pool's output for the linear layer (it keeps its input)
    assert list(table["saved bytes"]) == [12288, 0, 32768, 16384, 0, 8192, 69632]
    assert table.attrs == {"batch_size": 4, "dtype": "torch.float32"}


def test_a_linear_layer_on_its_own():
    table = resource_table(nn.Linear(12, 5), (12,)).set_index("layer")
    assert table.loc["(model)", "params"] == 12 * 5 + 5
    assert table.loc["(model)", "FLOPs/example"] == 2 * 12 * 5
    assert table.loc["(model)", "output shape"] == (5,)


def test_work_outside_the_layers_goes_to_an_other_row():
    class Projected(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.w = nn.Parameter(torch.ones(3, 2))

        def forward(self, X):
            return self.fc(X) @ self.w  # (N, 3) @ (3, 2): 2 * 3 * 2 FLOPs outside any layer

    table = resource_table(Projected(), (4,)).set_index("layer")
    assert table.loc["(other)", "params"] == 6
    assert table.loc["(other)", "FLOPs/example"] == 12
    assert table.loc["total", "FLOPs/example"] == 2 * 4 * 3 + 12


def test_nin_parameters_per_block(nin, nin_table):
    rows = nin_table.set_index("layer")
    assert list(rows.index[1:-1]) == [f"features.{i}" for i in range(8)] + ["head"]
    # 1*96*121+96 + 2*(96*96+96); 96*256*25+256 + 2*(256*256+256); ...
    assert list(rows["params"][1:-1]) == [30336, 0, 746240, 0, 1180800, 0, 0, 34790, 0]
    assert rows["params"][1:-1].sum() == rows.loc["total", "params"] == 1_992_166
    assert num_parameters(nin) == 1_992_166
    assert rows.loc["features.0", "output shape"] == (96, 54, 54)
    assert rows.loc["head", "output shape"] == (10,)


def test_cifar_nin_parameters_per_block():
    table = resource_table(CifarNiN(10), (3, 32, 32))
    assert table["params"][1:-1].sum() == table["params"].iloc[-1] == 966_986


def test_nin_flops_match_the_standard_formula(nin, nin_table):
    expected = sum(conv_flops(*conv) for conv in NIN_CONVS)  # 1,524,594,704
    assert nin_table["FLOPs/example"].iloc[-1] == expected
    assert nin_table["FLOPs/example"][1:-1].sum() == expected
    assert nin_table["MACs/example"].iloc[-1] == expected // 2
    layers = resource_table(nin, (1, 224, 224), depth=2)
    convs = layers[layers["type"] == "Conv2d"]
    assert list(convs["FLOPs/example"]) == [conv_flops(*conv) for conv in NIN_CONVS]
    assert set(layers[layers["type"] == "ReLU"]["FLOPs/example"]) == {0}  # torch counts 0
    assert layers["saved bytes"].iloc[-1] == nin_table["saved bytes"].iloc[-1]


def test_inference_needs_less_than_training(nin, nin_table):
    memory = memory_estimate(nin, (128, 1, 224, 224))
    assert memory["inference"] < memory["training"]
    assert memory["activations"] == 128 * nin_table["saved bytes"].iloc[-1]


def test_summary_without_measurements(nin):
    summary = resource_summary(nin, (1, 224, 224), batch_size=8, optimizer_slots=0)
    assert summary["params"] == 1_992_166
    assert summary["flops_per_example"] == 2 * summary["macs_per_example"] == 1_524_594_704
    assert summary["training"] == memory_estimate(nin, (8, 1, 224, 224), optimizer_slots=0)[
        "training"]
    if not torch.cuda.is_available():
        assert summary["training_measured"] is summary["inference_measured"] is None


def test_counting_leaves_the_model_as_it_was(toy_net):
    model = toy_net().train()
    weight = model[0].weight.detach().clone()
    resource_table(model, (3, 16, 16), depth=2)
    assert all(m.training for m in model.modules())
    torch.testing.assert_close(model[0].weight, weight)


@pytest.mark.parametrize("input_shape, kwargs, match", [
    ((3, 224, 224), {}, "1-channel"),            # the model's own check_input
    ((1, 32, 32), {}, "at least"),               # too small for NiN
    ((224, 224), {}, r"\(C, H, W\)"),
    ((1, 0, 224), {}, "positive"),
    ("1x224x224", {}, "tuple"),
    ((2, 1, 224, 224), {"batch_size": 3}, "batch size 2"),
    ((1, 224, 224), {"batch_size": 0}, "positive integer"),
    ((1, 224, 224), {"depth": 0}, "depth"),
    ((1, 224, 224), {"dtype": "float32"}, "torch.dtype"),
])
def test_bad_arguments_get_clear_errors(nin, input_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        resource_table(nin, input_shape, **kwargs)


def test_bad_shapes_for_a_plain_module_get_clear_errors(toy_net):
    with pytest.raises(ValueError, match="cannot take an input of shape"):
        resource_table(toy_net(), (4, 16, 16))
    with pytest.raises(ValueError, match="optimizer_slots"):
        memory_estimate(toy_net(), (3, 16, 16), optimizer_slots=-1)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_resource_table_of_a_converted_model_is_the_float32_ones(dtype, time_limit):
    """A model converted before its first call once looped for ever looking for its input size."""
    torch.manual_seed(0)
    reference = resource_table(CifarNiN(), (3, 32, 32))
    with time_limit(60):
        table = resource_table(CifarNiN().to(dtype), (3, 32, 32))
    assert table.equals(reference)
