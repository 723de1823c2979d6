"""API benchmark: indicator search and TAXII pages under 50 concurrent clients, against plain SQLite on the same file.

A seeded generator writes a knowledge base of 1M indicators (`--size small`: 100k) through the store's own write
path (`SQLiteStore.import_batch`, 50k per batch) into a cache folder, once; later runs reuse it. Each run makes a
fresh token store with one reader (cleared for AMBER) and starts the real server (`heistwatch serve --workers N`,
uvicorn, default 2 processes, a free loopback port) in a child process; the TAXII catalog beside the token store
is kept across runs too, and synced with the knowledge base at start-up when it changed.

The load: `--clients` keep-alive HTTP/1.1 connections (default 50), each sending the request mix: indicator
search by exact value (30 %), by prefix (20 %), by substring (15 %) and by kind (10 %), and TAXII object pages
(25 %) that follow `next` for up to 20 pages (`limit` 100) before starting over.
- Closed loop (the default): each connection sends its next request as soon as the last one is answered, with
  no think time unless `--think-ms`. Latency is then mostly queueing: by Little's law, 50 connections at R
  requests/s wait 50 / R seconds on average, whatever the server's own time per request.
- Open loop (`--rate R`): requests fall due on a fixed schedule of R per second and go out on the first free
  connection of the 50; latency runs from when a request was due, so waiting for a connection counts and a
  slow server does not slow the schedule down (no coordinated omission).
The client is written for this benchmark on raw asyncio streams (uvloop when installed) so that it costs the
shared cores little: the CPU that the server (all its processes) and the load generator used during the
measured window is printed per request. Latency is measured at the client, from sending (or falling due) to
the last byte of the body, which is parsed as JSON. Errors are any non-200 or transport failure. The server's
RSS (all its processes) is sampled every second.

The anchor, measured in the same run once the server has stopped: the same searches and pages as plain SQL on
the same catalog file (the same indexes, filters, order and limits) through one sqlite3 connection, with no
HTTP, authentication, JSON or concurrency: the floor a server on this file could reach. The ratio is server
latency / anchor latency, per endpoint, at p50 and p99. The load average is printed: the machine's cores are
shared, and other work on them inflates the server's latencies, not the anchor's.

Run: .venv/bin/python benchmarks/api.py [--size small|full] [--duration S] [--clients 50] [--workers 2]
     [--rate R] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from heistwatch.api.auth import Role, TokenStore
from heistwatch.api.taxii import COLLECTIONS
from heistwatch.kb import SQLiteStore
from heistwatch.model import TLP, ImportBatch, Indicator, Source, make_indicator

SIZES = {"small": (100_000, 30.0), "full": (1_000_000, 300.0)}
SEED = 20261126
GENERATOR = "v1"  # bump when the generated data changes, so cached knowledge bases are rebuilt
BATCH = 50_000
FEEDS = 10
WORDS = (
    *("binance", "coinbase", "kraken", "bitfinex", "okx", "bybit", "upbit", "wallet", "secure", "login", "verify"),
    *("trade", "trading", "capital", "jobs", "career", "recruit", "invest", "ledger", "metamask", "support", "update"),
    *("cloud", "drive", "docs", "share", "mail", "portal", "auth", "token", "swap", "defi", "bridge", "vault"),
)
TLDS = ("com", "net", "org", "io", "xyz", "top", "info", "biz", "cc", "co")
TLP_WEIGHTS = ((TLP.CLEAR, 50), (TLP.GREEN, 30), (TLP.AMBER, 15), (TLP.AMBER_STRICT, 4), (TLP.RED, 1))
KIND_CYCLE = ("domain",) * 4 + ("ipv4",) * 2 + ("sha256",) * 2 + ("url", "md5")
MIX = (("search:exact", 30), ("search:prefix", 20), ("search:contains", 15), ("search:kind", 10), ("taxii:objects", 25))
PAGE = 100
PAGES_PER_WALK = 20


# -- the knowledge base ---------------------------------------------------------------------------------


def indicator_value(i: int) -> tuple[str, str]:
    """The kind and raw value of generated indicator `i` (a pure function of i, so queries can be made from it)."""
    kind = KIND_CYCLE[i % len(KIND_CYCLE)]
    digest = hashlib.sha256(f"{SEED}:{i}".encode()).hexdigest()
    if kind == "sha256":
        return kind, digest
    if kind == "md5":
        return kind, digest[:32]
    if kind == "ipv4":
        return kind, ".".join(str(int(digest[k : k + 2], 16)) for k in range(0, 8, 2))
    words = [WORDS[int(digest[k : k + 2], 16) % len(WORDS)] for k in (8, 10)]
    domain = f"{words[0]}-{words[1]}{digest[12:17]}.{TLDS[int(digest[17], 16) % len(TLDS)]}"
    return kind, domain if kind == "domain" else f"https://{domain}/{words[1]}/{digest[20:28]}"


def _indicator(i: int, tlps: list[TLP]) -> Indicator:
    kind, value = indicator_value(i)
    return make_indicator(
        kind,
        value,
        source=f"feed-{i % FEEDS:02d}",
        tlp=tlps[i],
        confidence=50 + i % 50,
        first_seen="2024-01-01T00:00:00.000Z",
        reference=f"https://feed-{i % FEEDS:02d}.example/ioc/{i}",
    )


def build_kb(path: Path, count: int, progress: Callable[[str], None]) -> float:
    """Write `count` indicators from `FEEDS` sources through `import_batch`; seconds taken."""
    rng = random.Random(SEED)
    tlps = rng.choices([t for t, _ in TLP_WEIGHTS], [w for _, w in TLP_WEIGHTS], k=count)
    sources = tuple(Source(key=f"feed-{f:02d}", name=f"Feed {f:02d}", version="1") for f in range(FEEDS))
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    start = time.perf_counter()
    store = SQLiteStore(partial, bulk=True)
    try:
        store.import_batch(ImportBatch(sources=sources))
        for first in range(0, count, BATCH):
            batch = tuple(_indicator(i, tlps) for i in range(first, min(first + BATCH, count)))
            store.import_batch(ImportBatch(indicators=batch))
            progress(f"knowledge base: {first + len(batch):,} / {count:,} indicators")
    finally:
        store.close()
    partial.rename(path)
    return time.perf_counter() - start


# -- the requests ---------------------------------------------------------------------------------------


@dataclass
class Workload:
    """Seeded query material drawn from the generated values."""

    count: int
    rng: random.Random = field(default_factory=lambda: random.Random(SEED + 1))

    def value(self) -> tuple[str, str]:
        """A stored indicator's kind and normalized value."""
        return indicator_value(self.rng.randrange(self.count))  # generated values are already normalized

    def search(self, label: str) -> dict[str, str]:
        """The query parameters of one search of the given label."""
        kind, value = self.value()
        if label == "search:exact":
            return {"q": value, "match": "exact", "limit": "20"}
        if label == "search:prefix":
            cut = {"sha256": 6, "md5": 6, "ipv4": value.rfind(".") + 1, "domain": 10, "url": 18}[kind]
            return {"q": value[:cut], "match": "prefix", "kind": kind, "limit": "20"}
        if label == "search:contains":
            middle = value[len(value) // 3 : len(value) // 3 + 6]
            return {"q": middle, "match": "contains", "limit": "20"}
        return {"kind": self.rng.choice(KIND_CYCLE), "limit": "20"}


@dataclass
class Results:
    """Latencies (ms) and errors per endpoint, and the server's RSS samples."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    first_errors: list[str] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)
    cpu: tuple[float, float] = (0.0, 0.0)  # CPU seconds in the measured window: the server's (all processes), ours
    backlog: int = 0  # open loop: the most requests that were due but waiting for a free connection

    def record(self, label: str, ms: float, problem: str | None) -> None:
        """One request's outcome."""
        if problem is None:
            self.latencies[label].append(ms)
            return
        self.errors[label] += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(f"{label}: {problem}")


class Connection:
    """One keep-alive HTTP/1.1 connection on raw asyncio streams: a lean client, so the load costs little CPU.

    httpx spends about a millisecond of CPU per request; on two shared cores that CPU is taken from the server.
    This client writes the request line and headers itself and reads the status, Content-Length and body.
    """

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, bytes]:
        """GET path?params; the status and body (reconnecting once if the server closed the connection)."""
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = f"GET {path}?{urlencode(params)} HTTP/1.1\r\n{self.head}{extra}\r\n".encode("ascii")
        for attempt in (1, 2):
            if self.streams is None:
                self.streams = await asyncio.open_connection(self.host, self.port)
            reader, writer = self.streams
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
                continue
            lines = head.decode("latin-1").split("\r\n")
            fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            if "content-length" not in fields:
                raise ConnectionError(f"no Content-Length in the response: {lines[0]}")
            body = await reader.readexactly(int(fields["content-length"]))
            if fields.get("connection", "").lower() == "close":
                self.close()
            return int(lines[0].split()[1]), body
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Drop the connection."""
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


@dataclass
class Walker:
    """One connection's requests: searches, and a TAXII walk that follows `next` for up to 20 pages."""

    connection: Connection
    work: Workload
    next: str | None = None
    pages: int = 0

    async def send(self, label: str) -> str | None:
        """Send one request of the label; None if it was answered 200 with JSON, else the problem."""
        try:
            if label == "taxii:objects":
                params = {"limit": str(PAGE), **({"next": self.next} if self.next else {})}
                status, body = await self.connection.get(f"/taxii2/api/collections/{_ALL}/objects/", params, _TAXII)
            else:
                status, body = await self.connection.get("/api/indicators", self.work.search(label), {})
            if status != 200:
                return f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"
            data = orjson.loads(body)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"
        if label == "taxii:objects":
            self.pages += 1
            self.next = data.get("next") if data.get("more") and self.pages < PAGES_PER_WALK else None
            self.pages = self.pages if self.next else 0
        return None


_ALL = next(c for c in COLLECTIONS if c.key == "all").id
_TAXII = {"Accept": "application/taxii+json;version=2.1"}


def _label(work: Workload) -> str:
    return work.rng.choices([label for label, _ in MIX], [weight for _, weight in MIX])[0]


async def _closed_loop(walker: Walker, results: Results, window: tuple[float, float], think: float) -> None:
    """Send requests back to back until the window ends; record those that finish inside it."""
    while time.perf_counter() < window[1]:
        label = _label(walker.work)
        start = time.perf_counter()
        problem = await walker.send(label)
        end = time.perf_counter()
        if window[0] <= start and end <= window[1]:
            results.record(label, (end - start) * 1000, problem)
        if think:
            await asyncio.sleep(think)


async def _open_loop(
    walkers: list[Walker], results: Results, window: tuple[float, float], rate: float, start: float
) -> None:
    """Offer `rate` requests/s on a fixed schedule, each sent on the first free connection.

    Latency runs from the request's scheduled time, so time spent waiting for a free connection counts (no
    coordinated omission: a slow server does not slow the schedule down).
    """
    due: asyncio.Queue[tuple[str, float]] = asyncio.Queue()

    async def send(walker: Walker) -> None:
        while True:
            label, at = await due.get()
            problem = await walker.send(label)
            end = time.perf_counter()
            if window[0] <= at and end <= window[1]:
                results.record(label, (end - at) * 1000, problem)
            due.task_done()

    senders = [asyncio.create_task(send(w)) for w in walkers]
    try:
        k = 0
        while (at := start + k / rate) < window[1]:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            due.put_nowait((_label(walkers[0].work), at))
            results.backlog = max(results.backlog, due.qsize())
            k += 1
        await due.join()
    finally:
        for task in senders:
            task.cancel()


def rss_bytes(pid: int) -> int:
    """A process's resident set size, from /proc (Linux)."""
    resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def server_pids(pid: int) -> list[int]:
    """The server process and its descendants (uvicorn's worker processes)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo += [int(child) for child in task.read_text().split()]
    return found


def _tree(pid: int, read: Callable[[int], float]) -> float:
    total = 0.0
    for each in server_pids(pid):
        with contextlib.suppress(OSError):
            total += read(each)
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _sample_rss(pid: int, results: Results, window: tuple[float, float]) -> None:
    while time.perf_counter() < window[1]:
        now = time.perf_counter()
        if now >= window[0]:
            results.rss.append((now - window[0], int(_tree(pid, rss_bytes))))
        await asyncio.sleep(1.0)
    results.rss.append((time.perf_counter() - window[0], int(_tree(pid, rss_bytes))))


async def drive(
    base: tuple[str, int],
    token: str,
    pid: int,
    work: Workload,
    *,
    clients: int,
    warmup: float,
    duration: float,
    think: float,
    rate: float | None,
) -> Results:
    """Run the clients for warm-up + duration; results cover the measured window only."""
    results = Results()
    begin = time.perf_counter()
    window = (begin + warmup, begin + warmup + duration)
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
    walkers = [Walker(Connection(*base, headers), work) for _ in range(clients)]
    results.rss.append((-warmup, int(_tree(pid, rss_bytes))))
    sample = asyncio.create_task(_sample_rss(pid, results, window))

    async def measured_cpu() -> None:
        await asyncio.sleep(max(0.0, window[0] - time.perf_counter()))
        server, client = _tree(pid, cpu_seconds), time.process_time()
        await asyncio.sleep(max(0.0, window[1] - time.perf_counter()))
        results.cpu = (_tree(pid, cpu_seconds) - server, time.process_time() - client)

    try:
        if rate is None:
            await asyncio.gather(measured_cpu(), *(_closed_loop(w, results, window, think) for w in walkers))
        else:
            await asyncio.gather(measured_cpu(), _open_loop(walkers, results, window, rate, begin))
        await sample
    finally:
        for walker in walkers:
            walker.connection.close()
    return results


# -- the server -----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def serving(kb: Path, tokens: Path, log: Path, workers: int) -> Iterator[tuple[tuple[str, int], int, float]]:
    """`heistwatch serve` on a free loopback port: ((host, port), pid, seconds until it answered)."""
    port = _free_port()
    command = [sys.executable, "-m", "heistwatch", "--kb", str(kb), "serve", "--tokens", str(tokens)]
    command += ["--host", "127.0.0.1", "--port", str(port), *(["--workers", str(workers)] if workers > 1 else [])]
    start = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        while not (_answers(f"http://127.0.0.1:{port}/openapi.json") and _started(log) >= workers):
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}; see {log}")
            time.sleep(0.2)
        yield ("127.0.0.1", port), process.pid, time.perf_counter() - start
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(url: str) -> bool:
    """Whether the server answers at `url`."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _started(log: Path) -> int:
    """How many server processes have finished starting up, by uvicorn's log (one line each)."""
    return log.read_text(errors="replace").count("Application startup complete.")


def fresh_tokens(folder: Path) -> tuple[Path, str]:
    """A new token store (users, audit log) with one reader cleared for AMBER; the catalog beside it is kept."""
    path = folder / "tokens.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = TokenStore(path)
    try:
        token = store.add("bench-reader", Role.READER, TLP.AMBER)
    finally:
        store.close()
    return path, token


# -- the anchor -----------------------------------------------------------------------------------------


def _anchor_sql(label: str, params: dict[str, str]) -> tuple[str, list[Any]]:
    """Plain SQL for one search on the catalog file: the same filter, index, order and limit, no HTTP."""
    cols = "SELECT c.json FROM catalog c WHERE +c.type = 'indicator' AND c.level IN (0, 1, 2)"
    limit = int(params.get("limit", PAGE))
    q = params.get("q", "")
    if label == "search:exact":
        return f"{cols} AND lower(c.name) = ? ORDER BY c.id LIMIT ?", [q, limit]
    if label == "search:prefix":
        high = q[:-1] + chr(ord(q[-1]) + 1)
        sql = (
            f"{cols} AND +c.kind = ? AND lower(c.name) >= ? AND lower(c.name) < ? ORDER BY lower(c.name), c.id LIMIT ?"
        )
        return sql, [params["kind"], q, high, limit]
    if label == "search:contains":
        text = "SELECT c.json FROM catalog_text t JOIN catalog c ON c.rowid = t.rowid WHERE catalog_text MATCH ?"
        return f"{text} AND +c.type = 'indicator' AND c.level IN (0, 1, 2) ORDER BY t.rowid LIMIT ?", [f'"{q}"', limit]
    return f"{cols} AND c.kind = ? ORDER BY c.id LIMIT ?", [params["kind"], limit]


def anchor(catalog: Path, work: Workload, per_label: int) -> dict[str, list[float]]:
    """Per-query latency (ms) of the same kinds of request as plain SQL on one connection to the catalog file."""
    db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    out: dict[str, list[float]] = {}
    try:
        for label, _ in MIX:
            times = []
            after = ("", "")
            for _ in range(per_label):
                if label == "taxii:objects":
                    sql = (
                        "SELECT json, added, id FROM catalog WHERE level IN (0, 1, 2) AND (added, id) > (?, ?)"
                        " ORDER BY added, id LIMIT ?"
                    )
                    args: list[Any] = [*after, PAGE]
                else:
                    sql, args = _anchor_sql(label, work.search(label))
                start = time.perf_counter()
                rows = db.execute(sql, args).fetchall()
                times.append((time.perf_counter() - start) * 1000)
                if label == "taxii:objects":
                    after = (rows[-1][1], rows[-1][2]) if rows else ("", "")
            out[label] = times
    finally:
        db.close()
    return out


# -- the report -----------------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summarize(results: Results, anchors: dict[str, list[float]], duration: float) -> dict[str, Any]:
    """Requests/s, p50/p99 and errors per endpoint with the anchor and ratios; RSS start/max/end."""
    endpoints = {}
    for label, _ in MIX:
        ms = results.latencies.get(label, [])
        base = anchors.get(label, [])
        p50, p99 = statistics.median(ms) if ms else float("nan"), _pct(ms, 0.99)
        a50, a99 = statistics.median(base) if base else float("nan"), _pct(base, 0.99)
        endpoints[label] = {
            "requests": len(ms),
            "errors": results.errors.get(label, 0),
            "requests_per_s": len(ms) / duration,
            "p50_ms": p50,
            "p99_ms": p99,
            "anchor_p50_ms": a50,
            "anchor_p99_ms": a99,
            "ratio_p50": p50 / a50 if a50 else float("nan"),
            "ratio_p99": p99 / a99 if a99 else float("nan"),
        }
    rss = [r for t, r in results.rss if t >= 0]
    total = sum(len(v) for v in results.latencies.values())
    searches = [ms for label, v in results.latencies.items() if label.startswith("search:") for ms in v]
    answered = total + sum(results.errors.values())
    return {
        "requests_per_s": total / duration,
        "errors": sum(results.errors.values()),
        "search_p50_ms": statistics.median(searches) if searches else float("nan"),
        "search_p99_ms": _pct(searches, 0.99),
        "server_cpu_ms_per_request": results.cpu[0] * 1000 / answered if answered else float("nan"),
        "client_cpu_ms_per_request": results.cpu[1] * 1000 / answered if answered else float("nan"),
        "open_loop_backlog_max": results.backlog,
        "first_errors": results.first_errors,
        "endpoints": endpoints,
        "rss_mb": {
            "before_warmup": results.rss[0][1] / 2**20 if results.rss else None,
            "start": rss[0] / 2**20 if rss else None,
            "mid": rss[len(rss) // 2] / 2**20 if rss else None,
            "max": max(rss) / 2**20 if rss else None,
            "end": rss[-1] / 2**20 if rss else None,
            "samples": len(rss),
        },
    }


def _print(report: dict[str, Any]) -> None:
    meta, run = report["meta"], report["run"]
    print(
        f"API benchmark: {meta['indicators']:,} indicators, {meta['clients']} clients, {meta['duration_s']:.0f} s"
        f" (+{meta['warmup_s']:.0f} s warm-up), think {meta['think_ms']} ms"
    )
    print(
        f"knowledge base: {meta['kb_build_s']:.1f} s to build ({'cached' if meta['kb_cached'] else 'built now'});"
        f" server answered after {meta['server_start_s']:.1f} s (catalog sync included)"
    )
    print(
        f"machine: {meta['cpus']} cores, load average {meta['load_average_before'][0]:.1f} before,"
        f" {meta['load_average_after'][0]:.1f} after (other work on the machine shares the cores)"
    )
    load = f"open loop at {meta['rate']:.0f} requests/s offered" if meta["rate"] else "closed loop"
    print(
        f"total ({load}, {meta['workers']} server worker processes): {run['requests_per_s']:.0f} requests/s,"
        f" {run['errors']} errors; every search: p50 {run['search_p50_ms']:.1f} ms, p99 {run['search_p99_ms']:.1f} ms"
    )
    print(
        f"CPU per request: server {run['server_cpu_ms_per_request']:.2f} ms (all its processes),"
        f" load generator {run['client_cpu_ms_per_request']:.2f} ms"
        + (f"; most requests waiting for a connection: {run['open_loop_backlog_max']}" if meta["rate"] else "")
    )
    header = f"{'endpoint':<17}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
    print(header + f"{'anchor p50':>12}{'anchor p99':>12}{'x p50':>8}{'x p99':>8}")
    for label, e in run["endpoints"].items():
        print(
            f"{label:<17}{e['requests_per_s']:>8.1f}{e['p50_ms']:>9.1f}{e['p99_ms']:>9.1f}{e['errors']:>8}"
            f"{e['anchor_p50_ms']:>12.3f}{e['anchor_p99_ms']:>12.3f}{e['ratio_p50']:>8.0f}{e['ratio_p99']:>8.0f}"
        )
    rss = run["rss_mb"]
    if rss["samples"]:
        print(
            f"server RSS (all its processes): before warm-up {rss['before_warmup']:.0f} MB,"
            f" start {rss['start']:.0f} MB, mid-run {rss['mid']:.0f} MB, max {rss['max']:.0f} MB,"
            f" end {rss['end']:.0f} MB ({rss['end'] - rss['start']:+.0f} MB over the run,"
            f" {rss['end'] - rss['mid']:+.0f} MB over its second half; {rss['samples']} samples)"
        )
    for problem in run["first_errors"]:
        print(f"error: {problem}")


def cache_folder() -> Path:
    """$XDG_CACHE_HOME/heistwatch/bench-api (outside the repository; reused across runs)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "heistwatch" / "bench-api"


def _run(load: Coroutine[Any, Any, Results]) -> Results:
    """Run the load on uvloop when it is installed: the load generator's own event loop costs less CPU too."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(load)
    return uvloop.run(load)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="full")
    parser.add_argument("--duration", type=float, help="measured seconds (default: 300 full, 30 small)")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--think-ms", type=float, default=0.0, help="pause between a client's requests")
    parser.add_argument("--rate", type=float, help="open loop: offer this many requests/s (default: closed loop)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (`serve --workers`)")
    parser.add_argument("--anchor-queries", type=int, default=500, help="plain SQL queries per endpoint")
    parser.add_argument("--cache", type=Path, default=cache_folder())
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    count, default_duration = SIZES[args.size]
    duration = args.duration or default_duration
    folder = args.cache / f"{args.size}-{GENERATOR}"
    folder.mkdir(parents=True, exist_ok=True)
    kb = folder / "kb.sqlite"
    stamp = folder / "kb-build-seconds.txt"
    cached = kb.exists()
    if not cached:
        stamp.write_text(str(build_kb(kb, count, lambda line: print(line, file=sys.stderr))))
    tokens, token = fresh_tokens(folder)
    load_before = os.getloadavg()
    work = Workload(count)
    with serving(kb, tokens, folder / "server.log", args.workers) as (base, pid, started):
        print(f"server up after {started:.1f} s; driving it", file=sys.stderr)
        results = _run(
            drive(
                base,
                token,
                pid,
                work,
                clients=args.clients,
                warmup=args.warmup,
                duration=duration,
                think=args.think_ms / 1000,
                rate=args.rate,
            )
        )
    anchors = anchor(tokens.with_name(f"{tokens.stem}.catalog.sqlite"), Workload(count), args.anchor_queries)
    report = {
        "meta": {
            "indicators": count,
            "clients": args.clients,
            "duration_s": duration,
            "warmup_s": args.warmup,
            "think_ms": args.think_ms,
            "rate": args.rate,
            "workers": args.workers,
            "kb_build_s": float(stamp.read_text()),
            "kb_cached": cached,
            "server_start_s": started,
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "anchor": "the same searches and pages as plain SQL on the catalog file, one sqlite3 connection",
        },
        "run": summarize(results, anchors, duration),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 1 if report["run"]["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
