"""An MLLP receiver as a pipeline destination: each record becomes one HL7 v2 message.

An entity's ``target.message`` is the message template, one segment a line, with
``{field}`` placeholders (values HL7-escaped; dates as YYYYMMDD, times as
YYYYMMDDHHMMSS), ``{control_id}`` and ``{now}``.  Messages are sent in the order of
the batch, each after the previous one's ACK.  Record state and checkpoints are
kept in the pacsync store (the receiver holds no state of ours) and committed
after the batch's ACKs: a crash re-sends at most the batch in flight, with the
same control ids (derived from the record's key and fingerprint), so a receiver
that de-duplicates keeps each message once.  Deletes are not sent (HL7 has no
generic delete); their record state is dropped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from pacsync.domain.checkpoint import Checkpoint
from pacsync.domain.records import Key, Row, key_text
from pacsync.domain.spec import PipelineSpec
from pacsync.errors import ConfigError, UnsupportedFeature
from pacsync.ports import MessageSender, RecordStates, WriteBatch

_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("~", "\\R\\"), ("&", "\\T\\"))


def hl7_value(value: Any) -> str:
    """A field value as HL7 v2 text: escaped delimiters, DTM dates and times."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y%m%d%H%M%S")
    if isinstance(value, dt.date):
        return value.strftime("%Y%m%d")
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, Decimal):
        return format(value, "f")
    text = str(value).replace("\r", " ").replace("\n", " ")
    for raw, escaped in _ESCAPES:
        text = text.replace(raw, escaped)
    return text


class MessageTemplate:
    """One entity's message: ``render(record, control_id)`` gives the payload."""

    def __init__(self, entity: str, template: str, fields: Sequence[str]) -> None:
        lines = [line.strip() for line in template.strip().splitlines() if line.strip()]
        self.text = "\r".join(lines) + "\r"
        self.fields = list(fields)
        known = {*fields, "control_id", "now"}
        try:
            self.text.format_map(dict.fromkeys(known, ""))
        except KeyError as exc:
            raise ConfigError(
                f"entity '{entity}': target.message names {{{exc.args[0]}}}, which is not "
                "one of its fields",
                hint="Placeholders are field names, control_id and now: " + ", ".join(known),
            ) from None
        except (ValueError, IndexError) as exc:
            raise ConfigError(
                f"entity '{entity}': target.message is not a valid template: {exc}",
                hint="Write a literal brace as {{ or }}.",
            ) from None

    def render(self, row: Row, control_id: str, now: str) -> bytes:
        values = {name: hl7_value(v) for name, v in zip(self.fields, row, strict=False)}
        values["control_id"], values["now"] = control_id, now
        return self.text.format_map(values).encode("utf-8")


def control_id(pipeline: str, entity: str, key: Key, fingerprint: str) -> str:
    """The same record version always gets the same MSH-10 (20 characters)."""
    seed = f"{pipeline}\x1f{entity}\x1f{key_text(key)}\x1f{fingerprint}".encode()
    return hashlib.blake2b(seed, digest_size=10).hexdigest()


class MllpDestination:
    """A :class:`pacsync.ports.Destination` sending each record as a message."""

    def __init__(
        self,
        spec: PipelineSpec,
        sender: MessageSender,
        states: RecordStates,
        *,
        key_positions: Callable[[str], list[int]],
    ) -> None:
        self.spec = spec
        self.sender = sender
        self.states = states
        self.key_positions = key_positions
        self.templates = {
            name: MessageTemplate(name, entity.target.message or "", list(entity.fields))
            for name, entity in spec.entities.items()
        }

    def check(self) -> None:
        self.states.check()

    def prepare(self, entity: str) -> None:
        return None

    def is_empty(self, entity: str) -> bool:
        return not self.states.any(self.spec.name, entity)

    def fingerprints(self, entity: str) -> dict[Key, str]:
        return self.states.fingerprints(self.spec.name, entity)

    def fingerprint_batches(self, entity: str, batch_size: int) -> Iterator[list[Row]]:
        ordered = sorted(self.fingerprints(entity).items())
        for start in range(0, len(ordered), batch_size):
            yield [(*key, fp) for key, fp in ordered[start : start + batch_size]]

    def lookup(self, entity: str, keys: Sequence[Key]) -> dict[Key, str]:
        return self.states.lookup(self.spec.name, entity, keys)

    def holders(self, entity: str, field_name: str, values: Sequence[Any]) -> dict[Any, Key]:
        raise UnsupportedFeature(
            "a unique rule needs the target's stored values; an MLLP receiver keeps none here",
            hint="Drop the unique rule for entities sent as HL7 messages.",
        )

    def existing(self, entity: str, keys: Sequence[Key]) -> set[Key]:
        return set(self.lookup(entity, keys))

    def write(self, entity: str, batch: WriteBatch) -> None:
        template = self.templates[entity]
        positions = self.key_positions(entity)
        now = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
        sent: list[tuple[Key, str]] = []
        for row, fingerprint in zip(batch.rows, batch.fingerprints, strict=True):
            key = tuple(row[i] for i in positions)
            payload = template.render(
                row, control_id(self.spec.name, entity, key, fingerprint), now
            )
            self.sender.send(payload)  # raises: nothing of this batch is recorded
            sent.append((key, fingerprint))
        self.states.commit(self.spec.name, entity, sent, list(batch.deletes), batch.checkpoint)

    def load_checkpoint(self, entity: str) -> Checkpoint | None:
        return self.states.load_checkpoint(self.spec.name, entity)

    def forget_checkpoints(self, names: Sequence[str]) -> None:
        self.states.forget_checkpoints(self.spec.name, names)

    def orphans(self, entity: str, field_name: str, parent: str) -> int:
        raise UnsupportedFeature(
            "orphans cannot be counted in an MLLP receiver", hint="Reconcile at the receiver."
        )

    def close(self) -> None:
        self.sender.close()


__all__ = ["MessageTemplate", "MllpDestination", "control_id", "hl7_value"]
