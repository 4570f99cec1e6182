"""The legacy PACS catalog against a real Firebird 3 server on loopback: a fresh
legacy-shaped database with lossless JPEG 2000 files (``legacy_pacs``), read back
image by image and served as DICOM with the very pixels that were encoded.

The tests at the end need no server: DSNs, value conversion, the query and the
translation of driver errors."""

from __future__ import annotations

import datetime as dt
import math
import socket
from collections.abc import Callable, Iterator
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest
from firebird.driver import Cursor, DatabaseError
from pydicom import dcmread

import availability
from legacy_pacs import (
    FIREBIRD_HOST,
    FIREBIRD_PORT,
    LegacyStore,
    build_legacy_store,
    drop_legacy_store,
    remove_server_directory,
    server_directory,
    server_dsn,
    sysdba_password,
)
from pacsync.connectors.dicom.jpeg2000 import codestream, encapsulate
from pacsync.connectors.firebird import FirebirdCatalog, parse_dsn
from pacsync.connectors.firebird import values as legacy_values
from pacsync.connectors.firebird.driver import translate
from pacsync.connectors.firebird.schema import images_query
from pacsync.domain.legacy_mapping import LegacyMapping
from pacsync.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectionTimeout,
    SourceError,
)
from pacsync.imaging.ports import LegacyCatalog, LegacyImage

integration = pytest.mark.integration


Unavailable = Callable[[str], NoReturn]


@pytest.fixture(scope="module")
def unavailable() -> Unavailable:
    """``unavailable(reason)``: fail under CI, skip elsewhere (tests/availability.py)."""
    return availability.unavailable


def _server_password(unavailable: Unavailable) -> str:
    password = sysdba_password()
    if password is None:
        unavailable("no Firebird SYSDBA password (set PACSYNC_TEST_FIREBIRD_PASSWORD)")
    try:
        socket.create_connection((FIREBIRD_HOST, FIREBIRD_PORT), timeout=3).close()
    except OSError as exc:
        unavailable(f"Firebird at {FIREBIRD_HOST}:{FIREBIRD_PORT} is not reachable: {exc}")
    return password


def _store(tmp: Path, unavailable: Unavailable, **options: Any) -> Iterator[LegacyStore]:
    password = _server_password(unavailable)
    directory = server_directory()
    try:
        store = build_legacy_store(directory / "legacy.fdb", tmp, password=password, **options)
    except DatabaseError as exc:
        remove_server_directory(directory)
        unavailable(f"cannot create a Firebird database: {' '.join(str(exc).split())}")
    try:
        yield store
    finally:
        drop_legacy_store(store)
        remove_server_directory(directory)


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, unavailable: Unavailable
) -> Iterator[LegacyStore]:
    """One legacy store (5 patients, 10 studies, 30 images) for the tests that only read."""
    yield from _store(tmp_path_factory.mktemp("legacy-images"), unavailable)


def catalog(store: LegacyStore, **options: Any) -> FirebirdCatalog:
    return FirebirdCatalog(store.dsn, "SYSDBA", store.password, **options)


def listed(catalog: LegacyCatalog) -> dict[str, LegacyImage]:
    images = list(catalog.images())
    by_uid = {image.header.sop_instance_uid: image for image in images}
    assert len(by_uid) == len(images)
    return by_uid


@integration
def test_every_image_with_its_patient_study_and_series(store: LegacyStore) -> None:
    with catalog(store) as legacy:
        images = listed(legacy)
    assert store.image_count == 30
    assert set(images) == set(store.stored)
    for uid, expected in store.stored.items():
        assert images[uid].header == expected.header
        assert images[uid].relative_path == expected.relative_path
        assert (store.images / images[uid].relative_path).is_file()


@integration
def test_the_legacy_data_as_the_index_wants_it(store: LegacyStore) -> None:
    with catalog(store) as legacy:
        images = list(legacy.images())
    headers = [image.header for image in images]
    muller = [h for h in headers if h.patient_id == "P0001"]
    assert {h.patient_name for h in muller} == {"Müller^Jürgen"}
    assert {h.issuer_of_patient_id for h in headers if h.patient_id == "P0002"} == {None}
    shared = {
        (h.issuer_of_patient_id, h.patient_name) for h in headers if h.patient_id == "SHARED7"
    }
    assert shared == {("HOSP_A", "SMITH^ANNA"), ("HOSP_B", "JONES^PETER")}
    assert all(h.transfer_syntax_uid == "1.2.840.10008.1.2.4.90" for h in headers)
    assert all(h.specific_character_set == "ISO_IR 192" for h in headers)
    assert {len(h.study_date or "") for h in headers} == {8}  # from 2019-01-01 and 20190101
    assert all(h.study_time and h.study_time.isdigit() for h in headers)
    assert {h.modality for h in headers} == {"CT", "MR", "OT"}  # CHAR(4), unpadded
    assert any("\\" in p for p in _stored_paths(store))  # backslashes in the database …
    assert all("\\" not in image.relative_path for image in images)  # … not here


def _stored_paths(store: LegacyStore) -> list[str]:
    from firebird.driver import connect

    with connect(store.dsn, user="SYSDBA", password=store.password) as con:
        cur = con.cursor()
        cur.execute("SELECT FILE_PATH FROM IMAGES")
        return [row[0] for row in cur.fetchall()]


@integration
def test_rows_are_fetched_in_batches(store: LegacyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    fetchmany = Cursor.fetchmany

    def recorded(self: Cursor, size: int | None = None) -> list[tuple[Any, ...]]:
        sizes.append(size or 0)
        return fetchmany(self, size)  # type: ignore[no-any-return]

    monkeypatch.setattr(Cursor, "fetchmany", recorded)
    with catalog(store, batch_size=7) as legacy:
        images = legacy.images()
        first = next(images)
        assert sizes == [7]  # the first image comes after one batch, not after every row
        rest = list(images)
    assert 1 + len(rest) == store.image_count
    assert first.header.sop_instance_uid in store.stored
    assert sizes == [7] * (math.ceil(store.image_count / 7) + 1)  # the last fetch is empty


@integration
def test_a_listing_stopped_early_and_listings_after_close(store: LegacyStore) -> None:
    legacy = catalog(store, batch_size=4)
    images = legacy.images()
    assert [next(images) for _ in range(3)]
    images.close()
    assert len(listed(legacy)) == store.image_count
    legacy.close()
    legacy.close()
    assert len(listed(legacy)) == store.image_count  # attaches again
    legacy.close()


@integration
def test_a_lost_connection_is_transient_and_the_next_listing_attaches_again(
    store: LegacyStore,
) -> None:
    with catalog(store) as legacy:
        assert len(listed(legacy)) == store.image_count
        _disconnect_everyone_else(store)  # as a server restart or a DBA would
        with pytest.raises(ConnectionTimeout) as caught:
            list(legacy.images())
        assert caught.value.transient
        assert len(listed(legacy)) == store.image_count


def _disconnect_everyone_else(store: LegacyStore) -> None:
    from firebird.driver import connect

    with connect(store.dsn, user="SYSDBA", password=store.password) as con:
        con.execute_immediate(
            "DELETE FROM MON$ATTACHMENTS "
            "WHERE MON$ATTACHMENT_ID <> CURRENT_CONNECTION AND MON$SYSTEM_FLAG = 0"
        )
        con.commit()


@integration
def test_a_url_dsn(store: LegacyStore) -> None:
    url = f"firebird://SYSDBA:{store.password}@{FIREBIRD_HOST}:{FIREBIRD_PORT}/{store.database}"
    assert url.count("//") == 2  # the absolute path keeps its slash: …:3050//tmp/…
    with FirebirdCatalog(url) as legacy:
        assert len(listed(legacy)) == store.image_count


@integration
def test_a_mapping_in_lower_case_and_without_some_columns(store: LegacyStore) -> None:
    mapping = LegacyMapping.model_validate(
        {
            "images": {"table": "images", "rows": "rows", "number_of_frames": None},
            "patients": {"patient_sex": None, "patient_birth_date": "birth_date"},
        }
    )
    with catalog(store, mapping=mapping) as legacy:
        images = listed(legacy)
    for uid, image in images.items():
        assert image.header.patient_sex is None
        assert image.header.number_of_frames is None
        assert image.header.rows == store.stored[uid].header.rows
        assert image.header.patient_birth_date == store.stored[uid].header.patient_birth_date


@integration
def test_a_misspelt_column_names_it_and_the_columns_that_exist(store: LegacyStore) -> None:
    mapping = LegacyMapping.model_validate({"studies": {"study_date": "STUDY_DAT"}})
    with catalog(store, mapping=mapping) as legacy, pytest.raises(SourceError) as caught:
        next(legacy.images())
    message = caught.value.message
    assert "legacy column STUDIES.STUDY_DAT (studies.study_date) does not exist" in message
    assert "columns of STUDIES: STUDY_UID, PAT_KEY, STUDY_DATE, STUDY_TIME" in message
    assert not caught.value.transient


@integration
def test_a_misspelt_table_names_it_and_the_tables_that_exist(store: LegacyStore) -> None:
    mapping = LegacyMapping.model_validate({"series": {"table": "SERIE"}})
    with catalog(store, mapping=mapping) as legacy, pytest.raises(SourceError) as caught:
        list(legacy.images())
    assert caught.value.message == (
        "legacy table SERIE (series.table) does not exist; "
        "tables: IMAGES, PATIENTS, SERIES, STUDIES"
    )


@integration
def test_a_wrong_password_is_an_authentication_failure(store: LegacyStore) -> None:
    legacy = FirebirdCatalog(store.dsn, "SYSDBA", store.password + "-wrong")
    with pytest.raises(AuthenticationFailed) as caught:
        list(legacy.images())
    assert caught.value.code == "PACS-002"
    assert not caught.value.transient
    assert store.password not in str(caught.value)
    legacy.close()


@integration
def test_a_server_nobody_listens_on_is_a_transient_timeout(store: LegacyStore) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    legacy = FirebirdCatalog(f"127.0.0.1/{port}:{store.database}", "SYSDBA", store.password)
    with pytest.raises(ConnectionTimeout) as caught:
        list(legacy.images())
    assert caught.value.transient
    assert caught.value.code == "PACS-001"
    assert f"127.0.0.1/{port}" in caught.value.hint
    assert "running" in caught.value.hint


@integration
def test_a_database_file_that_is_not_there(store: LegacyStore) -> None:
    missing = store.database.with_name("missing.fdb")
    legacy = FirebirdCatalog(server_dsn(missing), "SYSDBA", store.password)
    with pytest.raises(SourceError) as caught:
        list(legacy.images())
    assert "database path" in caught.value.hint


@integration
def test_images_served_as_dicom_have_the_encoded_pixels(store: LegacyStore) -> None:
    with catalog(store) as legacy:
        for image in legacy.images():
            stored = store.stored[image.header.sop_instance_uid]
            data = (store.images / image.relative_path).read_bytes()
            ds = dcmread(BytesIO(encapsulate(image.header, codestream(data))))
            assert np.array_equal(ds.pixel_array, stored.pixels)
            assert ds.pixel_array.dtype == stored.pixels.dtype
            assert ds.PatientName == image.header.patient_name
            assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"
            assert ds.SOPClassUID == (image.header.sop_class_uid or "1.2.840.10008.5.1.4.1.1.7")


@integration
def test_a_win1252_database_read_in_its_character_set(
    tmp_path: Path, unavailable: Unavailable
) -> None:
    for store in _store(tmp_path, unavailable, charset="WIN1252", patients=2, images_per_study=1):
        with catalog(store, charset="WIN1252") as legacy:
            images = listed(legacy)
        for uid, expected in store.stored.items():
            assert images[uid].header == expected.header
            assert images[uid].header.specific_character_set == "ISO_IR 100"
        muller = next(i for i in images.values() if i.header.patient_id == "P0001")
        data = (store.images / muller.relative_path).read_bytes()
        dicom = encapsulate(muller.header, codestream(data))
        assert "Müller^Jürgen".encode("latin-1") in dicom
        assert dcmread(BytesIO(dicom)).PatientName == "Müller^Jürgen"


# -- without a server -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "dsn", "user", "password"),
    [
        ("127.0.0.1:/var/lib/firebird/3.0/data/legacy.fdb",
         "127.0.0.1:/var/lib/firebird/3.0/data/legacy.fdb", None, None),
        ("pacs/3051:C:\\DATA\\PACS.FDB", "pacs/3051:C:\\DATA\\PACS.FDB", None, None),
        ("firebird://SYSDBA:s%40cret@10.0.0.5:3051//data/legacy.fdb",
         "10.0.0.5/3051:/data/legacy.fdb", "SYSDBA", "s@cret"),
        ("firebird://reader@pacs/C:/DATA/PACS.FDB", "pacs/3050:C:/DATA/PACS.FDB", "reader", None),
        ("firebird+firebird://u:pw-1@pacs/legacy", "pacs/3050:legacy", "u", "pw-1"),
        ("firebird://u:@[::1]:3050//db.fdb", "[::1]/3050:/db.fdb", "u", ""),
        ("inet://pacs:3050//data/legacy.fdb", "inet://pacs:3050//data/legacy.fdb", None, None),
    ],
)  # fmt: skip
def test_dsns_and_urls(given: str, dsn: str, user: str | None, password: str | None) -> None:
    parsed = parse_dsn(given)
    assert (parsed.dsn, parsed.user, parsed.password) == (dsn, user, password)
    if password:
        assert password not in repr(parsed)


def test_a_url_may_set_the_character_set() -> None:
    assert parse_dsn("firebird://pacs//db.fdb?charset=WIN1252").charset == "WIN1252"
    legacy = FirebirdCatalog("firebird://u:p@pacs//db.fdb?charset=win1252", password="other")
    assert (legacy.charset, legacy.user, legacy.dsn) == ("WIN1252", "u", "pacs/3050:/db.fdb")
    assert "other" not in repr(legacy)
    assert "p@" not in repr(legacy)


@pytest.mark.parametrize("given", ["", "firebird://pacs", "firebird://pacs:port//db.fdb"])
def test_unusable_dsns(given: str) -> None:
    with pytest.raises(ConfigError):
        FirebirdCatalog(given)


@pytest.mark.parametrize(
    ("convert", "value", "expected"),
    [
        (legacy_values.date, dt.date(2019, 3, 12), "20190312"),
        (legacy_values.date, dt.datetime(2019, 3, 12, 8, 15), "20190312"),
        (legacy_values.date, "20190312", "20190312"),
        (legacy_values.date, "2019-03-12", "20190312"),
        (legacy_values.date, "2019.3.2 ", "20190302"),
        (legacy_values.date, "12.03.2019", "20190312"),
        (legacy_values.date, 20190312, "20190312"),
        (legacy_values.date, "20191312", None),
        (legacy_values.date, "03/12/2019", None),
        (legacy_values.date, "", None),
        (legacy_values.time, dt.time(8, 15, 30), "081530"),
        (legacy_values.time, dt.time(8, 15, 30, 250000), "081530.250000"),
        (legacy_values.time, dt.datetime(2019, 3, 12, 23, 5, 1), "230501"),
        (legacy_values.time, "08:15:30", "081530"),
        (legacy_values.time, "8:15", "0815"),
        (legacy_values.time, "08:15:30.5", "081530.5"),
        (legacy_values.time, "081530.123", "081530.123"),
        (legacy_values.time, "later", None),
        (legacy_values.integer, 7, 7),
        (legacy_values.integer, " 12 ", 12),
        (legacy_values.integer, Decimal("3.00"), 3),
        (legacy_values.integer, Decimal("3.50"), None),
        (legacy_values.integer, float("nan"), None),
        (legacy_values.integer, "IV", None),
        (legacy_values.text, "DOE^JOHN      ", "DOE^JOHN"),
        (legacy_values.text, "   ", None),
        (legacy_values.text, None, None),
        (legacy_values.text, b"CT\x00\x00", "CT"),
        (legacy_values.text, 42, "42"),
    ],
)
def test_legacy_values(convert: Any, value: object, expected: object) -> None:
    assert convert(value) == expected


def test_the_query_quotes_every_name_and_joins_from_the_images_up() -> None:
    tables = {
        "IMAGES": ["SOP_UID", "SERIES_UID", "SOP_CLASS", "INSTANCE_NO", "FILE_PATH", "ROWS",
                   "COLS", "FRAMES"],
        "SERIES": ["SERIES_UID", "STUDY_UID", "MODALITY", "SERIES_NO", "BODY_PART", "DESCRIPTION"],
        "Studies": ["STUDY_UID", "PAT_KEY", "STUDY_DATE", "STUDY_TIME", "ACCESSION",
                    "DESCRIPTION", "REFERRING", "STUDY_NO"],
        "PATIENTS": ["PAT_KEY", "PAT_ID", "PAT_NAME", "BIRTH_DATE", "SEX", "ISSUER"],
    }  # fmt: skip
    query = images_query(LegacyMapping(), tables)
    assert query.attributes[:2] == ("file_path", "sop_instance_uid")
    assert query.sql.splitlines()[1:] == [
        'FROM "IMAGES" L0',
        'LEFT JOIN "SERIES" L1 ON L1."SERIES_UID" = L0."SERIES_UID"',
        'LEFT JOIN "Studies" L2 ON L2."STUDY_UID" = L1."STUDY_UID"',
        'LEFT JOIN "PATIENTS" L3 ON L3."PAT_KEY" = L2."PAT_KEY"',
    ]
    assert 'L0."ROWS"' in query.sql


@pytest.mark.parametrize(
    ("codes", "sqlstate", "error", "transient"),
    [
        ((335544472,), "28000", AuthenticationFailed, False),
        ((335544721, 335544722), "08006", ConnectionTimeout, True),
        ((335544421,), "08004", ConnectionTimeout, True),
        ((335544726,), "08006", ConnectionTimeout, True),
        ((335544344, 335544734), "08001", SourceError, False),
        ((335544352,), "28000", SourceError, False),  # no permission: a grant is missing
        ((335544569, 335544436), "42S22", SourceError, False),
    ],
)
def test_driver_errors_by_status_code(
    codes: tuple[int, ...], sqlstate: str, error: type[Exception], transient: bool
) -> None:
    driver_error = DatabaseError("the server's words", gds_codes=codes, sqlstate=sqlstate)
    translated = translate(driver_error, "legacy database 'nas2'", location="pacs:/db.fdb")
    assert type(translated) is error
    assert translated.transient is transient
    assert translated.message == "legacy database 'nas2': the server's words"
