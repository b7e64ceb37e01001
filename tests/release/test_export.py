"""The exports of released results: every ORU^R01 parsed and validated STRICT (HL7
2.5.1), every FHIR resource re-parsed by its model, files idempotent, and a real MLLP
conversation on the loopback interface (AA; AE then AA: retried)."""

from __future__ import annotations

import datetime as dt
import json
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.parser import parse_message

from nbs import store
from nbs.release import export, fhir, mllp, service
from tests.release.conftest import LAB

RELEASED = ("S-PKU1", "S-SMA1", "S-TRANSF", "S-CH1", "S-UNSAT", "S-CF4")


def _release_some(db: Path) -> None:
    for card in RELEASED:
        service.release_card(db, card, LAB)


def _read(path: Path) -> str:
    """A message file as written (text mode would turn its CRs into LFs)."""
    return path.read_bytes().decode("utf-8").rstrip("\r")


def _obx(message: str) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for segment in message.split("\r"):
        if segment.startswith("OBX|"):
            fields = segment.split("|")
            out.setdefault(fields[3].split("^")[0], []).append(fields)
    return out


def test_one_release_gives_one_strictly_valid_message(db: Path, tmp_path: Path) -> None:
    service.release_card(db, "S-N03", LAB)
    (path,) = export.write_hl7(db, tmp_path / "out").files
    assert path.name == "S-N03-01.oru.hl7"
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=1)
    assert export.write_hl7(db, tmp_path / "later", since=later).files == []
    message = parse_message(_read(path), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert message.validate()
    obx = _obx(_read(path))
    assert obx["57130-7"][0][5].startswith("LA12428-1")  # all in range
    assert obx["57723-9"][0][5] == "S-N03"
    (bundle,) = export.write_fhir(db, tmp_path / "fhir").files
    for entry in json.loads(bundle.read_text())["entry"]:
        resource = entry["resource"]
        fhir.MODELS[resource["resourceType"]].model_validate(resource)


@pytest.mark.slow
def test_every_exported_oru_validates_strict_and_names_the_card(db: Path, tmp_path: Path) -> None:
    _release_some(db)
    done = export.write_hl7(db, tmp_path / "out")
    assert done.written == len(RELEASED) == len(done.files)
    for path in done.files:
        raw = path.read_bytes()
        assert raw.endswith(b"\r") and b"\n" not in raw
        message = parse_message(
            raw.decode().rstrip("\r"), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True
        )
        assert message.validate()
        assert message.msh.msh_12.to_er7() == "2.5.1"
    pku = _read(tmp_path / "out" / "S-PKU1-01.oru.hl7")
    pid = next(s for s in pku.split("\r") if s.startswith("PID|")).split("|")
    assert pid[3].startswith("BPKU1^^^") and pid[7] == "20260301083000" and pid[5] == "^^^^^^S"
    obx = _obx(pku)
    for code in ("57721-3", "57718-9", "57130-7", "57131-5", "57719-7", "57724-7", "57723-9"):
        assert code in obx, code
    assert obx["57721-3"][0][5].startswith("LA12421-6")  # initial screen
    assert obx["57130-7"][0][5].startswith("LA18944-1")  # out of range for a condition
    assert [o[5].split("^")[0] for o in obx["57131-5"]] == ["LA12520-5"]  # PKU positive
    assert len(obx["57719-7"]) == 7
    phe = obx["29573-3"][0]  # phenylalanine, LOINC, UCUM, its limit and a flag
    assert phe[2] == "NM" and phe[6].startswith("umol/L") and phe[7] == "<150" and phe[8] == "A"
    assert obx["8339-4"][0][6].startswith("g^")
    panels = [s.split("|")[4].split("^")[0] for s in pku.split("\r") if s.startswith("OBR|")]
    assert panels[:2] == ["57128-1", "57717-1"] and "53261-4" in panels
    # a local code where LOINC has none, in the local system
    sma = _read(tmp_path / "out" / "S-SMA1-01.oru.hl7")
    assert "RPP30^RNase P reference gene (RPP30), qPCR cycle threshold^99NBS" in sma
    assert "|ST|92002-5" in sma and "no amplification" in sma
    transf = _obx(_read(tmp_path / "out" / "S-TRANSF-01.oru.hl7"))
    assert transf["57713-0"][0][5].startswith("LA12417-4")  # transfusion
    # a new card asked for the card's sake: said in the overall interpretation and narrative
    assert transf["57130-7"][0][5].startswith("REPEAT_CARD^") and "99NBS" in transf["57130-7"][0][5]
    assert "A new card is requested: transfusion before collection" in transf["57724-7"][0][5]
    # the same export again: the same bytes, nothing rewritten
    again = export.write_hl7(db, tmp_path / "out")
    assert again.written == 0 and len(again.files) == len(RELEASED)


@pytest.mark.slow
def test_every_fhir_resource_reparses_with_its_model(db: Path, tmp_path: Path) -> None:
    _release_some(db)
    done = export.write_fhir(db, tmp_path / "fhir")
    assert done.written == len(RELEASED)
    for path in done.files:
        bundle = json.loads(path.read_text())
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
        kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
        assert kinds.count("Patient") == kinds.count("Specimen") == 1
        assert kinds.count("DiagnosticReport") == 1 and kinds.count("Observation") > 7
        for entry in bundle["entry"]:
            resource = entry["resource"]
            fhir.MODELS[resource["resourceType"]].model_validate(resource)
        patient = bundle["entry"][0]["resource"]
        assert "name" not in patient and "address" not in patient
    pku = json.loads((tmp_path / "fhir" / "S-PKU1-01.fhir.json").read_text())
    observations = [
        e["resource"] for e in pku["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    phe = next(o for o in observations if o["code"]["coding"][0]["code"] == "29573-3")
    assert phe["valueQuantity"]["code"] == "umol/L" and phe["status"] == "final"
    report = pku["entry"][-1]["resource"]
    assert report["code"]["coding"][0]["code"] == "57128-1" and report["status"] == "final"
    assert export.write_fhir(db, tmp_path / "fhir").written == 0


def _ack(incoming: str, code: str) -> bytes:
    request = parse_message(incoming, validation_level=VALIDATION_LEVEL.TOLERANT)
    ack = Message("ACK", version="2.5.1")
    ack.msh.msh_3 = "RECEIVER"
    ack.msh.msh_9 = "ACK^R01^ACK"
    ack.msh.msh_10 = "ACK-" + request.msh.msh_10.to_er7()
    ack.msh.msh_11 = "P"
    ack.msa.msa_1 = code
    ack.msa.msa_2 = request.msh.msh_10.to_er7()
    if code != "AA":
        ack.msa.msa_3 = "try again"
    return mllp.frame(ack.to_er7())


class _Receiver(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, answers: list[str]) -> None:
        self.answers, self.received = list(answers), []  # type: ignore[var-annotated]
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: _Receiver = self.server  # type: ignore[assignment]
        data = b""
        while mllp.END not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            data += chunk
        text = mllp.unframe(data)
        server.received.append(text)
        code = server.answers.pop(0) if len(server.answers) > 1 else server.answers[0]
        self.request.sendall(_ack(text, code))


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[_Receiver]:
    server = _Receiver(request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize("receiver", [["AA"]], indirect=True)
def test_mllp_sends_each_release_once_and_logs_the_answer(
    db: Path, tmp_path: Path, receiver: _Receiver
) -> None:
    _release_some(db)
    host, port = receiver.server_address[:2]
    policy = export.SendPolicy(str(host), int(port), timeout_s=5, retries=2, retry_delay_s=0)
    sent = export.send_hl7(db, policy)
    assert len(sent.accepted) == len(RELEASED) and not sent.failed and not sent.rejected
    assert len(receiver.received) == len(RELEASED)
    for text in receiver.received:
        parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True).validate()
    log = store.query(db, "SELECT control_id, ack_code, attempt FROM sent_messages")
    assert set(log["ack_code"]) == {"AA"} and set(log["attempt"]) == {1}
    assert sorted(log["control_id"]) == sorted(sent.accepted)
    again = export.send_hl7(db, policy)  # acknowledged: never sent again
    assert again.skipped == len(RELEASED) and len(receiver.received) == len(RELEASED)


@pytest.mark.slow
@pytest.mark.parametrize("receiver", [["AE", "AA"]], indirect=True)
def test_mllp_retries_an_application_error(db: Path, receiver: _Receiver) -> None:
    service.release_card(db, "S-PKU1", LAB)
    host, port = receiver.server_address[:2]
    waits: list[float] = []
    policy = export.SendPolicy(str(host), int(port), timeout_s=5, retries=2, retry_delay_s=0.5)
    sent = export.send_hl7(db, policy, sleep=waits.append)
    assert len(sent.accepted) == 1 and waits == [0.5]
    log = store.query(db, "SELECT attempt, ack_code, answer FROM sent_messages ORDER BY attempt")
    assert log["ack_code"].to_list() == ["AE", "AA"] and "try again" in log["answer"][0]


@pytest.mark.slow
def test_mllp_without_a_receiver_fails_after_the_retries(db: Path) -> None:
    service.release_card(db, "S-PKU1", LAB)
    with socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler) as free:
        port = free.server_address[1]  # closed again below: nobody listens there
    policy = export.SendPolicy("127.0.0.1", int(port), timeout_s=1, retries=1, retry_delay_s=0)
    sent = export.send_hl7(db, policy, sleep=lambda _: None)
    assert len(sent.failed) == 1
    log = store.query(db, "SELECT attempt, ack_code FROM sent_messages")
    assert log["attempt"].to_list() == [1, 2] and log["ack_code"].to_list() == [None, None]


def test_the_export_commands(db: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from nbs.cli import app

    service.release_card(db, "S-N02", LAB)
    runner = CliRunner()
    hl7 = runner.invoke(app, ["hl7", "export", "--db", str(db), "--out", str(tmp_path / "o")])
    assert hl7.exit_code == 0 and "1 ORU^R01 message(s)" in hl7.output, hl7.output
    assert (tmp_path / "o" / "S-N02-01.oru.hl7").is_file()
    out = str(tmp_path / "f")
    fhir_run = runner.invoke(app, ["fhir", "export", "--db", str(db), "--out", out])
    assert fhir_run.exit_code == 0 and (tmp_path / "f" / "S-N02-01.fhir.json").is_file()
    bad = runner.invoke(app, ["hl7", "export", "--db", str(db), "--out", out, "--to", "nohost"])
    assert bad.exit_code != 0 and "HOST:PORT" in str(bad.exception)
    since = runner.invoke(
        app, ["hl7", "export", "--db", str(db), "--out", out, "--since", "yesterday"]
    )
    assert since.exit_code != 0 and "not an ISO time" in str(since.exception)
