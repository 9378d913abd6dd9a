"""How the C heap treats the large tensors a job frees and allocates again at every evaluation.

Torch allocates CPU tensors with malloc. glibc serves blocks over its mmap threshold (128 KiB,
rising to at most 32 MiB) straight from the kernel and gives them back on free, so each
evaluation's activations (a bf16 relu1_1 at 512 px is 24 MiB) were faulted in and zeroed afresh.
Keeping freed blocks in the heap during a job, and trimming the heap after it, took a `fast`
job's system time on 2 cores from 1.3-1.7 s to 0.6-1.0 s (bench/RESULTS.md, 2026-12-06).
Trimming after every job made the next job fault its pages in again (1.1-2.2 s of system time
per `fast` job on an AVX2 VM): a worker now trims only once it has been idle a while.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import threading
from collections.abc import Iterator

# mallopt's parameter numbers (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEEP_UP_TO = 1 << 30  # blocks up to 1 GiB come from the heap and return to it


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): its allocator is left as it is
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def keep_freed_memory() -> bool:
    """Make freed blocks stay in the heap for reuse; False where the C library is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    return all(libc.mallopt(option, KEEP_UP_TO) == 1 for option in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD))


def release_freed_memory() -> None:
    """Give the heap's free pages back to the system, so an idle worker does not hold a job's peak."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


class IdleRelease:
    """Gives freed memory back once no job has run for `delay` seconds, so a busy process reuses it."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._lock = threading.Lock()
        self._running = 0
        self._timer: threading.Timer | None = None

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Mark one job running: a pending release waits until no job is."""
        with self._lock:
            self._running += 1
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0:
                    self._schedule()

    def _schedule(self) -> None:
        if self.delay <= 0:
            release_freed_memory()
            return
        self._timer = threading.Timer(self.delay, release_freed_memory)
        self._timer.daemon = True  # a process that exits has nothing to give back
        self._timer.start()
