"""A small MLLP client (HL7 v2's minimal lower layer protocol): a message framed as
``\\x0b`` + message + ``\\r\\x1c\\r``, sent on a TCP connection, the answer read up to
``\\x1c\\r`` and parsed as an HL7 acknowledgement (hl7apy, tolerant: a receiver's ACK may
carry its own extensions)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

START = b"\x0b"
END = b"\x1c\r"
#: the largest acknowledgement read (a receiver that sends more is not answering)
MAX_ANSWER = 1 << 20


class MllpError(OSError):
    """No usable answer: the connection failed, timed out, closed, or sent no ACK."""


@dataclass(frozen=True)
class Ack:
    """A receiver's acknowledgement: MSA-1 code, MSA-2 the control id it answers, the
    text (MSA-3 and ERR), and the answer as received."""

    code: str
    control_id: str
    text: str
    raw: str


def frame(er7: str) -> bytes:
    """A message (segments separated by CR) framed for MLLP."""
    return START + er7.rstrip("\r").encode("utf-8") + b"\r" + END


def unframe(data: bytes) -> str:
    """The message inside an MLLP frame, segments separated by CR."""
    body = data.strip()
    body = body.removeprefix(START).removesuffix(END.strip()).removesuffix(b"\x1c")
    return body.decode("utf-8", errors="replace").strip("\r\n").replace("\r\n", "\r")


def parse_ack(text: str) -> Ack:
    """The acknowledgement in ``text`` (MllpError if it is none)."""
    try:
        message = parse_message(
            text.replace("\n", "\r"), validation_level=VALIDATION_LEVEL.TOLERANT
        )
        msa = message.msa
        code = msa.msa_1.to_er7()
        answered = msa.msa_2.to_er7()
        detail = msa.msa_3.to_er7() if msa.msa_3 else ""
    except Exception as exc:  # hl7apy raises many kinds for a malformed answer
        raise MllpError(f"the answer is not an HL7 acknowledgement: {exc}") from exc
    if not code:
        raise MllpError("the answer has no MSA-1 acknowledgement code")
    errors = [seg.to_er7() for seg in message.children if seg.name == "ERR"]
    return Ack(code, answered, "; ".join([d for d in (detail, *errors) if d]), text)


def send(host: str, port: int, er7: str, timeout_s: float) -> Ack:
    """Send one message and wait for its acknowledgement (MllpError if none comes)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as conn:
            conn.settimeout(timeout_s)
            conn.sendall(frame(er7))
            received = b""
            while END not in received:
                chunk = conn.recv(65536)
                if not chunk:
                    raise MllpError("the receiver closed the connection without an answer")
                received += chunk
                if len(received) > MAX_ANSWER:
                    raise MllpError("the answer is too long to be an acknowledgement")
    except TimeoutError as exc:
        raise MllpError(f"no answer from {host}:{port} within {timeout_s:g} s") from exc
    except MllpError:
        raise
    except OSError as exc:
        raise MllpError(f"{host}:{port}: {exc}") from exc
    return parse_ack(unframe(received[: received.index(END) + len(END)]))
