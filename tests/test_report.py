"""The HTML report on a real index database: release, gaps (fake hashing embedder), findings and triage."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import numpy as np
import pytest
from builders import make_article, sample_articles
from fakes import FakeHashingEmbedder
from markupsafe import escape
from typer.testing import CliRunner

from kbcurator.analysis.audit import AuditResult
from kbcurator.analysis.store import FindingStore
from kbcurator.chunking import ChunkPolicy
from kbcurator.cli import app
from kbcurator.gaps.coverage import CoveragePolicy, ReleaseVectors
from kbcurator.gaps.labels import label_clusters
from kbcurator.gaps.pipeline import describe_clusters
from kbcurator.gaps.report import GapStore, score_gaps
from kbcurator.index.build import build_candidate
from kbcurator.index.publish import publish
from kbcurator.index.store import IndexStore
from kbcurator.records import Evidence, Finding, Ticket, make_finding_id
from kbcurator.reports import render_report, write_report
from kbcurator.reports.html import marked, project_2d
from kbcurator.triage import TriageStore

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
POLICY = CoveragePolicy(answered_lift=0.3, related_lift=0.1, covered_share=0.5)
SCRIPT = "<script>alert(1)</script>"
COVERED = [
    "turn on two-factor authentication app",
    "two-factor authentication code",
    "enable two-factor authentication",
]
BIG_GAP = [
    f"merge two workspaces {SCRIPT}",
    "combine workspaces teams",
    "workspace merge teams",
    "merge workspaces please",
    "workspace merge",
]
SMALL_GAP = ["invoice currency euro", "change invoice currency"]


def _articles():
    return [*sample_articles(), make_article("hostile", f"Billing FAQ {SCRIPT}", "Invoices are sent monthly by email.")]


def _by_slug(articles):
    return {a.url.rsplit("/", 1)[-1]: a for a in articles}


def _tickets(groups: list[list[str]]) -> list[Ticket]:
    return [
        Ticket(f"t{c}-{i}", datetime(2026, 10, 5, tzinfo=UTC) + timedelta(days=3 * i), "", text)
        for c, texts in enumerate(groups)
        for i, text in enumerate(texts)
    ]


def _write_gaps(store, embedder, release, groups, run_id, run_at) -> list:
    tickets = _tickets(groups)
    vectors = embedder.embed([t.text for t in tickets])
    labels = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    texts = [t.text for t in tickets]
    clusters = describe_clusters(tickets, labels, label_clusters(texts, labels, vectors))
    gap_store = GapStore(store)
    scored, resolved = score_gaps(
        clusters, tickets, vectors, ReleaseVectors(store, release), POLICY, gap_store.previous(), run_id=run_id
    )
    gap_store.write_run(
        run_id=run_id, run_at=run_at, release_tag=release.tag, gaps=scored, resolved=resolved, dimension=256
    )
    return scored


def _finding(kind, check, articles, summary, action, evidence, key="k", score=0.8) -> Finding:
    ids = tuple(a.article_id for a in articles)
    return Finding(
        finding_id=make_finding_id(kind, check, ids, key),
        kind=kind,
        check=check,
        article_ids=ids,
        score=score,
        severity="high" if score >= 0.7 else "medium",
        summary=summary,
        action=action,
        evidence=tuple(evidence),
        detector="test",
        detector_version="1",
        found_at=AS_OF,
    )


def _findings(articles) -> list[Finding]:
    a = _by_slug(articles)
    contradiction = _finding(
        "contradiction",
        "quantity",
        [a["refunds"], a["cancel"]],
        "'30 days' vs '14 days' for refunds",
        "review",
        [
            Evidence(
                a["refunds"].article_id, "Refunds are available within 30 days of purchase.", highlights=("30 days",)
            ),
            Evidence(a["cancel"].article_id, "Refunds <b>are</b> available within 14 days.", highlights=("14 days",)),
        ],
    )
    duplicate = _finding(
        "duplicate",
        "near",
        [a["reset-password"], a["export"]],
        "2 articles are near copies of each other",
        "merge",
        [
            Evidence(
                a["export"].article_id, "Go to Settings", link=a["export"].url, detail="suggested canonical: newest"
            ),
            Evidence(a["reset-password"].article_id, "A link arrives by email", detail="adds 1 sentence"),
        ],
        key="set",
        score=0.6,
    )
    stale = _finding(
        "stale",
        "broken_link",
        [a["hostile"]],
        f"links to a page that is gone {SCRIPT}",
        "fix_link",
        [Evidence(a["hostile"].article_id, f"see {SCRIPT} here", link="javascript:alert(2)")],
        key="https://gone",
        score=0.5,
    )
    return [contradiction, duplicate, stale]


def _audit(store, findings, run_id, run_at, index_version) -> None:
    result = AuditResult(findings, index_version, run_at, 6, 6, {})
    finding_store = FindingStore(store)
    finding_store.write_run(run_id, result, finding_store.diff(result))


@pytest.fixture()
def full(tmp_path):
    store = IndexStore(str(tmp_path / "index"))
    embedder = FakeHashingEmbedder(dimension=256)
    articles = _articles()
    candidate = build_candidate(articles, store=store, embedder=embedder, policy=ChunkPolicy())
    release = publish(
        store,
        candidate,
        checks_passed=True,
        manifest={
            "changes": {"articles": {"added": 6, "changed": 0, "removed": 0}},
            "checks": {"success": True, "passed": 7, "total": 7},
        },
    )
    _write_gaps(store, embedder, release, [BIG_GAP[:3]], "gaps-1", AS_OF - timedelta(days=7))
    scored = _write_gaps(store, embedder, release, [COVERED, BIG_GAP, SMALL_GAP], "gaps-2", AS_OF - timedelta(days=1))
    findings = _findings(articles)
    _audit(store, findings[:1], "audit-1", AS_OF - timedelta(days=7), release.tag)
    _audit(store, findings, "audit-2", AS_OF - timedelta(days=1), release.tag)
    return store, articles, scored, findings


class _Tags(HTMLParser):
    """Start tags with their attributes, and the text inside <script> (there must be none)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))
        self.scripts += tag == "script"


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


def test_gaps_are_listed_in_gap_score_order_with_their_details(full) -> None:
    store, articles, scored, _ = full
    html = render_report(store, as_of=AS_OF)
    open_gaps = sorted((g for g in scored if g.coverage.action != "covered"), key=lambda g: -g.gap_score)
    assert len(open_gaps) == 2
    rows = re.findall(r'<tr class="gap[^"]*" id="([^"]+)"', html)
    assert rows == [g.gap_id for g in open_gaps]
    table = html[html.index('id="gap-table"') :]
    biggest = open_gaps[0]
    assert biggest.cluster.size == len(BIG_GAP) and biggest.trend == "growing"
    row = table[table.index(biggest.gap_id) : table.index("</tr>", table.index(biggest.gap_id))]
    assert "growing" in row and str(escape(biggest.coverage.suggestion())) in row
    assert str(escape(biggest.cluster.label)) in row
    assert all(str(escape(q)) in row for q in biggest.cluster.representatives[:3])
    # the covered topic is listed as answered, with its article linked
    two_factor = _by_slug(articles)["two-factor"]
    assert f'<a href="{two_factor.url}">Turn on two-factor authentication</a>' in html


def test_the_cluster_map_has_one_circle_per_cluster_and_the_chart_one_bar_per_week(full) -> None:
    store, _, scored, _ = full
    html = render_report(store, as_of=AS_OF)
    tags = _parse(html)
    circles = [a for t, a in tags.tags if t == "circle"]
    assert len(circles) == len(scored) == 3
    assert len({(c["cx"], c["cy"]) for c in circles}) == 3  # the projection separates the clusters
    radii = sorted(float(c["r"] or 0) for c in circles)
    assert radii[0] < radii[-1]  # sized by tickets
    assert [t for t, _ in tags.tags].count("svg") == 2
    bars = [a for t, a in tags.tags if t == "rect" and a.get("class") == "bar"]
    open_weeks = set()
    for gap in scored:
        if gap.coverage.action != "covered":
            open_weeks |= set(gap.weekly_counts)
    first, last = min(open_weeks), max(open_weeks)
    assert len(bars) == int(last[-2:]) - int(first[-2:]) + 1  # quiet weeks drawn as empty bars
    assert sum(int(m) for m in re.findall(r"<title>\d{4}-W\d\d: (\d+) tickets</title>", html)) == len(BIG_GAP) + len(
        SMALL_GAP
    )


def test_contradictions_sit_side_by_side_with_both_values_marked(full) -> None:
    store, articles, _, findings = full
    html = render_report(store, as_of=AS_OF)
    block = html[html.index(f'id="{findings[0].finding_id}"') :]
    block = block[: block.index('<div class="finding', 10)] if '<div class="finding' in block[10:] else block
    assert block.count('<div class="side">') == 2
    assert "<mark>30 days</mark>" in block and "<mark>14 days</mark>" in block
    assert "Refunds &lt;b&gt;are&lt;/b&gt;" in block  # evidence text is text, marks and all
    a = _by_slug(articles)
    assert block.index(a["refunds"].url) < block.index(a["cancel"].url)


def test_duplicates_show_the_set_and_the_canonical_article(full) -> None:
    store, articles, _, findings = full
    html = render_report(store, as_of=AS_OF)
    block = html[html.index(f'id="{findings[1].finding_id}"') :]
    export = _by_slug(articles)["export"]
    assert re.search(rf'Keep <span class="canonical"><a href="{re.escape(export.url)}">Export your data</a>', block)
    assert _by_slug(articles)["reset-password"].url in block[: block.index("</div>\n</div>")]


def test_ticket_and_article_text_is_shown_as_text_never_run(full) -> None:
    store, _, _, _ = full
    html = render_report(store, as_of=AS_OF)
    assert "<script" not in html.lower()
    assert _parse(html).scripts == 0
    assert "merge two workspaces &lt;script&gt;alert(1)&lt;/script&gt;" in html  # ticket representative
    assert "Billing FAQ &lt;script&gt;alert(1)&lt;/script&gt;" in html  # article title
    hrefs = [a.get("href") or "" for t, a in _parse(html).tags if t == "a"]
    assert hrefs and all(h.startswith("https://") for h in hrefs)  # a javascript: link stays text


def test_summary_shows_release_counts_and_trends(full) -> None:
    store, _, _, _ = full
    html = render_report(store, as_of=AS_OF)
    summary = html[html.index('id="summary"') : html.index('id="gaps"')]
    release = store.current()
    assert release.tag in summary
    assert re.search(r"articles<b>6</b>", summary)
    assert "+6 ~0 −0" in summary and "7/7" in summary
    assert re.search(r"duplicates<b>1</b><span class=\"delta up\">\+1 since the last run", summary)
    assert re.search(r"contradictions<b>1</b><span class=\"delta flat\">", summary)
    assert re.search(r"open gaps<b>2</b><span class=\"delta up\">\+1 since the last run", summary)
    assert "2 new and 0 resolved" in summary


def test_triage_decisions_show_next_to_each_item(full) -> None:
    store, _, scored, findings = full
    gap = next(g for g in scored if g.coverage.action != "covered")
    triage = TriageStore(store)
    triage.decide(gap.gap_id, "dismissed", decided_by="ana", decided_at=AS_OF - timedelta(hours=1))
    triage.decide(findings[0].finding_id, "assigned", assignee="bo", decided_by="ana", decided_at=AS_OF)
    html = render_report(store, as_of=AS_OF + timedelta(hours=1))
    assert re.search(rf'<tr class="gap set-aside" id="{gap.gap_id}">', html)
    assert "open gaps<b>1</b>" in html
    block = html[html.index(f'id="{findings[0].finding_id}"') :]
    assert "assigned to bo" in block[: block.index("</div>")]


def test_an_empty_database_says_there_is_nothing_yet(tmp_path) -> None:
    path = write_report(IndexStore(str(tmp_path / "index")), tmp_path / "out" / "report.html", AS_OF)
    html = path.read_text(encoding="utf-8")
    assert "No release has been published yet" in html
    assert "No gaps yet" in html and "No findings yet" in html
    assert "<svg" not in html


def test_a_release_without_runs_still_reports(tmp_path) -> None:
    store = IndexStore(str(tmp_path / "index"))
    embedder = FakeHashingEmbedder(dimension=256)
    publish(
        store,
        build_candidate(sample_articles(), store=store, embedder=embedder, policy=ChunkPolicy()),
        checks_passed=True,
        manifest={},
    )
    html = render_report(store, as_of=AS_OF)
    assert "release-0001" in html and "No gaps yet" in html and "No findings yet" in html


def test_highlights_are_marked_after_escaping() -> None:
    assert marked("a <b> 30 days, 30 days", ["30 days", ""]) == "a &lt;b&gt; <mark>30 days</mark>, <mark>30 days</mark>"
    assert marked("<mark>x</mark>", ["x"]) == "&lt;mark&gt;<mark>x</mark>&lt;/mark&gt;"


def test_projection_keeps_far_clusters_apart() -> None:
    points = np.array([[1.0, 0, 0], [0.9, 0.1, 0], [0, 0, 1.0]])
    coords = project_2d(points)
    near = np.linalg.norm(coords[0] - coords[1])
    far = np.linalg.norm(coords[0] - coords[2])
    assert coords.shape == (3, 2) and near < far
    assert project_2d(points[:1]).tolist() == [[0.0, 0.0]]


def test_cli_writes_the_report_and_prints_its_path(full, tmp_path) -> None:
    store, _, _, _ = full
    config = tmp_path / "kb.yaml"
    config.write_text(f"index_uri: {store.uri}\nruns_dir: {tmp_path / 'runs'}\nsources: []\n")
    result = CliRunner().invoke(app, ["report", "--config", str(config), "--as-of", "2026-11-20"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "runs" / "report.html"
    assert result.output.strip() == str(path)
    assert 'id="gap-table"' in path.read_text(encoding="utf-8")
    out = tmp_path / "elsewhere" / "r.html"
    again = CliRunner().invoke(app, ["report", "--config", str(config), "--out", str(out)])
    assert again.exit_code == 0 and out.exists()
