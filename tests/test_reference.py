"""nin_course.reference: the chapter's NiN as printed (shapes, its lazy-init quirk) and its data
module.

That our NiN computes the same function as the book's is tested in tests/costs/test_compare.py.
"""
import math

import numpy as np
import pytest
import torch
from d2l import torch as d2l

from nin_course import reference


def test_nin_block_shapes():
    X = torch.zeros(2, 1, 224, 224)
    # (224 - 11) // 4 + 1 = 54; the two 1x1 convolutions keep 54x54
    assert reference.nin_block(96, kernel_size=11, strides=4, padding=0)(X).shape == (2, 96, 54, 54)
    assert reference.nin_block(8, kernel_size=5, strides=1, padding=2)(X).shape == (2, 8, 224, 224)


def first_conv_bound(net):
    return net.net[0][0].weight.abs().max().item()


def test_init_inside_init_initialises_nothing():
    """The book's quirk: `self.net.apply(d2l.init_cnn)` meets lazy layers and leaves them alone.

    First conv: fan_in 1*11*11 = 121, fan_out 96*121 = 11616. PyTorch's default init draws
    from U(+-1/sqrt(121)) = U(+-0.0909); Xavier's from U(+-sqrt(6/(121+11616))) = U(+-0.0226).
    """
    torch.manual_seed(0)
    X = torch.zeros(1, 1, 224, 224)
    as_built = reference.NiN()
    as_built(X)
    assert first_conv_bound(as_built) > 0.05          # the default init, not Xavier
    assert first_conv_bound(as_built) <= 1 / 11
    fixed = reference.NiN()
    fixed.apply_init([X], d2l.init_cnn)               # what the book's recipe does next
    assert first_conv_bound(fixed) <= math.sqrt(6 / (121 + 11616))
    assert fixed(X).shape == (1, 10)


def write_idx(path, array):
    """An uncompressed IDX file of uint8 `array` (magic 0x0000080N, N = its number of dims)."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big")
                                                        for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_fashion(tmp_path):
    """A FashionMNIST/raw folder with 3 training and 2 test 28x28 images; image i is all i*100."""
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 3), ("t10k", 2)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", np.stack([np.full((28, 28), 100 * i)
                                                                  for i in range(n)]))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) + 7)
    return tmp_path


def test_fashion_mnist_reads_from_the_root_given(tiny_fashion):
    data = reference.FashionMNIST(batch_size=2, resize=(32, 32), root=tiny_fashion)
    assert data.root == str(tiny_fashion) == data.hparams["root"]   # not d2l's '../data'
    assert (len(data.train), len(data.val)) == (3, 2)
    image, label = data.train[2]
    assert image.shape == (1, 32, 32) and label == 9
    torch.testing.assert_close(image, torch.full((1, 32, 32), 200 / 255))   # ToTensor: /255
    data.num_workers = 0   # d2l's 4 worker processes, for 2 images
    X, y = next(iter(data.get_dataloader(train=False)))
    assert X.shape == (2, 1, 32, 32) and y.tolist() == [7, 8]
