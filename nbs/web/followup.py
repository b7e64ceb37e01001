"""The coordinators' follow-up work on a recall: a contact logged with its next action,
the case details of a closed recall, and its letters (printed from the browser with the
print stylesheet; each printing recorded in the contact log).

Like every change of a recall, these answer with a redirect to the recall; input that
is refused or meets a run is kept as a draft (see :mod:`nbs.web.recalls`).
"""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from nbs import store
from nbs.followup.closing import record_details
from nbs.followup.contacts import Contact, parse_due, parse_when, record_contact
from nbs.followup.letters import LETTERS, record_sent, render_letter
from nbs.followup.lifecycle import RecallError
from nbs.web import coordinator
from nbs.web.common import too_long, web_of
from nbs.web.recalls import NOTE_MAX, Coordinator, _act, _coordinator, _refuse

router = APIRouter()
#: longest next action kept
ACTION_MAX = 300


@router.post("/recalls/{recall_id}/contact")
def recall_contact(
    request: Request,
    recall_id: str,
    how: Annotated[str, Form()] = "",
    whom: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    contacted_at: Annotated[str, Form()] = "",
    next_action: Annotated[str, Form()] = "",
    next_due: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Log a call, an e-mail, a visit or a letter, with the next action and its date."""
    fields = {"how": how, "whom": whom, "note": note, "contacted_at": contacted_at}
    fields |= {"next_action": next_action, "next_due": next_due}
    user = _coordinator(request, recall_id, fields, csrf_token)
    if isinstance(user, Response):
        return user
    problem = too_long("note", note, NOTE_MAX) or too_long("next action", next_action, ACTION_MAX)
    if problem:
        return _refuse(request, recall_id, fields, problem)
    web = web_of(request)

    def save() -> None:
        contact = Contact(
            recall_id=recall_id,
            how=how,
            whom=whom,
            note=note,
            contacted_by=user.username,
            contacted_at=parse_when(contacted_at),
            next_action=next_action,
            next_due=parse_due(next_due),
        )
        record_contact(web.db, contact, web.settings.followup)

    done = f"{recall_id}: {how.replace('_', ' ')} with {whom} logged"
    return _act(request, recall_id, fields, save, done)


@router.post("/recalls/{recall_id}/outcome")
def recall_outcome(
    request: Request,
    recall_id: str,
    diagnosis_code: Annotated[str, Form()] = "",
    diagnosed_at: Annotated[str, Form()] = "",
    treatment_started_at: Annotated[str, Form()] = "",
    ruled_out_at: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """The case details of a closed recall (they came after the close, or a correction)."""
    fields = {
        "diagnosis_code": diagnosis_code,
        "diagnosed_at": diagnosed_at,
        "treatment_started_at": treatment_started_at,
        "ruled_out_at": ruled_out_at,
        "expected_stage": "closed",
    }
    user = _coordinator(request, recall_id, fields, csrf_token)
    if isinstance(user, Response):
        return user
    db = web_of(request).db

    def save() -> None:
        record_details(db, recall_id, user.username, coordinator.details_of(fields))

    return _act(request, recall_id, fields, save, f"{recall_id}: outcome details recorded")


@router.get("/recalls/{recall_id}/letters/{name}", name="letter")
def letter(request: Request, recall_id: str, name: str, user: Coordinator) -> HTMLResponse:
    """The letter as a page to print (the print stylesheet leaves the letter alone)."""
    web = web_of(request)
    row = store.recall(web.db, recall_id)
    if row is None or name not in LETTERS:
        return web.render(request, "missing.html", user, status_code=404, what=recall_id)
    try:
        body = render_letter(web.db, recall_id, name, user.username)
    except RecallError as exc:
        return web.render(request, "missing.html", user, status_code=404, what=str(exc))
    return web.render(
        request, "letter.html", user, recall=row, letter=LETTERS[name], body=body, name=name
    )


@router.post("/recalls/{recall_id}/letters/{name}/sent")
def letter_sent(
    request: Request,
    recall_id: str,
    name: str,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Record the printed letter as sent (how = letter, in the contact log)."""
    user = _coordinator(request, recall_id, {}, csrf_token)
    if isinstance(user, Response):
        return user
    web = web_of(request)
    if name not in LETTERS:
        return RedirectResponse(f"/recalls/{quote(recall_id)}", status_code=303)
    return _act(
        request,
        recall_id,
        {},
        lambda: record_sent(
            web.db, recall_id, name, user.username, web.settings.followup, "printed"
        ),
        f"{recall_id}: {LETTERS[name].title.lower()} recorded as sent",
    )
