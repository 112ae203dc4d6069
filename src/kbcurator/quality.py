"""Run data-quality suites on the frames about to be published, and fail closed.

The suites themselves live in ``checks/`` (one per data contract); this module only prepares the frames,
runs whatever suites it is handed with Great Expectations 1.x, and turns the result into a small,
GX-free report. Anything that stops a suite from giving a verdict (a missing frame, an empty suite,
GX raising) is a failed check, never a pass: a publish is allowed only on positive evidence.

The human-readable view of a run is our own single ``index.html`` (template ``templates/data_docs.html.j2``),
not GX's Data Docs site: that site loads its CSS and scripts from CDNs, so it is blank offline, and it
renders unexpected values (customer-controlled URLs, titles, locales) into pages that run script. Ours has
inline CSS, no script and no external resource, and the template autoescapes every value.

Typical use at a flow's publish step::

    frames = prepare_for_checks(articles, chunks)
    report = run_suites(frames, build_release_suites(params), docs_dir=run_dir / "data_docs")
    raise_if_failed(report)
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kbcurator.errors import ValidationFailed

if TYPE_CHECKING:
    import great_expectations as gx

ARTICLES_FRAME = "articles"
CHUNKS_FRAME = "chunks"

# Columns that hold lists/arrays. No expectation reads them (their scalar summaries are derived
# instead), and unhashable cells make GX fingerprint the batch by pickling the whole frame.
_LIST_COLUMNS = ("vector", "links", "heading_path")

# Pseudo-expectation names for checks that could not run; they show up in ``report.failed``.
NO_SUITES = "suites_present"
FRAME_MISSING = "frame_present"
EMPTY_SUITE = "suite_has_expectations"
SUITE_ERROR = "suite_ran"
INCONSISTENT_RESULT = "suite_result_consistent"
_PSEUDO_EXPECTATIONS = frozenset({NO_SUITES, FRAME_MISSING, EMPTY_SUITE, SUITE_ERROR, INCONSISTENT_RESULT})

# Columns that identify a row in failure samples, most specific first.
_ID_COLUMNS = ("chunk_id", "article_id")
_OBSERVED_MAX_CHARS = 160
_DOCS_TEMPLATE = "data_docs.html.j2"
_DOCS_VALUE_MAX_CHARS = 300
# Expectation kwargs that say nothing about what was checked (the column has its own cell).
_HIDDEN_KWARGS = frozenset({"batch_id", "column", "result_format", "catch_exceptions", "include_config"})


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One expectation's verdict, in plain values (no GX objects)."""

    suite: str
    expectation: str  # GX expectation type, e.g. "expect_column_values_to_be_unique", or a pseudo name
    column: str | None
    success: bool
    observed: str

    @property
    def label(self) -> str:
        """``suite.expectation(column)``: how a failure is named in errors and logs."""
        where = f"({self.column})" if self.column else ""
        return f"{self.suite}.{self.expectation}{where}"


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The verdict of a release's suites.

    ``results_json`` holds GX's own validation results (JSON-safe) per suite, to be stored with the
    index version; ``data_docs_path`` is the written ``index.html`` page when docs were asked for.
    """

    success: bool
    outcomes: tuple[CheckOutcome, ...]
    results_json: dict[str, Any]
    data_docs_path: str | None = None
    skipped: str = ""  # why no suite ran (the candidate is the release already checked), or "" when they ran

    @classmethod
    def not_run(cls, why: str) -> ValidationReport:
        """No suite ran, for a reason that makes it safe: ``why`` says which (it is shown where results would be).

        Only for a candidate identical to a release that passed its checks when it was published: nothing is
        published from it, so nothing it holds goes out unchecked.
        """
        return cls(success=True, outcomes=(), results_json={"success": True, "skipped": why}, skipped=why)

    @property
    def failed(self) -> tuple[CheckOutcome, ...]:
        return tuple(outcome for outcome in self.outcomes if not outcome.success)

    def summary_markdown(self) -> str:
        """A short Markdown verdict and a table of every check (for a Prefect artifact or a PR)."""
        if self.skipped:
            return f"**Validation not run**: {_md_cell(self.skipped)}.\n"
        passed = sum(outcome.success for outcome in self.outcomes)
        verdict = "passed" if self.success else "FAILED"
        lines = [
            f"**Validation {verdict}**: {passed} of {len(self.outcomes)} checks passed.",
            "",
            "| suite | expectation | column | result | observed |",
            "|---|---|---|---|---|",
        ]
        # Failures first: they are what a reader of a blocked publish is looking for.
        for outcome in sorted(self.outcomes, key=lambda o: o.success):
            cells = (
                outcome.suite,
                outcome.expectation,
                outcome.column or "",
                "pass" if outcome.success else "**fail**",
                outcome.observed,
            )
            lines.append("| " + " | ".join(_md_cell(cell) for cell in cells) + " |")
        if self.data_docs_path:
            lines += ["", f"Data Docs: {_md_code(self.data_docs_path)}"]
        return "\n".join(lines) + "\n"


def prepare_for_checks(articles: pd.DataFrame, chunks: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Return the frames to check, with scalar columns derived from what GX cannot check directly.

    Both frames get ``text_length``; chunks also get ``vector_dim`` (0 when the vector is missing),
    ``vector_finite`` (False when missing, empty, non-numeric or holding NaN/inf) and
    ``article_present`` (the chunk's ``article_id`` is one of the articles'). List columns, the heavy
    ``vector`` included, are dropped. A derived column whose source column is absent is left out, so
    the expectation that reads it fails instead of passing on a made-up value. Inputs are not modified.
    """
    checked_articles = articles.drop(columns=[c for c in _LIST_COLUMNS if c in articles.columns])
    if "text" in articles.columns:
        checked_articles["text_length"] = _text_lengths(articles["text"])

    checked_chunks = chunks.drop(columns=[c for c in _LIST_COLUMNS if c in chunks.columns])
    if "text" in chunks.columns:
        checked_chunks["text_length"] = _text_lengths(chunks["text"])
    if "vector" in chunks.columns:
        stats = [_vector_stats(value) for value in chunks["vector"]]
        checked_chunks["vector_dim"] = np.array([dim for dim, _ in stats], dtype=np.int64)
        checked_chunks["vector_finite"] = np.array([finite for _, finite in stats], dtype=bool)
    if "article_id" in chunks.columns:
        known = set(articles["article_id"].dropna()) if "article_id" in articles.columns else set()
        checked_chunks["article_present"] = chunks["article_id"].isin(known).to_numpy(dtype=bool)
    return {ARTICLES_FRAME: checked_articles, CHUNKS_FRAME: checked_chunks}


# Article and chunk columns no expectation reads: only their lengths are checked (``text_length``).
_HEAVY_TEXT_COLUMNS = ("text", "body_html")
_VECTOR_BLOCK_ROWS = 65_536


def columns_read(suites: Mapping[str, gx.ExpectationSuite]) -> dict[str, set[str]]:
    """Per frame, the columns its suite's expectations read, and the ids that name a row in a failure's sample."""
    read: dict[str, set[str]] = {}
    for name, suite in suites.items():
        columns = (getattr(expectation, "column", None) for expectation in suite.expectations)
        read[name] = {str(column) for column in columns if column} | set(_ID_COLUMNS)
    return read


def frames_from_tables(
    articles: pa.Table | Iterable[pa.RecordBatch],
    chunks: pa.Table | Iterable[pa.RecordBatch],
    *,
    columns: Mapping[str, set[str]] | None = None,
) -> dict[str, pd.DataFrame]:
    """:func:`prepare_for_checks` for a candidate's Arrow tables, without a pandas copy of its text and vectors.

    Each table is given whole, or as its rows a batch at a time (a staged candidate: it is never read whole; the
    batches carry the table's columns). ``text_length``, ``vector_dim`` and ``vector_finite`` are derived from the
    Arrow columns as :func:`prepare_for_checks` derives them from pandas ones; the text, the HTML and the vectors
    themselves never reach pandas (at 200k chunks, their pandas copy held about 1.5 GB, a small array a vector).
    ``columns``: per frame, the only columns to keep (:func:`columns_read` of the suites); default: every scalar one.
    """
    keep = columns or {}
    return prepare_for_checks(
        _light_frames(articles, keep.get(ARTICLES_FRAME)), _light_frames(chunks, keep.get(CHUNKS_FRAME))
    )


def _light_frames(rows: pa.Table | Iterable[pa.RecordBatch], keep: set[str] | None) -> pd.DataFrame:
    if isinstance(rows, pa.Table):
        return _light_frame(rows, keep)
    parts = [_light_frame(pa.Table.from_batches([batch]), keep) for batch in rows]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _light_frame(table: pa.Table, keep: set[str] | None) -> pd.DataFrame:
    derived: dict[str, np.ndarray] = {}
    if "text" in table.column_names:
        lengths = pc.fill_null(pc.utf8_length(table["text"]), 0).cast(pa.int64())
        derived["text_length"] = np.asarray(lengths.to_numpy(zero_copy_only=False), dtype=np.int64)
    if "vector" in table.column_names:
        derived["vector_dim"], derived["vector_finite"] = _vector_columns(table["vector"])
    dropped = {*_HEAVY_TEXT_COLUMNS, *_LIST_COLUMNS}
    # article_id stays: prepare_for_checks derives the chunks' article_present from both frames' ids.
    wanted = [c for c in table.column_names if c not in dropped and (keep is None or c in keep or c == "article_id")]
    frame = _owned(table.select(wanted)).to_pandas()
    for name, values in derived.items():
        if keep is None or name in keep:
            frame[name] = values
    return frame


def _owned(table: pa.Table) -> pa.Table:
    """``table``'s columns copied into buffers of their own.

    A page read from LanceDB arrives as record batches whose columns share one release callback, so a zero-copy
    view of any one column (pandas 3 keeps strings as Arrow arrays, numbers as views) keeps the whole page alive,
    text and vectors included: the checks' frames of 200,000 chunk rows held 14 MB of their own and 580 MB of pages.
    """
    return pa.table(
        {
            name: pa.concat_arrays(column.chunks) if column.num_chunks else column
            for name, column in zip(table.column_names, table.columns, strict=True)
        },
        schema=table.schema,
    )


def _vector_columns(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, as :func:`_vector_stats` says it: the vector's dimension (0 when missing) and whether it is a
    non-empty vector of finite numbers."""
    array = column.combine_chunks()
    count = len(array)
    valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if not pa.types.is_fixed_size_list(array.type):  # variable lists: rare (a hand-made table), row by row
        stats = [_vector_stats(value) for value in array.to_pylist()]
        return np.array([d for d, _ in stats], dtype=np.int64), np.array([f for _, f in stats], dtype=bool)
    dimension = array.type.list_size
    dims = np.where(valid, dimension, 0).astype(np.int64)
    finite = valid & (dimension > 0)
    values = array.values.slice(array.offset * dimension, count * dimension)
    matrix = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(count, dimension)
    for start in range(0, count, _VECTOR_BLOCK_ROWS):  # bounds the boolean matrix
        block = slice(start, start + _VECTOR_BLOCK_ROWS)
        finite[block] &= np.isfinite(matrix[block]).all(axis=1)
    return dims, finite


def run_suites(
    frames: Mapping[str, pd.DataFrame],
    suites: Mapping[str, gx.ExpectationSuite],
    *,
    docs_dir: Path | None = None,
) -> ValidationReport:
    """Validate ``frames[name]`` against ``suites[name]`` for every suite, and report.

    Suites are keyed by the frame they check; the key names the suite in the report. The caller's
    suite objects are copied, never bound to the private GX context used here, so one set of suites
    can be run many times. Frames without a suite are ignored.

    The report fails when any expectation fails, when a suite has no frame or no expectations, when
    GX raises, or when no suite is given at all. GX exceptions do not escape.

    Args:
        frames: Frames by name, typically from :func:`prepare_for_checks`.
        suites: Suites by frame name, typically from ``checks.build_release_suites``.
        docs_dir: When given, a self-contained ``index.html`` (verdict, then every expectation of every
            suite with its result, arguments, observed value and, for failures, sample unexpected values
            and their row ids) is written there, replacing any earlier one, and ``data_docs_path``
            points to it. A docs failure is recorded in ``results_json["data_docs_error"]`` but does
            not change the verdict, which depends on the data alone.
    """
    outcomes: list[CheckOutcome] = []
    suite_results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if not suites:
        outcomes.append(CheckOutcome("*", NO_SUITES, None, False, "no suite was given: nothing was checked"))

    context: Any = None
    if suites:
        try:
            context = _new_context()
        except Exception as exc:  # fail closed: no context means no verdict
            errors["*"] = _describe(exc)
            outcomes.append(CheckOutcome("*", SUITE_ERROR, None, False, _clip(errors["*"])))

    for name, suite in suites.items() if context is not None else ():
        frame = frames.get(name)
        if not isinstance(frame, pd.DataFrame):
            found = "no frame" if frame is None else f"a {type(frame).__name__}, not a pandas DataFrame,"
            outcomes.append(CheckOutcome(name, FRAME_MISSING, None, False, f"{found} named {name!r}"))
            continue
        if not getattr(suite, "expectations", None):
            outcomes.append(CheckOutcome(name, EMPTY_SUITE, None, False, "the suite has no expectations"))
            continue
        try:
            result = _validate(context, name, suite, frame)
            result_json = _json_safe(result.to_json_dict())
        except Exception as exc:  # GX (or pandas under it) raised: map it to a failed check
            errors[name] = _describe(exc)
            outcomes.append(CheckOutcome(name, SUITE_ERROR, None, False, _clip(errors[name])))
            continue
        suite_results[name] = result_json
        suite_outcomes = [_outcome(name, entry) for entry in result_json.get("results", [])]
        outcomes.extend(suite_outcomes)
        if not result_json.get("success") and all(o.success for o in suite_outcomes):
            # GX said no without naming an expectation; trust the "no".
            observed = "GX reported a failure that no expectation did"
            outcomes.append(CheckOutcome(name, INCONSISTENT_RESULT, None, False, observed))

    from importlib.metadata import version

    results_json: dict[str, Any] = {
        "success": bool(outcomes) and all(o.success for o in outcomes),
        "great_expectations_version": version("great_expectations"),
        "suites": suite_results,
        "errors": errors,
    }
    data_docs_path: str | None = None
    if docs_dir is not None:
        try:
            data_docs_path = _write_docs(Path(docs_dir), outcomes, results_json)
        except Exception as exc:  # docs are a view of the verdict, not part of it
            results_json["data_docs_error"] = _describe(exc)
    return ValidationReport(
        success=results_json["success"],
        outcomes=tuple(outcomes),
        results_json=results_json,
        data_docs_path=data_docs_path,
    )


def raise_if_failed(report: ValidationReport) -> None:
    """Raise ``ValidationFailed`` naming every failed check; return quietly when the report passed."""
    if report.success:
        return
    failed = report.failed
    labels = [outcome.label for outcome in failed] or ["validation did not pass"]
    details = "; ".join(f"{outcome.label}: {outcome.observed}" for outcome in failed[:10])
    more = f" (and {len(failed) - 10} more)" if len(failed) > 10 else ""
    raise ValidationFailed(f"data-quality checks failed, publish blocked: {details or labels[0]}{more}", failed=labels)


def _new_context() -> Any:
    """A private in-memory GX context: nothing persisted, no Data Docs site, no progress bars."""
    # Great Expectations is imported here, not with the module: it costs ~8 s of a cold start, and a run whose
    # release did not change validates nothing.
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        # init_temp_docs_sites=False: without it each context reserves a temp-dir docs site we never use.
        # No data_docs_sites either: GX's pages pull CDN assets and render values unescaped (see the top).
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    context = gx.get_context(project_config=config, mode="ephemeral")
    context.data_sources.add_pandas(name="kbcurator")
    return context


def _validate(context: Any, name: str, suite: gx.ExpectationSuite, frame: pd.DataFrame) -> Any:
    """Run one suite on one frame through a whole-dataframe batch; returns GX's suite result."""
    import great_expectations as gx

    datasource = context.data_sources.get("kbcurator")
    batch_definition = datasource.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("whole")
    # A copy under the frame's name: adding the caller's suite would bind it (and its expectations'
    # ids) to this throwaway context, and a second run would then refuse it.
    own_suite = context.suites.add(
        gx.ExpectationSuite(
            name=name,
            expectations=[copy.copy(expectation) for expectation in suite.expectations],
            meta=copy.deepcopy(suite.meta),
            notes=suite.notes,
        )
    )
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{name}_release", data=batch_definition, suite=own_suite)
    )
    # SUMMARY keeps a few unexpected values per failure: small enough to store with the release. The
    # row's id rides along because a bad derived value ("vector_dim 0") says little without it.
    result_format: dict[str, Any] = {"result_format": "SUMMARY"}
    id_column = next((column for column in _ID_COLUMNS if column in frame.columns), None)
    if id_column is not None:
        result_format["unexpected_index_column_names"] = [id_column]
    return validation.run(batch_parameters={"dataframe": frame}, result_format=result_format)


@dataclass(frozen=True, slots=True)
class _DocRow:
    """One expectation as the docs page shows it; every field is plain text, escaped by the template."""

    success: bool
    expectation: str
    column: str
    arguments: str
    observed: str
    unexpected: tuple[tuple[str, str], ...]  # (value, row id) pairs; either may be ""


@dataclass(frozen=True, slots=True)
class _DocSuite:
    name: str
    rows: tuple[_DocRow, ...]

    @property
    def success(self) -> bool:
        return all(row.success for row in self.rows)

    @property
    def passed(self) -> int:
        return sum(row.success for row in self.rows)


@functools.cache
def _docs_environment() -> jinja2.Environment:
    # Built on first use, not at import: a missing template then surfaces as a docs error, not an ImportError.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("kbcurator", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _write_docs(docs_dir: Path, outcomes: list[CheckOutcome], results_json: Mapping[str, Any]) -> str:
    """Write ``docs_dir/index.html`` for this run and return its absolute path."""
    suites = _doc_suites(outcomes, results_json)
    html = (
        _docs_environment()
        .get_template(_DOCS_TEMPLATE)
        .render(
            success=bool(results_json.get("success")),
            passed=sum(outcome.success for outcome in outcomes),
            total=len(outcomes),
            suites=suites,
            gx_version=str(results_json.get("great_expectations_version", "")),
            written_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        )
    )
    index = docs_dir.resolve() / "index.html"
    index.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed, so a reader never sees half a page.
    partial = index.with_name(".index.html.partial")
    partial.write_text(html, encoding="utf-8")
    partial.replace(index)
    return str(index)


def _doc_suites(outcomes: list[CheckOutcome], results_json: Mapping[str, Any]) -> list[_DocSuite]:
    """Every suite in the order it was reported: GX's entries where it ran, then its pseudo checks."""
    suite_results: Mapping[str, Any] = results_json.get("suites") or {}
    errors: Mapping[str, str] = results_json.get("errors") or {}
    names = list(dict.fromkeys(outcome.suite for outcome in outcomes))
    suites = []
    for name in names:
        rows = [_doc_row(name, entry) for entry in (suite_results.get(name) or {}).get("results", [])]
        for outcome in outcomes:
            if outcome.suite == name and outcome.expectation in _PSEUDO_EXPECTATIONS:
                # The error in full: the outcome's copy is clipped for one-line messages.
                observed = (
                    errors.get(name, outcome.observed) if outcome.expectation == SUITE_ERROR else outcome.observed
                )
                rows.append(_DocRow(outcome.success, outcome.expectation, outcome.column or "", "", observed, ()))
        suites.append(_DocSuite(name, tuple(rows)))
    return suites


def _doc_row(suite: str, entry: Mapping[str, Any]) -> _DocRow:
    outcome = _outcome(suite, entry)  # the same verdict as the report's, raised expectations included
    kwargs = (entry.get("expectation_config") or {}).get("kwargs") or {}
    arguments = ", ".join(
        f"{key}={_doc_value(value, quote=False)}"
        for key, value in kwargs.items()
        if key not in _HIDDEN_KWARGS and value is not None
    )
    result = entry.get("result") or {}
    error = _exception_message(entry.get("exception_info"))
    if error is not None:
        observed = f"error: {error}"
    elif "observed_value" in result:
        observed = _doc_value(result["observed_value"])
    elif "unexpected_count" in result:
        observed = f"{result.get('unexpected_count')} of {result.get('element_count')} unexpected"
        percent = result.get("unexpected_percent")
        if isinstance(percent, int | float) and result.get("unexpected_count"):
            observed += f" ({percent:.3g}%)"
    else:
        observed = "no details"
    unexpected: tuple[tuple[str, str], ...] = ()
    if not outcome.success:
        values = [_doc_value(value) for value in result.get("partial_unexpected_list") or []]
        id_columns = [str(column) for column in result.get("unexpected_index_column_names") or []]
        rows = [_row_id(row, id_columns) for row in result.get("partial_unexpected_index_list") or []]
        # GX lists both in row order, up to the same limit, so they pair up by position.
        unexpected = tuple(
            (values[i] if i < len(values) else "", rows[i] if i < len(rows) else "")
            for i in range(max(len(values), len(rows)))
        )
    return _DocRow(outcome.success, outcome.expectation, outcome.column or "", arguments, observed, unexpected)


def _row_id(row: Any, id_columns: list[str]) -> str:
    """``chunk_id=docs:…#3`` for a row named by its id column, ``row 3`` for a bare index."""
    if isinstance(row, Mapping):
        keys = [column for column in id_columns if column in row] or [str(key) for key in row]
        return ", ".join(f"{key}={_doc_value(row.get(key), quote=False)}" for key in keys)
    return f"row {_doc_value(row, quote=False)}"


def _doc_value(value: Any, *, quote: bool = True) -> str:
    # repr shows what a bad value really is (a trailing newline, a number stored as text); clipped, not
    # collapsed, so whitespace stays visible. Unquoted for text that is ours (arguments, row ids).
    text = repr(value) if quote or not isinstance(value, str) else value
    return text if len(text) <= _DOCS_VALUE_MAX_CHARS else text[: _DOCS_VALUE_MAX_CHARS - 1] + "…"


def _outcome(suite: str, entry: Mapping[str, Any]) -> CheckOutcome:
    config = entry.get("expectation_config") or {}
    kwargs = config.get("kwargs") or {}
    column = kwargs.get("column")
    error = _exception_message(entry.get("exception_info"))
    return CheckOutcome(
        suite=suite,
        expectation=str(config.get("type", "unknown_expectation")),
        column=str(column) if column is not None else None,
        # An expectation that raised did not pass, whatever its success flag says.
        success=bool(entry.get("success")) and error is None,
        observed=_clip(f"error: {error}" if error is not None else _observed(entry) + _bounds(kwargs)),
    )


def _bounds(kwargs: Mapping[str, Any]) -> str:
    """What the check allowed, so that a failure reads "observed 127, expected >= 173"."""
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and high is not None:
        return f", expected {low}..{high}"
    if low is not None:
        return f", expected >= {low}"
    if high is not None:
        return f", expected <= {high}"
    return ""


def _exception_message(info: Any) -> str | None:
    """The message of an expectation that raised, else None.

    GX reports either one ``{"raised_exception": ..., "exception_message": ...}`` dict or, when a metric
    failed (a missing column, say), such a dict per metric id.
    """
    if not isinstance(info, Mapping):
        return None
    if "raised_exception" in info:
        candidates = [info]
    else:
        candidates = [value for value in info.values() if isinstance(value, Mapping)]
    for candidate in candidates:
        if candidate.get("raised_exception"):
            return str(candidate.get("exception_message") or "the expectation raised")
    return None


def _observed(entry: Mapping[str, Any]) -> str:
    result = entry.get("result") or {}
    if "observed_value" in result:
        return f"observed {result['observed_value']!r}"
    if "unexpected_count" in result:
        text = f"{result.get('unexpected_count')} of {result.get('element_count')} unexpected"
        samples = result.get("partial_unexpected_list") or []
        if samples:
            text += f", e.g. {samples[:3]!r}"
        id_columns = result.get("unexpected_index_column_names") or []
        rows = [row for row in result.get("partial_unexpected_index_list") or [] if isinstance(row, dict)]
        if id_columns and rows:
            text += f" at {id_columns[0]} {[row.get(id_columns[0]) for row in rows[:3]]!r}"
        return text
    return "no details"


def _text_lengths(texts: pd.Series) -> np.ndarray:
    # Missing text counts as empty, so the length bound catches it.
    return np.array([len(text) if isinstance(text, str) else 0 for text in texts], dtype=np.int64)


def _vector_stats(value: Any) -> tuple[int, bool]:
    """``(dimension, all finite)``; a missing or non-numeric vector is ``(0, False)``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0, False
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return (len(value) if hasattr(value, "__len__") else 0), False
    if array.ndim != 1:  # a scalar or a matrix is not an embedding
        return (0 if array.ndim == 0 else len(array)), False
    return len(array), bool(array.size) and bool(np.isfinite(array).all())


def _json_safe(value: Any) -> Any:
    """GX's dict with NaN/inf replaced by None, so strict JSON readers accept what is stored."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    # Anything GX left unconverted is stored as its string form rather than failing the dump later.
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _OBSERVED_MAX_CHARS else text[: _OBSERVED_MAX_CHARS - 1] + "…"


# Characters that would let a value end a table cell, open a code span or become HTML where the Markdown
# is rendered (a Prefect artifact, a PR comment; renderers may pass HTML through): replaced by entities that
# display as themselves. "&" first, so the entities added here are not escaped again; the backslash because
# Markdown would read it as escaping the "&" of the entity after it.
_MD_ENTITIES = (("&", "&amp;"), ("\\", "&#92;"), ("<", "&lt;"), (">", "&gt;"), ("`", "&#96;"), ("|", "&#124;"))


def _md_cell(text: str) -> str:
    """``text`` as one Markdown table cell: one line, no raw ``< > ` |``, never HTML."""
    text = " ".join(text.split())
    for char, entity in _MD_ENTITIES:
        text = text.replace(char, entity)
    return text


def _md_code(text: str) -> str:
    """``text`` as inline code, or as escaped text when it holds what would break out of a code span."""
    if any(char in text for char in "`<>|\n"):
        return _md_cell(text)
    return f"`{text}`"
