"""nin_course.runs.paper: the recipe per profile, the paper's numbers, and a run on tiny arrays."""
import dataclasses

import numpy as np
import pytest
import torch

from nin_course.data.arrays import ImageArrays, save_prepared
from nin_course.runs.paper import (BATCH_SIZE, COMPARISON_COLUMNS, LR_DROPS, NUM_EPOCHS, PAPER,
                                   PAPER_RESULTS, PLATEAU_STEPS, RECIPE, REPRODUCTIONS,
                                   cifar_recipe, paper_result, runs_against_published,
                                   saved_profile, train_cifar_nin)
from nin_course.runs.profiles import Profile


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


def test_paper_results_quote_tables_1_to_5():
    expected = {("cifar10", "gap", False, "Table 1"): 10.41,
                ("cifar10", "gap", True, "Table 1"): 8.81,
                ("cifar100", "gap", False, "Table 2"): 35.68,
                ("svhn", "gap", False, "Table 3"): 2.35,
                ("mnist", "gap", False, "Table 4"): 0.47,
                ("cifar10", "fc", False, "Table 5"): 11.59,
                ("cifar10", "fc+dropout", False, "Table 5"): 10.88,
                ("cifar10", "gap", False, "Table 5"): 10.41}
    for (dataset, head, augment, table), error in expected.items():
        result = paper_result(dataset, head, augment, table)
        assert result.test_error == error
        assert result.source == f"Lin et al. 2013, {table}"
    assert len(PAPER_RESULTS) == len(expected)
    assert "arXiv:1312.4400" in PAPER


def test_paper_result_without_a_table_gives_tables_1_and_2():
    assert paper_result("cifar10").source.endswith("Table 1")
    assert paper_result("cifar100").source.endswith("Table 2")
    assert paper_result("svhn").model == paper_result("mnist").model == "NIN + Dropout"


def test_reproductions_quote_their_sources():
    """The figures as their sources write them: an error, or 100 minus an accuracy."""
    by_source = {r.source.split(",")[0]: r for r in REPRODUCTIONS}
    cuda_convnet = by_source["github.com/mavenlin/cuda-convnet"]
    assert (cuda_convnet.test_error, cuda_convnet.epochs, cuda_convnet.augment) == \
        (10.4, 260, False)
    assert "10.4%" in cuda_convnet.quote
    caffe = by_source["Caffe Model Zoo"]
    assert caffe.test_error == pytest.approx(100 - 89.6) and "89.6%" in caffe.quote
    assert "e56253735ef32c3c296d" in caffe.source
    imgclsmob = by_source["github.com/osmr/imgclsmob"]
    assert imgclsmob.test_error == 7.43 and "7.43" in imgclsmob.quote
    assert len(REPRODUCTIONS) == 3


def test_runs_against_published_reads_records_and_names_missing_runs(tmp_path, monkeypatch):
    from nin_course.runs import store as runs
    stored = runs.load_run("cifar10-nin-bn")  # committed in runs/
    table = runs_against_published(["cifar10-nin-bn", "cifar10-nin-noaug"], {"cifar10": 50_000})
    assert list(table.columns) == list(COMPARISON_COLUMNS)
    row = table.loc["cifar10-nin-bn"]
    assert row["test error %"] == pytest.approx(100 * (1 - stored.record["metrics"]["test_acc"]),
                                                abs=0.005)
    assert row["epochs"] == stored.record["metrics"]["epochs"]
    assert (row["network"], row["augmentation"], row["training images"]) == \
        ("batch norm, Kaiming init", "crops + flips", "50,000")
    monkeypatch.setenv(runs.RUNS_ENV, str(tmp_path))  # an empty runs folder: nothing stored
    monkeypatch.setenv("NIN_COURSE_CACHE", str(tmp_path / "cache"))
    table = runs_against_published(["cifar10-nin-bn", "cifar100-nin-bn"])
    for name in ("cifar10-nin-bn", "cifar100-nin-bn"):
        assert table.loc[name, "source or state"] == \
            f"not trained yet: python -m nin_course.runs train {name}"
        assert table.loc[name, "test error %"] == "" and table.loc[name, "epochs"] == ""
    assert table.loc["cifar100-nin-bn", "data"] == "CIFAR-100"
    published = table.loc[["paper (Table 1): NIN + Dropout", "paper (Table 2): NIN + Dropout",
                           "the authors' cuda-convnet code"], "test error %"]
    assert list(published) == [10.41, 35.68, 10.4]
    assert len(table) == 2 + 3 + len(REPRODUCTIONS)


def test_paper_result_says_what_the_paper_lacks():
    with pytest.raises(KeyError, match="no test error"):
        paper_result("cifar100", augment=True)


def test_recipe_table_states_the_simplifications():
    settings = {setting: (paper, ours) for setting, paper, ours in RECIPE}
    assert "ZCA" in settings["inputs"][0] and "per-channel" in settings["inputs"][1]
    assert "Gaussian" in settings["initialisation"][0] and \
        "Xavier" in settings["initialisation"][1]
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
