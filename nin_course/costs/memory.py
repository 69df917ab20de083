"""Memory: what training and running a network take, estimated from what autograd keeps, and
measured (the CUDA allocator's peak; on the CPU, the profiler's).

- `memory_estimate`: weights, gradients, optimizer state and the activations kept for backward,
  for a batch, in bytes;
- `saved_for_backward`: what autograd keeps, measured with saved-tensor hooks;
- `measure_peak_memory` (CUDA) and `profile_peak_memory` (CPU): measured peaks of one step.
"""
import copy
import math
import numbers
import os
import sys
from contextlib import contextmanager

import torch

from ..models import num_parameters
from ..modes import evaluating
from .trace import check_input_shape, device_dtype, output_tensors, trace_forward

# optimizer_slots -> the optimizer that measure_peak_memory steps
OPTIMIZER_BY_SLOTS = {0: "SGD", 1: "SGD with momentum", 2: "Adam"}


def element_size(dtype):
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
    trace = trace_forward(model, input_shape, batch_size)
    return memory_from_trace(model, trace, dtype, optimizer_slots)


def memory_from_trace(model, trace, dtype, optimizer_slots):
    if not isinstance(optimizer_slots, numbers.Integral) or optimizer_slots < 0:
        raise ValueError("optimizer_slots is the number of state tensors per parameter: 0 for SGD, "
                         f"1 for SGD with momentum, 2 for Adam; got {optimizer_slots!r}")
    per_element = element_size(dtype)
    saved = saved_by_layer(model, trace, dtype)  # two training forwards: after the checks
    batch = trace.batch_size * per_element  # bytes per activation element, whole batch
    outputs = [numel for _, numel in trace.leaves]
    largest = max([outputs[0], *map(sum, zip(outputs, outputs[1:]))], default=0)
    weights = sum(t.numel() for t in [*model.parameters(), *model.buffers()]) * per_element
    gradients = num_parameters(model) * per_element
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
    X = torch.randn(batch_size, *example, device=device_dtype(model).get("device"))
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


def saved_by_layer(model, trace, dtype):
    """{owner: bytes} kept for backward on a batch of trace.batch_size, in `dtype`, from
    `_saved_tensors` on 2 and 3 examples, extrapolated: the bytes are affine in the batch size
    (batch norm keeps a few per-channel statistics whatever the batch; 2, not 1, so that it
    can train). Floating-point bytes are scaled from float32 to `dtype`."""
    scale = element_size(dtype) / 4
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
    example, batch_size = check_input_shape(model, input_shape, batch_size)
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
    example, batch_size = check_input_shape(model, input_shape, batch_size)
    model = copy.deepcopy(model).to("cpu", torch.float32).train(train)
    X = torch.randn(batch_size, *example)
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        if train:
            sum(t.sum() for t in output_tensors(model(X))).backward()
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
    example, batch_size = check_input_shape(model, input_shape, batch_size)
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
        loss = sum(t.float().sum() for t in output_tensors(model(X)))  # any scalar: same memory
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
