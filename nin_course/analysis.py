"""Reading a network: its leaf layers, what each one computes, how many of a kind, and how much
of the input one output position sees.

`layer_name` describes a layer by the function it computes ('Conv2d 96->96 3x3 pad 1'), so that
`padding=1` and `padding='same'` read alike; the exercises' checks compare networks this way.
"""
from torch import nn


def leaf_layers(module):
    """The modules without children, in registration order (the forward order of a Sequential)."""
    return [m for m in module.modules() if not any(m.children())]


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def conv_padding(layer):
    """The zeros a convolution adds (top, bottom, left, right), however `padding` was spelled.

    `padding=1`, `padding=(1, 1)` and `padding='same'` give a 3x3, stride-1 convolution the same
    (1, 1, 1, 1); 'same' puts the odd zero after the map, as PyTorch does for an even kernel.
    """
    if layer.padding == "valid":
        return (0, 0, 0, 0)
    if layer.padding == "same":
        sides = []
        for k, d in zip(_pair(layer.kernel_size), _pair(layer.dilation)):
            total = d * (k - 1)
            sides += [total // 2, total - total // 2]
        return tuple(sides)
    ph, pw = _pair(layer.padding)
    return (ph, ph, pw, pw)


def _padding_name(top, bottom, left, right):
    """' pad 1', ' pad (1, 2)', '' for none."""
    if top == bottom == left == right:
        return f" pad {top}" if top else ""
    if top == bottom and left == right:
        return f" pad ({top}, {left})"
    return f" pad (top {top}, bottom {bottom}, left {left}, right {right})"


def _conv_name(layer):
    """What a convolution computes, in one line: 'Conv2d 96->96 3x3 pad 1', 'Conv2d 1->96 11x11/4'."""
    (kh, kw), stride, dilation = _pair(layer.kernel_size), _pair(layer.stride), _pair(layer.dilation)
    padding = conv_padding(layer)
    name = f"Conv2d {layer.in_channels}->{layer.out_channels} {kh}x{kw}"
    if stride != (1, 1):
        name += f"/{stride[0]}" if stride[0] == stride[1] else f"/{stride}"
    name += _padding_name(*padding)
    if any(padding) and layer.padding_mode != "zeros":
        name += f" ({layer.padding_mode})"
    if dilation != (1, 1):
        name += f" dilation {dilation[0] if dilation[0] == dilation[1] else dilation}"
    if layer.groups != 1:
        name += f" in {layer.groups} groups"
    return name + (" without bias" if layer.bias is None else "")


def layer_name(layer):
    """'Conv2d 96->96 3x3 pad 1', 'ReLU', 'MaxPool2d 3x3/2', 'Linear 250->10': what it computes.

    Two layers get the same name when they compute the same function of the same weights,
    whatever the spelling of their arguments (`padding=1` or `padding='same'`, `stride=(2, 2)`).
    """
    if isinstance(layer, nn.Conv2d):
        return _conv_name(layer)
    kind = type(layer).__name__
    if isinstance(layer, nn.Linear):
        bias = "" if layer.bias is not None else " without bias"
        return f"{kind} {layer.in_features}->{layer.out_features}{bias}"
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        (kh, kw), (sh, _) = _pair(layer.kernel_size), _pair(layer.stride or layer.kernel_size)
        ph, pw = _pair(layer.padding)
        return (f"{kind} {kh}x{kw}/{sh}" + _padding_name(ph, ph, pw, pw)
                + (" ceil" if layer.ceil_mode else ""))
    return kind


def count_layers(module, kind, kernel_size=None):
    """How many leaf layers of type `kind` (with this kernel size, for convolutions)."""
    return sum(isinstance(m, kind) and (kernel_size is None
                                        or _pair(m.kernel_size) == _pair(kernel_size))
               for m in leaf_layers(module))


def _walk(module):
    """(receptive field, output stride) of a chain of conv/pool layers, along the height.

    Walks the leaf layers in order: r += (k - 1) * dilation * jump, jump *= stride, starting at
    r = 1, jump = 1 (layers without a kernel, such as ReLU, change nothing).
    """
    size, jump = 1, 1
    for layer in leaf_layers(module):
        if hasattr(layer, "kernel_size") and hasattr(layer, "stride"):
            k, s = _pair(layer.kernel_size)[0], _pair(layer.stride or layer.kernel_size)[0]
            dilation = _pair(getattr(layer, "dilation", 1))[0]
            size += (k - 1) * dilation * jump
            jump *= s
    return size, jump


def receptive_field(module):
    """Side of the input square that one output position of `module` sees, in input pixels.

    nin_block(1, 96, 11, 4, 0): 11 (its 1x1 layers add nothing); with 3x3 micro layers after
    the stride-4 convolution, 11 + 2 * 2 * 4 = 27.
    """
    return _walk(module)[0]


def output_stride(module):
    """Input pixels between neighbouring output positions of `module`: the product of strides."""
    return _walk(module)[1]
