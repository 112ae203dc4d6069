"""Build the bundled ticket sample from real public questions (reproducible; the output is committed).

The questions are the English FAQ questions that health authorities other than the CDC published in March
2020 (WHO, UNICEF, the California and Washington State health departments, Sweden's FHM, Germany's BMG), as
scraped in deepset's COVID-QA repository (Apache-2.0). Against the bundled CDC help center they play the
part of customer tickets: the same public asking, answered by a different authority. Some are answered by
the CDC articles, some are real gaps.

    python kb_sources/sample_tickets/build_tickets.py [PATH/TO/covid-qa-faq]

Only the question text and the authority's own last-update date are used; the id is derived from the text.
No escalation or CSAT flags are invented: the file has none, so every ticket counts for gap analysis.
"""

from __future__ import annotations

import csv
import hashlib
import sys
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[2] / "shared" / "data" / "covid-qa-faq"
FILES = (("faq_covidbert.csv", ","), ("faq_200322_16.tsv", "\t"), ("faq_200327.tsv", "\t"))


def _date(value: str) -> str:
    for fmt in ("%Y/%m/%d", "%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(value.strip(), fmt).date().isoformat()
        except ValueError:
            continue
    return "2020-03-27"


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA
    if not data.is_dir():
        raise SystemExit(f"covid-qa-faq data not found at {data}")
    seen: dict[str, dict[str, str]] = {}
    for name, delimiter in FILES:
        with (data / name).open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter=delimiter):
                if row.get("lang", "en") not in ("en", ""):
                    continue
                if "CDC" in row["source"] or "cdc.gov" in row["link"]:
                    continue  # the CDC is the help center; its own questions are not tickets
                question = " ".join(row["question"].split())
                if len(question) < 12 or question.casefold() in seen:
                    continue
                seen[question.casefold()] = {
                    "id": "q-" + hashlib.sha1(question.encode()).hexdigest()[:10],
                    "created_at": _date(row.get("last_update", "")),
                    "channel": "web",
                    "source": row["source"],
                    "text": question,
                }
    rows = sorted(seen.values(), key=lambda r: (r["created_at"], r["id"]))
    out = HERE / "tickets.csv"
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "created_at", "channel", "source", "text"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} tickets to {out}")


if __name__ == "__main__":
    main()
