"""nin_course/train/seeding.py: one call makes Python's, NumPy's and torch's draws repeat."""
import random

import numpy as np
import pytest
import torch

from nin_course.train.seeding import seed_everything


def draw(seed):
    seed_everything(seed)
    return random.random(), float(np.random.rand()), torch.rand(1).item()


def test_seed_everything_seeds_python_numpy_and_torch():
    assert draw(7) == draw(7)
    assert all(a != b for a, b in zip(draw(7), draw(8)))  # each generator was seeded


def test_seed_everything_equals_seeding_each_generator_by_hand():
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    by_hand = random.random(), float(np.random.rand()), torch.rand(1).item()
    assert draw(3) == by_hand


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "0"])
def test_a_seed_that_is_not_a_32_bit_integer_is_refused(seed):
    with pytest.raises(ValueError, match="seed must be an integer"):
        seed_everything(seed)
