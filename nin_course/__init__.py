"""nin_course: the helper package of a course on Network In Network (Lin, Chen & Yan 2013)."""
from .layers import (GlobalAvgPool2d, MLPConv, conv1x1, conv1x1_from_linear, global_avg_pool,
                     linear_at_every_pixel, unfold_patches)
from .models import (HEADS, VGG_ARCHS, CifarNiN, ImageClassifier, NiN, VGGNiN, init_cnn,
                     nin_block, num_parameters, shape_walk)
from .profiles import PROFILES, Profile, get_profile

__all__ = [
    "GlobalAvgPool2d", "MLPConv", "conv1x1", "conv1x1_from_linear", "global_avg_pool",
    "linear_at_every_pixel", "unfold_patches",
    "HEADS", "VGG_ARCHS", "CifarNiN", "ImageClassifier", "NiN", "VGGNiN", "init_cnn", "nin_block",
    "num_parameters", "shape_walk",
    "PROFILES", "Profile", "get_profile",
]
