"""One HL7 v2.5.1 ORU^R01 message per release, shaped like the HL7 newborn dried blood
spot results guide and built (and validated, STRICT) with hl7apy.

* PID: the baby's id (PID-3, the programme's assigning authority), a pseudonym name type
  (PID-5 ``S``: the message carries no name), birth time (PID-7) and sex (PID-8) only;
* OBR 57128-1 summary panel: reason for the test (57721-3: initial or subsequent screen),
  sample quality (57718-9), overall interpretation (57130-7), conditions with positive
  markers (57131-5, one OBX each), conditions tested (57719-7, one OBX each), a short
  narrative (57724-7), and the specimen (SPM: dried blood spot, collected, received);
* OBR 57717-1 card data: bar code (57723-9), birth weight (8339-4), gestational age
  (57714-8), infant factors (57713-0), feeding (67704-7, TPN), last transfusion (62317-3);
* one OBR per condition panel: its interpretation (LA18592-8 in range / LA18593-6 out of
  range, OBX-8 N / A / AA) with the call's reason as a note, then each analyte with its
  LOINC code (or the laboratory's own code in the local system), UCUM unit, the limit
  applied to this card as reference range (OBX-7) and an abnormal flag (OBX-8).

An amendment has OBR-25 ``C`` on every panel and OBX-11 ``C`` on the observations that
changed (the others ``F``). Codes are ``analytes/reporting.yaml``'s.
"""

from __future__ import annotations

from typing import Any

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Group, Message

from analytes.catalogue import Catalogue
from nbs.release.codes import Coded, Reporting
from nbs.release.hl7parts import Builder, cwe, limit_of, text, ts


def _msh(message: Message, release: dict[str, Any], reporting: Reporting, control_id: str) -> None:
    msh = message.msh
    msh.msh_3 = reporting.sending_application
    msh.msh_4 = reporting.sending_facility
    msh.msh_5 = reporting.receiving_application
    msh.msh_6 = reporting.receiving_facility
    # the release's time, not now: the same release gives the same message
    msh.msh_7 = ts(release["released_at"])
    msh.msh_9 = "ORU^R01^ORU_R01"
    msh.msh_10 = control_id
    msh.msh_11 = "P"
    msh.msh_15 = "AL"
    msh.msh_16 = "NE"
    msh.msh_18 = "UNICODE UTF-8"


def _pid(patient_result: Group, b: Builder) -> None:
    card = b.snapshot["card"]
    pid = patient_result.add_group("ORU_R01_PATIENT").pid
    pid.pid_1 = "1"
    # an id from an HL7 order keeps the assigning authority it came with (ID^^^AUTH)
    baby, _, authority = card["baby_id"].partition("^^^")
    authority = authority or b.reporting.baby_id_authority
    pid.pid_3 = f"{text(baby, 100)}^^^{text(authority, 100)}^MR"
    pid.pid_5 = "^^^^^^S"  # a pseudonym: no name is sent
    pid.pid_7 = ts(card["birth_at"])
    pid.pid_8 = card["sex"] if card["sex"] in ("M", "F") else "U"


POSITIVE = ("referral", "repeat_specimen")


def _overall(b: Builder) -> Coded:
    """57130-7: out of range for a condition, an unsatisfactory card, a new card asked for
    the card's sake, some condition not screened, or all in range."""
    calls = [c["call"] for c in b.snapshot["conditions"].values()]
    if any(call in POSITIVE for call in calls):
        return b.reporting.answer("out_of_range_any")
    if b.snapshot["card"]["specimen_quality"] != "ok":
        return b.reporting.answer("unsatisfactory")
    if b.snapshot.get("card_requests"):
        return b.reporting.answer("repeat_card")
    if any(call not in ("negative", *POSITIVE) for call in calls):
        return b.reporting.answer("not_all_screened")
    return b.reporting.answer("all_in_range")


def _narrative(b: Builder) -> str:
    """57724-7: each condition's call, in a line."""
    parts = []
    for condition, call in sorted(b.snapshot["conditions"].items()):
        urgency = f" ({call['urgency']})" if call.get("urgency") else ""
        parts.append(f"{condition}: {call['call'].replace('_', ' ')}{urgency}")
    quality = b.snapshot["card"]["specimen_quality"]
    head = "" if quality == "ok" else f"Specimen {quality.replace('_', ' ')}. "
    requests = "".join(
        f" A new card is requested: {r.split(' [cutoffs')[0].removeprefix('repeat card needed: ')}."
        for r in b.snapshot.get("card_requests", [])
    )
    return head + "; ".join(parts) + "." + requests


def summary(b: Builder, patient_result: Group) -> None:
    """The 57128-1 summary panel and the specimen."""
    r, card = b.reporting, b.snapshot["card"]
    group = b.order(patient_result, r.panels["summary"])
    obs = r.observations
    conditions = b.snapshot["conditions"]
    every = [f"condition.{c}" for c in conditions]
    first = card.get("first_of_baby", True)
    reason = r.answer("initial_screen" if first else "subsequent_screen")
    b.obx(group, "CWE", obs["reason"], cwe(reason), b.status("card.first_of_baby"))
    quality = r.answer("acceptable" if card["specimen_quality"] == "ok" else "unsatisfactory")
    if card["specimen_quality"] != "ok":
        quality = Coded(
            code=card["specimen_quality"].upper(), display=quality.display, system=quality.system
        )
    b.obx(group, "CWE", obs["sample_quality"], cwe(quality), b.status("card.specimen_quality"))
    overall = _overall(b)
    b.obx(
        group,
        "CWE",
        obs["overall"],
        cwe(overall),
        b.status(*every, "card.specimen_quality", "card.requests"),
    )
    positive = sorted(c for c, call in conditions.items() if call["call"] in POSITIVE)
    tested = sorted(c for c, call in conditions.items() if call["call"] != "not_evaluated")
    for n, condition in enumerate(positive, start=1):
        code = r.conditions[condition].answer if condition in r.conditions else _local(b, condition)
        b.obx(group, "CWE", obs["positive_conditions"], cwe(code), b.status(*every), sub_id=str(n))
    for n, condition in enumerate(tested, start=1):
        code = r.conditions[condition].answer if condition in r.conditions else _local(b, condition)
        b.obx(group, "CWE", obs["conditions_tested"], cwe(code), b.status(*every), sub_id=str(n))
    b.obx(group, "TX", obs["narrative"], text(_narrative(b)), b.status(*every, "card.requests"))
    specimen = group.add_group("ORU_R01_SPECIMEN").spm
    specimen.spm_1 = "1"
    specimen.spm_2 = f"^{text(card['specimen_id'], 80)}&{r.sending_facility}"
    specimen.spm_4 = cwe(r.specimen_type)
    specimen.spm_17 = ts(card["collected_at"])
    specimen.spm_18 = ts(card["received_at"])


def _local(b: Builder, condition: str) -> Coded:
    """A condition the reporting file does not know (a plug-in's): its own code."""
    return Coded(code=condition, display=condition, system=b.reporting.local_system)


def card_data(b: Builder, patient_result: Group) -> None:
    """The 57717-1 card data panel."""
    r, card = b.reporting, b.snapshot["card"]
    obs = r.observations
    group = b.order(patient_result, r.panels["card_data"])
    b.obx(group, "ST", obs["bar_code"], text(card["specimen_id"], 199), b.status())
    if card.get("birth_weight_g") is not None:
        b.obx(
            group,
            "NM",
            obs["birth_weight"],
            str(card["birth_weight_g"]),
            b.status("card.birth_weight_g"),
            units="g^gram^UCUM",
        )
    if card.get("gestational_age_weeks") is not None:
        b.obx(
            group,
            "NM",
            obs["gestational_age"],
            str(card["gestational_age_weeks"]),
            b.status("card.gestational_age_weeks"),
            units="wk^week^UCUM",
        )
    if card.get("transfusion") is not None:
        factor = r.answer("transfusion" if card["transfusion"] else "no_factors")
        b.obx(group, "CWE", obs["infant_factors"], cwe(factor), b.status("card.transfusion"))
    if card.get("parenteral_nutrition"):
        b.obx(
            group,
            "CWE",
            obs["feeding"],
            cwe(r.answer("tpn")),
            b.status("card.parenteral_nutrition"),
        )
    if card.get("last_transfusion_at"):
        b.obx(
            group,
            "DTM",
            obs["last_transfusion"],
            ts(card["last_transfusion_at"]),
            b.status("card.last_transfusion_at"),
        )


def _analyte_value(b: Builder, code: str, entry: dict[str, Any]) -> tuple[str, str, float | None]:
    """(OBX-2, OBX-5, the number the abnormal flag judges) of an analyte's result."""
    analyte = b.catalogue.get(code)
    value = entry["value"]
    if value is None:
        absent = analyte.no_amplification
        judged = absent.evaluated_as if absent and entry.get("flag") == "undetermined" else None
        shown = "no amplification" if judged is not None else "no value"
        return "ST", shown, judged
    number = f"{round(float(value), analyte.decimals):.{analyte.decimals}f}"
    if entry.get("censored") in _COMPARATOR:
        return "SN", f"{entry['censored']}^{number}", float(value)
    return "NM", number, float(value)


_COMPARATOR = ("<", ">")


def condition_panel(b: Builder, patient_result: Group, condition: str) -> None:
    """A condition's panel: its interpretation, then each of its analytes."""
    r = b.reporting
    call = b.snapshot["conditions"][condition]
    coding = r.conditions.get(condition)
    panel = coding.panel if coding else _local(b, f"{condition}_PANEL")
    interpretation = coding.interpretation if coding else _local(b, f"{condition}_INTERP")
    group = b.order(patient_result, panel)
    key = f"condition.{condition}"
    b.obx(
        group,
        "CWE",
        interpretation,
        cwe(r.call_answer(call["call"])),
        b.status(key),
        flag=r.abnormal_flag(call["call"]),
        note=call["reason"],
    )
    markers = list(b.snapshot["markers"].get(condition, []))
    markers += [a for a in (coding.analytes if coding else ()) if a not in markers]
    for code in markers:
        entry = b.snapshot["analytes"].get(code)
        if entry is None or code not in b.catalogue.codes:
            continue
        kind, value, judged = _analyte_value(b, code, entry)
        limit = limit_of(call["reason"], code)
        flag = ""
        if limit is not None and judged is not None:
            flag = "A" if limit.abnormal(judged) else "N"
        unit = r.unit(entry["unit"])
        b.obx(
            group,
            kind,
            r.analyte_code(b.catalogue.get(code)),
            value,
            b.status(f"analyte.{code}"),
            units=f"{unit}^{unit}^UCUM",
            reference=limit.reference if limit else "",
            flag=flag,
            note=entry["basis"] if entry["basis"] != "first punch" else "",
        )


def control_id(release_id: int) -> str:
    """MSH-10 of a release's message: the same for every export of it."""
    return f"NBS{release_id:09d}"


def build_oru(release: dict[str, Any], reporting: Reporting, catalogue: Catalogue) -> Message:
    """The ORU^R01 of one release (``release``: a row of ``releases_since`` with its
    ``snapshot`` and ``changed`` decoded), validated STRICT (hl7apy ValidationError)."""
    b = Builder(release, reporting, catalogue)
    message = Message("ORU_R01", version="2.5.1", validation_level=VALIDATION_LEVEL.STRICT)
    _msh(message, release, reporting, control_id(int(release["release_id"])))
    patient_result = message.add_group("ORU_R01_PATIENT_RESULT")
    _pid(patient_result, b)
    summary(b, patient_result)
    card_data(b, patient_result)
    for condition in sorted(b.snapshot["conditions"]):
        condition_panel(b, patient_result, condition)
    message.validate()
    return message
