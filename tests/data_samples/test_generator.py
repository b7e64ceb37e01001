"""The synthetic cohort generator: contract format, determinism, covariates, incidences."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_samples.generator import (
    INCIDENCE,
    MEASURING_RANGE,
    PUNCH_CV,
    RESULT_COLUMNS,
    SPECIMEN_COLUMNS,
    Cohort,
    extend,
    generate_cohort,
    main,
    repeat_cards,
    retest_punches,
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


@pytest.mark.slow  # over two seconds: the full tier
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


# -- what instruments really report ------------------------------------------------------


def test_every_new_draw_is_seeded_and_byte_identical(tmp_path: Path) -> None:
    """The same arguments write the same bytes: first cards (with gross errors and
    censoring), retest punches and repeat cards."""

    def draw(folder: Path) -> list[bytes]:
        cohort = generate_cohort(400, seed=5, incidence_scale=300, punch_error_rate=0.01)
        ids = cohort.specimens["specimen_id"].head(50)
        retests = retest_punches(cohort, ids, seed=9, punch_error_rate=0.01, censored=True)
        again = repeat_cards(cohort, ids, seed=10, censored=True)
        paths = write_inbox(cohort, folder, name="first", fmt="parquet")
        paths += write_inbox(again, folder, name="repeat")
        retests.write_csv(folder / "retests.csv")
        return [p.read_bytes() for p in [*paths, folder / "retests.csv"]]

    assert draw(tmp_path / "a") == draw(tmp_path / "b")
    cohort = generate_cohort(400, seed=5)
    ids = cohort.specimens["specimen_id"].head(50)
    assert not retest_punches(cohort, ids, seed=1).equals(retest_punches(cohort, ids, seed=2))
    # the order the cards are asked in does not change the draw
    assert_frame_equal(
        retest_punches(cohort, ids, seed=1), retest_punches(cohort, ids.reverse(), seed=1)
    )


def test_retest_punches_vary_around_the_card_value_with_the_punch_cv() -> None:
    cohort = generate_cohort(4000, seed=8)
    punches = retest_punches(cohort, cohort.specimens["specimen_id"], seed=3)
    assert set(punches["replicate"]) == {2, 3}
    assert punches.height == 2 * 11 * 4000
    truth = cohort.truth.filter(~pl.col("dna_failure"))
    both = (
        pl.concat([cohort.results, punches])
        .join(truth, on="specimen_id")
        .filter(pl.col("flag").is_null())
    )
    for code in ("PHE", "C8", "TSH", "OHP17", "IRT", "TREC"):
        rows = both.filter(pl.col("analyte") == code)
        log_error = (rows["value"] / rows[f"true_{code}"]).log()
        # robust: a rare DNA-failure punch must not move it (1.4826 x MAD ~ sd)
        spread = 1.4826 * (log_error - log_error.median()).abs().median()
        assert spread == pytest.approx(PUNCH_CV[code], rel=0.15), code
        assert abs(log_error.median()) < 0.02, code  # around the card's value, no bias
    for code in ("SMN1", "RPP30"):
        rows = both.filter(pl.col("analyte") == code)
        error = rows["value"] - rows[f"true_{code}"]
        spread = 1.4826 * (error - error.median()).abs().median()
        assert spread == pytest.approx(PUNCH_CV[code], rel=0.15), code
    # first punch and retests of one card disagree, as in a laboratory
    wide = both.filter(pl.col("analyte") == "TSH").pivot(
        on="replicate", index="specimen_id", values="value"
    )
    assert (wide["1"] != wide["2"]).mean() > 0.9  # type: ignore[operator]


def test_gross_punch_errors_only_when_asked() -> None:
    cohort = generate_cohort(5000, seed=4)
    ids = cohort.specimens["specimen_id"]

    def far_off(punches: pl.DataFrame) -> float:
        rows = punches.filter(pl.col("analyte") == "TSH").join(cohort.truth, on="specimen_id")
        ratio = rows["value"] / rows["true_TSH"]
        return float(((ratio > 2.5) | (ratio < 0.4)).mean())  # type: ignore[arg-type]

    assert far_off(retest_punches(cohort, ids, seed=1)) == 0
    assert 0.03 < far_off(retest_punches(cohort, ids, seed=1, punch_error_rate=0.05)) < 0.07


def test_scid_babies_mostly_have_no_trec_amplification(big: Cohort) -> None:
    trec = big.results.filter(pl.col("analyte") == "TREC").join(big.truth, on="specimen_id")
    scid = trec.filter(pl.col("affected") == "SCID")
    undetermined = scid.filter(pl.col("flag") == "undetermined")
    assert undetermined["value"].null_count() == undetermined.height
    assert 0.7 < undetermined.height / scid.height < 0.97  # 85% by default
    assert (scid.filter(pl.col("flag").is_null())["value"] <= 6).all()
    # a SCID baby without TREC stays without on every punch of the card
    absent = big.truth.filter(pl.col("affected") == "SCID", pl.col("true_TREC").is_null())
    again = retest_punches(big, absent["specimen_id"], analytes=["TREC"], seed=2)
    assert set(again["flag"]) == {"undetermined"}


def test_dna_failures_fail_every_target() -> None:
    cohort = generate_cohort(60_000, seed=12)
    qpcr = cohort.results.filter(pl.col("instrument") == "QPCR-01").pivot(
        on="analyte", index="specimen_id", values=["value", "flag"]
    )
    no_rpp30 = qpcr.filter(pl.col("flag_RPP30") == "undetermined")
    late = qpcr.filter(pl.col("value_RPP30") >= 36)
    assert 10 < no_rpp30.height < 60 and 10 < late.height < 60  # 0.05% each
    assert set(no_rpp30["flag_TREC"]) == {"undetermined"}
    assert set(no_rpp30["flag_SMN1"]) == {"undetermined"}
    assert (late["value_TREC"] <= 3).all()
    assert (late["value_SMN1"].fill_null(99) > late["value_RPP30"]).all()
    # persistent failures fail again on the retest punches; the others mostly do not
    failed = pl.concat([no_rpp30, late])["specimen_id"]
    retests = retest_punches(cohort, failed, analytes=["RPP30"], seed=4)
    stuck = cohort.truth.filter(pl.col("dna_failure"))["specimen_id"]
    assert stuck.is_in(failed.implode()).all()
    valid = retests.filter(pl.col("value") < 30)["specimen_id"]
    assert not valid.is_in(stuck.implode()).any()
    assert valid.n_unique() >= failed.len() - stuck.len() - 2


def test_censored_values_only_when_asked(big: Cohort, tmp_path: Path) -> None:
    assert big.results["value"].dtype == pl.Float64
    censored = generate_cohort(20_000, seed=7, incidence_scale=200, censored=True)
    assert censored.results["value"].dtype == pl.String
    is_text = censored.results["value"].str.contains("^[<>]")
    text = censored.results.filter(is_text)
    assert set(text["value"]) == {">250", ">300", "<1"}
    for code, (low, high) in MEASURING_RANGE.items():
        values = big.results.filter(pl.col("analyte") == code)["value"]
        beyond = (values > high).sum() if high else (values < low).sum()
        assert text.filter(pl.col("analyte") == code).height == beyond > 0, code
    # every other value is the same number, as text; the rest of the rows unchanged
    numbers = censored.results.filter(~is_text)["value"].cast(pl.Float64)
    assert numbers.equals(big.results.filter(~is_text)["value"], null_equal=True)
    assert_frame_equal(censored.results.drop("value"), big.results.drop("value"))
    write_inbox(censored, tmp_path, name="day", fmt="parquet")
    assert pl.read_parquet(tmp_path / "day.results.parquet")["value"].dtype == pl.String
    write_inbox(censored, tmp_path, name="day")
    assert ">250" in (tmp_path / "day.results.csv").read_text()


def test_a_repeat_card_is_the_same_baby_later(big: Cohort) -> None:
    first = big.specimens.join(big.truth, on=["specimen_id", "baby_id"])
    asked = first.filter(
        pl.col("affected").is_not_null() | pl.col("preterm") | pl.col("early")
    ).head(600)
    again = repeat_cards(big, asked["specimen_id"], seed=3)
    cards = again.specimens.join(
        asked.select("baby_id", "gestational_age_weeks", first_at="collected_at"),
        on="baby_id",
        suffix="_first",
    )
    assert cards.height == 600 and cards["specimen_id"].is_unique().all()
    assert not cards["specimen_id"].is_in(big.specimens["specimen_id"].implode()).any()
    assert (cards["gestational_age_weeks"] == cards["gestational_age_weeks_first"]).all()
    later = (cards["collected_at"] - cards["first_at"]).dt.total_hours() / 24
    assert (later >= 7).all()
    pma = (
        cards["gestational_age_weeks"]
        + (cards["collected_at"] - cards["birth_at"]).dt.total_hours() / 168
    )
    assert (pma >= 32).all()  # preterm babies at a corrected 32 weeks
    assert not cards["transfusion"].any()
    truth = again.truth.join(asked.select("baby_id", was="affected"), on="baby_id")
    assert truth["affected"].equals(truth["was"], null_equal=True)
    assert set(again.truth["card"]) == {2}
    wide = again.results.pivot(on="analyte", index="specimen_id", values="value").join(
        again.truth, on="specimen_id"
    )
    # affected babies stay abnormal
    assert (wide.filter(pl.col("affected") == "PKU")["PHE"] > 240).all()
    assert (wide.filter(pl.col("affected") == "CH")["TSH"] > 20).all()
    assert wide.filter(pl.col("affected") == "SMA")["SMN1"].null_count() > 0
    # unaffected babies are a fresh draw at the new age: no early TSH surge
    fine = wide.filter(pl.col("affected").is_null())
    assert fine["TSH"].median() < 2.5  # type: ignore[operator]
    # extend(): the cohort with the new cards, ids numbered on
    both = extend(big, again)
    assert both.specimens.height == big.specimens.height + 600
    assert both.specimens["specimen_id"].is_unique().all()
    assert extend(big, repeat_cards(big, [])).specimens.height == big.specimens.height


def test_planted_babies_give_every_condition_its_cases() -> None:
    cohort = generate_cohort(2000, seed=2, min_affected=5)
    counts = dict(cohort.truth.group_by("affected").len().drop_nulls().iter_rows())
    assert set(counts) == set(INCIDENCE) and min(counts.values()) >= 5
