"""The one job contract: statuses, and the progress model the engine's events map onto.

The job store, the API's views, the client SDK and the bench all read statuses from here.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from nst_core.progress import Progress  # a plain dataclass: no torch


class JobStatus(StrEnum):
    """Where a job is in its life; the last three are terminal."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        """True for succeeded, failed and canceled: nothing changes the job any more."""
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})


def lua_is_terminal() -> str:
    """The store scripts' `is_terminal(status)`, generated from TERMINAL so the two never differ."""
    tests = " or ".join(f"s == '{s}'" for s in sorted(TERMINAL))
    return f"local function is_terminal(s) return {tests} end\n"


class JobProgress(BaseModel):
    """Where a running job is: scale i of n, iteration, overall percent, loss terms, ETA."""

    stage: str = Field(description="style_targets | optimize | done")
    scale: int
    scales: int
    size: list[int] = Field(description="[width, height] being optimized now.")
    iteration: int
    iterations: int
    step: int
    total_steps: int
    percent: float
    losses: dict[str, float]
    elapsed_seconds: float
    eta_seconds: float | None

    @classmethod
    def from_engine(cls, p: Progress) -> JobProgress:
        """The one mapping of an engine progress event (less its image) to the API's model."""
        return cls(
            stage=p.stage, scale=p.scale, scales=p.scales, size=list(p.size),
            iteration=p.iteration, iterations=p.iterations, step=p.step,
            total_steps=p.total_steps, percent=round(p.percent, 2),
            losses={k: float(v) for k, v in p.losses.items()},
            elapsed_seconds=round(p.elapsed, 3),
            eta_seconds=None if p.eta is None else round(p.eta, 3),
        )
