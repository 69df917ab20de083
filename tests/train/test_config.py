"""nin_course.train.config: TrainConfig (what a run learns) and Runtime (how it runs), kept
apart."""
import json
import math
from pathlib import Path

import pytest

from nin_course.train.config import Runtime, TrainConfig, from_plain, plain, split_settings


@pytest.mark.parametrize("bad", [
    {"lr": 0}, {"lr": -0.1}, {"lr": math.nan}, {"lr": math.inf}, {"lr": "0.1"},
    {"num_epochs": 0}, {"num_epochs": 2.5}, {"num_epochs": True}, {"optimizer": "adam"},
    {"momentum": 1.0}, {"momentum": -0.1}, {"weight_decay": -1}, {"lr_schedule": "step"},
    {"lr_schedule": [(0, 0.1)]}, {"lr_schedule": [(3, -0.1)]}, {"lr_schedule": [(3, 0.1, 2)]},
    {"lr_schedule": [(2.5, 0.1)]}, {"label_smoothing": 1.0}, {"stuck_patience": 0},
    {"max_grad_norm": 0}, {"seed": -1}, {"seed": 2**32}, {"seed": 1.0},
])
def test_bad_train_config_values_raise(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"TrainConfig.{name} must be"):
        TrainConfig(**bad)


@pytest.mark.parametrize("bad", [
    {"precision": "fp16"}, {"precision": True}, {"channels_last": "yes"}, {"compile": 1},
    {"resume": "yes"},
])
def test_bad_runtime_values_raise(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"Runtime.{name} must be"):
        Runtime(**bad)


def test_resume_needs_a_checkpoint_and_good_values_pass(tmp_path):
    with pytest.raises(ValueError, match="resume=True needs a checkpoint_path"):
        Runtime(resume=True)
    Runtime(resume=True, checkpoint_path=tmp_path / "run.ckpt", precision="fp32", device="cpu")
    TrainConfig(lr=0.1, num_epochs=3, optimizer="adamw", momentum=0.9, weight_decay=5e-4,
                lr_schedule=[(2, 0.1), (3, 0.5)], label_smoothing=0.1, max_grad_norm=1.0,
                seed=0, stuck_patience=1)
    assert {p: Runtime(precision=p).precision for p in ("auto", "bf16", "fp32")} == \
        {"auto": "auto", "bf16": "bf16", "fp32": "fp32"}


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        TrainConfig().lr = 1.0
    with pytest.raises(AttributeError):
        Runtime().device = "cpu"


def test_split_settings_routes_each_override_to_its_owner():
    config, runtime = split_settings(lr=0.1, seed=3, device="cpu", precision="fp32",
                                     progress=False)
    assert (config.lr, config.seed) == (0.1, 3)
    assert (runtime.device, runtime.precision, runtime.progress) == ("cpu", "fp32", False)
    assert config == TrainConfig(lr=0.1, seed=3)  # nothing else changed
    assert runtime == Runtime(device="cpu", precision="fp32", progress=False)
    assert split_settings() == (TrainConfig(), Runtime())
    base, where = TrainConfig(lr=0.2, num_epochs=4), Runtime(device="cpu")
    config, runtime = split_settings(base, where, num_epochs=2, live_plot=False)
    assert config == TrainConfig(lr=0.2, num_epochs=2) and base.num_epochs == 4
    assert runtime == Runtime(device="cpu", live_plot=False) and where.live_plot
    with pytest.raises(ValueError, match="TrainConfig.lr must be"):  # overrides are checked too
        split_settings(lr=-1)


def test_split_settings_refuses_unknown_settings_and_swapped_objects():
    with pytest.raises(TypeError, match=r"unknown settings \['learning_rate'\]") as info:
        split_settings(learning_rate=0.1, lr=0.2)
    assert "'lr'" in str(info.value) and "'device'" in str(info.value)  # says what there is
    with pytest.raises(TypeError, match="expected a TrainConfig, got Runtime"):
        split_settings(Runtime())
    with pytest.raises(TypeError, match="expected a Runtime, got TrainConfig"):
        split_settings(TrainConfig(), TrainConfig())
    with pytest.raises(TypeError, match="expected a TrainConfig, got dict"):
        split_settings({"lr": 0.1})


@pytest.mark.parametrize("schedule", [None, "onecycle", ((101, 0.1), (131, 0.1)),
                                      [(3, 0.1), (4, 0.5)], [[3, 0.1]]])
def test_plain_and_from_plain_round_trip(schedule):
    config = TrainConfig(lr=0.1, momentum=0.9, lr_schedule=schedule, seed=7, max_grad_norm=2.0)
    d = plain(config)
    assert json.loads(json.dumps(d)) == d  # JSON-friendly: drops are lists of lists
    if schedule is not None and not isinstance(schedule, str):
        assert d["lr_schedule"] == [list(drop) for drop in schedule]
    back = from_plain(TrainConfig, json.loads(json.dumps(d)))
    assert plain(back) == d
    if isinstance(schedule, (list, tuple)):
        assert back.lr_schedule == tuple(tuple(drop) for drop in schedule)  # drops: tuples
    else:
        assert back == config


def test_plain_runtime_and_unknown_fields(tmp_path):
    runtime = Runtime(device="cpu", checkpoint_path=tmp_path / "run.ckpt", resume=True)
    d = plain(runtime)
    assert d["checkpoint_path"] == str(tmp_path / "run.ckpt") and json.dumps(d)
    back = from_plain(Runtime, d)
    assert back == Runtime(device="cpu", checkpoint_path=str(tmp_path / "run.ckpt"), resume=True)
    assert Path(back.checkpoint_path) == runtime.checkpoint_path
    with pytest.raises(ValueError, match=r"TrainConfig has no fields \['device'\]"):
        from_plain(TrainConfig, {**plain(TrainConfig()), "device": "cpu"})
