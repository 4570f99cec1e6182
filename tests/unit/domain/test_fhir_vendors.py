"""Vendor profiles of the seven EHRs and the FHIR connection options."""

from __future__ import annotations

import pytest

from pacsync.domain.fhir_endpoint import FhirEndpoint
from pacsync.domain.fhir_vendors import (
    CLINICAL_TYPES,
    PROFILES,
    READ,
    SEARCH,
    UPDATE,
    AuthStyle,
    profile,
)
from pacsync.errors import ConfigError, UnsupportedFeature

VENDORS = ("epic", "oracle-health", "meditech", "veradigm", "nextgen", "athenahealth",
           "eclinicalworks")  # fmt: skip


def test_the_seven_vendors_and_a_generic_profile_are_there() -> None:
    assert set(PROFILES) == {*VENDORS, "generic"}


@pytest.mark.parametrize("key", VENDORS)
def test_every_vendor_profile_says_it_is_unverified_and_what_it_offers(key: str) -> None:
    p = PROFILES[key]
    assert p.verified is False
    assert all(limit.verified is False for limit in p.limits)
    assert p.auth is AuthStyle.SMART_BACKEND
    assert "RS384" in p.signing_algorithms
    assert p.base_url_pattern.startswith("https://")
    assert p.token_url_pattern.startswith("https://")
    for rtype in CLINICAL_TYPES:
        assert p.supports(rtype, READ), rtype
        assert p.supports(rtype, SEARCH), rtype
    assert "Patient" in p.search_params


def test_the_generic_profile_is_verified_against_the_test_server() -> None:
    generic = PROFILES["generic"]
    assert generic.verified
    assert "sekmet-fhir 0.1.1" in generic.source
    assert generic.supports("Patient", UPDATE)
    assert generic.supports_if_match


def test_epic_exports_only_groups() -> None:
    epic = profile("epic")
    assert epic.export_path("e3Hx") == "Group/e3Hx/$export"
    with pytest.raises(UnsupportedFeature, match="only at group level") as caught:
        epic.export_path(None)
    assert "--group" in caught.value.hint


def test_the_generic_server_exports_at_system_or_patient_level() -> None:
    generic = profile(None)
    assert generic.export_path(None) == "$export"
    assert generic.export_path(None, patients_only=True) == "Patient/$export"
    assert generic.export_path("g1") == "Group/g1/$export"


def test_aliases_and_unknown_vendors() -> None:
    assert profile("Cerner").key == "oracle-health"
    assert profile("allscripts").key == "veradigm"
    with pytest.raises(ConfigError, match="unknown FHIR vendor"):
        profile("acme")


def test_require_refuses_what_a_vendor_does_not_offer() -> None:
    profile("meditech").require("Patient", READ)
    with pytest.raises(UnsupportedFeature, match=r"MEDITECH.*update on Patient.*unverified"):
        profile("meditech").require("Patient", UPDATE)


def test_a_connection_reads_its_options() -> None:
    endpoint = FhirEndpoint.of(
        "epic-prod",
        "https://ehr.example.org/api/FHIR/R4/",
        {"vendor": "Epic", "client_id": "abc", "oauth_url": "https://ehr.example.org/oauth2/token",
         "key_path": "/keys/epic.pem", "group": "g1", "retry": {"attempts": 5}},
    )  # fmt: skip
    assert endpoint.base_url == "https://ehr.example.org/api/FHIR/R4"
    assert endpoint.profile.key == "epic"
    assert endpoint.authenticated
    assert endpoint.retry.attempts == 5


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("ftp://ehr/fhir", {}, "base_url"),
        ("https://ehr/fhir", {"vendor": "acme"}, "unknown FHIR vendor"),
        ("https://ehr/fhir", {"colour": "blue"}, "colour"),
        ("https://ehr/fhir", {"client_id": "abc"}, "token URL"),
        ("https://ehr/fhir", {"page_size": 0}, "page_size"),
    ],
)
def test_a_bad_connection_is_a_config_error_naming_the_option(
    url: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        FhirEndpoint.of("ehr", url, options)
