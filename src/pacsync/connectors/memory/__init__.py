"""In-memory implementations of the ports, for unit tests of the use cases.

Tests build these fakes, run a use case against them and assert on their
contents (``destination.tables``, ``dead_letters.items``) rather than on mock
calls.  The fakes keep the contracts of the real connectors that use cases rely
on: sources return rows in key order with a fingerprint last, a destination
write is atomic and stores its checkpoint through its JSON form, and
``insert_only`` writes refuse keys that already exist, as a primary key would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pacsync.connectors.memory.bulk_load import MemoryBulkLoad
from pacsync.connectors.memory.circuits import MemoryCircuitStore
from pacsync.connectors.memory.dead_letters import DeadLetter, MemoryDeadLetters
from pacsync.connectors.memory.destination import MemoryDestination, WriteRejected
from pacsync.connectors.memory.fhir import MemoryFhirServer
from pacsync.connectors.memory.imaging import MemoryCatalog, MemoryParsePool
from pacsync.connectors.memory.jobs import MemoryJobContext, MemoryJobLog
from pacsync.connectors.memory.messages import MemoryMessageJournal
from pacsync.connectors.memory.progress import ProgressEvent, RecordingProgress
from pacsync.connectors.memory.source import MemorySource, fingerprint
from pacsync.connectors.memory.webhooks import MemoryDeliveryLog, MemoryWebhookSender

__all__ = [
    "DeadLetter",
    "MemoryBulkLoad",
    "MemoryCatalog",
    "MemoryCircuitStore",
    "MemoryDeadLetters",
    "MemoryDeliveryLog",
    "MemoryDestination",
    "MemoryFhirServer",
    "MemoryJobContext",
    "MemoryJobLog",
    "MemoryMessageJournal",
    "MemoryParsePool",
    "MemorySource",
    "MemoryWebhookSender",
    "ProgressEvent",
    "RecordingProgress",
    "WriteRejected",
    "fingerprint",
]

if TYPE_CHECKING:
    from pacsync.domain.spec import PipelineSpec
    from pacsync.ports import (
        CircuitStore,
        DeadLetters,
        Destination,
        JobContext,
        JobLog,
        MessageJournal,
        ProgressSink,
        Source,
        WebhookDeliveryLog,
        WebhookSender,
    )

if TYPE_CHECKING:
    # mypy proves the fakes match their ports.

    def _conforms(
        spec: PipelineSpec,
    ) -> tuple[
        Source,
        Destination,
        DeadLetters,
        ProgressSink,
        CircuitStore,
        JobContext,
        JobLog,
        WebhookSender,
        WebhookDeliveryLog,
        MessageJournal,
    ]:
        return (
            MemorySource(spec),
            MemoryDestination(spec),
            MemoryDeadLetters(),
            RecordingProgress(),
            MemoryCircuitStore(),
            MemoryJobContext(),
            MemoryJobLog(),
            MemoryWebhookSender(),
            MemoryDeliveryLog(),
            MemoryMessageJournal(),
        )
