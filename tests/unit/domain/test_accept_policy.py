"""What a feed accepts: kinds by trigger, by type (``ORU`` or ``ORU^*``), versions and
processing ids, each refusal naming its HL7 table 0357 condition and MSH field."""

from __future__ import annotations

from pacsync.domain.messaging import AcceptPolicy


def test_a_type_alone_or_with_a_wild_card_takes_every_trigger() -> None:
    for kinds in ({"ORU"}, {"ORU^*"}):
        policy = AcceptPolicy(kinds=frozenset(kinds))
        assert policy.refusal("ORU", "R01", "2.5.1", "P") is None
        assert policy.refusal("ORU", "R30", "2.5.1", "P") is None
        refused = policy.refusal("ADT", "A01", "2.5.1", "P")
        assert refused is not None
        assert (refused.condition, refused.field) == (200, 9)


def test_an_unlisted_trigger_version_or_processing_id_is_refused() -> None:
    policy = AcceptPolicy(kinds=frozenset({"ADT^A01"}))
    trigger = policy.refusal("ADT", "A02", "2.5.1", "P")
    assert trigger is not None
    assert trigger.condition == 201
    version = policy.refusal("ADT", "A01", "3.0", "P")
    assert version is not None
    assert (version.condition, version.field) == (203, 12)
    processing = policy.refusal("ADT", "A01", "2.5.1", "X")
    assert processing is not None
    assert (processing.condition, processing.field) == (202, 11)


def test_an_empty_list_of_kinds_takes_any() -> None:
    assert AcceptPolicy(kinds=frozenset()).refusal("ZZZ", "Z99", "2.5", "P") is None
