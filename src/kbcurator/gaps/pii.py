"""Replace personal data in free text with typed placeholders, before anything is stored, embedded or shown.

Detection is rule-based (regular expressions plus checksums), not NER: it is fast, deterministic and has no
model to ship, at the price of missing names and unusual formats. The rules err towards masking a little
too much rather than leaking. Kinds, in the order they are applied:

``[EMAIL]``
    ``local@domain.tld`` (plus tags, subdomains, any case, ``%40`` inside URLs, ``mailto:`` links). With
    ``obfuscated_emails`` also ``jane [at] example [dot] com``, ``jane(at)example.com`` and ``jane dot doe at
    example dot com``; the bare-word form (`` at `` and `` dot ``) needs a common top-level domain, so
    "arrived at example.com" and "look at the dot matrix" stay.
custom patterns
    ``PiiSettings.patterns`` maps a name to a regex; matches become ``[NAME]`` (``order`` -> ``[ORDER]``).
    They run before the built-in number rules, so an order number is not half-eaten as a phone.
``[IBAN]``
    Country code, two check digits and the BBAN, with or without spaces between groups; the length must be
    that country's IBAN length and the ISO 13616 mod-97 check must pass.
``[CARD]``
    13-19 digits, optionally grouped with single spaces or dashes, passing the Luhn check. A digit run that
    fails Luhn is left as it is: masking every long number would also mask order, tracking and account
    numbers that support needs to read, and those are covered by custom patterns instead.
``[PHONE]``
    ``+CC`` international forms, ``00CC`` with separators, North-American ``(555) 123-4567`` /
    ``555-123-4567`` / ``555.123.4567`` / ``1-800-555-0199``, national numbers with a trunk ``0``
    (``020 7946 0958``, ``01 23 45 67 89``, ``07700900123``), and any 7-15 digit run right after a word
    such as "phone", "call", "mobile", "tel". Dates, times, amounts, versions and Luhn-valid cards (already
    masked) are not phones. A bare digit run without ``+``, trunk ``0`` or such a word is left alone: it is
    more often an id than a phone number.
``[ADDRESS]``
    A house number and one to three capitalised words ending in a street type (``221B Baker Street``,
    ``1600 Amphitheatre Pkwy``, ``10 Downing St, Apt 4``), French ``12 rue de la Paix`` and German
    ``Hauptstraße 5``. Lower-case phrases ("2 weeks", "a 10 minute drive") never match; postcodes and
    towns are not detected.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["PiiRedactor", "PiiSettings", "iban_is_valid", "luhn_is_valid"]

Span = tuple[int, int]
Finder = Callable[[str], Iterator[Span]]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class PiiSettings(BaseModel):
    """What ``PiiRedactor`` masks. Every built-in kind is on by default; custom patterns add kinds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    emails: bool = True
    obfuscated_emails: bool = True
    cards: bool = True
    ibans: bool = True
    phones: bool = True
    addresses: bool = True
    # name -> regex, e.g. {"order": r"\bORD-\d{6,}\b"}; matches become "[ORDER]".
    patterns: dict[str, str] = Field(default_factory=dict)

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            if not _NAME.fullmatch(name):
                raise ValueError(f"pattern name {name!r} must be letters, digits and _ (it names the placeholder)")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {name!r} is not a valid regex: {exc}") from exc
            if compiled.match("") is not None:
                # It would put a placeholder between every two characters.
                raise ValueError(f"pattern {name!r} matches the empty string")
        return value


class PiiRedactor:
    """Masks personal data in text; ``counts`` tallies replacements per kind over the redactor's life.

    Example: ``PiiRedactor().redact("mail jo@x.io")`` -> ``"mail [EMAIL]"``.
    """

    def __init__(self, settings: PiiSettings | None = None) -> None:
        settings = settings or PiiSettings()
        self._counts: Counter[str] = Counter()
        steps: list[tuple[str, Finder]] = []
        if settings.emails:
            steps.append(("email", _find_emails))
        if settings.obfuscated_emails:
            steps.append(("email", _find_obfuscated_emails))
        for name, pattern in settings.patterns.items():
            steps.append((name.lower(), _regex_finder(re.compile(pattern))))
        if settings.ibans:
            steps.append(("iban", _find_ibans))
        if settings.cards:
            steps.append(("card", _find_cards))
        if settings.phones:
            steps.append(("phone", _find_phones))
        if settings.addresses:
            steps.append(("address", _find_addresses))
        self._steps = steps

    @property
    def counts(self) -> Mapping[str, int]:
        """Replacements made so far, by kind (``email``, ``phone``, ..., custom pattern names lower-cased)."""
        return dict(self._counts)

    def redact(self, text: str) -> str:
        # One kind at a time over the already-masked text, so later rules never see earlier matches.
        for kind, find in self._steps:
            pieces: list[str] = []
            last = 0
            for start, end in find(text):
                if start < last or end <= start:
                    continue
                pieces.append(text[last:start])
                pieces.append(f"[{kind.upper()}]")
                last = end
            if pieces:
                self._counts[kind] += len(pieces) // 2
                text = "".join(pieces) + text[last:]
        return text


def _regex_finder(pattern: re.Pattern[str]) -> Finder:
    def find(text: str) -> Iterator[Span]:
        for match in pattern.finditer(text):
            yield match.span()

    return find


# --- emails --------------------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+%-])"
    r"[^\W_][\w.+%-]*"  # local part: plus tags, dots
    r"(?:@|%40)"  # %40: an address inside a URL query
    r"(?:[\w-]+\.)+[^\W\d_]{2,24}"  # subdomains and a letters-only TLD
    r"(?![\w-])"
)

_OBF_AT = r"\s*[\[({<]\s*at\s*[\])}>]\s*"
_OBF_DOT = r"\s*[\[({<]\s*dot\s*[\])}>]\s*"
_WORD_DOT = r"\s+dot\s+"
# Common TLDs only for the bare-word form, where "x at y dot z" is otherwise ordinary English.
_COMMON_TLDS = (
    "com|net|org|edu|gov|io|co|uk|de|fr|es|it|nl|be|ch|at|se|no|dk|fi|ie|pl|pt|ca|au|nz|us|in|jp|br|mx|"
    "info|biz|me|app|dev|eu"
)
_OBFUSCATED_EMAIL = re.compile(
    rf"""
    (?<![\w.+-])
    [^\W_][\w.+-]*(?:(?:{_WORD_DOT}|{_OBF_DOT})[\w+-]+){{0,3}}   # jane / jane dot doe / jane[dot]doe
    (?:  # bounded repeats: "x dot x dot x ..." must not make the search quadratic
        {_OBF_AT}[\w-]+(?:(?:{_OBF_DOT}|{_WORD_DOT}|\.)[\w-]+){{0,4}}(?:{_OBF_DOT}|{_WORD_DOT}|\.)[^\W\d_]{{2,24}}
      | \s+at\s+[\w-]+(?:(?:{_WORD_DOT}|{_OBF_DOT})[\w-]+){{0,4}}(?:{_WORD_DOT}|{_OBF_DOT})(?:{_COMMON_TLDS})
    )
    (?![\w-])
    """,
    re.IGNORECASE | re.VERBOSE,
)


def _find_emails(text: str) -> Iterator[Span]:
    if "@" not in text and "%40" not in text:
        return
    for match in _EMAIL.finditer(text):
        yield match.span()


def _find_obfuscated_emails(text: str) -> Iterator[Span]:
    for match in _OBFUSCATED_EMAIL.finditer(text):
        yield match.span()


# --- IBAN ----------------------------------------------------------------------------------------------

# IBAN length per country (SWIFT IBAN registry, with the territories that have their own prefix).
_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AX": 18, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BL": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22,
    "GE": 22, "GF": 27, "GG": 22, "GI": 23, "GL": 18, "GP": 27, "GR": 27, "GT": 28, "HN": 28, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IM": 22, "IQ": 23, "IS": 26, "IT": 27, "JE": 22, "JO": 30, "KW": 30,
    "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24,
    "ME": 22, "MF": 27, "MK": 19, "MN": 20, "MQ": 27, "MR": 27, "MT": 31, "MU": 30, "NC": 27, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PF": 27, "PK": 24, "PL": 28, "PM": 27, "PS": 29, "PT": 25, "QA": 29,
    "RE": 27, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TF": 27, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22,
    "VG": 24, "WF": 27, "XK": 20, "YE": 30, "YT": 27,
}  # fmt: skip
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})(\d{2})")


def iban_is_valid(iban: str) -> bool:
    """ISO 13616: known country, that country's length, and the mod-97 check (letters as 10..35)."""
    iban = iban.replace(" ", "").upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isascii() or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _find_ibans(text: str) -> Iterator[Span]:
    position = 0
    while (match := _IBAN_START.search(text, position)) is not None:
        position = match.end()
        length = _IBAN_LENGTHS.get(match.group(1).upper())
        if length is None:
            continue
        # Take exactly the country's number of characters, allowing single spaces between groups.
        needed, end = length - 4, match.end()
        while needed and end < len(text):
            if text[end].isascii() and text[end].isalnum():
                needed -= 1
                end += 1
            elif text[end] == " " and end + 1 < len(text) and text[end + 1].isascii() and text[end + 1].isalnum():
                end += 1
            else:
                break
        if needed or (end < len(text) and text[end].isalnum()):
            continue
        if iban_is_valid(text[match.start() : end]):
            yield match.start(), end
            position = end


# --- payment cards -------------------------------------------------------------------------------------

# Groups of 3+ digits joined by single spaces or dashes (4-4-4-4, Amex 4-6-5, or none), not inside a word,
# a decimal or a longer number. Shorter groups ("12 4111 ...") end a run, which keeps the search linear.
_DIGIT_RUN = re.compile(r"(?<![\w.,+-])\d{3,}(?:[ -]\d{3,})*(?![\w]|[.,-]\d)")
_GROUP = re.compile(r"\d+")


def luhn_is_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _find_cards(text: str) -> Iterator[Span]:
    for run in _DIGIT_RUN.finditer(text):
        groups = [(run.start() + m.start(), run.start() + m.end()) for m in _GROUP.finditer(run.group())]
        # A card may share a run with other numbers ("ref 2024 4111 1111 1111 1111"): try windows of whole
        # groups, leftmost first, then the longest of 13-19 digits that passes Luhn.
        first = 0
        while first < len(groups):
            windows: list[tuple[int, str]] = []
            digits = ""
            for last in range(first, len(groups)):
                digits += text[groups[last][0] : groups[last][1]]
                if len(digits) > 19:
                    break
                if len(digits) >= 13:
                    windows.append((last, digits))
            found = next((last for last, digits in reversed(windows) if luhn_is_valid(digits)), None)
            if found is None:
                first += 1
                continue
            yield groups[first][0], groups[found][1]
            first = found + 1


# --- phones --------------------------------------------------------------------------------------------

_BEFORE = r"(?<![\w.,/+\-])"
_AFTER = r"(?![\w]|[.,/\-]\d)"
_PHONE = re.compile(
    rf"""
    {_BEFORE}
    (?:
        \+\d{{1,3}}(?:[ .\-]?\(\d{{1,4}}\))?(?:[ .\-]?\d{{1,5}}){{1,6}}         # +44 20 7946 0958, +1 (555) 123-4567
      | 00[1-9]\d{{0,2}}(?:[ \-]\d{{1,5}}){{2,6}}                              # 0044 20 7946 0958
      | (?:1[ .\-]?)?\(\d{{3}}\)[ .\-]?\d{{3}}[ .\-]?\d{{4}}                   # (555) 123-4567
      | (?:1[ .\-])?\d{{3}}(?P<sep>[ .\-])\d{{3}}(?P=sep)\d{{4}}                # 555-123-4567, 1-800-555-0199
      | 0[1-9]\d{{0,3}}(?:[ \-]\d{{2,8}}){{1,4}}                               # 020 7946 0958, 01 23 45 67 89
      | 0[1-9]\d{{8,9}}                                                        # 07700900123
    )
    {_AFTER}
    """,
    re.VERBOSE,
)
# After such a word, any run of 7-15 digits is taken as a phone number.
_PHONE_CONTEXT = re.compile(
    rf"""
    \b(?:phone|telephone|tel|mobile|cell|cellphone|call|fax|whatsapp|sms)\b
    [^\d\n+]{{0,20}}?
    (?P<number>{_BEFORE}\+?\(?\d[\d \-()]{{5,22}}\d{_AFTER})
    """,
    re.IGNORECASE | re.VERBOSE,
)
_DATE_LIKE = re.compile(r"\d{4}[-. /]\d{1,2}[-. /]\d{1,2}|\d{1,2}[-. /]\d{1,2}[-. /]\d{2,4}")
_SEPARATED_GROUPS = re.compile(r"\(?\d+\)?")


def _phone_span(text: str, start: int, end: int) -> Span | None:
    """The phone number within ``text[start:end]``, or None when the digits do not make one."""
    candidate = text[start:end]
    if _DATE_LIKE.fullmatch(candidate):
        return None
    max_digits = 15 if candidate.startswith(("+", "00")) else 12
    groups = list(_SEPARATED_GROUPS.finditer(candidate))
    # A greedy match may run into the number after it ("020 7946 0958 12 items"): drop trailing groups.
    while groups and sum(sum(ch.isdigit() for ch in g.group()) for g in groups) > max_digits:
        groups.pop()
    digits = sum(sum(ch.isdigit() for ch in g.group()) for g in groups)
    if digits < 7:
        return None
    return start, start + groups[-1].end()


def _find_phones(text: str) -> Iterator[Span]:
    spans: list[Span] = []
    for match in _PHONE.finditer(text):
        if (span := _phone_span(text, *match.span())) is not None:
            spans.append(span)
    for match in _PHONE_CONTEXT.finditer(text):
        if (span := _phone_span(text, *match.span("number"))) is not None:
            spans.append(span)
    yield from sorted(spans)


# --- street addresses ----------------------------------------------------------------------------------

_UPPER = "A-ZÀ-ÖØ-Þ"
_STREET_WORDS = "Street|Avenue|Road|Boulevard|Lane|Drive|Way|Court|Place|Terrace|Square|Parkway|Highway|Crescent|Circle"
_STREET_ABBREVIATIONS = "St|Ave|Rd|Blvd|Ln|Dr|Ct|Pl|Terr|Sq|Pkwy|Hwy"  # their dot is taken with them
_ENGLISH_ADDRESS = rf"""
    \d{{1,5}}[A-Za-z]?(?:[-/]\d{{1,5}}[A-Za-z]?)?,?[ \t]+          # 221B, 12-14
    (?:(?:[{_UPPER}][\w'’.\-]*|\d{{1,3}}(?:st|nd|rd|th))[ \t]+){{1,3}}  # Baker / Amphitheatre / 5th
    (?:(?:{_STREET_WORDS})\b|(?:{_STREET_ABBREVIATIONS})\b\.?)
    (?:,?[ \t]*(?:(?:Apt|Apartment|Unit|Suite|Ste|Flat|Floor|Fl|Room)\.?[ \t]*\#?|\#)[ \t]*[A-Za-z0-9]{{1,6}}\b)?
"""
_FRENCH_PARTICLE = r"(?:(?:de|du|des|la|le|les|aux?)[ \t]+|[ld]['’])"
_FRENCH_ADDRESS = rf"""
    \d{{1,4}}(?:[ \t]?(?:bis|ter))?,?[ \t]+
    (?i:rue|avenue|av\.|boulevard|bd|place|chemin|allée|impasse|quai|route|cours)[ \t]+
    {_FRENCH_PARTICLE}*[{_UPPER}][\w'’\-]*(?:[ \t]+{_FRENCH_PARTICLE}*[{_UPPER}][\w'’\-]*){{0,3}}
"""
_GERMAN_ADDRESS = rf"""
    [{_UPPER}][\w\-]*(?:straße|strasse|str\.|weg|gasse|platz|allee)[ \t]+\d{{1,4}}[a-z]?\b
"""
_ADDRESS = re.compile(
    rf"(?<![\w.,/-])(?:{_ENGLISH_ADDRESS}|{_FRENCH_ADDRESS})|\b{_GERMAN_ADDRESS}",
    re.VERBOSE,
)


def _find_addresses(text: str) -> Iterator[Span]:
    for match in _ADDRESS.finditer(text):
        yield match.span()
