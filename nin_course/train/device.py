"""Where and how a run computes: the device (`pick_device`), bf16 autocast, channels-last.

`Runtime.precision` and `Runtime.channels_last` (config.py) ask; these functions say what a run
on a given device does: bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16/AMX), channels-last
on CUDA and the CPU.
"""
import contextlib

import torch


def pick_device(device=None):
    """`device` if given (a string or torch.device), else CUDA, else Apple's MPS, else the CPU."""
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{device!r} is not a device: use 'cpu', 'cuda', 'cuda:0', 'mps', or "
                         "None to pick the best one available") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} was asked for, but torch finds no CUDA GPU "
                         "here. Pass device=None to use the best device available.")
    return device


def bf16_supported(device):
    """Whether bf16 autocast pays on `device`: CUDA, or a CPU with native bf16 (AVX512-BF16/AMX)."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def uses_bf16(runtime, device):
    """Whether a run with `runtime` on `device` computes in bf16 (see Runtime.precision)."""
    if runtime.precision == "fp32" or device.type not in ("cuda", "cpu"):
        return False
    return runtime.precision == "bf16" or bf16_supported(device)


def autocast(device, bf16):
    """bf16 autocast on `device` (CUDA or CPU) if `bf16`; nothing otherwise."""
    if bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(X, y, device, channels_last):
    """Move a batch to `device` (a no-op for tensors already there)."""
    fmt = torch.channels_last if channels_last and X.ndim == 4 else torch.preserve_format
    return X.to(device, non_blocking=True, memory_format=fmt), y.to(device, non_blocking=True)


def uses_channels_last(runtime, device):
    """Channels-last pays on CUDA (tensor cores) and on the CPU (oneDNN's preferred layout)."""
    return runtime.channels_last and device.type in ("cuda", "cpu")
