r"""Load on `python -m quickdraw_tf.serve` over loopback: requests/s and p50 / p99 / max latency one request
at a time and at concurrency 8 and 32, for each engine (--engine=tensorflow, the default and the baseline,
and --engine=onnxruntime, the run's model.onnx) with dynamic batching off (max batch 1: one model call per
request) and on (max batch 32, max wait 5 ms), in alternation, three runs; and where the CPU goes.

  .venv/bin/python -m benchmarks.serve_bench                      # the `make demo` model (runs/demo)
  .venv/bin/python -m benchmarks.serve_bench --model_dir=M --runs=3 --levels=1:500,8:800,32:1600
  .venv/bin/python -m benchmarks.serve_bench --engines=tensorflow --batching=off,on

Every server (engine x batching) starts once and stays up; each run measures every level on each server in
turn, so all see the same machine. The requests are the embedded sample's real raw drawings
(strokes with times, as the page sends them), sent by a minimal HTTP/1.1 client on asyncio streams (one
keep-alive connection per concurrent worker), which costs the shared cores less than a general client.

Besides latency it prints each server's memory (RSS) after the warm-up and at the end and, per server and
level, the CPU time the server process and this client spent per request (from /proc and os.times) and the
server's own timings (preparation per request, model call per batch, batch size): on a 2-core machine
2,000 ms / (server + client CPU ms per request) is the most requests per second the cores allow, whatever
the batching does. The goals it checks: p99 <= 50 ms at concurrency 8 and a one-at-a-time maximum <= 25 ms
in every run, and batching's req/s at concurrency 32 against 1.5x batching off.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import socket
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if __package__ in (None, ""):  # run as `python benchmarks/serve_bench.py`: import from this checkout
    sys.path.insert(0, REPO)

from quickdraw_tf.data import formats

WARM_UP = 100
DEFAULT_LEVELS = "1:500,8:800,32:1600"
P99_GOAL_MS = 50.0  # at concurrency 8
SERIAL_MAX_GOAL_MS = 25.0  # one request at a time
BATCHING_GOAL = 1.5  # batching on / off, req/s at concurrency 32
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def sample_bodies() -> list[bytes]:
    """Every raw drawing of data/sample as a /v1/predict body."""
    bodies = []
    for path in sorted(glob.glob(os.path.join(REPO, "data", "sample", "raw", "*", "*.ndjson"))):
        with open(path, "rb") as f:
            for record in formats.read_source_records(f, path, "ndjson"):
                try:
                    drawing = formats.parse_record(record)
                except formats.InvalidRecord:
                    continue
                bodies.append(json.dumps({"drawing": [list(map(list, s)) for s in drawing.strokes]}).encode())
    return bodies


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def start_server(model_dir: str, max_batch: int, engine: str = "tensorflow") -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [sys.executable, "-m", "quickdraw_tf.serve", f"--model_dir={model_dir}", f"--port={port}",
               f"--max_batch={max_batch}", "--max_wait_ms=5", "--log_level=warning", f"--engine={engine}"]
    process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": REPO})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            status, _ = asyncio.run(_one_get(port, "/healthz"))
            if status == 200:
                return process, port
        except OSError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError("server not ready after 300 s")


async def _one_get(port: int, path: str) -> tuple[int, bytes]:
    connection = await Connection.open(port)
    try:
        return await connection.request("GET", path)
    finally:
        connection.close()


class Connection:
    """One keep-alive HTTP/1.1 connection to the server (it answers with Content-Length)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int):
        self.reader, self.writer, self.port = reader, writer, port

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, port)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        self.writer.write(head.encode("ascii") + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def load(port: int, bodies: list[bytes], concurrency: int, requests: int, start_at: int) -> dict:
    """`requests` POSTs from `concurrency` workers, each sending the next body as soon as it has an answer."""
    latencies: list[float] = []
    answers: list[dict] = []
    errors = 0
    sent = 0

    async def worker() -> None:
        nonlocal sent, errors
        connection = await Connection.open(port)
        try:
            while sent < requests:
                body = bodies[(start_at + sent) % len(bodies)]
                sent += 1
                started = time.perf_counter()
                status, answer = await connection.request("POST", "/v1/predict", body)
                latencies.append(time.perf_counter() - started)
                if status == 200:
                    answers.append(json.loads(answer))
                else:
                    errors += 1
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    latencies.sort()
    calls = [a for a in answers if a["batch_size"]]
    prepare_ms = [a["timing_ms"]["preprocess"] for a in answers]
    call_ms = [a["timing_ms"]["inference"] for a in calls]
    return {
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "max_ms": 1000 * latencies[-1],
        "errors": errors,
        "server_prepare_ms": statistics.fmean(prepare_ms) if prepare_ms else 0.0,
        "server_model_call_ms": statistics.fmean(call_ms) if call_ms else 0.0,
        "mean_batch": statistics.fmean(a["batch_size"] for a in calls) if calls else 0.0,
    }


def measure(process: subprocess.Popen, port: int, bodies: list[bytes], concurrency: int, requests: int,
            start_at: int) -> dict:
    server_cpu, client_cpu = cpu_seconds(process.pid), own_cpu_seconds()
    result = asyncio.run(load(port, bodies, concurrency, requests, start_at))
    result["server_cpu_ms"] = 1000 * (cpu_seconds(process.pid) - server_cpu) / result["requests"]
    result["client_cpu_ms"] = 1000 * (own_cpu_seconds() - client_cpu) / result["requests"]
    result["cpu_bound_rps"] = 2000 / (result["server_cpu_ms"] + result["client_cpu_ms"])
    return result


def table(rows: list[dict], runs: int) -> str:
    servers = list(dict.fromkeys((r["engine"], r["batching"]) for r in rows))
    header = " | ".join(f"run {r}: req/s, p50 / p99 / max ms" for r in range(1, runs + 1))
    lines = [f"| engine | batching | concurrency | {header} |", "|---|---|---|" + "---|" * runs]
    for engine, batching in servers:
        for concurrency in sorted({r["concurrency"] for r in rows}):
            cells = []
            for run in range(1, runs + 1):
                row = _find(rows, run, engine, batching, concurrency)
                cells.append(f"{row['rps']:.1f}, {row['p50_ms']:.1f} / {row['p99_ms']:.1f} / "
                             f"{row['max_ms']:.1f}" + (f" ({row['errors']} errors)" if row["errors"] else ""))
            mode = "on (32, 5 ms)" if batching else "off"
            lines.append(f"| {engine} | {mode} | {concurrency} | " + " | ".join(cells) + " |")
    lines += ["", "| engine | batching | concurrency | server CPU ms/request | client CPU ms/request | "
              "2-core ceiling req/s | req/s | server: prepare ms, model call ms, batch |",
              "|---|---|---|---|---|---|---|---|"]
    for engine, batching in servers:
        for concurrency in sorted({r["concurrency"] for r in rows}):
            key = (engine, batching, concurrency)
            own = [r for r in rows if (r["engine"], r["batching"], r["concurrency"]) == key]
            numbers = [key for key, value in own[0].items() if isinstance(value, float)]
            mean = {key: statistics.fmean(r[key] for r in own) for key in numbers}
            lines.append(
                f"| {engine} | {'on' if batching else 'off'} | {concurrency} | {mean['server_cpu_ms']:.1f} | "
                f"{mean['client_cpu_ms']:.1f} | {mean['cpu_bound_rps']:.0f} | {mean['rps']:.1f} | "
                f"{mean['server_prepare_ms']:.1f}, {mean['server_model_call_ms']:.1f}, "
                f"{mean['mean_batch']:.1f} |")
    return "\n".join(lines)


def goals(rows: list[dict], runs: int) -> list[str]:
    """The goals, each with its figure in every run (what the figures say, not a verdict to tune for), and
    each engine's one-at-a-time p50 and req/s at concurrency 8 against TensorFlow's on the same batching."""
    out = []
    levels = {r["concurrency"] for r in rows}
    servers = list(dict.fromkeys((r["engine"], r["batching"]) for r in rows))
    for engine, batching in servers:
        mode = f"{engine}, batching {'on' if batching else 'off'}"
        if 8 in levels:
            p99 = [_find(rows, run, engine, batching, 8)["p99_ms"] for run in range(1, runs + 1)]
            met = sum(p <= P99_GOAL_MS for p in p99)
            out.append(f"p99 at concurrency 8, {mode}: {_ms(p99)} "
                       f"(goal <= {P99_GOAL_MS:g} ms: {met}/{runs} runs)")
        if 1 in levels:
            top = [_find(rows, run, engine, batching, 1)["max_ms"] for run in range(1, runs + 1)]
            met = sum(t <= SERIAL_MAX_GOAL_MS for t in top)
            out.append(f"max one at a time, {mode}: {_ms(top)} "
                       f"(goal <= {SERIAL_MAX_GOAL_MS:g} ms: {met}/{runs} runs)")
    engines = list(dict.fromkeys(engine for engine, _ in servers))
    batchings = sorted({batching for _, batching in servers})
    if 32 in levels and len(batchings) == 2:
        for engine in engines:
            ratios = [_find(rows, run, engine, True, 32)["rps"] / _find(rows, run, engine, False, 32)["rps"]
                      for run in range(1, runs + 1)]
            met = sum(r >= BATCHING_GOAL for r in ratios)
            out.append(f"req/s at concurrency 32, {engine}, batching on / off: "
                       f"{', '.join(f'{r:.2f}x' for r in ratios)} "
                       f"(goal >= {BATCHING_GOAL:g}x: {met}/{runs} runs)")
    if "tensorflow" in engines:
        for engine in (e for e in engines if e != "tensorflow"):
            for batching in batchings:
                for concurrency, key in ((1, "p50_ms"), (8, "rps")):
                    if concurrency not in levels:
                        continue
                    ratios = [_find(rows, run, engine, batching, concurrency)[key]
                              / _find(rows, run, "tensorflow", batching, concurrency)[key]
                              for run in range(1, runs + 1)]
                    what = "p50 one at a time" if concurrency == 1 else "req/s at concurrency 8"
                    out.append(f"{what}, batching {'on' if batching else 'off'}, {engine} / tensorflow: "
                               f"{', '.join(f'{r:.2f}x' for r in ratios)}")
    return out


def _find(rows: list[dict], run: int, engine: str, batching: bool, concurrency: int) -> dict:
    key = (run, engine, batching, concurrency)
    return next(r for r in rows if (r["run"], r["engine"], r["batching"], r["concurrency"]) == key)


def _ms(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values) + " ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default=os.path.join(REPO, "runs", "demo"), help="trained model dir")
    parser.add_argument("--levels", default=DEFAULT_LEVELS, help="concurrency:requests,... measured per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engines", default="tensorflow,onnxruntime", help="serve --engine values compared")
    parser.add_argument("--batching", default="off,on", help="off (max batch 1), on (max batch 32), or both")
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(args.model_dir, "model.keras")):
        parser.error(f"no trained model in {args.model_dir} (make demo trains runs/demo)")
    engines = args.engines.split(",")
    if "onnxruntime" in engines and not os.path.isfile(os.path.join(args.model_dir, "model.onnx")):
        parser.error(f"no model.onnx in {args.model_dir} (python -m quickdraw_tf.export_onnx writes it)")
    batchings = [{"off": False, "on": True}[mode] for mode in args.batching.split(",")]
    levels = [tuple(int(v) for v in level.split(":")) for level in args.levels.split(",")]
    bodies = sample_bodies()
    with open("/proc/loadavg", encoding="utf-8") as f:
        print(f"{len(bodies)} real sample drawings, {args.model_dir}; "
              f"load average at start: {f.read().strip()}", flush=True)
    servers = {(engine, batching): start_server(args.model_dir, 32 if batching else 1, engine)
               for engine in engines for batching in batchings}
    rows = []
    try:
        for process, port in servers.values():
            measure(process, port, bodies, 8, WARM_UP, 0)
        rss_warm = {key: rss_mib(process.pid) for key, (process, _) in servers.items()}
        for run in range(1, args.runs + 1):
            for concurrency, requests in levels:
                for (engine, batching), (process, port) in servers.items():
                    result = measure(process, port, bodies, concurrency, requests, start_at=run * requests)
                    rows.append({"run": run, "engine": engine, "batching": batching,
                                 "concurrency": concurrency, **result})
                    rounded = {k: round(v, 2) if isinstance(v, float) else v for k, v in rows[-1].items()}
                    print(json.dumps(rounded), flush=True)
        for (engine, batching), (process, _) in servers.items():
            own = [r for r in rows if (r["engine"], r["batching"]) == (engine, batching)]
            answered = WARM_UP + sum(r["requests"] for r in own)
            print(f"server RSS, {engine}, batching {'on' if batching else 'off'}: "
                  f"{rss_warm[engine, batching]:.0f} MiB after {WARM_UP} requests, "
                  f"{rss_mib(process.pid):.0f} MiB after {answered:,}")
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)
    with open("/proc/loadavg", encoding="utf-8") as f:
        print(f"load average at the end: {f.read().strip()}")
    print(table(rows, args.runs))
    print("\n".join(goals(rows, args.runs)))


if __name__ == "__main__":
    main()
