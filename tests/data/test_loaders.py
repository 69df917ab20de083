"""nin_course/data/loaders.py: batches from uint8 arrays, checked against plain numpy and
torchvision."""
import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torchvision.transforms.v2 import functional as TF

from nin_course.data.arrays import CACHE_ENV, ImageArrays, prepared_path
from nin_course.data.loaders import (ArrayLoader, balanced_indices, channel_stats, load_data,
                                     random_crop_flip, resize_images, subset)
from nin_course.runs.profiles import Profile


def toy_images(num_examples=10, shape=(6, 8, 3), seed=0):
    """x uint8 (N, H, W, C) and y int64 (N,) labels 0..4."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (num_examples, *shape), dtype=np.uint8), np.arange(num_examples) % 5


def class_ordered(num_per_class, num_classes, shape=(4, 4, 3), seed=0):
    """Images sorted by class, as the prepared CIFAR files are."""
    x, _ = toy_images(num_per_class * num_classes, shape, seed)
    return x, np.repeat(np.arange(num_classes), num_per_class)


def all_batches(loader):
    Xs, ys = zip(*loader)
    return torch.cat(Xs), torch.cat(ys)


def test_batches_shapes_dtypes_and_values():
    x, y = toy_images(10)
    loader = ArrayLoader(x, y, batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [tuple(X.shape) for X, _ in batches] == [(4, 3, 6, 8), (4, 3, 6, 8), (2, 3, 6, 8)]
    assert all(X.dtype == torch.float32 and y.dtype == torch.int64 for X, y in batches)
    X, labels = all_batches(loader)
    expected = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255  # (N, C, H, W) in [0, 1]
    torch.testing.assert_close(X, expected)
    assert labels.tolist() == y.tolist()
    assert len(ArrayLoader(x, y, 4, drop_last=True)) == 2
    assert [len(b) for b, _ in ArrayLoader(x, y, 4, drop_last=True)] == [4, 4]


def test_grayscale_and_tensor_inputs():
    x, y = toy_images(5, shape=(28, 28))
    X, _ = next(iter(ArrayLoader(torch.from_numpy(x), torch.from_numpy(y), batch_size=5)))
    assert X.shape == (5, 1, 28, 28)
    torch.testing.assert_close(X[:, 0], torch.from_numpy(x).float() / 255)


@pytest.mark.parametrize("resize", [14, (20, 40), 96])
def test_resize_matches_torchvision(resize):
    x, y = toy_images(4, shape=(28, 28, 1))
    X, _ = next(iter(ArrayLoader(x, y, batch_size=4, resize=resize)))
    size = [resize, resize] if isinstance(resize, int) else list(resize)
    assert list(X.shape[-2:]) == size
    reference = TF.resize(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255, size,
                          antialias=True)
    torch.testing.assert_close(X, reference, atol=1e-5, rtol=0)


def test_channel_stats_and_normalisation():
    x, y = toy_images(50, shape=(5, 5, 3))
    mean, std = channel_stats(x)
    pixels = x.reshape(-1, 3) / 255
    np.testing.assert_allclose(mean, pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, pixels.std(axis=0), rtol=1e-12)
    X, _ = all_batches(ArrayLoader(x, y, batch_size=16, mean=mean, std=std))
    torch.testing.assert_close(X.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(X.std(dim=(0, 2, 3), correction=0), torch.ones(3), atol=1e-5,
                               rtol=0)


def test_flips_mirror_the_image():
    image = np.zeros((1, 4, 6, 1), dtype=np.uint8)
    image[0, :, :2] = 255  # bright on the left only: asymmetric
    x, y = np.repeat(image, 64, axis=0), np.zeros(64, dtype=np.int64)
    X, _ = next(iter(ArrayLoader(x, y, batch_size=64, augment=True, padding=0, seed=0)))
    original = torch.from_numpy(image).permute(0, 3, 1, 2).float() / 255
    flipped = torch.flip(original, dims=[-1])
    is_original = (X == original).flatten(1).all(dim=1)
    is_flipped = (X == flipped).flatten(1).all(dim=1)
    assert bool((is_original | is_flipped).all())
    assert 16 < int(is_flipped.sum()) < 48  # about half


def test_crops_are_windows_of_the_zero_padded_image():
    x, y = toy_images(32, shape=(6, 6, 2))
    X = torch.from_numpy(x).permute(0, 3, 1, 2)
    generator = torch.Generator().manual_seed(0)
    out = random_crop_flip(X, padding=2, generator=generator)
    assert out.shape == X.shape and out.dtype == torch.uint8
    padded = F.pad(X, (2, 2, 2, 2))
    offsets = set()
    for b in range(len(X)):
        windows = {(dy, dx, flip): padded[b, :, dy:dy + 6, dx:dx + 6].flip(-1) if flip
                   else padded[b, :, dy:dy + 6, dx:dx + 6]
                   for dy in range(5) for dx in range(5) for flip in (False, True)}
        matches = [key for key, window in windows.items() if torch.equal(out[b], window)]
        assert matches, f"crop {b} is no window of the padded image"
        offsets.add(matches[0][:2])
    assert len(offsets) > 5  # the offsets vary


def test_augment_reproducible_and_new_each_epoch():
    x, y = toy_images(16)
    def epochs(loader):
        return [all_batches(loader)[0] for _ in range(2)]
    first, second = epochs(ArrayLoader(x, y, 8, augment=True, seed=3)), \
        epochs(ArrayLoader(x, y, 8, augment=True, seed=3))
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b)
    assert not torch.equal(first[0], first[1])


def test_seeded_shuffling():
    x, y = toy_images(40)
    y = np.arange(40)  # labels tell the order
    loader = ArrayLoader(x, y, batch_size=7, shuffle=True, seed=1)
    epoch1, epoch2 = (all_batches(loader)[1].tolist() for _ in range(2))
    assert sorted(epoch1) == list(range(40)) and sorted(epoch2) == list(range(40))
    assert epoch1 != epoch2 and epoch1 != list(range(40))
    again = ArrayLoader(x, y, batch_size=7, shuffle=True, seed=1)
    assert [all_batches(again)[1].tolist() for _ in range(2)] == [epoch1, epoch2]
    assert all_batches(ArrayLoader(x, y, 7))[1].tolist() == list(range(40))
    # X and y stay paired
    X, labels = all_batches(loader)
    torch.testing.assert_close(X, torch.from_numpy(x[labels.numpy()]).permute(0, 3, 1, 2) / 255)


def test_balanced_indices_and_subset():
    x, y = class_ordered(30, 10)  # like cifar10.npz: ordered by class
    arrays = ImageArrays("toy", x, y, x[:50], y[::6][:50], [str(i) for i in range(10)])
    small = subset(arrays, train_size=25, test_size=20, seed=0)
    assert len(small.y_train) == 25 and len(small.y_test) == 20
    counts = np.bincount(small.y_train, minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.min() >= 2
    assert len(set(small.y_train[:10])) == 10  # every prefix is balanced
    indices = balanced_indices(y, 25, np.random.default_rng(0))
    np.testing.assert_array_equal(small.x_train, x[indices])
    np.testing.assert_array_equal(small.y_train, y[indices])
    again = subset(arrays, 25, 20, seed=0)
    np.testing.assert_array_equal(again.x_train, small.x_train)
    assert not np.array_equal(subset(arrays, 25, 20, seed=1).y_train, small.y_train)
    whole = subset(arrays, None, 10_000)
    assert whole.x_train is arrays.x_train and len(whole.y_test) == 50
    assert "subset of 25 train / 20 test" in small.source


def test_balanced_indices_with_a_rare_class():
    y = np.array([0] * 20 + [1] * 2 + [2] * 20)
    picked = y[balanced_indices(y, 12, np.random.default_rng(0))]
    assert np.bincount(picked).tolist() == [5, 2, 5]


@pytest.fixture
def prepared_root(tmp_path, monkeypatch):
    """A data root with a class-ordered prepared cifar10.npz: 600 train / 300 test 8x8 images."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    x_train, y_train = class_ordered(60, 10, shape=(8, 8, 3), seed=1)
    x_test, y_test = class_ordered(30, 10, shape=(8, 8, 3), seed=2)
    path = prepared_path("cifar10", tmp_path)
    path.parent.mkdir()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             classes=np.array([f"class {i}" for i in range(10)]))
    return tmp_path


def test_load_data_with_a_profile(prepared_root):
    train_iter, test_iter = load_data("cifar10", batch_size=64, resize=16, profile="smoke",
                                      root=prepared_root, augment=True, normalize=True)
    assert len(train_iter) == 8 and len(test_iter) == 4  # smoke: 512 train / 256 test
    X, y = next(iter(train_iter))
    assert X.shape == (64, 3, 16, 16) and X.dtype == torch.float32
    counts = np.bincount(train_iter.y.numpy(), minlength=10)
    assert counts.min() >= 51  # balanced, not the first 512 of a class-ordered file
    assert train_iter.shuffle and train_iter.augment
    assert not test_iter.shuffle and not test_iter.augment
    mean, std = channel_stats(train_iter.X.permute(0, 2, 3, 1).numpy())
    torch.testing.assert_close(train_iter.mean.flatten(), torch.tensor(mean, dtype=torch.float32))
    torch.testing.assert_close(test_iter.std.flatten(), torch.tensor(std, dtype=torch.float32))


def test_load_data_without_normalisation(prepared_root):
    profile = Profile("tiny", 20, 10, 1, None, "a test profile")
    train_iter, test_iter = load_data("cifar10", 8, profile=profile, root=prepared_root)
    assert len(train_iter.y) == 20 and len(test_iter.y) == 10 and train_iter.mean is None
    X, _ = next(iter(test_iter))
    assert X.shape == (8, 3, 8, 8) and float(X.min()) >= 0 and float(X.max()) <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_batches_match_cpu():
    x, y = toy_images(32, shape=(32, 32, 3))
    kwargs = dict(batch_size=16, shuffle=True, augment=True, resize=24, mean=0.5, std=0.25, seed=0)
    for (Xc, yc), (Xg, yg) in zip(ArrayLoader(x, y, **kwargs), ArrayLoader(x, y, device="cuda",
                                                                           **kwargs)):
        assert Xg.is_cuda and yg.is_cuda
        torch.testing.assert_close(Xg.cpu(), Xc, atol=1e-5, rtol=0)
        assert torch.equal(yg.cpu(), yc)


@pytest.mark.parametrize("kwargs, message", [
    (dict(y=np.zeros(9, dtype=np.int64)), "x has 10 images but y has 9 labels"),
    (dict(batch_size=0), "batch_size must be a positive int"),
    (dict(x=np.zeros((10, 6, 8, 3), dtype=np.float32)), "x must be uint8 images .*float32"),
    (dict(x=np.zeros((10, 8), dtype=np.uint8)), r"x must be uint8 images .* shape \(10, 8\)"),
    (dict(y=np.zeros(10)), "y must be integer labels"),
    (dict(mean=(0.5, 0.5), std=(1, 1)), "mean has 2 values but the images have 3 channel"),
    (dict(mean=0.5), "give both mean and std"),
    (dict(mean=0.5, std=(1, 0, 1)), "std must be positive"),
    (dict(resize=(4, 4, 4)), "resize must be a positive int or"),
    (dict(padding=-1), "padding must be an int >= 0"),
])
def test_clear_errors(kwargs, message):
    x, y = toy_images(10)
    arguments = {**dict(x=x, y=y, batch_size=4), **kwargs}
    with pytest.raises(ValueError, match=message):
        ArrayLoader(**arguments)


@pytest.mark.parametrize("size, antialias", [((7, 9), False), (3, True), ((2, 9), True)])
def test_resize_images_is_torchs_bilinear_interpolation(size, antialias):
    X = torch.rand(2, 3, 5, 6)  # (N, C, H, W); antialiased when shrinking either side
    reference = F.interpolate(X, size=size if isinstance(size, tuple) else (size, size),
                              mode="bilinear", align_corners=False, antialias=antialias)
    assert torch.equal(resize_images(X, size), reference)


def test_resize_images_is_identity_at_the_same_size():
    X = torch.rand(2, 1, 5, 5)
    assert resize_images(X, 5) is X
