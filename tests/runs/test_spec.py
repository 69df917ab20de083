"""nin_course.runs.spec: a RunSpec's key, its round trip, the models and loaders it builds,
sizing."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from nin_course.data.arrays import ImageArrays, save_prepared
from nin_course.runs.profiles import PROFILES, Profile
from nin_course.runs.spec import MODELS, RunSpec, sized, with_config
from nin_course.train.config import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py

TINY = Profile("tiny", 16, 8, 1, 24, "tests: 16 examples, 1 epoch, <= 24 px")


def spec(**fields):
    """A small CIFAR NIN run; `fields` replace RunSpec fields."""
    base = RunSpec(name="a test run", model="CifarNiN", dataset="cifar10", batch_size=8,
                   config=TrainConfig(lr=0.1, num_epochs=5, lr_schedule=((3, 0.1),)),
                   model_args=dict(num_classes=10, input_size=32), train_size=32,
                   test_size=16, image_size=32)
    return dataclasses.replace(base, **fields)


@pytest.fixture
def tiny_root(tmp_path, monkeypatch):
    """A data root with a tiny random 'cifar10' (40 train / 20 test images) whose three channels
    have different means and spreads; an empty cache."""
    rng = np.random.default_rng(0)

    def images(n):  # channel c uniform in [40c, 40c + 50 (c + 1))
        return np.stack([rng.integers(40 * c, 40 * c + 50 * (c + 1), (n, 32, 32))
                         for c in range(3)], axis=-1).astype(np.uint8)
    arrays = ImageArrays("cifar10", images(40), np.arange(40) % 10, images(20),
                         np.arange(20) % 10, [f"c{k}" for k in range(10)])
    save_prepared(arrays, tmp_path / "data" / "prepared" / "cifar10.npz")
    monkeypatch.setenv("NIN_COURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "data"


def test_key_ignores_name_and_profile_only():
    base = spec()
    assert spec(name="another label", profile="cpu").key() == base.key()
    assert len(base.key()) == 12 and base.key() == spec().key()  # the same on every call
    variants = [spec(seed=1), spec(batch_size=16), spec(train_size=24), spec(test_size=8),
                spec(image_size=24), spec(normalize=True), spec(augment=True), spec(padding=2),
                spec(drop_last=True), spec(dataset="cifar100"), spec(model="NiN"),
                spec(model_args=dict(num_classes=10, input_size=32, init="gaussian")),
                with_config(base, lr=0.05), with_config(base, lr_schedule=((4, 0.1),)),
                with_config(base, num_epochs=6), with_config(base, momentum=0.9)]
    keys = [variant.key() for variant in variants]
    assert base.key() not in keys and len(set(keys)) == len(keys)


def test_the_spec_seed_is_the_configs():
    assert spec(seed=3).config.seed == 3
    assert spec(config=TrainConfig(seed=9)).config.seed == 0  # the spec's seed wins
    assert with_config(spec(seed=4), lr=0.2).config == TrainConfig(
        lr=0.2, num_epochs=5, lr_schedule=((3, 0.1),), seed=4)


def test_from_dict_reads_back_as_dict_even_through_json():
    for original in (spec(), spec(model=None, model_args={}, image_size=None, profile="smoke",
                                  augment=True, config=TrainConfig(lr_schedule="onecycle"))):
        d = original.as_dict()
        assert json.loads(json.dumps(d)) == d
        back = RunSpec.from_dict(json.loads(json.dumps(d)))
        assert back == original and back.key() == original.key()
        assert isinstance(back.config, TrainConfig)
    assert RunSpec.from_dict(spec().as_dict()).config.lr_schedule == ((3, 0.1),)


def test_build_model_repeats_its_initial_weights():
    torch.manual_seed(123)  # the global generator's state must not matter
    first = spec().build_model()
    torch.rand(10)
    second = spec().build_model()
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    other_seed = spec(seed=1).build_model()
    assert not torch.equal(first.features[0][0].weight, other_seed.features[0][0].weight)
    gaussian = spec(model_args=dict(num_classes=100, init="gaussian")).build_model()
    assert gaussian.num_classes == 100 and torch.count_nonzero(gaussian.features[0][0].bias) == 0


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="model must be one of"):
        spec(model="ResNet")
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        spec(config={"lr": 0.1})
    with pytest.raises(ValueError, match="names no model"):
        spec(model=None).build_model()
    assert {"NiN", "CifarNiN", "VGGNiN", "FashionNiN"} <= set(MODELS)


def test_sized_caps_by_the_profile():
    original = spec(train_size=None, test_size=4)
    small = sized(original, TINY)
    assert (small.train_size, small.test_size, small.image_size) == (16, 4, 24)
    assert small.model_args["input_size"] == 24 and small.config.num_epochs == 1
    assert small.profile == "tiny" and small.config.lr == original.config.lr
    assert original.train_size is None and original.model_args["input_size"] == 32  # untouched
    full = sized(original, "cuda")
    assert dataclasses.replace(full, profile=None) == original and full.profile == "cuda"
    smoke = PROFILES["smoke"]
    assert sized(spec(train_size=None), "smoke").train_size == smoke.train_size
    # no image size to cap (images as stored): the model's own input size is kept
    as_stored = sized(spec(image_size=None), TINY)
    assert as_stored.image_size is None and as_stored.model_args["input_size"] == 32
    assert as_stored.build_model().input_size == 32


def test_loaders_normalise_with_the_training_subsets_statistics(tiny_root):
    run = spec(train_size=24, test_size=10, image_size=None, normalize=True)
    train_iter, test_iter = run.loaders(tiny_root, device="cpu")
    assert len(train_iter.y) == 24 and len(test_iter.y) == 10
    assert train_iter.batch_size == 8 and test_iter.batch_size == 16
    X = torch.cat([X for X, _ in train_iter])  # (24, 3, 32, 32)
    assert X.shape == (24, 3, 32, 32) and X.dtype == torch.float32
    torch.testing.assert_close(X.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(X.std(dim=(0, 2, 3), correction=0), torch.ones(3), atol=1e-4,
                               rtol=0)
    raw, _ = spec(train_size=24, test_size=10, image_size=16).loaders(tiny_root, device="cpu")
    X_raw = torch.cat([X for X, _ in raw])
    assert X_raw.shape == (24, 3, 16, 16) and 0 <= X_raw.min() and X_raw.max() <= 1
    assert X_raw.mean(dim=(0, 2, 3)).tolist() == sorted(X_raw.mean(dim=(0, 2, 3)).tolist())


def test_build_gives_the_same_data_and_model_every_time(tiny_root):
    run = spec(train_size=24, test_size=10, image_size=None, augment=True, normalize=True)
    (model_a, train_a, test_a), (model_b, train_b, test_b) = (run.build(tiny_root, "cpu")
                                                              for _ in range(2))
    for (Xa, ya), (Xb, yb) in zip(train_a, train_b):  # seeded shuffles and crops
        assert torch.equal(Xa, Xb) and torch.equal(ya, yb)
    assert torch.equal(test_a.y, test_b.y)
    assert torch.equal(model_a.features[0][0].weight, model_b.features[0][0].weight)
    arrays, full = run.data(tiny_root)
    assert len(full.y_train) == 40 and len(arrays.y_train) == 24
    assert sorted(np.bincount(arrays.y_train)) == [2] * 6 + [3] * 4  # class-balanced


def test_describe_and_summary_state_the_settings():
    text = spec(augment=True).describe()
    for line in ("recipe          a test run", "data            cifar10: 32 train / 16 test",
                 "image size      32x32", "batch size      8", "epochs          5",
                 "lr 0.1", "augmented       crop (padding 4) + flip", "seed            0"):
        assert line in text
    summary = spec(train_size=None, config=TrainConfig(lr_schedule="cosine")).summary()
    assert summary.startswith("all training examples, 16 test examples of cifar10, 10 epochs")
    assert "32x32 px" in summary and "cosine schedule" in summary and "\n" not in summary


def test_a_canvas_data_set_places_the_named_one_on_canvases(tiny_data_root):
    from nin_course.data.arrays import load_arrays
    from nin_course.classmaps.localisation import canvas_arrays
    from nin_course.runs.spec import load_dataset
    placed = load_dataset("fashion-mnist-canvas40", tiny_data_root)
    reference = canvas_arrays(load_arrays("fashion-mnist", tiny_data_root), 40).arrays
    assert placed.name == "fashion-mnist-canvas40" and placed.x_train.shape == (600, 40, 40, 1)
    np.testing.assert_array_equal(placed.x_test, reference.x_test)
    np.testing.assert_array_equal(placed.y_train, reference.y_train)
    run = RunSpec(name="canvas", model="FashionNiN", dataset="fashion-mnist-canvas40",
                  batch_size=8, config=TrainConfig(), train_size=20, test_size=10)
    assert run.data(tiny_data_root)[0].x_train.shape == (20, 40, 40, 1)
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("fashion-mnist-canvasX", tiny_data_root)
