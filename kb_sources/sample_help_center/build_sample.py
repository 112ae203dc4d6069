"""Build the bundled sample help center from the CDC rows of deepset's COVID-QA ``faq_covidbert.csv``.

Usage (from the repository root)::

    .venv/bin/python kb_sources/sample_help_center/build_sample.py [CSV] [--base-url URL]

``CSV`` defaults to ``../shared/data/covid-qa-faq/faq_covidbert.csv`` relative to the repository root.
The output (``site/``, ``zendesk/``, ``markdown/``) is committed, so users never need the CSV; rerunning
this script on the same CSV reproduces it byte for byte. See README.md for attribution and layout.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import re
import shutil
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import yaml
from bs4 import BeautifulSoup, NavigableString, Tag

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
DEFAULT_CSV = REPO_ROOT.parent / "shared" / "data" / "covid-qa-faq" / "faq_covidbert.csv"
DEFAULT_BASE_URL = "http://127.0.0.1:8765"
CDC = "Center for Disease Control and Prevention (CDC)"
CDC_ORIGIN = "https://www.cdc.gov"
SITE_NAME = "Sample Help Center"
LOCALE = "en-us"
PER_PAGE = 60  # two pages of Zendesk output for ~110 articles
ZENDESK_BASE = "https://help.example.com"  # reserved domain: never resolved, only shaped like a real one
RELATED_PER_ARTICLE = 3
MARKDOWN_SECTIONS = ("How It Spreads", "How to Protect Yourself")
MARKDOWN_PER_SECTION = 3

# The scraped categories carry a spreadsheet fill-down artifact ("COVID-20" ... "COVID-25") and typos;
# a real help center would not, and section names feed section-level reports.
CATEGORY_FIXES = {
    "Sympotms & Testing": "Symptoms & Testing",
    "Responding to comfirmed COVID-19 cases": "Responding to confirmed COVID-19 cases",
    "Healtcare Professionals and Health Departments": "Healthcare Professionals and Health Departments",
}
_FILL_DOWN = re.compile(r"^(Preparing your Home for COVID-)\d+$")

ALLOWED_TAGS = {"p", "a", "ul", "ol", "li", "strong", "em", "sup", "br"}
# Screen-reader labels and icon glyphs ("external icon", "[PDF - 2 pages]") are page chrome, not answer text.
DROP_SPAN_CLASSES = {"sr-only", "fi", "file-details"}

# Our own text (not CDC's): an unpublished page that the crawler must not fetch (robots.txt) and that
# the Zendesk export carries as a draft.
PRIVATE_TITLE = "Internal: how this help center is updated"
PRIVATE_BODY = (
    "<p>This page is for the help-center editors only. It is not linked from the sitemap and robots.txt "
    "disallows it.</p>\n<p>Editors review every article in a section when the guidance it is based on "
    "changes, and record the review date in the article's metadata.</p>"
)


# Controlled edits for the health audit (README "Controlled edits"): the CDC FAQ has no contradiction and
# no broken internal link, so one real article is copied under another title with one fact changed, an
# older date, and two links a KB owner would have to fix. Everything else on the page is CDC's text.
EDITED_FROM = "should-i-use-soap-and-water-or-a-hand-sanitizer-to-protect-against"
EDITED_TITLE = "How long should I wash my hands?"
EDITED_UPDATED = "2020-02-20"
EDITED_FACT = ("at least 20 seconds", "at least 10 seconds")
EDITED_LINKS = (
    # a retired article, and an anchor the target page does not have
    '<p>See also <a href="what-is-2019-ncov.html">What is 2019-nCoV?</a> and '
    '<a href="how-can-my-family-and-i-prepare-for-covid-19.html#hand-hygiene">hand hygiene at home</a>.</p>'
)


@dataclass(frozen=True)
class Entry:
    number: int
    slug: str
    title: str
    section: str
    body_html: str
    updated: str  # YYYY-MM-DD


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", nargs="?", type=Path, default=DEFAULT_CSV, help="path to faq_covidbert.csv")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help="absolute URL the site is served at")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: beside this script)")
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(f"error: CSV not found: {args.csv}", file=sys.stderr)
        return 2
    entries = load_entries(args.csv)
    entries.append(edited_copy(entries))
    base_url = args.base_url.rstrip("/")
    out: Path = args.out
    for name in ("site", "zendesk", "markdown"):
        shutil.rmtree(out / name, ignore_errors=True)
    write_site(out / "site", entries, base_url)
    write_zendesk(out / "zendesk", entries)
    write_markdown(out / "markdown", entries)
    licence = args.csv.parent / "LICENSE"
    if licence.is_file():
        shutil.copyfile(licence, out / "LICENSE.covid-qa.txt")
    sections = len({e.section for e in entries})
    print(f"wrote {len(entries)} articles in {sections} sections to {out}")
    return 0


# --- reading and cleaning ----------------------------------------------------------------------------


def load_entries(csv_path: Path) -> list[Entry]:
    with csv_path.open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["source"].strip() == CDC]
    entries: list[Entry] = []
    slugs: set[str] = set()
    for row in rows:
        answer_html = row["answer_html"].strip()
        answer_text = row["answer"].strip()
        if not answer_html and not answer_text:
            continue
        body = clean_answer_html(answer_html) if answer_html else ""
        if not body:
            body = text_to_html(answer_text)
        title = " ".join(row["question"].split())
        slug = unique_slug(slugify(title), slugs)
        year, month, day = row["last_update"].strip().split("/")
        entries.append(
            Entry(
                number=len(entries) + 1,
                slug=slug,
                title=title,
                section=fix_category(row["category"]),
                body_html=body,
                updated=f"{year}-{month}-{day}",
            )
        )
    return entries


def edited_copy(entries: list[Entry]) -> Entry:
    """The controlled edit: a stale copy of a real article that contradicts it (see EDITED_*)."""
    original = next(e for e in entries if e.slug == EDITED_FROM)
    old, new = EDITED_FACT
    if old not in original.body_html:
        raise SystemExit(f"controlled edit: {old!r} not found in {EDITED_FROM}")
    return Entry(
        number=len(entries) + 1,
        slug=slugify(EDITED_TITLE),
        title=EDITED_TITLE,
        section="How to Protect Yourself",
        body_html=original.body_html.replace(old, new) + "\n" + EDITED_LINKS,
        updated=EDITED_UPDATED,
    )


def fix_category(category: str) -> str:
    category = " ".join(category.split())
    category = _FILL_DOWN.sub(r"\g<1>19", category)
    return CATEGORY_FIXES.get(category, category)


def clean_answer_html(raw: str) -> str:
    """Repair the scrape's artifacts and keep only simple, attribute-free markup (plus hrefs)."""
    raw = raw.replace('\\"', '"')  # some rows carry JSON-escaped quotes inside attributes
    raw = re.sub(r"^>\s*(?=<)", "", raw)  # a stray '>' before the first tag
    if re.match(r"^p>", raw):  # the first '<' was cut off
        raw = "<" + raw
    soup = BeautifulSoup(raw, "lxml")
    root = soup.body or soup
    for span in root.find_all("span"):
        classes = set(span.get("class") or [])
        if classes & DROP_SPAN_CLASSES or span.get("aria-hidden") == "true":
            span.decompose()
    for tag in root.find_all(True):
        if tag.name not in ALLOWED_TAGS:
            tag.unwrap()
            continue
        href = tag.get("href") if tag.name == "a" else None
        tag.attrs = {}
        if isinstance(href, str) and href.strip():
            href = href.strip()
            # Site-relative links pointed into cdc.gov; keep them working outside it.
            tag["href"] = CDC_ORIGIN + href if href.startswith("/") else href
    # Loose text at the top level (rows without a leading <p>) becomes its own paragraph.
    blocks: list[str] = []
    loose: list[str] = []
    for child in list(root.children):
        if isinstance(child, Tag) and child.name in {"p", "ul", "ol"}:
            if "".join(loose).strip():
                blocks.append(f"<p>{' '.join(''.join(loose).split())}</p>")
            loose = []
            blocks.append(normalise_block(child))
        elif isinstance(child, NavigableString | Tag):
            loose.append(str(child))
    if "".join(loose).strip():
        blocks.append(f"<p>{' '.join(''.join(loose).split())}</p>")
    return "\n".join(b for b in blocks if BeautifulSoup(b, "lxml").get_text(strip=True))


def normalise_block(tag: Tag) -> str:
    text = str(tag).replace("\xa0", " ")
    return re.sub(r"[ \t\r\n]+", " ", text).replace("> <li>", ">\n<li>").replace("</li> </", "</li>\n</")


def text_to_html(text: str) -> str:
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "\n".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)


def slugify(text: str, limit: int = 70) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(slug) > limit:
        slug = slug[:limit].rsplit("-", 1)[0]
    return slug or "article"


def unique_slug(slug: str, taken: set[str]) -> str:
    # The source repeats three questions; a real help center has such duplicates too, so they are kept.
    candidate, n = slug, 2
    while candidate in taken:
        candidate, n = f"{slug}-{n}", n + 1
    taken.add(candidate)
    return candidate


def related(entries: list[Entry]) -> dict[int, list[Entry]]:
    """The next few articles of the same section, wrapping around, so every multi-article section links up."""
    by_section: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_section[entry.section].append(entry)
    result: dict[int, list[Entry]] = {}
    for members in by_section.values():
        for i, entry in enumerate(members):
            others = [members[(i + k) % len(members)] for k in range(1, len(members))]
            result[entry.number] = others[:RELATED_PER_ARTICLE]
    return result


def section_slug(section: str) -> str:
    return "section-" + slugify(section)


# --- static site -------------------------------------------------------------------------------------

STYLE = """body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b}
header,footer{background:#0b3954;color:#fff;padding:.75rem 1.5rem}
header a,footer a{color:#fff}
nav ul{list-style:none;margin:0;padding:0;display:flex;gap:1rem}
.breadcrumbs ol{list-style:none;display:flex;gap:.5rem;padding:0}
main{display:flex;gap:2rem;max-width:60rem;margin:0 auto;padding:1rem 1.5rem}
article{flex:3}
aside{flex:1;font-size:.9rem}
"""


def page_head(title: str, extra: str, css_href: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en-US">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} | {SITE_NAME}</title>
{extra}<link rel="stylesheet" href="{css_href}">
<style>.skip-link{{position:absolute;left:-999px}}</style>
</head>
"""


def site_header(root: str, sections: list[str]) -> str:
    items = "\n".join(
        f'<li><a href="{root}index.html#{section_slug(s)}">{html.escape(s)}</a></li>' for s in sections[:5]
    )
    return f"""<a class="skip-link" href="#main-content">Skip to main content</a>
<header class="site-header">
<a class="brand" href="{root}index.html">{SITE_NAME}</a>
<nav aria-label="Main">
<ul>
<li><a href="{root}index.html">Home</a></li>
{items}
</ul>
</nav>
<form role="search" action="{root}search.html"><input type="search" name="q" aria-label="Search"></form>
</header>
"""


def site_footer(root: str) -> str:
    return f"""<footer class="site-footer">
<p>Answers by the U.S. Centers for Disease Control and Prevention (CDC), March 2020.
Sample data for kbcurator.</p>
<nav aria-label="Footer"><a href="{root}index.html">Home</a> · <a href="{root}sitemap.xml">Sitemap</a></nav>
</footer>
<script>window.kbAnalytics = window.kbAnalytics || []; kbAnalytics.push(["pageview"]);</script>
</body>
</html>
"""


def article_page(
    entry: Entry, rel: list[Entry], section_articles: list[Entry], sections: list[str], base_url: str
) -> str:
    title = html.escape(entry.title)
    section = html.escape(entry.section)
    canonical = f"{base_url}/articles/{entry.slug}.html"
    extra = (
        f'<meta name="kb:section" content="{html.escape(entry.section, quote=True)}">\n'
        f'<meta property="article:modified_time" content="{entry.updated}T00:00:00Z">\n'
        f'<link rel="canonical" href="{canonical}">\n'
    )
    related_html = ""
    if rel:
        items = "\n".join(f'<li><a href="{r.slug}.html">{html.escape(r.title)}</a></li>' for r in rel)
        related_html = (
            f'<section class="related-articles">\n<h2>Related articles</h2>\n<ul>\n{items}\n</ul>\n</section>\n'
        )
    sidebar = "\n".join(
        f'<li><a href="{s.slug}.html">{html.escape(s.title)}</a></li>' for s in section_articles if s is not entry
    )
    return (
        page_head(entry.title, extra, "../assets/style.css")
        + "<body>\n"
        + site_header("../", sections)
        + f"""<nav class="breadcrumbs" aria-label="Breadcrumb">
<ol>
<li><a href="../index.html">Home</a></li>
<li><a href="../index.html#{section_slug(entry.section)}">{section}</a></li>
</ol>
</nav>
<main id="main-content">
<article class="article">
<h1 class="article-title">{title}</h1>
<div class="article-body">
{entry.body_html}
</div>
{related_html}</article>
<aside class="section-articles">
<h2>In this section</h2>
<ul>
{sidebar}
</ul>
</aside>
</main>
"""
        + site_footer("../")
    )


def index_page(entries: list[Entry], sections: list[str], base_url: str) -> str:
    parts = []
    for section in sections:
        items = "\n".join(
            f'<li><a href="articles/{e.slug}.html">{html.escape(e.title)}</a></li>'
            for e in entries
            if e.section == section
        )
        parts.append(
            f'<section id="{section_slug(section)}">\n<h2>{html.escape(section)}</h2>\n<ul>\n{items}\n</ul>\n</section>'
        )
    body = "\n".join(parts)
    extra = f'<link rel="canonical" href="{base_url}/index.html">\n'
    return (
        page_head("All articles", extra, "assets/style.css")
        + "<body>\n"
        + site_header("", sections)
        + f"""<main id="main-content">
<h1>{SITE_NAME}</h1>
<p>Frequently asked questions about COVID-19, as answered by the CDC in March 2020.</p>
{body}
</main>
"""
        + site_footer("").replace(
            '<a href="sitemap.xml">Sitemap</a>',
            '<a href="sitemap.xml">Sitemap</a> · <a href="private/editor-notes.html">Editors</a>',
        )
    )


def private_page() -> str:
    return (
        page_head(PRIVATE_TITLE, '<meta name="robots" content="noindex">\n', "../assets/style.css")
        + "<body>\n"
        + f"""<main id="main-content">
<article>
<h1>{html.escape(PRIVATE_TITLE)}</h1>
{PRIVATE_BODY}
</article>
</main>
"""
        + site_footer("../")
    )


def write_site(out: Path, entries: list[Entry], base_url: str) -> None:
    sections = sorted({e.section for e in entries})
    rel = related(entries)
    by_section: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_section[entry.section].append(entry)
    (out / "articles").mkdir(parents=True)
    (out / "assets").mkdir()
    (out / "private").mkdir()
    (out / "assets" / "style.css").write_text(STYLE, encoding="utf-8")
    for entry in entries:
        page = article_page(entry, rel[entry.number], by_section[entry.section], sections, base_url)
        (out / "articles" / f"{entry.slug}.html").write_text(page, encoding="utf-8")
    (out / "index.html").write_text(index_page(entries, sections, base_url), encoding="utf-8")
    (out / "private" / "editor-notes.html").write_text(private_page(), encoding="utf-8")
    urls = [f"<url><loc>{xml_escape(base_url)}/index.html</loc></url>"]
    urls += [
        f"<url><loc>{xml_escape(base_url)}/articles/{e.slug}.html</loc><lastmod>{e.updated}</lastmod></url>"
        for e in entries
    ]
    sitemap = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n' + "\n".join(urls) + "\n</urlset>\n"
    )
    (out / "sitemap.xml").write_text(sitemap, encoding="utf-8")
    robots = f"User-agent: *\nDisallow: /private/\nAllow: /\n\nSitemap: {base_url}/sitemap.xml\n"
    (out / "robots.txt").write_text(robots, encoding="utf-8")


# --- Zendesk export ----------------------------------------------------------------------------------


def zendesk_time(iso_day: str) -> str:
    return f"{iso_day}T00:00:00Z"


def write_zendesk(out: Path, entries: list[Entry]) -> None:
    out.mkdir(parents=True)
    sections = sorted({e.section for e in entries})
    section_ids = {name: 360000100000 + i for i, name in enumerate(sections, start=1)}
    api = f"{ZENDESK_BASE}/api/v2/help_center"
    section_records = [
        {
            "id": section_ids[name],
            "url": f"{api}/en-us/sections/{section_ids[name]}.json",
            "html_url": f"{ZENDESK_BASE}/hc/en-us/sections/{section_ids[name]}-{slugify(name)}",
            "category_id": 360000000001,
            "position": position,
            "sorting": "manual",
            "created_at": zendesk_time(entries[0].updated),
            "updated_at": zendesk_time(entries[0].updated),
            "name": name,
            "description": "",
            "locale": LOCALE,
            "source_locale": LOCALE,
            "outdated": False,
            "parent_section_id": None,
            "theme_template": "section_page",
        }
        for position, name in enumerate(sections)
    ]
    write_json(
        out / "sections.json",
        {
            "sections": section_records,
            "next_page": None,
            "previous_page": None,
            "count": len(section_records),
            "page": 1,
            "per_page": 100,
            "page_count": 1,
            "sort_by": "position",
            "sort_order": "asc",
        },
    )

    def record(
        article_id: int,
        slug: str,
        title: str,
        body: str,
        section_id: int,
        updated: str,
        position: int,
        draft: bool,
    ) -> dict[str, object]:
        stamp = zendesk_time(updated)
        return {
            "id": article_id,
            "url": f"{api}/en-us/articles/{article_id}.json",
            "html_url": f"{ZENDESK_BASE}/hc/en-us/articles/{article_id}-{slug}",
            "author_id": 360000900001,
            "comments_disabled": True,
            "draft": draft,
            "promoted": False,
            "position": position,
            "vote_sum": 0,
            "vote_count": 0,
            "section_id": section_id,
            "created_at": stamp,
            "updated_at": stamp,
            "name": title,
            "title": title,
            "source_locale": LOCALE,
            "locale": LOCALE,
            "outdated": False,
            "outdated_locales": [],
            "edited_at": stamp,
            "user_segment_id": None,
            "permission_group_id": 360000800001,
            "content_tag_ids": [],
            "label_names": ["cdc", "covid-19"],
            "body": body,
        }

    records = [
        record(
            360001000000 + e.number,
            e.slug,
            e.title,
            e.body_html,
            section_ids[e.section],
            e.updated,
            e.number,
            draft=False,
        )
        for e in entries
    ]
    # One unpublished draft (our own text), placed mid-export so a reader must skip it, not stop.
    middle = len(records) // 2
    records.insert(
        middle,
        record(
            360001999999,
            slugify(PRIVATE_TITLE),
            PRIVATE_TITLE,
            PRIVATE_BODY,
            section_ids[sections[0]],
            entries[0].updated,
            0,
            draft=True,
        ),
    )
    pages = [records[i : i + PER_PAGE] for i in range(0, len(records), PER_PAGE)]
    names = ["articles.json"] + [f"articles_page{n}.json" for n in range(2, len(pages) + 1)]
    for number, (name, chunk) in enumerate(zip(names, pages, strict=True), start=1):
        # In an export, next_page names the file beside this one; the live API gives an absolute URL.
        write_json(
            out / name,
            {
                "articles": chunk,
                "next_page": names[number] if number < len(pages) else None,
                "previous_page": names[number - 2] if number > 1 else None,
                "count": len(records),
                "page": number,
                "per_page": PER_PAGE,
                "page_count": len(pages),
                "sort_by": "position",
                "sort_order": "asc",
            },
        )


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# --- Jekyll Markdown ---------------------------------------------------------------------------------


def html_to_markdown(fragment: str) -> str:
    """A small converter for the cleaned answer markup (p, a, ul/ol/li, strong, em, sup, br)."""
    soup = BeautifulSoup(fragment, "lxml")
    root = soup.body or soup
    blocks: list[str] = []
    for child in root.children:
        if isinstance(child, Tag):
            blocks.append(block_markdown(child, 0))
        elif str(child).strip():
            blocks.append(" ".join(str(child).split()))
    return "\n\n".join(b for b in blocks if b.strip())


def block_markdown(tag: Tag, depth: int) -> str:
    if tag.name in {"ul", "ol"}:
        lines = []
        for n, li in enumerate(tag.find_all("li", recursive=False), start=1):
            marker = f"{n}." if tag.name == "ol" else "-"
            inline_parts, nested = [], []
            for part in li.children:
                if isinstance(part, Tag) and part.name in {"ul", "ol"}:
                    nested.append(block_markdown(part, depth + 1))
                else:
                    inline_parts.append(inline_markdown(part))
            lines.append("    " * depth + f"{marker} " + " ".join("".join(inline_parts).split()))
            lines.extend(nested)
        return "\n".join(lines)
    return " ".join(inline_markdown(tag).split())


def inline_markdown(node: object) -> str:
    if isinstance(node, NavigableString):
        return str(node).replace("*", r"\*").replace("_", r"\_")
    if not isinstance(node, Tag):
        return ""
    inner = "".join(inline_markdown(c) for c in node.children)
    if node.name == "a" and node.get("href"):
        return f"[{inner.strip()}]({node['href']})"
    if node.name == "strong":
        return f"**{inner.strip()}** " if inner.strip() else ""
    if node.name == "em":
        return f"*{inner.strip()}* " if inner.strip() else ""
    if node.name == "br":
        return "  \n"
    return inner


def write_markdown(out: Path, entries: list[Entry]) -> None:
    out.mkdir(parents=True)
    chosen: list[Entry] = []
    for section in MARKDOWN_SECTIONS:
        chosen += [e for e in entries if e.section == section][:MARKDOWN_PER_SECTION]
    for entry in chosen:
        siblings = [e for e in chosen if e.section == entry.section and e is not entry]
        front = {
            "layout": "article",
            "title": entry.title,
            "category": entry.section,
            "updated": date.fromisoformat(entry.updated),  # unquoted YAML date, as Jekyll sites write it
            "locale": LOCALE,
            "permalink": f"/articles/{entry.slug}.html",
        }
        # Jekyll features the parser must cope with: {{ site.baseurl }} links, {% include %},
        # {% comment %} blocks and kramdown attribute lists.
        lines = [
            "---",
            yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000).strip(),
            "---",
            "{% comment %}Generated by build_sample.py from the CDC FAQ; edit the generator, not this file."
            "{% endcomment %}",
            "",
            html_to_markdown(entry.body_html),
            "",
        ]
        if siblings:
            lines += ["## Related articles", ""]
            lines += [f"- [{s.title}]({{{{ site.baseurl }}}}/articles/{s.slug}.html)" for s in siblings]
            lines += [""]
        lines += [
            "[Back to all articles]({{site.baseurl}}/index.html){: .back-link}",
            "",
            "{% include article-footer.html %}",
            "",
        ]
        (out / f"{entry.slug}.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
