"""Reference runs: the trained networks the course shows, trained once and stored in `runs/`.

    python -m nin_course.runs list                  # every reference run and its state
    python -m nin_course.runs train d2l-nin-fashion # train (or continue) one, then store it

A reference run is a RunSpec (spec.py) named in `catalogue.REFERENCE_RUNS`. Training checkpoints
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
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.arrays import cache_dir
from ..data.loaders import ArrayLoader
from ..train.config import Runtime, TrainConfig, split_settings
from ..train.device import pick_device, uses_bf16
from ..train.history import History
from ..train.loop import evaluate, fit
from .catalogue import REFERENCE_RUNS
from .machine import machine_info, versions
from .spec import RunSpec

RUNS_ENV = "NIN_COURSE_RUNS"
CHECK_SIZE = 500          # test images re-evaluated by tests/runs/test_store.py: the first 500
CHECK_BATCH_SIZE = 25     # images per batch of the fp32 CPU checks: a CIFAR NIN's activations
# then stay in the CPU's caches; on a 2-core AMD EPYC its 500 check images took 5.4 s in batches
# of 25 against 11.9 s in batches of 250 (one thread; 3.0 s against 6.4 s on two), same accuracy
WEIGHTS_TOLERANCE = 0.001  # float16 weights may move the test accuracy by 0.1 points at most
TRAIN_EVAL_SIZE = 10_000  # records of runs on at most this many training images give train_acc


class RunNotFoundError(FileNotFoundError):
    """A reference run's files are not in the runs folder."""


class StaleRunError(ValueError):
    """A stored run was trained from a description that the code no longer gives."""


def runs_dir():
    """The folder of the stored runs: $NIN_COURSE_RUNS, else `runs/` beside the package."""
    return Path(os.environ.get(RUNS_ENV) or Path(__file__).resolve().parents[2] / "runs")


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
                  "size": None if test_iter.resize is None else list(test_iter.resize)},
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
    (resized, normalised) but in order, without augmentation, on the CPU, in batches of
    CHECK_BATCH_SIZE."""
    n = len(loader.y) if size is None else min(size, len(loader.y))
    return ArrayLoader(loader.X[:n].cpu().permute(0, 2, 3, 1), loader.y[:n].cpu(), CHECK_BATCH_SIZE,
                       resize=loader.resize, mean=_listed(loader.mean), std=_listed(loader.std))


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
        from ..train.checkpoints import read_checkpoint
        epoch = read_checkpoint(ckpt)["epoch"]
        state += f"; checkpoint at epoch {epoch}/{spec.config.num_epochs}"
    return state


def report():
    """runs/README.md: a table of the stored runs, made from their records (`python -m
    nin_course.runs report`); tests/runs/test_store.py checks that the committed file is current."""
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

