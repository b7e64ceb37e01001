"""Letters from the laboratory's templates (``nbs/followup/letters/NAME.html``, Jinja2):
the referral to the specialist or paediatrician, the repeat-card request to the
maternity, and "no further action". The same HTML is printed from the recall page and
laid out as PDF (fpdf2) by ``nbs letter``; each sending is a contact (how = letter).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from nbs import store
from nbs.conditions import load_registry
from nbs.followup.contacts import Contact, record_contact
from nbs.followup.directory import Directory, load_directory
from nbs.followup.lifecycle import FollowUpConfig, RecallError, recall_row, refuse_if_held

DEFAULT_LETTERS = Path(__file__).with_name("letters")


@dataclass(frozen=True)
class Letter:
    """A kind of letter: its template, title and whom it goes to (the contact log's)."""

    name: str
    title: str
    whom: str


LETTERS = {
    "referral": Letter("referral", "Referral letter", "specialist"),
    "repeat_card": Letter("repeat_card", "Repeat-card request", "maternity"),
    "no_further_action": Letter("no_further_action", "No further action", "paediatrician"),
}
#: closed recalls that end with "no further action"
NOTHING_FOUND = ("false_positive", "repeat_normal", "carrier")
#: characters the PDF's core font lacks, as the letter writes them there
_PDF_TEXT = str.maketrans(
    {"–": "-", "—": "-", "·": "-", "≥": ">=", "≤": "<=", "→": "->", "…": "...", "’": "'"}
)


def default_letter(recall: dict[str, object]) -> str:
    """The letter a recall calls for: "no further action" once closed without a finding,
    else the referral or the repeat-card request."""
    if recall.get("status") == "closed" and recall.get("outcome") in NOTHING_FOUND:
        return "no_further_action"
    return "referral" if recall.get("action") == "referral" else "repeat_card"


def _criteria(db: Path, recall: dict[str, Any]) -> list[dict[str, Any]]:
    if not recall.get("condition"):
        return []
    call = store.screening_call(db, str(recall["specimen_id"]), str(recall["condition"]))
    if not call.height or not call["explanation"][0]:
        return []
    criteria = json.loads(call["explanation"][0]).get("criteria") or []
    return [c for c in criteria if isinstance(c, dict)]


def _environment(templates: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = lambda v: (
        v.strftime("%Y-%m-%d %H:%M")
        if isinstance(v, dt.datetime)
        else ("" if v is None else str(v))
    )
    return env


def render_letter(
    db: Path,
    recall_id: str,
    name: str,
    signed_by: str,
    *,
    directory: Directory | None = None,
    templates: Path | None = None,
) -> str:
    """The letter ``name`` for a recall, as HTML (the template's body)."""
    if name not in LETTERS:
        raise RecallError(f"letter must be one of {', '.join(LETTERS)}; not {name!r}")
    folder = templates or DEFAULT_LETTERS
    if not (folder / f"{name}.html").is_file():
        raise RecallError(f"no letter template {name}.html in {folder}")
    recall = recall_row(db, recall_id)
    directory = directory or load_directory()
    card_rows = store.card_for_review(db, str(recall["specimen_id"])).rows(named=True)
    card = card_rows[0] if card_rows else None
    submitter = card["submitter"] if card else None
    conditions = load_registry().conditions
    condition = str(recall.get("condition") or "")
    maternity = directory.submitter(submitter)
    specialist = directory.specialist(condition)
    context = {
        "recall": recall,
        "card": card,
        "condition_name": conditions[condition].name if condition in conditions else condition,
        "criteria": _criteria(db, recall),
        "laboratory": directory.laboratory,
        "maternity": maternity,
        "specialist": specialist,
        "addressee": specialist if LETTERS[name].whom == "specialist" else maternity,
        "today": store.utc_now().date().isoformat(),
        "signed_by": signed_by,
    }
    return _environment(folder).get_template(f"{name}.html").render(context)


def as_page(body: str, title: str) -> str:
    """A letter's HTML as a page of its own (the file ``nbs letter`` writes)."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>body{{font:11pt/1.4 serif;max-width:42rem;"
        "margin:2rem auto}table{border-collapse:collapse}td,th{border:1px solid #999;"
        f"padding:.2rem .4rem;text-align:left}}</style></head><body>\n{body}\n</body></html>\n"
    )


def write_pdf(body: str, path: Path) -> None:
    """Lay the letter's HTML out as a PDF (A4, the core font: text outside Latin-1 is
    written as its nearest ASCII, or ``?``)."""
    from fpdf import FPDF

    text = body.translate(_PDF_TEXT).encode("latin-1", "replace").decode("latin-1")
    pdf = FPDF(format="A4")
    pdf.set_margins(20, 18, 20)
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    pdf.write_html(text)
    pdf.output(str(path))


def send_letter(
    db: Path,
    recall_id: str,
    name: str,
    actor: str,
    config: FollowUpConfig,
    out: Path,
    templates: Path | None = None,
) -> tuple[Path, Path]:
    """Write the letter as PDF and HTML into ``out`` and record it in the contact log;
    returns (pdf, html). A recall waiting for a held plate writes nothing."""
    refuse_if_held(recall_row(db, recall_id))
    body = render_letter(db, recall_id, name, actor, templates=templates)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{recall_id}-{name}"
    html, pdf = out / f"{stem}.html", out / f"{stem}.pdf"
    html.write_text(as_page(body, f"{LETTERS[name].title} {recall_id}"), encoding="utf-8")
    write_pdf(body, pdf)
    record_sent(db, recall_id, name, actor, config, how="PDF")
    return pdf, html


def record_sent(
    db: Path, recall_id: str, name: str, actor: str, config: FollowUpConfig, how: str
) -> None:
    """Record a letter as sent in the recall's contact log (``how``: printed, PDF)."""
    letter = LETTERS[name]
    contact = Contact(
        recall_id=recall_id,
        how="letter",
        whom=letter.whom,
        note=f"{letter.title} sent ({how})",
        contacted_by=actor,
        letter=name,
    )
    record_contact(db, contact, config)
