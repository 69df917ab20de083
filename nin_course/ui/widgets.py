"""Interactive controls for the lessons (ipywidgets).

- `conv_cost_explorer()` (lesson 01): sliders for one convolution's shape that show, live, its
  parameters and FLOPs next to those of a 1x1 convolution with the same channels (from
  `costs.resources.conv_cost`).
- `ClassMapViewer` (lesson 08): images and classes to browse, with the class's map and the map
  laid over the image (from `classmaps.maps`).

Outside a browser (a saved notebook, a terminal) a control shows itself as plain text of its
current state, so a static copy still reads well.
"""
import html

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure

from ..classmaps.maps import class_maps, image_hwc, overlay
from ..costs.resources import conv_cost
from ..modes import evaluating
from .plots import figure_png

KERNEL_SIZES = (1, 3, 5, 7, 9, 11)  # odd, so that padding='same' keeps H x W without copies


class LiveControl:
    """What every control here shares: redraw on any change, show as text outside Jupyter.

    A subclass sets `widget` (the whole control) and defines `update()` (redraw) and `text()`
    (its current state as plain text).
    """

    def _on_change(self, change):
        self.update()

    def __repr__(self):
        return self.text()

    def _repr_mimebundle_(self, **kwargs):
        """The live control in Jupyter, and the text for viewers without widgets."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = self.text()
        return bundle


class ConvCostExplorer(LiveControl):
    """Sliders for (in_channels, out_channels, kernel_size, size) and a live cost table.

    The sliders are the attributes `in_channels`, `out_channels`, `kernel_size` and `size`
    (an image of size x size pixels, padding 'same', stride 1); moving one recomputes the
    table (`costs`, `text`, and the HTML in `output`). `widget` is the whole control.
    """

    def __init__(self, in_channels=192, out_channels=128, kernel_size=3, size=28):
        if kernel_size not in KERNEL_SIZES:
            raise ValueError(f"kernel_size must be one of {KERNEL_SIZES}; got {kernel_size!r}")
        self.in_channels = _slider(widgets.IntSlider, "in_channels", value=in_channels,
                                   min=1, max=1024)
        self.out_channels = _slider(widgets.IntSlider, "out_channels", value=out_channels,
                                    min=1, max=1024)
        self.kernel_size = _slider(widgets.SelectionSlider, "kernel_size", value=kernel_size,
                                   options=KERNEL_SIZES)
        self.size = _slider(widgets.IntSlider, "height = width", value=size, min=1, max=224)
        self.output = widgets.HTML()
        for slider in self.sliders:
            slider.observe(self._on_change, names="value")
        self.widget = widgets.VBox([*self.sliders, self.output])
        self.update()

    @property
    def sliders(self):
        return (self.in_channels, self.out_channels, self.kernel_size, self.size)

    def costs(self):
        """{'kxk': (parameters, FLOPs), '1x1': (parameters, FLOPs)} for the current values.

        The keys are fixed, not '3x3', '5x5', ...: at kernel_size=1 those two would be one key.
        """
        c_in, c_out, k, size = (s.value for s in self.sliders)
        return {"kxk": conv_cost(c_in, c_out, k, size, size),
                "1x1": conv_cost(c_in, c_out, 1, size, size)}

    def rows(self):
        """[(label, parameters, FLOPs)] as formatted strings: the kxk conv, the 1x1, their ratio."""
        costs, k = self.costs(), self.kernel_size.value
        (k_params, k_flops), (p1, f1) = costs["kxk"], costs["1x1"]
        k_label = f"{k}x{k}"
        return [(f"{k_label} conv", f"{k_params:,}", f"{k_flops:,}"),
                ("1x1 conv", f"{p1:,}", f"{f1:,}"),
                (f"{k_label} / 1x1", f"{k_params / p1:.2f}×", f"{k_flops / f1:.2f}×")]

    def text(self):
        """The current table as plain text (what a static notebook or a terminal shows)."""
        c_in, c_out, k, size = (s.value for s in self.sliders)
        lines = [(f"Conv2d({c_in}, {c_out}, kernel_size={k}) on {c_in} x {size} x {size}, "
                  "padding 'same'"),
                 f"{'':<16}{'parameters':>14}{'FLOPs':>18}"]
        lines += [f"{label:<16}{params:>14}{flops:>18}" for label, params, flops in self.rows()]
        return "\n".join(lines)

    def update(self):
        """Recompute the table from the sliders' values and show it."""
        head = "<tr><th></th>" + "".join(_cell("th", h) for h in ("parameters", "FLOPs")) + "</tr>"
        body = "".join(f"<tr><td>{html.escape(label)}</td>{_cell('td', params)}"
                       f"{_cell('td', flops)}</tr>" for label, params, flops in self.rows())
        self.output.value = f"<table>{head}{body}</table>"


def _cell(tag, text):
    """One right-aligned table cell with room on its left: JupyterLab's tables have no gap."""
    return f"<{tag} style='text-align: right; padding-left: 2em'>{html.escape(text)}</{tag}>"


def _slider(kind, description, **kwargs):
    """One labelled slider of the explorer, all of them the same width."""
    return kind(description=description, style={"description_width": "110px"},
                layout=widgets.Layout(width="420px"), **kwargs)


def conv_cost_explorer(in_channels=192, out_channels=128, kernel_size=3, size=28):
    """A `ConvCostExplorer`; leave it as the last line of a cell to display it.

    The defaults are the 3x3 branch of GoogLeNet's Inception 3a without its 1x1 reduction
    (192 x 28 x 28 in, 128 out; Szegedy et al. 2014, table 1).
    """
    return ConvCostExplorer(in_channels, out_channels, kernel_size, size)


class ClassMapViewer(LiveControl):
    """Browse images and classes: the image, the class's map, and the map laid over the image.

    model: a NIN (see `class_maps`); X: the model's inputs (N, C, H, W) (normalised as in
    training); images: the same N images for display, uint8 (N, H, W, C); labels: their N
    classes; classes: the class names. The controls are the attributes `index` (which image),
    `class_index` (which class's map; it starts at the predicted class of each image) and
    `alpha`. Changing one redraws `image` (a PNG) and `info` (HTML); `widget` is the whole
    control, `text()` its current state as plain text.
    """

    def __init__(self, model, X, images, labels, classes, alpha=0.5):
        if not len(X) == len(images) == len(labels):
            raise ValueError(f"X, images and labels must hold the same number of images; got "
                             f"{len(X)}, {len(images)} and {len(labels)}")
        self.maps = class_maps(model, X).cpu()  # (N, K, h, w)
        with evaluating(model):
            self.probs = torch.softmax(model(X), dim=1).cpu()  # (N, K)
        self.images, self.classes = images, list(classes)
        self.labels = [int(y) for y in labels]
        self.index = widgets.IntSlider(value=0, min=0, max=len(X) - 1, description="image")
        self.class_index = widgets.Dropdown(options=[(c, k) for k, c in enumerate(self.classes)],
                                            value=self.predicted(0), description="class map")
        self.alpha = widgets.FloatSlider(value=alpha, min=0, max=1, step=0.05,
                                         description="overlay")
        self.image = widgets.Image(format="png")
        self.info = widgets.HTML()
        self.index.observe(self._on_index, names="value")
        for control in (self.class_index, self.alpha):
            control.observe(self._on_change, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.index, self.class_index, self.alpha]),
                                    self.info, self.image])
        self.update()

    def predicted(self, i):
        """The class the model predicts for image i."""
        return int(self.probs[i].argmax())

    def text(self):
        """The current image's true class, prediction, top classes, and the map shown."""
        i, k = self.index.value, self.class_index.value
        top = torch.topk(self.probs[i], min(3, len(self.classes)))
        ranked = ", ".join(f"{self.classes[int(c)]} {p:.0%}" for p, c in zip(*top))
        return (f"image {i}: true class {self.classes[self.labels[i]]}, predicted "
                f"{self.classes[self.predicted(i)]} (top: {ranked})\n"
                f"map of class {self.classes[k]}: mean {self.maps[i, k].mean():.3f}, "
                f"max {self.maps[i, k].max():.3f} (max over all classes "
                f"{self.maps[i].max():.3f})")

    def render(self):
        """PNG bytes of three panels: the image, the class's map, the map over the image."""
        i, k = self.index.value, self.class_index.value
        fig = Figure(figsize=(6.6, 2.4), layout="constrained")
        axes = fig.subplots(1, 3)
        top = float(self.maps[i].max()) or 1.0  # one scale for every class of this image
        axes[0].imshow(image_hwc(self.images[i]))
        axes[0].set_title(f"true: {self.classes[self.labels[i]]}", fontsize=9)
        axes[1].imshow(self.maps[i, k].numpy(), cmap="jet", vmin=0, vmax=top)
        H, W = self.maps.shape[-2:]
        axes[1].set_title(f"map {self.classes[k]} ({H}×{W})", fontsize=9)
        axes[2].imshow(overlay(self.images[i], self.maps[i, k], self.alpha.value, vmax=top))
        axes[2].set_title("upsampled, over the image", fontsize=9)
        for ax in axes:
            ax.axis("off")
        return figure_png(fig)

    def update(self):
        """Redraw the picture and the text for the current controls."""
        self.image.value = self.render()
        self.info.value = "<pre>" + html.escape(self.text()) + "</pre>"

    def _on_index(self, change):
        predicted = self.predicted(change["new"])
        if self.class_index.value != predicted:
            self.class_index.value = predicted  # which redraws, through _on_change
        else:
            self.update()
