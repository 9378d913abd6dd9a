"""Parameters of one style-transfer run: one frozen, validated model with documented defaults.

No torch here: the API validates job parameters with this same model.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CONTENT_LAYERS_DEFAULT: dict[str, float] = {"relu4_2": 1.0}
STYLE_LAYERS_DEFAULT: dict[str, float] = {
    "relu1_1": 1.0,
    "relu2_1": 1.0,
    "relu3_1": 1.0,
    "relu4_1": 1.0,
    "relu5_1": 1.0,
}

# Why these: the deepest style layer's Gram, taken on a few hundred positions, describes the
# style's objects (a portrait's eyes) as much as its brushwork. Clipping each relu5_1 channel
# at its 75th percentile over the style keeps the widespread, large-scale brushwork (Van Gogh's
# swirls, Picasso's planes) and drops what fires in few places; bench/RESULTS.md has the sheet.
STYLE_CLIP_DEFAULT: dict[str, float] = {"relu5_1": 0.75}
CONTENT_WEIGHT_DEFAULT = 0.03
# Why the coarse scales hold the content harder: there a face is a few dozen pixels and its eyes
# a few, so at 0.03 the style redrew the astronaut's face (the scream and candy put dark holes
# where her eyes are and bent her mouth), and the last scale cannot draw it back. At 0.1 on the
# coarse scales the face keeps its layout; the last scale, at 0.03, still paints the style's
# strokes over it. 0.1 everywhere kept faces too but fell short of pastiche's style figures
# (bench/RESULTS.md, 2026-12-03).
COARSE_CONTENT_WEIGHT_DEFAULT = 0.1
DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?)$"

# Paper names of every VGG19 feature the extractor can return.
LAYER_NAMES: tuple[str, ...] = tuple(
    f"{kind}{block}_{i}"
    for block, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
    for i in range(1, n + 1)
    for kind in ("conv", "relu")
)

Preset = Literal["fast", "balanced", "high"]


class Schedule(BaseModel):
    """Coarse-to-fine schedule: the long side of each scale and the iterations spent there."""

    model_config = ConfigDict(frozen=True)

    sizes: tuple[int, ...]
    iterations: tuple[int, ...]


class PresetSpec(NamedTuple):
    """One preset: its coarse-to-fine schedule and the weight of its previous-scale style term."""

    fractions: tuple[float, ...]
    iterations: tuple[int, ...]
    previous_scale_style_weight: float


# Fractions of the requested size per scale and iterations per scale. Most iterations
# happen at low resolution, where an evaluation is cheap and the optimizer lays down
# the large structures (swirls, strokes) of a painting; the last scale adds the detail.
# Tuned on tubingen x starry_night at 512 px against pastiche's 300-step result
# (bench/RESULTS.md has the figures). A 512 px evaluation costs 16 of the 128 px scale's, so
# `balanced` spends 8 iterations there: 15 cost 30% more time for a sharper, not better, image.
# Above PRESET_SIZE the fractions apply to PRESET_SIZE and the output is reached by doubling
# scales with the last scale's iterations: VGG19 sees strokes in pixels, so starting a 2048 px
# job at 512 px would paint strokes a quarter as large, relative to the picture, as a 512 px job.
# Why `fast` has a previous-scale style term: the 2x upsampling blurs away the strokes the
# 256 px scale painted, and its few 512 px iterations paint fine texture instead, so starry
# night seen at 256 px lost to pastiche (0.309 against a bound of 0.294). Holding the style at
# the previous scale's size too brings it to 0.287; an evaluation then costs about 27% more, so
# `fast` does 6 iterations at 512 px instead of 7, for the same time (bench/RESULTS.md,
# 2026-12-06). `balanced` and `high` are within every bound without it.
PRESETS: dict[str, PresetSpec] = {
    "fast": PresetSpec((0.25, 0.5, 1.0), (20, 10, 6), 0.5),
    "balanced": PresetSpec((0.25, 0.5, 1.0), (50, 20, 8), 0.0),
    "high": PresetSpec((0.25, 0.5, 1.0), (80, 40, 30), 0.0),
}
MIN_SCALE_SIZE = 64
PRESET_SIZE = 512


class StyleParams(BaseModel):
    """Everything that decides one run's output, with defaults that give a good image."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    size: int = Field(512, ge=32, le=4096, description="Long side of the output, in pixels.")
    preset: Preset = Field("balanced", description="Point on the time-quality curve.")
    scales: tuple[int, ...] | None = Field(
        None, description="Explicit long side of each coarse-to-fine scale (overrides the preset)."
    )
    iterations: tuple[int, ...] | None = Field(
        None, description="Iterations per scale (overrides the preset); one entry per scale "
                          "(the preset's scales, plus one per doubling above 512 px)."
    )
    content_weight: float = Field(
        CONTENT_WEIGHT_DEFAULT, ge=0, le=1e6,
        description="Weight of the content loss (relative error on the content layers) at the "
                    "last scale, and at every scale when coarse_content_weight is null.")
    coarse_content_weight: float | None = Field(
        COARSE_CONTENT_WEIGHT_DEFAULT, ge=0, le=1e6,
        description="Weight of the content loss at every scale before the last, where the "
                    "picture's layout (a face's eyes and mouth) is set; null: content_weight.")
    style_weight: float = Field(1.0, ge=0, le=1e6, description="Weight of the style loss.")
    previous_scale_style_weight: float | None = Field(
        None, ge=0, le=1e6,
        description="Weight, relative to the style loss, of a second style loss at the last scale: "
                    "the image seen at the previous scale's size, so that the large strokes painted "
                    "there survive the finer scale; null: the preset's (fast 0.5, others 0).")
    tv_weight: float = Field(2e-5, ge=0, le=1e6, description="Weight of the smoothness (TV) loss.")
    content_layers: dict[str, float] = Field(
        default_factory=lambda: dict(CONTENT_LAYERS_DEFAULT),
        description="VGG19 layers of the content loss and their weights.")
    style_layers: dict[str, float] = Field(
        default_factory=lambda: dict(STYLE_LAYERS_DEFAULT),
        description="VGG19 layers of the style loss and their weights.")
    style_clip: dict[str, float] = Field(
        default_factory=lambda: dict(STYLE_CLIP_DEFAULT),
        description="Per style layer, a quantile (0..1) at which each channel is clipped before its "
                    "Gram is taken: features that fire in few places (eyes, faces) drop out.",
    )
    style_blend: tuple[float, ...] | None = Field(
        None, description="Blend weight per style image (normalized); equal when omitted."
    )
    style_scale: float = Field(
        1.0, gt=0.05, le=4.0, description="Style image size relative to the output's."
    )
    init: Literal["content", "noise", "image"] = Field(
        "content", description="Start from the content photo, from noise, or from a given image.")
    optimizer: Literal["lbfgs", "adam"] = Field("lbfgs", description="Pixel optimizer.")
    color: Literal["none", "luminance", "histogram"] = Field(
        "none", description="Keep the content's colors: luminance-only transfer or histogram match."
    )
    pooling: Literal["max", "avg"] = Field("max", description="VGG19 pooling.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the noise init and of anything random.")
    device: str = Field("auto", pattern=DEVICE_PATTERN,
                        description="auto (CUDA when present), cpu, cuda or cuda:N.")
    precision: Literal["auto", "fp32"] = Field(
        "auto", description="auto: bf16/fp16 convs where the device has them, Winograd fp32 "
                        "convs on AVX2-only CPUs; fp32: plain fp32 convs.")
    preview_every: int = Field(
        25, ge=0, le=10_000, description="Iterations between preview images (0: none)."
    )

    @field_validator("content_layers", "style_layers")
    @classmethod
    def _known_layers(cls, layers: dict[str, float]) -> dict[str, float]:
        if not layers:
            raise ValueError("at least one layer is required")
        unknown = sorted(set(layers) - set(LAYER_NAMES))
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown}; known: relu1_1 ... relu5_4, conv1_1 ...")
        if any(w < 0 for w in layers.values()):
            raise ValueError("layer weights must be non-negative")
        return layers

    @field_validator("style_clip")
    @classmethod
    def _clip_quantiles(cls, clip: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(clip) - set(LAYER_NAMES))
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown}; known: relu1_1 ... relu5_4, conv1_1 ...")
        if any(not 0 < q <= 1 for q in clip.values()):
            raise ValueError("clip quantiles must be in (0, 1]")
        return clip

    @field_validator("style_blend")
    @classmethod
    def _blend_positive(cls, blend: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if blend is not None and (any(w < 0 for w in blend) or sum(blend) <= 0):
            raise ValueError("blend weights must be non-negative and not all zero")
        return blend

    @model_validator(mode="after")
    def _schedule_consistent(self) -> StyleParams:
        if self.iterations is not None:
            if any(n < 0 or n > 100_000 for n in self.iterations):
                raise ValueError("iterations must be between 0 and 100000")
            n_scales = len(self.scales) if self.scales is not None else len(self._preset_sizes())
            if len(self.iterations) != n_scales:
                raise ValueError(f"iterations needs one entry per scale ({n_scales})")
        if self.scales is not None:
            if self.iterations is None:
                raise ValueError("scales needs iterations: one count per scale")
            if not self.scales or any(s < 16 or s > self.size for s in self.scales):
                raise ValueError("scales must be between 16 and size")
            if list(self.scales) != sorted(self.scales):
                raise ValueError("scales must be increasing")
            if self.scales[-1] != self.size:
                raise ValueError("the last scale is the output: it must equal size")
        return self

    def schedule(self) -> Schedule:
        """The coarse-to-fine sizes and iterations this run will use."""
        preset_iters = PRESETS[self.preset].iterations
        sizes = self.scales if self.scales is not None else self._preset_sizes()
        refinements = len(sizes) - len(preset_iters)
        iterations = self.iterations or (*preset_iters, *(preset_iters[-1],) * refinements)
        # Small outputs make several preset scales collapse to one size: merge their work.
        merged: dict[int, int] = {}
        for s, n in zip(sizes, iterations, strict=True):
            merged[s] = merged.get(s, 0) + n
        return Schedule(sizes=tuple(merged), iterations=tuple(merged.values()))

    def _preset_sizes(self) -> tuple[int, ...]:
        """The preset's scales up to PRESET_SIZE, then doublings up to the output size."""
        base = min(self.size, PRESET_SIZE)
        sizes = [max(min(MIN_SCALE_SIZE, self.size), round(f * base)) for f in PRESETS[self.preset].fractions]
        while sizes[-1] < self.size:
            sizes.append(min(self.size, 2 * sizes[-1]))
        return tuple(sizes)

    def content_weight_at(self, index: int, n_scales: int) -> float:
        """The content weight of scale `index` (0-based) of a schedule of `n_scales` scales."""
        coarse = index < n_scales - 1 and self.coarse_content_weight is not None
        return self.coarse_content_weight if coarse else self.content_weight

    def previous_scale_style(self) -> float:
        """Weight of the last scale's style loss on the image at the previous scale's size."""
        if self.previous_scale_style_weight is not None:
            return self.previous_scale_style_weight
        return PRESETS[self.preset].previous_scale_style_weight

    @property
    def total_iterations(self) -> int:
        """Iterations summed over all scales."""
        return sum(self.schedule().iterations)
