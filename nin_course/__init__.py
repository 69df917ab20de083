"""nin_course: the helper package of a course on Network In Network (Lin, Chen & Yan 2013)."""
from .checkpoints import History, load_checkpoint, save_checkpoint, seed_everything
from .classmaps import ClassMapViewer, class_maps, overlay, plot_class_maps, upsample
from .config import Runtime, TrainConfig
from .compare import compare_models, copy_weights_by_order, readable
from .data import (DATASETS, DataFileError, DataNotFoundError, ImageArrays, cache_dir,
                   data_root, load_arrays)
from .layers import (GlobalAvgPool2d, MLPConv, conv1x1, conv1x1_from_linear, global_avg_pool,
                     linear_at_every_pixel, unfold_patches)
from .loaders import ArrayLoader, channel_stats, load_data, subset
from .models import (HEADS, VGG_ARCHS, CifarNiN, ImageClassifier, NiN, VGGNiN, init_cnn,
                     nin_block, num_parameters, shape_walk)
from .paper import PAPER_RESULTS, PaperResult, cifar_recipe, paper_result, train_cifar_nin
from .plots import LivePlot, in_notebook, plot_history, show_images
from .profiles import PROFILES, Profile, get_profile
from .resources import (conv_cost, count_parameters, format_bytes, format_count,
                        measure_peak_memory, memory_estimate, resource_summary,
                        resource_table)
from .spec import RunSpec
from .training import TrainingStuckError, evaluate, fit, pick_device
from .toys import best_line_accuracy, plot_decision_boundaries, train_full_batch, xor_strips
from .widgets import ConvCostExplorer, conv_cost_explorer

__all__ = [
    "compare_models", "copy_weights_by_order", "readable",
    "GlobalAvgPool2d", "MLPConv", "conv1x1", "conv1x1_from_linear", "global_avg_pool",
    "linear_at_every_pixel", "unfold_patches",
    "HEADS", "VGG_ARCHS", "CifarNiN", "ImageClassifier", "NiN", "VGGNiN", "init_cnn", "nin_block",
    "num_parameters", "shape_walk",
    "PROFILES", "Profile", "get_profile",
    "conv_cost", "count_parameters", "format_bytes", "format_count", "measure_peak_memory",
    "memory_estimate", "resource_summary", "resource_table",
    "DATASETS", "DataFileError", "DataNotFoundError", "ImageArrays", "cache_dir", "data_root",
    "load_arrays",
    "ArrayLoader", "channel_stats", "load_data", "subset",
    "TrainConfig", "Runtime", "RunSpec", "TrainingStuckError", "evaluate", "fit", "pick_device",
    "History", "load_checkpoint", "save_checkpoint", "seed_everything",
    "LivePlot", "in_notebook", "plot_history", "show_images",
    "best_line_accuracy", "plot_decision_boundaries", "train_full_batch", "xor_strips",
    "ConvCostExplorer", "conv_cost_explorer",
    "PAPER_RESULTS", "PaperResult", "cifar_recipe", "paper_result", "train_cifar_nin",
    "ClassMapViewer", "class_maps", "overlay", "plot_class_maps", "upsample",
]
