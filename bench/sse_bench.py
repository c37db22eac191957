"""SSE fan-out: time for one rollup change to reach every one of N connected clients, against 1 client.

Starts its own mongod (clara.embedded_mongo) and `python -m web` (a subprocess), connects N aiohttp
clients to /api/stream (the open-file limit is raised in-process when N needs it), then --rounds
times makes one rollup change (an `$inc` on an hourly rollup document, as the consumer's batch does)
and records when each client receives the `update` event. The baseline is the same with 1 client,
in the same run, before the N connect. Also the web process's CPU seconds and RSS over the run.
Times are taken in this process, from just before the write until the event's blank line is read,
so they include the change stream, the hub's fan-out and this process reading N streams.
Prints a table and writes bench/results/sse.json.

    .venv/bin/python -m bench.sse_bench [--clients 500] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.api_bench import raise_open_files, wait_ready  # noqa: E402
from bench.stats import percentiles, write_result  # noqa: E402
from clara.config import config_from_mapping  # noqa: E402
from clara.db import Collections, connect, ensure_indexes  # noqa: E402
from clara.embedded_mongo import EmbeddedMongo, free_port  # noqa: E402
from tests.support.processes import start, write_config  # noqa: E402
from tests.support.sse import sse_events  # noqa: E402

UTC = dt.timezone.utc
HOUR = dt.datetime(2025, 3, 1, 10, tzinfo=UTC)


class Listener:
    """One SSE client: records, per event id, when its `update` event arrived."""

    def __init__(self, session: aiohttp.ClientSession, url: str):
        self.session, self.url = session, url
        self.connected = asyncio.Event()
        self.updates: dict[str, float] = {}
        self.new_update = asyncio.Event()

    async def run(self) -> None:
        async with self.session.get(self.url, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as response:
            assert response.status == 200, response.status
            async for event in sse_events(response.content):
                if event.get("event") == "status":
                    self.connected.set()
                elif event.get("event") == "update":
                    self.updates[event.get("id", "")] = time.perf_counter()
                    self.new_update.set()


async def measure(url: str, rollups, clients: int, rounds: int, web: psutil.Process) -> dict:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        listeners = [Listener(session, url) for _ in range(clients)]
        tasks = [asyncio.create_task(listener.run()) for listener in listeners]
        began = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(listener.connected.wait() for listener in listeners)), 120)
        connect_seconds = time.perf_counter() - began
        await asyncio.sleep(1.0)
        cpu_before = sum(web.cpu_times()[:2])
        per_client: list[float] = []
        until_all: list[float] = []
        for i in range(rounds):
            for listener in listeners:
                listener.updates.clear()
                listener.new_update.clear()
            t0 = time.perf_counter()
            await asyncio.to_thread(rollups.update_one, {"_id": HOUR}, {"$inc": {"bench_touches": 1}}, upsert=True)
            await asyncio.wait_for(asyncio.gather(*(listener.new_update.wait() for listener in listeners)), 30)
            arrivals = [min(listener.updates.values()) for listener in listeners]
            per_client += [(t - t0) * 1000 for t in arrivals]
            until_all.append((max(arrivals) - t0) * 1000)
            await asyncio.sleep(0.5)  # past the hub's coalescing interval, so each change is its own event
        cpu = sum(web.cpu_times()[:2]) - cpu_before
        rss = web.memory_info().rss / 2**20
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"clients": clients, "rounds": rounds, "connect_seconds": round(connect_seconds, 2),
            "until_all": percentiles(until_all), "per_client": percentiles(per_client),
            "web_cpu_seconds": round(cpu, 2), "web_cpu_ms_per_event": round(cpu * 1000 / rounds, 1),
            "web_rss_mib": round(rss, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500, help="concurrent SSE clients (default 500)")
    parser.add_argument("--rounds", type=int, default=10, help="rollup changes measured (default 10)")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "sse.json"))
    args = parser.parse_args(argv)
    limit = raise_open_files(args.clients)
    web_process: subprocess.Popen | None = None
    with tempfile.TemporaryDirectory(prefix="sse-bench-") as tmp:
        mongo = EmbeddedMongo(Path(tmp) / "db").start()
        try:
            port = free_port()
            raw = {"mongodb": {"database": "sse_bench"}, "web": {"port": port, "host": "127.0.0.1"}}
            config = config_from_mapping(raw, {"MONGODB_URI": mongo.uri}, source="bench")
            client = connect(config)
            cols = Collections.of(client, config)
            ensure_indexes(cols)
            cols.rollups.update_one({"_id": HOUR}, {"$inc": {"reviews": 0}}, upsert=True)
            web_process = start("web", write_config(Path(tmp) / "config.toml", raw), mongo.uri,
                                env={"PORT": str(port)}, log_path=Path(tmp) / "web.log")
            web = psutil.Process(web_process.pid)
            url = f"http://127.0.0.1:{port}/api/stream"
            asyncio.run(wait_ready(f"http://127.0.0.1:{port}", web_process))
            time.sleep(1.0)
            rss_idle = round(web.memory_info().rss / 2**20, 1)
            base = asyncio.run(measure(url, cols.rollups, 1, args.rounds, web))
            many = asyncio.run(measure(url, cols.rollups, args.clients, args.rounds, web))
            client.close()
        except BaseException:
            if (Path(tmp) / "web.log").exists():
                print("web log tail:\n" + "\n".join((Path(tmp) / "web.log").read_text(errors="replace")
                                                   .splitlines()[-20:]), file=sys.stderr)
            raise
        finally:
            if web_process is not None:
                web_process.send_signal(signal.SIGTERM)
                try:
                    web_process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    web_process.kill()
            mongo.stop()
    n = args.clients
    ratio = lambda a, b: round(a / b, 2) if b else ""  # noqa: E731
    rows = [
        ["sse", f"change -> update at ALL {n} clients p50 / p95 / max ms ({args.rounds} changes) vs 1 client p50",
         f"{many['until_all']['p50_ms']} / {many['until_all']['p95_ms']} / {many['until_all']['max_ms']}",
         base["until_all"]["p50_ms"], ratio(many["until_all"]["p50_ms"], base["until_all"]["p50_ms"])],
        ["sse", f"change -> update per client p50 / p95 / max ms ({n} x {args.rounds})",
         f"{many['per_client']['p50_ms']} / {many['per_client']['p95_ms']} / {many['per_client']['max_ms']}",
         base["per_client"]["p50_ms"], ratio(many["per_client"]["p50_ms"], base["per_client"]["p50_ms"])],
        ["sse", f"web CPU ms per event, {n} clients vs 1", many["web_cpu_ms_per_event"], base["web_cpu_ms_per_event"],
         ratio(many["web_cpu_ms_per_event"], base["web_cpu_ms_per_event"])],
        ["sse", f"web RSS MiB with {n} clients vs idle", many["web_rss_mib"], rss_idle,
         ratio(many["web_rss_mib"], rss_idle)],
    ]
    result = {"clients": n, "rounds": args.rounds, "open_files_limit": limit, "baseline_1_client": base,
              "many": many, "web_rss_idle_mib": rss_idle,
              "sse_max_updates_per_second": config.web.sse_max_updates_per_second, "rows": rows}
    write_result(args.output, result)
    print(f"{n} SSE clients connected in {many['connect_seconds']} s")
    for row in rows:
        print("  ".join(str(cell) for cell in row[1:]))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
