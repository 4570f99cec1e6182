"""DICOM matching as searches apply it: wild cards, date ranges, UID lists, names folded."""

from __future__ import annotations

import pytest

from pacsync.domain import matching
from pacsync.domain.imaging import Demographics, fold, identity_conflict
from pacsync.errors import InvalidRequest


def test_a_value_without_wild_cards_is_single_value_matching() -> None:
    found = matching.pattern("DOE^JOHN")
    assert (found.exact, found.like) == ("DOE^JOHN", None)


def test_wild_cards_become_like_with_the_prefix_kept_for_the_index() -> None:
    found = matching.pattern("Müller^J*", folded=True)
    assert found.prefix == "muller^j"
    assert found.like == "muller^j%"
    assert matching.pattern("DO?^*").like == "DO_^%"
    assert matching.pattern("100%_*").like == "100\\%\\_%"


def test_prefix_upper_bounds_every_string_with_the_prefix() -> None:
    upper = matching.prefix_upper("doe^j")
    inside = ["doe^j", "doe^jane", "doe^j\uffff"]
    assert all(name < upper for name in inside)
    assert upper <= "doe^k"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20240105", ("20240105", "20240105")),
        ("2024-01-05", ("20240105", "20240105")),
        ("20240101-20241231", ("20240101", "20241231")),
        ("20240101-", ("20240101", None)),
        ("-20241231", (None, "20241231")),
        ("2024-01-01-2024-12-31", ("20240101", "20241231")),
    ],
)
def test_date_ranges(value: str, expected: tuple[str | None, str | None]) -> None:
    assert matching.date_range(value) == expected


@pytest.mark.parametrize("value", ["2024", "20241301x", "-", "20241231-20240101", "yesterday"])
def test_bad_dates_are_refused_with_a_hint(value: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        matching.date_range(value)
    assert refused.value.hint


def test_uid_lists() -> None:
    assert matching.uid_list("1.2.3\\1.2.4, 1.2.5") == ["1.2.3", "1.2.4", "1.2.5"]


def test_names_fold_case_and_accents_but_not_letters() -> None:
    assert fold("MÜLLER^Jürgen") == "muller^jurgen"
    assert fold("Østergård^Łukasz") == "ostergard^lukasz"
    assert fold("STRAẞE") == "strasse"
    assert fold(None) == ""
    assert (
        identity_conflict(Demographics("DOE^JOHN", "1970"), Demographics("Doe^John", "1970"))
        is None
    )
    reason = identity_conflict(Demographics("DOE^JOHN", "1970"), Demographics("DOE^JANE", "1971"))
    assert reason is not None
    assert "name" in reason
    assert "birth date" in reason
