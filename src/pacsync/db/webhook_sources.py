"""Inbound webhook sources and their replay receipts.  Secrets are sealed; listings
never show one.

A receipt is the (source, message id) pair of an accepted inbound message; its
primary key makes a replay lose atomically.
"""

from __future__ import annotations

import builtins
import datetime as dt
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import webhook_receipts, webhook_sources
from pacsync.db.webhooks import name_list
from pacsync.domain.clock import utc_now
from pacsync.errors import InvalidRequest, InvalidState, NotFound
from pacsync.security import signatures
from pacsync.security.secrets import SecretBox

_s = webhook_sources.c


@dataclass(frozen=True)
class SourceView:
    """An inbound webhook source: how its messages are signed and what they start."""

    source: str
    scheme: str
    pipeline: str | None
    mode: str | None
    entities: list[str] | None
    created_at: dt.datetime


def _source(row: Any) -> SourceView:
    return SourceView(
        source=row.source,
        scheme=row.scheme,
        pipeline=row.pipeline,
        mode=row.mode,
        entities=None if row.entities is None else list(row.entities),
        created_at=row.created_at,
    )


class WebhookSourceStore:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box

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
            "entities": None if entities is None else name_list(entities, "entities"),
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


def _source_context(source: str) -> str:
    return f"webhook-source:{source}"
