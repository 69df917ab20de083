"""Run profiles: how much of a recipe to run on this machine.

- `smoke`: seconds, for CI: a tiny subset, one epoch, small inputs;
- `cpu`: a laptop: minutes;
- `cuda`: the full recipe, for a CUDA GPU.

Chosen by the environment variable NIN_COURSE_PROFILE; by default `cuda` when a GPU is present
and `cpu` otherwise.
"""
import os
from dataclasses import dataclass

import torch

PROFILE_ENV = "NIN_COURSE_PROFILE"


@dataclass(frozen=True)
class Profile:
    name: str
    train_size: int | None   # training examples used; None = the whole training set
    test_size: int | None    # test examples used; None = the whole test set
    num_epochs: int | None   # None = the recipe's own number of epochs
    max_image_size: int | None  # cap on the recipe's image_size; None = the recipe's own
    description: str

    def epochs(self, num_epochs):
        """The number of epochs to run for a recipe that asks for `num_epochs`."""
        return num_epochs if self.num_epochs is None else min(self.num_epochs, num_epochs)

    def image_size(self, image_size):
        """The image size to use for a recipe that asks for `image_size` pixels (a side)."""
        return image_size if self.max_image_size is None else min(self.max_image_size,
                                                                  image_size)


PROFILES = {
    # 96 px is the smallest round size that d2l's NiN (needs >= 67 px) handles comfortably.
    "smoke": Profile("smoke", 512, 256, 1, 96, "seconds, for CI: 512 examples, 1 epoch, <= 96 px"),
    # A NiN at 96 px trains at roughly 60 examples/s on two CPU cores: 2 x 5,000 is minutes.
    "cpu": Profile("cpu", 5_000, 1_000, 2, 96,
                   "a laptop, minutes: 5,000 examples, <= 2 epochs, <= 96 px"),
    "cuda": Profile("cuda", None, None, None, None, "the full recipe, on a CUDA GPU"),
}


def default_profile_name():
    """`cuda` when a CUDA GPU is present, `cpu` otherwise."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def get_profile(name=None):
    """The profile called `name`, else the one named by NIN_COURSE_PROFILE, else the default."""
    chosen = name or os.environ.get(PROFILE_ENV) or default_profile_name()
    if chosen not in PROFILES:
        where = f"the environment variable {PROFILE_ENV}" if name is None else "get_profile"
        raise ValueError(f"unknown run profile {chosen!r} (from {where}); choose one of "
                         f"{', '.join(PROFILES)}, e.g. {PROFILE_ENV}=smoke for a quick run")
    return PROFILES[chosen]


def resolve(profile=None):
    """A Profile from a Profile, a profile's name, or None (the current one, see get_profile)."""
    return profile if isinstance(profile, Profile) else get_profile(profile)
