"""nin_course: the helper package of a course on Network In Network (Lin, Chen & Yan 2013).

The building blocks and the networks, then what is done with them:
- `layers`: the 1x1 convolution, mlpconv (eq. 2), global average pooling;
- `models`: d2l's NiN, the paper's CIFAR NIN, a VGG-style family, FashionNiN;
- `analysis`: reading a network: its layers by name, receptive field, output stride;
- `modes`: `evaluating(model)`, the one way the package runs a model to read a result;
- `reference`: the chapter's own NiN on the d2l package's classes, what ours is checked against;
- `data/`: the data sets as arrays, their files, and loaders;
- `train/`: `fit` and what it needs (config, device, stuck-loss checks, history, checkpoints);
- `runs/`: run profiles and descriptions, the recipes, the paper's results, the reference runs;
- `costs/`: parameters, FLOPs and memory, per layer and side by side;
- `classmaps/`: the class maps (the paper's Fig. 4) and whether they find the object;
- `ui/`: plots, widgets, diagrams, toy problems, number formatting;
- `grading`: the checks the graded exercises call.

The public names below are re-exported lazily (PEP 562): `from nin_course import NiN` imports
`nin_course.models` and nothing else, so that `import nin_course.layers` costs torch and no
more, not ipywidgets, matplotlib, pandas or tqdm (tests/test_package.py checks this).
"""
import importlib
import importlib.util

# module -> the public names it contributes; the one list of what the package re-exports
_EXPORTS = {
    "layers": ("GlobalAvgPool2d", "MLPConv", "conv1x1", "conv1x1_from_linear", "global_avg_pool",
               "linear_at_every_pixel", "unfold_patches"),
    "models": ("HEADS", "VGG_ARCHS", "CifarNiN", "FashionNiN", "ImageClassifier", "NiN", "VGGNiN",
               "init_cnn", "nin_block", "num_parameters", "shape_walk"),
    "costs.resources": ("conv_cost", "resource_summary", "resource_table"),
    "costs.memory": ("measure_peak_memory", "memory_estimate"),
    "costs.compare": ("compare_models", "copy_weights_by_order", "readable"),
    "data.arrays": ("DATASETS", "DataNotFoundError", "ImageArrays", "cache_dir", "data_root",
                    "load_arrays"),
    "data.files": ("DataFileError",),
    "data.loaders": ("ArrayLoader", "channel_stats", "load_data", "subset"),
    "train.config": ("TrainConfig", "Runtime"),
    "train.loop": ("evaluate", "fit"),
    "train.stuck": ("TrainingStuckError",),
    "train.device": ("pick_device",),
    "train.history": ("History",),
    "train.seeding": ("seed_everything",),
    "train.checkpoints": ("load_checkpoint", "save_checkpoint"),
    "runs.profiles": ("PROFILES", "Profile", "get_profile"),
    "runs.spec": ("RunSpec",),
    "runs.paper": ("PAPER_RESULTS", "PaperResult", "cifar_recipe", "paper_result",
                   "train_cifar_nin"),
    "runs.store": ("load_run",),   # how the lessons load a reference run
    "ui.plots": ("LivePlot", "in_notebook", "plot_history", "show_images"),
    "ui.toys": ("best_line_accuracy", "plot_decision_boundaries", "train_full_batch", "xor_strips"),
    "ui.formatting": ("format_bytes", "format_count"),
    "ui.widgets": ("ClassMapViewer", "ConvCostExplorer", "conv_cost_explorer"),
    "classmaps.maps": ("class_maps", "overlay", "plot_class_maps", "upsample"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = list(_MODULE_OF)


def __getattr__(name):
    """Import the module that defines `name` on first use, and keep the name here.

    A submodule's name (`nin_course.ui.plots` after a bare `import nin_course`) imports it, as the
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
