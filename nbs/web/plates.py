"""The laboratory's plates: the list (held first), one plate with its QC wells, the
Levey-Jennings charts of its control series and its audit trail, and a supervisor's
decision on a held plate.

A decision (accept with a reason, or confirm the rejection) needs the signed-in user's
password again, checked as a sign-in is (:func:`nbs.web.common.recheck_password` with
:func:`nbs.web.users.check_sign_in`: a wrong password counts towards the account's delay
and lock-out, and the check waits for one of the sign-in's hashing slots); a wrong one
changes nothing and says so. The decision is recorded through
:func:`nbs.run.release.decide` with the signed-in user as the actor (accepting evaluates
the plate's cards at once). Every answer is a redirect to the plate's page (POST,
redirect, GET); a refused decision keeps its reason (never the password) on the server to
be filled in again.
"""

from functools import partial
from typing import Annotated, Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from nbs import store
from nbs.run.errors import RunFailed
from nbs.store import plates as plate_store
from nbs.web import users
from nbs.web.common import (
    Draft,
    NoPassword,
    Pager,
    PasswordCheck,
    Web,
    check_csrf,
    client_address,
    draft_owner,
    page_number,
    recheck_password,
    role_page,
    too_long,
    web_of,
)

#: longest reason a supervisor may give (a longer one is refused, not cut)
REASON_MAX = 500
#: control results drawn per series on a plate's page: the plate's own and those before
CHART_POINTS = 30
DECISIONS = {"accepted": "accepted", "rejected": "rejection confirmed"}
#: the most recent patient-based QC alarms shown above the plates
ALARMS_SHOWN = 10
BUSY = "A run was writing: nothing was changed. Send it again in a moment."

router = APIRouter()
Lab = Annotated[users.User, role_page("plate")]


@router.get("/plates", name="plates")
def plate_list(
    request: Request,
    user: Annotated[users.User, role_page("plates")],
    status: str = "",
    page: str = "1",
) -> HTMLResponse:
    web = web_of(request)
    chosen = status if status in plate_store.PLATE_STATUSES else ""
    total = plate_store.plate_count(web.db, chosen or None)
    pager = Pager.of(page_number(page), web.settings.page_size, total)
    frame = plate_store.plate_page(web.db, chosen or None, pager.size, pager.offset)
    return web.render(
        request,
        "plates.html",
        user,
        rows=frame.rows(named=True),
        pager=pager,
        status=chosen,
        statuses=plate_store.PLATE_STATUSES,
        alarms=store.patient_qc_alarms(web.db, limit=ALARMS_SHOWN).rows(named=True),
    )


def _charts(web: Web, plate_id: str, wells: list[dict[str, Any]]) -> list[Any]:
    """The charts of the plate's control series, up to its own results."""
    from nbs.qc.series import control_charts

    analytes = sorted({w["analyte"] for w in wells if w["sample_type"] == "control"})
    return [
        chart
        for analyte in analytes
        for chart in control_charts(web.db, analyte, plate_id=plate_id, last=CHART_POINTS)
    ]


def _draft_key(plate_id: str) -> str:
    return f"plate:{plate_id}"


@router.get("/plates/{plate_id}", name="plate")
def plate(request: Request, plate_id: str, user: Lab) -> HTMLResponse:
    web = web_of(request)
    row = plate_store.plate(web.db, plate_id)
    if row is None:
        return web.render(request, "missing.html", user, status_code=404, what=plate_id)
    wells = plate_store.plate_qc_results(web.db, plate_id).rows(named=True)
    draft = web.drafts.get(draft_owner(request), _draft_key(plate_id))
    return web.render(
        request,
        "plate.html",
        user,
        plate=row,
        wells=wells,
        charts=_charts(web, plate_id, wells),
        events=plate_store.plate_events(web.db, plate_id).rows(named=True),
        waiting=plate_store.waiting_recalls(web.db, plate_id).rows(named=True)
        if row["status"] == "held"
        else [],
        error=draft.message if draft else None,
        draft=draft.fields if draft else {},
        reason_max=REASON_MAX,
        chart_points=CHART_POINTS,
    )


def _to_plate(plate_id: str) -> RedirectResponse:
    return RedirectResponse(f"/plates/{quote(plate_id, safe='')}", status_code=303)


def _refused(request: Request, plate_id: str, fields: dict[str, str], message: str) -> Response:
    """Nothing changed: the reason is kept to be sent again, with why."""
    draft = Draft(request.url.path, fields, "refused", message)
    web_of(request).drafts.put(draft_owner(request), _draft_key(plate_id), draft)
    return _to_plate(plate_id)


def _password_problem(verdict: users.Verdict) -> str | None:
    """Why a re-entered password does not authorise the decision (None: it does)."""
    if verdict.outcome == users.SIGNED_IN:
        return None
    if verdict.outcome == users.THROTTLED:
        wait = max(1, round(verdict.retry_after_s))
        return f"Too many wrong passwords: try again in {wait} s. Nothing was changed."
    if verdict.outcome == users.LOCKED:
        return "Too many wrong passwords: your account is locked. Nothing was changed."
    return "The password was wrong: nothing was changed."


async def _check_password(
    request: Request, user: users.User, password: str, plate_id: str
) -> str | None:
    """The signed-in user's password, checked as a sign-in (in a hashing slot)."""

    def check(given: PasswordCheck) -> users.Verdict:
        return users.check_sign_in(given.db, given.username, given.password, given.policy)

    try:
        verdict = await recheck_password(request, user, password, check)
    except NoPassword:
        return "Enter your password to sign the decision: nothing was changed."
    detail = f"password re-entered to decide plate {plate_id}"
    web_of(request).audit.add(
        users.Attempt(
            store.utc_now(), user.username, client_address(request), verdict.outcome, detail
        )
    )
    return _password_problem(verdict)


def _decide(web: Web, plate_id: str, decision: str, actor: str, reason: str) -> str:
    """In a worker thread: the decision recorded (and, accepted, the cards evaluated)."""
    from nbs.config import load_config
    from nbs.run.release import decide

    done = decide(web.db, plate_id, decision, actor, reason, load_config())
    if decision == "accepted":
        return f"Plate {plate_id} accepted: {done.cards_evaluated} card(s) evaluated."
    return f"Plate {plate_id}: rejection confirmed; its results reach no call."


@router.post("/plates/{plate_id}/decide")
async def plate_decide(
    request: Request,
    plate_id: str,
    user: Lab,
    decision: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    web = web_of(request)
    fields = {"decision": decision, "reason": reason}
    problem = (
        None if decision in DECISIONS else "Choose to accept the plate or confirm its rejection."
    )
    problem = problem or too_long("reason", reason, REASON_MAX)
    problem = problem or (None if reason.strip() else "Give the reason: nothing was changed.")
    problem = problem or await _check_password(request, user, password, plate_id)
    if problem:
        return _refused(request, plate_id, fields, problem)
    try:
        done = await anyio.to_thread.run_sync(
            partial(_decide, web, plate_id, decision, user.username, reason.strip())
        )
    except plate_store.PlateDecisionError as exc:
        return _refused(request, plate_id, fields, f"{exc}: nothing was changed.")
    except (store.DatabaseBusy, store.RunInProgress, RunFailed) as exc:
        return _after_failure(request, plate_id, fields, decision, exc)
    web.drafts.drop(draft_owner(request), _draft_key(plate_id))
    request.session["flash"] = done
    return _to_plate(plate_id)


def _after_failure(
    request: Request, plate_id: str, fields: dict[str, str], decision: str, exc: Exception
) -> Response:
    """A run held the database, or evaluating the cards failed: say whether the decision
    itself was recorded (then the next run evaluates the cards)."""
    web = web_of(request)
    try:
        row = plate_store.plate(web.db, plate_id)
    except store.DatabaseBusy:
        row = None
    if row is not None and row["status"] == decision:
        web.drafts.drop(draft_owner(request), _draft_key(plate_id))
        request.session["flash"] = (
            f"Plate {plate_id} {DECISIONS[decision]}; its cards were not evaluated now "
            f"({exc}): the next run evaluates them."
        )
        return _to_plate(plate_id)
    busy = isinstance(exc, store.DatabaseBusy | store.RunInProgress)
    return _refused(request, plate_id, fields, BUSY if busy else f"{exc}: nothing was changed.")
