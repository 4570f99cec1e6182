"""A DICOM node's health, checked: a C-ECHO, then a query probe on the same
association, judged with the node's recent error rate (see
:mod:`pacsync.domain.node_health`)."""

from __future__ import annotations

import time

from pacsync.connectors.dicom import scu
from pacsync.connectors.dicom.association import Session
from pacsync.connectors.dicom.metrics import RECORDER, Recorder
from pacsync.connectors.dicom.query import Level
from pacsync.domain.dicom_node import DicomNode, Timeouts
from pacsync.domain.node_health import HealthPolicy, NodeHealth, Probe, judge
from pacsync.errors import PacsyncError

#: A Study Instance UID no archive holds: the probe asks the node's study index a
#: question it answers with nothing.
NO_SUCH_STUDY = "2.25.0"


def with_short_timeouts(node: DicomNode, seconds: float) -> DicomNode:
    """The node with every timeout at most ``seconds`` (for checks that must end soon)."""
    t = node.timeouts
    short = Timeouts(
        connect=min(t.connect, seconds),
        acse=min(t.acse, seconds),
        dimse=min(t.dimse, seconds),
        network=min(t.network, seconds),
    )
    return node.model_copy(update={"timeouts": short})


def _reason(error: PacsyncError) -> str:
    return f"{error.code} {error.message}"


def check(
    node: DicomNode, policy: HealthPolicy | None = None, recorder: Recorder = RECORDER
) -> NodeHealth:
    """Echo and probe ``node`` (its own timeouts apply) and judge the answers.

    The error rate is read before the probe, so the probe's own outcome is not
    counted twice."""
    recent = recorder.error_rate(node.name)
    with Session(node) as session:
        started = time.perf_counter()
        try:
            scu.echo(session)
        except PacsyncError as error:
            took = (time.perf_counter() - started) * 1000
            return judge(node.name, Probe.failed(_reason(error), took), None, recent, policy)
        echo = Probe.answered((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        try:
            scu.find(session, Level.STUDY, {"StudyInstanceUID": NO_SUCH_STUDY}, cached=False)
            probe = Probe.answered((time.perf_counter() - started) * 1000)
        except PacsyncError as error:
            took = (time.perf_counter() - started) * 1000
            probe = Probe.failed(_reason(error), took)
            session.discard("query")
    return judge(node.name, echo, probe, recent, policy)
