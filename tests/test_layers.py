"""nin_course.layers against explicit references: nn.Linear, conv stacks, unfold + shared MLP."""
import numpy as np
import pytest
import torch
from torch import nn

from nin_course.layers import (GlobalAvgPool2d, MLPConv, conv1x1, conv1x1_from_linear,
                               global_avg_pool, linear_at_every_pixel, unfold_patches)


def test_conv1x1_equals_linear_at_every_pixel():
    torch.manual_seed(0)
    X = torch.randn(2, 5, 7, 6)
    linear = nn.Linear(5, 3)
    expected = torch.einsum("nchw,oc->nohw", X, linear.weight) + linear.bias[:, None, None]
    torch.testing.assert_close(linear_at_every_pixel(X, linear), expected)
    torch.testing.assert_close(conv1x1_from_linear(linear)(X), expected)


def test_conv1x1_shape_and_parameters():
    conv = conv1x1(384, 10)
    assert conv(torch.zeros(1, 384, 5, 5)).shape == (1, 10, 5, 5)
    assert sum(p.numel() for p in conv.parameters()) == 384 * 10 + 10


def explicit_stack(mlpconv):
    """The same layers as `mlpconv`, built one by one from its convolutions."""
    convs = [m for m in mlpconv if isinstance(m, nn.Conv2d)]
    layers = []
    for conv in convs:
        twin = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                         conv.padding)
        twin.load_state_dict(conv.state_dict())
        layers += [twin, nn.ReLU()]
    return nn.Sequential(*layers)


@pytest.mark.parametrize("micro_kernel_size", [1, 3])
def test_mlpconv_equals_explicit_conv_stack(micro_kernel_size):
    torch.manual_seed(0)
    layer = MLPConv(3, (8, 6, 4), kernel_size=5, stride=1, padding=2,
                    micro_kernel_size=micro_kernel_size)
    X = torch.randn(2, 3, 12, 12)
    torch.testing.assert_close(layer(X), explicit_stack(layer)(X))
    assert layer(X).shape == (2, 4, 12, 12)
    assert (layer.in_channels, layer.out_channels) == (3, 4)


def mlpconv_from_scratch(X, layer, kernel_size, stride, padding):
    """Eq. (2): one MLP, shared by every k x k patch: (N, C, H, W) -> (N, C', H', W')."""
    N, _, H, W = X.shape
    patches = unfold_patches(X, kernel_size, stride, padding)  # (N, H'*W', C*k*k)
    convs = [m for m in layer if isinstance(m, nn.Conv2d)]
    h = patches
    for conv in convs:
        h = torch.relu(h @ conv.weight.flatten(1).T + conv.bias)  # (N, H'*W', C_out)
    H_out = (H + 2 * padding - kernel_size) // stride + 1
    W_out = (W + 2 * padding - kernel_size) // stride + 1
    return h.transpose(1, 2).reshape(N, -1, H_out, W_out)


def test_mlpconv_is_an_mlp_slid_over_patches():
    torch.manual_seed(0)
    layer = MLPConv(3, (16, 8, 5), kernel_size=3, stride=2, padding=1)
    X = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(mlpconv_from_scratch(X, layer, 3, 2, 1), layer(X))


def test_global_avg_pool():
    X = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    torch.testing.assert_close(global_avg_pool(X), X.mean(dim=(2, 3)))
    torch.testing.assert_close(GlobalAvgPool2d()(X), nn.AdaptiveAvgPool2d(1)(X).flatten(1))
    assert GlobalAvgPool2d()(torch.zeros(1, 10, 13, 7)).shape == (1, 10)


@pytest.mark.parametrize("bad", [(192,), [], 192])
def test_mlpconv_rejects_bad_widths(bad):
    if bad == (192,):
        assert MLPConv(3, bad, 5).out_channels == 192  # a single conv is a valid mlpconv
        return
    with pytest.raises(ValueError, match="non-empty sequence"):
        MLPConv(3, bad, 5)


def test_clear_errors_on_bad_rank():
    with pytest.raises(ValueError, match="unsqueeze"):
        global_avg_pool(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        linear_at_every_pixel(torch.zeros(4, 4), nn.Linear(4, 4))
    with pytest.raises(ValueError, match="micro_kernel_size"):
        MLPConv(3, (4, 4), 3, micro_kernel_size=2)


def test_mlpconv_variants_batch_norm_and_no_last_relu():
    """batch_norm: conv (no bias) -> BatchNorm2d -> ReLU per layer; last_relu=False: no final
    ReLU, so the outputs can be negative. Both keep the shapes and the stride of the first conv."""
    torch.manual_seed(0)
    X = torch.randn(4, 3, 9, 9)
    kinds = [type(m) for m in MLPConv(3, (8, 4), 3, stride=2, padding=1, batch_norm=True)]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] * 2
    norm = MLPConv(3, (8, 4), 3, stride=2, padding=1, batch_norm=True)
    assert all(m.bias is None for m in norm if isinstance(m, nn.Conv2d))
    assert norm(X).shape == (4, 4, 5, 5) and (norm(X) >= 0).all()
    open_end = MLPConv(3, (8, 4), 3, stride=2, padding=1, last_relu=False)
    assert [type(m) for m in open_end] == [nn.Conv2d, nn.ReLU, nn.Conv2d]
    Y = open_end(X)
    assert (Y < 0).any()
    torch.testing.assert_close(torch.relu(Y), explicit_stack(open_end)(X))  # only the ReLU differs
    kinds = [type(m) for m in MLPConv(3, (8, 4), 3, batch_norm=True, last_relu=False)]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.BatchNorm2d]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"kernel_size": 11.0}, TypeError, r"kernel_size must be a positive integer.*11\.0 \(a float\)"),
    ({"kernel_size": True}, TypeError, r"kernel_size .*True \(a bool\)"),
    ({"kernel_size": 0}, ValueError, "kernel_size must be a positive integer"),
    ({"kernel_size": (3, 0)}, ValueError, "kernel_size"),
    ({"stride": 0}, ValueError, "stride must be a positive integer"),
    ({"padding": -1}, ValueError, "padding must be a non-negative integer"),
    ({"in_channels": 0}, ValueError, "in_channels must be a positive integer"),
    ({"out_channels": (8, 2.5)}, TypeError, r"each width in out_channels .*2\.5"),
    ({"out_channels": (8, 0)}, ValueError, "each width in out_channels"),
    ({"micro_kernel_size": True}, ValueError, "micro_kernel_size must be 1 or 3"),
])
def test_mlpconv_names_a_bad_argument_before_torch_does(kwargs, error, match):
    args = {"in_channels": 3, "out_channels": (8, 4), "kernel_size": 3, **kwargs}
    with pytest.raises(error, match=match):
        MLPConv(**args)


def test_mlpconv_takes_what_conv2d_takes_for_sizes():
    """Pairs (lesson 02's (1, 2) patch), numpy integers and torch's named paddings."""
    layer = MLPConv(np.int64(1), (16, np.int32(16)), (1, 2), stride=(1, 1), padding="valid")
    assert layer[0].kernel_size == (1, 2) and layer.out_channels == 16
    same = MLPConv(3, (8, 4), 3, padding="same")
    assert same(torch.zeros(1, 3, 7, 5)).shape == (1, 4, 7, 5)
