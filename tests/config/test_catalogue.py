"""The analyte catalogue: every contract code, aliases, LOINC, unit conversions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytes import load_catalogue
from analytes.catalogue import unit_key

CONTRACT_CODES = ("PHE", "TYR", "C2", "C8", "C10", "TSH", "OHP17", "IRT", "SMN1", "RPP30", "TREC")
CONTRACT_UNITS = {
    "PHE": "µmol/L",
    "TYR": "µmol/L",
    "C2": "µmol/L",
    "C8": "µmol/L",
    "C10": "µmol/L",
    "TSH": "mU/L",
    "OHP17": "nmol/L",
    "IRT": "ng/mL",
    "SMN1": "Ct",
    "RPP30": "Ct",
    "TREC": "copies/µL",
}
CAT = load_catalogue()


def test_every_first_tier_contract_code_with_its_unit() -> None:
    for code in CONTRACT_CODES:
        analyte = CAT.get(code)
        assert analyte.unit == CONTRACT_UNITS[code]
        assert analyte.tier == 1
        assert analyte.plausible.min < analyte.plausible.max


def test_loinc_codes_from_the_primer() -> None:
    assert CAT.get("PHE").loinc == "29573-3"
    assert CAT.get("TSH").loinc == "29575-8"
    assert CAT.get("TREC").loinc == "62320-7"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Phe", "PHE"),
        ("Phenylalanine", "PHE"),
        ("  phenylalanine ", "PHE"),
        ("17-OHP", "OHP17"),
        ("hTSH", "TSH"),
        ("RNase P", "RPP30"),
        ("tyr", "TYR"),
        ("Xle", None),
    ],
)
def test_aliases_as_instruments_print_them(name: str, code: str | None) -> None:
    assert CAT.code_for(name) == code


@pytest.mark.parametrize(
    ("code", "value", "unit", "expected"),
    [
        ("PHE", 2.0, "mg/dL", 121.08),  # 165.19 g/mol
        ("TYR", 1.0, "mg/dL", 55.19),  # 181.19 g/mol
        ("OHP17", 10.0, "ng/mL", 30.26),  # 330.46 g/mol
        ("TSH", 7.0, "µIU/mL", 7.0),  # the same quantity
        ("TSH", 7.0, "uIU/mL", 7.0),
        ("PHE", 150.0, "μmol/l", 150.0),  # Greek mu, lower case
        ("IRT", 40.0, "µg/L", 40.0),
    ],
)
def test_conversions_a_lab_meets(code: str, value: float, unit: str, expected: float) -> None:
    assert CAT.to_catalogue_unit(code, value, unit) == pytest.approx(expected, rel=1e-9)


def test_unknown_unit_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="unknown unit"):
        CAT.to_catalogue_unit("PHE", 1.0, "mg")


conversions = [(a.code, c.unit) for a in CAT.analytes for c in a.conversions]


@settings(max_examples=300, deadline=None)
@given(
    pair=st.sampled_from(conversions), value=st.floats(min_value=0, max_value=1e6, allow_nan=False)
)
def test_unit_conversions_round_trip(pair: tuple[str, str], value: float) -> None:
    code, unit = pair
    there = CAT.to_catalogue_unit(code, value, unit)
    back = CAT.from_catalogue_unit(code, there, unit)
    assert back == pytest.approx(value, rel=1e-12, abs=1e-12)


def test_unit_key_folds_micro_signs_case_and_spaces() -> None:
    assert unit_key("µmol/L") == unit_key("μmol / l") == unit_key("umol/L")


def test_alias_clash_is_rejected() -> None:
    from analytes.catalogue import Catalogue

    data = CAT.model_dump()
    data["analytes"][1]["aliases"] = [*data["analytes"][1]["aliases"], "Phe"]
    with pytest.raises(ValueError, match="names both"):
        Catalogue.model_validate(data)


@pytest.mark.parametrize(("code", "unit"), [("TREC", None), ("SMN1", None), ("RPP30", "Cq")])
def test_a_qpcr_marker_without_no_amplification_is_refused_by_name(
    code: str, unit: str | None
) -> None:
    """An "Undetermined" well means the target is absent only where the catalogue says
    what it is evaluated as: a qPCR marker (Ct, Cq, copies per volume) must say it."""
    from analytes.catalogue import Catalogue

    data = CAT.model_dump()
    entry = next(a for a in data["analytes"] if a["code"] == code)
    entry["no_amplification"] = None
    if unit is not None:
        entry["unit"] = unit
    with pytest.raises(ValueError, match=f"{code}: a qPCR marker .* must declare no_amplification"):
        Catalogue.model_validate(data)


def test_every_qpcr_marker_of_the_catalogue_declares_no_amplification() -> None:
    from analytes.catalogue import is_qpcr_unit

    qpcr = {a.code for a in CAT.analytes if is_qpcr_unit(a.unit)}
    assert qpcr == {"SMN1", "RPP30", "TREC", "KREC", "ACTB"}
    assert all(CAT.get(code).no_amplification is not None for code in qpcr)
    # a copy number is a count, not a well: SMN2 copies need no declaration
    assert not is_qpcr_unit(CAT.get("SMN2_COPIES").unit)
