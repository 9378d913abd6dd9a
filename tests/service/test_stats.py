"""The Redis-kept histograms /metrics serves: labelled series, cumulative buckets, sums."""

from __future__ import annotations

import pytest

from service import stats
from service.jobstore import JobStore


def test_each_label_set_is_its_own_cumulative_series(store: JobStore) -> None:
    for seconds, labels in ((3, ("succeeded", "fast")), (40, ("succeeded", "fast")),
                            (0.5, ("failed", "custom"))):
        stats.observe(store.r, store.prefix, "job_run_seconds", seconds, labels)
    series = {s.labels: s for s in stats.read(store.r, store.prefix, "job_run_seconds")}
    assert set(series) == {("succeeded", "fast"), ("failed", "custom")}
    fast = dict(series["succeeded", "fast"].buckets)
    assert (fast["1.0"], fast["5.0"], fast["30.0"], fast["60.0"], fast["+Inf"]) == (0, 1, 1, 2, 2)
    assert series["succeeded", "fast"].total == 43
    assert dict(series["failed", "custom"].buckets)["1.0"] == 1


def test_an_unlabelled_histogram_has_its_series_before_any_observation(store: JobStore) -> None:
    (empty,) = stats.read(store.r, store.prefix, "job_queue_wait_seconds")
    assert empty.labels == () and empty.total == 0 and dict(empty.buckets)["+Inf"] == 0
    assert stats.read(store.r, store.prefix, "job_run_seconds") == []


def test_observing_with_the_wrong_labels_is_refused(store: JobStore) -> None:
    with pytest.raises(ValueError, match="outcome"):
        stats.observe(store.r, store.prefix, "job_run_seconds", 1.0, ("succeeded",))
