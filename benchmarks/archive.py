"""Imaging archive index: pacsync against the I/O limit and its peer, side by side, in one run.

A tree of realistic CT and MR files (tests/imaging_data.py: ~270-element headers, ~180
of them private, 16-bit pixel data; patient / study / series folders; some names in
Latin-1, UTF-8 and ISO 2022 Japanese) is generated once and cached in the temporary
folder, keyed by its size.  The page cache cannot be dropped without privileges, so
every file is read once in full before timing, and what a measurement reads is read
again right before it (this machine pages out file pages left untouched for about a
minute): every figure below is warm-cache.

  (a) the I/O limit: open, read the first 16 KiB, close, over every file, one process;
  (b) the naive baseline: pydicom ``dcmread(stop_before_pixels=True)``, one process;
  (c) pacsync initial indexing into a fresh SQLite store (a temporary PACSYNC_HOME, as a
      user gets by default): ``pacsync.bootstrap.archives.scan`` in this process, and
      ``pacsync archive scan`` end to end in its own process (start-up included); and
      in this process again with ``archive_workers=1`` (no parse pool), for comparison;
  (d) a rescan of an unchanged tree of 100,000 files (hard links to the generated
      ones; the copies' index rows inserted directly): the scan walks and stats only;
  (e) search latency at 1,000,000 instances / 100,000 patients (rows inserted directly
      with realistic distributions) through ``ArchiveSearch.search``: patient ID, name
      prefix, one month of studies with a CT; p50/p99 over 500 random queries each;
  (f) thumbnail (medium, PNG) latency on a cache miss through ``DicomWebService``: a
      512x512 16-bit CT uncompressed, and the same pixels as a lossless JPEG 2000 file
      of a legacy store (encapsulated as DICOM on the fly, as it is served);
  (g) the peer: Orthanc (the Debian package) on loopback, the same files through
      ``POST /instances`` by 4 concurrent uploaders.

Writes benchmarks/results/archive.json.  ``--quick`` (under a minute once the tree is
cached): 3,000 files, a 20,000-file rescan, 100,000 instances / 10,000 patients for
search, 1,000 files into Orthanc.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import itertools
import json
import math
import os
import platform
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PACSYNC = Path(sys.executable).parent / "pacsync"
GENERATOR_VERSION = 2  # raise when the generated tree changes: the cache is rebuilt
HEADER_BYTES = 16384
HEADS = 65536  # warming reads this much of each file: the headers end at about 30 KB
ARCHIVE = "bench"
RESCAN_ARCHIVE = "bench-rescan"
SEARCH_ARCHIVES = ("ct-nas", "legacy-nas-1", "legacy-nas-2")
UID_ROOT = "1.2.826.0.1.3680043.8.498.4242"
QUERIES = 500  # per kind and round
SEARCH_ROUNDS = 3  # the figures are the median of the rounds' percentiles
INDEX_RUNS = 3  # each way of indexing, alternated; the figures are the median
QUERY_WARMUP = 50
RENDERS = 40
RENDER_WARMUP = 3
UPLOADERS = 4
TARGETS = {
    "index_files_per_s": (">=", 2000),
    "rescan_100k_unchanged_s": ("<", 5),
    "search_p99_ms": ("<", 5),
    "thumbnail_p50_ms": ("<", 50),
}

# -- people ----------------------------------------------------------------------------------------


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FAMILY = _names(
    "SMITH JOHNSON WILLIAMS BROWN JONES GARCIA MILLER DAVIS RODRIGUEZ MARTINEZ HERNANDEZ "
    "LOPEZ GONZALEZ WILSON ANDERSON THOMAS TAYLOR MOORE JACKSON MARTIN LEE PEREZ THOMPSON "
    "WHITE HARRIS SANCHEZ CLARK RAMIREZ LEWIS ROBINSON WALKER YOUNG ALLEN KING WRIGHT SCOTT "
    "TORRES NGUYEN HILL FLORES GREEN ADAMS NELSON BAKER HALL RIVERA CAMPBELL MITCHELL CARTER "
    "ROBERTS SCHMIDT SCHNEIDER FISCHER WEBER MEYER WAGNER BECKER HOFFMANN DUBOIS ROUSSEAU "
    "BERNARD PETIT ROSSI RUSSO FERRARI ESPOSITO BIANCHI JANSEN DEVRIES VISSER NOWAK "
    "KOWALSKI HANSEN NIELSEN JOHANSSON LARSSON"
)
GIVEN = _names(
    "JAMES MARY JOHN PATRICIA ROBERT JENNIFER MICHAEL LINDA WILLIAM ELIZABETH DAVID BARBARA "
    "RICHARD SUSAN JOSEPH JESSICA THOMAS SARAH CHARLES KAREN ANNA PETER MARIA PAUL LAURA "
    "HANS ULRIKE PIERRE CLAIRE MARCO GIULIA JAN EVA LARS INGRID"
)
# Latin-1 (ISO_IR 100) names, and names that need UTF-8 (ISO_IR 192)
FAMILY_LATIN1 = _names(
    "Müller Schäfer Köhler Größer Lefèvre Bélanger Côté Lévesque Núñez Muñoz Peña Ibáñez "
    "Gómez Fernández Díaz Álvarez Bergström Åkesson Söderberg Østergaard Jørgensen Gonçalves"
)
GIVEN_LATIN1 = _names("Jürgen Jörg Hélène François René Zoë José Inés Mónica Björn Søren Ágata")
FAMILY_UTF8 = _names("Dvořák Novák Wiśniewski Kowalczyk Łukaszewicz Yılmaz Şahin Dąbrowski Čapek")
GIVEN_UTF8 = _names("Łukasz Jiří Małgorzata Şule Zdeněk Ewa Tomáš Ayşe")
JAPANESE = (
    "Yamada^Tarou=山田^太郎=やまだ^たろう",
    "Tanaka^Hanako=田中^花子=たなか^はなこ",
    "Suzuki^Ichiro=鈴木^一郎=すずき^いちろう",
)


def person(rng: random.Random) -> tuple[str, str | None]:
    """A patient name and the Specific Character Set its files carry."""
    roll = rng.random()
    if roll < 0.80:
        return f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}", None
    if roll < 0.90:
        return f"{rng.choice(FAMILY_LATIN1)}^{rng.choice(GIVEN_LATIN1)}", "ISO_IR 100"
    if roll < 0.97:
        return f"{rng.choice(FAMILY_UTF8)}^{rng.choice(GIVEN_UTF8 + GIVEN_LATIN1)}", "ISO_IR 192"
    return rng.choice(JAPANESE), "\\ISO 2022 IR 87"


def some_day(rng: random.Random, first: int = 2015, last: int = 2024) -> str:
    low, high = date(first, 1, 1).toordinal(), date(last, 12, 31).toordinal()
    return date.fromordinal(rng.randint(low, high)).strftime("%Y%m%d")


# -- the generated tree ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Tree:
    root: Path
    files: list[str]  # relative paths, sorted
    patients: int
    studies: int
    series: int
    bytes: int
    generated_s: float | None  # None: taken from the cache


def generated_tree(count: int) -> Tree:
    """``count`` realistic CT/MR files, generated once per count and kept in the temp dir."""
    cache = Path(tempfile.gettempdir()) / f"pacsync-bench-archive-{count}"
    marker = cache / "tree.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("version") == GENERATOR_VERSION:
            return Tree(
                cache / "tree",
                info["files"],
                info["patients"],
                info["studies"],
                info["series"],
                info["bytes"],
                None,
            )
    shutil.rmtree(cache, ignore_errors=True)
    sys.path.insert(0, str(ROOT))
    from tests.imaging_data import realistic_ct

    root = cache / "tree"
    rng = random.Random(20240105)
    files: list[str] = []
    patients = studies = n_series = size = 0
    start = time.perf_counter()
    while len(files) < count:
        patients += 1
        patient_id = f"PAT{patients:06d}"
        name, charset = person(rng)
        for study in range(rng.choice((1, 1, 2, 2, 3))):
            studies += 1
            modality = "CT" if rng.random() < 0.6 else "MR"
            study_uid = f"{UID_ROOT}.1.{studies}"
            study_date = some_day(rng)
            matrix = 512 if modality == "CT" else 256
            series_here = rng.randint(1, 3) if modality == "CT" else rng.randint(3, 6)
            for series in range(series_here):
                n_series += 1
                series_uid = f"{UID_ROOT}.2.{n_series}"
                folder = root / patient_id / f"ST{study + 1}" / f"SE{series + 1}"
                folder.mkdir(parents=True, exist_ok=True)
                images = rng.randint(10, 80) if modality == "CT" else rng.randint(8, 30)
                for number in range(1, images + 1):
                    if len(files) == count:
                        break
                    path = folder / f"IM{number:05d}.dcm"
                    realistic_ct(
                        path,
                        patient_id=patient_id,
                        patient_name=name,
                        study_uid=study_uid,
                        series_uid=series_uid,
                        sop_uid=f"{UID_ROOT}.3.{len(files) + 1}",
                        instance_number=number,
                        modality=modality,
                        charset=charset,
                        study_date=study_date,
                        rows=matrix,
                        columns=matrix,
                    )
                    size += path.stat().st_size
                    files.append(str(path.relative_to(root)))
    seconds = time.perf_counter() - start
    files.sort()
    info = {
        "version": GENERATOR_VERSION,
        "files": files,
        "patients": patients,
        "studies": studies,
        "series": n_series,
        "bytes": size,
    }
    marker.write_text(json.dumps(info))
    return Tree(root, files, patients, studies, n_series, size, seconds)


WARMED: list[tuple[str, float]] = []  # (what, seconds) of every warming read


def warm(tree: Tree, what: str, head: int | None = None, files: int | None = None) -> None:
    """Read every file (the first ``files``) in full, or its first ``head`` bytes, so that
    the measurement that follows runs on a warm cache.  Done again right before each
    measurement: this machine pages out file pages not touched for about a minute."""
    buffer = bytearray(min(head or 1 << 20, 1 << 20))
    start = time.perf_counter()
    for rel in tree.files[:files]:
        with open(os.path.join(tree.root, rel), "rb", buffering=0) as file:
            if head is not None:
                file.readinto(buffer)
                continue
            while file.readinto(buffer):
                pass
    WARMED.append((what, time.perf_counter() - start))


def warm_file(path: str, what: str) -> None:
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as file:
        while file.read(1 << 22):
            pass
    WARMED.append((what, time.perf_counter() - start))


# -- (a) the limit and (b) the naive baseline ------------------------------------------------------


def raw_header_read(tree: Tree) -> float:
    root = str(tree.root)
    start = time.perf_counter()
    for rel in tree.files:
        with open(os.path.join(root, rel), "rb") as file:
            if len(file.read(HEADER_BYTES)) != HEADER_BYTES:
                raise SystemExit(f"{rel}: shorter than {HEADER_BYTES} bytes")
    return len(tree.files) / (time.perf_counter() - start)


def pydicom_naive(tree: Tree) -> float:
    from pydicom import dcmread

    root = str(tree.root)
    start = time.perf_counter()
    for rel in tree.files:
        dcmread(os.path.join(root, rel), stop_before_pixels=True)
    return len(tree.files) / (time.perf_counter() - start)


# -- (c) pacsync indexing --------------------------------------------------------------------------


def settings_for(home: Path) -> Any:
    from pacsync.config import Settings

    return Settings(home=home)


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACSYNC_")}
    return env | {"PACSYNC_HOME": str(home), "PACSYNC_LOG_LEVEL": "WARNING"}


def cli(home: Path, *args: str) -> tuple[float, str]:
    """Run the pacsync CLI; wall seconds (process start included) and its output."""
    start = time.perf_counter()
    done = subprocess.run(
        [str(PACSYNC), *args], env=cli_env(home), capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"pacsync {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return seconds, done.stdout + done.stderr


def reported(output: str, what: str) -> int:
    found = re.search(rf"([\d,]+) {what}", output)
    if not found:
        raise SystemExit(f"no '{what}' count in the CLI output:\n{output}")
    return int(found.group(1).replace(",", ""))


def count_rows(store: Any, table: str, archive: str) -> int:
    from sqlalchemy import text

    with store.engine.connect() as conn:
        query = text(f"SELECT count(*) FROM {table} WHERE archive = :a")
        return int(conn.execute(query, {"a": archive}).scalar_one())


def index_in_process(tree: Tree, home: Path, workers: int = 0) -> tuple[float, Any, Any]:
    """A fresh store, ``archive add``, then the first (full) scan, timed (``workers``:
    the archive_workers setting, 0 = the default, one per core)."""
    from pacsync import bootstrap
    from pacsync.bootstrap import archives as wiring
    from pacsync.config import Settings

    settings = Settings(home=home, archive_workers=workers)
    store = bootstrap.store(settings)
    store.archives.add(ARCHIVE, "dicom", str(tree.root))
    start = time.perf_counter()
    result = wiring.scan(settings, store, ARCHIVE, full=True)
    seconds = time.perf_counter() - start
    c, n = result.counts, len(tree.files)
    if result.status != "online" or c.indexed != n or c.invalid or c.unreadable or c.conflicts:
        raise SystemExit(f"initial scan went wrong: {result.as_dict()}")
    if count_rows(store, "image_instances", ARCHIVE) != n:
        raise SystemExit("the index does not hold every generated file")
    return seconds, settings, store


def index_cli(tree: Tree, home: Path) -> float:
    cli(home, "archive", "add", ARCHIVE, "dicom", str(tree.root))
    seconds, output = cli(home, "archive", "scan", ARCHIVE)
    if reported(output, "indexed") != len(tree.files) or reported(output, "invalid") != 0:
        raise SystemExit(f"CLI scan did not index every file:\n{output}")
    return seconds


# -- (d) the rescan of an unchanged tree -----------------------------------------------------------


def link_farm(tree: Tree, target: Path, total: int) -> list[int]:
    """``total`` files under target/c0, c1, ...: hard links to the generated files (the
    first ones, in path order, for the last copy).  The files per copy."""
    copies: list[int] = []
    left = total
    while left > 0:
        copies.append(min(left, len(tree.files)))
        left -= copies[-1]
    made: set[str] = set()
    for k, n in enumerate(copies):
        for rel in tree.files[:n]:
            link = target / f"c{k}" / rel
            folder = str(link.parent)
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
            os.link(tree.root / rel, link)
    return copies


def copy_index_rows(db: str, copies: list[int]) -> None:
    """Index rows of the linked copies, inserted directly: copy k of a file is the file's
    row under ``c{k}/`` (a hard link: the same size, mtime and inode), with its UIDs
    suffixed ``.k`` and its patient ID ``-k`` so copies stay apart; counts recomputed."""
    con = sqlite3.connect(db)
    try:
        with con:
            for k, n in enumerate(copies):
                p = {
                    "src": ARCHIVE,
                    "dst": RESCAN_ARCHIVE,
                    "pfx": f"c{k}/",
                    "sfx": f".{k}",
                    "pid": f"-{k}",
                    "n": n,
                }
                con.execute(
                    """INSERT INTO archive_files (archive, path, size, mtime_ns, inode,
                         content_hash, state, reason, sop_instance_uid, indexed_at)
                       SELECT :dst, :pfx || path, size, mtime_ns, inode, content_hash, state,
                         reason, sop_instance_uid || :sfx, indexed_at
                       FROM archive_files WHERE archive = :src AND path IN
                         (SELECT path FROM archive_files WHERE archive = :src
                          ORDER BY path LIMIT :n)""",
                    p,
                )
                con.execute(
                    """INSERT INTO image_instances (archive, sop_instance_uid, file_id,
                         study_uid, series_uid, sop_class_uid, transfer_syntax_uid,
                         instance_number, number_of_frames, rows, columns, quarantined)
                       SELECT :dst, i.sop_instance_uid || :sfx, nf.id, i.study_uid || :sfx,
                         i.series_uid || :sfx, i.sop_class_uid, i.transfer_syntax_uid,
                         i.instance_number, i.number_of_frames, i.rows, i.columns,
                         i.quarantined
                       FROM image_instances i
                       JOIN archive_files f ON f.id = i.file_id
                       JOIN archive_files nf ON nf.archive = :dst AND nf.path = :pfx || f.path
                       WHERE i.archive = :src""",
                    p,
                )
                con.execute(
                    """INSERT INTO image_series (archive, series_uid, study_uid, modality,
                         series_number, series_description, body_part_examined, instance_count)
                       SELECT :dst, s.series_uid || :sfx, s.study_uid || :sfx, s.modality,
                         s.series_number, s.series_description, s.body_part_examined,
                         (SELECT count(*) FROM image_instances i WHERE i.archive = :dst
                          AND i.series_uid = s.series_uid || :sfx)
                       FROM image_series s WHERE s.archive = :src AND EXISTS
                         (SELECT 1 FROM image_instances i WHERE i.archive = :dst
                          AND i.series_uid = s.series_uid || :sfx)""",
                    p,
                )
                con.execute(
                    """INSERT INTO image_studies (archive, study_uid, issuer, patient_id,
                         patient_name, name_folded, patient_birth_date, patient_sex, study_date,
                         study_time, accession_number, study_description,
                         referring_physician_name, study_id, modalities, series_count,
                         instance_count, character_set, updated_at)
                       SELECT :dst, s.study_uid || :sfx, s.issuer, s.patient_id || :pid,
                         s.patient_name, s.name_folded, s.patient_birth_date, s.patient_sex,
                         s.study_date, s.study_time, s.accession_number, s.study_description,
                         s.referring_physician_name, s.study_id, s.modalities,
                         (SELECT count(*) FROM image_series x WHERE x.archive = :dst
                          AND x.study_uid = s.study_uid || :sfx),
                         (SELECT coalesce(sum(instance_count), 0) FROM image_series x
                          WHERE x.archive = :dst AND x.study_uid = s.study_uid || :sfx),
                         s.character_set, s.updated_at
                       FROM image_studies s WHERE s.archive = :src AND EXISTS
                         (SELECT 1 FROM image_series x WHERE x.archive = :dst
                          AND x.study_uid = s.study_uid || :sfx)""",
                    p,
                )
                con.execute(
                    """INSERT INTO image_patients (archive, issuer, patient_id, patient_name,
                         name_folded, patient_birth_date, patient_sex, study_count)
                       SELECT :dst, p.issuer, p.patient_id || :pid, p.patient_name,
                         p.name_folded, p.patient_birth_date, p.patient_sex,
                         (SELECT count(*) FROM image_studies s WHERE s.archive = :dst
                          AND s.issuer = p.issuer AND s.patient_id = p.patient_id || :pid)
                       FROM image_patients p WHERE p.archive = :src AND EXISTS
                         (SELECT 1 FROM image_studies s WHERE s.archive = :dst
                          AND s.issuer = p.issuer AND s.patient_id = p.patient_id || :pid)""",
                    p,
                )
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def rescan(
    tree: Tree, work: Path, home: Path, *, settings: Any, store: Any, total: int
) -> dict[str, Any]:
    from pacsync.bootstrap import archives as wiring

    target = work / "rescan-tree"
    start = time.perf_counter()
    copies = link_farm(tree, target, total)
    store.archives.add(RESCAN_ARCHIVE, "dicom", str(target))
    copy_index_rows(store.engine.url.database, copies)
    prepared = time.perf_counter() - start
    for table in ("archive_files", "image_instances"):
        if count_rows(store, table, RESCAN_ARCHIVE) != total:
            raise SystemExit(f"the rescan index does not hold {total:,} rows in {table}")
    runs = []
    for _ in range(3):  # the median of three: the machine is shared
        start = time.perf_counter()
        result = wiring.scan(settings, store, RESCAN_ARCHIVE, full=False)
        runs.append(time.perf_counter() - start)
        c = result.counts
        changed = c.new + c.changed + c.moved + c.deleted + c.indexed + c.hashed
        if result.status != "online" or c.seen != total or c.unchanged != total or changed:
            raise SystemExit(f"the rescan of an unchanged tree changed something: {c}")
    cli_seconds, output = cli(home, "archive", "scan", RESCAN_ARCHIVE)
    if reported(output, "unchanged") != total or reported(output, "indexed") != 0:
        raise SystemExit(f"the CLI rescan did not find {total:,} unchanged files:\n{output}")
    return {"runs": runs, "cli": cli_seconds, "copies": copies, "prepared": prepared}


# -- (e) search ------------------------------------------------------------------------------------

MODALITIES = ("CT", "MR", "CR", "US", "DX")
MODALITY_WEIGHTS = (30, 20, 25, 15, 10)
DESCRIPTIONS = {
    "CT": ("CT CHEST W CONTRAST", "CT HEAD WO", "CT ABD PELVIS", "CTA CHEST"),
    "MR": ("MR BRAIN W WO", "MR LUMBAR SPINE", "MR KNEE LEFT", "MR PROSTATE"),
    "CR": ("CHEST 2 VIEWS", "HAND LEFT", "PELVIS AP"),
    "US": ("US ABDOMEN", "US THYROID", "US OB 2ND TRIMESTER"),
    "DX": ("CHEST PA", "KNEE 3 VIEWS", "SPINE LUMBAR"),
}
BODY_PARTS = {"CT": "CHEST", "MR": "BRAIN", "CR": "CHEST", "US": "ABDOMEN", "DX": "KNEE"}
SOP_CLASS = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "US": "1.2.840.10008.5.1.4.1.1.6.1",
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",
}
EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
FAMILIES_ALL = FAMILY + FAMILY_LATIN1 + FAMILY_UTF8
PATIENT_COLUMNS = _names(
    "archive issuer patient_id patient_name name_folded patient_birth_date patient_sex study_count"
)
STUDY_COLUMNS = _names(
    "archive study_uid issuer patient_id patient_name name_folded patient_birth_date "
    "patient_sex study_date study_time accession_number study_description "
    "referring_physician_name study_id modalities series_count instance_count character_set "
    "updated_at"
)
SERIES_COLUMNS = _names(
    "archive series_uid study_uid modality series_number series_description "
    "body_part_examined instance_count"
)
INSTANCE_COLUMNS = _names(
    "archive sop_instance_uid file_id study_uid series_uid sop_class_uid transfer_syntax_uid "
    "instance_number number_of_frames rows columns quarantined"
)
FILE_COLUMNS = _names(
    "id archive path size mtime_ns inode content_hash state reason sop_instance_uid indexed_at"
)
NOW = "2025-01-02 03:04:05.000000"


@dataclasses.dataclass
class SearchRows:
    patients: list[tuple[Any, ...]]
    studies: list[dict[str, Any]]
    series: list[dict[str, Any]]


def search_rows(patients: int, instances: int) -> SearchRows:
    """``patients`` patients over three archives, 1-3 studies each (2 on average) with
    dates over ten years, 1-3 series per study, and ``instances`` instances spread
    log-normally over the series (at least one each); names incl. accented ones."""
    import numpy as np

    from pacsync.domain.imaging import fold

    rng = random.Random(7)
    rows = SearchRows([], [], [])
    for p in range(1, patients + 1):
        archive = SEARCH_ARCHIVES[p % len(SEARCH_ARCHIVES)]
        patient_id = f"{p * 7919 % 100_000_000:08d}"  # medical record numbers, not in order
        name, charset = person(rng)
        if charset != "\\ISO 2022 IR 87" and rng.random() < 0.5:  # any family name, any case
            name = f"{rng.choice(FAMILIES_ALL)}^{name.partition('^')[2]}"
        birth, sex = some_day(rng, 1930, 2020), rng.choice("MF")
        n_studies = rng.choices((1, 2, 3), weights=(3, 4, 3))[0]
        rows.patients.append((archive, "", patient_id, name, fold(name), birth, sex, n_studies))
        for _ in range(n_studies):
            number = len(rows.studies) + 1
            modality = rng.choices(MODALITIES, weights=MODALITY_WEIGHTS)[0]
            study = {
                "archive": archive, "study_uid": f"{UID_ROOT}.5.{number}", "issuer": "",
                "patient_id": patient_id, "patient_name": name, "name_folded": fold(name),
                "patient_birth_date": birth, "patient_sex": sex, "study_date": some_day(rng),
                "study_time": f"{rng.randint(70000, 195959):06d}",
                "accession_number": f"A{number:09d}",
                "study_description": rng.choice(DESCRIPTIONS[modality]),
                "referring_physician_name": f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}",
                "study_id": str(number % 100000), "series_count": rng.randint(1, 3),
                "instance_count": 0, "character_set": charset.lstrip("\\") if charset else None,
                "updated_at": NOW,
            }  # fmt: skip
            found = set()
            for s in range(study["series_count"]):
                kind = modality if rng.random() < 0.9 else rng.choice(MODALITIES)
                found.add(kind)
                rows.series.append({
                    "archive": archive, "series_uid": f"{UID_ROOT}.6.{len(rows.series) + 1}",
                    "study_uid": study["study_uid"], "modality": kind, "series_number": s + 1,
                    "series_description": f"{kind} SERIES {s + 1}",
                    "body_part_examined": BODY_PARTS[kind], "instance_count": 0,
                    "study": study,
                })  # fmt: skip
            study["modalities"] = "\\".join(sorted(found))
            rows.studies.append(study)
    if instances < len(rows.series):
        raise SystemExit(f"{instances:,} instances cannot fill {len(rows.series):,} series")
    weights = np.random.default_rng(7).lognormal(0.0, 1.2, len(rows.series))
    extra = np.random.default_rng(8).multinomial(
        instances - len(rows.series), weights / weights.sum()
    )
    for series, more in zip(rows.series, extra, strict=True):
        series["instance_count"] = 1 + int(more)
        series["study"]["instance_count"] += series["instance_count"]
    return rows


def instance_and_file_rows(rows: SearchRows) -> Iterator[tuple[tuple[Any, ...], ...]]:
    """(instance row, archive_files row) of every instance."""
    file_id = 0
    for series in rows.series:
        archive, kind = series["archive"], series["modality"]
        study_uid, series_uid = series["study_uid"], series["series_uid"]
        folder = f"{study_uid.rsplit('.', 1)[1]}/{series_uid.rsplit('.', 1)[1]}"
        for number in range(1, series["instance_count"] + 1):
            file_id += 1
            sop = f"{UID_ROOT}.7.{file_id}"
            yield (
                (archive, sop, file_id, study_uid, series_uid, SOP_CLASS[kind], EXPLICIT_LITTLE,
                 number, 1, 512, 512, 0),
                (file_id, archive, f"{folder}/{number}.dcm", 520_000 + file_id % 9000,
                 1_700_000_000_000_000_000 + file_id, file_id, None, "indexed", None, sop, NOW),
            )  # fmt: skip


def insert(con: sqlite3.Connection, table: Any, columns: tuple[str, ...], rows: Any) -> None:
    missing = [name for name in columns if name not in table.c]
    if missing or len(columns) != len(table.c):
        raise SystemExit(f"{table.name}: the columns changed ({missing}): update the benchmark")
    marks = ", ".join("?" * len(columns))
    con.executemany(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", rows)


def build_search_store(db: str, patients: int, instances: int) -> dict[str, int]:
    """The rows of :func:`search_rows` inserted directly (executemany) into the store."""
    from pacsync.db.archive_tables import (
        archive_files,
        image_instances,
        image_patients,
        image_series,
        image_studies,
    )

    rows = search_rows(patients, instances)
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA synchronous=OFF")  # building only; the queries use pacsync's own
        con.execute("PRAGMA cache_size=-400000")
        with con:
            insert(con, image_patients, PATIENT_COLUMNS, rows.patients)
            insert(con, image_studies, STUDY_COLUMNS,
                   [tuple(s[c] for c in STUDY_COLUMNS) for s in rows.studies])  # fmt: skip
            insert(con, image_series, SERIES_COLUMNS,
                   [tuple(s[c] for c in SERIES_COLUMNS) for s in rows.series])  # fmt: skip
            pairs = instance_and_file_rows(rows)
            while batch := list(itertools.islice(pairs, 50_000)):
                insert(con, image_instances, INSTANCE_COLUMNS, [pair[0] for pair in batch])
                insert(con, archive_files, FILE_COLUMNS, [pair[1] for pair in batch])
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tables = ("image_patients", "image_studies", "image_series", "image_instances")
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        con.close()
    if counts["image_instances"] != instances or counts["image_patients"] != patients:
        raise SystemExit(f"the search store holds {counts}")
    return counts


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def measure_search(home: Path, patients: int, instances: int) -> dict[str, Any]:
    from pacsync import bootstrap
    from pacsync.imaging.search import Query

    settings = settings_for(home)
    store = bootstrap.store(settings)
    for name in SEARCH_ARCHIVES:
        store.archives.add(name, "dicom", f"/mnt/{name}")
    db = store.engine.url.database
    store.engine.dispose()
    start = time.perf_counter()
    counts = build_search_store(db, patients, instances)
    built = time.perf_counter() - start
    warm_file(db, "the search store's database file")
    store = bootstrap.store(settings)
    search = store.archive_search
    with sqlite3.connect(db) as con:  # what the queries pick from
        ids = [r[0] for r in con.execute("SELECT patient_id FROM image_patients")]
    con.close()
    rng = random.Random(11)

    def by_id() -> dict[str, str]:
        return {"PatientID": rng.choice(ids)}

    def by_name() -> dict[str, str]:
        family = rng.choice(FAMILIES_ALL)
        prefix = family[:3]
        styled = rng.choice((prefix, prefix.lower(), prefix.capitalize()))
        return {"PatientName": f"{styled}*"}

    def by_month() -> dict[str, str]:
        year, month = rng.randint(2015, 2024), rng.randint(1, 12)
        last = (
            (date(year + month // 12, month % 12 + 1, 1).toordinal() - 1)
            - date(year, month, 1).toordinal()
            + 1
        )
        return {
            "StudyDate": f"{year}{month:02d}01-{year}{month:02d}{last:02d}",
            "ModalitiesInStudy": "CT",
        }

    kinds: dict[str, Callable[[], dict[str, str]]] = {
        "patient_id": by_id,
        "name_prefix": by_name,
        "date_modality": by_month,
    }
    rounds: dict[str, list[list[float]]] = {k: [[] for _ in range(SEARCH_ROUNDS)] for k in kinds}
    empty: dict[str, int] = dict.fromkeys(kinds, 0)
    names: list[str] = []
    for i in range(QUERY_WARMUP + SEARCH_ROUNDS * QUERIES):
        for kind, make in kinds.items():  # the kinds interleaved: noise hits them alike
            match = make()
            start = time.perf_counter()
            rows = search.search(Query.build("study", match))
            seconds = time.perf_counter() - start
            if i >= QUERY_WARMUP:
                rounds[kind][(i - QUERY_WARMUP) // QUERIES].append(seconds * 1000)
                empty[kind] += not rows
                if kind == "name_prefix":
                    names.append(match["PatientName"])
    if empty["patient_id"] or empty["name_prefix"] or empty["date_modality"] > QUERIES:
        raise SystemExit(f"searches that found nothing: {empty}")
    every_name_query = [t for one in rounds["name_prefix"] for t in one]
    plans = {kind: explain(store.engine, search, make()) for kind, make in kinds.items()}
    return {
        "rounds": rounds,
        "counts": counts,
        "built_s": built,
        "plans": plans,
        "empty": empty,
        "name_matches": name_matches(db, names, every_name_query),
    }


def name_matches(db: str, names: list[str], latencies: list[float]) -> dict[str, Any]:
    """How many studies each name-prefix query matched (what it had to sort), and how
    that goes with its latency."""
    from pacsync.domain import matching

    with sqlite3.connect(db) as con:
        counted = []
        for name in names:
            prefix = matching.pattern(name, folded=True).prefix
            query = "SELECT count(*) FROM image_studies WHERE name_folded >= ? AND name_folded < ?"
            upper = matching.prefix_upper(prefix)
            counted.append(con.execute(query, (prefix, upper)).fetchone()[0])
    con.close()
    slowest = sorted(zip(latencies, counted, strict=True))[-max(1, len(latencies) // 100) :]
    fit = statistics.linear_regression(counted, latencies)
    return {
        "median": statistics.median(counted),
        "max": max(counted),
        "mean_of_slowest_1_percent": round(statistics.mean(c for _, c in slowest)),
        # latency = fixed + per_match * matches, least squares over every query
        "fit_fixed_ms": round(fit.intercept, 3),
        "fit_ms_per_1000_matches": round(fit.slope * 1000, 3),
    }


def explain(engine: Any, search: Any, match: dict[str, str]) -> dict[str, Any]:
    """The SQL of one query and SQLite's plan for it."""
    from pacsync.imaging.search import Query

    statement = search._statement(Query.build("study", match))
    sql = str(statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    with sqlite3.connect(engine.url.database) as con:
        plan = [row[3] for row in con.execute("EXPLAIN QUERY PLAN " + sql)]
    con.close()
    return {"match": match, "sql": " ".join(sql.split()), "plan": plan}


# -- (f) thumbnails --------------------------------------------------------------------------------


def phantom(size: int = 512) -> Any:
    """A CT slice in stored values (HU + 1024): air, a body with lungs and a spine, noise."""
    import numpy as np

    y, x = np.mgrid[0:size, 0:size] / size
    hu = np.full((size, size), -1000.0)
    hu[((x - 0.5) / 0.42) ** 2 + ((y - 0.5) / 0.32) ** 2 <= 1] = 40
    for cx in (0.33, 0.67):
        hu[((x - cx) / 0.13) ** 2 + ((y - 0.47) / 0.2) ** 2 <= 1] = -850
    hu[((x - 0.5) / 0.05) ** 2 + ((y - 0.72) / 0.05) ** 2 <= 1] = 900
    noisy = hu + np.random.default_rng(3).normal(0, 12, hu.shape)
    return (noisy + 1024).clip(0, 4095).astype(np.int16)


def measure_thumbnails(work: Path, settings: Any, store: Any) -> dict[str, Any]:
    import openjpeg
    from pydicom import dcmread

    from pacsync.bootstrap.dicomweb import DicomWebService, Located
    from pacsync.connectors.dicom import jpeg2000
    from pacsync.connectors.dicom.header import read_header
    from pacsync.connectors.dicom.render import THUMBNAIL_SIZES

    sys.path.insert(0, str(ROOT))
    from tests.imaging_data import realistic_ct

    folder = work / "thumbs"
    folder.mkdir()
    ct = folder / "ct.dcm"
    realistic_ct(
        ct,
        patient_id="THUMB1",
        patient_name="Müller^Jürgen",
        charset="ISO_IR 100",
        study_uid=f"{UID_ROOT}.8.1",
        series_uid=f"{UID_ROOT}.8.2",
        sop_uid=f"{UID_ROOT}.8.3",
        instance_number=1,
    )
    pixels = phantom()
    ds = dcmread(ct)
    ds.PixelData = pixels.tobytes()
    ds.save_as(ct)
    header = read_header(ct)
    stream = openjpeg.encode(pixels, bits_stored=16, photometric_interpretation=2, use_mct=False)
    if not (openjpeg.decode(stream) == pixels).all():
        raise SystemExit("the JPEG 2000 codestream is not lossless")
    if not jpeg2000.image_description(stream).reversible:
        raise SystemExit("the JPEG 2000 codestream is not reversible")
    (folder / "ct.j2k").write_bytes(stream)
    service = DicomWebService(settings, store)
    size = THUMBNAIL_SIZES["medium"]
    results: dict[str, Any] = {"j2k_bytes": len(stream), "size": size}
    for kind, archive_kind, path in (("ct", "dicom", "ct.dcm"), ("j2k", "firebird-j2k", "ct.j2k")):
        file = folder / path
        located = Located(ARCHIVE, archive_kind, str(folder), path, file.stat().st_size, 0, header)
        times, cpu = [], []
        for i in range(RENDER_WARMUP + RENDERS):
            fresh = dataclasses.replace(located, mtime_ns=i + 1)  # a new cache key: a miss
            start, start_cpu = time.perf_counter(), time.process_time()
            body = service.rendered(fresh, size=size)
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
            if not body.startswith(b"\x89PNG\r\n\x1a\n"):
                raise SystemExit(f"{kind} thumbnail is not a PNG")
            if i >= RENDER_WARMUP:
                times.append(seconds * 1000)
                cpu.append(cpu_seconds * 1000)
        results[kind] = times
        results[f"{kind}_cpu"] = cpu
    stored = [p for p in (settings.home / "rendered").rglob("*") if p.is_file()]
    if len(stored) != 2 * (RENDER_WARMUP + RENDERS):
        raise SystemExit(f"{len(stored)} renderings cached: not every render was a cache miss")
    return results


# -- (g) the peer: Orthanc -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def orthanc_version() -> str | None:
    binary = shutil.which("Orthanc")
    if binary is None:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.split("\n", 1)[0].strip() or None


def measure_orthanc(tree: Tree, work: Path, files: int) -> dict[str, Any]:
    """Orthanc started on loopback with a temporary configuration, the first ``files``
    files uploaded, Orthanc stopped."""
    binary = shutil.which("Orthanc")
    if binary is None:
        raise SystemExit("Orthanc is not installed (apt-get install -y orthanc); or --no-orthanc")
    base = work / "orthanc"
    (base / "storage").mkdir(parents=True)
    port = free_port()
    config = {
        "Name": "pacsync-bench",
        "StorageDirectory": str(base / "storage"),
        "IndexDirectory": str(base / "storage"),
        "StorageCompression": False,
        "HttpPort": port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,
        "DicomPort": free_port(),
        "Plugins": [],
    }
    (base / "orthanc.json").write_text(json.dumps(config, indent=2))
    with (base / "orthanc.log").open("w") as log:
        proc = subprocess.Popen(
            [binary, str(base / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_orthanc(proc, port, base / "orthanc.log")
            chosen = tree.files[:files]
            warm(tree, "the files uploaded to Orthanc, in full", files=files)
            seconds = upload(tree.root, chosen, port)
            status, body = _orthanc(port, "GET", "/statistics")
            held = json.loads(body)["CountInstances"] if status == 200 else None
            if held != len(chosen):
                raise SystemExit(f"Orthanc holds {held} instances, not {len(chosen)}")
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {"files": len(chosen), "seconds": seconds, "config": config}


def wait_for_orthanc(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"Orthanc exited:\n{log.read_text()[-3000:]}")
        try:
            if _orthanc(port, "GET", "/system")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("Orthanc did not answer in 60 s")


def upload(root: Path, files: list[str], port: int) -> float:
    """POST /instances of every file by UPLOADERS keep-alive connections; the seconds."""
    todo = iter(files)
    lock = threading.Lock()
    failures: list[str] = []

    def uploader() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            while not failures:
                with lock:
                    rel = next(todo, None)
                if rel is None:
                    return
                body = (root / rel).read_bytes()
                conn.request("POST", "/instances", body, {"Content-Type": "application/dicom"})
                answer = conn.getresponse()
                text = answer.read()
                if answer.status != 200 or b'"Success"' not in text:
                    failures.append(f"{rel}: {answer.status} {text[:200]!r}")
        except OSError as error:
            failures.append(f"connection: {error}")
        finally:
            conn.close()

    threads = [threading.Thread(target=uploader) for _ in range(UPLOADERS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if failures:
        raise SystemExit(f"Orthanc refused {len(failures)} uploads, first: {failures[0]}")
    return seconds


def _orthanc(port: int, method: str, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


# -- the run ---------------------------------------------------------------------------------------


def machine(args: argparse.Namespace, orthanc: str | None) -> dict[str, Any]:
    import pydicom

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count() or 0,
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "pydicom": pydicom.__version__,
        "orthanc": orthanc,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "command": " ".join([".venv/bin/python", "benchmarks/archive.py", *sys.argv[1:]]),
    }


def rounded(value: float, digits: int = 2) -> float:
    return round(value, digits)


def main() -> None:  # noqa: PLR0915 - one run, phase after phase
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="under a minute (see above)")
    parser.add_argument("--files", type=int, help="generated files (20,000; quick 3,000)")
    parser.add_argument("--no-orthanc", action="store_true", help="skip the peer")
    args = parser.parse_args()
    files = args.files or (3_000 if args.quick else 20_000)
    rescan_files = 20_000 if args.quick else 100_000
    patients, instances = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    orthanc_files = min(files, 1_000 if args.quick else files)
    for key in [k for k in os.environ if k.startswith("PACSYNC_")]:
        del os.environ[key]  # the stores below are the ones a fresh user gets
    orthanc = None if args.no_orthanc else orthanc_version()
    if not args.no_orthanc and orthanc is None:
        raise SystemExit("Orthanc is not installed: apt-get install -y orthanc (or --no-orthanc)")
    info = machine(args, orthanc)
    started = time.perf_counter()

    def phase(name: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {name}", flush=True)

    phase(f"tree of {files:,} files")
    tree = generated_tree(files)
    warm(tree, "every file in full")
    phase("raw header read (the limit)")
    warm(tree, "headers before the raw read", head=HEADS)
    raw = raw_header_read(tree)
    phase("pydicom dcmread (the naive baseline)")
    warm(tree, "headers before pydicom", head=HEADS)
    naive = pydicom_naive(tree)
    figures: dict[str, Any] = {
        "cores": os.cpu_count() or 0,
        "files": files,
        "raw_header_read_files_per_s": round(raw),
        "pydicom_naive_files_per_s": round(naive),
    }
    details: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pacsync-bench-archive-") as tmp:
        work = Path(tmp)
        runs: dict[str, list[float]] = {"in_process": [], "cli": [], "1_process": []}
        settings = store = None
        for run in range(INDEX_RUNS):
            phase(f"pacsync initial indexing ({run + 1}/{INDEX_RUNS}): in process")
            warm(tree, "headers before indexing", head=HEADS)
            seconds, first_settings, first_store = index_in_process(tree, work / f"home-{run}")
            runs["in_process"].append(seconds)
            if store is None:  # the store the next phases use
                settings, store = first_settings, first_store
            else:
                first_store.engine.dispose()
            phase(f"pacsync initial indexing ({run + 1}/{INDEX_RUNS}): CLI")
            warm(tree, "headers before indexing (CLI)", head=HEADS)
            runs["cli"].append(index_cli(tree, work / f"home-cli-{run}"))
            phase(f"pacsync initial indexing ({run + 1}/{INDEX_RUNS}): archive_workers=1")
            warm(tree, "headers before indexing (1 process)", head=HEADS)
            seconds, _, other = index_in_process(tree, work / f"home-1-{run}", workers=1)
            other.engine.dispose()
            runs["1_process"].append(seconds)
        seconds = statistics.median(runs["in_process"])
        figures["index_files_per_s"] = round(files / seconds)
        figures["index_s"] = rounded(seconds)
        cli_seconds = statistics.median(runs["cli"])
        figures["index_cli_files_per_s"] = round(files / cli_seconds)
        figures["index_cli_s"] = rounded(cli_seconds)
        figures["index_1_process_files_per_s"] = round(files / statistics.median(runs["1_process"]))
        details["index_runs_s"] = {k: [rounded(x, 3) for x in v] for k, v in runs.items()}
        phase(f"rescan of {rescan_files:,} unchanged files")
        again = rescan(
            tree, work, work / "home-0", settings=settings, store=store, total=rescan_files
        )
        median = statistics.median(again["runs"])
        if rescan_files == 100_000:
            figures["rescan_100k_unchanged_s"] = rounded(median)
        figures["rescan_unchanged_s"] = rounded(median)
        figures["rescan_unchanged_files"] = rescan_files
        figures["rescan_unchanged_cli_s"] = rounded(again["cli"])
        details["rescan_runs_s"] = [rounded(s, 3) for s in again["runs"]]
        details["rescan_copies"] = again["copies"]
        phase("thumbnails (cache miss)")
        thumbs = measure_thumbnails(work, settings, store)
        ct_p50, j2k_p50 = statistics.median(thumbs["ct"]), statistics.median(thumbs["j2k"])
        figures["thumbnail_ct_p50_ms"] = rounded(ct_p50, 1)
        figures["thumbnail_j2k_p50_ms"] = rounded(j2k_p50, 1)
        figures["thumbnail_p50_ms"] = rounded(max(ct_p50, j2k_p50), 1)
        figures["thumbnail_ct_p99_ms"] = rounded(percentile(thumbs["ct"], 0.99), 1)
        figures["thumbnail_j2k_p99_ms"] = rounded(percentile(thumbs["j2k"], 0.99), 1)
        # the CPU time of this process for the same renders: wall time well above it means
        # the shared machine's other work got in the way
        figures["thumbnail_ct_cpu_p50_ms"] = rounded(statistics.median(thumbs["ct_cpu"]), 1)
        figures["thumbnail_j2k_cpu_p50_ms"] = rounded(statistics.median(thumbs["j2k_cpu"]), 1)
        store.engine.dispose()
        phase(f"search at {instances:,} instances / {patients:,} patients")
        found = measure_search(work / "home-search", patients, instances)
        worst = 0.0
        details["search_rounds_ms"] = {}
        for kind, per_round in found["rounds"].items():
            p50s = [percentile(values, 0.50) for values in per_round]
            p99s = [percentile(values, 0.99) for values in per_round]
            p50, p99 = statistics.median(p50s), statistics.median(p99s)
            figures[f"search_{kind}_p50_ms"] = rounded(p50, 3)
            figures[f"search_{kind}_p99_ms"] = rounded(p99, 3)
            details["search_rounds_ms"][kind] = {
                "p50": [rounded(x, 3) for x in p50s],
                "p99": [rounded(x, 3) for x in p99s],
            }
            worst = max(worst, p99)
        figures["search_p99_ms"] = rounded(worst, 3)
        details["search_store_rows"] = found["counts"]
        details["search_store_built_s"] = rounded(found["built_s"], 1)
        details["search_plans"] = found["plans"]
        details["search_empty_results"] = found["empty"]
        details["search_name_prefix_matching_studies"] = found["name_matches"]
        peer = None
        if not args.no_orthanc:
            phase(f"Orthanc ingest of {orthanc_files:,} files")
            peer = measure_orthanc(tree, work, orthanc_files)
            figures["orthanc_ingest_files_per_s"] = round(peer["files"] / peer["seconds"])
            figures["orthanc_files"] = peer["files"]
    index = figures["index_files_per_s"]
    ratios = {
        "index_vs_pydicom_naive": rounded(index / naive),
        "index_vs_raw_read": round(index / raw, 3),
    }
    if peer is not None:
        ratios["index_vs_orthanc"] = rounded(index / figures["orthanc_ingest_files_per_s"])
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    info["commands"] = {
        "index_in_process": "pacsync.bootstrap.archives.scan(settings, store, 'bench', full=True) "
        "after store.archives.add('bench', 'dicom', TREE) on a fresh PACSYNC_HOME; each way "
        f"of indexing {INDEX_RUNS} times, alternated, each on a fresh store; median",
        "index_1_process": "the same with Settings(archive_workers=1): no parse pool",
        "index_cli": f"PACSYNC_HOME=H pacsync archive add {ARCHIVE} dicom TREE (untimed); "
        f"PACSYNC_HOME=H pacsync archive scan {ARCHIVE} (timed, process start included)",
        "rescan": f"pacsync.bootstrap.archives.scan(settings, store, '{RESCAN_ARCHIVE}', "
        "full=False), median of 3; the CLI figure: pacsync archive scan "
        f"{RESCAN_ARCHIVE}",
        "search": "ArchiveSearch.search(Query.build('study', match)) (limit 100), matches: "
        "{'PatientID': <random existing id>}, {'PatientName': '<first 3 letters of a random "
        "family name, any case>*'}, {'StudyDate': '<one random month 2015-2024>', "
        "'ModalitiesInStudy': 'CT'}; the three kinds interleaved, "
        f"{QUERY_WARMUP} warm-up queries each, then {SEARCH_ROUNDS} rounds of {QUERIES}; "
        "p50/p99 = the median of the rounds' p50/p99",
        "thumbnail": "DicomWebService.rendered(located, size=128) (medium, image/png, the "
        "file's window), a new cache key each time (FileBlobStore under PACSYNC_HOME)",
        "orthanc": f"Orthanc <temp config>; POST /instances (application/dicom) by {UPLOADERS} "
        "threads with keep-alive connections, until every file is in",
    }
    info["parameters"] = {
        "files": files,
        "patients": tree.patients,
        "studies": tree.studies,
        "series": tree.series,
        "tree_mb": round(tree.bytes / 2**20),
        "tree_generated_s": None if tree.generated_s is None else rounded(tree.generated_s, 1),
        "tree_cache": str(tree.root),
        "warming_reads_s": [[what, rounded(seconds, 1)] for what, seconds in WARMED],
        "raw_read_bytes_per_file": HEADER_BYTES,
        "parse_workers": "one per core (archive_workers=0)",
        "rescan_files": rescan_files,
        "search_patients": patients,
        "search_instances": instances,
        "search_queries_per_kind_and_round": QUERIES,
        "search_rounds": SEARCH_ROUNDS,
        "index_runs_per_way": INDEX_RUNS,
        "search_warmup_queries_per_kind": QUERY_WARMUP,
        "thumbnail_renders_per_kind": RENDERS,
        "thumbnail_warmup_renders_per_kind": RENDER_WARMUP,
        "thumbnail_j2k_bytes": thumbs["j2k_bytes"],
        "orthanc_files": orthanc_files if peer else None,
        "orthanc_uploaders": UPLOADERS if peer else None,
        "orthanc_config": peer["config"] if peer else None,
    }
    targets = {}
    for key, (op, limit) in TARGETS.items():
        if key in figures:
            value = figures[key]
            targets[key] = {
                "target": f"{op} {limit}",
                "met": value >= limit if op == ">=" else value < limit,
            }
    result = {
        "benchmark": "archive",
        "quick": args.quick,
        "figures": figures,
        "ratios": ratios,
        "targets": targets,
        "machine": info,
        "details": details,
        "notes": "warm page cache (dropping it needs privileges this run does not assume): "
        "every file was read once in full before timing, and again right before each "
        "measurement what it reads (the first 64 KiB of every file before the raw read, "
        "pydicom and each indexing run; the search database file before the queries; the "
        "uploaded files before Orthanc), because this machine pages out file pages left "
        "untouched for about a minute (machine.parameters.warming_reads_s: a slow warming "
        "read found pages gone); so these are CPU-bound figures and a cold NAS read adds "
        "its own latency; the tree is realistic_ct files "
        "(tests/imaging_data.py: CT 512x512, MR 256x256, 16-bit, ~30 KB headers with ~180 "
        "private elements), patient/study/series folders; the rescan tree is hard links to "
        "the generated files (copies c0..cN) with their index rows inserted directly; search "
        "rows inserted directly (no ANALYZE, as a user's store has); Orthanc stores a copy "
        "of each file and indexes it in its SQLite database, pacsync indexes the files where "
        "they are"
        + (
            "; quick run: smaller tree, 20,000-file rescan, 100,000 instances / 10,000 "
            "patients for search, 1,000 files into Orthanc"
            if args.quick
            else ""
        ),
    }
    out = HERE / "results" / "archive.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    summary(figures, ratios, targets)
    print(f"written {out.relative_to(ROOT)}")


def summary(figures: dict[str, Any], ratios: dict[str, Any], targets: dict[str, Any]) -> None:
    print()
    print(f"{'figure':<36} {'value':>14}  target")
    print("-" * 64)
    for key, value in figures.items():
        mark = ""
        if key in targets:
            mark = f"{targets[key]['target']}  {'met' if targets[key]['met'] else 'MISSED'}"
        print(f"{key:<36} {value:>14,}  {mark}")
    for key, value in ratios.items():
        print(f"{'ratio ' + key:<36} {value:>14}")


if __name__ == "__main__":
    main()
