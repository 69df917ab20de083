"""Damaged data files: which of a data set's files is broken, and how to replace it.

torchvision's readers report a damaged file badly: a truncated or miscounted Fashion-MNIST IDX
file as "Dataset not found", a wrong magic number as a bare AssertionError, a CIFAR batch that
fails its MD5 as "not found or corrupted". `check_files` looks at the files itself and raises a
DataFileError that names each damaged file, says what it should hold and how to replace it:
- Fashion-MNIST's IDX files, from their headers and sizes (a few bytes read, so always);
- with thorough=True (after torchvision failed): Fashion-MNIST's .gz files, CIFAR's pickled
  batches and any downloaded archive, against the MD5s that torchvision publishes.
`damaged_message` says the same for a prepared .npz file.
"""
import hashlib
import math
import struct
from pathlib import Path

IDX_MAGIC = {1: 2049, 3: 2051}  # uint8 (type 8) labels (N,) and images (N, H, W), big-endian


class DataFileError(ValueError):
    """A data file is present but damaged: the message names it and says how to replace it."""


def idx_problem(path, ndim):
    """What is wrong with the IDX file at `path` (uint8, `ndim` dims), or None if it is whole.

    An IDX file is a 4-byte magic number (IDX_MAGIC), `ndim` 4-byte sizes, then their product
    in bytes: a file of any other length was cut short or has a wrong count in its header.
    """
    header_size = 4 * (1 + ndim)
    with open(path, "rb") as f:
        header = f.read(header_size)
    size = Path(path).stat().st_size
    if len(header) < header_size:
        return f"it has {size} bytes, fewer than the {header_size} of its IDX header"
    magic, *shape = struct.unpack(f">{1 + ndim}I", header)
    if magic != IDX_MAGIC[ndim]:
        return (f"its magic number is {magic}, not {IDX_MAGIC[ndim]} (IDX, uint8, {ndim} "
                f"dimension{'s' if ndim > 1 else ''})")
    expected = header_size + math.prod(shape)
    if size != expected:
        return (f"its header announces {' x '.join(map(str, shape))} values, {expected:,} bytes "
                f"in all, but it has {size:,} bytes")
    return None


def idx_count(path):
    """The number of items (N) that the IDX file at `path` announces in its header."""
    with open(path, "rb") as f:
        return struct.unpack(">I", f.read(8)[4:])[0]


def md5_problem(path, md5):
    """'its MD5 is ..., not ...' if the file at `path` does not have checksum `md5`, else None."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() == md5:
        return None
    return f"its MD5 is {digest.hexdigest()}, not torchvision's {md5}"


def fashion_problems(folder, thorough=False):
    """[(path, problem)] for the damaged Fashion-MNIST files in `folder` (torchvision's raw/)."""
    problems, counts = [], {}
    for split in ("train", "t10k"):
        for kind, ndim in (("images", 3), ("labels", 1)):
            path = Path(folder) / f"{split}-{kind}-idx{ndim}-ubyte"
            if path.exists():
                problem = idx_problem(path, ndim)
                if problem is None:
                    counts[split, kind] = idx_count(path)
                else:
                    problems.append((path, problem))
            elif thorough and path.with_name(path.name + ".gz").exists():
                gz = path.with_name(path.name + ".gz")
                problem = md5_problem(gz, _torchvision_md5s("FashionMNIST")[gz.name])
                problems += [(gz, problem)] if problem else []
        images, labels = counts.get((split, "images")), counts.get((split, "labels"))
        if images is not None and labels is not None and images != labels:
            problems.append((Path(folder) / f"{split}-labels-idx1-ubyte",
                             (f"it holds {labels:,} labels, but {split}-images-idx3-ubyte "
                              f"holds {images:,} images")))
    return problems


def md5_problems(files, archive, torchvision_class):
    """[(path, problem)] for those of `files` and `archive` that exist and fail their MD5."""
    md5s = _torchvision_md5s(torchvision_class)
    present = [Path(p) for p in (*files, archive) if p is not None and Path(p).exists()]
    return [(p, problem) for p in present if p.name in md5s
            for problem in [md5_problem(p, md5s[p.name])] if problem]


def _torchvision_md5s(class_name):
    """{file name: MD5} for the files and archive of torchvision.datasets.<class_name>."""
    import torchvision
    cls = getattr(torchvision.datasets, class_name)
    if class_name == "FashionMNIST":
        return {Path(url).name: md5 for url, md5 in cls.resources}
    files = cls.train_list + cls.test_list + [[cls.meta["filename"], cls.meta["md5"]]]
    return {name: md5 for name, md5 in files} | {cls.filename: cls.tgz_md5}


def damaged_message(title, root, problems, env):
    """The DataFileError message: each damaged file, why, and how to replace it."""
    files = "\n".join(f"  {path}: {problem}" for path, problem in problems)
    return (f"{title}: {'a file is' if len(problems) == 1 else f'{len(problems)} files are'} "
            f"damaged in {root}:\n{files}\n"
            "Such a file is usually a download or a copy that was cut short. Delete it and load "
            f"again with download=True: torchvision fetches it again into {root} (the README's "
            "Data section lists the files and their sizes); offline, copy an intact one there "
            "from a machine that has it. If you cannot write to that folder, point "
            f"{env} at a folder holding an intact copy.")


def prepared_damaged_message(path, why):
    """The message for a prepared .npz file that cannot be read: why, and how to replace it."""
    return (f"{path} is not a readable prepared data file: {why}. It is probably damaged (a "
            "download or a copy cut short) or another kind of file. Replace it with an intact "
            "copy from where you got it, or delete it: the package then loads torchvision's "
            "files, downloading them when online (see the README's Data section).")
