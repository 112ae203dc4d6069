"""Build ``legacy_index.tar.gz``: an index written by kbcurator before schema versions (commit 50666b5).

``tests/test_migrations.py`` opens it with the current code. It was made with the code of that commit, not with
the code beside this script (which would stamp a schema version into it), and the deterministic hashing embedder
of ``tests/fakes.py``::

    git worktree add /tmp/before 50666b5
    PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=/tmp/before/src:tests .venv/bin/python tests/data/make_legacy_index.py

What it holds, one row or more in every table that code wrote: a folder source read twice through the parse memo
(``parse_memo``), embedded through the embedding cache (``embedding_cache``) and published twice (``articles``,
``chunks``, ``releases``: release-0002 is current, with one article edited and one removed); one audit
(``findings``), one gaps run (``gaps``) and one triage decision (``triage``). Beside the archive,
``legacy_index.json`` records what the old code read back: the current release, its article and chunk ids, and
the chunk ids its searches return, for the test to compare with what the new code reads.
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from fakes import FakeHashingEmbedder

import kbcurator
from kbcurator.analysis.audit import run_audit
from kbcurator.analysis.base import AuditCorpus
from kbcurator.analysis.store import FindingStore
from kbcurator.chunking import ChunkPolicy
from kbcurator.gaps.coverage import ArticleMatch, Coverage
from kbcurator.gaps.report import GapStore, ScoredGap
from kbcurator.index.build import build_candidate
from kbcurator.index.parse_memo import ParseMemo
from kbcurator.index.publish import publish
from kbcurator.index.reader import open_index
from kbcurator.index.store import IndexStore
from kbcurator.ingest import read_articles
from kbcurator.records import Finding, GapCluster, make_finding_id
from kbcurator.settings import SourceConfig
from kbcurator.triage import TriageStore

HERE = Path(__file__).resolve().parent
ARCHIVE = HERE / "legacy_index.tar.gz"
EXPECTED = HERE / "legacy_index.json"
DIMENSION = 32
QUERIES = ("how do I get a refund", "reset my password", "export the archive")
RUN_AT = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)

PAGES = {
    "reset-password.md": "---\ntitle: Reset your password\n---\n\nOpen **Settings > Security** and choose "
    "*Reset password*. The link is valid for 24 hours.\n",
    "export-data.md": "---\ntitle: Export your data\n---\n\n## Steps\n\nGo to Account and choose Export. "
    "The archive arrives by email within 2 days.\n",
    "refunds.md": "---\ntitle: Request a refund\n---\n\nRefunds are available within 30 days of purchase.\n",
    "refund-policy.md": "---\ntitle: Refund policy\n---\n\nRefunds are available within 14 days of purchase.\n",
    "cancel.md": "---\ntitle: Cancel your subscription\n---\n\nCancel at any time from Billing.\n",
    "broken.md": "---\ntitle: [unclosed\n---\nbody\n",  # rejected at parse
}


def _write_site(root: Path) -> None:
    for relative, text in PAGES.items():
        path = root / relative
        path.write_text(text, encoding="utf-8")
        os.utime(path, (1_767_225_600, 1_767_225_600))


def _publish(store: IndexStore, source: SourceConfig, embedder: FakeHashingEmbedder, run_id: str) -> None:
    articles, _ = read_articles(source, memo=ParseMemo(store))
    candidate = build_candidate(articles, store=store, embedder=embedder, policy=ChunkPolicy())
    publish(store, candidate, checks_passed=True, manifest={"run_id": run_id})


def _finding(article_ids: tuple[str, ...]) -> Finding:
    return Finding(
        finding_id=make_finding_id("contradiction", "quantity", article_ids, "30 days|14 days"),
        kind="contradiction",
        check="quantity",
        article_ids=article_ids,
        score=0.8,
        severity="high",
        summary="refund window: 30 days against 14 days",
        action="review",
        evidence=(),
        detector="listed",
        detector_version="1",
        found_at=RUN_AT,
    )


class _ListDetector:
    name = "listed"
    version = "1"

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings

    def detect(self, corpus: AuditCorpus) -> list[Finding]:
        return self.findings


def build(index_dir: Path, site: Path) -> dict[str, object]:
    _write_site(site)
    source = SourceConfig(id="help", kind="folder", location=str(site), base_url="https://help.example.com/")
    store = IndexStore(str(index_dir))
    embedder = FakeHashingEmbedder(dimension=DIMENSION)
    _publish(store, source, embedder, "legacy-1")
    (site / "cancel.md").unlink()
    (site / "refunds.md").write_text(PAGES["refunds.md"].replace("30 days", "45 days"), encoding="utf-8")
    os.utime(site / "refunds.md", (1_767_312_000, 1_767_312_000))
    _publish(store, source, embedder, "legacy-2")

    index = open_index(str(index_dir), embedder=embedder)
    release = index.release
    articles = store.read_table("articles", release.articles_version, ["article_id"])["article_id"].to_pylist()
    chunks = store.read_table("chunks", release.chunks_version, ["chunk_id"])["chunk_id"].to_pylist()
    refund_ids = tuple(sorted(a for a in articles if a.startswith("help:")))[:2]

    finding = _finding(refund_ids)
    corpus = AuditCorpus(
        articles=[],
        chunks=[],
        chunk_vectors=np.zeros((0, 4), dtype=np.float32),
        run_at=RUN_AT,
        index_version=release.tag,
    )
    result = run_audit(corpus, [_ListDetector([finding])])
    findings = FindingStore(store)
    findings.write_run("audit-1", result, findings.diff(result))

    centroid = embedder.embed(["merge two workspaces"])[0]
    match = ArticleMatch(refund_ids[0], "Request a refund", "https://help.example.com/refunds", 2, 0.4)
    gap = ScoredGap(
        gap_id="gap-legacy0001",
        cluster=GapCluster(
            0, "merge workspaces", ("merge",), "how do I merge two workspaces", (), 3, 0.0, RUN_AT, RUN_AT
        ),
        coverage=Coverage(0.0, 0.4, 0.05, (match,), "write"),
        gap_score=1.0,
        priority=3.0,
        trend="new",
        previous_size=0,
        weekly_counts={"2026-W44": 3},
        centroid=centroid,
    )
    GapStore(store).write_run(
        run_id="gaps-1", run_at=RUN_AT, release_tag=release.tag, gaps=[gap], resolved=[], dimension=DIMENSION
    )
    TriageStore(store).decide(finding.finding_id, "accepted", note="rewrite", decided_by="ana", decided_at=RUN_AT)

    return {
        "built_with": "kbcurator at commit 50666b5 (before schema versions)",
        "dimension": DIMENSION,
        "tables": sorted(store.table_names()),
        "current": {"seq": release.seq, "tag": release.tag},
        "releases": [r.tag for r in store.releases()],
        "article_ids": sorted(articles),
        "chunk_ids": sorted(chunks),
        "finding_ids": [finding.finding_id],
        "gap_ids": [gap.gap_id],
        "search": {
            mode: {query: [hit.chunk_id for hit in index.search(query, k=3, mode=mode)] for query in QUERIES}
            for mode in ("vector", "hybrid")
        },
    }


def main() -> None:
    if (Path(kbcurator.__file__).parent / "index" / "migrations.py").exists():
        sys.exit("run this with the code from before schema versions on PYTHONPATH (see the module's doc)")
    with tempfile.TemporaryDirectory() as work:
        index_dir, site = Path(work) / "index", Path(work) / "site"
        site.mkdir()
        expected = build(index_dir, site)
        for leftover in ("_publish.lock", "_publish.holder.json"):
            (index_dir / leftover).unlink(missing_ok=True)
        with tarfile.open(ARCHIVE, "w:gz") as archive:
            for path in sorted(index_dir.rglob("*")):
                archive.add(path, arcname=str(Path("legacy_index") / path.relative_to(index_dir)), recursive=False)
    EXPECTED.write_text(json.dumps(expected, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {ARCHIVE} ({ARCHIVE.stat().st_size:,} bytes) and {EXPECTED}")


if __name__ == "__main__":
    main()
