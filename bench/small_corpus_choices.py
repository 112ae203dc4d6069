"""How the small-corpus settings of the clusterer were chosen (session 14), on the tuning set only.

BANKING77 train (the set the clusterer's constants are tuned on; every other set and split is for reporting,
``bench/cluster_bench.py``), 8 corpora per size: nested uniform subsamples and skewed draws (``skewed_draw``: a few
intents asked often, most once or twice, as a night's unanswered tickets are), each clustered under four settings:

- ``floor 5, eom``: the smallest gap 5 tickets, "eom" selection (the PCA path before session 14, without its
  fallback to "leaf" when one cluster took over half the corpus);
- ``floor 3, eom``: only the smallest gap lowered;
- ``floor 3, leaf``: the default now;
- ``floor 3, leaf, min_samples 3``: also tried, not adopted.

``min_cluster_size`` is max(floor, round(0.3 sqrt(n))) in each; the reducer is the default's (PCA below 200
tickets, UMAP from 200), so the 199 and 200 rows show what crossing the switch costs under each setting.

    python bench/small_corpus_choices.py [--seeds 8]   # strict NMI / ARI, one line per size and draw
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np
from cluster_bench import RESULTS, embed_cached, read_split, skewed_draw, strict_scores

SETTINGS: dict[str, dict[str, Any]] = {
    "floor 5, eom": {"floor": 5, "cluster_selection_method": "eom"},
    "floor 3, eom": {"floor": 3, "cluster_selection_method": "eom"},
    "floor 3, leaf (default)": {"floor": 3, "cluster_selection_method": "leaf"},
    "floor 3, leaf, min_samples 3": {"floor": 3, "cluster_selection_method": "leaf", "min_samples": 3},
}
SIZES = (50, 100, 150, 199, 200)


def main() -> int:
    from kbcurator.gaps.clustering import TicketClusterer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=8, help="corpora per size and draw")
    args = parser.parse_args()
    texts, truth = read_split("banking77", "train")
    vectors, _ = embed_cached("banking77", "train", texts)
    started = time.perf_counter()
    rows = []
    for draw in ("uniform", "skewed"):
        for size in SIZES:
            scores: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
            for index in range(args.seeds):
                if draw == "uniform":
                    take = np.random.default_rng(23 + index).permutation(len(vectors))[:size]
                else:
                    take = skewed_draw(truth, size, 23 + index)
                sub_truth = [truth[i] for i in take]
                for name, setting in SETTINGS.items():
                    pinned = {k: v for k, v in setting.items() if k != "floor"}
                    mcs = max(setting["floor"], round(0.3 * math.sqrt(len(take))))
                    clusterer = TicketClusterer(random_state=index, min_cluster_size=mcs, **pinned)
                    scores[name].append(strict_scores(sub_truth, clusterer.fit_predict(vectors[take]).labels))
            means = {
                name: {k: round(float(np.mean([r[k] for r in runs])), 4) for k in ("nmi", "ari")}
                for name, runs in scores.items()
            }
            rows.append({"draw": draw, "size": size, "corpora": args.seeds, "settings": means})
            print(
                f"banking77 train {draw} {size}: "
                + "; ".join(f"{name} {m['nmi']:.4f} / {m['ari']:.4f}" for name, m in means.items()),
                flush=True,
            )
    total = time.perf_counter() - started
    print(f"{total:.0f} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "small_corpus_choices.json").write_text(json.dumps({"total_s": round(total, 1), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
