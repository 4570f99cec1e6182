"""Job layer: no-op throughput, enqueue-to-start latency, worker scaling, queue overhead.

Jobs are the DBOS workflow every pacsync job runs ("pacsync.job"), served by
``run_worker`` in separate worker processes (this script in its hidden ``--serve``
mode, which adds two benchmark job kinds to the worker) and enqueued by a
``JobClient`` in this process, on the ``data-transformation`` queue (global
concurrency 10, no partitions, 0.4 s polling):

  (a) no-op jobs (``bench-noop``: the handler returns at once with its start time):
      a burst of N jobs enqueued back to back, throughput = N / (last completion -
      first enqueue); then jobs enqueued at a steady 20/s, enqueue-to-start latency =
      the handler's start time - the client's clock just before ``enqueue``;
      on SQLite with 1 worker and on PostgreSQL with 1, 2 and 4 workers;
  (b) an I/O-bound mix on PostgreSQL (``bench-io``: one recorded step sleeping
      0.1-0.3 s, a fixed pseudo-random duration per job id) with 1, 2 and 4 workers
      at ``--concurrency 2`` each, so that one worker, not the queue's global limit of
      10, is the bottleneck;
  (c) the property-assessment recipe, full sync SQLite legacy -> a fresh SQLite
      warehouse (store and job engine on SQLite too): ``run_pipeline`` called directly
      in this process, and the same sync submitted as a job (``pacsync jobs submit``'s
      code path) to an idle worker serving every queue (``pacsync worker``'s default),
      then to one serving only sync-jobs, timed from submit to the result; wall and CPU
      seconds (the worker's and this process's), best of the runs, alternating which
      way goes first; and each worker's CPU while idle.

Writes benchmarks/results/jobs.json.  ``--quick`` runs fewer jobs, a 0.1-scale recipe
database and one sync of each way (about a minute; the full run takes a few).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import psutil
import psycopg
import sqlalchemy as sa

from pacsync import bootstrap
from pacsync.bootstrap import jobs as job_layer
from pacsync.config import Settings
from pacsync.connectors.dbos.engine import JobClient, system_url
from pacsync.jobs.queues import SYNC, TRANSFORMS
from pacsync.jobs.request import JobRequest
from pacsync.sync.pipeline import NullProgress, run_pipeline

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RECIPE = ROOT / "examples" / "property-assessment"
ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
BENCH_DB = "pacsync_bench_jobs"
PG_STORE = f"postgresql+psycopg://postgres@127.0.0.1:5432/{BENCH_DB}"
PACED_PER_S = 20.0  # the steady enqueue rate of the latency measurement
IO_CONCURRENCY = 2  # --concurrency of each worker in the I/O-bound mix


# -- the worker side (hidden --serve mode) ------------------------------------------------------


def io_seconds(job_id: str) -> float:
    """The modelled I/O wait of a bench-io job: 0.1-0.3 s, fixed by its id."""
    return 0.1 + 0.2 * random.Random(job_id).random()


def serve(executor_id: str, queues: list[str], concurrency: int | None) -> None:
    """A ``pacsync worker`` with the benchmark's job kinds registered."""
    from pacsync.connectors.dbos.workflow import register_handler
    from pacsync.ports import JobContext

    def noop(ctx: JobContext, request: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        return {"start": now, "end": now}

    def io(ctx: JobContext, request: dict[str, Any]) -> dict[str, Any]:
        start = time.time()
        ctx.step("io", time.sleep, io_seconds(ctx.job_id))
        return {"start": start, "end": time.time()}

    register_handler("bench-noop", noop)
    register_handler("bench-io", io)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
    job_layer.run_worker(
        Settings(),
        executor_id=executor_id,
        queues=queues,
        concurrency=concurrency,
        stop=stop,
        grace_s=2.0,
        on_ready=lambda: print("ready", flush=True),
    )


class Workers:
    """Worker processes of this script's --serve mode; stopped with SIGTERM, then killed."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[tuple[subprocess.Popen[str], IO[str], Path]] = []

    def start(
        self,
        names: Sequence[str],
        env: dict[str, str],
        queues: Sequence[str],
        concurrency: int | None = None,
    ) -> None:
        started = []
        for name in names:
            log_path = self.logs / f"{name}.log"
            log = log_path.open("w")
            cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", "--id", name]
            cmd += [arg for q in queues for arg in ("--queues", q)]
            if concurrency:
                cmd += ["--concurrency", str(concurrency)]
            proc = subprocess.Popen(
                cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True
            )
            self.procs.append((proc, log, log_path))
            started.append((proc, log_path))
        deadline = time.monotonic() + 120
        for proc, log_path in started:  # each prints "ready" once it serves its queues
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], max(0, deadline - time.monotonic()))
            line = proc.stdout.readline() if ready else ""
            if line.strip() != "ready":
                self.stop()
                raise SystemExit(f"worker did not start:\n{log_path.read_text()[-3000:]}")

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc, _, _ in self.procs]

    def stop(self) -> None:
        for proc, _, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, log, _ in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            log.close()
        self.procs.clear()


@contextmanager
def workers(
    logs: Path,
    names: Sequence[str],
    env: dict[str, str],
    queues: Sequence[str],
    concurrency: int | None = None,
) -> Iterator[Workers]:
    pool = Workers(logs)
    try:
        pool.start(names, env, queues, concurrency)
        yield pool
    finally:
        pool.stop()


# -- the client side ----------------------------------------------------------------------------


def recreate(name: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def worker_env(**pacsync: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACSYNC_")}
    env |= {f"PACSYNC_{k.upper()}": v for k, v in pacsync.items()}
    return env


def percentile(values: Sequence[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def request(kind: str) -> JobRequest:
    return JobRequest(kind=kind, pipeline="bench", queue=TRANSFORMS)


def collect(client: JobClient, ids: Sequence[str]) -> tuple[dict[str, Any], float]:
    """Every job's result, and when the last one ended by its handler's clock (DBOS records
    completion times in whole seconds on SQLite under Python < 3.12)."""
    results = {job_id: client.result(job_id, poll_s=0.05) for job_id in ids}
    return results, max(r.get("end", r["start"]) for r in results.values())


def burst(client: JobClient, prefix: str, kind: str, jobs: int) -> dict[str, float]:
    """``jobs`` jobs enqueued back to back: enqueue rate and throughput to the last result."""
    ids = [f"{prefix}-{i:05d}" for i in range(jobs)]
    first = time.time()
    for job_id in ids:
        client.enqueue(job_id, request(kind))
    enqueued = time.time() - first
    _, last = collect(client, ids)
    return {"enqueue_per_s": jobs / enqueued, "jobs_per_s": jobs / (last - first)}


def paced(client: JobClient, prefix: str, jobs: int) -> list[float]:
    """No-op jobs enqueued at PACED_PER_S; each one's enqueue-to-start latency (s)."""
    ids = [f"{prefix}-{i:05d}" for i in range(jobs)]
    at: dict[str, float] = {}
    origin = time.time()
    for i, job_id in enumerate(ids):
        time.sleep(max(0.0, origin + i / PACED_PER_S - time.time()))
        at[job_id] = time.time()
        client.enqueue(job_id, request("bench-noop"))
    results, _ = collect(client, ids)
    return [results[j]["start"] - at[j] for j in ids]


def measure_config(
    label: str,
    store_url: str,
    *,
    env: dict[str, str],
    count: int,
    sizes: dict[str, int],
    logs: Path,
    io: bool,
) -> dict[str, float]:
    """No-op burst and paced latency with ``count`` workers; the I/O mix when ``io``."""
    bootstrap.store(Settings(database_url=store_url)).engine.dispose()  # store migrated once
    client = JobClient(system_url(store_url))  # and the engine's schema, before the workers
    figures: dict[str, float] = {}
    plural = "worker" if count == 1 else "workers"
    name = f"{label}_{count}_{plural}"
    try:
        names = [f"bench-{label}-{count}-{i}" for i in range(count)]
        with workers(logs, names, env, [TRANSFORMS]):
            burst(client, f"{name}-warm", "bench-noop", 4 * count)  # first jobs: lazy imports
            noop = burst(client, f"{name}-noop", "bench-noop", sizes["noop"])
            latencies = paced(client, f"{name}-paced", sizes["paced"])
        figures[f"{name}_noop_jobs_per_s"] = round(noop["jobs_per_s"], 1)
        figures[f"{name}_enqueue_per_s"] = round(noop["enqueue_per_s"], 1)
        figures[f"{name}_enqueue_to_start_p50_s"] = round(statistics.median(latencies), 3)
        figures[f"{name}_enqueue_to_start_p99_s"] = round(percentile(latencies, 99), 3)
        if io:
            names = [f"bench-{label}-{count}-io-{i}" for i in range(count)]
            with workers(logs, names, env, [TRANSFORMS], IO_CONCURRENCY):
                burst(client, f"{name}-io-warm", "bench-noop", 2 * count)
                mix = burst(client, f"{name}-io", "bench-io", sizes["io"])
            figures[f"{name}_io_jobs_per_s"] = round(mix["jobs_per_s"], 2)
    finally:
        client.close()
    print(f"{name}: {figures}", flush=True)
    return figures


def pipeline_file(path: Path, legacy: str, warehouse: str) -> Path:
    """The recipe's pipeline with its two connections fixed to these URLs."""
    text = (RECIPE / "pipeline.yaml").read_text()
    text, n_legacy = re.subn(r"\$\{LEGACY_DB_URL[^}]*\}", legacy, text)
    text, n_warehouse = re.subn(r"\$\{WAREHOUSE_URL[^}]*\}", warehouse, text)
    if (n_legacy, n_warehouse) != (1, 1):
        raise SystemExit("the recipe's pipeline.yaml no longer names LEGACY_DB_URL/WAREHOUSE_URL")
    path.write_text(text)
    return path


def warehouse_rows(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            return {
                t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in tables
            }
    finally:
        engine.dispose()


def sync_direct(settings: Settings, path: Path) -> dict[str, float]:
    """``run_pipeline`` in this process, as ``pacsync run`` called it before the job layer:
    wall and CPU seconds, and the run as the store recorded it (started to finished)."""
    cpu = time.process_time()
    start = time.perf_counter()
    _, spec = bootstrap.pipeline(str(path), settings)
    store = bootstrap.store(settings)
    job_id = store.jobs.create(
        kind="sync", pipeline=spec.name, mode="full", entities=spec.ordered_entities()
    )
    source, destination = bootstrap.source(spec), bootstrap.destination(spec)
    try:
        result = run_pipeline(
            spec,
            job_id=job_id,
            source=source,
            destination=destination,
            dead_letters=store.dead_letters,
            job_log=store.jobs,
            progress=NullProgress(),
            mode="full",
            runner=bootstrap.ProcessPartitionRunner(settings),
        )
    finally:
        source.close()
        destination.close()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if result.status != "succeeded":
        raise SystemExit(f"direct sync {result.status}: {result.error}")
    job = store.jobs.get(job_id)
    store.engine.dispose()
    assert job is not None
    return {"total": seconds, "cpu": cpu, "run": job.duration_s or 0.0}


def sync_queued(
    settings: Settings, path: Path, client: JobClient, worker: psutil.Process
) -> dict[str, float]:
    """The same sync submitted as a job to a running worker, submit to result: wall and CPU
    seconds (the worker's and this process's), the submit call, submit to the job's start
    and its run, as the store recorded them."""
    before = worker.cpu_times()
    cpu = time.process_time()
    start = time.perf_counter()
    _, spec = bootstrap.pipeline(str(path), settings)
    job = JobRequest(kind="sync", pipeline=spec.name, path=str(path), mode="full", queue=SYNC)
    job_id, _ = job_layer.submit(settings, job)
    submitted = time.perf_counter() - start
    summary = client.result(job_id, poll_s=0.05)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    after = worker.cpu_times()
    cpu += after.user + after.system - before.user - before.system
    if summary["status"] != "succeeded":
        raise SystemExit(f"queued sync {summary['status']}: {summary['error']}")
    store = bootstrap.store(settings)
    view = store.jobs.get(job_id)
    store.engine.dispose()
    assert view is not None
    assert view.started_at is not None
    return {
        "total": seconds,
        "cpu": cpu,
        "run": view.duration_s or 0.0,
        "submit": submitted,
        "to_start": (view.started_at - view.created_at).total_seconds(),
    }


def idle_cpu(worker: psutil.Process, seconds: float) -> float:
    """The share of a core an idle worker uses (polling its queues)."""
    time.sleep(1)  # past start-up
    before, start = worker.cpu_times(), time.perf_counter()
    time.sleep(seconds)
    after = worker.cpu_times()
    used = after.user + after.system - before.user - before.system
    return used / (time.perf_counter() - start)


def measure_sync(
    workdir: Path, scale: float, reps: int, idle_s: float
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Figures (best of the runs), and every run's measurements.

    Two phases, one idle worker each: serving every queue (``pacsync worker``'s default),
    then only sync-jobs (``--queues sync-jobs``); direct runs alternate with queued ones
    in both, so each way sees the same idle worker beside it."""
    legacy = f"sqlite:///{workdir / 'legacy.db'}"
    subprocess.run(
        [sys.executable, str(RECIPE / "generate.py"), "--url", legacy, "--scale", str(scale)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    home = workdir / "sync-home"
    home.mkdir()
    settings = Settings(home=home, database_url=None)
    bootstrap.store(settings).engine.dispose()
    client = JobClient(system_url(settings.store_url))
    runs: dict[str, list[float]] = {}
    rows: dict[str, dict[str, int]] = {}
    idle: dict[str, float] = {}
    try:
        for phase, queues in (("queue", []), ("sync_queue", [SYNC])):
            env = worker_env(home=str(home))
            with workers(workdir, [f"bench-{phase}"], env, queues) as pool:
                worker = psutil.Process(pool.pids[0])
                idle[phase] = idle_cpu(worker, idle_s)
                for rep in range(reps):
                    order = ("direct", phase) if rep % 2 == 0 else (phase, "direct")
                    for how in order:
                        warehouse = f"sqlite:///{workdir / f'warehouse-{phase}-{how}-{rep}.db'}"
                        path = pipeline_file(workdir / f"{how}.yaml", legacy, warehouse)
                        if how == "direct":
                            parts = sync_direct(settings, path)
                        else:
                            parts = sync_queued(settings, path, client, worker)
                        for part, value in parts.items():
                            runs.setdefault(f"sync_{how}_{part}_s", []).append(round(value, 3))
                        rows[how] = warehouse_rows(warehouse)
                        shown = ", ".join(f"{k} {v:.2f} s" for k, v in parts.items())
                        print(f"sync {how} #{rep + 1}: {shown}", flush=True)
    finally:
        client.close()
    if not rows["direct"] == rows["queue"] == rows["sync_queue"]:
        raise SystemExit(f"warehouses differ: {rows}")

    def best(name: str) -> float:
        return round(min(runs[name]), 2)

    return {
        "sqlite_idle_worker_cpu_pct": round(100 * idle["queue"], 1),
        "sqlite_idle_sync_queue_worker_cpu_pct": round(100 * idle["sync_queue"], 1),
        "sync_rows": sum(rows["direct"].values()),
        "sync_direct_s": best("sync_direct_total_s"),
        "sync_through_queue_s": best("sync_queue_total_s"),
        "sync_through_sync_queue_worker_s": best("sync_sync_queue_total_s"),
        "sync_direct_cpu_s": best("sync_direct_cpu_s"),
        "sync_through_queue_cpu_s": best("sync_queue_cpu_s"),
        "sync_through_sync_queue_worker_cpu_s": best("sync_sync_queue_cpu_s"),
        # the run alone, started to finished as the store recorded it
        "sync_direct_run_s": best("sync_direct_run_s"),
        "sync_worker_run_s": best("sync_queue_run_s"),
        "sync_sync_queue_worker_run_s": best("sync_sync_queue_run_s"),
        # the queued run's fixed costs (medians): the submit call, and submit to start
        "sync_submit_s": round(statistics.median(runs["sync_queue_submit_s"]), 3),
        "sync_submit_to_start_s": round(statistics.median(runs["sync_queue_to_start_s"]), 3),
    }, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer jobs, one small sync each way")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--id", help=argparse.SUPPRESS)
    parser.add_argument("--queues", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.id, args.queues, args.concurrency)
        return
    if args.quick:  # a smoke run: no 4-worker configuration
        sizes, scale, reps, idle_s = {"noop": 40, "paced": 20, "io": 12}, 0.1, 1, 1.0
        worker_counts: tuple[int, ...] = (1, 2)
    else:
        sizes, scale, reps, idle_s = {"noop": 500, "paced": 200, "io": 120}, 1.0, 3, 5.0
        worker_counts = (1, 2, 4)

    figures: dict[str, float] = {
        "cores": os.cpu_count() or 0,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        try:
            sync, runs = measure_sync(workdir, scale, reps, idle_s)
            figures |= sync
            home = workdir / "sqlite-home"
            home.mkdir()
            sqlite_store = Settings(home=home, database_url=None).store_url
            env = worker_env(home=str(home))
            figures |= measure_config(
                "sqlite", sqlite_store, env=env, count=1, sizes=sizes, logs=workdir, io=False
            )
            for count in worker_counts:
                recreate(BENCH_DB)
                env = worker_env(database_url=PG_STORE)
                figures |= measure_config(
                    "pg", PG_STORE, env=env, count=count, sizes=sizes, logs=workdir, io=True
                )
        finally:
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")

    p99s = {k: v for k, v in figures.items() if k.endswith("_enqueue_to_start_p99_s")}
    figures["enqueue_to_start_p99_s"] = max(p99s.values())
    direct = figures["sync_direct_s"]
    io_1 = figures["pg_1_worker_io_jobs_per_s"]
    ratios = {
        "queue_overhead": round((figures["sync_through_queue_s"] - direct) / direct, 3),
        "queue_overhead_cpu": round(
            figures["sync_through_queue_cpu_s"] / figures["sync_direct_cpu_s"] - 1, 3
        ),
        "queue_overhead_sync_queue_worker": round(
            (figures["sync_through_sync_queue_worker_s"] - direct) / direct, 3
        ),
        "worker_run_vs_direct_run": round(
            figures["sync_worker_run_s"] / figures["sync_direct_run_s"], 3
        ),
    }
    for count in worker_counts[1:]:
        ratios[f"pg_{count}_workers_vs_1"] = round(
            figures[f"pg_{count}_workers_io_jobs_per_s"] / io_1, 2
        )
        ratios[f"pg_{count}_workers_vs_1_noop"] = round(
            figures[f"pg_{count}_workers_noop_jobs_per_s"] / figures["pg_1_worker_noop_jobs_per_s"],
            2,
        )
    result = {
        "benchmark": "jobs",
        "quick": args.quick,
        "figures": figures,
        "ratios": ratios,
        "runs": runs,
        "notes": (
            "no-op and io jobs on queue data-transformation (global concurrency 10, 0.4 s "
            "polling), workers are separate processes on this host serving that queue, the "
            "enqueuing JobClient runs in the benchmark process; no-op throughput = burst "
            "jobs / (last handler end - first enqueue) with workers at their default "
            "concurrency; latency = handler start - client clock before enqueue, jobs paced "
            f"at {PACED_PER_S:.0f}/s; enqueue_to_start_p99_s is the worst p99 of all five "
            "configurations; io = one recorded step sleeping 0.1-0.3 s, each worker at "
            f"--concurrency {IO_CONCURRENCY} so that one worker is the bottleneck "
            "(pg_N_workers_vs_1 are of this mix, the _noop ratios of the no-op bursts); "
            "sync = property-assessment recipe full sync, SQLite legacy -> fresh SQLite "
            "warehouse, store and job engine on SQLite, best of the runs; direct = "
            "run_pipeline in the benchmark process; through queue = the jobs-submit code "
            "path to an idle worker serving all queues (started beforehand) until the "
            "result (polled every 0.05 s), *_sync_queue_worker_* the same with a worker "
            "serving only sync-jobs; *_run_s = started to finished as the store "
            "recorded it; a shared 2-core box (load_avg_1m at the start), PostgreSQL 15 "
            "on loopback"
        ),
    }
    out = HERE / "results" / "jobs.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
