"""The GPU reference runs and the throughput benchmark, on one CUDA GPU, within about 9 minutes.

    python benchmarks/gpu_runs.py            # on a CUDA GPU (make gpu-runs)
    python benchmarks/gpu_runs.py --smoke    # the same steps on the CPU, tiny, in seconds (CI)

1. `gpu-d2l-nin-fashion`: the chapter's recipe (d2l's NiN, 224x224, batch 128, SGD lr 0.05,
   10 epochs, all 60,000 images) with the course's initialisation (runs.COURSE_INIT).
2. The paper's CIFAR NIN with its recipe (SGD, momentum 0.9, lr 0.1 divided by 10 twice):
   `gpu-cifar10-nin` (no augmentation), `gpu-cifar10-nin-aug` (crops and flips) and
   `gpu-cifar100-nin` (the CIFAR-100 copy here is a subset: 100 training images per class).
   The paper's 150 epochs do not fit: each run gets its share of the time (SHARES), its epochs
   sized from the speed measured on this GPU (a short timed training of the same model), the
   learning-rate drops kept at the same fractions of the run (2/3 and 13/15).
3. `d2l_vs_nin_course.py --device cuda`: the book's code against nin_course's, side by side.
Every run trains with bf16 autocast, channels-last and torch.compile, and is stored as a
reference run (runs/<name>/, see nin_course/runs/store.py) with the GPU's name. With `--smoke` the
runs are cut to a few hundred images on the CPU and stored under `--out` (a temporary folder
by default), never in runs/.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see time_to_accuracy.py

import argparse  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from nin_course import Runtime  # noqa: E402
from nin_course.runs import store  # noqa: E402
from nin_course.runs.catalogue import REFERENCE_RUNS, gpu_cifar, gpu_d2l_nin_fashion  # noqa: E402
from nin_course.runs.profiles import Profile  # noqa: E402
from nin_course.runs.spec import sized  # noqa: E402
from nin_course.train.loop import estimate_seconds  # noqa: E402

BUDGET_SECONDS = 9 * 60
# Seconds of training for each CIFAR run; the rest of the budget goes to the chapter's run
# (about 1 minute on an H100-class GPU), compilation, evaluation and the benchmark.
SHARES = {"gpu-cifar10-nin": 120, "gpu-cifar10-nin-aug": 120, "gpu-cifar100-nin": 60}
SMOKE = Profile("gpu-runs smoke", 128, 64, 1, 96, "the GPU runs cut to seconds on a CPU")
CIFAR = {"gpu-cifar10-nin": (10, False), "gpu-cifar10-nin-aug": (10, True),
         "gpu-cifar100-nin": (100, False)}


def cifar_epochs(name, seconds, device, runtime, root):
    """Epochs of the CIFAR run `name` that fit in `seconds` here, from timed training steps."""
    num_classes, augment = CIFAR[name]
    spec = gpu_cifar(num_classes, augment, num_epochs=1)
    model, (train_iter, _) = spec.build_model().to(device), spec.loaders(root, device)
    one_epoch = estimate_seconds(model, train_iter, spec.config, Runtime(**runtime), device)
    return max(1, min(150, math.floor(seconds / one_epoch)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny, on the CPU, not in runs/")
    parser.add_argument("--out", default=None, help="folder for the runs (default: runs/)")
    parser.add_argument("--root", default=None, help="data root (default: NIN_COURSE_DATA)")
    args = parser.parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        parser.error("no CUDA GPU here: run it on a GPU machine, or with --smoke on the CPU")
    device = torch.device("cpu" if args.smoke else "cuda")
    out = Path(args.out or (tempfile.mkdtemp(prefix="gpu-runs-") if args.smoke
                            else store.runs_dir()))
    runtime = dict(device=str(device), compile=not args.smoke, progress=not args.smoke)
    start = time.perf_counter()
    specs = {"gpu-d2l-nin-fashion": gpu_d2l_nin_fashion()}
    for name, seconds in SHARES.items():
        if args.smoke:
            specs[name] = gpu_cifar(*CIFAR[name], num_epochs=1)
            continue
        epochs = cifar_epochs(name, seconds, device, runtime, args.root)
        specs[name] = gpu_cifar(*CIFAR[name], num_epochs=epochs)
        print(f"{name}: {epochs} epochs fit in its {seconds} s share", flush=True)
    for name, spec in specs.items():
        spec = sized(spec, SMOKE) if args.smoke else spec
        assert name in REFERENCE_RUNS
        path = store.train_reference(name, args.root, out / name, spec=replace(spec, profile=None),
                                    **runtime)
        print(f"stored {path.parent} after {time.perf_counter() - start:.0f} s", flush=True)
    if not args.smoke:
        bench = Path(__file__).resolve().parent / "d2l_vs_nin_course.py"
        subprocess.run([sys.executable, str(bench), "--device", "cuda", "--batches", "100",
                        "--warmup", "20", "--compile", "--save", "cuda_d2l_vs_nin_course"],
                       check=True)
    total = time.perf_counter() - start
    print(f"done in {total:.0f} s (budget {BUDGET_SECONDS} s); runs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
