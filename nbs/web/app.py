"""The review application: FastAPI, server-rendered Jinja2 pages, htmx for small updates.

Rules it keeps:

* every page but the login page needs a signed-in account, checked on the server on every
  request (``nbs.web.sessions``: signing out ends the session for every copy of the
  cookie; so does the idle timeout); the role decides which pages (``ROLE_PAGES``), and
  officials never see a page with a name or an id;
* password guessing is throttled and a flood of sign-ins cannot take the server's memory
  or the coordinators' pages (``nbs.web.guard``);
* every form carries the session's CSRF token, checked on every POST; a POST body is
  small (``MAX_BODY``) and every text field has a length limit;
* no DuckDB connection is kept between requests (a run's lock would otherwise stop the
  laboratory); a request that meets a run's lock retries briefly, then answers "a run is
  writing" with the coordinator's input kept to send again, so nothing is lost;
* a change made on a stale view of a recall is refused, not merged; every change answers
  with a redirect, so reload and Back never send it twice;
* every list is shown a page at a time.

The routes live in ``auth`` (sign-in and out), ``recalls`` (coordinators), ``lab``
(laboratory and statistics) and ``plates`` (the laboratory's plates and their quality
control); their shared parts in ``common``.
"""

import asyncio
import contextlib
import datetime as dt
import importlib.resources
import logging
import os
import secrets
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from nbs import settings, store
from nbs.web import auth, followup, lab, orders, plates, recalls, release, search
from nbs.web.common import (
    ROLE_PAGES,
    BadCsrf,
    Forbidden,
    NotSignedIn,
    Web,
    WebSettings,
    session_user,
    web_of,
)

__all__ = ["ROLE_PAGES", "WebSettings", "create_app", "load_secret_key"]

#: the largest request body accepted (a form with a 2,000-character note is under 10 kB)
MAX_BODY = 64 * 1024
#: how often queued sign-in attempts and held-back session ends are written
FLUSH_EVERY_S = 1.0
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), "
    "display-capture=(), clipboard-read=()"
)
log = logging.getLogger(__name__)


def load_secret_key(db: Path) -> str:
    """The session-signing key: ``NBS_WEB_SECRET``, else a random key kept beside the
    database (``FILE.web-secret``, readable by its owner only: made so, and put back so
    if someone widened it), created on first use so sessions survive a restart."""
    configured = settings.current().web_secret
    if configured:
        return configured
    path = db.with_name(db.name + ".web-secret")
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o600)
    return path.read_text().strip()


class _RetryMiddleware:
    """Pure ASGI middleware: the request's DuckDB connections use the web retry policy
    (a context variable, copied into the worker thread of each sync endpoint)."""

    def __init__(self, app: Any, policy: store.RetryPolicy) -> None:
        self.app, self.policy = app, policy

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        with store.retry_policy(self.policy):
            await self.app(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


class _BodyLimit:
    """Pure ASGI middleware: a request body over ``limit`` bytes is answered 413 before
    it is read into memory (announced by Content-Length, or counted as it arrives)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = dict(scope.get("headers") or []).get(b"content-length", b"0")
        too_large = PlainTextResponse("The form is too large.", status_code=413)
        if not announced.isdigit() or int(announced) > self.limit:
            await too_large(scope, receive, send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except _BodyTooLarge:
            await too_large(scope, receive, send)


def create_app(settings: WebSettings) -> FastAPI:
    """The application for one screening database."""
    web_files = importlib.resources.files("nbs.web")
    templates = Jinja2Templates(directory=str(web_files / "templates"))
    templates.env.filters["when"] = _when
    web = Web(settings, templates)
    app = FastAPI(
        title="NBS review", docs_url=None, redoc_url=None, openapi_url=None, lifespan=_lifespan
    )
    app.state.web = web
    app.mount("/static", StaticFiles(directory=str(web_files / "static")), name="static")
    for module in (auth, recalls, followup, search, lab, plates, orders, release):
        app.include_router(module.router)
    app.add_middleware(_RetryMiddleware, policy=settings.retry)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="nbs_session",
        max_age=settings.session_max_age_s,
        same_site="strict",
        https_only=settings.https_only,
    )
    app.add_middleware(_BodyLimit, limit=MAX_BODY)
    app.middleware("http")(_security_headers)
    _add_error_pages(app)
    return app


async def _security_headers(request: Request, call_next: Any) -> Response:
    response: Response = await call_next(request)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Permissions-Policy"] = PERMISSIONS_POLICY
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _add_error_pages(app: FastAPI) -> None:
    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if request.method == "GET":
            target = "/login?" + urlencode({"next": request.url.path})
            return RedirectResponse(target, status_code=303)
        return HTMLResponse("Sign in first.", status_code=401)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        user = session_user(request)
        return web_of(request).render(request, "forbidden.html", user, status_code=403)

    @app.exception_handler(BadCsrf)
    async def bad_csrf(request: Request, exc: BadCsrf) -> Response:
        return HTMLResponse(
            "The form had expired or did not come from this application; reload the page.",
            status_code=403,
        )

    @app.exception_handler(store.DatabaseBusy)
    async def database_busy(request: Request, exc: store.DatabaseBusy) -> Response:
        web = web_of(request)
        return web.busy(request, session_user(request), recalls.busy_draft(request))


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    web = web_of_app(app)
    task = asyncio.create_task(_keep_writing(web))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await anyio.to_thread.run_sync(_write_pending, web)


def web_of_app(app: FastAPI) -> Web:
    web = app.state.web
    assert isinstance(web, Web)
    return web


async def _keep_writing(web: Web) -> None:
    """Write queued sign-in attempts and held-back session ends about once a second (in
    batches: a flood of refused sign-ins must not become a flood of database writes)."""
    while True:
        await asyncio.sleep(FLUSH_EVERY_S)
        if len(web.audit) or web.sessions.unwritten:
            await anyio.to_thread.run_sync(_write_pending, web)


def _write_pending(web: Web) -> None:
    with store.retry_policy(web.settings.retry):
        try:
            web.audit.flush()
            web.sessions.flush()
        except Exception:  # never let the writer die; the rows wait for the next round
            log.exception("writing sign-in records failed")


def _when(value: object) -> str:
    """A timestamp as the lab reads it (minutes, no seconds)."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)
