"""Searching the archive index (an :class:`pacsync.imaging.search.IndexSearch`).

Every query is answered from indexes: a patient ID or UID by equality, a name or
text prefix by a range scan on the folded column (``LIKE`` with a
``text_pattern_ops`` index on PostgreSQL), a date range by the date index.  Wild
cards after the prefix are checked by ``LIKE`` on the rows the range found.
Quarantined instances (an identity conflict) are never returned."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, and_, or_, select

from pacsync.connectors.sql.errors import translated
from pacsync.db.archive_tables import (
    archive_files,
    archives,
    image_instances,
    image_series,
    image_studies,
)
from pacsync.domain import matching
from pacsync.errors import InvalidRequest
from pacsync.imaging.search import Query, keys_of

_st, _se, _i, _f = image_studies.c, image_series.c, image_instances.c, archive_files.c

_STUDY_OUT = {
    "PatientName": _st.patient_name,
    "PatientID": _st.patient_id,
    "IssuerOfPatientID": _st.issuer,
    "PatientBirthDate": _st.patient_birth_date,
    "PatientSex": _st.patient_sex,
    "StudyDate": _st.study_date,
    "StudyTime": _st.study_time,
    "AccessionNumber": _st.accession_number,
    "ModalitiesInStudy": _st.modalities,
    "ReferringPhysicianName": _st.referring_physician_name,
    "StudyDescription": _st.study_description,
    "StudyInstanceUID": _st.study_uid,
    "StudyID": _st.study_id,
    "SpecificCharacterSet": _st.character_set,
    "NumberOfStudyRelatedSeries": _st.series_count,
    "NumberOfStudyRelatedInstances": _st.instance_count,
}
_SERIES_OUT = {
    "Modality": _se.modality,
    "SeriesDescription": _se.series_description,
    "BodyPartExamined": _se.body_part_examined,
    "SeriesDate": _se.series_date,
    "SeriesTime": _se.series_time,
    "SeriesInstanceUID": _se.series_uid,
    "SeriesNumber": _se.series_number,
    "NumberOfSeriesRelatedInstances": _se.instance_count,
}
_INSTANCE_OUT = {
    "SOPClassUID": _i.sop_class_uid,
    "SOPInstanceUID": _i.sop_instance_uid,
    "InstanceNumber": _i.instance_number,
    "NumberOfFrames": _i.number_of_frames,
    "Rows": _i.rows,
    "Columns": _i.columns,
    "TransferSyntaxUID": _i.transfer_syntax_uid,
}
# the column each matching key compares: what results show, but names folded
_COLUMNS: dict[str, Any] = {
    **_STUDY_OUT,
    **_SERIES_OUT,
    **_INSTANCE_OUT,
    "PatientName": _st.name_folded,
}


# a prefix of these is searched by an index range (identifiers: case counts); the other
# text keys match wild cards without regard to case (ILIKE), on every store
_RANGED = frozenset({"PatientName", "PatientID", "AccessionNumber"})


class ArchiveSearch:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    def search(self, query: Query) -> list[dict[str, Any]]:
        statement = self._statement(query)
        with translated("store"), self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(statement)]

    def locate(
        self,
        study_uid: str | None,
        series_uid: str | None = None,
        sop_uid: str | None = None,
        archive: str | None = None,
    ) -> list[dict[str, Any]]:
        """The instances of a study (or of one series, or one instance) with where their
        files are: ``archive``, ``kind``, ``root``, ``path``, ``size``, ``mtime_ns`` and the
        indexed attributes under :class:`InstanceHeader` field names."""
        a = archives.c
        columns = [
            _st.archive, a.kind, a.path.label("root"), _f.path, _f.size, _f.mtime_ns,
            _i.sop_instance_uid, _i.sop_class_uid, _i.transfer_syntax_uid,
            _i.instance_number, _i.number_of_frames, _i.rows, _i.columns,
            _st.study_uid.label("study_instance_uid"), _se.series_uid.label("series_instance_uid"),
            _st.patient_name, _st.patient_id, _st.issuer.label("issuer_of_patient_id"),
            _st.patient_birth_date, _st.patient_sex, _st.study_date, _st.study_time,
            _st.accession_number, _st.study_description, _st.referring_physician_name,
            _st.study_id, _st.character_set.label("specific_character_set"), _se.modality,
            _se.series_number, _se.series_description, _se.body_part_examined,
            _se.series_date, _se.series_time,
        ]  # fmt: skip
        statement = (
            select(*columns)
            .select_from(
                image_instances.join(
                    image_series, and_(_se.archive == _i.archive, _se.series_uid == _i.series_uid)
                )
                .join(image_studies, and_(_st.archive == _i.archive, _st.study_uid == _i.study_uid))
                .join(archive_files, _f.id == _i.file_id)
                .join(archives, a.name == _i.archive)
            )
            .where(_i.quarantined.is_(False))
            .order_by(_st.archive, _se.series_number, _se.series_uid, _i.instance_number)
        )
        if study_uid is not None:
            statement = statement.where(_i.study_uid == study_uid)
        if archive is not None:
            statement = statement.where(_i.archive == archive)
        if series_uid is not None:
            statement = statement.where(_i.series_uid == series_uid)
        if sop_uid is not None:
            statement = statement.where(_i.sop_instance_uid == sop_uid)
        with translated("store"), self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(statement)]

    def _statement(self, query: Query) -> Select[Any]:
        out: dict[str, Any] = {"archive": _st.archive, **_STUDY_OUT}
        if query.level in ("series", "instance"):
            out |= _SERIES_OUT
        if query.level == "instance":
            out |= _INSTANCE_OUT
            out["path"] = _f.path
        statement = select(*(column.label(name) for name, column in out.items()))
        if query.level == "study":
            statement = statement.select_from(image_studies).where(_st.instance_count > 0)
            order = [_st.study_date.desc(), _st.study_time.desc(), _st.study_uid]
            if _is_prefix(query.match.get("PatientName")):
                # the name index gives this order: the search stops after `limit` rows
                # instead of sorting every study whose name has the prefix
                order.insert(0, _st.name_folded)
        elif query.level == "series":
            statement = statement.select_from(
                image_series.join(
                    image_studies, and_(_st.archive == _se.archive, _st.study_uid == _se.study_uid)
                )
            ).where(_se.instance_count > 0)
            order = [_st.study_date.desc(), _se.series_number, _se.series_uid]
        else:
            statement = statement.select_from(
                image_instances.join(
                    image_series, and_(_se.archive == _i.archive, _se.series_uid == _i.series_uid)
                )
                .join(image_studies, and_(_st.archive == _i.archive, _st.study_uid == _i.study_uid))
                .join(archive_files, _f.id == _i.file_id)
            ).where(_i.quarantined.is_(False))
            order = [_se.series_number, _i.instance_number, _i.sop_instance_uid]
        if query.archives:
            statement = statement.where(_st.archive.in_(query.archives))
        keys = keys_of(query.level)
        for keyword, value in query.match.items():
            statement = statement.where(self._condition(keyword, keys[keyword][2], value))
        return statement.order_by(*order).limit(query.limit).offset(query.offset)

    def _condition(self, keyword: str, kind: str, value: str) -> ColumnElement[bool]:
        column = _COLUMNS[keyword]
        if kind == "uid":
            return column.in_(matching.uid_list(value))  # type: ignore[no-any-return]
        if kind == "date":
            low, high = matching.date_range(value, keyword)
            parts = []
            if low is not None:
                parts.append(column >= low)
            if high is not None:
                parts.append(column <= high)
            return and_(*parts)
        if kind == "int":
            try:
                return column == int(value)  # type: ignore[no-any-return]
            except ValueError:
                raise InvalidRequest(
                    f"{keyword} must be a number, not {value!r}", hint="Give an integer."
                ) from None
        if kind == "modality":
            return or_(*(_modality(column, code) for code in matching.uid_list(value)))
        folded = keyword == "PatientName"
        ranged = keyword in _RANGED
        return self._text(column, matching.pattern(value, folded=folded), ranged)

    def _text(self, column: Any, found: matching.Pattern, ranged: bool) -> ColumnElement[bool]:
        if found.like is None:
            return column == found.exact  # type: ignore[no-any-return]
        parts: list[ColumnElement[bool]] = []
        if ranged and found.prefix and not self.postgres:  # SQLite: LIKE cannot use the index
            parts += [column >= found.prefix, column < matching.prefix_upper(found.prefix)]
        if not ranged:  # descriptions and names: case-insensitive on every store
            parts.append(column.ilike(found.like, escape="\\"))
        elif found.like != f"{found.prefix}%" or self.postgres:
            parts.append(column.like(found.like, escape="\\"))
        return and_(*parts) if parts else column.is_not(None)


def _is_prefix(value: str | None) -> bool:
    return value is not None and matching.pattern(value, folded=True).like is not None


def _modality(column: Any, code: str) -> ColumnElement[bool]:
    """``code`` is one of the backslash-separated modalities of the study."""
    return or_(
        column == code,
        column.like(f"{code}\\%", escape="|"),
        column.like(f"%\\{code}", escape="|"),
        column.like(f"%\\{code}\\%", escape="|"),
    )
