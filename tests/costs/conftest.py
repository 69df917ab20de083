"""Networks the cost tests share."""
import pytest
from torch import nn

from nin_course.models import NiN


@pytest.fixture
def toy_net():
    """A maker of a small network whose costs are counted by hand in the tests:
    (N, 3, 16, 16) -> conv (N, 8, 16, 16) -> pool (N, 8, 8, 8) -> (N, 512) -> (N, 10)."""
    return lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Flatten(), nn.Linear(8 * 8 * 8, 10))


@pytest.fixture(scope="module")
def nin():
    """d2l's NiN, as built for 1x224x224 inputs."""
    return NiN()
