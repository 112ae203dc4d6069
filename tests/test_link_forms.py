"""Links in the forms a site serves a folder source's files at reach their article without a ``permalink``.

Each help center is a real folder in tmp_path, read by the folder source and parsed by the package, then
checked by the staleness detector: the links a user would write are quiet, a link to a page that does not
exist (or to an anchor the page lacks) is still a finding. The shared DuckDuckGo and Bitwarden help centers
run at the end when ../shared/data is there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from kbcurator.analysis.base import AuditCorpus
from kbcurator.analysis.staleness import StalenessDetector, article_url_forms, page_key
from kbcurator.config.health import StaleSettings
from kbcurator.ingest import read_articles
from kbcurator.ingest.folder import jekyll_permalink
from kbcurator.records import Article
from kbcurator.settings import SourceConfig

SITE = "https://help.example.com/"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def write(root: Path, relative: str, title: str, body: str, front: str = "") -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\ntitle: {title}\n{front}---\n{body}\n", encoding="utf-8")


def broken_links(root: Path, **source: object) -> list[str]:
    """The links the detector calls broken in the folder at ``root``, as written in the findings."""
    articles, _ = read_articles(SourceConfig(id="help", kind="folder", location=str(root), **source))  # type: ignore[arg-type]
    corpus = AuditCorpus(articles=articles, chunks=[], chunk_vectors=np.zeros((0, 0)), run_at=datetime.now(UTC))
    findings = StalenessDetector(StaleSettings()).detect(corpus)
    return sorted(f.evidence[0].link for f in findings if f.check == "broken_link")


@pytest.fixture
def jekyll_help_center(tmp_path: Path) -> Path:
    """A Jekyll help center whose pages link each other in every common form, and to two pages that are gone."""
    write(tmp_path, "_docs/billing/refunds.md", "Refunds", "Refunds within 30 days.\n\n## How to ask\n\nWrite to us.")
    write(tmp_path, "_docs/billing/cancel.md", "Cancel", "Cancel any time.")
    write(tmp_path, "_docs/account/password.md", "Password", "## Reset\n\nUse the reset link.")
    links = [
        "[a]({{ site.baseurl }}/billing/refunds/)",  # /section/slug/
        "[b](/billing/refunds/#how-to-ask)",  # with an anchor the page has
        "[c](/billing/cancel.html)",  # slug.html
        "[d](/docs/account/password)",  # Jekyll's default /:collection/:path
        "[e]({% link _docs/billing/cancel.md %})",  # the file path itself
        "[f](/account/password/#reset)",
        "[g](https://elsewhere.example.org/gone/)",  # external: not checked
        "[gone](/billing/old-plans/)",  # no such page: broken
        "[anchor](/account/password/#change-email)",  # no such anchor: broken
    ]
    write(tmp_path, "_docs/start.md", "Start", "See " + ", ".join(links) + ".")
    return tmp_path


def test_a_jekyll_help_center_without_a_permalink_has_only_its_real_broken_links(jekyll_help_center: Path) -> None:
    assert broken_links(jekyll_help_center, base_url=SITE) == [
        f"{SITE}account/password/#change-email",
        f"{SITE}billing/old-plans/",
    ]


def test_a_declared_permalink_is_exact_and_finds_the_real_broken_links(jekyll_help_center: Path) -> None:
    found = broken_links(jekyll_help_center, base_url=SITE, permalink="/:path/")
    assert f"{SITE}billing/old-plans/" in found
    assert f"{SITE}account/password/#change-email" in found
    assert f"{SITE}billing/refunds/" not in found and f"{SITE}account/password/#reset" not in found
    # The articles are where the pattern serves them, and nowhere else: /:path/ serves no cancel.html.
    assert f"{SITE}billing/cancel.html" in found


def test_without_a_base_url_site_relative_links_reach_the_files(jekyll_help_center: Path) -> None:
    assert broken_links(jekyll_help_center) == ["/account/password/#change-email", "/billing/old-plans/"]


def test_an_article_slug_under_one_common_folder_resolves_and_a_missing_slug_there_is_broken(tmp_path: Path) -> None:
    # Bitwarden's layout: files in section folders, every page served at /article/<file name>/.
    write(tmp_path, "_articles/vault/sharing.md", "Sharing", "Share items.")
    write(tmp_path, "_articles/account/two-step.md", "Two-step", "Turn it on.")
    body = "See [sharing](/article/sharing/), [two-step](/article/two-step/) and [old](/article/install-on-premise/)."
    write(tmp_path, "_articles/account/start.md", "Start", body)
    # /pricing/ is the marketing site, not a folder of articles: not reported.
    write(tmp_path, "_articles/vault/plans.md", "Plans", "Compare [the plans](/pricing/).")
    assert broken_links(tmp_path, base_url="https://vault.example.com/") == [
        "https://vault.example.com/article/install-on-premise/"
    ]


def test_the_front_matter_section_and_the_file_folder_are_section_folders(tmp_path: Path) -> None:
    write(tmp_path, "refunds.md", "Refunds", "Refunds within 30 days.", front="section: Billing Help\n")
    write(tmp_path, "guides/setup.md", "Setup", "Set it up.")
    body = "See [refunds](/billing-help/refunds/), [refunds again](/refunds.html) and [setup](/guides/setup/)."
    write(tmp_path, "start.md", "Start", body)
    assert broken_links(tmp_path, base_url=SITE) == []


def test_an_article_at_its_served_url_answers_only_to_that_url() -> None:
    """A crawled page (or a declared permalink) is where the site serves it: other forms are not served."""
    served = make("https://help.example.com/billing/refunds/")
    source_file = make("https://help.example.com/_docs/billing/cancel.md")
    forms = article_url_forms([served, source_file])
    assert [form.url for form in forms[served.article_id]] == [served.url]
    by_rank: dict[str, int] = {}
    for form in forms[source_file.article_id]:
        by_rank[form.url] = min(form.rank, by_rank.get(form.url, form.rank))
    assert by_rank[source_file.url] == 0
    assert by_rank["https://help.example.com/billing/cancel"] == 1
    assert by_rank["https://help.example.com/docs/billing/cancel.html"] == 1
    assert by_rank["https://help.example.com/doc/cancel"] == 2  # /:collection/:name/, the collection singular
    assert "https://help.example.com/account/cancel" not in by_rank


def test_a_slug_two_files_share_resolves_to_both_and_an_own_url_beats_a_slug_form(tmp_path: Path) -> None:
    write(tmp_path, "_docs/mac/install.md", "Install on Mac", "## Drag\n\nDrag it.")
    write(tmp_path, "_docs/windows/install.md", "Install on Windows", "## Run\n\nRun it.")
    links = "[a](/install/#run), [b](/install/#drag), [c](/install/#nowhere), [d](/mac/install/#run)"
    write(tmp_path, "_docs/start.md", "Start", f"See {links}.")
    # /install/ is either file: an anchor of one of them is fine; /mac/install/ is only the Mac one.
    assert broken_links(tmp_path, base_url=SITE) == [f"{SITE}install/#nowhere", f"{SITE}mac/install/#run"]


def make(url: str) -> Article:
    return Article(url, "help", url, "T", "", "en-us", "", "T", None, "")


@pytest.mark.parametrize(
    ("folder", "site", "collection", "permalink"),
    [
        ("duckduckgo-help-pages", "https://help.duckduckgo.com/", "_docs", "/:path/"),
        ("bitwarden-help", "https://bitwarden.com/", "_articles", "/article/:name/"),
    ],
)
def test_the_shared_help_centers_without_a_permalink_report_no_served_page_as_missing(
    folder: str, site: str, collection: str, permalink: str
) -> None:
    root = SHARED / folder / "articles"
    if not root.is_dir():
        pytest.skip(f"{root} is missing (../shared/data is not part of a user's clone)")
    source = SourceConfig(
        id="help", kind="folder", location=str(root), base_url=site, include=[f"{collection}/**/*.md"]
    )
    articles, _ = read_articles(source)
    corpus = AuditCorpus(articles=articles, chunks=[], chunk_vectors=np.zeros((0, 0)), run_at=datetime.now(UTC))
    findings = [f for f in StalenessDetector(StaleSettings()).detect(corpus) if f.check == "broken_link"]
    missing = {f.evidence[0].link.partition("#")[0] for f in findings if "not an article" in f.evidence[0].detail}
    # Where Jekyll serves each file (the site's permalink setting; a redirect stub is no page, its link is broken)
    # and each page's own front-matter permalink.
    pages = [p for p in (root / collection).rglob("*.md") if "layout: redirect" not in p.read_text(encoding="utf-8")]
    served = {site.rstrip("/") + jekyll_permalink(permalink, p.relative_to(root).as_posix()) for p in pages}
    served |= {a.url for a in articles}
    assert missing, "the help center links pages that do not exist: they must still be found"
    assert not {page_key(url) for url in missing} & {page_key(url) for url in served}
