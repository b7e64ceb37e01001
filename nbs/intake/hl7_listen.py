"""``nbs hl7 listen``: an MLLP listener that writes each order message into the inbox and
acknowledges it.

Each message is judged as a run will judge it (:func:`nbs.intake.hl7_orders.read_order`)
and answered with an ACK built with hl7apy: ``AA`` accepted, ``AE`` a newborn-screening
order with a value the run will quarantine, ``AR`` refused (not a newborn-screening
order, or unreadable); MSA-2 is the message's MSH-10, the reason is in MSA-3 and ERR-8.
Accepted and AE messages are written into the inbox atomically (a hidden temporary file,
then ``os.replace``), named after their control id, and a run takes them in; refused ones
are kept in the inbox's ``refused/`` folder (no run reads it), so nothing is lost.

Not hl7apy's ``MLLPServer``: it handles one message per connection and then closes it,
where a hospital's interface engine keeps one connection open for a day of messages, and
it dispatches by MSH-9, where every type must be answered (an ADT with AR). This is a
small ``socketserver`` server that reads MLLP blocks until the sender closes.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message

from nbs.intake.hl7_orders import Outcome, read_order
from nbs.intake.hl7_read import END_BLOCK, START_BLOCK, Parsed, RawMessage, component, parse
from nbs.intake.hl7_read import field as hl7_field

#: the end of an MLLP block: end-block character, carriage return
FRAME_END = END_BLOCK + b"\r"
#: the most bytes a block may take (a bigger one is refused and the connection closed)
MAX_BLOCK = 4 << 20
#: the folder of the inbox where refused messages are kept
REFUSED_DIR = "refused"
_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))


@dataclass(frozen=True)
class Answer:
    """What the listener did with a message: the ACK code, its reason, where it is kept."""

    code: str
    control_id: str
    reason: str
    kept_as: Path | None
    ack: bytes


def _escaped(text: str) -> str:
    for plain, escape in _ESCAPES:
        text = text.replace(plain, escape)
    return text


def _msh(parsed: Parsed, number: int) -> str:
    msh = next((s for s in parsed.segments if s.name == "MSH"), None)
    return hl7_field(msh, number) if msh is not None else ""


def build_ack(parsed: Parsed, outcome: Outcome, reason: str) -> str:
    """The ACK (ER7) of a message: sender and receiver swapped, MSA-1 the code, MSA-2
    the message's control id, the reason in MSA-3 (80 characters) and ERR-8."""
    ack = Message("ACK", version="2.5.1", validation_level=VALIDATION_LEVEL.TOLERANT)
    ack.msh.msh_3 = _msh(parsed, 5) or "NBS_LAB"
    ack.msh.msh_4 = _msh(parsed, 6) or "NBS_LAB"
    ack.msh.msh_5 = _msh(parsed, 3)
    ack.msh.msh_6 = _msh(parsed, 4)
    trigger = component(_msh(parsed, 9), 2)
    ack.msh.msh_9 = f"ACK^{trigger}^ACK" if trigger else "ACK"
    ack.msh.msh_10 = f"ACK-{secrets.token_hex(8)}"
    ack.msh.msh_11 = component(_msh(parsed, 11), 1) or "P"
    ack.msa.msa_1 = outcome.ack_code
    ack.msa.msa_2 = _escaped(outcome.control_id)
    if outcome.status != "accepted":
        ack.msa.msa_3 = _escaped(reason[:80])
        err = ack.add_segment("ERR")
        unsupported = outcome.problems and outcome.problems[0].place == "MSH-9"
        err.err_3 = (
            "200^Unsupported message type^HL70357"
            if unsupported
            else "207^Application internal error^HL70357"
        )
        err.err_4 = "E"
        err.err_8 = _escaped(reason[:250])
    return str(ack.to_er7())


def _file_name(control_id: str, data: bytes) -> str:
    """A message's file name: its control id made safe (else its content's hash)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", control_id).strip("._")[:80]
    return f"{safe or hashlib.sha256(data).hexdigest()[:16]}.hl7"


def write_atomically(folder: Path, name: str, data: bytes) -> Path:
    """``data`` as ``folder/name``, whole or not at all (a run never reads half of it). The
    same name with other content (a control id reused) gets its hash added, never
    replaces it; the same content again (a resend) is the file already there."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if target.exists():
        if target.read_bytes() == data:
            return target
        target = folder / f"{target.stem}.{hashlib.sha256(data).hexdigest()[:8]}.hl7"
    tmp = folder / f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def answer_block(block: bytes, inbox: Path) -> Answer:
    """Judge one MLLP block's message, keep it, and build its ACK."""
    text = block.replace(b"\r\n", b"\r").replace(b"\n", b"\r").strip(b"\r ")
    parsed = parse(RawMessage(1, text.decode("utf-8", errors="replace")))
    outcome = read_order(parsed)
    reason = "; ".join(p.reason for p in outcome.problems)
    data = text + b"\r"
    folder = inbox if outcome.status != "refused" else inbox / REFUSED_DIR
    try:
        kept: Path | None = write_atomically(folder, _file_name(outcome.control_id, data), data)
    except OSError as exc:  # not kept: the sender must send it again
        kept = None
        outcome = Outcome(outcome.index, "quarantined", outcome.control_id, "", None, [])
        reason = f"not stored by the laboratory ({exc.strerror or exc}): send it again"
    ack = build_ack(parsed, outcome, reason)
    return Answer(outcome.ack_code, outcome.control_id, reason, kept, ack.encode("utf-8"))


class _Connection(socketserver.BaseRequestHandler):
    """One sender's connection: blocks read and answered until it closes or is silent."""

    server: MLLPListener

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(self.server.timeout_s)
        buffer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, OSError):
                return
            if not chunk:
                return
            buffer += chunk
            while (start := buffer.find(START_BLOCK)) >= 0 and (
                end := buffer.find(FRAME_END, start)
            ) >= 0:
                answer = answer_block(buffer[start + 1 : end], self.server.inbox)
                self.server.report(answer)
                sock.sendall(START_BLOCK + answer.ack + FRAME_END)
                buffer = buffer[end + len(FRAME_END) :]
            if START_BLOCK not in buffer:
                buffer = b""  # noise between blocks
            if len(buffer) > MAX_BLOCK:
                return


class MLLPListener(socketserver.ThreadingTCPServer):
    """The listener: a thread per connection; :meth:`serve_forever` until shut down."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        host: str,
        port: int,
        inbox: Path,
        timeout_s: float,
        report: Callable[[Answer], None] | None = None,
    ) -> None:
        self.inbox = inbox
        self.timeout_s = timeout_s
        self.report: Callable[[Answer], None] = report or (lambda answer: None)
        super().__init__((host, port), _Connection)
