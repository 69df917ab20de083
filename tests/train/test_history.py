"""nin_course/train/history.py: a run's per-epoch record, against hand-written rows."""
import math

import pytest

from nin_course.train.history import History

ROW = dict(epoch=1, train_loss=2.0, train_acc=0.25, test_loss=1.5, test_acc=0.5,
           examples_per_sec=1000.0, seconds=3.0)


def test_append_as_dict_and_back():
    history = History()
    history.append(**ROW)
    history.append(**{**ROW, "epoch": 2, "train_loss": 1.0, "test_acc": 0.75})
    assert len(history) == 2
    assert history.as_dict()["train_loss"] == [2.0, 1.0]
    assert History.from_dict(history.as_dict()) == history
    assert history.summary() == ("epoch 2: loss 1.000, train acc 0.250, test acc 0.750, "
                                 "1,000 examples/s")
    assert history.to_dataframe().loc[2, "test_acc"] == 0.75


def test_a_row_without_every_field_is_refused():
    with pytest.raises(ValueError, match="needs exactly"):
        History().append(epoch=1, train_loss=2.0)
    with pytest.raises(ValueError, match="equal length"):
        History.from_dict({"epoch": [1]})


def test_unrecorded_epochs_are_numbered_rows_of_nan():
    history = History.unrecorded(3)
    assert history.epoch == [1, 2, 3]
    assert all(math.isnan(v) for v in history.train_loss + history.test_acc)
    assert History().summary() == "no epochs yet"
