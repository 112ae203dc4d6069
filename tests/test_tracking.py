from __future__ import annotations

import numpy as np

from kbcurator.gaps.tracking import PreviousCluster, match_clusters, trend_of


def _unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_clusters_keep_their_id_across_runs_and_get_a_trend() -> None:
    previous = [
        PreviousCluster("gap-cards", 40, _unit(1, 0, 0)),
        PreviousCluster("gap-refunds", 10, _unit(0, 1, 0)),
        PreviousCluster("gap-gone", 8, _unit(0, 0, 1)),
    ]
    centroids = [_unit(0.05, 1, 0), _unit(1, 0.1, 0), _unit(1, -1, 1)]
    matches, gone = match_clusters(centroids, [25, 41, 7], previous, run_id="r2")
    assert [m.gap_id for m in matches[:2]] == ["gap-refunds", "gap-cards"]
    assert [m.trend for m in matches] == ["growing", "stable", "new"]
    assert matches[2].gap_id.startswith("gap-") and matches[2].gap_id not in {"gap-cards", "gap-refunds"}
    assert [p.gap_id for p in gone] == ["gap-gone"]


def test_one_previous_cluster_is_matched_once() -> None:
    previous = [PreviousCluster("gap-a", 10, _unit(1, 0))]
    matches, gone = match_clusters([_unit(1, 0.01), _unit(1, 0.02)], [10, 10], previous, run_id="r")
    assert sorted(m.trend for m in matches) == ["new", "stable"] and gone == []


def test_trend_thresholds() -> None:
    assert trend_of(5, 0) == "new"
    assert trend_of(12, 10) == "growing" and trend_of(8, 10) == "shrinking" and trend_of(11, 10) == "stable"
