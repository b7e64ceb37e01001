"""Row-level validation: every bad row is named by row, column, value and reason."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytes import load_catalogue
from nbs.intake.discover import InboxFile, UnreadableFile, read_raw, read_raw_blocks, sha256_of
from nbs.validate.card_warnings import specimen_warnings
from nbs.validate.check import validate_results, validate_specimens

HEADER_S = (
    "specimen_id,baby_id,birth_at,collected_at,received_at,sex,birth_weight_g,"
    "gestational_age_weeks,transfusion,parenteral_nutrition,consent_cf,"
    "specimen_quality,submitter"
)
GOOD_S = (
    "S1,B1,2026-01-05T08:00:00,2026-01-07T10:00:00,2026-01-08T09:00:00,"
    "M,3300,39,false,false,true,ok,CHL"
)
HEADER_R = "specimen_id,analyte,value,unit,measured_at,instrument,plate_id,well,replicate,flag"
GOOD_R = "S1,PHE,55.0,µmol/L,2026-01-08T12:00:00,MSMS-01,P1,A01,1,"


def _file(tmp_path: Path, name: str, text: str) -> InboxFile:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    kind = "specimens" if ".specimens." in name else "results"
    return InboxFile(path, kind, "csv", sha256_of(path), path.stat().st_size)  # type: ignore[arg-type]


def _quarantine(tmp_path: Path, kind: str, *rows: str) -> pl.DataFrame:
    header = HEADER_S if kind == "specimens" else HEADER_R
    f = _file(tmp_path, f"t.{kind}.csv", "\n".join([header, *rows]) + "\n")
    raw = read_raw(f)
    if kind == "specimens":
        return validate_specimens(raw).quarantine
    return validate_results(raw, load_catalogue()).quarantine


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        (
            GOOD_S.replace("2026-01-07T10:00:00", "2026-01-04T10:00:00"),
            "collected_at",
            "collection before birth",
        ),
        (GOOD_S.replace(",3300,", ",45000,"), "birth_weight_g", "impossible birth weight"),
        (GOOD_S.replace(",39,", ",61,"), "gestational_age_weeks", "impossible gestational age"),
        (GOOD_S.replace(",M,", ",,"), "sex", "required value is missing"),
        (GOOD_S.replace(",M,", ",X,"), "sex", "sex must be M, F or U"),
        (GOOD_S.replace("2026-01-05T08:00:00", "yesterday"), "birth_at", "not an ISO-8601"),
        (GOOD_S.replace(",ok,", ",smudged,"), "specimen_quality", "unknown specimen_quality"),
        (GOOD_S.replace("true,ok", "perhaps,ok"), "consent_cf", "not true or false"),
        (
            GOOD_S.replace("2026-01-08T09:00:00", "2026-01-06T09:00:00"),
            "received_at",
            "received before collection",
        ),
    ],
)
def test_bad_card_rows_are_named(tmp_path: Path, row: str, column: str, reason: str) -> None:
    q = _quarantine(tmp_path, "specimens", GOOD_S.replace("S1,B1", "S0,B0"), row)
    assert q["row_number"].to_list() == [2]
    assert q["column_name"].to_list() == [column]
    assert reason in q["reason"].item()


@pytest.mark.parametrize(
    ("row", "column", "value", "reason"),
    [
        (GOOD_R.replace("55.0", "lots"), "value", "lots", "not a number"),
        (GOOD_R.replace("PHE", "PHX"), "analyte", "PHX", "unknown analyte"),
        (GOOD_R.replace("µmol/L", "mg"), "unit", "mg", "unknown unit"),
        (GOOD_R.replace(",1,", ",0,"), "replicate", "0", "replicate must be 1 or more"),
        (GOOD_R.replace("55.0", "-3"), "value", "-3", "plausible range"),
        (GOOD_R.replace("MSMS-01", ""), "instrument", None, "required value is missing"),
    ],
)
def test_bad_result_rows_are_named(
    tmp_path: Path, row: str, column: str, value: str | None, reason: str
) -> None:
    q = _quarantine(tmp_path, "results", GOOD_R, row)
    assert q["row_number"].to_list() == [2]
    assert q["column_name"].to_list() == [column]
    assert q["value"].to_list() == [value]
    assert reason in q["reason"].item()


def test_a_file_reports_all_its_problems_at_once(tmp_path: Path) -> None:
    q = _quarantine(
        tmp_path,
        "results",
        GOOD_R.replace("55.0", "x"),
        GOOD_R.replace("PHE", "PHX").replace("µmol/L", "mg"),
        GOOD_R,
        GOOD_R.replace(",1,", ",-1,"),
    )
    assert sorted(set(q["row_number"].to_list())) == [1, 2, 4]


def test_good_rows_go_on_converted_to_catalogue_units(tmp_path: Path) -> None:
    f = _file(
        tmp_path,
        "t.results.csv",
        "\n".join(
            [
                HEADER_R,
                GOOD_R.replace("PHE,55.0,µmol/L", "Phenylalanine,1.0,mg/dL"),
                GOOD_R.replace("PHE,55.0", "TYR,lots"),
            ]
        )
        + "\n",
    )
    checked = validate_results(read_raw(f), load_catalogue())
    good = checked.good.row(0, named=True)
    assert good["analyte"] == "PHE" and good["value"] == pytest.approx(60.54)
    assert good["value_reported"] == 1.0 and good["unit"] == "µmol/L"
    # the texts as reported stay in the raw row only (the database joins them back)
    assert "unit_reported" not in good and "analyte_reported" not in good
    assert checked.good.height == 1


def test_missing_required_column_makes_the_file_unreadable(tmp_path: Path) -> None:
    f = _file(tmp_path, "t.results.csv", "specimen_id,value\nS1,3\n")
    with pytest.raises(UnreadableFile, match="required column"):
        read_raw(f)


def test_binary_garbage_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "g.results.csv"
    path.write_bytes(b"\x89PNG\x00\xff\xfe")
    f = InboxFile(path, "results", "csv", sha256_of(path), 8)
    with pytest.raises(UnreadableFile, match="UTF-8"):
        read_raw(f)


def test_parquet_with_bad_value_type_is_reported_per_row(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "specimen_id": ["S1", "S2"],
            "analyte": ["PHE", "PHE"],
            "value": ["55", "abc"],
            "unit": ["µmol/L", "µmol/L"],
            "measured_at": ["2026-01-08T12:00:00"] * 2,
            "instrument": ["M"] * 2,
            "plate_id": ["P"] * 2,
            "replicate": [1, 1],
        }
    )
    path = tmp_path / "p.results.parquet"
    frame.write_parquet(path)
    f = InboxFile(path, "results", "parquet", sha256_of(path), 1)
    checked = validate_results(read_raw(f), load_catalogue())
    assert checked.good["specimen_id"].to_list() == ["S1"]
    assert checked.quarantine.select("row_number", "column_name").rows() == [(2, "value")]


def test_warnings_keep_the_card(tmp_path: Path) -> None:
    f = _file(
        tmp_path,
        "t.specimens.csv",
        "\n".join(
            [
                HEADER_S,
                GOOD_S.replace(",3300,39,", ",900,40,"),
                GOOD_S.replace("S1,B1", "S2,B2").replace(",3300,39,", ",,,"),
            ]
        )
        + "\n",
    )
    checked = validate_specimens(read_raw(f))
    assert checked.quarantine.is_empty()
    warnings = specimen_warnings(checked.good)
    assert warnings.select("specimen_id", "column_name").rows() == [
        ("S1", "birth_weight_g"),
        ("S2", "birth_weight_g"),
        ("S2", "gestational_age_weeks"),
    ]
    assert "implausible at 40 weeks" in warnings["reason"][0]


@pytest.mark.parametrize("block_bytes", [50, 97, 200, 1000, 1 << 20])
def test_a_csv_read_in_blocks_gives_the_rows_of_one_read(tmp_path: Path, block_bytes: int) -> None:
    """Blocks end only between rows: a quoted field with a line break or doubled quotes
    is never cut, and row numbers run on across blocks."""
    rows = [
        GOOD_R.replace("MSMS-01", f'"MS\nMS ""{i}"""').replace("S1,", f"S{i},", 1)
        for i in range(300)
    ]
    f = _file(tmp_path, "t.results.csv", "\n".join([HEADER_R, *rows]) + "\n")
    blocks = list(read_raw_blocks(f, block_bytes))
    whole = pl.concat(blocks)
    assert (len(blocks) > 1) == (block_bytes < 1000 * 60)
    assert whole["row_number"].to_list() == list(range(1, 301))
    assert whole["specimen_id"].to_list() == [f"S{i}" for i in range(300)]
    assert whole["instrument"][7] == 'MS\nMS "7"'


def _results_csv(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], crlf: bool
) -> InboxFile:
    """A results CSV of these fields (already quoted where they need it)."""
    end = "\r\n" if crlf else "\n"
    text = end.join([HEADER_R, *(",".join(r) for r in rows)]) + end
    return _file(tmp_path_factory.mktemp("csv"), "t.results.csv", text)


_PLAIN = st.text(alphabet="ab9 µ", max_size=4)
_QUOTED = st.text(alphabet='a,"\n ', max_size=5).map(lambda t: '"' + t.replace('"', '""') + '"')


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(st.one_of(_PLAIN, _QUOTED), min_size=10, max_size=10), max_size=25),
    block_bytes=st.integers(1, 400),
    crlf=st.booleans(),
)
def test_any_csv_read_in_blocks_gives_the_rows_of_one_read(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], block_bytes: int, crlf: bool
) -> None:
    """Whatever the quoting (commas, quotes and line breaks inside quoted fields), the line
    endings and the block size, the blocks hold the rows of one read, numbered alike."""
    f = _results_csv(tmp_path_factory, rows, crlf)
    whole = pl.concat(list(read_raw_blocks(f, 1 << 20)))
    assert pl.concat(list(read_raw_blocks(f, block_bytes))).equals(whole)


def test_a_header_only_csv_is_one_empty_block(tmp_path: Path) -> None:
    f = _file(tmp_path, "t.results.csv", HEADER_R)
    blocks = list(read_raw_blocks(f, 10))
    assert len(blocks) == 1 and blocks[0].height == 0


def test_bad_utf8_deep_in_a_big_file_is_named_by_byte(tmp_path: Path) -> None:
    text = "\n".join([HEADER_R, *[GOOD_R] * 50]) + "\n"
    path = tmp_path / "t.results.csv"
    path.write_bytes(text.encode() + b"S9,PHE,\xff\n")
    f = InboxFile(path, "results", "csv", sha256_of(path), path.stat().st_size)
    with pytest.raises(UnreadableFile, match=f"byte {len(text.encode()) + 7}"):
        list(read_raw_blocks(f, 100))


_DATETIME_TEXTS = [
    "2026-01-05T08:00:00",
    "2026-01-05 08:00:00.5",
    "2026-01-05T08:00",
    "2026-01-05 08:00",
    "2026-01-05T08:00:00+02:00",
    "2026-01-05T08:00:00Z",
    "2026-01-05T08:00:00.123456",
    "05/01/2026 08:00",
    "2026-13-01T00:00:00",
    "",
    "garbage",
    # edges where polars' fast parser of the usual form could disagree with chrono's
    "2026-1-5T8:0:0",
    "2026-01-05T08:00:60",
    "2026-02-30T08:00:00",
    "2024-02-29T08:00:00",
    "2026-01-05T24:00:00",
    "2026-01-05t08:00:00",
    "2026-01-05T08:00:00.",
    "2026-01-05T08:00:0",
    "2026-01-05T08:00:000",
    "+2026-01-05T08:00:00",
    "02026-01-05T08:00:00",
    " 2026-01-05T08:00:00",
    "2026-01-05T08:00:00 ",
    "0000-01-01T00:00:00",
    "9999-12-31T23:59:59",
    # signs: polars' fast parser alone reads the first as the year 26
    "--026-01-05T08:00:00",
    "-026-01-05T08:00:00",
    "-2026-01-05T08:00:00",
    "--999-12-31T23:59:59",
]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(_DATETIME_TEXTS),
            st.text(alphabet="0123456789-T:. Z+", max_size=26),
        ),
        max_size=40,
    )
)
def test_datetimes_parse_as_the_first_accepted_form_that_fits(texts: list[str | None]) -> None:
    """The usual form is tried on every row and the accepted forms only where it fails:
    the result is the same as trying every accepted form in turn on every row, whatever
    the mix (and whatever polars' fast parser of the usual form makes of an odd text)."""
    from nbs.validate.times import _datetime_formats, parse_datetime

    series = pl.Series("t", texts, dtype=pl.String)
    every_form = series.to_frame().select(_datetime_formats(pl.col("t"))).to_series()
    parsed = parse_datetime(series)
    # compared in polars: year 0 has no Python datetime
    assert parsed.dtype == pl.Datetime("us")
    assert parsed.eq_missing(every_form).all(), texts


def _number_oracle(text: str | None) -> float | None:
    """What a number text means, spelt plainly: a decimal point or a decimal comma."""
    if text is None or text != text.strip():  # white space is not trimmed: not a number
        return None
    for candidate in (text, text.replace(",", ".", 1) if text.count(",") == 1 else None):
        try:
            return float(candidate) if candidate is not None and "_" not in candidate else None
        except ValueError:
            continue
    return None


_NUMBER_TEXTS = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(
        lambda f: str(f).replace(".", ",")
    ),
    st.integers(-(10**6), 10**6).map(str),
    st.integers(-(10**6), 10**6).map(lambda i: f"{i}.0"),
    st.integers(-(10**6), 10**6).map(lambda i: f"{i},0"),
    st.sampled_from(["", "abc", "1,2,3", "1.5.2", "3200.5", " 7", "1e3", "--1"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_NUMBER_TEXTS, max_size=30))
def test_numbers_parse_with_a_decimal_point_or_comma(texts: list[str | None]) -> None:
    """A number as the plain cast reads it, else with its decimal comma made a point; a
    whole number (``3200`` or ``3200.0``) is an integer; anything else is null, whatever
    the mix of forms in the column (the comma is only looked at where the cast failed)."""
    from nbs.validate.parsing import parse_float, parse_int

    series = pl.Series("t", texts, dtype=pl.String)
    floats = parse_float(series).to_list()
    ints = parse_int(series).to_list()
    for text, number, whole in zip(texts, floats, ints, strict=True):
        expected = _number_oracle(text)
        if expected is None:
            assert number is None, text
        else:
            assert number == pytest.approx(expected, rel=1e-12), text
        if expected is not None and abs(expected) >= 2**53:
            continue  # beyond exact floats: no card or replicate is that large
        if expected is not None and expected == round(expected):
            assert whole == int(expected), text
        else:
            assert whole is None, text


_UNICODE_SPACED = st.text(alphabet="a9µ\u00a0\u3000\u2028", max_size=4)
_ASCII_SPACED = st.text(alphabet="a9 \t", max_size=4)
_QUOTED_BREAK = st.text(alphabet="a\n", max_size=4).map(lambda t: f'"{t}"')


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    rows=st.one_of(
        # no ASCII white space, no quote: only the columns with Unicode white space
        st.lists(st.lists(_UNICODE_SPACED, min_size=10, max_size=10), max_size=20),
        # the only ASCII white space a line break inside quotes
        st.lists(
            st.lists(st.one_of(_UNICODE_SPACED, _QUOTED_BREAK), min_size=10, max_size=10),
            max_size=20,
        ),
        st.lists(
            st.lists(st.one_of(_UNICODE_SPACED, _ASCII_SPACED, _QUOTED), min_size=10, max_size=10),
            max_size=20,
        ),
    ),
    crlf=st.booleans(),
)
def test_white_space_is_stripped_whatever_the_block_holds(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], crlf: bool
) -> None:
    """Only the columns that may need it are stripped (the block's bytes and the column's
    characters say which): the texts come out as when every text is stripped, whatever
    the mix of ASCII and Unicode white space, quotes and line endings."""
    from nbs.intake.discover import _contract_columns

    f = _results_csv(tmp_path_factory, rows, crlf)
    every_text_stripped = _contract_columns(pl.read_csv(f.path, infer_schema=False), f)
    assert read_raw(f).drop("row_number").equals(every_text_stripped)


@pytest.mark.parametrize(
    ("zone", "collected"),
    [
        (None, "2026-01-07 11:00:00"),  # the default: Europe/Luxembourg, UTC+1 in January
        ("UTC", "2026-01-07 10:00:00"),
        ("America/New_York", "2026-01-07 05:00:00"),
    ],
)
def test_offset_times_are_converted_to_the_lab_time_zone_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zone: str | None, collected: str
) -> None:
    """A time sent with an offset is converted to ``NBS_LAB_TIME_ZONE``, read when the file
    is validated; a time without an offset is the laboratory's already."""
    if zone is None:
        monkeypatch.delenv("NBS_LAB_TIME_ZONE", raising=False)
    else:
        monkeypatch.setenv("NBS_LAB_TIME_ZONE", zone)
    row = GOOD_S.replace("2026-01-07T10:00:00", "2026-01-07T10:00:00Z")
    f = _file(tmp_path, "t.specimens.csv", f"{HEADER_S}\n{row}\n")
    good = validate_specimens(read_raw(f)).good
    assert str(good["collected_at"].item()) == collected
    assert str(good["birth_at"].item()) == "2026-01-05 08:00:00"


def test_a_censored_bound_past_the_plausible_range_is_kept_and_flagged(tmp_path: Path) -> None:
    """TSH ``>3000`` lies above the plausible 2000 mU/L: the instrument says the value is at
    least 3000, a result to act on, never an error to hold. The same number uncensored,
    and a bound on the wrong side (``<3000``), stay held."""
    from nbs.validate.card_warnings import result_warnings

    tsh = GOOD_R.replace("PHE,55.0,µmol/L", "TSH,>3000,mU/L")
    rows = [
        tsh,
        tsh.replace(">3000", "> 2500").replace("mU/L", "µIU/mL").replace(",1,", ",2,"),
        GOOD_R.replace("PHE,55.0", "TYR,<-1").replace("S1,", "S2,"),
        tsh.replace(">3000", "3000").replace("S1,", "S3,"),
        tsh.replace(">3000", "<3000").replace("S1,", "S4,"),
    ]
    f = _file(tmp_path, "t.results.csv", "\n".join([HEADER_R, *rows]) + "\n")
    checked = validate_results(read_raw(f), load_catalogue())
    assert checked.quarantine["row_number"].to_list() == [4, 5]
    assert "plausible range" in checked.quarantine["reason"][0]
    good = checked.good.select("specimen_id", "analyte", "value", "value_reported", "censored")
    assert good.rows() == [
        ("S1", "TSH", 3000.0, 3000.0, ">"),
        ("S1", "TSH", 2500.0, 2500.0, ">"),
        ("S2", "TYR", -1.0, -1.0, "<"),
    ]
    warned = result_warnings(checked.good, load_catalogue())
    assert warned.select("specimen_id", "column_name").rows() == [("S1", "TSH"), ("S2", "TYR")]
    assert warned["reason"][0] == (
        "TSH reported as >2500.0, >3000.0, past its plausible range (0-2000 mU/L): kept and "
        "acted on; check the instrument and the unit"
    )
    # a censored value within the range is no news
    inside = checked.good.with_columns(value=pl.lit(300.0))
    assert result_warnings(inside, load_catalogue()).is_empty()
