"""Device and precision choices, the same code path on CPU and CUDA."""

from __future__ import annotations

from typing import NamedTuple

import torch

from nst_core import cpu, winograd
from nst_core.errors import InvalidParams


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when present; asking for a missing CUDA device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParams(f"device '{name}' requested but CUDA is not available here", field="device")
    return device


class ConvMode(NamedTuple):
    """How VGG19's convs run: in `dtype` (None: float32), and by Winograd (fp32 on CPU only)."""

    dtype: torch.dtype | None = None
    winograd: bool = False


def conv_mode(device: torch.device, precision: str = "auto") -> ConvMode:
    """The conv mode of a job with `precision` on `device`."""
    return ConvMode(fast_dtype(device, precision), use_winograd(device, precision))


def fast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The dtype the convs run in for `precision='auto'`, or None to stay in float32."""
    if precision == "fp32":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # With native bf16 (AVX512-BF16/AMX) bf16 wins at every size a job uses (bench/micro.py: 1.25x
    # at 64x48, 2.2x at 512x384). oneDNN also "supports" bf16 on plain AVX512 by emulating it,
    # and that is about 3x slower than fp32 (bench/micro.py on such a Xeon): fp32 there.
    native = cpu.has_native_bf16(cpu.flags())
    return torch.bfloat16 if native and torch.ops.mkldnn._is_mkldnn_bf16_supported() else None


def use_winograd(device: torch.device, precision: str = "auto") -> bool:
    """Whether `precision='auto'` runs fp32 CPU convs by Winograd (nst_core/winograd.py)."""
    return (device.type == "cpu" and precision == "auto" and cpu.prefers_winograd(cpu.flags())
            and winograd.available())
