"""Tests for tools/execute_notebooks.py: tqdm bars are stored as the text of their final state.

No kernel: each notebook is made by hand, with the widget state that nbclient records
(nb.metadata.widgets) after a run.
"""
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from tools.execute_notebooks import WIDGET_STATE, WIDGET_VIEW, clean, freeze_progress_bars

FIGURE_SPACE = "\u2007"  # tqdm.notebook's stand-in for a space in its HTML text
STARTED = "epoch 1/2:   0%|          | 0/40 [00:00<?, ?it/s]"  # text/plain taken at creation


def widget_output(model_id, text=STARTED):
    """A display_data output as a widget leaves it: the view, and the text taken at creation."""
    view = {"model_id": model_id, "version_major": 2, "version_minor": 0}
    return new_output("display_data", data={WIDGET_VIEW: view, "text/plain": text})


def notebook(outputs, models):
    """One cell holding `outputs`; `models` (model_id -> state) recorded as nbclient does."""
    nb = new_notebook(cells=[new_code_cell("history = fit(model, train_iter)", outputs=outputs)])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.widgets = {WIDGET_STATE: {
        "state": {model_id: {"model_name": state["_model_name"],
                             "model_module": "@jupyter-widgets/controls",
                             "model_module_version": "2.0.0", "state": state}
                  for model_id, state in models.items()},
        "version_major": 2, "version_minor": 0}}
    return nb


def html_text(text):
    """Text as tqdm.notebook writes it into an HTML widget: escaped, spaces as figure spaces."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(" ", FIGURE_SPACE)


def tqdm_models(box_id, left, value, total, right, bar_style="success"):
    """The four models of one tqdm.notebook bar `box_id`, in their final state."""
    return {
        box_id: {"_model_name": "HBoxModel", "layout": f"IPY_MODEL_{box_id}-layout",
                 "children": [f"IPY_MODEL_{box_id}-{part}" for part in ("left", "bar", "right")]},
        f"{box_id}-layout": {"_model_name": "LayoutModel", "visibility": None},
        f"{box_id}-left": {"_model_name": "HTMLModel", "value": html_text(left)},
        f"{box_id}-bar": {"_model_name": "FloatProgressModel", "min": 0.0, "max": float(total),
                          "value": float(value), "bar_style": bar_style},
        f"{box_id}-right": {"_model_name": "HTMLModel", "value": html_text(right)},
    }


def frozen_text(models, model_id="box"):
    """The stored output of widget `model_id` after freeze_progress_bars."""
    nb = freeze_progress_bars(notebook([widget_output(model_id)], models))
    return nb.cells[0].outputs[0].data


def test_finished_bar_becomes_its_final_text():
    models = tqdm_models("box", "epoch 1/2: 100%", 40, 40,
                         " 40/40 [00:12<00:00, 3.20it/s, loss=2.302, acc=0.104]")
    assert frozen_text(models) == {
        "text/plain": "epoch 1/2: 100%|██████████| 40/40 "
                      "[00:12<00:00, 3.20it/s, loss=2.302, acc=0.104]"}


def test_stopped_bar_shows_how_far_it_got():
    models = tqdm_models("box", "epoch 1/2:  38%", 15, 40, " 15/40 [00:05<00:08, 3.00it/s]",
                         bar_style="danger")
    assert frozen_text(models) == {
        "text/plain": "epoch 1/2:  38%|███▊      | 15/40 [00:05<00:08, 3.00it/s]"}


def test_bar_without_total_is_its_counts():
    # tqdm draws no bar without a total: the whole text is in the right-hand HTML
    models = tqdm_models("box", "", 1, 1, "batches: 12it [00:01, 9.50it/s]", bar_style="info")
    assert frozen_text(models) == {"text/plain": "batches: 12it [00:01, 9.50it/s]"}


@pytest.mark.parametrize("models", [
    {"box": {"_model_name": "IntSliderModel", "value": 3}},
    {"box": {"_model_name": "HBoxModel", "children": ["IPY_MODEL_a", "IPY_MODEL_b"]},
     "a": {"_model_name": "ButtonModel"}, "b": {"_model_name": "HTMLModel", "value": "x"}},
    {},  # no state recorded for this view
], ids=["slider", "other-hbox", "no-state"])
def test_other_widgets_are_left_as_they_are(models):
    assert frozen_text(models) == widget_output("box").data


def test_clean_freezes_bars_before_dropping_the_widget_state():
    models = {**tqdm_models("one", "epoch 1/2: 100%", 40, 40, " 40/40 [00:12<00:00, 3.20it/s]"),
              **tqdm_models("two", "epoch 2/2: 100%", 40, 40, " 40/40 [00:11<00:00, 3.50it/s]")}
    nb = clean(notebook([widget_output("one"), widget_output("two")], models))
    assert "widgets" not in nb.metadata
    assert [output.data for output in nb.cells[0].outputs] == [
        {"text/plain": "epoch 1/2: 100%|██████████| 40/40 [00:12<00:00, 3.20it/s]"},
        {"text/plain": "epoch 2/2: 100%|██████████| 40/40 [00:11<00:00, 3.50it/s]"}]


def test_text_equals_tqdms_own_text_for_a_real_notebook_bar():
    """A tqdm.notebook bar run as fit runs it, its widgets' states read back the way nbclient
    records them: the stored text is what tqdm itself prints for that bar. A fixed clock, and
    the mean rate rather than tqdm's moving average, make the text repeatable."""
    from tqdm.notebook import tqdm
    bar = tqdm(range(7), desc="epoch 1/2 & <all>", display=False, smoothing=0)
    start = bar.start_t
    bar._time = lambda: start + 2.5
    with bar:
        for i in bar:
            bar.set_postfix({"loss": f"{2.3 - i / 10:.3f}"}, refresh=False)
    widgets = [bar.container, *bar.container.children]
    models = {widget.model_id: widget.get_state() for widget in widgets}
    text = frozen_text(models, bar.container.model_id)["text/plain"]
    assert text == bar.container.__repr__(pretty=True)  # IPython's text/plain of the bar
    assert text == "epoch 1/2 & <all>: 100%|██████████| 7/7 [00:02<00:00,  2.80it/s, loss=1.700]"
