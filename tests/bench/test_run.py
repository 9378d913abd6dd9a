"""bench/run.py's summary of repeated runs: the figures that go into bench/RESULTS.md."""

from __future__ import annotations

from pathlib import Path

from bench.run import Run, median_run


def _run(wall: float, cpu: float, engine: float, peak: float) -> Run:
    return Run("fast", Path("out.png"), wall=wall, cpu=cpu, peak_mb=peak, evaluations=36,
               extra={"engine_seconds": engine})


def test_repeated_runs_report_the_median_and_every_wall():
    runs = [_run(13.7, 24.0, 10.9, 1300), _run(13.0, 23.0, 10.6, 1368), _run(12.5, 22.0, 10.2, 1350)]
    row = median_run(runs)
    assert row.wall == 13.0 and row.cpu == 23.0 and row.extra["engine_seconds"] == 10.6
    assert row.peak_mb == 1368
    assert row.extra["walls"] == [13.7, 13.0, 12.5]  # the last run's own wall, not the median


def test_one_run_is_its_own_row():
    run = _run(12.0, 22.0, 10.0, 1300)
    assert median_run([run]) is run
    assert "walls" not in run.extra
