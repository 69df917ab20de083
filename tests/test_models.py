"""nin_course.models: the figures the course quotes, parity with the book's own code, variants."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from nin_course.models import (CifarNiN, FashionNiN, ImageClassifier, NiN, VGGNiN, block_widths,
                               nin_block, num_parameters, shape_walk)

D2L_SHAPE_WALK = [(96, 54, 54), (96, 26, 26), (256, 26, 26), (256, 12, 12), (384, 12, 12),
                  (384, 5, 5), (384, 5, 5), (10, 5, 5), (10,)]


@pytest.mark.parametrize("kwargs, expected", [
    ({}, 1_992_166),
    ({"num_1x1": 1}, 1_769_112),
    ({"num_1x1": 3}, 2_215_220),
    ({"micro_kernel_size": 3}, 5_549_094),
])
def test_d2l_nin_parameter_counts(kwargs, expected):
    assert num_parameters(NiN(**kwargs)) == expected


def test_d2l_nin_shape_walk():
    walk = shape_walk(NiN().eval(), torch.zeros(1, 1, 224, 224))
    assert [shape for _, shape in walk] == D2L_SHAPE_WALK


@pytest.mark.parametrize("num_classes, expected", [(10, 966_986), (100, 984_356)])
def test_cifar_nin_parameter_counts(num_classes, expected):
    assert num_parameters(CifarNiN(num_classes)) == expected


def test_cifar_nin_rounds_pooling_up_like_caffe():
    walk = shape_walk(CifarNiN().eval(), torch.zeros(1, 3, 32, 32))
    spatial = [shape[1:] for _, shape in walk[:-1]]
    assert spatial == [(32, 32), (16, 16), (16, 16), (16, 16), (8, 8), (8, 8), (8, 8)]
    assert walk[-1][1] == (10,)


def d2l_nin_layers():
    """The book's NiN from the d2l package, materialised by one forward pass."""
    from d2l import torch as d2l

    from nin_course import reference
    model = reference.NiN(lr=0.05, num_classes=10)
    X = torch.zeros(1, 1, 224, 224)
    model.apply_init([X], d2l.init_cnn)
    shapes = []
    with torch.no_grad():
        for layer in model.net:
            X = layer(X)
            shapes.append(tuple(X.shape[1:]))
    params = [sum(p.numel() for p in layer.parameters()) for layer in model.net]
    return shapes, params


def test_parity_with_the_books_d2l_nin():
    """Layer by layer: the same output shapes and parameter counts as d2l.NiN."""
    theirs_shapes, theirs_params = d2l_nin_layers()
    ours = NiN().eval()
    ours_layers = list(ours.features) + [ours.head]
    ours_shapes = [shape for _, shape in shape_walk(ours, torch.zeros(1, 1, 224, 224))]
    ours_params = [sum(p.numel() for p in layer.parameters()) for layer in ours_layers]
    # d2l ends with AdaptiveAvgPool2d + Flatten where we have one GlobalAvgPool2d layer.
    assert theirs_shapes[:-2] == ours_shapes[:-1]
    assert theirs_shapes[-1] == ours_shapes[-1] == (10,)
    assert theirs_params[:-2] == ours_params[:-1] and sum(theirs_params) == sum(ours_params)


def test_d2l_imports_without_its_pins():
    from d2l import torch as d2l
    assert hasattr(d2l, "Trainer") and hasattr(d2l, "FashionMNIST")


def test_the_books_init_does_nothing_until_apply_init():
    """The quirk our models avoid: d2l's lazy layers are not initialised in __init__."""
    from nin_course import reference
    model = reference.NiN()
    assert isinstance(model.net[0][0], nn.LazyConv2d)
    assert model.net[0][0].has_uninitialized_params()


def test_models_are_initialised_when_built():
    """Xavier-uniform bound sqrt(6 / (fan_in + fan_out)), not PyTorch's default 1/sqrt(fan_in)."""
    torch.manual_seed(0)
    conv = NiN().features[0][0]  # Conv2d(1, 96, 11)
    fan_in, fan_out = 1 * 11 * 11, 96 * 11 * 11
    bound = math.sqrt(6 / (fan_in + fan_out))
    assert conv.weight.abs().max() <= bound
    assert conv.weight.abs().max() > 0.95 * bound
    assert bound < 0.5 / math.sqrt(fan_in)  # far from the default, so the test can tell


def test_block_widths_and_nin_block():
    assert block_widths((192, 160, 96), 0) == (96,)
    assert block_widths((192, 160, 96), 3) == (192, 160, 160, 96)
    block = nin_block(1, 96, 11, 4, 0, num_1x1=1)
    assert sum(isinstance(m, nn.ReLU) for m in block) == 2
    with pytest.raises(ValueError, match="num_1x1"):
        block_widths((1, 2, 3), 4)


@pytest.mark.parametrize("head", ["fc", "fc+dropout"])
def test_fc_heads(head):
    model = NiN(head=head, input_size=128).eval()
    assert model(torch.zeros(2, 1, 128, 128)).shape == (2, 10)
    linear = model.head[-1]
    assert linear.in_features == 10 * 2 * 2  # 10 maps of 2x2 at 128 px
    assert any(isinstance(m, nn.Dropout) for m in model.head) == (head == "fc+dropout")
    with pytest.raises(ValueError, match="exactly 128x128"):
        model(torch.zeros(1, 1, 96, 96))


def test_gap_takes_any_input_size():
    model = NiN().eval()
    for size in (67, 96, 224, 300):
        assert model(torch.zeros(1, 1, size, size)).shape == (1, 10)


def test_vgg_family_gets_deeper_and_wider():
    counts = {}
    for arch in ("vgg11", "vgg16", "vgg19"):
        model = VGGNiN(arch, ratio=8, input_size=64).eval()
        assert model(torch.zeros(1, 1, 64, 64)).shape == (1, 10)
        counts[arch] = num_parameters(model)
    assert counts["vgg11"] < counts["vgg16"] < counts["vgg19"]


@pytest.mark.parametrize("X, match", [
    (torch.zeros(1, 3, 224, 224), "built for 1-channel images, got 3"),
    (torch.zeros(1, 1, 28, 28), "at least 67x67"),
    (torch.zeros(1, 224, 224), "unsqueeze"),
])
def test_bad_inputs_get_clear_errors(X, match):
    with pytest.raises(ValueError, match=match):
        NiN()(X)


def test_bad_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="head must be one of"):
        NiN(head="mlp")
    with pytest.raises(ValueError, match="arch must be one of"):
        VGGNiN("vgg13")
    with pytest.raises(ValueError, match="too small"):
        NiN(head="fc", input_size=32)


def convs_of(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_default_variants_keep_the_books_layers():
    """init='xavier', batch_norm=False, last_relu=True: the counts and layers quoted above."""
    model = NiN(init="xavier", batch_norm=False, last_relu=True)
    assert num_parameters(model) == num_parameters(NiN()) == 1_992_166
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(conv.bias is not None for conv in convs_of(model))
    assert isinstance(model.features[-1][-1], nn.ReLU)


def test_gaussian_init_is_the_papers_released_model():
    """Lin et al.'s Caffe model: weights N(0, 0.05^2), biases 0; Xavier keeps PyTorch's biases."""
    torch.manual_seed(0)
    model = CifarNiN(init="gaussian")
    weights = torch.cat([conv.weight.flatten() for conv in convs_of(model)])
    assert weights.std().item() == pytest.approx(0.05, rel=0.02)
    assert abs(weights.mean().item()) < 0.001
    assert all(torch.count_nonzero(conv.bias) == 0 for conv in convs_of(model))
    assert torch.count_nonzero(convs_of(CifarNiN())[0].bias) > 0  # the default's are not 0


def test_kaiming_init_has_zero_biases_and_he_scale():
    torch.manual_seed(0)
    model = CifarNiN(init="kaiming")
    assert all(torch.count_nonzero(conv.bias) == 0 for conv in convs_of(model))
    for conv in convs_of(model)[:2]:  # 3x5x5 = 75 and 192 inputs per unit
        fan_in = conv.weight[0].numel()
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)
    with pytest.raises(ValueError, match="init must be one of"):
        NiN(init="uniform")


def test_batch_norm_puts_a_norm_after_every_conv_and_drops_their_biases():
    model = NiN(batch_norm=True, input_size=96)
    convs = convs_of(model)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == len(convs) == 12 and all(conv.bias is None for conv in convs)
    for block in (model.features[i] for i in (0, 2, 4, 7)):
        layers = list(block)
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Conv2d):
                assert isinstance(layers[i + 1], nn.BatchNorm2d)
                assert layers[i + 1].num_features == layer.out_channels
    # each conv loses its bias (C) and gains the norm's scale and shift (2C)
    widths = sum(conv.out_channels for conv in convs)
    assert num_parameters(model) == 1_992_166 + widths
    assert model.train()(torch.randn(4, 1, 96, 96)).shape == (4, 10)
    assert model.min_input_size == NiN().min_input_size == 67  # found in eval mode
    assert CifarNiN(batch_norm=True).train()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("model_class", [NiN, CifarNiN])
def test_last_relu_false_leaves_the_class_maps_free_to_be_negative(model_class):
    torch.manual_seed(0)
    model = model_class(last_relu=False).eval()
    last = model.features[-1]
    assert isinstance(last[-1], nn.Conv2d) and last[-1].out_channels == 10
    relus = sum(isinstance(m, nn.ReLU) for m in model.modules())
    assert relus == sum(isinstance(m, nn.ReLU) for m in model_class().modules()) - 1
    size = 96 if model_class is NiN else 32
    logits = model(torch.rand(4, model.in_channels, size, size))
    assert (logits < 0).any()  # impossible behind a ReLU and average pooling
    with_bn = model_class(last_relu=False, batch_norm=True)
    assert isinstance(with_bn.features[-1][-1], nn.BatchNorm2d)


def test_a_float64_model_checks_its_input_size():
    """After .double() the size search runs in float64 too (it used to loop for ever)."""
    model = CifarNiN().eval().double()
    assert model.min_input_size >= 1
    assert model(torch.zeros(1, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64


def smallest_size_that_runs(model, upto=100):
    """Reference for min_input_size: real CPU forwards of the features, one size after another."""
    for size in range(1, upto):
        try:
            with torch.no_grad():
                maps = model.features.eval()(torch.zeros(1, model.in_channels, size, size))
        except RuntimeError:
            continue
        if min(maps.shape[2:]) >= 1:
            return size


@pytest.mark.parametrize("build", [
    lambda: NiN(), lambda: NiN(batch_norm=True, input_size=96), lambda: CifarNiN(),
    lambda: VGGNiN(ratio=16, input_size=64), lambda: NiN(head="fc", input_size=128)])
def test_min_input_size_is_the_smallest_size_a_real_forward_takes(build, time_limit):
    model = build()
    with time_limit():
        assert model.min_input_size == smallest_size_that_runs(model)


def test_min_input_size_of_the_books_nin_is_67():
    """67 -> 15 (11x11/4) -> 7 (pool) -> 7 -> 3 (pool) -> 3 -> 1 (pool); 66 ends in a 2x2 pool
    input to a 3x3 window."""
    assert NiN().min_input_size == 67


@pytest.mark.parametrize("convert", [lambda m: m.double(), lambda m: m.half(),
                                     lambda m: m.to(torch.bfloat16)],
                         ids=["double", "half", "bfloat16"])
def test_a_model_converted_before_its_first_call_finds_its_size_and_runs(convert, time_limit):
    model = convert(CifarNiN().eval())
    dtype = next(model.parameters()).dtype
    with time_limit():
        assert model.min_input_size == 4
        assert model(torch.rand(1, 3, 32, 32).to(dtype)).dtype == dtype


def test_a_model_whose_first_layer_disagrees_with_in_channels_says_so(time_limit):
    features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with time_limit(), pytest.raises(ValueError, match=r"cannot run on any input.*in_channels=1"):
        ImageClassifier(features, in_channels=1, num_classes=4, input_size=8)
    model = ImageClassifier(features, in_channels=3, num_classes=4, input_size=8)
    model.in_channels = 1  # a classifier changed after it was built: its first call says so too
    with time_limit(), pytest.raises(ValueError, match="cannot run on any input"):
        model(torch.zeros(1, 1, 8, 8))


@pytest.mark.parametrize("build, error, match", [
    (lambda: NiN(in_channels=0), ValueError, r"in_channels must be a positive integer.*got 0"),
    (lambda: NiN(num_classes=2.5), TypeError, r"num_classes must be a positive integer.*2\.5"),
    (lambda: NiN(num_classes=0), ValueError, r"num_classes must be a positive integer.*got 0"),
    (lambda: NiN(num_1x1=True), TypeError, r"num_1x1 .*got True \(a bool\)"),
    (lambda: NiN(num_1x1=4), ValueError, "num_1x1 must be 0, 1, 2 or 3"),
    (lambda: NiN(input_size=224.0), TypeError, r"input_size must be .*e\.g\. 224"),
    (lambda: CifarNiN(num_classes=100.0), TypeError, "num_classes"),
    (lambda: CifarNiN(in_channels=True), TypeError, "in_channels"),
    (lambda: VGGNiN(ratio=0), ValueError, r"ratio must be a positive integer.*got 0"),
    (lambda: VGGNiN(ratio=-1), ValueError, r"ratio must be a positive integer.*got -1"),
    (lambda: VGGNiN(ratio=2.0), TypeError, "ratio"),
    (lambda: VGGNiN(num_1x1=-1), ValueError, "num_1x1"),
    (lambda: nin_block(1, 96, 11.0, 4, 0), TypeError, r"kernel_size .*11\.0"),
    (lambda: nin_block(1, 96.0, 11, 4, 0), TypeError, "out_channels"),
    (lambda: nin_block(1, 96, 11, 4, -1), ValueError, "padding"),
    (lambda: nin_block(1, 96, 11, 4, 0, micro_kernel_size=True), ValueError,
     "micro_kernel_size"),
    (lambda: ImageClassifier(nn.Identity(), 1, 0, 4), ValueError, "num_classes"),
])
def test_bad_model_arguments_are_named_with_what_was_given_and_an_example(build, error, match,
                                                                          time_limit):
    with time_limit(), pytest.raises(error, match=match) as raised:
        build()
    assert "e.g." in str(raised.value) or "must be" in str(raised.value)


def test_numpy_integers_are_whole_numbers_too():
    model = NiN(num_classes=np.int64(7), input_size=np.int32(96))
    assert model.num_classes == 7 and type(model.num_classes) is int


@pytest.mark.parametrize("dtype, match", [(torch.uint8, r"X\.float\(\) / 255"),
                                          (torch.float64, r"X\.float\(\)"),
                                          (torch.int64, r"X\.float\(\)")])
def test_images_of_another_dtype_get_told_how_to_convert(dtype, match):
    model = CifarNiN().eval()
    X = torch.zeros(1, 3, 32, 32, dtype=dtype)
    with pytest.raises(TypeError, match=match) as raised:
        model(X)
    assert "load_data" in str(raised.value) and str(dtype) in str(raised.value)
    with pytest.raises(TypeError, match=match):
        shape_walk(model, X)


def test_a_converted_model_asks_for_its_own_dtype():
    model = CifarNiN().eval().to(torch.bfloat16)
    with pytest.raises(TypeError, match=r"X\.to\(torch\.bfloat16\)"):
        model(torch.zeros(1, 3, 32, 32))


def test_float32_images_pass_under_bf16_autocast_as_in_training():
    torch.manual_seed(0)
    model = CifarNiN().eval()
    X = torch.rand(2, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(X)  # the weights and the input stay float32; torch casts inside
        assert model(X.to(torch.bfloat16)).shape == (2, 10)
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float(), model(X), atol=0.05, rtol=0.05)


@pytest.mark.parametrize("build, most", [(lambda: NiN(), 14), (lambda: CifarNiN(), 14),
                                         (lambda: NiN(head="fc", input_size=128), 14)])
def test_the_size_search_takes_a_bounded_number_of_passes(build, most):
    """A bisection: about log2(input_size) shape-only passes, not one per size (67 for NiN)."""
    model = build()
    model.__dict__.pop("_min_input_size", None)  # not yet searched, or search again
    calls = []
    model.features.register_forward_pre_hook(lambda *args: calls.append(1))  # failed ones too
    model.min_input_size  # noqa: B018
    assert 1 <= len(calls) <= most


def test_fashion_nin_shapes_and_size():
    model = FashionNiN()
    walk = [shape for _, shape in shape_walk(model, torch.zeros(2, 1, 28, 28))]
    assert walk == [(32, 14, 14), (64, 14, 14), (64, 7, 7), (128, 7, 7), (10, 7, 7), (10,)]
    assert num_parameters(model) == 116_650
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
