"""Releasing results in the review application: the cards ready to release, changed since
their release, blocked (and why), released, a page at a time (only the page's cards have
their status worked out: :func:`nbs.release.service.cards_of_status`); and the
laboratory's "Release" action.

Lab role only (the guard of :mod:`nbs.web.plates`). A release is signed by re-entering the
password, checked as a sign-in is in one of the sign-in's hashing slots
(:func:`nbs.web.common.recheck_password` with :func:`nbs.release.service.verify_signer`:
a wrong password counts towards the account's delay and lock-out, and is in the sign-in
audit trail); then :func:`nbs.release.service.release_card` with the signed-in user as
the signer. An amendment (a card changed since its release) needs a reason; open
exceptions (quarantined rows, card warnings) need the box ticked. Every answer is a
redirect to the list, saying what was done or why nothing was (never the password).
"""

from functools import partial
from typing import Annotated
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from nbs import store
from nbs.release import service
from nbs.web import users
from nbs.web.common import (
    NoPassword,
    Pager,
    PasswordCheck,
    check_csrf,
    page_number,
    recheck_password,
    role_page,
    too_long,
    web_of,
)

router = APIRouter()
#: the lab role's guard, as on the plates' pages
Lab = Annotated[users.User, role_page("release")]
SHOWS = ("ready", "changed", "blocked", "released")
#: longest amendment reason accepted (a longer one is refused, not cut)
REASON_MAX = 500


@router.get("/release", name="release")
def release_list(request: Request, user: Lab, show: str = "ready", page: str = "1") -> HTMLResponse:
    web = web_of(request)
    chosen = show if show in SHOWS else "ready"
    cards = service.cards_of_status(web.db, chosen)
    pager = Pager.of(page_number(page), web.settings.page_size, cards.total)
    return web.render(
        request,
        "release.html",
        user,
        rows=cards.page(pager.size, pager.offset).rows(named=True),
        pager=pager,
        show=chosen,
        shows=SHOWS,
        reason_max=REASON_MAX,
    )


def _back(show: str) -> RedirectResponse:
    chosen = show if show in SHOWS else "ready"
    return RedirectResponse(f"/release?show={quote(chosen)}", status_code=303)


async def _signed(request: Request, user: users.User, password: str, specimen_id: str) -> None:
    """The signer's password, checked in a hashing slot (ReleaseRefused if wrong)."""

    def verify(given: PasswordCheck) -> None:
        service.verify_signer(
            given.db, given.username, given.password, specimen_id, given.policy, given.address
        )

    try:
        await recheck_password(request, user, password, verify)
    except NoPassword:
        raise service.ReleaseRefused("enter your password to sign the release") from None


@router.post("/release/{specimen_id}")
async def release_card(
    request: Request,
    specimen_id: str,
    user: Lab,
    password: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    acknowledge: Annotated[str, Form()] = "",
    show: Annotated[str, Form()] = "ready",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    web = web_of(request)
    problem = too_long("reason", reason, REASON_MAX)
    try:
        if problem:
            raise service.ReleaseRefused(problem)
        await _signed(request, user, password, specimen_id)
        release = partial(
            service.release_card,
            web.db,
            specimen_id,
            user.username,
            reason.strip() or None,
            acknowledge == "yes",
        )
        done = await anyio.to_thread.run_sync(release)
    except service.ReleaseRefused as exc:
        request.session["flash"] = f"Card {specimen_id}: {exc}. Nothing was released."
        return _back(show)
    except (store.DatabaseBusy, store.RunInProgress):
        request.session["flash"] = "A run was writing: nothing was released. Send it again."
        return _back(show)
    request.session["flash"] = (
        f"Card {specimen_id}: {done.kind} release {done.seq} signed by {user.username}."
    )
    return _back(show)
