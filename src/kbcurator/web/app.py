"""The review app: the KB owner's queue of what to fix, one page per item, and the decisions taken there.

Server-rendered (FastAPI + Jinja2, templates shared with the static report), plain HTML forms, no script. It
reads and writes only through the review use case. Every page needs a signed-in user once users or an SSO proxy
header are configured; without either the app is read-only. Every form carries the session's CSRF token; every
value from articles and tickets is autoescaped; the Host header is checked (DNS rebinding) and the pages forbid
framing, scripts and off-site form targets by Content-Security-Policy.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.templating import Jinja2Templates

from kbcurator import __version__
from kbcurator.reports.html import Link, finding_view, safe_url
from kbcurator.settings import Settings
from kbcurator.usecases.review import (
    KIND_NAMES,
    QUEUE_KINDS,
    REVIEW_DUE_PREFIX,
    QueueFilter,
    ReviewError,
    ReviewQueue,
)
from kbcurator.web.api import API_PREFIX, search_api
from kbcurator.web.auth import SignInThrottle, csrf_ok, new_csrf_token, verify_password

_HERE = Path(__file__).parent
_REPORT_TEMPLATES = _HERE.parent / "reports" / "templates"
_STATUS_FILTERS = ("open", "all", "accepted", "assigned", "snoozed", "dismissed", "resolved")
_DONE = {
    "accept": "Accepted.",
    "dismiss": "Dismissed.",
    "snooze": "Snoozed.",
    "assign": "Assigned.",
    "resolve": "Marked resolved.",
    "note": "Note saved.",
    "reopen": "Reopened.",
}
_STALE_FORM = "The form had expired or did not come from this app. Reload the page and try again."
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(_HERE / "templates"), jinja2.FileSystemLoader(_REPORT_TEMPLATES)]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda value: quote(str(value), safe="")
    return env


def _local_next(value: str | None) -> str:
    # Only a path on this app: "//evil.example" or "https://..." would send a fresh sign-in elsewhere.
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def create_app(
    settings: Settings,
    *,
    review: ReviewQueue | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FastAPI:
    """The app for one index database. ``now`` decides which snoozes have ended (tests fix it)."""
    serve = settings.serve
    queue = review or ReviewQueue(settings)
    throttle = SignInThrottle()
    templates = Jinja2Templates(env=_environment())
    secret = serve.session_secret.get_secret_value() if serve.session_secret else secrets.token_urlsafe(32)
    hosts = serve.allowed_hosts or sorted({serve.host, "127.0.0.1", "localhost", "[::1]", "::1"})

    app = FastAPI(title="kbcurator review", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount(API_PREFIX, search_api(settings))  # the search API for RAG services, with its own OpenAPI document

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"
        return response

    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie="kbcurator_session",
        max_age=serve.session_max_age_s,
        same_site="strict",
        https_only=serve.secure_cookies,
    )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)

    def user_of(request: Request) -> str:
        if serve.trusted_user_header and request.client and request.client.host in serve.trusted_proxies:
            name = request.headers.get(serve.trusted_user_header, "").strip()
            if name:
                return name
        name = request.session.get("user", "")
        # A user removed from the settings is signed out, whatever the cookie says.
        return name if isinstance(name, str) and name in serve.users else ""

    def csrf_of(request: Request) -> str:
        token = request.session.get("csrf")
        if not isinstance(token, str) or not token:
            token = new_csrf_token()
            request.session["csrf"] = token
        return token

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        user = user_of(request)
        return templates.TemplateResponse(
            request,
            name,
            {
                "user": user,
                "password_user": bool(user) and request.session.get("user") == user,
                "read_only": not serve.auth_configured,
                "csrf": csrf_of(request),
                "kind_names": KIND_NAMES,
                "version": __version__,
                **context,
            },
            status_code=status_code,
        )

    def sign_in_first(request: Request) -> Response | None:
        if serve.auth_configured and not user_of(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
        return None

    def refused(request: Request, why: str) -> HTMLResponse:
        return page(request, "refused.html.j2", status_code=403, why=why)

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:
        if not serve.users:
            return refused(request, "Sign-in by password is not set up: no users are declared under serve.users.")
        return page(request, "login.html.j2", next=_local_next(next), error="")

    @app.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        username: str = Form(""),
        password: str = Form(""),
        csrf_token: str = Form(""),
        next: str = Form("/"),
    ) -> Response:
        if not csrf_ok(request.session.get("csrf"), csrf_token):
            return refused(request, _STALE_FORM)
        username = username.strip()
        if throttle.blocked(username):
            return page(
                request,
                "login.html.j2",
                429,
                next=_local_next(next),
                error="Too many failed sign-ins; wait 15 minutes.",
            )
        if not verify_password(password, serve.users.get(username)):
            throttle.failed(username)
            return page(request, "login.html.j2", 401, next=_local_next(next), error="Wrong user name or password.")
        throttle.succeeded(username)
        request.session.clear()  # a fresh session (and CSRF token) at every sign-in: no fixation
        request.session["user"] = username
        request.session["csrf"] = new_csrf_token()
        return RedirectResponse(_local_next(next), status_code=303)

    @app.post("/logout")
    def logout(request: Request, csrf_token: str = Form("")) -> Response:
        if not csrf_ok(request.session.get("csrf"), csrf_token):
            return refused(request, "The form had expired or did not come from this app.")
        request.session.clear()
        return RedirectResponse("/login" if serve.users else "/", status_code=303)

    @app.get("/", response_class=HTMLResponse)
    def queue_page(
        request: Request,
        kind: str = "",
        source: str = "",
        owner: str = "",
        status: str = "open",
        assignee: str = "",
        page_number: int = 1,
    ) -> Response:
        if (redirect := sign_in_first(request)) is not None:
            return redirect
        filters = QueueFilter(
            kind=kind if kind in QUEUE_KINDS else "",
            source=source,
            owner=owner,
            status=status if status in _STATUS_FILTERS else "open",
            assignee=assignee,
        )
        view = queue.queue(filters, as_of=now(), page=page_number)
        base = {k: v for k, v in asdict(filters).items() if v and not (k == "status" and v == "open")}
        return page(
            request,
            "queue.html.j2",
            view=view,
            filters=filters,
            kinds=QUEUE_KINDS,
            page_size=serve.page_size,
            statuses=_STATUS_FILTERS,
            query=lambda **changes: urlencode({k: v for k, v in {**base, **changes}.items() if v}),
        )

    @app.get("/items/{item_id:path}", response_class=HTMLResponse)
    def item_page(request: Request, item_id: str, done: str = "") -> Response:
        if (redirect := sign_in_first(request)) is not None:
            return redirect
        return _item(request, item_id, message=_DONE.get(done, ""))

    def _item(
        request: Request, item_id: str, *, message: str = "", error: str = "", status_code: int = 200
    ) -> HTMLResponse:
        try:
            detail = queue.item(item_id, as_of=now())
        except ReviewError as exc:
            return page(request, "refused.html.j2", status_code=404, why=str(exc))
        articles = {a: (r.title, r.url) for a, r in detail.article_refs.items()}
        # The item's own status is shown from the queue; the view is for the evidence.
        view = finding_view(detail.finding, articles, {}) if detail.finding is not None else None
        return page(
            request,
            "item.html.j2",
            status_code=status_code,
            detail=detail,
            item=detail.item,
            finding=view,
            owners=queue.owners(),
            today=now().date(),
            message=message,
            error=error,
            link=lambda title, url: Link(title or url, safe_url(url or "")),
            is_block=detail.item.item_id.startswith(REVIEW_DUE_PREFIX),
        )

    @app.post("/decide", response_class=HTMLResponse)
    def decide(
        request: Request,
        item_id: str = Form(""),
        action: str = Form(""),
        reason: str = Form(""),
        note: str = Form(""),
        until: str = Form(""),
        assignee: str = Form(""),
        csrf_token: str = Form(""),
    ) -> Response:
        user = user_of(request)
        if not serve.auth_configured:
            return refused(request, "This app is read-only: declare users (serve.users) or an SSO header to act in it.")
        if not user:
            return refused(request, "Sign in to act on an item.")
        if not csrf_ok(request.session.get("csrf"), csrf_token):
            return refused(request, _STALE_FORM)
        try:
            back = date.fromisoformat(until) if until else None
        except ValueError:
            return _item(request, item_id, error=f"Not a date: {until[:40]}", status_code=400)
        try:
            queue.act(item_id, action, user=user, reason=reason, note=note, until=back, assignee=assignee, as_of=now())
        except ReviewError as exc:
            return _item(request, item_id, error=str(exc), status_code=400)
        return RedirectResponse(f"/items/{quote(item_id, safe='')}?done={quote(action)}", status_code=303)

    return app
