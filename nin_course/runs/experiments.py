"""One fixed budget for comparing variants of a network (the experiments of the exercises).

`experiment_budget()` is a RunSpec without a model: what every run of a comparison gets, the
same training and test examples, epochs, image size, batch size, optimiser and seed, sized by
the run profile. `run_experiment(build, budget)` builds a fresh model, trains it under the
budget and returns one row: parameters, FLOPs per example, final losses and accuracies,
training examples per second and seconds. Rows from the same budget can be compared; rows from
different ones cannot. `near_chance(results)` names the runs that had not started to learn
within the budget.
"""
import math
from dataclasses import replace

from torch import nn

from ..costs.resources import resource_table
from ..models import num_parameters
from ..train.config import TrainConfig
from ..train.loop import fit
from ..train.seeding import seed_everything
from ..train.stuck import TrainingStuckError
from .profiles import resolve
from .spec import RunSpec

# What a comparison gets at most (the profile may cap it further).
BUDGET = RunSpec(
    name="budget", model=None, dataset="fashion-mnist", train_size=2_500, test_size=1_000,
    image_size=96, normalize=True,
    batch_size=32,  # more steps in a short epoch; 64 at lr 3e-3 left NiN at chance
    # AdamW with a one-cycle schedule learns something within one short epoch (37% test
    # accuracy after 2,500 Fashion-MNIST examples at 96 px), where d2l's SGD at lr 0.05 leaves
    # NiN at chance level for the first few thousand examples.
    config=TrainConfig(optimizer="adamw", lr=2e-3, lr_schedule="onecycle", num_epochs=1))


def experiment_budget(profile=None, train_fraction=1.0, num_epochs=1, image_size=224,
                      **overrides):
    """The budget of one comparison, a RunSpec with no model: the profile's examples (times
    `train_fraction`), epochs (at most `num_epochs`) and image size (at most `image_size`).

    `profile` is a Profile, a profile name or None (NIN_COURSE_PROFILE, see profiles.py).
    `overrides` replace RunSpec fields (e.g. batch_size=64).
    """
    profile = resolve(profile)
    if not 0 < train_fraction <= 1:
        raise ValueError(f"train_fraction must be in (0, 1]; got {train_fraction!r}")
    train_size = (None if profile.train_size is None
                  else max(1, round(profile.train_size * train_fraction)))
    spec = replace(BUDGET, train_size=train_size, test_size=profile.test_size,
                   image_size=profile.image_size(image_size),
                   config=replace(BUDGET.config, num_epochs=profile.epochs(num_epochs)))
    return replace(spec, profile=profile.name, **overrides)


def run_experiment(build, budget, probes=None, progress=True):
    """Train a model under `budget`; returns a dict (one row of a comparison table):

    'params', 'FLOPs/example' (one forward pass, counted as in costs/resources.py), 'train_loss',
    'train_acc', 'test_loss', 'test_acc', 'examples/s' (training throughput, mean over the
    epochs), 'seconds' (training and evaluation) and 'stuck' (True if training stopped with a
    TrainingStuckError: the row then holds the last epoch run).
    `build` is a function of no arguments that returns a fresh model (called after seeding, so
    that every variant starts from reproducible weights), or a model itself.
    `probes`: {column: function(model, test_iter)}, measured on the trained model and added to
    the row (e.g. the share of logits that are exactly 0).
    """
    if not isinstance(budget, RunSpec):
        raise TypeError(f"budget must be a RunSpec, such as experiment_budget(); got "
                        f"{type(budget).__name__}")
    seed_everything(budget.seed)
    model = build() if callable(build) and not isinstance(build, nn.Module) else build
    if not isinstance(model, nn.Module):
        raise TypeError(f"build must return an nn.Module; got {type(model).__name__}")
    train_iter, test_iter = budget.loaders()
    in_channels = train_iter.X.shape[1]  # ArrayLoader keeps the images as (N, C, H, W)
    flops = resource_table(model, (in_channels, budget.image_size, budget.image_size))
    row = {"params": num_parameters(model), "FLOPs/example": int(flops["FLOPs/example"].iloc[-1])}
    try:
        history, stuck = fit(model, train_iter, test_iter, budget.config, progress=progress,
                             live_plot=False), False
    except TrainingStuckError as err:
        if err.history is None or len(err.history) == 0:
            raise
        history, stuck = err.history, True
    speeds = history.examples_per_sec
    row.update(train_loss=history.train_loss[-1], train_acc=history.train_acc[-1],
               test_loss=history.test_loss[-1], test_acc=history.test_acc[-1],
               **{"examples/s": sum(speeds) / len(speeds)}, seconds=math.fsum(history.seconds),
               stuck=stuck)
    for column, probe in (probes or {}).items():
        row[column] = probe(model, test_iter)
    return row


def near_chance(results, num_classes=10, tolerance=0.05):
    """Index labels of the rows of `results` whose 'test_loss' is within `tolerance` of
    ln(num_classes) or above: trained networks that still give every class about the same
    probability, so their accuracy says how slowly a network gets going, not what it can learn.
    (The test loss is measured after training; 'train_loss' is a mean over the epoch, which
    stays high for a run that only started to learn late in it.)
    """
    chance = math.log(num_classes)
    return [label for label, loss in results["test_loss"].items() if loss > chance - tolerance]
