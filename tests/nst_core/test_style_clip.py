"""Rare-feature clipping of style targets: what fires in few places drops out of the Gram."""

from __future__ import annotations

import pytest
import torch

from nst_core.losses import style_loss, style_target


def test_clipping_drops_a_feature_that_fires_in_few_places():
    # channel 0 fires everywhere (brushwork), channel 1 in 2 of 64 positions (an eye)
    f = torch.zeros(1, 2, 8, 8)
    f[0, 0] = 1.0
    f[0, 1, 3, 3:5] = 9.0
    plain, clipped = style_target(f), style_target(f, quantile=0.75)
    assert plain.gram[0, 1, 1] > 0  # the rare channel is in the plain Gram ...
    assert clipped.gram[0, 1, 1] == 0  # ... and gone once clipped at its 75th percentile
    assert clipped.gram[0, 0, 0] == pytest.approx(plain.gram[0, 0, 0])


def test_clipped_loss_ignores_the_rare_feature_but_not_the_common_one():
    f = torch.zeros(1, 2, 8, 8)
    f[0, 0] = 1.0
    f[0, 1, 3, 3:5] = 9.0
    target = {"relu5_1": style_target(f, quantile=0.75)}
    without_eye = f.clone()
    without_eye[0, 1] = 0.0
    assert style_loss({"relu5_1": without_eye}, target, {"relu5_1": 1.0}).item() == pytest.approx(0.0)
    faint = f.clone()
    faint[0, 0] = 0.5
    # relative to the unclipped Gram's energy: (0.5 - 0.125)^2 / ||G(f)||^2, G = F F^T / (C H W)
    full = (f.flatten(2) @ f.flatten(2).transpose(1, 2)) / (2 * 64)
    expected = (0.5 - 0.125) ** 2 / full.pow(2).sum().item()
    assert style_loss({"relu5_1": faint}, target, {"relu5_1": 1.0}).item() == pytest.approx(expected)


def test_clip_quantiles_are_validated():
    from pydantic import ValidationError

    from nst_core.params import StyleParams

    assert StyleParams(style_clip={"relu5_1": 0.5}).style_clip == {"relu5_1": 0.5}
    for bad in ({"relu9_9": 0.5}, {"relu5_1": 0.0}, {"relu5_1": 1.5}):
        with pytest.raises(ValidationError):
            StyleParams(style_clip=bad)
