"""Structural validation of FHIR resources with the fhir.resources models.

fhir.resources 8.3 ships R4B (4.3) models, not R4 (4.0.1) ones; for the resources the
EHR sync moves (Patient, Encounter, Observation, Condition, AllergyIntolerance,
MedicationRequest, Appointment, DocumentReference) R4B adds elements and value-set
codes but keeps R4's, so an R4 resource that fails R4B validation fails R4 too.  The
reverse does not always hold: an element new in R4B would pass here though an R4
server may refuse it (the server's own answer, PACS-707, says so then).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import ValidationError

from pacsync.errors import DataValidationError, FhirProtocolError, PacsyncError

JSON = dict[str, Any]
FHIR_MODELS = "R4B"


@cache
def _model(resource_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        return None


def problems(resource: Any) -> list[str]:
    """What is wrong with ``resource`` (empty when it validates), each as ``path: message``."""
    if not isinstance(resource, dict):
        return [f"not a JSON object but {type(resource).__name__}"]
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return ["resourceType: missing"]
    model = _model(rtype)
    if model is None:
        return [f"resourceType: {rtype!r} is not a FHIR resource type"]
    try:
        model.model_validate(resource)
    except ValidationError as error:
        return [
            ".".join(str(p) for p in item["loc"]) + f": {item['msg']}"
            for item in error.errors()[:10]
        ]
    return []


def check(resource: Any, *, ours: bool, what: str = "resource") -> JSON:
    """``resource`` when it validates.  Otherwise DataValidationError for a resource we
    are about to send (``ours``), FhirProtocolError for one a server gave us."""
    found = problems(resource)
    if not found:
        assert isinstance(resource, dict)
        return resource
    detail = "; ".join(found[:3])
    error: PacsyncError
    if ours:
        error = DataValidationError(f"{what} is not a valid FHIR resource: {detail}")
    else:
        error = FhirProtocolError(f"the server sent an invalid {what}: {detail}")
    raise error
