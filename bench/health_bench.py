"""The health benchmark: precision, recall and speed of every detector on labelled real help-center text.

Runs the three labelled sets side by side in one process and prints one table (and writes
bench/results/health_bench.json):

- bench/health/stale_cases.py: dated content, broken links, retired terms, superseded copies;
- bench/health/duplicate_cases.py: exact, near, section and semantic duplicates;
- bench/health/contradiction_cases.py: quantity, polarity and yes/no contradictions.

Each set is tuned on one corpus (DuckDuckGo, plus half of the COVID FAQ snapshots for duplicates) and reported
on another (Bitwarden, plus the other half): ``--split report`` (default) is the number to quote, ``tune`` shows
the tuning set, ``all`` both. How each set was labelled is in its module's docstring and bench/data/health/.
Reads ../shared/data, which a user's clone does not have: every set then says it skipped.

    python bench/health_bench.py [--split report|tune|all]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))
from kbcurator.runtime import apply_runtime_defaults  # noqa: E402

apply_runtime_defaults()

COLUMNS = ("detector", "check", "positives", "negatives", "tp", "fp", "fn", "precision", "recall")


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("report", "tune", "all"), default="report")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "health_bench.json")
    args = parser.parse_args()

    from bench.health import contradiction_cases, duplicate_cases, stale_cases

    rows: list[dict[str, Any]] = []
    timings: dict[str, dict[str, float]] = {}
    sets = (("stale", stale_cases), ("duplicate", duplicate_cases), ("contradiction", contradiction_cases))
    for name, module in sets:
        clock = time.perf_counter()
        found = module.evaluate(args.split)
        wall = time.perf_counter() - clock
        rows += found
        if found:
            detector = found[0]
            timings[name] = {
                "articles": float(detector.get("articles", 0)),
                "detector_seconds": float(detector.get("seconds", 0.0)),
                "seconds_per_1000_articles": float(detector.get("seconds_per_1000_articles", 0.0)),
                "wall_seconds_incl_parsing_and_embedding": round(wall, 1),
            }
    if not rows:
        print("no labelled set could run (../shared/data missing)")
        return 0
    print(f"## Health detectors on labelled real help-center text (split: {args.split})\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(_fmt(row.get(c, "")) for c in COLUMNS) + " |")
    print("\n| detector | articles | detector time | per 1,000 articles | wall time (parse, embed, detect) |")
    print("|---|---|---|---|---|")
    for name, t in timings.items():
        print(
            f"| {name} | {t['articles']:.0f} | {t['detector_seconds']:.1f} s | "
            f"{t['seconds_per_1000_articles']:.1f} s | {t['wall_seconds_incl_parsing_and_embedding']:.0f} s |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"split": args.split, "rows": rows, "timings": timings}, indent=1))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
