"""SQL sync throughput: pacsync against the practical limit, side by side, in one run.

A legacy table of N rows x 11 columns (default 1,000,000) in PostgreSQL on
loopback is moved into another PostgreSQL database by:

  (a) raw psycopg: a server-side cursor read + COPY into the target (the limit);
  (b) pacsync full sync with a property mapping and validation on (peak RSS of all its
      processes): the default (the source maps and checks what its SQL computes exactly,
      the rows go COPY to COPY), and 2 processes by key range (parallel: 2, every row
      mapped in Python);
  (c) pacsync incremental after 1% of rows changed, strategies cursor and hash_diff;
  (d) the peers on the same rows: pandas read_sql + to_sql, and dlt's sql_table source
      into its postgres destination (default sqlalchemy backend, and pyarrow).

Peers need the bench dependency group: ``uv sync --group bench``.
Writes benchmarks/results/sql_sync.json.  ``--quick`` uses 100,000 rows.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import psycopg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PACSYNC = Path(sys.executable).parent / "pacsync"
ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
SOURCE_DB, TARGET_DB, RAW_DB = "pacsync_bench_legacy", "pacsync_bench_target", "pacsync_bench_raw"
PEER_DB = "pacsync_bench_peer"

PIPELINE = """
version: 1
name: bench-parcels
connections:
  legacy: {url: "postgresql+psycopg://postgres@127.0.0.1:5432/%(source)s"}
  warehouse: {url: "postgresql+psycopg://postgres@127.0.0.1:5432/%(target)s"}
source: {connection: legacy}
destination: {connection: warehouse, delete_mode: soft}
batch_size: 20000
entities:
  parcels:
    source: {table: parcel, key: [parcel_id]}
    target: {table: parcels}
    strategy: %(strategy)s
    parallel: %(parallel)s
    cursor: {column: last_modified, overlap: 60}
    fields:
      parcel_id: {from: parcel_id, type: bigint}
      parcel_number: {from: parcel_number, transforms: [trim, upper], length: 20}
      address: {from: situs_address, transforms: [trim], length: 100}
      city: {from: city, transforms: [trim, title], length: 50}
      state: {from: state, transforms: [upper], length: 2}
      zip_code: {from: zip_code, transforms: [zip5], length: 5}
      acreage: {from: acreage, type: decimal, precision: 10, scale: 4}
      year_built: {from: year_built, type: integer}
      assessed_value: {from: assessed_value, type: decimal, precision: 12, scale: 2}
      property_class: {from: property_class, length: 3}
      last_modified: {from: last_modified, type: datetime}
    validate:
      - {field: parcel_number, rule: required}
      - {field: year_built, rule: range, min: 1800, max: 2030}
      - {field: state, rule: enum, values: [WA, OR, ID]}
"""

CREATE = """
CREATE TABLE parcel (
  parcel_id bigint PRIMARY KEY, parcel_number char(20) NOT NULL, situs_address varchar(100),
  city varchar(50), state char(2), zip_code varchar(10), acreage numeric(10,4),
  year_built integer, assessed_value numeric(12,2), property_class varchar(3),
  last_modified timestamp NOT NULL);
INSERT INTO parcel
SELECT g, lpad(g::text, 12, '0'), g || ' MAIN ST',
       (ARRAY['Kennewick','richland ','PASCO'])[1 + g %% 3],
       'WA', (99300 + g %% 90)::text, (g %% 1000) / 100.0, 1900 + g %% 120, g * 3.5,
       'R' || (g %% 9), timestamp '2024-01-01' + (g || ' seconds')::interval
FROM generate_series(1, %(rows)s) AS g;
CREATE INDEX parcel_last_modified ON parcel (last_modified);
ANALYZE parcel;
"""


def recreate(name: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def dsn(name: str) -> str:
    return f"host=127.0.0.1 port=5432 user=postgres dbname={name}"


def raw_copy(rows: int) -> float:
    """The limit: stream the source and COPY into an equivalent target table."""
    recreate(RAW_DB)
    with psycopg.connect(dsn(RAW_DB)) as target:
        target.execute("""CREATE TABLE parcels (parcel_id bigint PRIMARY KEY,
            parcel_number varchar(20), address varchar(100), city varchar(50), state varchar(2),
            zip_code varchar(5), acreage numeric(10,4), year_built integer,
            assessed_value numeric(12,2), property_class varchar(3), last_modified timestamp)""")
        target.commit()
    start = time.perf_counter()
    with psycopg.connect(dsn(SOURCE_DB)) as src, psycopg.connect(dsn(RAW_DB)) as target:
        with src.cursor(name="read") as read, target.cursor() as write:
            read.itersize = 20_000
            read.execute("SELECT * FROM parcel ORDER BY parcel_id")
            with write.copy("COPY parcels FROM STDIN") as copy:
                while batch := read.fetchmany(20_000):
                    for row in batch:
                        copy.write_row(row)
        target.commit()
    seconds = time.perf_counter() - start
    return rows / seconds


def settle(name: str) -> None:
    """Steady state before the next measurement: statistics fresh, dirty pages written."""
    with psycopg.connect(dsn(name), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


def pandas_peer(rows: int) -> float:
    import pandas as pd
    from sqlalchemy import create_engine

    recreate(PEER_DB)
    source = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{SOURCE_DB}")
    target = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{PEER_DB}")
    start = time.perf_counter()
    with source.connect() as conn:
        for frame in pd.read_sql("SELECT * FROM parcel", conn, chunksize=50_000):
            frame.to_sql("parcels", target, if_exists="append", index=False, chunksize=10_000)
    seconds = time.perf_counter() - start
    source.dispose()
    target.dispose()
    return rows / seconds


def dlt_peer(rows: int, backend: str, workdir: Path) -> float:
    import dlt
    from dlt.sources.sql_database import sql_table

    recreate(PEER_DB)
    os.environ["DLT_DATA_DIR"] = str(workdir / "dlt")
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{backend}",
        pipelines_dir=str(workdir / "dlt" / "pipelines"),
        destination=dlt.destinations.postgres(
            f"postgresql://postgres:trust@127.0.0.1:5432/{PEER_DB}"  # trust auth: any password
        ),
        dataset_name="legacy",
    )
    table = sql_table(
        credentials=f"postgresql+psycopg://postgres@127.0.0.1:5432/{SOURCE_DB}",
        table="parcel",
        backend=backend,
        chunk_size=50_000,
    )
    start = time.perf_counter()
    pipeline.run(table, write_disposition="replace")
    return rows / (time.perf_counter() - start)


def pacsync(pipeline: Path, home: Path, *args: str) -> tuple[float, float, float]:
    """Run the pacsync CLI; wall seconds, peak RSS (MB) of the process, and the job's own
    seconds as it reports them (the run without the process start-up)."""
    env = {**os.environ, "PACSYNC_HOME": str(home)}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(PACSYNC), "run", str(pipeline), "--quiet", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watcher = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:  # the CLI and its key-range workers together
            family = [watcher, *watcher.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in family if p.is_running()))
        except psutil.NoSuchProcess:
            continue
        time.sleep(0.05)
    output = proc.communicate()[0]
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"pacsync failed:\n{output}")
    reported = re.search(r"succeeded in ([0-9.]+)s", output)
    job_seconds = float(reported.group(1)) if reported else seconds
    return seconds, peak / 2**20, job_seconds


def initialise(home: Path) -> None:
    """``pacsync init``, untimed: the store is created once, at installation (the README's
    first step), not by every sync."""
    env = {**os.environ, "PACSYNC_HOME": str(home)}
    subprocess.run([str(PACSYNC), "init"], env=env, check=True, capture_output=True)


def change_one_percent(rows: int) -> None:
    with psycopg.connect(dsn(SOURCE_DB)) as conn:
        conn.execute(
            "UPDATE parcel SET assessed_value = assessed_value + 1, last_modified = now() "
            "WHERE parcel_id %% 100 = 7 AND parcel_id <= %s",
            (rows,),
        )


def measure_pacsync(rows: int, workdir: Path) -> dict[str, float]:
    """Full sync (cursor pipeline, fresh target) and both incremental strategies after 1%."""
    figures: dict[str, float] = {}
    # the cursor pipeline loads with 2 processes by key range, the hash_diff one with 1 (default)
    for strategy, parallel in (("cursor", 2), ("hash_diff", 1)):
        recreate(TARGET_DB)
        home = workdir / strategy
        pipeline = workdir / f"{strategy}.yaml"
        pipeline.write_text(
            PIPELINE
            % {"source": SOURCE_DB, "target": TARGET_DB, "strategy": strategy, "parallel": parallel}
        )
        settle(TARGET_DB)
        initialise(home)
        seconds, rss, job_seconds = pacsync(pipeline, home, "--full")
        if parallel == 1:  # the default configuration
            figures["full_sync_rows_per_s"] = round(rows / seconds)
            figures["full_sync_s"] = round(seconds, 2)
            figures["full_sync_job_s"] = round(job_seconds, 2)
            figures["full_sync_job_rows_per_s"] = round(rows / job_seconds)
            figures["full_sync_peak_rss_mb"] = round(rss, 1)
        else:
            figures["full_sync_2_processes_rows_per_s"] = round(rows / seconds)
            figures["full_sync_2_processes_peak_rss_mb"] = round(rss, 1)
        change_one_percent(rows)
        settle(TARGET_DB)
        settle(SOURCE_DB)
        seconds, _, _ = pacsync(pipeline, home, "--incremental")
        if strategy == "cursor":
            figures["cursor_10k_changes_s"] = round(seconds, 2)
        else:
            figures["hash_diff_s"] = round(seconds, 2)
            figures["hash_diff_rows_per_s"] = round(rows / seconds)
        # the reverse change so the next strategy sees the same 1%
        with psycopg.connect(dsn(SOURCE_DB)) as conn:
            conn.execute(
                "UPDATE parcel SET assessed_value = assessed_value - 1 WHERE parcel_id % 100 = 7"
            )
    return figures


def measure_peers(rows: int, workdir: Path) -> dict[str, float]:
    peers: dict[str, float] = {}
    try:
        peers["pandas_to_sql_rows_per_s"] = round(pandas_peer(rows))
        for backend in ("sqlalchemy", "pyarrow", "connectorx"):
            peers[f"dlt_{backend}_rows_per_s"] = round(dlt_peer(rows, backend, workdir))
    except ImportError as exc:
        print(f"peers skipped: {exc} (uv sync --group bench)")
    return peers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 rows (under a minute)")
    parser.add_argument("--rows", type=int)
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    # bytecode as an install ships it: start-up is part of every incremental figure
    compileall.compile_dir(ROOT / "src", quiet=1, workers=0)

    recreate(SOURCE_DB)
    with psycopg.connect(dsn(SOURCE_DB)) as conn:
        conn.execute(CREATE % {"rows": rows})
    settle(SOURCE_DB)
    copy_rps = raw_copy(rows)
    figures: dict[str, float] = {
        "rows": rows,
        "cores": os.cpu_count() or 0,
        "raw_copy_rows_per_s": round(copy_rps),
    }
    with tempfile.TemporaryDirectory() as tmp:
        figures |= measure_pacsync(rows, Path(tmp))
        peers = measure_peers(rows, Path(tmp))
    figures |= peers
    full = figures["full_sync_rows_per_s"]
    ratios = {
        "full_sync_vs_copy": round(full / copy_rps, 3),
        "full_sync_job_vs_copy": round(figures["full_sync_job_rows_per_s"] / copy_rps, 3),
        "full_sync_2_processes_vs_copy": round(
            figures["full_sync_2_processes_rows_per_s"] / copy_rps, 3
        ),
    }
    for name, rps in peers.items():
        ratios["full_sync_vs_" + name.removesuffix("_rows_per_s")] = round(full / rps, 2)
    result = {
        "benchmark": "sql_sync",
        "quick": args.quick,
        "figures": figures,
        "ratios": ratios,
        "notes": "wall-clock seconds of the pacsync CLI process, start-up included (the "
        "full_sync_job_* figures: the job's own seconds as it reports them, without the "
        "process start-up; the pacsync home initialised beforehand, untimed); PostgreSQL "
        "15 on loopback for source and target; the default "
        "full sync pushes the mapping and rules down to the source (pushdown), the "
        "2-process one maps every row in Python",
    }
    out = HERE / "results" / "sql_sync.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    for name in (SOURCE_DB, TARGET_DB, RAW_DB, PEER_DB):
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
