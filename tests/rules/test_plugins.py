"""Conditions as plug-ins: a real package (tests/plugins/nbs-krec) is installed with pip
and evaluated by an ordinary run, with no change to the core code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from cutoffs import DEFAULT_CUTOFF_DIR
from nbs.conditions import ConditionPlugin, build_registry
from nbs.console import command
from nbs.rules.registry import CriterionExprs, KindContext, KindRegistry, LimitRow, RuleKind
from nbs.rules.threshold import Above, AboveParams

PLUGIN = Path(__file__).parents[1] / "plugins" / "nbs-krec"


def test_duplicate_condition_codes_and_kinds_are_refused() -> None:
    pku = ConditionPlugin("PKU", "Phenylketonuria", "1.0")
    with pytest.raises(ValueError, match="condition 'PKU' is provided twice"):
        build_registry([(pku, "a"), (ConditionPlugin("PKU", "other", "9"), "b")])
    clash = ConditionPlugin("X", "x", "1", kinds=(Above,))
    with pytest.raises(ValueError, match="rule kind 'above' is already registered"):
        build_registry([(clash, "c")])


def test_a_kind_written_as_functions_still_registers_builds_and_describes() -> None:
    """The plug-in API of functions, beside the Kind classes: a RuleKind record of two
    functions."""

    def build_phe_high(params: AboveParams, ctx: KindContext) -> CriterionExprs:
        """PHE at or above the referral limit refers."""
        return Above().build(params, ctx)

    def describe_phe_high(params: AboveParams, registry: KindRegistry) -> list[LimitRow]:
        return [LimitRow(params.marker, "≥", referral=params.limits.referral)]

    kind = RuleKind("phe_high", AboveParams, build_phe_high, describe_phe_high)
    registry = build_registry([(ConditionPlugin("X", "x", "1", kinds=(kind,)), "x")])
    criterion = {"kind": "phe_high", "marker": "PHE", "limits": {"referral": 240}}
    ctx = KindContext(units={"PHE": "µmol/L"}, decimals={"PHE": 1}, annotated=frozenset())
    frame = pl.DataFrame({"PHE": [250.0, 100.0]})
    level = registry.kinds.build(criterion, ctx).level.alias("level")
    assert frame.select(level)["level"].to_list() == [3, 0]
    assert registry.kinds.describe(criterion) == [LimitRow("PHE", "≥", referral=240.0)]
    assert registry.kinds.get("phe_high").doc == "PHE at or above the referral limit refers."


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plug-in installed (pip, offline) into its own site folder."""
    site = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build") / "nbs-krec"
    shutil.copytree(PLUGIN, build)  # pip builds in place: keep the repository clean
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--target",
            str(site),
            str(build),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return site


def _nbs(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200"}
    return subprocess.run(
        command(*args),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_installed_plugin_is_listed_with_its_version(installed: Path) -> None:
    proc = _nbs(installed, "conditions")
    assert proc.returncode == 0, proc.stderr
    assert "KREC" in proc.stdout and "0.1.0" in proc.stdout and "nbs-krec" in proc.stdout


@pytest.mark.slow
def test_installed_plugin_condition_is_evaluated_in_a_run(installed: Path, tmp_path: Path) -> None:
    cutoffs = tmp_path / "cutoffs"
    shutil.copytree(DEFAULT_CUTOFF_DIR, cutoffs, ignore=shutil.ignore_patterns("*.py", "__*"))
    data = yaml.safe_load((cutoffs / "lns-2026.1.yaml").read_text())
    data["conditions"]["KREC"] = {
        "name": "B-cell deficiency (KREC)",
        "markers": ["KREC"],
        "criteria": [{"kind": "krec_low", "limit": 4}],
        "sources": ["synthetic test plug-in"],
    }
    (cutoffs / "lns-2026.1.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "d.specimens.csv").write_text(
        "specimen_id,baby_id,birth_at,collected_at,received_at,sex,specimen_quality\n"
        "K1,BK1,2026-03-01T08:00,2026-03-03T10:00,2026-03-04T10:00,F,ok\n"
        "K2,BK2,2026-03-01T08:00,2026-03-03T10:00,2026-03-04T10:00,M,ok\n"
    )
    rows = ["specimen_id,analyte,value,unit,measured_at,instrument,plate_id,replicate"]
    for sid, values in (("K1", (2.0, 1.0, 3.0)), ("K2", (80.0, 75.0, 90.0))):
        rows += [
            f"{sid},KREC,{v},copies/µL,2026-03-05T10:00,QPCR-01,P1,{r}"
            for r, v in enumerate(values, start=1)
        ]
    (inbox / "d.results.csv").write_text("\n".join(rows) + "\n")
    db = tmp_path / "nbs.duckdb"

    proc = _nbs(
        installed,
        "run",
        str(inbox),
        "--db",
        str(db),
        "--cutoffs",
        str(cutoffs),
        "--engine",
        "local",
    )
    assert proc.returncode == 0, proc.stderr
    from nbs import store

    calls = dict(
        store.query(
            db, "SELECT specimen_id, call FROM screening_calls WHERE condition = 'KREC'"
        ).iter_rows()
    )
    assert calls == {"K1": "referral", "K2": "negative"}
    shown = _nbs(installed, "cutoffs", "show", "--cutoffs", str(cutoffs), "--format", "csv")
    assert "KREC,first,KREC,≤" in shown.stdout


@pytest.mark.slow
def test_a_plugin_reader_reads_its_vendors_export_in_a_run(installed: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "d.specimens.csv").write_text(
        "specimen_id,baby_id,birth_at,collected_at,received_at,sex,specimen_quality\n"
        "K1,BK1,2026-03-01T08:00,2026-03-03T10:00,2026-03-04T10:00,F,ok\n"
    )
    (inbox / "panel-0305.out").write_text(
        "#KREC-PANEL v1 PLATE KP-1 AT 2026-03-05T10:00:00\nK1;2.5\n"
    )
    db = tmp_path / "nbs.duckdb"
    proc = _nbs(installed, "run", str(inbox), "--db", str(db), "--engine", "local")
    assert proc.returncode == 0, proc.stderr
    from nbs import store

    stored = store.query(
        db, "SELECT specimen_id, analyte, value, plate_id FROM result_details"
    ).rows()
    assert stored == [("K1", "KREC", 2.5, "KP-1")]
    again = tmp_path / "again"
    again.mkdir()
    (again / "panel-0305.out").write_text("#KREC-PANEL v1 PLATE KP-2 AT 2026-03-05T10:00\n")
    without = _nbs(tmp_path, "run", str(again), "--db", str(tmp_path / "other.duckdb"))
    assert "panel-0305.out (not a known file kind)" in without.stdout + without.stderr


def test_without_the_plugin_a_set_naming_it_is_refused(tmp_path: Path) -> None:
    from nbs.config import load_config

    cutoffs = tmp_path / "cutoffs"
    shutil.copytree(DEFAULT_CUTOFF_DIR, cutoffs, ignore=shutil.ignore_patterns("*.py", "__*"))
    data = yaml.safe_load((cutoffs / "lns-2026.1.yaml").read_text())
    data["conditions"]["KREC"] = {
        "name": "x",
        "markers": ["KREC"],
        "criteria": [{"kind": "krec_low", "limit": 4}],
        "sources": ["x"],
    }
    (cutoffs / "lns-2026.1.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(ValueError, match="KREC: no installed plug-in provides this condition"):
        load_config(cutoffs)
