"""A real help center grown to s times its size with controlled perturbations, for the scale benchmarks.

Shared by ``bench/dup_scale.py`` (which perturbs chunk texts in memory) and ``bench/scale.py`` (which writes
Markdown folders that the real reindex flow reads). The perturbations a replica gets:

- renamed products and vocabulary: every word type is renamed, with probability ``RENAME_SHARE``, to a
  replica-specific pseudo-word, and the product names in ``PRODUCTS`` always are; far enough that a replica
  shares few 5-word shingles with its original (a new article of the same shape, not a near copy);
- changed numbers: each number + the replica index;
- reordered sections: the sections under the article's top heading level are shuffled (the intro stays first).

In Markdown only prose is touched: front matter (but the title), fenced and inline code, Liquid tags, kramdown
attributes, HTML tags, link targets and bare URLs are kept, so that a replica still parses as the original does.
A replica of ``<collection>/a/b.md`` is written to ``<collection>/r007/a/b.md`` (its own URL through the
permalink pattern; a front-matter ``permalink`` is moved under ``/r007`` too), so article ids never collide.
"""

from __future__ import annotations

import hashlib
import random
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

# Share of word types renamed per replica. At 0.35 a 5-word shingle survived in ~12% of replicas, so at 100x
# the same shingles recurred across a dozen replicas of one base article and counted as template text; at 0.6
# one survives in ~1% (a replica is a new article, as intended).
RENAME_SHARE = 0.6
# Product names of the two real help centers, renamed in every replica ("renamed products").
PRODUCTS = frozenset(
    {"duckduckgo", "duck", "bitwarden", "chrome", "firefox", "safari", "edge", "android", "ios", "windows", "macos"}
)

WORD = re.compile(r"[^\W\d_]+")
NUMBER = re.compile(r"\b\d+\b")
SENTENCE = re.compile(r"(?<=[.!?])\s+")

# Markdown that is not prose: renaming or renumbering inside it would break links, Liquid or HTML.
_NOT_PROSE = re.compile(
    r"```.*?```|~~~.*?~~~"  # fenced code
    r"|\{%.*?%\}|\{\{.*?\}\}"  # Liquid tags and output
    r"|\{[:#][^}\n]*\}"  # kramdown attributes and heading ids
    r"|<[^>\n]+>"  # HTML tags
    r"|`[^`\n]+`"  # inline code
    r"|\]\([^)\n]*\)|\]\[[^\]\n]*\]|^\s*\[[^\]\n]+\]:.*$"  # link targets, reference links and definitions
    r"|https?://[^\s)\]>]+",  # bare URLs
    re.S | re.M,
)
_FRONT_MATTER = re.compile(r"\A---\r?\n(.*?)\r?\n---\r?\n", re.S)
_HEADING = re.compile(r"^(#{1,6})\s+\S")
_FENCE = re.compile(r"^\s*(```|~~~)")
_BLOCK_OPEN = re.compile(r"\{%-?\s*(callout|capture|comment|table|raw|tabs?|details)\b")
_BLOCK_CLOSE = re.compile(r"\{%-?\s*end(callout|capture|comment|table|raw|tabs?|details)\b")


def renamer(replica: int, share: float = RENAME_SHARE, always: frozenset[str] = frozenset()) -> Callable:
    """A ``re.sub`` callback renaming a word type to a pseudo-word fixed by (replica, word), for ``share`` of
    the word types and for every word in ``always`` (casefolded)."""

    def rename(match: re.Match[str]) -> str:
        word = match.group(0)
        digest = hashlib.blake2b(f"{replica}|{word.casefold()}".encode(), digest_size=8).digest()
        if word.casefold() not in always and int.from_bytes(digest[:4], "little") / 2**32 >= share:
            return word
        # Letters only, so that changing the numbers of a copy later leaves the renamed words alone.
        return word[:3] + "".join(chr(ord("a") + b % 26) for b in digest[4:8])

    return rename


def shift_numbers(text: str, by: int) -> str:
    """Every whole number in ``text`` plus ``by``."""
    return NUMBER.sub(lambda m: str(int(m.group(0)) + by), text)


def on_prose(markdown: str, change: Callable[[str], str]) -> str:
    """``change`` applied to the prose of ``markdown`` only (see the module docstring)."""
    out: list[str] = []
    at = 0
    for match in _NOT_PROSE.finditer(markdown):
        out.append(change(markdown[at : match.start()]))
        out.append(match.group(0))
        at = match.end()
    out.append(change(markdown[at:]))
    return "".join(out)


def split_front_matter(markdown: str) -> tuple[str, str]:
    """(front matter including its ``---`` lines, body); front matter is "" when there is none."""
    match = _FRONT_MATTER.match(markdown)
    return (match.group(0), markdown[match.end() :]) if match else ("", markdown)


def sections(body: str) -> tuple[str, list[str]]:
    """(intro, sections) split at the body's highest heading level, never inside code or a Liquid block."""
    lines = body.splitlines(keepends=True)
    heads: list[tuple[int, int]] = []  # (line number, heading level) of headings at top level
    fenced, depth = False, 0
    for number, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        depth += len(_BLOCK_OPEN.findall(line)) - len(_BLOCK_CLOSE.findall(line))
        heading = _HEADING.match(line)
        if heading and depth <= 0:
            heads.append((number, len(heading.group(1))))
    if not heads:
        return body, []
    top = min(level for _, level in heads)
    starts = [number for number, level in heads if level == top]
    intro = "".join(lines[: starts[0]])
    parts = ["".join(lines[a:b]) for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)]
    return intro, parts


def reorder_sections(body: str, rng: random.Random) -> str:
    """The body with its sections shuffled (a different order whenever there are two or more).

    Articles that define Liquid captures keep their order: a section may use what an earlier one captured.
    """
    intro, parts = sections(body)
    if len(parts) < 2 or "{% capture" in body:
        return body
    order = list(range(len(parts)))
    rng.shuffle(order)
    if order == sorted(order):
        order = order[1:] + order[:1]
    moved = [parts[i] if parts[i].endswith("\n") else parts[i] + "\n" for i in order]
    return intro + "".join(moved)


def replicate_markdown(markdown: str, replica: int, rng: random.Random) -> tuple[str, bool]:
    """(replica ``replica`` of one Markdown article, whether its sections were reordered)."""
    front, original_body = split_front_matter(markdown)
    reordered_body = reorder_sections(original_body, rng)
    rename = renamer(replica, always=PRODUCTS)

    def perturb(prose: str) -> str:
        return WORD.sub(rename, shift_numbers(prose, replica))

    body = on_prose(reordered_body, perturb)
    if front:
        lines = []
        for line in front.splitlines(keepends=True):
            key, sep, value = line.partition(":")
            if sep and key == "title":
                line = f"{key}:{perturb(value)}"
            elif sep and key == "permalink":
                line = f"{key}: /r{replica:03d}/{value.strip().lstrip('/')}\n"
            lines.append(line)
        front = "".join(lines)
    return front + body, reordered_body != original_body


@dataclass(frozen=True, slots=True)
class SourceTree:
    """One source of the base help center: a Jekyll collection folder of Markdown files."""

    source_id: str
    collection: Path  # e.g. .../duckduckgo-help-pages/articles/_docs
    base_url: str
    permalink: str | None = None

    def files(self) -> list[str]:
        return sorted(p.relative_to(self.collection).as_posix() for p in self.collection.rglob("*.md"))


def grow(trees: Iterable[SourceTree], scale: int, out: Path, seed: int = 7) -> dict[str, int]:
    """Write ``scale`` x the base help center under ``out/<source_id>/``: the originals plus ``scale - 1``
    perturbed replicas of each. Deterministic in (base, scale, seed). Returns counts of what was written."""
    if out.exists():
        shutil.rmtree(out)
    written = {"files": 0, "replicas": 0, "reordered": 0}
    for tree in trees:
        target = out / tree.source_id
        for relative in tree.files():
            text = (tree.collection / relative).read_text(encoding="utf-8")
            _write(target / relative, text)
            written["files"] += 1
            for replica in range(1, scale):
                rng = random.Random(f"{seed}|{tree.source_id}|{relative}|{replica}")
                copy, reordered = replicate_markdown(text, replica, rng)
                _write(target / f"r{replica:03d}" / relative, copy)
                written["files"] += 1
                written["replicas"] += 1
                written["reordered"] += reordered
    return written


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def bump_first_number(body: str) -> str:
    """``body`` with the first number of its prose plus one (ordered-list markers skipped: renumbering a list
    renders the same words); unchanged when the prose holds no number."""
    done = False

    def bump(prose: str) -> str:
        nonlocal done
        if done:
            return prose
        for match in NUMBER.finditer(prose):
            line_start = prose.rfind("\n", 0, match.start()) + 1
            if not prose[line_start : match.start()].strip() and prose[match.end() : match.end() + 1] in (".", ")"):
                continue
            done = True
            return prose[: match.start()] + str(int(match.group(0)) + 1) + prose[match.end() :]
        return prose

    return on_prose(body, bump)


def edit_share(root: Path, share: float = 0.01, seed: int = 11) -> dict[Path, str]:
    """Change ``share`` of the Markdown files under ``root`` (at least one), as a KB owner's small edit: the first
    number in the prose goes up by one or, without a number, a sentence is appended. Returns {path: old text}
    so the caller can put them back."""
    files = sorted(root.rglob("*.md"))
    count = max(1, round(share * len(files)))
    before: dict[Path, str] = {}
    for path in random.Random(seed).sample(files, count):
        text = path.read_text(encoding="utf-8")
        front, body = split_front_matter(text)
        new_body = bump_first_number(body)
        if new_body == body:
            new_body = body.rstrip("\n") + "\n\nThis article was reviewed for the scale benchmark.\n"
        before[path] = text
        path.write_text(front + new_body, encoding="utf-8")
    return before


def restore(before: dict[Path, str]) -> None:
    """Put back what :func:`edit_share` changed."""
    for path, text in before.items():
        path.write_text(text, encoding="utf-8")
