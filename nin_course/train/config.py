"""How `fit` trains: `TrainConfig` (what changes the result) and `Runtime` (how it is run).

A `TrainConfig` holds the hyperparameters: two runs with the same config, data and seed learn
the same thing. A `Runtime` holds the switches that change only where and how fast a run goes,
and what it shows or writes on the way: device, precision, memory layout, compilation, progress
bar, live plot, checkpoint file. Keeping them apart lets a run's key (runs/spec.py) be computed from
what changes its result and nothing else.
"""
import math
import os
from dataclasses import asdict, dataclass, fields, replace

OPTIMIZERS = ("sgd", "adamw")
LR_SCHEDULES = (None, "cosine", "onecycle")
PRECISIONS = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 0.05        # d2l's value for NiN; 0.1 sometimes leaves it stuck at loss ln(10)
    num_epochs: int = 10
    optimizer: str = "sgd"  # or "adamw"
    momentum: float = 0.0   # SGD only; d2l uses none, the paper 0.9
    weight_decay: float = 0.0
    # None, "cosine", "onecycle", or drops [(epoch, factor), ...]: from that epoch (counting from
    # 1) the lr is multiplied by factor; the paper lowers it by 10x when accuracy stops improving
    lr_schedule: str | tuple | list | None = None
    label_smoothing: float = 0.0
    max_grad_norm: float | None = None  # clip the gradients' norm to this; None: no clipping
    seed: int | None = None  # seeds everything, and the loader's shuffles, at the start of fit
    stuck_patience: int = 2  # epochs at loss ln(num_classes) before giving up

    def __post_init__(self):
        _validate(self, _CONFIG_CHECKS)


@dataclass(frozen=True)
class Runtime:
    device: str | None = None    # None: CUDA, else MPS, else CPU
    # bf16 autocast: "auto" uses it on CUDA and on CPUs with native bf16 (torch's
    # mkldnn_bf16 check: AVX512-BF16 or AMX), about 2x faster there; "fp32" turns it off.
    precision: str = "auto"
    channels_last: bool = True   # faster convolutions (tensor cores; oneDNN); CUDA and CPU
    # torch.compile: faster epochs after a slow first one. A short last batch is padded to the
    # full batch size (the padding is left out of the loss and the counts), so that it compiles
    # once for training and once for evaluation and never again for a batch of another size.
    compile: bool = False
    deterministic: bool = False  # deterministic kernels (slower); needed on GPUs to repeat runs
    checkpoint_path: str | None = None  # written at the end of every epoch
    resume: bool = False         # continue from checkpoint_path if it exists
    progress: bool = True        # a progress bar per epoch
    live_plot: bool = True       # curves redrawn every epoch; only inside a notebook

    def __post_init__(self):
        _validate(self, _RUNTIME_CHECKS)
        if self.resume and self.checkpoint_path is None:
            raise ValueError("resume=True needs a checkpoint_path to resume from")


def split_settings(config=None, runtime=None, **overrides):
    """(TrainConfig, Runtime) from `config` and `runtime` (defaults if None), each field named in
    `overrides` replaced in whichever of the two has it: fit(model, data, lr=0.1, device='cpu')."""
    config = TrainConfig() if config is None else config
    runtime = Runtime() if runtime is None else runtime
    for value, cls in ((config, TrainConfig), (runtime, Runtime)):
        if not isinstance(value, cls):
            raise TypeError(f"expected a {cls.__name__}, got {type(value).__name__}")
    config_names, runtime_names = _names(TrainConfig), _names(Runtime)
    unknown = set(overrides) - config_names - runtime_names
    if unknown:
        raise TypeError(f"unknown settings {sorted(unknown)}: TrainConfig has "
                        f"{sorted(config_names)}, Runtime has {sorted(runtime_names)}")
    config = replace(config, **{k: v for k, v in overrides.items() if k in config_names})
    runtime = replace(runtime, **{k: v for k, v in overrides.items() if k in runtime_names})
    return config, runtime


def plain(settings):
    """A TrainConfig or Runtime as a dict of JSON-friendly values (drops become lists)."""
    d = asdict(settings)
    for name, value in d.items():
        if isinstance(value, (tuple, list)):
            d[name] = [list(v) if isinstance(v, tuple) else v for v in value]
        elif isinstance(value, os.PathLike):
            d[name] = os.fspath(value)
    return d


def from_plain(cls, d):
    """The TrainConfig (or Runtime) that `plain` wrote; drops come back as tuples."""
    unknown = set(d) - _names(cls)
    if unknown:
        raise ValueError(f"{cls.__name__} has no fields {sorted(unknown)}")
    d = dict(d)
    if isinstance(d.get("lr_schedule"), list):
        d["lr_schedule"] = tuple(tuple(drop) for drop in d["lr_schedule"])
    return cls(**d)


def _names(cls):
    return {f.name for f in fields(cls)}


def _validate(settings, checks):
    for name, (ok, expected) in checks.items():
        if not ok(getattr(settings, name)):
            raise ValueError(f"{type(settings).__name__}.{name} must be {expected}; got "
                             f"{getattr(settings, name)!r}")


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and not math.isnan(x)


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _is_drops(schedule):
    return isinstance(schedule, (list, tuple)) and all(
        isinstance(d, (list, tuple)) and len(d) == 2 and _is_int(d[0]) and d[0] >= 1
        and _is_number(d[1]) and d[1] > 0 for d in schedule)


_CONFIG_CHECKS = {  # field: (test, what it must be)
    "lr": (lambda v: _is_number(v) and 0 < v < math.inf, "a positive number, e.g. 0.05"),
    "num_epochs": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "optimizer": (lambda v: v in OPTIMIZERS, f"one of {OPTIMIZERS}"),
    "momentum": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1), e.g. 0.9"),
    "weight_decay": (lambda v: _is_number(v) and v >= 0, "a number >= 0, e.g. 5e-4"),
    "lr_schedule": (lambda v: v in LR_SCHEDULES or _is_drops(v),
                    "None, 'cosine', 'onecycle' or a list of (epoch, factor) drops such as "
                    "[(6, 0.1), (9, 0.1)], with epochs >= 1 and factors > 0"),
    "label_smoothing": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1), e.g. 0.1"),
    "stuck_patience": (lambda v: _is_int(v) and v >= 1, "a positive integer (epochs)"),
    "max_grad_norm": (lambda v: v is None or (_is_number(v) and v > 0),
                      "None or a positive number, e.g. 1.0"),
    "seed": (lambda v: v is None or (_is_int(v) and 0 <= v < 2**32),
             "None or an integer in [0, 2**32)"),
}

_RUNTIME_CHECKS = {
    "precision": (lambda v: v in PRECISIONS, f"one of {PRECISIONS}"),
    "channels_last": (lambda v: isinstance(v, bool), "True or False"),
    "compile": (lambda v: isinstance(v, bool), "True or False"),
    "resume": (lambda v: isinstance(v, bool), "True or False"),
}
