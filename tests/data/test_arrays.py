"""nin_course/data/arrays.py: real Fashion-MNIST from the shared data folder, and small files
written
here in torchvision's formats (IDX, pickled CIFAR batches) and in the prepared format."""
import os
import pickle
import struct
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torchvision

from nin_course.data import arrays as data, files as datafiles
from nin_course.data.arrays import (CACHE_ENV, DATA_ENV, DATASETS, DataFileError, DataNotFoundError,
                                    ImageArrays, expected_files, load_arrays, prepared_path,
                                    read_prepared)

SHARED_DATA = Path(os.environ.get(DATA_ENV) or Path(__file__).parents[2].parent / "shared" / "data")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No test touches the network or the real cache: every download fails, the cache is tmp."""
    calls = []

    def urlopen(*args, **kwargs):
        calls.append(args)
        raise urllib.error.URLError("no network in tests")
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return calls


def random_arrays(rng, num_train, num_test, shape, num_classes):
    x_train, x_test = (rng.integers(0, 256, (n, *shape), dtype=np.uint8)
                       for n in (num_train, num_test))
    y_train, y_test = (rng.integers(0, num_classes, n) for n in (num_train, num_test))
    return x_train, y_train, x_test, y_test


def write_idx(path, array):
    """An IDX file as Fashion-MNIST's: magic 2051 (images) or 2049 (labels), big-endian dims."""
    magic = {3: 2051, 1: 2049}[array.ndim]
    header = struct.pack(f">{1 + array.ndim}I", magic, *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_fashion_mnist(root, rng, num_train=12, num_test=6):
    x_train, y_train, x_test, y_test = random_arrays(rng, num_train, num_test, (28, 28), 10)
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, x, y in (("train", x_train, y_train), ("t10k", x_test, y_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", x)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    return x_train[..., None], y_train, x_test[..., None], y_test


def write_cifar(name, root, rng, monkeypatch):
    """Pickled batches as torchvision's CIFAR10/CIFAR100 read them; their MD5 checks are skipped."""
    num_classes = {"cifar10": 10, "cifar100": 100}[name]
    x_train, y_train, x_test, y_test = random_arrays(rng, 10, 4, (32, 32, 3), num_classes)
    files = expected_files(name, root)
    files[0].parent.mkdir(parents=True)
    label_key, names_key = ("labels", "label_names") if name == "cifar10" \
        else ("fine_labels", "fine_label_names")
    train_files = files[:-2]  # cifar10: data_batch_1..5; cifar100: train
    for i, path in enumerate(train_files):
        part = slice(i * 2, (i + 1) * 2) if name == "cifar10" else slice(None)
        write_batch(path, x_train[part], y_train[part], label_key)
    write_batch(files[-2], x_test, y_test, label_key)
    classes = [f"class {i}" for i in range(num_classes)]
    files[-1].write_bytes(pickle.dumps({names_key: classes}))
    dataset_class = {"cifar10": torchvision.datasets.CIFAR10,
                     "cifar100": torchvision.datasets.CIFAR100}[name]
    monkeypatch.setattr(dataset_class, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args: True)
    return x_train, y_train, x_test, y_test, classes


def write_batch(path, x, y, label_key):
    rows = x.transpose(0, 3, 1, 2).reshape(len(x), -1)  # CIFAR stores (N, 3 * 32 * 32), RGB planes
    path.write_bytes(pickle.dumps({"data": rows, label_key: [int(label) for label in y]}))


def files_in(root):
    """Every path under `root` with its (size, mtime in ns): what a load must leave unchanged."""
    return {path: (path.stat().st_size, path.stat().st_mtime_ns) for path in root.rglob("*")}


def forbid_torchvision(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torchvision was called although a prepared file exists")
    for class_name in ("FashionMNIST", "CIFAR10", "CIFAR100"):
        monkeypatch.setattr(torchvision.datasets, class_name, refuse)


def assert_arrays_equal(arrays, x_train, y_train, x_test, y_test):
    for got, expected in zip((arrays.x_train, arrays.y_train, arrays.x_test, arrays.y_test),
                             (x_train, y_train, x_test, y_test)):
        np.testing.assert_array_equal(got, expected)
    assert arrays.x_train.dtype == np.uint8 and arrays.y_train.dtype == np.int64


# --- the real Fashion-MNIST -------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_fashion_mnist(tmp_path_factory):
    """One load of the real Fashion-MNIST (the shared folder, or a learner's data root, which
    may be writable), with a fresh cache: (arrays, cache folder, the root's files before)."""
    if not (SHARED_DATA / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip(f"real Fashion-MNIST not found in {SHARED_DATA}: set {DATA_ENV} to a folder "
                    "holding FashionMNIST/raw/ (torchvision's layout)")
    cache = tmp_path_factory.mktemp("cache")
    before = files_in(SHARED_DATA)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(cache))
        return load_arrays("fashion-mnist", root=SHARED_DATA, download=False), cache, before


def test_real_fashion_mnist_shapes_and_classes(real_fashion_mnist):
    arrays, _, before = real_fashion_mnist
    assert arrays.x_train.shape == (60000, 28, 28, 1) and arrays.x_test.shape == (10000, 28, 28, 1)
    assert arrays.y_train.shape == (60000,) and arrays.y_test.shape == (10000,)
    assert arrays.classes == list(torchvision.datasets.FashionMNIST.classes)
    assert arrays.classes[0] == "T-shirt/top" and arrays.num_classes == 10
    assert arrays.image_shape == (1, 28, 28)
    np.testing.assert_array_equal(np.bincount(arrays.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(arrays.y_test), [1000] * 10)
    prepared = prepared_path("fashion-mnist", SHARED_DATA)
    # a prepared file the learner put in the root is read as it is; else torchvision's files
    expected = f"prepared file {prepared}" if prepared in before else "torchvision FashionMNIST"
    assert arrays.source.startswith(expected)


def test_real_fashion_mnist_leaves_the_root_alone(real_fashion_mnist, monkeypatch):
    arrays, cache, before = real_fashion_mnist
    assert files_in(SHARED_DATA) == before  # read-only or not, nothing was written into the root
    if prepared_path("fashion-mnist", SHARED_DATA) in before:
        return  # an uncompressed prepared file in the root needs no cached copy
    assert (cache / "prepared" / "fashion-mnist.npz").exists()
    monkeypatch.setenv(CACHE_ENV, str(cache))
    forbid_torchvision(monkeypatch)
    again = load_arrays("fashion-mnist", root=SHARED_DATA)
    assert again.source.startswith(f"cache {cache}")
    assert_arrays_equal(again, arrays.x_train, arrays.y_train, arrays.x_test, arrays.y_test)


def test_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "d"))
    assert data.data_root() == tmp_path / "d"
    monkeypatch.delenv(DATA_ENV)
    monkeypatch.delenv(CACHE_ENV)
    assert data.data_root() == Path.home() / ".nin_course" / "data"
    assert data.cache_dir() == Path.home() / ".cache" / "nin_course"


# --- torchvision's formats, written here --------------------------------------------------------

def test_fashion_mnist_idx_files_then_cached_copy(tmp_path, monkeypatch):
    root = tmp_path / "data"
    written = write_fashion_mnist(root, np.random.default_rng(0))
    monkeypatch.setenv(DATA_ENV, str(root))  # the default root
    arrays = load_arrays("fashion-mnist")
    assert_arrays_equal(arrays, *written)
    assert arrays.source.startswith("torchvision")
    cached = tmp_path / "cache" / "prepared" / "fashion-mnist.npz"
    assert cached.exists() and not any(cached.parent.glob("*.tmp"))
    with zipfile.ZipFile(cached) as archive:  # uncompressed, so that it loads fast
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
    forbid_torchvision(monkeypatch)
    again = load_arrays("fashion-mnist")
    assert again.source.startswith(f"cache {cached}")
    assert_arrays_equal(again, *written)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_pickled_batches_then_cached_copy(name, tmp_path, monkeypatch):
    root = tmp_path / "data"
    *written, classes = write_cifar(name, root, np.random.default_rng(1), monkeypatch)
    before = files_in(root)
    arrays = load_arrays(name, root=root, download=False)
    assert_arrays_equal(arrays, *written)
    assert arrays.classes == classes and arrays.image_shape == (3, 32, 32)
    assert files_in(root) == before
    forbid_torchvision(monkeypatch)
    again = load_arrays(name, root=root)
    assert again.source.startswith("cache") and files_in(root) == before
    assert_arrays_equal(again, *written)


def test_a_writable_root_gets_nothing_written_into_it(tmp_path, monkeypatch):
    root = tmp_path / "data"  # writable, as a learner's own data folder is
    write_fashion_mnist(root, np.random.default_rng(2))
    before = files_in(root)
    load_arrays("fashion-mnist", root=root)
    assert files_in(root) == before
    assert (tmp_path / "cache" / "prepared" / "fashion-mnist.npz").exists()
    with monkeypatch.context() as patch:
        forbid_torchvision(patch)
        assert load_arrays("fashion-mnist", root=root).source.startswith("cache")
    assert files_in(root) == before


def test_a_changed_source_file_is_prepared_again(tmp_path):
    root = tmp_path / "data"
    _, _, x_test, y_test = write_fashion_mnist(root, np.random.default_rng(6))
    assert load_arrays("fashion-mnist", root=root).source.startswith("torchvision")
    labels = root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    new_labels = (y_test + 1) % 10  # same size: only the modification time tells the change
    write_idx(labels, new_labels)
    os.utime(labels, ns=(0, labels.stat().st_mtime_ns + 10**9))  # a coarse clock still differs
    again = load_arrays("fashion-mnist", root=root)
    assert again.source.startswith("torchvision")  # prepared again, not the stale copy
    np.testing.assert_array_equal(again.y_test, new_labels)
    assert load_arrays("fashion-mnist", root=root).source.startswith("cache")  # and cached again


def test_compressed_prepared_file_is_copied_uncompressed_to_cache(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    x_train, y_train, x_test, y_test = random_arrays(rng, 8, 4, (32, 32, 3), 10)
    path = tmp_path / "data" / "prepared" / "cifar10.npz"
    path.parent.mkdir(parents=True)
    classes = np.array([f"c{i}" for i in range(10)])
    np.savez_compressed(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                        classes=classes)
    forbid_torchvision(monkeypatch)
    before = files_in(tmp_path / "data")
    first = load_arrays("cifar10", root=tmp_path / "data")
    assert first.source == f"prepared file {path}" and files_in(tmp_path / "data") == before
    cached = tmp_path / "cache" / "prepared" / "cifar10.npz"
    with np.load(cached) as npz:
        assert list(npz["source_files"]) == [str(path.resolve())]
        assert npz["source_stat"].tolist() == [[path.stat().st_size, path.stat().st_mtime_ns]]
    second = load_arrays("cifar10", root=tmp_path / "data")
    assert second.source.startswith(f"cache {cached}")
    assert_arrays_equal(second, x_train, y_train, x_test, y_test)
    # a new version of the prepared file makes the copy stale
    np.savez_compressed(path, x_train=x_train[:5], y_train=y_train[:5], x_test=x_test,
                        y_test=y_test, classes=classes)
    third = load_arrays("cifar10", root=tmp_path / "data")
    assert third.source == f"prepared file {path}" and len(third.x_train) == 5


def test_grayscale_prepared_file_gets_a_channel(tmp_path):
    x_train, y_train, x_test, y_test = random_arrays(np.random.default_rng(4), 6, 3, (28, 28), 10)
    path = prepared_path("fashion-mnist", tmp_path)
    path.parent.mkdir()
    np.savez(path, x_train=x_train, y_train=y_train.astype(np.uint8), x_test=x_test,
             y_test=y_test, classes=np.array(list("abcdefghij")))
    arrays = load_arrays("fashion-mnist", root=tmp_path)
    assert arrays.x_train.shape == (6, 28, 28, 1) and arrays.y_train.dtype == np.int64
    assert "6 train / 3 test" in repr(arrays)


# --- missing data and clear errors ---------------------------------------------------------------

FASHION_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"]
EXPECTED = {
    "fashion-mnist": [f"FashionMNIST/raw/{f}" for f in FASHION_FILES],
    "cifar10": [f"cifar-10-batches-py/{f}" for f in
                ("data_batch_1", "data_batch_5", "test_batch", "batches.meta")],
    "cifar100": [f"cifar-100-python/{f}" for f in ("train", "test", "meta")],
}


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("download", [False, True])
def test_missing_data_offline_names_the_files(name, download, tmp_path, offline):
    with pytest.raises(DataNotFoundError) as info:
        load_arrays(name, root=tmp_path, download=download)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for file in EXPECTED[name]:
        assert str(tmp_path / file) in message
    assert str(tmp_path / "prepared" / f"{name}.npz") in message
    assert "x_train" in message and "classes" in message and DATA_ENV in message
    assert bool(offline) == download  # the download was really tried, and failed
    assert ("download failed" in message) == download
    assert "shared/data" not in message  # the repository's CI folder means nothing to a learner


def test_missing_data_names_the_learners_root(tmp_path, monkeypatch, offline):
    learner_root = tmp_path / "my data"
    monkeypatch.setenv(DATA_ENV, str(learner_root))
    with pytest.raises(DataNotFoundError) as info:
        load_arrays("cifar10", download=False)
    assert f"not in {learner_root} ({DATA_ENV}={learner_root})" in str(info.value)
    assert f"{DATA_ENV}=/path/to/data make lab" in str(info.value)
    monkeypatch.delenv(DATA_ENV)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DataNotFoundError) as info:
        load_arrays("cifar10", download=False)
    default = tmp_path / ".nin_course" / "data"
    assert f"not in {default} (the default data root: {DATA_ENV} is not set)" in str(info.value)


def test_a_relative_data_root_is_named_as_such(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_ENV, "../shared/data")
    with pytest.raises(DataNotFoundError, match="relative path, read from") as info:
        load_arrays("fashion-mnist", download=False)
    assert str(tmp_path) in str(info.value) and "absolute path" in str(info.value)
    with pytest.raises(DataNotFoundError) as info:
        load_arrays("fashion-mnist", root=tmp_path, download=False)
    assert "relative path" not in str(info.value)

def test_expected_files_match_torchvision(tmp_path):
    datasets = torchvision.datasets
    fashion = datasets.FashionMNIST
    assert [p.name for p in expected_files("fashion-mnist", tmp_path)] == [
        os.path.splitext(os.path.basename(url))[0] for url, _ in fashion.resources]
    for name, cls in (("cifar10", datasets.CIFAR10), ("cifar100", datasets.CIFAR100)):
        files = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        assert expected_files(name, tmp_path) == [tmp_path / cls.base_folder / f for f in files]


def test_unknown_name():
    with pytest.raises(ValueError, match="fashion-mnist, cifar10, cifar100"):
        load_arrays("mnist")


def good_prepared():
    x_train, y_train, x_test, y_test = random_arrays(np.random.default_rng(5), 4, 2, (8, 8, 3), 3)
    return dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                classes=np.array(["a", "b", "c"]))


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("y_test"), "lacks the key.*y_test"),
    (lambda d: d.update(x_train=d["x_train"].astype(np.float32)), "x_train must be uint8"),
    (lambda d: d.update(x_test=d["x_test"][:, None]), r"x_test must be uint8 images of shape"),
    (lambda d: d.update(y_train=d["y_train"] + 3), "y_train holds labels from .* 0..2"),
    (lambda d: d.update(y_train=d["y_train"].astype(float)), "y_train must be integer labels"),
    (lambda d: d.update(y_test=d["y_test"][:1]), "x_test has 2 images but y_test has 1"),
    (lambda d: d.update(x_test=d["x_test"][:, :4]), "train images are .* test images"),
    (lambda d: d.update(classes=np.array(["a", "b", None], dtype=object)), "Python objects"),
])
def test_malformed_prepared_file(change, message, tmp_path):
    contents = good_prepared()
    change(contents)
    path = prepared_path("cifar10", tmp_path)
    path.parent.mkdir()
    np.savez(path, **contents)
    with pytest.raises(ValueError, match=message) as info:
        load_arrays("cifar10", root=tmp_path)
    assert str(path) in str(info.value)


def test_unreadable_prepared_file(tmp_path):
    path = prepared_path("cifar100", tmp_path)
    path.parent.mkdir()
    path.write_bytes(b"not a zip archive")
    with pytest.raises(DataFileError, match=f"{path} is not a readable prepared data file"):
        read_prepared(path)


def test_image_arrays_checks_its_arrays():
    contents = good_prepared()
    arrays = ImageArrays("toy", **contents)
    assert arrays.num_classes == 3 and arrays.image_shape == (3, 8, 8)
    with pytest.raises(ValueError, match=r"ImageArrays\('toy'\): y_train"):
        ImageArrays("toy", **{**contents, "y_train": contents["y_train"] - 1 - 3})


@pytest.mark.skipif(not os.environ.get("NIN_COURSE_SLOW_TESTS"),
                    reason="decompresses the shared cifar100.npz (about 8 s); "
                           "set NIN_COURSE_SLOW_TESTS=1 to run")
def test_real_cifar100_subset_via_cache(monkeypatch):
    if not prepared_path("cifar100", SHARED_DATA).exists():
        pytest.skip(f"no prepared/cifar100.npz in {SHARED_DATA}")
    arrays = load_arrays("cifar100", root=SHARED_DATA)
    assert arrays.x_train.shape == (10000, 32, 32, 3) and arrays.x_test.shape == (10000, 32, 32, 3)
    assert arrays.num_classes == 100 and arrays.classes[0] == "apple"
    np.testing.assert_array_equal(np.bincount(arrays.y_train), [100] * 100)
    forbid_torchvision(monkeypatch)
    again = load_arrays("cifar100", root=SHARED_DATA)
    assert again.source.startswith("cache")
    np.testing.assert_array_equal(again.x_train, arrays.x_train)


# --- damaged files: named, with how to replace them, and nothing written ------------------------

def truncate(path, keep):
    path.write_bytes(path.read_bytes()[:keep])


def set_header(path, index, value):
    """Overwrite the `index`-th big-endian 4-byte word of an IDX header (0: the magic number)."""
    raw = bytearray(path.read_bytes())
    raw[4 * index:4 * index + 4] = struct.pack(">I", value)
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("file, damage, problem", [
    ("train-images-idx3-ubyte", lambda p: truncate(p, 1000), "but it has 1,000 bytes"),
    ("t10k-labels-idx1-ubyte", lambda p: set_header(p, 1, 7), "announces 7 values"),
    ("train-labels-idx1-ubyte", lambda p: set_header(p, 0, 0x99), "magic number is 153, not 2049"),
    ("t10k-images-idx3-ubyte", lambda p: truncate(p, 5), "fewer than the 16 of its IDX header"),
])
@pytest.mark.parametrize("download", [False, True])
def test_a_damaged_idx_file_is_named(file, damage, problem, download, tmp_path):
    root = tmp_path / "data"
    write_fashion_mnist(root, np.random.default_rng(7))
    path = root / "FashionMNIST" / "raw" / file
    damage(path)
    before = files_in(root)
    with pytest.raises(DataFileError) as info:  # not "not found", not a bare AssertionError
        load_arrays("fashion-mnist", root=root, download=download)
    message = str(info.value)
    assert f"{path}: it" in message and problem in message
    assert "Delete it and load again with download=True" in message and DATA_ENV in message
    assert message.count(str(root / "FashionMNIST")) == 1  # only the damaged file is listed
    assert files_in(root) == before and not (tmp_path / "cache" / "prepared").exists()


def test_images_and_labels_of_different_counts_are_named(tmp_path):
    root = tmp_path / "data"
    write_fashion_mnist(root, np.random.default_rng(8), num_train=12)
    labels = root / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte"
    write_idx(labels, np.zeros(11, dtype=np.uint8))  # whole, but one label short
    with pytest.raises(DataFileError, match=f"{labels}: it holds 11 labels, but "
                                            "train-images-idx3-ubyte holds 12 images"):
        load_arrays("fashion-mnist", root=root)


def test_a_damaged_gz_download_is_named(tmp_path, offline, monkeypatch):
    """torchvision's layout after an interrupted download: .gz files, one cut short; offline,
    torchvision would say only that the download failed."""
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for file in FASHION_FILES:
        (raw / f"{file}.gz").write_bytes(b"\x1f\x8b" + bytes(100))
    with pytest.raises(DataFileError) as info:
        load_arrays("fashion-mnist", root=tmp_path, download=True)
    assert f"{raw / 'train-images-idx3-ubyte.gz'}: its MD5 is" in str(info.value)
    assert "not torchvision's 8d4fb7e6c68d591d4c3dfef9ec88bf0d" in str(info.value)
    monkeypatch.setattr(datafiles, "md5_problem", lambda path, md5: None)  # intact .gz files
    with pytest.raises(DataNotFoundError, match=r"\(missing; its .gz is there: download=True"):
        load_arrays("fashion-mnist", root=tmp_path, download=False)


def test_a_damaged_cifar_batch_is_named(tmp_path, monkeypatch):
    root = tmp_path / "data"
    write_cifar("cifar10", root, np.random.default_rng(9), monkeypatch)
    monkeypatch.undo()  # torchvision checks the MD5s again, as it does for a learner
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(DataFileError) as info:
        load_arrays("cifar10", root=root, download=False)
    batch = root / "cifar-10-batches-py" / "data_batch_1"
    assert f"{batch}: its MD5 is" in str(info.value) and "7 files are damaged" in str(info.value)


def write_lzma_npz(path, **contents):
    """An .npz whose members are LZMA-compressed, as the shared CIFAR files are."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_LZMA) as archive:
        for key, array in contents.items():
            with archive.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array(member, array)


def flip_byte(path, offset):
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def flip_in_member(path, member="x_train.npy", at=20):
    """Flip a byte `at` bytes into the (stored or compressed) data of a zip member."""
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo(member).header_offset
    local_header = path.read_bytes()[offset:offset + 30]  # name and extra lengths at 26..30
    name_length, extra_length = struct.unpack("<HH", local_header[26:30])
    flip_byte(path, offset + 30 + name_length + extra_length + at)


@pytest.mark.parametrize("write, damage, why", [
    (np.savez, lambda p: p.write_bytes(os.urandom(4000)), "not a whole .npz"),
    (np.savez, lambda p: truncate(p, p.stat().st_size // 2), "not a whole .npz"),
    (np.savez, flip_in_member, r"array x_train cannot be read \(BadZipFile: Bad CRC"),
    (write_lzma_npz, flip_in_member, r"x_train cannot be read \(LZMAError"),
    (np.savez_compressed, flip_in_member, r"x_train cannot be read \((BadZipFile|error)"),
])
def test_a_damaged_prepared_file_is_named(write, damage, why, tmp_path):
    path = prepared_path("cifar10", tmp_path / "data")
    path.parent.mkdir(parents=True)
    write(path, **good_prepared())
    damage(path)
    with pytest.raises(DataFileError, match=f"{path} is not a readable prepared data file: "
                                            f"it.*{why}") as info:
        load_arrays("cifar10", root=tmp_path / "data")
    assert "allow_pickle" not in str(info.value)  # numpy's advice to load pickles is not passed on
    assert "or delete it: the package then loads torchvision's files" in str(info.value)


def test_a_damaged_cached_copy_is_made_again(tmp_path):
    """The cache is the package's own: a damaged copy there is replaced, without a word."""
    root = tmp_path / "data"
    written = write_fashion_mnist(root, np.random.default_rng(10))
    load_arrays("fashion-mnist", root=root)
    cached = tmp_path / "cache" / "prepared" / "fashion-mnist.npz"
    for damage in (flip_in_member, lambda p: truncate(p, 3000),
                   lambda p: p.write_bytes(os.urandom(3000))):
        damage(cached)
        assert load_arrays("fashion-mnist", root=root).source.startswith("torchvision")
        assert_arrays_equal(load_arrays("fashion-mnist", root=root), *written)


def test_class_names_stored_as_bytes_are_decoded(tmp_path):
    contents = good_prepared()
    contents["classes"] = np.array([b"c0", b"c1", "c\u00e9".encode()])  # dtype S: bytes
    path = prepared_path("cifar10", tmp_path)
    path.parent.mkdir()
    np.savez(path, **contents)
    assert load_arrays("cifar10", root=tmp_path).classes == ["c0", "c1", "c\u00e9"]
