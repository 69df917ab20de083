"""Repeatable runs: one call seeds every random number generator a run draws from."""
import os
import random

import numpy as np
import torch


def seed_everything(seed, deterministic=False):
    """Seed Python's, NumPy's and torch's generators (CPU and CUDA) with `seed`; returns it.

    deterministic=True also makes torch choose deterministic kernels (warning where it has
    none), at some cost in speed; deterministic=False leaves those settings as they are.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32); got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to repeat
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False  # benchmarking may pick different kernels per run
    return seed
