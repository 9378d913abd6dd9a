"""What this CPU can do, read without torch, so it can shape how torch starts."""

from __future__ import annotations

import functools
import os
from pathlib import Path

# libgomp's spin before a waiting thread sleeps, in its own units (100000 about 1 ms).
GOMP_SPINCOUNT = "10000"


def has_native_bf16(flags: frozenset[str]) -> bool:
    """Whether CPU flags (as /proc/cpuinfo names them) include bf16 arithmetic in hardware."""
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def prefers_winograd(flags: frozenset[str]) -> bool:
    """Whether fp32 convs run faster by NNPACK's Winograd than by oneDNN: CPUs without AVX512.

    NNPACK's x86 kernels are AVX2; on an AVX512 Xeon oneDNN's direct convs were as fast or faster
    up to 512 px (bench/micro.py: 0.66x-1.09x, 2026-12-06), and every bf16 CPU has AVX512.
    """
    return "avx512f" not in flags


@functools.cache
def flags() -> frozenset[str]:
    """The first CPU's flags from /proc/cpuinfo; none where there is no such file (not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def quiet_openmp_between_ops() -> None:
    """Let OpenMP's threads spin only briefly between ops where NNPACK's pool shares the cores.

    Spinning OpenMP threads starve NNPACK's Winograd convs (nst_core/winograd.py): on 2 AVX2
    cores the 512 px scale took 14.1 s with libgomp's default spin (about 3 ms) and 10.8 s with
    none (bench/RESULTS.md, second session of 2026-12-06). A spin of about 0.1 ms catches the next
    op without starving NNPACK: `fast` jobs 2-8% shorter than with none (median 5%), `balanced`
    5-10% (bench/RESULTS.md, second session of 2026-12-07). Only takes effect before torch is
    imported; values already in the environment win.
    """
    if prefers_winograd(flags()):
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # for OpenMP runtimes other than libgomp
        os.environ.setdefault("GOMP_SPINCOUNT", GOMP_SPINCOUNT)
