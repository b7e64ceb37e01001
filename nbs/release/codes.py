"""The reporting codes (``analytes/reporting.yaml``): panels, observations, LOINC answer
codes per call and condition, UCUM units; checked when loaded."""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from analytes.catalogue import DEFAULT_CATALOGUE, Analyte
from nbs.yamlfile import load_yaml

DEFAULT_REPORTING = DEFAULT_CATALOGUE.with_name("reporting.yaml")
#: the observations and answers the messages need (a file without one is refused)
OBSERVATIONS = (
    "reason",
    "sample_quality",
    "overall",
    "positive_conditions",
    "conditions_tested",
    "narrative",
    "birth_weight",
    "gestational_age",
    "bar_code",
    "infant_factors",
    "feeding",
    "last_transfusion",
)
ANSWERS = (
    "initial_screen",
    "subsequent_screen",
    "acceptable",
    "all_in_range",
    "out_of_range_any",
    "transfusion",
    "no_factors",
    "tpn",
    "in_range",
    "out_of_range",
)
LOCAL_ANSWERS = ("not_all_screened", "not_evaluated", "unsatisfactory", "repeat_card")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Coded(_Frozen):
    """A code with its display name (and its system when it is not LOINC)."""

    code: str
    display: str
    system: str = "LN"


class CallCoding(_Frozen):
    """How a call is reported: its interpretation answer and the abnormal flag (OBX-8)."""

    answer: str | None = None
    local_answer: str | None = None
    abnormal_flag: str = ""


class ConditionCoding(_Frozen):
    """A condition's answer code, panel and the panel's interpretation observation."""

    answer: Coded
    panel: Coded
    interpretation: Coded
    analytes: tuple[str, ...] = ()


class Reporting(_Frozen):
    """The whole file."""

    reporting_version: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    local_system: str
    local_system_uri: str
    baby_id_authority: str
    baby_id_system: str
    specimen_id_system: str
    specimen_type: Coded
    panels: dict[str, Coded]
    observations: dict[str, Coded]
    answers: dict[str, Coded]
    local_answers: dict[str, str]
    calls: dict[str, CallCoding]
    conditions: dict[str, ConditionCoding]
    ucum: dict[str, str]

    @model_validator(mode="after")
    def _complete(self) -> Reporting:
        for part, names in (
            ("panels", ("summary", "card_data")),
            ("observations", OBSERVATIONS),
            ("answers", ANSWERS),
            ("local_answers", LOCAL_ANSWERS),
        ):
            missing = sorted(set(names) - set(getattr(self, part)))
            if missing:
                raise ValueError(f"{part}: missing {', '.join(missing)}")
        for call, coding in self.calls.items():
            if coding.answer and coding.answer not in self.answers:
                raise ValueError(f"calls.{call}: no answer {coding.answer!r}")
            if coding.local_answer and coding.local_answer not in self.local_answers:
                raise ValueError(f"calls.{call}: no local answer {coding.local_answer!r}")
        return self

    def answer(self, name: str) -> Coded:
        """A LOINC answer, or a local one (in the local system)."""
        if name in self.answers:
            return self.answers[name]
        return Coded(code=name.upper(), display=self.local_answers[name], system=self.local_system)

    def call_answer(self, call: str) -> Coded:
        """The interpretation answer of a call."""
        coding = self.calls.get(call) or self.calls["not_evaluated"]
        return self.answer(coding.answer or coding.local_answer or "not_evaluated")

    def abnormal_flag(self, call: str) -> str:
        """OBX-8 of a condition's interpretation."""
        coding = self.calls.get(call)
        return coding.abnormal_flag if coding else ""

    def analyte_code(self, analyte: Analyte) -> Coded:
        """The analyte's LOINC code, or the laboratory's own code in the local system."""
        if analyte.loinc:
            return Coded(code=analyte.loinc, display=analyte.name)
        return Coded(code=analyte.code, display=analyte.name, system=self.local_system)

    def unit(self, unit: str) -> str:
        """The UCUM code of a catalogue unit (the unit itself when not listed)."""
        return self.ucum.get(unit, unit)


@functools.cache
def load_reporting(path: Path | None = None) -> Reporting:
    """The reporting codes (the installed file by default)."""
    return Reporting.model_validate(load_yaml(path or DEFAULT_REPORTING))
