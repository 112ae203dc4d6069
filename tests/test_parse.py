"""parse_page on the bundled sample and on small pages written to show one behaviour each."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kbcurator.ingest.parse import normalise_url, parse_page, strip_liquid
from kbcurator.records import Article, RawPage, Rejected, make_article_id, sha256_hex

SAMPLE = Path(__file__).resolve().parents[1] / "kb_sources" / "sample_help_center"
NOVEL = "articles/what-is-a-novel-coronavirus.html"


def _article(result: Article | Rejected) -> Article:
    assert isinstance(result, Article), result
    return result


def _html_page(
    html: str,
    location: str = "https://help.example.com/hc/a.html",
    *,
    updated_at: datetime | None = None,
    fields: tuple[tuple[str, str], ...] = (),
) -> RawPage:
    return RawPage("kb", location, html, "html", updated_at=updated_at, fields=fields)


def _sample_page(relative: str = NOVEL, location: str | None = None) -> RawPage:
    html = (SAMPLE / "site" / relative).read_text(encoding="utf-8")
    return _html_page(html, location=location or relative)


def test_sample_article_keeps_the_answer_and_drops_page_chrome() -> None:
    article = _article(parse_page(_sample_page()))

    assert article.title == "What is a novel coronavirus?"
    assert article.section == "Coronavirus Disease 2019 Basics"
    assert article.locale == "en-us"
    assert article.updated_at == datetime(2020, 3, 17, tzinfo=UTC)
    assert article.text.startswith("A novel coronavirus is a new coronavirus that has not been previously")
    # Header nav, breadcrumbs, the search form, the sidebar, the footer and the script are all chrome.
    for chrome in (
        "Skip to main content",
        "Air or Cruise Travel",
        "In this section",
        "Sample data for",
        "kbAnalytics",
    ):
        assert chrome not in article.text
    for tag in ("<nav", "<header", "<footer", "<aside", "<script", "<form", "<h1"):
        assert tag not in article.body_html
    # The title lives in Article.title only, not repeated as the first line of the text.
    assert "What is a novel coronavirus?" not in article.text
    # Paragraphs are separated by a blank line, whitespace inside them collapsed.
    paragraphs = article.text.split("\n\n")
    assert paragraphs[1].startswith("A diagnosis with coronavirus 229E")
    assert "  " not in article.text


def test_sample_article_links_resolve_against_the_file_path_or_the_base_url() -> None:
    relative = _article(parse_page(_sample_page()))
    assert relative.url == NOVEL  # no base: the file path, as the folder source gives it
    assert relative.links == (
        "https://www.cdc.gov/coronavirus/types.html",
        "articles/why-is-the-disease-being-called-coronavirus-disease-2019-covid-19.html",
        "articles/why-might-someone-blame-or-avoid-individuals-and-groups-create-stigma.html",
    )

    served = _article(parse_page(_sample_page(), base_url="http://127.0.0.1:8765/"))
    # The page's canonical link is on the same host, so it is taken.
    assert served.url == "http://127.0.0.1:8765/articles/what-is-a-novel-coronavirus.html"
    assert served.links[1] == (
        "http://127.0.0.1:8765/articles/why-is-the-disease-being-called-coronavirus-disease-2019-covid-19.html"
    )
    assert served.article_id != relative.article_id


PAGE = """<!DOCTYPE html>
<html lang="de_DE">
<head>
  <title>Reset your password - Acme Help</title>
  <link rel="canonical" href="HTTPS://Help.Example.COM/hc/reset#top">
  <style>p { color: red }</style>
</head>
<body>
  <header><h1 class="logo">Acme Help</h1><nav><a href="/hc">Home</a></nav></header>
  <div role="navigation"><a href="/elsewhere">Skip me</a></div>
  <ol class="breadcrumbs"><li><a href="/hc">Help Center</a></li><li><a href="/hc/accounts">Accounts</a></li>
      <li>Reset your password</li></ol>
  <main>
    <article>
      <h1>Reset   your password</h1>
      <nav class="toc"><a href="/hc/toc">On this page</a></nav>
      <p>Open <a href="settings.html#security">Settings</a> and choose
         <b>Security</b>.<br>Then click Reset.</p>
      <p class="hidden-note" hidden>Internal note</p>
      <ul><li>Works on <a href="https://other.example.org/apps">mobile</a></li>
          <li><a href="settings.html">Settings again</a> <a href="#top">top</a></li></ul>
      <p>Mail <a href="mailto:help@example.com">us</a> or <a href="javascript:void(0)">chat</a>.</p>
      <table><tr><th>Plan</th><th>Limit</th></tr><tr><td>Free</td><td>3</td></tr></table>
    </article>
    <aside><a href="/hc/related">Related</a></aside>
  </main>
  <footer><a href="/terms">Terms</a></footer>
</body>
</html>"""


def test_metadata_comes_from_the_markup_when_the_source_gives_none() -> None:
    article = _article(parse_page(_html_page(PAGE, location="https://help.example.com/hc/articles/12")))

    assert article.title == "Reset your password"  # the article's h1, not the logo's or <title>
    assert article.section == "Accounts"  # the breadcrumb above the page itself
    assert article.locale == "de-de"
    assert article.url == "https://help.example.com/hc/reset"  # same-host canonical, normalised
    # A link into another page keeps its fragment (the anchor may be gone while the page is not); "#top" is
    # a link into the page itself, not an outbound one.
    assert article.links == (
        "https://help.example.com/hc/articles/settings.html#security",
        "https://other.example.org/apps",
        "https://help.example.com/hc/articles/settings.html",
    )
    assert article.text == (
        "Open Settings and choose Security.\nThen click Reset.\n\nWorks on mobile\n\nSettings again top\n\n"
        "Mail us or chat.\n\nPlan | Limit\n\nFree | 3"
    )
    assert "Internal note" not in article.text
    assert "On this page" not in article.text  # a nav inside the article is chrome too


def test_fields_from_the_source_win_over_the_markup() -> None:
    page = _html_page(
        PAGE,
        location="https://help.example.com/hc/articles/12",
        fields=(("title", "Password reset"), ("section", "Security"), ("locale", "fr_CA")),
    )
    article = _article(parse_page(page))

    assert (article.title, article.section, article.locale) == ("Password reset", "Security", "fr-ca")
    # The h1 no longer matches the title, so it is part of the content.
    assert article.text.startswith("Reset your password\n\nOpen Settings")


def test_canonical_on_another_host_is_ignored() -> None:
    html = PAGE.replace("HTTPS://Help.Example.COM/hc/reset#top", "https://mirror.example.net/reset")
    article = _article(parse_page(_html_page(html, location="https://Help.Example.com:443/hc/articles/12#x")))

    assert article.url == "https://help.example.com/hc/articles/12"


def test_title_falls_back_to_the_title_tag_and_locale_to_the_default() -> None:
    html = (
        "<html><head><title>Billing FAQ</title></head><body><div id='content'><p>Pay monthly.</p></div></body></html>"
    )
    article = _article(parse_page(_html_page(html), default_locale="en_GB"))

    assert (article.title, article.locale, article.text) == ("Billing FAQ", "en-gb", "Pay monthly.")


MARKDOWN = """---
title: "Export your data"
category: Accounts
lang: en_US
last_modified_at: 2023-05-02 14:30:00 +0200
permalink: /docs/export/
---
{% comment %}Not for readers.{% endcomment %}
Go to [settings]({{ site.baseurl }}/settings/){:target="_blank"} and pick **Export**.

{% callout info %}
Exports take a few minutes.
{% endcallout %}

See [the guide]({{ '/guides/export.html' | relative_url }}), [a sibling](../import/) and
{% raw %}`{{ not_liquid }}`{% endraw %}.

| Format | Size |
|---|---|
| CSV | small |

```
curl {{ site.url }}/api
```
"""


def test_markdown_front_matter_and_liquid() -> None:
    page = RawPage("kb", "docs/export.md", MARKDOWN, "markdown")
    article = _article(parse_page(page))

    assert article.title == "Export your data"
    assert article.section == "Accounts"
    assert article.locale == "en-us"
    assert article.updated_at == datetime(2023, 5, 2, 12, 30, tzinfo=UTC)
    assert article.url == "/docs/export/"  # the permalink, resolved like a site-relative link
    # Relative links resolve from the permalink, as a browser would on the published page.
    assert article.links == ("/settings/", "/guides/export.html", "/docs/import/")
    assert "Not for readers" not in article.text
    assert "Exports take a few minutes." in article.text
    assert "{{ not_liquid }}" in article.text  # {% raw %} keeps its content verbatim
    assert "CSV | small" in article.text
    assert "curl /api" in article.text
    for leftover in ("{%", "{:", "site.baseurl", "callout"):
        assert leftover not in article.text
        assert leftover not in article.body_html
    assert "<table>" in article.body_html


def test_sample_markdown_article() -> None:
    path = SAMPLE / "markdown" / "how-does-the-virus-spread.md"
    article = _article(parse_page(RawPage("md", "how-does-the-virus-spread.md", path.read_text("utf-8"), "markdown")))

    assert article.title == "How does the virus spread?"
    assert article.section == "How It Spreads"
    assert article.updated_at == datetime(2020, 3, 17, tzinfo=UTC)  # an unquoted YAML date
    assert article.url == "/articles/how-does-the-virus-spread.html"
    assert "/articles/what-is-the-source-of-the-virus.html" in article.links
    assert article.text.startswith("This virus was first detected in Wuhan City")


def test_markdown_without_front_matter_takes_its_title_from_the_first_heading() -> None:
    article = _article(parse_page(RawPage("kb", "a.md", "# Install\n\nRun the installer.\n", "markdown")))

    assert (article.title, article.text) == ("Install", "Run the installer.")


def test_strip_liquid_keeps_link_targets_site_relative() -> None:
    assert strip_liquid("[a]({{site.baseurl}}/x) [b]({% link _docs/y.md %})") == "[a](/x) [b](/_docs/y.md)"
    assert strip_liquid("[b]({% link _docs/y.md %})", site_url="https://h.example/help") == (
        "[b](https://h.example/help/_docs/y.md)"
    )
    assert strip_liquid("## Setup {#setup}\n\nText {: .note}") == "## Setup\n\nText "


@pytest.mark.parametrize(
    ("page", "reason"),
    [
        (
            _html_page("<html><body><nav><a href='/'>Home</a></nav><main><h1>Title</h1></main></body></html>"),
            "no main content",
        ),
        (
            _html_page("<html><body><header><p>Logo</p></header><footer>(c)</footer></body></html>"),
            "no main content",
        ),
        (_html_page("<html><body><main><p>Text without any title.</p></main></body></html>"), "no title"),
        (_html_page("   "), "empty page"),
        (RawPage("kb", "bad.md", "---\ntitle: [unclosed\n---\nBody\n", "markdown"), "invalid front matter"),
        (RawPage("kb", "x.pdf", "%PDF-1.7", "pdf"), "unsupported content kind"),
        (RawPage("kb", "gone.docx", "/nonexistent/gone.docx", "docx"), "docx file not found"),
    ],
)
def test_pages_without_content_or_title_are_rejected_not_raised(page: RawPage, reason: str) -> None:
    result = parse_page(page)

    assert isinstance(result, Rejected)
    assert (result.stage, result.record_id, result.source_id) == ("parse", page.location, "kb")
    assert reason in result.reason


def test_ids_and_hashes_are_deterministic() -> None:
    page = _sample_page()
    first, second = _article(parse_page(page)), _article(parse_page(page))
    assert (first.article_id, first.content_hash) == (second.article_id, second.content_hash)
    assert first.article_id == make_article_id("kb", NOVEL)
    assert first.content_hash == sha256_hex(first.title + "\n" + first.text)

    edited = _html_page(page.content.replace("has not been previously identified", "was found"), location=NOVEL)
    changed = _article(parse_page(edited))
    assert changed.article_id == first.article_id
    assert changed.content_hash != first.content_hash

    # Chrome is not content: a new footer must not look like an edit.
    rechromed = _html_page(page.content.replace("Sample data for kbcurator.", "Updated footer."), location=NOVEL)
    assert _article(parse_page(rechromed)).content_hash == first.content_hash


def test_updated_at_prefers_the_source_then_the_page_then_the_file_time() -> None:
    html = (SAMPLE / "site" / NOVEL).read_text(encoding="utf-8")
    mtime = (("file_mtime", "2024-01-01T00:00:00+00:00"),)
    from_source = datetime(2021, 6, 1, 8, 0)  # naive: taken as UTC

    assert _article(parse_page(_html_page(html, updated_at=from_source, fields=mtime))).updated_at == datetime(
        2021, 6, 1, 8, 0, tzinfo=UTC
    )
    assert _article(parse_page(_html_page(html, fields=mtime))).updated_at == datetime(2020, 3, 17, tzinfo=UTC)
    undated = html.replace('property="article:modified_time"', 'property="x"')
    assert _article(parse_page(_html_page(undated, fields=mtime))).updated_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert _article(parse_page(_html_page(undated))).updated_at is None


def test_normalise_url() -> None:
    assert normalise_url("HTTP://Example.COM:80#frag") == "http://example.com/"
    assert normalise_url("https://a.example/x?q=1#f") == "https://a.example/x?q=1"
    assert normalise_url("articles/a.html#top") == "articles/a.html"


def test_docx_is_partitioned_into_headings_paragraphs_and_lists(tmp_path: Path) -> None:
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_heading("Reset your password", 0)
    document.add_paragraph("Open the settings page and choose Security.")
    document.add_heading("On mobile", 1)
    document.add_paragraph("Tap the menu.", style="List Bullet")
    document.add_paragraph("Tap Reset.", style="List Bullet")
    path = tmp_path / "reset.docx"
    document.save(str(path))

    article = _article(parse_page(RawPage("kb", "reset.docx", str(path), "docx")))

    assert article.title == "Reset your password"
    assert article.text == "Open the settings page and choose Security.\n\nOn mobile\n\nTap the menu.\n\nTap Reset."
    assert "<h2>On mobile</h2>" in article.body_html
    assert "<li>Tap Reset.</li>" in article.body_html


def test_related_articles_block_counts_as_links_but_not_as_text() -> None:
    html = (
        "<html><body><main><article><h1>Reset your password</h1><p>Open Settings and choose Reset.</p>"
        "<section class='related-articles'><h2>Related articles</h2><ul>"
        "<li><a href='/articles/sign-in'>Sign in</a></li></ul></section></article></main></body></html>"
    )
    article = _article(parse_page(_html_page(html)))
    assert "Related articles" not in article.text and "related" not in article.body_html
    assert any(link.endswith("/articles/sign-in") for link in article.links)


def test_anchor_targets_keep_their_id_and_name_in_body_html() -> None:
    html = (
        "<html><body><main><h1>Sync</h1><h2 id='manual-sync' class='heading'>Sync manually</h2>"
        "<p><a name='faq-1' target='_blank'></a>Open the app.</p>"
        "<div class='tab-pane' id='mobile' role='tabpanel' data-toggle='tab'><p>Pull to refresh.</p></div>"
        "</main></body></html>"
    )
    article = _article(parse_page(_html_page(html)))

    assert '<h2 id="manual-sync">Sync manually</h2>' in article.body_html
    assert '<a name="faq-1"></a>' in article.body_html
    assert '<div id="mobile"><p>Pull to refresh.</p></div>' in article.body_html
    for presentational in ("class=", "role=", "data-toggle", "target="):
        assert presentational not in article.body_html


def test_links_to_other_pages_keep_their_fragment_and_links_into_the_page_are_not_outbound() -> None:
    html = (
        "<html><head><link rel='canonical' href='https://help.example.com/hc/sync#top'></head><body><main>"
        "<h1>Sync</h1><p>See <a href='#steps'>the steps</a>, <a href='/hc/sync#faq'>the FAQ</a>,"
        " <a href='vault#Export-Data'>exports</a>, <a href='vault#Export-Data'>again</a>,"
        " <a href='vault#'>the vault</a> and <a href='HTTPS://Help.Example.com:443/hc/vault#import'>imports</a>.</p>"
        "</main></body></html>"
    )
    article = _article(parse_page(_html_page(html, location="https://help.example.com/hc/sync?from=nav#x")))

    assert article.links == (
        "https://help.example.com/hc/vault#Export-Data",  # the fragment keeps its case: anchors are case-sensitive
        "https://help.example.com/hc/vault",
        "https://help.example.com/hc/vault#import",
    )
    # The article's own URL and id still come without a fragment.
    assert article.url == "https://help.example.com/hc/sync"
    assert article.article_id == make_article_id("kb", "https://help.example.com/hc/sync")


def test_kramdown_heading_ids_become_ids_and_leave_the_text() -> None:
    text = (
        "---\ntitle: Identity theft\n---\n## What to do if your identity is stolen {#identity-stolen}\n\nAct fast.\n\n"
        "### Who to call {: #who-to-call .wide}\n\nYour bank {: .note}\n\n#### Plain heading {: .wide}\n\nDone.\n"
    )
    article = _article(parse_page(RawPage("kb", "theft.md", text, "markdown")))

    assert article.text == (
        "What to do if your identity is stolen\n\nAct fast.\n\nWho to call\n\nYour bank\n\nPlain heading\n\nDone."
    )
    assert '<h2 id="identity-stolen">What to do if your identity is stolen</h2>' in article.body_html
    assert '<h3 id="who-to-call">Who to call</h3>' in article.body_html
    assert "<h4>Plain heading</h4>" in article.body_html
    assert "{" not in article.body_html


def test_markdown_inside_html_blocks_is_rendered_when_jekyll_would_render_it() -> None:
    text = """---
title: Sync your vault
---
<div class="tab-content">
  <div class="tab-pane" id="web" role="tabpanel">
{% capture web_steps %}
#### Web vault

Open **Settings** and see [the sync guide](/article/sync/#web).
{% endcapture %}
{{ web_steps | markdownify }}
  </div>
</div>

<div class="note" markdown="1">
Read [the FAQ](/article/faq/) first.
</div>
"""
    article = _article(parse_page(RawPage("kb", "sync.md", text, "markdown"), base_url="https://help.example.com/"))

    assert article.links == ("https://help.example.com/article/sync/#web", "https://help.example.com/article/faq/")
    assert article.text == "Web vault\n\nOpen Settings and see the sync guide.\n\nRead the FAQ first."
    assert '<div id="web">\n<h4>Web vault</h4>' in article.body_html


def test_liquid_link_tags_point_at_the_url_the_folder_source_gives_the_linked_file(tmp_path: Path) -> None:
    from kbcurator.ingest.folder import read_folder
    from kbcurator.settings import SourceConfig

    (tmp_path / "_articles" / "vault").mkdir(parents=True)
    (tmp_path / "_articles" / "vault" / "export.md").write_text(
        "---\ntitle: Export\n---\nSee [how to import]({% link _articles/vault/import.md %}#json).\n", "utf-8"
    )
    (tmp_path / "_articles" / "vault" / "import.md").write_text(
        "---\ntitle: Import\n---\n## JSON\n\nUpload.\n", "utf-8"
    )
    source = SourceConfig(id="kb", kind="folder", location=str(tmp_path), base_url="https://help.example.com/help/")
    pages = [p for p in read_folder(source) if isinstance(p, RawPage)]
    export, imported = (_article(parse_page(p, base_url=source.base_url)) for p in pages)

    assert export.links == (f"{imported.url}#json",)
    assert imported.url == "https://help.example.com/help/_articles/vault/import.md"


# --- hostile and oversized pages (hardening) -----------------------------------------------------------

HOSTILE_URL = "javascript:alert(1)//<script>alert(1)</script>"
ARTICLE_HTML = "<html><body><main><h1>Reset</h1><p>Open Settings.</p></main></body></html>"


@pytest.mark.parametrize(
    ("location", "fields", "problem"),
    [
        # A Zendesk html_url is outside input: it becomes the article URL.
        (HOSTILE_URL, (("title", "Reset"),), "not a well-formed URL"),
        ("vbscript:msgbox(1)", (), "scheme 'vbscript' is not http or https"),
        ("data:text/html,<b>x</b>", (), "not a well-formed URL"),
        ("ftp://help.example.com/a", (), "scheme 'ftp' is not http or https"),
        ("https:///no-host", (), "no host"),
        ("https://help.example.com:99999/a", (), "not a well-formed URL"),
        ("https://help.example.com/a b", (), "whitespace"),
        ("//help.example.com/a", (), "no scheme"),
    ],
)
def test_an_article_whose_url_is_not_a_well_formed_url_is_rejected(
    location: str, fields: tuple[tuple[str, str], ...], problem: str
) -> None:
    result = parse_page(_html_page(ARTICLE_HTML, location=location, fields=fields))

    assert isinstance(result, Rejected), result
    assert (result.stage, result.record_id) == ("parse", location)
    assert problem in result.reason
    assert "<script" not in result.reason  # the reason names the problem, not the hostile value


def test_a_javascript_permalink_or_canonical_never_becomes_the_article_url() -> None:
    page = RawPage("kb", "guide.md", "---\ntitle: Guide\npermalink: 'javascript:alert(1)'\n---\nText.\n", "markdown")
    result = parse_page(page, base_url="https://help.example.com/")
    assert isinstance(result, Rejected) and "scheme 'javascript'" in result.reason

    # A declared canonical that is not a URL is not trusted: the page keeps its own URL.
    html = ARTICLE_HTML.replace("<body>", '<head><link rel="canonical" href="javascript:alert(1)"></head><body>')
    article = _article(parse_page(_html_page(html, location="guides/reset.html")))
    assert article.url == "guides/reset.html"


def test_a_locale_that_is_not_a_language_tag_is_dropped_for_the_next_one() -> None:
    hostile = '<html lang="<script>alert(1)</script>"><body><main><h1>Reset</h1><p>Open Settings.</p></main></body>'

    article = _article(parse_page(_html_page(hostile), default_locale="fr-ca"))
    assert article.locale == "fr-ca"  # the source's declared locale
    # A bad locale from the source's own fields falls through to the page's, then to the source's.
    good_lang = hostile.replace('lang="<script>alert(1)</script>"', 'lang="pt_BR"')
    assert _article(parse_page(_html_page(good_lang, fields=(("locale", "en us!"),)))).locale == "pt-br"
    too_long = "en-" + "-".join(["abcdefgh"] * 5)
    assert _article(parse_page(_html_page(hostile, fields=(("locale", too_long),)))).locale == "en-us"
    markdown_page = RawPage(
        "kb", "a.md", "---\ntitle: A\nlang: '\"><img src=x onerror=alert(1)>'\n---\nText.\n", "markdown"
    )
    assert _article(parse_page(markdown_page, default_locale="de")).locale == "de"


def test_body_html_keeps_no_script_data_or_vbscript_targets() -> None:
    html = """<html><body><main><h1>Links</h1>
    <p><a href="javascript:alert(1)">plain</a> <a href="  JaVaScRiPt:alert(2)">spaced</a>
    <a href="java&#x09;script:alert(3)">tabbed</a> <a href="&#106;avascript:alert(4)">entity</a>
    <a href="vbscript:msgbox(5)">vb</a> <a href="data:text/html;base64,PHNjcmlwdD4=">data</a>
    <img src="data:image/svg+xml,<svg onload=alert(6)>" alt="pic"> <img src="javascript:alert(7)" alt="pic2">
    <math href="javascript:alert(8)"><mi>x</mi></math> <base href="javascript:alert(9)">
    <a href="https://example.com/ok" onclick="alert(10)">ok</a> <a href="mailto:help@example.com">mail</a>
    <a href="/relative">rel</a> <img src="/logo.png" alt="logo"></p>
    </main></body></html>"""

    article = _article(parse_page(_html_page(html)))

    lowered = article.body_html.lower()
    for bad in ("javascript", "vbscript", "data:", "alert(", "onclick", "<base"):
        assert bad not in lowered, bad
    # The link text stays; only the target goes. Safe targets are kept.
    for text in ("plain", "spaced", "tabbed", "entity", "vb", "data"):
        assert f">{text}</a>" in article.body_html
    assert 'href="https://example.com/ok"' in article.body_html
    assert 'href="mailto:help@example.com"' in article.body_html
    assert 'href="https://help.example.com/relative"' in article.body_html
    assert 'src="https://help.example.com/logo.png"' in article.body_html
    assert article.links == ("https://example.com/ok", "https://help.example.com/relative")


def _alias_bomb() -> str:
    """The 409-byte front matter that once made a 34.7 MB title: nine levels of nine aliases each."""
    levels = "abcdefghi"
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for previous, name in itertools.pairwise(levels):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    return (
        "---\n"
        + "\n".join(lines)
        + "\ntitle: *i\n---\n# Lol\n\nThe text of the page that comes after the front matter ends\n"
    )


def test_a_yaml_alias_bomb_in_front_matter_is_rejected_quickly_and_in_little_memory() -> None:
    import time
    import tracemalloc

    bomb = _alias_bomb()
    assert len(bomb.encode()) == 409
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = parse_page(RawPage("kb", "lol.md", bomb, "markdown"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert time.perf_counter() - started < 5
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert isinstance(result, Rejected), f"title of {len(getattr(result, 'title', ''))} characters"
    assert (result.stage, result.record_id) == ("parse", "lol.md")
    assert "anchors or aliases" in result.reason


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("---\ntitle: " + "T" * 3_000 + "\n---\nText.\n", "front matter 'title' too long"),
        ("---\ndescription: '" + "x" * 70_000 + "'\ntitle: T\n---\nText.\n", "front matter too large"),
        ("---\nbase: &b {title: T}\nother: *b\n---\nText.\n", "anchors or aliases"),
        ("---\n<<: &m {title: T}\n---\nText.\n", "anchors or aliases"),
        ("# " + "Long heading " * 50 + "\n\nText.\n", "title too long"),
    ],
)
def test_front_matter_and_titles_have_a_size_budget(content: str, reason: str) -> None:
    result = parse_page(RawPage("kb", "page.md", content, "markdown"))

    assert isinstance(result, Rejected), result
    assert reason in result.reason


def test_an_article_over_the_length_limit_is_rejected_on_its_own() -> None:
    body = "<p>" + "Words of a runaway export. " * 20_000 + "</p>"  # 540,000 characters of text
    long_page = _html_page(f"<html><body><main><h1>Huge</h1>{body}</main></body></html>")

    result = parse_page(long_page)
    assert isinstance(result, Rejected)
    assert result.stage == "parse" and "article too long: 539,999 characters, over the 500,000 limit" in result.reason
    # The limit follows checks.max_article_chars when the caller passes it.
    assert isinstance(parse_page(_html_page(ARTICLE_HTML), max_article_chars=5), Rejected)
    assert isinstance(parse_page(_html_page(ARTICLE_HTML), max_article_chars=50), Article)
    # A raw page far over any article is refused before it is parsed.
    enormous = _html_page("<p>" + "x" * 6_000_000 + "</p>")
    refused = parse_page(enormous)
    assert isinstance(refused, Rejected) and "page too large" in refused.reason
