"""Checks for the graded exercises: each raises an AssertionError with a one-line hint.

The tests in `exercises/source/*.ipynb` (run by otter-grader) call these helpers, so that a test
is a few lines long and every failure says what was expected and what was found, e.g.
"your nin_block_variant(1, 96, 11, 4, 0, num_1x1=1) has 3 ReLUs; a NiN block with one 1x1
convolution has 2". Expected values are computed by the package for the learner's own settings
(`num_parameters(NiN(num_1x1=3))`), never typed into a test.

Learner code is called through `call`, so that an exception becomes a failed check that names
the call, and every test runs under `time_limit`, so that an endless loop fails one check with a
TimeoutError instead of hanging the grader.

Checks compare what an answer computes, not how it is written: a layer is named by its kind,
sizes and the zeros it adds (`padding=1` and `padding='same'` name one 3x3 layer), a network
that must keep given weights may keep them as the same tensors or as copies, and a probe's
value is checked on inputs where each likely mistake gives another number. Hints use the
learner's words (layers, shapes, modes), never the package's internals. The checks live in this
module and read networks with `analysis` (layer names, counts, receptive fields, re-exported
here for the tests); tools/grade_worker.py checks both modules for tampering.
"""
import math
import numbers
import os
import signal
import threading
from contextlib import contextmanager

import pandas as pd
import torch
from torch import nn
from torch.nn.parameter import is_lazy

from .analysis import (count_layers, layer_name, leaf_layers,  # noqa: F401 (for the tests)
                       receptive_field)
from .modes import evaluating

CHECK_SECONDS_ENV = "NIN_COURSE_CHECK_SECONDS"
DEFAULT_CHECK_SECONDS = 60  # per test; a correct answer takes a second or two
# The layers compared by `expect_same_layers`; global average pooling may be written several
# ways (GlobalAvgPool2d, AdaptiveAvgPool2d + Flatten, a mean), so it is left out.
LAYER_TYPES = (nn.Conv2d, nn.Linear, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Dropout)


MIN_CHECK_SECONDS = 0.1  # less leaves a check no time to run anything


def check_seconds():
    """The time limit of one test: $NIN_COURSE_CHECK_SECONDS, else DEFAULT_CHECK_SECONDS.

    A value that is not a number of seconds of at least MIN_CHECK_SECONDS raises ValueError
    naming the variable (an alarm of 0 s would never ring; a negative one is an error)."""
    value = os.environ.get(CHECK_SECONDS_ENV, "").strip()
    if not value:
        return DEFAULT_CHECK_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds < MIN_CHECK_SECONDS:
        raise ValueError(f"{CHECK_SECONDS_ENV}={value!r}: give the time limit of one check in "
                         f"seconds, a number of at least {MIN_CHECK_SECONDS:g} (default "
                         f"{DEFAULT_CHECK_SECONDS})")
    return seconds


@contextmanager
def time_limit(seconds=None):
    """Raise TimeoutError if the block runs longer than `seconds` (default: `check_seconds()`).

    Uses SIGALRM, so it works in the main thread on Unix (where Jupyter kernels and otter run
    tests); elsewhere the block runs without a limit. Restores any alarm set outside it.
    """
    seconds = check_seconds() if seconds is None else seconds
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise TimeoutError(f"this check did not finish within {seconds:g} s: does your code loop "
                           "forever, or compute far more than the question asks?")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    outer = signal.setitimer(signal.ITIMER_REAL, seconds)[0]
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.setitimer(signal.ITIMER_REAL, outer)


def in_words(obj):
    """How to name a value in a message: 'None', 'the placeholder ...', 'a list', '1,992,166'."""
    if obj is None:
        return "None"
    if obj is Ellipsis:
        return "still the placeholder `...`"
    if isinstance(obj, bool):
        return repr(obj)
    if isinstance(obj, numbers.Integral):
        return f"{int(obj):,}"
    if isinstance(obj, numbers.Real):
        return f"{float(obj):.6g}"
    if isinstance(obj, str):
        return repr(obj) if len(obj) < 40 else f"a string of {len(obj)} characters"
    return f"a {type(obj).__name__}"


def _not_answered(obj, name):
    """An AssertionError for a name that is missing (otter passes None) or still `...`."""
    if obj is None:
        return AssertionError(f"{name} is not defined: write it in its cell and run that cell")
    return AssertionError(f"{name} is still the placeholder `...`: replace it with your answer "
                          "and run the cell")


def expect_function(obj, name):
    """`obj` if it is callable; otherwise an AssertionError that says what `name` is instead."""
    if obj is None or obj is Ellipsis:
        raise _not_answered(obj, name)
    if not callable(obj):
        raise AssertionError(f"{name} should be a function, but it is {in_words(obj)}")
    return obj


def call(fn, *args, name=None, **kwargs):
    """fn(*args, **kwargs), which must not be None (a function without `return`).

    An exception it raises becomes an AssertionError that names the call.
    """
    name = name or getattr(fn, "__name__", "your function")
    shown = ", ".join([*map(_short_repr, args), *(f"{k}={_short_repr(v)}" for k, v in kwargs.items())])
    try:
        result = fn(*args, **kwargs)
    except TimeoutError:
        raise
    except (Exception, SystemExit, KeyboardInterrupt) as err:  # exit() and a Ctrl-C in the
        # learner's code would end the grader itself: they fail this check instead
        raise AssertionError(f"{name}({shown}) raised {type(err).__name__}: {err}") from err
    if result is None:
        raise AssertionError(f"{name}({shown}) returned None: finish the function, and make it "
                             "`return` its result")
    return result


def _short_repr(value):
    """repr for a call in a message; a model or tensor by its type and shape only."""
    if isinstance(value, torch.Tensor):
        return f"<tensor of shape {tuple(value.shape)}>"
    if isinstance(value, nn.Module):
        return f"<{type(value).__name__}>"
    return repr(value)


def expect_module(obj, name):
    """`obj` if it is an nn.Module; otherwise an AssertionError that says what it is."""
    if obj is None or obj is Ellipsis:
        raise _not_answered(obj, name)
    if not isinstance(obj, nn.Module):
        hint = " (wrap the layers in nn.Sequential(...))" if isinstance(obj, (list, tuple)) else ""
        raise AssertionError(f"{name} should be a torch nn.Module, but it is {in_words(obj)}{hint}")
    return obj


def expect_type(obj, types, name, what=None):
    """`obj` if it is an instance of `types`; otherwise an AssertionError naming `what`."""
    if obj is None or obj is Ellipsis:
        raise _not_answered(obj, name)
    if isinstance(obj, bool) and bool not in _as_tuple(types):
        raise AssertionError(f"{name} should be {what or _type_names(types)}, but it is {obj!r}")
    if not isinstance(obj, types):
        raise AssertionError(f"{name} should be {what or _type_names(types)}, but it is "
                             f"{in_words(obj)}")
    return obj


def _as_tuple(types):
    return types if isinstance(types, tuple) else (types,)


def _type_names(types):
    return " or ".join(f"a {t.__name__}" for t in _as_tuple(types))


def expect_dict(obj, name, keys):
    """`obj` if it is a dict holding every key in `keys`; otherwise a hint naming the first missing."""
    example = "{" + ", ".join(f"{k!r}: ..." for k in keys) + "}"
    expect_type(obj, dict, name, f"a dict {example}")
    for key in keys:
        if key not in obj:
            raise AssertionError(f"{name} has no entry for {key!r}; its keys are {list(obj)}, and "
                                 f"it should look like {example}")
    return obj


def _as_number(got, name):
    """A plain int or float from a Python, NumPy or 0-d torch number."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if got is None or got is Ellipsis:
        raise _not_answered(got, name)
    if isinstance(got, bool) or not isinstance(got, numbers.Real):
        raise AssertionError(f"{name} should be a number, but it is {in_words(got)}")
    if math.isnan(got):
        raise AssertionError(f"{name} is NaN: your code returned NaN (not a number), as 0/0, "
                             "inf - inf or a NaN in a tensor give")
    if math.isinf(got):
        raise AssertionError(f"{name} is infinite: your code returned {got}, as a division by "
                             "zero gives")
    return got


def check_count(name, got, expected, source="", hint=""):
    """`got` must equal the whole number `expected` (computed by the package, see `source`)."""
    got = _as_number(got, name)
    if got != int(got):  # the hint too: a fraction is often the hinted mistake (MiB for bytes)
        raise AssertionError(f"{name} should be a whole number, but it is {got:g}"
                             + (f". {hint}" if hint else ""))
    if int(got) != expected:
        where = f" ({source})" if source else ""
        raise AssertionError(f"{name} is {int(got):,}; expected {expected:,}{where}"
                             + (f". {hint}" if hint else ""))


def check_close(name, got, expected, rel_tol=1e-3, source="", hint=""):
    """`got` must be within `rel_tol` (relative) of `expected`."""
    got = _as_number(got, name)
    if not math.isclose(got, expected, rel_tol=rel_tol, abs_tol=1e-12):
        where = f" ({source})" if source else ""
        raise AssertionError(f"{name} is {got:.6g}; expected {expected:.6g}{where}"
                             + (f". {hint}" if hint else ""))


def check_in_range(name, got, low, high, hint=""):
    """low <= got <= high, for measured values that the package cannot know in advance."""
    got = _as_number(got, name)
    if not (low <= got <= high) or math.isnan(got):
        raise AssertionError(f"{name} is {got:.6g}; it should lie between {low:g} and {high:g}"
                             + (f". {hint}" if hint else ""))


def check_choice(name, got, expected, choices):
    """`got` must be one of `choices` and equal `expected`."""
    if got is None or got is Ellipsis:
        raise _not_answered(got, name)
    if got not in choices:
        raise AssertionError(f"{name} is {in_words(got)}; it should be one of "
                             f"{', '.join(map(repr, choices))}")
    if got != expected:
        raise AssertionError(f"{name} is {got!r}, but the package's numbers say {expected!r}")


# Layers -------------------------------------------------------------------------------------

def plural(n, noun, words=False):
    """'3 ReLUs', '1 ReLU'; with words=True 'one 1x1 convolution', 'no 1x1 convolutions'."""
    number = {0: "no", 1: "one", 2: "two", 3: "three", 4: "four"}.get(n, n) if words else n
    return f"{number} {noun}{'' if n == 1 else 's'}"


def expect_same_layers(got, expected, name, expected_name):
    """`got` has the layers of `expected`: the same counts, kinds, sizes and order.

    The first difference found is reported, counts first: "your block has 3 ReLUs; a NiN block
    with one 1x1 convolution has 2".
    """
    got = expect_module(got, name)
    for kind, kernel, noun in ((nn.ReLU, None, "ReLU"), (nn.Conv2d, (1, 1), "1x1 convolution"),
                               (nn.Conv2d, (3, 3), "3x3 convolution"),
                               (nn.Conv2d, None, "convolution"), (nn.Linear, None, "linear layer"),
                               (nn.MaxPool2d, None, "max-pool"), (nn.Dropout, None, "dropout")):
        n_got, n_expected = count_layers(got, kind, kernel), count_layers(expected, kind, kernel)
        if n_got != n_expected:
            raise AssertionError(f"{name} has {plural(n_got, noun)}; {expected_name} has "
                                 f"{n_expected}")
    mine = [layer_name(m) for m in leaf_layers(got) if isinstance(m, LAYER_TYPES)]
    theirs = [layer_name(m) for m in leaf_layers(expected) if isinstance(m, LAYER_TYPES)]
    for i, (a, b) in enumerate(zip(mine, theirs)):
        if a != b:
            raise AssertionError(f"layer {i + 1} of {name} is {a}; in {expected_name} it is {b} "
                                 f"(layers: {', '.join(theirs)})")
    if len(mine) != len(theirs):
        raise AssertionError(f"{name} has {len(mine)} layers; {expected_name} has {len(theirs)}: "
                             f"{', '.join(theirs)}")


def expect_parameters(got, expected, name, expected_name):
    """`got` has as many trainable parameters as the module `expected`."""
    from .models import num_parameters
    check_count(f"the number of parameters of {name}", num_parameters(expect_module(got, name)),
                num_parameters(expected), source=f"as {expected_name}")


def parameter_values(module):
    """[(parameter, a copy of its values)] of `module`: what `expect_kept` compares with later."""
    return [(p, p.detach().clone()) for p in module.parameters()]


def expect_kept(got, kept, name, what, hint=""):
    """`got` still holds the parameters in `kept` (from `parameter_values`): the same tensors, or
    copies with the same values; otherwise "{name} does not keep {what}. {hint}"."""
    mine = [p.detach() for p in expect_module(got, name).parameters()]
    for tensor, value in kept:
        if not any(p is tensor or (p.shape == value.shape and torch.equal(p, value))
                   for p in mine):
            raise AssertionError(f"{name} does not keep {what}" + (f". {hint}" if hint else ""))


def output_of(model, X, name):
    """model(X) in eval mode without gradients; an exception becomes an AssertionError."""
    model = expect_module(model, name)
    with evaluating(model):
        return call(model, X, name=name)


def expect_output_shape(model, X, expected_shape, name):
    """model(X) is a tensor of shape `expected_shape`."""
    out = output_of(model, X, name)
    if not isinstance(out, torch.Tensor):
        raise AssertionError(f"{name} returned {in_words(out)}, not a tensor")
    if tuple(out.shape) != tuple(expected_shape):
        raise AssertionError(f"{name} turns an input of shape {tuple(X.shape)} into "
                             f"{tuple(out.shape)}; expected {tuple(expected_shape)}")
    return out


def _weighted_layers(module):
    """[(n, layer name, shapes of its weights)] for each leaf layer that holds weights, where n
    numbers it as `expect_same_layers` does (among the LAYER_TYPES layers, from 1)."""
    shown = [m for m in leaf_layers(module) if isinstance(m, LAYER_TYPES) or m.state_dict()]
    return [(n, layer_name(m), [tuple(t.shape) for t in m.state_dict().values()])
            for n, m in enumerate(shown, 1) if m.state_dict()]


def _weights_do_not_fit(got, expected, name, expected_name):
    """Why `expected`'s weights cannot be copied into `got` layer by layer, in a learner's terms;
    None if they can."""
    mine, theirs = _weighted_layers(got), _weighted_layers(expected)
    for (n, a, a_shapes), (_, b, b_shapes) in zip(mine, theirs):
        if a_shapes != b_shapes:
            shapes = "" if a != b else f" (weights of shapes {a_shapes}, not {b_shapes})"
            return f"layer {n} of {name} is {a}; in {expected_name} it is {b}{shapes}"
    if len(mine) != len(theirs):
        return (f"{name} has {plural(len(mine), 'layer')} with weights; {expected_name} has "
                f"{len(theirs)}: {', '.join(b for _, b, _ in theirs)}")
    return None


def expect_same_function(got, expected, X, name, expected_name):
    """With `expected`'s weights copied in (layer by layer, in order), `got` computes the same
    output on X."""
    from .costs.compare import copy_weights_by_order
    got, expected = expect_module(got, name), expected.eval()
    if any(is_lazy(p) for p in got.parameters()):
        output_of(got, X, name)  # an nn.LazyConv2d gets its weights on its first input
    mismatch = _weights_do_not_fit(got, expected, name, expected_name)
    if mismatch:
        raise AssertionError(f"{name} cannot take the weights of {expected_name}: {mismatch}")
    try:
        copy_weights_by_order(expected, got)
    except (ValueError, RuntimeError):
        raise AssertionError(f"{name} cannot take the weights of {expected_name}: its layers "
                             "differ in kind, size or order") from None
    out = expect_output_shape(got, X, output_of(expected, X, expected_name).shape, name)
    with torch.no_grad():
        reference = expected(X)
    if not torch.allclose(out, reference, rtol=1e-4, atol=1e-5):
        diff = (out - reference).abs().max().item()
        raise AssertionError(f"with the same weights, {name} computes something else than "
                             f"{expected_name} (largest difference {diff:.3g}): check the order "
                             "of the layers, their padding, and a ReLU after every convolution")


# Tables -------------------------------------------------------------------------------------

def expect_frame(obj, name, index, columns):
    """A pandas DataFrame whose index holds `index` (in any order) and that has `columns`."""
    if obj is None or obj is Ellipsis:
        raise _not_answered(obj, name)
    if not isinstance(obj, pd.DataFrame):
        raise AssertionError(f"{name} should be a pandas DataFrame, but it is {in_words(obj)}: "
                             "build it with pd.DataFrame(rows).set_index(...)")
    missing = [c for c in columns if c not in obj.columns]
    if missing:
        raise AssertionError(f"{name} lacks the column(s) {missing}; it has {list(obj.columns)}")
    if sorted(map(str, obj.index)) != sorted(map(str, index)):
        raise AssertionError(f"{name} should have one row for each of {list(index)} as its "
                             f"index, but its index is {list(obj.index)}")
    return obj


def row(frame, key, name="results"):
    """The row of the DataFrame `frame` (called `name`) for `key`, or its string."""
    if frame is None or frame is Ellipsis:
        raise _not_answered(frame, name)
    if not isinstance(frame, pd.DataFrame):
        raise AssertionError(f"{name} should be a pandas DataFrame, but it is {in_words(frame)}")
    for label in frame.index:
        if label == key or str(label) == str(key):
            return frame.loc[label]
    raise AssertionError(f"{name} has no row {key!r}; its index is {list(frame.index)}")


# Probes -------------------------------------------------------------------------------------

def zero_logit_case(batch_sizes=(2, 5, 3), zero_shares=(0.3, 0.7, 0.5), num_classes=10):
    """A tiny network in training mode, and batches (X, y) for a probe of zero logits.

    Its logits are ReLU(dropout(X)) (X: (N, num_classes, 1, 1), then global average pooling):
    in evaluation mode logit c of an image is 0 exactly when X[:, c] < 0, which holds for
    `zero_shares[i]` of batch i's values, at places that change from image to image. So the
    share over all batches differs from the first batch's share, from the mean of the batches'
    shares (they hold different numbers of images), and from training mode (dropout).
    """
    generator = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Conv2d(num_classes, num_classes, 1), nn.Dropout(0.5), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(num_classes).view(num_classes, num_classes, 1, 1))
        model[0].bias.zero_()
    batches = []
    for n, share in zip(batch_sizes, zero_shares):
        signs = torch.ones(n * num_classes)
        signs[:round(share * signs.numel())] = -1
        values = (0.5 + torch.rand(signs.numel(), generator=generator)) * signs
        X = values[torch.randperm(signs.numel(), generator=generator)]
        batches.append((X.view(n, num_classes, 1, 1), torch.zeros(n, dtype=torch.long)))
    return model.train(), batches


def _zero_shares(model, batches):
    """[(share of zero logits, number of logits)] per batch, in evaluation mode."""
    found = []
    with evaluating(model):
        for X, _ in batches:
            logits = model(X)  # (len(X), num_classes)
            found.append(((logits == 0).float().mean().item(), logits.numel()))
    return found


def _probe_mistake(got, expected, per_batch, modes, sizes):
    """The hint for a wrong share of zero logits: the mistake that explains `got`.

    `expected`: the right share, over every batch; `per_batch`: [(share, number of logits)];
    `modes`: model.training at each call of the model; `sizes`: the batch sizes, as text."""
    def near(value):
        return math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-9)

    if any(modes):
        return ("the model ran in training mode, where dropout sets values to 0 at random: "
                "switch it to evaluation mode with model.eval() before the loop")
    if 0 < len(modes) < len(per_batch) or (not modes and near(per_batch[0][0])):
        return f"count over all {len(per_batch)} batches of data_iter, not only the first"
    if near(sum(s for s, _ in per_batch) / len(per_batch)):
        return (f"that is the mean of the batches' shares, but the batches hold different "
                f"numbers of images ({sizes}): add up the zero logits and the logits of every "
                "batch, and divide once at the end")
    if near(1 - expected):
        return "that is the share of logits that are not 0"
    return ("count the logits that are exactly 0 over every image, class and batch, and divide "
            "by the number of logits")


def check_zero_logit_share(fn, model, batches, name="zero_logit_share"):
    """fn(model, batches) is the share of `model`'s logits that are exactly 0 over every batch,
    in evaluation mode (dropout off), and leaves `model` in the mode it found it in. A wrong
    share gets the hint of the mistake that explains it (training mode, the first batch only,
    a mean of the batches' shares)."""
    per_batch, was_training, modes = _zero_shares(model, batches), model.training, []
    expected = sum(s * n for s, n in per_batch) / sum(n for _, n in per_batch)
    hook = model.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # dropout's draws: a wrong answer fails alike every time
            got = call(fn, model, batches, name=name)
    finally:
        hook.remove()
    sizes = ", ".join(str(len(X)) for X, _ in batches)
    shown = f"{name}(model, batches of {sizes} images)"
    got = _as_number(got, shown)
    if not math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-9):
        raise AssertionError(f"{shown} is {got:.4g}; expected {expected:.4g}: "
                             + _probe_mistake(got, expected, per_batch, modes, sizes))
    if model.training != was_training:
        now, then = ("training", "evaluation") if model.training else ("evaluation", "training")
        raise AssertionError(f"{name} left the model in {now} mode, but it was in {then} mode: "
                             "put it back in the mode it was in (model.training says which)")
