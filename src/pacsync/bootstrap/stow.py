"""STOW-RS into the inbox archive: each instance stored and indexed like one received
by C-STORE (the bytes as sent, written, flushed and indexed before it is reported
stored), with the DIMSE failure reasons PS3.18 uses for those that are not."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from io import BytesIO

from pacsync import bootstrap
from pacsync.bootstrap.dicom_scp import inbox
from pacsync.config import Settings
from pacsync.connectors.dicom.inbox import DatasetMismatch, Inbox
from pacsync.connectors.dicom.status import Status
from pacsync.errors import InvalidDicom, PacsyncError, TransientError


@dataclass(frozen=True)
class StowOutcome:
    sop_class_uid: str | None
    sop_instance_uid: str | None
    study_instance_uid: str | None
    series_instance_uid: str | None
    failure: int | None = None  # a DIMSE status (FailureReason); None: stored
    reason: str | None = None


def _identity(data: bytes) -> tuple[str, str, str, str]:
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        dataset = dcmread(BytesIO(data), stop_before_pixels=True)
        return (str(dataset.SOPClassUID), str(dataset.SOPInstanceUID),
                str(dataset.StudyInstanceUID), str(dataset.SeriesInstanceUID))  # fmt: skip
    except (InvalidDicomError, AttributeError, ValueError, EOFError, OSError) as error:
        raise InvalidDicom(f"not a DICOM Part 10 instance: {error}") from None


def store(
    settings: Settings, store: bootstrap.Store, parts: Iterable[bytes], study_uid: str | None
) -> list[StowOutcome]:
    """Store each Part 10 instance of ``parts`` into the inbox (each one of study
    ``study_uid`` when given); what happened to each, in order."""
    target = inbox(settings, store)
    outcomes = []
    try:
        for data in parts:
            outcomes.append(_one(target, data, study_uid))
    finally:
        target.close()
    return outcomes


def _one(target: Inbox, data: bytes, study_uid: str | None) -> StowOutcome:
    try:
        sop_class, sop_uid, study, series = _identity(data)
    except InvalidDicom as error:
        return StowOutcome(None, None, None, None, Status.UNABLE_TO_PROCESS, error.message)
    done = StowOutcome(sop_class, sop_uid, study, series)
    if study_uid is not None and study != study_uid:
        reason = f"the instance is of study {study}, not {study_uid}"
        return StowOutcome(sop_class, sop_uid, study, series,
                           Status.DATASET_DOES_NOT_MATCH_SOP_CLASS, reason)  # fmt: skip
    try:
        target.receive(data, sop_uid, sop_class)
    except DatasetMismatch as error:
        failure, reason = Status.DATASET_DOES_NOT_MATCH_SOP_CLASS, error.message
    except InvalidDicom as error:
        failure, reason = Status.UNABLE_TO_PROCESS, error.message
    except (OSError, TransientError) as error:
        failure, reason = Status.OUT_OF_RESOURCES, str(error)
    except PacsyncError as error:
        failure, reason = Status.PROCESSING_FAILURE, error.message
    else:
        return done
    return StowOutcome(sop_class, sop_uid, study, series, failure, reason)
