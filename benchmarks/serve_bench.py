r"""Load on `python -m quickdraw_tf.serve` over loopback: requests/s, p50/p99 latency, errors and server RSS,
at concurrency 1, 8 and 32, with dynamic batching on (max batch 32, max wait 5 ms) and off (max batch 1:
one model call per request, the baseline), for each model given.

  .venv/bin/python benchmarks/serve_bench.py --model rnn_cpu=DIR --model bitmap_cnn=DIR

The requests are the embedded sample's real raw drawings (strokes with times, as the page sends them;
the bitmap model renders them to 28x28 in the server). The load generator (httpx, asyncio) runs on the
same machine as the server, so on a 2-core CPU the two compete for the cores. Per server, in this order:
100 warm-up requests (RSS read), then the concurrency levels (--levels), then unmeasured requests at the
highest concurrency until the server has answered 10,000 in all (RSS read again). On a busy machine
--rss_only_batching skips that padding for the slow one-call-per-request servers.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if __package__ in (None, ""):  # run as `python benchmarks/serve_bench.py`: import from this checkout
    sys.path.insert(0, REPO)

import httpx

from quickdraw_tf.data import formats

WARM_UP = 100
RSS_REQUESTS = 10_000


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


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


def start_server(model_dir: str, port: int, max_batch: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "quickdraw_tf.serve", f"--model_dir={model_dir}", f"--port={port}",
               f"--max_batch={max_batch}", "--max_wait_ms=5", "--log_level=warning"]
    env = {**os.environ, "PYTHONPATH": REPO}
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError("server not ready after 300 s")


async def load(url: str, bodies: list[bytes], concurrency: int, requests: int) -> dict:
    """`requests` POSTs from `concurrency` workers, each sending its next body as soon as it has an answer."""
    latencies: list[float] = []
    errors = 0
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker():
            nonlocal next_index, errors
            while next_index < requests:
                body = bodies[next_index % len(bodies)]
                next_index += 1
                start = time.perf_counter()
                try:
                    response = await client.post("/v1/predict", content=body, headers=headers)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "errors": errors,
    }


def bench_server(name: str, model_dir: str, batching: bool, bodies: list[bytes], port: int,
                 levels: list[tuple[int, int]], pad_to: int) -> list[dict]:
    process = start_server(model_dir, port, 32 if batching else 1)
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(load(url, bodies, 8, WARM_UP))
        rss_100 = rss_mib(process.pid)
        rows = []
        for concurrency, requests in levels:
            result = asyncio.run(load(url, bodies, concurrency, requests))
            rows.append({"model": name, "batching": batching, "concurrency": concurrency, **result})
            print(json.dumps(rows[-1]), flush=True)
        answered = WARM_UP + sum(requests for _, requests in levels)
        if answered < pad_to:
            padding = asyncio.run(load(url, bodies, levels[-1][0], pad_to - answered))
            answered += padding["requests"]
            rows[-1]["errors"] += padding["errors"]
        rss_end = rss_mib(process.pid)
        for row in rows:
            row.update(rss_100_mib=rss_100, rss_end_mib=rss_end, answered=answered)
        print(f"{name} batching={batching}: RSS {rss_100:.0f} MiB after 100, {rss_end:.0f} MiB after "
              f"{answered}", flush=True)
        return rows
    finally:
        process.terminate()
        process.wait(timeout=30)


def table(rows: list[dict]) -> str:
    lines = ["| model | batching | concurrency | req/s | p50 ms | p99 ms | errors | req/s vs batching off |",
             "|---|---|---|---|---|---|---|---|"]
    baseline = {(r["model"], r["concurrency"]): r["rps"] for r in rows if not r["batching"]}
    for r in rows:
        ratio = r["rps"] / baseline[(r["model"], r["concurrency"])] if baseline else float("nan")
        mode = "on (32, 5 ms)" if r["batching"] else "off"
        lines.append(f"| {r['model']} | {mode} | {r['concurrency']} | {r['rps']:.0f} | {r['p50_ms']:.1f} | "
                     f"{r['p99_ms']:.1f} | {r['errors']} | {ratio:.2f}x |")
    lines += ["", "| model | batching | RSS after 100 requests (MiB) | requests answered | RSS then (MiB) "
              "| change |", "|---|---|---|---|---|---|"]
    for r in rows:
        if r["concurrency"] == rows[0]["concurrency"]:
            change = 100 * (r["rss_end_mib"] / r["rss_100_mib"] - 1)
            lines.append(f"| {r['model']} | {'on' if r['batching'] else 'off'} | {r['rss_100_mib']:.0f} | "
                         f"{r['answered']:,} | {r['rss_end_mib']:.0f} | {change:+.1f}% |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="NAME=MODEL_DIR; repeat")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--levels", default="1:1500,8:4000,32:4400",
                        help="concurrency:requests,...; the default adds up to 10,000 with the warm-up")
    parser.add_argument("--rss_requests", type=int, default=RSS_REQUESTS,
                        help="unmeasured requests are added until the server answered this many (RSS figure)")
    parser.add_argument("--rss_only_batching", action="store_true",
                        help="add them only with batching on (one call per request is slow when busy)")
    parser.add_argument("--batching", choices=["both", "on", "off"], default="both")
    args = parser.parse_args()
    modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.batching]
    levels = [tuple(int(v) for v in level.split(":")) for level in args.levels.split(",")]
    bodies = sample_bodies()
    with open("/proc/loadavg", encoding="utf-8") as f:
        print(f"{len(bodies)} real sample drawings; load average at start: {f.read().strip()}")
    rows = []
    for spec in args.model:
        name, _, model_dir = spec.partition("=")
        for batching in modes:
            pad_to = args.rss_requests if batching or not args.rss_only_batching else 0
            rows += bench_server(name, model_dir, batching, bodies, args.port, levels, pad_to)
    print(table(rows))


if __name__ == "__main__":
    main()
