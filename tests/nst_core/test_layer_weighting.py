"""Style-layer weighting by the number of positions a Gram matrix is taken on."""

from __future__ import annotations

import pytest

from nst_core.losses import layer_positions, position_weights

LAYERS = {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0, "relu5_1": 1.0}


@pytest.mark.parametrize(("layer", "expected"), [
    ("relu1_1", 128 * 96), ("conv1_2", 128 * 96), ("relu2_1", 64 * 48), ("relu3_4", 32 * 24),
    ("relu4_1", 16 * 12), ("relu5_1", 8 * 6), ("conv5_4", 8 * 6),
])
def test_positions_halve_per_block(layer, expected):
    assert layer_positions((128, 96), layer) == expected


def test_odd_sizes_are_floored_like_the_pooling():
    # 37x21: relu2_1 18x10, relu3_1 9x5, relu4_1 4x2, relu5_1 2x1 (max_pool2d floors)
    assert [layer_positions((37, 21), f"relu{b}_1") for b in (2, 3, 4, 5)] == [180, 45, 8, 2]


def test_deep_layers_of_a_small_style_weigh_less():
    w = position_weights(LAYERS, (128, 96), full_at=1024)
    assert w["relu1_1"] == w["relu2_1"] == 1.0  # 12288 and 3072 positions
    assert w["relu3_1"] == pytest.approx(768 / 1024)
    assert w["relu4_1"] == pytest.approx(192 / 1024)
    assert w["relu5_1"] == pytest.approx(48 / 1024)
    assert w["relu5_1"] < w["relu4_1"] < w["relu3_1"]


def test_a_large_style_keeps_every_weight_and_base_weights_multiply():
    base = dict(LAYERS, relu5_1=0.5)
    assert position_weights(base, (1024, 768), full_at=1024) == base
    half = position_weights(base, (512, 256), full_at=1024)  # relu5_1: 32x16 = 512 positions
    assert half["relu5_1"] == pytest.approx(0.5 * 512 / 1024)


def test_zero_turns_the_weighting_off():
    assert position_weights(LAYERS, (32, 32), full_at=0) == LAYERS
