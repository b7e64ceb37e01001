"""``nbs qc``: the plates and their status, one plate, a supervisor's decision on a held
plate (audited, refused with one line and status 2 when it cannot be made), and the
Levey-Jennings chart of a control series written as SVG.

The plates are written straight into a new database (as a run would have judged them):
TSH control lots 4411 with declared targets (analytes/qc.yaml: level 1 6.0 ± 0.6, level 2
45.0 ± 4.0), five accepted plates and a held one whose level 2 broke 2-2s; a lot 9999 of
another material has no declared target and too few results to establish one."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest

from nbs import cli, store
from nbs.cli import common
from nbs.store import plates
from nbs.store.connection import transaction

T0 = dt.datetime(2026, 3, 2, 8, 0)
HELD_REASON = "plate P17 held: 2-2s on TSH NBS-CTRL level 2, lot 4411 (value 54.5, +2.4 SD)"

Plate = tuple[str, str, dt.datetime, str]  # plate_id, status, run_at, reason
#: plate_id, well, analyte, material, level, lot, value, z, rules
Well = tuple[str, str, str, str, str, str, float, float | None, str]


def add_plates(db: Path, plate_rows: list[Plate], wells: list[Well]) -> None:
    """Plates, their first audit row and their control wells, as a run writes them."""
    store.ensure_schema(db)
    at = {p[0]: p[2] for p in plate_rows}
    with store.connect(db) as con, transaction(con):
        for plate_id, status, run_at, reason in plate_rows:
            con.execute(
                "INSERT INTO plates (plate_id, instrument, run_at, status, reason, qc_version, "
                "judged_at, run_id) VALUES (?, 'GSP-01', ?, ?, ?, '2026.1', ?, 'run-test')",
                [plate_id, run_at, status, reason, run_at],
            )
            con.execute(
                "INSERT INTO plate_events (plate_id, event_at, actor, old_status, new_status, "
                "reason) VALUES (?, ?, 'pipeline', NULL, ?, ?)",
                [plate_id, run_at, status, reason],
            )
        for i, (plate_id, well, analyte, material, level, lot, value, z, rules) in enumerate(wells):
            con.execute(
                "INSERT INTO qc_results (plate_id, well, sample_type, analyte, material, level, "
                "lot, value, measured_at, z, rules, file_sha256, row_number, run_id) "
                "VALUES (?, ?, 'control', ?, ?, ?, ?, ?, ?, ?, ?, 'sha-test', ?, 'run-test')",
                [plate_id, well, analyte, material, level, lot, value, at[plate_id], z, rules, i],
            )


def qc_database(db: Path) -> None:
    """Five accepted plates and the held P17 (see the module's description)."""
    rows: list[Plate] = [
        (f"P{n:02d}", "accepted", T0 + dt.timedelta(days=n), "controls within limits")
        for n in range(1, 6)
    ]
    rows.append(("P17", "held", T0 + dt.timedelta(days=17), HELD_REASON))
    wells: list[Well] = []
    for n, (l1, l2) in enumerate([(6.1, 44.0), (5.8, 46.5), (6.3, 52.0), (5.9, 47.0), (6.0, 45.5)]):
        plate_id = f"P{n + 1:02d}"
        wells += [
            (plate_id, "A1", "TSH", "NBS-CTRL", "1", "4411", l1, (l1 - 6.0) / 0.6, ""),
            (plate_id, "A2", "TSH", "NBS-CTRL", "2", "4411", l2, (l2 - 45.0) / 4.0, ""),
        ]
    wells += [
        ("P17", "A1", "TSH", "NBS-CTRL", "1", "4411", 6.2, 0.33, ""),
        ("P17", "A2", "TSH", "NBS-CTRL", "2", "4411", 54.5, 2.38, "2-2s"),
        ("P17", "A3", "TSH", "OTHER-QC", "1", "9999", 7.0, None, ""),
    ]
    add_plates(db, rows, wells)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "lab.duckdb"
    qc_database(path)
    return path


def nbs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """``nbs ARGS`` in-process through the console entry point: status, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["nbs", *args])
    monkeypatch.setattr(common.console, "width", 250)  # tables on one line each
    code: int | str | None = 0
    try:
        cli.main()
    except SystemExit as exited:
        code = exited.code
    out = capsys.readouterr()
    return int(code or 0), out.out, out.err


def test_plates_lists_held_first_and_filters_by_status(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = nbs(monkeypatch, capsys, "qc", "plates", "--db", str(db), "--format", "json")
    assert code == 0
    listed = json.loads(out)
    assert [p["plate_id"] for p in listed] == ["P17", "P05", "P04", "P03", "P02", "P01"]
    assert listed[0]["status"] == "held" and listed[0]["reason"] == HELD_REASON
    code, out, _ = nbs(monkeypatch, capsys, "qc", "plates", "--db", str(db), "--status", "held",
                       "--format", "csv")  # fmt: skip
    assert code == 0 and out.splitlines()[1].startswith("P17,GSP-01,")
    assert len(out.splitlines()) == 2
    code, _, err = nbs(monkeypatch, capsys, "qc", "plates", "--db", str(db), "--status", "open")
    assert code == 2 and err.strip().count("\n") == 0
    assert err.startswith("error: --status must be one of accepted, held, rejected")


def test_show_prints_the_plate_its_wells_with_rules_and_its_audit_trail(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = nbs(monkeypatch, capsys, "qc", "show", "P17", "--db", str(db))
    assert code == 0
    assert "held" in out and "2-2s on TSH NBS-CTRL level 2" in out
    wells = [line for line in out.splitlines() if "NBS-CTRL" in line and "A2" in line]
    assert wells and "54.5" in wells[0] and "2.38" in wells[0] and "2-2s" in wells[0]
    assert "Audit trail" in out and "pipeline" in out
    code, _, err = nbs(monkeypatch, capsys, "qc", "show", "P99", "--db", str(db))
    assert (code, err) == (2, "error: no plate P99\n")


def test_accept_records_the_supervisor_and_reason_and_evaluates(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = "level 2 vial thawed twice; fresh vial within limits"
    code, out, err = nbs(monkeypatch, capsys, "qc", "accept", "P17", "--db", str(db),
                         "--reason", reason, "--by", "sup.anna")  # fmt: skip
    assert code == 0, err
    assert "plate P17 accepted: 0 card(s) evaluated" in out
    row = plates.plate(db, "P17")
    assert row is not None
    assert (row["status"], row["reason"], row["decided_by"]) == ("accepted", reason, "sup.anna")
    events = plates.plate_events(db, "P17")
    assert events.select("actor", "old_status", "new_status", "reason").rows()[-1] == (
        "sup.anna", "held", "accepted", reason,
    )  # fmt: skip
    # decided once: a second decision is one line, status 2, and changes nothing
    code, _, err = nbs(monkeypatch, capsys, "qc", "reject", "P17", "--db", str(db),
                       "--reason", "second thoughts")  # fmt: skip
    assert (code, err) == (2, "error: plate P17 is accepted, not held: nothing to decide\n")
    assert plates.plate_events(db, "P17").height == 2


def test_reject_defaults_the_actor_to_the_user_setting(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NBS_USER", "sup.ben")
    code, out, _ = nbs(monkeypatch, capsys, "qc", "reject", "P17", "--db", str(db),
                       "--reason", "controls out on re-run too")  # fmt: skip
    assert code == 0 and "plate P17 rejected" in out
    row = plates.plate(db, "P17")
    assert row is not None and (row["status"], row["decided_by"]) == ("rejected", "sup.ben")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "error: give --reason: why (kept in the plate's audit trail)"),
        (("--reason", "   "), "error: give --reason: why (kept in the plate's audit trail)"),
        (("--reason", "ok"), "error: plate P01 is accepted, not held: nothing to decide"),
    ],
)
def test_a_decision_that_cannot_be_made_is_one_line_and_status_2(
    db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    plate_id = "P01" if args == ("--reason", "ok") else "P17"
    code, _, err = nbs(monkeypatch, capsys, "qc", "accept", plate_id, "--db", str(db), *args)
    assert (code, err) == (2, message + "\n")
    assert plates.plate(db, "P17")["status"] == "held"  # type: ignore[index]
    code, _, err = nbs(monkeypatch, capsys, "qc", "reject", "P99", "--db", str(db),
                       "--reason", "x")  # fmt: skip
    assert (code, err) == (2, "error: no plate P99\n")


def test_chart_writes_one_svg_per_matching_series_named(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "charts" / "tsh.svg"
    code, text, _ = nbs(monkeypatch, capsys, "qc", "chart", "TSH", "--db", str(db),
                        "--level", "2", "--lot", "4411", "--out", str(out))  # fmt: skip
    assert code == 0 and str(out) in text.replace("\n", "")
    svg = out.read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<title>TSH NBS-CTRL level 2, lot 4411</title>" in svg
    assert "target 45 ± 4 (n = 6)" in svg  # the declared target; every result, held too
    assert svg.count("<circle") == 6
    assert "P17: 54.5 (2-2s)" in svg and 'fill="#c0392b">2-2s</text>' in svg
    # the analyte by a catalogue alias, every series: one file each, named; the lot
    # without a target gets a line and no file
    code, text, _ = nbs(monkeypatch, capsys, "qc", "chart", "tsh", "--db", str(db),
                        "--out", str(out))  # fmt: skip
    assert code == 0
    written = sorted(p.name for p in out.parent.iterdir())
    assert written == ["tsh-NBS-CTRL-L1-4411.svg", "tsh-NBS-CTRL-L2-4411.svg", "tsh.svg"]
    assert "TSH OTHER-QC level 1, lot 9999: no chart, no target yet: 0 of 20" in " ".join(
        text.split()
    )
    assert "target 6 ± 0.6 (n = 6)" in (out.parent / "tsh-NBS-CTRL-L1-4411.svg").read_text()
    code, _, err = nbs(monkeypatch, capsys, "qc", "chart", "PHE", "--db", str(db),
                       "--out", str(out))  # fmt: skip
    assert (code, err) == (2, "error: no control results of PHE match\n")
