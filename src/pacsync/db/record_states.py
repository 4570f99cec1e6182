"""Record state and checkpoints kept in the pacsync store, for destinations that keep
none of their own (an MLLP receiver): a record's fingerprint by (pipeline, entity,
key), and where each entity's reading stopped, committed together."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, exists, select, text

from pacsync.connectors.sql.destination import save_checkpoint
from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import checkpoints, record_states
from pacsync.domain.checkpoint import Checkpoint
from pacsync.domain.records import Key, key_text, parse_key
from pacsync.ports import SyncBase

_CHUNK = 500


class StoreRecordStates:
    """The :class:`pacsync.ports.RecordStates` of the pacsync store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def check(self) -> None:
        with translated("store"), self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def any(self, pipeline: str, entity: str) -> bool:
        mine = and_(record_states.c.pipeline == pipeline, record_states.c.entity == entity)
        with translated("store"), self.engine.connect() as conn:
            return bool(conn.execute(select(exists().where(mine))).scalar())

    def fingerprints(self, pipeline: str, entity: str) -> dict[Key, str]:
        rs = record_states
        stmt = select(rs.c.record_key, rs.c.fingerprint).where(
            rs.c.pipeline == pipeline, rs.c.entity == entity
        )
        with translated("store"), self.engine.connect() as conn:
            return {parse_key(k): fp for k, fp in conn.execute(stmt)}

    def lookup(self, pipeline: str, entity: str, keys: Sequence[Key]) -> dict[Key, str]:
        rs = record_states
        texts = {key_text(k): k for k in keys}
        found: dict[Key, str] = {}
        with translated("store"), self.engine.connect() as conn:
            names = list(texts)
            for start in range(0, len(names), _CHUNK):
                stmt = select(rs.c.record_key, rs.c.fingerprint).where(
                    rs.c.pipeline == pipeline,
                    rs.c.entity == entity,
                    rs.c.record_key.in_(names[start : start + _CHUNK]),
                )
                found.update({texts[k]: fp for k, fp in conn.execute(stmt)})
        return found

    def commit(
        self,
        pipeline: str,
        entity: str,
        written: Sequence[tuple[Key, str]],
        deleted: Sequence[Key],
        checkpoint: Checkpoint | None,
    ) -> None:
        """The records written (key, fingerprint), those deleted, and the checkpoint they
        complete, in one transaction."""
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows = [{"record_key": key_text(k), "fingerprint": fp} for k, fp in written]
        with translated("store"), self.engine.begin() as conn:
            _replace(conn, pipeline, entity, rows, [key_text(k) for k in deleted], now=now)
            if checkpoint is not None:
                save_checkpoint(conn, checkpoints, checkpoint, now)

    def load_checkpoint(self, pipeline: str, entity: str) -> Checkpoint | None:
        cp = checkpoints
        with translated("store"), self.engine.connect() as conn:
            state = conn.execute(
                select(cp.c.state).where(cp.c.pipeline == pipeline, cp.c.entity == entity)
            ).scalar_one_or_none()
        return None if state is None else Checkpoint.from_json(pipeline, entity, state)

    def forget_checkpoints(self, pipeline: str, names: Sequence[str]) -> None:
        cp = checkpoints
        with translated("store"), self.engine.begin() as conn:
            conn.execute(delete(cp).where(cp.c.pipeline == pipeline, cp.c.entity.in_(list(names))))

    # -- base versions of a two-way sync (pacsync.ports.SyncBases) ------------------------

    def bases(self, scope: str, resource_type: str) -> dict[str, SyncBase]:
        """The agreed version of each record, by id: record state's ``base`` (keyed as
        every record state is, the id a one-value key)."""
        rs = record_states
        stmt = select(rs.c.record_key, rs.c.base).where(
            rs.c.pipeline == scope, rs.c.entity == resource_type, rs.c.base.is_not(None)
        )
        with translated("store"), self.engine.connect() as conn:
            found = [(str(parse_key(k)[0]), base) for k, base in conn.execute(stmt)]
        return {rid: SyncBase(rid, dict(base)) for rid, base in found}

    def agree(
        self, scope: str, resource_type: str, agreed: Sequence[SyncBase], gone: Sequence[str]
    ) -> None:
        """The agreed versions (fingerprinted) replace the earlier ones, in one transaction."""
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows = [
            {"record_key": key_text((b.resource_id,)), "fingerprint": _fingerprint(b.resource),
             "base": b.resource}
            for b in agreed
        ]  # fmt: skip
        gone_keys = [key_text((rid,)) for rid in gone]
        with translated("store"), self.engine.begin() as conn:
            _replace(conn, scope, resource_type, rows, gone_keys, now=now)

    def position(self, scope: str, resource_type: str) -> dict[str, Any] | None:
        """Where a two-way sync's reading of a type stopped (a checkpoint's ``extra``)."""
        found = self.load_checkpoint(scope, resource_type)
        return None if found is None else dict(found.extra)

    def save_position(self, scope: str, resource_type: str, position: dict[str, Any]) -> None:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        checkpoint = Checkpoint(scope, resource_type, "fhir-sync", extra=dict(position))
        with translated("store"), self.engine.begin() as conn:
            save_checkpoint(conn, checkpoints, checkpoint, now)


def _replace(
    conn: Connection,
    pipeline: str,
    entity: str,
    rows: list[dict[str, Any]],
    gone: Sequence[str],
    *,
    now: dt.datetime,
) -> None:
    """The record states of ``rows`` (each with its ``record_key``) replace the kept
    ones, and those of the ``gone`` keys are dropped, in the caller's transaction."""
    rs = record_states
    stale = [*(r["record_key"] for r in rows), *gone]
    for start in range(0, len(stale), _CHUNK):
        conn.execute(
            delete(rs).where(
                rs.c.pipeline == pipeline,
                rs.c.entity == entity,
                rs.c.record_key.in_(stale[start : start + _CHUNK]),
            )
        )
    if rows:
        mine = {"pipeline": pipeline, "entity": entity, "updated_at": now}
        conn.execute(rs.insert(), [{**mine, **r} for r in rows])


def _fingerprint(resource: dict[str, Any]) -> str:
    text = json.dumps(resource, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


__all__ = ["StoreRecordStates"]
