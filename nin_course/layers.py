"""The three building blocks of Network In Network (Lin, Chen & Yan 2013).

- the 1x1 convolution, which is a fully connected layer applied at every pixel;
- the mlpconv layer, eq. (2) of the paper: a small MLP slid over k x k patches,
  which is the same thing as a k x k convolution followed by 1x1 convolutions;
- global average pooling (GAP), which turns one feature map per class into one score per class.
"""
import numbers
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def conv1x1(in_channels, out_channels, bias=True):
    """A 1x1 convolution: (N, in_channels, H, W) -> (N, out_channels, H, W)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=bias)


def linear_at_every_pixel(X, linear):
    """Apply an nn.Linear to the channel vector of every pixel: (N, C, H, W) -> (N, C', H, W).

    This is what a 1x1 convolution computes; `conv1x1_from_linear` builds that convolution.
    """
    _check_4d(X, "linear_at_every_pixel")
    Y = linear(X.permute(0, 2, 3, 1))  # (N, H, W, C')
    return Y.permute(0, 3, 1, 2)


def conv1x1_from_linear(linear):
    """The 1x1 convolution with the same weights as an nn.Linear(in, out)."""
    conv = conv1x1(linear.in_features, linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(linear.weight[:, :, None, None])  # (out, in) -> (out, in, 1, 1)
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


class MLPConv(nn.Sequential):
    """Eq. (2) of Lin et al. 2013: a k x k convolution followed by 1x1 convolutions, each with ReLU.

    (N, in_channels, H, W) -> (N, out_channels[-1], H', W'), where H' = (H + 2p - k) // s + 1.
    `out_channels` lists the widths of the layers, the k x k one first: (192, 160, 96) is the
    first mlpconv of the paper's CIFAR network. `micro_kernel_size=3` swaps the 1x1 layers for
    3x3 ones (padding 1), d2l exercise 2. Two variants that are not in the paper:
    `batch_norm=True` puts a BatchNorm2d before every ReLU (Ioffe & Szegedy 2015; the
    convolutions then have no bias, the norm's shift is one); `last_relu=False` leaves out the
    last ReLU, so that the block's outputs (a NiN's class maps) can be negative and never die.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 micro_kernel_size=1, batch_norm=False, last_relu=True):
        in_channels, out_channels, kernel_size, stride, padding = _check_mlpconv_args(
            in_channels, out_channels, kernel_size, stride, padding, micro_kernel_size)
        layers, c_in = [], in_channels
        for i, c_out in enumerate(out_channels):
            k, s, p = (kernel_size, stride, padding) if i == 0 else (
                micro_kernel_size, 1, micro_kernel_size // 2)
            layers.append(nn.Conv2d(c_in, c_out, k, s, p, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            if last_relu or i < len(out_channels) - 1:
                layers.append(nn.ReLU())
            c_in = c_out
        super().__init__(*layers)
        self.in_channels, self.out_channels = in_channels, out_channels[-1]


def _check_mlpconv_args(in_channels, out_channels, kernel_size, stride, padding,
                        micro_kernel_size):
    """MLPConv's arguments as ints (or pairs), or an error that names the bad one."""
    if isinstance(out_channels, int) or not isinstance(out_channels, Sequence) \
            or len(out_channels) == 0:
        raise ValueError("out_channels must be a non-empty sequence of widths, "
                         f"e.g. (192, 160, 96); got {out_channels!r}")
    if isinstance(micro_kernel_size, bool) or micro_kernel_size not in (1, 3):
        raise ValueError(f"micro_kernel_size must be 1 or 3, got {micro_kernel_size!r}")
    widths = [check_int("each width in out_channels", c, example=96) for c in out_channels]
    if not (isinstance(padding, str) and padding in ("same", "valid")):  # torch's named ones
        padding = _check_int_or_pair("padding", padding, 0, example=1)
    return (check_int("in_channels", in_channels, example=3), widths,
            _check_int_or_pair("kernel_size", kernel_size, 1, example=3),
            _check_int_or_pair("stride", stride, 1, example=1), padding)


def global_avg_pool(X):
    """Average each channel over all positions: (N, C, H, W) -> (N, C)."""
    _check_4d(X, "global_avg_pool")
    return X.mean(dim=(2, 3))


class GlobalAvgPool2d(nn.Module):
    """Global average pooling as a layer: (N, C, H, W) -> (N, C), for any H and W."""

    def forward(self, X):
        return global_avg_pool(X)


def check_int(name, value, minimum=1, example=3):
    """`value` as an int if it is a whole number >= `minimum`; else an error naming `name`.

    Bools and floats are refused (TypeError), even True or 3.0: nn.Conv2d would take True as 1
    and fail on 3.0 deep inside torch. Numbers below `minimum` are a ValueError.
    """
    kind = {0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {kind}, e.g. {example}; got {value!r} "
                        f"(a {type(value).__name__}).")
    if value < minimum:
        raise ValueError(f"{name} must be {kind}, e.g. {example}; got {value!r}.")
    return int(value)


def _check_int_or_pair(name, value, minimum, example):
    """An int, or a (height, width) pair of ints, each >= `minimum`: what nn.Conv2d takes."""
    if isinstance(value, tuple) and len(value) == 2:
        return tuple(check_int(name, v, minimum, example) for v in value)
    return check_int(name, value, minimum, example)


def _check_4d(X, where):
    if X.ndim != 4:
        raise ValueError(f"{where} expects a batch of images of shape (N, C, H, W); "
                         f"got a tensor of shape {tuple(X.shape)}. Add a batch dimension with "
                         "X.unsqueeze(0) if you have a single image.")


def unfold_patches(X, kernel_size, stride=1, padding=0):
    """Every k x k patch as a vector: (N, C, H, W) -> (N, H'*W', C*k*k), rows in raster order."""
    _check_4d(X, "unfold_patches")
    return F.unfold(X, kernel_size, stride=stride, padding=padding).transpose(1, 2)
