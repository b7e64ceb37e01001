"""What the pages of the review application share: settings, the signed-in user and the
role's pages, CSRF tokens, rendering, paging, drafts kept across a redirect, and the
signed-in user's password entered again to sign a decision.

No ``from __future__ import annotations`` here or in the routers: FastAPI must resolve
``Annotated[..., Depends(...)]`` at import time.
"""

import datetime as dt
import hmac
import math
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import anyio
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from nbs import store
from nbs.followup.lifecycle import FollowUpConfig
from nbs.web import users
from nbs.web.guard import AuditQueue, GuardSettings, LoginGuard
from nbs.web.sessions import SessionEnded, SessionStore

#: pages each role may open (by route name)
ROLE_PAGES: dict[str, tuple[str, ...]] = {
    "lab": ("runs", "plates", "plate", "orders", "release", "worklist", "quarantine", "stats"),
    "coordinator": ("recalls", "recall", "runs", "stats"),
    "official": ("stats",),
}
NAV = (
    ("recalls", "Recalls"),
    ("worklist", "Retest worklist"),
    ("quarantine", "Quarantine"),
    ("plates", "Plates"),
    ("orders", "Orders"),
    ("release", "Release"),
    ("runs", "Runs"),
    ("stats", "Statistics"),
)
BUSY_MESSAGE = "A run is writing, try again in a moment."


@dataclass(frozen=True)
class WebSettings:
    """Everything the application needs, passed in (nothing read at import time)."""

    db: Path
    secret_key: str
    followup: FollowUpConfig
    #: a run's commit takes about a second; wait that long, not the pipeline's budget
    retry: store.RetryPolicy = field(
        default_factory=lambda: store.RetryPolicy(attempts=6, first_delay_s=0.05, max_delay_s=0.6)
    )
    #: a session ends this long after sign-in, however active
    session_max_age_s: int = 8 * 3600
    #: a session ends after this many minutes without a request (``nbs serve`` passes the
    #: setting NBS_SESSION_IDLE_MINUTES)
    session_idle_minutes: float = 30.0
    #: the session cookie is sent over HTTPS only (behind the lab's TLS proxy)
    https_only: bool = False
    #: rows per page of every list
    page_size: int = 100
    #: limits on the work sign-ins may cause
    guard: GuardSettings = field(default_factory=GuardSettings)


class NotSignedIn(Exception):
    """No valid session."""

    def __init__(self, timed_out_user: str | None = None) -> None:
        super().__init__(timed_out_user)
        #: whose session just timed out (None: signed out, or no session at all)
        self.timed_out_user = timed_out_user


class Forbidden(Exception):
    """The signed-in role may not open this page."""


class BadCsrf(Exception):
    """A form without the session's CSRF token."""


@dataclass
class Draft:
    """A coordinator's form input that was not saved (or awaits confirmation), kept on the
    server so that the answer can redirect to a page that reloads and goes back cleanly."""

    action: str  # the form's path
    fields: dict[str, str]  # what was typed, without the CSRF token
    kind: str  # refused | busy | confirm
    message: str | None = None


class DraftStore:
    """Drafts per session and recall, in memory (a run may hold the database: that is
    when they are needed), bounded."""

    SIZE = 5_000

    def __init__(self) -> None:
        self._drafts: OrderedDict[tuple[str, str], Draft] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, owner: str, recall_id: str, draft: Draft) -> None:
        with self._lock:
            self._drafts[(owner, recall_id)] = draft
            self._drafts.move_to_end((owner, recall_id))
            while len(self._drafts) > self.SIZE:
                self._drafts.popitem(last=False)

    def get(self, owner: str, recall_id: str) -> Draft | None:
        with self._lock:
            return self._drafts.get((owner, recall_id))

    def drop(self, owner: str, recall_id: str) -> None:
        with self._lock:
            self._drafts.pop((owner, recall_id), None)

    def adopt(self, old_owner: str, new_owner: str) -> None:
        """Hand ``old_owner``'s drafts to ``new_owner`` (a session after sign-in)."""
        with self._lock:
            for owner, recall_id in [k for k in self._drafts if k[0] == old_owner]:
                self._drafts[(new_owner, recall_id)] = self._drafts.pop((owner, recall_id))


class Web:
    """The application's parts, shared by the routers (``request.app.state.web``)."""

    def __init__(self, settings: WebSettings, templates: Jinja2Templates) -> None:
        self.settings, self.templates, self.db = settings, templates, settings.db
        self.sessions = SessionStore(
            settings.db,
            idle=dt.timedelta(minutes=settings.session_idle_minutes),
            max_age=dt.timedelta(seconds=settings.session_max_age_s),
        )
        self.guard = LoginGuard(settings.guard)
        self.audit = AuditQueue(settings.db)
        self.drafts = DraftStore()

    def render(
        self,
        request: Request,
        template: str,
        user: users.User | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        pages = ROLE_PAGES.get(user.role, ()) if user else ()
        context.update(
            user=user,
            nav=[(name, label) for name, label in NAV if name in pages],
            csrf=csrf_token(request),
            flash=request.session.pop("flash", None),
        )
        return self.templates.TemplateResponse(request, template, context, status_code=status_code)

    def busy(
        self, request: Request, user: users.User | None, draft: Draft | None = None
    ) -> HTMLResponse:
        """The 503 page; a coordinator's unsaved input is kept in a form to send again."""
        resend = None
        if draft is not None:
            resend = {**draft.fields, "csrf_token": csrf_token(request)}
        return self.render(
            request,
            "busy.html",
            user,
            status_code=503,
            message=BUSY_MESSAGE,
            resend=resend,
            action=draft.action if draft else request.url.path,
            retry_url=str(request.url),
        )


def web_of(request: Request) -> Web:
    web = request.app.state.web
    assert isinstance(web, Web)
    return web


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def check_csrf(request: Request, sent: str) -> None:
    expected = request.session.get("csrf")
    if not expected or not hmac.compare_digest(str(expected), sent):
        raise BadCsrf()


def signed_in(request: Request) -> users.User:
    """The session's user, checked on the server (a signed-out cookie opens nothing)."""
    session_id = request.session.get("sid")
    if not session_id:
        raise NotSignedIn()
    try:
        return web_of(request).sessions.user(str(session_id))
    except SessionEnded as ended:
        request.session.pop("sid", None)
        raise NotSignedIn(ended.timed_out_user) from None


def session_user(request: Request) -> users.User | None:
    """Who this process last saw using the session (for error pages; no database)."""
    session_id = request.session.get("sid")
    return web_of(request).sessions.remembered(str(session_id)) if session_id else None


def draft_owner(request: Request) -> str:
    """Drafts belong to the session that typed them."""
    return str(request.session.get("sid", ""))


def timed_out_owner(request: Request, username: str) -> str:
    """Who holds a draft sent after ``username``'s session timed out in this browser:
    handed to the next session of the same person signing in here (:func:`adopt_drafts`),
    never to anyone else's."""
    token = request.session.setdefault("kept", secrets.token_urlsafe(16))
    return f"timed-out:{token}:{username}"


def adopt_drafts(request: Request, kept: str | None, user: users.User, session_id: str) -> None:
    """After sign-in: the drafts ``user`` sent from this browser after a time-out."""
    if kept:
        web_of(request).drafts.adopt(f"timed-out:{kept}:{user.username}", session_id)


def role_page(name: str) -> Any:
    """Dependency: the signed-in user, who must be allowed the page ``name``."""

    def dependency(request: Request) -> users.User:
        user = signed_in(request)
        if name not in ROLE_PAGES.get(user.role, ()):
            raise Forbidden()
        return user

    return Depends(dependency)


def client_address(request: Request) -> str:
    """The client's address (uvicorn takes it from X-Forwarded-For when the TLS proxy on
    this machine, a trusted address, sends it)."""
    return request.client.host if request.client else "unknown"


def page_number(text: str) -> int:
    """A ``?page=`` value; anything but a positive number is the first page."""
    return int(text) if text.isdigit() and len(text) < 9 else 1


@dataclass(frozen=True)
class Pager:
    """One page of a list: its 1-based number (clamped to the pages there are)."""

    number: int
    size: int
    total: int

    @classmethod
    def of(cls, requested: int, size: int, total: int) -> "Pager":
        pages = max(1, math.ceil(total / size))
        return cls(min(max(1, requested), pages), size, total)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def first_row(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last_row(self) -> int:
        return min(self.offset + self.size, self.total)

    def window(self) -> list[int | None]:
        """Page numbers to link: the first, the last and two around this one (None: a gap)."""
        wanted = {1, self.pages, *range(self.number - 2, self.number + 3)}
        shown = sorted(n for n in wanted if 1 <= n <= self.pages)
        out: list[int | None] = []
        for n in shown:
            if out and n - (out[-1] or 0) > 1:
                out.append(None)
            out.append(n)
        return out

    @staticmethod
    def url(path: str, params: dict[str, str], number: int, name: str = "page") -> str:
        """The list's address at page ``number`` (its query parameter ``name``)."""
        return path + "?" + urlencode({**params, name: number})


def too_long(label: str, text: str, limit: int) -> str | None:
    """The message refusing ``text`` longer than ``limit`` characters (None: it fits)."""
    if len(text) <= limit:
        return None
    return (
        f"The {label} is too long ({len(text):,} characters; at most {limit:,}). Nothing was "
        "saved: shorten it and send it again."
    )


T = TypeVar("T")


class NoPassword(Exception):
    """No password was entered, or one longer than any password (nothing was hashed)."""


@dataclass(frozen=True)
class PasswordCheck:
    """The signed-in user's password entered again to sign a decision, with what checking
    it as a sign-in needs: the account's throttling policy and the client's address."""

    db: Path
    username: str
    password: str
    policy: users.ThrottlePolicy
    address: str


async def recheck_password(
    request: Request, user: users.User, password: str, check: Callable[[PasswordCheck], T]
) -> T:
    """``check`` of the signed-in ``user``'s re-entered ``password`` (a sign-in check,
    :func:`nbs.web.users.check_sign_in`, and its record), run as a sign-in is: in one of
    the sign-in's hashing slots, so that signatures cannot take the server's memory any
    more than a flood of sign-ins can. NoPassword, before any hashing, for an empty or
    overlong password."""
    web = web_of(request)
    if not password or len(password) > users.MAX_PASSWORD_LENGTH:
        raise NoPassword()
    policy = web.settings.guard.account_policy
    given = PasswordCheck(web.db, user.username, password, policy, client_address(request))
    return await anyio.to_thread.run_sync(partial(check, given), limiter=web.guard.limiter)
