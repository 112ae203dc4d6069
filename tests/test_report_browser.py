"""The report in a real browser: headless Chromium (Debian's package) driven by Playwright.

Skips, saying what is missing, where no browser is installed: `apt-get install -y chromium` and
`uv pip install playwright` (no `playwright install`: the system Chromium is used).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import test_report

from kbcurator.reports import write_report

CHROMIUM = Path("/usr/bin/chromium")
full = test_report.full  # the same database: a release, two gaps runs, two audits

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no browser: {CHROMIUM} is missing (apt-get install -y chromium)"
)


def test_the_report_shows_its_table_chart_and_a_contradiction_pair_in_chromium(full, tmp_path) -> None:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (uv pip install playwright)"
    )
    store, _, _, findings = full
    report = write_report(store, tmp_path / "report.html", test_report.AS_OF)
    screenshot = tmp_path / "report.png"
    dialogs: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(report.as_uri())
            assert page.locator("#gap-table").is_visible()
            assert page.locator("#gap-table tbody tr").count() == 2
            assert page.locator("#volume-chart svg rect.bar").first.is_visible()
            assert page.locator("#cluster-map svg circle").count() == 3
            pair = page.locator(f'[id="{findings[0].finding_id}"] .side')
            assert pair.count() == 2 and pair.nth(0).is_visible() and pair.nth(1).is_visible()
            left, right = pair.nth(0).bounding_box(), pair.nth(1).bounding_box()
            assert left and right and left["x"] + left["width"] <= right["x"]  # side by side, not stacked
            assert abs(left["y"] - right["y"]) < 1
            assert pair.nth(0).locator("mark").inner_text() == "30 days"
            assert pair.nth(1).locator("mark").inner_text() == "14 days"
            assert "<script>alert(1)</script>" in page.locator("#gap-table").inner_text()  # shown as text
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert not dialogs  # no ticket or article text ran as script
    assert screenshot.stat().st_size > 10_000
