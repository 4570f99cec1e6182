"""Canonical clinical records: what one HL7 v2 message says, independent of its encoding.

A :class:`ParsedMessage` carries the trigger (``ADT^A01``), the control id and the
records the message holds: the :class:`Patient` (PID), the :class:`Visit` (PV1), an
:class:`Appointment` (SIU), :class:`Charge` lines (DFT FT1), :class:`Report` groups with
their :class:`Observation` results (ORU OBR/OBX) and :class:`Merge` instructions (ADT
A40 PID/MRG).  Values are already unescaped; codes keep the values of the HL7 tables
(sex ``F``, patient class ``I``, result status ``F``) so a consumer maps them once.

A :class:`Timestamp` keeps the precision and the UTC offset the sender gave (an HL7
``DTM`` may stop at the year or carry ``+0100``): a birth date ``1962`` is not
1962-01-01.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import IntEnum


class Precision(IntEnum):
    """How much of a timestamp the sender gave, coarsest first."""

    YEAR = 1
    MONTH = 2
    DAY = 3
    HOUR = 4
    MINUTE = 5
    SECOND = 6


@dataclass(frozen=True, slots=True)
class Timestamp:
    """A point in time as precise as the sender said.

    ``value`` fills the missing parts with their minimum (month 1, day 1, 00:00); it is
    aware when the sender gave an offset (or the message header did), naive otherwise.
    """

    value: dt.datetime
    precision: Precision

    @property
    def has_time(self) -> bool:
        return self.precision >= Precision.HOUR

    @property
    def date(self) -> dt.date:
        return self.value.date()


@dataclass(frozen=True, slots=True)
class Coded:
    """A coded element (CE / CWE / CNE): code, display text and coding system."""

    code: str
    display: str = ""
    system: str = ""  # the sender's name for it: LN, SCT, I10, UCUM, L, 99xxx …
    alternate_code: str = ""
    alternate_display: str = ""
    alternate_system: str = ""


@dataclass(frozen=True, slots=True)
class Identifier:
    """An identifier with its assigning authority (CX, EI)."""

    value: str
    authority: str = ""  # namespace id (CX-4.1 / EI-2)
    authority_id: str = ""  # universal id, e.g. an OID (CX-4.2 / EI-3)
    authority_id_type: str = ""  # ISO, DNS, URI … (CX-4.3 / EI-4)
    type_code: str = ""  # HL7 table 0203: MR, PI, SS, AN, VN …


@dataclass(frozen=True, slots=True)
class PersonName:
    """A person's name (XPN, or the name part of an XCN)."""

    family: str = ""
    given: tuple[str, ...] = ()  # first name, then middle names
    prefix: str = ""
    suffix: str = ""
    degree: str = ""
    use: str = ""  # HL7 table 0200: L legal, A alias, M maiden, D display …


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address (XAD)."""

    lines: tuple[str, ...] = ()
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""
    use: str = ""  # HL7 table 0190: H home, B business, M mailing …


@dataclass(frozen=True, slots=True)
class Telecom:
    """A phone number or e-mail address (XTN)."""

    value: str
    use: str = ""  # HL7 table 0201: PRN primary residence, WPN work …
    equipment: str = ""  # HL7 table 0202: PH, CP mobile, FX, Internet …


@dataclass(frozen=True, slots=True)
class Clinician:
    """A clinician named in a message (XCN): id, name and who assigned the id."""

    id: str = ""
    name: PersonName = field(default_factory=PersonName)
    authority: str = ""


@dataclass(frozen=True, slots=True)
class Location:
    """A patient location (PL): point of care, room, bed, facility."""

    point_of_care: str = ""
    room: str = ""
    bed: str = ""
    facility: str = ""
    building: str = ""
    floor: str = ""

    @property
    def label(self) -> str:
        """The location as people write it: ``4W-401-A (General)``."""
        parts = "-".join(p for p in (self.point_of_care, self.room, self.bed) if p)
        return f"{parts} ({self.facility})" if parts and self.facility else parts or self.facility


@dataclass(frozen=True, slots=True)
class Patient:
    """A patient as PID describes them."""

    identifiers: tuple[Identifier, ...]
    names: tuple[PersonName, ...] = ()
    birth: Timestamp | None = None
    sex: str = ""  # HL7 table 0001: F, M, O, U, A, N
    addresses: tuple[Address, ...] = ()
    telecoms: tuple[Telecom, ...] = ()
    marital_status: Coded | None = None
    language: Coded | None = None
    account_number: Identifier | None = None
    deceased: bool | None = None
    deceased_at: Timestamp | None = None
    mothers_maiden_name: PersonName | None = None

    @property
    def primary_identifier(self) -> Identifier | None:
        """The medical record number if one is typed MR, else the first identifier."""
        for identifier in self.identifiers:
            if identifier.type_code == "MR":
                return identifier
        return self.identifiers[0] if self.identifiers else None


@dataclass(frozen=True, slots=True)
class Visit:
    """A visit (encounter) as PV1 describes it.

    ``status`` is derived: ``finished`` once a discharge time is known or the trigger
    is a discharge (A03), ``planned`` for a pre-admission, else ``in-progress``.
    """

    patient_class: str  # HL7 table 0004: E, I, O, P, R, B, C, N, U
    visit_number: Identifier | None = None
    location: Location | None = None
    prior_location: Location | None = None
    admission_type: str = ""  # HL7 table 0007
    hospital_service: str = ""  # HL7 table 0069
    attending: tuple[Clinician, ...] = ()
    referring: tuple[Clinician, ...] = ()
    admitting: tuple[Clinician, ...] = ()
    admitted_at: Timestamp | None = None
    discharged_at: Timestamp | None = None
    discharge_disposition: str = ""  # HL7 table 0112
    status: str = "in-progress"


@dataclass(frozen=True, slots=True)
class AppointmentResource:
    """One resource an appointment books: a service (AIS), a general resource (AIG),
    a location (AIL) or a person (AIP)."""

    kind: str  # "service", "resource", "location", "personnel"
    code: Coded | None = None
    location: Location | None = None
    clinician: Clinician | None = None
    start: Timestamp | None = None
    duration: dt.timedelta | None = None


@dataclass(frozen=True, slots=True)
class Appointment:
    """An appointment as SCH and its resource groups describe it."""

    placer_id: Identifier | None = None
    filler_id: Identifier | None = None
    start: Timestamp | None = None
    end: Timestamp | None = None
    duration: dt.timedelta | None = None
    reason: Coded | None = None
    appointment_type: Coded | None = None
    filler_status: str = ""  # HL7 table 0278: Booked, Cancelled, Noshow …
    event_reason: Coded | None = None
    resources: tuple[AppointmentResource, ...] = ()
    status: str = "booked"  # derived from the trigger and SCH-25


@dataclass(frozen=True, slots=True)
class Charge:
    """One financial transaction (FT1)."""

    transaction_id: str
    set_id: int | None = None
    batch_id: str = ""
    transaction_date: Timestamp | None = None
    transaction_end: Timestamp | None = None
    posted_at: Timestamp | None = None
    transaction_type: str = ""  # HL7 table 0017: CG charge, CD credit, PY payment, AJ
    code: Coded | None = None
    description: str = ""
    quantity: Decimal | None = None
    amount: Decimal | None = None  # extended amount (FT1-11)
    unit_amount: Decimal | None = None  # FT1-12
    currency: str = ""
    department: Coded | None = None
    diagnoses: tuple[Coded, ...] = ()
    performed_by: tuple[Clinician, ...] = ()
    ordered_by: tuple[Clinician, ...] = ()
    procedure: Coded | None = None
    modifiers: tuple[Coded, ...] = ()


@dataclass(frozen=True, slots=True)
class StructuredNumeric:
    """An SN value: ``>100``, ``1:128`` (ratio), ``10-20`` (range), ``+3`` (number)."""

    comparator: str = ""  # >, <, >=, <=, =, <>
    number: Decimal | None = None
    separator: str = ""  # -, +, /, ., :
    second_number: Decimal | None = None


#: what an OBX-5 repetition holds once read according to OBX-2
ObservationValue = Decimal | str | Coded | Timestamp | StructuredNumeric | dt.time


@dataclass(frozen=True, slots=True)
class Observation:
    """One result (OBX).  ``values`` holds the OBX-5 repetitions read as ``value_type``
    says: NM → Decimal, ST/TX/FT → str, CE/CWE/CNE → Coded, DT/TS/DTM → Timestamp,
    TM → time, SN → StructuredNumeric; any other type keeps the text."""

    set_id: int | None
    value_type: str
    code: Coded
    sub_id: str = ""
    values: tuple[ObservationValue, ...] = ()
    units: Coded | None = None
    reference_range: str = ""
    abnormal_flags: tuple[str, ...] = ()  # HL7 table 0078: H, L, HH, LL, N, A …
    status: str = ""  # HL7 table 0085: F, P, C, X, D, W …
    effective: Timestamp | None = None
    producer: Coded | None = None
    responsible: tuple[Clinician, ...] = ()
    method: Coded | None = None
    notes: tuple[str, ...] = ()

    @property
    def value(self) -> ObservationValue | None:
        """The first value (most observations have one)."""
        return self.values[0] if self.values else None


@dataclass(frozen=True, slots=True)
class Report:
    """One order's results: the OBR and the OBX results under it."""

    service: Coded
    set_id: int | None = None
    placer_order: Identifier | None = None
    filler_order: Identifier | None = None
    observed_at: Timestamp | None = None
    observed_end: Timestamp | None = None
    reported_at: Timestamp | None = None
    ordering_provider: tuple[Clinician, ...] = ()
    diagnostic_service: str = ""  # HL7 table 0074: LAB, RAD, CH, HM …
    status: str = ""  # HL7 table 0123: F, P, C, R, I, O, S, X, A
    observations: tuple[Observation, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Merge:
    """A40: the patient ``retired`` (MRG-1) is merged into ``surviving`` (PID-3)."""

    surviving: tuple[Identifier, ...]
    retired: tuple[Identifier, ...]
    retired_account: Identifier | None = None
    retired_name: PersonName | None = None


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """Everything one HL7 v2 message says, in canonical records."""

    trigger: str  # message type and trigger event, "ADT^A01"
    control_id: str  # MSH-10
    version: str = ""  # MSH-12
    sent_at: Timestamp | None = None  # MSH-7
    sending_application: str = ""
    sending_facility: str = ""
    patient: Patient | None = None
    visit: Visit | None = None
    appointment: Appointment | None = None
    charges: tuple[Charge, ...] = ()
    reports: tuple[Report, ...] = ()
    merges: tuple[Merge, ...] = ()

    @property
    def message_type(self) -> str:
        return self.trigger.partition("^")[0]

    @property
    def event(self) -> str:
        return self.trigger.partition("^")[2]
