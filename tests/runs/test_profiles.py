"""nin_course.runs.profiles: what each profile caps, which one is chosen, and the error for a
typo."""
import pytest
import torch

from nin_course.models import NiN
from nin_course.runs.profiles import PROFILE_ENV, PROFILES, Profile, get_profile, resolve


def test_caps_take_the_smaller_of_recipe_and_profile():
    smoke, cpu, cuda = PROFILES["smoke"], PROFILES["cpu"], PROFILES["cuda"]
    assert (smoke.epochs(10), cpu.epochs(10), cpu.epochs(1), cuda.epochs(150)) == (1, 2, 1, 150)
    assert (smoke.image_size(224), smoke.image_size(32), cuda.image_size(224)) == (96, 32, 224)
    assert (smoke.train_size, smoke.test_size, cpu.train_size, cuda.train_size) == (512, 256,
                                                                                   5_000, None)


@pytest.mark.parametrize("name", ["smoke", "cpu"])
def test_capped_size_fits_d2ls_nin(name):
    # d2l's NiN needs >= 67 px: (67 - 11) // 4 + 1 = 15, then three 3/2 max-pools: 7, 3, 1
    size = PROFILES[name].image_size(224)
    assert NiN().eval()(torch.zeros(1, 1, size, size)).shape == (1, 10)


def test_the_name_given_wins_then_the_environment(monkeypatch):
    monkeypatch.setenv(PROFILE_ENV, "cpu")
    assert get_profile() is PROFILES["cpu"]
    assert get_profile("smoke") is PROFILES["smoke"]


@pytest.mark.parametrize("gpu, expected", [(True, "cuda"), (False, "cpu")])
def test_default_follows_the_gpu(monkeypatch, gpu, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    assert get_profile().name == expected
    monkeypatch.setenv(PROFILE_ENV, "")   # an empty variable counts as unset
    assert get_profile().name == expected


def test_unknown_name_says_where_it_came_from(monkeypatch):
    monkeypatch.setenv(PROFILE_ENV, "gpu")
    with pytest.raises(ValueError, match=f"'gpu' \\(from the environment variable {PROFILE_ENV}\\)"
                                         ".*smoke, cpu, cuda"):
        get_profile()
    with pytest.raises(ValueError, match="'Smoke' \\(from get_profile\\)"):
        get_profile("Smoke")


def test_resolve(monkeypatch):
    own = Profile("tiny", 16, 8, 1, 24, "tests")
    monkeypatch.setenv(PROFILE_ENV, "smoke")
    assert resolve(own) is own
    assert resolve("cuda") is PROFILES["cuda"]
    assert resolve(None) is PROFILES["smoke"]
