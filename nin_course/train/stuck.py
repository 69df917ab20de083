"""When to stop a run that is not learning: a loss that is NaN, stuck at ln(C), or far above it.

A NiN whose last ReLUs have died makes every class map 0, so every logit is 0 and the loss is
exactly ln(num_classes), with no gradient to revive them; `check_stuck` stops such a run after
`stuck_patience` epochs, and one whose loss from epoch 2 on is above DIVERGED_FACTOR * ln(C)
(worse than chance: diverged), with a `TrainingStuckError` that says what to try.
`patience_for` gives a recipe the patience that covers a known plateau.
"""
import math

from .config import TrainConfig

STUCK_TOLERANCE = 0.02  # an epoch whose loss is within this of ln(num_classes) learnt nothing
# From epoch 2 on, a mean training loss above DIVERGED_FACTOR * ln(num_classes) has diverged.
# The reference runs (runs/*/record.json) stay below 0.93 ln(C) from epoch 2 (1.21 in epoch 1,
# an fc + dropout head on CIFAR-10); AdamW at lr=1e3 gives 1e15, 1628, 243.
DIVERGED_FACTOR = 2.0


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
