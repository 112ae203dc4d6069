"""The health benchmark: precision, recall and speed of every detector on labelled real help-center text.

Runs the three labelled sets side by side in one process and prints one table (and writes
bench/results/health_bench.json):

- bench/health/stale_cases.py: dated content, broken links, retired terms, superseded copies;
- bench/health/duplicate_cases.py: exact, near, section and semantic duplicates, and plain MinHash LSH (threshold
  0.5) as a peer on the same cases in the same run (rows ``minhash_lsh``; ``article`` is the row to compare);
- bench/health/contradiction_cases.py: quantity, polarity and yes/no contradictions.

Each set is tuned on one corpus (DuckDuckGo, plus half of the COVID FAQ snapshots for duplicates) and reported
on another (Bitwarden, plus the other half): ``--split report`` (default) is the number to quote, ``tune`` shows
the tuning set, ``all`` both, each split in its own rows. How each set was labelled is in its module's docstring
and bench/data/health/.
Reads ../shared/data, which a user's clone does not have: every set then says it skipped.

    python bench/health_bench.py [--split report|tune|all]

``--draws 1-5`` is the blind replication: it plants every planted duplicate case, and the injected contradiction
cases (ranges, modal negation, list items), again in other articles and sentences chosen by a salted draw, with
every threshold and rule as it is, and scores only what those draws plant (the hand-labelled contradiction edits
stay out; the duplicate set's real labelled pairs and COVID snapshots are the same in every draw). Draw 0 is the
set the rules were written against; the others were never looked at while writing them.

    python bench/health_bench.py --split all --draws 1-5
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

COLUMNS = ("detector", "check", "split", "positives", "negatives", "tp", "fp", "fn", "precision", "recall")


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("report", "tune", "all"), default="report")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "health_bench.json")
    parser.add_argument("--draws", type=_draws, help="a blind replication over these draws instead (e.g. 1-5 or 1,3)")
    args = parser.parse_args()
    if args.draws:
        return redraw(args.draws, args.split, args.out.with_name("health_draws.json"))

    from bench.health import contradiction_cases, duplicate_cases, stale_cases

    rows: list[dict[str, Any]] = []
    timings: dict[str, dict[str, float]] = {}
    # The stale set scores each corpus apart already; the other two pool a split's corpora, so "all" runs each
    # split on its own: the tune and report rows side by side, never one figure over both.
    splits = ("tune", "report") if args.split == "all" else (args.split,)
    runs = [("stale", stale_cases, args.split)]
    runs += [
        (name, module, split)
        for name, module in (("duplicate", duplicate_cases), ("contradiction", contradiction_cases))
        for split in splits
    ]
    for name, module, split in runs:
        clock = time.perf_counter()
        found = module.evaluate(split)
        wall = time.perf_counter() - clock
        rows += found
        # one timing row per detector (the duplicate set also runs its peer, plain MinHash LSH, on the same corpora)
        for detector in dict.fromkeys(r["detector"] for r in found):
            first = next(r for r in found if r["detector"] == detector)
            key = name if detector in {"staleness", "duplicates", "contradictions"} else f"{name} ({detector})"
            key += "" if name == "stale" else f", {split}"
            timings[key] = {
                "articles": float(first.get("articles", 0)),
                "detector_seconds": float(first.get("seconds", 0.0)),
                "seconds_per_1000_articles": float(first.get("seconds_per_1000_articles", 0.0)),
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


def _draws(spec: str) -> list[int]:
    """ "1-5" or "1,3": the draws to run; anything else is a usage error, said in one line."""
    out: list[int] = []
    for part in spec.split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or not (high or low).isdigit() or int(high or low) < int(low):
            raise argparse.ArgumentTypeError(f"{part!r} is not a draw or a range of draws such as 1-5")
        out += list(range(int(low), int(high or low) + 1))
    return out


REDRAW_CHECKS = {
    "duplicates": ("article", "section", "any"),
    "minhash_lsh": ("article",),
    "contradictions": ("quantity", "polarity", "any"),
}


def redraw(draws: list[int], split: str, out: Path) -> int:
    """Per draw and split, the duplicate and contradiction rows of what that draw planted; then each pooled."""
    from bench.health import contradiction_cases, duplicate_cases

    splits = ("tune", "report") if split == "all" else (split,)
    rows: list[dict[str, Any]] = []
    clock = time.perf_counter()
    for draw in draws:
        for name in splits:
            found = duplicate_cases.evaluate(name, draw=draw)
            found += contradiction_cases.evaluate(name, draw=draw, injected_only=True)
            rows += [r for r in found if r["check"] in REDRAW_CHECKS.get(r["detector"], ())]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"draws": draws, "rows": rows, "partial": True}, indent=1))  # kept if stopped
            print(f"draw {draw}, {name}: {time.perf_counter() - clock:.0f} s", file=sys.stderr)
    if not rows:
        print("no labelled set could run (../shared/data missing)")
        return 0
    cols = ("draw", "split", "detector", "check", "positives", "negatives", "tp", "fp", "fn", "precision", "recall")
    print(f"## Blind redraws {draws[0]}..{draws[-1]}: planted cases in other articles, rules unchanged\n")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(_fmt(row.get(c, "")) for c in cols) + " |")
    pooled: dict[tuple[str, str, str], dict[str, int]] = {}
    for row in rows:
        into = pooled.setdefault(
            (row["split"], row["detector"], row["check"]), dict.fromkeys(("p", "n", "tp", "fp", "fn"), 0)
        )
        for key, col in (("p", "positives"), ("n", "negatives"), ("tp", "tp"), ("fp", "fp"), ("fn", "fn")):
            into[key] += int(row[col])
    print(f"\n## Pooled over {len(draws)} draws\n")
    print("| split | detector | check | positives | negatives | tp | fp | fn | precision | recall |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    summary = []
    for (name, detector, check), t in pooled.items():
        precision = t["tp"] / (t["tp"] + t["fp"]) if t["tp"] + t["fp"] else 1.0
        recall = t["tp"] / (t["tp"] + t["fn"]) if t["tp"] + t["fn"] else 1.0
        summary.append(
            {"split": name, "detector": detector, "check": check, **t, "precision": precision, "recall": recall}
        )
        print(
            f"| {name} | {detector} | {check} | {t['p']} | {t['n']} | {t['tp']} | {t['fp']} | {t['fn']} | "
            f"{precision:.3f} | {recall:.3f} |"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"draws": draws, "rows": rows, "pooled": summary}, indent=1))
    print(f"\n{time.perf_counter() - clock:.0f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
