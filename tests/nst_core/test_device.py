"""Precision choice: bf16 convs only where the CPU does bf16 in hardware; Winograd only on AVX2 CPUs,
with OpenMP spinning briefly there."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest
import torch

from nst_core import cpu
from nst_core.device import fast_dtype
from tests.support.stack import ROOT

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


@pytest.mark.parametrize("preset_by_user", [False, True])
def test_openmp_spins_briefly_on_winograd_cpus_unless_the_user_says(preset_by_user: bool) -> None:
    # The environment is read when torch loads libgomp, so the check runs in a fresh process.
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    if preset_by_user:
        env["GOMP_SPINCOUNT"] = "123"
    probe = "import os, nst_core; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"
    run = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         timeout=60, cwd=ROOT, check=True)
    if preset_by_user:
        expected = "123 PASSIVE" if cpu.prefers_winograd(cpu.flags()) else "123 None"
    elif cpu.prefers_winograd(cpu.flags()):
        expected = f"{cpu.GOMP_SPINCOUNT} PASSIVE"
    else:
        expected = "None None"
    assert run.stdout.strip() == expected
