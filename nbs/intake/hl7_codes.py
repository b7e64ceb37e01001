"""The codes, units and plausible ranges of newborn-screening orders
(``analytes/hl7.yaml``), typed, and HL7 date-times read into laboratory time."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from analytes.catalogue import DEFAULT_CATALOGUE
from nbs import settings
from nbs.yamlfile import ConfigFileError, load_yaml

DEFAULT_FILE = DEFAULT_CATALOGUE.with_name("hl7.yaml")

#: HL7 DTM: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]
_DTM = re.compile(
    r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?(?:([+-])(\d{2})(\d{2}))?$"
)


@dataclass(frozen=True)
class OrderCodes:
    """What :mod:`nbs.intake.hl7_orders` reads from the configuration file."""

    order_messages: tuple[str, ...]
    nbs_panels: dict[str, str]
    sex: dict[str, str]
    observations: dict[str, str]
    labels: dict[str, str]
    answers: dict[str, tuple[str, ...]]
    units: dict[str, dict[str, float]]
    plausible: dict[str, Any]

    def label(self, code: str) -> str:
        """``8339-4 (birth weight)``: a code with its name, for reasons."""
        name = self.labels.get(code)
        return f"{code} ({name})" if name else code

    def limits(self, name: str) -> tuple[float, float]:
        """The plausible range of a value (inclusive)."""
        low, high = self.plausible[name]
        return float(low), float(high)


def _parse(content: Any, path: Path) -> OrderCodes:
    try:
        return OrderCodes(
            order_messages=tuple(content["order_messages"]),
            nbs_panels={str(k): str(v) for k, v in content["nbs_panels"].items()},
            sex={str(k): str(v) for k, v in content["sex"].items()},
            observations={str(k): str(v) for k, v in content["observations"].items()},
            labels={str(k): str(v) for k, v in content["labels"].items()},
            answers={str(k): tuple(map(str, v)) for k, v in content["answers"].items()},
            units={
                str(k): {str(u): float(f) for u, f in v.items()}
                for k, v in content["units"].items()
            },
            plausible=dict(content["plausible"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigFileError(f"{path}: not an HL7 order configuration ({exc!r})") from exc


@lru_cache(maxsize=4)
def load_codes(path: Path = DEFAULT_FILE) -> OrderCodes:
    """The order configuration at ``path`` (default: the shipped ``analytes/hl7.yaml``)."""
    return _parse(load_yaml(path), path)


class NotADateTime(ValueError):
    """A text that is not an HL7 date-time of the precision needed (the reason says why)."""


def hl7_datetime(text: str, need_time: bool = True) -> dt.datetime:
    """An HL7 DTM in laboratory time (naive), converted from its offset when it has one
    (the laboratory's time zone: the setting ``lab_time_zone``, as
    :mod:`nbs.validate.times` does). ``need_time``: a date without hours and minutes
    raises; else it is the end of that day (for a transfusion date: the later, safer)."""
    match = _DTM.match(text.strip())
    if not match:
        raise NotADateTime("is not an HL7 date-time (YYYYMMDDHHMM[SS][+ZZZZ])")
    year, month, day, hour, minute, second, frac, sign, oh, om = match.groups()
    if month is None or day is None:
        raise NotADateTime("is not a full date")
    if (hour is None or minute is None) and need_time:
        raise NotADateTime("has no time of day (hours and minutes are needed)")
    try:
        value = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour) if hour else 23,
            int(minute) if minute else 59,
            int(second or 0),
            int((frac or "0").ljust(6, "0")[:6]),
        )
    except ValueError as exc:
        raise NotADateTime(f"is not a valid date-time ({exc})") from exc
    if sign is None:
        return value
    offset = dt.timedelta(hours=int(oh), minutes=int(om)) * (1 if sign == "+" else -1)
    aware = value.replace(tzinfo=dt.timezone(offset))
    local = aware.astimezone(ZoneInfo(settings.current().lab_time_zone))
    return local.replace(tzinfo=None)
