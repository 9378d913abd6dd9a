"""The Stylizer end to end on tiny images: convergence, seeds, blends, color, cancel, cache, progress.

Runs use 32-64 px and a handful of iterations in fp32 (bf16 convs only where they are the subject):
on this machine a tiny bf16 step costs more than an fp32 one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from nst_core.color import _RGB2YIQ
from nst_core.device import ConvMode
from nst_core.errors import Canceled, InvalidParams, NstError
from nst_core.losses import content_loss, style_loss, style_target
from nst_core.params import STYLE_LAYERS_DEFAULT, StyleParams
from nst_core.progress import Progress
from nst_core.transfer import scale_dims, to_tensor
from tests.support.images import noise_style, stripes_style

LAYERS = dict(STYLE_LAYERS_DEFAULT)


def params(**kw) -> StyleParams:
    """Tiny single-scale fp32 runs unless told otherwise."""
    base = {"size": 32, "scales": (32,), "iterations": (4,), "precision": "fp32", "preview_every": 0}
    return StyleParams(**{**base, **kw})


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float64)


def mean_abs(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(pixels(a) - pixels(b)).mean())


def yiq(img: Image.Image, dims: tuple[int, int]) -> torch.Tensor:
    x = to_tensor(img, dims, torch.device("cpu"))[0]
    return torch.einsum("ij,jhw->ihw", _RGB2YIQ, x)


def style_distance(extractor, image: Image.Image, style: Image.Image) -> float:
    """Independent fp32 evaluation: the style loss of `image` against `style` at the image's size."""
    cpu = torch.device("cpu")
    x = to_tensor(image, image.size, cpu)
    s = to_tensor(style, scale_dims(style.size, max(image.size)), cpu)
    with torch.no_grad():
        targets = {k: style_target(v) for k, v in extractor(s, LAYERS).items()}
        return style_loss(extractor(x, LAYERS), targets, LAYERS).item()


def content_distance(extractor, image: Image.Image, content: Image.Image) -> float:
    cpu = torch.device("cpu")
    x = to_tensor(image, image.size, cpu)
    c = to_tensor(content, image.size, cpu)
    with torch.no_grad():
        return content_loss(extractor(x, ["relu4_2"]), extractor(c, ["relu4_2"]), {"relu4_2": 1.0}).item()


# --- one coarse-to-fine run, shared by the convergence and progress tests ----------------------------

MAIN = {"size": 64, "scales": (32, 64), "iterations": (30, 10), "preview_every": 10}


@pytest.fixture(scope="module")
def main_run(stylizer, content_image, style_a):
    events: list[Progress] = []
    result = stylizer.stylize(content_image, [style_a], params(**MAIN), on_progress=events.append)
    return result, events


def test_style_loss_falls_and_content_stays_bounded(main_run, extractor, content_image, style_a):
    result, _ = main_run
    start_img = content_image.resize(result.image.size, Image.Resampling.LANCZOS)
    start = style_distance(extractor, start_img, style_a)
    end = style_distance(extractor, result.image, style_a)
    assert end < start / 5, (start, end)
    # the content term stays bounded: with the default (style-heavy) weights at 64 px the result
    # is still closer to the photo's relu4_2 features than the style image itself is
    content_d = content_distance(extractor, result.image, content_image)
    style_as_content = content_distance(extractor, style_a.resize(result.image.size), content_image)
    assert content_d < min(2.0, style_as_content), (content_d, style_as_content)
    assert result.losses["content"] < 2.5
    assert set(result.losses) == {"content", "style", "tv", "total"}
    assert all(np.isfinite(v) for v in result.losses.values())
    assert result.losses["style"] < start / 5


def test_result_has_requested_size_and_aspect(main_run, content_image):
    result, _ = main_run
    img = result.image
    assert img.mode == "RGB"
    assert max(img.size) == 64
    assert img.size == (64, 43)  # 96x64 content, long side 64
    w, h = content_image.size
    assert abs(img.size[0] / img.size[1] - w / h) < 0.05


def test_result_figures(main_run):
    result, _ = main_run
    assert result.iterations == [30, 10]
    assert result.evaluations == 40  # one VGG19 pass per L-BFGS step
    assert result.wall_seconds > 0
    assert result.timings["style_targets"] >= 0 and result.timings["optimize"] > 0


def test_progress_events(main_run):
    result, events = main_run
    stages = [e.stage for e in events]
    assert stages[0] == "style_targets" and stages[-1] == "done"
    assert stages.count("style_targets") == 2  # once per scale
    assert stages.count("optimize") == 40
    total = 40
    prev = events[0]
    for e in events:
        assert e.scales == 2 and e.total_steps == total
        assert e.scale >= prev.scale and e.step >= prev.step and e.elapsed >= prev.elapsed
        assert 0 <= e.percent <= 100
        if e.stage == "optimize":
            assert e.step == prev.step + 1
            assert 1 <= e.iteration <= e.iterations
            if prev.stage == "optimize" and prev.scale == e.scale:
                assert e.iteration == prev.iteration + 1
            assert isinstance(e.eta, float) and e.eta >= 0  # known after the first step
        prev = e
    optimize = [e for e in events if e.stage == "optimize"]
    assert [e.size for e in optimize] == [(32, 21)] * 30 + [(64, 43)] * 10
    assert [e.scale for e in optimize] == [1] * 30 + [2] * 10
    assert events[-1].percent == 100.0 and events[-1].step == total
    assert optimize[-1].eta == pytest.approx(0.0, abs=1e-6)
    assert optimize[0].eta > optimize[-5].eta
    assert set(optimize[-1].losses) >= {"content", "style", "tv", "total"}
    previews = [e for e in optimize if e.preview is not None]
    assert [(e.scale, e.iteration) for e in previews] == [(1, 10), (1, 20), (1, 30), (2, 10)]
    for e in previews:
        assert isinstance(e.preview, Image.Image) and e.preview.size == e.size
    if events[-1].preview is not None:  # the final event may carry the result itself
        assert events[-1].preview.tobytes() == result.image.tobytes()


# --- reproducibility -------------------------------------------------------------------------------


def test_same_seed_same_image(stylizer, content_image, style_a):
    p = params(size=64, scales=(32, 64), iterations=(3, 2), seed=7)
    a = stylizer.stylize(content_image, [style_a], p).image
    b = stylizer.stylize(content_image, [style_a], p).image
    assert a.tobytes() == b.tobytes()


def test_warm_up_changes_no_job(content_image, style_a):
    """A worker warms its engine up in setup: the jobs after it come out byte for byte the same,
    and the warm-up's own style leaves nothing in the style cache."""
    from nst_core.transfer import Stylizer

    p = params(size=64, scales=(32, 64), iterations=(3, 2), seed=7)
    cold = Stylizer(weights="original", device="cpu").stylize(content_image, [style_a], p)
    warmed = Stylizer(weights="original", device="cpu")
    warmed.warm_up()
    assert warmed.grams.hits == 0 and len(warmed.grams) == 0
    run = warmed.stylize(content_image, [style_a], p)
    assert run.image.tobytes() == cold.image.tobytes()
    assert run.style_cache_hits == 0


def test_noise_init_is_seeded(stylizer, content_image, style_a):
    def run(seed: int) -> Image.Image:
        p = params(init="noise", seed=seed, iterations=(3,))
        return stylizer.stylize(content_image, [style_a], p).image

    a, b, c = run(1), run(1), run(2)
    assert a.tobytes() == b.tobytes()
    assert mean_abs(a, c) > 5
    # noise init starts far from the photo
    content_run = stylizer.stylize(content_image, [style_a], params(iterations=(3,))).image
    assert mean_abs(a, content_run) > 5


def test_zero_iterations_returns_the_init(stylizer, content_image, style_a):
    out = stylizer.stylize(content_image, [style_a], params(iterations=(0,))).image
    assert out.tobytes() == content_image.resize(out.size, Image.Resampling.LANCZOS).tobytes()
    init = noise_style(seed=99).resize((48, 32))
    p = params(iterations=(0,), init="image")
    out = stylizer.stylize(content_image, [style_a], p, init_image=init).image
    assert mean_abs(out, init.resize(out.size, Image.Resampling.LANCZOS)) < 1


def test_coarse_content_weight_acts_on_the_coarse_scales_only(stylizer, extractor, content_image, style_a):
    """The coarse scale's content weight decides how much photo survives into the last scale."""
    def run(coarse: float, final: float) -> Image.Image:
        p = params(size=64, scales=(32, 64), iterations=(15, 0), content_weight=final,
                   coarse_content_weight=coarse)
        return stylizer.stylize(content_image, [style_a], p).image

    held, free = run(coarse=100.0, final=0.0), run(coarse=0.0, final=100.0)
    assert content_distance(extractor, held, content_image) < content_distance(extractor, free, content_image)
    assert style_distance(extractor, free, style_a) < style_distance(extractor, held, style_a)


def test_previous_scale_style_holds_the_style_at_the_previous_size(stylizer, extractor, content_image,
                                                                   style_a):
    """The last scale's second style term keeps the picture's style as seen at the previous scale's
    size, which the upsampling and the fine scale's texture would otherwise lose."""
    def run(weight: float, last: int = 10) -> Image.Image:
        p = params(size=64, scales=(32, 64), iterations=(10, last), previous_scale_style_weight=weight)
        return stylizer.stylize(content_image, [style_a], p).image

    def seen_small(image: Image.Image) -> float:
        small = image.resize(scale_dims(image.size, 32), Image.Resampling.BICUBIC)
        return style_distance(extractor, small, style_a)

    assert seen_small(run(4.0)) < 0.9 * seen_small(run(0.0))
    # it acts at the last scale only: with no iterations there, the weight changes nothing
    assert mean_abs(run(4.0, last=0), run(0.0, last=0)) == 0


# --- multiple styles ------------------------------------------------------------------------------


def test_style_blend(stylizer, extractor, content_image, style_a, style_b):
    def p(blend=None) -> StyleParams:
        return params(iterations=(12,), style_blend=blend)

    only_a = stylizer.stylize(content_image, [style_a], p()).image
    only_b = stylizer.stylize(content_image, [style_b], p()).image
    a10 = stylizer.stylize(content_image, [style_a, style_b], p((1.0, 0.0))).image
    a01 = stylizer.stylize(content_image, [style_a, style_b], p((0.0, 1.0))).image
    half = stylizer.stylize(content_image, [style_a, style_b], p((0.5, 0.5))).image
    assert mean_abs(only_a, only_b) > 5  # the two styles really pull apart
    assert mean_abs(a10, only_a) < 1
    assert mean_abs(a01, only_b) < 1
    assert mean_abs(half, only_a) > 5 and mean_abs(half, only_b) > 5
    # the half blend sits between the two: nearer B's style than A alone is, and vice versa
    assert style_distance(extractor, half, style_b) < style_distance(extractor, only_a, style_b)
    assert style_distance(extractor, half, style_a) < style_distance(extractor, only_b, style_a)
    # weights are normalized: (2, 2) is the same blend as (0.5, 0.5)
    same = stylizer.stylize(content_image, [style_a, style_b], p((2.0, 2.0))).image
    assert mean_abs(same, half) < 1


# --- color preservation ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def color_runs(stylizer, content_image, style_a):
    return {
        mode: stylizer.stylize(content_image, [style_a], params(iterations=(10,), color=mode)).image
        for mode in ("none", "luminance", "histogram")
    }


def test_luminance_keeps_content_chroma(color_runs, content_image):
    dims = color_runs["none"].size
    ref = yiq(content_image, dims)
    chroma_err = {m: (yiq(img, dims)[1:] - ref[1:]).abs().mean().item() for m, img in color_runs.items()}
    assert chroma_err["luminance"] < 0.03, chroma_err
    assert chroma_err["none"] > 3 * chroma_err["luminance"], chroma_err
    # luminance-only still transfers the texture: Y differs from the content's
    lum = yiq(color_runs["luminance"], dims)
    assert (lum[0] - ref[0]).abs().mean().item() > 0.03


def test_histogram_runs_and_moves_colors_toward_content(color_runs, content_image, style_a):
    hist = color_runs["histogram"]
    assert hist.size == color_runs["none"].size
    content_mean = pixels(content_image.resize(hist.size)).mean(axis=(0, 1))
    dist = {m: np.linalg.norm(pixels(img).mean(axis=(0, 1)) - content_mean) for m, img in color_runs.items()}
    assert dist["histogram"] < dist["none"], dist
    assert mean_abs(hist, color_runs["none"]) > 3


# --- cancel ---------------------------------------------------------------------------------------


def test_callback_returning_true_cancels_within_one_iteration(stylizer, content_image, style_a):
    seen: list[Progress] = []

    def stop_at_3(e: Progress) -> bool:
        seen.append(e)
        return e.stage == "optimize" and e.step == 3

    with pytest.raises(Canceled) as info:
        stylizer.stylize(content_image, [style_a], params(iterations=(20,)), on_progress=stop_at_3)
    assert info.value.code == "canceled"
    assert max(e.step for e in seen) == 3
    assert [e.stage for e in seen] == ["style_targets", "optimize", "optimize", "optimize"]


def test_callback_raising_canceled(stylizer, content_image, style_a):
    calls = 0

    def raise_at_2(e: Progress) -> None:
        nonlocal calls
        calls += 1
        if e.step == 2:
            raise Canceled("user pressed stop")

    with pytest.raises(Canceled, match="user pressed stop"):
        stylizer.stylize(content_image, [style_a], params(iterations=(20,)), on_progress=raise_at_2)
    assert calls == 3  # style targets, step 1, step 2


def test_callback_returning_none_or_false_does_not_cancel(stylizer, content_image, style_a):
    out = stylizer.stylize(content_image, [style_a], params(iterations=(2,)), on_progress=lambda e: False)
    assert out.iterations == [2]


# --- style cache ----------------------------------------------------------------------------------


def test_style_cache_hits_only_on_second_run(stylizer, content_image):
    style = noise_style(seed=12345)  # a style no other test uses
    p = params(size=64, scales=(32, 64), iterations=(1, 1))
    first = stylizer.stylize(content_image, [style], p)
    second = stylizer.stylize(content_image, [style.copy()], p)  # same pixels, another object
    assert first.style_cache_hits == 0
    assert second.style_cache_hits == 2  # one per scale
    assert second.image.tobytes() == first.image.tobytes()
    # targets are keyed by the style's own size: at style_scale 0.5 the style is needed at 16 px
    # (new) and 32 px (computed by the first run for its first scale)
    third = stylizer.stylize(content_image, [style], p.model_copy(update={"style_scale": 0.5}))
    assert third.style_cache_hits == 1


# --- optimizer and precision ----------------------------------------------------------------------


def test_adam_reduces_style_loss(stylizer, extractor, content_image):
    style = stripes_style(period=4)
    out = stylizer.stylize(content_image, [style], params(optimizer="adam", iterations=(15,))).image
    start = style_distance(extractor, content_image.resize(out.size, Image.Resampling.LANCZOS), style)
    end = style_distance(extractor, out, style)
    assert end < 0.8 * start, (start, end)
    assert pixels(out).min() >= 0 and pixels(out).max() <= 255


@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_precisions_run(stylizer, extractor, content_image, style_a, precision):
    out = stylizer.stylize(content_image, [style_a], params(iterations=(3,), precision=precision))
    assert out.image.size == (32, 21)
    assert all(np.isfinite(v) for v in out.losses.values())
    assert out.losses["style"] < style_distance(
        extractor, content_image.resize(out.image.size, Image.Resampling.LANCZOS), style_a
    )


# --- argument checks ------------------------------------------------------------------------------


def test_init_image_required_for_image_init(stylizer, content_image, style_a):
    with pytest.raises(InvalidParams) as info:
        stylizer.stylize(content_image, [style_a], params(init="image"))
    assert info.value.field == "init"


def test_style_blend_length_must_match(stylizer, content_image, style_a, style_b):
    with pytest.raises(InvalidParams) as info:
        stylizer.stylize(content_image, [style_a, style_b], params(style_blend=(1.0, 1.0, 1.0)))
    assert info.value.field == "style_blend"
    with pytest.raises(InvalidParams):
        stylizer.stylize(content_image, [style_a], params(style_blend=(1.0, 1.0)))


def test_no_style_image(stylizer, content_image):
    with pytest.raises(InvalidParams):
        stylizer.stylize(content_image, [], params())


def test_device_mismatch_is_a_typed_error(stylizer, content_image, style_a):
    # this Stylizer runs on the CPU; a job pinned to a GPU must fail with a typed error, not a crash
    with pytest.raises(NstError) as info:
        stylizer.stylize(content_image, [style_a], params(device="cuda:0"))
    assert isinstance(info.value, InvalidParams) and info.value.field == "device"


def test_output_has_requested_size_when_scales_stop_short(stylizer, content_image, style_a):
    """`size` is the output's long side: explicit scales that end below it are refused up front
    (never a smaller output), and a schedule ending at it gives exactly that long side."""
    with pytest.raises(ValidationError, match="last scale"):
        params(size=64, scales=(32,), iterations=(1,))
    p = params(size=64, scales=(32, 64), iterations=(1, 1))
    assert max(stylizer.stylize(content_image, [style_a], p).image.size) == 64


def test_a_scale_stops_early_once_its_loss_plateaus(stylizer, content_image, style_a):
    events: list[Progress] = []
    result = stylizer.stylize(content_image, [style_a], params(iterations=(1000,)), events.append)
    assert 10 <= result.iterations[0] < 1000
    assert result.evaluations == result.iterations[0]
    # the skipped iterations count as done, so the job still reports 100%
    assert events[-1].percent == 100.0


def test_a_later_scale_gains_from_its_first_step(stylizer, content_image, style_a):
    """The second scale starts L-BFGS from the first scale's curvature: its first step lowers
    the loss, where a cold start would spend it on a probe that leaves the loss unchanged."""
    events: list[Progress] = []
    p = params(size=64, scales=(32, 64), iterations=(8, 2))
    stylizer.stylize(content_image, [style_a], p, events.append)
    second = [e.losses["total"] for e in events if e.stage == "optimize" and e.scale == 2]
    # losses are read back at a scale's first and last iteration: before step 1 and before step 2
    assert len(second) == 2
    assert second[1] < 0.97 * second[0]


def test_convs_cast_once_give_what_autocast_gives(stylizer):
    torch.manual_seed(4)
    x = torch.rand(1, 3, 40, 56)
    layers = [*STYLE_LAYERS_DEFAULT, "relu4_2"]
    bf16 = ConvMode(torch.bfloat16)
    ours = stylizer.features(x, layers, "max", bf16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reference = stylizer.extractor(x.contiguous(memory_format=torch.channels_last), layers, "max")
    for name in layers:
        assert ours[name].dtype == torch.bfloat16
        assert torch.equal(ours[name], reference[name]), name
    # one bf16 copy per process; the float32 extractor (fp32 jobs) is left as it was
    assert stylizer.extractor_for(bf16) is stylizer.extractor_for(bf16)
    assert stylizer.extractor.convs[0].weight.dtype == torch.float32
    assert stylizer.extractor_for(ConvMode()) is stylizer.extractor
