"""Turning one batch of source rows into one destination write.

Rows are mapped, filtered and validated here; rejected rows are parked as dead
letters before the batch is written, so nothing is lost if the write fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pacsync.domain.mapping import Mapper
from pacsync.domain.records import EntityCounts, Key, Rejected, Row, RowError
from pacsync.domain.validation import Validator
from pacsync.ports import DeadLetters, Destination, WriteBatch


@dataclass(slots=True)
class Outcome:
    batch: WriteBatch = field(default_factory=WriteBatch)
    rejected: list[Rejected] = field(default_factory=list)


class BatchProcessor:
    """Maps, filters and validates source rows of one entity."""

    def __init__(
        self,
        *,
        pipeline: str,
        entity: str,
        mapper: Mapper,
        validator: Validator,
        destination: Destination,
        dead_letters: DeadLetters,
        job_id: str | None,
    ) -> None:
        self.pipeline = pipeline
        self.entity = entity
        self.mapper = mapper
        self.validator = validator
        self.destination = destination
        self.dead_letters = dead_letters
        self.job_id = job_id
        self.target_key: Callable[[Key], Key] = mapper.key_converter()

    def process(
        self,
        rows: Sequence[Row],
        counts: EntityCounts,
        existing: dict[Key, str] | None,
        *,
        rewrite: bool = False,
    ) -> WriteBatch:
        """Build the write for ``rows``; ``existing`` maps target keys to stored fingerprints.

        ``existing=None`` means the rows are known to be new (a fresh full load).
        """
        out = Outcome()
        batch = out.batch
        mapper, check, target_key = self.mapper, self.validator.check, self.target_key
        keys: list[Key] = []
        counts.read += len(rows)
        if existing is None and not (self.validator.unique or self.validator.references):
            self._fresh(rows, counts, out)
            return batch
        for row in rows:
            fingerprint = row[-1]
            key = target_key(mapper.source_key(row))
            old = None if existing is None else existing.get(key)
            if old is not None and old == fingerprint and not rewrite:
                counts.unchanged += 1
                continue
            try:
                mapped = mapper.map(row)
                if not mapper.keep(row, mapped):
                    counts.filtered += 1
                    if old is not None:
                        batch.deletes.append(key)
                    continue
                check(mapped)
            except RowError as error:
                out.rejected.append(Rejected(key, fingerprint, mapper.record(row), error))
                continue
            batch.rows.append(mapped)
            batch.fingerprints.append(fingerprint)
            keys.append(key)
            if old is None:
                counts.inserted += 1
            else:
                counts.updated += 1
        if batch.rows and (self.validator.unique or self.validator.references):
            self._batch_rules(out, keys, existing, counts)
        if out.rejected:
            self._park(out.rejected, counts)
        batch.insert_only = existing is None
        return batch

    def _fresh(self, rows: Sequence[Row], counts: EntityCounts, out: Outcome) -> None:
        """The fast path of a fresh full load: no stored state, no batch rules, keys only
        where a row is rejected."""
        mapper, check = self.mapper, self.validator.check
        mapped_rows, fingerprints = out.batch.rows, out.batch.fingerprints
        filtering = mapper.entity.filter is not None
        for row in rows:
            try:
                mapped = mapper.map(row)
                if filtering and not mapper.keep(row, mapped):
                    counts.filtered += 1
                    continue
                check(mapped)
            except RowError as error:
                key = self.target_key(mapper.source_key(row))
                out.rejected.append(Rejected(key, row[-1], mapper.record(row), error))
                continue
            mapped_rows.append(mapped)
            fingerprints.append(row[-1])
        counts.inserted += len(mapped_rows)
        if out.rejected:
            self._park(out.rejected, counts)
        out.batch.insert_only = True

    def _batch_rules(
        self,
        out: Outcome,
        keys: list[Key],
        existing: dict[Key, str] | None,
        counts: EntityCounts,
    ) -> None:
        rows, fps = out.batch.rows, out.batch.fingerprints
        bad: dict[int, RowError] = {}
        for rule in self.validator.unique:
            values = [r[rule.position] for r in rows if r[rule.position] is not None]
            holders = self.destination.holders(self.entity, rule.field, values) if values else {}
            seen: dict[object, Key] = {}
            for i, row in enumerate(rows):
                value = row[rule.position]
                if value is None:
                    continue
                holder = seen.setdefault(value, holders.get(value, keys[i]))
                if holder != keys[i]:
                    bad.setdefault(
                        i,
                        RowError(
                            rule.field, "unique", rule.message or f"{value!r} is already used"
                        ),
                    )
        for ref in self.validator.references:
            wanted = {(r[ref.position],) for r in rows if r[ref.position] is not None}
            found = self.destination.existing(ref.entity, sorted(wanted, key=repr))
            for i, row in enumerate(rows):
                value = row[ref.position]
                if value is not None and (value,) not in found:
                    bad.setdefault(
                        i,
                        RowError(
                            ref.field,
                            "reference",
                            ref.message or f"no {ref.entity} with key {value!r}",
                        ),
                    )
        if not bad:
            return
        kept_rows, kept_fps = [], []
        for i, row in enumerate(rows):
            error = bad.get(i)
            if error is None:
                kept_rows.append(row)
                kept_fps.append(fps[i])
                continue
            known = existing is not None and keys[i] in existing
            if known:
                counts.updated -= 1
            else:
                counts.inserted -= 1
            record = dict(zip(self.mapper.fields, row, strict=True))
            out.rejected.append(Rejected(keys[i], fps[i], record, error))
        out.batch.rows, out.batch.fingerprints = kept_rows, kept_fps

    def _park(self, rejected: list[Rejected], counts: EntityCounts) -> None:
        for item in rejected:
            counts.rules_failed[item.error.rule] = counts.rules_failed.get(item.error.rule, 0) + 1
        counts.dead_lettered += len(rejected)
        self.dead_letters.park(self.job_id, self.pipeline, self.entity, rejected)
