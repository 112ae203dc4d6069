"""The PII benchmark's searches (bench/pii_bench.py): a string the end-to-end run left behind must be found.

The benchmark's "0 found" is only worth something if its searches would find a string where one hides: in an
old version of a LanceDB table, in a Prefect database row, behind an HTML or JSON escape. The nightly run
itself is not run here (it loads the real model); ``python bench/pii_bench.py`` does that.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from pii_bench import (
    TICKET_COLUMNS,
    Searcher,
    generate,
    search_lance,
    search_prefect_db,
    write_nightly_config,
)

from kbcurator.settings import load_settings

FORMS = {"email spelled out": [("mary at gmail dot com", "marygmailcom")], "card dotted": [("4111.1111", "41111111")]}


def test_finds_a_string_as_placed_as_its_secret_and_behind_escapes() -> None:
    searcher = Searcher(FORMS)
    searcher.search("files", "a", "nothing here")
    assert searcher.found() == set()
    searcher.search("files", "b", "card 4111 1111 charged")  # the secret, other separators
    assert searcher.found() == {"4111.1111"}
    searcher.search("stdout", "c", '{"text": "mary at gmail dot com"}')
    assert set(searcher.hits["stdout"]) == {"mary at gmail dot com"}

    escaped = Searcher({"email full-width": [("mary＠gmail.com", "mary@gmail.com")]})
    escaped.search("prefect_db", "e", '{"text": "mary\\uff20gmail.com"}')
    escaped.search("runs", "f", "<p>mary&#65312;gmail.com</p>")
    assert set(escaped.hits["prefect_db"]) == set(escaped.hits["runs"]) == {"mary＠gmail.com"}


def test_finds_a_secret_written_as_a_repr_inside_json() -> None:
    """A quarantine reason quoting ``'4111\\xa01111'`` (a repr) in a JSONL file: compacted as written it would
    read ``4111xa01111`` and hide the card number."""
    searcher = Searcher({"card full-width/nbsp": [("4111\u00a01111", "41111111")]})
    searcher.search("runs", "rejected.jsonl", '{"reason": "cannot parse date \'4111\\\\xa01111\'"}')
    assert set(searcher.hits["runs"]) == {"4111\u00a01111"}


def test_finds_a_string_only_an_old_table_version_holds(tmp_path: Path) -> None:
    import lancedb

    db = lancedb.connect(str(tmp_path / "index"))
    vector = pa.list_(pa.float32(), 2)
    schema = pa.schema([pa.field("id", pa.string()), pa.field("text", pa.string()), pa.field("vector", vector)])
    table = db.create_table("tickets", schema=schema)
    table.add([{"id": "1", "text": "refund to 4111.1111 please", "vector": [0.1, 0.2]}])
    table.add([{"id": "2", "text": "nothing personal", "vector": [0.3, 0.4]}])
    table.delete("id = '1'")

    searcher = Searcher(FORMS)
    search_lance(searcher, tmp_path / "index")
    hit = searcher.hits["lance"]["4111.1111"]
    assert hit.where.startswith("tickets v") and "refund" in hit.context
    assert "1 tables" in searcher.searched["lance"][0]


def test_finds_a_string_in_any_prefect_table(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(home / "prefect.db") as connection:
        connection.execute("CREATE TABLE log (id INTEGER, message TEXT, extra BLOB)")
        connection.execute("INSERT INTO log VALUES (1, 'fine', NULL), (2, 'x', ?)", (b"mary at gmail dot com",))

    searcher = Searcher(FORMS)
    search_prefect_db(searcher, home)
    assert searcher.hits["prefect_db"]["mary at gmail dot com"].where == "prefect.db log row 1"


def test_the_nightly_config_reads_the_sample_source_and_the_bench_tickets(tmp_path: Path) -> None:
    tickets = tmp_path / "tickets.csv"
    tickets.write_text("id,created_at,subject,body,status\n", encoding="utf-8")
    settings = load_settings(write_nightly_config(tmp_path, tickets))

    assert settings.index_uri == str(tmp_path / "index") and settings.runs_dir == str(tmp_path / "runs")
    assert Path(settings.sources[0].location).is_dir()
    (source,) = settings.tickets
    assert source.location == str(tickets) and source.columns.body == TICKET_COLUMNS["body"]
    assert source.pii.patterns == {"order": r"\bORD-\d{6,}\b"}


def test_the_adversarial_set_is_large_enough() -> None:
    forms = generate(13, 12)
    assert len(forms) >= 10 and sum(len(items) for items in forms.values()) >= 100
