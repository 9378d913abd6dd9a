"""The Gatys et al. optimization: coarse-to-fine pixel optimization against VGG19 features.

`Stylizer` is the split Cog makes between setup (load VGG19 once per process)
and predict (`stylize`, once per job). Progress and cancellation cross in and
out only through the `on_progress` callback.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from nst_core import color, memory
from nst_core.cache import GramCache, image_digest
from nst_core.device import ConvMode, conv_mode, resolve_device
from nst_core.errors import Canceled, InvalidParams
from nst_core.lbfgs import LBFGS, Carried
from nst_core.losses import StyleTarget, content_loss, style_loss, style_target, tv_loss
from nst_core.params import StyleParams
from nst_core.progress import Progress, ProgressCallback, Result
from nst_core.vgg import Extractor

MIN_SIDE = 16  # VGG19 pools four times before relu5_1; smaller inputs have no spatial extent left
LOSS_SYNC_EVERY = 10  # reading a loss value forces a device sync; don't do it every iteration
PLATEAU_GAIN = 0.002  # a scale ends early when LOSS_SYNC_EVERY iterations gain less than this share
ADAM_LR = 0.02  # in 0..1 pixel units
# fp16 gradients underflow without scaling; bf16 and fp32 need none.
FP16_LOSS_SCALE = 1024.0
# A worker with queued jobs starts the next within a second; one idle this long gives its last
# job's memory back (a 2048 px job leaves gigabytes).
RELEASE_AFTER_IDLE_S = 30.0


def scale_dims(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(width, height) with the given long side and the image's aspect ratio."""
    w, h = size
    k = long_side / max(w, h)
    return max(MIN_SIDE, round(w * k)), max(MIN_SIDE, round(h * k))


def to_tensor(image: Image.Image, dims: tuple[int, int], device: torch.device) -> torch.Tensor:
    """RGB PIL image resized to `dims` -> (1, 3, H, W) float tensor in 0..1."""
    if image.size != dims:
        shrinking = dims[0] < image.size[0]
        image = image.resize(dims, Image.Resampling.LANCZOS if shrinking else Image.Resampling.BICUBIC)
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).to(device)


def to_image(x: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) tensor in 0..1 -> RGB PIL image."""
    array = x.detach()[0].float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(array), "RGB")


def _layout(mode: ConvMode) -> torch.memory_format:
    """The memory format `mode`'s convs run fastest in.

    NNPACK reads plain NCHW. With channels_last weights, oneDNN reordered the input of every
    small conv it kept on the Winograd path: NCHW weights cut an evaluation at 512 px to 0.94x
    on an AVX2 CPU (bench/RESULTS.md, 2026-12-07). Elsewhere oneDNN and cuDNN prefer channels_last.
    """
    return torch.contiguous_format if mode.winograd else torch.channels_last


class Stylizer:
    """Holds the VGG19 extractor and the style-target cache of one process; runs jobs."""

    def __init__(self, weights: str = "original", device: str = "auto", cache_entries: int = 64,
                 release_after_idle: float = RELEASE_AFTER_IDLE_S) -> None:
        self.device = resolve_device(device)
        if self.device.type == "cuda":
            # Job sizes repeat (three scales per size), so autotuning each shape once pays off.
            torch.backends.cudnn.benchmark = True
        self.weights = weights
        self.extractor = Extractor.load(weights).to(self.device, memory_format=torch.channels_last)
        self._variants: dict[ConvMode, Extractor] = {ConvMode(): self.extractor}
        self.grams = GramCache(cache_entries)
        memory.keep_freed_memory()
        self._idle_release = memory.IdleRelease(release_after_idle)

    def warm_up(self) -> None:
        """Run one tiny job, so that the process's one-time costs fall in setup, not in a job."""
        # The first passes set up the backend's kernels, and a first Adam job would pay
        # torch.optim's import of torch._dynamo (about 1 s on a CPU): a worker's first job paid them.
        grey = Image.new("RGB", (MIN_SIDE * 4, MIN_SIDE * 3), (128, 128, 128))
        self.stylize(grey, [grey], StyleParams(size=MIN_SIDE * 4, scales=(MIN_SIDE * 4,),
                                               iterations=(2,), preview_every=0))
        self.grams.clear()

    def stylize(
        self,
        content: Image.Image,
        styles: Sequence[Image.Image],
        params: StyleParams,
        on_progress: ProgressCallback | None = None,
        init_image: Image.Image | None = None,
    ) -> Result:
        """Paint `content` in the blend of `styles`; raises Canceled if the callback says stop."""
        blend = self._check(styles, params, init_image)
        torch.manual_seed(params.seed)
        run = _Run(self, content, styles, blend, params, on_progress)
        with self._idle_release.busy():
            return run.execute(init_image)

    def _check(self, styles: Sequence[Image.Image], params: StyleParams,
               init_image: Image.Image | None) -> list[float]:
        if not styles:
            raise InvalidParams("at least one style image is required", field="style")
        if params.style_blend is not None and len(params.style_blend) != len(styles):
            raise InvalidParams(
                f"style_blend has {len(params.style_blend)} weights for {len(styles)} style images",
                field="style_blend",
            )
        if params.init == "image" and init_image is None:
            raise InvalidParams("init='image' needs an init image", field="init")
        if params.device != "auto":
            wanted = resolve_device(params.device)
            if wanted != self.device:
                raise InvalidParams(f"this stylizer runs on {self.device}, not {wanted}", field="device")
        weights = params.style_blend or (1.0,) * len(styles)
        return [w / sum(weights) for w in weights]

    def features(self, x: torch.Tensor, layers: Iterable[str], pooling: str,
                 mode: ConvMode = ConvMode()) -> dict[str, torch.Tensor]:
        """VGG19 features of `x` at `layers`, with the convs run as `mode` says."""
        x = x.contiguous(memory_format=_layout(mode))
        return self.extractor_for(mode)(x, layers, pooling)

    def extractor_for(self, mode: ConvMode) -> Extractor:
        """The extractor with its convs in `mode`'s dtype and layout, made once per process."""
        if mode not in self._variants:
            self._variants[mode] = self.extractor.variant(mode.dtype, _layout(mode), mode.winograd)
        return self._variants[mode]

    def style_grams(self, style: Image.Image, digest: str, long_side: int, params: StyleParams,
                    reference: torch.Tensor | None, mode: ConvMode = ConvMode()) -> dict[str, StyleTarget]:
        """Gram targets of one style at one size; cached by the style's content hash."""
        key = (self.weights, digest, long_side, tuple(sorted(params.style_layers)), params.pooling,
               tuple(sorted(params.style_clip.items())),
               mode, None if reference is None else image_digest(to_image(reference)))
        grams = self.grams.get(key)
        if grams is None:
            s = to_tensor(style, scale_dims(style.size, long_side), self.device)
            if reference is not None:
                s = color.match_histogram(s, reference)
            with torch.no_grad():
                feats = self.features(s, params.style_layers, params.pooling, mode)
            grams = {name: style_target(f, params.style_clip.get(name)) for name, f in feats.items()}
            self.grams.put(key, grams)
        return grams


class _Run:
    """State of one `stylize` call: the schedule, clocks, counters and the callback."""

    def __init__(self, stylizer: Stylizer, content: Image.Image, styles: Sequence[Image.Image],
                 blend: list[float], params: StyleParams, on_progress: ProgressCallback | None) -> None:
        self.s = stylizer
        self.content = content.convert("RGB")
        self.styles = [st.convert("RGB") for st in styles]
        self.digests = [image_digest(st) for st in self.styles]
        self.blend = blend
        self.p = params
        self.on_progress = on_progress
        self.schedule = params.schedule()
        self.dims = [scale_dims(self.content.size, size) for size in self.schedule.sizes]
        self.mode = conv_mode(stylizer.device, params.precision)
        # ETA weighs each remaining iteration by its pixel count: a 512 px step costs ~4x a 256 px one.
        self.work = [w * h * n for (w, h), n in zip(self.dims, self.schedule.iterations, strict=True)]
        self.total_steps = sum(self.schedule.iterations)
        self.step = 0
        self.work_done = 0.0
        self.evaluations = 0
        self.losses: dict[str, float] = {}  # last values read back from the device
        self.cache_hits = 0
        self.timings = {"content_targets": 0.0, "style_targets": 0.0, "optimize": 0.0}
        self.carried: Carried | None = None  # the last L-BFGS scale's, to start the next scale's with
        self.grams_per_scale: list[list[dict[str, StyleTarget]]] = []  # of the scales begun so far
        self.start = time.perf_counter()
        self.opt_start = self.start

    def execute(self, init_image: Image.Image | None) -> Result:
        x: torch.Tensor | None = None
        done_per_scale: list[int] = []
        for index, dims in enumerate(self.dims):
            content_t = to_tensor(self.content, dims, self.s.device)
            targets = self._targets(content_t, index)
            x = self._start_image(x, content_t, dims, init_image)
            t0 = time.perf_counter()
            x, n_done = self._optimize(x, targets, index)
            seconds = time.perf_counter() - t0
            self.timings[f"scale{index + 1}_{dims[0]}x{dims[1]}"] = seconds
            self.timings["optimize"] += seconds
            done_per_scale.append(n_done)
        assert x is not None
        out = x.detach().clamp(0, 1)
        if self.p.color == "luminance":
            out = color.keep_luminance(out, content_t)
        wall = time.perf_counter() - self.start
        self._report("done", len(self.dims) - 1, self.schedule.iterations[-1], out)
        return Result(
            image=to_image(out), wall_seconds=wall, iterations=done_per_scale,
            evaluations=self.evaluations, losses=self.losses, style_cache_hits=self.cache_hits,
            timings={**self.timings, "total": wall},
        )

    def _targets(self, content_t: torch.Tensor, index: int) -> tuple[dict, list[dict]]:
        t0 = time.perf_counter()
        with torch.no_grad():
            content_feats = self.s.features(content_t, self.p.content_layers, self.p.pooling, self.mode)
        content_feats = {k: v.float() for k, v in content_feats.items()}
        self.timings["content_targets"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        long_side = round(self.schedule.sizes[index] * self.p.style_scale)
        reference = content_t if self.p.color == "histogram" else None
        hits_before = self.s.grams.hits
        style_grams = [self.s.style_grams(st, d, long_side, self.p, reference, self.mode)
                       for st, d in zip(self.styles, self.digests, strict=True)]
        self.cache_hits += self.s.grams.hits - hits_before
        self.grams_per_scale.append(style_grams)
        self.timings["style_targets"] += time.perf_counter() - t0
        self._report("style_targets", index, 0, None)
        return content_feats, style_grams

    def _start_image(self, prev: torch.Tensor | None, content_t: torch.Tensor, dims: tuple[int, int],
                     init_image: Image.Image | None) -> torch.Tensor:
        if prev is not None:
            x = F.interpolate(prev.detach(), size=(dims[1], dims[0]), mode="bicubic", align_corners=False)
        elif self.p.init == "noise":
            x = torch.rand(content_t.shape, device=self.s.device)
        elif self.p.init == "image" and init_image is not None:
            x = to_tensor(init_image, dims, self.s.device)
        else:
            x = content_t.clone()
        # The optimized pixels stay in the default layout (L-BFGS flattens them); the copy
        # into channels_last for the convs happens per evaluation and costs nothing visible.
        return x.clamp(0, 1).contiguous().requires_grad_(True)

    def _optimize(self, x: torch.Tensor, targets: tuple[dict, list[dict]],
                  index: int) -> tuple[torch.Tensor, int]:
        content_feats, style_grams = targets
        layers = set(self.p.content_layers) | set(self.p.style_layers)
        loss_scale = FP16_LOSS_SCALE if self.mode.dtype == torch.float16 else 1.0
        content_weight = self.p.content_weight_at(index, len(self.dims))
        previous = self._previous_scale(index)
        terms: dict[str, torch.Tensor] = {}

        def closure() -> torch.Tensor:
            x.grad = None
            feats = self.s.features(x, layers, self.p.pooling, self.mode)
            terms["content"] = content_loss(feats, content_feats, self.p.content_layers)
            terms["style"] = self._style_loss(feats, style_grams)
            if previous is not None:
                # The style targets of the previous scale are cached: this term costs one
                # evaluation at that size (a quarter of the pixels), nothing more.
                weight, dims, grams = previous
                small = F.interpolate(x, size=(dims[1], dims[0]), mode="bilinear", antialias=True,
                                      align_corners=False)
                feats = self.s.features(small, self.p.style_layers, self.p.pooling, self.mode)
                terms["style"] = terms["style"] + weight * self._style_loss(feats, grams)
            terms["tv"] = tv_loss(x)
            loss = (content_weight * terms["content"] + self.p.style_weight * terms["style"]
                    + self.p.tv_weight * terms["tv"])
            (loss * loss_scale).backward()
            if loss_scale != 1.0:
                x.grad.div_(loss_scale)
            terms["total"] = loss.detach()
            self.evaluations += 1
            return loss

        optimizer: LBFGS | torch.optim.Adam
        if self.p.optimizer == "lbfgs":
            # One evaluation per step, no line search: cheap and stable for this problem
            # (as in neural-style); the history carries over from step to step and scale to scale.
            optimizer = self.carried.optimizer_for(x) if self.carried else LBFGS(x)
            self.carried = None  # upsampled into the optimizer: a 2048 px job's peak must not hold both
        else:
            optimizer = torch.optim.Adam([x], lr=ADAM_LR)
        n_iter = self.schedule.iterations[index]
        (w, h) = self.dims[index]
        checkpoint = float("inf")
        n_done = n_iter
        for it in range(1, n_iter + 1):
            optimizer.step(closure)
            if self.p.optimizer == "adam":
                # Adam's steps are local, so projecting back into range is safe; L-BFGS's
                # curvature pairs would be corrupted by it, so it is clamped only between scales.
                with torch.no_grad():
                    x.clamp_(0, 1)
            self.step += 1
            self.work_done += w * h
            synced = it == 1 or it % LOSS_SYNC_EVERY == 0 or it == n_iter
            if synced:
                self.losses = {k: float(v.detach()) for k, v in terms.items()}
            preview = self.p.preview_every and it % self.p.preview_every == 0
            self._report("optimize", index, it, x if preview else None)
            if synced and it % LOSS_SYNC_EVERY == 0 and it < n_iter:
                # A scale whose loss stopped falling has nothing left to give: move on.
                if self.losses["total"] > checkpoint * (1 - PLATEAU_GAIN):
                    self.step += n_iter - it
                    self.work_done += (n_iter - it) * w * h
                    n_done = it
                    break
                checkpoint = self.losses["total"]
        if isinstance(optimizer, LBFGS):
            self.carried = optimizer.carried()
        return x, n_done

    def _style_loss(self, feats: dict[str, torch.Tensor],
                    grams: list[dict[str, StyleTarget]]) -> torch.Tensor:
        return sum(w * style_loss(feats, g, self.p.style_layers)
                   for w, g in zip(self.blend, grams, strict=True))

    def _previous_scale(self, index: int) -> tuple[float, tuple[int, int], list[dict]] | None:
        """(weight, dims, style targets) of the last scale's style term at the previous scale's size."""
        weight = self.p.previous_scale_style()
        if index == 0 or index < len(self.dims) - 1 or weight == 0:
            return None
        return weight, self.dims[index - 1], self.grams_per_scale[index - 1]

    def _report(self, stage: str, index: int, iteration: int, preview: torch.Tensor | None) -> None:
        if self.on_progress is None:
            return
        elapsed = time.perf_counter() - self.start
        eta = None
        if self.work_done:
            setup = self.timings["content_targets"] + self.timings["style_targets"]
            per_unit = (elapsed - setup) / self.work_done
            eta = per_unit * (sum(self.work) - self.work_done)
        event = Progress(
            stage=stage, scale=index + 1, scales=len(self.dims), size=self.dims[index],
            iteration=iteration, iterations=self.schedule.iterations[index], step=self.step,
            total_steps=self.total_steps, losses=dict(self.losses), elapsed=elapsed, eta=eta,
            preview=None if preview is None else to_image(preview),
        )
        if self.on_progress(event) is True:
            raise Canceled()

