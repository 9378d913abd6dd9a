"""StyleParams: defaults, coarse-to-fine schedules, and rejection of invalid combinations."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from nst_core.params import (
    CONTENT_LAYERS_DEFAULT,
    LAYER_NAMES,
    MIN_SCALE_SIZE,
    PRESET_SIZE,
    PRESETS,
    STYLE_LAYERS_DEFAULT,
    StyleParams,
)


def test_defaults_are_valid_and_documented_values():
    p = StyleParams()
    assert p.size == 512
    assert p.preset == "balanced"
    assert p.content_layers == CONTENT_LAYERS_DEFAULT == {"relu4_2": 1.0}
    assert set(p.style_layers) == set(STYLE_LAYERS_DEFAULT) == {
        "relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"
    }  # fmt: skip
    assert p.optimizer == "lbfgs" and p.init == "content" and p.color == "none"
    assert p.device == "auto" and p.precision == "auto" and p.pooling == "max"
    # the default schedule ends at the requested size and is non-empty
    sched = p.schedule()
    assert sched.sizes[-1] == 512
    assert p.total_iterations == sum(sched.iterations) > 0
    # the model round-trips through JSON (the API sends it that way)
    assert StyleParams.model_validate_json(p.model_dump_json()) == p


def test_layer_names_cover_vgg19():
    assert len(LAYER_NAMES) == 32
    assert {"relu1_1", "relu4_2", "relu5_4", "conv1_1", "conv5_4"} <= set(LAYER_NAMES)


def test_default_dicts_are_not_shared_between_instances():
    a, b = StyleParams(), StyleParams()
    assert a.style_layers is not b.style_layers


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_schedule_at_full_size(preset):
    fractions, iters, _ = PRESETS[preset]
    p = StyleParams(size=PRESET_SIZE, preset=preset)
    sched = p.schedule()
    assert sched.sizes == tuple(round(f * PRESET_SIZE) for f in fractions)
    assert sched.iterations == iters
    assert list(sched.sizes) == sorted(sched.sizes) and sched.sizes[-1] == PRESET_SIZE
    # most of the work happens at low resolution
    assert sched.iterations[0] == max(sched.iterations)
    assert p.total_iterations == sum(iters)


@pytest.mark.parametrize("size", [768, 1024, 1536, 2048])
def test_large_outputs_start_where_a_512_px_job_does(size):
    """Strokes keep their size relative to the picture: the coarse scales are a 512 px job's."""
    fractions, iters, _ = PRESETS["balanced"]
    sched = StyleParams(size=size).schedule()
    n = len(fractions)
    assert sched.sizes[:n] == StyleParams(size=PRESET_SIZE).schedule().sizes
    assert sched.iterations[:n] == iters
    refinements = sched.sizes[n:]
    assert refinements[-1] == size and list(refinements) == sorted(refinements)
    assert all(b <= 2 * a for a, b in zip(sched.sizes[n - 1:], refinements, strict=False))
    assert sched.iterations[n:] == (iters[-1],) * len(refinements)


def test_iterations_override_counts_the_refinement_scales():
    assert StyleParams(size=1024, iterations=(5, 4, 3, 2)).schedule().iterations == (5, 4, 3, 2)
    with pytest.raises(ValidationError, match="one entry per scale"):
        StyleParams(size=1024, iterations=(5, 4, 3))


def test_presets_order_time_against_quality():
    totals = [StyleParams(size=512, preset=k).total_iterations for k in ("fast", "balanced", "high")]
    assert totals == sorted(totals) and len(set(totals)) == 3


def test_small_size_merges_collapsed_scales_and_keeps_total_work():
    p = StyleParams(size=96, preset="balanced")
    sched = p.schedule()
    # 0.25 and 0.5 of 96 are both below the minimum scale: they collapse to 64
    iters = PRESETS["balanced"].iterations
    assert sched.sizes == (MIN_SCALE_SIZE, 96)
    assert sched.iterations == (iters[0] + iters[1], iters[2])
    assert p.total_iterations == sum(PRESETS["balanced"].iterations)
    assert len(set(sched.sizes)) == len(sched.sizes)


def test_size_below_min_scale_uses_one_scale():
    sched = StyleParams(size=48, preset="fast").schedule()
    assert sched.sizes == (48,)
    assert sched.iterations == (sum(PRESETS["fast"].iterations),)


def test_explicit_scales_and_iterations():
    p = StyleParams(size=256, scales=(64, 128, 256), iterations=(10, 5, 2))
    sched = p.schedule()
    assert sched.sizes == (64, 128, 256)
    assert sched.iterations == (10, 5, 2)
    assert p.total_iterations == 17


def test_explicit_iterations_follow_preset_scales():
    p = StyleParams(size=512, preset="fast", iterations=(3, 2, 1))
    assert p.schedule().iterations == (3, 2, 1)
    assert p.schedule().sizes == (128, 256, 512)


@pytest.mark.parametrize("scales", [(64, 256), (128,), (32, 64, 128, 192, 256, 256)])
def test_explicit_scales_alone_give_a_usable_schedule(scales):
    """Params that pass validation must always produce a schedule: one entry per scale.
    Scales alone are refused (never a silent iteration count); with their counts they run."""
    with pytest.raises(ValidationError, match="iterations"):
        StyleParams(size=max(scales), scales=scales)
    counts = tuple(range(1, len(scales) + 1))
    sched = StyleParams(size=max(scales), scales=scales, iterations=counts).schedule()
    assert sched.sizes == tuple(dict.fromkeys(scales))
    assert len(sched.iterations) == len(sched.sizes)
    assert all(n > 0 for n in sched.iterations) and sum(sched.iterations) == sum(counts)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"unknown_key": 1},
        {"iterations": (10, 10)},  # balanced has 5 scales
        {"scales": (64, 128), "iterations": (10,)},
        {"scales": (128, 64)},  # decreasing
        {"size": 128, "scales": (64, 256)},  # larger than size
        {"scales": (8, 64)},  # too small
        {"scales": ()},
        {"scales": (64,), "iterations": (-1,)},
        {"style_layers": {"relu9_9": 1.0}},
        {"content_layers": {"pool4": 1.0}},
        {"style_layers": {}},
        {"style_layers": {"relu1_1": -1.0}},
        {"style_blend": (1.0, -0.5)},
        {"style_blend": (0.0, 0.0)},
        {"device": "gpu"},
        {"device": "cuda:x"},
        {"device": "cpu "},
        {"size": 16},
        {"size": 10_000},
        {"content_weight": -1},
        {"coarse_content_weight": -0.1},
        {"style_scale": 0},
        {"init": "random"},
        {"optimizer": "sgd"},
        {"color": "sepia"},
        {"pooling": "min"},
        {"precision": "fp16"},
        {"preset": "ultra"},
        {"seed": -1},
        {"preview_every": -5},
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
def test_invalid_params_raise_validation_error(kwargs):
    with pytest.raises(ValidationError):
        StyleParams(**kwargs)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_device_strings_accepted(device):
    assert StyleParams(device=device).device == device


def test_params_are_frozen():
    p = StyleParams()
    with pytest.raises(ValidationError):
        p.size = 64


def test_unknown_layer_message_names_the_layer():
    with pytest.raises(ValidationError, match="relu9_9"):
        StyleParams(style_layers={"relu9_9": 1.0})


def test_content_weight_is_the_coarse_one_before_the_last_scale():
    p = StyleParams(content_weight=0.03, coarse_content_weight=0.1)
    n = len(p.schedule().sizes)
    assert [p.content_weight_at(i, n) for i in range(n)] == [0.1] * (n - 1) + [0.03]
    # a one-scale job has no coarse scale; null means one weight everywhere
    assert p.content_weight_at(0, 1) == 0.03
    same = StyleParams(content_weight=0.5, coarse_content_weight=None)
    assert [same.content_weight_at(i, 3) for i in range(3)] == [0.5] * 3


def test_default_holds_the_coarse_scales_harder():
    p = StyleParams()
    assert p.coarse_content_weight > p.content_weight


def test_previous_scale_style_weight_is_the_presets_unless_given():
    fast = PRESETS["fast"].previous_scale_style_weight
    assert StyleParams(preset="fast").previous_scale_style() == fast > 0
    assert StyleParams(preset="balanced").previous_scale_style() == 0
    assert StyleParams(preset="fast", previous_scale_style_weight=0).previous_scale_style() == 0
    assert StyleParams(preset="high", previous_scale_style_weight=2.5).previous_scale_style() == 2.5
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        StyleParams(previous_scale_style_weight=-1)
