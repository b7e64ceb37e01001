"""The laboratory's card orders (HL7): the cards ordered, those overdue, and recording
that a card arrived.

Lab role only (the guard of :mod:`nbs.web.plates`). Recording a receipt is
:func:`nbs.store.orders.receive_order` with the signed-in user as the actor; the next run
takes the card in. Every answer to the form is a redirect to the list (POST, redirect,
GET), saying what was done or why nothing was.
"""

import datetime as dt
from typing import Annotated

import polars as pl
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from nbs import settings, store
from nbs.store import orders as order_store
from nbs.validate.schemas import SPECIMEN_QUALITIES
from nbs.validate.times import parse_datetime
from nbs.web import users
from nbs.web.common import Pager, check_csrf, page_number, role_page, web_of

router = APIRouter()
#: the lab role's guard, as on the plates' pages
Lab = Annotated[users.User, role_page("orders")]
SHOWS = {"waiting": False, "received": True, "all": None}


def _overdue_before() -> dt.datetime:
    days = settings.current().orders_overdue_days
    return dt.datetime.now().replace(microsecond=0) - dt.timedelta(days=days)


@router.get("/orders", name="orders")
def order_list(request: Request, user: Lab, show: str = "waiting", page: str = "1") -> HTMLResponse:
    web = web_of(request)
    chosen = show if show in SHOWS or show == "overdue" else "waiting"
    received = SHOWS.get(chosen)
    overdue = _overdue_before()
    before = overdue if chosen == "overdue" else None
    total = order_store.card_orders_count(web.db, received=received, overdue_before=before)
    pager = Pager.of(page_number(page), web.settings.page_size, total)
    frame = order_store.card_orders(
        web.db, received=received, overdue_before=before, limit=pager.size, offset=pager.offset
    ).with_columns(
        overdue=pl.col("received_at").is_null()
        & ~pl.col("card_stored")
        & (pl.coalesce("ordered_at", "collected_at") < overdue)
    )
    return web.render(
        request,
        "orders.html",
        user,
        rows=frame.rows(named=True),
        pager=pager,
        show=chosen,
        qualities=SPECIMEN_QUALITIES,
        now=dt.datetime.now().strftime("%Y-%m-%dT%H:%M"),
        overdue_days=settings.current().orders_overdue_days,
    )


def _receive(
    request: Request, actor: str, specimen_id: str, at: str, quality: str, consent: str
) -> str:
    """Record the receipt; returns what to tell the user."""
    web = web_of(request)
    when = parse_datetime(pl.Series("at", [at.strip()]))[0] if at.strip() else None
    if when is None:
        return f"Card {specimen_id}: give the time it arrived; nothing was changed."
    if quality not in SPECIMEN_QUALITIES:
        return f"Card {specimen_id}: choose the card's quality; nothing was changed."
    consent_cf = {"yes": True, "no": False}.get(consent)
    try:
        order_store.receive_order(web.db, specimen_id, when, actor, quality, consent_cf)
    except order_store.OrderError as exc:
        return f"{exc}: nothing was changed."
    except (store.DatabaseBusy, store.RunInProgress):
        return "A run was writing: nothing was changed. Send it again in a moment."
    return f"Card {specimen_id} received {when:%Y-%m-%d %H:%M}: the next run takes it in."


@router.post("/orders/{specimen_id}/receive")
def order_receive(
    request: Request,
    specimen_id: str,
    user: Lab,
    received_at: Annotated[str, Form()] = "",
    specimen_quality: Annotated[str, Form()] = "ok",
    consent_cf: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    message = _receive(
        request, user.username, specimen_id, received_at, specimen_quality, consent_cf
    )
    request.session["flash"] = message
    return RedirectResponse("/orders", status_code=303)
