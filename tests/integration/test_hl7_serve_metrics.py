"""``pacsync serve --hl7``: the MLLP listener runs beside the API, and /metrics counts
its messages per feed: answered (AA, AR), how long each answer took, and what the
log holds by state (received, processed, failed: the dead letters)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from processes import KEY, Process, free_port, wait_until_up

from .mllp_peers import Connection, adt

pytestmark = pytest.mark.integration

BROKEN = (
    b"MSH|^~\\&|PMS|CLINIC|PACSYNC|HOSP|20260101120000||ADT^A08^ADT_A01|M3|P|2.5.1\r"
    b"EVN|A08|20260101120000\rPID|1||43^^^HOSP^MR||Roe^Rita||1970-13-45|F\r"
)


def sample(text: str, name: str, **labels: str) -> float:
    """One sample of the Prometheus text, by name and exact labels."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        found = re.fullmatch(r"([a-zA-Z0-9_:]+)(?:\{(.*)\})? (\S+)", line)
        if found and found.group(1) == name:
            have = ",".join(sorted((found.group(2) or "").split(","))) if found.group(2) else ""
            if have == wanted:
                return float(found.group(3))
    raise AssertionError(f"no {name}{{{wanted}}} in /metrics")


def test_serve_runs_the_listener_and_metrics_count_its_feed(pacsync: Any, tmp_path: Path) -> None:
    port, hl7_port = free_port(), free_port()
    env = {"PACSYNC_HL7_PORT": str(hl7_port), "PACSYNC_HL7_FEED": "pms"}
    server = Process(pacsync.start("serve", "--port", str(port), "--hl7", env=env))
    try:
        key = server.wait_for(KEY.pattern).group(1)
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, server)
        server.wait_for(r"MLLP listener 'pms'")
        with Connection(hl7_port) as mllp:
            answers = [mllp.exchange(p) for p in (adt("M1"), adt("M2"), BROKEN)]
            refused = mllp.exchange(adt("M4").replace(b"ADT^A08^ADT_A01", b"ORM^O01"))
        assert [a.code for a in answers] == ["AA", "AA", "AA"]
        assert refused.code == "AR"
        processed = pacsync("hl7", "process", env=env)
        assert processed.returncode == 0, processed.stdout + processed.stderr

        text = httpx.get(
            f"{base}/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=30
        ).text
        assert sample(text, "pacsync_hl7_messages_total", feed="pms", ack="AA") == 3
        assert sample(text, "pacsync_hl7_messages_total", feed="pms", ack="AR") == 1
        assert sample(text, "pacsync_hl7_ack_seconds_count", feed="pms") == 4
        assert sample(text, "pacsync_hl7_ack_seconds_sum", feed="pms") > 0
        stored = "pacsync_hl7_messages_stored"
        assert sample(text, stored, feed="pms", state="processed") == 2
        assert sample(text, stored, feed="pms", state="failed") == 1  # a dead letter
        assert sample(text, stored, feed="pms", state="rejected") == 1
        assert sample(text, "pacsync_hl7_messages_answered", feed="pms", ack="AR") == 1
    finally:
        server.stop()
