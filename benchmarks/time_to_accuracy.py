"""Time to accuracy: nin_course's fast Fashion-MNIST recipe on all the data, epoch by epoch.

    python benchmarks/time_to_accuracy.py --threads 2 --epochs 3 --save cpu_time_to_accuracy
    python benchmarks/time_to_accuracy.py --device cuda --save cuda_time_to_accuracy

Trains `recipes.fast_recipe` (FashionNiN at 28x28, normalised inputs, random crop with padding 2
and flips, AdamW with a one-cycle schedule, label smoothing 0.1, batch 256) on all 60,000
training images and evaluates it on all 10,000 test images after every epoch. `--epochs` sets
the length of the one-cycle schedule (the recipe's own: 12). The target on a 2-core CPU: a test
accuracy of at least 0.91 within 10 minutes of training. Prints, per epoch, the seconds spent
training (evaluation excluded), the running total and the test accuracy, and the machine's load
average before and after: on a shared machine, other jobs slow the run down.
"""
import os

# On a machine shared with other jobs, OpenMP threads that spin while they wait for each other
# burn the very cores they wait for (2 threads ran 2-3x slower than 1 on a loaded 2-core CPU).
# Waiting passively avoids that; it must be set before torch starts OpenMP. Set OMP_WAIT_POLICY
# yourself to override it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402

import torch  # noqa: E402

from machine_info import describe, load_average, machine_info, save  # noqa: E402

from nin_course import Runtime, fit, get_profile  # noqa: E402
from nin_course.runs.recipes import fast_recipe  # noqa: E402
from nin_course.train.device import uses_bf16  # noqa: E402

TARGET_ACCURACY = 0.91
TARGET_SECONDS = 600


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (the recipe's: 12)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--compile", action="store_true", help="with torch.compile")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                        help="auto: bf16 where the device has it")
    parser.add_argument("--augment", action="store_true", help="random crops and flips")
    parser.add_argument("--save", default=None, help="write results/<SAVE>.json and .txt")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    # a progress bar on stderr while it runs; the report goes to stdout
    runtime = Runtime(device=str(device), compile=args.compile, precision=args.precision,
                      progress=True, live_plot=False)
    settings = {"num_epochs": args.epochs} if args.epochs else {}
    recipe = fast_recipe(get_profile("cuda"), augment=args.augment, **settings)  # all the data
    recipe = replace(recipe, seed=args.seed)
    model, train_iter, test_iter = recipe.build(device=device)
    info = machine_info(device)
    info["precision"] = "bf16" if uses_bf16(runtime, device) else "fp32"
    lines = describe(info) + recipe.describe().splitlines() + [
        f"target: test accuracy >= {TARGET_ACCURACY} within {TARGET_SECONDS} s of training"]
    print("\n".join(lines), flush=True)
    start = time.perf_counter()
    history = fit(model, train_iter, test_iter, recipe.config, runtime)
    wall = time.perf_counter() - start
    num_train = len(train_iter.y)
    train_seconds = [num_train / rate for rate in history.examples_per_sec]
    lines.append("epoch  train s  total train s  test acc  train loss")
    total = 0.0
    for epoch, seconds, acc, loss in zip(history.epoch, train_seconds, history.test_acc,
                                         history.train_loss):
        total += seconds
        lines.append(f"{epoch:5d}  {seconds:7.1f}  {total:13.1f}  {acc:8.4f}  {loss:10.4f}")
    reached = [t for t, acc in zip(_running(train_seconds), history.test_acc)
               if acc >= TARGET_ACCURACY]
    end_load = load_average()
    lines += [
        f"training time: {total:.1f} s (with evaluation: {wall:.1f} s)",
        f"final test accuracy: {history.test_acc[-1]:.4f}",
        (f"reached {TARGET_ACCURACY} after {reached[0]:.1f} s of training" if reached else
         f"did not reach {TARGET_ACCURACY}"),
        f"load average before: {info['load_average_at_start']}, after: {end_load}"]
    print("\n".join(lines[-(len(history) + 5):]))
    result = {"machine": info, "settings": vars(args), "recipe": recipe.describe(),
              "history": history.as_dict(), "train_seconds_per_epoch": train_seconds,
              "training_seconds": total, "wall_seconds": wall,
              "final_test_acc": history.test_acc[-1],
              "seconds_to_target": reached[0] if reached else None,
              "load_average_at_end": end_load}
    if args.save:
        for path in save(args.save, result, lines):
            print(f"wrote {os.path.relpath(path)}")
    return 0


def _running(values):
    total = 0.0
    for v in values:
        total += v
        yield total


if __name__ == "__main__":
    sys.exit(main())
