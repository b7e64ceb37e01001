"""Signing in and out.

Sign-in is the one place where a stranger can make the server work hard (an argon2 hash),
so it runs in the event loop up to the hashing: the guard (:mod:`nbs.web.guard`) answers
throttled, locked-out and surplus attempts at once, and the admitted ones wait for one of
a few hashing threads without holding any of the threads the pages use.
"""

from functools import partial
from typing import Annotated

import anyio
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from nbs import store
from nbs.web import users
from nbs.web.common import (
    BUSY_MESSAGE,
    ROLE_PAGES,
    Web,
    adopt_drafts,
    check_csrf,
    client_address,
    signed_in,
    web_of,
)
from nbs.web.guard import Refusal

router = APIRouter()


@router.get("/login", name="login")
async def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return web_of(request).render(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    web = web_of(request)
    check_csrf(request, csrf_token)
    name, address = username.strip(), client_address(request)
    if len(name) > users.MAX_USERNAME_LENGTH or len(password) > users.MAX_PASSWORD_LENGTH:
        # no account has such a name or password: nothing to hash
        refusal = Refusal(401, "Unknown user name or wrong password.", users.UNKNOWN_USER)
        return _refused(web, request, name, address, next, refusal)
    admitted = web.guard.admit(name, address)
    if isinstance(admitted, Refusal):
        return _refused(web, request, name, address, next, admitted)
    verdict: users.Verdict | None = None
    try:
        checked, session_id = await anyio.to_thread.run_sync(
            partial(_check, web, name, password, address), limiter=web.guard.limiter
        )
        verdict = checked  # what the guard counts, once the attempt is answered
    except store.DatabaseBusy:
        busy = Refusal(503, BUSY_MESSAGE, "server_busy", 2)
        return _refused(web, request, name, address, next, busy)
    finally:
        web.guard.release(admitted, verdict)
    web.audit.add(users.Attempt(store.utc_now(), name, address, checked.outcome, checked.detail))
    failed = web.guard.refusal_for(checked, name)
    if failed is not None:
        return _answer(web, request, next, failed)
    assert session_id is not None and checked.user is not None  # _check started the session
    kept = request.session.get("kept")
    request.session.clear()  # a fresh session (and CSRF token) after sign-in
    request.session["sid"] = session_id
    adopt_drafts(request, kept, checked.user, session_id)
    return RedirectResponse(_safe_next(next), status_code=303)


def _check(web: Web, name: str, password: str, address: str) -> tuple[users.Verdict, str | None]:
    """In a hashing thread: the password check and, if it passes, the new session."""
    verdict = users.check_sign_in(web.db, name, password, web.settings.guard.account_policy)
    if verdict.user is None:
        return verdict, None
    return verdict, web.sessions.start(verdict.user, address)


def _refused(
    web: Web, request: Request, name: str, address: str, next: str, refusal: Refusal
) -> HTMLResponse:
    detail = f"refused before hashing: {refusal.message}"
    web.audit.add(users.Attempt(store.utc_now(), name, address, refusal.outcome, detail))
    return _answer(web, request, next, refusal)


def _answer(web: Web, request: Request, next: str, refusal: Refusal) -> HTMLResponse:
    response = web.render(
        request,
        "login.html",
        None,
        status_code=refusal.status,
        next=_safe_next(next),
        error=refusal.message,
    )
    if refusal.retry_after_s:
        response.headers["Retry-After"] = str(round(refusal.retry_after_s))
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token)
    session_id = request.session.get("sid")
    if session_id:
        # ended on the server: the cookie, wherever a copy of it is, opens nothing now
        web_of(request).sessions.end(str(session_id), "signed_out")
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(request: Request) -> Response:
    user = signed_in(request)
    first = ROLE_PAGES.get(user.role, ("stats",))[0]
    return RedirectResponse(request.app.url_path_for(first), status_code=303)


def _safe_next(target: str) -> str:
    """Only a local path may follow sign-in (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"
