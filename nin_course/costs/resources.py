"""What a network costs, layer by layer and in total: parameters, FLOPs and memory (d2l.ai 8.3,
exercise 4): `resource_table`, `resource_summary`, and `conv_cost` for one convolution.

- parameters: `models.num_parameters`, and one count per layer in `resource_table`;
- FLOPs: counted by PyTorch's `torch.utils.flop_counter.FlopCounterMode` on one forward pass,
  not by formulas written here. It counts a multiply-add as 2 FLOPs (MACs = FLOPs / 2) and
  counts only matrix products and convolutions: ReLU, pooling, dropout and biases count 0;
- memory: what autograd keeps for backward, per layer, and the estimate and measured peaks of
  `memory.py` (`memory_estimate`, `measure_peak_memory`, `profile_peak_memory`).

A layer (a row of the table) is, for an `ImageClassifier`, a child of `features` (mlpconv
block, pool, dropout) or the head; for any other module, one of its children. `depth=2` splits
each of them into its children (the convolutions and ReLUs of a block), and so on.
`input_shape` is one example's shape, e.g. (1, 224, 224), or a batch's (N, C, H, W).
"""
import math

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..models import num_parameters
from .memory import (OPTIMIZER_BY_SLOTS, element_size, measure_peak_memory, memory_from_trace,
                     saved_by_layer)
from .trace import trace_forward


def conv_cost(in_channels, out_channels, kernel_size, height, width, stride=1, padding="same"):
    """(parameters, FLOPs) of one nn.Conv2d on one (in_channels, height, width) input.

    FLOPs come from FlopCounterMode: 2 * C_in * C_out * k * k * H' * W' (bias not counted).
    padding='same' keeps H x W (it needs stride=1).
    """
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, device="meta")
    counter = FlopCounterMode(display=False)
    with counter:  # 'meta' tensors have shapes but no data: nothing is computed or stored
        conv(torch.empty(1, in_channels, height, width, device="meta"))
    return num_parameters(conv), counter.get_total_flops()


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
    trace = trace_forward(model, input_shape, batch_size, depth)
    saved = saved_by_layer(model, trace, dtype)
    per_element = element_size(dtype) * trace.batch_size  # bytes per element, whole batch
    input_numel = math.prod(trace.input_shape)
    rows = [_row("input", "", trace.input_shape, 0, 0, input_numel, saved.get("input", 0),
                 per_element)]
    for name, module in trace.rows:
        kept = sum(n for owner, n in saved.items() if owner != "input" and owner and (
            name in ("", owner) or owner.startswith(name + ".")))  # leaves inside it
        rows.append(_row(name or "(model)", type(module).__name__, trace.shapes.get(name),
                         num_parameters(module), trace.flops.get(name, 0),
                         trace.numels.get(name, 0), kept, per_element))
    total = _row("total", "", None, num_parameters(model), trace.total_flops, None,
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
    trace = trace_forward(model, input_shape, batch_size)
    summary = {"params": num_parameters(model), "flops_per_example": trace.total_flops,
               "macs_per_example": trace.total_flops // 2,
               **memory_from_trace(model, trace, dtype, optimizer_slots)}
    for train, key in ((True, "training_measured"), (False, "inference_measured")):
        measurable = torch.cuda.is_available() and (
            optimizer_slots in OPTIMIZER_BY_SLOTS or not train)
        summary[key] = measure_peak_memory(model, trace.input_shape, trace.batch_size,
                                           train=train, dtype=dtype,
                                           optimizer_slots=optimizer_slots) if measurable else None
    return summary
