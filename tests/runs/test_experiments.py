"""nin_course/runs/experiments.py: one budget per comparison, and rows that match the package's
counts."""
import dataclasses
import math

import pandas as pd
import pytest
import torch
from torch import nn

from nin_course import GlobalAvgPool2d, get_profile, num_parameters
from nin_course.costs.resources import resource_summary
from nin_course.data.arrays import DataNotFoundError, load_arrays
from nin_course.runs.experiments import BUDGET, experiment_budget, near_chance, run_experiment
from nin_course.runs.spec import RunSpec


def tiny_model():
    """A two-layer NiN-like network for 1x28x28 images: (N, 1, 28, 28) -> (N, 10)."""
    return nn.Sequential(nn.Conv2d(1, 8, 5, stride=2), nn.ReLU(), nn.Conv2d(8, 10, 1), nn.ReLU(),
                         GlobalAvgPool2d())


@pytest.fixture(scope="module")
def tiny_budget():
    try:
        load_arrays("fashion-mnist")
    except DataNotFoundError as err:
        pytest.skip(f"real Fashion-MNIST not found: {err}")
    return dataclasses.replace(BUDGET, train_size=64, test_size=32, image_size=28, batch_size=16)


def test_experiment_budget_follows_the_profile():
    smoke = get_profile("smoke")
    budget = experiment_budget("smoke", train_fraction=0.5)
    assert isinstance(budget, RunSpec) and budget.model is None and budget.profile == "smoke"
    assert budget.train_size == smoke.train_size // 2 and budget.test_size == smoke.test_size
    assert budget.image_size == smoke.image_size(224) and budget.config.num_epochs == 1
    assert budget.config == BUDGET.config and budget.seed == BUDGET.seed  # the same optimiser
    full = experiment_budget("cuda", num_epochs=3)
    assert full.train_size is None and full.image_size == 224 and full.config.num_epochs == 3
    assert experiment_budget("smoke", num_epochs=3).config.num_epochs == 1  # the profile's cap
    assert "all training examples" in full.summary()
    assert budget.summary().startswith("256 training examples, 256 test examples of fashion-mnist")
    assert experiment_budget("smoke", batch_size=64).batch_size == 64  # RunSpec fields
    assert experiment_budget("smoke", batch_size=64).key() != budget.key()
    with pytest.raises(ValueError, match="train_fraction"):
        experiment_budget("smoke", train_fraction=0)
    with pytest.raises(ValueError, match="names no model"):
        budget.build_model()  # the model comes from the comparison, not the budget


def test_run_experiment_row_matches_the_package_counts(tiny_budget):
    row = run_experiment(tiny_model, tiny_budget, probes={"zeros": lambda model, data: 0.25},
                         progress=False)
    reference = tiny_model()
    assert row["params"] == num_parameters(reference)
    assert row["FLOPs/example"] == resource_summary(reference, (1, 28, 28))["flops_per_example"]
    assert 0 <= row["test_acc"] <= 1 and row["examples/s"] > 0 and row["zeros"] == 0.25
    assert row["stuck"] is False


def test_run_experiment_is_repeatable(tiny_budget):
    first = run_experiment(tiny_model, tiny_budget, progress=False)
    second = run_experiment(tiny_model, tiny_budget, progress=False)
    assert first["train_loss"] == second["train_loss"] and first["test_acc"] == second["test_acc"]


def test_a_dead_network_is_recorded_as_stuck(tiny_budget):
    def dead():
        model = tiny_model()
        with torch.no_grad():  # every input of the last ReLU is -1: every logit is exactly 0
            model[2].weight.zero_()
            model[2].bias.fill_(-1.0)
        return model

    row = run_experiment(dead, tiny_budget, progress=False)
    assert row["stuck"] is True and row["test_acc"] == pytest.approx(0.1, abs=0.1)


def test_run_experiment_wants_a_model_and_a_runspec():
    budget = dataclasses.replace(BUDGET, train_size=8, test_size=8, image_size=28)
    with pytest.raises(TypeError, match="nn.Module"):
        run_experiment(lambda: "not a model", budget)
    with pytest.raises(TypeError, match="RunSpec"):
        run_experiment(tiny_model, dataclasses.asdict(budget))


def test_near_chance_names_the_runs_still_at_ln_num_classes():
    results = pd.DataFrame({"test_loss": [1.9, 2.2, 2.308, math.log(10) - 0.04]},
                           index=[1, 2, 3, 4])
    assert near_chance(results) == [3, 4]
    assert near_chance(results, tolerance=0.2) == [2, 3, 4]
    assert near_chance(results.assign(test_loss=[0.1] * 4), num_classes=2) == []
