"""Training throughput of the book's code against nin_course's, on the chapter's recipe.

    python benchmarks/d2l_vs_nin_course.py                       # CPU: 2 warm-up + 10 timed batches
    python benchmarks/d2l_vs_nin_course.py --device cuda --batches 100 --warmup 20 --full

Both sides train d2l's NiN on Fashion-MNIST resized to 224x224, batch 128, SGD lr 0.05, on the
same machine in the same run:
- the book: `reference.NiN(lr=0.05)` (the chapter's class), `d2l.FashionMNIST` (a DataLoader with 4
  worker processes, each image resized by PIL then turned into a tensor), `d2l.Trainer`
  (`num_gpus=1`, as the chapter; float32). Its ProgressBoard's drawing is switched off
  (`display=False`) so that the timing is of training alone; its per-batch loss read-back stays;
- nin_course: `models.NiN` (same layers, same initialisation), the whole data set on the device
  as uint8 with resizing done per batch on the device (`ArrayLoader`), and `fit` (bf16 autocast
  on CUDA and on CPUs with native bf16, `--precision fp32` to turn it off; channels-last;
  optional torch.compile).
Each side trains `--warmup` batches, then the next `--batches` are timed (wall clock, the device
synchronised at both ends), data loading included. `--full` also runs the whole 10-epoch recipe
with nin_course (on all 60,000 images, evaluated on the 10,000 test images every epoch) and
reports its training time and test accuracy.
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

import torch  # noqa: E402
from torch.utils.data import Subset  # noqa: E402

from machine_info import describe, load_average, machine_info, save  # noqa: E402

from nin_course import Runtime, data_root, fit, get_profile  # noqa: E402
from nin_course.runs.recipes import d2l_recipe  # noqa: E402
from nin_course.train.device import uses_bf16  # noqa: E402

BATCH_SIZE = 128


class FirstBatches:
    """The first `num_batches` batches of a loader, as a re-iterable with a len()."""

    def __init__(self, loader, num_batches):
        self.loader, self.num_batches = loader, num_batches
        self.batch_size = loader.batch_size

    def __len__(self):
        return self.num_batches

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i == self.num_batches:
                return
            yield batch


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_book(device, resize, warmup, batches):
    """Examples per second of d2l.Trainer + d2l.FashionMNIST + the chapter's NiN."""
    from d2l import torch as d2l

    from nin_course import reference
    data = reference.FashionMNIST(batch_size=BATCH_SIZE, resize=(resize, resize), root=data_root())
    # one more batch than timed: the clock reads at the start of each batch's training step
    data.train = Subset(data.train, range((warmup + batches + 1) * BATCH_SIZE))
    data.val = Subset(data.val, range(BATCH_SIZE))
    model = reference.NiN(lr=0.05)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    model.board.display = False
    starts, step = [], model.training_step

    def timed_step(batch):
        sync(device)
        starts.append(time.perf_counter())
        return step(batch)
    model.training_step = timed_step
    trainer = d2l.Trainer(max_epochs=1, num_gpus=1)  # as the chapter: the GPU if there is one
    trainer.fit(model, data)
    seconds = starts[warmup + batches] - starts[warmup]
    return {"examples_per_sec": batches * BATCH_SIZE / seconds, "seconds": seconds,
            "seconds_per_batch": seconds / batches}


def time_nin_course(device, resize, warmup, batches, runtime):
    """Examples per second of nin_course's fit on the same recipe (time of the timed epoch)."""
    recipe = d2l_recipe(get_profile("cuda"), image_size=resize, num_epochs=1)
    model, train_iter, _ = recipe.build(device=device)
    fit(model, FirstBatches(train_iter, warmup), None, recipe.config, runtime)  # warm-up
    sync(device)
    start = time.perf_counter()
    fit(model, FirstBatches(train_iter, batches), None, recipe.config, runtime)
    sync(device)
    seconds = time.perf_counter() - start
    return {"examples_per_sec": batches * BATCH_SIZE / seconds, "seconds": seconds,
            "seconds_per_batch": seconds / batches}


def full_recipe(device, runtime):
    """The chapter's 10 epochs with nin_course on all the data: training time and accuracy."""
    recipe = d2l_recipe(get_profile("cuda"))
    model, train_iter, test_iter = recipe.build(device=device)
    history = fit(model, train_iter, test_iter, recipe.config, runtime)
    # History.seconds includes each epoch's evaluation; examples/s is training alone
    return {"epochs": history.epoch, "test_acc": history.test_acc,
            "seconds_per_epoch": history.seconds, "total_seconds": sum(history.seconds),
            "train_examples_per_sec": history.examples_per_sec}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--batches", type=int, default=10, help="timed batches per side")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches first")
    parser.add_argument("--resize", type=int, default=224, help="image side (the chapter: 224)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--compile", action="store_true", help="nin_course with torch.compile")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                        help="nin_course's precision (auto: bf16 where the device has it)")
    parser.add_argument("--full", action="store_true", help="also the 10-epoch recipe")
    parser.add_argument("--skip-book", action="store_true", help="time nin_course only")
    parser.add_argument("--save", default=None, help="write results/<SAVE>.json and .txt")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    runtime = Runtime(device=str(device), compile=args.compile, precision=args.precision,
                      progress=False, live_plot=False)
    info = machine_info(device)
    info["nin_course_bf16"] = uses_bf16(runtime, device)
    lines = describe(info) + [
        f"recipe: d2l's NiN, Fashion-MNIST at {args.resize}x{args.resize}, batch {BATCH_SIZE}, "
        f"SGD lr 0.05; {args.warmup} warm-up + {args.batches} timed batches per side"]
    print("\n".join(lines), flush=True)
    result = {"machine": info, "settings": vars(args)}
    if not args.skip_book:
        result["book"] = time_book(device, args.resize, args.warmup, args.batches)
        lines.append(report("book (d2l.Trainer + d2l.FashionMNIST)", result["book"]))
        print(lines[-1], flush=True)
    result["nin_course"] = time_nin_course(device, args.resize, args.warmup, args.batches,
                                           runtime)
    lines.append(report("nin_course (fit + ArrayLoader)", result["nin_course"]))
    print(lines[-1], flush=True)
    if "book" in result:
        ratio = result["nin_course"]["examples_per_sec"] / result["book"]["examples_per_sec"]
        result["ratio"] = ratio
        lines.append(f"ratio nin_course / book: {ratio:.2f}x")
        print(lines[-1], flush=True)
    if args.full:
        result["full"] = full_recipe(device, runtime)
        full = result["full"]
        lines.append(f"full recipe with nin_course, {len(full['epochs'])} epochs: "
                     f"{full['total_seconds']:.1f} s, test accuracy per epoch "
                     f"{[round(a, 4) for a in full['test_acc']]}")
        print(lines[-1], flush=True)
    result["load_average_at_end"] = load_average()
    lines.append(f"load average at end: {result['load_average_at_end']}")
    print(lines[-1])
    if args.save:
        for path in save(args.save, result, lines):
            print(f"wrote {os.path.relpath(path)}")
    return 0


def report(name, timing):
    return (f"{name}: {timing['examples_per_sec']:,.1f} examples/s "
            f"({timing['seconds_per_batch']:.2f} s per batch of {BATCH_SIZE})")


if __name__ == "__main__":
    sys.exit(main())
