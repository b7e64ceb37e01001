"""The parts of an ORU^R01 message every panel uses: the builder holding the release's
facts (OBR and OBX numbering, the amendment's status codes), HL7 times and texts, and the
limit applied to a marker (OBX-7 and OBX-8) as the call's reason gives it."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from hl7apy.core import Group

from analytes.catalogue import Catalogue
from nbs.release.codes import Coded, Reporting

#: the limit parts of a reason, in order of preference: (pattern, abnormal direction)
_LIMITS = (
    (re.compile(r"repeat ([≥≤])\s*(-?[\d.]+)"), None),
    (re.compile(r"absent at Ct ([≥≤])\s*(-?[\d.]+)"), None),
    (re.compile(r"valid at Ct ≤\s*(-?[\d.]+)"), ">"),
)


def ts(value: str | dt.datetime | None) -> str:
    """A card's time (its ISO text, the laboratory's local time) as HL7 DTM, to the
    second; a release's time (a datetime, kept in UTC) with its offset ``+0000``."""
    if not value:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y%m%d%H%M%S") + "+0000"
    return dt.datetime.fromisoformat(value).strftime("%Y%m%d%H%M%S")


def text(value: str, limit: int = 2000) -> str:
    """Free text safe in a field: HL7's component and repetition separators replaced."""
    cleaned = value.replace("^", " ").replace("&", "+").replace("~", "-")
    return " ".join(cleaned.split())[:limit]


def cwe(code: Coded) -> str:
    return f"{code.code}^{text(code.display, 199)}^{code.system}"


@dataclass(frozen=True)
class Limit:
    """The limit applied to a marker on this card: abnormal at ``op`` ``value``."""

    op: str  # ">=", "<=", ">"
    value: float

    @property
    def reference(self) -> str:
        """OBX-7: the normal side of the limit."""
        text = f"{self.value:g}"
        return {">=": f"<{text}", "<=": f">{text}", ">": f"<={text}"}[self.op]

    def abnormal(self, value: float) -> bool:
        """Whether a value is on the abnormal side (a value at a limit reaches it)."""
        if self.op == ">=":
            return value >= self.value
        if self.op == "<=":
            return value <= self.value
        return value > self.value


def limit_of(reason: str, marker: str) -> Limit | None:
    """The limit the call's reason gives for a marker (its stratum's new-card limit)."""
    found = re.search(rf"(?<![\w/]){re.escape(marker)}(?![\w/])[^();]*\(([^)]*)\)", reason)
    if not found:
        return None
    inside = found.group(1)
    for pattern, forced in _LIMITS:
        hit = pattern.search(inside)
        if hit and forced:
            return Limit(forced, float(hit.group(1)))
        if hit:
            return Limit(">=" if hit.group(1) == "≥" else "<=", float(hit.group(2)))
    return None


@dataclass
class Builder:
    """The message under construction, with the release's facts."""

    release: dict[str, Any]
    reporting: Reporting
    catalogue: Catalogue
    obr_count: int = 0
    obx_counts: dict[int, int] = field(default_factory=dict)

    @property
    def snapshot(self) -> dict[str, Any]:
        return self.release["snapshot"]

    @property
    def amendment(self) -> bool:
        return self.release["kind"] == "amendment"

    def status(self, *keys: str) -> str:
        """OBX-11: ``C`` when an amendment changes one of these observations."""
        changed = set(self.release.get("changed") or ())
        return "C" if self.amendment and changed & set(keys) else "F"

    def order(self, patient_result: Group, panel: Coded) -> Group:
        """A new order observation group with its OBR."""
        self.obr_count += 1
        card = self.snapshot["card"]
        group = patient_result.add_group("ORU_R01_ORDER_OBSERVATION")
        obr = group.obr
        obr.obr_1 = str(self.obr_count)
        obr.obr_3 = f"{card['specimen_id']}^{self.reporting.sending_facility}"
        obr.obr_4 = cwe(panel)
        obr.obr_7 = ts(card["collected_at"])
        obr.obr_22 = ts(self.release["released_at"])
        obr.obr_25 = "C" if self.amendment else "F"
        return group

    def obx(
        self, group: Group, kind: str, code: Coded, value: str, status: str, **more: str
    ) -> Group:
        """An observation (OBX-1 numbered within its panel); ``more``: sub_id, units,
        reference, flag, note."""
        number = self.obx_counts.get(id(group), 0) + 1
        self.obx_counts[id(group)] = number
        obs = group.add_group("ORU_R01_OBSERVATION")
        obx = obs.obx
        obx.obx_1 = str(number)
        obx.obx_2 = kind
        obx.obx_3 = cwe(code)
        if more.get("sub_id"):
            obx.obx_4 = more["sub_id"]
        obx.obx_5 = value
        for name, attr in (("units", "obx_6"), ("reference", "obx_7"), ("flag", "obx_8")):
            if more.get(name):
                setattr(obx, attr, more[name])
        obx.obx_11 = status
        obx.obx_14 = ts(self.release["released_at"])
        if more.get("note"):
            obs.add_segment("NTE").nte_3 = text(more["note"])
        return obs
