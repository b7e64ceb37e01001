"""The MLLP listener on a real loopback socket: framed messages sent on one connection, each
answered with its ACK (AA, AE, AR; MSA-2 the message's control id, the reason in MSA-3 and
ERR), accepted messages written whole into the inbox, refused ones kept apart; then
``nbs hl7 listen`` itself, and a run that takes the written messages in."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hl7apy.parser import parse_message

from nbs.intake.hl7_listen import REFUSED_DIR, MLLPListener
from nbs.intake.hl7_read import split_messages

pytestmark = pytest.mark.slow

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples" / "hl7"


def _messages(name: str) -> list[str]:
    return [m.er7 for m in split_messages((SAMPLES / name).read_bytes())]


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    server = MLLPListener("127.0.0.1", 0, inbox, timeout_s=5)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], inbox
    finally:
        server.shutdown()
        server.server_close()


def _read_ack(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\x1c\r"):
        chunk = sock.recv(4096)
        assert chunk, "connection closed before the ACK"
        data += chunk
    assert data.startswith(b"\x0b")
    return data[1:-2].decode()


def _send(sock: socket.socket, er7: str, split_at: int | None = None) -> str:
    frame = b"\x0b" + er7.encode() + b"\r\x1c\r"
    if split_at is None:
        sock.sendall(frame)
    else:  # a frame arriving in two packets
        sock.sendall(frame[:split_at])
        time.sleep(0.05)
        sock.sendall(frame[split_at:])
    return _read_ack(sock)


def _msa(ack: str) -> tuple[str, str, str]:
    message = parse_message(ack)
    msa = message.msa
    return msa.msa_1.value, msa.msa_2.value, msa.msa_3.value


def test_messages_on_one_connection_are_acknowledged_and_kept(
    listener: tuple[int, Path],
) -> None:
    port, inbox = listener
    (order,) = _messages("oml_o21_order.hl7")
    wrong = _messages("wrong_units.hl7")[0]
    adt = _messages("not_screening.hl7")[0]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert _msa(_send(sock, order, split_at=40))[:2] == ("AA", "OML-0001")
        code, control, reason = _msa(_send(sock, wrong))
        assert (code, control) == ("AE", "OML-0030")
        assert reason.startswith("OBX-5 of 8339-4 (birth weight): '2100' kg is not plausible")
        ack = _send(sock, adt)
        assert _msa(ack)[:2] == ("AR", "ADT-0001")
        assert "ERR|" in ack and "200^Unsupported message type" in ack
        assert _msa(_send(sock, "hello, is this the lab?"))[0] == "AR"
        # the same order again (a resend): acknowledged, kept once
        assert _msa(_send(sock, order))[0] == "AA"
    kept = sorted(p.name for p in inbox.iterdir() if p.is_file())
    assert kept == ["OML-0001.hl7", "OML-0030.hl7"]
    assert not [p for p in inbox.rglob(".*")]  # no temporary file left
    assert (inbox / "OML-0001.hl7").read_text().replace("\r", "\n").strip() == order.replace(
        "\r", "\n"
    ).strip()
    refused = sorted(p.name for p in (inbox / REFUSED_DIR).iterdir())
    assert "ADT-0001.hl7" in refused and len(refused) == 2


def test_a_reused_control_id_with_other_content_replaces_nothing(
    listener: tuple[int, Path],
) -> None:
    port, inbox = listener
    (order,) = _messages("oml_o21_order.hl7")
    changed = order.replace("||3250|", "||3260|")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert _msa(_send(sock, order))[0] == "AA"
        assert _msa(_send(sock, changed))[0] == "AA"
    kept = sorted(inbox.glob("OML-0001*.hl7"))
    assert len(kept) == 2
    assert {"3250" in p.read_text() for p in kept} == {True, False}


def test_nbs_hl7_listen_writes_messages_a_run_takes_in(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nbs = Path(sys.executable).with_name("nbs")
    listen = [str(nbs), "hl7", "listen", "--port", str(port), "--inbox", str(inbox)]
    proc = subprocess.Popen(listen, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
                time.sleep(0.1)
        with sock:
            for er7 in _messages("twins.hl7"):
                assert _msa(_send(sock, er7))[0] == "AA"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert "AA OML-TW-A -> OML-TW-A.hl7" in out
    db = tmp_path / "nbs.duckdb"
    run = subprocess.run(
        [str(nbs), "run", str(inbox), "--db", str(db), "--engine", "local"],
        capture_output=True,
        text=True,
        env={**os.environ, "NBS_INBOX_SETTLE_S": "0"},
        check=False,
    )
    assert run.returncode == 0, run.stderr
    listed = subprocess.run(
        [str(nbs), "orders", "list", "--db", str(db), "--format", "csv"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "HL7C0011" in listed and "HL7C0012" in listed
