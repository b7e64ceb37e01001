"""The maternities' report cards: per submitting unit and month, the figures of its own
cards (unsatisfactory specimens, missing information, age at collection, transit time,
repeat cards requested and received) with the programme's beside them; one HTML and one
PDF file per unit, which the laboratory sends (``nbs report-cards``, and the Prefect
deployment ``monthly-report-cards``).

A card tells a unit about its own cards; it holds no baby or specimen identifier.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import re
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, Template, select_autoescape

from nbs import store
from nbs.store import stats as stats_store


class ReportCardError(ValueError):
    """A month that cannot be reported (the message says why)."""


@dataclass(frozen=True)
class Measure:
    """One line of a report card: a column of ``submitter_months``."""

    column: str
    label: str
    unit: str = ""
    #: what the programme aims at (the README's timeliness targets: NewSTEPs, DGNS)
    target: str = ""


MEASURES: tuple[Measure, ...] = (
    Measure("cards", "Cards received"),
    Measure("unsatisfactory", "Unsatisfactory cards"),
    Measure("unsatisfactory_pct", "Unsatisfactory cards", "%"),
    Measure("missing_information", "Cards missing essential information"),
    Measure("missing_information_pct", "Cards missing essential information", "%"),
    Measure("first_cards", "First cards of a baby"),
    Measure("age_at_collection_median_h", "Age at collection, median", "h", "48-72 h of life"),
    Measure("collected_by_72h_pct", "First cards collected by 72 h of life", "%"),
    Measure("transit_median_h", "Collection to receipt, median", "h", "within 24-72 h"),
    Measure("received_within_72h_pct", "Received within 72 h of collection", "%"),
    Measure("repeat_requested", "Repeat cards requested"),
    Measure("repeat_received", "Repeat cards received (of those requested)"),
)


#: a line of a card: the measure, the unit's figure, the programme's, the target
Line = tuple[str, str, str, str]


@dataclass(frozen=True)
class ReportCard:
    """The files written for one submitting unit."""

    submitter: str
    html: Path
    pdf: Path
    lines: tuple[Line, ...]


def parse_month(text: str | None, today: dt.date | None = None) -> dt.date:
    """``YYYY-MM`` as the first day of that month; None: the month before ``today``'s."""
    if text is None:
        first = (today or store.utc_now().date()).replace(day=1)
        return (first - dt.timedelta(days=1)).replace(day=1)
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ReportCardError(f"--month must be YYYY-MM (2026-03); not {text!r}")
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


def _shown(value: object, unit: str) -> str:
    if value is None:
        return "–"
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{text} {unit}" if unit else text


def _lines(own: dict[str, object], programme: dict[str, object]) -> tuple[Line, ...]:
    return tuple(
        (m.label, _shown(own.get(m.column), m.unit), _shown(programme.get(m.column), m.unit),
         m.target)
        for m in MEASURES
    )  # fmt: skip


def _file_stem(submitter: str, month: dt.date) -> str:
    # the unit's code as the laboratory knows it, made safe as a file name
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", submitter).strip("._") or "unit"
    return f"report-card-{safe}-{month:%Y-%m}"


def write_report_cards(db: Path, month: dt.date, out: Path) -> list[ReportCard]:
    """One HTML and one PDF file per submitting unit with cards collected in ``month``."""
    rows = stats_store.submitter_month(db, month).rows(named=True)
    programme = next((r for r in rows if r["submitter"] is None), None)
    if programme is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    template = _template()
    written = []
    for own in (r for r in rows if r["submitter"] is not None):
        submitter = str(own["submitter"])
        lines = _lines(own, programme)
        stem = _file_stem(submitter, month)
        html = out / f"{stem}.html"
        html.write_text(
            template.render(submitter=submitter, month=month, lines=lines,
                            generated=store.utc_now()),
            encoding="utf-8",
        )  # fmt: skip
        pdf = out / f"{stem}.pdf"
        _write_pdf(pdf, submitter, month, lines)
        written.append(ReportCard(submitter, html, pdf, lines))
    return written


def _template() -> Template:
    env = Environment(autoescape=select_autoescape(["html"]))
    text = (
        importlib.resources.files("nbs.stats.report_templates")
        .joinpath("report_card.html")
        .read_text()
    )
    return env.from_string(text)


def _write_pdf(path: Path, submitter: str, month: dt.date, lines: tuple[Line, ...]) -> None:
    """The same card as a one-page PDF (fpdf2's core font: Latin-1 text only)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(f"Newborn screening report card {submitter} {month:%Y-%m}")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 10, _latin(f"Newborn screening report card: {submitter}, {month:%B %Y}"))
    pdf.ln(12)
    pdf.set_font("Helvetica", size=9)
    pdf.multi_cell(
        0, 5,
        "Your unit's cards collected this month, with the whole programme's figures beside "
        "them. Aggregated figures only: no names or identifiers.",
    )  # fmt: skip
    pdf.ln(3)
    with pdf.table(col_widths=(70, 30, 30, 50), text_align=("LEFT", "RIGHT", "RIGHT", "LEFT")) as t:
        t.row(("Measure", "Your unit", "Programme", "Target"))
        for line in lines:
            t.row(tuple(_latin(cell) for cell in line))
    pdf.output(str(path))


def _latin(text: str) -> str:
    # the core fonts know Latin-1 only: the dash of an empty figure becomes a hyphen
    return text.replace("–", "-").encode("latin-1", "replace").decode("latin-1")
