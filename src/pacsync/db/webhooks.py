"""Outbound webhooks: subscriptions and their delivery log (inbound sources are in
webhook_sources).  Every secret is sealed; listings never show one.

A delivery is ``pending`` until it is ``delivered``, or ``failed`` once no further
attempt is planned.
"""

from __future__ import annotations

import builtins
import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import webhook_deliveries, webhooks
from pacsync.domain.clock import utc_now
from pacsync.errors import InvalidRequest, NotFound
from pacsync.security import signatures
from pacsync.security.secrets import SecretBox

RESPONSE_BODY_LIMIT = 2048  # characters of a receiver's response kept with a delivery
_w = webhooks.c
_d = webhook_deliveries.c


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


def name_list(values: Sequence[str], what: str) -> builtins.list[str]:
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
            events=name_list(events, "events"),
            pipelines=name_list(pipelines, "pipelines"),
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


def _webhook_context(webhook_id: str) -> str:
    return f"webhook:{webhook_id}"
