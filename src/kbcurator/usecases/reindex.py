"""The reindex use case: one run pinned to one base release, and every decision about what gets published.

A flow (or any caller) loads the settings once, calls :func:`start_reindex`, builds a candidate, checks it, and
hands both to :func:`decide`, then :func:`publish_decided` and :func:`finish`. The run's base release is read
once, at the start: its counts bound the checks, its rows are what "changed" and "vanished" mean, and the
publish refuses a candidate whose base is no longer current (``index.publish``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from kbcurator import reindex as steps
from kbcurator.analysis.corpus import dead_links_from
from kbcurator.chunking import ChunkPolicy
from kbcurator.config.retrieval import RetrievalSettings
from kbcurator.embedding import embedder_for
from kbcurator.embedding.base import Embedder, LazyEmbedder
from kbcurator.errors import EmbeddingError, KBError, SourceError, ValidationFailed
from kbcurator.gaps.coverage import CoveragePolicy, ReleaseVectors, judge_tickets
from kbcurator.gaps.report import GAPS_TABLE
from kbcurator.index import golden, schema
from kbcurator.index.article_rows import RunReads
from kbcurator.index.build import CandidateParts, ReleaseCandidate, plan_build
from kbcurator.index.embedding_cache import EmbeddingCache, embed_with_cache
from kbcurator.index.parse_memo import ParseMemo
from kbcurator.index.publish import publish
from kbcurator.index.staging import batches_of, drop_staging, drop_stale_staging, staged_articles, staged_chunks
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.ingest import iter_articles
from kbcurator.records import Article, IndexRelease, Rejected, sha256_hex
from kbcurator.runtime import cap_malloc_arenas, release_freed_memory
from kbcurator.settings import Settings, SourceConfig
from kbcurator.triage import TriageStore
from kbcurator.usecases.execution import Executor, InProcess

if TYPE_CHECKING:
    from kbcurator.quality import ValidationReport

Action = Literal["publish", "unchanged", "blocked"]
# The release's data contracts for a candidate: ``checks.release_suites_for`` (the top-level ``checks`` package,
# which the package does not import: the caller at the edge, a flow or the CLI, hands it in).
SuiteFactory = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class ReindexJob:
    """What one reindex run works from; built once by :func:`start_reindex`."""

    settings: Settings
    store: IndexStore
    sources: tuple[SourceConfig, ...]
    run: steps.RunContext
    base: IndexRelease | None  # the release current when the run started
    force_publish: bool = False
    # Publish although the candidate fails the retrieval gate (the golden questions' recall floor or drop).
    allow_retrieval_drop: bool = False
    # The articles the run reads, staged in the index database as they are read (None: a job made by hand).
    reads: RunReads | None = None

    @property
    def base_counts(self) -> tuple[int | None, int | None]:
        """(articles, chunks) of the base release, or (None, None) before the first publish."""
        if self.base is None:
            return None, None
        counts = manifest_of(self.base).get("counts", {})
        return counts.get("articles"), counts.get("chunks")


@dataclass(frozen=True, slots=True)
class Decision:
    """What the run does with its candidate, and the line a person reads about it."""

    action: Action
    outcome: str
    changes: steps.Changes
    manifest: dict[str, Any] = field(default_factory=dict)  # action "publish" only
    vanished: tuple[steps.VanishedArticle, ...] = ()  # action "blocked" only
    blocked_message: str = ""
    failed_checks: tuple[str, ...] = ()
    retrieval: dict[str, Any] = field(default_factory=dict)  # the retrieval gate's measures and verdict


def start_reindex(
    settings: Settings, config_path: str | None, *, force_publish: bool = False, allow_retrieval_drop: bool = False
) -> ReindexJob:
    """Check the sources, open the index, pin the base release and make the run folder."""
    sources = steps.require_sources(settings, config_path)
    cap_malloc_arenas()  # before the index is opened: a build's reads and writes hold less (runtime explains)
    store = IndexStore(settings.index_uri, storage_options=settings.index_storage_options)
    base = store.current()
    run = steps.start_run(settings.runs_dir)
    drop_stale_staging(store)
    reads = RunReads(store, run.run_id)
    return ReindexJob(settings, store, tuple(sources), run, base, force_publish, allow_retrieval_drop, reads)


@dataclass(frozen=True, slots=True)
class SourceRead:
    """One source read: how many articles it gave (staged in the run's read table, ``ReindexJob.reads``), the
    pages skipped, and how many unchanged pages were not parsed again."""

    source: SourceConfig
    article_count: int
    rejected: tuple[Rejected, ...]
    reused: int


def read_retries(source: SourceConfig) -> int:
    """How often to retry reading a source: a site or a Zendesk API may pass on a second try, a folder will not."""
    remote = source.kind == "sitemap" or (source.kind == "zendesk" and "://" in source.location)
    return 2 if remote else 0


def read_source(job: ReindexJob, source: SourceConfig) -> SourceRead:
    """Read one source's articles into the run's read table as they come (none is held: at 40,600 articles that
    was 0.5 GB); pages unchanged since they were last parsed come from the parse memo."""
    if job.reads is None:
        raise ValueError("this reindex job has no read table: make it with start_reindex")
    memo = ParseMemo(job.store)
    rejected: list[Rejected] = []

    def articles() -> Iterator[Article]:
        for item in iter_articles(source, memo=memo, max_article_chars=job.settings.checks.max_article_chars):
            if isinstance(item, Rejected):
                rejected.append(item)
            else:
                yield item

    count = job.reads.write(articles())
    return SourceRead(source, count, tuple(rejected), memo.reused)


def staged_articles_of(job: ReindexJob) -> Sequence[Article]:
    """Every article the run has read, in the order read: what :func:`build` takes (read back as it chunks)."""
    staged = job.reads.articles() if job.reads is not None else None
    return staged if staged is not None else ()


def build(
    job: ReindexJob,
    articles: Sequence[Article],
    executor: Executor,
    *,
    on_progress: Callable[[str], None] | None = None,
) -> ReleaseCandidate:
    """Chunk and embed the articles into a release candidate (nothing is published here).

    One sequence wherever the work runs: plan what the base release already holds, chunk the rest, embed each
    chunked batch's chunks that the embedding cache lacks as the batch comes back, and add it to the candidate as
    Arrow columns (a batch's rows are Python objects only until then). ``executor`` decides where each stage runs
    (in this process, in chunking processes, or as tasks on a Dask cluster). Duplicate article ids (the same
    canonical URL reached twice) keep the first.
    """
    say = on_progress or (lambda _message: None)
    policy = ChunkPolicy.from_settings(job.settings)
    model, dimension = executor.embedder_identity()
    plan = plan_build(articles, store=job.store, model=model, policy=policy)
    before = str(manifest_of(job.base).get("model") or "") if job.base is not None else ""
    if before and before != model:
        # A new model or backend ("<model>@onnx-int8"): vectors of two never mix in one release.
        say(f"the embedding model changed from {before} to {model}: every chunk is embedded again")
    say(f"reusing {len(plan.reuse_ids)} unchanged articles ({plan.reused_count} chunks) from {plan.current_tag or '-'}")
    # The candidate's chunks go to the run's staging table as they are embedded; the run drops it in ``finish``.
    run_id = job.run.run_id
    staged = (staged_chunks(job.store, run_id, dimension), staged_articles(job.store, run_id))
    parts = CandidateParts(plan, dimension, staged=staged)
    chunk_s = embed_s = 0.0
    embedded = chunks = texts = batch_count = 0
    batches = iter(executor.chunk(plan.to_chunk, policy))
    try:
        while True:
            clock = time.perf_counter()
            batch = next(batches, None)
            chunk_s += time.perf_counter() - clock  # waiting for chunks: chunking, less what ran beside the embedding
            if batch is None:
                break
            clock = time.perf_counter()
            vectors, now = executor.embed(batch.texts_by_hash, model)
            embed_s += time.perf_counter() - clock
            lost = len(set(batch.texts_by_hash) - set(vectors))
            if lost:  # a worker that died after its task was counted done, or a cache write that did not land
                raise EmbeddingError(f"{lost} chunk vectors are missing from the embedding cache after embedding")
            parts.add(batch, vectors)
            embedded += now
            chunks += len(batch.rows)
            texts += len(batch.texts_by_hash)
            batch_count += 1
    except BaseException:
        for table in staged:
            table.drop()
        if job.reads is not None:
            job.reads.drop()
        raise
    finally:
        close = getattr(batches, "close", None)
        if close is not None:  # a generator over a process pool: stops its processes on an error here
            close()
    say(
        f"chunked {len(plan.to_chunk)} new or changed articles into {chunks} chunks in {batch_count} batches "
        f"({chunk_s:.1f} s waiting for chunks)"
    )
    say(f"embedded {embedded} chunks, {texts - embedded} from the cache ({embed_s:.1f} s)")
    candidate = parts.candidate(
        model=model, policy=policy, chunks_embedded=embedded, chunk_seconds=chunk_s, embed_seconds=embed_s
    )
    if job.reads is not None:
        job.reads.drop()  # the candidate's articles table holds what is kept of them
    release_freed_memory()  # the batches' rows are gone: the checks and the publish need not start from their peak
    return candidate


@dataclass(frozen=True, slots=True)
class RetrievalCheck:
    """The golden questions measured on the candidate and on the base release (the gate's evidence)."""

    k: int
    candidate: golden.Measure
    baseline: golden.Measure | None  # None before the first publish
    lost: tuple[golden.LostQuestion, ...]  # in the base release's top k, not in the candidate's
    by_origin: dict[str, int]  # questions measured, per origin
    unresolved: tuple[str, ...] = ()  # questions whose expected article neither release holds (not measured)
    added_from_gaps: int = 0  # golden questions this run took from resolved gaps

    def as_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "questions": self.candidate.questions,
            "by_origin": self.by_origin,
            "candidate": self.candidate.as_dict(),
            "baseline": self.baseline.as_dict() if self.baseline is not None else None,
            "lost": [asdict(q) for q in self.lost],
            "unresolved": list(self.unresolved),
            "added_from_resolved_gaps": self.added_from_gaps,
        }


def evaluate(job: ReindexJob, candidate: ReleaseCandidate, *, embedder: Embedder | None = None) -> RetrievalCheck:
    """Measure recall@k and MRR on the golden questions, on the candidate and on the base release.

    First brings the stored golden questions up to date: the settings' file (its rows replace the file's previous
    ones), then the questions of gaps triaged ``resolved`` that the base release answers (each gap once).
    ``embedder``: the candidate's embedding model already loaded (default: loaded by its name).
    """
    settings = job.settings.retrieval
    store = golden.GoldenStore(job.store)
    embedding = job.settings.embedding
    loaded: dict[str, Embedder] = {candidate.model: embedder} if embedder is not None else {}

    def embedder_of(model: str) -> Embedder:
        # Loaded only when there is something to embed: a run without golden questions loads no model. The
        # candidate's model loads by the settings' name, as the build did (a custom embedder is an import path; the
        # name a release records need not be loadable).
        if model not in loaded:
            loaded[model] = embedder_for(embedding) if model == candidate.model else embedder_for(embedding, model)
        return loaded[model]

    base_model = str(manifest_of(job.base).get("model") or candidate.model) if job.base is not None else ""
    if settings.golden_file or job.store.has_table(schema.GOLDEN_QUESTIONS):
        store.replace("file", golden.read_golden_file(settings.golden_file) if settings.golden_file else [])
    added = (
        store.add(_resolved_gap_questions(job, lambda: embedder_of(base_model))) if settings.from_resolved_gaps else 0
    )
    questions = store.all()
    cand_view = golden.candidate_view(candidate)
    base_view = golden.release_view(job.store, job.base) if job.base is not None else None
    views = [v for v in (cand_view, base_view) if v is not None]
    measured = [q for q in questions if any(v.position(q.expected) for v in views)]
    known = {q.golden_id for q in measured}
    unresolved = tuple(q.question for q in questions if q.golden_id not in known)
    texts = [q.question for q in measured]

    def vectors_of(model: str, dimension: int) -> np.ndarray:
        # Through the embedding cache: a night whose golden questions were embedded before loads no model.
        lazy = LazyEmbedder(model, dimension, lambda: embedder_of(model))
        found, _ = embed_with_cache({sha256_hex(t): t for t in texts}, lazy, EmbeddingCache(job.store))
        return np.stack([found[sha256_hex(t)] for t in texts]) if texts else np.zeros((0, dimension), np.float32)

    vectors = vectors_of(candidate.model, candidate.dimension)
    after = golden.measure(cand_view, measured, vectors, settings.k)
    before, lost = None, []
    if base_view is not None and job.base is not None:
        same_model = base_model == candidate.model or not texts
        base_dimension = int(manifest_of(job.base).get("dimension") or candidate.dimension)
        base_vectors = vectors if same_model else vectors_of(base_model, base_dimension)
        before = golden.measure(base_view, measured, base_vectors, settings.k)
        lost = golden.lost_questions(measured, before, after, base_view, cand_view)
    by_origin = dict(Counter(str(q.origin) for q in measured))
    return RetrievalCheck(settings.k, after, before, tuple(lost), by_origin, unresolved, added)


def _resolved_gap_questions(job: ReindexJob, embedder: Callable[[], Embedder]) -> list[golden.GoldenQuestion]:
    """The questions of gaps triaged ``resolved`` before the base release was published that it answers.

    "Answers" as the gaps run decides it: the question's best chunk lifts above ``gaps.answered_lift``; that
    chunk's article becomes the question's expected article. A gap already harvested is not looked at again.
    """
    if job.base is None:
        return []
    base = job.base
    taken = {q.origin_ref for q in golden.GoldenStore(job.store).all() if q.origin == "resolved_gap"}
    decisions = TriageStore(job.store).current().values()
    resolved = {
        d.item_id
        for d in decisions
        if d.item_kind == "gap" and d.status == "resolved" and d.decided_at < base.created_at
    }
    resolved -= taken
    if not resolved:
        return []
    latest: dict[str, dict[str, Any]] = {}
    for row in job.store.rows(GAPS_TABLE, ["gap_id", "run_at", "representatives", "central_query"]):
        newer = row["gap_id"] not in latest or row["run_at"] > latest[row["gap_id"]]["run_at"]
        if row["gap_id"] in resolved and row["representatives"] and newer:
            latest[row["gap_id"]] = row
    if not latest:
        return []
    kb = ReleaseVectors(job.store, base)
    gaps = job.settings.gaps
    policy = CoveragePolicy(gaps.answered_lift, gaps.related_lift, gaps.covered_share)
    found: list[golden.GoldenQuestion] = []
    for gap_id, row in sorted(latest.items()):
        texts = list(dict.fromkeys(t for t in (row["central_query"], *row["representatives"]) if t))
        judgement = judge_tickets(embedder().embed(texts), kb, policy)
        for text, chunk_row, verdict in zip(texts, judgement.chunk_rows.tolist(), judgement.verdicts, strict=True):
            if chunk_row >= 0 and verdict == "answered":
                expected = (kb.article_ids[chunk_row], kb.urls[chunk_row])
                found.append(golden.GoldenQuestion(text, expected, "resolved_gap", gap_id, release_tag=base.tag))
    return found


_CHECK_BATCH_ROWS = 8_192


def check(job: ReindexJob, candidate: ReleaseCandidate, suites: SuiteFactory) -> ValidationReport:
    """Run the release's Great Expectations suites on the candidate; ``validation.json`` and Data Docs go into the
    run folder. ``suites``: ``checks.release_suites_for``.

    A candidate identical to the base release (and not forced out) is not checked again: it passed these suites
    when it was published, and nothing is published from it. That is most nights, and the suites (with Great
    Expectations' import) were the largest part of an unchanged night's cost.
    """
    # Imported here: Great Expectations and the suites load only for a run that validates something.
    from kbcurator import quality

    base = job.base
    forced = job.force_publish
    if base is not None and not forced and steps.changes_since_current(job.store, candidate, base=base).unchanged:
        why = f"the candidate is {base.tag} unchanged, which passed its checks when it was published"
        report = quality.ValidationReport.not_run(why)
        (job.run.run_dir / "validation.json").write_text(json.dumps(report.results_json, indent=1))
        return report
    current_articles, current_chunks = job.base_counts
    built = suites(
        job.settings.checks,
        dimension=candidate.dimension,
        current_articles=current_articles,
        current_chunks=current_chunks,
    )
    run_dir = job.run.run_dir
    # A few thousand rows at a time, and only the columns the suites read: the frames GX checks hold no text, no
    # vector and no column it does not look at.
    frames = quality.frames_from_tables(
        batches_of(candidate.articles, batch_rows=_CHECK_BATCH_ROWS),
        batches_of(candidate.chunks, batch_rows=_CHECK_BATCH_ROWS),
        columns=quality.columns_read(built),
    )
    report = quality.run_suites(frames, built, docs_dir=run_dir / "data_docs")
    del frames
    release_freed_memory()
    (run_dir / "validation.json").write_text(json.dumps(report.results_json, indent=1, default=str))
    return report


def run_reindex(
    settings: Settings,
    config_path: str | None,
    suites: SuiteFactory,
    *,
    force_publish: bool = False,
    allow_retrieval_drop: bool = False,
    audit: bool = True,
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The whole reindex in this process, without Prefect: what ``kbcurator reindex`` runs by default (the flow
    runs the same steps as tasks, with retries and artifacts). Returns the flow's result; a blocked or failed
    publish raises after the run's summary is written, as the flow fails.

    ``audit``: audit the release left current afterwards; a failed audit is reported in ``result["health"]``.
    """
    from kbcurator.usecases.audit import run_audit  # only when the reindex gets that far

    job = start_reindex(settings, config_path, force_publish=force_publish, allow_retrieval_drop=allow_retrieval_drop)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    try:
        reads = [_read_with_retries(job, source) for source in job.sources]
        timings["read_s"] = time.perf_counter() - clock
        rejected = [r for read in reads for r in read.rejected]
        clock = time.perf_counter()
        with InProcess(settings, job.store, on_progress=on_progress) as executor:
            candidate = build(job, staged_articles_of(job), executor, on_progress=on_progress)
        timings["build_s"] = time.perf_counter() - clock
    except BaseException:
        release_staging(job)
        raise
    rejected += candidate.rejected
    try:
        steps.write_rejections(job.run.run_dir, rejected)
        clock = time.perf_counter()
        report = check(job, candidate, suites)
        timings["check_s"] = time.perf_counter() - clock
        decision = decide(job, candidate, rejected, report, evaluate(job, candidate))
        clock = time.perf_counter()
        release, failure = None, None
        try:
            release = publish_decided(job, candidate, decision)
        except KBError as exc:
            failure = exc
        timings["publish_s"] = time.perf_counter() - clock
    except BaseException:
        release_staging(job, candidate)  # finish would have
        raise
    result, _summary = finish(job, candidate, rejected, report, decision, release, timings)
    if failure is not None:
        raise failure
    if audit and result["current"] is not None:
        try:
            audited = run_audit(settings, result["current"], run_dir=str(job.run.run_dir), on_progress=on_progress)
            health = audited.as_dict()
            result["health"] = {k: health[k] for k in ("findings", "new", "resolved", "severity", "exports")}
        except KBError as exc:
            result["health"] = {"error": str(exc)}
        write_result(job, result)
    return result


def _read_with_retries(job: ReindexJob, source: SourceConfig) -> SourceRead:
    """``read_source``, retried as the flow's task is (a site or an API may pass on a second try)."""
    for attempt in range(read_retries(source) + 1):
        try:
            return read_source(job, source)
        except SourceError:
            if attempt == read_retries(source):
                raise
            time.sleep(10)
    raise AssertionError("unreachable")


def retrieval_failures(check: RetrievalCheck, settings: RetrievalSettings) -> list[str]:
    """What the candidate misses of the retrieval thresholds, one line each (none: it passes)."""
    if not check.candidate.questions:
        return []
    k, recall = check.k, round(check.candidate.recall_at_k, 6)
    failures = []
    if recall < settings.min_recall_at_k:
        failures.append(f"recall@{k} {recall:.3f} is below the floor {settings.min_recall_at_k:.3f}")
    if check.baseline is not None:
        drop = round(check.baseline.recall_at_k - check.candidate.recall_at_k, 6)
        if drop > settings.max_recall_drop:
            failures.append(
                f"recall@{k} fell by {drop:.3f} (from {check.baseline.recall_at_k:.3f} on {check.baseline.label}), "
                f"more than the {settings.max_recall_drop:.3f} allowed"
            )
    return failures


def decide(
    job: ReindexJob,
    candidate: ReleaseCandidate,
    rejected: Sequence[Rejected],
    report: ValidationReport,
    retrieval: RetrievalCheck,
) -> Decision:
    """Blocked when a check failed; unchanged when nothing differs from the base (unless forced); blocked when the
    candidate fails the retrieval gate (unless overridden); else publish."""
    changes = steps.changes_since_current(job.store, candidate, base=job.base)
    base_tag = job.base.tag if job.base else None
    gate = retrieval_failures(retrieval, job.settings.retrieval)
    gate_record = {
        **retrieval.as_dict(),
        "passed": not gate,
        "failures": gate,
        "overridden": bool(gate) and job.allow_retrieval_drop,
        "thresholds": job.settings.retrieval.model_dump(),
    }
    blocked_by_gate = bool(gate) and not job.allow_retrieval_drop
    unchanged = changes.unchanged and not job.force_publish and job.base is not None
    if not report.success or (blocked_by_gate and not unchanged):
        failed = tuple(o.label for o in report.failed) + (("retrieval.recall_at_k",) if blocked_by_gate else ())
        vanished = steps.vanished_articles(job.store, changes, base=job.base)
        removed_chunks = len(changes.chunks.removed)
        message = steps.blocked_publish_message(failed, base_tag, vanished, removed_chunks)
        if blocked_by_gate:
            message += ". " + steps.retrieval_blocked_line(gate, retrieval.lost)
        what = "checks FAILED" if not report.success else "retrieval gate FAILED"
        return Decision(
            action="blocked",
            outcome=f"{what}: nothing published; {base_tag or 'no release'} stays current",
            changes=changes,
            vanished=tuple(vanished),
            blocked_message=message,
            failed_checks=failed,
            retrieval=gate_record,
        )
    if unchanged:
        assert job.base is not None
        return Decision(
            action="unchanged",
            outcome=f"unchanged since {job.base.tag}: nothing to publish",
            changes=changes,
            retrieval=gate_record,
        )
    manifest = {
        "run_id": job.run.run_id,
        "source_snapshot": steps.source_snapshot(job.sources, candidate),
        "changes": changes.as_dict(),
        "build": asdict(candidate.stats),
        "rejected": len(rejected),
        "rejected_by_code": steps.rejection_summary(rejected),
        # What the crawl found gone, so a later audit of this release can name broken links.
        "dead_links": dead_links_from(rejected),
        "checks": {
            "success": report.success,
            "failed": [o.label for o in report.failed],
            "passed": sum(o.success for o in report.outcomes),
            "total": len(report.outcomes),
            "data_docs": report.data_docs_path,
            "validation_result": report.results_json,
        },
        # The golden questions' recall@k and MRR on this release and the one before it, and the gate's verdict.
        "retrieval": gate_record,
    }
    # The outcome a person reads if the publish itself then fails (a lock held too long, a stale base).
    publish_failed = f"publish failed: nothing published; {base_tag or 'no release'} stays current"
    return Decision(action="publish", outcome=publish_failed, changes=changes, manifest=manifest, retrieval=gate_record)


def publish_decided(job: ReindexJob, candidate: ReleaseCandidate, decision: Decision) -> IndexRelease | None:
    """Carry the decision out: publish (the new release), nothing (None), or fail naming what would vanish."""
    if decision.action == "blocked":
        raise ValidationFailed(decision.blocked_message, failed=list(decision.failed_checks))
    if decision.action == "unchanged":
        return None
    release = publish(
        job.store,
        candidate,
        checks_passed=True,
        manifest=decision.manifest,
        ann=job.settings.ann,
        lock_timeout_s=job.settings.publish_lock_timeout_s,
    )
    (job.run.run_dir / "manifest.json").write_text(release.manifest_json)
    return release


def finish(
    job: ReindexJob,
    candidate: ReleaseCandidate,
    rejected: Sequence[Rejected],
    report: ValidationReport,
    decision: Decision,
    release: IndexRelease | None,
    timings: dict[str, float],
) -> tuple[dict[str, Any], str]:
    """Write the run folder's summary.md, result.json (and vanished.json when blocked); returns (result, summary).
    The candidate's staging table is dropped: the run is over."""
    release_staging(job, candidate)
    run_dir = job.run.run_dir
    outcome = f"published {release.tag}" if release is not None else decision.outcome
    current = job.store.current()
    current_tag = current.tag if current else None
    result: dict[str, Any] = {
        "run_id": job.run.run_id,
        "run_dir": str(run_dir),
        "index_uri": job.settings.index_uri,
        "articles": candidate.stats.articles,
        "chunks": candidate.stats.chunks,
        "rejected": len(rejected),
        "rejected_by_code": steps.rejection_summary(rejected),
        "checks_passed": report.success,
        "data_docs": report.data_docs_path,
        "changes": decision.changes.as_dict(),
        "outcome": outcome,
        "release": release.tag if release is not None else None,
        "current": current_tag,
        "build": asdict(candidate.stats),
        "retrieval": decision.retrieval,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    vanished_section = None
    if decision.action == "blocked":
        removed_chunks = len(decision.changes.chunks.removed)
        vanished_section = steps.vanished_markdown(decision.vanished, removed_chunks)
        (run_dir / "vanished.json").write_text(json.dumps([asdict(a) for a in decision.vanished], indent=1))
        result["vanished"] = {"articles": len(decision.vanished), "chunks": removed_chunks}
    summary = steps.run_summary_markdown(
        run=job.run,
        outcome=outcome,
        release_tag=result["release"],
        current_tag=current_tag,
        candidate=candidate,
        changes=decision.changes,
        rejected=rejected,
        checks_markdown=report.summary_markdown(),
        index_uri=job.settings.index_uri,
        vanished_section=vanished_section,
        retrieval_section=steps.retrieval_markdown(decision.retrieval),
    )
    (run_dir / "summary.md").write_text(summary)
    write_result(job, result)
    return result, summary


def release_staging(job: ReindexJob, candidate: ReleaseCandidate | None = None) -> None:
    """Drop the run's staging tables: its read table, and the candidate's tables if it has them (their rows are
    published, or not to be)."""
    if job.reads is not None:
        job.reads.drop()
    if candidate is not None:
        drop_staging(candidate.chunks)
        drop_staging(candidate.articles)


def write_result(job: ReindexJob, result: dict[str, Any]) -> None:
    (job.run.run_dir / "result.json").write_text(json.dumps(result, indent=1, default=str))
