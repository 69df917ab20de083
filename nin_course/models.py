"""Network In Network models: d2l's NiN (d2l.ai 8.3), the paper's CIFAR NIN, a VGG-style family,
and FashionNiN, a NiN with batch norm sized for 28x28 images (the fast recipe's network).

Every model is an `ImageClassifier`: `features` (mlpconv blocks and pooling) then `head`
(global average pooling by default). Variants are arguments, not copies:
`num_1x1` (0-3 micro layers per block), `micro_kernel_size` (1 or 3), `head` ('gap', 'fc',
'fc+dropout'). Models are initialised when they are built (see `init_cnn`).
"""
import torch
from torch import nn

from .layers import GlobalAvgPool2d, MLPConv, check_int
from .modes import evaluating

HEADS = ("gap", "fc", "fc+dropout")
# Stages of VGG-11/16/19 (Simonyan & Zisserman 2015, table 1): convolutions per stage.
VGG_ARCHS = {"vgg11": (1, 1, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
VGG_WIDTHS = (64, 128, 256, 512, 512)
MAX_INPUT_SIZE = 4096  # a model whose features fail at this size cannot run at all


def init_cnn(module):
    """Xavier-uniform weights for every Conv2d and Linear, as d2l's `init_cnn`.

    d2l calls `self.net.apply(d2l.init_cnn)` in `NiN.__init__`, where its lazy layers are not yet
    `nn.Conv2d`, so nothing happens until a later `apply_init`. Our layers are not lazy, so
    applying this at build time really initialises them. Biases keep PyTorch's default, uniform
    in +-1/sqrt(fan_in), as in the book.
    """
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)


def init_gaussian(module):
    """Gaussian weights with std 0.05 and zero biases: the released Caffe model of Lin et al."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.normal_(module.weight, std=0.05)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def init_kaiming(module):
    """He et al. (2015) normal weights for ReLU networks (std sqrt(2 / fan_in)), zero biases."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


# How a model's weights start: 'xavier' is the book's (d2l.init_cnn), 'gaussian' the paper's
# released model's, 'kaiming' the usual choice for ReLU networks.
INITS = {"xavier": init_cnn, "gaussian": init_gaussian, "kaiming": init_kaiming}
# The course's NiN recipes change the book's init to this one: in the plateau study
# (benchmarks/results/cpu_plateau_study.txt) it was the change that got d2l's NiN off the ln(10)
# plateau in every seed with its architecture unchanged. The models' own default stays the book's.
COURSE_INIT = "kaiming"


def block_widths(widths, num_1x1):
    """Layer widths of one mlpconv block with `num_1x1` micro layers, keeping its output width.

    (192, 160, 96) with num_1x1=0 -> (96,), 1 -> (192, 96), 2 -> (192, 160, 96),
    3 -> (192, 160, 160, 96).
    """
    if check_int("num_1x1", num_1x1, minimum=0, example=2) not in (0, 1, 2, 3):
        raise ValueError(f"num_1x1 must be 0, 1, 2 or 3 micro layers per block; got {num_1x1!r}")
    first, middle, last = widths
    return ((last,), (first, last), (first, middle, last), (first, middle, middle, last))[num_1x1]


def nin_block(in_channels, out_channels, kernel_size, stride, padding, num_1x1=2,
              micro_kernel_size=1, batch_norm=False, last_relu=True):
    """d2l's NiN block: a k x k convolution and `num_1x1` 1x1 convolutions, all `out_channels` wide.

    (N, in_channels, H, W) -> (N, out_channels, H', W'), H' = (H + 2 * padding - kernel_size)
    // stride + 1.
    """
    out_channels = check_int("out_channels", out_channels, example=96)
    widths = block_widths((out_channels,) * 3, num_1x1)
    return MLPConv(in_channels, widths, kernel_size, stride, padding, micro_kernel_size,
                   batch_norm, last_relu)


class ImageClassifier(nn.Module):
    """`features` then `head`: (N, in_channels, H, W) -> (N, num_classes) logits.

    Checks its input and says what is wrong with it (channels, rank, dtype, size) before torch
    would.
    """

    def __init__(self, features, in_channels, num_classes, input_size, head="gap", init="xavier"):
        super().__init__()
        in_channels, num_classes, input_size = _check_sizes(in_channels, num_classes, input_size)
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}; got {head!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {sorted(INITS)}; got {init!r}")
        self.features = features
        self.in_channels, self.num_classes = in_channels, num_classes
        self.input_size, self.head_kind = input_size, head
        maps = self._feature_shape(input_size)  # (num_classes, h, w) for a NiN
        if maps is None:
            raise ValueError(f"input_size={input_size} is too small for {type(self).__name__}: "
                             f"its features shrink the image to nothing. Use at least "
                             f"{self.min_input_size} pixels.")
        self.head = make_head(head, maps, num_classes)
        self.apply(INITS[init])

    def forward(self, X):
        self.check_input(X)
        self.check_dtype(X)  # not in check_input: costs/trace.py checks shapes with float32 meta
        return self.head(self.features(X))

    def check_input(self, X):
        """Raise a ValueError that says how to fix X if this model cannot take its shape."""
        name = type(self).__name__
        if not isinstance(X, torch.Tensor) or X.ndim != 4:
            shape = tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__
            raise ValueError(f"{name} expects a batch of images of shape (N, {self.in_channels}, "
                             f"H, W); got {shape}. Add a batch dimension with X.unsqueeze(0).")
        if X.shape[1] != self.in_channels:
            raise ValueError(f"{name} was built for {self.in_channels}-channel images, got "
                             f"{X.shape[1]} channels (input shape {tuple(X.shape)}). Build it with "
                             f"in_channels={X.shape[1]}, or convert the images.")
        H, W = X.shape[-2:]
        if self.head_kind != "gap" and (H, W) != (self.input_size, self.input_size):
            raise ValueError(f"{name} with a '{self.head_kind}' head takes exactly "
                             f"{self.input_size}x{self.input_size} images, got {H}x{W}: a fully "
                             "connected head fixes the input size (global average pooling does not).")
        if min(H, W) < self.min_input_size:
            raise ValueError(f"{name} needs images of at least {self.min_input_size}x"
                             f"{self.min_input_size} pixels; got {H}x{W}. Resize the inputs "
                             f"(e.g. to {self.input_size}) or use a network sized for them.")

    def check_dtype(self, X):
        """Raise a TypeError that says how to convert X if its dtype is not the model's.

        A dtype comparison only. Under autocast torch casts floating inputs itself (a float32
        batch into a bfloat16 convolution), so any floating X passes there.
        """
        param = next(self.parameters(), None)
        if param is None or X.dtype == param.dtype:
            return
        device = X.device.type
        if X.is_floating_point() and torch.amp.is_autocast_available(device) \
                and torch.is_autocast_enabled(device):
            return
        convert = "X.float()" if param.dtype == torch.float32 else f"X.to({param.dtype})"
        if X.dtype == torch.uint8:
            convert = f"{convert} / 255 (pixels 0-255 to 0-1)"
        loaders = (", or load them with nin_course.data.loaders.load_data, which gives float32 "
                   "batches") if param.dtype == torch.float32 else ""
        raise TypeError(f"{type(self).__name__}'s weights are {param.dtype}, but the images are "
                        f"{X.dtype}. Convert them with {convert}{loaders}.")

    @property
    def min_input_size(self):
        """The smallest square input the features keep at least 1x1 (found once, on 'meta').

        Output sizes of convolutions and pools grow with their input, so the sizes that work
        are all those from some n up: a bisection finds n in ~12 shape-only passes. A model that
        fails even at MAX_INPUT_SIZE cannot run at all (its first layer wants other channels,
        say), and gets a ValueError that says so instead of a search.
        """
        if not hasattr(self, "_min_input_size"):
            self._min_input_size = self._search_min_input_size()
        return self._min_input_size

    def _search_min_input_size(self):
        """Bisect for the smallest working size: `low` always fails (or is 0), `high` works."""
        if self._feature_shape(self.input_size) is not None:
            low, high = 0, self.input_size
        else:
            low, high = self.input_size, max(MAX_INPUT_SIZE, self.input_size + 1)
            self._check_runs_at(high)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if self._feature_shape(middle) is not None else (middle, high)
        return high

    def _check_runs_at(self, size):
        """Raise a ValueError that says why if the features cannot take a size x size input."""
        name, shape = type(self).__name__, (1, self.in_channels, size, size)
        try:
            maps = _meta_features(self.features, shape)
        except RuntimeError as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise ValueError(
                f"{name} cannot run on any input: its features fail on a batch of shape {shape} "
                f"({type(error).__name__}: {reason}). Check that in_channels={self.in_channels} "
                "is what its first layer takes, and that each layer takes the channels the one "
                "before gives.") from error
        if not all(d >= 1 for d in maps[1:]):
            raise ValueError(f"{name}'s features shrink every input of up to {size} pixels to "
                             "nothing")

    def _feature_shape(self, size):
        """(C, h, w) of the features for a size x size input, or None if it shrinks to nothing."""
        try:
            shape = _meta_features(self.features, (1, self.in_channels, size, size))
        except RuntimeError:  # a window larger than its input (or no size works: see above)
            return None
        return shape if all(d >= 1 for d in shape[1:]) else None


def _check_sizes(in_channels, num_classes, input_size):
    """A classifier's sizes as ints, or an error that names the bad one."""
    return (check_int("in_channels", in_channels, example=3),
            check_int("num_classes", num_classes, example=10),
            check_int("input_size", input_size, example=224))


def _meta_features(features, shape):
    """Output shape, less the batch, of `features` on a float32 'meta' batch (shapes only).

    Float32 whatever the model's dtype (shapes do not depend on it); the real parameters are
    not touched, and batch norm runs in eval mode (in training it refuses 1 value per channel).
    """
    state = {k: torch.empty_like(v, device="meta",
                                 dtype=torch.float32 if v.is_floating_point() else v.dtype)
             for k, v in features.state_dict().items()}
    X = torch.empty(shape, device="meta")
    with evaluating(features):  # every submodule's own mode comes back after it
        return tuple(torch.func.functional_call(features, state, (X,)).shape[1:])


def make_head(head, maps, num_classes):
    """The classifier on top of (C, h, w) feature maps: 'gap', 'fc' or 'fc+dropout'."""
    C, h, w = maps
    if head == "gap":
        return GlobalAvgPool2d()  # (N, C, h, w) -> (N, C), one map per class
    layers = [nn.Flatten()]  # (N, C * h * w)
    if head == "fc+dropout":
        layers.append(nn.Dropout(0.5))
    return nn.Sequential(*layers, nn.Linear(C * h * w, num_classes))


class NiN(ImageClassifier):
    """d2l's NiN (d2l.ai 8.3): blocks of 96/256/384/num_classes channels, kernels 11/5/3/3.

    Max-pool 3/2 after the first three blocks, dropout 0.5 before the last, then the head.
    On a 1x224x224 input: 96x54x54 -> 96x26x26 -> 256x26x26 -> 256x12x12 -> 384x12x12 ->
    384x5x5 -> 10x5x5 -> 10; 1,992,166 parameters. `init`, `batch_norm` and `last_relu` are the
    variants that the plateau study (train/plateau.py) compares; the defaults are the book's.
    """

    def __init__(self, num_classes=10, in_channels=1, num_1x1=2, micro_kernel_size=1, head="gap",
                 input_size=224, init="xavier", batch_norm=False, last_relu=True):
        in_channels, num_classes, input_size = _check_sizes(in_channels, num_classes, input_size)

        def block(c_in, c_out, k, s, p, last=True):
            return nin_block(c_in, c_out, k, s, p, num_1x1, micro_kernel_size, batch_norm, last)
        features = nn.Sequential(
            block(in_channels, 96, 11, 4, 0), nn.MaxPool2d(3, stride=2),
            block(96, 256, 5, 1, 2), nn.MaxPool2d(3, stride=2),
            block(256, 384, 3, 1, 1), nn.MaxPool2d(3, stride=2),
            nn.Dropout(0.5),
            block(384, num_classes, 3, 1, 1, last_relu))
        super().__init__(features, in_channels, num_classes, input_size, head, init)


class CifarNiN(ImageClassifier):
    """The paper's CIFAR NIN, as released with the original Caffe model (Lin et al. 2013, sec. 4.2).

    192(5x5)-160-96, max-pool 3/2, dropout 0.5; 192(5x5)-192-192, avg-pool 3/2, dropout 0.5;
    192(3x3)-192-num_classes; global average pooling. 32x32 -> 16x16 -> 8x8 (Caffe rounds the
    pooled size up, hence ceil_mode). 966,986 parameters for 10 classes, 984,356 for 100.
    `init`, `batch_norm` and `last_relu` as for `NiN`; the defaults are Xavier-uniform weights
    and the paper's layers.
    """

    def __init__(self, num_classes=10, in_channels=3, num_1x1=2, micro_kernel_size=1, head="gap",
                 input_size=32, init="xavier", batch_norm=False, last_relu=True):
        in_channels, num_classes, input_size = _check_sizes(in_channels, num_classes, input_size)

        def block(c_in, widths, k, p, last=True):
            return MLPConv(c_in, block_widths(widths, num_1x1), k, 1, p, micro_kernel_size,
                           batch_norm, last)
        features = nn.Sequential(
            block(in_channels, (192, 160, 96), 5, 2),
            nn.MaxPool2d(3, stride=2, ceil_mode=True), nn.Dropout(0.5),
            block(96, (192, 192, 192), 5, 2),
            nn.AvgPool2d(3, stride=2, ceil_mode=True), nn.Dropout(0.5),
            block(192, (192, 192, num_classes), 3, 1, last_relu))
        super().__init__(features, in_channels, num_classes, input_size, head, init)


class VGGNiN(ImageClassifier):
    """A NiN built the way VGG-11/16/19 are (d2l exercise 8.3.6).

    VGG's design decisions: stages of 3x3 convolutions (VGG_ARCHS gives how many), widths
    64-128-256-512-512 (divided by `ratio`), a 2x2 max-pool halving the maps after each stage.
    Here each 3x3 convolution becomes an mlpconv (3x3 conv + `num_1x1` 1x1 convs), and VGG's
    three fully connected layers become dropout, an mlpconv to num_classes maps and the head.
    """

    def __init__(self, arch="vgg11", num_classes=10, in_channels=1, ratio=1, num_1x1=1,
                 micro_kernel_size=1, head="gap", input_size=224):
        if arch not in VGG_ARCHS:
            raise ValueError(f"arch must be one of {sorted(VGG_ARCHS)}; got {arch!r}")
        in_channels, num_classes, input_size = _check_sizes(in_channels, num_classes, input_size)
        ratio = check_int("ratio", ratio, example=8)  # widths are 64/ratio ... 512/ratio
        block_widths((1, 1, 1), num_1x1)  # 0-3 micro layers, as in every other model
        layers, c_in = [], in_channels
        for num_convs, width in zip(VGG_ARCHS[arch], VGG_WIDTHS):
            c_out = max(width // ratio, 1)
            for _ in range(num_convs):
                layers.append(MLPConv(c_in, (c_out,) * (num_1x1 + 1), 3, 1, 1, micro_kernel_size))
                c_in = c_out
            layers.append(nn.MaxPool2d(2, stride=2))
        layers += [nn.Dropout(0.5), MLPConv(c_in, (num_classes,) * (num_1x1 + 1), 3, 1, 1,
                                            micro_kernel_size)]
        self.arch = arch
        super().__init__(nn.Sequential(*layers), in_channels, num_classes, input_size, head)


def num_parameters(model):
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def shape_walk(model, X):
    """Output shape after each top-level layer: [(name, shape without the batch dimension), ...].

    For an ImageClassifier the layers are those of `features`, then the head.
    """
    if isinstance(model, ImageClassifier):
        model.check_input(X)
        model.check_dtype(X)
        layers = [*model.features.named_children(), ("head", model.head)]
    else:
        layers = list(model.named_children())
    walk = []
    with torch.no_grad():
        for name, layer in layers:
            X = layer(X)
            walk.append((f"{name} {type(layer).__name__}", tuple(X.shape[1:])))
    return walk


class FashionNiN(ImageClassifier):
    """A NiN for 28x28 grey images: three mlpconv blocks with batch norm, global average pooling.

    5x5 mlpconv 32-32 with stride 2 (28 -> 14), 3x3 mlpconv 64-64, max-pool 2 (14 -> 7),
    3x3 mlpconv 128-128, and a 1x1 convolution to one map per class *without* a ReLU, then
    global average pooling: 1x28x28 -> 32x14x14 -> 64x14x14 -> 64x7x7 -> 128x7x7 -> 10x7x7 ->
    10. Batch normalisation (Ioffe & Szegedy 2015, two years after NIN; d2l.ai 8.5) before
    every ReLU keeps every layer's inputs at a steady scale, so the network learns quickly at a
    high learning rate; with no ReLU on the class maps a logit can be negative and no class map
    can die. 116,650 parameters and 9.3 million multiply-adds per image, against 2.0 million
    and 0.76 billion for d2l's NiN at 224x224. `batch_norm=False` and `last_relu=True` undo
    those two changes (for ablations); `init` as for NiN.
    """

    def __init__(self, num_classes=10, in_channels=1, widths=(32, 64, 128), input_size=28,
                 batch_norm=True, last_relu=False, init="xavier"):
        a, b, c = widths
        features = nn.Sequential(
            MLPConv(in_channels, (a, a), 5, 2, 2, batch_norm=batch_norm),  # (N, a, 14, 14)
            MLPConv(a, (b, b), 3, 1, 1, batch_norm=batch_norm),            # (N, b, 14, 14)
            nn.MaxPool2d(2),                                               # (N, b, 7, 7)
            MLPConv(b, (c, c), 3, 1, 1, batch_norm=batch_norm),            # (N, c, 7, 7)
            nn.Conv2d(c, num_classes, kernel_size=1),                      # (N, num_classes, 7, 7)
            *([nn.ReLU()] if last_relu else []))
        super().__init__(features, in_channels, num_classes, input_size, init=init)
        # Find the smallest input size now, in eval mode: in training mode, batch norm cannot
        # run on the 1x1 maps of a single test image that the search uses.
        with evaluating(self):
            self.min_input_size  # noqa: B018 (computed once and cached)
