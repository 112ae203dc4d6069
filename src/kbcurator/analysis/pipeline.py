"""The audit's steps that the CLI and the flows share: read, audit, write what a KB owner reads."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from kbcurator.analysis.audit import AuditResult, default_detectors, run_audit
from kbcurator.analysis.base import AuditCorpus
from kbcurator.analysis.corpus import corpus_from_articles, dead_links_from
from kbcurator.analysis.report import findings_payload, health_markdown
from kbcurator.analysis.store import AuditDiff
from kbcurator.chunking import ChunkPolicy
from kbcurator.config.health import ReviewSettings
from kbcurator.embedding.base import Embedder
from kbcurator.errors import SourceError
from kbcurator.ingest import read_articles
from kbcurator.records import Article, Rejected
from kbcurator.settings import Settings

FINDINGS_FILE = "findings.json"
HEALTH_FILE = "health.md"


def reviews_of(settings: Settings) -> dict[str, ReviewSettings]:
    return {source.id: source.review for source in settings.sources}


def audit_corpus(corpus: AuditCorpus, settings: Settings) -> AuditResult:
    return run_audit(corpus, default_detectors(settings.health))


def read_source_corpus(
    settings: Settings, *, embedder: Embedder, run_at: datetime
) -> tuple[AuditCorpus, list[Rejected]]:
    """Read, chunk and embed every declared source without publishing anything (``audit --source``)."""
    if not settings.sources:
        raise SourceError("no sources declared: nothing to audit")
    articles: list[Article] = []
    rejected: list[Rejected] = []
    for source in settings.sources:
        found, skipped = read_articles(source, max_article_chars=settings.checks.max_article_chars)
        articles += found
        rejected += skipped
    if not articles:
        raise SourceError(f"no article could be read from the declared sources ({len(rejected)} skipped)")
    corpus, chunk_rejected = corpus_from_articles(
        articles,
        embedder=embedder,
        policy=ChunkPolicy.from_settings(settings),
        run_at=run_at,
        reviews=reviews_of(settings),
        dead_links=dead_links_from(rejected),
    )
    return corpus, rejected + chunk_rejected


def write_audit_outputs(
    out_dir: Path,
    result: AuditResult,
    diff: AuditDiff | None,
    articles: Mapping[str, Article],
    rejected: Sequence[Rejected] = (),
    *,
    owners: Mapping[str, str] | None = None,
    reviews: Mapping[str, ReviewSettings] | None = None,
) -> dict[str, str]:
    """``findings.json`` (everything, for tools; each finding names its articles) and ``health.md`` (the summary,
    age findings as one review-due list per owner: ``owners`` and ``reviews`` by source id) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = findings_payload(result, diff, articles)
    payload["skipped"] = [
        {"record_id": r.record_id, "stage": r.stage, "code": str(r.code), "reason": r.reason} for r in rejected
    ]
    findings_path = out_dir / FINDINGS_FILE
    findings_path.write_text(json.dumps(payload, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    markdown_path = out_dir / HEALTH_FILE
    markdown = health_markdown(result, diff, articles, owners=owners, reviews=reviews)
    markdown_path.write_text(markdown, encoding="utf-8")
    return {"json": str(findings_path), "markdown": str(markdown_path)}
