"""The plateau study: dead class maps at initialisation, and which single change makes NiN learn.

    python benchmarks/plateau_study.py --save cpu_plateau_study          # about 25 min, 2 cores
    python benchmarks/plateau_study.py --steps 5 --train-seeds 1 --fixes 2   # a smoke run

1. Dead class maps at initialisation (see nin_course/plateau.py), over `--init-seeds` seeds, for
   d2l's NiN on Fashion-MNIST (96x96, as the chapter feeds it: no normalisation) and the paper's
   CIFAR NIN on CIFAR-10 (normalised per channel, as the course trains it), with each of the
   three initialisations of nin_course.models.INITS.
2. For each change in plateau.FIXES and `--train-seeds` seeds: d2l's NiN trained for `--steps`
   steps of batch 128 on Fashion-MNIST at 96x96 with the chapter's recipe and that one change;
   the share of runs that left the plateau (test loss more than 0.1 below ln 10 on 1,000 test
   images) and their test accuracy.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see time_to_accuracy.py

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402

import torch  # noqa: E402

from machine_info import describe, machine_info, save  # noqa: E402

from nin_course.data import load_arrays  # noqa: E402
from nin_course.loaders import ArrayLoader, channel_stats, subset  # noqa: E402
from nin_course.models import INITS, CifarNiN, NiN  # noqa: E402
from nin_course.plateau import FIXES, dead_maps_at_init, plateau_trial  # noqa: E402

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


def trials(fixes, seeds, steps):
    """{fix: [plateau_trial result per seed]}, printing each as it ends."""
    results = {}
    for fix in fixes:
        model_args, config = FIXES[fix]
        results[fix] = []
        for seed in seeds:
            train_iter, test_iter = fashion_loaders(steps * BATCH_SIZE, seed)
            row = plateau_trial(lambda: NiN(input_size=IMAGE_SIZE, **model_args), train_iter,
                                test_iter, seed, **{"lr": 0.05, **config})
            print(f"{fix:58} seed {seed}: dead {row['dead_at_init']} -> {row['dead_after']}, "
                  f"test loss {row['test_loss']:.3f}, acc {row['test_acc']:.3f}, "
                  f"{row['seconds']:.0f} s", flush=True)
            results[fix].append(row)
    return results


def report(dead, results, steps, seeds):
    """The two tables as text lines."""
    lines = ["", f"1. Dead class maps at initialisation (of 10; on {NUM_IMAGES:,} images), "
             "per seed"]
    for net, by_init in dead.items():
        for init, counts in by_init.items():
            lines.append(f"  {net:30} {init:9} {counts}  mean {statistics.mean(counts):.1f}")
    lines += ["", f"2. d2l's NiN, Fashion-MNIST 96x96, {steps} steps of batch {BATCH_SIZE} "
              f"(the chapter's SGD, lr 0.05) with one change, {len(seeds)} seeds",
              f"  {'change':58} {'learnt':>7} {'dead at init':>13} {'test acc':>22}"]
    for fix, rows in results.items():
        learnt = sum(r["left_plateau"] for r in rows)
        accs = [r["test_acc"] for r in rows]
        spread = f"{statistics.mean(accs):.3f} [{min(accs):.3f}-{max(accs):.3f}]"
        dead_counts = ",".join(str(r["dead_at_init"]) for r in rows)
        lines.append(f"  {fix:58} {learnt}/{len(rows):<5} {dead_counts:>13} {spread:>22}")
    lines.append(f"  'learnt': test loss below ln(10) - 0.1 = {math.log(10) - 0.1:.3f} "
                 f"after {steps} steps.")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps per run")
    parser.add_argument("--init-seeds", type=int, default=10)
    parser.add_argument("--train-seeds", type=int, default=5)
    parser.add_argument("--fixes", type=int, default=len(FIXES), help="the first N of FIXES")
    parser.add_argument("--save", default=None, help="write results/<SAVE>.json and .txt")
    args = parser.parse_args(argv)
    info = machine_info("cpu")
    print("\n".join(describe(info)), flush=True)
    init_seeds, train_seeds = list(range(args.init_seeds)), list(range(args.train_seeds))
    dead = dead_at_init(init_seeds)
    results = trials(list(FIXES)[:args.fixes], train_seeds, args.steps)
    lines = describe(info) + report(dead, results, args.steps, train_seeds)
    print("\n".join(lines))
    if args.save:
        save(args.save, {"machine": info, "steps": args.steps, "batch_size": BATCH_SIZE,
                         "image_size": IMAGE_SIZE, "dead_at_init": dead, "trials": results},
             lines)


if __name__ == "__main__":
    main()
