"""nin_course/grading.py: the exercise checks fail with the right one-line hint, and only then."""
import time

import pandas as pd
import pytest
import torch
from torch import nn

from nin_course import grading as g
from nin_course.models import MLPConv, nin_block


def fails(fn, *args, **kwargs):
    """The message of the AssertionError that fn(*args, **kwargs) raises."""
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_time_limit_stops_an_endless_loop_and_restores_the_alarm():
    start = time.perf_counter()
    with pytest.raises(TimeoutError, match="did not finish within 0.2 s"):
        with g.time_limit(0.2):
            while True:
                pass
    assert time.perf_counter() - start < 5
    with g.time_limit(5):  # a fast block is untouched, and no alarm is left behind
        total = sum(range(1000))
    assert total == 499500
    time.sleep(0.3)


def test_time_limit_default_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(g.CHECK_SECONDS_ENV, "0.1")
    assert g.check_seconds() == 0.1
    with pytest.raises(TimeoutError):
        with g.time_limit():
            time.sleep(1)


def test_call_names_the_call_that_raised_or_returned_nothing():
    def broken(x):
        raise ValueError("no")

    def unfinished(x):
        ...

    assert fails(g.call, broken, 3, name="my_fn") == "my_fn(3) raised ValueError: no"
    assert "returned None" in fails(g.call, unfinished, torch.zeros(2, 3), name="f")
    assert "<tensor of shape (2, 3)>" in fails(g.call, unfinished, torch.zeros(2, 3), name="f")
    assert g.call(lambda x: x + 1, 1) == 2


def test_placeholders_and_wrong_types_are_named():
    assert "not defined" in fails(g.expect_function, None, "f")
    assert "placeholder `...`" in fails(g.expect_function, Ellipsis, "f")
    assert fails(g.expect_function, 3, "f") == "f should be a function, but it is 3"
    assert "wrap the layers in nn.Sequential" in fails(g.expect_module, [nn.ReLU()], "block")
    assert fails(g.expect_type, "12", int, "n") == "n should be a int, but it is '12'"
    assert fails(g.expect_type, True, int, "n") == "n should be a int, but it is True"
    assert "has no entry for 3" in fails(g.expect_dict, {1: 0, 2: 0}, "counts", (1, 2, 3))


def test_check_count_compares_whole_numbers_with_a_hint():
    g.check_count("n", 1760, 1760)
    g.check_count("n", torch.tensor(1760), 1760)
    message = fails(g.check_count, "n", 14048, 1760, source="num_parameters(block)", hint="h")
    assert message == "n is 14,048; expected 1,760 (num_parameters(block)). h"
    assert "whole number" in fails(g.check_count, "n", 1760.5, 1760)
    assert "should be a number" in fails(g.check_count, "n", "1760", 1760)


def test_check_close_range_and_choice():
    g.check_close("r", 2.5001, 2.5, rel_tol=1e-3)
    assert "expected 2.5" in fails(g.check_close, "r", 2.6, 2.5)
    g.check_in_range("acc", 0.5, 0, 1)
    assert "between 0 and 1" in fails(g.check_in_range, "acc", 50, 0, 1)
    assert "between 0 and 1" in fails(g.check_in_range, "acc", float("nan"), 0, 1)
    assert "one of" in fails(g.check_choice, "part", "memory", "activations", ("weights", "activations"))
    assert "package's numbers say 'activations'" in fails(
        g.check_choice, "part", "weights", "activations", ("weights", "activations"))


def test_same_layers_reports_the_count_that_differs_first():
    three_relus = nn.Sequential(nn.Conv2d(1, 96, 11, 4), nn.ReLU(), nn.Conv2d(96, 96, 1), nn.ReLU(),
                                nn.Conv2d(96, 96, 1), nn.ReLU())
    message = fails(g.expect_same_layers, three_relus, nin_block(1, 96, 11, 4, 0, num_1x1=1),
                    "your block", "a NiN block with one 1x1 conv")
    assert message == "your block has 3 ReLUs; a NiN block with one 1x1 conv has 2"
    g.expect_same_layers(three_relus, nin_block(1, 96, 11, 4, 0, num_1x1=2), "b", "ref")


def test_same_layers_reports_the_first_layer_that_differs():
    no_padding = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU())
    message = fails(g.expect_same_layers, no_padding, MLPConv(3, (8, 8), 3, 1, 1, micro_kernel_size=3),
                    "yours", "the reference")
    assert message.startswith("layer 3 of yours is Conv2d 8->8 3x3; in the reference it is "
                              "Conv2d 8->8 3x3 pad 1")


def test_same_function_finds_a_missing_relu_that_counts_miss():
    reference = nin_block(3, 8, 3, 1, 1, num_1x1=1)
    relu_first = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.Conv2d(8, 8, 1), nn.ReLU(), nn.ReLU())
    X = torch.randn(2, 3, 6, 6)
    assert "computes something else" in fails(g.expect_same_function, relu_first, reference, X,
                                               "yours", "nin_block")
    g.expect_same_function(nin_block(3, 8, 3, 1, 1, num_1x1=1), reference, X, "copy", "nin_block")


def test_output_shape_and_parameters():
    block = nin_block(1, 4, 3, 1, 0)
    assert "into (2, 4, 6, 6); expected (2, 4, 8, 8)" in fails(
        g.expect_output_shape, block, torch.zeros(2, 1, 8, 8), (2, 4, 8, 8), "block")
    message = fails(g.expect_parameters, block, nin_block(1, 4, 3, 1, 0, num_1x1=1), "block", "ref")
    assert message == "the number of parameters of block is 80; expected 60 (as ref)"


def test_receptive_field_against_hand_computed_values():
    assert g.receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3))) == 5
    assert g.receptive_field(nn.Sequential(nn.Conv2d(1, 1, 2, stride=2), nn.Conv2d(1, 1, 3))) == 6
    assert g.receptive_field(nin_block(1, 96, 11, 4, 0)) == 11
    assert g.receptive_field(nin_block(1, 96, 11, 4, 0, micro_kernel_size=3)) == 11 + 2 * 2 * 4


def test_expect_frame_names_missing_columns_and_rows():
    frame = pd.DataFrame({"params": [1, 2]}, index=[1, 3])
    assert "lacks the column(s) ['test_acc']" in fails(g.expect_frame, frame, "results", (1, 3),
                                                        ("params", "test_acc"))
    assert "index is [1, 3]" in fails(g.expect_frame, frame, "results", (1, 2), ("params",))
    assert "should be a pandas DataFrame" in fails(g.expect_frame, {1: 2}, "results", (1,), ())
    assert g.row(frame, "3")["params"] == 2
    assert "results has no row 2; its index is [1, 3]" in fails(g.row, frame, 2)
    assert "family is still the placeholder" in fails(g.row, Ellipsis, 1, "family")
