"""Search a release as a RAG service does: filtered, one hit per article, pinned to a release if asked.

What the search API (``kbcurator serve``, ``/api/v1``) calls; it maps requests and errors, nothing else. One
:class:`SearchService` per process: it opens the index once, keeps a view per release it has answered for (a
release never changes once published, so a pinned view answers the same while another release is published), and
loads the query embedder once, on the first search that needs it.

De-duplication: by default at most one hit per article, and articles with identical content (the same content hash:
the same page published twice under two URLs) count as one article; a chunk whose text repeats an earlier hit's is
dropped too. The URLs a kept hit stands for are in its ``also_in``. Near-duplicates are the audit's business
(``analysis.duplicates``), not the search's.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from kbcurator.embedding.base import Embedder
from kbcurator.errors import EmbeddingError, KBError, PublishError
from kbcurator.index.reader import ArticleFacet, ChunkFilter, KBIndex, SearchHit, SearchMode, check_query_embedder
from kbcurator.index.store import CURRENT, IndexStore, is_local_uri, manifest_of
from kbcurator.records import IndexRelease
from kbcurator.settings import Settings

Mode = Literal["vector", "fulltext", "hybrid"]
MODES: tuple[Mode, ...] = ("vector", "fulltext", "hybrid")
_READER_MODE: dict[str, SearchMode] = {"vector": "vector", "fulltext": "fts", "hybrid": "hybrid"}

MAX_K = 50
MAX_BATCH = 20
MAX_QUERY_CHARS = 1000
MAX_FILTER_VALUES = 20
MAX_FILTER_CHARS = 200
# Candidates fetched per search: k x this to start with (room for the siblings one-per-article drops), growing
# 4x per round while too few hits survive, up to _FETCH_CAP.
_FETCH_FACTOR = 4
_FETCH_CAP = 1000
_VIEWS_KEPT = 8  # releases with an open view (tables, article facets) at a time
# How long a release list read from object storage answers "current" (a local index knows when it changed): a
# release published on S3 is searched as current at most this long after its publish.
_REMOTE_RELEASES_TTL_S = 1.0
_ALSO_IN_KEPT = 10
_RELEASE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class SearchError(KBError):
    """A search or release lookup that cannot be answered; ``code`` says why, for the API's answer."""

    code = "bad_search"

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class BadSearch(SearchError):
    """The request itself is wrong (mode, k, query, a release reference that is not one)."""


class BadFilter(SearchError):
    """A filter names a value the release does not hold, or a value that cannot be one."""

    code = "bad_filter"


class UnknownRelease(SearchError):
    code = "unknown_release"


class SearchUnavailable(SearchError):
    """No index or no release yet, or the index or the query model cannot be read: the service's state, not the
    request. ``public`` is what a client is told (the full message may name the server's paths)."""

    code = "unavailable"

    def __init__(self, message: str, *, public: str = "") -> None:
        super().__init__(message)
        self.public = public or message


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    k: int = 5
    mode: Mode = "hybrid"
    release: str = CURRENT  # a tag, a release number or "current"
    sources: tuple[str, ...] = ()
    locales: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()
    updated_after: datetime | None = None  # a naive datetime is UTC
    min_score: float | None = None  # the lowest cosine similarity kept (vector and hybrid)
    per_article: int = 1  # hits per article (articles with identical content count as one)


@dataclass(frozen=True, slots=True)
class ReleaseRef:
    tag: str
    seq: int
    kind: str
    created_at: datetime
    previous_tag: str


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    release: ReleaseRef
    current: bool
    manifest: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Hit:
    rank: int
    chunk_id: str
    article_id: str
    source_id: str
    title: str
    url: str
    section: str
    heading_path: tuple[str, ...]
    heading: str
    locale: str
    updated_at: datetime | None
    text: str
    score: float  # what ranked it: cosine similarity (vector), RRF relevance (hybrid), BM25 (fulltext)
    similarity: float | None  # cosine similarity to the query (None in fulltext mode: the query is not embedded)
    also_in: tuple[str, ...] = ()  # URLs of identical articles or chunks folded into this hit


@dataclass(frozen=True, slots=True)
class SearchResult:
    query: str
    mode: Mode
    searched_as: Mode  # hybrid on a release without a full-text index is a vector search
    release: ReleaseRef
    hits: tuple[Hit, ...]
    collapsed: int  # hits left out as another hit's duplicate (same article, identical article or chunk)


@dataclass(slots=True)
class _Kept:
    hit: SearchHit
    facet: ArticleFacet | None
    also_in: list[str] = field(default_factory=list)


class SearchService:
    """The search use case for one index database (``settings.index_uri``). Thread-safe: the API serves
    searches from a thread pool.

    ``embedder`` replaces the model the releases name (tests inject a fake); ``store`` an already open database.
    """

    def __init__(self, settings: Settings, *, store: IndexStore | None = None, embedder: Embedder | None = None):
        self._settings = settings
        self._store = store
        self._embedder = embedder
        self._embedders: dict[str, Embedder] = {}
        self._views: OrderedDict[int, KBIndex] = OrderedDict()
        self._lock = threading.RLock()
        self._model_lock = threading.Lock()
        # (the store's releases stamp, when read, the releases): see _all_releases.
        self._releases: tuple[int | None, float, list[IndexRelease]] | None = None

    # -- releases -----------------------------------------------------------------------------
    def releases(self) -> list[ReleaseRef]:
        """Every release, newest first (a rollback is a release of its own, with the tag it brought back)."""
        return [_ref(release) for release in reversed(self._all_releases())]

    def release(self, ref: str) -> ReleaseInfo:
        """One release and its manifest (model, counts, checks, sources)."""
        releases, release = self._resolved(self._all_releases(), ref)
        current = release.seq == releases[-1].seq
        return ReleaseInfo(release=_ref(release), current=current, manifest=manifest_of(release))

    # -- search -------------------------------------------------------------------------------
    def search(self, request: SearchRequest) -> SearchResult:
        return self.search_many([request])[0]

    def search_many(self, requests: Sequence[SearchRequest]) -> list[SearchResult]:
        """Answer ``requests`` in order; their queries are embedded in one call per model.

        Raises:
            SearchError: the first bad request (its position named when there are several), an unknown release,
                or a service that cannot search yet.
        """
        if not requests:
            raise BadSearch("no query to search for", field="queries")
        if len(requests) > MAX_BATCH:
            raise BadSearch(f"at most {MAX_BATCH} queries in one batch, got {len(requests)}", field="queries")
        releases = self._all_releases()  # "current" means one release for the whole batch
        planned: list[tuple[SearchRequest, KBIndex, ChunkFilter | None]] = []
        for position, request in enumerate(requests):
            try:
                _check(request)
                releases, release = self._resolved(releases, request.release)
                view = self._view(release)
                if request.mode == "fulltext" and not view.has_fts:
                    raise BadSearch(
                        f"{view.release.tag} has no full-text index: search it in vector mode", field="mode"
                    )
                planned.append((request, view, self._chunk_filter(view, request)))
            except SearchError as exc:
                if len(requests) == 1:
                    raise
                if isinstance(exc, SearchUnavailable):
                    raise
                raise type(exc)(f"queries[{position}]: {exc}", field=f"queries[{position}].{exc.field}") from exc
        vectors = self._embed_queries(planned)
        return [
            self._search_one(request, view, chunk_filter, vectors.get(position))
            for position, (request, view, chunk_filter) in enumerate(planned)
        ]

    def _search_one(
        self, request: SearchRequest, view: KBIndex, chunk_filter: ChunkFilter | None, vector: Any
    ) -> SearchResult:
        searched_as: Mode = "vector" if request.mode == "hybrid" and not view.has_fts else request.mode
        if chunk_filter is None:  # the filters together leave no article
            return SearchResult(request.query, request.mode, searched_as, _ref(view.release), (), 0)
        facets = view.article_facets()
        fetch = min(_FETCH_CAP, max(request.k * _FETCH_FACTOR, request.k + 16))
        while True:
            try:
                found = view.query(
                    request.query, mode=_READER_MODE[searched_as], limit=fetch, chunk_filter=chunk_filter, vector=vector
                )
            except PublishError as exc:
                raise SearchUnavailable(str(exc), public=f"search failed on {view.release.tag}") from exc
            kept, collapsed = _deduplicated(found, facets, request)
            exhausted = len(found) < fetch or fetch >= _FETCH_CAP
            if len(kept) >= request.k or exhausted or _past_min_score(found, searched_as, request.min_score):
                break
            fetch = min(_FETCH_CAP, fetch * _FETCH_FACTOR)
        hits = tuple(_hit(rank, item) for rank, item in enumerate(kept[: request.k], start=1))
        return SearchResult(request.query, request.mode, searched_as, _ref(view.release), hits, collapsed)

    # -- the index, its views and the model ---------------------------------------------------
    def _open_store(self) -> IndexStore:
        with self._lock:
            if self._store is None:
                uri = self._settings.index_uri
                if is_local_uri(uri) and not _local_exists(uri):
                    raise SearchUnavailable("no index has been built here yet: publish a release first")
                try:
                    self._store = IndexStore(uri, storage_options=self._settings.index_storage_options or None)
                except PublishError as exc:
                    raise SearchUnavailable(f"cannot open the index: {exc}", public="cannot open the index") from exc
            return self._store

    def _all_releases(self, *, fresh: bool = False) -> list[IndexRelease]:
        """Every release, oldest first. Kept between requests while the releases table is unchanged (a local
        index: its stamp), or for at most ``_REMOTE_RELEASES_TTL_S`` on object storage; ``fresh`` re-reads."""
        store = self._open_store()
        stamp = store.releases_stamp()  # read before the rows: a publish in between only costs a second read
        with self._lock:
            kept = self._releases
        if kept is not None and not fresh:
            kept_stamp, read_at, releases = kept
            same = kept_stamp == stamp if stamp is not None else time.monotonic() - read_at < _REMOTE_RELEASES_TTL_S
            if same:
                return releases
        try:
            releases = store.releases()
        except PublishError as exc:
            raise SearchUnavailable(f"cannot read the releases: {exc}", public="cannot read the releases") from exc
        if not releases:
            raise SearchUnavailable("no release has been published yet")
        with self._lock:
            self._releases = (stamp, time.monotonic(), releases)
        return releases

    def _resolved(self, releases: list[IndexRelease], ref: str) -> tuple[list[IndexRelease], IndexRelease]:
        """``ref`` among ``releases``; a ref not found there is looked up once more in a fresh read (a release
        published on object storage within the last second)."""
        try:
            return releases, _resolve(releases, ref)
        except UnknownRelease:
            if self._store is None or self._store.releases_stamp() is not None:
                raise
            releases = self._all_releases(fresh=True)
            return releases, _resolve(releases, ref)

    def _view(self, release: IndexRelease) -> KBIndex:
        with self._lock:
            view = self._views.get(release.seq)
            if view is None:
                view = KBIndex(self._open_store(), release.seq, None, ann=self._settings.ann, release=release)
                self._views[release.seq] = view
                while len(self._views) > _VIEWS_KEPT:
                    self._views.popitem(last=False)
            self._views.move_to_end(release.seq)
            return view

    def _embedder_for(self, release: IndexRelease) -> Embedder:
        model = str(manifest_of(release)["model"])
        with self._model_lock:  # one load per process, even when the first searches arrive together
            embedder = self._embedder or self._embedders.get(model)
            if embedder is None:
                from kbcurator.embedding.sentence import embedder_for

                embedding = self._settings.embedding
                try:
                    embedder = embedder_for(embedding, model)
                except EmbeddingError as exc:
                    raise SearchUnavailable(
                        f"cannot load the query model of {release.tag}: {exc}",
                        public=f"cannot load the query model of {release.tag}",
                    ) from exc
                self._embedders[model] = embedder
        try:
            check_query_embedder(release, embedder)
        except PublishError as exc:
            raise SearchUnavailable(str(exc), public=f"the query model does not match {release.tag}") from exc
        return embedder

    def _embed_queries(self, planned: list[tuple[SearchRequest, KBIndex, ChunkFilter | None]]) -> dict[int, Any]:
        """The query vectors of the requests that need one, embedded in one call per model."""
        by_model: dict[str, list[int]] = {}
        embedders: dict[str, Embedder] = {}
        for position, (request, view, chunk_filter) in enumerate(planned):
            if request.mode == "fulltext" or chunk_filter is None:
                continue
            embedder = self._embedder_for(view.release)
            key = f"{embedder.name}|{embedder.dimension}"
            embedders[key] = embedder
            by_model.setdefault(key, []).append(position)
        vectors: dict[int, Any] = {}
        for key, positions in by_model.items():
            texts = [planned[position][0].query for position in positions]
            try:
                embedded = embedders[key].embed(texts)
            except Exception as exc:  # torch and friends raise many types; the service cannot search
                raise SearchUnavailable(
                    f"the query model failed: {type(exc).__name__}: {exc}", public="the query model failed"
                ) from exc
            vectors.update(zip(positions, embedded, strict=True))
        return vectors

    # -- filters ------------------------------------------------------------------------------
    def _chunk_filter(self, view: KBIndex, request: SearchRequest) -> ChunkFilter | None:
        """The request's filters, each value checked against what the release holds; None when they leave no
        article at all (each on its own matches something)."""
        tag = view.release.tag
        try:
            facets = view.article_facets()
        except PublishError as exc:
            raise SearchUnavailable(f"cannot read the articles of {tag}: {exc}", public=f"cannot read {tag}") from exc
        sources = _known(request.sources, "source", {f.source_id for f in facets.values()}, tag, _exact)
        locales = _known(request.locales, "locale", {f.locale for f in facets.values()}, tag, _locale_key)
        sections = _known(request.sections, "section", {f.section for f in facets.values()}, tag, _section_key)
        article_ids: tuple[str, ...] | None = None
        if sections:
            wanted = {_section_key(s) for s in sections}
            article_ids = tuple(
                sorted(
                    article_id
                    for article_id, facet in facets.items()
                    if _section_key(facet.section) in wanted and (not sources or facet.source_id in sources)
                )
            )
            if not article_ids:
                return None
            sources = []  # already applied to the article ids
        chunk_filter = ChunkFilter(
            source_ids=tuple(sources),
            article_ids=article_ids,
            locales=tuple(locales),
            updated_after=request.updated_after,
        )
        try:
            chunk_filter.where()
        except ValueError as exc:
            raise BadFilter(str(exc)) from exc
        return chunk_filter


def _check(request: SearchRequest) -> None:
    if request.mode not in MODES:
        raise BadSearch(f"mode must be one of {', '.join(MODES)}, got {str(request.mode)[:40]!r}", field="mode")
    if not request.query.strip():
        raise BadSearch("the query is empty", field="query")
    if len(request.query) > MAX_QUERY_CHARS:
        raise BadSearch(f"the query is longer than {MAX_QUERY_CHARS} characters", field="query")
    if not 1 <= request.k <= MAX_K:
        raise BadSearch(f"k must be between 1 and {MAX_K}, got {request.k}", field="k")
    if not 1 <= request.per_article <= MAX_K:
        raise BadSearch(f"per_article must be between 1 and {MAX_K}, got {request.per_article}", field="per_article")
    if request.min_score is not None:
        if request.mode == "fulltext":
            raise BadSearch(
                "min_score is a cosine similarity: it applies to vector and hybrid searches, not to fulltext "
                "(whose BM25 scores have no fixed scale)",
                field="min_score",
            )
        if not -1.0 <= request.min_score <= 1.0:
            raise BadSearch(f"min_score must be between -1 and 1, got {request.min_score}", field="min_score")
    if not _RELEASE_REF.match(request.release):
        raise BadSearch(
            f"release must be a tag (release-0003), a release number or {CURRENT!r}, got {request.release[:40]!r}",
            field="release",
        )
    for name, values in (("source", request.sources), ("locale", request.locales), ("section", request.sections)):
        if len(values) > MAX_FILTER_VALUES:
            raise BadFilter(f"at most {MAX_FILTER_VALUES} values of {name}, got {len(values)}", field=name)
        for value in values:
            if not value.strip() or len(value) > MAX_FILTER_CHARS:
                raise BadFilter(f"{name} values must be 1 to {MAX_FILTER_CHARS} characters", field=name)


def _resolve(releases: list[IndexRelease], ref: str) -> IndexRelease:
    """A release by "current", number or tag (the latest release with that tag), as ``IndexStore.resolve``
    but without naming the database's location in the message, which reaches API clients."""
    if ref == CURRENT:
        return releases[-1]
    if ref.isdigit():
        for release in releases:
            if release.seq == int(ref):
                return release
    for release in reversed(releases):
        if release.tag == ref:
            return release
    newest = ", ".join(list(dict.fromkeys(release.tag for release in reversed(releases)))[:5])
    raise UnknownRelease(f"no release {ref!r} (the newest: {newest}; or {CURRENT!r})", field="release")


def _past_min_score(found: Sequence[SearchHit], searched_as: Mode, min_score: float | None) -> bool:
    """Vector hits come most similar first: once the last one fetched is under ``min_score``, fetching more
    cannot add a hit."""
    if searched_as != "vector" or min_score is None or not found:
        return False
    last = found[-1].similarity
    return last is not None and last < min_score


def _exact(value: str) -> str:
    return value


def _locale_key(value: str) -> str:
    return value.strip().lower().replace("_", "-")


def _section_key(value: str) -> str:
    return " ".join(value.split()).casefold()


def _known(values: Sequence[str], name: str, present: set[str], tag: str, key: Any) -> list[str]:
    """The release's own spellings of ``values`` (matched by ``key``); a value it does not hold is a BadFilter."""
    by_key: dict[str, list[str]] = {}
    for spelling in present:
        if spelling:
            by_key.setdefault(key(spelling), []).append(spelling)
    matched: list[str] = []
    for value in values:
        spellings = by_key.get(key(value))
        if not spellings:
            shown = sorted(by_key)[:20]
            more = f", and {len(by_key) - 20} more" if len(by_key) > 20 else ""
            raise BadFilter(
                f"no {name} {value[:80]!r} in {tag} (known: {', '.join(shown) or 'none'}{more})", field=name
            )
        matched.extend(sorted(spellings))
    return list(dict.fromkeys(matched))


def _deduplicated(
    found: Sequence[SearchHit], facets: dict[str, ArticleFacet], request: SearchRequest
) -> tuple[list[_Kept], int]:
    kept: list[_Kept] = []
    by_text: dict[str, _Kept] = {}
    by_article: dict[str, list[_Kept]] = {}
    collapsed = 0
    for hit in found:
        if len(kept) >= request.k:
            break
        if request.min_score is not None and (hit.similarity is None or hit.similarity < request.min_score):
            continue
        facet = facets.get(hit.article_id)
        group = (facet.content_hash if facet and facet.content_hash else "") or hit.article_id
        twin = by_text.get(hit.content_hash) if hit.content_hash else None
        siblings = by_article.get(group, [])
        if twin is not None or len(siblings) >= request.per_article:
            collapsed += 1
            owner = twin or siblings[0]
            if hit.url != owner.hit.url and hit.url not in owner.also_in and len(owner.also_in) < _ALSO_IN_KEPT:
                owner.also_in.append(hit.url)
            continue
        item = _Kept(hit, facet)
        kept.append(item)
        by_article.setdefault(group, []).append(item)
        if hit.content_hash:
            by_text[hit.content_hash] = item
    return kept, collapsed


def _hit(rank: int, item: _Kept) -> Hit:
    hit, facet = item.hit, item.facet
    return Hit(
        rank=rank,
        chunk_id=hit.chunk_id,
        article_id=hit.article_id,
        source_id=facet.source_id if facet else hit.article_id.partition(":")[0],
        title=hit.title,
        url=hit.url,
        section=facet.section if facet else "",
        heading_path=hit.heading_path,
        heading=hit.heading,
        locale=hit.locale or (facet.locale if facet else ""),
        updated_at=hit.updated_at,
        text=hit.text,
        score=hit.score,
        similarity=hit.similarity,
        also_in=tuple(item.also_in),
    )


def _ref(release: IndexRelease) -> ReleaseRef:
    created = release.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return ReleaseRef(
        tag=release.tag,
        seq=release.seq,
        kind=release.kind,
        created_at=created,
        previous_tag=release.previous_tag,
    )


def _local_exists(uri: str) -> bool:
    return Path(uri.removeprefix("file://")).exists()
