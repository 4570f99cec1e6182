"""DFT financial transactions (FT1) as FHIR R4 ChargeItem.

One ChargeItem per FT1, its id from the transaction id (FT1-2), so a charge posted
again updates the same resource.  The extended amount (FT1-11) is the price charged
(``priceOverride``), the diagnoses (FT1-19) its reasons, the department (FT1-13) its
cost centre.  Only charges become ChargeItems: a credit, payment or adjustment (FT1-6
CD, PY, AJ) is not one.
"""

from __future__ import annotations

from pacsync.connectors.fhir.datatypes import (
    JSON,
    FhirOptions,
    clinician_reference,
    codeable,
    date_time,
    number,
    prune,
    resource_id,
)
from pacsync.domain.clinical import Charge


def charge_item_id(charge: Charge, control_id: str) -> str:
    if charge.transaction_id:
        return resource_id("ChargeItem", charge.transaction_id)
    return resource_id("ChargeItem", control_id, str(charge.set_id or 0))


def charge_item_resource(
    charge: Charge,
    subject: JSON,
    encounter: JSON | None,
    *,
    control_id: str,
    options: FhirOptions | None = None,
) -> JSON:
    """The ChargeItem of one FT1 of a DFT message about the patient ``subject``."""
    options = options or FhirOptions()
    code = (
        codeable(charge.code)
        or codeable(charge.procedure)
        or {"text": charge.description or charge.transaction_type or "charge"}
    )
    start, end = charge.transaction_date, charge.transaction_end
    period = start is not None and end is not None and end.value != start.value
    return prune({
        "resourceType": "ChargeItem",
        "id": charge_item_id(charge, control_id),
        "identifier": [{"value": charge.transaction_id}] if charge.transaction_id else [],
        "status": "billable",
        "code": code,
        "subject": subject,
        "context": encounter,
        "occurrenceDateTime": date_time(start, options) if start and not period else None,
        "occurrencePeriod": {
            "start": date_time(start, options), "end": date_time(end, options),
        } if start and end and period else None,
        "performer": [{"actor": clinician_reference(c)} for c in charge.performed_by],
        "costCenter": {"display": charge.department.display or charge.department.code}
        if charge.department else None,
        "quantity": {"value": number(charge.quantity)} if charge.quantity is not None else None,
        "priceOverride": {
            "value": number(charge.amount), "currency": charge.currency or None,
        } if charge.amount is not None else None,
        "enteredDate": date_time(charge.posted_at, options) if charge.posted_at else None,
        "reason": [codeable(d) for d in charge.diagnoses],
        "note": [{"text": charge.description}] if charge.description else [],
    })  # fmt: skip


def is_charge(charge: Charge) -> bool:
    """A charge (HL7 table 0017 CG, or no type); credits, payments and adjustments are
    not charge items."""
    return charge.transaction_type.upper() in ("", "CG")


__all__ = ["charge_item_id", "charge_item_resource", "is_charge"]
