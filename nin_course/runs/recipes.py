"""Fashion-MNIST recipes: the chapter's (d2l.ai 8.3) and a faster, better one, sized by a profile.

Each recipe is a function returning a `RunSpec` (spec.py): the model, the input pipeline (image
size, batch size, normalisation, augmentation) and the `TrainConfig`. Build and train it with
```python
spec = fast_recipe()                        # sized by NIN_COURSE_PROFILE
model, train_iter, test_iter = spec.build()
history = fit(model, train_iter, test_iter, spec.config)
```
- `d2l_recipe`: the chapter's settings (d2l's NiN at 224x224, batch 128, plain SGD with lr 0.05,
  10 epochs, no normalisation, no augmentation) on nin_course's input pipeline and trainer;
- `fast_recipe`: `models.FashionNiN`, a NiN with batch norm sized for Fashion-MNIST's own 28x28
  pixels, with normalised inputs, AdamW, a one-cycle schedule and label smoothing (and, as an
  option, random crops and flips);
- `book_run`: the chapter's run on the book's own classes (`d2l.Trainer`, `d2l.FashionMNIST`);
- `ablation_table`: what each of the fast recipe's changes is worth, from the results of
  benchmarks/fast_ablation.py.

The run profile (see profiles.py) caps the image size, the number of epochs and the examples.
"""
from dataclasses import replace

import numpy as np

from ..data.loaders import balanced_indices
from ..models import COURSE_INIT
from ..train.config import TrainConfig
from ..train.stuck import patience_for
from .profiles import resolve
from .spec import RunSpec, sized, with_config  # noqa: F401 (with_config: for the lessons)

D2L_EPOCHS = 10     # d2l.ai 8.3 trains NiN for 10 epochs ...
D2L_IMAGE_SIZE = 224  # ... on Fashion-MNIST resized from 28x28 to 224x224 ...
D2L_BATCH_SIZE = 128  # ... in batches of 128, with plain SGD at lr 0.05
D2L_TRAIN_SIZE = 60_000  # Fashion-MNIST's training images
FAST_EPOCHS = 10    # the full fast recipe; on a shared 2-core CPU, time_to_accuracy.py runs fewer
# With plain SGD, d2l's NiN sits at loss ln(10) for hundreds of steps before it learns (a cpu
# profile run, 2 epochs of 40 steps, ends inside that phase). `fit` stops a run whose loss stays
# at ln(10) for `stuck_patience` epochs; the chapter's recipe gets at least this many steps first.
D2L_PLATEAU_STEPS = 1_000


def d2l_recipe(profile=None, *, image_size=D2L_IMAGE_SIZE, **config):
    """The chapter's recipe on nin_course: d2l's NiN, 224x224, batch 128, SGD lr 0.05, 10 epochs,
    with one change from the book: the weights start as COURSE_INIT (Kaiming normal, zero
    biases) instead of the book's Xavier-uniform, which leaves the network on the ln(10)
    plateau (see train/plateau.py).

    `profile` (a Profile or its name; None: NIN_COURSE_PROFILE) caps the image size, epochs and
    examples. Other keyword arguments override TrainConfig fields (e.g. lr=0.01).
    """
    profile = resolve(profile)
    spec = sized(RunSpec(
        name=f"d2l: NiN at {image_size}x{image_size}", model="NiN", dataset="fashion-mnist",
        model_args=dict(num_classes=10, in_channels=1, input_size=image_size, init=COURSE_INIT),
        image_size=image_size, batch_size=D2L_BATCH_SIZE,
        config=TrainConfig(lr=0.05, num_epochs=D2L_EPOCHS, optimizer="sgd")), profile)
    size = spec.image_size
    patience = patience_for(D2L_PLATEAU_STEPS, profile.train_size or D2L_TRAIN_SIZE,
                            D2L_BATCH_SIZE)
    return with_config(replace(spec, name=f"d2l: NiN at {size}x{size}"),
                       **{"stuck_patience": patience, **config})


def fast_recipe(profile=None, *, augment=False, **config):
    """A better recipe: FashionNiN at 28x28, normalised inputs, AdamW + one-cycle, batch 256.

    `profile` caps the epochs and examples (the image size is already small). `augment=True`
    adds random crops (padding 2) and flips: they help long runs, but cost accuracy in runs of
    a few epochs (on a 20,000-image subset, 3 epochs: 0.82 with them, 0.86 without), so they
    are off by default. Other keyword arguments override TrainConfig fields (e.g.
    num_epochs=4). Training drops each epoch's short last batch (96 of 60,000 images,
    different ones every epoch): batch norm would take a compiled model's padding (see
    training.pad_batch) into its statistics.
    """
    settings = dict(
        lr=1e-2, optimizer="adamw", weight_decay=0.05,  # AdamW: a step size per parameter
        lr_schedule="onecycle",    # warm-up, then a cosine decay to 0 by the last batch
        label_smoothing=0.1,       # soft targets: less over-confidence, better test accuracy
        num_epochs=FAST_EPOCHS)
    spec = sized(RunSpec(
        name="fast: FashionNiN at 28x28", model="FashionNiN", dataset="fashion-mnist",
        model_args=dict(num_classes=10, in_channels=1), image_size=None, batch_size=256,
        config=TrainConfig(**settings), normalize=True, augment=augment, padding=2,
        drop_last=True), profile)
    return with_config(spec, **config)


def book_run(profile=None, root=None, seed=0):
    """The chapter's run on the book's own classes: (model, data, trainer), sized by the profile.

    As d2l.ai 8.3: `reference.NiN(lr=0.05)`, `d2l.FashionMNIST(batch_size=128, resize=(224, 224))`
    (here `reference.FashionMNIST`, which reads from `root`, default the data root), lazy layers
    initialised by `apply_init` on one batch, and `d2l.Trainer(max_epochs=10, num_gpus=1)`.
    A smaller profile swaps data.train / data.val for the same class-balanced subsets that
    `RunSpec.data` uses, caps the image size and the epochs. Train with trainer.fit(model, data).
    Imports d2l (slow).
    """
    from d2l import torch as d2l

    from .. import reference
    from ..data.arrays import data_root
    profile = resolve(profile)
    size = profile.image_size(D2L_IMAGE_SIZE)
    data = reference.FashionMNIST(batch_size=D2L_BATCH_SIZE, resize=(size, size),
                             root=data_root() if root is None else root)
    data.train = _book_subset(data.train, profile.train_size, seed, 0)
    data.val = _book_subset(data.val, profile.test_size, seed, 1)
    model = reference.NiN(lr=0.05)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    trainer = d2l.Trainer(max_epochs=profile.epochs(D2L_EPOCHS), num_gpus=1)
    return model, data, trainer


def _book_subset(dataset, size, seed, split):
    """The torchvision data set, or a Subset of the examples that `loaders.subset` would pick."""
    from torch.utils.data import Subset
    if size is None or size >= len(dataset):
        return dataset
    labels = np.asarray(dataset.targets)
    return Subset(dataset, balanced_indices(labels, size, np.random.default_rng([seed, split])))


def ablation_table(result):
    """The results of benchmarks/fast_ablation.py (its JSON as a dict) as a DataFrame, one row
    per run: test accuracy, its difference from the recipe's mean over seeds, seconds of
    training, and whether that difference is larger than the recipe's own spread over seeds
    (max - min), the least a difference must be to mean something."""
    import pandas as pd
    mean, spread = result["recipe_mean"], result["recipe_spread"]
    rows = {name: {"test acc": run["test_acc"], "vs recipe": run["test_acc"] - mean,
                   "training s": run["train_seconds"],
                   "beyond the spread": abs(run["test_acc"] - mean) > spread}
            for name, run in result["runs"].items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("run")
