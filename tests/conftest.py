"""Fixtures shared by several test modules."""
import pytest
import torch


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
