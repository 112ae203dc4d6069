"""The review app served by uvicorn on 127.0.0.1: sign-in, CSRF, escaping, and a KB owner's session in Chromium.

The browser test drives Debian's Chromium through Playwright and skips, saying what is missing, without it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import test_report
import test_review_queue
from app_server import running

from kbcurator.errors import ConfigError
from kbcurator.reports import render_report
from kbcurator.triage import TriageStore
from kbcurator.usecases.review import ReviewQueue
from kbcurator.web import check_bind, create_app
from kbcurator.web.auth import hash_password, verify_password

AS_OF = test_report.AS_OF
OWNER = test_review_queue.OWNER
review_settings = test_review_queue.review_settings
full = test_report.full  # the fixtures: the report's database, plus age findings
review_db = test_review_queue.review_db
SCRIPT = test_report.SCRIPT
CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct horse battery staple"
USERS = {"ana": hash_password(PASSWORD)}


def _app(store, tmp_path, **serve):
    settings = review_settings(store, tmp_path, **serve)
    return create_app(settings, review=ReviewQueue(settings, store=store), now=lambda: AS_OF)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def _sign_in(client: httpx.Client) -> str:
    token = _csrf(client.get("/login").text)
    answer = client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 303
    return _csrf(client.get("/").text)


def test_passwords_are_stored_as_salted_scrypt_hashes() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second and first.startswith("scrypt$") and PASSWORD not in first
    assert verify_password(PASSWORD, first) and not verify_password("wrong", first)
    assert not verify_password(PASSWORD, None) and not verify_password(PASSWORD, "scrypt$garbage")


def test_every_page_needs_a_signed_in_user_and_a_post_without_session_or_token_is_refused(review_db, tmp_path) -> None:
    store, _, _, findings, _, _ = review_db
    item = findings[0].finding_id
    with running(_app(store, tmp_path, users=USERS)) as base:
        with httpx.Client(base_url=base) as anonymous:
            answer = anonymous.get("/", follow_redirects=False)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")
            refused = anonymous.post("/decide", data={"item_id": item, "action": "accept", "csrf_token": "x"})
            assert refused.status_code == 403
        with httpx.Client(base_url=base) as client:
            good = _sign_in(client)
            bad = client.post("/decide", data={"item_id": item, "action": "accept", "csrf_token": good[:-2] + "xx"})
            assert bad.status_code == 403 and "did not come from this app" in bad.text
            missing = client.post("/decide", data={"item_id": item, "action": "accept"})
            assert missing.status_code == 403
            assert TriageStore(store).history(item) == []  # nothing recorded by a refused post
            done = client.post("/decide", data={"item_id": item, "action": "accept", "csrf_token": good})
            assert done.status_code == 303
            assert [d.decided_by for d in TriageStore(store).history(item)] == ["ana"]


def test_sign_in_is_throttled_and_never_redirects_off_site(review_db, tmp_path) -> None:
    store, *_ = review_db
    with running(_app(store, tmp_path, users=USERS)) as base, httpx.Client(base_url=base) as client:
        token = _csrf(client.get("/login").text)
        for _ in range(5):
            wrong = client.post("/login", data={"username": "ana", "password": "guess", "csrf_token": token})
            assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
        blocked = client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token})
        assert blocked.status_code == 429
    with running(_app(store, tmp_path, users=USERS)) as base, httpx.Client(base_url=base) as client:
        token = _csrf(client.get("/login").text)
        data = {"username": "ana", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/"}
        answer = client.post("/login", data=data)
        assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_pages_refuse_other_hosts_and_forbid_scripts_and_framing(review_db, tmp_path) -> None:
    store, *_ = review_db
    with running(_app(store, tmp_path, users=USERS)) as base, httpx.Client(base_url=base) as client:
        rebinding = client.get("/login", headers={"Host": "attacker.example"})
        assert rebinding.status_code == 400
        page = client.get("/login")
        assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no script at all
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie


def test_a_trusted_proxy_names_the_user_and_nobody_else_can(review_db, tmp_path) -> None:
    store, _, _, findings, _, _ = review_db
    header = {"X-Forwarded-User": "sso-user@example.com"}
    item = findings[0].finding_id
    proxied = _app(store, tmp_path, trusted_user_header="X-Forwarded-User")
    with running(proxied) as base, httpx.Client(base_url=base, headers=header) as client:
        page = client.get("/")
        assert page.status_code == 200 and "sso-user@example.com" in page.text
        token = _csrf(client.get(f"/items/{item}").text)
        answer = client.post("/decide", data={"item_id": item, "action": "resolve", "csrf_token": token})
        assert answer.status_code == 303
    assert TriageStore(store).history(findings[0].finding_id)[-1].decided_by == "sso-user@example.com"
    # The same header from an address that is not a trusted proxy signs nobody in.
    elsewhere = _app(store, tmp_path, trusted_user_header="X-Forwarded-User", trusted_proxies=["10.0.0.1"])
    with running(elsewhere) as base, httpx.Client(base_url=base, headers=header) as client:
        assert client.get("/", follow_redirects=False).status_code == 303


def test_without_users_the_app_is_read_only_and_only_on_this_machine(review_db, tmp_path) -> None:
    store, _, _, findings, _, settings = review_db
    with running(_app(store, tmp_path)) as base, httpx.Client(base_url=base) as client:
        page = client.get("/")
        assert page.status_code == 200 and "Read-only" in page.text
        item = client.get(f"/items/{findings[0].finding_id}")
        assert item.status_code == 200 and 'id="actions"' not in item.text
        answer = client.post("/decide", data={"item_id": findings[0].finding_id, "action": "accept", "csrf_token": "x"})
        assert answer.status_code == 403 and "read-only" in answer.text
    assert TriageStore(store).history(findings[0].finding_id) == []
    with pytest.raises(ConfigError, match="without sign-in"):
        check_bind(settings.model_copy(update={"serve": settings.serve.model_copy(update={"host": "0.0.0.0"})}))
    check_bind(settings)  # 127.0.0.1 without users: allowed, read-only


pytestmark_browser = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no browser: {CHROMIUM} is missing (apt-get install -y chromium)"
)


@pytestmark_browser
def test_a_kb_owner_works_through_the_queue_in_chromium(review_db, tmp_path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    store, _, scored, findings, _, _ = review_db
    contradiction, duplicate = findings[0].finding_id, findings[1].finding_id
    gap = max((g for g in scored if g.coverage.action != "covered"), key=lambda g: g.priority).gap_id
    dialogs: list[str] = []
    with running(_app(store, tmp_path, users=USERS)) as base, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(base + "/")
            assert "/login" in page.url
            page.fill("input[name=username]", "ana")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            assert page.locator("#queue tr.item").count() >= 5
            # The queue fits a 1280-pixel window: no column (the owner) is pushed off its right side.
            assert page.evaluate("document.querySelector('#queue').getBoundingClientRect().right") <= 1280
            kinds = set(page.locator("#queue tr.item").evaluate_all("rows => rows.map(r => r.dataset.kind)"))
            assert len(kinds) >= 3
            # ticket and article text with a <script> in it is text on the page
            assert f"Billing FAQ {SCRIPT}" in page.locator("#queue").inner_text()  # an article title

            # filter the queue, open the contradiction, assign it
            page.select_option("#filters select[name=kind]", "contradiction")
            page.click("#filters button[type=submit]")
            assert page.locator("#queue tr.item").count() == 1
            assert page.locator("#counts a.on b").inner_text() == "1"
            page.click("#queue tr.item a")
            sides = page.locator(".pair .side")
            assert sides.count() == 2 and sides.nth(0).locator("mark").inner_text() == "30 days"
            page.select_option("#assign-form select[name=assignee]", OWNER)
            page.click("#assign-form button[type=submit]")
            assert page.locator("#state").inner_text().startswith(f"assigned to {OWNER}")

            # dismiss the duplicate with a reason
            page.goto(f"{base}/items/{duplicate}")
            page.fill("#dismiss-form input[name=reason]", "two audiences, kept apart on purpose")
            page.click("#dismiss-form button[type=submit]")
            assert "dismissed" in page.locator("#state").inner_text()

            # snooze the biggest gap; its questions, <script> and all, are text
            page.goto(f"{base}/items/{gap}")
            assert SCRIPT in page.locator("#questions").inner_text()
            page.fill("#snooze-form input[name=until]", "2026-12-15")
            page.click("#snooze-form button[type=submit]")
            assert "snoozed until 2026-12-15" in page.locator("#state").inner_text()

            # reload: the queue holds the state
            page.goto(base + "/")
            ids = page.locator("#queue tr.item").evaluate_all("rows => rows.map(r => r.dataset.id)")
            assert contradiction in ids and duplicate not in ids and gap not in ids
            row = page.locator(f'#queue tr.item[data-id="{contradiction}"]')
            assert f"assigned to {OWNER}" in row.inner_text()
            page.goto(base + "/?status=all")
            assert "two audiences" in page.locator(f'#queue tr.item[data-id="{duplicate}"]').inner_text()
            page.screenshot(path=str(tmp_path / "queue.png"), full_page=True)
        finally:
            browser.close()
    assert not dialogs
    # The static report, regenerated, says the same about each item, notes included.
    html = render_report(store, as_of=AS_OF + timedelta(minutes=5))
    assert f"assigned to {OWNER}" in html[html.index(f'id="{contradiction}"') :][:2000]
    duplicate_block = html[html.index(f'id="{duplicate}"') :][:2000]
    assert "dismissed" in duplicate_block and "two audiences, kept apart on purpose" in duplicate_block
    assert "snoozed until 2026-12-15" in html[html.index(f'id="{gap}"') :][:2000]


def test_serve_on_a_port_in_use_or_out_of_range_is_one_line(tmp_path) -> None:
    import socket
    import subprocess
    import sys

    from builders import published_sample

    published_sample(str(tmp_path / "index"))
    config = tmp_path / "kb.yaml"
    config.write_text(f"index_uri: {tmp_path / 'index'}\n")
    kbcurator = str(Path(sys.executable).parent / "kbcurator")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for flag, expected in (
            (str(port), f"error: cannot listen on 127.0.0.1:{port}: Address already in use"),
            ("70000", "error: serve.port: Input should be less than or equal to 65535"),
        ):
            outcome = subprocess.run(
                [kbcurator, "serve", "--config", str(config), "--port", flag],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert outcome.returncode == 1 and outcome.stderr.strip().splitlines() == [expected]
            assert "review app:" not in outcome.stdout  # nothing claims to run
