"""A newborn-screening order (OML^O21, ORM^O01) read from a parsed HL7 v2 message.

Each message ends one of three ways:

* ``accepted``: a card order, every value typed, converted and plausible;
* ``quarantined``: a newborn-screening order with a value missing, of the wrong type or
  implausible (a birth weight of 2,100,000 g, a gestational age in months, a date in
  words). Nothing of it is stored as a value; each problem names segment, field and value;
* ``refused``: not a newborn-screening order at all (an ADT, an ORM for a lipid panel) or
  not a readable message.

Codes, units and ranges are the configuration's (``analytes/hl7.yaml``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from nbs.intake.hl7_codes import NotADateTime, OrderCodes, hl7_datetime, load_codes
from nbs.intake.hl7_read import Parsed, component, repetitions
from nbs.intake.hl7_read import field as hl7_field

Status = Literal["accepted", "quarantined", "refused"]


@dataclass(frozen=True)
class Problem:
    """Why a message is not stored as an order: the place (``OBX-5 (8339-4)``), the value
    as it arrived, and the reason naming both."""

    place: str
    value: str
    reason: str


@dataclass(frozen=True)
class Outcome:
    """What became of one message."""

    index: int
    status: Status
    control_id: str
    message_type: str
    order: dict[str, Any] | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ack_code(self) -> str:
        """The acknowledgement it earns: AA accepted, AE quarantined, AR refused."""
        return {"accepted": "AA", "quarantined": "AE", "refused": "AR"}[self.status]


def _segments(parsed: Parsed, name: str) -> list[Any]:
    return [s for s in parsed.segments if s.name == name]


def _first(parsed: Parsed, name: str) -> Any | None:
    found = _segments(parsed, name)
    return found[0] if found else None


def _value(parsed: Parsed, name: str, number: int) -> str:
    seg = _first(parsed, name)
    return hl7_field(seg, number) if seg is not None else ""


class _Reader:
    """Collects an order's values and the problems found on the way."""

    def __init__(self, parsed: Parsed, codes: OrderCodes) -> None:
        self.parsed = parsed
        self.codes = codes
        self.problems: list[Problem] = []
        self.ordered_at: dt.datetime | None = None
        #: OBX of each card data code: (value as sent, unit, value type)
        self.obx: dict[str, list[tuple[str, str, str]]] = {}
        for seg in _segments(parsed, "OBX"):
            code = component(hl7_field(seg, 3), 1)
            unit = component(hl7_field(seg, 6), 1)
            kind = hl7_field(seg, 2)
            for rep in repetitions(seg, 5) or [""]:
                self.obx.setdefault(code, []).append((rep, unit, kind))

    def problem(self, place: str, value: str, what: str) -> None:
        self.problems.append(Problem(place, value, f"{place}: '{value}' {what}"))

    def time(self, place: str, text: str, need_time: bool = True) -> dt.datetime | None:
        """A date-time field in laboratory time, or None (a problem noted) when it is not."""
        try:
            value = hl7_datetime(text, need_time)
        except NotADateTime as exc:
            self.problem(place, text, str(exc))
            return None
        limit = self.codes.plausible["future_tolerance_hours"]
        if self.ordered_at and value > self.ordered_at + dt.timedelta(hours=limit):
            self.problem(place, text, "is after the message was sent (in the future)")
            return None
        return value

    def obx_place(self, code: str) -> str:
        return f"OBX-5 of {self.codes.label(code)}"

    def single(self, key: str) -> tuple[str, str, str] | None:
        code = self.codes.observations[key]
        found = [v for v in self.obx.get(code, []) if v[0].strip()]
        return found[0] if found else None

    def answers(self, key: str) -> list[str] | None:
        """The coded answers of an observation (None: not sent)."""
        code = self.codes.observations[key]
        if code not in self.obx:
            return None
        return [component(v[0], 1) for v in self.obx[code] if v[0].strip()]

    def number(self, key: str, target: str, integer: bool = True) -> float | None:
        """A quantity with its unit checked and converted to ``target``'s unit; None (and
        a problem when sent but wrong) otherwise."""
        sent = self.single(key)
        if sent is None:
            return None
        text, unit, _ = sent
        code = self.codes.observations[key]
        place = self.obx_place(code)
        try:
            number = float(text.strip())
        except ValueError:
            self.problem(place, text, "is not a number")
            return None
        factors = self.codes.units[target]
        if unit not in factors:
            known = ", ".join(factors)
            self.problem(
                place, text, f"{unit or '(no unit)'}: unit not accepted (expected {known})"
            )
            return None
        converted = number * factors[unit]
        low, high = self.codes.limits(target)
        if not math.isfinite(converted) or not low <= converted <= high:
            shown = f"{converted:,.0f}" if math.isfinite(converted) else text
            self.problem(
                place,
                text,
                f"{unit} is not plausible ({shown} in {target}; plausible {low:g}-{high:g})",
            )
            return None
        return float(math.floor(converted + 1e-9)) if integer else converted


def _nbs_panel(parsed: Parsed, codes: OrderCodes) -> tuple[str | None, list[str]]:
    """The first OBR-4 that is a newborn-screening panel, and every OBR-4 code sent."""
    sent = [component(hl7_field(s, 4), 1) for s in _segments(parsed, "OBR")]
    return next((c for c in sent if c in codes.nbs_panels), None), sent


def _refusal(parsed: Parsed, codes: OrderCodes) -> Problem | None:
    """Why the message is not a newborn-screening order (None: it is one)."""
    msg_type = _value(parsed, "MSH", 9)
    kind = "^".join(msg_type.split("^")[:2])
    if kind not in codes.order_messages:
        expected = " or ".join(codes.order_messages)
        return Problem(
            "MSH-9",
            msg_type,
            f"MSH-9: '{msg_type}' is not a newborn-screening order (expected {expected})",
        )
    panel, sent = _nbs_panel(parsed, codes)
    if panel is None:
        shown = ", ".join(c or "(empty)" for c in sent) or "(no OBR)"
        expected = ", ".join(codes.nbs_panels)
        return Problem(
            "OBR-4",
            shown,
            f"OBR-4: '{shown}' is not a newborn-screening panel (expected {expected})",
        )
    return None


def _card_id(r: _Reader) -> str | None:
    """The card id: the bar code observation, else SPM-2, else the placer order id."""
    bar = r.single("bar_code")
    if bar is not None:
        return bar[0].strip()
    for name, number in (("SPM", 2), ("ORC", 2), ("OBR", 2)):
        seg = _first(r.parsed, name)
        value = component(hl7_field(seg, number), 1) if seg is not None else ""
        if value.strip():
            return value.strip()
    r.problem("OBX-5 of 57723-9 (bar code)", "", "no card id (nor SPM-2, ORC-2 or OBR-2)")
    return None


def _baby_id(r: _Reader) -> str | None:
    """PID-3 with its assigning authority: ``ID^^^AUTHORITY``."""
    text = _value(r.parsed, "PID", 3)
    ident = component(text, 1).strip()
    if not ident:
        r.problem("PID-3", text, "has no patient identifier")
        return None
    authority = component(text, 4, 1) or component(text, 4, 2)
    return f"{ident}^^^{authority}" if authority else ident


def _sex(r: _Reader) -> str | None:
    text = _value(r.parsed, "PID", 8)
    code = component(text, 1).strip().upper()
    if code not in r.codes.sex:
        known = ", ".join(r.codes.sex)
        r.problem("PID-8", text, f"is not an administrative sex code (expected {known})")
        return None
    return r.codes.sex[code]


def _collected(r: _Reader) -> dt.datetime | None:
    """OBR-7 of the first OBR that gives it, else SPM-17 (its start)."""
    for seg in _segments(r.parsed, "OBR"):
        text = hl7_field(seg, 7)
        if text.strip():
            return r.time("OBR-7", component(text, 1))
    spm = _first(r.parsed, "SPM")
    text = component(hl7_field(spm, 17), 1) if spm is not None else ""
    if text.strip():
        return r.time("SPM-17", text)
    r.problem("OBR-7", "", "no collection time (nor SPM-17)")
    return None


def _submitter(r: _Reader) -> str | None:
    """The ordering facility (ORC-21), else the entering organisation (ORC-17), else the
    sending facility (MSH-4): the first that names one."""
    for name, number in (("ORC", 21), ("ORC", 17), ("MSH", 4)):
        value = component(_value(r.parsed, name, number), 1).strip()
        if value:
            return value
    return None


def _flags(r: _Reader) -> dict[str, bool | None]:
    """Parenteral nutrition, transfusion, NICU and antibiotics from the coded answers
    (None where the observation was not sent: unknown, not false)."""
    feeding = r.answers("feeding")
    factors = r.answers("infant_factors")

    def has(answers: list[str] | None, key: str) -> bool | None:
        if answers is None:
            return None
        return any(a in r.codes.answers[key] for a in answers)

    return {
        "parenteral_nutrition": has(feeding, "parenteral_nutrition"),
        "transfusion": has(factors, "transfusion"),
        "nicu": has(factors, "nicu"),
        "antibiotics": has(factors, "antibiotics"),
    }


def _count(r: _Reader, key: str) -> int | None:
    """A small whole number (plurality, birth order) or None."""
    sent = r.single(key)
    if sent is None:
        return None
    text = sent[0]
    code = r.codes.observations[key]
    low, high = r.codes.limits("plurality")
    try:
        value = int(component(text, 1).strip())
    except ValueError:
        r.problem(r.obx_place(code), text, "is not a whole number")
        return None
    if not low <= value <= high:
        r.problem(r.obx_place(code), text, f"is not plausible (plausible {low:g}-{high:g})")
        return None
    return value


def _text(r: _Reader, key: str) -> str | None:
    """A text observation, its components joined by spaces (None: not sent)."""
    sent = r.single(key)
    if sent is None:
        return None
    return " ".join(p for p in sent[0].split("^") if p).strip() or None


def _checked_times(r: _Reader, order: dict[str, Any]) -> None:
    """Birth before collection, collection within the plausible days of life, a
    transfusion not before birth; else the later time's field is a problem."""
    birth, collected = order["birth_at"], order["collected_at"]
    days = r.codes.plausible["collection_days_after_birth"]
    if birth and collected and not birth <= collected <= birth + dt.timedelta(days=days):
        r.problem("OBR-7", f"{collected:%Y%m%d%H%M}", f"is not within {days} days after birth")
    last = order["last_transfusion_at"]
    if birth and last and last < birth:
        code = r.codes.observations["last_transfusion"]
        r.problem(r.obx_place(code), f"{last:%Y%m%d%H%M}", "is before the baby's birth")


def _order_values(r: _Reader) -> dict[str, Any]:
    """Every value of the order (None where missing or wrong: the problems say which)."""
    last_text = r.single("last_transfusion")
    last = None
    if last_text is not None:
        code = r.codes.observations["last_transfusion"]
        last = r.time(r.obx_place(code), last_text[0].strip(), need_time=False)
    weight = r.number("birth_weight", "birth_weight_g")
    weeks = r.number("gestational_age", "gestational_age_weeks")
    order: dict[str, Any] = {
        "specimen_id": _card_id(r),
        "baby_id": _baby_id(r),
        "birth_at": r.time("PID-7", _value(r.parsed, "PID", 7)),
        "collected_at": _collected(r),
        "sex": _sex(r),
        "birth_weight_g": int(weight) if weight is not None else None,
        "gestational_age_weeks": int(weeks) if weeks is not None else None,
        **_flags(r),
        "last_transfusion_at": last,
        "plurality": _count(r, "plurality"),
        "birth_order": _count(r, "birth_order"),
        "submitter": _submitter(r),
        "provider_name": _text(r, "provider_name"),
        "provider_phone": _text(r, "provider_phone"),
        "placer_order_id": component(_value(r.parsed, "ORC", 2), 1).strip() or None,
        "ordered_at": r.ordered_at,
    }
    if last is not None:
        order["transfusion"] = True  # a transfusion date says there was one
    if order["plurality"] and order["birth_order"] and order["birth_order"] > order["plurality"]:
        code = r.codes.observations["birth_order"]
        r.problem(r.obx_place(code), str(order["birth_order"]), "is above the plurality")
    _checked_times(r, order)
    return order


def read_order(parsed: Parsed, codes: OrderCodes | None = None) -> Outcome:
    """What becomes of one parsed message (see the module's description)."""
    codes = codes or load_codes()
    index = parsed.raw.index
    if parsed.message is None:
        reason = parsed.error or "not a readable HL7 v2 message"
        head = parsed.raw.er7[:60]
        return Outcome(index, "refused", "", "", None, [Problem("MSH", head, reason)])
    control_id = _value(parsed, "MSH", 10).strip()
    msg_type = _value(parsed, "MSH", 9)
    refusal = _refusal(parsed, codes)
    if refusal is not None:
        return Outcome(index, "refused", control_id, msg_type, None, [refusal])
    r = _Reader(parsed, codes)
    if not control_id:
        r.problem("MSH-10", "", "has no message control id")
    sent_at = _value(parsed, "MSH", 7)
    r.ordered_at = r.time("MSH-7", component(sent_at, 1)) if sent_at.strip() else None
    order = _order_values(r)
    order["message_control_id"] = control_id
    order["message_type"] = msg_type
    if r.problems:
        return Outcome(index, "quarantined", control_id, msg_type, None, r.problems)
    return Outcome(index, "accepted", control_id, msg_type, order)
