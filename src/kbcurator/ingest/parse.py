"""Turn one ``RawPage`` (HTML, Jekyll Markdown or .docx) into an ``Article``, or a ``Rejected`` saying why.

Every kind goes through the same HTML path: Markdown is rendered to HTML and .docx is partitioned by
unstructured and rendered to simple HTML, so text extraction, links and hashing behave the same for all.

What a structured source already knows wins over what is guessed from the markup. In order:

- title: ``page.fields["title"]``, front matter ``title``, the main content's first ``<h1>``, ``<title>``.
- section: ``fields["section"]``, front matter ``category``/``section``, ``<meta name="kb:section">``,
  ``<meta property="article:section">``, then the breadcrumb trail.
- locale: ``fields["locale"]``, front matter ``locale``/``lang``, ``<html lang>``, then ``default_locale``;
  always lowercase with a hyphen (``en_US`` -> ``en-us``). A value that is not a language tag
  (``<html lang="<script>...">``) is dropped and the next one in this order is used.
- updated_at: ``page.updated_at`` (a source's own timestamp: API, HTTP, sitemap), front matter
  ``last_modified_at``/``updated``/``date``, ``<meta property="article:modified_time">``, then
  ``fields["file_mtime"]`` (a folder source's file time, the last resort). Always an aware UTC datetime.

The title's own ``<h1>`` is removed from ``body_html`` and ``text`` so that every kind carries the title
only in ``Article.title`` (API bodies and Markdown never repeat it).

``body_html`` keeps only the attributes a reader or a link check needs: ``id`` and ``name`` (the targets of
``#fragment`` links: heading ids, tab panes, Zendesk-style ``<a name>``), link and image targets, and table
layout. Scripts, event handlers (``on*``) and link or image targets with a scheme other than http(s) (and
``mailto:``/``tel:`` for links) are removed: ``javascript:``, ``data:`` and ``vbscript:`` never reach a page.
``links`` are the page's outbound links, resolved and normalised; a link into another page keeps its
``#fragment`` so that a missing anchor can be told from a missing page, while links into the page itself
(``#x``, or its own URL with a fragment) are not outbound links.

A page is rejected, on its own, when what it parses to could not be published: its URL is not an http(s) URL
with a host (or, for a folder source without a base URL, a relative path), its title or section is over
``MAX_TITLE_CHARS``, its text is over ``max_article_chars``, its raw content is over ``MAX_PAGE_CHARS``, or its
front matter is over ``MAX_FRONT_MATTER_BYTES``, uses YAML anchors or aliases, or holds a field over
``MAX_FIELD_CHARS``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import frontmatter
import markdown
import yaml
from bs4 import BeautifulSoup, Comment, NavigableString, Tag
from dateutil import parser as date_parser

from kbcurator.errors import ParseError
from kbcurator.records import Article, RawPage, Rejected, RejectionCode, make_article_id, sha256_hex

__all__ = [
    "MAX_ARTICLE_CHARS",
    "MAX_FIELD_CHARS",
    "MAX_FRONT_MATTER_BYTES",
    "MAX_PAGE_CHARS",
    "MAX_TITLE_CHARS",
    "PARSER_VERSION",
    "check_article",
    "normalise_locale",
    "normalise_url",
    "parse_page",
    "strip_liquid",
    "url_problem",
]

# Part of the key under which a rebuild reuses a page's article instead of parsing it (kbcurator.ingest.cache).
# Bump it with any change here that changes what a page parses to, so every page is parsed again once.
PARSER_VERSION = "2"

# The default of ``checks.max_article_chars``: an article whose text is longer is rejected on its own at parse time
# instead of failing the release checks for every article.
MAX_ARTICLE_CHARS = 500_000

# Limits that keep one bad page from costing the whole run (memory, time) or failing the release checks for every
# article. Each bad page becomes a Rejected with the limit in its reason.
MAX_PAGE_CHARS = 5_000_000  # raw HTML or Markdown handed to the parser
MAX_TITLE_CHARS = 500  # title and section; the release checks bound titles with the same number
MAX_FRONT_MATTER_BYTES = 64 * 1024
MAX_FIELD_CHARS = 2_000  # one front matter value that is read (title, section, locale, dates, permalink)
_MAX_LOCALE_CHARS = 35  # the longest language tag BCP 47 asks implementations to support
_MAX_DATE_CHARS = 100

# Never content: removed before anything is measured.
_INVISIBLE = ("script", "style", "noscript", "template", "svg", "iframe", "object", "embed")
# Page chrome around the article: removed before the main content is chosen and read.
_CHROME = ("nav", "header", "footer", "aside", "form", "button", "dialog")
# Tried in order; the first that still has text after the chrome is removed is the main content.
# "Related articles" blocks that themes put inside the article: their links count as the article's
# outbound links, but their text is navigation, not content, and would pollute every chunk's search.
_RELATED_SELECTORS = ".related-articles, .article-relatives, .related-links, [data-kb-related]"
_MAIN_SELECTORS = ("main", "article", "[role=main]", ".article-body", "#content", "body")
_BLOCK_TAGS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "caption", "dd", "details", "dialog", "div", "dl"),
        *("dt", "fieldset", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header"),
        *("hgroup", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody"),
        *("tfoot", "thead", "ul"),
    }
)
_KEPT_ATTRIBUTES = frozenset({"href", "src", "alt", "title", "colspan", "rowspan", "start", "id", "name"})
_LINK_SCHEMES = ("", "http", "https")
# Schemes a target may keep in body_html, per attribute; any other (javascript:, data:, vbscript:) drops it.
_SAFE_SCHEMES = {"href": frozenset({"", "http", "https", "mailto", "tel"}), "src": frozenset({"", "http", "https"})}
# Elements that are never content and can change how a page's links behave when body_html is shown.
_NOT_CONTENT = ("base", "link", "meta")
# As a browser reads a URL: ASCII tab and newlines are dropped anywhere, C0 controls and spaces at the ends.
_URL_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_C0_OR_SPACE = "".join(chr(code) for code in range(0x21))
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# Never in a well-formed URL: whitespace, control characters, and characters that must be percent-encoded
# and that would change how the URL reads in HTML or Markdown.
_URL_FORBIDDEN = re.compile(r'[\x00-\x20\x7f-\x9f<>"`\\]')
_LOCALE_TAG = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})*")
_DEFAULT_PORTS = {None, 80, 443}
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]+")

# Jekyll / Liquid / kramdown syntax that Python-Markdown would otherwise print as text.
_LIQUID_RAW = re.compile(r"{%-?\s*raw\s*-?%}(.*?){%-?\s*endraw\s*-?%}", re.S)
_LIQUID_COMMENT = re.compile(r"{%-?\s*comment\s*-?%}.*?{%-?\s*endcomment\s*-?%}", re.S)
_LIQUID_SITE_URL = re.compile(r"{{-?\s*site\.(?:baseurl|url)\s*-?}}")
_LIQUID_URL_FILTER = re.compile(r"""{{-?\s*['"]([^'"]*)['"]\s*\|\s*(?:relative_url|absolute_url)\s*-?}}""")
_LIQUID_LINK = re.compile(r"{%-?\s*link\s+(\S+?)\s*-?%}")
_LIQUID_POST_URL = re.compile(r"{%-?\s*post_url\s+(\S+?)\s*-?%}")
# Jekyll themes render Markdown inside HTML blocks (tab panes) by capturing it and piping it through
# ``markdownify``; Markdown written straight inside an HTML block stays raw (in kramdown too) unless the
# block says markdown="1".
_LIQUID_CAPTURE = re.compile(r"{%-?\s*capture\s+(\w+)\s*-?%}(.*?){%-?\s*endcapture\s*-?%}", re.S)
_LIQUID_CAPTURED_OUTPUT = re.compile(r"{{-?\s*(\w+)\s*(\|\s*markdownify\s*)?-?}}")
_LIQUID_TAG = re.compile(r"{%.*?%}", re.S)
_LIQUID_OUTPUT = re.compile(r"{{.*?}}", re.S)
_KRAMDOWN_ATTRS = re.compile(r"\{:[^}\n]*\}")
# An ATX heading ending in a kramdown attribute list: "## Title {#id}" or "## Title {: #id .class}".
_KRAMDOWN_HEADING_ATTRS = re.compile(r"^(#{1,6}[ \t].*?)[ \t]*\{(:[^}\n]*|#[^}\n]*)\}[ \t]*$", re.M)
_KRAMDOWN_ID = re.compile(r"(?:^|[\s:])#([A-Za-z][\w:-]*)")  # kramdown's own id syntax
_RAW_PLACEHOLDER = "\x00raw{}\x00"
_OUTPUT_PLACEHOLDER = "\x00output{}\x00"
# md_in_html renders Markdown inside HTML blocks marked markdown="1"; attr_list turns the heading ids that
# Markdown parsing keeps (as "{#id}") into id attributes.
_MARKDOWN_EXTENSIONS = ("tables", "fenced_code", "md_in_html", "attr_list")


@dataclass(slots=True)
class _Hints:
    """What the page's own metadata (front matter, API fields) says, before the markup is consulted."""

    title: str | None = None
    section: str | None = None
    locale: str | None = None
    updated_at: datetime | None = None
    canonical: str | None = None  # already resolved against the page URL


class PageProblem(ParseError):
    """A ``ParseError`` that knows its rejection code; any other ``ParseError`` is a ``parse_failed``."""

    def __init__(self, message: str, code: RejectionCode) -> None:
        super().__init__(message)
        self.code = code


def rejection_code(exc: ParseError) -> RejectionCode:
    """The code a page rejected for ``exc`` is counted under."""
    return exc.code if isinstance(exc, PageProblem) else RejectionCode.PARSE_FAILED


def parse_page(
    page: RawPage,
    *,
    default_locale: str = "en-us",
    base_url: str | None = None,
    max_article_chars: int = MAX_ARTICLE_CHARS,
) -> Article | Rejected:
    """Parse one page. Never raises for a bad page: it becomes ``Rejected(stage="parse")``.

    Args:
        page: the fetched page. For ``content_kind="docx"``, ``content`` is the path of the .docx file
            (a folder source reads it lazily, here).
        default_locale: used when neither the source nor the page says.
        base_url: resolves a relative ``page.location`` to the URL it is published at (joined as a browser
            would, so end it with ``/``). Without it, relative locations stay relative and links found in
            the page are resolved against them as file paths.
        max_article_chars: an article whose text is longer is rejected (pass ``checks.max_article_chars``,
            so that the release checks never see it).
    """
    page_url = _page_url(page.location, base_url)
    try:
        if page.content_kind in ("html", "markdown") and len(page.content) > MAX_PAGE_CHARS:
            raise PageProblem(
                f"page too large: {len(page.content):,} characters, over the {MAX_PAGE_CHARS:,} limit",
                RejectionCode.TOO_LARGE,
            )
        if page.content_kind == "html":
            article = _from_html(page, page.content, _Hints(), page_url, page_url, default_locale)
        elif page.content_kind == "markdown":
            article = _from_markdown(page, page_url, default_locale, base_url)
        elif page.content_kind == "docx":
            article = _from_docx(page, page_url, default_locale)
        else:
            raise PageProblem(f"unsupported content kind {page.content_kind!r}", RejectionCode.UNSUPPORTED_TYPE)
        return check_article(article, max_article_chars=max_article_chars)
    except ParseError as exc:
        return Rejected(page.location, "parse", str(exc), page.source_id, code=rejection_code(exc))
    except Exception as exc:
        # lxml, YAML, Markdown and unstructured raise many types; one bad page must not stop a run.
        return Rejected(
            record_id=page.location,
            stage="parse",
            reason=f"unparseable {page.content_kind}: {type(exc).__name__}: {exc}",
            source_id=page.source_id,
            code=RejectionCode.PARSE_FAILED,
        )


def check_article(article: Article, *, max_article_chars: int = MAX_ARTICLE_CHARS) -> Article:
    """``article`` when it can be published on its own; else raises ``ParseError`` saying why.

    Raises:
        ParseError: the URL is not well formed, the title or section is over ``MAX_TITLE_CHARS``, or the text
            is over ``max_article_chars``.
    """
    problem = url_problem(article.url)
    if problem:
        raise PageProblem(f"not a well-formed URL: {problem}", RejectionCode.BAD_URL)
    if len(article.title) > MAX_TITLE_CHARS:
        raise PageProblem(
            f"title too long: {len(article.title):,} characters, over the {MAX_TITLE_CHARS} limit",
            RejectionCode.TOO_LARGE,
        )
    if len(article.section) > MAX_TITLE_CHARS:
        raise PageProblem(
            f"section too long: {len(article.section):,} characters, over the {MAX_TITLE_CHARS} limit",
            RejectionCode.TOO_LARGE,
        )
    if len(article.text) > max_article_chars:
        raise PageProblem(
            f"article too long: {len(article.text):,} characters, over the {max_article_chars:,} limit",
            RejectionCode.TOO_LARGE,
        )
    return article


def url_problem(url: str) -> str | None:
    """What makes ``url`` unfit to be an article's URL, or None when it is fit.

    An article URL is an absolute http(s) URL with a host, or a relative path (a folder source without a base
    URL), without whitespace, control characters or ``< > " ` \\``. The problem names the scheme, never the URL.
    """
    if not url:
        return "empty URL"
    if _URL_FORBIDDEN.search(url):
        return 'it holds whitespace, a control character or one of < > " ` \\'
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        return f"unparseable: {exc}"
    if parts.scheme:
        if parts.scheme.lower() not in ("http", "https"):
            return f"scheme {parts.scheme[:20]!r} is not http or https"
        return None if host else "no host"
    if parts.netloc:
        return "no scheme (a //host/... URL)"
    if ":" in url:
        return "a relative path may not hold ':'"
    return None


# --- kinds -------------------------------------------------------------------------------------------


def _from_markdown(page: RawPage, page_url: str, default_locale: str, base_url: str | None) -> Article:
    meta, content = _front_matter(page.content)
    hints = _Hints(
        title=_first_text(meta, "title"),
        section=_first_text(meta, "category", "section"),
        locale=_first_text(meta, "locale", "lang", "language"),
        updated_at=_first_datetime(meta, "last_modified_at", "updated_at", "updated", "modified", "date"),
    )
    permalink = _first_text(meta, "permalink", "url")
    if permalink:
        hints.canonical = urljoin(page_url, permalink)
    source = _liquid_to_markdown(content, site_url=base_url, keep_heading_ids=True)
    html = markdown.markdown(source, extensions=list(_MARKDOWN_EXTENSIONS))
    # A Jekyll page is served at its permalink, so its relative links resolve from there.
    link_base = hints.canonical or page_url
    return _from_html(page, html, hints, page_url, link_base, default_locale)


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The front matter (YAML, TOML or JSON, as python-frontmatter detects it) and the content after it.

    Front matter comes from outside: it is refused over ``MAX_FRONT_MATTER_BYTES``, and YAML may not use anchors
    or aliases (a few hundred bytes of nested aliases expand to gigabytes when read as text).
    """
    text = text.strip()
    handler = frontmatter.detect_format(text, frontmatter.handlers)
    if handler is None:
        return {}, text
    try:
        raw, content = handler.split(text)
    except ValueError:
        return {}, text  # no closing delimiter: python-frontmatter reads the whole text as content too
    size = len(raw.encode("utf-8"))
    if size > MAX_FRONT_MATTER_BYTES:
        raise PageProblem(
            f"front matter too large: {size:,} bytes, over the {MAX_FRONT_MATTER_BYTES:,} limit",
            RejectionCode.TOO_LARGE,
        )
    try:
        if isinstance(handler, frontmatter.YAMLHandler):
            data = yaml.load(raw, Loader=_NoAliasLoader)  # a SafeLoader without anchors or aliases
        else:
            data = handler.load(raw)
    except ParseError:
        raise
    except Exception as exc:  # the YAML, TOML and JSON parsers raise their own types
        raise ParseError(f"invalid front matter: {type(exc).__name__}: {_clip(str(exc))}") from exc
    return (dict(data) if isinstance(data, dict) else {}), content.strip()


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing anchors (``&a``) and aliases (``*a``) before anything is built."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise ParseError("front matter uses YAML anchors or aliases (&name, *name), which are not allowed")
        return super().compose_node(parent, index)


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _from_docx(page: RawPage, page_url: str, default_locale: str) -> Article:
    path = Path(page.content)
    # A folder source hands over the file's real path; a link there now was swapped in after the walk.
    if path.is_symlink() or not path.is_file():
        raise PageProblem(f"docx file not found: {path}", RejectionCode.UNREADABLE)
    from kbcurator.unstructured_compat import use_bundled_spacy_model

    use_bundled_spacy_model()
    # Imported here: unstructured takes seconds to import and most runs never see a .docx.
    from unstructured.partition.docx import partition_docx

    html = _elements_to_html(partition_docx(filename=str(path)))
    return _from_html(page, html, _Hints(), page_url, page_url, default_locale)


def _elements_to_html(elements: Iterable[Any]) -> str:
    """Render unstructured elements as plain h1/h2/p/ul/table HTML (the first Title is the h1)."""
    parts: list[str] = []
    in_list = False
    seen_title = False
    for element in elements:
        category = getattr(element, "category", "")
        text = (getattr(element, "text", "") or "").strip()
        if category in {"Header", "Footer", "PageBreak", "PageNumber"} or not text:
            continue
        if category == "ListItem":
            if not in_list:
                parts.append("<ul>")
                in_list = True
            parts.append(f"<li>{_docx_inline(element, text)}</li>")
            continue
        if in_list:
            parts.append("</ul>")
            in_list = False
        if category == "Title":
            tag = "h2" if seen_title else "h1"
            seen_title = True
            parts.append(f"<{tag}>{escape(text)}</{tag}>")
        elif category == "Table" and getattr(element.metadata, "text_as_html", None):
            parts.append(str(element.metadata.text_as_html))
        else:
            parts.append(f"<p>{_docx_inline(element, text)}</p>")
    if in_list:
        parts.append("</ul>")
    return "\n".join(parts)


def _docx_inline(element: Any, text: str) -> str:
    """Escape the text and turn the element's hyperlinks (text + URL pairs) back into anchors."""
    html = escape(text)
    urls = getattr(element.metadata, "link_urls", None) or []
    texts = getattr(element.metadata, "link_texts", None) or []
    for link_text, url in zip(texts, urls, strict=False):
        label = escape(link_text or "")
        if label and label in html:
            html = html.replace(label, f'<a href="{escape(url, quote=True)}">{label}</a>', 1)
    return html


# --- the shared HTML path ----------------------------------------------------------------------------


def _from_html(page: RawPage, html: str, hints: _Hints, page_url: str, link_base: str, default_locale: str) -> Article:
    if not html.strip():
        raise PageProblem("empty page", RejectionCode.EMPTY)
    soup = BeautifulSoup(html, "lxml")
    for node in soup.find_all(string=lambda s: isinstance(s, Comment)):
        node.extract()
    for tag in soup.find_all(_INVISIBLE):
        tag.decompose()

    head_title = _text_of(soup.title) if soup.title else ""
    base_tag = soup.find("base", href=True)
    if isinstance(base_tag, Tag) and not hints.canonical:
        declared_base = urljoin(page_url, str(base_tag["href"]))
        if _scheme_as_browsers_read(declared_base) in _LINK_SCHEMES:  # not <base href="javascript:...">
            link_base = declared_base
    canonical = _canonical(soup, page_url, hints.canonical)
    locale = (
        normalise_locale(page.field("locale"))
        or normalise_locale(hints.locale)
        or normalise_locale(_html_lang(soup))
        or normalise_locale(default_locale)
        or "en-us"
    )
    updated_at = (
        _as_utc(page.updated_at)
        or hints.updated_at
        or _to_utc(_meta(soup, prop="article:modified_time"))
        or _to_utc(page.field("file_mtime"))
    )

    # The h1 is looked for before the chrome goes: themes often put it in the article's <header>.
    first_main = _select_first(soup)
    h1 = first_main.find("h1") if first_main is not None else None
    if h1 is None:
        h1 = soup.find("h1")
    title = _clean(page.field("title") or hints.title or (_text_of(h1) if isinstance(h1, Tag) else "") or head_title)

    section = (
        page.field("section")
        or hints.section
        or _meta(soup, name="kb:section")
        or _meta(soup, prop="article:section")
        or _breadcrumb_section(soup, title)
        or ""
    )

    for tag in soup.find_all(_CHROME):
        tag.decompose()
    for tag in soup.select('[role=navigation], [hidden], [aria-hidden="true"]'):
        tag.decompose()

    main = _select_main(soup)
    if main is None:
        raise PageProblem("no main content: no text outside navigation and page chrome", RejectionCode.EMPTY)
    if not title:
        raise ParseError("no title: no title field, front matter title, <h1> or <title>")
    first_h1 = main.find("h1")
    if isinstance(first_h1, Tag) and _clean(_text_of(first_h1)).casefold() == title.casefold():
        first_h1.decompose()

    related_links: list[str] = []
    for block in main.select(_RELATED_SELECTORS):
        related_links += _clean_and_collect_links(block, link_base, canonical)
        block.decompose()
    body_links = _clean_and_collect_links(main, link_base, canonical)
    links = tuple(dict.fromkeys((*body_links, *related_links)))
    text = _extract_text(main)
    if not text:
        raise PageProblem("no main content: the article has a title but no body text", RejectionCode.EMPTY)
    body_html = main.decode_contents().strip()
    return Article(
        article_id=make_article_id(page.source_id, canonical),
        source_id=page.source_id,
        url=canonical,
        title=title,
        section=_clean(section),
        locale=locale,
        body_html=body_html,
        text=text,
        updated_at=updated_at,
        content_hash=sha256_hex(title + "\n" + text),
        links=links,
    )


def _select_first(soup: BeautifulSoup) -> Tag | None:
    for selector in _MAIN_SELECTORS:
        found = soup.select_one(selector)
        if found is not None:
            return found
    return None


def _select_main(soup: BeautifulSoup) -> Tag | None:
    """The first candidate container that still holds text; a fragment without <body> counts as body."""
    for selector in _MAIN_SELECTORS:
        for found in soup.select(selector):
            if found.get_text(strip=True):
                return found
    return None


def _clean_and_collect_links(main: Tag, link_base: str, self_url: str) -> tuple[str, ...]:
    """Drop presentational attributes, resolve hrefs/srcs in place, and return the outbound links.

    A link keeps its ``#fragment``; links to the page itself, with or without one, are left out.
    """
    links: list[str] = []
    seen: set[str] = set()
    for tag in main.find_all(_NOT_CONTENT):
        tag.decompose()
    for tag in main.find_all(True):
        tag.attrs = {k: v for k, v in tag.attrs.items() if k in _KEPT_ATTRIBUTES}
        for attribute, schemes in _SAFE_SCHEMES.items():
            value = tag.get(attribute)
            if value is not None and (not isinstance(value, str) or _scheme_as_browsers_read(value) not in schemes):
                del tag[attribute]
        if tag.name == "img" and isinstance(tag.get("src"), str):
            tag["src"] = urljoin(link_base, str(tag["src"]).strip())
        href = tag.get("href")
        if tag.name != "a" or not isinstance(href, str):
            continue
        href = href.strip()
        if not href or href.startswith("#") or urlsplit(href).scheme.lower() not in _LINK_SCHEMES:
            continue  # same-page anchors, mailto:, javascript:, tel: are not links to other pages
        resolved = urljoin(link_base, href)
        tag["href"] = resolved
        page = normalise_url(resolved)
        if page == self_url:
            continue
        fragment = urlsplit(resolved).fragment
        target = f"{page}#{fragment}" if fragment else page
        if target not in seen:
            seen.add(target)
            links.append(target)
    return tuple(links)


def _scheme_as_browsers_read(url: str) -> str:
    """The scheme a browser would see in ``url`` (lowercase), "" for a relative URL.

    ``" java\tscript:..."`` is a javascript: URL to a browser, so tabs, newlines and the C0 controls and spaces
    around it are dropped first, as the URL standard does.
    """
    cleaned = _URL_TAB_OR_NEWLINE.sub("", url).strip(_C0_OR_SPACE)
    found = _URL_SCHEME.match(cleaned)
    return found.group(1).lower() if found else ""


def _extract_text(main: Tag) -> str:
    """Block elements become paragraphs separated by a blank line; whitespace inside them is collapsed."""
    blocks: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        lines = (_SPACES.sub(" ", line).strip() for line in "".join(buffer).split("\n"))
        block = "\n".join(line for line in lines if line)
        if block:
            blocks.append(block)
        buffer.clear()

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                buffer.append(str(child).replace("\n", " "))
            elif isinstance(child, Tag):
                if child.name == "br":
                    buffer.append("\n")
                elif child.name == "pre":
                    flush()
                    code = child.get_text().strip("\n")
                    if code.strip():
                        blocks.append(code)
                elif child.name == "tr":
                    flush()
                    cells = [_clean(cell.get_text(" ")) for cell in child.find_all(["td", "th"])]
                    row = " | ".join(cell for cell in cells if cell)
                    if row:
                        blocks.append(row)
                elif child.name in _BLOCK_TAGS:
                    flush()
                    walk(child)
                    flush()
                else:
                    walk(child)

    walk(main)
    flush()
    return "\n\n".join(blocks)


# --- metadata ----------------------------------------------------------------------------------------


def _canonical(soup: BeautifulSoup, page_url: str, hinted: str | None) -> str:
    """The declared canonical URL when it is on the page's own host, else the page URL; normalised."""
    if hinted:
        return normalise_url(hinted)
    for link in soup.find_all("link", href=True):
        rel = link.get("rel")
        rels: list[str] = rel.split() if isinstance(rel, str) else list(rel or [])
        if "canonical" in [r.lower() for r in rels]:
            declared = urljoin(page_url, str(link["href"]).strip())
            if _same_host(declared, page_url) and url_problem(normalise_url(declared)) is None:
                return normalise_url(declared)
            break  # a canonical on another host is not trusted: it could make two sources collide
    return normalise_url(page_url)


def _same_host(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    if (pa.hostname or "") != (pb.hostname or ""):
        return False
    # http -> https upgrades keep the host; an explicit other port is another server.
    return pa.port == pb.port or (pa.port in _DEFAULT_PORTS and pb.port in _DEFAULT_PORTS)


def _meta(soup: BeautifulSoup, *, name: str | None = None, prop: str | None = None) -> str | None:
    attribute, value = ("name", name) if name else ("property", prop)
    tag = soup.find("meta", attrs={attribute: value or ""})
    if isinstance(tag, Tag):
        content = tag.get("content")
        if isinstance(content, str) and content.strip():
            return content.strip()
    return None


def _html_lang(soup: BeautifulSoup) -> str | None:
    html = soup.find("html")
    lang = html.get("lang") if isinstance(html, Tag) else None
    return lang if isinstance(lang, str) else None


def _breadcrumb_section(soup: BeautifulSoup, title: str) -> str | None:
    """The last crumb above the page itself (Home > Section > [Article])."""
    trail = soup.select_one(
        "[aria-label~=breadcrumb i], [aria-label~=breadcrumbs i], .breadcrumbs, .breadcrumb, [itemtype$=BreadcrumbList]"
    )
    if trail is None:
        return None
    items = trail.find_all("li") or trail.find_all("a")
    crumbs = [_clean(_text_of(item)) for item in items]
    crumbs = [c for c in crumbs if c]
    if crumbs and crumbs[-1].casefold() == title.casefold():
        crumbs.pop()
    return crumbs[-1] if len(crumbs) >= 2 else None


def _first_text(meta: dict[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` whose value is a scalar (or a list starting with one), as text.

    Raises:
        ParseError: that value is over ``MAX_FIELD_CHARS``.
    """
    for key in keys:
        value = meta.get(key)
        if isinstance(value, list | tuple) and value:
            value = value[0]  # Jekyll allows `categories: [a, b]`-style lists
        if not isinstance(value, str | int | float | date):
            continue  # a mapping or a nested list is not a title, a section or a URL
        text = str(value).strip()
        if len(text) > MAX_FIELD_CHARS:
            raise PageProblem(
                f"front matter {key!r} too long: {len(text):,} characters, over the {MAX_FIELD_CHARS:,} limit",
                RejectionCode.TOO_LARGE,
            )
        if text:
            return text
    return None


def _first_datetime(meta: dict[str, Any], *keys: str) -> datetime | None:
    for key in keys:
        parsed = _to_utc(meta.get(key))
        if parsed is not None:
            return parsed
    return None


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _to_utc(value: object) -> datetime | None:
    """A tolerant date reader: datetime, date, epoch seconds or free-form text; None when it cannot tell.

    Naive values are taken as UTC: help-center front matter rarely names a zone and a day matters more
    than the hour for staleness.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return _as_utc(value)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > _MAX_DATE_CHARS:
        return None
    try:
        return _as_utc(date_parser.parse(text))
    except (ValueError, OverflowError):
        return None


def normalise_locale(value: str | None) -> str | None:
    """``en_US``/``en-US`` -> ``en-us``; None for empty values and for anything that is not a language tag."""
    if not value or not value.strip():
        return None
    tag = value.strip().replace("_", "-").lower()
    if len(tag) > _MAX_LOCALE_CHARS or not _LOCALE_TAG.fullmatch(tag):
        return None
    return tag


def normalise_url(url: str) -> str:
    """Lowercase scheme and host, drop default ports and the fragment; relative paths stay relative."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    netloc = parts.netloc.lower()
    if (scheme == "http" and netloc.endswith(":80")) or (scheme == "https" and netloc.endswith(":443")):
        netloc = netloc.rsplit(":", 1)[0]
    path = parts.path or ("/" if netloc else "")
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def _page_url(location: str, base_url: str | None) -> str:
    if base_url and not urlsplit(location).scheme:
        return urljoin(base_url, location)
    return location


def strip_liquid(text: str, *, site_url: str | None = None) -> str:
    """Remove Jekyll Liquid and kramdown syntax so that only the Markdown a reader sees is left.

    ``{{ site.baseurl }}`` and ``{{ site.url }}`` become "" (links stay site-relative), ``{{ '/x' |
    relative_url }}`` becomes ``/x``, ``{% link p %}`` becomes the URL a folder source gives the file ``p``
    (``site_url`` + ``p``, or ``/p`` without a site URL), ``{% post_url p %}`` becomes ``/p``, ``{% raw %}``
    keeps its content, ``{% comment %}`` blocks vanish, ``{% capture x %}`` text goes where ``{{ x }}`` is
    output (``{{ x | markdownify }}``: rendered to HTML, as Jekyll does), any other tag or output is dropped
    (block tags keep their content), and so are kramdown attribute lists (``{: .class}``, ``{#id}``).
    """
    return _liquid_to_markdown(text, site_url=site_url, keep_heading_ids=False)


def _liquid_to_markdown(text: str, *, site_url: str | None, keep_heading_ids: bool) -> str:
    """``strip_liquid``; with ``keep_heading_ids``, a heading's kramdown id stays as ``{#id}`` for attr_list."""
    raws: list[str] = []

    def keep_raw(match: re.Match[str]) -> str:
        raws.append(match.group(1))
        return _RAW_PLACEHOLDER.format(len(raws) - 1)

    def restore_raws(text: str) -> str:
        for index, raw in enumerate(raws):
            text = text.replace(_RAW_PLACEHOLDER.format(index), raw)
        return text

    text = _LIQUID_RAW.sub(keep_raw, text)
    text = _LIQUID_COMMENT.sub("", text)
    text = _LIQUID_SITE_URL.sub("", text)
    text = _LIQUID_URL_FILTER.sub(r"\1", text)
    text = _LIQUID_LINK.sub(lambda m: _linked_file_url(m.group(1), site_url), text)
    text = _LIQUID_POST_URL.sub(lambda m: "/" + m.group(1).lstrip("/"), text)

    captured: dict[str, str] = {}

    def capture(match: re.Match[str]) -> str:
        captured[match.group(1)] = match.group(2)
        return ""

    outputs: list[str] = []

    def output(match: re.Match[str]) -> str:
        body = captured.get(match.group(1))
        if body is None:
            return match.group(0)  # not a capture: dropped with the other outputs
        body = _drop_liquid(body, keep_heading_ids)
        if match.group(2):
            body = markdown.markdown(restore_raws(body), extensions=list(_MARKDOWN_EXTENSIONS))
        outputs.append(body)
        return _OUTPUT_PLACEHOLDER.format(len(outputs) - 1)

    text = _LIQUID_CAPTURE.sub(capture, text)
    text = _LIQUID_CAPTURED_OUTPUT.sub(output, text)
    text = _drop_liquid(text, keep_heading_ids)
    for index, body in enumerate(outputs):
        text = text.replace(_OUTPUT_PLACEHOLDER.format(index), body)
    return restore_raws(text)


def _drop_liquid(text: str, keep_heading_ids: bool) -> str:
    text = _LIQUID_TAG.sub("", text)
    text = _LIQUID_OUTPUT.sub("", text)

    def heading(match: re.Match[str]) -> str:
        found = _KRAMDOWN_ID.search(match.group(2)) if keep_heading_ids else None
        return f"{match.group(1)} {{#{found.group(1)}}}" if found else match.group(1)

    text = _KRAMDOWN_HEADING_ATTRS.sub(heading, text)
    return _KRAMDOWN_ATTRS.sub("", text)


def _linked_file_url(path: str, site_url: str | None) -> str:
    """Where ``{% link path %}`` points: the URL ``read_folder`` gives that file (base URL + quoted path)."""
    path = path.strip("'\"").lstrip("/")
    if not site_url:
        return "/" + path
    base = site_url if site_url.endswith("/") else site_url + "/"
    return base + quote(path, safe="/")


def _text_of(tag: Tag | None) -> str:
    return tag.get_text(" ", strip=True) if tag is not None else ""


def _clean(text: str | None) -> str:
    return _SPACES.sub(" ", (text or "").replace("\n", " ")).strip()
