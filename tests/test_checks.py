"""The release suites (checks/) run by kbcurator.quality on a good release and on one bad clause at a time."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from checks import (
    ARTICLES_SUITE,
    CHUNKS_SUITE,
    RELEASE_SUITE_NAMES,
    ReleaseCheckParams,
    build_release_suites,
    min_rows_after_drop,
)
from kbcurator.errors import ConfigError, ValidationFailed
from kbcurator.quality import (
    EMPTY_SUITE,
    FRAME_MISSING,
    NO_SUITES,
    SUITE_ERROR,
    ValidationReport,
    columns_read,
    frames_from_tables,
    prepare_for_checks,
    raise_if_failed,
    run_suites,
)
from kbcurator.records import sha256_hex
from kbcurator.settings import CheckSettings

DIM = 8
PARAMS = ReleaseCheckParams(
    dimension=DIM,
    min_text_chars=1,
    max_chunk_chars=200,
    max_article_chars=2_000,
    min_articles=5,
    min_chunks=12,
)

NOT_NULL = "expect_column_values_to_not_be_null"
UNIQUE = "expect_column_values_to_be_unique"
REGEX = "expect_column_values_to_match_regex"
BETWEEN = "expect_column_values_to_be_between"
IN_SET = "expect_column_values_to_be_in_set"
ROW_COUNT = "expect_table_row_count_to_be_between"


def _articles() -> pd.DataFrame:
    # The URL and locale forms the contract must accept: absolute http(s), relative POSIX paths, and
    # two- and multi-part locale tags.
    urls = [
        "https://help.example.com/hc/en-us/articles/1-reset-password",
        "http://help.example.com/billing?tab=refunds#faq",
        "guides/billing/refunds.md",
        "https://help.example.com/pt-br/artigos/2",
        "setup.html",
    ]
    locales = ["en-us", "en", "en", "pt-br", "zh-hant"]
    ids = [f"docs:{i:012x}" for i in range(5)]
    texts = [f"Article {i}. " + "How to do the thing. " * 5 for i in range(5)]
    return pd.DataFrame(
        {
            "article_id": ids,
            "source_id": "docs",
            "url": urls,
            "title": [f"Title {i}" for i in range(5)],
            "section": "Help",
            "locale": locales,
            "body_html": [f"<p>{text}</p>" for text in texts],
            "text": texts,
            "updated_at": [pd.Timestamp("2026-01-01", tz="UTC")] * 4 + [pd.NaT],
            "content_hash": [sha256_hex(text) for text in texts],
            "links": [["https://help.example.com/"]] * 5,
        }
    )


def _chunks(articles: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for n in range(12):
        article = articles.iloc[n % len(articles)]
        text = f"Chunk {n} of {article['title']}."
        rows.append(
            {
                "chunk_id": f"{article['article_id']}#{n}",
                "article_id": article["article_id"],
                "position": n // len(articles),
                "text": text,
                "heading_path": ["Help", article["title"]],
                "heading": article["title"],
                "char_start": 0,
                "char_end": len(text),
                "content_hash": sha256_hex(text),
                "url": article["url"],
                "title": article["title"],
                "locale": article["locale"],
                "updated_at": article["updated_at"],
                "vector": rng.standard_normal(DIM).astype(np.float32),
            }
        )
    return pd.DataFrame(rows)


def _set_vector(chunks: pd.DataFrame, row: int, value: object) -> None:
    # Via a fresh object column: assigning an array to one cell would make pandas try to broadcast it.
    vectors = list(chunks["vector"])
    vectors[row] = value
    chunks["vector"] = pd.Series(vectors, index=chunks.index, dtype=object)


def _failed(report: ValidationReport) -> set[tuple[str, str, str | None]]:
    return {(outcome.suite, outcome.expectation, outcome.column) for outcome in report.failed}


@pytest.fixture(scope="module")
def suites() -> dict[str, gx.ExpectationSuite]:
    # Built once and reused by every test: run_suites must leave the caller's suites reusable.
    return build_release_suites(PARAMS)


@pytest.fixture(scope="module")
def good_frames() -> dict[str, pd.DataFrame]:
    articles = _articles()
    return prepare_for_checks(articles, _chunks(articles))


@pytest.fixture(scope="module")
def good_report(suites: dict[str, gx.ExpectationSuite], good_frames: dict[str, pd.DataFrame]) -> ValidationReport:
    return run_suites(good_frames, suites)


def test_good_release_passes_every_expectation(
    good_report: ValidationReport, suites: dict[str, gx.ExpectationSuite]
) -> None:
    assert good_report.success, good_report.summary_markdown()
    assert good_report.failed == ()
    expected_count = sum(len(suite.expectations) for suite in suites.values())
    assert len(good_report.outcomes) == expected_count
    assert {outcome.suite for outcome in good_report.outcomes} == set(RELEASE_SUITE_NAMES)
    # What gets stored with the index version must be strict JSON and hold GX's result per suite.
    stored = json.loads(json.dumps(good_report.results_json, allow_nan=False))
    assert stored["success"] is True
    assert set(stored["suites"]) == {ARTICLES_SUITE, CHUNKS_SUITE}
    assert all(result["success"] for result in stored["suites"].values())
    # The caller's suites were copied, not bound to the private context, so they run again.
    assert all(exp.id is None for suite in suites.values() for exp in suite.expectations)


def test_prepare_for_checks_derives_scalars_and_drops_lists() -> None:
    articles = _articles()
    chunks = _chunks(articles)
    chunks.loc[0, "article_id"] = "docs:ghost"
    _set_vector(chunks, 1, None)
    _set_vector(chunks, 2, [1.0] * (DIM - 1) + [float("-inf")])

    frames = prepare_for_checks(articles, chunks)

    checked = frames["chunks"]
    assert not {"vector", "heading_path"} & set(checked.columns)
    assert "links" not in frames["articles"].columns
    assert "vector" in chunks.columns  # the caller's frame is untouched
    assert checked["vector_dim"].tolist()[:4] == [DIM, 0, DIM, DIM]
    assert checked["vector_finite"].tolist()[:4] == [True, False, False, True]
    assert checked["article_present"].tolist()[:2] == [False, True]
    assert checked["text_length"].tolist() == [len(text) for text in chunks["text"]]
    assert frames["articles"]["text_length"].tolist() == [len(text) for text in articles["text"]]


Mutation = Callable[[pd.DataFrame, pd.DataFrame], None]


def _dup_chunk_id(a: pd.DataFrame, c: pd.DataFrame) -> None:
    c.loc[1, "chunk_id"] = c.loc[0, "chunk_id"]


def _null_chunk_article_id(a: pd.DataFrame, c: pd.DataFrame) -> None:
    c.loc[3, "article_id"] = None


def _null_article_id(a: pd.DataFrame, c: pd.DataFrame) -> None:
    a.loc[0, "article_id"] = None


def _dup_article_id(a: pd.DataFrame, c: pd.DataFrame) -> None:
    a.loc[1, "article_id"] = a.loc[0, "article_id"]


def _empty_chunk_text(a: pd.DataFrame, c: pd.DataFrame) -> None:
    c.loc[4, "text"] = ""


def _long_chunk_text(a: pd.DataFrame, c: pd.DataFrame) -> None:
    c.loc[4, "text"] = "x" * (PARAMS.max_chunk_chars + 1)


def _empty_article_text(a: pd.DataFrame, c: pd.DataFrame) -> None:
    a.loc[2, "text"] = ""


def _nan_in_vector(a: pd.DataFrame, c: pd.DataFrame) -> None:
    vector = np.ones(DIM, dtype=np.float32)
    vector[3] = np.nan
    _set_vector(c, 5, vector)


def _missing_vector(a: pd.DataFrame, c: pd.DataFrame) -> None:
    _set_vector(c, 6, None)


def _wrong_dimension(a: pd.DataFrame, c: pd.DataFrame) -> None:
    _set_vector(c, 7, np.ones(DIM - 1, dtype=np.float32))


def _orphan_chunk(a: pd.DataFrame, c: pd.DataFrame) -> None:
    c.loc[8, "article_id"] = "docs:not-in-this-release"


def _url_with_space(a: pd.DataFrame, c: pd.DataFrame) -> None:
    a.loc[0, "url"] = "https://help.example.com/reset password"


def _relative_url_with_space(a: pd.DataFrame, c: pd.DataFrame) -> None:
    a.loc[2, "url"] = "guides/billing refunds.md"


def _url_with_trailing_newline(a: pd.DataFrame, c: pd.DataFrame) -> None:
    a.loc[1, "url"] = "https://help.example.com/billing\n"


def _null_url(a: pd.DataFrame, c: pd.DataFrame) -> None:
    a.loc[0, "url"] = None


def _bad_locale(a: pd.DataFrame, c: pd.DataFrame) -> None:
    a.loc[1, "locale"] = "EN_us"


def _null_title(a: pd.DataFrame, c: pd.DataFrame) -> None:
    a.loc[3, "title"] = None


def _bad_content_hash(a: pd.DataFrame, c: pd.DataFrame) -> None:
    a.loc[4, "content_hash"] = a.loc[4, "content_hash"].upper()


BAD_CASES: dict[str, tuple[Mutation, set[tuple[str, str, str | None]]]] = {
    "duplicate chunk_id": (_dup_chunk_id, {(CHUNKS_SUITE, UNIQUE, "chunk_id")}),
    "null chunk article_id": (
        _null_chunk_article_id,
        {(CHUNKS_SUITE, NOT_NULL, "article_id"), (CHUNKS_SUITE, IN_SET, "article_present")},
    ),
    # The article's chunks become orphans too: both contracts notice.
    "null article_id": (
        _null_article_id,
        {(ARTICLES_SUITE, NOT_NULL, "article_id"), (CHUNKS_SUITE, IN_SET, "article_present")},
    ),
    # The overwritten id's chunks lose their article.
    "duplicate article_id": (
        _dup_article_id,
        {(ARTICLES_SUITE, UNIQUE, "article_id"), (CHUNKS_SUITE, IN_SET, "article_present")},
    ),
    "empty chunk text": (_empty_chunk_text, {(CHUNKS_SUITE, BETWEEN, "text_length")}),
    "chunk text over the limit": (_long_chunk_text, {(CHUNKS_SUITE, BETWEEN, "text_length")}),
    "empty article text": (_empty_article_text, {(ARTICLES_SUITE, BETWEEN, "text_length")}),
    "NaN in a vector": (_nan_in_vector, {(CHUNKS_SUITE, IN_SET, "vector_finite")}),
    "missing vector": (
        _missing_vector,
        {(CHUNKS_SUITE, BETWEEN, "vector_dim"), (CHUNKS_SUITE, IN_SET, "vector_finite")},
    ),
    "wrong dimension": (_wrong_dimension, {(CHUNKS_SUITE, BETWEEN, "vector_dim")}),
    "chunk whose article is missing": (_orphan_chunk, {(CHUNKS_SUITE, IN_SET, "article_present")}),
    "absolute URL with a space": (_url_with_space, {(ARTICLES_SUITE, REGEX, "url")}),
    "relative URL with a space": (_relative_url_with_space, {(ARTICLES_SUITE, REGEX, "url")}),
    "URL with a trailing newline": (_url_with_trailing_newline, {(ARTICLES_SUITE, REGEX, "url")}),
    "null URL": (_null_url, {(ARTICLES_SUITE, NOT_NULL, "url")}),
    "bad locale": (_bad_locale, {(ARTICLES_SUITE, REGEX, "locale")}),
    "null title": (_null_title, {(ARTICLES_SUITE, NOT_NULL, "title")}),
    "bad content_hash": (_bad_content_hash, {(ARTICLES_SUITE, REGEX, "content_hash")}),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_one_bad_clause_fails_with_that_expectation_named(case: str, suites: dict[str, gx.ExpectationSuite]) -> None:
    mutate, expected = BAD_CASES[case]
    articles = _articles()
    chunks = _chunks(articles)
    mutate(articles, chunks)

    report = run_suites(prepare_for_checks(articles, chunks), suites)

    assert not report.success
    # Exactly the broken clause fails; every other expectation still passes on the same frames.
    assert _failed(report) == expected, report.summary_markdown()
    assert report.results_json["success"] is False


def _as_tables(articles: pd.DataFrame, chunks: pd.DataFrame) -> tuple[pa.Table, pa.Table]:
    """The frames as the Arrow tables a build makes: vectors a fixed-size list (null where missing) when every one
    has the dimension, else a plain list (a vector of another dimension)."""
    vectors = list(chunks["vector"])
    chunk_table = pa.Table.from_pandas(chunks.drop(columns=["vector"]), preserve_index=False)
    fixed = all(v is None or len(v) == DIM for v in vectors)
    values = [None if v is None else [float(x) for x in v] for v in vectors]
    vector_type = pa.list_(pa.float32(), DIM) if fixed else pa.list_(pa.float32())
    chunk_table = chunk_table.append_column("vector", pa.array(values, type=vector_type))
    return pa.Table.from_pandas(articles, preserve_index=False), chunk_table


@pytest.mark.parametrize("case", ["good", *BAD_CASES])
def test_the_checks_of_arrow_tables_give_the_verdicts_of_pandas_frames(
    case: str, suites: dict[str, gx.ExpectationSuite]
) -> None:
    # What a reindex checks: its candidate's Arrow tables, without a pandas copy of their text and vectors.
    articles = _articles()
    chunks = _chunks(articles)
    if case != "good":
        BAD_CASES[case][0](articles, chunks)
    article_table, chunk_table = _as_tables(articles, chunks)

    light = frames_from_tables(article_table, chunk_table)
    read = columns_read(suites)
    batched = frames_from_tables(
        article_table.to_batches(max_chunksize=2), chunk_table.to_batches(max_chunksize=5), columns=read
    )
    from_pandas = run_suites(prepare_for_checks(articles, chunks), suites)

    for frames in (light, batched):
        from_arrow = run_suites(frames, suites)
        assert _failed(from_arrow) == _failed(from_pandas)
        assert from_arrow.success is (case == "good")
        assert not {"text", "body_html", "vector", "links", "heading_path"} & {
            column for frame in frames.values() for column in frame.columns
        }
    for name, frame in batched.items():  # only what the suite reads (and the ids)
        assert set(frame.columns) <= read[name] | {"article_id"}, name


@pytest.mark.parametrize(
    ("floor", "expected"),
    [
        ({"min_articles": 6}, {(ARTICLES_SUITE, ROW_COUNT, None)}),
        ({"min_chunks": 13}, {(CHUNKS_SUITE, ROW_COUNT, None)}),
    ],
)
def test_row_count_below_floor_fails(
    floor: dict[str, int],
    expected: set[tuple[str, str, str | None]],
    good_frames: dict[str, pd.DataFrame],
) -> None:
    report = run_suites(good_frames, build_release_suites(replace(PARAMS, **floor)))
    assert _failed(report) == expected


def test_failure_names_the_offending_row(suites: dict[str, gx.ExpectationSuite]) -> None:
    articles = _articles()
    chunks = _chunks(articles)
    _nan_in_vector(articles, chunks)

    report = run_suites(prepare_for_checks(articles, chunks), suites)

    (outcome,) = report.failed
    assert chunks.loc[5, "chunk_id"] in outcome.observed
    assert "1 of 12 unexpected" in outcome.observed


def test_missing_frame_fails_closed(
    suites: dict[str, gx.ExpectationSuite], good_frames: dict[str, pd.DataFrame]
) -> None:
    report = run_suites({ARTICLES_SUITE: good_frames[ARTICLES_SUITE]}, suites)

    assert not report.success
    assert _failed(report) == {(CHUNKS_SUITE, FRAME_MISSING, None)}
    # The frame that was there is still checked.
    assert any(outcome.suite == ARTICLES_SUITE and outcome.success for outcome in report.outcomes)


def test_missing_column_fails_closed(
    suites: dict[str, gx.ExpectationSuite], good_frames: dict[str, pd.DataFrame]
) -> None:
    frames = dict(good_frames)
    frames[CHUNKS_SUITE] = frames[CHUNKS_SUITE].drop(columns=["vector_dim"])

    report = run_suites(frames, suites)

    assert _failed(report) == {(CHUNKS_SUITE, BETWEEN, "vector_dim")}
    assert report.failed[0].observed.startswith("error:")


def test_gx_raising_fails_closed_without_leaking_gx_errors(
    suites: dict[str, gx.ExpectationSuite],
    good_frames: dict[str, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_run(self: object, **kwargs: object) -> None:
        raise gx.exceptions.GreatExpectationsError("metric backend exploded")

    monkeypatch.setattr(gx.ValidationDefinition, "run", broken_run)

    report = run_suites(good_frames, suites)

    assert not report.success
    assert _failed(report) == {(name, SUITE_ERROR, None) for name in RELEASE_SUITE_NAMES}
    assert "metric backend exploded" in report.failed[0].observed
    assert "metric backend exploded" in report.results_json["errors"][CHUNKS_SUITE]


def test_no_suites_or_an_empty_suite_fails_closed(good_frames: dict[str, pd.DataFrame]) -> None:
    assert _failed(run_suites(good_frames, {})) == {("*", NO_SUITES, None)}
    empty = {CHUNKS_SUITE: gx.ExpectationSuite(name="empty")}
    assert _failed(run_suites(good_frames, empty)) == {(CHUNKS_SUITE, EMPTY_SUITE, None)}


def test_raise_if_failed(good_report: ValidationReport, suites: dict[str, gx.ExpectationSuite]) -> None:
    raise_if_failed(good_report)  # a passing report does not raise

    articles = _articles()
    chunks = _chunks(articles)
    _dup_chunk_id(articles, chunks)
    report = run_suites(prepare_for_checks(articles, chunks), suites)

    with pytest.raises(ValidationFailed) as caught:
        raise_if_failed(report)
    assert caught.value.failed == [f"{CHUNKS_SUITE}.{UNIQUE}(chunk_id)"]
    assert f"{UNIQUE}(chunk_id)" in str(caught.value)


def test_summary_markdown_lists_failures_first(suites: dict[str, gx.ExpectationSuite]) -> None:
    articles = _articles()
    chunks = _chunks(articles)
    _bad_locale(articles, chunks)

    lines = run_suites(prepare_for_checks(articles, chunks), suites).summary_markdown().splitlines()

    assert lines[0].startswith("**Validation FAILED**")
    assert lines[2] == "| suite | expectation | column | result | observed |"
    assert lines[4].startswith(f"| {ARTICLES_SUITE} | {REGEX} | locale | **fail** |")
    assert "EN_us" in lines[4]


class _ExpectationRows(HTMLParser):
    """The docs page's expectation tables: ``{suite: [(row class, [cell texts])]}``."""

    def __init__(self) -> None:
        super().__init__()
        self.suites: dict[str, list[tuple[str, list[str]]]] = {}
        self._suite: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "table" and attributes.get("data-suite") is not None:
            self._suite = attributes["data-suite"]
            self.suites[self._suite or ""] = []
        elif tag == "tr" and self._suite is not None:
            self.suites[self._suite].append((attributes.get("class") or "", []))
        elif tag == "td" and self._suite is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._suite = None
        elif tag == "td" and self._suite is not None and self._cell is not None:
            self.suites[self._suite][-1][1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _expectation_rows(page: str) -> dict[str, list[tuple[str, list[str]]]]:
    parser = _ExpectationRows()
    parser.feed(page)
    # Drop the header row (th cells only).
    return {suite: [(cls, cells) for cls, cells in rows if cells] for suite, rows in parser.suites.items()}


def _docs_files(docs_dir: Path) -> dict[str, str]:
    return {
        path.relative_to(docs_dir).as_posix(): path.read_text(encoding="utf-8", errors="replace")
        for path in docs_dir.rglob("*")
        if path.is_file()
    }


HOSTILE_URL = "javascript:alert(1)//<script>alert(1)</script>"
HOSTILE_LOCALE = "<script>x</script>"


@pytest.fixture(scope="module")
def hostile_report(
    suites: dict[str, gx.ExpectationSuite], tmp_path_factory: pytest.TempPathFactory
) -> ValidationReport:
    # Crawled values are attacker-controlled: an article link and a page's <html lang>.
    articles = _articles()
    articles.loc[0, "url"] = HOSTILE_URL
    articles.loc[1, "locale"] = HOSTILE_LOCALE
    docs_dir = tmp_path_factory.mktemp("hostile") / "data_docs"
    return run_suites(prepare_for_checks(articles, _chunks(articles)), suites, docs_dir=docs_dir)


def test_data_docs_page_lists_every_expectation_with_its_mark(
    tmp_path: Path, suites: dict[str, gx.ExpectationSuite]
) -> None:
    articles = _articles()
    chunks = _chunks(articles)
    _bad_locale(articles, chunks)
    docs_dir = tmp_path / "data_docs"

    report = run_suites(prepare_for_checks(articles, chunks), suites, docs_dir=docs_dir)

    assert report.data_docs_path == str(docs_dir.resolve() / "index.html")
    assert "data_docs_error" not in report.results_json
    # One page, ours: GX's site (validations/, static/ with its CDN links) is no longer built.
    assert list(_docs_files(docs_dir)) == ["index.html"]
    page = Path(report.data_docs_path).read_text(encoding="utf-8")
    assert '<p class="verdict failed">' in page
    assert "Validation FAILED: 19 of 20 checks passed." in page
    rows = _expectation_rows(page)
    assert list(rows) == list(RELEASE_SUITE_NAMES)
    for name, suite in suites.items():
        # Every expectation, in suite order, with its own mark, type and column.
        shown = [(cls, cells[0], cells[1], cells[2]) for cls, cells in rows[name]]
        expected = [
            (
                "passed" if outcome.success else "failed",
                "✔ passed" if outcome.success else "✘ FAILED",
                outcome.expectation,
                outcome.column or "",
            )
            for outcome in report.outcomes
            if outcome.suite == name
        ]
        assert shown == expected
        assert len(shown) == len(suite.expectations)
    failed = [cells for cls, cells in rows[ARTICLES_SUITE] + rows[CHUNKS_SUITE] if cls == "failed"]
    (locale_row,) = failed
    _, expectation, column, arguments, observed, unexpected = locale_row
    assert (expectation, column) == (REGEX, "locale")
    assert arguments.startswith("regex=^[a-z]")
    assert observed.startswith("1 of 5 unexpected")
    # The bad value and the row it sits in.
    assert unexpected == f"'EN_us' at article_id={articles.loc[1, 'article_id']}"


def test_data_docs_load_nothing_from_outside(
    tmp_path: Path,
    good_frames: dict[str, pd.DataFrame],
    suites: dict[str, gx.ExpectationSuite],
    hostile_report: ValidationReport,
) -> None:
    good = run_suites(good_frames, suites, docs_dir=tmp_path / "data_docs")
    assert good.success

    for report in (good, hostile_report):
        assert report.data_docs_path is not None
        files = _docs_files(Path(report.data_docs_path).parent)
        assert files
        for name, text in files.items():
            for forbidden in ("http://", "https://", 'src="//', "<link", "<script", "@import", "url("):
                assert forbidden not in text, f"{forbidden!r} in {name}"


def test_hostile_values_are_shown_escaped_in_data_docs(hostile_report: ValidationReport) -> None:
    assert _failed(hostile_report) == {(ARTICLES_SUITE, REGEX, "url"), (ARTICLES_SUITE, REGEX, "locale")}
    assert hostile_report.data_docs_path is not None
    page = Path(hostile_report.data_docs_path).read_text(encoding="utf-8")

    # The values did reach the page, as text.
    assert "javascript:alert(1)//&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "<script" not in page.lower()
    failed = [cells for cls, cells in _expectation_rows(page)[ARTICLES_SUITE] if cls == "failed"]
    assert [cells[5] for cells in failed] == [
        f"{HOSTILE_URL!r} at article_id=docs:{0:012x}",
        f"{HOSTILE_LOCALE!r} at article_id=docs:{1:012x}",
    ]


def test_summary_markdown_escapes_hostile_values(hostile_report: ValidationReport) -> None:
    summary = hostile_report.summary_markdown()

    assert "<script" not in summary.lower()
    assert "&lt;script&gt;x&lt;/script&gt;" in summary  # the value is there, escaped
    table = [line for line in summary.splitlines() if line.startswith("| ")]
    failed_rows = [line for line in table if "**fail**" in line]
    assert len(failed_rows) == 2
    for line in table:
        cells = line.strip("|").split(" | ")
        assert len(cells) == 5, line  # no value opened a cell of its own
        assert not any(char in cell for cell in cells for char in "<>`|"), line


def test_data_docs_failure_leaves_the_verdict_alone(
    tmp_path: Path, good_frames: dict[str, pd.DataFrame], suites: dict[str, gx.ExpectationSuite]
) -> None:
    docs_dir = tmp_path / "not_a_folder"
    docs_dir.write_text("taken", encoding="utf-8")

    report = run_suites(good_frames, suites, docs_dir=docs_dir)

    assert report.success
    assert report.data_docs_path is None
    assert report.results_json["data_docs_error"]


def test_params_floors_follow_the_current_release() -> None:
    settings = CheckSettings(max_row_drop_share=0.2, min_articles=3)
    params = ReleaseCheckParams.from_settings(settings, dimension=384, current_articles=100, current_chunks=1_001)
    assert (params.min_articles, params.min_chunks) == (80, 801)
    first = ReleaseCheckParams.from_settings(settings, dimension=384)
    assert (first.min_articles, first.min_chunks) == (3, 3)
    # 10 * 0.3 is 3.0000000000000004 in floats; the floor must still allow dropping 3 rows.
    assert min_rows_after_drop(10, 0.3) == 7
    with pytest.raises(ConfigError):
        replace(PARAMS, dimension=0)
    with pytest.raises(ConfigError):
        replace(PARAMS, max_chunk_chars=0, min_text_chars=5)


LENGTHS = "expect_column_value_lengths_to_be_between"


@pytest.mark.parametrize("title", ["x" * (PARAMS.max_title_chars + 1), ""])
def test_a_title_over_the_limit_or_empty_fails_the_title_length_check(
    title: str, suites: dict[str, gx.ExpectationSuite]
) -> None:
    articles = _articles()
    chunks = _chunks(articles)
    articles.loc[2, "title"] = title

    report = run_suites(prepare_for_checks(articles, chunks), suites)

    assert _failed(report) == {(ARTICLES_SUITE, LENGTHS, "title")}, report.summary_markdown()


def test_the_title_bound_follows_the_parser_and_is_checked() -> None:
    from kbcurator.ingest.parse import MAX_TITLE_CHARS

    assert PARAMS.max_title_chars == MAX_TITLE_CHARS
    assert ReleaseCheckParams.from_settings(CheckSettings(), dimension=8).max_title_chars == MAX_TITLE_CHARS
    with pytest.raises(ConfigError):
        replace(PARAMS, max_title_chars=0)
