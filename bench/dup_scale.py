"""How the duplicate detector's time grows with the size of the KB: 1x, 10x and 100x a real help center.

Corpus
  The base is a real help center, chunked with the project's chunker and embedded ONCE with the real model
  (all-MiniLM-L6-v2; vectors cached in bench/results/): by default the bundled sample
  (kb_sources/sample_help_center, CDC FAQ, ~111 short articles), or with ``--base shared`` 111 articles drawn
  from the DuckDuckGo and Bitwarden help centers in ../shared/data (longer: several chunks each).

  Scale s has s x base articles: the base itself plus s-1 replicas of every base article. A replica is meant to
  be a *different* article of the same shape, so that the corpus is not just s copies of one help center:
    - vocabulary shift: every word type is renamed, with probability 0.6, to a replica-specific pseudo-word
      (the "renamed products" perturbation pushed far enough that replicas share few 5-word shingles);
    - its numbers changed (each number + replica index), its sections (chunks) reordered, one sentence dropped.
  Replica vectors are NOT re-embedded (20 chunks/s would take hours at 100x): each chunk vector is the base
  chunk's vector plus Gaussian noise of sigma 0.032 per dimension, re-normalised, which puts a replica at
  cosine ~0.85 from its base article (same topic, below the semantic threshold).

  On top, controlled duplicates are planted so the verification and grouping stages have work:
    - 1% of articles get an exact copy (same text, same vectors);
    - 2% get a near copy (its first number changed and, in articles of 6 sentences or more, one sentence dropped;
      vectors + noise of sigma 0.01, cosine ~0.98);
    - 1% get one section (chunk) of another article pasted in (the chunk and its vector copied).
  The script reports how many planted pairs the detector found (a sanity check, not a benchmark of quality:
  see bench/health/duplicate_cases.py for precision and recall on real text).

Timing
  Detector stages as ``DuplicateDetector.stage_seconds`` reports them: normalise (+ exact hash), shingles,
  minhash (datasketch MinHash.bulk), lsh (index + queries), verify (exact Jaccard of candidates), knn (article
  vectors, exact below 10,000 rows, faiss HNSW above), grouping (sets, canonical choice, evidence), sections
  (template shingles, inverted index, containment, findings); plus the total. Building the corpus (replicas,
  AuditCorpus.article_vectors) is not timed. Each scale runs ``--repeat`` times (3) on a shared 2-core machine and
  the run with the median total is reported. The growth ratio 10x -> 100x is total(100x) / total(10x): 10 is
  linear.

    python bench/dup_scale.py [--base sample|shared] [--scales 1 10 100]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench" / "health"))
sys.path.insert(0, str(REPO / "bench"))

from duplicate_cases import SHARED, CachedEmbedder  # noqa: E402  (sets the offline environment too)
from scale_corpus import NUMBER as _NUMBER  # noqa: E402  (the perturbations bench/scale.py applies too)
from scale_corpus import SENTENCE as _SENTENCE  # noqa: E402
from scale_corpus import WORD as _WORD  # noqa: E402
from scale_corpus import renamer  # noqa: E402

RESULTS = REPO / "bench" / "results"
# Word types renamed per replica: scale_corpus.RENAME_SHARE (0.6, see there why).
REPLICA_NOISE = 0.032  # per-dimension sigma: cosine ~0.85 to the base chunk in 384 dimensions
COPY_NOISE = 0.010  # cosine ~0.98
EXACT_SHARE, NEAR_SHARE, PASTE_SHARE = 0.01, 0.02, 0.01
STAGES = ("normalise", "shingles", "minhash", "lsh", "verify", "knn", "grouping", "sections")


def base_corpus(which: str) -> tuple[list[Any], list[Any], np.ndarray]:
    """Real articles, their chunks and real-model chunk vectors (row i <-> chunks[i])."""
    from kbcurator.chunking import ChunkPolicy, chunk_articles, embedding_input
    from kbcurator.ingest import read_articles
    from kbcurator.records import Rejected
    from kbcurator.settings import SourceConfig, load_settings

    if which == "sample":
        articles, _ = read_articles(load_settings(str(REPO / "kb_sources" / "sample.yaml")).sources[0])
    else:
        if not SHARED.is_dir():
            raise SystemExit(f"skipped: {SHARED} not found")
        pool = []
        for source_id, folder, include, base in (
            ("ddg", "duckduckgo-help-pages/articles", ["_docs/**/*.md"], "https://help.duckduckgo.com/"),
            ("bitwarden", "bitwarden-help/articles", ["_articles/**/*.md"], "https://bitwarden.com/help/"),
        ):
            source = SourceConfig(
                id=source_id, kind="folder", location=str(SHARED / folder), include=include, base_url=base
            )
            pool += [a for a in read_articles(source)[0] if len(a.text) >= 300]
        pool.sort(key=lambda a: hashlib.sha256(a.article_id.encode()).hexdigest())
        articles = pool[:111]
    chunks = []
    for item in chunk_articles(articles, ChunkPolicy()):
        if not isinstance(item, Rejected):
            chunks.extend(item[1])
    kept = {c.article_id for c in chunks}
    articles = [a for a in articles if a.article_id in kept]
    title = {a.article_id: a.title for a in articles}
    vectors = CachedEmbedder().embed([embedding_input(title[c.article_id], c.text) for c in chunks])
    return articles, chunks, vectors


class Replicator:
    """Builds replica articles, chunks and vectors from the base (see the module docstring)."""

    def __init__(self, articles: list[Any], chunks: list[Any], vectors: np.ndarray) -> None:
        self.articles = articles
        self.rows: dict[str, list[int]] = {}
        for row, chunk in enumerate(chunks):
            self.rows.setdefault(chunk.article_id, []).append(row)
        self.chunks = chunks
        self.vectors = vectors

    def build(self, scale: int, seed: int = 7) -> tuple[Any, dict[str, int], dict[str, set[frozenset[str]]]]:
        from kbcurator.analysis.base import AuditCorpus
        from kbcurator.records import Article, Chunk, sha256_hex

        rng = np.random.default_rng(seed)
        pick = random.Random(seed)
        out_articles: list[Article] = []
        out_chunks: list[Chunk] = []
        out_vectors: list[np.ndarray] = []

        def add(article: Article, texts: list[str], vectors: np.ndarray, headings: list[tuple[str, ...]]) -> None:
            out_articles.append(article)
            for position, (text, vector, heading) in enumerate(zip(texts, vectors, headings, strict=True)):
                out_chunks.append(
                    Chunk(f"{article.article_id}#{position}", article.article_id, position, text, heading, 0, 0, "")
                )
                out_vectors.append(vector)

        def make(base: Article, suffix: str, texts: list[str], keep_id: bool = False) -> Article:
            return Article(
                article_id=base.article_id if keep_id else f"{base.article_id}~{suffix}",
                source_id=base.source_id,
                url=base.url if keep_id else f"{base.url}~{suffix}",
                title=base.title if keep_id else f"{base.title} ({suffix})",
                section=base.section,
                locale=base.locale,
                body_html="",
                text="\n\n".join(texts),
                updated_at=base.updated_at,
                content_hash=sha256_hex("\n\n".join(texts)),
                links=(),
            )

        def noisy(vectors: np.ndarray, sigma: float) -> np.ndarray:
            moved = vectors + rng.normal(scale=sigma, size=vectors.shape).astype(np.float32)
            return moved / np.linalg.norm(moved, axis=1, keepdims=True)

        pool: list[tuple[Article, list[str], np.ndarray, list[tuple[str, ...]]]] = []
        for replica in range(scale):
            rename = renamer(replica)
            for base in self.articles:
                rows = self.rows[base.article_id]
                texts = [self.chunks[r].text for r in rows]
                headings = [self.chunks[r].heading_path for r in rows]
                vectors = self.vectors[rows]
                if replica == 0:
                    pool.append((base, texts, vectors, headings))
                    continue
                order = list(range(len(texts)))
                pick.shuffle(order)
                texts = [_NUMBER.sub(lambda m, r=replica: str(int(m.group(0)) + r), texts[i]) for i in order]
                texts = [_WORD.sub(rename, t) for t in texts]
                texts = _drop_sentence(texts, pick)
                article = make(base, f"r{replica}", texts)
                pool.append((article, texts, noisy(vectors[order], REPLICA_NOISE), [headings[i] for i in order]))

        planted: dict[str, set[frozenset[str]]] = {"exact": set(), "near": set(), "section": set()}
        extra = []
        for index, (article, texts, vectors, headings) in enumerate(list(pool)):
            draw = pick.random()
            if draw < EXACT_SHARE:
                copy = make(article, "copy", texts)
                extra.append((copy, texts, vectors.copy(), headings))
                planted["exact"].add(frozenset((article.article_id, copy.article_id)))
            elif draw < EXACT_SHARE + NEAR_SHARE:
                changed = [_NUMBER.sub(lambda m: str(int(m.group(0)) * 2 + 1), texts[0], count=1), *texts[1:]]
                changed = _drop_sentence(changed, pick, at_least=6)
                copy = make(article, "old", changed)
                extra.append((copy, changed, noisy(vectors, COPY_NOISE), headings))
                planted["near"].add(frozenset((article.article_id, copy.article_id)))
            elif draw < EXACT_SHARE + NEAR_SHARE + PASTE_SHARE:
                donor, donor_texts, donor_vectors, donor_headings = pool[pick.randrange(len(pool))]
                long_chunks = [i for i, t in enumerate(donor_texts) if len(t) >= 300]
                if donor.article_id == article.article_id or not long_chunks:
                    continue
                i = pick.choice(long_chunks)
                at = len(texts) // 2
                texts = [*texts[:at], donor_texts[i], *texts[at:]]
                headings = [*headings[:at], donor_headings[i], *headings[at:]]
                vectors = np.insert(vectors, at, donor_vectors[i], axis=0)
                # The host itself now carries the pasted section (same id, new text).
                pool[index] = (make(article, "", texts, keep_id=True), texts, vectors, headings)
                planted["section"].add(frozenset((article.article_id, donor.article_id)))
        for item in pool + extra:
            add(*item)

        corpus = AuditCorpus(
            articles=out_articles,
            chunks=out_chunks,
            chunk_vectors=np.vstack(out_vectors).astype(np.float32),
            run_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        sizes = {"articles": len(out_articles), "chunks": len(out_chunks)}
        return corpus, sizes, planted


def _drop_sentence(texts: list[str], pick: random.Random, at_least: int = 2) -> list[str]:
    candidates = [(i, s) for i, t in enumerate(texts) for s in _SENTENCE.split(t) if len(s) > 40]
    if len(candidates) < at_least:
        return texts
    i, sentence = pick.choice(candidates)
    texts = list(texts)
    texts[i] = texts[i].replace(sentence, "", 1).strip() or texts[i]
    return texts


def run(corpus: Any) -> tuple[dict[str, float], list[Any]]:
    from kbcurator.analysis.config import DuplicateSettings
    from kbcurator.analysis.duplicates import DuplicateDetector

    _ = corpus.article_vectors  # a property of the corpus, computed once and cached: not the detector's work
    detector = DuplicateDetector(DuplicateSettings())
    clock = time.perf_counter()
    findings = list(detector.detect(corpus))
    seconds = dict(detector.stage_seconds)
    seconds["total"] = time.perf_counter() - clock
    return seconds, findings


def found_planted(findings: list[Any], planted: dict[str, set[frozenset[str]]]) -> dict[str, str]:
    """Planted pairs held by any finding. A section pasted into a short article can make the host a near copy
    of the donor: then it is reported as a whole-article duplicate, which counts as found."""
    pairs: set[frozenset[str]] = set()
    for finding in findings:
        ids = sorted(finding.article_ids)
        pairs.update(frozenset((a, b)) for i, a in enumerate(ids) for b in ids[i + 1 :])
    return {kind: f"{len(wanted & pairs)}/{len(wanted)}" for kind, wanted in planted.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", choices=("sample", "shared"), default="sample")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--repeat", type=int, default=3, help="runs per scale; the run with the median total is kept")
    args = parser.parse_args()

    articles, chunks, vectors = base_corpus(args.base)
    replicator = Replicator(articles, chunks, vectors)
    rows = []
    for scale in args.scales:
        corpus, sizes, planted = replicator.build(scale)
        runs = sorted((run(corpus) for _ in range(max(1, args.repeat))), key=lambda r: r[0]["total"])
        seconds, findings = runs[len(runs) // 2]
        rows.append(
            {
                "scale": scale,
                **sizes,
                "seconds": seconds,
                "findings": len(findings),
                "planted_found": found_planted(findings, planted),
            }
        )
        print(f"{scale}x: {sizes['articles']} articles, {seconds['total']:.2f} s", file=sys.stderr)

    print(f"Duplicate detector scaling, base = {args.base} ({len(articles)} real articles, {len(chunks)} chunks)\n")
    head = (
        "| scale | articles | chunks | "
        + " | ".join(STAGES)
        + " | total s | findings | planted found (exact, near, section) |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        s = r["seconds"]
        found = r["planted_found"]
        print(
            f"| {r['scale']}x | {r['articles']} | {r['chunks']} | "
            + " | ".join(f"{s.get(stage, 0.0):.2f}" for stage in STAGES)
            + f" | {s['total']:.2f} | {r['findings']} | {found['exact']}, {found['near']}, {found['section']} |"
        )
    by_scale = {r["scale"]: r for r in rows}
    if 10 in by_scale and 100 in by_scale:
        ratio = by_scale[100]["seconds"]["total"] / by_scale[10]["seconds"]["total"]
        stage_ratios = {
            stage: by_scale[100]["seconds"].get(stage, 0.0) / max(1e-9, by_scale[10]["seconds"].get(stage, 0.0))
            for stage in STAGES
        }
        print(
            f"\nGrowth 10x -> 100x (10 is linear): total {ratio:.1f}; "
            + ", ".join(f"{k} {v:.1f}" for k, v in stage_ratios.items())
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"dup_scale_{args.base}.json"
    out.write_text(json.dumps({"base": args.base, "rows": rows}, indent=2), encoding="utf-8")
    print(f"\nwritten {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
