"""The synthetic cohort generator: contract format, determinism, covariates, incidences."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_samples.generator import (
    RESULT_COLUMNS,
    SPECIMEN_COLUMNS,
    generate_cohort,
    main,
    write_inbox,
)


@pytest.fixture(scope="module")
def big():  # type: ignore[no-untyped-def]
    return generate_cohort(20_000, seed=7, incidence_scale=200)


def test_same_seed_same_cohort_other_seed_other_cohort() -> None:
    a, b, c = (
        generate_cohort(300, seed=1),
        generate_cohort(300, seed=1),
        generate_cohort(300, seed=2),
    )
    assert_frame_equal(a.specimens, b.specimens)
    assert_frame_equal(a.results, b.results)
    assert not a.results.equals(c.results)


def test_contract_columns_and_eleven_results_per_card() -> None:
    cohort = generate_cohort(500)
    assert tuple(cohort.specimens.columns) == SPECIMEN_COLUMNS
    assert tuple(cohort.results.columns) == RESULT_COLUMNS
    assert cohort.specimens["specimen_id"].is_unique().all()
    per_card = cohort.results.group_by("specimen_id").len()
    assert per_card.height == 500 and set(per_card["len"]) == {11}
    s = cohort.specimens
    assert (s["collected_at"] > s["birth_at"]).all()
    assert (s["received_at"] > s["collected_at"]).all()


def test_covariates_move_the_markers(big) -> None:  # type: ignore[no-untyped-def]
    wide = (
        big.results.pivot(on="analyte", index="specimen_id", values="value")
        .join(big.truth, on="specimen_id")
        .filter(pl.col("affected").is_null())
    )
    median = lambda frame, col: frame[col].median()  # noqa: E731
    assert median(wide.filter("preterm"), "OHP17") > 2 * median(
        wide.filter(~pl.col("preterm")), "OHP17"
    )
    assert median(wide.filter("early"), "TSH") > 2 * median(wide.filter(~pl.col("early")), "TSH")
    tpn, fed = wide.filter("tpn"), wide.filter(~pl.col("tpn"))
    assert median(tpn, "PHE") > 1.6 * median(fed, "PHE")
    ratio = lambda frame: (frame["PHE"] / frame["TYR"]).median()  # noqa: E731
    assert abs(ratio(tpn) / ratio(fed) - 1) < 0.15


def test_affected_babies_look_affected(big) -> None:  # type: ignore[no-untyped-def]
    assert set(big.truth["affected"].drop_nulls()) == {
        "PKU",
        "CH",
        "CAH",
        "MCAD",
        "CF",
        "SMA",
        "SCID",
    }
    wide = big.results.pivot(on="analyte", index="specimen_id", values="value").join(
        big.truth, on="specimen_id"
    )
    pku = wide.filter(pl.col("affected") == "PKU")
    assert (pku["PHE"] > 150).all() and ((pku["PHE"] / pku["TYR"]) > 1.7).all()
    sma_ids = big.truth.filter(pl.col("affected") == "SMA")["specimen_id"]
    smn1 = big.results.filter(
        (pl.col("analyte") == "SMN1") & pl.col("specimen_id").is_in(sma_ids.implode())
    )
    assert smn1["value"].null_count() == smn1.height
    assert set(smn1["flag"]) == {"undetermined"}


def test_incidence_is_about_right() -> None:
    cohort = generate_cohort(200_000, seed=3)
    ch = cohort.truth.filter(pl.col("affected") == "CH").height
    assert 40 <= ch <= 95  # expected 66.7 at 1/3,000


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_inbox_round_trips(tmp_path: Path, fmt: str) -> None:
    cohort = generate_cohort(50)
    spec_path, res_path = write_inbox(cohort, tmp_path, name="day", fmt=fmt)  # type: ignore[arg-type]
    assert spec_path.name == f"day.specimens.{fmt}" and res_path.name == f"day.results.{fmt}"
    if fmt == "csv":
        back = pl.read_csv(res_path, try_parse_dates=True)
    else:
        back = pl.read_parquet(res_path)
    assert back["value"].to_list() == cohort.results["value"].to_list()
    assert back["specimen_id"].to_list() == cohort.results["specimen_id"].to_list()


def test_command_line_writes_an_inbox(tmp_path: Path) -> None:
    assert main(["--cards", "30", "--out", str(tmp_path), "--name", "lux-day"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "lux-day.results.csv",
        "lux-day.specimens.csv",
    ]
