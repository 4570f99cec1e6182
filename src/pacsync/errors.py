"""The pacsync error tree.

Every error a user can see carries a searchable code, a one-line message and a
hint.  Retry logic looks only at the marker class, never at the message::

    PacsyncError                      code, message, hint
    ├── TransientError                retry with backoff
    │   ├── ConnectionTimeout         PACS-001
    │   ├── JobTimeout                PACS-005
    │   ├── WorkerLost                PACS-008
    │   ├── CircuitOpen               PACS-009
    │   ├── RateLimited               PACS-106
    │   ├── StoreUnavailable          PACS-201
    │   ├── ReceiverUnavailable       PACS-302
    │   ├── DropFolderUnavailable     PACS-304
    │   ├── ArchiveOffline            PACS-402
    │   ├── MllpPeerUnavailable       PACS-651
    │   ├── FhirServerUnavailable     PACS-705
    │   └── FhirRateLimited           PACS-706
    └── TerminalError                 park it, do not retry
        ├── AuthenticationFailed      PACS-002
        ├── SchemaMismatch            PACS-003
        ├── DataValidationError       PACS-004
        ├── JobInterrupted            PACS-006
        ├── JobAlreadyRunning         PACS-007
        ├── ConfigError               PACS-101
        ├── UnknownPipeline           PACS-102
        ├── UnsupportedFeature        PACS-103
        ├── NotFound                  PACS-104
        ├── InvalidState              PACS-107
        ├── InvalidRequest            PACS-105
        ├── SourceError               PACS-301
        ├── DeliveryRefused           PACS-303
        ├── DropFileRefused           PACS-305
        ├── InvalidDicom              PACS-401
        ├── AssociationRejected       PACS-501
        ├── DimseFailure              PACS-502
        ├── InvalidHl7Message         PACS-601
        ├── MllpProtocolError         PACS-652
        ├── NegativeAcknowledgement   PACS-653
        ├── FhirAuthRejected          PACS-701  (an AuthenticationFailed)
        ├── FhirResourceNotFound      PACS-702
        ├── FhirConflict              PACS-703
        ├── FhirPreconditionFailed    PACS-704
        ├── FhirRequestRejected       PACS-707
        ├── FhirProtocolError         PACS-708
        └── FhirBulkExportFailed      PACS-709

A transient error may carry ``retry_after`` (seconds the peer asked us to wait, e.g.
HTTP Retry-After); retry decisions wait at least that long.
"""

from __future__ import annotations


class PacsyncError(Exception):
    """Base of every error pacsync reports to a user."""

    code = "PACS-000"
    default_hint = "See the logs for details."
    retry_after: float | None = None  # seconds the peer asked us to wait, when it said

    def __init__(
        self, message: str, *, hint: str | None = None, connection: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        self.connection = connection  # the configured connection that failed, when known

    @property
    def transient(self) -> bool:
        return isinstance(self, TransientError)

    def __str__(self) -> str:
        return f"{self.code} {self.message}"

    def as_dict(self) -> dict[str, str | bool | None]:
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "transient": self.transient,
            "connection": self.connection,
        }


class TransientError(PacsyncError):
    """May succeed if tried again later."""


class TerminalError(PacsyncError):
    """Will fail the same way until someone changes something."""


class ConnectionTimeout(TransientError):
    code = "PACS-001"
    default_hint = "Check the host, port, network and firewall rules, then try again."


class JobTimeout(TransientError):
    code = "PACS-005"
    default_hint = "Increase the job timeout or reduce the batch size."


class WorkerLost(TransientError):
    code = "PACS-008"
    default_hint = "Run again: every key range resumes after its last committed batch."


class CircuitOpen(TransientError):
    code = "PACS-009"
    default_hint = "Retry after the cool-down; `pacsync status` shows circuit states."


class RateLimited(TransientError):
    code = "PACS-106"
    default_hint = "Slow down: wait for the number of seconds in Retry-After, then try again."


class StoreUnavailable(TransientError):
    code = "PACS-201"
    default_hint = "Check that the pacsync store database is reachable (PACSYNC_DATABASE_URL)."


class ReceiverUnavailable(TransientError):
    code = "PACS-302"
    default_hint = "The webhook receiver answered with a server error; it is tried again later."


class AuthenticationFailed(TerminalError):
    code = "PACS-002"
    default_hint = "Verify the user name and password of the connection."


class SchemaMismatch(TerminalError):
    code = "PACS-003"
    default_hint = "Update the pipeline's field mapping to match the database schema."


class DataValidationError(TerminalError):
    code = "PACS-004"
    default_hint = "Review the source data or the pipeline's validation rules."


class JobInterrupted(TerminalError):
    code = "PACS-006"
    default_hint = "Run the same command again: it resumes after the last committed batch."


class JobAlreadyRunning(TerminalError):
    code = "PACS-007"
    default_hint = "Wait for the running job to finish (pacsync jobs) or cancel it."


class ConfigError(TerminalError):
    code = "PACS-101"
    default_hint = "Fix the pipeline file and run `pacsync check` again."


class UnknownPipeline(TerminalError):
    code = "PACS-102"
    default_hint = "List the pipelines with `pacsync pipelines` or pass a path to a YAML file."


class UnsupportedFeature(TerminalError):
    code = "PACS-103"
    default_hint = "Choose a strategy or option that this database supports."


class NotFound(TerminalError):
    code = "PACS-104"
    default_hint = "List what exists: `pacsync jobs`, `pacsync dead-letters list`."


class InvalidState(TerminalError):
    code = "PACS-107"
    default_hint = "Check its current status; the command does not apply in that state."


class InvalidRequest(TerminalError):
    code = "PACS-105"
    default_hint = "Fix the request as the detail says; the schema is at /api/v1/openapi.json."


class SourceError(TerminalError):
    code = "PACS-301"
    default_hint = "Check the source database's logs; the query was rejected."


class DeliveryRefused(TerminalError):
    code = "PACS-303"
    default_hint = "Check the webhook's URL and the receiver's logs: it refused the message."


class DropFolderUnavailable(TransientError):
    """A drop folder or a file in it cannot be read now (a share offline, a lock)."""

    code = "PACS-304"
    default_hint = (
        "Check that the folder exists, is mounted and readable by pacsync; "
        "files stay where they are and are read at the next run."
    )


class DropFileRefused(TerminalError):
    """A dropped file cannot be loaded as declared; it is moved to error/ with a report."""

    code = "PACS-305"
    default_hint = (
        "Read the report beside the file in the error folder; fix the export or the "
        "entity's columns in the pipeline, then drop the file again."
    )


class InvalidDicom(TerminalError):
    code = "PACS-401"
    default_hint = (
        "The file is not DICOM, is truncated or is corrupt; it is recorded with this reason "
        "and skipped until it changes (`pacsync archive status NAME --errors`)."
    )


class ArchiveOffline(TransientError):
    code = "PACS-402"
    default_hint = (
        "Check that the share is mounted and readable; its index entries are kept and the "
        "next scan picks it up again."
    )


class AssociationRejected(TerminalError):
    code = "PACS-501"
    default_hint = (
        "The DICOM node refused the association: check the called AE title, that the node "
        "knows our calling AE (and host), and the services it accepts."
    )


class DimseFailure(TerminalError):
    code = "PACS-502"
    default_hint = "The DICOM node answered the request with a failure status; see its logs."


class InvalidHl7Message(TerminalError):
    """An HL7 v2 message that cannot be turned into records: an unsupported trigger, a
    required segment missing, a field that does not read (``location`` names it, e.g.
    ``PID-7``, so an ACK's ERR segment or a dead letter can point at it)."""

    code = "PACS-601"
    default_hint = (
        "Fix the sending system's message or its interface mapping, then reprocess the dead letter."
    )

    def __init__(
        self,
        message: str,
        *,
        location: str = "",
        hint: str | None = None,
        connection: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint, connection=connection)
        self.location = location


class MllpPeerUnavailable(TransientError):
    """An MLLP peer refused the connection, dropped it or sent no ACK in time."""

    code = "PACS-651"
    default_hint = "Check that the receiver is up and listening on that host and port."


class MllpProtocolError(TerminalError):
    """An MLLP peer answered with something that is not an ACK of the message sent."""

    code = "PACS-652"
    default_hint = "Check that the host and port are an HL7 MLLP receiver (not HTTP or TLS)."


class NegativeAcknowledgement(TerminalError):
    """The receiver answered AE/AR (CE/CR): it will not take the message as it is."""

    code = "PACS-653"
    default_hint = "Read the receiver's reason (MSA-3/ERR); fix the message or its mapping."


class FhirAuthRejected(AuthenticationFailed):
    """The FHIR server or its token endpoint refused our credentials (401/403)."""

    code = "PACS-701"
    default_hint = (
        "Check the connection's client id, token URL and key: the server must have the "
        "public key (JWKS) of the client registered, and the client the scopes asked for."
    )


class FhirResourceNotFound(TerminalError):
    """The FHIR server has no such resource, type or operation (404/410)."""

    code = "PACS-702"
    default_hint = "Check the resource type and id, and the server's base URL."


class FhirConflict(TerminalError):
    """The FHIR server refused a write that conflicts with what it holds (409)."""

    code = "PACS-703"
    default_hint = "Read the resource again and apply the change to its current version."


class FhirPreconditionFailed(TerminalError):
    """An If-Match (or conditional) write found another version than the one expected
    (412): someone else changed the resource since we read it."""

    code = "PACS-704"
    default_hint = (
        "The resource changed since it was read: read it again, compare, and write with "
        "the new ETag."
    )


class FhirServerUnavailable(TransientError):
    """The FHIR server failed (5xx), timed out or could not be reached."""

    code = "PACS-705"
    default_hint = "Check that the FHIR server is up and reachable; it is tried again later."


class FhirRateLimited(TransientError):
    """The FHIR server asked us to slow down (429); ``retry_after`` says for how long."""

    code = "PACS-706"
    default_hint = "The server limits the request rate; it is tried again after Retry-After."


class FhirRequestRejected(TerminalError):
    """The FHIR server refused a request as invalid (400, 405, 406, 415, 422, …)."""

    code = "PACS-707"
    default_hint = "Read the server's OperationOutcome in the message; fix the request or resource."


class FhirProtocolError(TerminalError):
    """The FHIR server answered with something that is not what FHIR promises: a body
    that is not a resource, an invalid resource, a Bundle whose next link is broken."""

    code = "PACS-708"
    default_hint = "The server's answer does not follow FHIR R4; see the message and its logs."


class FhirBulkExportFailed(TerminalError):
    """A Bulk Data $export ended with an error or without a usable manifest."""

    code = "PACS-709"
    default_hint = (
        "Read the server's reason; start the export again (files already written are "
        "replaced, nothing is appended twice)."
    )
