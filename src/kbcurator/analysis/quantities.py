"""Quantities stated in a sentence, with their units normalised, so two articles' figures can be compared.

``extract_quantities("Refunds take two weeks")`` and ``extract_quantities("Refunds take 14 days")`` give the
same value in the same base unit. What is recognised:

- durations (base: seconds; a month is 365/12 days, a year 365 days), "business/working days" kept apart;
- prices with a currency sign or code (base: the currency, with "/month", "/year", "/user" when stated);
- data sizes (base: bytes, binary: 1 KB = 1024 B, 1 GB = 1024 MB; see :data:`CONVERTED_TOLERANCE` for
  why "1 GB" also agrees with "1000 MB"), and bits apart from bytes;
- percentages, lengths (metres), masses (grams), temperatures (Celsius);
- version numbers ("version 2.3", "v2.3.1", "iOS 14", "Android 8.0 or later", "Safari versions prior to 14",
  "macOS Monterey (12.0)"), keyed by product;
- counts with a unit noun ("5 users", "two devices", "the two most recent versions"), keyed by the noun;
- the number a named setting is given ("MAX_UPLOADS=5"), keyed by the setting's name.

Numbers may be digits ("1,024", "2.5") or words ("two", "fourteen", "twenty-one", "a dozen", "half an hour",
"a week" after "within/for/in/after"). Ranges ("2-14 days", "2 to 14 days", "between 2 and 14 days") keep
both ends; "up to", "at least", "about" are kept as a qualifier. A bare number without a unit is left out:
it says nothing comparable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Qualifier = Literal["", "at_most", "at_least", "about"]

# Two values read from different written units (weeks vs days, feet vs metres) agree within this share:
# "1 month" vs "30 days" (1.4%), "1 GB" vs "1000 MB" (2.3%, decimal vs binary prefixes), "12 months" vs
# "1 year". Values written in the same unit must be equal.
CONVERTED_TOLERANCE = 0.025
# Feet vs metres and Fahrenheit vs Celsius are usually rounded when converted ("6 feet (2 meters)",
# "1 metre (3 feet)"), so a looser tolerance applies across those unit systems.
ROUNDED_CONVERSION_TOLERANCE = 0.12
ABOUT_TOLERANCE = 0.2  # "about 5 days" agrees with 4-6 days


@dataclass(frozen=True, slots=True)
class Quantity:
    """One quantity as stated.

    Attributes:
        value: the (lower) value in the base unit of ``unit``.
        unit: the base unit, which is also what makes two quantities comparable: "second", "business day",
            "byte", "bit", "%", "metre", "gram", "celsius", a currency ("USD", "EUR/month"), a product for a
            version ("ios", "version"), the singular noun for a count ("user"), the name of a setting.
        dimension: "duration", "money", "data", "percent", "length", "mass", "temperature", "version", "count",
            "setting".
        span: character offsets of ``text`` in the sentence.
        text: the quantity as written ("two weeks", "$9.99/month", "2-14 days").
        high: the upper value of a range; equal to ``value`` for a single value.
        qualifier: "at_most" ("up to 30 days", "within 14 days"), "at_least" ("at least 1 metre", "iOS 13 or
            later"), "about" ("about 5 days") or "".
        written_unit: the unit word as written, normalised ("day", "week", "mb", "ft"), so conversions between
            written units can be told from equal units.
    """

    value: float
    unit: str
    dimension: str
    span: tuple[int, int]
    text: str
    high: float = float("nan")
    qualifier: Qualifier = ""
    written_unit: str = ""

    def __post_init__(self) -> None:
        if self.high != self.high:  # NaN: a single value
            object.__setattr__(self, "high", self.value)

    @property
    def is_range(self) -> bool:
        return self.high != self.value

    def describe(self) -> str:
        """The normalised value in words a reader checks quickly: "14 days", "2-14 days", "1 GiB", "USD 9.99/month"."""
        prefix = {"at_most": "at most ", "at_least": "at least ", "about": "about ", "": ""}[self.qualifier]
        if self.dimension == "version":
            return f"{prefix}{self.unit} {_version_text(self.value)}"
        low = _describe_value(self.value, self.unit, self.dimension)
        if self.is_range:
            high = _describe_value(self.high, self.unit, self.dimension)
            low_number, _, low_unit = low.partition(" ")
            high_unit = high.partition(" ")[2]
            text = f"{low_number}-{high}" if low_unit.rstrip("s") == high_unit.rstrip("s") else f"{low}-{high}"
        else:
            text = low
        return prefix + text


def extract_quantities(sentence: str) -> list[Quantity]:
    """Every comparable quantity in ``sentence``, in order of appearance."""
    tokens = _tokenise(sentence)
    found: list[Quantity] = []
    i = 0
    while i < len(tokens):
        parsed = _parse_at(sentence, tokens, i)
        if parsed is None:
            i += 1
            continue
        quantity, next_i = parsed
        found.append(quantity)
        i = max(next_i, i + 1)
    return found


def agree(a: Quantity, b: Quantity) -> bool:
    """Whether two comparable quantities can both be true of the same thing.

    Ranges agree when they overlap ("1-14 days" and "2-14 days"); a single value agrees with a range that
    contains it ("5 days" and "2-14 days"); two single values agree when equal, within the tolerance of a unit
    conversion or of "about". "up to 30 days" states the limit 30 days, so it agrees with "30 days" and
    conflicts with "up to 14 days".
    """
    if a.dimension == "version":
        return a.value == b.value
    tolerance = 0.0
    if a.written_unit != b.written_unit:
        tolerance = CONVERTED_TOLERANCE
        if a.dimension in {"length", "temperature", "mass"} and _system(a.written_unit) != _system(b.written_unit):
            tolerance = ROUNDED_CONVERSION_TOLERANCE
    if "about" in (a.qualifier, b.qualifier):
        tolerance = max(tolerance, ABOUT_TOLERANCE)
    if a.dimension == "temperature":
        return a.value - 0.6 <= b.high and b.value - 0.6 <= a.high  # ~1 °F, what rounding a conversion costs
    slack_a = tolerance * max(abs(a.value), abs(a.high))
    slack_b = tolerance * max(abs(b.value), abs(b.high))
    slack = max(slack_a, slack_b)
    return a.value - slack <= b.high and b.value - slack <= a.high


def restates(a: Quantity, b: Quantity) -> bool:
    """Whether two comparable quantities state the same figure: as :func:`agree`, except that two ranges must
    have the same ends. "2-3 months" and "2-6 months" overlap, so both can be true of one parcel, but two pages
    giving those as the delivery time say different things; "5 days" within "2-14 days" still restates it."""
    if not agree(a, b):
        return False
    if a.dimension == "version" or not (a.is_range and b.is_range):
        return True
    low_a, low_b = _pinned(a, a.value), _pinned(b, b.value)
    high_a, high_b = _pinned(a, a.high), _pinned(b, b.high)
    return agree(low_a, low_b) and agree(high_a, high_b)


def _pinned(quantity: Quantity, value: float) -> Quantity:
    return Quantity(
        value,
        quantity.unit,
        quantity.dimension,
        quantity.span,
        quantity.text,
        value,
        quantity.qualifier,
        quantity.written_unit,
    )


def comparable(a: Quantity, b: Quantity) -> bool:
    return a.dimension == b.dimension and a.unit == b.unit


def relative_difference(a: Quantity, b: Quantity) -> float:
    """How far apart two values are, 0..1 (0 when a value lies in the other's range): the gap over the larger
    magnitude; for two overlapping ranges, how far the ends moved."""
    if a.dimension == "version":
        return 0.0 if a.value == b.value else 1.0
    gap = max(b.value - a.high, a.value - b.high, 0.0)
    if not gap and a.is_range and b.is_range:
        gap = max(abs(a.value - b.value), abs(a.high - b.high))  # overlapping ranges: how far their ends moved
    scale = max(abs(a.value), abs(a.high), abs(b.value), abs(b.high))
    return min(1.0, gap / scale) if scale else 0.0


def mask_quantities(sentence: str, quantities: list[Quantity] | None = None) -> str:
    """The sentence with each quantity replaced by its dimension in angle brackets ("for <duration>"), so
    sentences that differ only in their figures read the same."""
    found = extract_quantities(sentence) if quantities is None else quantities
    out = []
    last = 0
    for quantity in found:
        start, end = quantity.span
        out.append(sentence[last:start])
        out.append(f"<{quantity.dimension}>")
        last = end
    out.append(sentence[last:])
    return "".join(out)


# --- numbers -------------------------------------------------------------------------------------------------

_UNITS_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS_WORDS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALE_WORDS = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
# "a" / "an" stand for 1 only before a unit and after these words ("within a week", "for an hour");
# elsewhere "a day" is a frequency ("twice a day") or no figure at all.
_ARTICLE_AS_ONE_AFTER = {
    "within",
    "for",
    "in",
    "after",
    "than",
    "to",
    "about",
    "around",
    "least",
    "most",
    "over",
    "under",
    "up",
    "of",
    "takes",
    "take",
    "lasts",
    "last",
}
_DETERMINERS_BEFORE_ONE = {"the", "this", "that", "any", "each", "every", "which", "no", "some", "another", "only"}

_TOKEN = re.compile(
    r"(?<!\d)\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?![\d.,])"  # 7 000 (a space between thousands)
    r"|\d(?:[\d,]*\d)?(?:\.\d+)*(?![\d])"  # 1,024 / 2.5 / 2.3.1; a comma after a number ends the clause
    r"|[A-Za-z]+(?:['’][A-Za-z]+)?"
    r"|°\s?[CF]\b|[$€£¥₹%°+~/–—-]"
    r"|\S",
)


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    start: int
    end: int

    @property
    def lower(self) -> str:
        return self.text.lower()

    @property
    def is_digits(self) -> bool:
        return self.text[0].isdigit()


def _tokenise(sentence: str) -> list[_Token]:
    return [_Token(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(sentence)]


def _digits_value(text: str) -> float | None:
    if text.count(".") > 1:
        return None
    cleaned = re.sub(r"[,\s]", "", text)
    # "1,5" is a decimal comma in some locales, "1,500" a thousands separator; only the latter is read.
    if "," in text and not re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", text):
        return None
    try:
        return float(cleaned)
    except ValueError:
        return None


def _number_at(tokens: list[_Token], i: int) -> tuple[float, int] | None:
    """The number starting at token i (digits or words) and the index after it."""
    token = tokens[i]
    if token.is_digits:
        value = _digits_value(token.text)
        if value is None:
            return None
        j = i + 1
        if j < len(tokens) and tokens[j].lower in _SCALE_WORDS and tokens[j].lower != "hundred":
            return value * _SCALE_WORDS[tokens[j].lower], j + 1
        return value, j
    word = token.lower
    if word in {"a", "an"}:
        if i + 1 < len(tokens) and tokens[i + 1].lower == "dozen":
            return 12.0, i + 2
        if i + 1 < len(tokens) and tokens[i + 1].lower == "half":  # "an hour and a half" is not handled
            return 0.5, i + 2
        return 1.0, i + 1
    if word == "dozen":
        return 12.0, i + 1
    if word == "half" and i + 1 < len(tokens) and tokens[i + 1].lower in {"a", "an"}:
        return 0.5, i + 2
    if word not in _UNITS_WORDS and word not in _TENS_WORDS:
        return None
    total = 0.0
    current = 0.0
    j = i
    while j < len(tokens):
        w = tokens[j].lower
        if w in _UNITS_WORDS:
            current += _UNITS_WORDS[w]
        elif w in _TENS_WORDS:
            current += _TENS_WORDS[w]
            # "twenty-one", "twenty one"
            if j + 2 < len(tokens) and tokens[j + 1].text == "-" and tokens[j + 2].lower in _UNITS_WORDS:
                current += _UNITS_WORDS[tokens[j + 2].lower]
                j += 2
            elif j + 1 < len(tokens) and tokens[j + 1].lower in _UNITS_WORDS and _UNITS_WORDS[tokens[j + 1].lower] < 10:
                current += _UNITS_WORDS[tokens[j + 1].lower]
                j += 1
        elif w in _SCALE_WORDS and j > i:
            current = max(current, 1.0) * _SCALE_WORDS[w]
            if _SCALE_WORDS[w] >= 1000:
                total += current
                current = 0.0
        elif w == "and" and j > i and j + 1 < len(tokens) and tokens[j - 1].lower == "hundred":
            pass  # "two hundred and fifty"
        else:
            break
        j += 1
        if j < len(tokens) and tokens[j - 1].lower in _UNITS_WORDS and tokens[j].lower in _UNITS_WORDS:
            break  # "one two" is two numbers, not one
    return total + current, j


# --- units ---------------------------------------------------------------------------------------------------

_DAY = 86400.0
# written unit -> (dimension, base unit, factor to the base unit)
_UNITS: dict[str, tuple[str, str, float]] = {}


def _add(dimension: str, base: str, factor: float, *words: str) -> None:
    for word in words:
        _UNITS[word] = (dimension, base, factor)


_add("duration", "second", 1.0, "second", "seconds", "sec", "secs")
_add("duration", "second", 60.0, "minute", "minutes", "min", "mins")
_add("duration", "second", 3600.0, "hour", "hours", "hr", "hrs")
_add("duration", "second", _DAY, "day", "days")
_add("duration", "second", 7 * _DAY, "week", "weeks")
_add("duration", "second", 14 * _DAY, "fortnight", "fortnights")
_add("duration", "second", 365 / 12 * _DAY, "month", "months")
_add("duration", "second", 365 * _DAY, "year", "years", "yr", "yrs")
_add("duration", "second", 3650 * _DAY, "decade", "decades")
_add("data", "byte", 1.0, "b", "byte", "bytes")
_add("data", "byte", 1024.0, "kb", "kib", "kilobyte", "kilobytes")
_add("data", "byte", 1024.0**2, "mb", "mib", "megabyte", "megabytes")
_add("data", "byte", 1024.0**3, "gb", "gib", "gigabyte", "gigabytes")
_add("data", "byte", 1024.0**4, "tb", "tib", "terabyte", "terabytes")
_add("data", "bit", 1.0, "bit", "bits")
_add("percent", "%", 1.0, "%", "percent", "pct")
_add("length", "metre", 0.001, "mm", "millimetre", "millimetres", "millimeter", "millimeters")
_add("length", "metre", 0.01, "cm", "centimetre", "centimetres", "centimeter", "centimeters")
_add("length", "metre", 1.0, "metre", "metres", "meter", "meters")
_add("length", "metre", 1000.0, "km", "kilometre", "kilometres", "kilometer", "kilometers")
_add("length", "metre", 0.0254, "inch", "inches")
_add("length", "metre", 0.3048, "ft", "foot", "feet")
_add("length", "metre", 0.9144, "yard", "yards")
_add("length", "metre", 1609.344, "mile", "miles")
_add("mass", "gram", 0.001, "mg", "milligram", "milligrams")
_add("mass", "gram", 1.0, "g", "gram", "grams")
_add("mass", "gram", 1000.0, "kg", "kilogram", "kilograms")
_add("mass", "gram", 453.59237, "lb", "lbs")

_IMPERIAL = {"inch", "inches", "ft", "foot", "feet", "yard", "yards", "mile", "miles", "lb", "lbs", "f"}


def _system(written_unit: str) -> str:
    return "imperial" if written_unit in _IMPERIAL else "metric"


# "business days" are not "days": 5 business days is a week, so they are compared only with each other.
_DAY_KINDS = {"business", "working", "work"}
_CURRENCY_SIGNS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_CURRENCY_CODES = {"usd", "eur", "gbp", "jpy", "inr", "cad", "aud", "chf", "sek", "nok", "dkk", "pln"}
_CURRENCY_WORDS = {"dollar": "USD", "dollars": "USD", "euro": "EUR", "euros": "EUR", "cents": "USD/100"}
_PRICE_PERIODS = {
    "month": "month",
    "mo": "month",
    "year": "year",
    "yr": "year",
    "annum": "year",
    "week": "week",
    "day": "day",
    "user": "user",
    "seat": "user",
    "member": "user",
}
_PRODUCTS = {
    "ios": "ios",
    "ipados": "ipados",
    "android": "android",
    "macos": "macos",
    "osx": "macos",
    "windows": "windows",
    "chrome": "chrome",
    "chromium": "chromium",
    "firefox": "firefox",
    "safari": "safari",
    "edge": "edge",
    "opera": "opera",
    "python": "python",
    "node": "node",
    "java": "java",
    "ubuntu": "ubuntu",
    "debian": "debian",
    "tls": "tls",
    "http": "http",
}
_MONTHS = {
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
}
# Words that follow a number without being what it counts.
_NOT_COUNT_NOUNS = _MONTHS | {
    "of",
    "or",
    "and",
    "to",
    "in",
    "on",
    "at",
    "by",
    "for",
    "from",
    "with",
    "is",
    "are",
    "was",
    "were",
    "be",
    "the",
    "a",
    "an",
    "more",
    "less",
    "most",
    "least",
    "than",
    "times",
    "time",
    "am",
    "pm",
    "th",
    "st",
    "nd",
    "rd",
    "per",
    "out",
    "if",
    "as",
    "that",
    "this",
    "it",
    "you",
    "we",
    "they",
    "he",
    "she",
    "i",
    "will",
    "can",
    "may",
    "should",
    "would",
    "could",
    "has",
    "have",
    "had",
    "do",
    "does",
    "not",
    "no",
    "only",
    "each",
    "every",
    "also",
    "which",
    "who",
    "new",
    "other",
    "others",
    "people's",
    "x",
    "so",
    "but",
    "then",
    "when",
    "where",
    "after",
    "before",
    "above",
    "below",
    "over",
    "under",
    "about",
    "into",
    "up",
    "down",
    "later",
    "earlier",
    "older",
    "newer",
    "higher",
    "lower",
    "previous",
    "next",
    "million",
    "billion",
    "thousand",
    "hundred",
    "dozen",
    "step",
    "steps",
    "ago",
    "all",
    "any",
    "some",
    "these",
    "those",
    "such",
    "its",
    "their",
    "your",
    "our",
    "my",
}


def _phrases(text: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(phrase.split()) for phrase in text.split("|"))


_AT_MOST_BEFORE = _phrases(
    "up to|at most|no more than|not more than|less than|fewer than|maximum of|max|maximum|within|under|below"
)
_AT_LEAST_BEFORE = _phrases("at least|no less than|no fewer than|more than|minimum of|minimum|min|over|above|beyond")
_ABOUT_BEFORE = _phrases("about|around|approximately|roughly|nearly|almost|~")
_AT_LEAST_AFTER = _phrases(
    "or more|or longer|or later|or newer|or higher|+|and above|and up|and older|or older|and later"
)
_AT_MOST_AFTER = _phrases("or less|or fewer|or earlier|or lower|or shorter|and below|and under|or younger")


def _words_before(tokens: list[_Token], i: int, phrase: tuple[str, ...]) -> bool:
    start = i - len(phrase)
    return start >= 0 and tuple(t.lower for t in tokens[start:i]) == phrase


def _words_after(tokens: list[_Token], j: int, phrase: tuple[str, ...]) -> bool:
    return tuple(t.lower for t in tokens[j : j + len(phrase)]) == phrase


def _qualifier(tokens: list[_Token], start: int, end: int) -> tuple[Qualifier, int, int]:
    """The qualifier around tokens[start:end] and the widened token span it covers."""
    for phrases, kind in ((_AT_MOST_BEFORE, "at_most"), (_AT_LEAST_BEFORE, "at_least"), (_ABOUT_BEFORE, "about")):
        for phrase in phrases:
            if _words_before(tokens, start, phrase):
                return kind, start - len(phrase), end  # type: ignore[return-value]
    for phrases, kind in ((_AT_LEAST_AFTER, "at_least"), (_AT_MOST_AFTER, "at_most")):
        for phrase in phrases:
            if _words_after(tokens, end, phrase):
                return kind, start, end + len(phrase)  # type: ignore[return-value]
    return "", start, end


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _parse_at(sentence: str, tokens: list[_Token], i: int) -> tuple[Quantity, int] | None:
    token = tokens[i]
    currency = ""
    start_i = i
    if token.text in _CURRENCY_SIGNS:
        if i + 1 >= len(tokens) or not tokens[i + 1].is_digits:
            return None
        currency = _CURRENCY_SIGNS[token.text]
        i += 1
        token = tokens[i]
    elif token.lower in _CURRENCY_CODES and i + 1 < len(tokens) and tokens[i + 1].is_digits:
        currency = token.text.upper()
        i += 1
        token = tokens[i]

    version = _version_at(sentence, tokens, i)
    if version is not None:
        return version
    if token.is_digits and not currency and (setting := _setting_at(sentence, tokens, i)) is not None:
        return setting

    word = token.lower
    if not token.is_digits and word not in _UNITS_WORDS and word not in _TENS_WORDS:
        if word not in {"a", "an", "dozen", "half"}:
            return None
        if word in {"a", "an"} and not (
            i + 1 < len(tokens)
            and (tokens[i + 1].lower in {"dozen", "half"} or _unit_at(tokens, i + 1) is not None)
            and (
                tokens[i + 1].lower in {"dozen", "half"}
                or (i > 0 and tokens[i - 1].lower in _ARTICLE_AS_ONE_AFTER)
                or (i > 1 and tokens[i - 1].lower == "than" and tokens[i - 2].lower in {"more", "less"})
            )
        ):
            return None
    if word == "one" and i > 0 and tokens[i - 1].lower in _DETERMINERS_BEFORE_ONE:
        return None
    if token.is_digits and i > 0 and tokens[i - 1].text in {"#", "."} and tokens[i - 1].end == token.start:
        return None  # "#3", ".5" handled as part of the number by the tokeniser otherwise
    number = _number_at(tokens, i)
    if number is None:
        return None
    low, j = number
    high = low

    # a range: "2-14", "2 to 14", "between 2 and 14", "2 or 3"
    range_end = None
    joined = j + 1 < len(tokens) and (
        tokens[j].text in {"-", "–", "—", "to", "or"}
        or (tokens[j].lower == "and" and i > 0 and tokens[i - 1].lower in {"between", "from"})
    )
    if joined:
        k = j + 1
        if tokens[k].text in _CURRENCY_SIGNS and k + 1 < len(tokens):
            k += 1
        numeric = tokens[k].is_digits or tokens[k].lower in _UNITS_WORDS or tokens[k].lower in _TENS_WORDS
        other = _number_at(tokens, k) if numeric else None
        if other is not None and other[0] > low and (tokens[j].text != "-" or tokens[k].is_digits == token.is_digits):
            high, range_end = other[0], other[1]
    after_number = range_end if range_end is not None else j

    # the unit, possibly hyphenated ("30-day trial") or after a kind ("5 business days")
    unit_i = after_number
    if unit_i < len(tokens) and tokens[unit_i].text == "-" and unit_i + 1 < len(tokens):
        unit_i += 1
    day_kind = ""
    if unit_i + 1 < len(tokens) and tokens[unit_i].lower in _DAY_KINDS and tokens[unit_i + 1].lower in {"day", "days"}:
        day_kind = "business"
        unit_i += 1
    if (
        token.is_digits
        and token.start > 0
        and (
            sentence[token.start - 1].isalpha()
            or (sentence[token.start - 1] in "-–" and token.start > 1 and sentence[token.start - 2].isalnum())
        )
    ):
        return None  # part of a name ("mp3", "COVID-19", "AES-256")
    if unit_i + 1 < len(tokens) and tokens[unit_i].text == "°" and tokens[unit_i + 1].text in {"C", "F"}:
        return _temperature(sentence, tokens, start_i, unit_i + 2, low, high, tokens[unit_i + 1].text)
    if unit_i < len(tokens) and tokens[unit_i].text.startswith("°") and tokens[unit_i].text[-1] in "CF":
        return _temperature(sentence, tokens, start_i, unit_i + 1, low, high, tokens[unit_i].text[-1])
    if (
        unit_i + 1 < len(tokens)
        and tokens[unit_i].lower == "degrees"
        and tokens[unit_i + 1].lower
        in {
            "fahrenheit",
            "celsius",
            "f",
            "c",
        }
    ):
        return _temperature(sentence, tokens, start_i, unit_i + 2, low, high, tokens[unit_i + 1].text[0].upper())

    if not currency and unit_i < len(tokens):
        unit_word = tokens[unit_i].lower
        if unit_word in _CURRENCY_CODES:
            currency = unit_word.upper()
        elif unit_word in _CURRENCY_WORDS:
            currency = _CURRENCY_WORDS[unit_word]
        if currency:
            unit_i += 1
            if currency == "USD/100":
                currency, low, high = "USD", low / 100, high / 100
    if currency:
        end_i = unit_i if not tokens[after_number - 1].is_digits or unit_i > after_number else after_number
        end_i, period = _price_period(tokens, end_i)
        unit = f"{currency}/{period}" if period else currency
        return _finish(sentence, tokens, start_i, end_i, low, high, "money", unit, currency.lower())

    if unit_i < len(tokens):
        unit_word = tokens[unit_i].lower
        if unit_word == "per" and unit_i + 1 < len(tokens) and tokens[unit_i + 1].lower == "cent":
            return _finish(sentence, tokens, start_i, unit_i + 2, low, high, "percent", "%", "%")
        if unit_word in _UNITS and not (unit_word == "b" and tokens[unit_i].text == "b"):
            if unit_word in {"g", "b"} and tokens[unit_i].start > tokens[unit_i - 1].end + 1:
                return None  # a lone "g" or "B" after a space is too ambiguous
            dimension, base, factor = _UNITS[unit_word]
            if day_kind and dimension == "duration":
                base, factor = "business day", 1.0
            written = _singular(unit_word) if len(unit_word) > 3 else unit_word
            end_i = unit_i + 1
            if range_end is None and (elided := _elided_figure(tokens, end_i, low)) is not None:
                high, end_i = elided
            return _finish(sentence, tokens, start_i, end_i, low * factor, high * factor, dimension, base, written)
        if (
            low == int(low)
            and high == int(high)
            and (unit_i == after_number or tokens[after_number].text == "-")  # "6-digit code"
            and not (
                1900 <= low <= 2100 and token.is_digits and start_i > 0 and tokens[start_i - 1].lower in _BEFORE_YEARS
            )
            and not (word in {"a", "an", "half"} and j <= i + 1)
            and not (start_i > 0 and tokens[start_i - 1].lower in _LABELS)
        ):
            noun_i = _count_noun(tokens, unit_i, partitive=low != 1)  # "one of the ways" counts nothing
            if noun_i is not None:
                noun = _singular(tokens[noun_i].lower)
                end_i = noun_i + 1
                if range_end is None and (elided := _elided_figure(tokens, end_i, low)) is not None:
                    high, end_i = elided
                return _finish(sentence, tokens, start_i, end_i, low, high, "count", noun, noun)
    return None


def _elided_figure(tokens: list[_Token], i: int, low: float) -> tuple[float, int] | None:
    """A second figure after ``or`` that leaves its unit to the first ("four Favorites or 12", "30 days or
    60"): read as the two ends, as "4 or 12 Favorites" is, and the index after it. A figure with a unit or noun
    of its own ("2 users or 3 admins", "5 days or 2 weeks") is a quantity apart."""
    if i + 1 >= len(tokens) or tokens[i].lower != "or":
        return None
    k = i + 1
    if not (tokens[k].is_digits or tokens[k].lower in _UNITS_WORDS or tokens[k].lower in _TENS_WORDS):
        return None
    number = _number_at(tokens, k)
    if number is None or number[0] <= low:
        return None
    value, end = number
    if end < len(tokens) and (
        tokens[end].text in {"-", "–", "/", "%", "°"}
        or tokens[end].lower in _UNITS
        or tokens[end].lower in _CURRENCY_CODES
        or tokens[end].lower in _CURRENCY_WORDS
        or _count_noun(tokens, end) is not None
    ):
        return None
    if end < len(tokens) and tokens[end].start == tokens[end - 1].end and tokens[end].text[0].isalnum():
        return None  # "or 12th", glued to a word
    return value, end


# "in 2020", "since 2008": a year; "2000 users" is a count.
_BEFORE_YEARS = frozenset(
    {"in", "since", "from", "until", "by", "of", "year", "early", "late", "mid", "before", "after"}
)
# "Level 3", "Step 2", "Phase 1": a label, not a count of what follows.
_LABELS = frozenset(
    {"level", "step", "tier", "phase", "stage", "option", "number", "no", "page", "chapter", "section", "part"}
)
_IRREGULAR_PLURALS = frozenset({"people", "children", "men", "women", "persons", "staff"})


def _count_noun(tokens: list[_Token], i: int, *, partitive: bool = True) -> int | None:
    """The noun a number counts: the first plural among the next three words ("18 public health labs",
    "20 other markets", "two AI features", "three of these organizations"), else the last of them ("1 free
    account per user")."""
    if partitive and i + 2 < len(tokens) and tokens[i].lower == "of" and tokens[i + 1].lower in _OF_DETERMINERS:
        i += 2
    last = None
    named = None  # a capitalised plural: a UI name counted ("four Favorites"), unless a plain noun follows
    superlative = False
    for k in range(i, min(len(tokens), i + 3)):
        word = tokens[k].lower
        if word in _COUNT_MODIFIERS or (tokens[k].text.isupper() and tokens[k].text.isalpha() and len(word) >= 2):
            continue  # "other", "more", an acronym: describes the noun that follows
        if word in {"most", "least"} and k + 1 < len(tokens) and _plain_word(tokens[k + 1]):
            superlative = True
            continue  # "the two most recent versions" counts versions; "the two most popular" counts nothing named
        plural = word in _IRREGULAR_PLURALS or (word.endswith("s") and not word.endswith(("ss", "'s", "’s")))
        if (
            tokens[k].text.isalpha()
            and tokens[k].text[0].isupper()
            and tokens[k].text[1:].islower()
            and len(word) >= 3
            and word not in _NOT_COUNT_NOUNS
            and word not in _UNITS
        ):
            if plural and named is None:
                named = k
            continue  # "2 Windows devices" counts devices; "3 Pro plans" counts plans
        if (
            not tokens[k].text.isalpha()
            or not tokens[k].text[0].islower()
            or len(word) < 3
            or word in _NOT_COUNT_NOUNS
            or word in _UNITS
        ):
            break
        last = k
        if plural:
            return k
    return named if named is not None else None if superlative else last


def _plain_word(token: _Token) -> bool:
    return token.text.isalpha() and token.text.islower() and token.lower not in _NOT_COUNT_NOUNS


_OF_DETERMINERS = frozenset({"the", "these", "those", "our", "your", "their", "its"})
_COUNT_MODIFIERS = frozenset({"other", "more", "additional", "extra", "new", "different", "separate"})


def _unit_at(tokens: list[_Token], i: int) -> str | None:
    """The unit word at token i, if it is one ("week", "GB"), skipping a day kind ("business days")."""
    if i < len(tokens) and tokens[i].lower in _DAY_KINDS and i + 1 < len(tokens):
        i += 1
    if i < len(tokens) and tokens[i].lower in _UNITS:
        return tokens[i].lower
    return None


def _price_period(tokens: list[_Token], j: int) -> tuple[int, str]:
    for lead in (("/",), ("per",), ("a",), ("an",), ("each",)):
        if _words_after(tokens, j, lead) and j + len(lead) < len(tokens):
            word = tokens[j + len(lead)].lower
            period = _PRICE_PERIODS.get(word) or _PRICE_PERIODS.get(_singular(word))
            if period:
                return j + len(lead) + 1, period
    return j, ""


def _temperature(
    sentence: str, tokens: list[_Token], start_i: int, end_i: int, low: float, high: float, scale: str
) -> tuple[Quantity, int]:
    if scale == "F":
        low, high = (low - 32) * 5 / 9, (high - 32) * 5 / 9
    return _finish(sentence, tokens, start_i, end_i, low, high, "temperature", "celsius", scale.lower())


def _finish(
    sentence: str,
    tokens: list[_Token],
    start_i: int,
    end_i: int,
    low: float,
    high: float,
    dimension: str,
    unit: str,
    written: str,
) -> tuple[Quantity, int]:
    qualifier, q_start, q_end = _qualifier(tokens, start_i, end_i)
    # "within 30 days" covers the qualifier in the span so a mask hides it too, but the quoted text stays the
    # figure itself for the qualifiers before it ("30 days"), which is what a reader looks for.
    span_start = tokens[start_i].start
    span_end = tokens[q_end - 1].end
    text = sentence[span_start:span_end]
    del q_start
    return (
        Quantity(
            value=round(low, 9),
            unit=unit,
            dimension=dimension,
            span=(span_start, span_end),
            text=text,
            high=round(high, 9),
            qualifier=qualifier,
            written_unit=written,
        ),
        q_end,
    )


_VERSION_NUMBER = re.compile(r"\d+(?:\.\d+){0,3}")
_VERSION_WORDS = {"version", "versions", "ver", "release", "build"}


def _version_at(sentence: str, tokens: list[_Token], i: int) -> tuple[Quantity, int] | None:
    """Versions: "version 2.3", "v2.3.1", a known product and its number ("iOS 14", "Android 8.0")."""
    token = tokens[i]
    product = ""
    start_i = i
    qualifier: Qualifier = ""
    if token.lower == "v" and i + 1 < len(tokens) and tokens[i + 1].is_digits and tokens[i + 1].start == token.end:
        product = tokens[i - 1].lower if i > 0 and tokens[i - 1].text[:1].isupper() else "version"
        i += 1
    elif not token.is_digits:
        return None
    elif i > 0 and tokens[i - 1].lower in _VERSION_WORDS:
        product = "version"
        if i > 1 and tokens[i - 2].text[:1].isupper() and tokens[i - 2].lower not in {"the", "a", "this"}:
            product = tokens[i - 2].lower
        start_i = i - 1
    elif i > 0 and tokens[i - 1].lower in _PRODUCTS:
        product = _PRODUCTS[tokens[i - 1].lower]
        start_i = i - 1
    elif (compared := _version_compared(tokens, i)) is not None:
        start_i, qualifier = compared
        product = "version"
        if start_i > 0 and tokens[start_i - 1].text[:1].isupper() and tokens[start_i - 1].lower not in {"the", "a"}:
            product = tokens[start_i - 1].lower
    elif (named := _release_named(tokens, i)) is not None:
        product = _PRODUCTS[tokens[named].lower]
        start_i = named
    elif token.text.count(".") >= 2:
        product = tokens[i - 1].lower if i > 0 and tokens[i - 1].text[:1].isupper() else "version"
    else:
        return None
    number = tokens[i].text
    if not _VERSION_NUMBER.fullmatch(number):
        return None
    parts = [int(p) for p in number.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    value = 0.0
    for n, part in enumerate(parts[:4]):
        value += part * 1000.0 ** (3 - n)
    quantity, end = _finish(sentence, tokens, start_i, i + 1, value, value, "version", product, "")
    if qualifier:
        quantity = Quantity(value, product, "version", quantity.span, quantity.text, qualifier=qualifier)
    elif quantity.qualifier == "at_most" and tokens[start_i - 1].lower in {"under", "below", "within"}:
        quantity = Quantity(
            value=value,
            unit=product,
            dimension="version",
            span=quantity.span,
            text=quantity.text,
            written_unit="",
        )
    return quantity, end


# "versions prior to 14", "a version newer than 2.3": the comparison says which side of the number is meant.
_VERSION_COMPARISONS: tuple[tuple[tuple[str, ...], Qualifier], ...] = (
    *((phrase, "at_most") for phrase in _phrases("prior to|earlier than|older than|lower than|before|below")),
    *((phrase, "at_least") for phrase in _phrases("later than|newer than|higher than|after|above")),
)


def _version_compared(tokens: list[_Token], i: int) -> tuple[int, Qualifier] | None:
    """A version word, a comparison and the number at ``i`` ("Safari versions prior to 14"): the index of the
    version word and the comparison as a qualifier."""
    for phrase, qualifier in _VERSION_COMPARISONS:
        at = i - len(phrase) - 1
        if at >= 0 and _words_before(tokens, i, phrase) and tokens[at].lower in _VERSION_WORDS:
            return at, qualifier
    return None


def _release_named(tokens: list[_Token], i: int) -> int | None:
    """A product, the name of its release and the number in brackets ("macOS Monterey (12.0)", "Android Oreo
    (8.1+)"): the index of the product. The bracket must close on the number, so "Windows (64-bit)" is not
    a release."""
    closes = i + 1 < len(tokens) and (
        tokens[i + 1].text == ")" or (tokens[i + 1].text == "+" and i + 2 < len(tokens) and tokens[i + 2].text == ")")
    )
    if not closes or i < 2 or tokens[i - 1].text != "(":
        return None
    if tokens[i - 2].lower in _PRODUCTS:
        return i - 2
    if i >= 3 and tokens[i - 2].text[:1].isupper() and tokens[i - 3].lower in _PRODUCTS:
        return i - 3
    return None


# A named setting given a number ("MAX_UPLOADS=5", "server.timeout = 30"): the name, not in a link's query
# ("?page=2") and of three characters or more, so "x=5" in a formula is not a setting.
_SETTING_NAME = re.compile(r"(?:^|(?<=[\s`'\"(]))([A-Za-z_][\w.]*\w)[ \t]?=[ \t]?$")


def _setting_at(sentence: str, tokens: list[_Token], i: int) -> tuple[Quantity, int] | None:
    """The value of a named setting: the number after ``name=``, keyed by the name, so two pages that give one
    setting different defaults disagree. The number must be the whole value ("TIMEOUT=30s" is left out)."""
    token = tokens[i]
    if "=" not in sentence[max(0, token.start - 2) : token.start]:
        return None
    match = _SETTING_NAME.search(sentence, 0, token.start)
    if match is None or len(match.group(1)) < 3:
        return None
    if token.end < len(sentence) and (sentence[token.end].isalnum() or sentence[token.end] in "&/-:_"):
        return None
    value = _digits_value(token.text)
    start_i = next((k for k in range(i) if tokens[k].start == match.start(1)), None)
    if value is None or start_i is None:
        return None
    return _finish(sentence, tokens, start_i, i + 1, value, value, "setting", match.group(1), "")


def _version_text(value: float) -> str:
    parts = []
    remaining = round(value)
    for n in range(4):
        scale = int(1000 ** (3 - n))
        parts.append(remaining // scale)
        remaining %= scale
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return ".".join(str(p) for p in parts)


_DURATION_NAMES = (
    (365 * _DAY, "year"),
    (365 / 12 * _DAY, "month"),
    (7 * _DAY, "week"),
    (_DAY, "day"),
    (3600.0, "hour"),
    (60.0, "minute"),
    (1.0, "second"),
)
_DATA_NAMES = ((1024.0**4, "TiB"), (1024.0**3, "GiB"), (1024.0**2, "MiB"), (1024.0, "KiB"), (1.0, "bytes"))


def _number_text(value: float) -> str:
    return f"{value:.6g}" if value != int(value) else str(int(value))


def _describe_value(value: float, unit: str, dimension: str) -> str:
    if dimension == "duration" and unit == "second":
        # days when whole (so "two weeks" reads "14 days", as does "14 days"), else the largest whole unit
        years = value / (365 * _DAY)
        if years >= 1 and round(years, 9) == int(round(years, 9)):
            return f"{round(years)} year" + ("" if round(years) == 1 else "s")
        if value >= _DAY and (value / _DAY) == int(value / _DAY):
            days = int(value / _DAY)
            return f"{days} day" if days == 1 else f"{days} days"
        for size, name in _DURATION_NAMES:
            if value >= size:
                n = value / size
                return f"{_number_text(round(n, 3))} {name}" + ("" if n == 1 else "s")
        return f"{_number_text(value)} seconds"
    if dimension == "data" and unit == "byte":
        for size, name in _DATA_NAMES:
            if value >= size:
                return f"{_number_text(round(value / size, 3))} {name}"
        return f"{_number_text(value)} bytes"
    if dimension == "money":
        currency, _, period = unit.partition("/")
        return f"{currency} {value:.2f}".replace(".00", "") + (f"/{period}" if period else "")
    if dimension == "percent":
        return f"{_number_text(value)}%"
    if dimension == "setting":
        return f"{unit}={_number_text(value)}"
    if dimension == "length":
        return f"{_number_text(round(value, 3))} m"
    if dimension == "temperature":
        return f"{_number_text(round(value, 1))} °C"
    if dimension == "mass":
        return f"{_number_text(round(value, 3))} g"
    plural = "" if value == 1 or unit.endswith("s") or unit in _IRREGULAR_PLURALS else "s"
    return f"{_number_text(value)} {unit}{plural}"
