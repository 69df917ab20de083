"""Models side by side: what each costs, and whether two implementations are the same network.

- `compare_models`: one row per model: parameters and forward FLOPs, in total and in fully
  connected (nn.Linear) layers, from `resources.resource_table`; the FC columns show where
  AlexNet's and VGG's parameters live and that a NiN with global average pooling has none;
- `readable`: the same table with counts as '1.99 M', bytes as 'MiB' and shares as '%';
- `copy_weights_by_order`: copy one model's weights into another built the same way under
  other names (the book's `net.0.0.weight` -> our `features.0.0.weight`), to show that both
  compute the same function.
"""
import pandas as pd
import torch
from torch import nn

from ..ui.formatting import format_bytes, format_count
from .resources import resource_table

COUNT_COLUMNS = ("params", "FC params", "FLOPs/example", "FC FLOPs/example")
SHARE_COLUMNS = ("FC share of params", "FC share of FLOPs")


def compare_models(models, input_shape, dtype=torch.float32):
    """One row per model, indexed by its name: a pandas.DataFrame with the columns

    - 'params' (trainable) and 'FLOPs/example' (one forward pass of one example, counted by
      FlopCounterMode: a multiply-add is 2 FLOPs);
    - 'FC params', 'FC FLOPs/example': the part of those in nn.Linear layers;
    - 'FC share of params', 'FC share of FLOPs': those parts as fractions (0 to 1);
    - 'weight bytes': parameters and buffers stored in `dtype`.
    models: {name: nn.Module}; input_shape: one example's (C, H, W), the same for every model.
    """
    if not isinstance(models, dict) or not models:
        raise ValueError("models must be a non-empty dict {name: model}, e.g. "
                         "{'NiN': NiN(in_channels=3), 'VGG-11': torchvision.models.vgg11()}")
    rows = {name: _costs(model, input_shape, dtype) for name, model in models.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def _costs(model, input_shape, dtype):
    """The columns of `compare_models` for one model (one forward pass, shapes from zeros)."""
    table = resource_table(model, input_shape, dtype=dtype, depth=_max_depth(model))
    modules = dict(model.named_modules())
    is_fc = table["layer"].map(lambda name: isinstance(modules.get(name), nn.Linear))
    total = table.iloc[-1]  # the 'total' row
    costs = {"params": int(total["params"]), "FC params": int(table.loc[is_fc, "params"].sum()),
             "FLOPs/example": int(total["FLOPs/example"]),
             "FC FLOPs/example": int(table.loc[is_fc, "FLOPs/example"].sum())}
    costs["FC share of params"] = costs["FC params"] / max(costs["params"], 1)
    costs["FC share of FLOPs"] = costs["FC FLOPs/example"] / max(costs["FLOPs/example"], 1)
    costs["weight bytes"] = dtype.itemsize * sum(
        t.numel() for t in [*model.parameters(), *model.buffers()])
    return costs


def _max_depth(model):
    """A table depth that reaches every leaf module (one more than the deepest module name)."""
    return 1 + max(name.count(".") + 1 for name, _ in model.named_modules())


def readable(table):
    """A copy of a `compare_models` table for reading: '1.99 M', '7.60 MiB', '92.8%'."""
    out = table.copy()
    for column in out.columns:
        if column in COUNT_COLUMNS:
            out[column] = out[column].map(format_count)
        elif column in SHARE_COLUMNS:
            out[column] = out[column].map(lambda share: f"{100 * share:.1f}%")
        elif column.endswith("bytes"):
            out[column] = out[column].map(format_bytes)
    return out


def copy_weights_by_order(source, target):
    """Copy `source`'s state dict into `target`, pairing entries by position, not by name.

    For two implementations of one network whose entries come in the same order with the
    same shapes (d2l's `net.0.0.weight` and our `features.0.0.weight`). Raises a ValueError
    naming the first pair that does not fit. Returns [(source key, target key), ...].
    """
    theirs, ours = source.state_dict(), target.state_dict()
    if len(theirs) != len(ours):
        raise ValueError(f"{type(source).__name__} has {len(theirs)} state-dict entries and "
                         f"{type(target).__name__} has {len(ours)}: they are not built the same "
                         "way (compare their layers with models.shape_walk)")
    pairs = list(zip(theirs, ours))
    for key, our_key in pairs:
        if theirs[key].shape != ours[our_key].shape:
            raise ValueError(f"{key} {tuple(theirs[key].shape)} does not fit {our_key} "
                             f"{tuple(ours[our_key].shape)}: the layers differ in size or order "
                             "(a lazy model must run once, e.g. apply_init, before copying)")
    target.load_state_dict({our_key: theirs[key] for key, our_key in pairs})
    return pairs
