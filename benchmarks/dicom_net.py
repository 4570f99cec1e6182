"""DICOM networking: the pacsync SCP against the practical limit and its peer, in one run.

The same generated files (tests/imaging_data.py ``realistic_ct``: 512x512 16-bit CT
images with ~270-element headers, one study) are sent by DCMTK ``storescu`` (one
association per process, ``-R``: only the needed presentation context) to

  (a) the practical limit: DCMTK ``storescp --fork`` writing to a temporary folder;
  (b) the peer: Orthanc (the Debian package) with a temporary configuration and storage;
  (c) pacsync: ``pacsync dicom-listen`` on a fresh PACSYNC_HOME (the embedded SQLite
      store), the sender's AE added as a dicom connection first, with its default
      worker processes (one per core, sharing the port); after each run every
      instance must be indexed in the inbox archive;

with 1 and with 2 concurrent senders (the files split in halves), each ``--repeats``
times on a fresh receiver, alternated; the figures are the median.  Before each run
the page cache's dirty pages are written out (``sync``): storescp and Orthanc do not
fsync, and the kernel's write-back of their half gigabyte would otherwise fall into
the next receiver's run.  Every DCMTK tool and Orthanc run with ``TCP_NODELAY=1`` in
their environment.

  (d) C-FIND latency, STUDY level, Study Root: patient ID exact, patient name wild
      card, one month of study dates with a modality; the same data (a few hundred
      studies of several patients, and the ingest study) loaded into Orthanc and
      pacsync; one pynetdicom association per server, reused for every query, from
      this process, with TCP_NODELAY on its socket; the same queries against both,
      interleaved in chunks; every query must find as many studies on both;
  (e) C-MOVE of a 500-instance study from Orthanc into pacsync, triggered with
      ``pacsync dicom move orthanc --study UID --to PACSYNC`` (process start
      included), timed until the command returns (pacsync answers each C-STORE once
      the instance is written and indexed) and checked in the index; and the same
      move into DCMTK storescp (the limit);
  (f) where the SCP spends its time: the SCP run in this process (a thread), one
      storescu association; the inbox's phases timed by wrapping them, and the SCP
      threads' stacks sampled every millisecond.

Writes benchmarks/results/dicom_net.json.  ``--quick`` (under a minute once the files
are cached): 200 ingest files, a 250-instance move, 60 queries of each kind, 1 repeat.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

PACSYNC = Path(sys.executable).parent / "pacsync"
ORTHANC = Path("/usr/sbin/Orthanc")
LOOPBACK = "127.0.0.1"
GENERATOR_VERSION = 2  # raise when the generated files change: the cache is rebuilt
UID_ROOT = "1.2.826.0.1.3680043.8.498.5151"
INGEST_STUDY = f"{UID_ROOT}.1"
MOVE_STUDY = f"{UID_ROOT}.2"
PACSYNC_AE = "PACSYNC"
ORTHANC_AE = "ORTHANC"
SENDER_AE = "STORESCU"
FINDER_AE = "BENCHFIND"
LIMIT_AE = "STORESCP"
QUERY_PATIENTS = 150
STUDIES_PER_PATIENT = 2
INSTANCES_PER_QUERY_STUDY = 2
CHUNK = 50  # queries per server before switching to the other
WARMUP = 20
RETURN_KEYS = ("PatientName", "PatientID", "StudyDate", "StudyInstanceUID",
               "ModalitiesInStudy", "AccessionNumber", "StudyDescription")  # fmt: skip
TARGETS = {
    "scp_ingest_vs_orthanc": (">=", 1.2),
    "scp_ingest_2_vs_orthanc_2": (">=", 1.2),
    "cfind_p99_vs_orthanc": ("<=", 1.0),
}
FAMILY = (
    "SMITH JOHNSON WILLIAMS BROWN JONES GARCIA MILLER DAVIS MARTINEZ WILSON ANDERSON TAYLOR "
    "MOORE JACKSON MARTIN LEE WHITE HARRIS CLARK LEWIS ROBINSON WALKER YOUNG ALLEN KING "
    "WRIGHT SCOTT HILL GREEN ADAMS BAKER NELSON CARTER MITCHELL ROBERTS SCHMIDT WEBER MEYER"
)
GIVEN = ("JAMES", "MARY", "JOHN", "LINDA", "ROBERT", "SUSAN", "MICHAEL", "ANNA", "PETER", "MARIA")


def nodelay_env() -> dict[str, str]:
    return {**os.environ, "TCP_NODELAY": "1"}


# -- the files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Files:
    root: Path
    ingest: list[Path]  # one study, 512x512
    move: list[Path]  # another study, 512x512
    query: list[Path]  # many small studies of several patients, 64x64
    patients: list[tuple[str, str]]  # (ID, name)
    months: list[str]  # YYYYMM of the query studies


def generated(ingest: int, move: int) -> Files:
    """The files, generated once into the temporary folder and kept (keyed by size)."""
    from imaging_data import realistic_ct

    root = (
        Path(tempfile.gettempdir())
        / f"pacsync-bench-dicom-net-v{GENERATOR_VERSION}-{ingest}-{move}"
    )
    rng = random.Random(5151)
    patients = [(f"BN{i:05d}", f"{rng.choice(FAMILY.split())}^{rng.choice(GIVEN)}")
                for i in range(QUERY_PATIENTS)]  # fmt: skip
    plan: list[tuple[Path, dict[str, Any]]] = []
    for name, study, count in (("ingest", INGEST_STUDY, ingest), ("move", MOVE_STUDY, move)):
        for i in range(count):
            plan.append((root / name / f"{i:05d}.dcm", {
                "patient_id": "BN-BIG", "patient_name": "BENCH^BIG", "study_uid": study,
                "series_uid": f"{study}.{i // 500 + 1}",
                "sop_uid": f"{study}.{i // 500 + 1}.{i + 1}",
                "instance_number": i % 500 + 1, "study_date": "20240105",
            }))  # fmt: skip
    months: set[str] = set()
    for p, (pid, pname) in enumerate(patients):
        for s in range(STUDIES_PER_PATIENT):
            study = f"{UID_ROOT}.3.{p}.{s}"
            date = f"{rng.randint(2015, 2024)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
            months.add(date[:6])
            modality = rng.choice(("CT", "CT", "MR"))
            for i in range(INSTANCES_PER_QUERY_STUDY):
                plan.append((root / "query" / f"{p:04d}-{s}-{i}.dcm", {
                    "patient_id": pid, "patient_name": pname, "study_uid": study,
                    "series_uid": f"{study}.1", "sop_uid": f"{study}.1.{i + 1}",
                    "instance_number": i + 1, "study_date": date, "modality": modality,
                    "rows": 64, "columns": 64,
                }))  # fmt: skip
    if not (root / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        for part in ("ingest", "move", "query"):
            (root / part).mkdir(parents=True)
        started = time.perf_counter()
        for path, values in plan:
            realistic_ct(path, **values)
        (root / ".complete").write_text("")
        print(f"  generated {len(plan):,} files in {time.perf_counter() - started:.1f} s")
    files = sorted(root.glob("*/*.dcm"))
    return Files(
        root,
        [f for f in files if f.parent.name == "ingest"],
        [f for f in files if f.parent.name == "move"],
        [f for f in files if f.parent.name == "query"],
        patients,
        sorted(months),
    )


def warm(paths: list[Path]) -> None:
    """Read every file once: the measurements read them from the page cache."""
    for path in paths:
        path.read_bytes()


# -- processes -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_port(port: int, proc: subprocess.Popen[Any], what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise SystemExit(f"{what} exited with {proc.returncode}\n{tail}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port} within 60 s")


def send(files: list[Path], called: str, port: int, senders: int) -> float:
    """storescu: ``senders`` concurrent processes (one association each) sending the
    files split between them; the wall seconds until all have ended."""
    parts = [files[i::senders] for i in range(senders)]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                "storescu",
                "-R",
                "-aet",
                SENDER_AE,
                "-aec",
                called,
                LOOPBACK,
                str(port),
                *map(str, part),
            ],
            env=nodelay_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for part in parts
    ]
    outputs = [proc.communicate(600)[0] for proc in procs]
    seconds = time.perf_counter() - start
    for proc, output in zip(procs, outputs, strict=True):
        if proc.returncode != 0 or "E:" in output:
            raise SystemExit(f"storescu to {called} failed ({proc.returncode}):\n{output[-3000:]}")
    return seconds


@contextmanager
def storescp(folder: Path) -> Iterator[int]:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        ["storescp", "--fork", "-aet", LIMIT_AE, "+xa", "-od", str(folder), str(port)],
        env=nodelay_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(port, proc, "storescp")
        yield port
    finally:
        stop(proc)


@dataclass
class OrthancServer:
    http: int
    dicom: int
    folder: Path

    def get(self, path: str) -> Any:
        import httpx

        response = httpx.get(f"http://{LOOPBACK}:{self.http}{path}", timeout=60)
        response.raise_for_status()
        return response.json()

    def instances(self) -> int:
        return int(self.get("/statistics")["CountInstances"])


def orthanc_config(server: OrthancServer, pacsync_port: int, limit_port: int) -> dict[str, Any]:
    allowed = {"AllowEcho": True, "AllowFind": True, "AllowMove": True, "AllowGet": True,
               "AllowStore": True}  # fmt: skip
    return {
        "Name": "pacsync-bench",
        "StorageDirectory": str(server.folder / "storage"),
        "IndexDirectory": str(server.folder / "index"),
        "HttpPort": server.http,
        "DicomPort": server.dicom,
        "DicomAet": ORTHANC_AE,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True,
        "DicomCheckModalityHost": False,
        "DicomModalities": {
            "pacsync": {"AET": PACSYNC_AE, "Host": LOOPBACK, "Port": pacsync_port, **allowed},
            "storescp": {"AET": LIMIT_AE, "Host": LOOPBACK, "Port": limit_port, **allowed},
            "sender": {"AET": SENDER_AE, "Host": LOOPBACK, "Port": 104, **allowed},
            "finder": {"AET": FINDER_AE, "Host": LOOPBACK, "Port": 104, **allowed},
        },
        "Plugins": [],
        "LimitFindResults": 0,
        "LimitFindInstances": 0,
    }


@contextmanager
def orthanc(
    folder: Path, pacsync_port: int = 104, limit_port: int = 104
) -> Iterator[OrthancServer]:
    folder.mkdir(parents=True, exist_ok=True)
    server = OrthancServer(free_port(), free_port(), folder)
    config = folder / "orthanc.json"
    config.write_text(json.dumps(orthanc_config(server, pacsync_port, limit_port), indent=2))
    log = folder / "orthanc.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(ORTHANC), str(config)], env=nodelay_env(), stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
        try:
            wait_port(server.http, proc, "Orthanc", log)
            wait_port(server.dicom, proc, "Orthanc", log)
            server.get("/system")
            yield server
        finally:
            stop(proc)


def pacsync_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACSYNC_")}
    return env | {"PACSYNC_HOME": str(home), "PACSYNC_LOG_LEVEL": "WARNING"}


def pacsync(home: Path, *args: str) -> tuple[float, str]:
    """The pacsync CLI (run outside the repository: no .env is read); wall seconds."""
    start = time.perf_counter()
    done = subprocess.run([str(PACSYNC), *args], env=pacsync_env(home), cwd=home.parent,
                          capture_output=True, text=True, check=False)  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"pacsync {' '.join(args)} failed ({done.returncode}):\n"
                         f"{done.stdout}\n{done.stderr}")  # fmt: skip
    return seconds, done.stdout + done.stderr


@dataclass
class PacsyncScp:
    home: Path
    port: int

    def indexed(self, study_uid: str | None = None) -> int:
        """Instances indexed in the inbox archive (of one study), read from the store."""
        import sqlite3

        dbs = [p for p in self.home.rglob("*.db") if p.is_file()] + list(
            self.home.rglob("*.sqlite*")
        )
        for db in dbs:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                found = con.execute(
                    "SELECT name FROM sqlite_master WHERE name = 'image_instances'"
                ).fetchone()
                if found is None:
                    continue
                sql = "SELECT count(*) FROM image_instances WHERE archive = 'inbox'"
                if study_uid:
                    return int(con.execute(sql + " AND study_uid = ?", (study_uid,)).fetchone()[0])
                return int(con.execute(sql).fetchone()[0])
        raise SystemExit(f"no store with an image_instances table under {self.home}")


@contextmanager
def pacsync_scp(home: Path, nodes: dict[str, str], port: int | None = None) -> Iterator[PacsyncScp]:
    """``pacsync dicom-listen`` on a fresh home with these dicom connections."""
    home.mkdir(parents=True, exist_ok=True)
    for name, url in nodes.items():
        pacsync(home, "dicom", "node", "add", name, url)
    port = port or free_port()
    log = home.parent / f"{home.name}-listen.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(PACSYNC), "dicom-listen", "--ae", PACSYNC_AE, "--port", str(port)],
            env=pacsync_env(home), cwd=home.parent, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                wait_port(port, proc, "pacsync dicom-listen", log)
                echo = subprocess.run(
                    ["echoscu", "-aet", SENDER_AE, "-aec", PACSYNC_AE, LOOPBACK, str(port)],
                    env=nodelay_env(), capture_output=True, text=True, check=False,
                )  # fmt: skip
                if echo.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"pacsync dicom-listen does not answer C-ECHO:\n{echo.stderr}")
                time.sleep(0.2)
            yield PacsyncScp(home, port)
        finally:
            stop(proc)
    errors = [
        line for line in log.read_text().splitlines() if "ERROR" in line or "Traceback" in line
    ]
    if errors:
        raise SystemExit(f"pacsync dicom-listen logged errors ({log}):\n" + "\n".join(errors[:20]))


# -- (a)-(c) ingest --------------------------------------------------------------------------------


def ingest_storescp(work: Path, files: list[Path], senders: int) -> float:
    folder = work / "storescp"
    try:
        with storescp(folder) as port:
            seconds = send(files, LIMIT_AE, port, senders)
            deadline = time.monotonic() + 30
            while len(list(folder.iterdir())) < len(files) and time.monotonic() < deadline:
                time.sleep(0.05)  # a forked child may still be closing its last file
        written = len(list(folder.iterdir()))
        if written != len(files):
            raise SystemExit(f"storescp wrote {written} files of {len(files)}")
        return len(files) / seconds
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def ingest_orthanc(work: Path, files: list[Path], senders: int) -> float:
    folder = work / "orthanc-ingest"
    try:
        with orthanc(folder) as server:
            seconds = send(files, ORTHANC_AE, server.dicom, senders)
            held = server.instances()
        if held != len(files):
            raise SystemExit(f"Orthanc holds {held} instances of {len(files)}")
        return len(files) / seconds
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def ingest_pacsync(work: Path, files: list[Path], senders: int) -> float:
    home = work / "pacsync-ingest"
    try:
        with pacsync_scp(home, {"sender": f"dicom://{SENDER_AE}@{LOOPBACK}:104"}) as scp:
            seconds = send(files, PACSYNC_AE, scp.port, senders)
            indexed = scp.indexed(INGEST_STUDY)
        if indexed != len(files):
            raise SystemExit(f"pacsync indexed {indexed} instances of {len(files)}")
        return len(files) / seconds
    finally:
        shutil.rmtree(home, ignore_errors=True)
        (work / "pacsync-ingest-listen.log").unlink(missing_ok=True)


# -- (d) C-FIND ------------------------------------------------------------------------------------


def queries(files: Files, count: int) -> list[tuple[str, dict[str, str]]]:
    """``count`` queries of each kind, shuffled (a fixed seed: the same every run)."""
    rng = random.Random(7)
    found: list[tuple[str, dict[str, str]]] = []
    for _ in range(count):
        pid, name = rng.choice(files.patients)
        found.append(("patient_id", {"PatientID": pid}))
        found.append(("name_wildcard", {"PatientName": name.split("^")[0][:3] + "*"}))
        month = rng.choice(files.months)
        found.append(("date_modality", {"StudyDate": f"{month}01-{month}31",
                                        "ModalitiesInStudy": "CT"}))  # fmt: skip
    rng.shuffle(found)
    return found


class Finder:
    """One pynetdicom association (TCP_NODELAY on its socket), reused for every query."""

    def __init__(self, port: int, called: str) -> None:
        from pynetdicom import AE, evt
        from pynetdicom.sop_class import (  # type: ignore[attr-defined]
            StudyRootQueryRetrieveInformationModelFind,
        )

        self.model = StudyRootQueryRetrieveInformationModelFind
        ae = AE(ae_title=FINDER_AE)
        ae.add_requested_context(self.model)
        self.assoc = ae.associate(LOOPBACK, port, ae_title=called,
                                  evt_handlers=[(evt.EVT_CONN_OPEN, _nodelay)])  # fmt: skip
        if not self.assoc.is_established:
            raise SystemExit(f"C-FIND association to {called} on {port} was not established")
        self.called = called

    def find(self, match: dict[str, str]) -> tuple[float, int]:
        from pydicom.dataset import Dataset

        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        for keyword in RETURN_KEYS:
            setattr(ds, keyword, match.get(keyword, ""))
        start = time.perf_counter()
        matches = 0
        final = None
        for status, identifier in self.assoc.send_c_find(ds, self.model):
            if status is None:
                raise SystemExit(f"C-FIND to {self.called}: no answer (association lost)")
            if status.Status in (0xFF00, 0xFF01):
                matches += identifier is not None
            else:
                final = status.Status
        seconds = time.perf_counter() - start
        if final != 0x0000:
            raise SystemExit(f"C-FIND {match} to {self.called} ended with status {final}")
        return seconds, matches

    def close(self) -> None:
        self.assoc.release()


def _nodelay(event: Any) -> None:
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_cfind(
    orthanc_port: int, pacsync_port: int, asked: list[tuple[str, dict[str, str]]]
) -> dict[str, Any]:
    clients = {
        "orthanc": Finder(orthanc_port, ORTHANC_AE),
        "pacsync": Finder(pacsync_port, PACSYNC_AE),
    }
    try:
        for client in clients.values():
            for _, match in asked[:WARMUP]:
                client.find(match)
        latencies: dict[str, dict[str, list[float]]] = {
            s: collections.defaultdict(list) for s in clients
        }
        counts: dict[str, list[int]] = {s: [] for s in clients}
        for first in range(0, len(asked), CHUNK):
            chunk = asked[first : first + CHUNK]
            order = list(clients) if (first // CHUNK) % 2 == 0 else list(reversed(clients))
            for server in order:
                for kind, match in chunk:
                    seconds, matches = clients[server].find(match)
                    latencies[server][kind].append(seconds)
                    latencies[server]["all"].append(seconds)
                    counts[server].append(matches)
    finally:
        for client in clients.values():
            client.close()
    pairs = zip(asked, counts["orthanc"], counts["pacsync"], strict=True)
    differ = [(query[1], a, b) for query, a, b in pairs if a != b]
    if len(differ) > len(asked) // 100:
        raise SystemExit(f"{len(differ)} queries found a different number of studies "
                         f"(query, Orthanc, pacsync), first: {differ[:5]}")  # fmt: skip
    for query, a, b in differ:  # kept in the results; not more than 1 % tolerated
        print(f"  !! C-FIND {query}: Orthanc found {a} studies, pacsync {b}", flush=True)
    out: dict[str, Any] = {
        "cfind_matches_total": sum(counts["pacsync"]),
        "cfind_count_mismatches": len(differ),
        "cfind_mismatched": [{"query": q, "orthanc": a, "pacsync": b} for q, a, b in differ],
    }
    for server, by_kind in latencies.items():
        for kind, values in by_kind.items():
            suffix = "" if kind == "all" else f"_{kind}"
            out[f"cfind_{server}{suffix}_p50_ms"] = round(percentile(values, 0.50) * 1000, 2)
            out[f"cfind_{server}{suffix}_p99_ms"] = round(percentile(values, 0.99) * 1000, 2)
    return out


# -- (d)+(e) C-FIND and C-MOVE with both servers loaded -----------------------------------------


def measure_query_retrieve(work: Path, files: Files, per_kind: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    loaded = files.query + files.ingest
    pacsync_port, limit_port = free_port(), free_port()
    received = work / "move-storescp"
    with orthanc(work / "orthanc-qr", pacsync_port, limit_port) as peer:
        nodes = {
            "sender": f"dicom://{SENDER_AE}@{LOOPBACK}:104",
            "finder": f"dicom://{FINDER_AE}@{LOOPBACK}:104",
            "orthanc": f"dicom://{ORTHANC_AE}@{LOOPBACK}:{peer.dicom}",
        }
        with pacsync_scp(work / "pacsync-qr", nodes, pacsync_port) as scp:
            warm(loaded)
            send(loaded, ORTHANC_AE, peer.dicom, 2)
            send(loaded, PACSYNC_AE, scp.port, 2)
            if peer.instances() != len(loaded) or scp.indexed() != len(loaded):
                raise SystemExit(f"loaded {len(loaded)}: Orthanc holds {peer.instances()}, "
                                 f"pacsync indexed {scp.indexed()}")  # fmt: skip
            phase(f"C-FIND: {per_kind} queries of each kind against each, one association each")
            figures |= measure_cfind(peer.dicom, scp.port, queries(files, per_kind))
            figures["cfind_studies_loaded"] = QUERY_PATIENTS * STUDIES_PER_PATIENT + 1
            figures["cfind_queries_per_kind"] = per_kind

            phase(f"C-MOVE of a {len(files.move)}-instance study from Orthanc")
            warm(files.move)
            send(files.move, ORTHANC_AE, peer.dicom, 1)
            if peer.instances() != len(loaded) + len(files.move):
                raise SystemExit("Orthanc did not take the study to move")
            figures["cli_echo_orthanc_s"] = round(
                pacsync(scp.home, "dicom", "echo", "orthanc")[0], 3
            )
            figures |= cmove(scp, received, limit_port, len(files.move))
    return figures


def cmove(scp: PacsyncScp, received: Path, limit_port: int, count: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    received.mkdir(parents=True, exist_ok=True)
    limit = subprocess.Popen(
        ["storescp", "-aet", LIMIT_AE, "+xa", "-od", str(received), str(limit_port)],
        env=nodelay_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(limit_port, limit, "storescp")
        seconds, said = pacsync(scp.home, "dicom", "move", "orthanc", "--study", MOVE_STUDY,
                                "--to", LIMIT_AE)  # fmt: skip
        written = len(list(received.iterdir()))
        if written != count or f"moved {count} " not in said:
            raise SystemExit(f"C-MOVE to storescp: {written} written of {count}:\n{said}")
        out[f"cmove_{count}_storescp_s"] = round(seconds, 2)
    finally:
        stop(limit)
        shutil.rmtree(received, ignore_errors=True)
    seconds, said = pacsync(scp.home, "dicom", "move", "orthanc", "--study", MOVE_STUDY,
                            "--to", PACSYNC_AE)  # fmt: skip
    indexed = scp.indexed(MOVE_STUDY)
    if indexed != count or f"moved {count} " not in said:
        raise SystemExit(f"C-MOVE into pacsync: {indexed} indexed of {count}:\n{said}")
    out[f"cmove_{count}_s"] = round(seconds, 2)
    if count != 500:
        out["cmove_500_s"] = round(seconds * 500 / count, 2)
        out["cmove_500_s_note"] = f"scaled from {count} instances"
    return out


# -- (f) where the SCP spends its time -----------------------------------------------------------


class Sampler:
    """Every ``interval`` s, the innermost frame of each thread but this one and main."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.counts: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me, main = threading.get_ident(), threading.main_thread().ident
        while not self._stop.wait(self.interval):
            names = {t.ident: type(t).__name__ for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident in (me, main) or names.get(ident) not in (
                    "Association",
                    "DULServiceProvider",
                ):
                    continue
                code = frame.f_code
                where = (
                    f"{names[ident]}: {Path(code.co_filename).name}:{code.co_name}:{frame.f_lineno}"
                )
                self.counts[where] += 1
            self.samples += 1

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def profile_scp(work: Path, files: list[Path], durable: bool) -> dict[str, Any]:  # noqa: PLR0915
    """The SCP in this process (a thread), one storescu association; per-instance
    milliseconds of each phase of the C-STORE handler."""
    from pacsync import bootstrap
    from pacsync.bootstrap import dicom_scp
    from pacsync.config import Settings
    from pacsync.connectors.dicom import inbox as inbox_module

    home = work / f"profile-{'durable' if durable else 'nofsync'}"
    settings = Settings(home=home, database_url=None)
    store = bootstrap.store(settings)
    store.connections.put("sender", "dicom", f"dicom://{SENDER_AE}@{LOOPBACK}:104")
    scp = dicom_scp.scp(settings, store, ae=PACSYNC_AE, port=0)
    inbox = scp.inbox
    inbox.durable = durable
    spent: dict[str, float] = collections.defaultdict(float)

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start

        return wrapper

    original_sync = inbox_module._sync_folder
    inbox._write = timed("write_and_fsync", inbox._write)  # type: ignore[method-assign]
    inbox.read = timed("read_header", inbox.read)
    inbox._place = timed("place_total", inbox._place)  # type: ignore[method-assign]
    inbox.index.apply = timed("index_apply", inbox.index.apply)  # type: ignore[method-assign]
    inbox.receive = timed("inbox_receive_total", inbox.receive)  # type: ignore[method-assign]
    scp._store = timed("store_handler_total", scp._store)  # type: ignore[method-assign]
    inbox_module._sync_folder = timed("fsync_folder", original_sync)  # type: ignore[assignment]
    try:
        port = scp.start()
        with Sampler() as sampler:
            seconds = send(files, PACSYNC_AE, port, 1)
        scp.stop()
    finally:
        inbox_module._sync_folder = original_sync  # type: ignore[assignment]
    from sqlalchemy import text

    with store.engine.connect() as conn:
        indexed = conn.execute(text("SELECT count(*) FROM image_instances WHERE archive = 'inbox'"))
        if int(indexed.scalar_one()) != len(files):
            raise SystemExit("the profiled SCP did not index every instance")
    store.engine.dispose()
    shutil.rmtree(home, ignore_errors=True)
    n = len(files)
    per = {k: round(v / n * 1000, 3) for k, v in spent.items()}
    wall = seconds / n * 1000
    per["wall_per_instance"] = round(wall, 3)
    per["outside_store_handler"] = round(wall - per["store_handler_total"], 3)
    per["handler_not_in_inbox"] = round(per["store_handler_total"] - per["inbox_receive_total"], 3)
    place_parts = per["index_apply"] + per.get("fsync_folder", 0.0)
    per["place_other"] = round(per["place_total"] - place_parts, 3)  # rename, stat, hash, lock
    top = [
        {"where": where, "share": round(count / max(1, sampler.samples), 3)}
        for where, count in sampler.counts.most_common(12)
    ]
    return {"instances_per_s": round(n / seconds), "ms_per_instance": per, "sampled_frames": top,
            "samples": sampler.samples}  # fmt: skip


# -- the run ---------------------------------------------------------------------------------------

STARTED = time.perf_counter()


def phase(name: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.1f} s] {name}", flush=True)


def default_processes() -> int:
    from pacsync.bootstrap.dicom_listen import default_processes as processes

    return processes()


def tool_versions() -> dict[str, str]:
    versions = {}
    for tool, args in (("storescu", ["--version"]), ("Orthanc", ["--version"])):
        binary = shutil.which(tool) or (str(ORTHANC) if tool == "Orthanc" else None)
        if binary is None:
            raise SystemExit(f"{tool} is not installed (apt-get install dcmtk orthanc)")
        out = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
        versions[tool] = (out.stdout or out.stderr).strip().splitlines()[0]
    return versions


def machine(args: argparse.Namespace) -> dict[str, Any]:
    import pydicom
    import pynetdicom

    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cores": os.cpu_count() or 0,
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pydicom": pydicom.__version__,
        "pynetdicom": pynetdicom.__version__,
        **tool_versions(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "command": " ".join([".venv/bin/python", "benchmarks/dicom_net.py", *sys.argv[1:]]),
    }


def measure_ingest(
    work: Path, files: list[Path], repeats: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each receiver with 1 and 2 senders, ``repeats`` times, alternated; the median."""
    runs: dict[str, list[float]] = collections.defaultdict(list)
    ways = {"storescp": ingest_storescp, "orthanc": ingest_orthanc, "scp": ingest_pacsync}
    for r in range(repeats):
        for name, way in ways.items():
            for senders in (1, 2):
                key = f"{name}_ingest_per_s" if senders == 1 else f"{name}_ingest_2_per_s"
                phase(
                    f"ingest {len(files):,} files: {name}, {senders} sender(s), {r + 1}/{repeats}"
                )
                warm(files)
                os.sync()  # the previous run's unsynced files are not written back in this one
                runs[key].append(way(work, files, senders))
    figures = {key: round(statistics.median(values)) for key, values in runs.items()}
    return figures, {key: [round(v) for v in values] for key, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    parser.add_argument("--repeats", type=int, help="ingest runs per receiver (3; --quick 1)")
    args = parser.parse_args()
    count, move = (200, 250) if args.quick else (1000, 500)
    per_kind = 60 if args.quick else 200
    repeats = args.repeats or (1 if args.quick else 3)
    info = machine(args)
    phase("files")
    files = generated(count, move)
    figures: dict[str, Any] = {"cores": info["cores"], "files": count, "move_instances": move}
    with tempfile.TemporaryDirectory(prefix="pacsync-bench-dicom-net-") as tmp:
        work = Path(tmp)
        ingest, runs = measure_ingest(work, files.ingest, repeats)
        figures |= ingest
        figures |= measure_query_retrieve(work, files, per_kind)
        mismatched = figures.pop("cfind_mismatched")
        phase("profile: the SCP in this process, one association (fsync on, then off)")
        warm(files.ingest)
        profile = profile_scp(work, files.ingest, durable=True)
        warm(files.ingest)
        profile_nofsync = profile_scp(work, files.ingest, durable=False)
    figures["scp_in_process_per_s"] = profile["instances_per_s"]
    figures["scp_in_process_no_fsync_per_s"] = profile_nofsync["instances_per_s"]
    ratios = {
        "scp_ingest_vs_orthanc": round(
            figures["scp_ingest_per_s"] / figures["orthanc_ingest_per_s"], 2
        ),
        "scp_ingest_2_vs_orthanc_2": round(
            figures["scp_ingest_2_per_s"] / figures["orthanc_ingest_2_per_s"], 2
        ),
        "scp_ingest_vs_storescp": round(
            figures["scp_ingest_per_s"] / figures["storescp_ingest_per_s"], 3
        ),
        "scp_ingest_2_vs_storescp_2": round(
            figures["scp_ingest_2_per_s"] / figures["storescp_ingest_2_per_s"], 3
        ),
        "orthanc_ingest_vs_storescp": round(
            figures["orthanc_ingest_per_s"] / figures["storescp_ingest_per_s"], 3
        ),
        "cfind_p50_vs_orthanc": round(
            figures["cfind_pacsync_p50_ms"] / figures["cfind_orthanc_p50_ms"], 2
        ),
        "cfind_p99_vs_orthanc": round(
            figures["cfind_pacsync_p99_ms"] / figures["cfind_orthanc_p99_ms"], 2
        ),
        f"cmove_{move}_vs_storescp": round(
            figures[f"cmove_{move}_s"] / figures[f"cmove_{move}_storescp_s"], 2
        ),
    }
    targets = {}
    for key, (op, bound) in TARGETS.items():
        value = ratios[key]
        targets[key] = {"target": f"{op} {bound}", "value": value,
                        "met": value >= bound if op == ">=" else value <= bound}  # fmt: skip
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    info["seconds"] = round(time.perf_counter() - STARTED)
    result = {
        "benchmark": "dicom_net",
        "quick": args.quick,
        "figures": figures,
        "ratios": ratios,
        "targets": targets,
        "runs": runs,
        "cfind_mismatched": mismatched,
        "scp_profile": {"fsync": profile, "no_fsync": profile_nofsync},
        "machine": info,
        "parameters": {
            "repeats": repeats,
            "files": f"{count} realistic 512x512 CT files, one study ({count * 0.53:.0f} MB)",
            "move": f"{move} realistic 512x512 CT files, another study",
            "cfind_data": f"{QUERY_PATIENTS * STUDIES_PER_PATIENT} studies of {QUERY_PATIENTS} "
            f"patients ({INSTANCES_PER_QUERY_STUDY} 64x64 instances each) and the ingest study",
            "cfind_queries_per_kind": per_kind,
            "cfind_return_keys": list(RETURN_KEYS),
        },
        "commands": {
            "sender": "TCP_NODELAY=1 storescu -R -aet STORESCU -aec AE 127.0.0.1 PORT FILE... "
            "(2 senders: 2 processes, every other file each)",
            "storescp": f"TCP_NODELAY=1 storescp --fork -aet {LIMIT_AE} +xa -od DIR PORT",
            "orthanc": "TCP_NODELAY=1 Orthanc <temp config: storage and SQLite index in a temp "
            "dir, no plugins>; a fresh one per run",
            "pacsync": "PACSYNC_HOME=<fresh> pacsync dicom node add sender "
            "dicom://STORESCU@127.0.0.1:104; pacsync dicom-listen --ae PACSYNC --port PORT "
            f"(default --processes: {default_processes()}, one per core); indexed instances "
            "counted in the store after each run",
            "cfind": "pynetdicom 3 in the benchmark process, one association per server reused for "
            "every query, TCP_NODELAY on its socket; Study Root, STUDY level; 20 warm-up "
            "queries each; queries interleaved in chunks of 50 between the servers",
            "cmove": "pacsync dicom move orthanc --study UID --to PACSYNC (and --to STORESCP, "
            "a plain DCMTK storescp); wall time of the command, process start included "
            "(cli_echo_orthanc_s: the same CLI start-up and one C-ECHO)",
            "profile": "the SCP in this process: pacsync.bootstrap.dicom_scp.scp(...).start(), "
            "one storescu association; Inbox phases wrapped with timers; Association and "
            "DUL threads' innermost frames sampled every 1 ms",
        },
        "notes": "storescp writes without fsync; Orthanc 1.10 writes its storage files "
        "without fsync too; pacsync fsyncs each file and its folder and commits the index "
        "per instance before answering success.",
    }
    out = HERE / "results" / "dicom_net.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    summary(figures, ratios, targets, profile, profile_nofsync)
    print(f"wrote {out.relative_to(ROOT)} in {info['seconds']} s")


def summary(figures: dict[str, Any], ratios: dict[str, Any], targets: dict[str, Any],
            profile: dict[str, Any], nofsync: dict[str, Any]) -> None:  # fmt: skip
    print()
    print(f"{'figure / ratio':44} {'value':>10}  target")
    for key, value in [*figures.items(), *ratios.items()]:
        mark = ""
        if key in targets:
            mark = f"{targets[key]['target']}  {'met' if targets[key]['met'] else 'MISSED'}"
        print(f"{key:44} {value!s:>10}  {mark}")
    print("\nSCP ms per instance (in process, one association):  fsync / no fsync")
    for key, value in profile["ms_per_instance"].items():
        print(f"  {key:28} {value:8.3f} {nofsync['ms_per_instance'].get(key, 0.0):8.3f}")
    print("  sampled (fsync run):")
    for row in profile["sampled_frames"][:8]:
        print(f"    {row['share']:6.3f}  {row['where']}")


if __name__ == "__main__":
    main()
