"""What this process's MLLP listeners received and answered, per feed.

A Prometheus collector (``register(registry)``):

* ``pacsync_hl7_messages_total{feed,ack}``: messages answered, by answer (AA, AE, AR)
* ``pacsync_hl7_duplicates_total{feed}``: accepted again, kept once
* ``pacsync_hl7_dropped_total{feed,problem}``: bytes outside a block, oversize blocks
* ``pacsync_hl7_store_failures_total{feed}``: messages rejected because the store failed
* ``pacsync_hl7_ack_seconds{feed}``: from the message's last byte to its answer
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Hl7Metrics(Collector):
    def __init__(self) -> None:
        self._children: dict[tuple[str, str], Any] = {}
        self._latencies: dict[str, Any] = {}
        self._answered = Counter(
            "pacsync_hl7_messages", "HL7 messages answered, per feed and answer.",
            ["feed", "ack"], registry=None,
        )  # fmt: skip
        self._duplicates = Counter(
            "pacsync_hl7_duplicates", "HL7 messages received again (kept once).",
            ["feed"], registry=None,
        )  # fmt: skip
        self._dropped = Counter(
            "pacsync_hl7_dropped", "MLLP blocks or bytes that could not be passed on.",
            ["feed", "problem"], registry=None,
        )  # fmt: skip
        self._store_failures = Counter(
            "pacsync_hl7_store_failures", "HL7 messages rejected because they could not be kept.",
            ["feed"], registry=None,
        )  # fmt: skip
        self._ack_seconds = Histogram(
            "pacsync_hl7_ack_seconds", "Seconds from a message's arrival to its answer.",
            ["feed"], buckets=BUCKETS, registry=None,
        )  # fmt: skip

    def answered(self, feed: str, ack: str, *, duplicate: bool) -> None:
        counter = self._children.get((feed, ack))
        if counter is None:  # a label lookup costs more than the increment: looked up once
            counter = self._children[(feed, ack)] = self._answered.labels(feed, ack)
        counter.inc()
        if duplicate:
            self._duplicates.labels(feed).inc()

    def dropped(self, feed: str, problem: str, size: int) -> None:
        self._dropped.labels(feed, problem).inc()

    def store_failed(self, feed: str, count: int) -> None:
        self._store_failures.labels(feed).inc(count)

    def latency(self, feed: str, seconds: float) -> None:
        histogram = self._latencies.get(feed)
        if histogram is None:
            histogram = self._latencies[feed] = self._ack_seconds.labels(feed)
        histogram.observe(seconds)

    def collect(self) -> Iterator[Metric]:
        for metric in (
            self._answered, self._duplicates, self._dropped, self._store_failures,
            self._ack_seconds,
        ):  # fmt: skip
            yield from metric.collect()

    def describe(self) -> Iterable[Metric]:
        return []


METRICS = Hl7Metrics()


def register(registry: CollectorRegistry, metrics: Hl7Metrics = METRICS) -> None:
    registry.register(metrics)


__all__ = ["METRICS", "Hl7Metrics", "register"]
