"""Why a NiN can sit at loss ln(C), measured: dead class maps, and which changes get it going.

A NiN's last mlpconv ends in a ReLU, and global average pooling turns each of its maps into one
logit. A class map that is 0 at every position of every image (a *dead* map) gives its class a
logit of exactly 0 whatever the input, and, since the ReLU passes no gradient where it outputs 0,
that map's layer gets no gradient through it: nothing can revive it. A network whose maps are
all dead predicts the uniform distribution, loss ln(C), for good (d2l-en issue 905;
jiecaoyu/pytorch-nin-cifar10 issue 1).

- `dead_class_maps(model, X)`: how many class maps are 0 on every image of X;
- `dead_maps_at_init(build, X, seeds)`: that count for freshly built models, one per seed;
- `FIXES` and `plateau_trial`: one short training run of d2l's NiN on Fashion-MNIST with the
  chapter's recipe and one change, reporting whether it left the plateau;
- `CIFAR_STARTS`: initialisations and optimisers for the first steps of the paper's plain CIFAR
  NIN (no batch norm), tried the same way;
- `trials_table`, `dead_at_init_table`: the study's results file as tables (pandas).
`benchmarks/plateau_study.py` runs the whole study and writes its tables.
"""
import math
import time

import torch

from ..models import ImageClassifier
from ..modes import evaluating
from .config import TrainConfig
from .loop import evaluate, fit
from .seeding import seed_everything
from .stuck import TrainingStuckError

LEFT_PLATEAU = 0.1  # a run whose final test loss is this far below ln(C) has started to learn


def class_maps_of(model, X):
    """The maps that global average pooling averages: (N, C, H, W) -> (N, num_classes, h, w)."""
    if not isinstance(model, ImageClassifier):
        raise TypeError(f"expected an ImageClassifier (a NiN of nin_course.models); got "
                        f"{type(model).__name__}")
    return model.features(X)


def dead_class_maps(model, X, batch_size=250):
    """Number of class maps that are exactly 0 at every position of every image in X.

    X: (N, C, H, W) inputs, prepared as in training. Evaluated in eval mode (no dropout),
    without gradients, in batches; the model's mode is restored afterwards.
    """
    alive = None
    with evaluating(model):
        for start in range(0, len(X), batch_size):
            maps = class_maps_of(model, X[start:start + batch_size])  # (B, K, h, w)
            nonzero = (maps != 0).any(dim=(0, 2, 3))                   # (K,)
            alive = nonzero if alive is None else alive | nonzero
    return int((~alive).sum())


def dead_maps_at_init(build, X, seeds):
    """[dead class maps of build() after seed_everything(seed), for each seed]."""
    counts = []
    for seed in seeds:
        seed_everything(seed)
        counts.append(dead_class_maps(build(), X))
    return counts


# One change each from the chapter's recipe (d2l's NiN, Xavier-uniform weights and PyTorch's
# default biases, plain SGD at lr 0.05): (model arguments, TrainConfig fields).
FIXES = {
    "the chapter (no change)": ({}, {}),
    "init: Gaussian std 0.05, biases 0 (paper's Caffe model)": ({"init": "gaussian"}, {}),
    "init: Kaiming normal, biases 0": ({"init": "kaiming"}, {}),
    "lr 0.01": ({}, {"lr": 0.01}),
    "lr 0.1": ({}, {"lr": 0.1}),
    "momentum 0.9": ({}, {"momentum": 0.9}),
    "warm-up (one-cycle schedule)": ({}, {"lr_schedule": "onecycle"}),
    "no ReLU on the class maps": ({"last_relu": False}, {}),
    "batch norm": ({"batch_norm": True}, {}),
    "AdamW, lr 0.001": ({}, {"optimizer": "adamw", "lr": 1e-3}),
}


# The first steps of the paper's plain CIFAR NIN on CIFAR-10 (normalised, batch 128, momentum 0.9
# for SGD): (model arguments, TrainConfig fields). The paper's own start is Gaussian + lr 0.1.
CIFAR_STARTS = {
    "Xavier (the book's), SGD lr 0.1 (the paper's)": ({"init": "xavier"}, {"lr": 0.1}),
    "Gaussian std 0.05 (the paper's), SGD lr 0.1": ({"init": "gaussian"}, {"lr": 0.1}),
    "Gaussian std 0.05, SGD lr 0.05": ({"init": "gaussian"}, {"lr": 0.05}),
    "Kaiming, SGD lr 0.05": ({"init": "kaiming"}, {"lr": 0.05}),
    "Kaiming, SGD lr 0.01": ({"init": "kaiming"}, {"lr": 0.01}),
    "Kaiming, AdamW lr 0.002": ({"init": "kaiming"},
                                {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.05}),
}


def plateau_trial(build, train_iter, test_iter, seed, num_classes=10, **config):
    """Train build() (after seeding) for one epoch of train_iter; returns a dict:

    dead_at_init, dead_after (class maps dead on the test images before and after), test_loss,
    test_acc, left_plateau (test loss more than LEFT_PLATEAU below ln(num_classes)), stopped
    (fit stopped it as dead or NaN), seconds. `config` overrides TrainConfig fields.
    """
    seed_everything(seed)
    model = build()
    X_test = torch.cat([X for X, _ in test_iter])
    dead_at_init = dead_class_maps(model, X_test)
    settings = TrainConfig(**{"num_epochs": 1, "seed": seed, **config})
    start, stopped = time.perf_counter(), False
    try:
        fit(model, train_iter, None, settings, progress=False, live_plot=False)
    except TrainingStuckError:
        stopped = True
    seconds = time.perf_counter() - start
    model.to("cpu", memory_format=torch.contiguous_format)
    loss, acc = evaluate(model, test_iter, "cpu")
    left = math.isfinite(loss) and loss < math.log(num_classes) - LEFT_PLATEAU
    return {"dead_at_init": dead_at_init, "dead_after": dead_class_maps(model, X_test),
            "test_loss": loss, "test_acc": acc, "left_plateau": left, "stopped": stopped,
            "seconds": seconds}


def trials_table(study):
    """The single-change table of a plateau study (the JSON that benchmarks/plateau_study.py
    writes, as a dict), as a DataFrame with one row per change: how many seeds learnt, the
    dead class maps at initialisation and after training (per seed), the test accuracy's mean,
    lowest and highest over the seeds."""
    import pandas as pd
    rows = {}
    for change, results in study["trials"].items():
        accs = [r["test_acc"] for r in results]
        rows[change] = {
            "learnt": f"{sum(r['left_plateau'] for r in results)}/{len(results)}",
            "dead at init": ",".join(str(r["dead_at_init"]) for r in results),
            "dead after": ",".join(str(r["dead_after"]) for r in results),
            "test acc (mean)": sum(accs) / len(accs), "lowest": min(accs), "highest": max(accs)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("change")


def dead_at_init_table(study):
    """The dead-maps-at-initialisation table of a plateau study (its JSON as a dict), as a
    DataFrame with one row per (network, init): the count for each seed, their mean, lowest
    and highest."""
    import pandas as pd
    rows = {(net, init): {"per seed": ",".join(map(str, counts)),
                          "mean": sum(counts) / len(counts), "lowest": min(counts),
                          "highest": max(counts)}
            for net, by_init in study["dead_at_init"].items()
            for init, counts in by_init.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    return table.rename_axis(["network", "init"]) if rows else table
