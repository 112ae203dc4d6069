"""Replace personal data in free text with typed placeholders, before anything is stored, embedded or shown.

Detection is rule-based (regular expressions plus checksums), not NER: it is fast, deterministic and has no
model to ship, at the price of missing names and unusual formats. The rules err towards masking a little
too much rather than leaking.

Rules run on the NFKC-normalised text with invisible format characters (zero-width spaces, soft hyphens,
bidi marks) set aside, so ``bob＠example.com``, full-width digits or ``ma\u200bry@example.com`` are found as
their plain forms; what is not masked is returned exactly as it was written. Kinds, in the order they are
applied:

``[EMAIL]``
    ``local@domain.tld`` (plus tags, subdomains, any case, ``%40`` inside URLs, ``mailto:`` links), a bare
    ``local@name`` glued to a word (``johndoe@yahoocom``), spaces around the ``@`` (``mary @ example.com``)
    and letter-spaced addresses (``m a r y @ e x a m p l e . c o m``). With ``obfuscated_emails`` also
    ``jane [at] example [dot] com``, ``jane(at)example.com``, ``jane[@]example.com``, ``jane@gmail dot
    com``, ``jane dot doe at example dot com`` and ``rita at gmail.com``; the bare-word forms (`` at ``)
    need a common top-level domain after `` dot ``, or a webmail provider or a local part that is not a plain
    word (``rita.k at acme.com``) before a real dot, so "arrived at example.com" and "look at the dot matrix"
    stay.
custom patterns
    ``PiiSettings.patterns`` maps a name to a regex; matches become ``[NAME]`` (``order`` -> ``[ORDER]``).
    They match ignoring case (``ord-1234567`` is the same id as ``ORD-1234567``) and run before the built-in
    number rules, so an order number is not half-eaten as a phone.
``[IBAN]``
    Country code, two check digits and the BBAN, with or without single spaces or dashes between groups; the
    length must be that country's IBAN length and the ISO 13616 mod-97 check must pass.
``[CARD]``
    13-19 digits, optionally grouped with single spaces, dashes or dots (4-4-4-4, pairs, one digit at a time),
    passing the Luhn check. A digit run that fails Luhn is left as it is: masking every long number would also
    mask order, tracking and account numbers that support needs to read, and those are covered by custom
    patterns instead.
``[NATIONAL_ID]``
    US social security numbers in the ``123-45-6789`` shape (dashes, spaces or dots), UK National Insurance
    numbers (``QQ 12 34 56 C``), Canadian social insurance numbers (``046 454 286``, Luhn-checked), and a
    number of 6+ digits right after a word naming such an id ("SSN", "social security number", "national
    insurance", "passport number", "driver's license", "tax id", "id number").
``[ORDER]``
    With ``order_numbers``: an id of 5+ digits right after "order", "invoice", "booking", "reservation" or
    "purchase" (with "number", "no.", "#", "id", "ref" between): ``order #A-1234567``, ``Order no. 88231``.
    Only that context makes it an id; "ticket 1000000" and tracking numbers stay.
``[PHONE]``
    ``+CC`` international forms, ``00CC`` with separators, North-American ``(555) 123-4567`` /
    ``555-123-4567`` / ``555.123.4567`` / ``1-800-555-0199``, national numbers with a trunk ``0``
    (``020 7946 0958``, ``01 23 45 67 89``, ``07700900123``), and any 7-15 digit run right after a word
    such as "phone", "call", "mobile", "tel". Dates, times, amounts, versions and Luhn-valid cards (already
    masked) are not phones. A bare digit run without ``+``, trunk ``0`` or such a word is left alone: it is
    more often an id than a phone number.
``[ADDRESS]``
    A house number and one to three capitalised words ending in a street type (``221B Baker Street``,
    ``1600 Amphitheatre Pkwy``, ``10 Downing St, Apt 4``, ``7 Acacia Close``, ``3 Mill Mews``); in any case
    (``221b baker street``) for the unambiguous types (street, avenue, road, boulevard, highway, ...) when
    no word between is a function word or a unit, so "a 10 minute drive" and "2 cards on the way" stay.
    French ``12 rue de la Paix``, Spanish/Italian/Portuguese ``Calle Mayor 5`` / ``Via Roma 10``, German and
    Dutch ``Hauptstraße 5`` / ``Keizersgracht 123``, and post-office boxes (``PO Box 1234``, ``P.O. Box``,
    ``Postfach 1234``). Postcodes and towns are not detected.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Mapping

from kbcurator.config.tickets import PiiSettings

__all__ = ["PiiRedactor", "PiiSettings", "iban_is_valid", "luhn_is_valid"]

Span = tuple[int, int]
Finder = Callable[[str], Iterator[Span]]


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
            steps.append((name.lower(), _regex_finder(re.compile(pattern, re.IGNORECASE))))
        if settings.ibans:
            steps.append(("iban", _find_ibans))
        if settings.cards:
            steps.append(("card", _find_cards))
        if settings.national_ids:
            steps.append(("national_id", _find_national_ids))
        if settings.order_numbers:
            steps.append(("order", _find_order_numbers))
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
        view = _View(text)
        # One kind at a time over the already-masked text, so later rules never see earlier matches.
        for kind, find in self._steps:
            spans: list[Span] = []
            last = 0
            for start, end in find(view.text):
                if start < last or end <= start:
                    continue
                spans.append((start, end))
                last = end
            if spans:
                self._counts[kind] += len(spans)
                view.replace(spans, f"[{kind.upper()}]")
        return view.result()


# --- normalisation -------------------------------------------------------------------------------------

# Invisible characters that split a token without showing: zero-width (non-)joiners and spaces, word joiner,
# soft hyphen, bidi marks and embeddings, the byte-order mark.
_INVISIBLE = "\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff"
_HAS_INVISIBLE = re.compile(f"[{_INVISIBLE}]")
_JOINS_PREVIOUS = re.compile(f"[{_INVISIBLE}]|[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


class _View:
    """The text the rules see (NFKC, invisible characters left out) and the way back to the original.

    When normalising changes nothing (ASCII, most text) the view is the text itself. Otherwise every character
    of the view remembers the span of the original it came from, so a masked span is cut out of the original
    and everything else is returned untouched (a ligature, a full-width letter or an emoji stays as written).
    """

    def __init__(self, original: str) -> None:
        self.original = original
        self.text = original
        # Per view character: (start, end) in the original, and the replacement it belongs to (0: none).
        self._source: list[tuple[int, int, int]] | None = None
        self._replacements = 0
        if original.isascii():
            return
        if unicodedata.is_normalized("NFKC", original) and _HAS_INVISIBLE.search(original) is None:
            return
        pieces: list[str] = []
        source: list[tuple[int, int, int]] = []
        position, length = 0, len(original)
        while position < length:
            end = position + 1
            # A base character with its combining marks and invisible characters is one unit.
            while end < length and _JOINS_PREVIOUS.match(original, end):
                end += 1
            unit = original[position:end]
            normal = unicodedata.normalize("NFKC", _HAS_INVISIBLE.sub("", unit)) or unit
            pieces.append(normal)
            source.extend([(position, end, 0)] * len(normal))
            position = end
        self.text = "".join(pieces)
        self._source = source

    def replace(self, spans: list[Span], placeholder: str) -> None:
        """Replace each ``(start, end)`` of the view (in order, not overlapping) by ``placeholder``."""
        pieces: list[str] = []
        last = 0
        if self._source is None:
            for start, end in spans:
                pieces += [self.text[last:start], placeholder]
                last = end
            self.text = "".join(pieces) + self.text[last:]
            return
        source: list[tuple[int, int, int]] = []
        for start, end in spans:
            self._replacements += 1
            pieces += [self.text[last:start], placeholder]
            source += self._source[last:start]
            # A span may start or end inside a unit (a ligature): the whole unit goes.
            origin = (self._source[start][0], self._source[end - 1][1], self._replacements)
            source += [origin] * len(placeholder)
            last = end
        self.text = "".join(pieces) + self.text[last:]
        self._source = source + self._source[last:]

    def result(self) -> str:
        if self._source is None:
            return self.text
        cuts: list[tuple[int, int, str]] = []  # (start, end) of the original and its placeholder(s)
        index, length = 0, len(self.text)
        while index < length:
            start, end, replacement = self._source[index]
            if not replacement:
                index += 1
                continue
            stop = index
            while stop < length and self._source[stop][2] == replacement:
                stop += 1
            if cuts and start < cuts[-1][1]:  # two placeholders cut into the same unit
                cuts[-1] = (cuts[-1][0], max(end, cuts[-1][1]), cuts[-1][2] + self.text[index:stop])
            else:
                cuts.append((start, end, self.text[index:stop]))
            index = stop
        pieces: list[str] = []
        last = 0
        for start, end, placeholder in cuts:
            pieces += [self.original[last:start], placeholder]
            last = end
        return "".join(pieces) + self.original[last:]


def _regex_finder(pattern: re.Pattern[str]) -> Finder:
    def find(text: str) -> Iterator[Span]:
        for match in pattern.finditer(text):
            yield match.span()

    return find


# --- emails --------------------------------------------------------------------------------------------

# Common TLDs only for the bare-word form, where "x at y dot z" is otherwise ordinary English.
_COMMON_TLDS = (
    "com|net|org|edu|gov|io|co|uk|de|fr|es|it|nl|be|ch|at|se|no|dk|fi|ie|pl|pt|ca|au|nz|us|in|jp|br|mx|"
    "info|biz|me|app|dev|eu"
)
_EMAIL = re.compile(
    r"(?<![\w.+%-])"
    r"[^\W_][\w.+%-]*"  # local part: plus tags, dots
    r"(?:"
    r"(?:[ \t]*@[ \t]*|%40)(?:[\w-]+\.)+[^\W\d_]{2,24}"  # a letters-only TLD; %40: inside a URL query
    r"|@[^\W\d_][\w-]*(?:\.[\w-]+)*"  # glued to a word, even without a TLD: "johndoe@yahoocom"
    rf"(?:(?:[ \t]+(?i:dot)[ \t]+[\w-]+){{0,3}}[ \t]+(?i:dot)[ \t]+(?i:{_COMMON_TLDS}))?"  # "jo@gmail dot com"
    r")"
    r"(?![\w-])"
)
# Letter-spaced: "m a r y @ e x a m p l e . c o m": one-character tokens (and "at"/"dot") between spaces.
_SPACED_RUN = re.compile(r"(?<!\S)(?:\S|(?i:at|dot))(?!\S)(?:[ \t]+(?:\S|(?i:at|dot))(?!\S)){4,}")
_SPACED_WORD = re.compile(r"(?<=[ \t])(?i:at|dot)(?=[ \t])")
_WEBMAIL = (  # providers whose name is not also an everyday word ("live", "mail", "free" are)
    "gmail|googlemail|yahoo|ymail|hotmail|outlook|msn|aol|icloud|protonmail|proton|gmx|yandex|zoho|fastmail|"
    "tutanota|comcast|verizon|btinternet|laposte|t-online"
)

_OBF_AT = r"\s*[\[({<]\s*(?:at|@)\s*[\])}>]\s*"
_OBF_DOT = r"\s*[\[({<]\s*dot\s*[\])}>]\s*"
_WORD_DOT = r"\s+dot\s+"
_OBFUSCATED_EMAIL = re.compile(
    rf"""
    (?<![\w.+-])
    [^\W_][\w.+-]*(?:(?:{_WORD_DOT}|{_OBF_DOT})[\w+-]+){{0,3}}   # jane / jane dot doe / jane[dot]doe
    (?:  # bounded repeats: "x dot x dot x ..." must not make the search quadratic
        (?:{_OBF_AT}|\s*@\s*)[\w-]+(?:(?:{_OBF_DOT}|{_WORD_DOT}|\.)[\w-]+){{0,4}}(?:{_OBF_DOT}|{_WORD_DOT}|\.)[^\W\d_]{{2,24}}
      | \s+at\s+[\w-]+(?:(?:{_WORD_DOT}|{_OBF_DOT})[\w-]+){{0,4}}(?:{_WORD_DOT}|{_OBF_DOT})(?:{_COMMON_TLDS})
    )
    (?![\w-])
    """,
    re.IGNORECASE | re.VERBOSE,
)
# "rita at gmail.com": a real dot after a bare " at ". Prose has that shape too ("arrived at example.com"), so
# it is an address only for a webmail domain or a local part that is not a plain word ("rita.k", "jo_99").
_WORD_AT_EMAIL = re.compile(
    r"(?<![\w.+-])(?P<local>[^\W_][\w.+-]*)\s+at\s+(?P<domain>[^\W_][\w-]*)(?:\.[\w-]+)*\.[^\W\d_]{2,24}(?![\w-])",
    re.IGNORECASE,
)
_WEBMAIL_DOMAIN = re.compile(rf"(?:{_WEBMAIL})", re.IGNORECASE)
_NOT_A_LOCAL_PART = frozenset(
    re.findall(
        r"\w+",
        "a an the i me my you your we our us they them he she it its is am are was were be been being to in on at "
        "up out by of for from with into onto via log logged login sign signed signing look looked looking arrived "
        "arrive here there that this these those and or but not just now then still also account accounts email "
        "emails mail address site website page online",
    )
)


def _find_emails(text: str) -> Iterator[Span]:
    spans: list[Span] = []
    if "@" in text or "%40" in text:
        spans += [match.span() for match in _EMAIL.finditer(text)]
    if "@" in text or " at " in text.lower():
        spans += [span for match in _SPACED_RUN.finditer(text) if (span := _spaced_email(text, match)) is not None]
    yield from sorted(spans)


def _spaced_email(text: str, run: re.Match[str]) -> Span | None:
    """The span of a letter-spaced address in ``run``, widened by one word before a leading ``@``."""
    start, end = run.span()
    tokens = [token.lower() for token in run.group().split()]
    if "@" not in tokens and "at" not in tokens:
        return None
    if tokens[0] in ("@", "at") and (word := re.search(r"[\w.+-]+[ \t]*$", text[:start])) is not None:
        start = word.start()
    if tokens[-1] in ("@", "at") and (word := re.match(r"[ \t]*[\w.-]+", text[end:])) is not None:
        end += word.end()
    collapsed = _SPACED_WORD.sub(lambda m: "@" if m.group().lower() == "at" else ".", text[start:end])
    collapsed = re.sub(r"[ \t]+", "", collapsed)
    return (start, end) if _EMAIL.fullmatch(collapsed) is not None else None


def _find_obfuscated_emails(text: str) -> Iterator[Span]:
    spans = [match.span() for match in _OBFUSCATED_EMAIL.finditer(text)]
    if " at " in text.lower():
        for match in _WORD_AT_EMAIL.finditer(text):
            local = match.group("local")
            webmail = _WEBMAIL_DOMAIN.fullmatch(match.group("domain")) is not None
            plain_word = local.isalpha() or local.casefold() in _NOT_A_LOCAL_PART
            if local.casefold() not in _NOT_A_LOCAL_PART and (webmail or not plain_word):
                spans.append(match.span())
    yield from sorted(spans)


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
    iban = iban.replace(" ", "").replace("-", "").upper()
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
        # Take exactly the country's number of characters, allowing a single space or dash between groups.
        needed, end = length - 4, match.end()
        while needed and end < len(text):
            if text[end].isascii() and text[end].isalnum():
                needed -= 1
                end += 1
            elif text[end] in " -" and end + 1 < len(text) and text[end + 1].isascii() and text[end + 1].isalnum():
                end += 1
            else:
                break
        if needed or (end < len(text) and text[end].isalnum()):
            continue
        if iban_is_valid(text[match.start() : end]):
            yield match.start(), end
            position = end


# --- payment cards -------------------------------------------------------------------------------------

# Groups of 2+ digits joined by single spaces, dashes or dots (4-4-4-4, Amex 4-6-5, pairs or triples with a
# last single digit, or none), not inside a word, a decimal or a longer number; or 13-19 single digits one
# separator apart. Other one-digit groups ("12 4111 ...") end a run. Possessive: a run is taken whole and its
# end checked below, which keeps the search linear.
_DIGIT_RUN = re.compile(r"(?<![\w.,+-])(?:\d{2,}+(?:[ .-]\d{2,}+)*+(?:[ .-]\d(?!\d))?+|\d(?:[ .-]\d){12,18}+)")
_GROUP = re.compile(r"\d+")


def luhn_is_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _ends_a_number(text: str, end: int) -> bool:
    """Whether a digit run may stop at ``end``: not before a letter or digit, nor a decimal or more digits."""
    if end >= len(text):
        return True
    after = text[end]
    if after.isalnum() or after == "_":
        return False
    return not (after in ".,-" and end + 1 < len(text) and text[end + 1].isdigit())


def _find_cards(text: str) -> Iterator[Span]:
    for run in _DIGIT_RUN.finditer(text):
        groups = [(run.start() + m.start(), run.start() + m.end()) for m in _GROUP.finditer(run.group())]
        # A run followed by a word or a decimal loses its last groups until it ends cleanly.
        while groups and not _ends_a_number(text, groups[-1][1]):
            groups.pop()
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


# --- national ids --------------------------------------------------------------------------------------

# US SSN / ITIN 123-45-6789, Canadian SIN 046 454 286 (Luhn), UK NINO AB123456C.
_SSN = re.compile(r"(?<![\w.,+-])\d{3}[- .]\d{2}[- .]\d{4}(?![\w]|[.,-]\d)")
_SIN = re.compile(r"(?<![\w.,+-])\d{3}[- ]\d{3}[- ]\d{3}(?![\w]|[.,-]\d)")
_NINO = re.compile(
    r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][ \t]?\d{2}[ \t]?\d{2}[ \t]?\d{2}[ \t]?[A-D]\b"
)
_ID_WORDS = r"""
    ssn | ss\# | social[ \t]+security(?:[ \t]+(?:number|no\.?|\#))? | itin | tax[ \t]*id(?:[ \t]+(?:number|no\.?))?
  | social[ \t]+insurance(?:[ \t]+(?:number|no\.?))? | sin[ \t]+(?:number|no\.?|\#)
  | national[ \t]+(?:id|identity|insurance)(?:[ \t]+(?:card|number|no\.?|\#))* | ni[ \t]+(?:number|no\.?) | nino
  | passport(?:[ \t]+(?:number|no\.?|\#))? | driver'?s?[ \t]+licen[cs]e(?:[ \t]+(?:number|no\.?|\#))?
  | (?:personal[ \t]+)?id(?:entity)?[ \t]+(?:card[ \t]+)?(?:number|no\.?|\#)
"""
# After such a word, a number of 6+ digits (two letters before, one after, and single separators allowed).
_ID_CONTEXT = re.compile(
    rf"""
    \b(?:{_ID_WORDS})
    [ \t]*(?:(?:is|was|:|=|\#|-)[ \t]*)*
    (?P<id>(?<![\w-])[A-Za-z]{{0,2}}\d+(?:[ -]?\d+)*[A-Za-z]?)(?![\w]|[.,-]\d)
    """,
    re.IGNORECASE | re.VERBOSE,
)


def _find_national_ids(text: str) -> Iterator[Span]:
    spans = [match.span() for match in _SSN.finditer(text)]
    spans += [m.span() for m in _SIN.finditer(text) if luhn_is_valid(re.sub(r"\D", "", m.group()))]
    spans += [match.span() for match in _NINO.finditer(text)]
    spans += [m.span("id") for m in _ID_CONTEXT.finditer(text) if sum(c.isdigit() for c in m.group("id")) >= 6]
    yield from sorted(spans)


# --- order numbers -------------------------------------------------------------------------------------

_ORDER_CONTEXT = re.compile(
    r"""
    \b(?:order|invoice|booking|reservation|purchase)s?
    (?:[ \t]*(?:number|num|no\.?|nr\.?|\#|id|ref(?:erence)?|code))?
    [ \t]*(?:(?:is|was|:|=|\#|-)[ \t]*)*
    (?P<id>(?<![\w-])[A-Za-z]{0,5}[-_/]?\d[\w/-]*)(?![\w])
    """,
    re.IGNORECASE | re.VERBOSE,
)


def _find_order_numbers(text: str) -> Iterator[Span]:
    for match in _ORDER_CONTEXT.finditer(text):
        number = match.group("id").rstrip("-/")
        # Only what is plainly an id: 5+ digits, not a date ("order 2024-03-01" is a date).
        if sum(c.isdigit() for c in number) >= 5 and not _DATE_LIKE.fullmatch(number):
            yield match.start("id"), match.start("id") + len(number)


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
_STREET_WORDS = (
    "Street|Avenue|Road|Boulevard|Lane|Drive|Way|Court|Place|Terrace|Square|Parkway|Highway|Crescent|Circle|"
    "Close|Mews|Row|Grove|Gardens|Hill|Trail|Alley|Plaza|Walk|Loop|Path|Pike|Turnpike|Expressway|Freeway|Heights|"
    "Rise|Wharf|Quay|Esplanade|Parade|Causeway|Embankment|Promenade|Ridge|Park|Green"
)
_STREET_ABBREVIATIONS = (  # their dot is taken with them
    "St|Ave|Rd|Blvd|Ln|Dr|Ct|Pl|Terr|Sq|Pkwy|Hwy|Cres|Cir|Cl|Gdns|Gr|Trl|Aly|Plz|Expy|Fwy|Pde|Hts"
)
_UNIT = r"(?:,?[ \t]*(?:(?:Apt|Apartment|Unit|Suite|Ste|Flat|Floor|Fl|Room)\.?[ \t]*\#?|\#)[ \t]*[A-Za-z0-9]{1,6}\b)?"
_ENGLISH_ADDRESS = rf"""
    \d{{1,5}}[A-Za-z]?(?:[-/]\d{{1,5}}[A-Za-z]?)?,?[ \t]+          # 221B, 12-14
    (?:(?:[{_UPPER}][\w'’.\-]*|\d{{1,3}}(?:st|nd|rd|th))[ \t]+){{1,3}}  # Baker / Amphitheatre / 5th
    (?:(?:{_STREET_WORDS})\b|(?:{_STREET_ABBREVIATIONS})\b\.?)
    {_UNIT}
"""
# In any case ("221b baker street") only for street types that are not everyday words ("drive", "way",
# "place", "close" are), and only when no word between is a function word, a unit or a number word ("a 4
# lane highway").
_ANY_CASE_TYPES = "street|st|avenue|ave|road|rd|boulevard|blvd|lane|parkway|pkwy|crescent|terrace|mews|gardens"
_NOT_A_STREET_NAME = (
    "a|an|the|and|or|of|on|in|at|to|for|from|by|with|my|your|our|their|his|her|its|this|that|these|those|"
    "which|what|same|other|another|different|more|less|many|few|new|old|wrong|right|next|last|first|only|"
    "one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|"
    "second|seconds|minute|minutes|min|mins|hour|hours|hr|hrs|day|days|week|weeks|month|months|year|years|"
    "time|times|mile|miles|km|kilometers|kilometres|meter|meters|metre|metres|block|blocks|lane|lanes|way|"
    "percent|pounds|dollars|euros|items|cards|card|accounts|payments|transfers|is|are|was|were|be|it|i|you|we"
)
_ANY_CASE_ADDRESS = rf"""
    (?i:
        \d{{1,5}}[a-z]?,?[ \t]+
        (?:(?!(?:{_NOT_A_STREET_NAME})\b)(?:[a-zà-öø-þ][\w'’.\-]*|\d{{1,3}}(?:st|nd|rd|th))[ \t]+){{1,3}}
        (?:{_ANY_CASE_TYPES})\b\.?
    )
    {_UNIT}
"""
_FRENCH_PARTICLE = r"(?:(?:de|du|des|la|le|les|aux?)[ \t]+|[ld]['’])"
_FRENCH_ADDRESS = rf"""
    \d{{1,4}}(?:[ \t]?(?:bis|ter))?,?[ \t]+
    (?i:rue|avenue|av\.|boulevard|bd|place|chemin|allée|impasse|quai|route|cours)[ \t]+
    {_FRENCH_PARTICLE}*[{_UPPER}][\w'’\-]*(?:[ \t]+{_FRENCH_PARTICLE}*[{_UPPER}][\w'’\-]*){{0,3}}
"""
# The street type first and the number last: Calle Mayor 5, Via Roma 10, Rua Augusta 25, Carrer de Pau 3.
_LATIN_PARTICLE = r"(?:(?:de|del|de[ \t]+la|de[ \t]+los|de[ \t]+las|da|do|dos|das|della|di)[ \t]+)"
_LATIN_ADDRESS = rf"""
    (?:Calle|Avenida|Carrera|Paseo|Camino|Rua|Travessa|Via|Viale|Piazza|Corso|Largo|Carrer|Avinguda)[ \t]+
    {_LATIN_PARTICLE}?[{_UPPER}][\w'’\-]*(?:[ \t]+{_LATIN_PARTICLE}?[{_UPPER}][\w'’\-]*){{0,3}}
    ,?[ \t]+(?:n[º°o]\.?[ \t]*)?\d{{1,4}}[A-Za-z]?\b
"""
_GERMAN_ADDRESS = rf"""
    [{_UPPER}][\w\-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|straat|gracht|laan|plein|gatan|vägen)
    [ \t]+\d{{1,4}}[a-z]?\b
"""
_PO_BOX = r"(?i:(?:p\.?[ \t]?o\.?|post[ \t]+office)[ \t]*box|postfach|apartado)[ \t]*\#?[ \t]*\d[\d ]{0,8}\d?\b"
_ADDRESS = re.compile(
    rf"(?<![\w.,/-])(?:{_ENGLISH_ADDRESS}|{_ANY_CASE_ADDRESS}|{_FRENCH_ADDRESS})|\b(?:{_GERMAN_ADDRESS}|{_LATIN_ADDRESS})"
    rf"|\b{_PO_BOX}",
    re.VERBOSE,
)


def _find_addresses(text: str) -> Iterator[Span]:
    for match in _ADDRESS.finditer(text):
        yield match.span()
