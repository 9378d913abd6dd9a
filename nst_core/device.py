"""Device and precision choices, the same code path on CPU and CUDA."""

from __future__ import annotations

import contextlib

import torch

from nst_core.errors import InvalidParams

# Below this many pixels fp32 beats bf16 autocast on CPU (bench/micro.py measures it).
CPU_BF16_MIN_PIXELS = 128 * 128


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when present; asking for a missing CUDA device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParams(f"device '{name}' requested but CUDA is not available here", field="device")
    return device


def fast_dtype(
    device: torch.device, precision: str = "auto", pixels: int | None = None
) -> torch.dtype | None:
    """The autocast dtype for `precision='auto'` at this image size, or None to stay in float32."""
    if precision == "fp32":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # bf16 on CPUs without native support (AVX512-BF16/AMX) is emulated and slower than fp32,
    # and on small images the layout and dtype conversions cost more than the faster convs save.
    if pixels is not None and pixels < CPU_BF16_MIN_PIXELS:
        return None
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to `dtype` on `device`, or a no-op when dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
