"""What a network costs, layer by layer: parameters, FLOPs and memory (d2l.ai 8.3, exercise 4).

- parameters: `count_parameters`, and one count per layer in `resource_table`;
- FLOPs: counted by PyTorch's `torch.utils.flop_counter.FlopCounterMode` on one forward pass,
  not by formulas written here. It counts a multiply-add as 2 FLOPs (MACs = FLOPs / 2) and
  counts only matrix products and convolutions: ReLU, pooling, dropout and biases count 0;
- memory: an estimate for training and for inference (`memory_estimate`); what autograd keeps
  for backward, measured (`saved_for_backward`); and measured peaks: the CUDA allocator's
  (`measure_peak_memory`) and, on the CPU, the profiler's (`profile_peak_memory`).

A layer (a row of the table) is, for an `ImageClassifier`, a child of `features` (mlpconv
block, pool, dropout) or the head; for any other module, one of its children. `depth=2` splits
each of them into its children (the convolutions and ReLUs of a block), and so on.
`input_shape` is one example's shape, e.g. (1, 224, 224), or a batch's (N, C, H, W).
"""
import copy
import math
import numbers
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .models import ImageClassifier, num_parameters
from .modes import evaluating

# optimizer_slots -> the optimizer that measure_peak_memory steps
OPTIMIZER_BY_SLOTS = {0: "SGD", 1: "SGD with momentum", 2: "Adam"}


def count_parameters(model):
    """Number of trainable parameters (the same count as `models.num_parameters`)."""
    return num_parameters(model)


def conv_cost(in_channels, out_channels, kernel_size, height, width, stride=1, padding="same"):
    """(parameters, FLOPs) of one nn.Conv2d on one (in_channels, height, width) input.

    FLOPs come from FlopCounterMode: 2 * C_in * C_out * k * k * H' * W' (bias not counted).
    padding='same' keeps H x W (it needs stride=1).
    """
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, device="meta")
    counter = FlopCounterMode(display=False)
    with counter:  # 'meta' tensors have shapes but no data: nothing is computed or stored
        conv(torch.empty(1, in_channels, height, width, device="meta"))
    return count_parameters(conv), counter.get_total_flops()


@dataclass
class _Trace:
    """What one forward pass of one example showed; sizes are per example, in elements."""
    input_shape: tuple  # one example's, e.g. (1, 224, 224)
    batch_size: int
    rows: list          # [(name, module)]: the layers of the table
    shapes: dict        # module name -> output shape without the batch dimension
    numels: dict        # module name -> output elements (summed over its calls)
    leaves: list        # [(name, output elements)] for every leaf module call, in call order
    flops: dict         # module name -> forward FLOPs, including those of its children
    total_flops: int


def _trace(model, input_shape, batch_size=None, depth=1):
    """Run `model` once (eval mode, no grad) on zeros of one example; record shapes and FLOPs."""
    example, batch_size = _check_input_shape(model, input_shape, batch_size)
    rows, shapes, numels, leaves = _rows(model, depth), {}, {}, []
    leaf_names = {name for name, m in model.named_modules() if not any(m.children())}

    def record(name):
        def hook(module, inputs, output):
            tensors = _tensors(output)
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
            model(torch.zeros(1, *example, **_device_dtype(model)))
    except RuntimeError as err:
        raise ValueError(f"{type(model).__name__} cannot take an input of shape {(1, *example)}"
                         f" ({err}). input_shape is one example's shape, e.g. (3, 32, 32), or a "
                         "batch's (N, C, H, W).") from err
    finally:
        for handle in handles:
            handle.remove()
    return _Trace(example, batch_size, rows, shapes, numels, leaves,
                  _flops_by_name(model, counter), counter.get_total_flops())


def _check_input_shape(model, input_shape, batch_size):
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


def _tensors(output):
    """The tensors in a module's output: a tensor, or nested tuples and lists of them."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _tensors(item)]
    return []


def _device_dtype(model):
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


def _element_size(dtype):
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"dtype must be a torch.dtype such as torch.float32; got {dtype!r}")
    return dtype.itemsize


def memory_estimate(model, input_shape, batch_size=None, dtype=torch.float32, optimizer_slots=1):
    """Bytes to train and to run `model` on batches of `batch_size`, everything in `dtype`.

    Training = weights + gradients + optimizer state + activations kept for backward:
    - weights: all parameters and buffers; gradients: one per trainable parameter;
    - optimizer state: `optimizer_slots` tensors per trainable parameter (0 for plain SGD,
      1 for SGD with momentum, 2 for Adam);
    - activations: what autograd keeps for the backward pass, measured by `saved_for_backward`
      (saved-tensor hooks): each layer keeps what its backward needs. A convolution or a linear
      layer keeps its input, a ReLU its output, a max pool its input and the int64 indices of
      its maxima, dropout its mask; each tensor is counted once. So a convolution's own output
      is not kept when a ReLU follows it: the ReLU's output is, and the next layer reads it.
      Measured on two and three examples and extrapolated to `batch_size` (it is affine in
      the batch size); floating-point tensors are scaled to `dtype`, indices stay int64.
    Inference = weights + the input batch + the largest pair of consecutive outputs of the
    leaf calls after it, taking the calls as a chain (input -> leaf 1 -> leaf 2 ...): an
    activation is freed once the next layer has read it, but the input is held by the caller.
    Returns a dict: 'batch_size', and bytes 'weights', 'gradients', 'optimizer_state',
    'activations', 'training', 'inference_activations' (input included), 'inference'.
    """
    return _memory(model, _trace(model, input_shape, batch_size), dtype, optimizer_slots)


def _memory(model, trace, dtype, optimizer_slots):
    if not isinstance(optimizer_slots, numbers.Integral) or optimizer_slots < 0:
        raise ValueError("optimizer_slots is the number of state tensors per parameter: 0 for SGD, "
                         f"1 for SGD with momentum, 2 for Adam; got {optimizer_slots!r}")
    per_element = _element_size(dtype)
    saved = _saved_by_layer(model, trace, dtype)  # two training forwards: after the checks
    batch = trace.batch_size * per_element  # bytes per activation element, whole batch
    outputs = [numel for _, numel in trace.leaves]
    largest = max([outputs[0], *map(sum, zip(outputs, outputs[1:]))], default=0)
    weights = sum(t.numel() for t in [*model.parameters(), *model.buffers()]) * per_element
    gradients = count_parameters(model) * per_element
    memory = {"batch_size": trace.batch_size, "weights": weights, "gradients": gradients,
              "optimizer_state": optimizer_slots * gradients, "activations": sum(saved.values()),
              "inference_activations": (math.prod(trace.input_shape) + largest) * batch}
    memory["training"] = weights + gradients + memory["optimizer_state"] + memory["activations"]
    memory["inference"] = weights + memory["inference_activations"]
    return memory


def _saved_tensors(model, example, batch_size):
    """What autograd keeps in one training forward of a copy of `model` (float32) on a batch.

    {(owner, kind): bytes}, each storage counted once, parameters and buffers left out: owner
    is the name of the leaf module whose forward saved it first, 'input' for the input batch,
    '' for what the model's own forward() saved outside its leaves; kind is 'floating',
    'integer' (max-pool indices) or 'bool' (dropout masks).
    """
    model = copy.deepcopy(model).to(torch.float32).train()  # batch norm's statistics stay put
    X = torch.randn(batch_size, *example, device=_device_dtype(model).get("device"))
    skip = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    seen, kept, inside = set(), {}, []  # inside: the leaf modules running now

    def pack(t):
        address = t.untyped_storage().data_ptr()
        if address not in skip and address not in seen:
            seen.add(address)
            owner = "input" if address == X.untyped_storage().data_ptr() else (
                inside[-1] if inside else "")
            kind = ("floating" if t.is_floating_point() else
                    "bool" if t.dtype == torch.bool else "integer")
            kept[owner, kind] = kept.get((owner, kind), 0) + t.untyped_storage().nbytes()
        return t

    def enter(name):
        return lambda module, args: inside.append(name)  # returns None: the input stays

    def leave(module, args, output):
        inside.pop()  # returns None: the output stays

    handles = []
    for name, module in model.named_modules():
        if not any(module.children()):
            handles += [module.register_forward_pre_hook(enter(name)),
                        module.register_forward_hook(leave)]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(X)
    finally:
        for handle in handles:
            handle.remove()
    return kept


def _saved_by_layer(model, trace, dtype):
    """{owner: bytes} kept for backward on a batch of trace.batch_size, in `dtype`, from
    `_saved_tensors` on 2 and 3 examples, extrapolated: the bytes are affine in the batch size
    (batch norm keeps a few per-channel statistics whatever the batch; 2, not 1, so that it
    can train). Floating-point bytes are scaled from float32 to `dtype`."""
    scale = _element_size(dtype) / 4
    two, three = (_saved_tensors(model, trace.input_shape, n) for n in (2, 3))
    saved = {}
    for key in two.keys() | three.keys():
        a, b = two.get(key, 0), three.get(key, 0)
        n_bytes = a + (b - a) * (trace.batch_size - 2)
        owner, kind = key
        saved[owner] = saved.get(owner, 0) + round(n_bytes * (scale if kind == "floating" else 1))
    return saved


def saved_for_backward(model, input_shape, batch_size=None):
    """What autograd keeps for the backward pass of `model` (training mode, float32) on a batch
    of `batch_size`, measured with torch.autograd.graph.saved_tensors_hooks on a copy of it:
    every tensor the forward pass saves, each storage counted once, the parameters left out.

    Returns a dict of bytes: 'floating' (activations: the input a convolution keeps, a ReLU's
    output ...), 'input' (the part of 'floating' that is the input batch), 'integer' (max-pool
    indices), 'bool' (dropout masks), 'total'; and 'batch_size'. A convolution keeps its input
    and a ReLU its output, so a convolution's own output is not kept when a ReLU follows it.
    """
    example, batch_size = _check_input_shape(model, input_shape, batch_size)
    kept = _saved_tensors(model, example, batch_size)
    sizes = {kind: sum(n for (_, k), n in kept.items() if k == kind)
             for kind in ("floating", "integer", "bool")}
    return {"batch_size": batch_size, "input": kept.get(("input", "floating"), 0), **sizes,
            "total": sum(sizes.values())}


@contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 in the block: the profiler's C++ side logs its start and stop
    (and, without a GPU, a failed device count) there, which a notebook would show."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def profile_peak_memory(model, input_shape, batch_size=None, train=True):
    """Peak bytes that one step of `model` (float32, on the CPU) allocates beyond what is held
    before it (the weights, the input batch), from torch.profiler's allocation events.

    train=True: forward and backward in training mode on a copy (the saved activations, the
    gradients, the temporaries of backward); train=False: a forward in eval mode without
    gradients. The CPU's counterpart of `measure_peak_memory`, which asks the CUDA allocator.
    """
    from torch.profiler import ProfilerActivity, profile
    example, batch_size = _check_input_shape(model, input_shape, batch_size)
    model = copy.deepcopy(model).to("cpu", torch.float32).train(train)
    X = torch.randn(batch_size, *example)
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        if train:
            sum(t.sum() for t in _tensors(model(X))).backward()
        else:
            with torch.no_grad():
                model(X)
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    held = peak = 0
    for _, nbytes in events:
        held += nbytes
        peak = max(peak, held)
    return peak


def resource_table(model, input_shape, batch_size=None, dtype=torch.float32, depth=1):
    """One row per layer after an 'input' row, then a 'total' row, as a pandas.DataFrame:

    - 'layer', 'type', 'output shape' (without the batch dimension), 'params' (trainable);
    - 'FLOPs/example': forward FLOPs for one example, from FlopCounterMode (a multiply-add is
      2 FLOPs; ReLU, pooling, dropout and biases count 0); 'MACs/example' = FLOPs / 2;
    - 'output bytes': the layer's output for the whole batch, in `dtype`;
    - 'saved bytes': what autograd keeps of the layer for backward, for the whole batch,
      measured (`memory_estimate`, whose 'activations' is the total of this column): a
      convolution keeps its input, which the row of the layer before it already counts, and a
      ReLU its output; a max pool adds its indices. The 'input' row: the input batch, which the
      first layer keeps.
    A row '(other)' holds what no layer accounts for (work done in a forward() itself).
    """
    trace = _trace(model, input_shape, batch_size, depth)
    saved = _saved_by_layer(model, trace, dtype)
    per_element = _element_size(dtype) * trace.batch_size  # bytes per element, whole batch
    input_numel = math.prod(trace.input_shape)
    rows = [_row("input", "", trace.input_shape, 0, 0, input_numel, saved.get("input", 0),
                 per_element)]
    for name, module in trace.rows:
        kept = sum(n for owner, n in saved.items() if owner != "input" and owner and (
            name in ("", owner) or owner.startswith(name + ".")))  # leaves inside it
        rows.append(_row(name or "(model)", type(module).__name__, trace.shapes.get(name),
                         count_parameters(module), trace.flops.get(name, 0),
                         trace.numels.get(name, 0), kept, per_element))
    total = _row("total", "", None, count_parameters(model), trace.total_flops, None,
                 sum(saved.values()), per_element)
    other = [total[k] - sum(row[k] for row in rows)
             for k in ("params", "FLOPs/example", "saved bytes")]
    if any(other):
        rows.append(_row("(other)", "outside the layers", None, other[0], other[1], None,
                         other[2], per_element))
    table = pd.DataFrame(rows + [total])
    for column in ("output bytes", "saved bytes"):
        table[column] = table[column].astype("Int64")  # <NA> where a sum would mean nothing
    table.attrs.update(batch_size=trace.batch_size, dtype=str(dtype))
    return table


def _row(layer, kind, shape, params, flops, output_numel, saved_bytes, per_element):
    """One row of the table; the output's element count becomes bytes (None stays None)."""
    return {"layer": layer, "type": kind, "output shape": shape, "params": params,
            "FLOPs/example": flops, "MACs/example": flops // 2,
            "output bytes": None if output_numel is None else output_numel * per_element,
            "saved bytes": saved_bytes}


def resource_summary(model, input_shape, batch_size=None, dtype=torch.float32, optimizer_slots=1):
    """Totals: parameters, forward FLOPs and MACs per example, memory estimated and measured.

    A dict: 'params', 'flops_per_example', 'macs_per_example', the entries of `memory_estimate`
    ('training', 'inference', ... in bytes), and 'training_measured' and 'inference_measured'
    from `measure_peak_memory` when CUDA is available (and an optimizer in OPTIMIZER_BY_SLOTS has
    `optimizer_slots`), else None.
    """
    trace = _trace(model, input_shape, batch_size)
    summary = {"params": count_parameters(model), "flops_per_example": trace.total_flops,
               "macs_per_example": trace.total_flops // 2,
               **_memory(model, trace, dtype, optimizer_slots)}
    for train, key in ((True, "training_measured"), (False, "inference_measured")):
        measurable = torch.cuda.is_available() and (
            optimizer_slots in OPTIMIZER_BY_SLOTS or not train)
        summary[key] = measure_peak_memory(model, trace.input_shape, trace.batch_size,
                                           train=train, dtype=dtype,
                                           optimizer_slots=optimizer_slots) if measurable else None
    return summary


def measure_peak_memory(model, input_shape, batch_size=None, device="cuda", train=True,
                        dtype=torch.float32, optimizer_slots=1):
    """Peak bytes (torch.cuda.max_memory_allocated) that a copy of `model` takes on `device`.

    train=True: one training step (forward, backward, step of OPTIMIZER_BY_SLOTS[optimizer_slots]) as
    in mid-training, after a warm-up step has made the optimizer state. train=False: one
    forward in eval mode without gradients. Weights and input are counted.
    Raises a RuntimeError without CUDA: check torch.cuda.is_available() first.
    """
    if not torch.cuda.is_available():
        raise RuntimeError("measure_peak_memory needs a CUDA GPU and torch.cuda.is_available() is "
                           "False; check it before calling, or use memory_estimate instead.")
    if torch.device(device).type != "cuda":
        raise ValueError(f"measure_peak_memory measures CUDA memory: device must be 'cuda' or "
                         f"'cuda:<index>', got {device!r}")
    if train and optimizer_slots not in OPTIMIZER_BY_SLOTS:
        raise ValueError(f"optimizer_slots must be one of {OPTIMIZER_BY_SLOTS}; got {optimizer_slots!r}")
    example, batch_size = _check_input_shape(model, input_shape, batch_size)
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    start = torch.cuda.memory_allocated(device)
    model = copy.deepcopy(model).to(device, dtype)  # a copy: the caller's model stays put
    X = torch.zeros(batch_size, *example, device=device, dtype=dtype)
    if train:
        _train_step(model, X, optimizer_slots, device)
    else:
        torch.cuda.reset_peak_memory_stats(device)
        with evaluating(model):
            model(X)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - start
    del model, X
    torch.cuda.empty_cache()
    return peak


def _train_step(model, X, optimizer_slots, device):
    """A warm-up step, then a step whose peak memory counts (the peak is reset between them)."""
    model.train()
    if optimizer_slots == 2:
        optimizer = torch.optim.Adam(model.parameters())
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01,
                                    momentum=0.9 if optimizer_slots == 1 else 0)
    for step in range(2):
        if step == 1:
            torch.cuda.reset_peak_memory_stats(device)
        loss = sum(t.float().sum() for t in _tensors(model(X)))  # any scalar: same memory
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def format_bytes(n):
    """A byte count in binary units: 512 -> '512 B', 1536 -> '1.50 KiB', None -> 'n/a'."""
    if n is None or pd.isna(n):
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} B" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


def format_count(n):
    """A count in SI units to 3 significant digits: 224 -> '224', 1_992_166 -> '1.99 M'."""
    if n is None or pd.isna(n):
        return "n/a"
    for unit in ("", " k", " M", " G"):
        if abs(n) < 999.5:
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g} T"
