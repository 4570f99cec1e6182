"""REST API latency and throughput: pacsync against the HTTP stack's own limit, in one run.

`pacsync serve` runs on the embedded default (SQLite store under a temporary
PACSYNC_HOME) holding a realistic job history. A separate load-generating
process sends keep-alive HTTP/1.1 requests on loopback:

  (a) open loop at 500 requests/s for the measured period (latency from each
      request's scheduled send time, so a stall is not hidden by the generator
      waiting), for GET /api/v1/sync/status and GET /api/v1/jobs?limit=50;
  (b) closed loop with 16 connections: the most requests/s it sustains;
  (c) the limit: the same load against a minimal uvicorn app answering a fixed
      JSON body of the same size (the ceiling of the server stack on this
      machine, with no framework, auth or store behind it).

Writes benchmarks/results/api.json. ``--quick`` measures 8 s per phase instead of 30.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PACSYNC = Path(sys.executable).parent / "pacsync"
RATE = 500
CONNECTIONS = 16
HISTORY_JOBS = 5_000


# -- the load generator (runs in its own process) ------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        auth = f"Authorization: Bearer {self.token}\r\n" if self.token else ""
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def open_loop(port: int, token: str, path: str, seconds: float) -> dict[str, float]:
    """``RATE`` requests/s on a fixed schedule; latency counts from the scheduled time."""
    idle: asyncio.Queue[Client] = asyncio.Queue()
    for _ in range(64):
        idle.put_nowait(Client(port, token))
    latencies: list[float] = []
    errors = 0

    async def one(scheduled: float) -> None:
        nonlocal errors
        client = await idle.get()
        try:
            if await client.get(path) != 200:
                errors += 1
            latencies.append(time.perf_counter() - scheduled)
        finally:
            idle.put_nowait(client)

    start = time.perf_counter()
    tasks = []
    total = int(RATE * seconds)
    for i in range(total):
        scheduled = start + i / RATE
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return {
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "achieved_rps": round(len(latencies) / elapsed),
        "errors": errors,
    }


async def closed_loop(port: int, token: str, path: str, seconds: float) -> dict[str, float]:
    done = errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        client = Client(port, token)
        while time.perf_counter() < deadline:
            if await client.get(path) != 200:
                errors += 1
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return {"rps": round(done / (time.perf_counter() - start)), "errors": errors}


def load_main(argv: list[str]) -> None:
    port, token, path, seconds, mode = (
        int(argv[0]),
        argv[1],
        argv[2],
        float(argv[3]),
        argv[4],
    )
    run = open_loop if mode == "open" else closed_loop
    print(json.dumps(asyncio.run(run(port, token, path, seconds))))


def generate(port: int, token: str, path: str, seconds: float, mode: str) -> dict[str, float]:
    """Run the load generator as a separate process and return its figures."""
    out = subprocess.run(
        [sys.executable, __file__, "--load", str(port), token, path, str(seconds), mode],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


# -- the servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(port: int, proc: subprocess.Popen[str], path: str = "/api/v1/health") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become ready in 60 s")


def seed_store(home: Path) -> str:
    """A store with a job history and an operator key; returns the key's token."""
    os.environ["PACSYNC_HOME"] = str(home)
    from pacsync import bootstrap
    from pacsync.config import Settings
    from pacsync.domain.access import Role
    from pacsync.jobs.request import JobRequest

    store = bootstrap.store(Settings())
    for i in range(HISTORY_JOBS):
        request = JobRequest(kind="sync", pipeline=f"county-{i % 7}", mode="incremental")
        job_id = store.jobs.create(
            kind=request.kind,
            pipeline=request.pipeline,
            mode=request.mode,
            entities=[],
            job_id=f"bench-{i:06d}",
            request=request.as_dict(),
        )
        if i < HISTORY_JOBS - 3:  # the last three stay queued: the status page lists them
            store.jobs.start(job_id)
            store.jobs.finish(
                job_id,
                "succeeded" if i % 10 else "failed",
                {"entities": {"parcels": {"read": 1000, "inserted": 10}}, "seconds": 1.5},
            )
    _, token = store.api_keys.create("bench", Role.OPERATOR, rate_limit_per_min=10_000_000)
    store.engine.dispose()
    return token


LIMIT_APP = '''
import json
BODY = json.dumps({"active": [], "last_runs": [], "padding": "x" * %(size)d}).encode()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})
'''


def measure(port: int, token: str, paths: dict[str, str], seconds: float) -> dict[str, float]:
    figures: dict[str, float] = {}
    for name, path in paths.items():
        lat = generate(port, token, path, seconds, "open")
        top = generate(port, token, path, seconds, "closed")
        figures[f"{name}_p50_ms_at_{RATE}rps"] = lat["p50_ms"]
        figures[f"{name}_p99_ms_at_{RATE}rps"] = lat["p99_ms"]
        figures[f"{name}_achieved_rps_at_{RATE}rps"] = lat["achieved_rps"]
        figures[f"max_rps_{name}"] = top["rps"]
        if lat["errors"] or top["errors"]:
            raise SystemExit(f"{path}: {lat['errors'] + top['errors']} non-200 answers")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="8 s per phase (under a minute)")
    args = parser.parse_args()
    seconds = 8.0 if args.quick else 30.0
    figures: dict[str, float] = {"cores": os.cpu_count() or 0, "history_jobs": HISTORY_JOBS}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        token = seed_store(home)
        port = free_port()
        env = {**os.environ, "PACSYNC_HOME": str(home), "PACSYNC_LOG_LEVEL": "WARNING"}
        server = subprocess.Popen(
            [str(PACSYNC), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_ready(port, server)
            body = generate(port, token, "/api/v1/sync/status", 1, "closed")
            assert body["errors"] == 0, "the bench key was refused"
            figures |= measure(
                port,
                token,
                {"status": "/api/v1/sync/status", "jobs": "/api/v1/jobs?limit=50"},
                seconds,
            )
        finally:
            server.terminate()
            server.wait(30)
        size = len(json.dumps({"active": [], "last_runs": []}))
        limit_file = Path(tmp) / "limit_app.py"
        limit_file.write_text(LIMIT_APP % {"size": 2000 - size})
        port = free_port()
        limit = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "limit_app:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_ready(port, limit, "/")
            bare = measure(port, "", {"limit": "/"}, seconds)
        finally:
            limit.terminate()
            limit.wait(30)
    figures |= bare
    ratios = {
        "max_rps_status_vs_limit": round(figures["max_rps_status"] / figures["max_rps_limit"], 3),
        "max_rps_jobs_vs_limit": round(figures["max_rps_jobs"] / figures["max_rps_limit"], 3),
        "status_p99_vs_limit": round(
            figures[f"status_p99_ms_at_{RATE}rps"] / figures[f"limit_p99_ms_at_{RATE}rps"], 2
        ),
    }
    result = {
        "benchmark": "api",
        "quick": args.quick,
        "figures": figures,
        "ratios": ratios,
        "notes": "pacsync serve (1 uvicorn process, SQLite store with a job history) and a "
        "bare uvicorn app (the limit) on loopback; load from a separate process, keep-alive "
        f"HTTP/1.1; open loop at {RATE} req/s, closed loop with {CONNECTIONS} connections",
    }
    out = HERE / "results" / "api.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        load_main(sys.argv[2:])
    else:
        main()
