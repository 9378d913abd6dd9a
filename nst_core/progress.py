"""What a run reports to its caller: progress events and the final result (no torch here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image


@dataclass(frozen=True)
class Progress:
    """One progress event. `preview` is set only every `preview_every` iterations."""

    stage: str  # "style_targets" | "optimize" | "done"
    scale: int  # 1-based index of the current scale
    scales: int
    size: tuple[int, int]  # (width, height) being optimized
    iteration: int  # within this scale
    iterations: int  # of this scale
    step: int  # over all scales
    total_steps: int
    losses: dict[str, float]
    elapsed: float  # seconds since the run started
    eta: float | None  # seconds left, estimated from the cost of the steps so far
    preview: Image.Image | None = None

    @property
    def percent(self) -> float:
        """Share of all iterations done, 0..100."""
        return 100.0 * self.step / self.total_steps if self.total_steps else 100.0


# The callback may return True (or raise nst_core.errors.Canceled) to stop the run.
ProgressCallback = Callable[[Progress], bool | None]


@dataclass
class Result:
    """The stylized image plus the run's figures."""

    image: Image.Image
    wall_seconds: float
    iterations: list[int]  # iterations actually run, per scale
    evaluations: int  # forward+backward passes through VGG19
    losses: dict[str, float]  # final loss terms
    style_cache_hits: int = 0
    timings: dict[str, float] = field(default_factory=dict)
