"""PII benchmark: adversarial personal data through the redactor, the ticket reader and every output file.

1. Generates (seeded, deterministic) at least 10 strings in each of 14 forms that got past earlier versions of
   the redactor: spaced, full-width and spelled-out emails, cards with dots or pairs of digits, IBANs with
   dashes, SSNs and other national ids, PO boxes, lower-case and less common street addresses, order numbers
   outside the configured pattern, obfuscated phones. Each has a secret (the address, the digits) that must
   not survive.
2. Redactor: each string in a sentence; a miss is a secret still readable in the output (compared on
   NFKC-normalised letters and digits only, so "4111 1111" and "4111.1111" are the same secret).
3. Pipeline: a synthetic ticket CSV with each string in a body, a subject, a ticket id, a date column (the row
   is rejected and its reason quotes the value) and a status; read with ``read_tickets`` (the source declares
   ``order: ORD-\\d{6,}``), embedded with the tests' hashing fake, clustered with k-means, labelled with
   c-TF-IDF, scored against the sample help center, and written: ``assignments.csv``, ``clusters.json``,
   ``rejected.jsonl``, ``gaps.json``, ``gaps.csv``, ``gaps.md``. Every file is searched for every string as
   placed and for every secret.
4. False positives: every BANKING77 and HWU64 query (train and test) through the default redactor. A changed
   query is expected only when it holds an email by a plain independent test (``x@y``, ``x at y dot z``):
   HWU64 users dictated addresses ("add sam@gmail dot com to my contacts"). Anything else changed is a false
   positive, printed.
5. End to end (skipped with ``--files-only``): the real ``kbcurator nightly`` as the schedule runs it, in a
   subprocess with its own ``PREFECT_HOME`` (so its temporary Prefect server's SQLite database is ours to
   read), on a settings YAML like ``kb_sources/sample.yaml``: the bundled sample help center as the source,
   the step 3 ticket CSV as the tickets, the real embedding model. Then every placed string is searched for
   (as placed, or its secret compared as in step 2) in: every file the run wrote (runs dir, index folder,
   ``PREFECT_HOME``: raw bytes, so deleted SQLite rows and the WAL count too), the CLI's stdout and stderr,
   every LanceDB table at every version (vector columns left out: floats hold no text), and every row of
   every table of the Prefect database.

Every text is searched as written and as a reader would see it: HTML entities, backslash escapes (a repr's
``\\xa0``, JSON's ``\\u00a0``, doubled or not) and %-escapes undone.
All five steps take about two minutes on two cores, most of it the nightly's embedding.

    python bench/pii_bench.py [--seed 13] [--per-form 12] [--show-misses] [--files-only] [--keep]

Exits 1 when any placed string is found in any output or store (redactor misses alone are only reported).
Reads ../shared/data for step 4 and skips it with a note when that folder is not there.
"""

from __future__ import annotations

import argparse
import csv
import html
import os
import random
import re
import sqlite3
import string
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "tests"))  # the hashing fake and the sample help center live with the tests

from kbcurator.runtime import apply_runtime_defaults  # noqa: E402

apply_runtime_defaults()

ORDER_PATTERN = r"\bORD-\d{6,}\b"
Item = tuple[str, str]  # (the string as placed, its secret)

# --- generators ------------------------------------------------------------------------------------------

FIRST = ["mary", "bob", "rita", "jose", "anna", "li.wei", "o.brien", "sam_k", "jo99", "marta.r", "kim", "dev.ops"]
DOMAINS = ["example.com", "mail.example.org", "acme.io", "corp.example.co.uk", "shop.example.net"]
WEBMAIL = ["gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "aol.com", "gmx.de"]


def _luhn_complete(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        value = int(char) * (1 if index % 2 else 2)
        total += value - 9 if value > 9 else value
    return body + str((10 - total % 10) % 10)


def _card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16)])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    return _luhn_complete(body)


def _iban(rng: random.Random) -> str:
    country, bban = rng.choice(
        [
            ("GB", lambda: "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) + _digits(rng, 14)),
            ("DE", lambda: _digits(rng, 18)),
            ("NL", lambda: "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) + _digits(rng, 10)),
            ("ES", lambda: _digits(rng, 20)),
            ("FR", lambda: _digits(rng, 23)),
        ]
    )
    basic = bban()
    numeric = "".join(str(int(ch, 36)) for ch in basic + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{basic}"


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _full_width(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def _groups(digits: str, size: int, sep: str) -> str:
    return sep.join(digits[i : i + size] for i in range(0, len(digits), size))


def emails_spaced(rng: random.Random) -> Item:
    address = f"{rng.choice(FIRST).replace('.', '')}@{rng.choice(DOMAINS)}"
    kind = rng.randrange(3)
    if kind == 0:
        return " ".join(address), address
    if kind == 1:
        local, domain = address.split("@")
        return f"{local} @ {' '.join(domain)}", address
    return f"{address.split('@')[0]} @ {address.split('@')[1]}", address


def emails_full_width(rng: random.Random) -> Item:
    address = f"{rng.choice(FIRST)}@{rng.choice(DOMAINS + WEBMAIL)}"
    kind = rng.randrange(3)
    if kind == 0:
        return address.replace("@", "＠"), address
    if kind == 1:
        return _full_width(address), address
    return address.replace("@", "\u200b@").replace(".", "\u00ad.", 1), address


def emails_spelled(rng: random.Random) -> Item:
    local, provider = rng.choice(FIRST), rng.choice(WEBMAIL)
    name, tld = provider.split(".")
    forms = [
        f"{local} at {provider}",
        f"{local}@{name} dot {tld}",
        f"{local} at {name} dot {tld}",
        f"{local} [at] {name} [dot] {tld}",
        f"{local}(at){provider}",
        f"{local}[@]{provider}",
        f"{local.upper()} AT {name.upper()} DOT {tld.upper()}",
    ]
    return rng.choice(forms), f"{local}{name}{tld}"


def cards_dotted(rng: random.Random) -> Item:
    digits = _card(rng)
    size = 4 if len(digits) == 16 else 5
    return _groups(digits, size, rng.choice([".", ". "]).strip() or "."), digits


def cards_pairs(rng: random.Random) -> Item:
    digits = _card(rng)
    return _groups(digits, rng.choice([1, 2, 2, 3]), rng.choice([" ", "-", "."])), digits


def cards_other(rng: random.Random) -> Item:
    digits = _card(rng)
    kind = rng.randrange(3)
    if kind == 0:
        return _full_width(_groups(digits, 4, " ")), digits
    if kind == 1:
        return _groups(digits, 4, "\u00a0"), digits
    return _groups(digits, 4, rng.choice([" ", "-"])), digits


def ibans_dashed(rng: random.Random) -> Item:
    iban = _iban(rng)
    text = _groups(iban, 4, rng.choice(["-", "-", " "]))
    return (text.lower() if rng.random() < 0.3 else text), iban


def ssns(rng: random.Random) -> Item:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    digits = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    sep = rng.choice(["-", " ", "."])
    dashed = f"{digits[:3]}{sep}{digits[3:5]}{sep}{digits[5:]}"
    return rng.choice([dashed, dashed, f"SSN {digits}", f"social security number {digits}"]), digits


def national_ids(rng: random.Random) -> Item:
    kind = rng.randrange(3)
    if kind == 0:
        first = rng.choice("ABCEGHJKLMNOPRSTWXYZ")
        second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
        digits = _digits(rng, 6)
        nino = f"{first}{second}{digits}{rng.choice('ABCD')}"
        if nino[:2] in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
            nino = "AB" + nino[2:]
        text = f"{nino[:2]} {digits[:2]} {digits[2:4]} {digits[4:]} {nino[-1]}" if rng.random() < 0.5 else nino
        return text, nino
    if kind == 1:
        sin = _luhn_complete(rng.choice("1234567") + _digits(rng, 7))
        return f"{sin[:3]}{rng.choice(' -')}{sin[3:6]}{rng.choice(' -')}{sin[6:]}", sin
    number = _digits(rng, 9)
    return f"{rng.choice(['passport number', 'passport no.', 'national id number', 'tax id'])} {number}", number


def po_boxes(rng: random.Random) -> Item:
    number = str(rng.randint(10, 99999))
    label = rng.choice(["PO Box", "P.O. Box", "po box", "P O Box", "Post Office Box", "Postfach", "PO BOX"])
    return f"{label} {number}", f"{label}{number}"


STREET_NAMES = ["baker", "main", "elm", "high", "pennsylvania", "oak", "church", "victoria", "mill", "north park"]
ANY_CASE_TYPES = ["street", "st", "avenue", "ave", "road", "rd", "boulevard", "blvd", "parkway", "lane", "terrace"]


def streets_lower_case(rng: random.Random) -> Item:
    text = f"{rng.randint(1, 2500)}{rng.choice(['', '', 'b'])} {rng.choice(STREET_NAMES)} {rng.choice(ANY_CASE_TYPES)}"
    return (text.title() if rng.random() < 0.2 else text), text


def streets_more_types(rng: random.Random) -> Item:
    name = rng.choice(["Acacia", "Mill", "Rose", "Kings", "Orchard", "Bridge", "Station", "Church"])
    number = rng.randint(1, 300)
    forms = [
        f"{number} {name} {rng.choice(['Close', 'Mews', 'Grove', 'Gardens', 'Row', 'Trail', 'Alley', 'Plaza'])}",
        f"{number} {name} {rng.choice(['Walk', 'Hill', 'Ridge', 'Wharf', 'Parade', 'Heights', 'Cres', 'Cl'])}",
        f"Calle {name} {number}",
        f"Via {name} {number}",
        f"{name}gracht {number}",
        f"{name}straat {number}",
    ]
    text = rng.choice(forms)
    return text, text


def order_numbers(rng: random.Random) -> Item:
    digits = _digits(rng, rng.randint(6, 9))
    forms = [
        f"order #{digits}",
        f"Order no. {digits}",
        f"order number: AB-{digits}",
        f"ord-{digits}",
        _full_width(f"ORD-{digits}"),
        f"invoice {digits[:4]}-{digits[4:]}",
        f"booking ref {digits}",
        f"ORDER ID {digits}",
    ]
    return rng.choice(forms), digits


def phones_obfuscated(rng: random.Random) -> Item:
    national = "20" + _digits(rng, 8)
    forms = [
        (_full_width(f"+44 {national[:2]} {national[2:6]} {national[6:]}"), national),
        (f"+44.{national[:2]}.{national[2:6]}.{national[6:]}", national),
        (f"+44 (0) {national[:2]} {national[2:6]} {national[6:]}", national),
        (f"0{national[:2]}-{national[2:6]}-{national[6:]}", national),
        (f"call me on 0{national}", national),
        ("+1 " + (us := f"{rng.randint(201, 989)} {rng.randint(200, 999)} {_digits(rng, 4)}"), us),
    ]
    return rng.choice(forms)


FORMS: dict[str, Callable[[random.Random], Item]] = {
    "email spaced": emails_spaced,
    "email full-width/invisible": emails_full_width,
    "email spelled out": emails_spelled,
    "card dotted": cards_dotted,
    "card pairs/singles": cards_pairs,
    "card full-width/nbsp": cards_other,
    "iban dashed": ibans_dashed,
    "us ssn": ssns,
    "national id (nino/sin/..)": national_ids,
    "po box": po_boxes,
    "street any case": streets_lower_case,
    "street more types": streets_more_types,
    "order number": order_numbers,
    "phone obfuscated": phones_obfuscated,
}
SENTENCES = [
    "Hi, please use {} for this, my card was charged twice",
    "{} - refund still missing after two weeks",
    "why was my transfer declined? details: {}.",
    "I updated my details to {} but the app shows the old ones",
]


def generate(seed: int, per_form: int) -> dict[str, list[Item]]:
    rng = random.Random(seed)
    out: dict[str, list[Item]] = {}
    for name, make in FORMS.items():
        items: list[Item] = []
        while len(items) < per_form:
            item = make(rng)
            if item not in items:
                items.append(item)
        out[name] = items
    return out


def compact(text: str) -> str:
    """Letters and digits only, NFKC and lower case: the form a secret is searched in."""
    return "".join(filter(str.isalnum, unicodedata.normalize("NFKC", text).lower()))


# A backslash escape of one character as Python's repr or JSON writes it (``\xa0``, ``\u00a0``, ``\U0001f600``),
# with any number of backslashes before it (JSON escapes the backslash of a repr again).
_ESCAPE = re.compile(r"\\+(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))")


def _unescape(match: re.Match[str]) -> str:
    code = int(next(group for group in match.groups() if group), 16)
    return chr(code) if code <= 0x10FFFF else match.group(0)


def variants(text: str) -> set[str]:
    """``text`` as written and as a reader would see it: HTML entities, backslash escapes and %-escapes undone.

    A secret written as ``'4111\\xa01111...'`` (a repr in a JSON string) is a secret all the same, but its
    compacted form (``4111xa01111``) would not match.
    """
    out = {text, html.unescape(text)}
    if "\\" in text:
        out |= {_ESCAPE.sub(_unescape, variant) for variant in list(out)}
    if "%" in text:
        out |= {unquote(variant) for variant in list(out)}
    return out


# --- the pipeline ----------------------------------------------------------------------------------------


def write_ticket_csv(path: Path, forms: dict[str, list[Item]], rng: random.Random) -> int:
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "created_at", "subject", "body", "status"])
        for items in forms.values():
            for placed, _ in items:
                sentence = rng.choice(SENTENCES).format(placed)
                writer.writerow([f"B-{rows}", "2026-11-02", "card charged twice", sentence, "open"])
                writer.writerow([f"S-{rows}", "2026-11-03", f"re: {placed}", "where is my refund for the card", "open"])
                writer.writerow([placed, "2026-11-04", "transfer declined", "my transfer was declined again", "new"])
                writer.writerow([f"D-{rows}", placed, "top up", "top up failed with my card", "open"])
                writer.writerow([f"T-{rows}", "2026-11-05", "pending", "transfer pending for days", placed])
                rows += 5
    return rows


def run_pipeline(forms: dict[str, list[Item]], work: Path, seed: int) -> tuple[dict[str, str], dict[str, int]]:
    """Write every output of a gaps run for the synthetic export; returns {file name: text} and counts."""
    from builders import published_sample
    from sklearn.cluster import KMeans

    from kbcurator.gaps.config import TicketSourceConfig
    from kbcurator.gaps.coverage import CoveragePolicy, ReleaseVectors
    from kbcurator.gaps.labels import label_clusters
    from kbcurator.gaps.pipeline import describe_clusters, read_tickets, write_cluster_outputs
    from kbcurator.gaps.report import gaps_markdown, score_gaps, unanswered_long_tail, write_gap_exports

    export = work / "tickets.csv"
    rows = write_ticket_csv(export, forms, random.Random(seed))
    source = TicketSourceConfig.model_validate(
        {"id": "bench", "format": "csv", "location": str(export), "pii": {"patterns": {"order": ORDER_PATTERN}}}
    )
    loaded = read_tickets(source)
    tickets = list(loaded.tickets)
    store, release, embedder = published_sample(str(work / "index"))
    vectors = embedder.embed([t.text for t in tickets])
    labels = KMeans(n_clusters=6, n_init=3, random_state=seed).fit_predict(vectors)
    labels[:: max(1, len(labels) // 40)] = -1  # a long tail too, so its listings are written
    names = label_clusters([t.text for t in tickets], labels, vectors)
    clusters = describe_clusters(tickets, labels, names)
    policy = CoveragePolicy(answered_lift=0.3, related_lift=0.1, covered_share=0.5)
    kb = ReleaseVectors(store, release)
    scored, resolved = score_gaps(clusters, tickets, vectors, kb, policy, [], run_id="bench")
    long_tail = unanswered_long_tail(tickets, vectors, labels, kb, policy)
    out = work / "out"
    summary = {"tickets": len(tickets), "quarantined": len(loaded.rejected)}
    write_cluster_outputs(out, tickets, labels, clusters, loaded.rejected, summary)
    write_gap_exports(out, scored, long_tail)
    markdown = gaps_markdown(scored, resolved, release_tag=release.tag, summary=summary, long_tail=long_tail)
    (out / "gaps.md").write_text(markdown, encoding="utf-8")
    files = {path.name: path.read_text(encoding="utf-8") for path in sorted(out.iterdir())}
    counts = {"rows": rows, "tickets": len(tickets), "rejected": len(loaded.rejected), "clusters": len(clusters)}
    return files, counts


# --- end to end: the real nightly, then every place it could have put a string ---------------------------

SAMPLE_CONFIG = REPO / "kb_sources" / "sample.yaml"
TICKET_COLUMNS = {
    "ticket_id": "id",
    "created_at": "created_at",
    "subject": "subject",
    "body": "body",
    "status": "status",
}
KINDS = {
    "runs": "files under the runs dir",
    "stdout": "CLI stdout/stderr",
    "lance": "lance tables, every version",
    "index_files": "index folder files (raw bytes)",
    "prefect_db": "prefect db, every row",
    "prefect_files": "PREFECT_HOME files (raw bytes)",
    "other_files": "other files in the work dir",
}


@dataclass
class Hit:
    form: str
    placed: str
    where: str
    context: str


@dataclass
class Searcher:
    """Every placed string, searched as placed and as its compacted secret (the same test as steps 2 and 3)."""

    forms: dict[str, list[Item]]
    hits: dict[str, dict[str, Hit]] = field(default_factory=dict)  # kind -> {placed: first hit}
    searched: dict[str, list[str]] = field(default_factory=dict)  # kind -> notes on what was searched

    def __post_init__(self) -> None:
        self.items = [(form, placed, compact(secret)) for form, items in self.forms.items() for placed, secret in items]

    def search(self, kind: str, where: str, text: str) -> None:
        self.hits.setdefault(kind, {})
        readings = variants(text)
        dense = {compact(v) for v in readings}
        for form, placed, secret in self.items:
            if placed in self.hits[kind]:
                continue
            context = next((_around(v, v.find(placed), len(placed)) for v in readings if placed in v), None)
            if context is None and secret:
                context = next((_around(d, d.find(secret), len(secret)) for d in dense if secret in d), None)
            if context is not None:
                self.hits[kind][placed] = Hit(form, placed, where, context)

    def found(self) -> set[str]:
        return {placed for by_placed in self.hits.values() for placed in by_placed}


def _around(text: str, at: int, length: int, pad: int = 30) -> str:
    return text[max(0, at - pad) : at + length + pad].replace("\n", " ")


@dataclass
class NightlyRun:
    work: Path
    config: Path
    prefect_home: Path
    index_uri: Path
    runs_dir: Path
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def write_nightly_config(work: Path, tickets: Path) -> Path:
    """``kb_sources/sample.yaml`` with the index, runs and tickets moved into ``work``."""
    import yaml

    data = yaml.safe_load(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    for source in data["sources"]:
        source["location"] = str((SAMPLE_CONFIG.parent / source["location"]).resolve())
    data["index_uri"] = str(work / "index")
    data["runs_dir"] = str(work / "runs")
    data["tickets"] = [
        {
            "id": "bench",
            "format": "csv",
            "location": str(tickets),
            "columns": TICKET_COLUMNS,
            "pii": {"patterns": {"order": ORDER_PATTERN}},
        }
    ]
    config = work / "kb.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return config


def run_nightly(forms: dict[str, list[Item]], work: Path, seed: int, timeout_s: float) -> NightlyRun:
    """``kbcurator nightly`` in a subprocess, its Prefect home, index and runs all under ``work``."""
    tickets = work / "tickets.csv"
    write_ticket_csv(tickets, forms, random.Random(seed))
    config = write_nightly_config(work, tickets)
    home = work / "prefect_home"
    home.mkdir()
    # Its own Prefect home (so its own temporary server and database) and only the config's settings: no
    # API URL, database URL, profile or KB_* override from this shell.
    dropped = ("PREFECT_API_URL", "PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_PROFILES_PATH", "PREFECT_PROFILE")
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("KB_")}
    env |= {"PREFECT_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    cli = Path(sys.executable).parent / "kbcurator"
    command = [str(cli)] if cli.exists() else [sys.executable, "-c", "from kbcurator.cli import app; app()"]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "nightly", "--config", str(config)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout_s,
        check=False,
    )
    return NightlyRun(
        work,
        config,
        home,
        work / "index",
        work / "runs",
        done.returncode,
        done.stdout,
        done.stderr,
        time.perf_counter() - started,
    )


def _files(root: Path) -> Iterator[Path]:
    return (path for path in sorted(root.rglob("*")) if path.is_file())


def search_files(searcher: Searcher, run: NightlyRun) -> None:
    inputs = {run.config, run.work / "tickets.csv"}
    counts: dict[str, int] = {}
    for path in _files(run.work):
        if path in inputs:
            continue
        top = path.relative_to(run.work).parts[0]
        kind = {"runs": "runs", "index": "index_files", "prefect_home": "prefect_files"}.get(top, "other_files")
        text = path.read_bytes().decode("utf-8", errors="replace")
        searcher.search(kind, str(path.relative_to(run.work)), text)
        counts[kind] = counts.get(kind, 0) + 1
    for kind, count in counts.items():
        searcher.searched.setdefault(kind, []).append(f"{count} files")


def _is_vector(kind: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_floating(kind):
        return True
    if pa.types.is_list(kind) or pa.types.is_fixed_size_list(kind) or pa.types.is_large_list(kind):
        return pa.types.is_floating(kind.value_type)
    return False


def search_lance(searcher: Searcher, index_uri: Path) -> None:
    """Every row of every table at every version; a row already seen at an earlier version is not searched again."""
    import lancedb

    db = lancedb.connect(str(index_uri))
    listed = db.list_tables()
    names = list(getattr(listed, "tables", listed))
    versions = rows = 0
    for name in names:
        table = db.open_table(name)
        seen: set[str] = set()
        for entry in table.list_versions():
            number = entry["version"] if isinstance(entry, dict) else entry.version
            table.checkout(number)
            data = table.to_arrow()
            columns = [c for c in data.column_names if not _is_vector(data.schema.field(c).type)]
            cells = [[str(v) for v in data.column(c).to_pylist()] for c in columns]
            for index, row in enumerate(zip(*cells, strict=True)):
                text = "\n".join(f"{c}={v}" for c, v in zip(columns, row, strict=True))
                if text in seen:
                    continue
                seen.add(text)
                rows += 1
                searcher.search("lance", f"{name} v{number} row {index}", text)
            versions += 1
        table.checkout_latest()
    searcher.searched["lance"] = [
        f"{len(names)} tables ({', '.join(names)}), {versions} versions, {rows} distinct rows"
    ]


def prefect_databases(home: Path) -> list[Path]:
    return sorted(path for path in home.rglob("*.db") if path.is_file())


def search_prefect_db(searcher: Searcher, home: Path) -> None:
    """Every text or blob cell of every table, a row at a time (artifacts, logs, parameters, states...)."""
    databases = prefect_databases(home)
    tables = rows = 0
    for database in databases:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            names = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for name in names:
                tables += 1
                cursor = connection.execute(f'SELECT * FROM "{name}"')  # names from sqlite_master
                columns = [d[0] for d in cursor.description]
                for index, row in enumerate(cursor):
                    text = "\n".join(f"{c}={_cell(v)}" for c, v in zip(columns, row, strict=True) if _cell(v))
                    rows += 1
                    searcher.search("prefect_db", f"{database.name} {name} row {index}", text)
    listed = ", ".join(str(d.relative_to(home)) for d in databases) or "none found"
    searcher.searched["prefect_db"] = [f"{listed}: {tables} tables, {rows} rows"]


def _cell(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else ""


def end_to_end(forms: dict[str, list[Item]], work: Path, seed: int, timeout_s: float) -> tuple[NightlyRun, Searcher]:
    run = run_nightly(forms, work, seed, timeout_s)
    searcher = Searcher(forms)
    searcher.search("stdout", "stdout", run.stdout)
    searcher.search("stdout", "stderr", run.stderr)
    searcher.searched["stdout"] = [f"{len(run.stdout)} + {len(run.stderr)} characters"]
    search_files(searcher, run)
    if run.index_uri.exists():
        search_lance(searcher, run.index_uri)
    search_prefect_db(searcher, run.prefect_home)
    return run, searcher


def print_end_to_end(run: NightlyRun, searcher: Searcher, show: int) -> None:
    print(f"\nend to end: kbcurator nightly --config {run.config.name}: exit {run.returncode} in {run.seconds:.0f} s")
    last = [line for line in run.stdout.strip().splitlines() + run.stderr.strip().splitlines()[-3:] if line][-8:]
    for line in last:
        print(f"  | {line[:160]}")
    print(f"\n{'location':<34}{'strings found':>14}  searched")
    for kind, label in KINDS.items():
        found = searcher.hits.get(kind, {})
        print(f"{label:<34}{len(found):>14}  {'; '.join(searcher.searched.get(kind, ['nothing']))}")
    print(f"{'any of them':<34}{len(searcher.found()):>14}")
    examples = [hit for by_placed in searcher.hits.values() for hit in by_placed.values()]
    for hit in examples[:show]:
        print(f"  {hit.form}: {hit.placed!r} in {hit.where}: ...{hit.context}...")
    if len(examples) > show:
        print(f"  ... and {len(examples) - show} more (--show-misses lists them all)")


def forms_found(forms: dict[str, list[Item]], found: Iterable[str]) -> dict[str, int]:
    found = set(found)
    return {name: sum(placed in found for placed, _ in items) for name, items in forms.items()}


# --- false positives -------------------------------------------------------------------------------------

_HOLDS_EMAIL = re.compile(r"\w@\w|\bat \w+ dot \w+")


def intent_set_false_positives(show: int) -> list[tuple[str, int, int, int, int]]:
    from kbcurator.gaps.pii import PiiRedactor

    rows = []
    for name in ("banking77", "hwu64"):
        texts: list[str] = []
        for split in ("train", "test"):
            path = SHARED_DATA / name / f"{split}.csv"
            if not path.is_file():
                print(f"(skipped {name}: {path} is not here)")
                break
            with path.open(encoding="utf-8", newline="") as handle:
                texts += [row["text"] for row in csv.DictReader(handle)]
        if not texts:
            continue
        redactor = PiiRedactor()
        changed = {text: out for text in texts if (out := redactor.redact(text)) != text}
        expected = {text for text in texts if _HOLDS_EMAIL.search(text)}
        false_positives = [text for text in changed if text not in expected]
        missed = [text for text in expected if text not in changed]
        for text in false_positives[:show]:
            print(f"  false positive in {name}: {text!r} -> {changed[text]!r}")
        for text in missed[:show]:
            print(f"  email left in {name}: {text!r}")
        rows.append((name, len(texts), len(changed), len(false_positives), len(missed)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--per-form", type=int, default=12)
    parser.add_argument("--show-misses", action="store_true", help="print every string that got through")
    parser.add_argument("--files-only", action="store_true", help="steps 1-4 only: no model, no nightly run")
    parser.add_argument("--keep", action="store_true", help="keep the end-to-end work folder and print its path")
    parser.add_argument("--nightly-timeout", type=float, default=1800, help="seconds the nightly may take")
    args = parser.parse_args()

    import kbcurator.gaps.pii as pii

    started = time.perf_counter()
    forms = generate(args.seed, args.per_form)
    total = sum(len(items) for items in forms.values())
    print(f"{total} adversarial strings in {len(forms)} forms (seed {args.seed}); redactor: {pii.__file__}\n")

    redactor = pii.PiiRedactor(pii.PiiSettings(patterns={"order": ORDER_PATTERN}))
    with tempfile.TemporaryDirectory() as tmp:
        files, counts = run_pipeline(forms, Path(tmp), args.seed)
    written = {name: [(v, compact(v)) for v in variants(text)] for name, text in files.items()}

    run: NightlyRun | None = None
    searcher: Searcher | None = None
    if not args.files_only:
        work = Path(tempfile.mkdtemp(prefix="pii_bench_"))
        try:
            run, searcher = end_to_end(forms, work, args.seed, args.nightly_timeout)
        finally:
            if args.keep:
                print(f"(end-to-end work folder kept: {work})")
            else:
                import shutil

                shutil.rmtree(work, ignore_errors=True)
    in_e2e = forms_found(forms, searcher.found()) if searcher else {}

    e2e_head = f"{'end to end':>12}" if searcher else ""
    print(f"{'form':<28}{'strings':>8}{'redactor missed':>17}{'in outputs':>12}{e2e_head}")
    missed_total = leaked_total = 0
    for name, items in forms.items():
        missed: list[str] = []
        leaked: list[str] = []
        for placed, secret in items:
            sentence = f"please check {placed} thanks"
            if compact(secret) in compact(redactor.redact(sentence)):
                missed.append(placed)
            dense_secret = compact(secret)
            where = [f for f, readings in written.items() if any(placed in v or dense_secret in d for v, d in readings)]
            if where:
                leaked.append(f"{placed!r} in {', '.join(where)}")
        missed_total += len(missed)
        leaked_total += len(leaked)
        e2e_cell = f"{in_e2e[name]:>12}" if searcher else ""
        print(f"{name:<28}{len(items):>8}{len(missed):>17}{len(leaked):>12}{e2e_cell}")
        if args.show_misses:
            for text in missed:
                print(f"    missed: {text!r}")
            for text in leaked:
                print(f"    leaked: {text}")
    e2e_total = f"{len(searcher.found()):>12}" if searcher else ""
    print(f"{'total':<28}{total:>8}{missed_total:>17}{leaked_total:>12}{e2e_total}")
    print(
        f"\npipeline: {counts['rows']} CSV rows -> {counts['tickets']} tickets, {counts['rejected']} rejected, "
        f"{counts['clusters']} clusters; files searched: {', '.join(files)}"
    )
    if run is not None and searcher is not None:
        print_end_to_end(run, searcher, show=10_000 if args.show_misses else 10)

    print(f"\n{'intent set':<12}{'queries':>9}{'changed':>9}{'false positives':>17}{'emails left':>13}")
    for name, queries, changed, false_positives, missed_count in intent_set_false_positives(show=10):
        print(f"{name:<12}{queries:>9}{changed:>9}{false_positives:>17}{missed_count:>13}")
    print(f"\n{time.perf_counter() - started:.1f} s")

    failed_run = run is not None and run.returncode != 0
    if run is not None and failed_run:
        print(f"the nightly itself exited {run.returncode}: its outputs may be incomplete")
    return 1 if leaked_total or (searcher and searcher.found()) or failed_run else 0


if __name__ == "__main__":
    sys.exit(main())
