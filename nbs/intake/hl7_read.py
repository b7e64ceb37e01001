"""HL7 v2 messages as they arrive in an ``*.hl7`` file or over MLLP: split, parsed.

A file holds one or more messages; segments end with CR, LF or CRLF, and MLLP framing
(``\\x0b ... \\x1c\\r``) is tolerated. Each message is parsed with hl7apy at the TOLERANT
level (real newborn-screening orders carry fields backported from later versions, which
the STRICT level refuses); the checks that matter are :mod:`nbs.intake.hl7_orders`'.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Any

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message

#: MLLP's start and end of a block
START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
#: the HL7 version assumed when MSH-12 names none
DEFAULT_VERSION = "2.5.1"


@dataclass(frozen=True)
class RawMessage:
    """One message of a file: its 1-based place and its text (segments joined by CR)."""

    index: int
    er7: str


@dataclass(frozen=True)
class Parsed:
    """A message parsed (``message``, its segments in order) or why it could not be."""

    raw: RawMessage
    message: Any | None
    segments: list[Any]
    error: str | None


def decode(data: bytes) -> str:
    """The file's text: UTF-8 (with or without a byte-order mark), else Windows-1252
    (ISO 8859-1, which European hospital systems send, decodes the same for letters)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def split_messages(data: bytes) -> list[RawMessage]:
    """The messages of a file or an MLLP stream, in order. Lines before the first MSH
    make a message of their own (refused as having no MSH: nothing is dropped)."""
    text = decode(data.replace(START_BLOCK, b"").replace(END_BLOCK, b"\r"))
    # every separator becomes CR: hl7apy reads only MSH of a message split by LF
    lines = [line.strip(" \t") for line in re.split(r"\r\n|\r|\n", text)]
    messages: list[list[str]] = []
    for line in lines:
        if not line:
            continue
        if line.startswith("MSH") or not messages:
            messages.append([line])
        else:
            messages[-1].append(line)
    return [RawMessage(i, "\r".join(m)) for i, m in enumerate(messages, start=1)]


def _segments(element: Any) -> list[Any]:
    """The segments of a parsed message or group, in the order they came."""
    found: list[Any] = []
    for child in element.children:
        if type(child).__name__ == "Segment":
            found.append(child)
        else:
            found.extend(_segments(child))
    return found


def _with_version(er7: str) -> str:
    """The message with MSH-12 set to :data:`DEFAULT_VERSION` where it names none."""
    msh, sep, rest = er7.partition("\r")
    fields = msh.split("|")
    if len(fields) > 11 and fields[11].strip():
        return er7
    fields += [""] * (12 - len(fields))
    fields[11] = DEFAULT_VERSION
    return "|".join(fields) + sep + rest


def parse(raw: RawMessage) -> Parsed:
    """One message parsed with hl7apy (TOLERANT, groups found); an error names why not."""
    if not raw.er7.startswith("MSH|"):
        return Parsed(raw, None, [], "no MSH segment: not an HL7 v2 message")
    er7 = _with_version(raw.er7)
    try:
        message = parse_message(er7, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True)
    except HL7apyException as exc:
        try:  # segments out of the structure's order: read them as they come
            message = parse_message(
                er7, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False
            )
        except HL7apyException:
            return Parsed(raw, None, [], f"not a readable HL7 v2 message ({exc})")
    except (ValueError, KeyError, IndexError) as exc:
        return Parsed(raw, None, [], f"not a readable HL7 v2 message ({exc})")
    return Parsed(raw, message, _segments(message), None)


def repetitions(segment: Any, number: int) -> list[str]:
    """The ER7 text of each repetition of field ``number`` of a segment (none: [])."""
    name = f"{segment.name}_{number}"
    return [str(child.to_er7()) for child in segment.children if child.name == name]


def field(segment: Any, number: int) -> str:
    """The first repetition of field ``number`` as ER7 text ('' when empty)."""
    found = repetitions(segment, number)
    return found[0] if found else ""


def component(text: str, number: int, sub: int = 1) -> str:
    """Component ``number`` (1-based) of a field's text, and its sub-component ``sub``."""
    parts = text.split("^")
    if number > len(parts):
        return ""
    subs = parts[number - 1].split("&")
    return subs[sub - 1] if sub <= len(subs) else ""
