"""Instrument profiles: how an instrument's own export maps onto the canonical results
file, written in YAML by the laboratory (``analytes/instruments/*.yaml``), so that a new
instrument needs a profile, not code.

A profile names its reader (``quantstudio`` for the qPCR "Results" export, ``plate_table``
for delimited plate exports with header lines), how the export names targets or analytes
(resolved through the catalogue's aliases afterwards), the role of each well, and the
control materials. Every reader produces canonical result rows: the same validation,
units and quarantine apply as to a hand-made results file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from analytes.catalogue import DEFAULT_CATALOGUE
from nbs.yamlfile import load_yaml

#: the shipped profiles, beside the catalogue
PROFILE_DIR = DEFAULT_CATALOGUE.with_name("instruments")

SampleType = Literal["specimen", "control", "calibrator", "blank"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    """How one target's (or analyte's) value is read."""

    analyte: str | None = None
    """Catalogue code or alias (default: the export's name, resolved through the aliases)."""
    value: Literal["ct", "quantity", "value"] = "value"
    """Which column holds the value: the Ct, the standard-curve quantity, or the value."""
    unit: str | None = None
    """Unit written on the row (default: the catalogue unit of the analyte)."""
    factor: float = Field(default=1.0, gt=0)
    """Multiplies the value (e.g. copies per reaction to copies per µL of blood)."""


class ControlPattern(_Strict):
    """Sample names of control or calibrator wells; named groups ``material``, ``level``
    and ``lot`` of the pattern fill those fields (or the constants given)."""

    pattern: str
    sample_type: SampleType = "control"
    material: str | None = None
    level: str | None = None
    lot: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        re.compile(pattern)
        return pattern


class Profile(_Strict):
    """An instrument export's layout."""

    name: str
    reader: Literal["quantstudio", "plate_table"]
    description: str = ""
    targets: dict[str, Target] = Field(default_factory=dict)
    """Export names of targets or analytes; a name not listed is read as ``value``."""
    tasks: dict[str, SampleType] = Field(default_factory=dict)
    """Well roles by the export's task or sample-type text (case does not matter)."""
    controls: list[ControlPattern] = Field(default_factory=list)
    """Sample names that make a well a control or calibrator whatever its task."""
    layout: Literal["long", "wide"] = "long"
    """plate_table: a row per result (long) or a row per well with a column per analyte."""
    columns: dict[str, str] = Field(default_factory=dict)
    """plate_table: canonical column (specimen_id, sample_type, analyte, value, unit,
    well, nominal, material...) -> the export's column header."""
    analyte_columns: dict[str, str] = Field(default_factory=dict)
    """plate_table, wide: the export's analyte column headers -> analyte (code or alias)."""
    units: dict[str, str] = Field(default_factory=dict)
    """The unit of an analyte whose rows carry none (export name or code -> unit)."""
    time_format: str | None = None
    """strptime format of the header's run time (default: ISO-8601)."""
    delimiter: str = ","
    decimal_comma: bool = False
    header_lines: int = Field(default=0, ge=0)
    """plate_table: lines before the table (plate id, run time... read by ``header``)."""
    header: dict[str, str] = Field(default_factory=dict)
    """plate_table: canonical field (plate_id, instrument, measured_at, control_lot, kit_lot)
    -> regex with one group, searched in the header lines."""
    recognise: list[str] = Field(default_factory=list)
    """Texts that must all appear in the file's first 4 KiB for this profile to read it."""

    def task(self, text: str | None) -> SampleType | None:
        wanted = (text or "").strip().casefold()
        for name, role in self.tasks.items():
            if name.casefold() == wanted:
                return role
        return None

    def control(self, sample: str) -> dict[str, str | None] | None:
        """The control fields of a sample name, or None when it is not a control."""
        for entry in self.controls:
            found = re.fullmatch(entry.pattern, sample.strip())
            if found:
                groups = found.groupdict()
                return {
                    "sample_type": entry.sample_type,
                    "material": groups.get("material") or entry.material or sample.strip(),
                    "level": groups.get("level") or entry.level,
                    "lot": groups.get("lot") or entry.lot,
                }
        return None

    def target(self, name: str) -> Target:
        for key, target in self.targets.items():
            if key.casefold() == name.strip().casefold():
                return target
        return Target()


def load_profiles(folder: Path | None = None) -> list[Profile]:
    """Every profile of ``folder`` (default: the shipped ones), by file name."""
    return [
        Profile.model_validate(load_yaml(path))
        for path in sorted((folder or PROFILE_DIR).glob("*.yaml"))
    ]
