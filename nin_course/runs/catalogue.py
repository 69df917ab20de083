"""The reference runs, described: each name in `REFERENCE_RUNS` gives the RunSpec that
`store.train_reference` trains and `store.load_run` checks a stored run against.

The Fashion-MNIST runs start from the recipes (recipes.py), the CIFAR ones from the paper's
recipe (paper.py) as the course varies it (batch norm, Kaiming weights, a one-cycle schedule);
the `gpu-` runs are sized for a GPU (benchmarks/gpu_runs.py).
"""
from dataclasses import replace

from ..models import COURSE_INIT, HEADS
from . import recipes
from .paper import cifar_recipe
from .spec import with_config


def d2l_nin_fashion():
    """d2l's NiN, the chapter's architecture unchanged, on all of Fashion-MNIST at 96x96 with
    the course's init (recipes.d2l_recipe); normalised inputs, AdamW with a one-cycle schedule,
    10 epochs (the chapter: 224x224, plain SGD)."""
    spec = recipes.d2l_recipe("cuda", image_size=96)
    return replace(with_config(spec, optimizer="adamw", lr=2e-3, weight_decay=0.05,
                               lr_schedule="onecycle", num_epochs=10, stuck_patience=2),
                   name="d2l NiN on Fashion-MNIST, 96x96, Kaiming init, AdamW one-cycle",
                   normalize=True, profile=None)


def fast_fashion():
    """The fast recipe on all of Fashion-MNIST, 18 epochs. (12 epochs with random crops and
    flips reached 0.9233: in runs this short the augmentation costs more than it gives.)"""
    return replace(recipes.fast_recipe("cuda", num_epochs=18), profile=None)


def _augmented(augment):
    return "CIFAR-10 + augmentation" if augment else "CIFAR-10 without augmentation"


def cifar10_nin_bn(augment=True):
    """The paper's CIFAR NIN with batch norm before every ReLU (the course's variant), on all
    of CIFAR-10 (with augmentation unless augment=False): SGD with momentum 0.9, a one-cycle
    schedule peaking at lr 0.1, weight decay 5e-4, 10 epochs (the paper: no batch norm, about
    150 epochs)."""
    return _with_batch_norm(cifar_recipe("cuda", augment=augment), 10,
                            f"paper's CIFAR NIN + batch norm, {_augmented(augment)}, 10 epochs")


def _with_batch_norm(spec, num_epochs, name, **fields):
    """`spec` (a cifar_recipe) as the course's variant: batch norm before every ReLU, Kaiming
    weights, SGD with momentum on a one-cycle schedule peaking at lr 0.1, weight decay 5e-4,
    `num_epochs`; each epoch's short last batch dropped (batch norm). `fields`: RunSpec fields."""
    return replace(with_config(spec, lr=0.1, weight_decay=5e-4, lr_schedule="onecycle",
                               num_epochs=num_epochs),
                   name=name, model_args={**spec.model_args, "batch_norm": True,
                                          "init": COURSE_INIT},
                   drop_last=True, profile=None, **fields)


def cifar10_nin(augment=True):
    """The paper's plain CIFAR NIN (no batch norm) with the paper's initialisation (the released
    Caffe model's: Gaussian weights, std 0.05, biases 0), on all of CIFAR-10 (with augmentation
    unless augment=False):
    the paper's SGD with lr 0.1, momentum 0.9 and weight decay 1e-4, on a one-cycle schedule
    (warm-up, then cosine decay) over 12 epochs instead of 150 epochs with two drops.

    Not Kaiming, as the other NiN recipes: on this network without batch norm, Kaiming weights
    end most short runs with every class map dead (part 3 of the plateau study, 150 steps, 3
    seeds: 0/3 left the plateau with SGD at lr 0.05 or 0.01, 1/3 with AdamW at lr 0.002),
    while the paper's Gaussian start at lr 0.1 left it in 3/3 (benchmarks/README.md).
    """
    spec = cifar_recipe("cuda", augment=augment)
    return replace(with_config(spec, lr=0.1, lr_schedule="onecycle", num_epochs=12),
                   name=f"paper's CIFAR NIN, {_augmented(augment)}, 12 epochs",
                   model_args={**spec.model_args, "init": "gaussian"}, profile=None)


def fashion_canvas():
    """FashionNiN (the fast recipe's network and settings, 5 epochs) on all of Fashion-MNIST
    with each item placed at random on a 64x64 blank canvas (spec.load_dataset), so that the
    object's box is known exactly: lesson 08 measures whether its class maps find the object.
    Its 16x16 class maps each see 19x19 pixels."""
    spec = recipes.fast_recipe("cuda", num_epochs=5)
    return replace(spec, name="FashionNiN on Fashion-MNIST items placed on 64x64 canvases",
                   dataset="fashion-mnist-canvas64",
                   model_args={**spec.model_args, "input_size": 64}, profile=None)


def cifar100_nin_bn():
    """The course's variant (batch norm, Kaiming) on the CIFAR-100 copy here, which is a subset:
    100 training images per class (10,000, a fifth of CIFAR-100's), all 10,000 test images;
    augmentation, SGD with momentum 0.9, one-cycle peaking at lr 0.1, 15 epochs."""
    return _with_batch_norm(cifar_recipe("cuda", augment=True, num_classes=100), 15,
                            "paper's CIFAR NIN + batch norm, CIFAR-100 subset (100 images per "
                            "class) + augmentation, 15 epochs")


TABLE5_TRAIN_SIZE, TABLE5_TEST_SIZE, TABLE5_EPOCHS = 2_500, 2_000, 30
TABLE5_SEEDS = (0, 1, 2)


def table5(head, seed):
    """The paper's Table 5 on a CPU budget: the CIFAR NIN (the course's variant: batch norm,
    Kaiming) with `head` ('gap', 'fc' or 'fc+dropout') on 2,500 CIFAR-10 training images (250
    per class) without augmentation, as the paper's Table 5, 30 epochs of SGD (momentum 0.9,
    one-cycle to lr 0.1, weight decay 5e-4), so that the FC head can fit its training set.
    Tested on 2,000 test images; each `seed` draws other images, weights and shuffles.
    (5,000 images for 12 epochs left the GAP head at 74.8% training accuracy, still learning.)"""
    return _with_batch_norm(cifar_recipe("cuda", augment=False, head=head), TABLE5_EPOCHS,
                            f"Table 5: CIFAR NIN + batch norm, {head} head, 2,500 CIFAR-10 "
                            f"images, seed {seed}", train_size=TABLE5_TRAIN_SIZE,
                            test_size=TABLE5_TEST_SIZE, seed=seed)


def gpu_d2l_nin_fashion():
    """The chapter's recipe at full size (224x224, SGD lr 0.05, 10 epochs, all 60,000 images)
    with the course's initialisation: a GPU run (benchmarks/gpu_runs.py)."""
    spec = recipes.d2l_recipe("cuda")
    return replace(spec, name="GPU: the chapter's recipe, 224x224, 10 epochs", profile=None)


def gpu_cifar(num_classes=10, augment=False, num_epochs=150):
    """The paper's CIFAR recipe in `num_epochs` epochs, its two lr drops at the same fractions
    of the run (epochs 101 and 131 of 150): a GPU run (benchmarks/gpu_runs.py)."""
    drops = tuple((1 + round(num_epochs * e / 150), f) for e, f in ((100, 0.1), (130, 0.1)))
    drops = tuple(d for d in drops if d[0] <= num_epochs) or None
    spec = cifar_recipe("cuda", augment, num_classes, num_epochs=num_epochs, lr_schedule=drops)
    return replace(spec, name=f"GPU: {spec.name}, {num_epochs} epochs", profile=None)


REFERENCE_RUNS = {  # name -> RunSpec; GPU runs take the num_epochs their record states
    "d2l-nin-fashion": d2l_nin_fashion,
    "fast-fashion": fast_fashion,
    "cifar10-nin-bn": cifar10_nin_bn,
    "cifar10-nin": cifar10_nin,
    "cifar10-nin-bn-noaug": lambda: cifar10_nin_bn(augment=False),
    "cifar10-nin-noaug": lambda: cifar10_nin(augment=False),
    "cifar100-nin-bn": cifar100_nin_bn,
    "fashion-canvas": fashion_canvas,
    **{f"table5-{head}-seed{seed}": (lambda head=head, seed=seed: table5(head, seed))
       for head in HEADS for seed in TABLE5_SEEDS},
    "gpu-d2l-nin-fashion": gpu_d2l_nin_fashion,
    "gpu-cifar10-nin": lambda num_epochs=150: gpu_cifar(10, False, num_epochs),
    "gpu-cifar10-nin-aug": lambda num_epochs=150: gpu_cifar(10, True, num_epochs),
    "gpu-cifar100-nin": lambda num_epochs=150: gpu_cifar(100, False, num_epochs),
}
