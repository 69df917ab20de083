"""Batches from uint8 image arrays kept on the device: the course's fast input pipeline.

torch's DataLoader with torchvision transforms handles one PIL image at a time, in worker
processes. `ArrayLoader` instead moves the whole data set to the device once, as uint8
(N, C, H, W), and makes every batch with a few batched tensor operations: index, crop and flip,
scale to [0, 1], resize, normalise. `load_data` is d2l's `load_data_fashion_mnist` for our data
sets and run profiles.
"""
import dataclasses
import math

import numpy as np
import torch
from torch.nn import functional as F

from ..runs.profiles import resolve
from .arrays import load_arrays


class ArrayLoader:
    """Iterate over batches (X, y): X float32 (batch_size, C, H', W'), y int64 (batch_size,).

    x: uint8 images (N, H, W, C), or (N, H, W) for grayscale, as a numpy array or tensor; y: (N,)
    integer labels. Both move to `device` (default CPU) once. Each batch is, in this order:
    - augmented if `augment`: a random crop of the image padded with `padding` black pixels on
      each side, and a horizontal flip for half of the images (torchvision's
      RandomCrop(H, padding) and RandomHorizontalFlip);
    - scaled to [0, 1], resized to `resize` (an int or (h, w)) if given, then normalised with
      the per-channel `mean` and `std` if given.
    Each iter() (each epoch) draws a new order if `shuffle`, from a generator seeded with `seed`,
    so two loaders built with the same seed give the same batches.
    """

    def __init__(self, x, y, batch_size, shuffle=False, device=None, resize=None, mean=None,
                 std=None, augment=False, padding=4, drop_last=False, seed=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std to normalise, or neither")
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding must be an int >= 0 (pixels added on each side before a "
                             f"random crop), got {padding!r}")
        self.device = torch.device(device if device is not None else "cpu")
        self.X = _images_nchw(x, self.device)  # (N, C, H, W) uint8
        self.y = _labels(y, len(self.X), self.device)  # (N,) int64
        num_channels = self.X.shape[1]
        self.mean = _channel_vector(mean, "mean", num_channels, self.device)  # (1, C, 1, 1)
        self.std = _channel_vector(std, "std", num_channels, self.device)
        if self.std is not None and not bool((self.std > 0).all()):
            raise ValueError(f"std must be positive in every channel, got {std!r}")
        self.resize = _pair(resize)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.augment, self.padding = augment, padding
        self.generator = torch.Generator()  # on the CPU, so that runs match across devices
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def __len__(self):
        """The number of batches in one epoch."""
        num_examples = len(self.y)
        if self.drop_last:
            return num_examples // self.batch_size
        return math.ceil(num_examples / self.batch_size)

    def __iter__(self):
        num_examples = len(self.y)
        if self.shuffle:
            order = torch.randperm(num_examples, generator=self.generator)
        else:
            order = torch.arange(num_examples)
        return self._batches(order.to(self.device))

    def _batches(self, order):
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            indices = order[start:start + self.batch_size]
            yield self.transform(self.X[indices]), self.y[indices]

    def transform(self, X):
        """Augment, scale to [0, 1], resize, normalise: uint8 (B, C, H, W) -> float (B, C, H', W')."""
        if self.augment:
            X = random_crop_flip(X, self.padding, self.generator)
        X = X.float().div_(255)
        if self.resize is not None:
            X = resize_images(X, self.resize)
        if self.mean is not None:
            X = (X - self.mean) / self.std
        return X

    def __repr__(self):
        C, H, W = self.X.shape[1:]
        size = f", resize={self.resize}" if self.resize else ""
        return (f"ArrayLoader({len(self.y)} images of shape ({C}, {H}, {W}) on {self.device}, "
                f"batch_size={self.batch_size}, {len(self)} batches, shuffle={self.shuffle}"
                f"{size}, augment={self.augment}, normalize={self.mean is not None})")


def random_crop_flip(X, padding=4, generator=None):
    """Random crops of the images padded with zeros, half of them flipped: (B, C, H, W) -> same.

    Image b is cropped from rows dy_b.. and columns dx_b.. of its padded copy, dy_b and dx_b
    uniform in 0..2 * padding, then mirrored left-right with probability 1/2. One indexing
    operation for the whole batch; the random numbers come from `generator` on the CPU.
    """
    B, C, H, W = X.shape
    # non_blocking: a plain copy to a GPU waits for the GPU to finish its queue, every batch
    dy, dx = torch.randint(0, 2 * padding + 1, (2, B, 1), generator=generator).to(
        X.device, non_blocking=True)
    flip = (torch.rand(B, 1, generator=generator) < 0.5).to(X.device, non_blocking=True)
    rows = dy + torch.arange(H, device=X.device)  # (B, H), rows of the padded images
    cols = torch.arange(W, device=X.device)
    cols = dx + torch.where(flip, cols.flip(0), cols)  # (B, W), right to left when flipped
    padded = F.pad(X, (padding, padding, padding, padding))  # (B, C, H + 2p, W + 2p)
    batch = torch.arange(B, device=X.device)[:, None, None, None]
    channel = torch.arange(C, device=X.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def resize_images(X, size):
    """Bilinear resize, antialiased when shrinking, as torchvision's Resize.

    (B, C, H, W) -> (B, C, h, w).
    """
    size = _pair(size)
    H, W = X.shape[-2:]
    if (H, W) == size:
        return X
    shrinking = size[0] < H or size[1] < W
    return F.interpolate(X, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def channel_stats(x):
    """Per-channel mean and std of uint8 images (N, H, W, C), on the [0, 1] scale: two C-tuples.

    Counted with a 256-bin histogram per channel, so that no float copy of the images is made.
    """
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim not in (3, 4):
        raise ValueError(f"channel_stats expects uint8 images (N, H, W, C); got {x.dtype} of "
                         f"shape {x.shape}")
    x = x[..., None] if x.ndim == 3 else x
    values = np.arange(256) / 255
    means, stds = [], []
    for c in range(x.shape[-1]):
        counts = np.bincount(x[..., c].ravel(), minlength=256) / x[..., c].size
        mean = float(counts @ values)
        means.append(mean)
        stds.append(float(np.sqrt(counts @ (values - mean) ** 2)))
    return tuple(means), tuple(stds)


def balanced_indices(y, size, rng):
    """`size` random indices into labels y, as even over the classes as they allow: (size,).

    Round robin: one random example of every class, then a second of every class, ...; so any
    prefix of the result is balanced too.
    """
    perm = rng.permutation(len(y))
    labels = y[perm]
    by_class = np.argsort(labels, kind="stable")  # positions in perm, grouped by class
    first_of_class = np.searchsorted(labels[by_class], labels[by_class], side="left")
    rank = np.empty(len(y), dtype=np.int64)
    rank[by_class] = np.arange(len(y)) - first_of_class  # how many of its class come before
    order = np.lexsort((np.arange(len(y)), rank))
    return perm[order[:size]]


def subset(arrays, train_size=None, test_size=None, seed=0):
    """A new ImageArrays with `train_size` / `test_size` random examples, class-balanced.

    None (or a size at least the split's length) keeps the whole split. Not simply the first
    examples: prepared CIFAR files are ordered by class.
    """
    splits = {}
    for i, (split, size) in enumerate((("train", train_size), ("test", test_size))):
        x, y = getattr(arrays, f"x_{split}"), getattr(arrays, f"y_{split}")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise ValueError(f"{split}_size must be a positive int or None, got {size!r}")
        if size is not None and size < len(y):
            indices = balanced_indices(y, size, np.random.default_rng([seed, i]))
            x, y = x[indices], y[indices]
        splits.update({f"x_{split}": x, f"y_{split}": y})
    source = (f"{arrays.source}; subset of {len(splits['y_train'])} train / "
              f"{len(splits['y_test'])} test, seed {seed}")
    return dataclasses.replace(arrays, **splits, source=source)


def load_data(name, batch_size, resize=None, profile=None, root=None, device=None, augment=False,
              normalize=False, seed=0):
    """(train_iter, test_iter) ArrayLoaders for data set `name`, sized by the run profile.

    `profile` is a Profile or a profile name (None: NIN_COURSE_PROFILE, see runs/profiles.py); its
    train_size / test_size pick a class-balanced random subset. normalize=True uses the
    per-channel mean and std of the training subset. Only the training batches are shuffled
    and augmented. The profile does not cap `resize`: pass profile.image_size(224) for that.
    """
    profile = resolve(profile)
    arrays = subset(load_arrays(name, root), profile.train_size, profile.test_size, seed)
    mean, std = channel_stats(arrays.x_train) if normalize else (None, None)
    common = dict(batch_size=batch_size, device=device, resize=resize, mean=mean, std=std)
    train_iter = ArrayLoader(arrays.x_train, arrays.y_train, shuffle=True, augment=augment,
                             seed=seed, **common)
    test_iter = ArrayLoader(arrays.x_test, arrays.y_test, shuffle=False, **common)
    return train_iter, test_iter


def _images_nchw(x, device):
    """uint8 (N, H, W, C) or (N, H, W) array or tensor -> uint8 tensor (N, C, H, W) on `device`."""
    x = torch.as_tensor(x)
    if x.dtype != torch.uint8 or x.ndim not in (3, 4):
        raise ValueError(f"x must be uint8 images of shape (N, H, W, C), the raw pixels; got "
                         f"{x.dtype} of shape {tuple(x.shape)}. ArrayLoader scales to [0, 1] "
                         "itself: convert floats in [0, 1] with (x * 255).round() to uint8")
    x = x[..., None] if x.ndim == 3 else x
    return x.to(device).permute(0, 3, 1, 2).contiguous()


def _labels(y, num_examples, device):
    y = torch.as_tensor(y)
    if y.ndim != 1 or y.is_floating_point() or y.is_complex():
        raise ValueError(f"y must be integer labels of shape (N,); got {y.dtype} of shape "
                         f"{tuple(y.shape)}")
    if len(y) != num_examples:
        raise ValueError(f"x has {num_examples} images but y has {len(y)} labels; "
                         "they must have the same length")
    return y.to(device=device, dtype=torch.int64)


def _channel_vector(values, name, num_channels, device):
    """None, a number, or one number per channel -> None or a float32 tensor (1, C, 1, 1)."""
    if values is None:
        return None
    vector = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    if len(vector) == 1:
        vector = vector.expand(num_channels)
    if len(vector) != num_channels:
        raise ValueError(f"{name} has {len(vector)} values but the images have {num_channels} "
                         f"channel(s); give one per channel")
    return vector.to(device).reshape(1, -1, 1, 1)


def _pair(size):
    """None, an int or (h, w) -> None or (h, w)."""
    if size is None:
        return None
    pair = (size, size) if isinstance(size, int) else (
        tuple(size) if isinstance(size, (tuple, list)) else ())
    if len(pair) != 2 or not all(isinstance(s, int) and s > 0 for s in pair):
        raise ValueError(f"resize must be a positive int or (height, width), got {size!r}")
    return pair
