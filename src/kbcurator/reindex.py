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
from kbcurator.index.golden import LostQuestion
from kbcurator.index.staging import columns_of
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.index.versions import IdChanges, compare_hashes, hashes_of
from kbcurator.markdown import table_cell
from kbcurator.records import IndexRelease, Rejected, sha256_hex
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
    articles = columns_of(candidate.articles, ["article_id", "content_hash", "source_id"])
    hashes = sorted(zip(articles["article_id"].to_pylist(), articles["content_hash"].to_pylist(), strict=True))
    per_source = Counter(articles["source_id"].to_pylist())
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


# "The release current now": callers that pinned a base release for their run pass it instead.
_CURRENT: Any = object()


def changes_since_current(store: IndexStore, candidate: ReleaseCandidate, base: Any = _CURRENT) -> Changes:
    """What the candidate adds, changes and removes against ``base`` (default: the current release)."""
    current: IndexRelease | None = store.current() if base is _CURRENT else base
    new_articles = hashes_of(columns_of(candidate.articles, ["article_id", "content_hash"]), "article_id")
    new_chunks = hashes_of(columns_of(candidate.chunks, ["chunk_id", "content_hash"]), "chunk_id")
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


@dataclass(frozen=True, slots=True)
class VanishedArticle:
    """An article of the current release that the candidate no longer has: what a blocked publish would have lost."""

    article_id: str
    title: str
    url: str
    chunks: int  # its chunks in the current release


def vanished_articles(store: IndexStore, changes: Changes, base: Any = _CURRENT) -> list[VanishedArticle]:
    """The base (default: current) release's articles missing from the candidate, with title, URL and chunks."""
    current: IndexRelease | None = store.current() if base is _CURRENT else base
    removed = set(changes.articles.removed)
    if current is None or not removed:
        return []
    rows = store.read_table("articles", current.articles_version, ["article_id", "title", "url"]).to_pylist()
    chunks_per_article = Counter(chunk_id.rsplit("#", 1)[0] for chunk_id in changes.chunks.removed)
    gone = [
        VanishedArticle(row["article_id"], row["title"] or "", row["url"] or "", chunks_per_article[row["article_id"]])
        for row in rows
        if row["article_id"] in removed
    ]
    return sorted(gone, key=lambda a: (a.title.casefold(), a.article_id))


def blocked_publish_message(
    failed_checks: Sequence[str], current_tag: str | None, vanished: Sequence[VanishedArticle], chunks_removed: int
) -> str:
    """One line for the CLI, the failed task and the notification: which checks failed and what would vanish."""
    checks = ", ".join(failed_checks[:5]) + (f" and {len(failed_checks) - 5} more" if len(failed_checks) > 5 else "")
    line = f"publish blocked by failed checks ({checks or 'validation did not pass'})"
    line += f"; {current_tag or 'no release'} stays current"
    if vanished or chunks_removed:
        named = "; ".join(f"{a.title or a.article_id} ({a.url})" for a in vanished[:5])
        more = f"; and {len(vanished) - 5} more" if len(vanished) > 5 else ""
        line += f". It would have removed {len(vanished)} articles and {chunks_removed} chunks: {named}{more}"
    return line


def vanished_markdown(vanished: Sequence[VanishedArticle], chunks_removed: int, limit: int = 50) -> str:
    """The run summary's section on what a blocked release would have dropped (articles named, chunks counted)."""
    if not vanished and not chunks_removed:
        return "Nothing in the current release would have disappeared."
    lines = [f"{len(vanished)} articles and {chunks_removed} chunks of the current release are not in the candidate:"]
    lines.append("")
    lines += ["| article | url | chunks |", "|---|---|---|"]
    for article in vanished[:limit]:
        title, url = table_cell(article.title or article.article_id, 300), table_cell(article.url, 300)
        lines.append(f"| {title} | {url} | {article.chunks} |")
    if len(vanished) > limit:
        lines.append(f"| … and {len(vanished) - limit} more (see `vanished.json` in the run folder) | | |")
    return "\n".join(lines)


def retrieval_blocked_line(failures: Sequence[str], lost: Sequence[LostQuestion], limit: int = 5) -> str:
    """The retrieval gate's part of a blocked publish's message: why, and the golden questions that lost."""
    line = "Retrieval gate: " + "; ".join(failures)
    if lost:
        named = "; ".join(q.describe() for q in lost[:limit])
        more = f"; and {len(lost) - limit} more (see summary.md)" if len(lost) > limit else ""
        line += f". {len(lost)} golden questions lost their article: {named}{more}"
    line += ". Override with --allow-retrieval-drop if the change is intended"
    return line


def retrieval_markdown(record: dict[str, Any], limit: int = 50) -> str:
    """The run summary's retrieval section: recall@k and MRR on the golden questions, before and after, the
    verdict, and each golden question that lost its article, with why."""
    if not record:
        return "_not measured_"
    k = record["k"]
    if not record["questions"]:
        return "No golden questions to measure (declare `retrieval.golden_file`, or resolve gaps): gate not applied."
    origins = ", ".join(f"{n} {origin}" for origin, n in sorted(record["by_origin"].items()))
    if record["passed"]:
        verdict = "passed"
    else:
        verdict = "FAILED, overridden (--allow-retrieval-drop)" if record["overridden"] else "FAILED"
    limits = record["thresholds"]
    lines = [
        f"**Retrieval gate {verdict}** on {record['questions']} golden questions ({origins}): recall@{k} at least "
        f"{limits['min_recall_at_k']}, and at most {limits['max_recall_drop']} below the current release.",
        "",
        f"| release | recall@{k} | MRR |",
        "|---|---|---|",
    ]
    for measured in (record["baseline"], record["candidate"]):
        if measured is not None:
            lines.append(f"| {measured['release']} | {measured[f'recall_at_{k}']:.3f} | {measured['mrr']:.3f} |")
    for failure in record["failures"]:
        lines += ["", f"- {failure}"]
    lost = record["lost"]
    if lost:
        lines += ["", f"{len(lost)} golden questions lost their article from the top {k}:", ""]
        lines += [
            "| question | origin | article | why | rank before -> after | now first |",
            "|---|---|---|---|---|---|",
        ]
        for q in lost[:limit]:
            cells = (
                table_cell(q["question"], 200),
                q["origin"],
                table_cell(f"{q['article_title']} ({q['article_url']})", 300),
                q["reason"],
                f"{q['rank_before']} -> {q['rank_after'] if q['rank_after'] is not None else 'gone'}",
                table_cell(q["above"], 200),
            )
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        if len(lost) > limit:
            lines.append(f"| … and {len(lost) - limit} more (result.json) | | | | | |")
    if record["unresolved"]:
        lines += ["", f"{len(record['unresolved'])} golden questions name no article of either release (not measured)."]
    if record["added_from_resolved_gaps"]:
        lines += ["", f"{record['added_from_resolved_gaps']} golden questions added from resolved gaps this run."]
    return "\n".join(lines)


def write_rejections(run_dir: Path, rejected: Sequence[Rejected]) -> Path:
    path = run_dir / "rejected.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for item in rejected:
            handle.write(json.dumps(asdict(item)) + "\n")
    return path


def rejection_summary(rejected: Sequence[Rejected]) -> dict[str, int]:
    """How many records each stage skipped, per rejection code: ``{"read: too_large": 2, ...}``."""
    return dict(Counter(f"{r.stage}: {r.code}" for r in rejected))


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
    vanished_section: str | None = None,
    retrieval_section: str | None = None,
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
    if retrieval_section is not None:
        lines += ["## Retrieval (golden questions)", "", retrieval_section, ""]
    if vanished_section is not None:
        lines += ["## What the blocked release would have removed", "", vanished_section, ""]
    return "\n".join(lines)
