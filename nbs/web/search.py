"""Search and a baby's page: any baby, card or recall by its id or a part of it, from the
search box of every page (laboratory and coordinators; officials never see ids), and a
baby's cards, recalls and outcomes, with the coordinators' "record a later diagnosis"
(a missed case) for a condition a card screened negative for."""

import datetime as dt
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from nbs import store
from nbs.followup.contacts import parse_due
from nbs.followup.lifecycle import RecallError
from nbs.followup.outcomes import Outcome, OutcomeError, record_outcome
from nbs.store import search as search_store
from nbs.web import users
from nbs.web.common import ROLE_PAGES, Forbidden, check_csrf, signed_in, web_of

router = APIRouter()
#: results of each kind shown (a search matching more asks for more of the id)
SEARCH_LIMIT = 50
#: the shortest part of an id searched for (one character would list everything)
SEARCH_MIN = 2
#: longest text of a search or a diagnosis code
TEXT_MAX = 100


def _may_search(request: Request) -> users.User:
    """Roles that see ids (a card's or a recall's page): the laboratory, coordinators."""
    user = signed_in(request)
    pages = ROLE_PAGES.get(user.role, ())
    if "recall" not in pages and "plate" not in pages:
        raise Forbidden()
    return user


Searcher = Annotated[users.User, Depends(_may_search)]


@router.get("/search", name="search")
def search(request: Request, user: Searcher, q: str = "") -> HTMLResponse:
    web = web_of(request)
    text = q.strip()[:TEXT_MAX]
    found = None
    if len(text) >= SEARCH_MIN:
        found = {
            kind: frame.rows(named=True)
            for kind, frame in search_store.search(web.db, text, SEARCH_LIMIT).items()
        }
        total = sum(len(v) for v in found.values())
        recalls = found["recalls"]
        # one exact hit is opened at once: a scanned card or a recall id typed in full
        if total == 1 and recalls and "recall" in ROLE_PAGES.get(user.role, ()):
            return RedirectResponse(f"/recalls/{quote(recalls[0]['recall_id'])}", 303)  # type: ignore[return-value]
        if total == 1 and found["babies"]:
            return RedirectResponse(f"/babies/{quote(found['babies'][0]['baby_id'])}", 303)  # type: ignore[return-value]
    return web.render(
        request,
        "search.html",
        user,
        q=text,
        found=found,
        limit=SEARCH_LIMIT,
        too_short=0 < len(text) < SEARCH_MIN,
        sees_recalls="recall" in ROLE_PAGES.get(user.role, ()),
    )


@router.get("/babies/{baby_id}", name="baby")
def baby(request: Request, baby_id: str, user: Searcher) -> HTMLResponse:
    web = web_of(request)
    found = search_store.baby_file(web.db, baby_id)
    if found["cards"].is_empty():
        return web.render(request, "missing.html", user, status_code=404, what=baby_id)
    flash_error = request.session.pop("baby_error", None)
    return web.render(
        request,
        "baby.html",
        user,
        baby_id=baby_id,
        cards=found["cards"].rows(named=True),
        recalls=found["recalls"].rows(named=True),
        outcomes=found["outcomes"].rows(named=True),
        negative=search_store.negative_conditions(web.db, baby_id),
        sees_recalls="recall" in ROLE_PAGES.get(user.role, ()),
        error=flash_error,
        typed=request.session.pop("baby_typed", {}),
    )


def _date(text: str) -> dt.date | None:
    try:
        return parse_due(text)
    except RecallError as exc:
        raise OutcomeError(str(exc)) from None


@router.post("/babies/{baby_id}/missed")
def record_missed(
    request: Request,
    baby_id: str,
    condition: Annotated[str, Form()] = "",
    diagnosis_code: Annotated[str, Form()] = "",
    diagnosed_at: Annotated[str, Form()] = "",
    treatment_started_at: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """A later diagnosis in a baby whose card screened negative (a missed case, QI 8)."""
    user = signed_in(request)
    check_csrf(request, csrf_token)
    if "recall" not in ROLE_PAGES.get(user.role, ()):
        raise Forbidden()
    typed = {
        "condition": condition,
        "diagnosis_code": diagnosis_code,
        "diagnosed_at": diagnosed_at,
        "treatment_started_at": treatment_started_at,
        "note": note,
    }
    try:
        if any(len(v) > TEXT_MAX * 20 for v in typed.values()):
            raise OutcomeError("a field is too long")
        kept = record_outcome(
            web_of(request).db,
            Outcome(
                baby_id=baby_id,
                condition=condition,
                kind="missed",
                recorded_by=user.username,
                diagnosis_code=diagnosis_code.strip() or None,
                diagnosed_at=_date(diagnosed_at),
                treatment_started_at=_date(treatment_started_at),
                note=note.strip() or None,
            ),
        )
    except (OutcomeError, store.DatabaseBusy) as exc:
        message = str(exc) if isinstance(exc, OutcomeError) else "A run was writing: send it again."
        request.session["baby_error"] = message
        request.session["baby_typed"] = typed
    else:
        request.session["flash"] = (
            f"Missed case recorded: {kept.condition}, against card {kept.specimen_id}"
        )
    return RedirectResponse(f"/babies/{quote(baby_id)}", status_code=303)
