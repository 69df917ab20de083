"""What each change of the fast recipe buys: the recipe with one of its changes undone at a time.

    python benchmarks/fast_ablation.py --seeds 2 --save cpu_fast_ablation   # about 15 min, 2 cores
    python benchmarks/fast_ablation.py --epochs 1 --train-size 512 --test-size 256 --only 2

Trains `recipes.fast_recipe` on all of Fashion-MNIST (`--epochs` epochs, the one-cycle schedule
fitted to them) as it is, with `--seeds` seeds, then once (seed 0) for each change in ABLATIONS,
which puts back the chapter's choice for one ingredient. Reports, per run, the test accuracy on
all 10,000 test images after the last epoch and the seconds of training; the spread of the
recipe over its seeds says how large a difference has to be to mean something.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see time_to_accuracy.py

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from dataclasses import replace  # noqa: E402

from machine_info import describe, load_average, machine_info, save  # noqa: E402

from nin_course import Runtime, fit  # noqa: E402
from nin_course.runs.recipes import fast_recipe  # noqa: E402
from nin_course.runs.spec import with_config  # noqa: E402

# One ingredient of the fast recipe put back as the chapter has it: name -> (RunSpec fields,
# model arguments, TrainConfig fields).
ABLATIONS = {
    "no batch norm": ({}, {"batch_norm": False}, {}),
    "ReLU on the class maps": ({}, {"last_relu": True}, {}),
    "inputs in [0, 1], not normalised": ({"normalize": False}, {}, {}),
    "SGD lr 0.05, no weight decay (not AdamW)": ({}, {}, {"optimizer": "sgd", "lr": 0.05,
                                                         "weight_decay": 0.0}),
    "constant lr (no one-cycle)": ({}, {}, {"lr_schedule": None}),
    "no label smoothing": ({}, {}, {"label_smoothing": 0.0}),
    "batch 128 (not 256)": ({"batch_size": 128}, {}, {}),
}


def ablated(spec, name):
    """The fast recipe's RunSpec with ABLATIONS[name] applied."""
    fields, model_args, config = ABLATIONS[name]
    spec = replace(spec, **fields, model_args={**spec.model_args, **model_args},
                   name=f"fast recipe, {name}")
    return with_config(spec, **config)


def train(spec, runtime):
    """{'test_acc', 'train_seconds', 'history'} of one run of spec."""
    model, train_iter, test_iter = spec.build(device=runtime.device)
    history = fit(model, train_iter, test_iter, spec.config, runtime)
    seconds = sum(len(train_iter.y) / rate for rate in history.examples_per_sec)
    return {"test_acc": history.test_acc[-1], "train_seconds": seconds,
            "history": history.as_dict()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the unchanged recipe")
    parser.add_argument("--train-size", type=int, default=None, help="default: all 60,000")
    parser.add_argument("--test-size", type=int, default=None, help="default: all 10,000")
    parser.add_argument("--only", type=int, default=len(ABLATIONS),
                        help="the first N ablations")
    parser.add_argument("--save", default=None, help="write results/<SAVE>.json and .txt")
    args = parser.parse_args(argv)
    runtime = Runtime(device="cpu", progress=True, live_plot=False)
    base = replace(fast_recipe("cuda", num_epochs=args.epochs), train_size=args.train_size,
                   test_size=args.test_size, profile=None)
    info = machine_info("cpu")
    lines = describe(info) + base.describe().splitlines()
    print("\n".join(lines), flush=True)
    runs = {}
    for seed in range(args.seeds):
        runs[f"fast recipe, seed {seed}"] = train(replace(base, seed=seed), runtime)
        print(f"seed {seed}: {runs[f'fast recipe, seed {seed}']['test_acc']:.4f}", flush=True)
    for name in list(ABLATIONS)[:args.only]:
        runs[name] = train(ablated(base, name), runtime)
        print(f"{name}: {runs[name]['test_acc']:.4f}", flush=True)
    accs = [runs[f"fast recipe, seed {s}"]["test_acc"] for s in range(args.seeds)]
    mean = statistics.mean(accs)
    spread = max(accs) - min(accs)
    lines += ["", f"{args.epochs} epochs each; test accuracy after the last epoch",
              f"{'run':44} {'test acc':>8} {'vs recipe':>9} {'train s':>8}"]
    for name, run in runs.items():
        lines.append(f"{name:44} {run['test_acc']:8.4f} {run['test_acc'] - mean:+9.4f} "
                     f"{run['train_seconds']:8.1f}")
    lines += [f"the recipe over {args.seeds} seed(s): mean {mean:.4f}, spread (max - min) "
              f"{spread:.4f}; 'vs recipe' is against the mean",
              f"load average before: {info['load_average_at_start']}, after: {load_average()}"]
    print("\n".join(lines[-(len(runs) + 5):]))
    if args.save:
        result = {"machine": info, "settings": vars(args), "recipe": base.describe(),
                  "ablations": {k: [v[0], v[1], v[2]] for k, v in ABLATIONS.items()},
                  "runs": runs, "recipe_mean": mean, "recipe_spread": spread,
                  "load_average_at_end": load_average()}
        for path in save(args.save, result, lines):
            print(f"wrote {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
