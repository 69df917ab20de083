"""One forward pass of a network, traced: each layer's output shape and size, and FLOPs.

`trace_forward(model, input_shape)` runs `model` once on zeros of one example (in eval mode, without
gradients), with forward hooks on every module and PyTorch's `FlopCounterMode` counting, and
returns a `Trace`: what `resources` and `memory` build their tables and estimates from.
`input_shape` is one example's shape, e.g. (1, 224, 224), or a batch's (N, C, H, W).
"""
import numbers
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..models import ImageClassifier
from ..modes import evaluating


@dataclass
class Trace:
    """What one forward pass of one example showed; sizes are per example, in elements."""
    input_shape: tuple  # one example's, e.g. (1, 224, 224)
    batch_size: int
    rows: list          # [(name, module)]: the layers of the table
    shapes: dict        # module name -> output shape without the batch dimension
    numels: dict        # module name -> output elements (summed over its calls)
    leaves: list        # [(name, output elements)] for every leaf module call, in call order
    flops: dict         # module name -> forward FLOPs, including those of its children
    total_flops: int


def trace_forward(model, input_shape, batch_size=None, depth=1):
    """Run `model` once (eval mode, no grad) on zeros of one example; record shapes and FLOPs."""
    example, batch_size = check_input_shape(model, input_shape, batch_size)
    rows, shapes, numels, leaves = _rows(model, depth), {}, {}, []
    leaf_names = {name for name, m in model.named_modules() if not any(m.children())}

    def record(name):
        def hook(module, inputs, output):
            tensors = output_tensors(output)
            shape = [tuple(t.shape[1:]) for t in tensors]
            shapes[name] = shape[0] if len(shape) == 1 else tuple(shape)
            numel = sum(t.numel() for t in tensors)
            numels[name] = numels.get(name, 0) + numel
            if name in leaf_names:
                leaves.append((name, numel))
        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in model.named_modules()]
    counter = FlopCounterMode(display=False)
    try:
        with evaluating(model), counter:
            model(torch.zeros(1, *example, **device_dtype(model)))
    except RuntimeError as err:
        raise ValueError(f"{type(model).__name__} cannot take an input of shape {(1, *example)}"
                         f" ({err}). input_shape is one example's shape, e.g. (3, 32, 32), or a "
                         "batch's (N, C, H, W).") from err
    finally:
        for handle in handles:
            handle.remove()
    return Trace(example, batch_size, rows, shapes, numels, leaves,
                  _flops_by_name(model, counter), counter.get_total_flops())


def check_input_shape(model, input_shape, batch_size):
    """(one example's shape, batch size) from (C, H, W) or (N, C, H, W); ValueError if bad."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    if not shape or not all(isinstance(d, numbers.Integral) and d > 0 for d in shape):
        raise ValueError("input_shape must be a tuple of positive sizes, one example's (C, H, W) "
                         f"or a batch's (N, C, H, W), e.g. (1, 224, 224); got {input_shape!r}")
    shape = tuple(int(d) for d in shape)
    if len(shape) == 4:  # a batch: its N is the batch size
        if batch_size not in (None, shape[0]):
            raise ValueError(f"input_shape {shape} says batch size {shape[0]} but batch_size="
                             f"{batch_size}; give one of them, e.g. input_shape={shape[1:]}")
        shape, batch_size = shape[1:], shape[0]
    batch_size = 1 if batch_size is None else batch_size
    if not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    if isinstance(model, ImageClassifier):
        if len(shape) != 3:
            size = model.input_size
            raise ValueError(f"{type(model).__name__} takes images: input_shape must be (C, H, W) "
                             f"or (N, C, H, W), e.g. ({model.in_channels}, {size}, {size}); "
                             f"got {tuple(input_shape)}")
        # Shapes only. Also finds (and caches) the smallest input size before any counting.
        model.check_input(torch.empty(1, *shape, device="meta"))
    return shape, int(batch_size)


def _rows(model, depth):
    """[(name, module)]: the top-level layers, each split `depth - 1` times into its children."""
    if not isinstance(depth, numbers.Integral) or depth < 1:
        raise ValueError(f"depth must be 1 (blocks), 2 (the layers inside them) or more; "
                         f"got {depth!r}")
    if isinstance(model, ImageClassifier):
        units = [*((f"features.{n}", m) for n, m in model.features.named_children()),
                 ("head", model.head)]
    else:
        units = list(model.named_children()) or [("", model)]  # "": the model itself
    rows = []

    def expand(name, module, depth):
        children = list(module.named_children())
        if depth == 1 or not children:
            rows.append((name, module))
        else:
            for child_name, child in children:
                expand(f"{name}.{child_name}" if name else child_name, child, depth - 1)

    for name, module in units:
        expand(name, module, depth)
    return rows


def output_tensors(output):
    """The tensors in a module's output: a tensor, or nested tuples and lists of them."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in output_tensors(item)]
    return []


def device_dtype(model):
    """The device and dtype of the model's first floating-point parameter, if any."""
    p = next((p for p in model.parameters() if p.is_floating_point()), None)
    return {} if p is None else {"device": p.device, "dtype": p.dtype}


def _flops_by_name(model, counter):
    """FlopCounterMode's counts, keyed by module names: 'features.0', '' for the model.

    Its own keys are 'Global' and names that start with the model's class: 'NiN',
    'NiN.features.0'. A module's count includes those of the modules inside it.
    """
    root = type(model).__name__
    return {key[len(root) + 1:]: sum(by_op.values())
            for key, by_op in counter.get_flop_counts().items()
            if key == root or key.startswith(root + ".")}
