"""The reindex use case as plain functions: the flow calls these in order and adds orchestration."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kbcurator.errors import ConfigError, SourceError
from kbcurator.index.build import ReleaseCandidate
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.index.versions import IdChanges, compare_hashes, hashes_of
from kbcurator.records import Rejected, sha256_hex
from kbcurator.settings import Settings, SourceConfig


@dataclass(frozen=True, slots=True)
class RunContext:
    run_id: str
    run_dir: Path
    started_at: datetime


def start_run(runs_dir: str | Path) -> RunContext:
    if "://" in str(runs_dir):
        # The index may live on object storage; run folders (reports, GX data docs) are written with local file
        # APIs, so a URI here would silently become a local folder named "s3:".
        raise ConfigError(f"runs_dir must be a local folder, not a URI: {runs_dir}")
    started = datetime.now(UTC)
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    run_dir = Path(runs_dir) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    return RunContext(run_id=run_id, run_dir=run_dir, started_at=started)


def require_sources(settings: Settings, config_path: str | None) -> list[SourceConfig]:
    if not settings.sources:
        raise SourceError(f"no sources declared in {config_path or 'the settings'}: nothing to index")
    return settings.sources


def source_snapshot(sources: Sequence[SourceConfig], candidate: ReleaseCandidate) -> dict[str, Any]:
    """What the release was built from: each source's declaration and a digest of the content read."""
    hashes = sorted(
        zip(
            candidate.articles["article_id"].to_pylist(),
            candidate.articles["content_hash"].to_pylist(),
            strict=True,
        )
    )
    per_source = Counter(candidate.articles["source_id"].to_pylist())
    return {
        "sources": [
            {
                "id": s.id,
                "kind": s.kind,
                "location": s.location,
                "owner": s.owner,
                "config_hash": sha256_hex(s.model_dump_json()),
                "articles": per_source.get(s.id, 0),
            }
            for s in sources
        ],
        "content_digest": sha256_hex(json.dumps(hashes)),
    }


@dataclass(frozen=True, slots=True)
class Changes:
    against: str | None
    articles: IdChanges
    chunks: IdChanges

    @property
    def unchanged(self) -> bool:
        return self.against is not None and not any((*self.articles.counts().values(), *self.chunks.counts().values()))

    def as_dict(self) -> dict[str, Any]:
        return {"against": self.against, "articles": self.articles.counts(), "chunks": self.chunks.counts()}


def changes_since_current(store: IndexStore, candidate: ReleaseCandidate) -> Changes:
    current = store.current()
    new_articles = hashes_of(candidate.articles, "article_id")
    new_chunks = hashes_of(candidate.chunks, "chunk_id")
    if current is None:
        return Changes(None, compare_hashes({}, new_articles), compare_hashes({}, new_chunks))
    manifest = manifest_of(current)
    old_articles = hashes_of(
        store.read_table("articles", current.articles_version, ["article_id", "content_hash"]), "article_id"
    )
    old_chunks = hashes_of(store.read_table("chunks", current.chunks_version, ["chunk_id", "content_hash"]), "chunk_id")
    if manifest.get("model") != candidate.model:
        # Same text under a new model is still a change worth publishing.
        old_chunks = {k: f"{v}:{manifest.get('model')}" for k, v in old_chunks.items()}
    return Changes(current.tag, compare_hashes(old_articles, new_articles), compare_hashes(old_chunks, new_chunks))


def current_counts(store: IndexStore) -> tuple[int | None, int | None]:
    """(articles, chunks) of the current release, or (None, None) before the first publish."""
    current = store.current()
    if current is None:
        return None, None
    counts = manifest_of(current).get("counts", {})
    return counts.get("articles"), counts.get("chunks")


def write_rejections(run_dir: Path, rejected: Sequence[Rejected]) -> Path:
    path = run_dir / "rejected.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for item in rejected:
            handle.write(json.dumps(asdict(item)) + "\n")
    return path


def rejection_summary(rejected: Sequence[Rejected]) -> dict[str, int]:
    return dict(Counter(f"{r.stage}: {r.reason.split(':')[0]}" for r in rejected))


def run_summary_markdown(
    *,
    run: RunContext,
    outcome: str,
    release_tag: str | None,
    current_tag: str | None,
    candidate: ReleaseCandidate | None,
    changes: Changes | None,
    rejected: Sequence[Rejected],
    checks_markdown: str,
    index_uri: str,
) -> str:
    lines = [f"# kbcurator reindex {run.run_id}", "", f"**Outcome:** {outcome}", ""]
    lines.append(f"- index: `{index_uri}`")
    lines.append(f"- current release: `{current_tag or 'none'}`" + (f" (new: `{release_tag}`)" if release_tag else ""))
    if candidate is not None:
        s = candidate.stats
        lines += [
            f"- articles: {s.articles} ({s.articles_reused} unchanged and reused, {s.articles_chunked} chunked)",
            f"- chunks: {s.chunks} ({s.chunks_embedded} embedded, {s.chunks_from_cache} from the embedding cache)",
            f"- model: `{candidate.model}` ({candidate.dimension} dims)",
        ]
    if changes is not None:
        a, c = changes.articles.counts(), changes.chunks.counts()
        lines.append(
            f"- changes since `{changes.against or 'nothing'}`: articles +{a['added']} ~{a['changed']} "
            f"-{a['removed']}, chunks +{c['added']} ~{c['changed']} -{c['removed']}"
        )
    lines.append(f"- skipped pages/files: {len(rejected)} (see `{run.run_dir / 'rejected.jsonl'}`)")
    for reason, count in sorted(rejection_summary(rejected).items()):
        lines.append(f"  - {reason}: {count}")
    lines += ["", "## Checks", "", checks_markdown or "_not run_", ""]
    return "\n".join(lines)
