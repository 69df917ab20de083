"""nin_course.runs.recipes: the recipes follow the profiles, build, train, and match the chapter."""
import dataclasses
import math
import os
import shutil
import struct

import numpy as np
import pytest
import torch
from conftest import fake_fashion_mnist

from nin_course import fit
from nin_course.models import NiN, num_parameters
from nin_course.runs.profiles import PROFILES, Profile
from nin_course.runs.recipes import (D2L_EPOCHS, D2L_PLATEAU_STEPS, FAST_EPOCHS, ablation_table,
                                     book_run, d2l_recipe, fast_recipe, with_config)

QUIET = dict(progress=False, live_plot=False)
TINY = Profile("tiny", 40, 20, 1, 72, "tests: 40 examples, 1 epoch, <= 72 px")


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture
def fake_root(tiny_data_root):
    """A data root holding a prepared fashion-mnist.npz of 600 train / 300 test images."""
    return tiny_data_root


def write_idx(path, array):
    """An IDX file (the format of the original MNIST files) holding a uint8 array."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                    *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_root(tmp_path):
    """A data root in torchvision's layout, FashionMNIST/raw/, with 600 train / 300 test images."""
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    x_train, y_train, x_test, y_test = fake_fashion_mnist()
    for name, array in (("train-images-idx3-ubyte", x_train), ("train-labels-idx1-ubyte", y_train),
                        ("t10k-images-idx3-ubyte", x_test), ("t10k-labels-idx1-ubyte", y_test)):
        write_idx(raw / name, array)
    return tmp_path


@pytest.mark.parametrize("name", PROFILES)
def test_recipes_follow_the_profile(name):
    profile = PROFILES[name]
    d2l, fast = d2l_recipe(name), fast_recipe(profile)
    for recipe in (d2l, fast):
        assert (recipe.train_size, recipe.test_size) == (profile.train_size, profile.test_size)
    assert d2l.image_size == (224 if name == "cuda" else 96)
    assert d2l.config.num_epochs == profile.epochs(D2L_EPOCHS)
    # the fast recipe keeps Fashion-MNIST's own 28x28 pixels (None: as stored), at every profile
    assert fast.image_size is None and fast.config.num_epochs == profile.epochs(FAST_EPOCHS)
    assert "as stored" in fast.describe() and "28x28" in fast.name
    assert "epochs" in fast.describe() and "augmented       no" in fast.describe()
    assert fast_recipe(name, augment=True).augment and fast.drop_last
    # the chapter's SGD needs hundreds of steps to leave ln(10): no profile stops it sooner
    steps = math.ceil((profile.train_size or 60_000) / 128)
    assert d2l.config.stuck_patience * steps >= D2L_PLATEAU_STEPS


def test_the_d2l_recipe_is_the_chapters():
    recipe = d2l_recipe("cuda")
    c = recipe.config
    assert (recipe.image_size, recipe.batch_size, c.num_epochs) == (224, 128, 10)
    assert (c.optimizer, c.lr, c.momentum, c.weight_decay, c.lr_schedule) == ("sgd", 0.05, 0, 0,
                                                                            None)
    assert (c.label_smoothing, recipe.normalize, recipe.augment) == (0, False, False)
    model = recipe.build_model()
    assert isinstance(model, NiN) and num_parameters(model) == 1_992_166
    smaller = d2l_recipe("cuda", image_size=96, lr=0.01)
    assert (smaller.image_size, smaller.model_args["input_size"], smaller.config.lr) == (96, 96,
                                                                                     0.01)
    assert "96x96" in smaller.name and smaller.key() != recipe.key()
    assert with_config(recipe, num_epochs=2).config.num_epochs == 2
    for runtime_option in ({"device": "cpu"}, {"progress": False}, {"compile": True}):
        with pytest.raises(TypeError, match=next(iter(runtime_option))):  # fit takes them
            d2l_recipe("cuda", **runtime_option)
        with pytest.raises(TypeError, match=next(iter(runtime_option))):
            fast_recipe("cuda", **runtime_option)


def test_smoke_fast_recipe_builds_and_trains(fake_root):
    recipe = fast_recipe("smoke")
    model, train_iter, test_iter = recipe.build(root=fake_root, device="cpu")
    X, y = next(iter(train_iter))
    assert X.shape == (256, 1, 28, 28) and X.dtype == torch.float32 and y.shape == (256,)
    assert abs(X.mean().item()) < 0.5  # normalised with the training set's statistics
    assert len(train_iter) == 2 and len(test_iter.y) == 256  # 512 images in 2 full batches
    history = fit(model, train_iter, test_iter, recipe.config, device="cpu", **QUIET)
    assert len(history) == 1 and math.isfinite(history.train_loss[0])


def test_smoke_d2l_recipe_builds_and_trains_a_step(fake_root):
    recipe = d2l_recipe(TINY)
    model, train_iter, test_iter = recipe.build(root=fake_root, device="cpu")
    X, _ = next(iter(train_iter))
    assert X.shape == (40, 1, 72, 72) and 0 <= X.min() and X.max() <= 1  # resized, not normalised
    assert model.input_size == 72  # the model is built for the capped size too
    history = fit(model, train_iter, test_iter, recipe.config, device="cpu", **QUIET)
    assert math.isfinite(history.train_loss[0]) and len(test_iter.y) == 20


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")  # 4 workers, 2 cores
def test_book_run_reads_the_root_and_picks_the_same_subset(idx_root, fake_root):
    model, data, trainer = book_run(TINY, root=idx_root)
    assert data.root == str(idx_root) and trainer.max_epochs == 1
    assert len(data.train) == 40 and len(data.val) == 20
    X, _ = data.train[0]
    assert X.shape == (1, 72, 72)  # d2l's transforms: Resize then ToTensor
    _, ours, _ = d2l_recipe(TINY).build(root=fake_root)
    book_labels = [int(data.train.dataset.targets[i]) for i in data.train.indices]
    assert book_labels == ours.y.tolist()  # the same examples, in the same order
    assert model(X[None]).shape == (1, 10)  # initialised by apply_init, as the chapter does


def train_compiled(fake_root, backend):
    """The fast recipe, compiled with `backend`, on 40 training images in batches of 16 (the last
    one 8) and 20 test images in batches of 32 (one short batch), for 2 epochs."""
    recipe = with_config(fast_recipe(TINY), num_epochs=2, stuck_patience=3)
    recipe = dataclasses.replace(recipe, batch_size=16)
    model, train_iter, test_iter = recipe.build(root=fake_root, device="cpu")
    compile = torch.compile
    torch._dynamo.reset()
    try:
        torch.compile = lambda model: compile(model, backend=backend)
        history = fit(model, train_iter, test_iter, recipe.config, device="cpu", compile=True,
                      **QUIET)
    finally:
        torch.compile = compile
    assert len(history) == 2 and math.isfinite(history.train_loss[-1])


def test_compiled_fast_recipe_compiles_once_for_training_and_once_for_evaluation(fake_root):
    """Short batches are padded, so dynamo never compiles again for them. Counted with a backend
    that compiles nothing (dynamo's guards and recompiles are the same whatever the backend)."""
    from torch._dynamo.testing import CompileCounter
    counter = CompileCounter()
    train_compiled(fake_root, counter)
    assert counter.frame_count == 2  # train mode with gradients, eval mode without


def inductor_skip_reason():
    """Why the real compiler cannot be tested here, or None."""
    if not os.environ.get("NIN_COURSE_TEST_INDUCTOR"):
        return ("set NIN_COURSE_TEST_INDUCTOR=1 to run it: compiling with inductor takes about "
                "80 s on a shared 2-core CPU")
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        return "torch.compile's default backend (inductor) needs a C++ compiler; none found"
    return None


@pytest.mark.skipif(inductor_skip_reason() is not None, reason=str(inductor_skip_reason()))
def test_inductor_compiles_the_fast_recipe_without_recompiling(fake_root):
    from torch._dynamo.utils import counters
    counters.clear()
    train_compiled(fake_root, "inductor")
    assert counters["stats"]["unique_graphs"] == 2, dict(counters["stats"])
    assert not counters["recompiles"], dict(counters["recompiles"])


def test_ablation_table_compares_each_run_with_the_recipes_spread():
    """The layout of benchmarks/fast_ablation.py's results: a recipe at 0.90 and 0.92 (mean
    0.91, spread 0.02); an ablation 0.01 below the mean is within the spread, 0.05 is not."""
    runs = {"fast recipe, seed 0": 0.90, "fast recipe, seed 1": 0.92, "no batch norm": 0.86,
            "no label smoothing": 0.90}
    result = {"runs": {name: {"test_acc": acc, "train_seconds": 10.0, "history": {}}
                       for name, acc in runs.items()},
              "recipe_mean": 0.91, "recipe_spread": 0.02000000001, "settings": {"epochs": 5}}
    table = ablation_table(result)
    assert list(table.index) == list(runs) and table.index.name == "run"
    assert table.loc["no batch norm", "vs recipe"] == pytest.approx(-0.05)
    assert table["beyond the spread"].to_dict() == {
        "fast recipe, seed 0": False, "fast recipe, seed 1": False, "no batch norm": True,
        "no label smoothing": False}
    assert (table["training s"] == 10.0).all()
