"""API benchmark: indicator search and TAXII pages under 50 concurrent clients, against plain SQLite on the same file.

A seeded generator writes a knowledge base of 1M indicators (`--size small`: 100k) through the store's own write
path (`SQLiteStore.import_batch`, 50k per batch) into a cache folder, once; later runs reuse it. Each run makes a
fresh token store with one reader (cleared for AMBER) and starts the real server (`heistwatch serve`, uvicorn, a
free loopback port) in a child process; the TAXII catalog beside the token store is kept across runs too, and
synced with the knowledge base at start-up (its duration is printed). Then `--clients` asyncio clients (httpx,
keep-alive, no think time unless `--think-ms`) send requests back to back for `--duration` seconds after a
`--warmup`: indicator search by exact value, by prefix, by substring and by kind, and TAXII object pages that
follow `next` for up to 20 pages before starting over (`limit` 100). Each request's latency is measured from
the client (so it includes the client's own queueing on the shared 2 cores), errors are any non-200 or transport
failure, and the server's RSS is sampled every second.

The anchor, measured in the same run once the server has stopped: the same searches and pages as plain SQL on
the same catalog file (the same indexes, filters, order and limits) through one sqlite3 connection, with no
HTTP, authentication, JSON or concurrency: the floor a server on this file could reach. The ratio is server
latency / anchor latency, per endpoint, at p50 and p99. The load average is printed: the machine's cores are
shared, and other work on them inflates the server's latencies, not the anchor's.

Run: .venv/bin/python benchmarks/api.py [--size small|full] [--duration S] [--clients 50] [--json]
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
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

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

    def record(self, label: str, ms: float, problem: str | None) -> None:
        """One request's outcome."""
        if problem is None:
            self.latencies[label].append(ms)
            return
        self.errors[label] += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(f"{label}: {problem}")


async def _client(
    client: httpx.AsyncClient, work: Workload, results: Results, window: tuple[float, float], think: float
) -> None:
    """Send requests back to back until the window ends; record those that finish inside it."""
    labels = [label for label, _ in MIX]
    weights = [weight for _, weight in MIX]
    walk: dict[str, Any] = {"next": None, "pages": 0}
    collection = next(c for c in COLLECTIONS if c.key == "all").id
    while time.perf_counter() < window[1]:
        label = work.rng.choices(labels, weights)[0]
        if label == "taxii:objects":
            url = f"/taxii2/api/collections/{collection}/objects/"
            params = {"limit": str(PAGE), **({"next": walk["next"]} if walk["next"] else {})}
            headers = {"Accept": "application/taxii+json;version=2.1"}
        else:
            url, params, headers = "/api/indicators", work.search(label), {}
        start = time.perf_counter()
        problem: str | None = None
        try:
            response = await client.get(url, params=params, headers=headers)
            if response.status_code != 200:
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
            elif label == "taxii:objects":
                body = response.json()
                walk["pages"] += 1
                walk["next"] = body.get("next") if body.get("more") and walk["pages"] < PAGES_PER_WALK else None
                walk["pages"] = walk["pages"] if walk["next"] else 0
            else:
                response.json()
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        end = time.perf_counter()
        if window[0] <= start and end <= window[1]:
            results.record(label, (end - start) * 1000, problem)
        if think:
            await asyncio.sleep(think)


def rss_bytes(pid: int) -> int:
    """A process's resident set size, from /proc (Linux)."""
    resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


async def _sample_rss(pid: int, results: Results, window: tuple[float, float]) -> None:
    while time.perf_counter() < window[1]:
        now = time.perf_counter()
        if now >= window[0]:
            results.rss.append((now - window[0], rss_bytes(pid)))
        await asyncio.sleep(1.0)
    results.rss.append((time.perf_counter() - window[0], rss_bytes(pid)))


async def drive(
    base: str, token: str, pid: int, work: Workload, *, clients: int, warmup: float, duration: float, think: float
) -> Results:
    """Run the clients for warm-up + duration; results cover the measured window only."""
    results = Results()
    start = time.perf_counter() + warmup
    window = (start, start + duration)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60.0) as client:
        tasks = [_client(client, work, results, window, think) for _ in range(clients)]
        await asyncio.gather(_sample_rss(pid, results, window), *tasks)
    return results


# -- the server -----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def serving(kb: Path, tokens: Path, log: Path) -> Iterator[tuple[str, int, float]]:
    """`heistwatch serve` on a free loopback port: (base URL, pid, seconds until it answered)."""
    port = _free_port()
    command = [sys.executable, "-m", "heistwatch", "--kb", str(kb), "serve", "--tokens", str(tokens)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    start = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}; see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/openapi.json", timeout=1.0).status_code == 200:
                    break
            time.sleep(0.2)
        yield base, process.pid, time.perf_counter() - start
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
    rss = [r for _, r in results.rss]
    total = sum(len(v) for v in results.latencies.values())
    return {
        "requests_per_s": total / duration,
        "errors": sum(results.errors.values()),
        "first_errors": results.first_errors,
        "endpoints": endpoints,
        "rss_mb": {
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
    print(f"total: {run['requests_per_s']:.0f} requests/s, {run['errors']} errors")
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
            f"server RSS: start {rss['start']:.0f} MB, mid-run {rss['mid']:.0f} MB, max {rss['max']:.0f} MB,"
            f" end {rss['end']:.0f} MB ({rss['end'] - rss['start']:+.0f} MB over the run,"
            f" {rss['end'] - rss['mid']:+.0f} MB over its second half; {rss['samples']} samples)"
        )
    for problem in run["first_errors"]:
        print(f"error: {problem}")


def cache_folder() -> Path:
    """$XDG_CACHE_HOME/heistwatch/bench-api (outside the repository; reused across runs)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "heistwatch" / "bench-api"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="full")
    parser.add_argument("--duration", type=float, help="measured seconds (default: 300 full, 30 small)")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--think-ms", type=float, default=0.0, help="pause between a client's requests")
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
    with serving(kb, tokens, folder / "server.log") as (base, pid, started):
        print(f"server up after {started:.1f} s; driving it", file=sys.stderr)
        results = asyncio.run(
            drive(
                base,
                token,
                pid,
                work,
                clients=args.clients,
                warmup=args.warmup,
                duration=duration,
                think=args.think_ms / 1000,
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
