"""Real image data sets as uint8 arrays: Fashion-MNIST, CIFAR-10 and CIFAR-100.

`load_arrays(name)` looks in the data root (NIN_COURSE_DATA, default ~/.nin_course/data) for
1. a prepared file `<root>/prepared/<name>.npz`: uint8 images (N, H, W, C), integer labels and
   the class names (a compressed one is copied once, uncompressed, into the cache, because it
   takes seconds to decompress);
2. otherwise torchvision's own files, loaded by torchvision's dataset classes (downloaded into
   the root if allowed), then saved as a prepared copy in the cache so that the next start is fast;
3. and otherwise raises DataNotFoundError, which names the files it expected.
A file that is there but damaged (truncated, miscounted, not what its name says) raises
DataFileError instead, naming the file and how to replace it (see files.py).

The package never writes a prepared file into the data root: the root is the learner's (or a
shared, read-only) folder. Its prepared copies go to the cache folder (NIN_COURSE_CACHE, default
~/.cache/nin_course), each recording the name, size and modification time of the files it was
made from, so that a copy whose sources changed is made again.
"""
import lzma
import os
import tempfile
import tokenize
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import (DataFileError, damaged_message, fashion_problems, md5_problems,
                    prepared_damaged_message)

DATA_ENV = "NIN_COURSE_DATA"
CACHE_ENV = "NIN_COURSE_CACHE"
PREPARED_KEYS = ("x_train", "y_train", "x_test", "y_test", "classes")
# what reading a damaged .npz raises: truncated, bad CRC, broken LZMA or deflate stream, and a
# damaged array header (numpy parses it with Python's tokenizer: TokenError on Python 3.13)
NPZ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError, zlib.error,
              tokenize.TokenError, SyntaxError)


@dataclass(frozen=True)
class _Source:
    title: str
    torchvision_class: str  # the class in torchvision.datasets
    folder: str             # where that class keeps its files, under the root
    files: tuple


SOURCES = {
    "fashion-mnist": _Source("Fashion-MNIST", "FashionMNIST", "FashionMNIST/raw", (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")),
    "cifar10": _Source("CIFAR-10", "CIFAR10", "cifar-10-batches-py", (
        *(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")),
    "cifar100": _Source("CIFAR-100", "CIFAR100", "cifar-100-python", ("train", "test", "meta")),
}
DATASETS = tuple(SOURCES)


class DataNotFoundError(FileNotFoundError):
    """The data set is neither on disk nor downloadable; the message names the files expected."""


def data_root():
    """The data folder: $NIN_COURSE_DATA, else ~/.nin_course/data."""
    return Path(os.environ.get(DATA_ENV) or "~/.nin_course/data").expanduser()


def cache_dir():
    """The cache folder for uncompressed copies: $NIN_COURSE_CACHE, else ~/.cache/nin_course."""
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/nin_course").expanduser()


@dataclass
class ImageArrays:
    """A data set as arrays: x uint8 (N, H, W, C), y int64 (N,), labels index `classes`.

    Images of shape (N, H, W) are taken as grayscale and get C=1. `source` says where the
    arrays were loaded from.
    """
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list
    source: str = ""

    def __post_init__(self):
        where = self.source or f"ImageArrays({self.name!r})"
        self.classes = [c.decode() if isinstance(c, bytes) else str(c) for c in self.classes]
        for split in ("train", "test"):
            x = _check_images(getattr(self, f"x_{split}"), f"x_{split}", where)
            y = _check_labels(getattr(self, f"y_{split}"), f"y_{split}", len(self.classes), where)
            if len(x) != len(y):
                raise ValueError(f"{where}: x_{split} has {len(x)} images but y_{split} has "
                                 f"{len(y)} labels; they must have the same length")
            setattr(self, f"x_{split}", x)
            setattr(self, f"y_{split}", y)
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(f"{where}: train images are {self.x_train.shape[1:]} but test images "
                             f"are {self.x_test.shape[1:]} (H, W, C); they must match")

    @property
    def num_classes(self):
        return len(self.classes)

    @property
    def image_shape(self):
        """(C, H, W), the shape of one image as the models take it."""
        H, W, C = self.x_train.shape[1:]
        return (C, H, W)

    def to_npz_dict(self):
        """The arrays under the keys of the prepared format."""
        return dict(x_train=self.x_train, y_train=self.y_train, x_test=self.x_test,
                    y_test=self.y_test, classes=np.array(self.classes, dtype=str))

    def __repr__(self):
        return (f"ImageArrays({self.name!r}: {len(self.x_train)} train / {len(self.x_test)} test "
                f"images of shape {self.image_shape}, {self.num_classes} classes, "
                f"from {self.source or 'memory'})")


def _check_images(x, key, where):
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]  # grayscale (N, H, W) -> (N, H, W, 1)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"{where}: {key} must be uint8 images of shape (N, H, W, C) with C 1 or 3,"
                         f" or (N, H, W); got {x.dtype} of shape {x.shape}")
    return x


def _check_labels(y, key, num_classes, where):
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{where}: {key} must be integer labels of shape (N,); "
                         f"got {y.dtype} of shape {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{where}: {key} holds labels from {y.min()} to {y.max()}, but with "
                         f"{num_classes} classes they must lie in 0..{num_classes - 1}")
    return y.astype(np.int64, copy=False)


def check_name(name):
    """Raise a ValueError unless `name` is one of DATASETS."""
    if name not in SOURCES:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")


def prepared_path(name, root=None):
    """Where the prepared file of `name` lives in `root`: <root>/prepared/<name>.npz."""
    check_name(name)
    return Path(root if root is not None else data_root()).expanduser() / "prepared" / f"{name}.npz"


def expected_files(name, root=None):
    """The files torchvision's dataset class reads for `name`, under `root`."""
    check_name(name)
    source = SOURCES[name]
    folder = Path(root if root is not None else data_root()).expanduser() / source.folder
    return [folder / file for file in source.files]


def load_arrays(name, root=None, download=True):
    """Load data set `name` as ImageArrays: a prepared file, else torchvision's files (see above).

    Raises DataNotFoundError when the data are absent and cannot be downloaded.
    """
    check_name(name)
    root = Path(root).expanduser() if root is not None else data_root()
    prepared = prepared_path(name, root)
    cached = cache_dir() / "prepared" / f"{name}.npz"
    if prepared.exists():
        if not _is_compressed(prepared):
            return read_prepared(prepared, name)
        arrays = _read_cache(cached, [prepared], name)
        if arrays is None:
            arrays = read_prepared(prepared, name)
            _save(arrays, cached, sources=[prepared])
        return arrays
    raw_files = expected_files(name, root)
    arrays = _read_cache(cached, raw_files, name)
    if arrays is None:
        arrays = _load_torchvision(name, root, download)
        _save(arrays, cached, sources=raw_files)
    return arrays


def read_prepared(path, name=None):
    """Read and check a prepared .npz file: keys x_train, y_train, x_test, y_test, classes."""
    path = Path(path)
    npz = _open_npz(path)
    with npz:
        missing = [key for key in PREPARED_KEYS if key not in npz.files]
        if missing:
            raise ValueError(f"prepared file {path} lacks the key(s) {', '.join(missing)}; it "
                             f"must hold {', '.join(PREPARED_KEYS)} (classes as strings)")
        arrays = {key: _read_member(npz, key, path) for key in PREPARED_KEYS}
    if arrays["classes"].ndim != 1:
        raise ValueError(f"prepared file {path}: classes must be a 1-d array of names; "
                         f"got shape {arrays['classes'].shape}")
    name = name or path.stem
    return ImageArrays(name, **arrays, source=f"prepared file {path}")


def _open_npz(path):
    """np.load(path) without pickles, as an NpzFile; DataFileError if it is not an .npz archive."""
    if path.is_file() and not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            is_npy = f.read(6) == b"\x93NUMPY"
        if is_npy:
            raise ValueError(f"prepared file {path} is a single .npy array, not an .npz archive; "
                             f"write it with np.savez(path, {'=..., '.join(PREPARED_KEYS)}=...)")
        # np.load would take it for a pickle and advise allow_pickle=True: never do that
        raise DataFileError(prepared_damaged_message(path, "it is not a whole .npz (zip) archive"))
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (*NPZ_ERRORS, ValueError) as err:
        raise DataFileError(prepared_damaged_message(path, f"{type(err).__name__}: {err}")) \
            from err


def _read_member(npz, key, path):
    """The array `key` of the open prepared file `npz`; a clear error if it cannot be read."""
    try:
        return npz[key]
    except NPZ_ERRORS as err:
        raise DataFileError(prepared_damaged_message(
            path, f"its array {key} cannot be read ({type(err).__name__}: {err})")) from err
    except ValueError as err:
        if "allow_pickle" not in str(err):
            raise DataFileError(prepared_damaged_message(
                path, f"its array {key} cannot be read ({err})")) from err
        raise ValueError(f"prepared file {path} holds Python objects in {key}, which are not "
                         "loaded (pickles can run code); store classes as strings: "
                         "np.array(classes, dtype=str)") from None


def save_prepared(arrays, path):
    """Write `arrays` to `path` in the prepared format (uncompressed, atomically)."""
    _write_npz(Path(path), arrays.to_npz_dict())


def _is_compressed(path):
    """Whether any member of the .npz at `path` is compressed (np.load then takes seconds)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(info.compress_type != zipfile.ZIP_STORED for info in archive.infolist())
    except (OSError, zipfile.BadZipFile):
        return False  # read_prepared says what is wrong with it


def _source_stat(paths):
    """(size, mtime in ns) of each file: (len(paths), 2), to tell when a cached copy is stale."""
    return np.array([[s.st_size, s.st_mtime_ns] for s in map(os.stat, paths)], dtype=np.int64)


def _read_cache(cached, sources, name):
    """The arrays in the cached copy, if it exists and was made from `sources` as they are now."""
    try:
        with np.load(cached, allow_pickle=False) as npz:
            made_from = [str(s) for s in npz["source_files"]]
            if made_from != [str(Path(s).resolve()) for s in sources] \
                    or not np.array_equal(npz["source_stat"], _source_stat(sources)):
                return None
            arrays = {key: npz[key] for key in PREPARED_KEYS}
        return ImageArrays(name, **arrays, source=f"cache {cached} (made from {made_from[0]}"
                                                  f"{' ...' if len(made_from) > 1 else ''})")
    except (*NPZ_ERRORS, KeyError, ValueError):
        return None  # absent, stale or broken: the caller rebuilds it (the cache is ours)


def _save(arrays, path, sources):
    """Save a cached prepared copy that records its `sources`. On failure warn, return False."""
    contents = arrays.to_npz_dict()
    contents["source_files"] = np.array([str(Path(s).resolve()) for s in sources])
    contents["source_stat"] = _source_stat(sources)
    try:
        _write_npz(path, contents)
        return True
    except OSError as err:
        warnings.warn(f"could not save {path} ({err}); the next start will be slow. Set "
                      f"{CACHE_ENV} to a writable folder to fix this.", stacklevel=3)
        return False


def _write_npz(path, contents):
    """np.savez (uncompressed) into a temporary file beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **contents)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a data file is for every user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_torchvision(name, root, download):
    """Both splits through torchvision's dataset class for `name`, as ImageArrays."""
    from urllib.error import URLError

    import torchvision
    source = SOURCES[name]
    dataset_class = getattr(torchvision.datasets, source.torchvision_class)
    check_files(name, root)  # before torchvision, which calls a truncated file "not found"
    try:
        train, test = [dataset_class(root, train=is_train, download=download)
                       for is_train in (True, False)]
    except Exception as err:  # torchvision raises AssertionError, TypeError ... for bad files
        check_files(name, root, thorough=True)
        if isinstance(err, (URLError, OSError, RuntimeError)):
            raise DataNotFoundError(_not_found_message(name, root, download, err)) from err
        raise
    x_train, y_train = _to_arrays(train)
    x_test, y_test = _to_arrays(test)
    return ImageArrays(name, x_train, y_train, x_test, y_test, list(train.classes),
                       source=f"torchvision {source.torchvision_class} files in {root}")


def check_files(name, root, thorough=False):
    """Raise DataFileError, naming them, if any of torchvision's files for `name` in `root` is
    damaged. Quick: Fashion-MNIST's IDX headers and sizes; thorough: every MD5 torchvision has."""
    source, files = SOURCES[name], expected_files(name, root)
    if name == "fashion-mnist":
        problems = fashion_problems(files[0].parent, thorough)
    elif thorough:
        archive = {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}
        problems = md5_problems(files, Path(root) / archive[name], source.torchvision_class)
    else:
        problems = []
    if problems:
        raise DataFileError(damaged_message(source.title, root, problems, DATA_ENV))


def _to_arrays(dataset):
    """(x uint8 (N, H, W[, C]), y int64 (N,)) from a torchvision data set's .data and .targets."""
    data = dataset.data  # FashionMNIST: uint8 tensor (N, 28, 28); CIFAR: uint8 (N, 32, 32, 3)
    x = data.numpy() if hasattr(data, "numpy") else np.asarray(data)
    return x, np.asarray(dataset.targets, dtype=np.int64)


def _not_found_message(name, root, download, err):
    paths = expected_files(name, root)
    files = "\n".join(f"  {path}{_file_state(path)}" for path in paths)
    why = "download=False" if not download else f"the download failed: {err}"
    if all(path.exists() for path in paths):  # and check_files found nothing wrong with them
        why = f"torchvision could not read them: {type(err).__name__}: {err}"
    return (f"{SOURCES[name].title} is not in {root} ({_root_origin(root)}) and could not be "
            f"fetched ({why}).\n"
            f"Expected torchvision's files:\n{files}\n"
            f"or a prepared file {prepared_path(name, root)} holding uint8 x_train (N, H, W, C) "
            "or (N, H, W), integer y_train (N,), uint8 x_test, integer y_test and classes "
            "(strings).\n"
            f"Put them in {root} (online, with download=True, torchvision downloads them "
            f"there), or point {DATA_ENV} at the folder that holds them, e.g. "
            f"{DATA_ENV}=/path/to/data make lab" + _relative_hint(root))


def _file_state(path):
    """'' for a file that is there, else why not, in words (a .gz that download=True unpacks)."""
    if path.exists():
        return ""
    if path.with_name(path.name + ".gz").exists():
        return "  (missing; its .gz is there: download=True unpacks it, offline too)"
    return "  (missing)"


def _root_origin(root):
    """Where the data root `root` came from, in words: the environment, the default or root=."""
    if Path(root) != data_root():
        return "the root= argument"
    if os.environ.get(DATA_ENV):
        return f"{DATA_ENV}={os.environ[DATA_ENV]}"
    return f"the default data root: {DATA_ENV} is not set"


def _relative_hint(root):
    """A note when the folder was a relative path: notebooks run from their own folder."""
    if Path(root).is_absolute():
        return ""
    return (f"\n{root} is a relative path, read from {Path.cwd()} (a notebook runs from its own "
            "folder): give an absolute path.")
