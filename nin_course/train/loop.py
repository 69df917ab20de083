"""Training: `fit` a model, `evaluate` it, and catch the classic NiN failure early.

`fit(model, train_iter, test_iter, lr=0.05, num_epochs=10)` trains with a progress bar, records a
`History`, draws live curves in a notebook, checkpoints every epoch (see checkpoints.py) and stops
with a `TrainingStuckError` that explains itself when the loss is NaN, stuck at ln(num_classes)
(what a NiN whose last ReLUs have died does: every class map is 0, so every logit is 0) or, after
the first epoch, far above ln(num_classes): worse than chance, a run that has diverged (see
stuck.py).
"""
import math
import os
import time
from collections.abc import Iterator
import warnings
from copy import deepcopy

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..modes import evaluating
from ..ui.plots import LivePlot
from . import checkpoints
from .config import Runtime, TrainConfig, from_plain, plain, split_settings
from .device import autocast, pick_device, to_device, uses_bf16, uses_channels_last
from .history import History
from .seeding import seed_everything
from .stuck import TrainingStuckError, check_stuck, stuck_message

SYNC_EVERY = 20  # batches between reads of the loss on the host (each read waits for the GPU)


def _check_batches(data_iter, name):
    """Raise a ValueError unless data_iter has a len() > 0 (as a DataLoader has)."""
    if not hasattr(data_iter, "__len__") or isinstance(data_iter, torch.Tensor):
        raise ValueError(f"{name} must be a re-iterable of (X, y) batches with a len(), such as "
                         f"a torch DataLoader; got {type(data_iter).__name__}")
    if isinstance(data_iter, Iterator):  # not iter(data_iter): a DataLoader's starts workers
        raise ValueError(f"{name} is a one-shot iterator, used up after one epoch; pass the "
                         "DataLoader (or list of batches) itself, not iter(...) of it")
    if len(data_iter) == 0:
        raise ValueError(f"{name} has no batches: check the dataset and batch_size")


def _check_label_range(data_iter, num_classes, name):
    """Raise a ValueError if a loader's labels (`.y`, as an ArrayLoader holds them) fall outside
    0..num_classes-1, before cross-entropy fails with an IndexError (on CUDA a device assert)."""
    y = getattr(data_iter, "y", None)
    if num_classes is None or not isinstance(y, torch.Tensor) or y.numel() == 0:
        return
    low, high = int(y.min()), int(y.max())  # one read, before training
    if low < 0 or high >= num_classes:
        raise ValueError(f"{name} holds labels from {low} to {high}, but the model has "
                         f"{num_classes} classes: labels must lie in 0..{num_classes - 1}. Build "
                         f"the model with num_classes={high + 1} if there are that many classes, "
                         "or map the labels to 0, 1, 2 ...")


def make_optimizer(model, config):
    """SGD (with config.momentum) or AdamW over the model's parameters."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def make_scheduler(optimizer, config, steps_per_epoch):
    """A LambdaLR stepped after every batch; None without a schedule.

    'cosine' decays the lr to 0 over all num_epochs; 'onecycle' warms it up linearly from lr/25
    over the first 30% of the steps, then decays it as 'cosine' (the lr part of Smith's
    one-cycle policy); drops multiply it by factor from the start of each listed epoch. Each is
    a function of the step and config, so a resumed run with more epochs follows the new one.
    """
    schedule, total = config.lr_schedule, config.num_epochs * steps_per_epoch
    if schedule is None:
        return None
    if schedule == "cosine":
        def factor(step):
            return 0.5 * (1 + math.cos(math.pi * min(step / total, 1)))
    elif schedule == "onecycle":
        warmup = max(1, int(0.3 * total))

        def factor(step):
            if step < warmup:
                return 1 / 25 + (1 - 1 / 25) * step / warmup
            return 0.5 * (1 + math.cos(math.pi * min((step - warmup) / max(total - warmup, 1), 1)))
    else:
        def factor(step):
            epoch = step // steps_per_epoch + 1
            return math.prod(f for e, f in schedule if epoch >= e)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def pad_batch(X, batch_size):
    """A short batch padded with zero images to `batch_size` rows, the real rows first.

    (n, C, H, W) -> (batch_size, C, H, W). A compiled model then sees one batch shape only, and
    the caller keeps the first n outputs.
    """
    missing = batch_size - len(X)
    if missing <= 0:
        return X
    return torch.cat([X, X.new_zeros((missing, *X.shape[1:]))])


def batch_size_of(data_iter):
    """The full batch size of a loader (its `batch_size`), else of its first batch."""
    size = getattr(data_iter, "batch_size", None)
    return size if isinstance(size, int) else len(next(iter(data_iter))[1])


def _now(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # kernels run asynchronously: wait before reading the clock
    return time.perf_counter()


def evaluate(model, data_iter, device=None, bf16=False, pad_to=None):
    """Mean cross-entropy and accuracy of `model` over (X, y) batches: (loss, acc) floats.

    Runs in eval mode without gradients, on `device` (None: where the model's parameters are),
    in bf16 autocast if `bf16`, and puts the model back in the mode it was in. `pad_to`: pad
    shorter batches to this many rows (see `pad_batch`), for a compiled model.
    """
    device = next(model.parameters()).device if device is None else pick_device(device)
    loss_sum, correct, n = torch.zeros((), device=device), torch.zeros((), device=device), 0
    with evaluating(model.to(device)), autocast(device, bf16):
        for X, y in data_iter:
            X = X if pad_to is None else pad_batch(X, pad_to)
            X, y = to_device(X, y, device, channels_last=False)
            logits = model(X)[:len(y)].float()  # (len(y), num_classes): the padding dropped
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(dim=1) == y).sum()
            n += len(y)
    if n == 0:
        raise ValueError("evaluate got no batches: data_iter is empty")
    return loss_sum.item() / n, correct.item() / n


def train_step(model, X, y, optimizer, scheduler, config, device, bf16=False):
    """One optimisation step on a batch already on `device`; returns (logits, loss), detached.

    X may have padding rows after its first len(y) (see `pad_batch`): they get no loss, hence
    no gradient, so the step is the unpadded one (for a model without batch statistics, such as
    every NiN here).
    """
    with autocast(device, bf16):
        logits = model(X)[:len(y)]  # (len(y), num_classes)
    loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()  # every schedule here is per batch
    return logits.detach(), loss.detach()


class _EpochStats:
    """Running sums of one epoch, kept on the device so that adding a batch never waits for it."""

    def __init__(self, device):
        self.loss_sum, self.correct, self.zero_batches = (torch.zeros((), device=device)
                                                          for _ in range(3))
        self.n = self.num_batches = 0
        self.num_classes = None

    def add(self, logits, loss, y):
        """One batch: logits (B, num_classes), its mean loss (a scalar tensor), labels (B,)."""
        self.loss_sum += loss * len(y)  # a NaN or inf stays in the sum
        self.correct += (logits.argmax(dim=1) == y).sum()
        self.zero_batches += (logits == 0).all()
        self.n, self.num_batches = self.n + len(y), self.num_batches + 1
        self.num_classes = logits.shape[-1]

    def mean_loss(self):
        return self.loss_sum.item() / self.n  # waits for the device

    def accuracy(self):
        return self.correct.item() / self.n  # waits for the device

    def result(self, seconds):
        """The dict `train_epoch` returns."""
        return {"loss": self.mean_loss(), "acc": self.accuracy(),
                "examples_per_sec": self.n / seconds, "num_classes": self.num_classes,
                "dead": self.zero_batches.item() == self.num_batches}


def train_epoch(model, train_iter, optimizer, scheduler, config, device, desc="train",
                pad_to=None, runtime=None):
    """One pass over train_iter. Returns a dict: loss, acc, examples_per_sec, num_classes, dead.

    `dead` is True when every batch's logits were exactly 0. Raises TrainingStuckError as soon as
    the loss is NaN or infinite (read after every batch; on a GPU every SYNC_EVERY batches, as
    each read waits for the GPU). `pad_to`: pad shorter batches to this many rows (see
    `pad_batch`), for a compiled model.
    """
    runtime = Runtime() if runtime is None else runtime
    model.train()
    use_cl, bf16 = uses_channels_last(runtime, device), uses_bf16(runtime, device)
    stats = _EpochStats(device)
    every = SYNC_EVERY if device.type in ("cuda", "mps") else 1  # reading is free on the CPU
    start = _now(device)
    with tqdm(train_iter, total=len(train_iter), desc=desc, disable=not runtime.progress) as bar:
        for X, y in bar:
            X = X if pad_to is None else pad_batch(X, pad_to)  # before the layout change
            X, y = to_device(X, y, device, use_cl)
            logits, loss = train_step(model, X, y, optimizer, scheduler, config, device, bf16)
            stats.add(logits, loss, y)
            if stats.num_batches % every == 0 or stats.num_batches == len(train_iter):
                mean_loss = _finite_mean_loss(stats, loss, desc, config)
                bar.set_postfix({"loss": f"{mean_loss:.3f}", "acc": f"{stats.accuracy():.3f}"},
                                refresh=False)
    if stats.n == 0:
        raise ValueError(f"train_iter gave no batches in {desc}, though len(train_iter) = "
                         f"{len(train_iter)}: it must give its batches again every epoch")
    return stats.result(_now(device) - start)


def _finite_mean_loss(stats, loss, desc, config):
    """The epoch's running mean loss; TrainingStuckError if it is NaN or infinite."""
    mean_loss = stats.mean_loss()
    if not math.isfinite(mean_loss):
        raise TrainingStuckError(stuck_message(
            f"the loss became {loss.item()} at batch {stats.num_batches} of {desc}.", config,
            stats.num_classes))
    return mean_loss


def fit(model, train_iter, test_iter=None, config=None, runtime=None, **overrides):
    """Train `model` in place on (X, y) batches; returns the History.

    train_iter and test_iter: re-iterable, with len() (a DataLoader). `config` is a TrainConfig
    (the hyperparameters), `runtime` a Runtime (device, precision, checkpoint, progress ...);
    keyword arguments override fields of either (fit(model, train_iter, lr=0.1, device='cpu')).
    Raises FileExistsError if checkpoint_path exists and resume is False, ValueError when
    resuming a checkpoint written with other hyperparameters (num_epochs aside), and
    TrainingStuckError (with .history, the last good checkpoint kept) when the loss is NaN,
    stuck at ln(num_classes) or, from epoch 2, above DIVERGED_FACTOR times it.
    """
    config, runtime = split_settings(config, runtime, **overrides)
    _check_fit_inputs(model, train_iter, test_iter, runtime)
    generator = _seed(config, runtime, train_iter)
    device = pick_device(runtime.device)
    use_cl = uses_channels_last(runtime, device)
    model.to(device, memory_format=torch.channels_last if use_cl else torch.preserve_format)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, len(train_iter))
    history = _resume(model, optimizer, scheduler, config, runtime, generator)
    warn_if_slow(model, train_iter, config, runtime, device, len(history))
    net, pads = _compiled(model, train_iter, test_iter, runtime)
    live_plot = LivePlot(enabled=runtime.live_plot)
    for epoch in range(len(history) + 1, config.num_epochs + 1):
        stats = _run_epoch(net, train_iter, test_iter, optimizer, scheduler, config, runtime,
                           device, epoch, history, pads)
        live_plot.update(history)
        check_stuck(history, stats, getattr(model, "num_classes", stats["num_classes"]), config)
        if runtime.checkpoint_path is not None:
            checkpoints.save_checkpoint(runtime.checkpoint_path, model, optimizer, scheduler,
                                        epoch=epoch, history=history.as_dict(),
                                        config=plain(config), generator=generator)
    return history


def _check_fit_inputs(model, train_iter, test_iter, runtime):
    """Refuse, before any training, loaders without batches, labels outside the model's classes
    and a checkpoint path that would overwrite a file or cannot be written."""
    _check_batches(train_iter, "train_iter")
    if test_iter is not None:
        _check_batches(test_iter, "test_iter")
    for name, data_iter in (("train_iter", train_iter), ("test_iter", test_iter)):
        _check_label_range(data_iter, getattr(model, "num_classes", None), name)
    checkpoints.check_checkpoint_path(runtime.checkpoint_path, runtime.resume)
    checkpoints.check_writable(runtime.checkpoint_path)


def _seed(config, runtime, train_iter):
    """Seed every generator for `config.seed` (the loader's own shuffling generator too);
    returns that generator (None for a loader without one), which checkpoints save."""
    generator = getattr(train_iter, "generator", None)
    if config.seed is not None:
        seed_everything(config.seed, runtime.deterministic)
        if isinstance(generator, torch.Generator):
            generator.manual_seed(config.seed)
    return generator


def _compiled(model, train_iter, test_iter, runtime):
    """(the network to run, (train pad, test pad)): `model` itself and no padding, or with
    runtime.compile the compiled model and the loaders' full batch sizes (one shape each)."""
    if not runtime.compile:
        return model, (None, None)
    test_pad = None if test_iter is None else batch_size_of(test_iter)
    return compile_model(model), (batch_size_of(train_iter), test_pad)


def _run_epoch(net, train_iter, test_iter, optimizer, scheduler, config, runtime, device, epoch,
               history, pads):
    """Train one epoch, evaluate, and append the epoch's row to `history`; returns its stats."""
    start = time.perf_counter()
    try:
        stats = train_epoch(net, train_iter, optimizer, scheduler, config, device,
                            desc=f"epoch {epoch}/{config.num_epochs}", pad_to=pads[0],
                            runtime=runtime)
    except TrainingStuckError as err:
        err.history = history
        raise
    test_loss, test_acc = (math.nan, math.nan) if test_iter is None else evaluate(
        net, test_iter, device, uses_bf16(runtime, device), pads[1])
    history.append(epoch=epoch, train_loss=stats["loss"], train_acc=stats["acc"],
                   test_loss=test_loss, test_acc=test_acc,
                   examples_per_sec=stats["examples_per_sec"],
                   seconds=time.perf_counter() - start)
    return stats


SLOW_RUN_SECONDS = 3_600  # warn before a run estimated to take longer than this on a CPU
PROBE_BATCHES = 2         # batches timed for the estimate


def estimate_seconds(model, train_iter, config, runtime, device):
    """Seconds that `config.num_epochs` epochs of training would take here, from timing
    PROBE_BATCHES training steps (forward and backward, no update) of a copy of the model.
    The random generators (the loader's too) are left as they were, so the run repeats."""
    with checkpoints.rng_preserved(getattr(train_iter, "generator", None)):
        return _time_probe(deepcopy(model).train(), train_iter, config, runtime, device)


def _time_probe(probe, train_iter, config, runtime, device):
    bf16, use_cl = uses_bf16(runtime, device), uses_channels_last(runtime, device)
    batches = iter(train_iter)
    X, y = to_device(*next(batches), device, use_cl)
    F.cross_entropy(probe(X).float(), y).backward()  # warm-up: first calls allocate
    start, n = _now(device), 0
    for X, y in [next(batches, (X, y)) for _ in range(PROBE_BATCHES)]:
        X, y = to_device(X, y, device, use_cl)
        with autocast(device, bf16):
            logits = probe(X)
        F.cross_entropy(logits.float(), y).backward()
        n += len(y)
    per_example = (_now(device) - start) / n
    num_examples = len(train_iter) * batch_size_of(train_iter)
    return per_example * num_examples * config.num_epochs


def warn_if_slow(model, train_iter, config, runtime, device, epochs_done=0):
    """Warn, with the estimated time, before a CPU run of more than SLOW_RUN_SECONDS (a full
    recipe meant for a GPU, say). Only runs of at least 2,000 steps are timed."""
    steps = len(train_iter) * (config.num_epochs - epochs_done)
    if device.type != "cpu" or steps < 2_000:
        return
    seconds = estimate_seconds(model, train_iter, config, runtime, device)
    seconds *= (config.num_epochs - epochs_done) / config.num_epochs
    if seconds > SLOW_RUN_SECONDS:
        warnings.warn(f"this run has {steps:,} training steps left; on this CPU that takes about "
                      f"{seconds / 3600:.1f} hours (timed on {PROBE_BATCHES} batches). It is "
                      "sized for a GPU: stop it (interrupt the kernel) and choose a smaller run "
                      "profile (NIN_COURSE_PROFILE=cpu), or let it run.", stacklevel=3)


def compile_model(model):
    """torch.compile(model), after settling what dynamo cannot trace.

    An ImageClassifier finds its smallest input size lazily, by running its layers on 'meta'
    tensors; done inside a compiled forward that fails, so it is done here, once, beforehand.
    """
    getattr(model, "min_input_size", None)
    return torch.compile(model)


def _resume(model, optimizer, scheduler, config, runtime, generator):
    """The History so far: restored from the checkpoint when resuming, else empty.

    A checkpoint written with other hyperparameters is refused (ValueError naming them), as its
    optimizer state and history belong to that other run; only num_epochs may change, which
    extends (or shortens) the run and its schedule.
    """
    if not (runtime.resume and os.path.exists(runtime.checkpoint_path)):
        return History()
    saved = checkpoints.read_checkpoint(runtime.checkpoint_path)
    check_same_config(saved.get("config"), config, runtime.checkpoint_path)
    saved = checkpoints.load_checkpoint(runtime.checkpoint_path, model, optimizer, scheduler,
                                        restore_rng=True, generator=generator, checkpoint=saved)
    return checkpoints.history_of(saved)


def check_same_config(saved, config, path):
    """Raise ValueError if the plain config `saved` differs from `config` (num_epochs aside)."""
    if saved is None:
        return
    try:
        saved = from_plain(TrainConfig, saved)
    except (TypeError, ValueError) as err:
        raise ValueError(f"the checkpoint {os.fspath(path)!r} was written with settings this "
                         f"version cannot read ({err}); start a new run.") from err
    ours, theirs = plain(config), plain(saved)
    changed = [k for k in ours if k != "num_epochs" and ours[k] != theirs[k]]
    if changed:
        diffs = ", ".join(f"{k}: {theirs[k]!r} there, {ours[k]!r} now" for k in changed)
        raise ValueError(f"cannot resume {os.fspath(path)!r} with other hyperparameters "
                         f"({diffs}): its optimizer state and history belong to the run that "
                         "wrote it. Resume with the same settings (only num_epochs may change), "
                         "or start a new run with another checkpoint_path.")
