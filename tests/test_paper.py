"""nin_course.paper: the recipe per profile, the paper's numbers, and a run on tiny arrays."""
import dataclasses

import numpy as np
import pytest
import torch

from nin_course.data import ImageArrays, save_prepared
from nin_course.paper import (BATCH_SIZE, LR_DROPS, NUM_EPOCHS, PAPER, PAPER_RESULTS,
                              PLATEAU_STEPS, RECIPE, cifar_recipe, paper_result, saved_profile,
                              train_cifar_nin)
from nin_course.profiles import Profile


def test_the_recipe_is_the_papers_at_every_profile():
    for name in ("smoke", "cpu", "cuda"):
        config = cifar_recipe(name).config
        assert (config.optimizer, config.lr, config.momentum, config.weight_decay) == \
            ("sgd", 0.1, 0.9, 1e-4)
        assert cifar_recipe(name).batch_size == BATCH_SIZE == 128


@pytest.mark.parametrize("name, epochs, train_size, test_size, drops", [
    ("smoke", 1, 512, 256, None),
    ("cpu", 2, 5_000, 1_000, None),  # the first 2 epochs: no drop yet
    ("cuda", NUM_EPOCHS, None, None, LR_DROPS),  # drops are (epoch, factor) tuples
])
def test_the_profile_sizes_the_recipe(name, epochs, train_size, test_size, drops):
    recipe = cifar_recipe(name, augment=True)
    assert recipe.profile == name and recipe.augment and recipe.normalize
    assert recipe.config.num_epochs == epochs
    assert (recipe.train_size, recipe.test_size) == (train_size, test_size)
    assert recipe.config.lr_schedule == drops


def test_full_schedule_divides_the_lr_by_10_twice():
    """Sec. 4.1: the final learning rate is one percent of the initial value."""
    assert len(LR_DROPS) == 2 and all(factor == 0.1 for _, factor in LR_DROPS)
    assert all(1 < epoch <= NUM_EPOCHS for epoch, _ in LR_DROPS)


@pytest.mark.parametrize("name, patience", [("smoke", 500), ("cpu", 50), ("cuda", 6)])
def test_stuck_check_waits_out_nins_first_plateau(name, patience):
    """fit may only call a run stuck after PLATEAU_STEPS steps at loss ln(C)."""
    recipe = cifar_recipe(name)
    steps_per_epoch = -(-(recipe.train_size or 50_000) // recipe.batch_size)
    assert recipe.config.stuck_patience == patience
    assert patience * steps_per_epoch >= PLATEAU_STEPS


def test_recipe_key_ignores_labels_only_and_the_recipe_takes_no_display_settings():
    base = cifar_recipe("cpu")
    assert dataclasses.replace(base, name="another label").key() == base.key()
    with pytest.raises(TypeError, match="progress"):  # a Runtime field: given to fit instead
        cifar_recipe("cpu", progress=False, live_plot=False)
    assert cifar_recipe("cpu", lr=0.05).key() != base.key()
    assert cifar_recipe("cpu", lr=0.05).config.lr == 0.05
    assert cifar_recipe("cpu", augment=True).key() != base.key()
    assert cifar_recipe("smoke").key() != base.key()


def test_paper_results_quote_tables_2_3_and_5():
    expected = {("cifar10", "gap", False, "Table 1"): 10.41,
                ("cifar10", "gap", True, "Table 1"): 8.81,
                ("cifar100", "gap", False, "Table 2"): 35.68,
                ("cifar10", "fc", False, "Table 5"): 11.59,
                ("cifar10", "fc+dropout", False, "Table 5"): 10.88,
                ("cifar10", "gap", False, "Table 5"): 10.41}
    for (dataset, head, augment, table), error in expected.items():
        result = paper_result(dataset, head, augment, table)
        assert result.test_error == error
        assert result.source == f"Lin et al. 2013, {table}"
    assert len(PAPER_RESULTS) == len(expected)
    assert "arXiv:1312.4400" in PAPER


def test_paper_result_says_what_the_paper_lacks():
    with pytest.raises(KeyError, match="no test error"):
        paper_result("cifar100", augment=True)


def test_recipe_table_states_the_simplifications():
    settings = {setting: (paper, ours) for setting, paper, ours in RECIPE}
    assert "ZCA" in settings["inputs"][0] and "per-channel" in settings["inputs"][1]
    assert "0.9" in settings["optimizer"][0] and "1e-4" in settings["weight decay"][0]


TINY = Profile("tiny", 16, 8, 1, None, "tests: 16 examples, 1 epoch")


@pytest.fixture
def tiny_root(tmp_path, monkeypatch):
    """A data root with a tiny random 'cifar10' (32 train / 16 test images); an empty cache."""
    rng = np.random.default_rng(0)
    arrays = ImageArrays("cifar10", rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8),
                         np.arange(32) % 10, rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8),
                         np.arange(16) % 10, [f"c{k}" for k in range(10)])
    save_prepared(arrays, tmp_path / "data" / "prepared" / "cifar10.npz")
    monkeypatch.setenv("NIN_COURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "data"


def test_a_smoke_run_trains_saves_and_is_reused(tiny_root):
    settings = dict(profile=TINY, root=tiny_root, progress=False, live_plot=False, device="cpu")
    assert saved_profile(10, profiles=(TINY,)) is None
    run = train_cifar_nin(10, **settings)
    assert saved_profile(10, profiles=(TINY,)) is TINY
    assert (run.dataset, run.head, run.train_size, run.test_size) == ("cifar10", "gap", 16, 8)
    assert len(run.history) == 1 and not run.reused and run.is_subset
    assert 0 <= run.test_error <= 100 and run.checkpoint.exists()
    assert "cifar10" in run.summary() and "SUBSET" in run.summary()

    again = train_cifar_nin(10, reuse=True, **settings)  # the saved run, not a new one
    assert again.reused and again.history.as_dict() == run.history.as_dict()
    for ours, theirs in zip(again.model.state_dict().values(), run.model.state_dict().values()):
        assert torch.equal(ours.cpu(), theirs.cpu())
    assert again.test_error == pytest.approx(run.test_error)
    assert run.recipe == cifar_recipe(TINY) and run.recipe.key() in run.checkpoint.name

    other = train_cifar_nin(10, reuse=True, lr=0.05, **settings)  # a TrainConfig override
    assert other.recipe.config.lr == 0.05 and not other.reused
    assert other.checkpoint != run.checkpoint and run.checkpoint.exists()


def test_train_cifar_nin_takes_10_or_100_classes_and_known_settings():
    with pytest.raises(ValueError, match="10 .* or 100"):
        train_cifar_nin(num_classes=7)
    with pytest.raises(TypeError, match="learning_rate"):  # neither TrainConfig nor Runtime
        train_cifar_nin(10, profile="smoke", learning_rate=0.1)
