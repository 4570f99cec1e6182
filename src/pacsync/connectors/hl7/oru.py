"""ORU^R01 (unsolicited observation result): the patient, then order groups — OBR with
its notes (NTE) and results (OBX, each with its own NTE) — read in message order (HL7
v2.5.1 chapter 7).  A specimen group's OBX (after SPM) describe the specimen, not a
result, and are skipped."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pacsync.connectors.hl7.datatypes import (
    clinicians,
    coded,
    entity,
    integer,
    read_decimal,
)
from pacsync.connectors.hl7.dtm import TIME_FORMAT, parse_tm
from pacsync.connectors.hl7.patient import read_pid, read_pv1
from pacsync.connectors.hl7.segments import Message, Repetition, Segment
from pacsync.domain.clinical import (
    Observation,
    ObservationValue,
    ParsedMessage,
    Report,
    StructuredNumeric,
)
from pacsync.errors import InvalidHl7Message

ORU_EVENTS = frozenset({"R01"})

TEXT_TYPES = frozenset({"ST", "TX", "FT"})
CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF"})
# OBR-25 values that say no result exists yet (or ever): an OBR without OBX is fine then
_NO_RESULTS = frozenset({"O", "I", "S", "X"})
_COMPARATORS = frozenset({"", ">", "<", ">=", "<=", "=", "<>"})


def _structured_numeric(rep: Repetition) -> StructuredNumeric:
    comparator = rep.text(1)
    if comparator not in _COMPARATORS:
        where = rep.where(1)
        raise InvalidHl7Message(
            f"{where}: {comparator!r} is not an SN comparator",
            location=where,
            hint="SN is comparator (>, <, >=, <=, =, <>) ^ number ^ separator ^ number.",
        )
    return StructuredNumeric(
        comparator=comparator,
        number=read_decimal(rep.text(2), rep.where(2)),
        separator=rep.text(3),
        second_number=read_decimal(rep.text(4), rep.where(4)),
    )


def _value(value_type: str, rep: Repetition) -> ObservationValue | None:
    """One OBX-5 repetition read as OBX-2 says."""
    if value_type == "NM":
        return read_decimal(rep.text(1), rep.where(1))
    if value_type in CODED_TYPES:
        return coded(rep)
    if value_type == "SN":
        return _structured_numeric(rep)
    if value_type in ("DT", "TS", "DTM"):
        return rep.timestamp(1)
    if value_type == "TM":
        text = rep.text(1)
        try:
            return parse_tm(text) if text else None
        except ValueError as exc:
            where = rep.where(1)
            raise InvalidHl7Message(
                f"{where}: {exc}", location=where, hint=f"Send times as {TIME_FORMAT}."
            ) from exc
    return rep.whole()  # ST, TX, FT and the types kept as text (ED, RP, …)


def read_OBX(obx: Segment, notes: tuple[str, ...] = ()) -> Observation:
    code = coded(obx.first(3))
    if code is None:
        where = obx.where(3)
        raise InvalidHl7Message(
            f"{where} (observation identifier) is empty",
            location=where,
            hint="Each result needs the code of what was observed, e.g. a LOINC code.",
        )
    value_type = obx.text(2).upper()
    reps = obx.repetitions(5)
    if reps and not value_type:
        where = obx.where(2)
        raise InvalidHl7Message(
            f"{where} (value type) is empty but OBX-5 has a value",
            location=where,
            hint="OBX-2 says how to read OBX-5: NM, ST, TX, FT, CWE, SN, DT, TS …",
        )
    values = tuple(v for v in (_value(value_type, rep) for rep in reps) if v is not None)
    return Observation(
        set_id=integer(obx, 1),
        value_type=value_type,
        code=code,
        sub_id=obx.text(4),
        values=values,
        units=coded(obx.first(6)),
        reference_range=obx.text(7),
        abnormal_flags=tuple(rep.text(1) for rep in obx.repetitions(8) if rep.text(1)),
        status=obx.text(11).upper(),
        effective=obx.timestamp(14),
        producer=coded(obx.first(15)),
        responsible=clinicians(obx, 16),
        method=coded(obx.first(17)),
        notes=notes,
    )


@dataclass
class _Group:
    """An order group while it is read: its OBR, the ORC before it, notes and results."""

    obr: Segment
    orc: Segment | None
    notes: list[str] = field(default_factory=list)
    results: list[tuple[Segment, list[str]]] = field(default_factory=list)

    def report(self) -> Report:
        obr, orc = self.obr, self.orc
        service = coded(obr.first(4))
        if service is None:
            where = obr.where(4)
            raise InvalidHl7Message(
                f"{where} (universal service identifier) is empty",
                location=where,
                hint="Each order group needs the code of the ordered test or procedure.",
            )
        status = obr.text(25).upper()
        if not self.results and status not in _NO_RESULTS:
            raise InvalidHl7Message(
                f"{obr.where(1)[:-2]} has no OBX result and OBR-25 {status!r} does not say "
                "that results are pending or cancelled",
                location=obr.name,
                hint="Send the OBX results of the order, or OBR-25 O, I, S or X.",
            )
        return Report(
            service=service,
            set_id=integer(obr, 1),
            placer_order=entity(obr.first(2)) or (entity(orc.first(2)) if orc else None),
            filler_order=entity(obr.first(3)) or (entity(orc.first(3)) if orc else None),
            observed_at=obr.timestamp(7),
            observed_end=obr.timestamp(8),
            reported_at=obr.timestamp(22),
            ordering_provider=clinicians(obr, 16),
            diagnostic_service=obr.text(24),
            status=status,
            observations=tuple(read_OBX(obx, tuple(notes)) for obx, notes in self.results),
            notes=tuple(self.notes),
        )


def _note(nte: Segment) -> str:
    """NTE-3 comments; repetitions are lines."""
    return "\n".join(rep.whole() for rep in nte.repetitions(3))


def read_ORU(message: Message, base: ParsedMessage) -> ParsedMessage:
    """The patient, visit and reports of an ORU^R01."""
    message.require("OBR", base.trigger)
    pids = message.all("PID")
    if len(pids) > 1:
        raise InvalidHl7Message(
            f"{pids[1].name}(2) starts a second patient; one patient per message is read",
            location=pids[1].name,
            hint="Send each patient's results in a message of their own.",
        )
    groups: list[_Group] = []
    orc: Segment | None = None
    in_specimen = False
    for segment in message:
        name = segment.name
        if name == "ORC":
            orc = segment
        elif name == "OBR":
            groups.append(_Group(segment, orc))
            orc, in_specimen = None, False
        elif name == "SPM":
            in_specimen = True
        elif name == "OBX" and not in_specimen:
            if not groups:
                raise InvalidHl7Message(
                    f"{segment.where(1)[:-2]} comes before any OBR",
                    location=segment.name,
                    hint="Each result (OBX) follows the order (OBR) it belongs to.",
                )
            groups[-1].results.append((segment, []))
        elif name == "NTE" and groups and not in_specimen:
            group = groups[-1]
            (group.results[-1][1] if group.results else group.notes).append(_note(segment))
    pid, pv1 = message.find("PID"), message.find("PV1")
    return replace(
        base,
        patient=read_pid(pid) if pid else None,
        visit=read_pv1(pv1) if pv1 else None,
        reports=tuple(group.report() for group in groups),
    )
