"""The paper's CIFAR experiments: its training recipe, its published results, and a run of both.

Lin, Chen & Yan (2013), *Network In Network*, arXiv:1312.4400 (v3), section 4:
- `PAPER_RESULTS`: the test errors the paper reports (CIFAR-10 and CIFAR-100 in its Tables 1, 2
  and 5; SVHN and MNIST in Tables 3 and 4);
- `REPRODUCTIONS`: test errors that others' open code reached with the paper's CIFAR-10 NIN;
- `RECIPE`: how the authors trained their CIFAR NIN, as the paper and the released Caffe model
  describe it, next to what this course does (`cifar_recipe` turns it into settings per profile);
- `train_cifar_nin(num_classes, profile, augment, head)`: one run of the recipe on CIFAR-10 or
  CIFAR-100, saved under the cache folder so that later lessons can reuse it;
- `runs_against_published(names)`: stored reference runs next to the published numbers.
"""
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..data.arrays import SOURCES, cache_dir
from ..data.loaders import ArrayLoader
from ..models import CifarNiN
from ..train import checkpoints
from ..train.config import TrainConfig, split_settings
from ..train.history import History
from ..train.loop import evaluate, fit
from ..train.stuck import patience_for
from .profiles import resolve
from .spec import RunSpec, sized, with_config

PAPER = "Lin, Chen & Yan (2013), Network In Network, arXiv:1312.4400v3"


@dataclass(frozen=True)
class PaperResult:
    """One test error reported by the paper, with the table it comes from."""
    dataset: str       # 'cifar10', 'cifar100', 'svhn' or 'mnist'
    model: str         # the row's name in the paper's table
    head: str          # 'gap', 'fc' or 'fc+dropout' (nin_course.models.HEADS)
    augment: bool      # trained with translation and horizontal-flip augmentation
    test_error: float  # percent
    source: str        # e.g. 'Lin et al. 2013, Table 1'


PAPER_RESULTS = (
    PaperResult("cifar10", "NIN + Dropout", "gap", False, 10.41, "Lin et al. 2013, Table 1"),
    PaperResult("cifar10", "NIN + Dropout + Data Augmentation", "gap", True, 8.81,
                "Lin et al. 2013, Table 1"),
    PaperResult("cifar100", "NIN + Dropout", "gap", False, 35.68, "Lin et al. 2013, Table 2"),
    # Table 5 (sec. 4.6, "global average pooling as a regularizer"): CIFAR-10 without
    # augmentation, the same network with its GAP replaced by a fully connected layer.
    PaperResult("cifar10", "mlpconv + Fully Connected", "fc", False, 11.59,
                "Lin et al. 2013, Table 5"),
    PaperResult("cifar10", "mlpconv + Fully Connected + Dropout", "fc+dropout", False, 10.88,
                "Lin et al. 2013, Table 5"),
    PaperResult("cifar10", "mlpconv + Global Average Pooling", "gap", False, 10.41,
                "Lin et al. 2013, Table 5"),
    # Sec. 4.4 and 4.5: SVHN (local contrast normalisation, no augmentation) and MNIST (fewer maps
    # per mlpconv layer, no augmentation); not the best numbers in either table.
    PaperResult("svhn", "NIN + Dropout", "gap", False, 2.35, "Lin et al. 2013, Table 3"),
    PaperResult("mnist", "NIN + Dropout", "gap", False, 0.47, "Lin et al. 2013, Table 4"),
)


@dataclass(frozen=True)
class Reproduction:
    """A CIFAR-10 test error that someone else's open code reached with the paper's NIN."""
    name: str
    network: str              # what was trained, as far as the source shows
    augment: bool | None      # None: the source does not say
    test_error: float         # percent
    epochs: int | None        # None: the source does not say
    train_size: int | None    # training images; None: the source does not say
    source: str               # where the number is written
    quote: str                # what is written there


REPRODUCTIONS = (
    # `--data-provider cifar` in the README's command: whole images, no crops or flips
    Reproduction("the authors' cuda-convnet code", "plain", False, 10.4, 260, 50_000,
                 "github.com/mavenlin/cuda-convnet, README.md",
                 "'After 200 epochs, the test error is around 14%'; 30 more epochs at a tenth "
                 "of the learning rate: 'error rate near 10.7%'; 30 more at a hundredth: 'Then "
                 "the error rate will be 10.4%'"),
    Reproduction("the authors' Caffe model", "plain, Gaussian init", None, round(100 - 89.6, 2),
                 None, None, "Caffe Model Zoo, gist.github.com/mavenlin/e56253735ef32c3c296d",
                 "'The performance of this model on validation set is 89.6%'"),
    Reproduction("osmr/imgclsmob (pytorchcv)", "plain, Kaiming-uniform init", None, 7.43, None,
                 None, "github.com/osmr/imgclsmob, README.md, CIFAR-10 table",
                 "NIN (nin_cifar10): 'Error, %' 7.43"),
)


def paper_result(dataset, head="gap", augment=False, table=None):
    """The PaperResult for `dataset` with `head` and `augment` (from `table`, e.g. 'Table 5')."""
    found = [r for r in PAPER_RESULTS if (r.dataset, r.head, r.augment) == (dataset, head, augment)
             and (table is None or r.source.endswith(table))]
    if not found:
        raise KeyError(f"the paper reports no test error for {dataset} with head={head!r}, "
                       f"augment={augment}{'' if table is None else ' in ' + table}")
    return found[0]


# How the paper's CIFAR NIN was trained, and what the course does instead: (setting, paper or
# released model, this course). Sources: the paper's sec. 4.1-4.2; the authors' released Caffe
# model (Caffe Model Zoo, gist mavenlin/e56253735ef32c3c296d: solver base_lr 0.1, momentum 0.9,
# weight_decay 1e-4); and, for the per-layer settings of that model (learning-rate and decay
# multipliers, initial weights), its PyTorch port github.com/jiecaoyu/pytorch-nin-cifar10,
# whose "settings are based on" the gist (the port itself trains with momentum 0.95).
RECIPE = (
    ("network", "3 mlpconv layers 192-160-96 / 192-192-192 / 192-192-C, dropout 0.5 after the "
     "first two, global average pooling", "the same: CifarNiN"),
    ("optimizer", "SGD with momentum 0.9 (released solver)", "the same"),
    ("batch size", "128 (sec. 4.1)", "the same"),
    ("learning rate", "0.1; biases 2x, the last 1x1 layer 0.1x (released model)",
     "0.1 for every parameter"),
    ("weight decay", "1e-4 on weights, none on biases (released model; tuned on validation "
     "data, sec. 4.2)", "1e-4 on every parameter"),
    ("initialisation", "Gaussian, std 0.05, biases 0 (released model)",
     "cifar_recipe: Xavier-uniform, biases PyTorch's default (CifarNiN's default); the plain "
     "reference runs: the paper's Gaussian"),
    ("lr schedule", "divided by 10 when training accuracy stops improving, twice (sec. 4.1)",
     "divided by 10 at fixed epochs, twice"),
    ("inputs", "global contrast normalisation + ZCA whitening, as maxout (sec. 4.2)",
     "per-channel mean and std of the training images"),
    ("augmentation", "none; or translation + horizontal flips (Table 1's 8.81%)",
     "none; or random 32x32 crops of the image padded by 4 pixels + flips"),
)

BATCH_SIZE = 128        # sec. 4.1: "mini-batches of size 128"
LR = 0.1                # the released solver's base_lr
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4     # the released model's; the paper tuned it on validation data
NUM_EPOCHS = 150        # our choice for the full run: the paper trains "until the accuracy on
                        # the training set stops improving", which we cannot detect in advance
LR_DROPS = ((101, 0.1), (131, 0.1))  # epochs 1-100 at 0.1, 101-130 at 0.01, 131-150 at 0.001
SEED = 0
FULL_TRAIN_SIZE = 50_000  # both CIFAR-10 and CIFAR-100 have 50,000 training images
# Trained this way from scratch, a NIN can sit at loss ln(C) for hundreds of steps before it
# starts to learn (the cpu profile's 80 steps end inside that phase). `fit` stops a run whose
# loss stays at ln(C) for `stuck_patience` epochs; the recipe gives it this many steps first.
PLATEAU_STEPS = 2_000


def cifar_recipe(profile=None, augment=False, num_classes=10, head="gap", **config):
    """The paper's CIFAR recipe as a RunSpec, sized by `profile` (a Profile, its name, or None:
    the current one).

    The profile takes the first `profile.epochs(NUM_EPOCHS)` epochs of the schedule (a learning
    rate drop that falls after them does not happen) on `profile.train_size` training examples.
    `config` overrides TrainConfig fields (e.g. lr=0.05).
    """
    profile = resolve(profile)
    dataset = _dataset(num_classes)
    spec = sized(RunSpec(
        name=f"paper: CIFAR NIN on {dataset}, {head} head, "
             f"{'with' if augment else 'without'} augmentation",
        model="CifarNiN", dataset=dataset, model_args=dict(num_classes=num_classes, head=head),
        batch_size=BATCH_SIZE, normalize=True, augment=augment, padding=4, seed=SEED,
        config=TrainConfig(lr=LR, num_epochs=NUM_EPOCHS, optimizer="sgd", momentum=MOMENTUM,
                           weight_decay=WEIGHT_DECAY)), profile)
    num_epochs = spec.config.num_epochs
    drops = tuple(drop for drop in LR_DROPS if drop[0] <= num_epochs) or None
    patience = patience_for(PLATEAU_STEPS, profile.train_size or FULL_TRAIN_SIZE, BATCH_SIZE)
    return with_config(spec, **{"lr_schedule": drops, "stuck_patience": patience, **config})


@dataclass
class CifarRun:
    """The outcome of `train_cifar_nin`: the trained model, its history and its test error."""
    dataset: str
    head: str
    recipe: RunSpec
    model: CifarNiN
    history: History
    test_error: float     # percent, on `test_size` test images, evaluated after training
    train_size: int       # training images actually used
    test_size: int
    classes: list         # the class names, in label order
    data_source: str      # where the arrays came from (see ImageArrays.source)
    full_train_size: int  # training images in the data set on disk
    checkpoint: Path
    reused: bool          # True: loaded from a finished checkpoint, not trained now
    test_iter: ArrayLoader  # the test images, normalised as the model was trained

    def prepare(self, images):
        """uint8 images (N, H, W, C) -> the model's inputs (N, C, H, W), normalised as in
        training, on the model's device."""
        X = torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2)  # (N, C, H, W) uint8
        return self.test_iter.transform(X.to(self.test_iter.device))

    @property
    def is_subset(self):
        """True when the data on disk is not the whole data set (the CIFAR-100 subset here)."""
        return self.full_train_size < FULL_TRAIN_SIZE

    def summary(self):
        """One line: the data set, the head, the sizes and the test error."""
        aug = "with" if self.recipe.augment else "without"
        note = " (CIFAR-100 SUBSET on disk)" if self.is_subset else ""
        how = "reused checkpoint" if self.reused else "trained now"
        return (f"{self.dataset}{note}, head {self.head}, {aug} augmentation: "
                f"{self.train_size:,} train / {self.test_size:,} test images, "
                f"{len(self.history)} epoch(s), test error {self.test_error:.2f}% ({how})")


def checkpoint_path(dataset, head, recipe):
    """Where a run is saved: <cache>/paper/<dataset>-<head>-<aug>-<profile>-<key>.ckpt."""
    aug = "aug" if recipe.augment else "noaug"
    head = head.replace("+", "-")
    return cache_dir() / "paper" / f"{dataset}-{head}-{aug}-{recipe.profile}-{recipe.key()}.ckpt"


def saved_profile(num_classes=10, augment=False, head="gap", profiles=("cuda", "cpu", "smoke")):
    """The first of `profiles` whose run (with these settings) is saved and finished, else None.

    Lets a later lesson use the most complete run that lesson 06 has saved, whatever the
    current profile: `train_cifar_nin(..., profile=saved_profile(...), reuse=True)`.
    """
    dataset = _dataset(num_classes)
    for name in profiles:
        recipe = cifar_recipe(name, augment, num_classes, head)
        if _finished(checkpoint_path(dataset, head, recipe), recipe.config.num_epochs):
            return name
    return None


def _dataset(num_classes):
    """'cifar10' or 'cifar100' for 10 or 100 classes."""
    if num_classes not in (10, 100):
        raise ValueError(f"num_classes must be 10 (CIFAR-10) or 100 (CIFAR-100); got "
                         f"{num_classes!r}")
    return f"cifar{num_classes}"


def train_cifar_nin(num_classes=10, profile=None, augment=False, head="gap", reuse=False,
                    root=None, **overrides):
    """Train the paper's CIFAR NIN on CIFAR-10 (num_classes=10) or CIFAR-100 (100): a CifarRun.

    The recipe is `cifar_recipe(profile, augment, num_classes, head)`; `overrides` replace its
    TrainConfig fields or Runtime fields (device, progress, live_plot, ...). The run is saved to
    `checkpoint_path(...)` in the cache folder. reuse=True takes a finished (or continues an
    unfinished) run with exactly these settings from there, if one exists; reuse=False trains
    from scratch and replaces it, keeping the old file until the new run has finished.
    """
    dataset = _dataset(num_classes)
    recipe = cifar_recipe(profile, augment, num_classes, head)
    config, runtime = split_settings(recipe.config, **overrides)
    recipe = replace(recipe, config=config)
    arrays, full = recipe.data(root)
    train_iter, test_iter = recipe.loaders(device=runtime.device, arrays=arrays)
    model = recipe.build_model()  # the same initial weights in every lesson
    path = checkpoint_path(dataset, head, recipe)
    reused = reuse and _finished(path, recipe.config.num_epochs)
    history = _fit_into(model, train_iter, test_iter, recipe.config, runtime, path, resume=reuse)
    if reused:  # measure the loaded model; a run trained now was measured by fit's last epoch
        _, acc = evaluate(model, test_iter)
    else:
        acc = history.test_acc[-1]
    return CifarRun(dataset=dataset, head=head, recipe=recipe, model=model, history=history,
                    test_error=100 * (1 - acc), train_size=len(train_iter.y),
                    test_size=len(test_iter.y), classes=full.classes, data_source=full.source,
                    full_train_size=len(full.y_train), checkpoint=path, reused=reused,
                    test_iter=test_iter)


def _finished(path, num_epochs):
    """Whether `path` holds a run that has done all `num_epochs` epochs."""
    try:
        return checkpoints.read_checkpoint(path)["epoch"] >= num_epochs
    except (FileNotFoundError, ValueError):
        return False


def _fit_into(model, train_iter, test_iter, config, runtime, path, resume):
    """fit, checkpointing to `path`: continuing it if `resume`, else into a new file that
    replaces `path` only once the run has finished."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if resume:
        return fit(model, train_iter, test_iter, config, runtime, checkpoint_path=path,
                   resume=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".run-", suffix=".ckpt")
    os.close(fd)
    os.remove(tmp)  # fit refuses to overwrite a file it was not asked to resume
    try:
        history = fit(model, train_iter, test_iter, config, runtime, checkpoint_path=tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return history


COMPARISON_COLUMNS = ("network", "data", "augmentation", "training images", "test error %",
                      "epochs", "training minutes", "machine", "source or state")


def runs_against_published(names, train_sizes=None):
    """A DataFrame with one row per reference run in `names` (nin_course.runs.store), read from its
    record, then one per published CIFAR result: the paper's Tables 1 and 2, and REPRODUCTIONS.

    Columns: network, data, augmentation, training images, test error %, epochs, training
    minutes, machine, and "source or state": a run that is not stored gets its state
    (store.status) and the command that trains it. `train_sizes`: {dataset: training images on
    disk}, shown for runs that use them all (default: 'all').
    """
    import pandas as pd
    rows = {name: _run_row(name, train_sizes or {}) for name in names}
    for r in PAPER_RESULTS:
        if r.dataset.startswith("cifar") and r.source.endswith(("Table 1", "Table 2")):
            rows[f"paper ({r.source.rpartition(', ')[2]}): {r.model}"] = {
                **_settings("plain", r.dataset, "translations + flips" if r.augment else "none",
                            FULL_TRAIN_SIZE),
                "test error %": r.test_error, "epochs": "not stated", "source or state": r.source}
    for r in REPRODUCTIONS:
        augment = {None: "not stated", False: "none"}.get(r.augment, "yes")
        rows[r.name] = {**_settings(r.network, "cifar10", augment, r.train_size or "not stated"),
                        "test error %": r.test_error, "epochs": r.epochs or "not stated",
                        "source or state": r.source}
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("run or source")
    return table.reindex(columns=list(COMPARISON_COLUMNS)).astype(object).fillna("")


def _run_row(name, train_sizes):
    """The reference run `name`: its settings and, if it is stored, its results (a dict)."""
    from . import store  # store imports this module: import it only when called
    try:
        run = store.load_run(name)
    except (store.RunNotFoundError, store.StaleRunError):
        run = None
    spec = store.reference_spec(name) if run is None else run.spec
    network = f"{'batch norm' if spec.model_args.get('batch_norm') else 'plain'}, " \
              f"{spec.model_args.get('init', 'xavier').capitalize()} init"
    row = _settings(network, spec.dataset, "crops + flips" if spec.augment else "none",
                    spec.train_size or train_sizes.get(spec.dataset, "all"))
    if run is None:
        state = " ".join(store.status(name).split())
        if state.startswith("missing"):
            state = "not trained yet" + state.removeprefix("missing")
        return {**row, "source or state": f"{state}: {store.command(name)}"}
    summary = run.summary_row()
    return {**row, "test error %": round(100 * (1 - summary["test accuracy"]), 2),
            "epochs": summary["epochs"],
            "training minutes": round(summary["training minutes"], 1),
            "machine": summary["machine"], "source or state": f"runs/{name}/record.json"}


def _settings(network, dataset, augmentation, train_size):
    """The first four columns of a row of `runs_against_published`."""
    return {"network": network, "data": SOURCES[dataset].title, "augmentation": augmentation,
            "training images": f"{train_size:,}" if isinstance(train_size, int) else train_size}
