"""nin_course.train.plateau: counting dead class maps, at initialisation and after a short run."""
import math

import pytest
import torch
from torch import nn

from nin_course.layers import MLPConv
from nin_course.models import CifarNiN, ImageClassifier, NiN
from nin_course.train.config import TrainConfig
from nin_course.train.plateau import (CIFAR_STARTS, FIXES, dead_at_init_table, dead_class_maps,
                                      dead_maps_at_init, plateau_trial, trials_table)

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def relu_maps(weights, biases, dropout=0.0):
    """ImageClassifier whose class map k is relu(weights[k] * pixel + biases[k]) (1x1 conv),
    after dropout: (N, 1, H, W) -> (N, 3) logits."""
    conv = nn.Conv2d(1, 3, kernel_size=1)
    model = ImageClassifier(nn.Sequential(conv, nn.ReLU(), nn.Dropout(dropout)), 1, 3, 4)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weights, dtype=torch.float32).view(3, 1, 1, 1))
        conv.bias.copy_(torch.tensor(biases, dtype=torch.float32))
    return model


def test_a_map_counts_as_dead_only_if_zero_on_every_image():
    """Map 0 = relu(pixel) is alive on the last image only (in the last batch of 2); maps 1 and
    2 (relu(-1), relu(0)) are 0 everywhere."""
    X = torch.zeros(5, 1, 4, 4)
    model = relu_maps([1, 1, 0], [0, -1, 0])
    assert dead_class_maps(model, X, batch_size=2) == 3
    X[4, 0, 2, 3] = 0.5
    assert dead_class_maps(model, X, batch_size=2) == 2
    assert dead_class_maps(model, X, batch_size=250) == 2
    assert dead_class_maps(relu_maps([1, 1, 1], [1, 1, 1]), X) == 0


def test_dead_class_maps_uses_eval_mode_and_restores_the_mode():
    """Dropout(p=1) zeroes every map in training mode; counted in eval mode, none is dead."""
    model, X = relu_maps([0, 0, 0], [1, 1, 1], dropout=1.0), torch.zeros(3, 1, 4, 4)
    assert (model.train().features(X) == 0).all()
    assert dead_class_maps(model, X) == 0 and model.training
    assert dead_class_maps(model.eval(), X) == 0 and not model.training
    with torch.no_grad():
        model.features[0].bias[1:] = -1.0
    assert dead_class_maps(model.train(), X) == 2 and model.training


@pytest.mark.parametrize("model_class, size", [(NiN, 67), (CifarNiN, 32)])
def test_very_negative_last_biases_kill_those_maps(model_class, size):
    """Some maps may be dead from the start (the plateau's cause); 3 more are killed here."""
    torch.manual_seed(0)
    model = model_class(num_classes=10, num_1x1=0).eval()
    X = torch.rand(2, model.in_channels, size, size)
    with torch.no_grad():
        alive = (model.features(X) != 0).any(dim=(0, 2, 3)).nonzero().flatten().tolist()
    at_init = dead_class_maps(model, X)
    assert at_init == 10 - len(alive) and len(alive) >= 3
    last_conv = model.features[-1][-2]  # the class maps' conv, before its ReLU
    with torch.no_grad():
        last_conv.bias[alive[:3]] = -1e4
    assert dead_class_maps(model, X) == at_init + 3
    free = model_class(num_classes=10, num_1x1=0, last_relu=False)  # no ReLU, no death
    with torch.no_grad():
        free.features[-1][-1].bias[[1, 4, 7]] = -1e4
    assert dead_class_maps(free, X) == 0
    with pytest.raises(TypeError, match="ImageClassifier"):
        dead_class_maps(nn.Sequential(nn.Conv2d(1, 3, 1), nn.ReLU()), X)


def random_bias_maps():
    """relu_maps with zero weights and N(0, 1) biases: as many dead maps as negative biases."""
    return relu_maps([0, 0, 0], torch.randn(3).tolist())


def test_dead_maps_at_init_seeds_each_build():
    X = torch.rand(2, 1, 4, 4)
    seeds = [0, 1, 2, 3, 0, 2]
    counts = dead_maps_at_init(random_bias_maps, X, seeds)
    expected = []
    for seed in seeds:
        torch.manual_seed(seed)
        torch.rand(1)  # move the generator on: the seed must come from dead_maps_at_init
        torch.manual_seed(seed)
        expected.append(int((random_bias_maps().features[0].bias <= 0).sum()))
    assert counts == expected and counts[4] == counts[0] and counts[5] == counts[2]
    assert len(set(counts)) > 1  # the seeds matter, so the repeats say something
    assert dead_maps_at_init(random_bias_maps, X, seeds) == counts


def test_plateau_trial_reports_one_short_run():
    """A tiny net with one dead map from the start: it stays dead (no gradient reaches it)."""
    X = torch.rand(32, 1, 4, 4)
    y = torch.arange(32) % 3
    X[y == 0] += 1.0  # class 0 is brighter: something to learn
    batches = list(zip(X.split(8), y.split(8)))

    def build():
        features = nn.Sequential(MLPConv(1, (8, 3), kernel_size=3, padding=1))
        model = ImageClassifier(features, 1, 3, input_size=4)
        with torch.no_grad():
            features[0][-2].bias[2] = -1e4
        return model
    result = plateau_trial(build, batches, batches, seed=0, num_classes=3, lr=0.1,
                           optimizer="adamw")
    assert set(result) == {"dead_at_init", "dead_after", "test_loss", "test_acc",
                           "left_plateau", "stopped", "seconds"}
    assert result["dead_at_init"] == 1 and result["dead_after"] >= 1
    assert math.isfinite(result["test_loss"]) and 0 <= result["test_acc"] <= 1
    assert result["left_plateau"] == (result["test_loss"] < math.log(3) - 0.1)
    assert result["stopped"] is False and result["seconds"] > 0
    assert plateau_trial(build, batches, batches, seed=0, num_classes=3, lr=0.1,
                         optimizer="adamw")["test_loss"] == result["test_loss"]  # repeatable


def test_every_fix_is_one_valid_change():
    for name, (model_args, config) in FIXES.items():
        assert len(model_args) + len(config) <= 1 or name.startswith("AdamW"), name
        TrainConfig(**config)
        assert NiN(input_size=96, **model_args).num_classes == 10
    assert FIXES["the chapter (no change)"] == ({}, {})


def test_every_cifar_start_is_a_valid_plain_cifar_nin_and_config():
    for name, (model_args, config) in CIFAR_STARTS.items():
        TrainConfig(**{"momentum": 0.9, "weight_decay": 1e-4, **config})
        model = CifarNiN(**model_args)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), name
        assert model_args["init"] in name.lower() or model_args["init"] == "xavier", name
    assert ({"init": "gaussian"}, {"lr": 0.1}) in CIFAR_STARTS.values()  # the paper's own start


def fake_study():
    """A plateau study's results in the layout of benchmarks/plateau_study.py: two changes of
    two seeds, one network with two inits."""
    def trial(dead_at_init, dead_after, acc, left):
        return {"dead_at_init": dead_at_init, "dead_after": dead_after, "test_loss": 2.0,
                "test_acc": acc, "left_plateau": left, "stopped": False, "seconds": 1.0}
    return {"steps": 150, "batch_size": 128, "image_size": 96,
            "dead_at_init": {"net": {"xavier": [5, 2, 4], "kaiming": [0, 1, 2]}},
            "trials": {"none": [trial(5, 5, 0.1, False), trial(4, 4, 0.1, False)],
                       "fix": [trial(3, 1, 0.3, True), trial(2, 0, 0.5, True)]}}


def test_trials_table_has_a_row_per_change():
    table = trials_table(fake_study())
    assert list(table.index) == ["none", "fix"] and table.index.name == "change"
    assert table.loc["none", "learnt"] == "0/2" and table.loc["fix", "learnt"] == "2/2"
    assert table.loc["fix", "dead at init"] == "3,2" and table.loc["fix", "dead after"] == "1,0"
    assert table.loc["fix", "test acc (mean)"] == pytest.approx(0.4)
    assert (table.loc["fix", "lowest"], table.loc["fix", "highest"]) == (0.3, 0.5)


def test_dead_at_init_table_has_a_row_per_network_and_init():
    table = dead_at_init_table(fake_study())
    assert list(table.index) == [("net", "xavier"), ("net", "kaiming")]
    assert table.loc[("net", "xavier"), "per seed"] == "5,2,4"
    assert table.loc[("net", "kaiming"), "mean"] == pytest.approx(1.0)
    assert table.loc[("net", "xavier"), "highest"] == 5
    assert dead_at_init_table({"dead_at_init": {}}).empty  # a CIFAR-only study has none
