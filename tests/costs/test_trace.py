"""nin_course/costs/trace.py: one traced forward pass against hand-counted shapes, sizes and FLOPs."""
import pytest
import torch

from nin_course.costs.trace import check_input_shape, output_tensors, trace_forward
from nin_course.models import NiN


def test_toy_net_trace_against_hand_counts(toy_net):
    trace = trace_forward(toy_net(), (3, 16, 16), batch_size=4)
    assert trace.input_shape == (3, 16, 16) and trace.batch_size == 4
    assert [name for name, _ in trace.rows] == ["0", "1", "2", "3", "4"]
    assert trace.shapes == {"": (10,), "0": (8, 16, 16), "1": (8, 16, 16), "2": (8, 8, 8),
                            "3": (512,), "4": (10,)}
    assert trace.leaves == [("0", 2048), ("1", 2048), ("2", 512), ("3", 512), ("4", 10)]
    conv, linear = 2 * 3 * 8 * 9 * 16 * 16, 2 * 512 * 10  # a multiply-add is 2 FLOPs
    assert trace.flops["0"] == conv and trace.flops["4"] == linear
    assert trace.flops[""] == trace.total_flops == conv + linear


def test_input_shape_of_an_example_or_a_batch():
    model = NiN()
    assert check_input_shape(model, (1, 224, 224), None) == ((1, 224, 224), 1)
    assert check_input_shape(model, (8, 1, 224, 224), None) == ((1, 224, 224), 8)
    assert check_input_shape(model, [1, 96, 96], 3) == ((1, 96, 96), 3)
    with pytest.raises(ValueError, match="says batch size 8 but batch_size=4"):
        check_input_shape(model, (8, 1, 224, 224), 4)
    with pytest.raises(ValueError, match="takes images"):
        check_input_shape(model, (224, 224), None)


def test_output_tensors_finds_nested_outputs():
    a, b, c = torch.zeros(1), torch.ones(2), torch.full((3,), 2.0)
    assert [t.numel() for t in output_tensors((a, [b, (c, "not a tensor")]))] == [1, 2, 3]
    assert output_tensors(None) == []
