"""`nst stylize`'s arguments: what reaches StyleParams, and one-line errors for bad values."""

from __future__ import annotations

import pytest

from nst_core.cli import build_parser, main, params_from_args
from nst_core.params import COARSE_CONTENT_WEIGHT_DEFAULT


def parse(*extra: str):
    return params_from_args(build_parser().parse_args(["c.png", "s.png", "-o", "out.png", *extra]))


def test_coarse_content_weight_default_number_and_none():
    assert parse().coarse_content_weight == COARSE_CONTENT_WEIGHT_DEFAULT
    assert parse("--coarse-content-weight", "0.2").coarse_content_weight == 0.2
    p = parse("--coarse-content-weight", "none", "--content-weight", "0.05")
    assert p.coarse_content_weight is None
    # none means the last scale's content weight at every scale, as the API's null does
    assert [p.content_weight_at(i, 3) for i in range(3)] == [0.05, 0.05, 0.05]


def test_bad_coarse_content_weight_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["c.png", "s.png", "-o", str(tmp_path / "out.png"), "--coarse-content-weight", "lots"])
    assert e.value.code == 2
    assert "'lots' is not a number or 'none'" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_previous_scale_style_weight_reaches_the_params():
    assert parse("--preset", "fast").previous_scale_style() == 0.5
    assert parse("--preset", "fast", "--previous-scale-style-weight", "0").previous_scale_style() == 0
    assert parse("--previous-scale-style-weight", "1.5").previous_scale_style_weight == 1.5
