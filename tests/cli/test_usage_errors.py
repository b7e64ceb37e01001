"""Mistyped commands and option values: the ``nbs`` entry point (in process) refuses each
in one line, ``error: ...``, exit status 2, naming the values an option takes, and
never answers a wrong value with an empty list as if there were nothing to show."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

from nbs import cli


def nbs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """``nbs ARGS`` through the console entry point: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["nbs", *args])
    monkeypatch.setenv("COLUMNS", "100")
    code: object = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return int(code or 0), out, err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["stats", "--db", "x.duckdb", "--year", "2025", "--table", "bogus"],
            "error: nbs stats: Invalid value for '--table': 'bogus' is not one of yield,",
        ),
        (
            ["stats", "--db", "x.duckdb", "--year", "2025", "--format", "bogus"],
            "error: nbs stats: Invalid value for '--format': 'bogus' is not one of 'table',",
        ),
        (["recalls", "list"], "error: nbs recalls list: Missing option '--db'"),
        (["recalls", "list", "--db", "x.duckdb", "--nope"], "error: nbs recalls list: No such"),
        (["bogus"], "error: nbs: No such command 'bogus'"),
        (["stats", "--db", "x.duckdb", "--year", "soon"], "error: nbs stats: Invalid value"),
    ],
)
def test_a_usage_error_is_one_line(
    args: list[str],
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = nbs(monkeypatch, capsys, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(says), err
    assert "--help" in err and "╭" not in err and "Usage:" not in err


def test_help_and_a_group_without_its_command_still_show_the_help(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = nbs(monkeypatch, capsys, "--help")
    assert code == 0 and "recalls" in out
    code, out, err = nbs(monkeypatch, capsys, "recalls")
    assert code == 2 and "list" in out + err and "error:" not in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["births", "unscreened", "--status", "bogus"],
            "error: --status must be one of declined, deceased, unscreened; not 'bogus'",
        ),
        (
            ["recalls", "list", "--condition", "bogus"],
            "error: --condition must be one of CAH, CF, CH, MCAD, PKU, SCID, SMA; not 'bogus'",
        ),
        (
            ["recalls", "list", "--status", "bogus"],
            "error: --status must be one of open, closed, contacted, sample_requested, referred",
        ),
        (
            ["qc", "plates", "--status", "bogus"],
            "error: --status must be one of accepted, held, rejected",
        ),
    ],
)
def test_a_wrong_option_value_is_refused_with_the_valid_ones(
    args: list[str],
    says: str,
    screened_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = nbs(monkeypatch, capsys, *args, "--db", str(screened_db))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(says), err


def test_a_stage_and_each_status_are_accepted(
    screened_db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(screened_db)
    code, out, err = nbs(monkeypatch, capsys, "recalls", "list", "--db", db, "--format", "csv")
    assert code == 0, err
    recall = pl.read_csv(out.encode())["recall_id"][0]
    code, _, err = nbs(
        monkeypatch, capsys, "recalls", "update", recall, "--status", "contacted", "--db", db
    )
    assert code == 0, err
    for status, expected in (("contacted", [recall]), ("referred", [])):
        args = ("recalls", "list", "--db", db, "--status", status, "--format", "csv")
        code, out, err = nbs(monkeypatch, capsys, *args)
        assert code == 0, err
        assert (pl.read_csv(out.encode())["recall_id"].to_list() if out.strip() else []) == expected
    for status in ("unscreened", "declined", "deceased"):
        args = ("births", "unscreened", "--db", db, "--status", status, "--format", "csv")
        code, _, err = nbs(monkeypatch, capsys, *args)
        assert code == 0, err
