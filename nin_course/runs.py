"""Reference runs: the trained networks the course shows, trained once and stored in `runs/`.

    python -m nin_course.runs list                  # every reference run and its state
    python -m nin_course.runs train d2l-nin-fashion # train (or continue) one, then store it

A reference run is a RunSpec (spec.py) with a name in `REFERENCE_RUNS`. Training checkpoints
every epoch under the cache folder, so an interrupted run continues from its last finished
epoch. When it ends, `runs/<name>/` receives:
- `model.safetensors`: the final weights (float16 where that keeps the test accuracy within
  WEIGHTS_TOLERANCE of the trained weights', else float32);
- `record.json`: the description and its key, the per-epoch history, the final metrics, the
  input normalisation, the accuracy of the stored weights on a fixed check slice of the test
  set, the machine, the package versions, the command, the wall time and the date.
`load_run(name)` gives the model with its weights, its input transform and its record; it
refuses a run whose files are missing or whose description no longer matches the code.
"""
import datetime
import inspect
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from . import recipes
from .history import History
from .config import Runtime, TrainConfig, split_settings
from .data import cache_dir
from .loaders import ArrayLoader
from .machine import machine_info, versions
from .models import COURSE_INIT, HEADS
from .paper import cifar_recipe
from .spec import RunSpec, with_config
from .training import evaluate, fit, pick_device, uses_bf16

RUNS_ENV = "NIN_COURSE_RUNS"
CHECK_SIZE = 500          # test images re-evaluated by tests/test_runs.py: the first 500
WEIGHTS_TOLERANCE = 0.001  # float16 weights may move the test accuracy by 0.1 points at most
TRAIN_EVAL_SIZE = 10_000  # records of runs on at most this many training images give train_acc


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


class RunNotFoundError(FileNotFoundError):
    """A reference run's files are not in the runs folder."""


class StaleRunError(ValueError):
    """A stored run was trained from a description that the code no longer gives."""


def runs_dir():
    """The folder of the stored runs: $NIN_COURSE_RUNS, else `runs/` beside the package."""
    return Path(os.environ.get(RUNS_ENV) or Path(__file__).resolve().parent.parent / "runs")


def command(name):
    return f"python -m nin_course.runs train {name}"


def reference_spec(name, **sizing):
    """The RunSpec of the reference run `name`, as the code gives it now (`sizing`: the
    num_epochs of a GPU run sized by its measured speed)."""
    if name not in REFERENCE_RUNS:
        raise ValueError(f"no reference run called {name!r}; the runs are "
                         f"{', '.join(REFERENCE_RUNS)} (python -m nin_course.runs list)")
    return REFERENCE_RUNS[name](**sizing)


def checkpoint_file(name, spec):
    """Where training checkpoints `name` (a key per description: a changed recipe restarts)."""
    return cache_dir() / "runs" / f"{name}-{spec.key()}.ckpt"


def train_reference(name, root=None, folder=None, spec=None, **runtime):
    """Train the reference run `name` (continuing from its checkpoint), then store it in
    `folder` (default runs_dir() / name). `runtime`: Runtime fields (device, precision, ...).
    `spec`: train this description instead of the registered one (for GPU-sized runs).
    Returns the path of its record.json."""
    spec = reference_spec(name) if spec is None else spec
    _, runtime = split_settings(TrainConfig(), Runtime(
        checkpoint_path=checkpoint_file(name, spec), resume=True, live_plot=False), **runtime)
    device = pick_device(runtime.device)
    arrays = spec.data(root)[0]
    model, (train_iter, test_iter) = spec.build_model(), spec.loaders(device=device,
                                                                       arrays=arrays)
    machine = machine_info(device)  # its date and load average: at the start of training
    start = time.perf_counter()
    history = fit(model, train_iter, test_iter, spec.config, runtime)
    wall = time.perf_counter() - start
    folder = runs_dir() / name if folder is None else Path(folder)
    return save_run(folder, name, spec, model, history, test_iter, device=device,
                    bf16=uses_bf16(runtime, device), wall_seconds=wall, machine=machine,
                    train_iter=train_iter)


def save_run(folder, name, spec, model, history, test_iter, device, bf16, wall_seconds,
             machine=None, train_iter=None):
    """Write model.safetensors and record.json for a trained run into `folder` (replaced as a
    whole, only once both files are written). Returns the record's path. With `train_iter`
    of at most TRAIN_EVAL_SIZE images, the record also gives the stored weights' accuracy on
    those training images (metrics.train_acc: eval mode, no augmentation, fp32 on the CPU)."""
    from safetensors.torch import save_file
    model = model.to("cpu", memory_format=torch.contiguous_format).eval()
    state, dtype, stored, stored_acc = _smallest_weights(spec, model, test_iter, bf16)
    check = {"images": min(CHECK_SIZE, len(test_iter.y)), "precision": "fp32",
             "accuracy": check_accuracy(stored, test_iter)}
    fits = train_iter is not None and len(train_iter.y) <= TRAIN_EVAL_SIZE
    train_acc = evaluate(stored, plain_loader(train_iter), "cpu")[1] if fits else None
    record = {
        "name": name, "key": spec.key(), "spec": spec.as_dict(), "history": history.as_dict(),
        "metrics": {"test_acc": history.test_acc[-1], "test_loss": history.test_loss[-1],
                    "test_acc_stored_weights": stored_acc, "train_acc": train_acc,
                    "epochs": len(history),
                    "train_seconds": math.fsum(history.seconds),
                    "parameters": sum(p.numel() for p in model.parameters())},
        "input": {"mean": _listed(test_iter.mean), "std": _listed(test_iter.std),
                  "size": None if test_iter.size is None else list(test_iter.size)},
        "check": check, "weights": {"file": "model.safetensors", "dtype": dtype},
        "precision": "bf16" if bf16 else "fp32",
        "machine": machine_info(device) if machine is None else machine,
        "versions": versions(), "sizing": _sizing(name, spec), "command": command(name),
        "wall_seconds": wall_seconds,  # of the last call: a resumed run's earlier epochs are
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),  # in the history

    }
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        save_file(state, tmp / "model.safetensors", metadata={"name": name, "key": spec.key()})
        (tmp / "record.json").write_text(json.dumps(record, indent=1) + "\n")
        for path, mode in ((tmp, 0o755), (tmp / "model.safetensors", 0o644),
                           (tmp / "record.json", 0o644)):
            os.chmod(path, mode)  # mkdtemp's folder and safetensors' file are private
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder / "record.json"


def _sizing(name, spec):
    """{"num_epochs": N} for a GPU run whose epochs were sized by measured speed, else {}."""
    takes_epochs = name in REFERENCE_RUNS and "num_epochs" in inspect.signature(
        REFERENCE_RUNS[name]).parameters
    return {"num_epochs": spec.config.num_epochs} if takes_epochs else {}


def _smallest_weights(spec, model, test_iter, bf16):
    """(state dict, dtype name, model with those weights, its test accuracy): float16 weights
    if they keep the accuracy within WEIGHTS_TOLERANCE of the trained float32 model's
    (evaluated alike), else float32. `model`: the trained model, in eval mode on the CPU."""
    full = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    half = {k: v.half() if v.is_floating_point() else v for k, v in full.items()}
    _, full_acc = evaluate(model, test_iter, bf16=bf16)
    rounded = _loaded(spec, half)
    _, half_acc = evaluate(rounded, test_iter, bf16=bf16)
    if abs(half_acc - full_acc) <= WEIGHTS_TOLERANCE:
        return half, "float16", rounded, half_acc
    return full, "float32", model, full_acc


def _loaded(spec, state):
    """A fresh model of `spec` with `state` (any float dtype) loaded, in eval mode."""
    model = spec.build_model()
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in state.items()})
    return model.eval()


def plain_loader(loader, size=None):
    """The first `size` (None: all) images of an ArrayLoader, prepared as it prepares them
    (resized, normalised) but in order, without augmentation, on the CPU, in batches of 250."""
    n = len(loader.y) if size is None else min(size, len(loader.y))
    return ArrayLoader(loader.X[:n].cpu().permute(0, 2, 3, 1), loader.y[:n].cpu(), 250,
                       resize=loader.size, mean=_listed(loader.mean), std=_listed(loader.std))


def check_accuracy(model, test_iter):
    """Accuracy on the first CHECK_SIZE images of test_iter, in fp32 on the CPU."""
    return evaluate(model.to("cpu").eval(), plain_loader(test_iter, CHECK_SIZE), "cpu")[1]


def machine_name(machine):
    """A record's machine in a few words: its GPU, else its CPU and cores."""
    return machine.get("gpu") or f"{machine['cpu']}, {machine['cpu_count']} cores"


def _listed(vector):
    return None if vector is None else [float(v) for v in vector.reshape(-1)]


@dataclass
class ReferenceRun:
    """A stored run: the model (eval mode, CPU), its description, history and record."""
    name: str
    spec: RunSpec
    model: torch.nn.Module
    history: History
    record: dict

    def transform(self, images):
        """uint8 images (N, H, W, C) or (N, H, W) -> the model's inputs (N, C, H', W'):
        scaled, resized and normalised as in training."""
        inputs = self.record["input"]
        loader = ArrayLoader(images, torch.zeros(len(images), dtype=torch.int64), 1,
                             resize=inputs["size"], mean=inputs["mean"], std=inputs["std"])
        return loader.transform(loader.X)

    def test_loader(self, root=None, size=None):
        """The run's test images (the first `size`), prepared as in training, on the CPU."""
        arrays = self.spec.data(root)[0]
        inputs = self.record["input"]
        n = len(arrays.y_test) if size is None else size
        return ArrayLoader(arrays.x_test[:n], arrays.y_test[:n], 250, resize=inputs["size"],
                           mean=inputs["mean"], std=inputs["std"])

    def summary(self):
        m = self.record["metrics"]
        return (f"{self.name}: test accuracy {m['test_acc']:.4f} after {m['epochs']} epochs, "
                f"{m['train_seconds'] / 60:.1f} min of training on {self.record['machine']['cpu']}"
                f" ({self.record['machine']['device']})")

    def summary_row(self):
        """The run's headline numbers from its record, as one row of a table (a dict).

        "examples/s" is training examples per second of training (evaluation excluded): the
        harmonic mean of the epochs' rates, which is total examples over total time.
        """
        m, machine = self.record["metrics"], self.record["machine"]
        rates = self.record["history"]["examples_per_sec"]
        return {"test accuracy": m["test_acc"], "epochs": m["epochs"],
                "training minutes": m["train_seconds"] / 60,
                "examples/s": statistics.harmonic_mean(rates), "parameters": m["parameters"],
                "precision": self.record["precision"], "machine": machine_name(machine)}


def load_run(name, folder=None, check_spec=True):
    """The stored reference run `name` from `folder` (default runs_dir() / name).

    Raises RunNotFoundError if its files are missing and StaleRunError if its description is
    not what the code gives now (check_spec=False skips that), each naming the command that
    (re)builds it.
    """
    from safetensors.torch import load_file
    folder = runs_dir() / name if folder is None else Path(folder)
    record_path, weights_path = folder / "record.json", folder / "model.safetensors"
    missing = [p.name for p in (record_path, weights_path) if not p.exists()]
    if missing:
        raise RunNotFoundError(f"the reference run {name!r} is not stored: {', '.join(missing)} "
                               f"missing in {folder}. Train it with `{command(name)}` "
                               f"(or `make runs RUNS={name}`).")
    record = json.loads(record_path.read_text())
    spec = RunSpec.from_dict(record["spec"])
    if check_spec:
        _check_current(name, spec, record)
    model = _loaded(spec, load_file(weights_path))
    return ReferenceRun(name, spec, model, History.from_dict(record["history"]), record)


def _check_current(name, spec, record):
    current = reference_spec(name, **record.get("sizing", {}))
    if current.key() == record["key"] == spec.key():
        return
    ours, theirs = current.as_dict(), spec.as_dict()
    changed = sorted(k for k in ours if ours[k] != theirs.get(k))
    raise StaleRunError(f"the stored run {name!r} was trained from a description that the code "
                        f"no longer gives (changed: {', '.join(changed) or 'the key'}). "
                        f"Retrain it with `{command(name)}`.")


def status(name):
    """One line: stored (with its accuracy), stale, in progress (epochs done) or missing."""
    spec = reference_spec(name)
    try:
        run = load_run(name)
        return f"stored   test accuracy {run.record['metrics']['test_acc']:.4f}"
    except StaleRunError:
        state = "stale    (description changed: retrain)"
    except RunNotFoundError:
        state = "missing"
    ckpt = checkpoint_file(name, spec)
    if ckpt.exists():
        from .checkpoints import read_checkpoint
        epoch = read_checkpoint(ckpt)["epoch"]
        state += f"; checkpoint at epoch {epoch}/{spec.config.num_epochs}"
    return state


def report():
    """runs/README.md: a table of the stored runs, made from their records (`python -m
    nin_course.runs report`); tests/test_runs.py checks that the committed file is current."""
    lines = ["# Reference runs", "",
             "Made by `python -m nin_course.runs report > runs/README.md` from the records in "
             "this folder; train or continue one with `python -m nin_course.runs train NAME`.", "",
             "| run | description | test accuracy | epochs | training | machine | precision "
             "| weights |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for record_path in sorted(runs_dir().glob("*/record.json")):
        r = json.loads(record_path.read_text())
        m, where = r["metrics"], machine_name(r["machine"])
        lines.append(f"| `{r['name']}` | {r['spec']['name']} | {m['test_acc']:.4f} | "
                     f"{m['epochs']} | {m['train_seconds'] / 60:.1f} min | {where} | "
                     f"{r['precision']} | {r['weights']['dtype']} |")
    lines += ["", "Test accuracy: on the whole test set, measured by training's last evaluation. "
              "Training: the sum of the epochs' seconds (evaluation included), from the "
              "record's history."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(prog="python -m nin_course.runs",
                                     description="List, train and store the reference runs.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every reference run and its state")
    sub.add_parser("report", help="a markdown table of the stored runs (runs/README.md)")
    train = sub.add_parser("train", help="train runs (continuing from checkpoints), store them")
    train.add_argument("names", nargs="+", metavar="NAME", help=", ".join(REFERENCE_RUNS))
    train.add_argument("--device", default=None)
    train.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    args = parser.parse_args(argv)
    if args.command == "report":
        print(report(), end="")
        return 0
    if args.command == "list":
        for name in REFERENCE_RUNS:
            print(f"{name:20} {status(name)}")
        return 0
    unknown = [n for n in args.names if n not in REFERENCE_RUNS]
    if unknown:
        parser.error(f"unknown run(s) {unknown}; choose from {', '.join(REFERENCE_RUNS)}")
    for name in args.names:
        path = train_reference(name, device=args.device, precision=args.precision)
        print(f"stored {path.parent}: {load_run(name).summary()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
