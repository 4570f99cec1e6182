"""De-identified display: identity segments masked, identifiers shortened."""

from __future__ import annotations

from pacsync.domain.phi import mask_error, mask_identifier, mask_message

MESSAGE = (
    "MSH|^~\\&|PMS|CLINIC|||20261123||ADT^A01|C1|P|2.5.1\r"
    "PID|1||P100^^^HOSP^MR||Doe^John||19700101|M\r"
    "NK1|1|Doe^Jane|SPO\r"
    "OBX|1|NM|8302-2^Body height^LN||180|cm"
)


def test_identity_segments_keep_their_shape_and_set_id_only() -> None:
    masked = mask_message(MESSAGE).split("\r")
    assert masked[0] == MESSAGE.split("\r", maxsplit=1)[0]
    assert masked[1] == "PID|1||***||***||***|***"
    assert masked[2] == "NK1|1|***|***"
    assert masked[3] == "OBX|1|NM|8302-2^Body height^LN||180|cm"


def test_lf_separated_messages_are_masked_too() -> None:
    assert "Doe" not in mask_message(MESSAGE.replace("\r", "\n"))


def test_identifiers_keep_their_last_characters_when_long_enough() -> None:
    assert mask_identifier("P12345678") == "*******78"
    assert mask_identifier("P1") == "**"
    assert mask_identifier("") == ""
    assert mask_identifier(None) is None


def test_values_an_error_quotes_from_a_message_are_masked() -> None:
    error = {
        "code": "PACS-601",
        "message": "PID-7.1: '1970-13-45' does not follow YYYY[MM[DD]]",
        "hint": "Send dates as YYYYMMDD",
        "location": "PID-7.1",
    }
    masked = mask_error(error)
    assert masked == {**error, "message": "PID-7.1: '***' does not follow YYYY[MM[DD]]"}
    assert error["message"].startswith("PID-7.1: '1970")  # the stored error is left alone


def test_every_kind_of_quoted_value_is_masked() -> None:
    for value in ("O'Brien", 'say "hi"', "back\\slash", 'it\'s "both"'):
        masked = mask_error({"message": f"PID-5: {value!r} is not a name"})
        assert masked == {"message": "PID-5: '***' is not a name"}, value
    assert mask_error(None) is None


def test_a_visits_number_and_its_admission_and_discharge_times_are_masked() -> None:
    pv1 = ["PV1", "1", "I", "WARD1^101^A", *[""] * 15, "V123"] + [""] * 24 + ["20261123101500"]
    pv1 += ["20261125090000"]
    masked = mask_message(MESSAGE + "\r" + "|".join(pv1)).split("\r")[-1].split("|")
    assert (masked[2], masked[3]) == ("I", "WARD1^101^A")  # where the patient lies stays
    assert (masked[19], masked[44], masked[45]) == ("***", "***", "***")
    only_9 = "PV2" + "|" * 9  # PV2-8 empty, PV2-9 the expected discharge
    assert mask_message(only_9 + "20261126") == only_9 + "***"
    assert mask_message("PV2||||||||20261126|20261130") == "PV2||||||||***|***"
