"""``pacsync hl7``: the MLLP listener, sending messages, and the message log."""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings
from pacsync.connectors.hl7.sender import MllpSender, split_messages
from pacsync.db.messages import MessageStore
from pacsync.errors import InvalidRequest, NegativeAcknowledgement, NotFound

app = typer.Typer(help="HL7 v2 over MLLP: listen, send, route, and the message log.",
                  no_args_is_help=True)  # fmt: skip
routes_app = typer.Typer(help="MLLP routes: where processed messages are sent on.",
                         no_args_is_help=True)  # fmt: skip
app.add_typer(routes_app, name="route")


@routes_app.command("add")
@reports_errors
def route_add(
    name: Annotated[str, typer.Argument(help="The route's name")],
    url: Annotated[str, typer.Argument(help="mllp://host:port of the receiver")],
    types: Annotated[
        list[str] | None, typer.Option("--type", help="ADT^A01, ADT^* or ADT (repeatable)")
    ] = None,
    feeds: Annotated[list[str] | None, typer.Option("--feed", help="Only this feed's")] = None,
    tls: Annotated[bool, typer.Option("--tls", help="Speak TLS to the receiver")] = False,
    acks: Annotated[
        bool, typer.Option("--acks", help="Send the application ACKs MSH-16 asks for instead")
    ] = False,
) -> None:
    """Send processed messages (of these types and feeds) on to an MLLP receiver, in order."""
    from pacsync.bootstrap import hl7_routes

    store = bootstrap.store(Settings())
    route = hl7_routes.add_route(
        store, name, url, kinds=types or [], feeds=feeds or [], tls=tls, acks=acks
    )
    taken = ", ".join(route.kinds) or "every type"
    taken = f"application ACKs of {taken}" if route.acks else taken
    console.print(f"route {route.name} → {route.host}:{route.port} ({taken})", highlight=False)


@routes_app.command("list")
@reports_errors
def route_list() -> None:
    """The routes and their deliveries: pending, sent, refused."""
    from pacsync.bootstrap import hl7_routes
    from pacsync.db.deliveries import DeliveryStore

    store = bootstrap.store(Settings())
    counts = DeliveryStore(store.engine).counts()
    table = Table("route", "receiver", "types", "feeds", "pending", "sent", "refused")
    for route in hl7_routes.routes(store):
        seen = counts.get(route.name, {})
        table.add_row(
            route.name, f"{route.host}:{route.port}{' (TLS)' if route.tls else ''}",
            ("ACKs of " if route.acks else "") + (", ".join(route.kinds) or "any"),
            ", ".join(route.feeds) or "any",
            *(str(seen.get(state, 0)) for state in ("pending", "sent", "refused")),
        )  # fmt: skip
    console.print(table)


@routes_app.command("remove")
@reports_errors
def route_remove(name: Annotated[str, typer.Argument(help="The route's name")]) -> None:
    """Stop routing to it (messages already sent stay logged)."""
    store = bootstrap.store(Settings())
    found = store.connections.get(name)
    if found is None or found.kind != "mllp":
        raise NotFound(f"no MLLP route '{name}'", hint="List them: pacsync hl7 route list")
    store.connections.delete(name)
    console.print(f"route {name} removed", highlight=False)


@routes_app.command("retry")
@reports_errors
def route_retry(name: Annotated[str, typer.Argument(help="The route's name")]) -> None:
    """Send the messages the receiver refused once more (after a fix on its side)."""
    from pacsync.db.deliveries import DeliveryStore

    count = DeliveryStore(bootstrap.store(Settings()).engine).retry_refused(name)
    console.print(f"{count} message(s) queued again for {name}", highlight=False)


@app.command("deliver")
@reports_errors
def deliver(route: Annotated[str, typer.Argument(help="The route's name")]) -> None:
    """Send what waits for a route now, in this process (workers do it unasked)."""
    from pacsync.bootstrap import hl7_routes

    counts = hl7_routes.deliver_route(bootstrap.store(Settings()), route)
    console.print(f"{counts.sent} sent, {counts.refused} refused", highlight=False)
    if counts.stopped is not None:
        console.print(
            f"[red]stopped: {counts.stopped.get('code')} {counts.stopped.get('message')}[/]",
            highlight=False,
        )
        raise typer.Exit(1)


@app.command("listen")
@reports_errors
def listen(
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (PACSYNC_HL7_PORT)")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (PACSYNC_HL7_HOST)")] = None,
    feed: Annotated[str | None, typer.Option(help="Feed name (PACSYNC_HL7_FEED)")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Serve this listener's pacsync_hl7_* counters for "
            "Prometheus at http://127.0.0.1:PORT/metrics",
        ),
    ] = None,
) -> None:
    """Receive HL7 v2 over MLLP: every message is kept before it is acknowledged."""
    from pacsync.bootstrap import hl7  # the listener's modules only for this command

    settings = Settings()
    store = bootstrap.store(settings)
    running = hl7.listener(settings, store, host=host, port=port, feed=feed)
    if metrics_port is not None:
        hl7.serve_metrics(metrics_port)
        console.print(f"metrics on http://127.0.0.1:{metrics_port}/metrics", highlight=False)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    listened = running.start()
    tls = " (TLS)" if settings.hl7_tls_cert else ""
    console.print(
        f"MLLP listener '{running.listener.intake.feed}' on "
        f"{running.listener.options.host}:{listened}{tls}",
        highlight=False,
    )
    try:
        stop.wait()
    finally:
        running.stop()
        console.print("MLLP listener stopped", highlight=False)


@app.command("send")
@reports_errors
def send(
    address: Annotated[str, typer.Argument(help="HOST:PORT of the MLLP receiver")],
    files: Annotated[list[Path], typer.Argument(help="Files of HL7 messages", exists=True)],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each ACK")] = 30.0,
    keep_going: Annotated[
        bool, typer.Option("--keep-going", help="Go on after a message is refused")
    ] = False,
) -> None:
    """Send the messages of FILES in order, each after the previous one's ACK."""
    host, _, port_text = address.rpartition(":")
    if not host or not port_text.isdigit():
        raise InvalidRequest(
            f"not a HOST:PORT address: {address!r}", hint="For example: 127.0.0.1:2575"
        )
    refused = sent = 0
    with MllpSender(host, int(port_text), timeout_s=timeout) as sender:
        for path in files:
            for payload in split_messages(path.read_bytes()):
                try:
                    ack = sender.send(payload)
                except NegativeAcknowledgement as error:
                    refused += 1
                    if not keep_going:
                        raise
                    console.print(f"[red]{error.message}[/]", highlight=False)
                    continue
                sent += 1
                console.print(
                    f"{ack.code or 'sent'} {ack.control_id} ({ack.seconds * 1000:.1f} ms)",
                    highlight=False,
                )
    console.print(f"{sent} acknowledged, {refused} refused", highlight=False)
    if refused:
        raise typer.Exit(1)


@app.command("messages")
@reports_errors
def messages(
    kind: Annotated[str | None, typer.Option("--type", help="ADT, ADT^A01, SIU^*")] = None,
    control_id: Annotated[str | None, typer.Option("--control-id", help="MSH-10")] = None,
    patient: Annotated[str | None, typer.Option("--patient", help="Patient ID (PID-3)")] = None,
    state: Annotated[
        str | None, typer.Option(help="received, processed, failed or rejected")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Received on or after (YYYY-MM-DD)")] = None,
    until: Annotated[str | None, typer.Option(help="Received before (YYYY-MM-DD)")] = None,
    feed: Annotated[str | None, typer.Option(help="Only this feed's (PACSYNC_HL7_FEED)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
) -> None:
    """The message log, newest first (times in UTC)."""
    store = MessageStore(bootstrap.store(Settings()).engine)
    rows = store.search(
        kind=kind, control_id=control_id, patient_id=patient, state=state, feed=feed,
        since=_moment(since), until=_moment(until), limit=limit,
    )  # fmt: skip
    table = Table("id", "received", "feed", "type", "control id", "sender", "ack", "state",
                  "patient", "reason")  # fmt: skip
    for row in rows:
        table.add_row(
            str(row.id), f"{row.received_at:%Y-%m-%d %H:%M:%S}", row.feed, row.kind,
            row.control_id, row.sender, row.ack_code or "-", row.state, row.patient_id or "",
            row.reason or (row.error or {}).get("message", ""),
        )  # fmt: skip
    console.print(table)


def _moment(text: str | None) -> dt.datetime | None:
    """A date or time given on the command line, as the log keeps it (UTC, naive)."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"not a date: {text!r}", hint="Use YYYY-MM-DD or YYYY-MM-DDTHH:MM"
        ) from None
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


@app.command("show")
@reports_errors
def show(message_id: Annotated[int, typer.Argument(help="The message's id in the log")]) -> None:
    """Print one message as received (segments on lines)."""
    store = MessageStore(bootstrap.store(Settings()).engine)
    found = store.payload(message_id)
    if found is None:
        raise NotFound(f"no message {message_id}", hint="List them: pacsync hl7 messages")
    payload, encoding = found
    text = payload.decode(encoding, errors="replace")
    console.print(text.replace("\r", "\n").rstrip("\n"), highlight=False, markup=False)


@app.command("process")
@reports_errors
def process(
    feed: Annotated[str | None, typer.Option(help="Only this feed's messages")] = None,
    background: Annotated[
        bool, typer.Option("--background", help="Queue it for the workers instead")
    ] = False,
) -> None:
    """Process the kept messages now: records and FHIR resources, failures to the log."""
    from pacsync.bootstrap import hl7_processing, jobs

    settings = Settings()
    store = bootstrap.store(settings)
    if background:
        job_id, created = jobs.submit(settings, hl7_processing.process_request(feed), store=store)
        state = "queued" if created else "already queued"
        console.print(f"job {job_id[:8]} {state}", highlight=False)
        return
    started = time.perf_counter()
    counts = hl7_processing.process(store, feed=feed)
    took = time.perf_counter() - started
    done = counts.processed + counts.failed
    console.print(
        f"{counts.processed} processed, {counts.failed} failed, {counts.records} resources "
        f"written in {counts.batches} batch(es) in {took:.2f} s ({done / max(took, 1e-9):.0f}/s)",
        highlight=False,
    )
    if counts.failed:
        console.print("failed ones: pacsync hl7 messages --state failed", highlight=False)


@app.command("reprocess")
@reports_errors
def reprocess(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Message ids (default: all failed)")
    ] = None,
    feed: Annotated[str | None, typer.Option(help="Only this feed's")] = None,
) -> None:
    """Put failed messages back in line for processing (after a mapping fix)."""
    store = MessageStore(bootstrap.store(Settings()).engine)
    count = store.reprocess(ids or None, feed)
    console.print(f"{count} message(s) queued again", highlight=False)
