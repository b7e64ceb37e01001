"""Configuration files: a key given twice, malformed YAML or another encoding is refused
with one line naming the file and the line, never read with a silent override."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cutoffs import DEFAULT_CUTOFF_DIR
from nbs.cli import app
from nbs.yamlfile import ConfigFileError, load_yaml


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("conditions:\n  PKU: {a: 1}\n  CH: {a: 2}\n  PKU: {a: 3}\n")
    with pytest.raises(ConfigFileError, match=r"c\.yaml:4: duplicate key 'PKU' .*line 2"):
        load_yaml(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a: [1, 2\n", r"bad\.yaml:2: expected ',' or ']'"),
        (b"a: caf\xe9\n", r"bad\.yaml:1: not UTF-8"),
    ],
)
def test_malformed_or_latin1_yaml_names_file_and_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigFileError, match=message):
        load_yaml(path)


def test_a_second_pku_block_in_a_cutoff_file_is_refused(tmp_path: Path) -> None:
    """A second ``PKU:`` block used to replace the first silently (a Phe of 900 was called
    negative under the copy's limits)."""
    folder = tmp_path / "cutoffs"
    shutil.copytree(DEFAULT_CUTOFF_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__*"))
    path = folder / "lns-2026.1.yaml"
    text = path.read_text()
    start = text.index("  PKU:\n")
    end = text.index("  CH:\n")
    path.write_text(text + text[start:end].replace("referral: 240", "referral: 2400"))
    checked = CliRunner().invoke(app, ["cutoffs", "check", str(path)])
    assert checked.exit_code == 1
    assert "duplicate key 'PKU'" in checked.output
    ran = CliRunner().invoke(
        app,
        [
            "run",
            str(tmp_path),
            "--db",
            str(tmp_path / "x.duckdb"),
            "--cutoffs",
            str(folder),
            "--engine",
            "local",
        ],
    )
    assert ran.exit_code != 0
    assert "duplicate key 'PKU'" in str(ran.exception) + ran.output
