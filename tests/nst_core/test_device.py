"""Precision choice: bf16 convs only where the CPU does bf16 in hardware; Winograd only on AVX2 CPUs."""

from __future__ import annotations

import platform

import pytest
import torch

from nst_core import cpu
from nst_core.device import fast_dtype

# A Xeon with AVX512 but no BF16: oneDNN would emulate bf16 there, about 3x slower than fp32.
AVX512_ONLY = frozenset(["fpu", "sse2", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"])


@pytest.mark.parametrize(("flags", "native"), [
    (AVX512_ONLY, False),
    (AVX512_ONLY | {"avx512_bf16"}, True),
    (AVX512_ONLY | {"amx_tile", "amx_bf16"}, True),
    (frozenset(), False),
])
def test_bf16_only_with_hardware_support(flags: frozenset[str], native: bool) -> None:
    assert cpu.has_native_bf16(flags) is native


@pytest.mark.parametrize(("flags", "winograd"), [
    (frozenset(["fpu", "sse2", "avx2", "fma"]), True),
    (AVX512_ONLY, False),
    (AVX512_ONLY | {"amx_tile", "amx_bf16"}, False),
])
def test_winograd_convs_only_on_cpus_without_avx512(flags: frozenset[str], winograd: bool) -> None:
    assert cpu.prefers_winograd(flags) is winograd


@pytest.mark.skipif(platform.system() != "Linux" or platform.machine() != "x86_64",
                    reason="/proc/cpuinfo flags are read on x86-64 Linux only")
def test_the_flags_are_read_from_this_machine() -> None:
    assert {"fpu", "sse2"} <= cpu.flags()


def test_fp32_precision_never_casts_the_convs() -> None:
    assert fast_dtype(torch.device("cpu"), "fp32") is None
