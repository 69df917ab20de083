"""nin_course/costs/memory.py: what autograd keeps against hand counts, the estimate against
direct measurements and the CPU profiler's (and, with a GPU, the CUDA allocator's) peaks."""
import pytest
import torch

from nin_course.costs.memory import (measure_peak_memory, memory_estimate, profile_peak_memory,
                                     saved_for_backward)
from nin_course.costs.resources import resource_table
from nin_course.models import CifarNiN
from nin_course.ui.formatting import format_bytes

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_toy_net_memory_estimate_against_hand_counts(toy_net):
    memory = memory_estimate(toy_net(), (3, 16, 16), batch_size=4)
    params = 5354 * 4
    assert memory == {"batch_size": 4, "weights": params, "gradients": params,
                      "optimizer_state": params, "activations": 69632,
                      "training": 3 * params + 69632,           # 133880
                      # the input, held by the caller, and conv -> ReLU, the largest pair
                      "inference_activations": 12288 + 32768 + 32768,
                      "inference": params + 77824}
    half = memory_estimate(toy_net(), (4, 3, 16, 16), dtype=torch.float16, optimizer_slots=2)
    # Adam: 2 slots; 2 bytes per float, the pool's indices stay int64 (16384 bytes)
    assert half["training"] == 4 * 5354 * 2 + (69632 - 16384) // 2 + 16384


def test_toy_net_saved_tensors_against_hand_counts(toy_net):
    """The conv keeps its input, the ReLU its output (not the conv's), the max pool the ReLU's
    output (the same storage: counted once) and its int64 indices, the linear layer the
    flattened pool output: 4 images of 3x16x16, 8x16x16, then 8x8x8 twice (values, indices)."""
    saved = saved_for_backward(toy_net(), (3, 16, 16), batch_size=4)
    images, relu, pool = 4 * 3 * 16 * 16, 4 * 8 * 16 * 16, 4 * 8 * 8 * 8
    assert saved == {"batch_size": 4, "input": 4 * images, "floating": 4 * (images + relu + pool),
                     "integer": 8 * pool, "bool": 0,
                     "total": 4 * (images + relu + pool) + 8 * pool}


def test_nin_saved_tensors_are_far_below_every_layer_output(nin):
    """d2l's NiN at 224x224: autograd keeps 7.32 MiB per image (6.47 MiB of float32
    activations, 0.85 MiB of max-pool indices), not the 12.29 MiB of every layer's output."""
    saved = saved_for_backward(nin, (1, 224, 224))
    MiB = 2**20
    assert round(saved["floating"] / MiB, 2) == 6.47 and round(saved["integer"] / MiB, 2) == 0.85
    assert saved["input"] == 224 * 224 * 4
    assert memory_estimate(nin, (1, 224, 224))["activations"] == saved["total"]
    table = resource_table(nin, (1, 224, 224), depth=2)
    every_output = table["output bytes"].iloc[0] + table["output bytes"][1:-1].sum()
    assert round(every_output / MiB, 2) == 12.29  # the rule that counted every layer's output


def test_extrapolated_saved_bytes_equal_the_measured_ones():
    """memory_estimate measures on 2 and 3 examples and extrapolates: exact, batch norm's
    per-channel statistics (a constant part) included."""
    for model in (CifarNiN(10), CifarNiN(10, batch_norm=True)):
        assert (memory_estimate(model, (3, 32, 32), 7)["activations"]
                == saved_for_backward(model, (3, 32, 32), 7)["total"])


def test_cpu_profiler_peaks_agree_with_the_counts(nin):
    """Inference: at least the largest pair of consecutive activations (one read, one written;
    the input is held before the step). Training: at least what autograd keeps beyond the
    input, at most that plus the gradients (backward allocates them while it frees the saved
    tensors). Both may add a convolution's workspaces, here taken as no larger than the weights."""
    estimate = memory_estimate(nin, (1, 96, 96), batch_size=4)
    inference = profile_peak_memory(nin, (1, 96, 96), 4, train=False)
    pair = estimate["inference_activations"] - 4 * 96 * 96 * 4  # the input is held before
    assert pair <= inference <= pair + estimate["weights"]  # + workspaces, reordered weights
    saved = saved_for_backward(nin, (1, 96, 96), 4)
    peak = profile_peak_memory(nin, (1, 96, 96), 4)
    assert saved["total"] - saved["input"] <= peak <= (saved["total"] + estimate["gradients"]
                                                       + estimate["weights"])


def test_training_estimate_grows_linearly_with_batch_size():
    model = CifarNiN(10)
    training = {n: memory_estimate(model, (3, 32, 32), n)["training"] for n in (1, 2, 5)}
    per_example = training[2] - training[1]
    assert per_example > 0
    assert training[5] == training[1] + 4 * per_example


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_measuring_without_cuda_says_so(toy_net):
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        measure_peak_memory(toy_net(), (3, 16, 16), 4)


@needs_cuda
@pytest.mark.parametrize("train", [True, False])
def test_estimate_is_within_a_factor_of_two_of_the_allocator(nin, train):
    measured = measure_peak_memory(nin, (1, 224, 224), batch_size=64, train=train)
    assert next(nin.parameters()).device.type == "cpu"  # it measured a copy
    memory = memory_estimate(nin, (1, 224, 224), batch_size=64)
    estimate = memory["training" if train else "inference"]
    assert measured / 2 <= estimate <= 2 * measured, (format_bytes(estimate),
                                                       format_bytes(measured))
