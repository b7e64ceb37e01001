"""One FHIR R4 Bundle (type ``collection``) per release: the baby (Patient: the
programme's id, sex, birth date and time; no name), the card (Specimen), one Observation
per analyte and one per condition interpretation (its members the analytes), and the
DiagnosticReport 57128-1 that lists them. Built with the ``fhir.resources.R4B`` models
(the package's root is R5), each resource validated by its model. The codes are the
ORU's (``analytes/reporting.yaml``); an amendment's report and its changed observations
are ``corrected``.

Stored times are the laboratory's local time (``lab_time_zone``); FHIR times carry the
offset.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.specimen import Specimen

from analytes.catalogue import Catalogue
from nbs import settings
from nbs.release.codes import Coded, Reporting
from nbs.release.hl7parts import limit_of

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
BIRTH_TIME = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
GENDER = {"M": "male", "F": "female"}
#: the model of each resource type the bundles hold
MODELS: dict[str, Any] = {
    "Patient": Patient,
    "Specimen": Specimen,
    "Observation": Observation,
    "DiagnosticReport": DiagnosticReport,
}


def _system(code: Coded, reporting: Reporting) -> str:
    return {"LN": LOINC, "SCT": SNOMED}.get(code.system, reporting.local_system_uri)


def _concept(code: Coded, reporting: Reporting) -> dict[str, Any]:
    return {
        "coding": [{"system": _system(code, reporting), "code": code.code, "display": code.display}]
    }


def _time(value: str | None) -> str | None:
    """A card's time (the laboratory's local time) with its offset."""
    if not value:
        return None
    zone = ZoneInfo(settings.current().lab_time_zone)
    return dt.datetime.fromisoformat(value).replace(tzinfo=zone).isoformat()


def _utc(value: dt.datetime) -> str:
    """A time the store keeps in UTC (a release's), with its offset."""
    return value.replace(tzinfo=dt.UTC).isoformat()


def _urn(release: dict[str, Any], name: str) -> str:
    """A stable id: the same release gives the same bundle."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"nbs-release/{release['release_id']}/{name}"))


class _Bundle:
    """The resources of one release, each validated as it is added."""

    def __init__(self, release: dict[str, Any], reporting: Reporting) -> None:
        self.release, self.reporting = release, reporting
        self.entries: list[dict[str, Any]] = []
        self.snapshot: dict[str, Any] = release["snapshot"]

    def add(self, name: str, resource: dict[str, Any]) -> str:
        """Validate ``resource`` by its model; its reference (``urn:uuid:...``)."""
        rid = _urn(self.release, name)
        model = MODELS[resource["resourceType"]].model_validate({**resource, "id": rid})
        self.entries.append({"fullUrl": f"urn:uuid:{rid}", "resource": model})
        return f"urn:uuid:{rid}"

    def status(self, key: str) -> str:
        changed = set(self.release.get("changed") or ())
        amended = self.release["kind"] == "amendment"
        return "corrected" if amended and key in changed else "final"


def _patient(b: _Bundle) -> str:
    card = b.snapshot["card"]
    birth = _time(card["birth_at"])
    return b.add(
        "patient",
        {
            "resourceType": "Patient",
            "identifier": [{"system": b.reporting.baby_id_system, "value": card["baby_id"]}],
            "gender": GENDER.get(card["sex"], "unknown"),
            "birthDate": card["birth_at"][:10],
            "_birthDate": {"extension": [{"url": BIRTH_TIME, "valueDateTime": birth}]},
        },
    )


def _specimen(b: _Bundle, patient: str) -> str:
    card = b.snapshot["card"]
    return b.add(
        "specimen",
        {
            "resourceType": "Specimen",
            "identifier": [
                {"system": b.reporting.specimen_id_system, "value": card["specimen_id"]}
            ],
            "type": _concept(b.reporting.specimen_type, b.reporting),
            "subject": {"reference": patient},
            "receivedTime": _time(card["received_at"]),
            "collection": {"collectedDateTime": _time(card["collected_at"])},
        },
    )


def _analyte(b: _Bundle, catalogue: Catalogue, code: str, reason: str, refs: dict[str, str]) -> str:
    """One analyte's Observation (once per bundle, shared by the conditions using it)."""
    entry = b.snapshot["analytes"][code]
    analyte = catalogue.get(code)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": b.status(f"analyte.{code}"),
        "code": _concept(b.reporting.analyte_code(analyte), b.reporting),
        "subject": {"reference": refs["patient"]},
        "specimen": {"reference": refs["specimen"]},
    }
    limit = limit_of(reason, code)
    if entry["value"] is None:
        resource["valueString"] = (
            "no amplification" if entry.get("flag") == "undetermined" else "no value"
        )
    else:
        unit = b.reporting.unit(entry["unit"])
        quantity: dict[str, Any] = {
            "value": round(float(entry["value"]), analyte.decimals),
            "unit": entry["unit"],
            "system": UCUM,
            "code": unit,
        }
        if entry.get("censored") in ("<", ">"):
            quantity["comparator"] = entry["censored"]
        resource["valueQuantity"] = quantity
        if limit is not None:
            flag = "A" if limit.abnormal(float(entry["value"])) else "N"
            resource["interpretation"] = [{"coding": [{"system": V3_INTERPRETATION, "code": flag}]}]
    if limit is not None:
        resource["referenceRange"] = [{"text": limit.reference}]
    return b.add(f"analyte/{code}", resource)


def _condition(
    b: _Bundle, catalogue: Catalogue, condition: str, refs: dict[str, str], done: dict[str, str]
) -> str:
    """A condition's interpretation Observation, with its analytes as members."""
    call = b.snapshot["conditions"][condition]
    coding = b.reporting.conditions.get(condition)
    markers = list(b.snapshot["markers"].get(condition, []))
    markers += [a for a in (coding.analytes if coding else ()) if a not in markers]
    members = []
    for code in markers:
        if code in b.snapshot["analytes"] and code in catalogue.codes:
            if code not in done:
                done[code] = _analyte(b, catalogue, code, call["reason"], refs)
            members.append({"reference": done[code]})
    code = (
        coding.interpretation
        if coding
        else Coded(code=f"{condition}_INTERP", display=condition, system=b.reporting.local_system)
    )
    resource = {
        "resourceType": "Observation",
        "status": b.status(f"condition.{condition}"),
        "code": _concept(code, b.reporting),
        "subject": {"reference": refs["patient"]},
        "specimen": {"reference": refs["specimen"]},
        "valueCodeableConcept": _concept(b.reporting.call_answer(call["call"]), b.reporting),
        "note": [{"text": call["reason"]}],
    }
    if members:
        resource["hasMember"] = members
    return b.add(f"condition/{condition}", resource)


def build_bundle(release: dict[str, Any], reporting: Reporting, catalogue: Catalogue) -> Bundle:
    """The Bundle of one release (``release`` as :func:`nbs.release.oru.build_oru` takes)."""
    b = _Bundle(release, reporting)
    refs = {"patient": _patient(b)}
    refs["specimen"] = _specimen(b, refs["patient"])
    done: dict[str, str] = {}
    results = [
        {"reference": _condition(b, catalogue, condition, refs, done)}
        for condition in sorted(b.snapshot["conditions"])
    ]
    results += [{"reference": ref} for ref in done.values()]
    amended = release["kind"] == "amendment"
    # a new card asked for the card's sake (too early, transfused...) as the conclusion
    requests = [r.split(" [cutoffs")[0] for r in b.snapshot.get("card_requests", [])]
    b.add(
        "report",
        {
            "resourceType": "DiagnosticReport",
            "status": "corrected" if amended else "final",
            "code": _concept(reporting.panels["summary"], reporting),
            "subject": {"reference": refs["patient"]},
            "specimen": [{"reference": refs["specimen"]}],
            "issued": _utc(release["released_at"]),
            "result": results,
            **({"conclusion": " ".join(requests)} if requests else {}),
        },
    )
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "id": _urn(release, "bundle"),
            "type": "collection",
            "timestamp": _utc(release["released_at"]),
            "entry": b.entries,
        }
    )
