"""Prometheus metrics: read from the store when scraped, plus the API's request latency,
the DICOM operations this process made (``pacsync_dicom_*``) and what its MLLP listener
answered (``pacsync_hl7_*``).

Counts live in the store (every worker writes them), so a scrape of any API
process sees the whole site.  A part that cannot be read is left out and its
``pacsync_scrape_ok{part=...}`` is 0.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import get_args

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from pacsync.api.state import ApiState
from pacsync.connectors.dicom.metrics import RECORDER
from pacsync.connectors.hl7.metrics import METRICS as HL7_METRICS
from pacsync.db.circuits import CircuitStore
from pacsync.db.messages import MessageStore
from pacsync.domain.circuit import CircuitStatus

log = logging.getLogger("pacsync.api")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "interrupted", "cancelled")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def http_latency(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "pacsync_http_request_duration_seconds",
        "Time to answer an API request, by method, route template and status.",
        ["method", "route", "status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )


class StoreCollector(Collector):
    """Jobs, records, errors, durations, queues, circuits and dead letters, from the store."""

    def __init__(self, state: ApiState) -> None:
        self.state = state

    def describe(self) -> Iterable[Metric]:
        return []  # metrics are only known at scrape time; do not collect at registration

    def collect(self) -> Iterator[Metric]:
        ok = GaugeMetricFamily(
            "pacsync_scrape_ok", "Whether each part of the store could be read.", labels=["part"]
        )
        parts: list[tuple[str, Callable[[], list[Metric]]]] = [
            ("jobs", self._jobs),
            ("statistics", self._statistics),
            ("queues", self._queues),
            ("circuits", self._circuits),
            ("dead_letters", self._dead_letters),
            ("messages", self._messages),
        ]
        for name, read in parts:
            try:
                metrics = read()
            except Exception as error:  # one unreadable part must not fail the scrape
                log.warning("metrics: %s not read: %s", name, error)
                ok.add_metric([name], 0)
                continue
            ok.add_metric([name], 1)
            yield from metrics
        yield ok
        yield from RECORDER.collect()  # kept in memory: this process's echoes, finds, …
        yield from HL7_METRICS.collect()  # this process's MLLP listener, when it runs one

    def _messages(self) -> list[Metric]:
        """HL7 messages kept per feed: by state and by the answer they got; the age of
        the oldest one waiting to be processed."""
        store = MessageStore(self.state.store.engine)
        states = GaugeMetricFamily(
            "pacsync_hl7_messages_stored", "HL7 messages in the log by feed and state.",
            labels=["feed", "state"],
        )  # fmt: skip
        answers = GaugeMetricFamily(
            "pacsync_hl7_messages_answered", "HL7 messages in the log by feed and answer.",
            labels=["feed", "ack"],
        )  # fmt: skip
        counts_by_feed = store.counts()
        for feed, counts in sorted(counts_by_feed.items()):
            for key, n in sorted(counts.items()):
                if key.startswith("ack_"):
                    answers.add_metric([feed, key.removeprefix("ack_")], n)
                else:
                    states.add_metric([feed, key], n)
        waiting = GaugeMetricFamily(
            "pacsync_hl7_oldest_pending_seconds",
            "Age of the oldest kept message not yet processed, per feed.", labels=["feed"],
        )  # fmt: skip
        for feed, age in sorted(store.oldest_pending().items()):
            waiting.add_metric([feed], age)
        latency = GaugeMetricFamily(
            "pacsync_hl7_processing_seconds",
            "Seconds from receipt to processing over each feed's last 1,000 processed "
            "messages, by quantile (1 is the slowest).", labels=["feed", "quantile"],
        )  # fmt: skip
        for feed, spans in sorted(store.processing_seconds(sorted(counts_by_feed)).items()):
            for quantile in ("0.5", "0.95", "1"):
                index = min(len(spans) - 1, int(float(quantile) * len(spans)))
                latency.add_metric([feed, quantile], spans[index])
        return [states, answers, waiting, latency]

    def _jobs(self) -> list[Metric]:
        jobs = self.state.store.jobs
        by_status = GaugeMetricFamily(
            "pacsync_jobs", "Jobs in the store by status.", labels=["status"]
        )
        counts = jobs.count_by_status()
        for status in sorted({*JOB_STATUSES, *counts}):
            by_status.add_metric([status], counts.get(status, 0))
        errors = CounterMetricFamily(
            "pacsync_job_errors", "Errors jobs ended with, by PACS code.", labels=["code"]
        )
        for code, n in sorted(jobs.error_counts().items()):
            errors.add_metric([code], n)
        return [by_status, errors]

    def _statistics(self) -> list[Metric]:
        records = CounterMetricFamily(
            "pacsync_records_synced",
            "Records inserted, updated or deleted by ended jobs, per pipeline.",
            labels=["pipeline"],
        )
        duration = SummaryMetricFamily(
            "pacsync_job_duration_seconds",
            "How long ended jobs ran, per pipeline.",
            labels=["pipeline"],
        )
        outcomes = CounterMetricFamily(
            "pacsync_jobs_ended",
            "Ended jobs per pipeline and outcome.",
            labels=["pipeline", "outcome"],
        )
        for t in self.state.store.statistics.totals():
            records.add_metric([t.pipeline], t.records)
            duration.add_metric([t.pipeline], count_value=t.jobs, sum_value=t.duration_s)
            outcomes.add_metric([t.pipeline, "succeeded"], t.succeeded)
            outcomes.add_metric([t.pipeline, "failed"], t.failed)
        return [records, duration, outcomes]

    def _queues(self) -> list[Metric]:
        depth = GaugeMetricFamily(
            "pacsync_queue_jobs",
            "Jobs on each queue: waiting, or running on a worker.",
            labels=["queue", "state"],
        )
        for queue, counts in self.state.job_client().queue_depths().items():
            for name, n in counts.items():
                depth.add_metric([queue, name], n)
        return [depth]

    def _circuits(self) -> list[Metric]:
        state = GaugeMetricFamily(
            "pacsync_circuit_state",
            "1 for each connection's current circuit state (closed, open, half_open).",
            labels=["connection", "state"],
        )
        failures = GaugeMetricFamily(
            "pacsync_circuit_failures",
            "Consecutive transient failures of each connection.",
            labels=["connection"],
        )
        for c in CircuitStore(self.state.store.engine).all():
            for name in get_args(CircuitStatus):
                state.add_metric([c.connection, name], int(c.state == name))
            failures.add_metric([c.connection], c.failures)
        return [state, failures]

    def _dead_letters(self) -> list[Metric]:
        waiting = GaugeMetricFamily(
            "pacsync_dead_letters_open",
            "Dead letters waiting for an operator, per pipeline.",
            labels=["pipeline"],
        )
        for pipeline, n in sorted(self.state.store.dead_letters.open_by_pipeline().items()):
            waiting.add_metric([pipeline], n)
        return [waiting]
