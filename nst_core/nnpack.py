"""NNPACK's one-image Winograd conv with its kernel transformed once, reached through ctypes.

torch calls NNPACK's batch conv, which transforms the kernel at every call: for a 512-channel
VGG19 layer that is 67 MB of transformed kernel per call, which costs more than the product on
maps of 24x32 px and less. NNPACK's inference function can keep the transform between calls, and
work in a buffer it is given instead of allocating one at every call (its workspace cost a third of its
time at 96x128 px); torch exposes neither, but libtorch_cpu exports NNPACK's C functions, so
ctypes calls them.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from pathlib import Path
from typing import NamedTuple

import torch

WT8X8 = 3  # nnp_convolution_algorithm_wt8x8: Winograd F(6x6, 3x3)
PRECOMPUTE, REUSE = 2, 3  # nnp_convolution_transform_strategy
IDENTITY = 0  # nnp_activation_identity
# The transform does not depend on the input's size; the call still wants one.
_NOMINAL = 16


class _Size(ctypes.Structure):
    _fields_ = [("width", ctypes.c_size_t), ("height", ctypes.c_size_t)]


class _Padding(ctypes.Structure):
    _fields_ = [(side, ctypes.c_size_t) for side in ("top", "right", "bottom", "left")]


_KERNEL, _STRIDE, _SAME = _Size(3, 3), _Size(1, 1), _Padding(1, 1, 1, 1)


class Transformed(NamedTuple):
    """A 3x3 kernel in NNPACK's Winograd domain, with the channel counts it was made for."""

    buffer: torch.Tensor
    in_channels: int
    out_channels: int
    zero_bias: torch.Tensor  # NNPACK's output transform reads a bias unconditionally


@functools.cache
def _library() -> ctypes.CDLL | None:
    """libtorch_cpu with NNPACK's inference conv typed, or None where this torch lacks it."""
    path = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:
        return None
    if not (hasattr(lib, "nnp_convolution_inference") and hasattr(lib, "pthreadpool_create")):
        return None
    if not torch._nnpack_available():  # also initialises NNPACK, which fails every call until then
        return None
    lib.nnp_convolution_inference.restype = ctypes.c_int
    lib.nnp_convolution_inference.argtypes = [
        ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_size_t, _Size, _Padding, _Size, _Size,
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,  # input, kernel, bias, output
        ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),  # workspace and its size
        ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,  # activation, args, pool, profile
    ]
    lib.pthreadpool_create.restype = ctypes.c_void_p
    lib.pthreadpool_create.argtypes = [ctypes.c_size_t]
    return lib


def available() -> bool:
    """Whether NNPACK's inference conv can be called here."""
    return _library() is not None


@functools.cache
def _threadpool() -> int:
    return _library().pthreadpool_create(torch.get_num_threads())


_local = threading.local()  # each thread's workspace: NNPACK writes into it during a call


@functools.cache
def _workspace_size(in_channels: int, out_channels: int, height: int, width: int) -> int:
    size = ctypes.c_size_t(0)
    _call(REUSE, in_channels, out_channels, _Size(width, height), None, None, None, None, None,
          workspace_size=size)
    return size.value


def _workspace(size: int) -> torch.Tensor:
    """This thread's workspace, grown to `size` bytes; kept, as torch keeps its NNPACK workspace."""
    buffer = getattr(_local, "workspace", None)
    if buffer is None or buffer.numel() < size:
        buffer = _local.workspace = torch.zeros(size, dtype=torch.uint8)
    return buffer


def _call(strategy: int, in_channels: int, out_channels: int, size: _Size, *pointers: int | None,
          workspace_size: ctypes.c_size_t | None = None) -> None:
    status = _library().nnp_convolution_inference(
        WT8X8, strategy, in_channels, out_channels, size, _SAME, _KERNEL, _STRIDE, *pointers,
        None if workspace_size is None else ctypes.byref(workspace_size), IDENTITY, None, _threadpool(), None)
    if status != 0:
        raise RuntimeError(f"NNPACK's inference conv failed with status {status}")


def transform(kernel: torch.Tensor) -> Transformed:
    """NNPACK's Winograd transform of a float32 (out, in, 3, 3) kernel, for `conv3x3`."""
    out_channels, in_channels = kernel.shape[:2]
    kernel = kernel.detach().float().contiguous()
    nominal = _Size(_NOMINAL, _NOMINAL)
    size = ctypes.c_size_t(0)
    _call(PRECOMPUTE, in_channels, out_channels, nominal, None, None, None, None, None, workspace_size=size)
    buffer = torch.zeros(size.value, dtype=torch.uint8)  # torch aligns it to 64 bytes, as NNPACK needs
    _call(PRECOMPUTE, in_channels, out_channels, nominal, None, kernel.data_ptr(), None, None,
          buffer.data_ptr(), workspace_size=size)
    return Transformed(buffer, in_channels, out_channels, torch.zeros(out_channels))


def conv3x3(x: torch.Tensor, kernel: Transformed, bias: torch.Tensor | None) -> torch.Tensor:
    """A same-padded, stride-1 3x3 conv of float32 NCHW `x` with a kernel from `transform`."""
    if x.dtype != torch.float32 or x.device.type != "cpu":
        raise TypeError(f"NNPACK convolves float32 CPU tensors, not {x.dtype} on {x.device}")
    x = x.contiguous()
    n, _, height, width = x.shape
    out = torch.empty(n, kernel.out_channels, height, width, dtype=x.dtype)
    bias = kernel.zero_bias if bias is None else bias.detach().float().contiguous()
    size = ctypes.c_size_t(_workspace_size(kernel.in_channels, kernel.out_channels, height, width))
    workspace = _workspace(size.value)
    for image in range(n):
        _call(REUSE, kernel.in_channels, kernel.out_channels, _Size(width, height), x[image].data_ptr(),
              kernel.buffer.data_ptr(), bias.data_ptr(), out[image].data_ptr(), workspace.data_ptr(),
              workspace_size=size)
    return out
