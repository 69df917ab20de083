"""Evaluation mode: `evaluating(model)`, the one way the package runs a model to read a result.

Dropout and batch norm behave differently in training (`model.train()`) and in evaluation
(`model.eval()`). Everything that reads a model's outputs (`evaluate`, class maps, dead maps,
the graders' checks, resource counts, diagrams) does so inside `with evaluating(model):`, so
that no function leaves a caller's model in another mode than the one it found it in.
"""
from contextlib import contextmanager

import torch


@contextmanager
def evaluating(model):
    """Inside the block: `model` and every submodule in eval mode, and gradients off.

    Yields `model` itself (its inputs and outputs keep their shapes, e.g. (N, C, H, W) ->
    (N, num_classes)). Afterwards, also after an exception, every module gets back its own
    mode: a model that trains with a frozen batch norm (`model.train(); bn.eval()`) comes
    back so, not all in training mode as `model.train(was_training)` would leave it.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        for m, training in modes:
            m.training = training
