"""Counts and modalities recomputed for what an index batch touched; empty levels removed."""

from __future__ import annotations

from sqlalchemy import Connection, and_, delete, func, select, update

from pacsync.db.archive_batches import Touched, chunks
from pacsync.db.archive_tables import (
    image_instances,
    image_patients,
    image_series,
    image_studies,
)
from pacsync.domain.clock import utc_now
from pacsync.domain.imaging import (
    fold,
)

_i = image_instances.c
_se = image_series.c
_st = image_studies.c
_p = image_patients.c


def recount(conn: Connection, archive: str, touched: Touched) -> None:
    """Counts and modalities of what a batch touched; empty levels removed."""
    live = _i.quarantined.is_(False)
    for chunk in chunks(sorted(touched.series)):
        counts: dict[str, int] = dict(
            conn.execute(
                select(_i.series_uid, func.count())
                .where(_i.archive == archive, _i.series_uid.in_(chunk), live)
                .group_by(_i.series_uid)
            ).all()
        )  # fmt: skip
        held = set(conn.execute(  # one row per series, however many instances it holds
            select(_i.series_uid)
            .where(_i.archive == archive, _i.series_uid.in_(chunk))
            .distinct()
        ).scalars())  # fmt: skip
        for uid in chunk:
            where = and_(_se.archive == archive, _se.series_uid == uid)
            if uid in held:
                conn.execute(update(image_series).where(where).values(
                    instance_count=counts.get(uid, 0)))  # fmt: skip
            else:
                conn.execute(delete(image_series).where(where))
    for chunk in chunks(sorted(touched.studies)):
        per_study: dict[str, tuple[int, int, set[str]]] = {}
        query = select(_se.study_uid, _se.modality, _se.instance_count).where(
            _se.archive == archive, _se.study_uid.in_(chunk)
        )
        for study_uid, modality, count in conn.execute(query):
            n_series, n_inst, modalities = per_study.get(study_uid, (0, 0, set()))
            if modality:
                modalities.add(modality)
            per_study[study_uid] = (n_series + 1, n_inst + count, modalities)
        for uid in chunk:
            where = and_(_st.archive == archive, _st.study_uid == uid)
            if uid in per_study:
                n_series, n_inst, modalities = per_study[uid]
                conn.execute(update(image_studies).where(where).values(
                    series_count=n_series, instance_count=n_inst,
                    modalities="\\".join(sorted(modalities)), updated_at=utc_now()))  # fmt: skip
            else:
                row = conn.execute(select(_st.issuer, _st.patient_id).where(where)).first()
                if row is not None:
                    touched.patients.add((row.issuer, row.patient_id))
                conn.execute(delete(image_studies).where(where))
    for issuer, patient_id in sorted(touched.patients):
        where = and_(_p.archive == archive, _p.issuer == issuer, _p.patient_id == patient_id)
        n = conn.execute(
            select(func.count()).select_from(image_studies).where(
                _st.archive == archive, _st.issuer == issuer, _st.patient_id == patient_id)
        ).scalar_one()  # fmt: skip
        if n:
            newest = conn.execute(
                select(_st.patient_name, _st.patient_birth_date, _st.patient_sex)
                .where(_st.archive == archive, _st.issuer == issuer, _st.patient_id == patient_id)
                .order_by(_st.updated_at.desc())
                .limit(1)
            ).one()
            conn.execute(update(image_patients).where(where).values(
                study_count=n, patient_name=newest.patient_name,
                name_folded=fold(newest.patient_name),
                patient_birth_date=newest.patient_birth_date, patient_sex=newest.patient_sex,
            ))  # fmt: skip
        else:
            conn.execute(delete(image_patients).where(where))
