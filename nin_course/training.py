"""Training: `fit` a model, `evaluate` it, and catch the classic NiN failure early.

`fit(model, train_iter, test_iter, lr=0.05, num_epochs=10)` trains with a progress bar, records a
`History`, draws live curves in a notebook, checkpoints every epoch (see checkpoints.py) and stops
with a `TrainingStuckError` that explains itself when the loss is NaN, stuck at ln(num_classes)
(what a NiN whose last ReLUs have died does: every class map is 0, so every logit is 0) or, after
the first epoch, far above ln(num_classes): worse than chance, a run that has diverged.
"""
import contextlib
import math
import os
import time
from collections.abc import Iterator
import warnings
from copy import deepcopy

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from . import checkpoints
from .history import History
from .seeding import seed_everything
from .config import Runtime, TrainConfig, from_plain, plain, split_settings
from .modes import evaluating
from .plots import LivePlot

STUCK_TOLERANCE = 0.02  # an epoch whose loss is within this of ln(num_classes) learnt nothing
# From epoch 2 on, a mean training loss above DIVERGED_FACTOR * ln(num_classes) has diverged.
# The reference runs (runs/*/record.json) stay below 0.93 ln(C) from epoch 2 (1.21 in epoch 1,
# an fc + dropout head on CIFAR-10); AdamW at lr=1e3 gives 1e15, 1628, 243.
DIVERGED_FACTOR = 2.0
SYNC_EVERY = 20  # batches between reads of the loss on the host (each read waits for the GPU)


def pick_device(device=None):
    """`device` if given (a string or torch.device), else CUDA, else Apple's MPS, else the CPU."""
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{device!r} is not a device: use 'cpu', 'cuda', 'cuda:0', 'mps', or "
                         "None to pick the best one available") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} was asked for, but torch finds no CUDA GPU "
                         "here. Pass device=None to use the best device available.")
    return device


def patience_for(plateau_steps, num_examples, batch_size):
    """A `stuck_patience` (epochs, at least the default 2) that covers `plateau_steps` steps.

    Networks trained from scratch without batch norm can sit at loss ln(C) for hundreds of
    steps before they learn; a recipe passes the steps it allows and its epoch's size.
    """
    steps_per_epoch = math.ceil(num_examples / batch_size)
    return max(TrainConfig.stuck_patience, math.ceil(plateau_steps / steps_per_epoch))


class TrainingStuckError(RuntimeError):
    """The loss is NaN, stuck at ln(num_classes), or far above it (diverged). `history` holds
    the epochs run so far."""

    def __init__(self, message, history=None):
        super().__init__(message)
        self.history = history


def stuck_message(what, config, num_classes=None):
    """Why training stopped (`what`), the likely causes and what to try."""
    ln_c = f"ln({num_classes}) = {math.log(num_classes):.4f}" if num_classes else "ln(C)"
    return (
        f"Training stopped: {what}\n"
        f"A loss that is NaN, or stuck at {ln_c} (every class equally likely), usually means:\n"
        "- dead ReLUs in front of global average pooling: when the last mlpconv's ReLUs output 0 "
        "everywhere, every class map is 0, so every logit is 0, the loss is exactly ln(C) and no "
        "gradient flows back to revive them;\n"
        f"- the learning rate (lr={config.lr}): too high gives NaN or kills units in the first "
        "steps; d2l trains NiN with lr=0.05, and 0.1 sometimes gets stuck like this;\n"
        "- the initialisation: d2l's `init_cnn` only takes effect through `apply_init` (its lazy "
        "layers are not Conv2d yet when `apply` runs); our models are initialised when built, but "
        "a hand-made one may lack it: model.apply(init_cnn).\n"
        "What to try: a smaller lr (lr=0.05 or 0.01), a fresh model or another seed, "
        "max_grad_norm=1.0, lr_schedule='onecycle' (warm-up), and check the inputs are "
        "normalised and the labels are right.")


def diverged_message(loss, epoch, config, num_classes):
    """Why training stopped: the loss of `epoch` far above ln(num_classes); what to try."""
    ln_c = math.log(num_classes)
    return (
        f"Training stopped: the mean training loss of epoch {epoch} was {loss:.4g}, "
        f"{loss / ln_c:.3g} times ln({num_classes}) = {ln_c:.4f}, the loss of guessing every class "
        "with the same probability (a stop comes above "
        f"{DIVERGED_FACTOR:g} times, from epoch 2). Worse than chance: the optimisation has "
        "diverged, without a NaN.\n"
        f"The learning rate is likely too high (lr={config.lr} with {config.optimizer}): try one "
        f"10 to 100 times smaller (lr={config.lr / 10:g} or {config.lr / 100:g}; d2l trains NiN "
        "with SGD at lr=0.05, AdamW usually works near lr=0.001), or keep it and add "
        "max_grad_norm=1.0 or lr_schedule='onecycle' (warm-up). Check too that the inputs are "
        "normalised.")


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


def bf16_supported(device):
    """Whether bf16 autocast pays on `device`: CUDA, or a CPU with native bf16 (AVX512-BF16/AMX)."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def uses_bf16(runtime, device):
    """Whether a run with `runtime` on `device` computes in bf16 (see Runtime.precision)."""
    if runtime.precision == "fp32" or device.type not in ("cuda", "cpu"):
        return False
    return runtime.precision == "bf16" or bf16_supported(device)


def _autocast(device, bf16):
    """bf16 autocast on `device` (CUDA or CPU) if `bf16`; nothing otherwise."""
    if bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to_device(X, y, device, channels_last):
    """Move a batch to `device` (a no-op for tensors already there)."""
    fmt = torch.channels_last if channels_last and X.ndim == 4 else torch.preserve_format
    return X.to(device, non_blocking=True, memory_format=fmt), y.to(device, non_blocking=True)


def _uses_channels_last(runtime, device):
    """Channels-last pays on CUDA (tensor cores) and on the CPU (oneDNN's preferred layout)."""
    return runtime.channels_last and device.type in ("cuda", "cpu")


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
    with evaluating(model.to(device)), _autocast(device, bf16):
        for X, y in data_iter:
            X = X if pad_to is None else pad_batch(X, pad_to)
            X, y = _to_device(X, y, device, channels_last=False)
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
    with _autocast(device, bf16):
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
    use_cl, bf16 = _uses_channels_last(runtime, device), uses_bf16(runtime, device)
    loss_sum, correct, zero_batches = (torch.zeros((), device=device) for _ in range(3))
    n = num_batches = 0
    every = SYNC_EVERY if device.type in ("cuda", "mps") else 1  # reading is free on the CPU
    start = _now(device)
    with tqdm(train_iter, total=len(train_iter), desc=desc, disable=not runtime.progress) as bar:
        for X, y in bar:
            X = X if pad_to is None else pad_batch(X, pad_to)  # before the layout change
            X, y = _to_device(X, y, device, use_cl)
            logits, loss = train_step(model, X, y, optimizer, scheduler, config, device, bf16)
            loss_sum += loss * len(y)  # on the device: no wait; a NaN or inf stays in the sum
            correct += (logits.argmax(dim=1) == y).sum()
            zero_batches += (logits == 0).all()
            n, num_batches = n + len(y), num_batches + 1
            if num_batches % every == 0 or num_batches == len(train_iter):
                mean_loss = loss_sum.item() / n
                if not math.isfinite(mean_loss):
                    raise TrainingStuckError(stuck_message(
                        f"the loss became {loss.item()} at batch {num_batches} of {desc}.",
                        config, logits.shape[-1]))
                bar.set_postfix({"loss": f"{mean_loss:.3f}", "acc": f"{correct.item() / n:.3f}"},
                                refresh=False)
    seconds = _now(device) - start
    if n == 0:
        raise ValueError(f"train_iter gave no batches in {desc}, though len(train_iter) = "
                         f"{len(train_iter)}: it must give its batches again every epoch")
    return {"loss": loss_sum.item() / n, "acc": correct.item() / n,
            "examples_per_sec": n / seconds, "num_classes": logits.shape[-1],
            "dead": zero_batches.item() == num_batches}


def check_stuck(history, epoch_stats, num_classes, config):
    """Raise TrainingStuckError if the training loss sat at ln(num_classes) for too long, or
    from epoch 2 on is above DIVERGED_FACTOR times ln(num_classes)."""
    ln_c = math.log(num_classes)
    recent = history.train_loss[-config.stuck_patience:]
    if history.epoch[-1] >= 2 and recent[-1] > DIVERGED_FACTOR * ln_c:
        raise TrainingStuckError(diverged_message(recent[-1], history.epoch[-1], config,
                                                  num_classes), history)
    if epoch_stats["dead"]:
        what = (f"every logit was exactly 0 in every batch of epoch {history.epoch[-1]} "
                f"(loss {recent[-1]:.4f}, ln({num_classes}) = {ln_c:.4f}): the network is dead.")
    elif len(recent) == config.stuck_patience and all(
            abs(loss - ln_c) < STUCK_TOLERANCE for loss in recent):
        what = (f"the training loss was {recent[-1]:.4f}, within {STUCK_TOLERANCE} of "
                f"ln({num_classes}) = {ln_c:.4f}, for {config.stuck_patience} epochs in a row.")
    else:
        return
    raise TrainingStuckError(stuck_message(what, config, num_classes), history)


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
    _check_batches(train_iter, "train_iter")
    if test_iter is not None:
        _check_batches(test_iter, "test_iter")
    for name, data_iter in (("train_iter", train_iter), ("test_iter", test_iter)):
        _check_label_range(data_iter, getattr(model, "num_classes", None), name)
    checkpoints.check_checkpoint_path(runtime.checkpoint_path, runtime.resume)
    checkpoints.check_writable(runtime.checkpoint_path)
    generator = getattr(train_iter, "generator", None)  # a loader's own shuffling generator
    if config.seed is not None:
        seed_everything(config.seed, runtime.deterministic)
        if isinstance(generator, torch.Generator):
            generator.manual_seed(config.seed)
    device = pick_device(runtime.device)
    use_cl = _uses_channels_last(runtime, device)
    model.to(device, memory_format=torch.channels_last if use_cl else torch.preserve_format)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, len(train_iter))
    history = _resume(model, optimizer, scheduler, config, runtime, generator)
    warn_if_slow(model, train_iter, config, runtime, device, len(history))
    net, train_pad, test_pad = model, None, None
    if runtime.compile:
        net, train_pad = compile_model(model), batch_size_of(train_iter)
        test_pad = None if test_iter is None else batch_size_of(test_iter)
    live_plot = LivePlot(enabled=runtime.live_plot)
    for epoch in range(len(history) + 1, config.num_epochs + 1):
        stats = _run_epoch(net, train_iter, test_iter, optimizer, scheduler, config, runtime,
                           device, epoch, history, (train_pad, test_pad))
        live_plot.update(history)
        check_stuck(history, stats, getattr(model, "num_classes", stats["num_classes"]), config)
        if runtime.checkpoint_path is not None:
            checkpoints.save_checkpoint(runtime.checkpoint_path, model, optimizer, scheduler,
                                        epoch=epoch, history=history.as_dict(),
                                        config=plain(config), generator=generator)
    return history


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
    bf16, use_cl = uses_bf16(runtime, device), _uses_channels_last(runtime, device)
    batches = iter(train_iter)
    X, y = _to_device(*next(batches), device, use_cl)
    F.cross_entropy(probe(X).float(), y).backward()  # warm-up: first calls allocate
    start, n = _now(device), 0
    for X, y in [next(batches, (X, y)) for _ in range(PROBE_BATCHES)]:
        X, y = _to_device(X, y, device, use_cl)
        with _autocast(device, bf16):
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
