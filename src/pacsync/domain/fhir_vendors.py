"""What each EHR's FHIR R4 API offers a backend integration: how it authenticates, where
its base and token URLs live, which interactions and search parameters it supports, and
its known limits.

The facts come from the vendors' public developer documentation; none has been tried
against a live vendor system from here, so every vendor profile says ``verified=False``
(and so does each of its limits).  The ``generic`` profile describes a standard SMART
Backend Services server and is verified against the FHIR test server the integration
tests run (sekmet-fhir 0.1.1).

A profile is advice used before a request is sent (e.g. Epic exports only at Group
level, so an export without a group is refused with a hint instead of a 4xx from Epic);
what the server's CapabilityStatement says at run time wins where the two differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from pacsync.errors import ConfigError, UnsupportedFeature


class AuthStyle(StrEnum):
    SMART_BACKEND = "smart-backend-services"  # JWT client assertion (private_key_jwt)
    CLIENT_SECRET = "client-secret"  # OAuth2 client_credentials with a shared secret


class BulkLevel(StrEnum):
    SYSTEM = "system"  # [base]/$export
    PATIENT = "patient"  # [base]/Patient/$export
    GROUP = "group"  # [base]/Group/{id}/$export


READ = "read"
SEARCH = "search-type"
CREATE = "create"
UPDATE = "update"
PATCH = "patch"
DELETE = "delete"

#: The resources the EHR sync reads and writes.
CLINICAL_TYPES = (
    "Patient",
    "Encounter",
    "Observation",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "Appointment",
    "DocumentReference",
)


@dataclass(frozen=True)
class Limit:
    """A known restriction of a vendor's API, and whether it was seen to hold."""

    text: str
    verified: bool = False


def _all(*interactions: str) -> Mapping[str, frozenset[str]]:
    return MappingProxyType({t: frozenset(interactions) for t in CLINICAL_TYPES})


def _ro(**by_type: tuple[str, ...]) -> Mapping[str, frozenset[str]]:
    return MappingProxyType({t: frozenset(i) for t, i in by_type.items()})


_PATIENT_SEARCH = ("_id", "identifier", "family", "given", "birthdate", "gender")
_CLINICAL_SEARCH = ("patient", "_id", "category", "date", "code")


@dataclass(frozen=True)
class VendorProfile:
    key: str
    name: str
    auth: AuthStyle
    signing_algorithms: tuple[str, ...]
    base_url_pattern: str
    token_url_pattern: str
    bulk_levels: tuple[BulkLevel, ...]
    interactions: Mapping[str, frozenset[str]]
    search_params: Mapping[str, tuple[str, ...]]
    supports_last_updated: bool
    supports_if_match: bool
    max_page_size: int | None
    limits: tuple[Limit, ...] = ()
    verified: bool = False
    source: str = "vendor's public developer documentation"
    extra_search: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def supports(self, resource_type: str, interaction: str) -> bool:
        return interaction in self.interactions.get(resource_type, frozenset())

    def require(self, resource_type: str, interaction: str) -> None:
        """UnsupportedFeature when the profile says the vendor does not offer it."""
        if not self.supports(resource_type, interaction):
            note = "" if self.verified else " (per its unverified profile)"
            raise UnsupportedFeature(
                f"{self.name} does not offer {interaction} on {resource_type}{note}",
                hint="Use another interaction, or the 'generic' profile if the server "
                "does offer it (its CapabilityStatement says: `pacsync fhir check`).",
            )

    def export_path(self, group: str | None, *, patients_only: bool = False) -> str:
        """The $export kick-off path relative to the base URL: Group level when a group is
        given; else Patient or system level, if the vendor offers them."""
        if group:
            if BulkLevel.GROUP not in self.bulk_levels:
                raise UnsupportedFeature(f"{self.name} has no Group-level Bulk export")
            return f"Group/{group}/$export"
        wanted = (BulkLevel.PATIENT,) if patients_only else (BulkLevel.SYSTEM, BulkLevel.PATIENT)
        for level in wanted:
            if level in self.bulk_levels:
                return "$export" if level is BulkLevel.SYSTEM else "Patient/$export"
        if not self.bulk_levels:
            raise UnsupportedFeature(f"{self.name} offers no Bulk Data export")
        raise UnsupportedFeature(
            f"{self.name} exports only at "
            + " or ".join(level.value for level in self.bulk_levels)
            + " level",
            hint="Give the id of a Group the vendor set up for this client (--group ID).",
        )


_READ_SEARCH = _all(READ, SEARCH)

PROFILES: Mapping[str, VendorProfile] = MappingProxyType(
    {
        p.key: p
        for p in (
            VendorProfile(
                key="generic",
                name="Generic SMART Backend Services server",
                auth=AuthStyle.SMART_BACKEND,
                signing_algorithms=("RS384", "ES384"),
                base_url_pattern="https://{host}/fhir",
                token_url_pattern="from {base}/.well-known/smart-configuration token_endpoint",
                bulk_levels=(BulkLevel.SYSTEM, BulkLevel.PATIENT, BulkLevel.GROUP),
                interactions=_all(READ, SEARCH, CREATE, UPDATE, PATCH, DELETE),
                search_params=MappingProxyType(
                    {"Patient": (*_PATIENT_SEARCH, "_lastUpdated"), "*": ("_lastUpdated",)}
                ),
                supports_last_updated=True,
                supports_if_match=True,
                max_page_size=1000,
                verified=True,
                source="FHIR R4, SMART Backend Services and Bulk Data specifications; "
                "verified against sekmet-fhir 0.1.1",
            ),
            VendorProfile(
                key="epic",
                name="Epic",
                auth=AuthStyle.SMART_BACKEND,
                signing_algorithms=("RS384", "ES384"),
                base_url_pattern="https://{host}/{instance}/api/FHIR/R4",
                token_url_pattern="https://{host}/{instance}/oauth2/token",
                bulk_levels=(BulkLevel.GROUP,),
                interactions=_ro(
                    Patient=(READ, SEARCH, CREATE),
                    Encounter=(READ, SEARCH),
                    Observation=(READ, SEARCH, CREATE),
                    Condition=(READ, SEARCH, CREATE),
                    AllergyIntolerance=(READ, SEARCH, CREATE),
                    MedicationRequest=(READ, SEARCH),
                    Appointment=(READ, SEARCH),
                    DocumentReference=(READ, SEARCH, CREATE),
                ),
                search_params=MappingProxyType(
                    {
                        "Patient": (*_PATIENT_SEARCH, "address", "telecom"),
                        "*": _CLINICAL_SEARCH,
                    }
                ),
                supports_last_updated=False,
                supports_if_match=False,
                max_page_size=None,
                limits=(
                    Limit("Bulk Data $export only at Group level (Group/{id}/$export)"),
                    Limit("the client's public key is registered as a JWKS (URL or upload)"),
                    Limit("most resources are read-only; no update of Patient"),
                    Limit("Patient search needs identifier, or name with birthdate/gender"),
                ),
            ),
            VendorProfile(
                key="oracle-health",
                name="Oracle Health (Cerner Millennium)",
                auth=AuthStyle.SMART_BACKEND,
                signing_algorithms=("RS384",),
                base_url_pattern="https://fhir-ehr.cerner.com/r4/{tenant}",
                token_url_pattern="https://authorization.cerner.com/tenants/{tenant}/"
                "protocols/oauth2/profiles/smart-v1/token",
                bulk_levels=(BulkLevel.GROUP,),
                interactions=_ro(
                    Patient=(READ, SEARCH, CREATE, PATCH),
                    Encounter=(READ, SEARCH, CREATE, PATCH),
                    Observation=(READ, SEARCH, CREATE),
                    Condition=(READ, SEARCH, CREATE, PATCH),
                    AllergyIntolerance=(READ, SEARCH, CREATE, PATCH),
                    MedicationRequest=(READ, SEARCH, CREATE, PATCH),
                    Appointment=(READ, SEARCH, CREATE, PATCH),
                    DocumentReference=(READ, SEARCH, CREATE, UPDATE),
                ),
                search_params=MappingProxyType(
                    {"Patient": (*_PATIENT_SEARCH, "phone", "email"), "*": _CLINICAL_SEARCH}
                ),
                supports_last_updated=False,
                supports_if_match=True,
                max_page_size=None,
                limits=(
                    Limit("updates are JSON Patch and require If-Match with the current ETag"),
                    Limit("system accounts may use a client secret instead of a JWT assertion"),
                    Limit("Bulk Data $export at Group level"),
                ),
            ),
            VendorProfile(
                key="meditech",
                name="MEDITECH Expanse",
                auth=AuthStyle.SMART_BACKEND,
                signing_algorithms=("RS384",),
                base_url_pattern="https://{host}/v2/uscore/R4",
                token_url_pattern="https://{host}/oauth/token",
                bulk_levels=(BulkLevel.GROUP,),
                interactions=_READ_SEARCH,
                search_params=MappingProxyType({"Patient": _PATIENT_SEARCH, "*": _CLINICAL_SEARCH}),
                supports_last_updated=False,
                supports_if_match=False,
                max_page_size=None,
                limits=(
                    Limit("read and search only (US Core); no writes"),
                    Limit("Bulk Data $export at Group level"),
                ),
            ),
            VendorProfile(
                key="veradigm",
                name="Allscripts / Veradigm",
                auth=AuthStyle.SMART_BACKEND,
                signing_algorithms=("RS384",),
                base_url_pattern="https://{host}/FHIR/R4/{tenant}",
                token_url_pattern="https://{host}/authorization/connect/token",
                bulk_levels=(BulkLevel.GROUP,),
                interactions=_READ_SEARCH,
                search_params=MappingProxyType({"Patient": _PATIENT_SEARCH, "*": _CLINICAL_SEARCH}),
                supports_last_updated=False,
                supports_if_match=False,
                max_page_size=None,
                limits=(
                    Limit("read and search only over FHIR; writes go through Unity APIs"),
                    Limit("URLs differ per product (TouchWorks, Sunrise, Professional EHR)"),
                ),
            ),
            VendorProfile(
                key="nextgen",
                name="NextGen Healthcare",
                auth=AuthStyle.SMART_BACKEND,
                signing_algorithms=("RS384",),
                base_url_pattern="https://fhir.nextgen.com/nge/prod/fhir-api-r4/fhir/r4",
                token_url_pattern="https://fhir.nextgen.com/nge/prod/patient-oauth/token",
                bulk_levels=(BulkLevel.GROUP,),
                interactions=_READ_SEARCH,
                search_params=MappingProxyType({"Patient": _PATIENT_SEARCH, "*": _CLINICAL_SEARCH}),
                supports_last_updated=False,
                supports_if_match=False,
                max_page_size=None,
                limits=(Limit("Bulk Data $export at Group level"),),
            ),
            VendorProfile(
                key="athenahealth",
                name="athenahealth",
                auth=AuthStyle.SMART_BACKEND,
                signing_algorithms=("RS384", "ES384"),
                base_url_pattern="https://api.platform.athenahealth.com/fhir/r4",
                token_url_pattern="https://api.platform.athenahealth.com/oauth2/v1/token",
                bulk_levels=(BulkLevel.GROUP,),
                interactions=_ro(
                    Patient=(READ, SEARCH),
                    Encounter=(READ, SEARCH),
                    Observation=(READ, SEARCH),
                    Condition=(READ, SEARCH),
                    AllergyIntolerance=(READ, SEARCH),
                    MedicationRequest=(READ, SEARCH),
                    Appointment=(READ, SEARCH),
                    DocumentReference=(READ, SEARCH, CREATE),
                ),
                search_params=MappingProxyType({"Patient": _PATIENT_SEARCH, "*": _CLINICAL_SEARCH}),
                supports_last_updated=False,
                supports_if_match=False,
                max_page_size=None,
                limits=(
                    Limit("every search names its practice (the ah-practice parameter)"),
                    Limit("preview and production have different hosts (api.preview.platform…)"),
                ),
                extra_search=MappingProxyType(
                    {"ah-practice": "Organization/a-1.Practice-{practice}"}
                ),
            ),
            VendorProfile(
                key="eclinicalworks",
                name="eClinicalWorks",
                auth=AuthStyle.SMART_BACKEND,
                signing_algorithms=("RS384",),
                base_url_pattern="https://fhir4.eclinicalworks.com/fhir/r4/{practice}",
                token_url_pattern="https://oauthserver.eclinicalworks.com/oauth/oauth2/token",
                bulk_levels=(BulkLevel.GROUP,),
                interactions=_READ_SEARCH,
                search_params=MappingProxyType({"Patient": _PATIENT_SEARCH, "*": _CLINICAL_SEARCH}),
                supports_last_updated=False,
                supports_if_match=False,
                max_page_size=None,
                limits=(
                    Limit("backend (system) access is for Bulk Data at Group level"),
                    Limit("each practice has its own base URL (practice code in the path)"),
                ),
            ),
        )
    }
)

#: Names people use for the vendors, to their profile's key.
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "cerner": "oracle-health",
        "oracle": "oracle-health",
        "allscripts": "veradigm",
        "athena": "athenahealth",
        "ecw": "eclinicalworks",
        "expanse": "meditech",
    }
)


def profile(key: str | None) -> VendorProfile:
    """The profile for a vendor key or alias (``generic`` when none is given)."""
    name = (key or "generic").strip().lower()
    found = PROFILES.get(ALIASES.get(name, name))
    if found is None:
        raise ConfigError(
            f"unknown FHIR vendor {key!r}",
            hint="Use one of: " + ", ".join(sorted(PROFILES)),
        )
    return found
