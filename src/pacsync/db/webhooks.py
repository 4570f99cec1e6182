"""Webhooks: outbound subscriptions and their delivery log, inbound sources and their
replay receipts.  Every secret is sealed; listings never show one.

A delivery is ``pending`` until it is ``delivered``, or ``failed`` once no further
attempt is planned.  A receipt is the (source, message id) pair of an accepted
inbound message; its primary key makes a replay lose atomically.
"""

from __future__ import annotations

import builtins
import datetime as dt
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import webhook_deliveries, webhook_receipts, webhook_sources, webhooks
from pacsync.domain.clock import utc_now
from pacsync.errors import InvalidRequest, InvalidState, NotFound
from pacsync.security import signatures
from pacsync.security.secrets import SecretBox

RESPONSE_BODY_LIMIT = 2048  # characters of a receiver's response kept with a delivery
_w = webhooks.c
_d = webhook_deliveries.c
_s = webhook_sources.c


@dataclass(frozen=True)
class WebhookView:
    id: str
    url: str
    description: str | None
    events: list[str]  # names, "job.*" for a family, "*" for all
    pipelines: list[str]  # empty: every pipeline
    active: bool
    created_at: dt.datetime

    def wants(self, event: str, pipeline: str | None) -> bool:
        """Whether this webhook subscribes to ``event`` of ``pipeline``."""
        if not self.active:
            return False
        if self.pipelines and pipeline not in self.pipelines:
            return False
        return any(
            e in ("*", event) or (e.endswith(".*") and event.startswith(e[:-1]))
            for e in self.events
        )


@dataclass(frozen=True)
class Subscriber:
    """A webhook to deliver to, with the secret that signs its messages."""

    webhook: WebhookView
    secret: str = field(repr=False)


@dataclass(frozen=True)
class DeliveryView:
    id: int
    webhook_id: str
    message_id: str
    event: str
    payload: Any
    status: str
    attempts: int
    response_status: int | None
    response_body: str | None
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    next_attempt_at: dt.datetime | None


@dataclass(frozen=True)
class SourceView:
    """An inbound webhook source: how its messages are signed and what they start."""

    source: str
    scheme: str
    pipeline: str | None
    mode: str | None
    entities: list[str] | None
    created_at: dt.datetime


def _webhook(row: Any) -> WebhookView:
    return WebhookView(
        id=row.id,
        url=row.url,
        description=row.description,
        events=list(row.events),
        pipelines=list(row.pipelines),
        active=bool(row.active),
        created_at=row.created_at,
    )


def _delivery(row: Any) -> DeliveryView:
    return DeliveryView(**{c.name: row._mapping[c.name] for c in webhook_deliveries.columns})


def _source(row: Any) -> SourceView:
    return SourceView(
        source=row.source,
        scheme=row.scheme,
        pipeline=row.pipeline,
        mode=row.mode,
        entities=None if row.entities is None else list(row.entities),
        created_at=row.created_at,
    )


def _names(values: Sequence[str], what: str) -> builtins.list[str]:
    if isinstance(values, str) or any(not isinstance(v, str) or not v.strip() for v in values):
        raise InvalidRequest(f"{what} must be a list of names")
    return [v.strip() for v in values]


class WebhookStore:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box

    # -- outbound webhooks -----------------------------------------------------------------

    def create(
        self,
        url: str,
        events: Sequence[str],
        pipelines: Sequence[str] = (),
        description: str | None = None,
    ) -> tuple[WebhookView, str]:
        """A new webhook and its signing secret (``whsec_…``), shown this once."""
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest(f"webhook URL '{url[:200]}' is not http(s)")
        if not events:
            raise InvalidRequest(
                "a webhook needs at least one event", hint="Use '*' for every event."
            )
        secret = signatures.new_webhook_secret()
        view = WebhookView(
            id=secrets.token_hex(8),
            url=url,
            description=description,
            events=_names(events, "events"),
            pipelines=_names(pipelines, "pipelines"),
            active=True,
            created_at=utc_now(),
        )
        with translated("store"), self.engine.begin() as conn:
            conn.execute(
                insert(webhooks).values(
                    **view.__dict__, secret=self.box.seal(secret, _webhook_context(view.id))
                )
            )
        return view, secret

    def list(self) -> builtins.list[WebhookView]:
        with translated("store"), self.engine.connect() as conn:
            rows = conn.execute(select(webhooks).order_by(_w.created_at, _w.id))
            return [_webhook(r) for r in rows]

    def get(self, webhook_id: str) -> WebhookView | None:
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(select(webhooks).where(_w.id == webhook_id)).first()
        return None if row is None else _webhook(row)

    def set_active(self, webhook_id: str, active: bool) -> bool:
        with translated("store"), self.engine.begin() as conn:
            changed = conn.execute(
                update(webhooks).where(_w.id == webhook_id).values(active=active)
            )
        return changed.rowcount == 1

    def delete(self, webhook_id: str) -> bool:
        """Remove a webhook and its delivery log."""
        with translated("store"), self.engine.begin() as conn:
            conn.execute(delete(webhook_deliveries).where(_d.webhook_id == webhook_id))
            return conn.execute(delete(webhooks).where(_w.id == webhook_id)).rowcount == 1

    def subscribers(self, event: str, pipeline: str | None = None) -> builtins.list[Subscriber]:
        """Active webhooks that want ``event`` of ``pipeline``, with their secrets."""
        with translated("store"), self.engine.connect() as conn:
            rows = conn.execute(select(webhooks).where(_w.active.is_(True)).order_by(_w.id))
            found = [(_webhook(r), r.secret) for r in rows]
        return [
            Subscriber(view, self.box.open(sealed, _webhook_context(view.id)))
            for view, sealed in found
            if view.wants(event, pipeline)
        ]

    # -- the delivery log ------------------------------------------------------------------

    def add_delivery(
        self, webhook_id: str, event: str, payload: Any, message_id: str | None = None
    ) -> DeliveryView:
        """A pending delivery; its message id (``msg_…`` unless given) stays the same on
        every attempt, so receivers can drop duplicates."""
        now = utc_now()
        values = {
            "webhook_id": webhook_id,
            "message_id": message_id or f"msg_{secrets.token_urlsafe(18)}",
            "event": event,
            "payload": payload,
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        with translated("store"), self.engine.begin() as conn:
            key = conn.execute(insert(webhook_deliveries).values(**values)).inserted_primary_key
        assert key is not None
        found = self.delivery(int(key[0]))
        assert found is not None
        return found

    def mark_delivered(
        self, delivery_id: int, response_status: int, response_body: str | None = None
    ) -> None:
        self._attempted(
            delivery_id,
            status="delivered",
            response_status=response_status,
            response_body=response_body,
            error=None,
            next_attempt_at=None,
        )

    def mark_failed(
        self,
        delivery_id: int,
        error: str,
        *,
        response_status: int | None = None,
        response_body: str | None = None,
        next_attempt_at: dt.datetime | None = None,
    ) -> None:
        """One failed attempt; still ``pending`` when ``next_attempt_at`` plans another."""
        self._attempted(
            delivery_id,
            status="failed" if next_attempt_at is None else "pending",
            response_status=response_status,
            response_body=response_body,
            error=error[:2000],
            next_attempt_at=next_attempt_at,
        )

    def _attempted(self, delivery_id: int, *, response_body: str | None, **values: Any) -> None:
        body = None if response_body is None else response_body[:RESPONSE_BODY_LIMIT]
        with translated("store"), self.engine.begin() as conn:
            changed = conn.execute(
                update(webhook_deliveries)
                .where(_d.id == delivery_id)
                .values(
                    attempts=_d.attempts + 1,
                    response_body=body,
                    updated_at=utc_now(),
                    **values,
                )
            )
        if changed.rowcount != 1:
            raise NotFound(f"no webhook delivery {delivery_id}")

    def delivery(self, delivery_id: int) -> DeliveryView | None:
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(select(webhook_deliveries).where(_d.id == delivery_id)).first()
        return None if row is None else _delivery(row)

    def deliveries(
        self, webhook_id: str, limit: int = 50, *, status: str | None = None
    ) -> builtins.list[DeliveryView]:
        """A webhook's deliveries (of one ``status`` if given), newest first."""
        stmt = (
            select(webhook_deliveries)
            .where(_d.webhook_id == webhook_id)
            .order_by(_d.id.desc())
            .limit(limit)
        )
        if status is not None:
            stmt = stmt.where(_d.status == status)
        with translated("store"), self.engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(stmt)]

    def requeue(self, delivery_id: int) -> bool:
        """A failed delivery pending again (its attempts and message id kept); False when
        it is not failed (another caller requeued it first)."""
        with translated("store"), self.engine.begin() as conn:
            changed = conn.execute(
                update(webhook_deliveries)
                .where(_d.id == delivery_id, _d.status == "failed")
                .values(status="pending", next_attempt_at=None, updated_at=utc_now())
            )
        return changed.rowcount == 1

    def secret(self, webhook_id: str) -> str:
        """The signing secret of a webhook, opened."""
        with translated("store"), self.engine.connect() as conn:
            sealed = conn.execute(select(_w.secret).where(_w.id == webhook_id)).scalar()
        if sealed is None:
            raise NotFound(f"no webhook '{webhook_id}'")
        return self.box.open(sealed, _webhook_context(webhook_id))

    # -- inbound sources -------------------------------------------------------------------

    def put_source(
        self,
        source: str,
        scheme: str,
        secret: str | None = None,
        *,
        pipeline: str | None = None,
        mode: str | None = None,
        entities: Sequence[str] | None = None,
    ) -> tuple[SourceView, str | None]:
        """Create or replace an inbound source.  Without ``secret`` a new source (or one
        changing scheme) gets a generated one, returned this once; otherwise an existing
        source keeps its own and None comes back."""
        if scheme not in signatures.SCHEMES:
            raise InvalidRequest(
                f"unknown signature scheme '{scheme}'",
                hint=f"Use one of: {', '.join(signatures.SCHEMES)}.",
            )
        if not source.strip():
            raise InvalidRequest("a webhook source needs a name")
        existing = self.get_source(source)
        made = None
        if secret is None and (existing is None or existing.scheme != scheme):
            made = secret = (
                signatures.new_webhook_secret()
                if scheme == "standard-webhooks"
                else secrets.token_urlsafe(32)
            )
        if secret is not None and scheme == "standard-webhooks":
            signatures.standard_headers(secret, "check", 0, b"")  # refuses a non-whsec_ secret
        values: dict[str, Any] = {
            "scheme": scheme,
            "pipeline": pipeline,
            "mode": mode,
            "entities": None if entities is None else _names(entities, "entities"),
        }
        if secret is not None:
            values["secret"] = self.box.seal(secret, _source_context(source))
        with translated("store"), self.engine.begin() as conn:
            if existing is None:
                conn.execute(
                    insert(webhook_sources).values(source=source, created_at=utc_now(), **values)
                )
            else:
                conn.execute(update(webhook_sources).where(_s.source == source).values(**values))
        found = self.get_source(source)
        assert found is not None
        return found, made

    def get_source(self, source: str) -> SourceView | None:
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(select(webhook_sources).where(_s.source == source)).first()
        return None if row is None else _source(row)

    def list_sources(self) -> builtins.list[SourceView]:
        with translated("store"), self.engine.connect() as conn:
            return [_source(r) for r in conn.execute(select(webhook_sources).order_by(_s.source))]

    def delete_source(self, source: str) -> bool:
        with translated("store"), self.engine.begin() as conn:
            return conn.execute(delete(webhook_sources).where(_s.source == source)).rowcount == 1

    def source_secret(self, source: str) -> str:
        with translated("store"), self.engine.connect() as conn:
            sealed = conn.execute(select(_s.secret).where(_s.source == source)).scalar()
        if sealed is None:
            raise NotFound(f"no webhook source '{source}'")
        return self.box.open(sealed, _source_context(source))

    def remember_receipt(self, source: str, message_id: str) -> bool:
        """Record an accepted message; False when it was accepted before (a replay)."""
        with translated("store"):
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(webhook_receipts).values(
                            source=source, message_id=message_id, received_at=utc_now()
                        )
                    )
            except IntegrityError:
                return False
        return True

    def forget_receipt(self, source: str, message_id: str) -> bool:
        """Forget one accepted message (its processing could not even be queued), so the
        sender's retry is not refused as a replay."""
        with translated("store"), self.engine.begin() as conn:
            return (
                conn.execute(
                    delete(webhook_receipts).where(
                        webhook_receipts.c.source == source,
                        webhook_receipts.c.message_id == message_id[:200],
                    )
                ).rowcount
                == 1
            )

    def forget_receipts(self, before: dt.datetime) -> int:
        """Drop receipts older than ``before`` (messages that old fail the timestamp check)."""
        with translated("store"), self.engine.begin() as conn:
            return conn.execute(
                delete(webhook_receipts).where(webhook_receipts.c.received_at < before)
            ).rowcount

    def accept(
        self,
        source: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: dt.datetime | float | None = None,
    ) -> tuple[SourceView, str]:
        """Verify an inbound message and remember it: the source and the message id.
        NotFound for an unknown source, AuthenticationFailed for a bad signature or
        timestamp, InvalidState for a message accepted before."""
        found = self.get_source(source)
        if found is None:
            raise NotFound(f"no webhook source '{source}'")
        message_id = signatures.verify(
            found.scheme,
            self.source_secret(source),
            headers,
            body,
            now=utc_now() if now is None else now,
        )
        if not self.remember_receipt(source, message_id[:200]):
            raise InvalidState(
                f"message '{message_id[:200]}' from '{source}' was received before",
                hint="Replays are refused; a new message needs a new id.",
            )
        return found, message_id


def _webhook_context(webhook_id: str) -> str:
    return f"webhook:{webhook_id}"


def _source_context(source: str) -> str:
    return f"webhook-source:{source}"
