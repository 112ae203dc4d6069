"""The search API for RAG services: JSON over HTTP under ``/api/v1``, described by ``/api/v1/openapi.json``.

A sub-application mounted into the review app (``kbcurator serve``), so it has its own OpenAPI document and error
answers while sharing the app's Host check and security headers. It maps requests to the search use case
(:mod:`kbcurator.usecases.search`) and its errors to 4xx/5xx JSON answers (``{"detail": ..., "code": ...}``), and
nothing else.

Who may call it: with ``serve.read_token`` set, every request needs ``Authorization: Bearer <token>`` (compared in
constant time), wherever it comes from. Without a token, it answers only clients on this machine (loopback, after
uvicorn has applied the trusted proxies' ``X-Forwarded-For``).
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime
from ipaddress import ip_address
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kbcurator import __version__
from kbcurator.settings import Settings
from kbcurator.usecases.search import (
    MAX_BATCH,
    MAX_FILTER_CHARS,
    MAX_FILTER_VALUES,
    MAX_K,
    MAX_QUERY_CHARS,
    BadSearch,
    Hit,
    ReleaseInfo,
    ReleaseRef,
    SearchError,
    SearchRequest,
    SearchResult,
    SearchService,
    SearchUnavailable,
)

API_PREFIX = "/api/v1"
logger = logging.getLogger(__name__)
_STATUS = {"bad_search": 400, "bad_filter": 400, "unknown_release": 404, "unavailable": 503}
# Module-level: FastAPI resolves the (string) annotations of the endpoints and dependencies in this module's globals.
_BEARER = HTTPBearer(auto_error=False, description="serve.read_token, when one is configured")
_GET_PARAMETERS = frozenset(
    {"query", "k", "mode", "release", "source", "locale", "section", "updated_after", "min_score", "per_article"}
)

ModeParam = Literal["vector", "fulltext", "hybrid"]
_FilterValues = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=MAX_FILTER_CHARS)]], Field(max_length=MAX_FILTER_VALUES)
]


class SearchBody(BaseModel):
    """One search. Filters combine with AND; the values of one filter with OR."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="The question, as a user would ask it.")
    k: int = Field(default=5, ge=1, le=MAX_K, description="How many hits.")
    mode: ModeParam = Field(default="hybrid", description="vector, fulltext (BM25) or hybrid (both, RRF-fused).")
    release: str = Field(
        default="current",
        max_length=64,
        description="A release tag (release-0003), a release number, or 'current'. A pinned release never changes.",
    )
    source: _FilterValues = Field(
        default_factory=list, description="Source ids (kb_sources) to search in: one or a list."
    )
    locale: _FilterValues = Field(
        default_factory=list, description="Locales, e.g. en-us (case-insensitive): one or a list."
    )
    section: _FilterValues = Field(
        default_factory=list, description="Help-center sections (case-insensitive): one or a list."
    )
    updated_after: datetime | None = Field(
        default=None, description="Only articles updated after this moment (ISO 8601; no offset means UTC)."
    )
    min_score: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="The lowest cosine similarity to the query a hit may have (vector and hybrid modes only).",
    )
    per_article: int = Field(
        default=1,
        ge=1,
        le=MAX_K,
        description="Hits per article; articles with identical content count as one article.",
    )

    @field_validator("source", "locale", "section", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def to_request(self) -> SearchRequest:
        return SearchRequest(
            query=self.query,
            k=self.k,
            mode=self.mode,
            release=self.release,
            sources=tuple(self.source),
            locales=tuple(self.locale),
            sections=tuple(self.section),
            updated_after=self.updated_after,
            min_score=self.min_score,
            per_article=self.per_article,
        )


class BatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queries: list[SearchBody] = Field(min_length=1, max_length=MAX_BATCH, description="Answered in order.")


class ReleaseOut(BaseModel):
    tag: str
    seq: int = Field(description="The release number; a rollback is a release of its own.")
    kind: str = Field(description="publish or rollback")
    created_at: datetime
    previous_tag: str

    @classmethod
    def of(cls, ref: ReleaseRef) -> ReleaseOut:
        return cls(tag=ref.tag, seq=ref.seq, kind=ref.kind, created_at=ref.created_at, previous_tag=ref.previous_tag)


class HitOut(BaseModel):
    rank: int
    chunk_id: str
    article_id: str
    source_id: str
    title: str
    url: str
    section: str
    heading_path: list[str] = Field(description="The headings above the chunk, outermost first.")
    heading: str
    locale: str
    updated_at: datetime | None
    text: str = Field(description="The chunk's text.")
    score: float = Field(description="What ranked the hit: cosine similarity, RRF relevance or BM25, by mode.")
    similarity: float | None = Field(description="Cosine similarity to the query (null in fulltext mode).")
    also_in: list[str] = Field(description="URLs of identical articles or chunks folded into this hit.")
    release: str = Field(description="The tag of the release the hit comes from.")

    @classmethod
    def of(cls, hit: Hit, release: str) -> HitOut:
        return cls(
            rank=hit.rank,
            chunk_id=hit.chunk_id,
            article_id=hit.article_id,
            source_id=hit.source_id,
            title=hit.title,
            url=hit.url,
            section=hit.section,
            heading_path=list(hit.heading_path),
            heading=hit.heading,
            locale=hit.locale,
            updated_at=hit.updated_at,
            text=hit.text,
            score=hit.score,
            similarity=hit.similarity,
            also_in=list(hit.also_in),
            release=release,
        )


class SearchOut(BaseModel):
    query: str
    mode: ModeParam
    searched_as: ModeParam = Field(description="hybrid on a release without a full-text index searches as vector.")
    release: ReleaseOut
    hits: list[HitOut]
    collapsed: int = Field(description="Hits left out as duplicates (same or identical article, identical chunk).")

    @classmethod
    def of(cls, result: SearchResult) -> SearchOut:
        return cls(
            query=result.query,
            mode=result.mode,
            searched_as=result.searched_as,
            release=ReleaseOut.of(result.release),
            hits=[HitOut.of(hit, result.release.tag) for hit in result.hits],
            collapsed=result.collapsed,
        )


class BatchOut(BaseModel):
    results: list[SearchOut]


class ReleasesOut(BaseModel):
    current: str = Field(description="The tag of the current release.")
    releases: list[ReleaseOut] = Field(description="Newest first.")


class ReleaseDetailOut(BaseModel):
    release: ReleaseOut
    current: bool
    manifest: dict[str, Any] = Field(description="Model, counts, chunking policy, checks and sources of the release.")

    @classmethod
    def of(cls, info: ReleaseInfo) -> ReleaseDetailOut:
        return cls(release=ReleaseOut.of(info.release), current=info.current, manifest=info.manifest)


class ErrorOut(BaseModel):
    detail: str
    code: str
    field: str = ""


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": why}
    for status, why in (
        (400, "A bad filter or search: an unknown source, locale, section or query parameter; min_score in fulltext."),
        (401, "A read token is configured and the request does not carry it."),
        (403, "No read token is configured and the client is not on this machine."),
        (404, "No such release."),
        (422, "A parameter of the wrong type or out of bounds (a mode that is not one, k over 50, a bad date)."),
        (503, "No index or release yet, or the query model cannot be loaded."),
    )
}


def _loopback(host: str | None) -> bool:
    try:
        address = ip_address(host or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _error(status: int, detail: str, code: str, field: str = "") -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(ErrorOut(detail=detail, code=code, field=field).model_dump(), status, headers=headers)


class _Refused(Exception):
    def __init__(self, status: int, detail: str, code: str) -> None:
        super().__init__(detail)
        self.status, self.detail, self.code = status, detail, code


def search_api(settings: Settings, *, search: SearchService | None = None) -> FastAPI:
    """The API for one index database, to mount at :data:`API_PREFIX`. ``search`` replaces the use case built
    from ``settings`` (tests inject one with a fake embedder)."""
    service = search or SearchService(settings)
    token = settings.serve.read_token.get_secret_value().encode("utf-8") if settings.serve.read_token else None

    def reader(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        if token is None:
            if not _loopback(request.client.host if request.client else None):
                raise _Refused(
                    403, "this API answers only on this machine until serve.read_token is configured", "forbidden"
                )
            return
        given = credentials.credentials.encode("utf-8") if credentials else b""
        if not hmac.compare_digest(given, token):
            raise _Refused(401, "a valid read token is required: Authorization: Bearer <serve.read_token>", "no_token")

    api = FastAPI(
        title="kbcurator search API",
        version=__version__,
        description=(
            "Search the published help-center index as a RAG service does: vector, full-text or hybrid search, "
            "filtered by source, locale, section and date, at most one hit per article by default, on the "
            "current release or pinned to one."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind the same check as the rest of the API
        servers=[{"url": API_PREFIX}],
        dependencies=[Depends(reader)],
        responses=_ERRORS,
    )

    @api.exception_handler(_Refused)
    async def refused(_request: Request, exc: _Refused) -> JSONResponse:
        return _error(exc.status, exc.detail, exc.code)

    @api.exception_handler(SearchError)
    async def search_error(_request: Request, exc: SearchError) -> JSONResponse:
        if isinstance(exc, SearchUnavailable):
            if exc.public == str(exc):
                return _error(503, exc.public, exc.code)
            logger.error("search API: %s", exc)  # the whole story for the operator; the client gets the headline
            return _error(503, f"{exc.public} (the server's log says why)", exc.code)
        return _error(_STATUS.get(exc.code, 400), str(exc), exc.code, exc.field)

    @api.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        fields = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("query", "body", "path"))
            fields.append(where)
            problems.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
        return _error(422, "; ".join(problems) or "invalid request", "invalid_request", ", ".join(fields))

    @api.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return api.openapi()

    @api.get("/search", response_model=SearchOut, summary="Search (query parameters)")
    def search_get(
        request: Request,
        query: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="The question.")],
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 5,
        mode: ModeParam = "hybrid",
        release: Annotated[str, Query(max_length=64, description="A tag, a release number or 'current'.")] = "current",
        source: Annotated[list[str] | None, Query(max_length=MAX_FILTER_VALUES, description="Repeatable.")] = None,
        locale: Annotated[list[str] | None, Query(max_length=MAX_FILTER_VALUES, description="Repeatable.")] = None,
        section: Annotated[list[str] | None, Query(max_length=MAX_FILTER_VALUES, description="Repeatable.")] = None,
        updated_after: Annotated[datetime | None, Query(description="ISO 8601; no offset means UTC.")] = None,
        min_score: Annotated[float | None, Query(ge=-1.0, le=1.0, description="Lowest cosine similarity.")] = None,
        per_article: Annotated[int, Query(ge=1, le=MAX_K)] = 1,
    ) -> SearchOut:
        unknown = sorted(set(request.query_params) - _GET_PARAMETERS)
        if unknown:  # a misspelt filter must not silently search everything
            raise BadSearch(
                f"unknown parameter {unknown[0][:40]!r} (known: {', '.join(sorted(_GET_PARAMETERS))})",
                field=unknown[0][:40],
            )
        wanted = SearchRequest(
            query=query,
            k=k,
            mode=mode,
            release=release,
            sources=tuple(source or ()),
            locales=tuple(locale or ()),
            sections=tuple(section or ()),
            updated_after=updated_after,
            min_score=min_score,
            per_article=per_article,
        )
        return SearchOut.of(service.search(wanted))

    @api.post("/search", response_model=SearchOut, summary="Search (JSON body)")
    def search_post(body: SearchBody) -> SearchOut:
        return SearchOut.of(service.search(body.to_request()))

    @api.post("/search/batch", response_model=BatchOut, summary=f"Up to {MAX_BATCH} searches in one request")
    def search_batch(body: BatchBody) -> BatchOut:
        results = service.search_many([item.to_request() for item in body.queries])
        return BatchOut(results=[SearchOut.of(result) for result in results])

    @api.get("/releases", response_model=ReleasesOut, summary="Every release, newest first")
    def releases() -> ReleasesOut:
        current = service.release("current")
        return ReleasesOut(current=current.release.tag, releases=[ReleaseOut.of(ref) for ref in service.releases()])

    @api.get("/releases/{tag}", response_model=ReleaseDetailOut, summary="One release and its manifest")
    def release(
        tag: Annotated[str, Path(max_length=64, description="A tag, a number or 'current'.")],
    ) -> ReleaseDetailOut:
        return ReleaseDetailOut.of(service.release(tag))

    return api
