"""nin_course/train/stuck.py: when a run stops for a loss stuck at ln(C) or far above it, and the
patience a recipe gets; on hand-written histories and every committed reference run's."""
import json
import math
from pathlib import Path

import pytest

from nin_course.train.config import TrainConfig, from_plain
from nin_course.train.history import History
from nin_course.train.stuck import (DIVERGED_FACTOR, TrainingStuckError, check_stuck,
                                    patience_for)

NUM_CLASSES = 3
LN_C = math.log(NUM_CLASSES)


def history_of(*losses):
    history = History()
    for epoch, loss in enumerate(losses, 1):
        history.append(epoch=epoch, train_loss=loss, train_acc=0.3, test_loss=math.nan,
                       test_acc=math.nan, examples_per_sec=1.0, seconds=1.0)
    return history


def test_a_high_first_epoch_alone_does_not_stop_training():
    history = History()
    for epoch, loss in ((1, 10 * LN_C), (2, 1.9 * LN_C)):
        history.append(epoch=epoch, train_loss=loss, train_acc=0.3, test_loss=math.nan,
                       test_acc=math.nan, examples_per_sec=1.0, seconds=1.0)
        check_stuck(history, {"dead": False}, NUM_CLASSES, TrainConfig())


REFERENCE_RECORDS = sorted(Path(__file__).parents[2].glob("runs/*/record.json"))


@pytest.mark.parametrize("record", REFERENCE_RECORDS, ids=lambda p: p.parent.name)
def test_no_reference_run_trips_the_training_checks(record):
    """Each committed reference run's history, replayed epoch by epoch through check_stuck
    with its own settings, passes; the largest loss is 1.21 ln(C), in an epoch 1."""
    r = json.loads(record.read_text())
    config = from_plain(TrainConfig, r["spec"]["config"])
    num_classes = r["spec"]["model_args"]["num_classes"]
    rows, history = r["history"], History()
    for i in range(len(rows["epoch"])):
        history.append(**{k: rows[k][i] for k in rows})
        check_stuck(history, {"dead": False}, num_classes, config)
    assert max(rows["train_loss"][1:]) < 0.95 * math.log(num_classes)


def test_epoch_two_far_above_chance_stops_with_the_numbers():
    with pytest.raises(TrainingStuckError, match=r"epoch 2 was 2\.307, 2\.1 times ln\(3\)"):
        check_stuck(history_of(LN_C, 2.1 * LN_C), {"dead": False}, NUM_CLASSES, TrainConfig())
    assert DIVERGED_FACTOR == 2.0  # the reference runs stay below 0.95 ln(C) from epoch 2


def test_dead_logits_stop_at_once_and_a_plateau_after_its_patience():
    with pytest.raises(TrainingStuckError, match="every logit was exactly 0"):
        check_stuck(history_of(LN_C), {"dead": True}, NUM_CLASSES, TrainConfig())
    check_stuck(history_of(LN_C + 0.01), {"dead": False}, NUM_CLASSES, TrainConfig())  # 1 epoch
    with pytest.raises(TrainingStuckError, match="2 epochs in a row"):
        check_stuck(history_of(LN_C + 0.01, LN_C - 0.01), {"dead": False}, NUM_CLASSES,
                    TrainConfig())
    check_stuck(history_of(LN_C, LN_C - 0.03), {"dead": False}, NUM_CLASSES, TrainConfig())


def test_patience_for_covers_the_plateau_and_keeps_the_default_floor():
    assert patience_for(1_000, 5_000, 128) == 25    # 40 steps an epoch: 25 epochs
    assert patience_for(1_000, 60_000, 128) == 3    # 469 steps an epoch
    assert patience_for(10, 60_000, 128) == TrainConfig.stuck_patience
