"""nin_course/data/files.py: its IDX check agrees with torchvision's reader, the reference, on
whole files and on damaged ones; MD5s are those torchvision publishes."""
import struct

import numpy as np
import pytest
import torch
from torchvision.datasets import mnist

from nin_course.data.files import idx_count, idx_problem, md5_problem


def idx_bytes(array):
    magic = {3: 2051, 1: 2049}[array.ndim]
    return struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.tobytes()


IMAGES = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
WHOLE = idx_bytes(IMAGES)


@pytest.mark.parametrize("content, whole", [
    (WHOLE, True),
    (WHOLE[:-1], False),                                  # cut short
    (WHOLE + b"\0", False),                               # one byte too many
    (WHOLE[:4] + struct.pack(">I", 2) + WHOLE[8:], False),  # a wrong count
    (struct.pack(">I", 2049) + WHOLE[4:], False),           # the labels' magic number
    (WHOLE[:10], False),                                  # not even a header
])
def test_idx_problem_agrees_with_torchvision(content, whole, tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(content)
    assert (idx_problem(path, 3) is None) == whole
    if whole:
        assert idx_count(path) == 3
        torch.testing.assert_close(mnist.read_image_file(str(path)), torch.from_numpy(IMAGES))
    else:
        with pytest.raises((RuntimeError, AssertionError, ValueError)):
            mnist.read_image_file(str(path))


def test_md5_problem(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(b"abc")
    assert md5_problem(path, "900150983cd24fb0d6963f7d28e17f72") is None  # RFC 1321's example
    assert "its MD5 is 900150983cd24fb0d6963f7d28e17f72, not torchvision's 0" in \
        md5_problem(path, "0")
