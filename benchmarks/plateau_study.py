"""The plateau study: dead class maps at initialisation, and which single change makes NiN learn.

    python benchmarks/plateau_study.py --save cpu_plateau_study          # about 25 min, 2 cores
    python benchmarks/plateau_study.py --steps 5 --train-seeds 1 --fixes 2   # a smoke run
    python benchmarks/plateau_study.py --cifar --save cpu_plateau_study_cifar  # part 3 alone

1. Dead class maps at initialisation (see nin_course/train/plateau.py), over `--init-seeds` seeds,
   for d2l's NiN on Fashion-MNIST (96x96, as the chapter feeds it: no normalisation) and the paper's
   CIFAR NIN on CIFAR-10 (normalised per channel, as the course trains it), with each of the
   three initialisations of nin_course.models.INITS.
2. For each change in plateau.FIXES and `--train-seeds` seeds: d2l's NiN trained for `--steps`
   steps of batch 128 on Fashion-MNIST at 96x96 with the chapter's recipe and that one change;
   the share of runs that left the plateau (test loss more than 0.1 below ln 10 on 1,000 test
   images) and their test accuracy.
3. With `--cifar` (instead of 1 and 2): for each start in plateau.CIFAR_STARTS and
   `--train-seeds` seeds, the paper's plain CIFAR NIN trained for `--steps` steps of batch 128
   on CIFAR-10 (normalised, SGD with momentum 0.9 and weight decay 1e-4, or AdamW): the same
   table, on 1,000 CIFAR-10 test images.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see time_to_accuracy.py

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402

import torch  # noqa: E402

from machine_info import describe, machine_info, save  # noqa: E402

from nin_course.data.arrays import load_arrays  # noqa: E402
from nin_course.data.loaders import ArrayLoader, channel_stats, subset  # noqa: E402
from nin_course.models import INITS, CifarNiN, NiN  # noqa: E402
from nin_course.train.plateau import (CIFAR_STARTS, FIXES, dead_maps_at_init,  # noqa: E402
                                      plateau_trial, trials_table)

IMAGE_SIZE = 96
BATCH_SIZE = 128  # the chapter's
NUM_IMAGES = 1_000  # images on which a map must be 0 everywhere to count as dead


def fashion_loaders(train_size, seed):
    """(train_iter, test_iter) at 96x96 without normalisation; the same subsets for every seed,
    shuffled by `seed`."""
    arrays = subset(load_arrays("fashion-mnist"), train_size, NUM_IMAGES, seed=0)
    train = ArrayLoader(arrays.x_train, arrays.y_train, BATCH_SIZE, shuffle=True,
                        resize=IMAGE_SIZE, seed=seed)
    test = ArrayLoader(arrays.x_test, arrays.y_test, 2 * BATCH_SIZE, resize=IMAGE_SIZE)
    return train, test


def cifar_loaders(train_size, seed):
    """(train_iter, test_iter) on CIFAR-10, normalised with the training set's channel
    statistics: `train_size` training images shuffled by `seed`, 1,000 test images."""
    full = load_arrays("cifar10")
    mean, std = channel_stats(full.x_train)
    arrays = subset(full, train_size, NUM_IMAGES, seed=0)
    train = ArrayLoader(arrays.x_train, arrays.y_train, BATCH_SIZE, shuffle=True, mean=mean,
                        std=std, seed=seed)
    test = ArrayLoader(arrays.x_test, arrays.y_test, 2 * BATCH_SIZE, mean=mean, std=std)
    return train, test


def cifar_images():
    """1,000 CIFAR-10 training images, normalised with the training set's channel statistics."""
    full = load_arrays("cifar10")
    mean, std = channel_stats(full.x_train)
    arrays = subset(full, NUM_IMAGES, 1, seed=0)
    loader = ArrayLoader(arrays.x_train, arrays.y_train, NUM_IMAGES, mean=mean, std=std)
    return next(iter(loader))[0]


def dead_at_init(seeds):
    """{network: {init: [dead maps per seed]}}."""
    fashion = torch.cat([X for X, _ in fashion_loaders(BATCH_SIZE, 0)[1]])
    cifar = cifar_images()
    nets = {"d2l NiN, Fashion-MNIST 96x96": (lambda init: NiN(input_size=IMAGE_SIZE, init=init),
                                             fashion),
            "paper's NIN, CIFAR-10": (lambda init: CifarNiN(init=init), cifar)}
    return {net: {init: dead_maps_at_init(lambda: build(init), X, seeds) for init in INITS}
            for net, (build, X) in nets.items()}


def trials(fixes, seeds, steps, cifar=False):
    """{fix: [plateau_trial result per seed]}, printing each as it ends. cifar: the starts of
    CIFAR_STARTS on the paper's CIFAR NIN instead of FIXES on d2l's NiN."""
    results = {}
    for fix in fixes:
        model_args, config = (CIFAR_STARTS if cifar else FIXES)[fix]
        results[fix] = []
        for seed in seeds:
            if cifar:
                train_iter, test_iter = cifar_loaders(steps * BATCH_SIZE, seed)
                build, base = (lambda: CifarNiN(**model_args),
                               {"momentum": 0.9, "weight_decay": 1e-4})
            else:
                train_iter, test_iter = fashion_loaders(steps * BATCH_SIZE, seed)
                build, base = lambda: NiN(input_size=IMAGE_SIZE, **model_args), {"lr": 0.05}
            row = plateau_trial(build, train_iter, test_iter, seed, **{**base, **config})
            print(f"{fix:58} seed {seed}: dead {row['dead_at_init']} -> {row['dead_after']}, "
                  f"test loss {row['test_loss']:.3f}, acc {row['test_acc']:.3f}, "
                  f"{row['seconds']:.0f} s", flush=True)
            results[fix].append(row)
    return results


def report(dead, results, steps, seeds, cifar=False):
    """The tables as text lines: 1 and 2, or 3 (cifar)."""
    lines = []
    if dead:
        lines += ["", f"1. Dead class maps at initialisation (of 10; on {NUM_IMAGES:,} images), "
                  "per seed"]
        for net, by_init in dead.items():
            for init, counts in by_init.items():
                lines.append(f"  {net:30} {init:9} {counts}  mean {statistics.mean(counts):.1f}")
    title = (f"3. The paper's plain CIFAR NIN, CIFAR-10, {steps} steps of batch {BATCH_SIZE} "
             f"(SGD: momentum 0.9, weight decay 1e-4), {len(seeds)} seeds" if cifar else
             f"2. d2l's NiN, Fashion-MNIST 96x96, {steps} steps of batch {BATCH_SIZE} "
             f"(the chapter's SGD, lr 0.05) with one change, {len(seeds)} seeds")
    lines += ["", title,
              f"  {'start' if cifar else 'change':58} {'learnt':>7} {'dead at init':>13} "
              f"{'test acc':>22}"]
    for fix, row in trials_table({"trials": results}).iterrows():
        spread = f"{row['test acc (mean)']:.3f} [{row['lowest']:.3f}-{row['highest']:.3f}]"
        lines.append(f"  {fix:58} {row['learnt']:<7} {row['dead at init']:>13} {spread:>22}")
    lines.append(f"  'learnt': test loss below ln(10) - 0.1 = {math.log(10) - 0.1:.3f} "
                 f"after {steps} steps.")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps per run")
    parser.add_argument("--init-seeds", type=int, default=10)
    parser.add_argument("--train-seeds", type=int, default=5)
    parser.add_argument("--fixes", type=int, default=len(FIXES), help="the first N of FIXES (or of CIFAR_STARTS)")
    parser.add_argument("--cifar", action="store_true",
                        help="part 3 only: the starts of the paper's plain CIFAR NIN")
    parser.add_argument("--save", default=None, help="write results/<SAVE>.json and .txt")
    args = parser.parse_args(argv)
    info = machine_info("cpu")
    print("\n".join(describe(info)), flush=True)
    init_seeds, train_seeds = list(range(args.init_seeds)), list(range(args.train_seeds))
    dead = {} if args.cifar else dead_at_init(init_seeds)
    changes = list(CIFAR_STARTS if args.cifar else FIXES)[:args.fixes]
    results = trials(changes, train_seeds, args.steps, cifar=args.cifar)
    lines = describe(info) + report(dead, results, args.steps, train_seeds, cifar=args.cifar)
    print("\n".join(lines))
    if args.save:
        save(args.save, {"machine": info, "steps": args.steps, "batch_size": BATCH_SIZE,
                         "image_size": None if args.cifar else IMAGE_SIZE, "dead_at_init": dead,
                         "trials": results}, lines)


if __name__ == "__main__":
    main()
