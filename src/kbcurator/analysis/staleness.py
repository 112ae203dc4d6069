"""Stale content: articles that are old, say things that have expired, link to what is gone, use retired terms,
have a newer near-copy, or keep failing customers.

One check per rule, each yielding ``Finding(kind="stale")``:

``age``
    ``updated_at`` older than the source's review interval. Score 0.3 just past the interval, rising linearly to
    1.0 at ``age_full_score_intervals`` intervals (3 by default): 0.65 at 2x, 1.0 at 3x and beyond.
``dated_content``
    Sentences whose date makes them no longer current, relative to ``run_at``. A date alone is never enough: the
    words just before it (or the sentence's tense) must say the statement expires or describes "now":

    - ``ended``: "until / through / valid until / expires on / no later than <date>" whose period has ended
      ("through 2023" ends on 31 December 2023). Skipped when the sentence is in the past tense ("was valid
      until 2019", "supported until 2020"): a true historical statement. Score 0.8, action ``update``.
    - ``future_past``: a sentence that speaks of the future ("will", "we'll", "is planning", "coming soon")
      about a date that has passed ("planning a feature in mid-2021"). Score 0.75, action ``update``.
    - ``as_of``: "as of <date>", "at the time of writing", "last updated <date>", or "in <year>" next to
      "currently / at the moment / this year": a snapshot of how things were. Flagged once the date is
      ``dated_statement_max_age_days`` old (365): score 0.4 then, rising to 0.7 at three times that age. A note
      that calls itself temporary or new ("a newly discovered bug may temporarily ...") is due after half that
      age. Action ``review``.
    - ``announcement``: "starting / beginning / effective <date>" in the present tense: news wording that
      ages the same way as ``as_of``. Action ``review``.
    - ``year_label``: "A Privacy Guide for 2024", "Best VPNs of 2023" once that year is over. Score 0.5, action
      ``review``.
    - ``version``: "new in version 3", "since version 2.1" for a product named in the sentence (or the title)
      whose current version (``review.current_versions``) is ``version_gap`` majors ahead. Score 0.5, +0.1
      per further major, at most 0.8. Action ``update``.

    Historical statements ("founded in 2008", "since 2014", "prior to December 2018") carry none of these
    cues and are not flagged, nor is any date still in the future. Release notes (by title, or two or more
    headings that are dates) are dated records and are skipped. One finding per (article, dated phrase).
``broken_link``
    An outbound link to a URL the crawl found dead, to an internal page that is not an article of the corpus
    (same host as some article, inside a folder that holds articles; compared without the fragment and the
    trailing slash), or to a ``#fragment`` the target article no longer has as an ``id``/``name`` (or as a
    heading's generated id). An article read from a source file (a folder source without ``permalink``) is also
    found at the URLs a site serves that file at: ``/section/slug/``, ``slug.html``, ``slug/`` and the file's
    own path (``article_url_forms`` lists them). External links are not checked. One finding per (article,
    target).
``deprecated_term``
    The source's retired terms as whole words or phrases (case-insensitive; not inside a longer word or a
    hyphenated compound). One finding per (article, term) with every sentence that uses it.
``superseded``
    A near-copy (article-vector cosine >= ``superseded_similarity``, from a k-NN search) of an article in the
    same locale updated at least ``superseded_min_days`` later. The older one is flagged, action ``retire``.
``failing_article``
    An article that ``failing_min_tickets`` or more escalated tickets ended on. Score ``1 - 0.5 ** (n / min)``:
    0.5 at the minimum, 0.75 at twice it, saturating towards 1.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import lxml.etree
import lxml.html

from kbcurator.analysis.base import AuditCorpus, severity_for
from kbcurator.analysis.neighbours import candidate_pairs
from kbcurator.config.health import StaleSettings
from kbcurator.records import Action, Article, Evidence, Finding, FindingKind, make_finding_id

logger = logging.getLogger(__name__)

KIND: FindingKind = "stale"
_MAX_QUOTED_TICKETS = 10

# --- sentences ------------------------------------------------------------------------------------------

_LINE = re.compile(r"[^\n]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z])")
_ABBREVIATIONS = frozenset(
    {"e.g.", "i.e.", "etc.", "vs.", "mr.", "mrs.", "ms.", "dr.", "st.", "no.", "approx.", "inc.", "ltd.", "co."}
    | {"u.s.", "u.k.", "fig.", "ver.", "v.", "sept."}
    | {f"{month}." for month in ("jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "oct", "nov", "dec")}
)


@dataclass(frozen=True, slots=True)
class _Sentence:
    start: int
    text: str


@lru_cache(maxsize=256)
def split_sentences(text: str) -> tuple[_Sentence, ...]:
    """Sentences with their offsets in ``text``: every line is a block, split after ``. ! ?`` before a capital."""
    out: list[_Sentence] = []
    for line in _LINE.finditer(text):
        pieces: list[tuple[int, int]] = []
        cursor = line.start()
        for end in _SENTENCE_END.finditer(line.group()):
            pieces.append((cursor, line.start() + end.start()))
            cursor = line.start() + end.end()
        pieces.append((cursor, line.end()))
        merged: list[tuple[int, int]] = []
        for start, stop in pieces:
            if merged and text[merged[-1][0] : merged[-1][1]].rsplit(None, 1)[-1].lower() in _ABBREVIATIONS:
                merged[-1] = (merged[-1][0], stop)
            else:
                merged.append((start, stop))
        for start, stop in merged:
            sentence = text[start:stop]
            stripped = sentence.strip()
            if stripped:
                out.append(_Sentence(start + sentence.index(stripped[0]), stripped))
    return tuple(out)


# --- dates ----------------------------------------------------------------------------------------------

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_M = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_Y = r"(?:19[89]\d|20\d\d)"
_DATE = re.compile(
    rf"""(?<![\w/.$-])(?:
      (?P<iy>{_Y})-(?P<im>\d{{1,2}})-(?P<id>\d{{1,2}})
    | (?P<n1>\d{{1,2}})(?P<sep>[/.-])(?P<n2>\d{{1,2}})(?P=sep)(?P<ny>{_Y})
    | (?P<m1>{_M})\.?\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y1>{_Y})
    | (?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{_M})\.?,?\s+(?P<y2>{_Y})
    | (?P<m3>{_M})\.?,?\s+(?:of\s+)?(?P<y3>{_Y})
    | (?:Q(?P<q1>[1-4])|(?P<q2>first|second|third|fourth|1st|2nd|3rd|4th)\s+quarter(?:\s+of)?)\s*(?P<qy>{_Y})
    | (?P<part>(?:the\s+)?(?:end|close|beginning|start|middle|first\s+half|second\s+half)\s+of
        |early|mid|late|spring|summer|fall|autumn|winter|H[12])[\s-]*(?P<py>{_Y})
    | (?P<year>{_Y})
    )(?![\w+%]|[.,:/-]\d)""",
    re.IGNORECASE | re.VERBOSE,
)
_QUARTERS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4}
# Vague parts of a year -> (first month, last month).
_PARTS = {
    "end": (10, 12), "close": (10, 12), "beginning": (1, 3), "start": (1, 3), "middle": (5, 8),
    "first half": (1, 6), "second half": (7, 12), "h1": (1, 6), "h2": (7, 12),
    "early": (1, 4), "mid": (5, 8), "late": (9, 12), "spring": (3, 5), "summer": (6, 8),
    "fall": (9, 11), "autumn": (9, 11), "winter": (12, 14),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Date:
    start: int
    end: int
    first: date  # the first day the phrase can mean
    last: date  # the last day it can mean ("2023" -> 31 December 2023)


def _month_span(year: int, first_month: int, last_month: int) -> tuple[date, date]:
    last_year, last_month = year + (last_month - 1) // 12, (last_month - 1) % 12 + 1
    following = date(last_year + (last_month == 12), last_month % 12 + 1, 1)
    return date(year, first_month, 1), following - timedelta(days=1)


def _to_date(match: re.Match[str]) -> tuple[date, date] | None:
    g = match.groupdict()
    try:
        if g["iy"]:
            day = date(int(g["iy"]), int(g["im"]), int(g["id"]))
            return day, day
        if g["ny"]:
            a, b = int(g["n1"]), int(g["n2"])
            # 31.03.2024 and 31/03/2024 are day-first; 03/31/2024 is read the US way when it could be either.
            day_first = g["sep"] == "." or a > 12
            day = date(int(g["ny"]), b if day_first else a, a if day_first else b)
            return day, day
        if g["y1"] or g["y2"]:
            name, number, year = (g["m1"], g["d1"], g["y1"]) if g["y1"] else (g["m2"], g["d2"], g["y2"])
            day = date(int(year), _MONTHS[name[:3].lower()], int(number))
            return day, day
        if g["y3"]:
            month = _MONTHS[g["m3"][:3].lower()]
            return _month_span(int(g["y3"]), month, month)
        if g["qy"]:
            quarter = int(g["q1"]) if g["q1"] else _QUARTERS[g["q2"].lower()]
            return _month_span(int(g["qy"]), 3 * quarter - 2, 3 * quarter)
        if g["py"]:
            part = re.sub(r"\s+", " ", g["part"].lower()).removeprefix("the ").removesuffix(" of")
            first_month, last_month = _PARTS[part]
            return _month_span(int(g["py"]), first_month, last_month)
        if g["year"]:
            return _month_span(int(g["year"]), 1, 12)
    except (ValueError, KeyError):  # 31 February, an unknown month abbreviation
        return None
    return None


def find_dates(text: str) -> list[_Date]:
    found = []
    for match in _DATE.finditer(text):
        span = _to_date(match)
        if span is not None:
            found.append(_Date(match.start(), match.end(), *span))
    return found


# --- dated statements -----------------------------------------------------------------------------------

_FILLER = r"(?:\s+(?:on|in|of|at))?(?:\s+the)?\s*$"
_END_CUE = re.compile(
    r"\b(?:until|till|'til|through|thru|ends?|ending|expires?|expiring|expiry(?:\s+date)?|expiration(?:\s+date)?"
    r"|no\s+later\s+than|deadline|last\s+day)(?:\s+(?:is|of))?" + _FILLER,
    re.IGNORECASE,
)
_AS_OF_CUE = re.compile(
    r"\b(?:as\s+of|as\s+at|at\s+the\s+time\s+of\s+writing|(?:last\s+)?updated(?:\s+on)?\s*:?"
    r"|(?:currently|at\s+the\s+moment|at\s+present|right\s+now|at\s+this\s+time|this\s+year)\s*[,(]?)" + _FILLER,
    re.IGNORECASE,
)
_START_CUE = re.compile(r"\b(?:starting|beginning|commencing|effective|as\s+from)" + _FILLER, re.IGNORECASE)
# Prepositions that tie a date to an event the sentence talks about ("coming in Q3 2022", "by March 2021").
_EVENT_CUE = re.compile(
    r"\b(?:in|by|on|for|around|during|from|starting|beginning|until|till|through|effective)" + _FILLER,
    re.IGNORECASE,
)
_YEAR_NOW_CUE = re.compile(r"\bin" + _FILLER, re.IGNORECASE)
_NOW_WORDS = re.compile(
    r"\b(?:currently|at\s+the\s+moment|at\s+present|right\s+now|at\s+this\s+time|this\s+year|these\s+days)\b",
    re.IGNORECASE,
)
_FUTURE = re.compile(
    r"\b(?:will|won't|shall|going\s+to|plan(?:s|ned|ning)?\s+to|(?:is|are|we're)\s+planning|scheduled\s+(?:to|for)"
    r"|expect(?:s|ed)?\s+to|intends?\s+to|upcoming|coming\s+soon|later\s+this\s+year|in\s+the\s+coming"
    r"|(?:is|are)\s+(?:coming|arriving|launching|rolling\s+out|being\s+(?:added|released|introduced)))\b"
    r"|\b\w+'ll\b",
    re.IGNORECASE,
)
# A note that says it is temporary or new goes out of date faster than a plain snapshot.
_TEMPORARY = re.compile(
    r"\b(?:temporar(?:y|ily)|newly|recently|for\s+now|known\s+(?:issue|bug)|workaround|bug)\b", re.IGNORECASE
)
# "A Privacy Guide for 2024": a label that ties the whole text to one year.
_YEAR_LABEL = re.compile(
    rf"\b(?:guide|edition|tips|checklist|handbook|roundup|trends|predictions|best\s+[\w-]+)\s+(?:for|of|in)\s+"
    rf"(?P<year>{_Y})\b",
    re.IGNORECASE,
)
# The sentence tells history: an ended period is then a fact, not an expired promise.
_PAST = re.compile(
    r"\b(?:was|were|had|did|used\s+to|previously|formerly|originally|prior\s+to|back\s+in|historically)\b",
    re.IGNORECASE,
)
_PRESENT_AUXILIARIES = frozenset({"is", "are", "be", "been", "remain", "remains", "stay", "stays", "get", "gets"})
_VERSION = re.compile(
    r"\b(?:new\s+in|since|introduced\s+in|added\s+in|available\s+(?:from|since|in|as\s+of)|as\s+of"
    r"|starting\s+(?:with|in|from)|beginning\s+with)\s+(?:\S+\s+){0,4}?(?:version|ver\.?|v\.?|release)\s*"
    r"(?P<version>\d+(?:\.\d+){0,3})(?![\w-]|/\d)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class DatedStatement:
    """One dated phrase that makes its sentence stale, with why."""

    rule: str  # ended, future_past, as_of, announcement, year_label, version
    phrase: str  # the cue and its date (or version), as written
    start: int  # offset of ``phrase`` in the sentence
    score: float
    summary: str
    action: Action


def _aging_score(days_past_due: int, grace_days: int) -> float:
    """0.4 when a snapshot statement turns due, 0.7 at three times its grace."""
    return round(0.4 + 0.3 * min(1.0, days_past_due / max(1, 2 * grace_days)), 3)


_PRONOUN_PAST = re.compile(r"\b(?:we|i|you|they|he|she|it)\s+(?:\w+\s+)?\w+ed\b", re.IGNORECASE)


def _simple_past_before(prefix: str) -> bool:
    """'We supported X until', 'support ended through' read as history; 'is supported until' does not."""
    if _PRONOUN_PAST.search(prefix):
        return True
    words = re.findall(r"[A-Za-z']+", prefix)
    if not words:
        return False
    last = words[-1].lower()
    before = words[-2].lower() if len(words) > 1 else ""
    return last.endswith("ed") and before not in _PRESENT_AUXILIARIES


def dated_statements(
    sentence: str,
    today: date,
    *,
    max_age_days: int,
    current_versions: Mapping[str, str] | None = None,
    title: str = "",
    version_gap: int = 2,
) -> list[DatedStatement]:
    """The phrases that date ``sentence`` as of ``today`` (see the module docstring for the rules)."""
    out: list[DatedStatement] = []
    if not any(char.isdigit() for char in sentence):
        return out  # every date, year and version has a digit
    future = _FUTURE.search(sentence) is not None
    past = _PAST.search(sentence) is not None
    now_words = _NOW_WORDS.search(sentence) is not None
    for found in find_dates(sentence):
        prefix = sentence[: found.start]
        written = sentence[found.start : found.end]
        days_over = (today - found.last).days
        end_cue = _END_CUE.search(prefix)
        if end_cue:
            cue_start = end_cue.start()
            phrase = sentence[cue_start : found.end]
            if days_over > 0 and not past and not _simple_past_before(prefix[:cue_start]):
                out.append(
                    DatedStatement(
                        "ended",
                        phrase,
                        cue_start,
                        0.8,
                        f'Says "{phrase}", which ended {days_over} days ago: update or remove the statement.',
                        "update",
                    )
                )
            continue
        event_cue = _EVENT_CUE.search(prefix)
        if future and days_over > 0 and (event_cue or _names_a_period(written)):
            cue_start = event_cue.start() if event_cue else found.start
            phrase = sentence[cue_start : found.end]
            out.append(
                DatedStatement(
                    "future_past",
                    phrase,
                    cue_start,
                    0.75,
                    f'Speaks of "{phrase}" as still to come, but that date passed {days_over} days ago.',
                    "update",
                )
            )
            continue
        as_of = _AS_OF_CUE.search(prefix) or (_YEAR_NOW_CUE.search(prefix) if now_words else None)
        start_cue = None if as_of else _START_CUE.search(prefix)
        cue = as_of or start_cue
        if cue is None or past:
            continue
        # A snapshot is measured from the day it was true (the end of "as of 2021"); news from the day it began.
        days_old = (today - (found.last if as_of else found.first)).days
        grace = max_age_days // 2 if _TEMPORARY.search(sentence) else max_age_days
        if days_old <= grace:
            continue
        phrase = sentence[cue.start() : found.end]
        if as_of:
            summary = f'States something "{phrase}" ({days_old} days ago): check it still holds and re-date it.'
        else:
            summary = f'Announces a change "{phrase}" ({days_old} days ago) as news: check it and reword it.'
        out.append(
            DatedStatement(
                "as_of" if as_of else "announcement",
                phrase,
                cue.start(),
                _aging_score(days_old - grace, grace),
                summary,
                "review",
            )
        )
    for label in _YEAR_LABEL.finditer(sentence):
        if int(label["year"]) < today.year:
            out.append(
                DatedStatement(
                    "year_label",
                    label.group(),
                    label.start(),
                    0.5,
                    f'Is labelled "{label.group()}", a year that has passed: update it or drop the year.',
                    "review",
                )
            )
    if current_versions:
        out.extend(_version_statements(sentence, title, current_versions, version_gap))
    return out


_PERIOD = re.compile(
    r"(?:q[1-4]|early|mid|late|h[12]|spring|summer|fall|autumn|winter|the\s|end|first|second|third|fourth"
    r"|beginning|start|close|middle)",
    re.IGNORECASE,
)


def _names_a_period(written: str) -> bool:
    """'mid-2021', 'Q3 2022', 'early 2020' name a period, as plans do."""
    return _PERIOD.match(written) is not None


def _version_tuple(value: str) -> tuple[int, ...] | None:
    parts = re.findall(r"\d+", value)
    return tuple(int(p) for p in parts) if parts else None


def _version_statements(
    sentence: str, title: str, current_versions: Mapping[str, str], version_gap: int
) -> list[DatedStatement]:
    out: list[DatedStatement] = []
    for match in _VERSION.finditer(sentence):
        product = _nearest_product(sentence, match.start(), current_versions) or _nearest_product(
            title, 0, current_versions
        )
        if product is None:
            continue
        mentioned = _version_tuple(match.group("version"))
        current = _version_tuple(current_versions[product])
        if mentioned is None or current is None:
            continue
        gap = current[0] - mentioned[0]
        if gap < version_gap:
            continue
        phrase = match.group()
        out.append(
            DatedStatement(
                "version",
                phrase,
                match.start(),
                round(min(0.8, 0.5 + 0.1 * (gap - version_gap)), 3),
                f'Says "{phrase}" but {product} is now at version {current_versions[product]}: update the version '
                "notes.",
                "update",
            )
        )
    return out


def _nearest_product(text: str, at: int, current_versions: Mapping[str, str]) -> str | None:
    """The configured product named in ``text`` closest to offset ``at`` (the version phrase)."""
    best: tuple[int, str] | None = None
    for product in current_versions:
        for hit in _phrase_pattern(product).finditer(text):
            distance = min(abs(hit.start() - at), abs(hit.end() - at))
            if best is None or distance < best[0]:
                best = (distance, product)
    return best[1] if best else None


# A retired term inside a URL is part of an address, not of the prose.
_URL = re.compile(r"\S*(?:://|www\.)\S*|\S+\.(?:html?|php|aspx?)\S*|\S*/\S+/\S*", re.IGNORECASE)
_NAMES_THE_OLD_TERM = re.compile(
    r"\b(?:formerly|previously|originally|(?:was|were|used\s+to\s+be)\s+(?:called|named|known\s+as|referred\s+to\s+as)"
    r"|renamed|old\s+name|former\s+name|no\s+longer\s+called)\b",
    re.IGNORECASE,
)


@lru_cache(maxsize=1024)
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    """A whole word or phrase, any case, any spacing; not part of a longer word or a hyphenated compound."""
    body = r"\s+".join(re.escape(word) for word in phrase.split())
    return re.compile(rf"(?<![\w])(?<!\w-){body}(?![\w])(?!-\w)", re.IGNORECASE)


# --- links ----------------------------------------------------------------------------------------------

_PAGE_EXTENSIONS = frozenset({"", "html", "htm", "md", "php", "asp", "aspx", "shtml", "xhtml"})
_ZENDESK_ARTICLE = re.compile(r"^(?P<prefix>.*/articles/)(?P<id>\d+)(?:-[^/]*)?$")


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower().removeprefix("www.")


def page_key(url: str) -> str:
    """What two URLs of the same page share: host, path without trailing slash or index.html, query; no scheme
    or fragment.

    Zendesk article URLs keep their numeric id when the title slug changes, so they compare by id.
    """
    parts = urlsplit(url.strip())
    path = re.sub(r"/index\.html?$", "", unquote(parts.path)).rstrip("/")
    zendesk = _ZENDESK_ARTICLE.match(path)
    if zendesk:
        path = zendesk["prefix"] + zendesk["id"]
    return f"{_host(url)}{path}" + (f"?{parts.query}" if parts.query else "")


def _folder(key: str) -> str:
    return key.split("?", 1)[0].rsplit("/", 1)[0]


def _is_page(key: str) -> bool:
    last = key.split("?", 1)[0].partition("/")[2].rsplit("/", 1)[-1]
    return "." not in last or last.rsplit(".", 1)[-1].lower() in _PAGE_EXTENSIONS


# A folder source without a ``permalink`` gives an article its file's path as URL; these suffixes mark such a URL.
_SOURCE_FILE = re.compile(r"\.(?P<ext>md|markdown|html?)$", re.IGNORECASE)
_SLUG_CHARS = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class UrlForm:
    """One URL an article answers to; ``rank`` 0 is its own URL, 1 a form of its path, 2 a slug form."""

    url: str
    rank: int


def article_url_forms(articles: Sequence[Article]) -> dict[str, list[UrlForm]]:
    """The URLs each article answers to, by article id: its own, and the common served forms of a source file.

    An article whose URL is a source file (it ends in ``.md``, ``.markdown``, ``.html`` or ``.htm``: a folder
    source without a ``permalink`` gives the file's path) is also found at the URLs a static site generator
    commonly serves that file at. With ``<base>`` the folder all of its source's files share (``base_url`` for
    files spread over several folders), ``_docs`` a Jekyll collection folder right below it, ``privacy/vpn.md``
    the file's path below that and "Search Privacy" its front-matter section, these forms resolve:

    - rank 1, the file's path served as a page: ``<base>/_docs/privacy/vpn`` (and ``vpn/``, ``vpn.html``),
      the same without the collection folder (``<base>/privacy/vpn/``, Jekyll's ``/:path/``) and with it
      without its underscore (``<base>/docs/privacy/vpn/``, Jekyll's default ``/:collection/:path``);
    - rank 2, Markdown files only, the slug under one section folder or none: ``<base>/vpn/`` (``/:name/``),
      ``<base>/docs/vpn/`` and ``<base>/doc/vpn/`` (``/:collection/:name/``, the collection also singular),
      ``<base>/privacy/vpn/`` (its own folder) and ``<base>/search-privacy/vpn/`` (its section).

    The trailing slash, ``index.html`` and the fragment never matter (``page_key``). An article served at its
    own URL (a crawled page, a declared ``permalink``, a front-matter ``permalink``) keeps only that URL: a link
    to another form of it is a link the site does not serve. Where a form belongs to several articles, the one
    with the lower rank keeps it; at equal ranks, all of them do.
    """
    files: dict[str, list[tuple[str, str, list[str], str]]] = {}  # source id -> (article id, origin, segments, ext)
    forms: dict[str, list[UrlForm]] = {}
    for article in articles:
        forms[article.article_id] = [UrlForm(article.url, 0)] if article.url else []
        parts = urlsplit(article.url)
        suffix = _SOURCE_FILE.search(parts.path)
        if suffix is None or parts.query:
            continue
        origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme else ""
        segments = [part for part in parts.path.split("/") if part]
        files.setdefault(article.source_id, []).append((article.article_id, origin, segments, suffix["ext"]))
    by_id = {article.article_id: article for article in articles}
    for entries in files.values():
        base = _common_folder([segments for _, _, segments, _ in entries])
        # A collection folder (and what is below it) is part of each file's path, not of the base.
        base = base[: next((i for i, name in enumerate(base) if name.startswith("_")), len(base))]
        for article_id, origin, segments, ext in entries:
            forms[article_id] += _served_forms(origin, base, segments, ext, by_id[article_id].section)
    return forms


def _common_folder(paths: list[list[str]]) -> list[str]:
    folders = [segments[:-1] for segments in paths]
    common = folders[0]
    for folder in folders[1:]:
        size = 0
        while size < min(len(common), len(folder)) and common[size] == folder[size]:
            size += 1
        common = common[:size]
    return common


def _served_forms(origin: str, base: list[str], segments: list[str], ext: str, section: str) -> list[UrlForm]:
    rest = segments[len(base) :]
    collection = rest[0][1:] if len(rest) > 1 and rest[0].startswith("_") and len(rest[0]) > 1 else ""
    if collection:
        rest = rest[1:]
    folders, stem = rest[:-1], rest[-1][: -len(ext) - 1]
    paths = [[f"_{collection}", *folders, stem]] if collection else []
    paths += [[*folders, stem]] + ([[collection, *folders, stem]] if collection else [])
    served = [(1, path) for path in paths]
    if ext.lower() in ("md", "markdown"):
        sections = {folders[-1]} if folders else set()
        if collection:
            sections |= {collection, collection.removesuffix("s")}
        slug = _SLUG_CHARS.sub("-", section.lower()).strip("-")
        if slug:
            sections.add(slug)
        served += [(2, [stem])] + [(2, [name, stem]) for name in sorted(sections)]
    # Without a base URL, the site serves the files from its root: links to them start with "/".
    leads = ["/"] if origin else ["", "/"]
    out: list[UrlForm] = []
    for rank, path in served:
        for lead in leads:
            joined = lead + "/".join([*base, *path])
            out += [UrlForm(origin + joined, rank), UrlForm(origin + joined + ".html", rank)]
    return out


_KRAMDOWN_ID = re.compile(r"\{:?\s*#([\w:.-]+)\s*\}")


def heading_ids(heading: str) -> set[str]:
    """The ids a heading gets: an explicit kramdown ``{#id}`` left in its text, and the ids common renderers
    generate from the text (kramdown, GitHub, Python-Markdown's toc)."""
    explicit = set(_KRAMDOWN_ID.findall(heading))
    lowered = _KRAMDOWN_ID.sub("", heading).strip().lower()
    github = re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", lowered))
    kramdown = re.sub(r"^[^a-z]+", "", re.sub(r" ", "-", re.sub(r"[^a-z0-9 -]", "", lowered)))
    toc = re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", lowered)).strip("-")
    return explicit | {github, kramdown, toc, re.sub(r"-+", "-", github).strip("-")} - {""}


def _fragment_forms(fragment: str) -> set[str]:
    decoded = unquote(fragment)
    return {decoded, decoded.lower()}


def _checkable_fragment(fragment: str) -> bool:
    """Client-side routes (#/login, #!/x), text fragments (#:~:text=) and #top are not anchors in the page."""
    return bool(fragment) and fragment.lower() != "top" and fragment[0] not in "/!:" and "=" not in fragment


# --- the detector ---------------------------------------------------------------------------------------


class StalenessDetector:
    """Finds stale articles; see the module docstring for the rules and their scores."""

    name = "staleness"
    version = "1"

    def __init__(self, settings: StaleSettings) -> None:
        self.settings = settings

    def detect(self, corpus: AuditCorpus) -> Iterator[Finding]:
        checks: list[tuple[str, Callable[[AuditCorpus, Article], Iterator[Finding]]]] = [
            ("age", self._age),
            ("deprecated_term", self._deprecated_terms),
        ]
        if self.settings.check_dated_content:
            checks.append(("dated_content", self._dated_content))
        if self.settings.check_links:
            checks.append(("broken_link", _LinkChecker(corpus, self).check))
        for article in corpus.articles:
            for check_name, check in checks:
                try:
                    yield from check(corpus, article)
                except Exception:  # one odd article must not stop the audit: it is logged and skipped
                    logger.warning("staleness %s skipped %s", check_name, article.article_id, exc_info=True)
        yield from self._superseded(corpus)
        yield from self._failing(corpus)

    # -- shared --

    def _finding(
        self,
        corpus: AuditCorpus,
        check: str,
        article_ids: tuple[str, ...],
        key: str,
        score: float,
        summary: str,
        action: Action,
        evidence: tuple[Evidence, ...],
    ) -> Finding:
        score = round(min(1.0, max(0.0, score)), 3)
        return Finding(
            finding_id=make_finding_id(KIND, check, article_ids, key),
            kind=KIND,
            check=check,
            article_ids=article_ids,
            score=score,
            severity=severity_for(score),
            summary=summary,
            action=action,
            evidence=evidence,
            detector=self.name,
            detector_version=self.version,
            found_at=corpus.run_at,
        )

    # -- age --

    def _age(self, corpus: AuditCorpus, article: Article) -> Iterator[Finding]:
        if article.updated_at is None:
            return
        interval = corpus.review_for(article.source_id).interval_days
        if interval <= 0:
            return
        updated = article.updated_at if article.updated_at.tzinfo else article.updated_at.replace(tzinfo=UTC)
        age_days = (corpus.run_at - updated).total_seconds() / 86400
        if age_days <= interval:
            return
        full = max(1.0001, self.settings.age_full_score_intervals)
        score = 0.3 + 0.7 * min(1.0, (age_days / interval - 1) / (full - 1))
        yield self._finding(
            corpus,
            "age",
            (article.article_id,),
            "",
            score,
            f"Not updated for {int(age_days)} days (review every {interval}): check it is still right.",
            "review",
            (
                Evidence(
                    article.article_id,
                    link=article.url,
                    detail=f"updated {updated.date():%Y-%m-%d}; review every {interval} days",
                ),
            ),
        )

    # -- dated content --

    def _dated_content(self, corpus: AuditCorpus, article: Article) -> Iterator[Finding]:
        if _is_changelog(article):
            return  # release notes are dated records: "starting 5/15/2021, we'll ..." was right when written
        review = corpus.review_for(article.source_id)
        today = corpus.run_at.astimezone(UTC).date()
        grouped: dict[tuple[str, str], list[tuple[DatedStatement, _Sentence]]] = {}
        for sentence in split_sentences(article.text):
            for statement in dated_statements(
                sentence.text,
                today,
                max_age_days=self.settings.dated_statement_max_age_days,
                current_versions=review.current_versions,
                title=article.title,
                version_gap=self.settings.version_gap,
            ):
                key = (statement.rule, " ".join(statement.phrase.lower().split()))
                grouped.setdefault(key, []).append((statement, sentence))
        for (rule, phrase_key), hits in grouped.items():
            worst = max(hits, key=lambda hit: hit[0].score)[0]
            evidence = tuple(
                Evidence(
                    article.article_id,
                    text=sentence.text,
                    chunk_id=_chunk_at(corpus, article.article_id, sentence.start + statement.start),
                    highlights=(statement.phrase,),
                    link=article.url,
                    detail=rule,
                )
                for statement, sentence in hits
            )
            yield self._finding(
                corpus,
                "dated_content",
                (article.article_id,),
                f"{rule}:{phrase_key}",
                worst.score,
                worst.summary,
                worst.action,
                evidence,
            )

    # -- deprecated terms --

    def _deprecated_terms(self, corpus: AuditCorpus, article: Article) -> Iterator[Finding]:
        terms = corpus.review_for(article.source_id).deprecated_terms
        if not terms:
            return
        sentences = split_sentences(article.text)
        if article.title and not article.text.lstrip().startswith(article.title):
            sentences = (_Sentence(-1, article.title), *sentences)
        for term, replacement in terms.items():
            if not term.strip():
                continue
            pattern = _phrase_pattern(term)
            if not pattern.search(article.title) and not pattern.search(article.text):
                continue
            evidence: list[Evidence] = []
            hits = 0
            for sentence in sentences:
                hits_here = list(pattern.finditer(sentence.text))
                if not hits_here or _NAMES_THE_OLD_TERM.search(sentence.text):
                    continue  # "formerly called X" explains the retired name; it does not use it
                urls = [m.span() for m in _URL.finditer(sentence.text)]
                found = [m.group() for m in hits_here if not any(start <= m.start() < end for start, end in urls)]
                if not found:
                    continue
                hits += len(found)
                chunk_id = _chunk_at(corpus, article.article_id, sentence.start) if sentence.start >= 0 else ""
                evidence.append(
                    Evidence(
                        article.article_id,
                        text=sentence.text,
                        chunk_id=chunk_id,
                        highlights=tuple(sorted(set(found))),
                        link=article.url,
                    )
                )
            if not evidence:
                continue
            advice = f'say "{replacement}" instead' if replacement else "remove or reword it"
            times = "once" if hits == 1 else f"{hits} times"
            yield self._finding(
                corpus,
                "deprecated_term",
                (article.article_id,),
                term.casefold(),
                min(0.8, 0.5 + 0.1 * (hits - 1)),
                f'Uses the retired term "{term}" {times}: {advice}.',
                "update",
                tuple(evidence),
            )

    # -- superseded --

    def _superseded(self, corpus: AuditCorpus) -> Iterator[Finding]:
        vectors = corpus.article_vectors
        if len(corpus.articles) < 2 or vectors.ndim != 2 or vectors.shape[1] == 0:
            return
        minimum = self.settings.superseded_similarity
        pairs = candidate_pairs(vectors, k=self.settings.superseded_neighbours, min_similarity=minimum)
        for i, j, similarity in pairs:
            a, b = corpus.articles[i], corpus.articles[j]
            if a.updated_at is None or b.updated_at is None or a.locale != b.locale:
                continue
            older, newer = (a, b) if a.updated_at < b.updated_at else (b, a)
            assert older.updated_at is not None and newer.updated_at is not None  # both checked above
            gap_days = (newer.updated_at - older.updated_at).days
            if gap_days <= self.settings.superseded_min_days:
                continue
            closeness = (similarity - minimum) / max(1e-6, 1 - minimum)
            score = 0.4 + 0.3 * min(1.0, closeness) + 0.3 * min(1.0, gap_days / (4 * self.settings.superseded_min_days))
            detail = (
                f"updated {older.updated_at.date().isoformat()}; '{newer.title}' says the same (cosine "
                f"{similarity:.2f}) and was updated {newer.updated_at.date().isoformat()}"
            )
            yield self._finding(
                corpus,
                "superseded",
                (older.article_id, newer.article_id),
                f"older:{older.article_id}",
                score,
                f'Near-copy of the newer "{newer.title}" (updated {gap_days} days later): retire it, or merge what '
                "only this one says.",
                "retire",
                (
                    # Each article's evidence links to that article: the owner opens both to compare them.
                    Evidence(older.article_id, text=older.title, link=older.url, detail=detail),
                    Evidence(newer.article_id, text=newer.title, link=newer.url, detail="the newer article"),
                ),
            )

    # -- failing articles --

    def _failing(self, corpus: AuditCorpus) -> Iterator[Finding]:
        minimum = max(1, self.settings.failing_min_tickets)
        for article_id, queries in corpus.escalations.items():
            article = corpus.article_by_id.get(article_id)
            if article is None or len(queries) < minimum:
                continue
            count = len(queries)
            example = " ".join(queries[0].split())[:100]
            yield self._finding(
                corpus,
                "failing_article",
                (article_id,),
                "",
                1 - 0.5 ** (count / minimum),
                f'{count} escalated tickets ended on this article, e.g. "{example}": it may not answer what '
                "customers ask.",
                "update",
                tuple(
                    Evidence(article_id, text=q, link=article.url, detail="escalated ticket")
                    for q in queries[:_MAX_QUOTED_TICKETS]
                ),
            )


_CHANGELOG_TITLE = re.compile(
    r"release\s*notes|change\s*log|what'?s\s+new|version\s+history|release\s+history|product\s+updates",
    re.IGNORECASE,
)
_HEADING = re.compile(r"<h[1-6][^>]*>(.*?)</h[1-6]>", re.IGNORECASE | re.DOTALL)


def _is_changelog(article: Article) -> bool:
    """Release notes, by title or by sections headed with dates ("2021-05-11", "March 2021")."""
    if _CHANGELOG_TITLE.search(article.title):
        return True
    dated_headings = 0
    for heading in _HEADING.findall(article.body_html or ""):
        text = re.sub(r"<[^>]+>", "", heading).strip()
        covered = sum(found.end - found.start for found in find_dates(text))
        dated_headings += bool(text) and covered >= len(text) / 2
    return dated_headings >= 2


def _chunk_at(corpus: AuditCorpus, article_id: str, offset: int) -> str:
    """The chunk whose span in the article text holds ``offset`` ("" when no chunk does)."""
    for row in corpus.chunk_rows_by_article.get(article_id, ()):
        chunk = corpus.chunks[row]
        if chunk.char_start <= offset < chunk.char_end:
            return chunk.chunk_id
    return ""


class _LinkChecker:
    """Link lookups built once per corpus: article pages by key (every form of their URL, see
    ``article_url_forms``), the folders that hold them and (lazily) their anchors."""

    def __init__(self, corpus: AuditCorpus, detector: StalenessDetector) -> None:
        self.detector = detector
        self.settings = detector.settings
        # page key -> (rank, the articles served there): each article under its own URL and its other forms.
        self.targets: dict[str, tuple[int, list[Article]]] = {}
        by_id = corpus.article_by_id
        for article_id, forms in article_url_forms(corpus.articles).items():
            for form in forms:
                key = page_key(form.url)
                rank, found = self.targets.get(key, (form.rank + 1, []))
                if form.rank < rank:
                    self.targets[key] = (form.rank, [by_id[article_id]])
                elif form.rank == rank and by_id[article_id] not in found:
                    found.append(by_id[article_id])
        self.hosts = {_host(a.url) for a in corpus.articles if a.url}
        self.folders = {_folder(page_key(a.url)) for a in corpus.articles if a.url}
        # Another form's folder holds articles once a link reaches one through it ("/article/<slug>/"): a link to
        # a missing page there is then a broken link. The site root never becomes one that way.
        for article in corpus.articles:
            for link in article.links:
                key = page_key(link.partition("#")[0])
                folder = _folder(key)
                if self.targets.get(key, (0, []))[0] > 0 and "/" in folder:
                    self.folders.add(folder)
        self.dead = {page_key(url): why for url, why in corpus.dead_links.items()}
        self._anchors: dict[str, frozenset[str]] = {}

    def anchors(self, article: Article) -> frozenset[str]:
        known = self._anchors.get(article.article_id)
        if known is None:
            names: set[str] = set()
            for element in _elements(article.body_html):
                for attribute in ("id", "name"):
                    value = element.get(attribute)
                    if value:
                        names.update({value, value.lower()})
                if self.settings.anchors_from_headings and element.tag in _HEADINGS:
                    names.update(heading_ids(_text(element)))
            known = self._anchors[article.article_id] = frozenset(names)
        return known

    def check(self, corpus: AuditCorpus, article: Article) -> Iterator[Finding]:
        in_body = _body_links(article)
        # Links with a #fragment are read from the body too: they may be in-page ones, and ``links`` may have
        # been stored without fragments.
        links = [*article.links, *(link.href for link in in_body if "#" in link.href)]
        seen: set[str] = set()
        for link in links:
            target, _, fragment = link.partition("#")
            key = page_key(target)
            problem = self._problem(key, fragment, link) if key else None
            if problem is None:
                continue
            score, summary, why, about_anchor = problem
            finding_key = f"{key}#{fragment}" if about_anchor else key
            if finding_key in seen:
                continue
            seen.add(finding_key)
            yield self.detector._finding(
                corpus,
                "broken_link",
                (article.article_id,),
                finding_key,
                score,
                summary,
                "fix_link",
                (_link_evidence(corpus, article, link, why, in_body),),
            )

    def _under_article_folder(self, key: str) -> bool:
        folder = _folder(key)
        while folder not in self.folders:
            if "/" not in folder:
                return False
            folder = _folder(folder)
        return True

    def _problem(self, key: str, fragment: str, link: str) -> tuple[float, str, str, bool] | None:
        """``(score, summary, why, about_anchor)`` for a broken link, None for a good or unchecked one."""
        why = self.dead.get(key)
        if why is not None:
            return 0.9, f"Links to {link}, which is gone ({why}).", why, False
        if _host(link) not in self.hosts or not _is_page(key):
            return None  # external (not checked without the network) or a file, not an article
        targets = self.targets.get(key, (0, []))[1]
        if not targets:
            if key.split("?", 1)[0] == _host(link):
                return None  # the site's home page
            if self.settings.links_only_under_article_folders and not self._under_article_folder(key):
                return None
            summary = f"Links to {link}, which is not an article in the KB (moved or removed?)."
            return 0.8, summary, "not an article in the KB", False
        anchors = frozenset().union(*(self.anchors(target) for target in targets))
        if _checkable_fragment(fragment) and not (_fragment_forms(fragment) & anchors):
            title = targets[0].title
            summary = f'Links to {link}, but "{title}" has no section or anchor "{unquote(fragment)}".'
            return 0.5, summary, "anchor not in the target article", True
        return None


_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCKS = frozenset({"p", "li", "td", "th", "dd", "dt", "blockquote", "div", "section"} | _HEADINGS)
_LETTERS = re.compile(r"\W+")


@dataclass(frozen=True, slots=True)
class _BodyLink:
    href: str  # absolute; in-page "#x" links are made absolute against the article's URL
    label: str  # the link text
    block: str  # the text of the paragraph, list item or cell it sits in


def _body_links(article: Article) -> list[_BodyLink]:
    if not article.body_html or "href" not in article.body_html:
        return []
    found: list[_BodyLink] = []
    for anchor in _elements(article.body_html):
        href = (anchor.get("href") or "").strip() if anchor.tag == "a" else ""
        scheme = urlsplit(href).scheme.lower()
        if not href or (scheme and scheme not in ("http", "https")):
            continue  # mailto:, tel:, javascript:
        absolute = article.url.partition("#")[0] + href if href.startswith("#") else urljoin(article.url, href)
        block = next((parent for parent in anchor.iterancestors() if parent.tag in _BLOCKS), anchor)
        found.append(_BodyLink(absolute, _text(anchor), _text(block)))
    return found


def _elements(html: str) -> list[Any]:
    """Every element of an article body, in document order (lxml: a body is parsed tens of times faster)."""
    if not html or not html.strip():
        return []
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (ValueError, lxml.etree.ParserError):  # markup lxml cannot read: no links or anchors to check
        return []
    return [element for element in root.iter() if isinstance(element.tag, str)]


def _text(element: Any) -> str:
    return " ".join(element.text_content().split())


def _link_evidence(corpus: AuditCorpus, article: Article, link: str, why: str, in_body: list[_BodyLink]) -> Evidence:
    """The link's text and the sentence it sits in, so the owner can find it in the article."""
    key, _, fragment = link.partition("#")
    same_page = [b for b in in_body if page_key(b.href.partition("#")[0]) == page_key(key)]
    exact = [b for b in same_page if b.href.partition("#")[2] == fragment]
    body_link = next(iter(exact or same_page), None)
    if body_link is None or not _LETTERS.sub("", body_link.label):
        return Evidence(article.article_id, link=link, detail=why)
    label = body_link.label
    block = _LETTERS.sub("", body_link.block.lower())
    pattern = _phrase_pattern(label)
    candidates = [s for s in split_sentences(article.text) if pattern.search(s.text)]
    # A short label ("here") occurs in many sentences: prefer one from the paragraph the link sits in.
    best = next((s for s in candidates if _LETTERS.sub("", s.text.lower()) in block), None)
    if best is None and candidates:
        best = candidates[0]
    if best is None:
        return Evidence(article.article_id, text=label, highlights=(label,), link=link, detail=why)
    hit = pattern.search(best.text)
    offset = best.start + (hit.start() if hit else 0)
    return Evidence(
        article.article_id,
        text=best.text,
        chunk_id=_chunk_at(corpus, article.article_id, offset),
        highlights=(hit.group() if hit else label,),
        link=link,
        detail=why,
    )
