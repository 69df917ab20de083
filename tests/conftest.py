"""Fixtures shared by several test modules."""
import contextlib
import signal

import numpy as np
import pytest
import torch
from torch import nn

from nin_course.models import CifarNiN, NiN

# The hostile and broken submissions that tests/test_grading.py grades: notebooks, not tests
# (`make test` runs pytest with --nbval, which would otherwise execute them).
collect_ignore = ["fixtures"]


def pytest_collection_modifyitems(items):
    """The order of the files: those holding a test marked slow first, then the notebooks (nbval's
    cells), then the rest; each file's tests keep their order. `make test` hands whole files to
    its parallel workers (pytest-xdist, --dist loadfile, --no-loadscope-reorder), so that the
    short files fill the workers' last minutes instead of one long file running alone."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: 0 if item.path in slow_files else  # stable
               1 if item.path.suffix == ".ipynb" else 2)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models train fastest on one thread, above all on a machine shared with other jobs.

    A module opts in with `pytestmark = pytest.mark.usefixtures("one_thread")`; the thread
    count is restored after its last test.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def time_limit():
    """`with time_limit(30):` fails with TimeoutError instead of hanging (SIGALRM: Unix, main
    thread), for calls that once looped for ever."""
    @contextlib.contextmanager
    def limit(seconds=30):
        def stop(signum, frame):
            raise TimeoutError(f"no answer in {seconds} s: a loop that never ends?")
        previous = signal.signal(signal.SIGALRM, stop)
        signal.alarm(seconds)
        try:
            yield
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    return limit


def fake_fashion_mnist(num_train=600, num_test=300, seed=0):
    """28x28 uint8 images whose class shows as a bright row: (x_train, y_train, x_test, y_test)."""
    rng = np.random.default_rng(seed)
    splits = []
    for n in (num_train, num_test):
        y = np.arange(n) % 10
        x = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        x[np.arange(n), 2 + 2 * y, :] = 255
        splits += [x, y.astype(np.int64)]
    return splits


@pytest.fixture
def tiny_data_root(tmp_path, monkeypatch):
    """A data root holding a prepared fashion-mnist.npz of 600 train / 300 test images, with
    its own cache folder."""
    from nin_course.data.arrays import CACHE_ENV, prepared_path
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    x_train, y_train, x_test, y_test = fake_fashion_mnist()
    path = prepared_path("fashion-mnist", tmp_path / "data")
    path.parent.mkdir(parents=True)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             classes=np.array([f"class {i}" for i in range(10)]))
    return tmp_path / "data"


@pytest.fixture(scope="module")
def cifar_nin():
    """An untrained CifarNiN with 10 classes (torch.manual_seed(0)): class maps of 8x8."""
    torch.manual_seed(0)
    return CifarNiN(num_classes=10)


@pytest.fixture(scope="module")
def cifar_images():
    """(images, X, labels): 4 random uint8 images as stored (N, 32, 32, 3), the same as a model
    takes them (N, 3, 32, 32) in [0, 1], and their labels 0, 3, 5, 9."""
    torch.manual_seed(1)
    images = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    X = images.permute(0, 3, 1, 2).float() / 255
    return images, X, torch.tensor([0, 3, 5, 9])


@pytest.fixture
def toy_net():
    """A maker of the small network whose costs the cost tests count by hand:
    (N, 3, 16, 16) -> conv (N, 8, 16, 16) -> pool (N, 8, 8, 8) -> (N, 512) -> (N, 10)."""
    return lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Flatten(), nn.Linear(8 * 8 * 8, 10))


@pytest.fixture(scope="module")
def nin():
    """d2l's NiN, as built for 1x224x224 inputs."""
    return NiN()
