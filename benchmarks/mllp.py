"""MLLP intake throughput: pacsync against the practical limit and python-hl7, in one run.

On loopback, the same ADT^A01 messages (about 1 KB each) are sent by N concurrent
senders, each waiting for its ACK before sending the next (as MLLP senders do):

  (a) the limit: a fixed-ACK echo server (asyncio, no parsing, no storage);
  (b) python-hl7's own asyncio MLLP server: parse the message, build the ACK, no storage;
  (c) pacsync's listener (`pacsync hl7 listen`): MSH read, kept durably in the SQLite
      store (fsynced group commits), then ACK; with 1 and with 8 senders;
  (d) pacsync's processing of what was kept (`pacsync hl7 process`), messages/s.

Every server runs in a process of its own; the senders share one asyncio process.
Writes benchmarks/results/mllp.json.  ``--quick`` sends fewer messages (under a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
PACSYNC = Path(sys.executable).parent / "pacsync"
START, END = b"\x0b", b"\x1c\r"

ECHO_SERVER = textwrap.dedent(
    """
    import asyncio, sys
    ACK = (b"\\x0bMSH|^~\\\\&|ECHO|X|PMS|CLINIC|20240101||ACK^A01^ACK|1|P|2.5.1\\r"
           b"MSA|AA|1\\r\\x1c\\r")
    async def serve(reader, writer):
        buffer = b""
        while data := await reader.read(65536):
            buffer += data
            count = buffer.count(b"\\x1c\\r")
            if count:
                buffer = buffer[buffer.rfind(b"\\x1c\\r") + 2:]
                writer.write(ACK * count)
                await writer.drain()
        writer.close()
    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]))
        print("ready", flush=True)
        await server.serve_forever()
    asyncio.run(main())
    """
)

PYTHON_HL7_SERVER = textwrap.dedent(
    """
    import asyncio, sys, hl7
    from hl7.mllp import start_hl7_server
    async def serve(reader, writer):
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                writer.writemessage(message.create_ack())
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        except Exception as exc:  # shown, not swallowed: a silent server would hang the run
            print(repr(exc), file=sys.stderr, flush=True)
        writer.close()
    async def main():
        server = await start_hl7_server(serve, "127.0.0.1", int(sys.argv[1]), encoding="utf-8")
        print("ready", flush=True)
        await server.serve_forever()
    asyncio.run(main())
    """
)


def message(sender: int, number: int) -> bytes:
    """An ADT^A01 of about 1 KB with a control id unique per sender and number."""
    control = f"S{sender}N{number}"
    segments = [
        f"MSH|^~\\&|PMS{sender}|CLINIC|PACSYNC|HOSP|20261123101500||ADT^A01^ADT_A01|{control}"
        "|P|2.5.1|||AL|NE||UNICODE UTF-8",
        "EVN|A01|20261123101500|||OPERATOR^JANE",
        f"PID|1||{100000 + number}^^^HOSP^MR~{900000 + number}^^^SSA^SS||Müller^Hans^Peter^^Dr"
        "||19700101|M|||Hauptstraße 1^^Kennewick^WA^99336^USA^H||(509)555-0100^PRN^PH|||M|||",
        "PD1||||1234^Welby^Marcus^^^Dr",
        "NK1|1|Müller^Anna|SPO|Hauptstraße 1^^Kennewick^WA^99336^USA|(509)555-0101",
        f"PV1|1|I|WARD1^101^A^HOSP||||1234^Welby^Marcus^^^Dr|||MED||||1|||1234^Welby^Marcus|IN|"
        f"V{number}|||||||||||||||||||||||||20261123101500",
        "PV2|||^Chest pain",
        "OBX|1|NM|8302-2^Body height^LN||180|cm|||||F",
        "OBX|2|NM|29463-7^Body weight^LN||82|kg|||||F",
        "AL1|1|DA|^Penicillin|SV|Hives",
        "DG1|1||R07.9^Chest pain, unspecified^I10||20261123|A",
        "IN1|1|GOLD^Gold Plan|INS01|Acme Health|PO Box 1^^Seattle^WA^98101||(800)555-0199",
    ]
    return "\r".join(segments).encode() + b"\r"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def sender(port: int, index: int, count: int, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    accepted = 0
    for number in range(count):
        started = time.perf_counter()
        writer.write(START + message(index, number) + END)
        await writer.drain()
        answer = await reader.readuntil(END)
        latencies.append(time.perf_counter() - started)
        accepted += b"MSA|AA|" in answer or b"MSA|CA|" in answer
    writer.close()
    return accepted


def run_senders(port: int, senders: int, per_sender: int) -> dict[str, float]:
    latencies: list[float] = []

    async def main() -> list[int]:
        return await asyncio.gather(
            *(sender(port, i, per_sender, latencies) for i in range(senders))
        )

    started = time.perf_counter()
    accepted = asyncio.run(main())
    seconds = time.perf_counter() - started
    total = senders * per_sender
    if sum(accepted) != total:
        raise SystemExit(f"only {sum(accepted)} of {total} messages were accepted")
    latencies.sort()
    return {
        "msgs_per_s": total / seconds,
        "ack_p50_ms": statistics.median(latencies) * 1000,
        "ack_p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def start(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "ready" not in line and "listener" not in line:
        proc.kill()
        raise SystemExit(f"server did not start: {line}{proc.stdout.read()}")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure(
    command: list[str], port: int, runs: list[tuple[int, int]], env: dict[str, str] | None = None
) -> list[dict[str, float]]:
    proc = start(command, env)
    try:
        run_senders(port, 2, 50)  # warm-up: connections, caches, the store's first pages
        return [run_senders(port, senders, per) for senders, per in runs]
    finally:
        stop(proc)


def process_all(home: Path) -> tuple[float, float, int]:
    """Process what the runs kept: wall seconds of the command, its own processing
    seconds (without the process start-up), messages processed."""
    env = {**os.environ, "PACSYNC_HOME": str(home)}
    started = time.perf_counter()
    out = subprocess.run([str(PACSYNC), "hl7", "process"], env=env, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    seconds = time.perf_counter() - started
    found = re.search(r"(\d+) processed, (\d+) failed.* in ([0-9.]+) s", out.replace("\n", " "))
    if not found or found.group(2) != "0":
        raise SystemExit(f"processing did not succeed: {out}")
    return seconds, float(found.group(3)), int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer messages (under a minute)")
    args = parser.parse_args()
    per_sender_8 = 250 if args.quick else 2500
    per_sender_1 = 1000 if args.quick else 5000
    figures: dict[str, float] = {"cores": os.cpu_count() or 0, "message_bytes": len(message(0, 0))}
    port = free_port()
    echo = measure([PYTHON, "-c", ECHO_SERVER, str(port)], port, [(8, per_sender_8)])[0]
    port = free_port()
    hl7 = measure([PYTHON, "-c", PYTHON_HL7_SERVER, str(port)], port, [(8, per_sender_8)])[0]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "PACSYNC_HOME": str(home), "PACSYNC_HL7_ACCEPT": "ADT^*"}
        port = free_port()
        one, eight = measure(
            [str(PACSYNC), "hl7", "listen", "--port", str(port)],
            port,
            [(1, per_sender_1), (8, per_sender_8)],
            env,
        )
        seconds, own_seconds, processed = process_all(home)
    figures |= {
        "limit_msgs_per_s_8_senders": round(echo["msgs_per_s"]),
        "python_hl7_msgs_per_s_8_senders": round(hl7["msgs_per_s"]),
        "durable_msgs_per_s_1_sender": round(one["msgs_per_s"]),
        "durable_msgs_per_s_8_senders": round(eight["msgs_per_s"]),
        "ack_p50_ms_1_sender": round(one["ack_p50_ms"], 2),
        "ack_p99_ms_1_sender": round(one["ack_p99_ms"], 2),
        "ack_p50_ms_8_senders": round(eight["ack_p50_ms"], 2),
        "ack_p99_ms_8_senders": round(eight["ack_p99_ms"], 2),
        "limit_ack_p99_ms_8_senders": round(echo["ack_p99_ms"], 2),
        "python_hl7_ack_p99_ms_8_senders": round(hl7["ack_p99_ms"], 2),
        "processed_msgs": processed,
        "processed_msgs_per_s": round(processed / own_seconds),
        "processed_msgs_per_s_with_startup": round(processed / seconds),
    }
    ratios = {
        "durable_vs_python_hl7": round(eight["msgs_per_s"] / hl7["msgs_per_s"], 2),
        "durable_vs_limit": round(eight["msgs_per_s"] / echo["msgs_per_s"], 3),
        "durable_vs_iguana_published": round(eight["msgs_per_s"] / 490, 2),
    }
    result = {
        "benchmark": "mllp",
        "quick": args.quick,
        "figures": figures,
        "ratios": ratios,
        "notes": "loopback; each sender waits for its ACK; pacsync keeps every message in "
        "its SQLite store (WAL, fsynced commits) before answering; Iguana's 490 msgs/s is "
        "its published figure, not measured here",
    }
    out = HERE / "results" / "mllp.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
