"""Configuration files: a key given twice, malformed YAML or another encoding is refused
with one line naming the file and the line, never read with a silent override."""

from __future__ import annotations

import re
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


#: the folders whose YAML the pipeline (and its sample data) read
GUARDED = ("nbs", "analytes", "cutoffs", "flows", "data_samples")
#: a YAML parser called directly: PyYAML's loaders (also imported by name) or ruamel's YAML()
DIRECT_LOAD = re.compile(
    r"\byaml\.(?:safe_load|load|full_load|unsafe_load)(?:_all)?\s*\("
    r"|\bYAML\s*\("
    r"|from\s+yaml\s+import\s+[^\n]*\b(?:safe_load|load|full_load|unsafe_load)\b"
)
#: files allowed to call a parser themselves, with why; every other file goes through
#: nbs.yamlfile.load_yaml
OWN_LOADER = {
    "nbs/yamlfile.py": "the one loader that refuses a duplicate key",
}


def test_no_yaml_is_parsed_outside_the_one_loader() -> None:
    """Every configuration YAML goes through :func:`nbs.yamlfile.load_yaml`, so each keeps
    refusing a key given twice; a direct ``yaml.safe_load`` would silently take the last."""
    root = Path(__file__).parents[2]
    found = [
        f"{path.relative_to(root).as_posix()}:{n}: {line.strip()}"
        for folder in GUARDED
        for path in sorted((root / folder).rglob("*.py"))
        if path.relative_to(root).as_posix() not in OWN_LOADER
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if DIRECT_LOAD.search(line)
    ]
    assert not found, "parse YAML with nbs.yamlfile.load_yaml:\n" + "\n".join(found)
    for allowed in OWN_LOADER:
        assert DIRECT_LOAD.search((root / allowed).read_text(encoding="utf-8")), (
            f"{allowed} no longer parses YAML itself: take it out of OWN_LOADER"
        )


def test_the_guard_sees_each_way_of_parsing() -> None:
    for line in (
        "data = yaml.safe_load(text)",
        "yaml.load(text, Loader=yaml.SafeLoader)",
        "docs = list(yaml.safe_load_all(fh))",
        "from yaml import safe_load",
        "parser = YAML(typ='safe')",
    ):
        assert DIRECT_LOAD.search(line), line
    for line in ("load_yaml(path)", "yaml.safe_dump(data)", "import yaml"):
        assert not DIRECT_LOAD.search(line), line


def test_the_case_table_refuses_a_duplicate_key(tmp_path: Path) -> None:
    from data_samples.clinical_cases import CASES_FILE, load_cases

    text = CASES_FILE.read_text(encoding="utf-8")
    path = tmp_path / "cases.yaml"
    path.write_text(text.replace("card_defaults:\n", "card_defaults:\n  sex: F\n  sex: M\n", 1))
    with pytest.raises(ConfigFileError, match="duplicate key 'sex'"):
        load_cases(path)
