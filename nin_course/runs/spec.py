"""One description of a training run: `RunSpec`, and the one place that builds its loaders.

A `RunSpec` says everything that decides what a run learns: the model (a name in `MODELS` and
its arguments), the data set, the training and test subsets, the input size, normalisation,
augmentation, batch size, seed, and the hyperparameters (a `TrainConfig`). How the run is
carried out (device, precision, progress bar, checkpoint file) is a `Runtime`, kept apart, so
`spec.key()` names the result and nothing else. Every recipe is a function returning a RunSpec
(recipes.py, paper.py, experiments.py); a reference run (catalogue.py, store.py) is a RunSpec
trained once.

```python
spec = fast_recipe("cpu")
model, train_iter, test_iter = spec.build()
history = fit(model, train_iter, test_iter, spec.config)
```
"""
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

from .. import models
from ..data.arrays import load_arrays
from ..data.loaders import ArrayLoader, channel_stats, subset
from ..train.config import TrainConfig, from_plain, plain
from ..train.device import pick_device
from ..train.seeding import seed_everything
from .profiles import resolve


# The networks a RunSpec can name: name -> a function of the model's arguments.
MODELS = {"NiN": models.NiN, "CifarNiN": models.CifarNiN, "VGGNiN": models.VGGNiN,
          "FashionNiN": models.FashionNiN}


@dataclass(frozen=True)
class RunSpec:
    """Everything that decides what a training run learns. Sizes None mean the whole split."""
    name: str                       # a label for people; not part of the key
    model: str | None               # a name in MODELS; None: the caller brings the model
    dataset: str
    batch_size: int
    config: TrainConfig
    model_args: dict = field(default_factory=dict)
    train_size: int | None = None   # training examples (a class-balanced subset); None: all
    test_size: int | None = None
    image_size: int | None = None   # side of the images the model sees; None: as stored
    normalize: bool = False         # subtract the training set's mean, divide by its std
    augment: bool = False           # random crop of the zero-padded image, horizontal flip
    padding: int = 4                # pixels of padding around the image for the random crop
    drop_last: bool = False         # skip each epoch's short last training batch (batch norm)
    seed: int = 0                   # the subsets, the initial weights, the shuffles, dropout
    profile: str | None = None      # the run profile that sized it, if any; not part of the key

    def __post_init__(self):
        if self.model is not None and self.model not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)} (or None); got "
                             f"{self.model!r}")
        if not isinstance(self.config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig; got {type(self.config).__name__}")
        if self.config.seed != self.seed:  # fit seeds with config.seed: keep one seed
            object.__setattr__(self, "config", replace(self.config, seed=self.seed))

    def key(self):
        """A short hash of what changes the result (everything but name and profile)."""
        settings = self.as_dict()
        del settings["name"], settings["profile"]
        text = json.dumps(settings, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def as_dict(self):
        """Plain JSON-friendly values; `RunSpec.from_dict` reads them back."""
        d = {k: v for k, v in asdict(self).items() if k != "config"}
        d["config"] = plain(self.config)
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["config"] = from_plain(TrainConfig, d["config"])
        return cls(**d)

    def build_model(self):
        """A fresh model, seeded with `seed` first so that its initial weights repeat."""
        if self.model is None:
            raise ValueError(f"the run {self.name!r} names no model: pass one to the function "
                             "that trains it")
        seed_everything(self.seed)
        return MODELS[self.model](**self.model_args)

    def data(self, root=None):
        """(arrays, full): the class-balanced subsets the run uses, and the whole data set."""
        full = load_dataset(self.dataset, root)
        return subset(full, self.train_size, self.test_size, self.seed), full

    def loaders(self, root=None, device=None, arrays=None):
        """(train_iter, test_iter): ArrayLoaders on `device` (None: the best one here), as the
        run asks: its subsets, input size, normalisation (the training subset's statistics),
        augmentation and shuffles (seeded). `arrays`: the subsets, if already loaded."""
        arrays = self.data(root)[0] if arrays is None else arrays
        mean, std = channel_stats(arrays.x_train) if self.normalize else (None, None)
        resize = None if self.image_size in (None, arrays.x_train.shape[1]) else self.image_size
        common = dict(device=pick_device(device), resize=resize, mean=mean, std=std)
        train_iter = ArrayLoader(arrays.x_train, arrays.y_train, self.batch_size, shuffle=True,
                                 augment=self.augment, padding=self.padding, seed=self.seed,
                                 drop_last=self.drop_last, **common)
        # evaluation keeps no activations for a backward pass: bigger batches are cheap
        test_iter = ArrayLoader(arrays.x_test, arrays.y_test, 2 * self.batch_size, **common)
        return train_iter, test_iter

    def build(self, root=None, device=None):
        """(model, train_iter, test_iter): a fresh, seeded model and the run's loaders."""
        return self.build_model(), *self.loaders(root, device)

    def describe(self):
        """One line per setting, for printing in a lesson."""
        c = self.config
        size = "as stored" if self.image_size is None else f"{self.image_size}x{self.image_size}"
        augmented = f"crop (padding {self.padding}) + flip" if self.augment else "no"
        args = ", ".join(f"{k}={v!r}" for k, v in self.model_args.items())
        return "\n".join([
            f"recipe          {self.name}",
            f"model           {self.model}({args})",
            f"data            {self.dataset}: {_count(self.train_size)} train / "
            f"{_count(self.test_size)} test",
            f"image size      {size}",
            f"batch size      {self.batch_size}",
            f"epochs          {c.num_epochs}",
            f"optimizer       {c.optimizer}, lr {c.lr}, momentum {c.momentum}, weight decay "
            f"{c.weight_decay}",
            f"lr schedule     {c.lr_schedule or 'constant'}",
            f"label smoothing {c.label_smoothing}",
            f"normalised      {self.normalize}",
            f"augmented       {augmented}",
            f"seed            {self.seed}",
        ])


    def summary(self):
        """One line: '2,500 training examples, 1,000 test examples of fashion-mnist, ...'."""
        def size(n, what):
            return f"all {what}" if n is None else f"{n:,} {what}"
        c = self.config
        pixels = "" if self.image_size is None else f", {self.image_size}x{self.image_size} px"
        schedule = f", {c.lr_schedule} schedule" if isinstance(c.lr_schedule, str) else ""
        return (f"{size(self.train_size, 'training examples')}, "
                f"{size(self.test_size, 'test examples')} of {self.dataset}, "
                f"{c.num_epochs} epoch{'s' if c.num_epochs != 1 else ''}{pixels}, "
                f"batch {self.batch_size}, {c.optimizer} lr {c.lr:g}{schedule}, seed {self.seed}")


def load_dataset(name, root=None):
    """The ImageArrays a RunSpec names: a data set of data/arrays.py (load_arrays), or
    '<data set>-canvas<S>': its images placed at random on S x S blank canvases
    (localisation.canvas_arrays with seed 0; its `test_boxes` say where each object is)."""
    from ..classmaps.localisation import canvas_data, is_canvas_name  # matplotlib, scipy: here
    return canvas_data(name, root).arrays if is_canvas_name(name) else load_arrays(name, root)


def _count(size):
    return "all" if size is None else f"{size:,}"


def with_config(spec, **config):
    """The run with some TrainConfig fields replaced: with_config(spec, num_epochs=2)."""
    return replace(spec, config=replace(spec.config, **config))


def sized(spec, profile=None):
    """`spec` cut down by a run profile (a Profile, its name, or None: NIN_COURSE_PROFILE):
    its examples, epochs and input size capped as the profile says."""
    profile = resolve(profile)
    image_size = spec.image_size
    if image_size is not None:
        image_size = profile.image_size(image_size)
    model_args = dict(spec.model_args)
    if "input_size" in model_args and image_size is not None:
        model_args["input_size"] = image_size
    return replace(spec, train_size=_cap(spec.train_size, profile.train_size),
                   test_size=_cap(spec.test_size, profile.test_size), image_size=image_size,
                   model_args=model_args, profile=profile.name,
                   config=replace(spec.config, num_epochs=profile.epochs(spec.config.num_epochs)))


def _cap(size, cap):
    if cap is None:
        return size
    return cap if size is None else min(size, cap)
