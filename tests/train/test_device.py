"""nin_course/train/device.py: which device, and when a run computes in bf16 or channels-last."""
import pytest
import torch

from nin_course.train.config import Runtime
from nin_course.train.device import bf16_supported, pick_device, uses_bf16, uses_channels_last


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="not a device"):
        pick_device("gpu")
    if not torch.cuda.is_available():
        assert pick_device().type in ("cpu", "mps")
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda")


def test_precision_fp32_turns_bf16_off_and_auto_follows_the_hardware():
    cpu, cuda, mps = torch.device("cpu"), torch.device("cuda"), torch.device("mps")
    for device in (cpu, cuda, mps):
        assert not uses_bf16(Runtime(precision="fp32"), device)
    assert uses_bf16(Runtime(), cuda)  # "auto": bf16 on every CUDA GPU
    assert uses_bf16(Runtime(precision="bf16"), cpu)  # asked for
    assert uses_bf16(Runtime(), cpu) == bf16_supported(cpu) == \
        torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert not uses_bf16(Runtime(precision="bf16"), mps)


def test_channels_last_on_cuda_and_the_cpu_only():
    for device in ("cpu", "cuda"):
        assert uses_channels_last(Runtime(), torch.device(device)) == Runtime().channels_last
        assert not uses_channels_last(Runtime(channels_last=False), torch.device(device))
    assert not uses_channels_last(Runtime(channels_last=True), torch.device("mps"))
