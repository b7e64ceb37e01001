"""The coordinators' pages: the recall list, one recall, and the changes they make.

Every change answers with a redirect to the recall's page (POST, redirect, GET), also
when it was not saved: refused because the recall changed meanwhile, refused input, or a
run holding the database. What was typed is then kept on the server (a draft) and shown
again in the form, so reloading the page and going Back work and nothing typed is lost.
Closing as ``confirmed``, or closing an urgent recall at all, asks for a confirmation on
a page of its own: no outcome is preselected and no single click closes such a recall.
"""

import json
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote, unquote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from nbs import store
from nbs.followup.closing import (
    CASE_KINDS,
    Details,
    check_close,
    close_with_outcome,
    missing_details,
)
from nbs.followup.lifecycle import (
    STAGES,
    RecallError,
    add_note,
    reopen_recall,
    set_stage,
)
from nbs.store import contacts as contact_store
from nbs.web import coordinator, users
from nbs.web.charts import value_gauge
from nbs.web.common import (
    ROLE_PAGES,
    Draft,
    Forbidden,
    NotSignedIn,
    Web,
    check_csrf,
    draft_owner,
    role_page,
    signed_in,
    timed_out_owner,
    too_long,
    web_of,
)

#: longest note and reason a coordinator may save (a longer one is refused, not cut)
NOTE_MAX = 2_000
REASON_MAX = 500
TIMED_OUT_DRAFT = (
    "You were signed out after a while without activity: your change has not been saved "
    "yet. It is filled in below: send it again."
)
BUSY_DRAFT = (
    "A run was writing: your change has not been saved yet. It is filled in below: send it again."
)

router = APIRouter()
#: the recall list's orders (worklist.SORTS) as the sort control names them
SORT_LABELS = {
    "priority": "due work first",
    "oldest": "opened longest ago",
    "newest": "opened last",
    "youngest": "youngest baby",
    "due": "next action due",
    "condition": "condition",
    "submitter": "submitter",
}
Coordinator = Annotated[users.User, role_page("recall")]


@router.get("/recalls", name="recalls")
def recalls(
    request: Request,
    user: Annotated[users.User, role_page("recalls")],
    status: str = "open",
    condition: str = "",
    urgency: str = "",
    overdue: str = "",
    stage: str = "",
    submitter: str = "",
    sort: str = "priority",
    page: str = "1",
) -> HTMLResponse:
    web = web_of(request)
    wanted = {"status": status, "condition": condition, "urgency": urgency, "stage": stage}
    rows, pager = coordinator.recall_page(
        web, wanted | {"submitter": submitter}, overdue == "1", sort, page
    )
    conditions = store.recall_conditions(web.db)
    filters = {"status": status, "condition": condition, "urgency": urgency, "overdue": overdue}
    filters |= {"stage": stage, "submitter": submitter, "sort": sort}
    fragment = (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Target") == "recall-table"
    )
    return web.render(
        request,
        "_recall_table.html" if fragment else "recalls.html",
        user,
        rows=rows,
        pager=pager,
        conditions=conditions,
        filters=filters,
        stages=STAGES,
        submitters=contact_store.recall_submitters(web.db),
        sorts=SORT_LABELS,
    )


def _calls(web: Web, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The card's calls for the recall's condition, each criterion with its gauge."""
    condition = row["condition"]
    specimen = str(row["specimen_id"])
    calls = store.screening_calls_of_card(web.db, specimen, condition).rows(named=True)
    for call in calls:
        explained = json.loads(call["explanation"]) if call["explanation"] else {}
        criteria = explained.get("criteria") or []
        for criterion in criteria:
            criterion["gauge"] = value_gauge(
                criterion.get("value"), criterion.get("limits"), str(criterion["criterion"])
            )
        call["criteria"] = criteria
        call["second_tier"] = explained.get("second_tier")
    return calls


def _next_stages(stage: str) -> list[str]:
    if stage in ("sample_requested", "referred"):
        return [s for s in ("sample_requested", "referred") if s != stage]
    return [s for s in STAGES[1:-1] if STAGES.index(s) > STAGES.index(stage)]


@router.get("/recalls/{recall_id}", name="recall")
def recall(request: Request, recall_id: str, user: Coordinator) -> HTMLResponse:
    web = web_of(request)
    row = store.recall(web.db, recall_id)
    if row is None:
        return web.render(request, "missing.html", user, status_code=404, what=recall_id)
    specimen = str(row["specimen_id"])
    card = store.card_for_review(web.db, specimen).rows(named=True)
    draft = web.drafts.get(draft_owner(request), recall_id)
    return web.render(
        request,
        "recall.html",
        user,
        recall=row,
        card=card[0] if card else None,
        calls=_calls(web, row),
        results=store.card_results(web.db, specimen).rows(named=True),
        warnings=store.card_warnings(web.db, specimen),
        history=store.recall_events(web.db, recall_id).rows(named=True),
        next_stages=_next_stages(str(row["stage"])),
        outcomes=web.settings.followup.outcomes,
        error=draft.message if draft else None,
        draft=draft.fields if draft else {},
        draft_form=draft.action.rsplit("/", 1)[-1] if draft else "",
        note_max=NOTE_MAX,
        reason_max=REASON_MAX,
        case_kinds=CASE_KINDS,
        missing_details=missing_details(web.db, row),
        **coordinator.recall_context(web, row, card[0] if card else None),
    )


@router.get("/recalls/{recall_id}/close", name="close_confirm")
def close_confirm(request: Request, recall_id: str, user: Coordinator) -> Response:
    """The confirmation of a consequential close (reloadable: the choice is a draft)."""
    web = web_of(request)
    draft = web.drafts.get(draft_owner(request), recall_id)
    row = store.recall(web.db, recall_id)
    if draft is None or draft.kind != "confirm" or row is None:
        return _to_recall(recall_id)
    return web.render(
        request,
        "close_confirm.html",
        user,
        recall=row,
        fields=draft.fields,
        action=draft.action,
        error=draft.message,
        case_kind=CASE_KINDS.get(draft.fields.get("outcome", "")) if row["condition"] else None,
    )


def _to_recall(recall_id: str, suffix: str = "") -> RedirectResponse:
    return RedirectResponse(f"/recalls/{quote(recall_id)}{suffix}", status_code=303)


def _act(
    request: Request,
    recall_id: str,
    fields: dict[str, str],
    change: Callable[[], None],
    done: str,
) -> Response:
    """Apply one change and redirect to the recall; what was not saved stays a draft."""
    web = web_of(request)
    owner, action = draft_owner(request), request.url.path
    try:
        current = store.recall(web.db, recall_id)
        expected = fields.get("expected_stage")
        if current is not None and expected and current["stage"] != expected:
            raise store.RecallChanged(
                f"{recall_id} changed meanwhile (now {current['stage']}): your change was "
                "not saved; check the history and send it again"
            )
        change()
    except store.DatabaseBusy:
        web.drafts.put(owner, recall_id, Draft(action, fields, "busy", BUSY_DRAFT))
        return _to_recall(recall_id)
    except (RecallError, store.RecallChanged) as exc:
        web.drafts.put(owner, recall_id, Draft(action, fields, "refused", str(exc)))
        return _to_recall(recall_id)
    web.drafts.drop(owner, recall_id)
    request.session["flash"] = done
    return _to_recall(recall_id)


def _coordinator(
    request: Request, recall_id: str, fields: dict[str, str], csrf: str
) -> users.User | Response:
    """The signed-in coordinator, for a change. When the session has just timed out, the
    change is kept for the same person's next sign-in in this browser, and the answer is
    the sign-in page (a note typed over half an hour is not lost to the idle timeout)."""
    try:
        user = signed_in(request)
    except NotSignedIn as ended:
        if ended.timed_out_user is None:
            raise
        check_csrf(request, csrf)
        owner = timed_out_owner(request, ended.timed_out_user)
        web_of(request).drafts.put(
            owner, recall_id, Draft(request.url.path, fields, "refused", TIMED_OUT_DRAFT)
        )
        target = "/login?" + urlencode({"next": f"/recalls/{recall_id}"})
        return RedirectResponse(target, status_code=303)
    check_csrf(request, csrf)
    if "recall" not in ROLE_PAGES.get(user.role, ()):
        raise Forbidden()
    return user


def _refuse(request: Request, recall_id: str, fields: dict[str, str], message: str) -> Response:
    """Input refused before any database work: kept as a draft, with the reason."""
    draft = Draft(request.url.path, fields, "refused", message)
    web_of(request).drafts.put(draft_owner(request), recall_id, draft)
    return _to_recall(recall_id)


@router.post("/recalls/{recall_id}/stage")
def recall_stage(
    request: Request,
    recall_id: str,
    stage: Annotated[str, Form()] = "",
    expected_stage: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    fields = {"stage": stage, "expected_stage": expected_stage, "note": note}
    user = _coordinator(request, recall_id, fields, csrf_token)
    if isinstance(user, Response):
        return user
    problem = too_long("note", note, NOTE_MAX)
    if problem:
        return _refuse(request, recall_id, fields, problem)
    db = web_of(request).db
    return _act(
        request,
        recall_id,
        fields,
        lambda: set_stage(db, recall_id, stage, user.username, note.strip() or None),
        f"{recall_id}: {stage.replace('_', ' ')}",
    )


def _needs_confirmation(row: dict[str, Any] | None, outcome: str) -> bool:
    """A diagnosis, or any end of an urgent recall, is confirmed on a page of its own; so
    is a close that records a case outcome (the page asks for its dates)."""
    if row is not None and row["condition"] and outcome in CASE_KINDS:
        return True
    return outcome == "confirmed" or (row is not None and row["urgency"] == "urgent")


@router.post("/recalls/{recall_id}/close")
def recall_close(
    request: Request,
    recall_id: str,
    outcome: Annotated[str, Form()] = "",
    expected_stage: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    diagnosis_code: Annotated[str, Form()] = "",
    diagnosed_at: Annotated[str, Form()] = "",
    treatment_started_at: Annotated[str, Form()] = "",
    ruled_out_at: Annotated[str, Form()] = "",
) -> Response:
    web = web_of(request)
    fields = {"outcome": outcome, "expected_stage": expected_stage, "note": note}
    given = {
        "diagnosis_code": diagnosis_code,
        "diagnosed_at": diagnosed_at,
        "treatment_started_at": treatment_started_at,
        "ruled_out_at": ruled_out_at,
    }
    fields |= {k: v for k, v in given.items() if v}
    user = _coordinator(request, recall_id, fields, csrf_token)
    if isinstance(user, Response):
        return user
    if not outcome:
        return _refuse(request, recall_id, fields, "Choose an outcome to close the recall.")
    problem = too_long("note", note, NOTE_MAX)
    if problem:
        return _refuse(request, recall_id, fields, problem)
    if confirm != "yes":
        try:
            row = store.recall(web.db, recall_id)
        except store.DatabaseBusy:
            row = None  # confirmed when the run is done: the recall page asks again
        if row is None or _needs_confirmation(row, outcome):
            web.drafts.put(
                draft_owner(request), recall_id, Draft(request.url.path, fields, "confirm")
            )
            return _to_recall(recall_id, "/close")
    try:
        details = coordinator.details_of(given)
        check_close(web.db, recall_id, outcome, user.username, details)
    except RecallError as exc:  # asked again on the confirmation page, with the reason
        web.drafts.put(
            draft_owner(request), recall_id, Draft(request.url.path, fields, "confirm", str(exc))
        )
        return _to_recall(recall_id, "/close")
    except store.DatabaseBusy:
        web.drafts.put(
            draft_owner(request), recall_id, Draft(request.url.path, fields, "busy", BUSY_DRAFT)
        )
        return _to_recall(recall_id)
    return _act(
        request,
        recall_id,
        fields,
        lambda: _close(web, recall_id, outcome, user.username, note, details),
        f"{recall_id} closed: {outcome.replace('_', ' ')}",
    )


def _close(web: Web, recall_id: str, outcome: str, actor: str, note: str, details: Details) -> None:
    config = web.settings.followup
    close_with_outcome(web.db, recall_id, outcome, actor, note.strip() or None, config, details)


@router.post("/recalls/{recall_id}/note")
def recall_note(
    request: Request,
    recall_id: str,
    note: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    fields = {"note": note}
    user = _coordinator(request, recall_id, fields, csrf_token)
    if isinstance(user, Response):
        return user
    problem = too_long("note", note, NOTE_MAX) or (None if note.strip() else "The note is empty.")
    if problem:
        return _refuse(request, recall_id, fields, problem)
    db = web_of(request).db
    return _act(
        request,
        recall_id,
        fields,
        lambda: add_note(db, recall_id, note.strip(), user.username),
        "note added",
    )


@router.post("/recalls/{recall_id}/reopen")
def recall_reopen(
    request: Request,
    recall_id: str,
    reason: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    fields = {"reason": reason, "expected_stage": "closed"}
    user = _coordinator(request, recall_id, fields, csrf_token)
    if isinstance(user, Response):
        return user
    problem = too_long("reason", reason, REASON_MAX)
    if problem:
        return _refuse(request, recall_id, fields, problem)
    db = web_of(request).db
    return _act(
        request,
        recall_id,
        fields,
        lambda: reopen_recall(db, recall_id, reason, user.username),
        f"{recall_id} reopened",
    )


@router.post("/recalls/{recall_id}/discard")
def recall_discard(
    request: Request,
    recall_id: str,
    user: Coordinator,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Forget the unsaved input kept for this recall."""
    check_csrf(request, csrf_token)
    web_of(request).drafts.drop(draft_owner(request), recall_id)
    return _to_recall(recall_id)


def busy_draft(request: Request) -> Draft | None:
    """The unsaved change to resend from the busy page of a recall (not a close awaiting
    its confirmation: resending that would skip the confirmation)."""
    parts = request.url.path.split("/")
    if len(parts) < 3 or parts[1] != "recalls" or not parts[2]:
        return None
    draft = web_of(request).drafts.get(draft_owner(request), unquote(parts[2]))
    return draft if draft is not None and draft.kind == "busy" else None
