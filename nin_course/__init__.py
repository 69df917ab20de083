"""nin_course: the helper package of a course on Network In Network (Lin, Chen & Yan 2013).

The public names below are re-exported lazily (PEP 562): `from nin_course import NiN` imports
`nin_course.models` and nothing else, so that `import nin_course.layers` costs torch and no
more, not ipywidgets, matplotlib, pandas or tqdm (tests/test_package.py checks this).
"""
import importlib
import importlib.util

# module -> the public names it contributes; the one list of what the package re-exports
_EXPORTS = {
    "compare": ("compare_models", "copy_weights_by_order", "readable"),
    "layers": ("GlobalAvgPool2d", "MLPConv", "conv1x1", "conv1x1_from_linear", "global_avg_pool",
               "linear_at_every_pixel", "unfold_patches"),
    "models": ("HEADS", "VGG_ARCHS", "CifarNiN", "ImageClassifier", "NiN", "VGGNiN", "init_cnn",
               "nin_block", "num_parameters", "shape_walk"),
    "profiles": ("PROFILES", "Profile", "get_profile"),
    "resources": ("conv_cost", "count_parameters", "format_bytes", "format_count",
                  "measure_peak_memory", "memory_estimate", "resource_summary", "resource_table"),
    "data": ("DATASETS", "DataFileError", "DataNotFoundError", "ImageArrays", "cache_dir",
             "data_root", "load_arrays"),
    "loaders": ("ArrayLoader", "channel_stats", "load_data", "subset"),
    "config": ("TrainConfig", "Runtime"),
    "spec": ("RunSpec",),
    "training": ("TrainingStuckError", "evaluate", "fit", "pick_device"),
    "history": ("History",),
    "seeding": ("seed_everything",),
    "checkpoints": ("load_checkpoint", "save_checkpoint"),
    "plots": ("LivePlot", "in_notebook", "plot_history", "show_images"),
    "toys": ("best_line_accuracy", "plot_decision_boundaries", "train_full_batch", "xor_strips"),
    "widgets": ("ConvCostExplorer", "conv_cost_explorer"),
    "paper": ("PAPER_RESULTS", "PaperResult", "cifar_recipe", "paper_result", "train_cifar_nin"),
    "classmaps": ("ClassMapViewer", "class_maps", "overlay", "plot_class_maps", "upsample"),
    "runs": ("load_run",),   # how the lessons load a reference run
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = list(_MODULE_OF)


def __getattr__(name):
    """Import the module that defines `name` on first use, and keep the name here.

    A submodule's name (`nin_course.plots` after a bare `import nin_course`) imports it, as the
    eager `__init__` that this replaced allowed.
    """
    module = _MODULE_OF.get(name)
    if module is None:
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}"):
            return importlib.import_module(f".{name}", __name__)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value   # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
