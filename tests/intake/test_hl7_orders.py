"""HL7 newborn-screening orders read into card orders: the fixtures of
``data_samples/hl7/`` (OML^O21, ORM^O01, twins, a transfusion date and TPN, wrong units, a
non-screening order, several messages, MLLP framing, LF separators), the mapping of each
field, and the rule that no implausible or wrongly typed value is ever stored (a
property over generated values and units)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbs.intake.hl7_codes import NotADateTime, hl7_datetime, load_codes
from nbs.intake.hl7_orders import Outcome, read_order
from nbs.intake.hl7_read import parse, split_messages
from nbs.intake.orders import read_messages

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples" / "hl7"


def outcomes(name: str) -> list[Outcome]:
    return read_messages((SAMPLES / name).read_bytes())


def order_message(
    obx: list[str],
    *,
    birth: str = "202601030815+0100",
    collected: str = "202601051000+0100",
    sex: str = "F",
    msg_type: str = "OML^O21^OML_O21",
    panel: str = "54089-8^Newborn screening panel AHIC^LN",
    spm: str = "SPM|1|SPM-CARD||440500007^Blood spot specimen^SCT",
    sent: str = "202601051015+0100",
) -> str:
    """A small order message (CR separators) with the given card data OBXs."""
    segments = [
        f"MSH|^~\\&|EPIC|MATERNITE_CHL|NBS_LAB|LNS|{sent}||{msg_type}|CTRL-1|P|2.5.1",
        f"PID|1||BABY-1^^^CHL^MR||SYNTH^BABY||{birth}|{sex}",
        "ORC|NW|PLACER-1",
        f"OBR|1|PLACER-1||{panel}|||{collected}",
        *([spm] if spm else []),
        *obx,
    ]
    return "\r".join(segments) + "\r"


def one(text: str) -> Outcome:
    found = read_messages(text.encode())
    assert len(found) == 1
    return found[0]


def weight(value: str, unit: str = "g") -> str:
    return f"OBX|1|NM|8339-4^Birth weight^LN||{value}|{unit}^{unit}^UCUM|||||O"


def age(value: str, unit: str = "wk") -> str:
    return f"OBX|2|NM|57714-8^Gestational age^LN||{value}|{unit}^{unit}^UCUM|||||O"


def test_an_oml_order_becomes_a_card_order_with_every_field_mapped() -> None:
    (o,) = outcomes("oml_o21_order.hl7")
    assert o.status == "accepted" and o.ack_code == "AA"
    assert o.order is not None
    expected = {
        "specimen_id": "HL7C0001",  # the bar code observation 57723-9
        "baby_id": "NB-HL7-001^^^CHL",  # PID-3 with its assigning authority
        "birth_at": dt.datetime(2026, 1, 3, 8, 15),  # +0100 is Luxembourg's winter time
        "collected_at": dt.datetime(2026, 1, 5, 10, 0),
        "sex": "F",
        "birth_weight_g": 3250,
        "gestational_age_weeks": 39,
        "parenteral_nutrition": False,  # breast milk only
        "transfusion": False,  # infant factors: none
        "submitter": "CHL NEONATOLOGIE",  # ORC-21, the ordering ward
        "provider_name": "DR SYNTH PAEDIATRE",
        "provider_phone": "+352 555 0101",
        "message_control_id": "OML-0001",
        "ordered_at": dt.datetime(2026, 1, 5, 10, 15),
    }
    assert {k: o.order[k] for k in expected} == expected


def test_an_orm_order_converts_kilograms_and_days() -> None:
    (o,) = outcomes("orm_o01_order.hl7")
    assert o.status == "accepted" and o.order is not None
    assert o.order["birth_weight_g"] == 3400  # 3.4 kg
    assert o.order["gestational_age_weeks"] == 39  # 275 d = 39 completed weeks
    assert o.order["submitter"] == "CLINIQUE_BOHLER"  # no ORC-21/17: MSH-4
    # not sent: unknown, not false
    assert o.order["transfusion"] is None and o.order["parenteral_nutrition"] is None


def test_twins_are_two_babies_with_two_cards() -> None:
    found = outcomes("twins.hl7")
    assert [o.status for o in found] == ["accepted", "accepted"]
    orders = [o.order for o in found if o.order]
    assert {o["specimen_id"] for o in orders} == {"HL7C0011", "HL7C0012"}
    assert len({o["baby_id"] for o in orders}) == 2
    assert [(o["plurality"], o["birth_order"]) for o in orders] == [(2, 1), (2, 2)]


def test_a_transfusion_date_and_tpn_set_the_cards_flags() -> None:
    (o,) = outcomes("transfusion_tpn.hl7")
    assert o.order is not None
    assert o.order["parenteral_nutrition"] is True  # LA12418-2 among the feeding types
    assert o.order["transfusion"] is True  # LA12417-4 among the infant factors
    assert o.order["nicu"] is True
    # a date without a time is the end of that day: never earlier than it may have been
    assert o.order["last_transfusion_at"] == dt.datetime(2026, 1, 2, 23, 59)


def test_wrong_units_and_words_quarantine_the_message_naming_field_and_value() -> None:
    found = outcomes("wrong_units.hl7")
    assert [o.status for o in found] == ["quarantined"] * 3
    assert all(o.order is None and o.ack_code == "AE" for o in found)
    reasons = [o.problems[0].reason for o in found]
    assert reasons[0].startswith("OBX-5 of 8339-4 (birth weight): '2100' kg is not plausible")
    assert "2,100,000" in reasons[0]
    assert reasons[1].startswith("OBX-5 of 57714-8 (gestational age): '9' mo")
    assert reasons[2].startswith("PID-7: 'third of January' is not an HL7 date-time")
    assert [o.problems[0].value for o in found] == ["2100", "9", "third of January"]


def test_a_message_that_is_not_a_screening_order_is_refused_with_the_reason() -> None:
    adt, lipids = outcomes("not_screening.hl7")
    assert (adt.status, lipids.status) == ("refused", "refused")
    assert adt.ack_code == "AR"
    assert adt.problems[0].reason.startswith("MSH-9: 'ADT^A01^ADT_A01' is not a newborn")
    assert lipids.problems[0].reason.startswith("OBR-4: '57698-3' is not a newborn-screening")


def test_several_messages_in_one_file_are_each_read() -> None:
    found = outcomes("several.hl7")
    assert [o.index for o in found] == [1, 2, 3, 4, 5]
    assert [o.order["sex"] for o in found if o.order] == ["F", "U", "M", "F", "U"]


@pytest.mark.parametrize("name", ["mllp_framed.hl7", "lf_separated.hl7"])
def test_mllp_framing_and_lf_separators_are_read_like_cr(name: str) -> None:
    found = outcomes(name)
    assert found and all(o.status == "accepted" for o in found)
    assert all(o.order and o.order["birth_weight_g"] >= 3300 for o in found)


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"])
def test_every_separator_gives_the_same_order(separator: str) -> None:
    text = order_message([weight("3100")]).replace("\r", separator)
    framed = b"\x0b" + text.encode() + b"\x1c\r"
    for data in (text.encode(), framed):
        (raw,) = split_messages(data)
        assert len(raw.er7.split("\r")) == 6
        o = one(data.decode())
        assert o.status == "accepted" and o.order and o.order["birth_weight_g"] == 3100


def test_the_card_id_falls_back_to_the_specimen_then_the_placer_order() -> None:
    with_spm = one(order_message([]))
    assert with_spm.order and with_spm.order["specimen_id"] == "SPM-CARD"
    without = one(order_message([], spm=""))
    assert without.order and without.order["specimen_id"] == "PLACER-1"


def test_pounds_convert_and_a_card_data_panel_alone_is_an_order() -> None:
    o = one(order_message([weight("7.5", "[lb_av]")], panel="57717-1^Card data^LN"))
    assert o.order and o.order["birth_weight_g"] == 3401  # 7.5 x 453.59237 g


@pytest.mark.parametrize(
    ("change", "place"),
    [
        ({"birth": "20260103"}, "PID-7"),  # a birth date without the time of day
        ({"sex": "X"}, "PID-8"),
        ({"collected": "202601011000+0100"}, "OBR-7"),  # before the birth
        ({"collected": "202602011000+0100"}, "OBR-7"),  # after the message was sent
    ],
)
def test_missing_or_impossible_times_and_codes_quarantine(
    change: dict[str, str], place: str
) -> None:
    o = one(order_message([weight("3100")], **change))
    assert o.status == "quarantined"
    assert o.problems[0].place == place


def test_a_weight_that_is_text_is_not_a_number() -> None:
    o = one(order_message([weight("three kilos", "kg")]))
    assert o.status == "quarantined"
    assert o.problems[0].reason == "OBX-5 of 8339-4 (birth weight): 'three kilos' is not a number"


def test_times_with_an_offset_are_converted_to_laboratory_time() -> None:
    assert hl7_datetime("202601050915+0000") == dt.datetime(2026, 1, 5, 10, 15)
    assert hl7_datetime("202607050915+0000") == dt.datetime(2026, 7, 5, 11, 15)  # summer
    assert hl7_datetime("20260105101530") == dt.datetime(2026, 1, 5, 10, 15, 30)
    with pytest.raises(NotADateTime):
        hl7_datetime("2026-01-05T10:15")
    with pytest.raises(NotADateTime):
        hl7_datetime("202613051015")


def test_the_codes_are_read_from_the_configuration_file(tmp_path: Path) -> None:
    codes = load_codes()
    assert "54089-8" in codes.nbs_panels and codes.units["birth_weight_g"]["kg"] == 1000
    assert codes.label("8339-4") == "8339-4 (birth weight)"
    # a laboratory that also takes a local panel code adds it to the file, not the code
    local = tmp_path / "hl7.yaml"
    original = (SAMPLES.parents[1] / "analytes" / "hl7.yaml").read_text()
    local.write_text(original.replace('  "57717-1":', '  "LOCAL-NBS": Local panel\n  "57717-1":'))
    (raw,) = split_messages(order_message([], panel="LOCAL-NBS^Local^L").encode())
    assert read_order(parse(raw)).status == "refused"
    assert read_order(parse(raw), load_codes(local)).status == "accepted"


UNITS = st.sampled_from(["g", "kg", "[lb_av]", "mg", "", "lb"])
AGE_UNITS = st.sampled_from(["wk", "d", "mo", "a", ""])
NUMBERS = st.one_of(
    st.floats(min_value=-1e7, max_value=1e7, allow_nan=False),
    st.sampled_from(["2100", "2.1", "0", "NaN", "inf", "1e9", "abc", "3 400"]),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(w=NUMBERS, wu=UNITS, a=NUMBERS, au=AGE_UNITS)
def test_no_implausible_value_is_ever_stored(w: object, wu: str, a: object, au: str) -> None:
    codes = load_codes()
    o = one(order_message([weight(str(w), wu), age(str(a), au)]))
    if o.status != "accepted":
        assert o.status == "quarantined" and o.order is None and o.problems
        return
    assert o.order is not None
    grams, weeks = o.order["birth_weight_g"], o.order["gestational_age_weeks"]
    low, high = codes.limits("birth_weight_g")
    assert low <= grams <= high
    assert abs(grams - float(str(w)) * codes.units["birth_weight_g"][wu]) < 1
    low, high = codes.limits("gestational_age_weeks")
    assert low <= weeks <= high
    assert weeks == int(float(str(a)) * codes.units["gestational_age_weeks"][au] + 1e-9)
