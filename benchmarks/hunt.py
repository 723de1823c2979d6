"""Log hunt benchmark: throughput, peak memory and precision/recall on planted truth, against anchors in one run.

A seeded generator writes realistic JSON-lines telemetry (proxy, DNS, process events with hashes, wallet
withdrawals; Zipf-distributed hosts) with planted true hits (exact host, subdomain, upper-case and trailing-dot
names, IP inside a CIDR block, exact IP, URL with a query string, upper-case hashes, mixed-case ETH addresses, BTC)
and decoys (`not<ioc>`, `<ioc>.cdn-x.net`, an indicator inside a search query string, `1.2.3.4` inside
`11.2.3.45`). Nested indicator sets (1k, 100k and, with --size full, 1M) all contain the planted indicators.

heistwatch runs in a fresh subprocess per set, end to end: reading the indicator rows, compiling the set and its
prefilter (`load_indicator_set`), then `hunt_logs` with 2 workers. It runs first with an empty cache folder (cold:
everything compiled, then cached) and then `--repeats` times with that folder filled (warm: the set and its Hyperscan
database read back); its headline MB/s is the warm end-to-end figure, setup included. It also reports the scan alone,
the setup time, and the cores the scan used (CPU seconds of the process and its workers over wall seconds).
Anchors on the same file: `cat` to /dev/null, `rg -n -F -f` and
`grep -n -F -f` with the indicator values as patterns (skipped when the binary is absent), and `python_sets`
(one orjson parse per line + exact set lookups of the mapped fields, one core). heistwatch is scored per
indicator (sighting counts against planted counts), the anchors per line (matched lines against planted lines).
Peak memory: for heistwatch the highest summed PSS of its process and workers (sampled every 20 ms, so forked
workers' shared pages count once); for the anchors GNU time's maximum RSS (wait4's, an upper bound, without it).

The other hunts' benchmarks run from here too, each through its own script's `run(size)` (they stay runnable on
their own): `hunt_files.py` (parts "files" and "tlsh"), `hunt_domains.py` ("domains") and `hunt_sigma.py`
("sigma"). `--parts` picks which run (default: all).

Run: .venv/bin/python benchmarks/hunt.py [--size small|full] [--json] [--repeats N] [--parts logs,files,domains,sigma]
--json prints the issue's one object {"meta": {PART: {...}}, "logs": {...}, "files": {...}, "tlsh": {...},
"domains": {...}, "sigma": {...}} (the parts asked for). "logs" is {"heistwatch": {...}, "anchors": {"cat"|"ripgrep"|
"grep"|"python_sets": {...}}} at the largest indicator set, plus "by_indicators": {"<set size>": the same} for every
set; each entry has mb_per_s, lines_per_s, recall, precision, peak_mb, n_indicators (heistwatch adds setup_s and
scan_peak_mb: its peak_mb covers the setup too, when a large set's prefilter is compiled in a child process). The
other parts have the same inner shape ("heistwatch", "anchors", with ratios), as their scripts document; a part whose
data is absent says "skipped" and why. Figures are medians over --repeats runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

SIZES: dict[str, tuple[int, tuple[int, ...]]] = {
    "small": (300_000, (1_000, 100_000)),
    "full": (9_000_000, (1_000, 100_000, 1_000_000)),  # about 2.1 GB of JSON lines
}
SEED = 20261126
TLDS = ("com", "net", "org", "io", "xyz", "top", "info", "biz", "cc", "co")
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
CYCLE = ("domain",) * 8 + ("ipv4",) * 3 + ("cidr", "url", "url", "sha256", "sha256", "md5", "eth", "btc", "email")
BENIGN_BASES = (
    *("google.com", "microsoft.com", "github.com", "slack.com", "zoom.us", "okta.com", "amazonaws.com"),
    *("cloudflare.com", "akamaized.net", "office.com", "live.com", "apple.com", "icloud.com", "digicert.com"),
    *("windowsupdate.com", "linkedin.com", "telegram.org", "binance.com", "coinbase.com", "kraken.com"),
    *("etherscan.io", "blockchain.info", "atlassian.net", "salesforce.com", "dropbox.com", "gstatic.com"),
    *("googleapis.com", "youtube.com", "twitter.com", "facebook.com", "wikipedia.org", "stackoverflow.com"),
    *("npmjs.org", "pypi.org"),
)
SUBS = ("www", "api", "cdn", "static", "login", "mail", "img", "assets", "edge", "update", "")
BENIGN_FIRST_OCTETS = (13, 52, 142, 151, 172)
Row = dict[str, Any]


# --- the world: indicators, planted truth and decoys ----------------------------------------------------------


def _label(rng: random.Random) -> str:
    return "".join(rng.choices(ALNUM, k=rng.randint(6, 12)))


def _indicator(rng: random.Random, kind: str) -> tuple[str, str]:
    """(kind, normalized value) of one random indicator that no benign record can contain."""
    octets = ".".join(str(rng.randint(0, 255)) for _ in range(2))
    values: dict[str, Callable[[], tuple[str, str]]] = {
        "domain": lambda: ("domain", f"{_label(rng)}.{rng.choice(TLDS)}"),
        "ipv4": lambda: ("ipv4", f"{rng.randint(60, 95)}.{octets}.{rng.randint(1, 24)}"),
        "cidr": lambda: ("ipv4", f"{rng.randint(100, 120)}.{octets}.0/24"),
        "url": lambda: ("url", f"http://{_label(rng)}.{rng.choice(TLDS)}/{_label(rng)}/{_label(rng)}.php"),
        "sha256": lambda: ("sha256", f"{rng.getrandbits(256):064x}"),
        "md5": lambda: ("md5", f"{rng.getrandbits(128):032x}"),
        "eth": lambda: ("eth", f"0x{rng.getrandbits(160):040x}"),
        "btc": lambda: ("btc", "1" + "".join(rng.choices(B58, k=33))),
        "email": lambda: ("email", f"{_label(rng)}@{_label(rng)}.{rng.choice(TLDS)}"),
    }
    return values[kind]()


def make_indicators(rng: random.Random, count: int) -> list[tuple[str, str, str]]:
    """(id, kind, value) rows, distinct values, kinds mixed evenly so every nested prefix has all kinds."""
    rows: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    while len(rows) < count:
        kind, value = _indicator(rng, CYCLE[len(rows) % len(CYCLE)])
        if value not in seen:
            seen.add(value)
            rows.append((f"indicator--{len(rows):07d}", kind, value))
    return rows


def _mixed_case(rng: random.Random, text: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in text)


def _planted(rng: random.Random, kind: str, value: str) -> Row | None:
    """A record that must be a hit on this indicator, written the way logs spell it."""
    if kind == "domain":
        host = rng.choice((value, f"www2.{value}", f"{value.upper()}.", f"a.b.{value}"))
        return rng.choice(({"type": "dns", "query": host}, {"type": "proxy", "host": host, "url": f"https://{host}/x"}))
    if kind == "ipv4" and "/" in value:
        return {"type": "proxy", "host": "203.0.113.9", "dst_ip": value.replace(".0/24", f".{rng.randint(1, 254)}")}
    if kind == "ipv4":
        return {"type": "proxy", "host": "cdn.example.net", "dst_ip": value}
    if kind == "url":
        host = value.split("/")[2]
        return {"type": "proxy", "host": host, "url": f"{value}?session={_label(rng)}&utm=x"}
    if kind in ("sha256", "md5"):
        return {"type": "process", "image": "C:\\Users\\Public\\upd.exe", kind: value.upper()}
    if kind in ("eth", "btc"):
        address = "0x" + _mixed_case(rng, value[2:]) if kind == "eth" else value
        return {"type": "withdrawal", "asset": kind.upper(), "address": address, "amount": str(rng.randint(1, 10**9))}
    return None


def _decoy(rng: random.Random, kind: str, value: str) -> Row | None:
    """A record that contains an indicator as text but must not be a hit."""
    if kind == "domain":
        return rng.choice(
            (
                {"type": "proxy", "host": f"not{value}", "url": f"https://not{value}/"},
                {"type": "dns", "query": f"{value}.cdn-x.net"},
                {"type": "proxy", "host": "www.google.com", "url": f"https://www.google.com/search?q={value}"},
            )
        )
    if kind == "ipv4" and "/" not in value:
        first, middle, last = value.split(".", 1)[0], value.split(".")[1:3], value.rsplit(".", 1)[1]
        return {"type": "proxy", "host": "cdn.example.net", "dst_ip": ".".join([f"1{first}", *middle, f"{last}5"])}
    return None


# --- the logs ----------------------------------------------------------------------------------------------------


class LogWriter:
    """Background telemetry with planted and decoy records at random lines."""

    def __init__(self, rng: random.Random, lines: int) -> None:
        self.rng = rng
        self.lines = lines
        hosts = [f"{s}.{b}" if s else b for b in BENIGN_BASES for s in SUBS]
        hosts += [f"svc{i}.corp-{i % 97}.example.com" for i in range(3000)]
        weights = [1 / (rank + 1) for rank in range(len(hosts))]
        self.hosts = rng.choices(hosts, weights=weights, k=50_000)
        self.ips = [
            f"{rng.choice(BENIGN_FIRST_OCTETS)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            for _ in range(20_000)
        ]
        self.hashes = [f"{rng.getrandbits(256):064x}" for _ in range(3000)]
        self.wallets = [f"0x{rng.getrandbits(160):040x}" for _ in range(2000)]
        self.paths = ["/", "/api/v1/items", "/login", "/static/app.js", "/search?q=weather", "/v2/orders?limit=50"]

    def background(self, i: int) -> Row:
        rng, kind = self.rng, self.rng.random()
        base: Row = {"ts": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z"}
        src = f"10.{i % 256}.{(i // 256) % 256}.{i % 250 + 1}"
        host = self.hosts[rng.randrange(len(self.hosts))]
        if kind < 0.5:
            path = self.paths[i % len(self.paths)]
            ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
            url, dst = f"https://{host}{path}", self.ips[i % len(self.ips)]
            proxy = {"type": "proxy", "src_ip": src, "user": f"u{i % 800}", "method": "GET", "host": host, "url": url}
            return base | proxy | {"dst_ip": dst, "status": 200, "bytes": rng.randint(200, 90000), "ua": ua}
        if kind < 0.8:
            return base | {"type": "dns", "src_ip": src, "query": host, "qtype": "A", "answer": self.ips[i % 977]}
        if kind < 0.95:
            digest = self.hashes[rng.randrange(len(self.hashes))]
            image = f"C:\\Program Files\\App{i % 40}\\app.exe"
            process = {"type": "process", "device": f"WS-{i % 500:04d}", "image": image, "sha256": digest}
            return base | process | {"md5": digest[:32], "user": f"u{i % 800}", "cmdline": "app.exe --update"}
        return base | {"type": "withdrawal", "asset": "ETH", "address": self.wallets[i % 2000], "amount": str(i * 1000)}

    def write(self, path: Path, special: dict[int, Row]) -> int:
        """Write the file; its size in bytes."""
        with path.open("wb") as out:
            for i in range(1, self.lines + 1):
                row = special.get(i) or self.background(i)
                out.write(orjson.dumps(row) + b"\n")
        return path.stat().st_size


def make_world(
    rng: random.Random, lines: int, truth_pool: list[tuple[str, str, str]]
) -> tuple[dict[int, Row], Counter[str], set[int], set[int]]:
    """(records by line, expected sighting count per indicator id, true lines, decoy lines)."""
    chosen = rng.sample(truth_pool, 400)
    planted = [(ident, row) for ident, kind, value in chosen[:250] if (row := _planted(rng, kind, value))]
    decoys = [row for _, kind, value in chosen[250:] if (row := _decoy(rng, kind, value))]
    positions = rng.sample(range(1, lines + 1), len(planted) + len(decoys))
    special: dict[int, Row] = {}
    expected: Counter[str] = Counter()
    for position, (ident, row) in zip(positions, planted, strict=False):
        special[position] = {"ts": "2026-11-26T03:14:15Z", **row}
        expected[ident] += 1
    for position, row in zip(positions[len(planted) :], decoys, strict=True):
        special[position] = {"ts": "2026-11-26T03:14:15Z", **row}
    true_lines = set(positions[: len(planted)])
    return special, expected, true_lines, set(positions[len(planted) :])


# --- measurements ------------------------------------------------------------------------------------------------


class TimedOut(Exception):
    """An anchor that ran past --anchor-timeout and was stopped."""


def _run_binary(command: list[str], stdout: int | None, timeout: float | None = None) -> tuple[float, bytes, float]:
    """(seconds, stdout, peak MB) of one command; GNU time measures the peak when present, else wait4 does
    (an upper bound: a forked child starts with this process's resident pages). TimedOut past `timeout` seconds."""
    gnu_time = Path("/usr/bin/time")
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss, tempfile.TemporaryFile() as out:
        wrapped = [str(gnu_time), "-f", "%M", "-o", rss.name, *command] if gnu_time.exists() else command
        start = time.perf_counter()
        sink = out if stdout == subprocess.PIPE else stdout
        process = subprocess.Popen(wrapped, stdout=sink, stderr=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"})
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise TimedOut from None
        seconds = time.perf_counter() - start
        out.seek(0)
        output = out.read()
        measured = rss.read().strip().splitlines()
    return seconds, output, int(measured[-1]) / 1024 if measured else 0.0


def _pss_mb(pid: int) -> float:
    """Proportional set size of one process (shared pages split among their users), in MB."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _family(pid: int) -> list[int]:
    """A process and all its descendants."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            out += [p for child in task.read_text().split() for p in _family(int(child))]
    return out


class PeakMemory(threading.Thread):
    """Samples the summed PSS of this process and its workers every 20 ms; `peak` is the highest sum, in MB."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, sum(_pss_mb(pid) for pid in _family(os.getpid())))
            time.sleep(0.02)


def _line_scores(matched: set[int], true_lines: set[int]) -> tuple[float, float]:
    """(precision, recall) of matched line numbers against the planted true lines."""
    hits = len(matched & true_lines)
    return (hits / len(matched) if matched else 1.0), hits / len(true_lines)


def _figures(seconds: float, size: int, lines: int, peak: float, n: int, scores: tuple[float, float] | None) -> Row:
    precision, recall = scores if scores else (None, None)
    speed = {"mb_per_s": round(size / 1e6 / seconds, 1), "lines_per_s": round(lines / seconds)}
    quality = {"recall": recall, "precision": precision, "peak_mb": round(peak), "n_indicators": n}
    return speed | quality | {"seconds": round(seconds, 3)}


def measure_grep(
    name: str, log: Path, patterns: Path, n: int, lines: int, true_lines: set[int], timeout: float | None
) -> Row | None:
    """ripgrep or GNU grep with fixed-string patterns (None when the binary is absent)."""
    binary = (
        shutil.which("rg", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
        if name == "ripgrep"
        else shutil.which("grep")
    )
    if binary is None:
        return None
    command = (
        [binary, "--no-config", "-n", "-F", "-f", str(patterns), str(log)]
        if name == "ripgrep"
        else [binary, "-n", "-F", "-f", str(patterns), str(log)]
    )
    seconds, output, peak = _run_binary(command, subprocess.PIPE, timeout)
    matched = {int(line.split(b":", 1)[0]) for line in output.splitlines() if line}
    return _figures(seconds, log.stat().st_size, lines, peak, n, _line_scores(matched, true_lines))


def measure_cat(log: Path, lines: int) -> Row:
    seconds, _, peak = _run_binary(["cat", str(log)], subprocess.DEVNULL)
    return _figures(seconds, log.stat().st_size, lines, peak, 0, None)


SET_FIELDS = ("host", "query", "dst_ip", "src_ip", "answer", "url", "sha256", "md5", "address")


def measure_python_sets(
    log: Path, patterns: Path, n: int, lines: int, true_lines: set[int], timeout: float | None
) -> Row:
    """The naive Python hunt, in a fresh process: one orjson parse per line, exact lookups of the mapped fields."""
    command = [sys.executable, __file__, "--python-sets", str(log), str(patterns)]
    seconds, output, peak = _run_binary(command, subprocess.PIPE, timeout)
    matched = {int(number) for number in output.split()}
    return _figures(seconds, log.stat().st_size, lines, peak, n, _line_scores(matched, true_lines))


def _python_sets_main(log: str, patterns: str) -> int:
    """The subprocess side of measure_python_sets: print the numbers of the matched lines."""
    values = set(Path(patterns).read_text(encoding="utf-8").splitlines())
    with open(log, "rb") as stream:
        for number, line in enumerate(stream, 1):
            record = orjson.loads(line)
            if any(record.get(name) in values for name in SET_FIELDS):
                print(number)
    return 0


def measure_heistwatch(log: Path, indicators: Path, n: int, cache: Path) -> Row:
    """Run the hunt in a fresh process (so peak memory is its own) with this cache folder; its figures and counts."""
    command = [sys.executable, __file__, "--measure", str(log), str(indicators), str(n), str(cache)]
    output = subprocess.run(command, check=True, capture_output=True).stdout
    return dict(orjson.loads(output))


def _read_indicators(path: Path, n: int) -> Iterator[tuple[str, str, str]]:
    """The first `n` (id, kind, value) rows of the indicators file."""
    with path.open(encoding="utf-8") as rows:
        for _, line in zip(range(n), rows, strict=False):
            ident, kind, value = line.rstrip("\n").split("\t")
            yield ident, kind, value


def _cpu_seconds() -> float:
    """User and system CPU seconds of this process and its reaped children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _measure_main(log: str, indicators: str, n: int, cache: str) -> int:
    """The subprocess side of measure_heistwatch: set up, hunt, print figures as JSON."""
    from heistwatch.hunt import hunt_logs  # here, so the parent's memory holds no indicator tables
    from heistwatch.hunt.set_cache import load_indicator_set

    sampler = PeakMemory()
    sampler.start()
    start = time.perf_counter()
    iset = load_indicator_set(_read_indicators(Path(indicators), n), Path(cache))
    setup = time.perf_counter() - start
    setup_peak, sampler.peak = sampler.peak, 0.0
    cpu, start = _cpu_seconds(), time.perf_counter()
    report = hunt_logs([log], iset, workers=2)
    seconds = time.perf_counter() - start
    cores = (_cpu_seconds() - cpu) / seconds
    counts = Counter[str]()
    for sighting in report.sightings:
        counts[sighting.indicator_id] += sighting.count
    sampler.running = False
    sampler.join()
    peak = sampler.peak or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {"scan_s": seconds, "setup_s": setup, "seconds": setup + seconds, "cores_used": cores}
    figures |= {"peak_mb": max(peak, setup_peak), "scan_peak_mb": peak}
    print(json.dumps(figures | {"counts": counts, "lines": report.lines, "problems": report.problem_count}))
    return 0


def _count_scores(counts: dict[str, int], expected: Counter[str]) -> tuple[float, float]:
    """(precision, recall) of sighting counts per indicator against the planted counts."""
    tp = sum(min(counts.get(ident, 0), want) for ident, want in expected.items())
    fp = sum(max(0, got - expected.get(ident, 0)) for ident, got in counts.items())
    fn = sum(max(0, want - counts.get(ident, 0)) for ident, want in expected.items())
    return (tp / (tp + fp) if tp + fp else 1.0), tp / (tp + fn)


# --- the run -----------------------------------------------------------------------------------------------------


def _median(runs: list[Row]) -> Row:
    """Figures of the run with the median time (scores are identical across runs)."""
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def _heistwatch_figures(runs: list[Row], size_bytes: int, lines: int, n: int, expected: Counter[str]) -> Row:
    """The median run's end-to-end figures, with its scan alone, setup and cores used beside them."""
    best = _median(runs)
    figures = _figures(best["seconds"], size_bytes, lines, best["peak_mb"], n, _count_scores(best["counts"], expected))
    figures["scan_mb_per_s"] = round(size_bytes / 1e6 / best["scan_s"], 1)
    figures |= {"setup_s": round(best["setup_s"], 2), "cores_used": round(best["cores_used"], 2)}
    return figures | {"scan_peak_mb": round(best["scan_peak_mb"]), "problems": best["problems"]}


def _load() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run(
    size: str, repeats: int, work: Path, log_progress: Callable[[str], None], anchor_timeout: float | None = None
) -> Row:
    rng = random.Random(SEED)
    lines, set_sizes = SIZES[size]
    log_progress(f"generating {max(set_sizes):,} indicators and {lines:,} log lines")
    rows = make_indicators(rng, max(set_sizes))
    special, expected, true_lines, _ = make_world(rng, lines, rows[: min(set_sizes)])
    log = work / "events.jsonl"
    size_bytes = LogWriter(rng, lines).write(log, special)
    indicators = work / "indicators.tsv"
    indicators.write_text("".join(f"{i}\t{k}\t{v}\n" for i, k, v in rows), encoding="utf-8")
    meta = {"size": size, "bytes": size_bytes, "lines": lines, "planted": sum(expected.values()), "load_start": _load()}
    result: Row = {"meta": meta | {"repeats": repeats, "cpus": os.cpu_count()}, "logs": {}}
    for n in set_sizes:
        patterns = work / f"patterns-{n}.txt"
        patterns.write_text("".join(f"{v}\n" for _, _, v in rows[:n]), encoding="utf-8")
        entry: Row = {"anchors": {}, "load": _load()}
        cache = work / f"cache-{n}"
        log_progress(f"{n:,} indicators: heistwatch, cold cache (load {entry['load']})")
        cold = _heistwatch_figures([measure_heistwatch(log, indicators, n, cache)], size_bytes, lines, n, expected)
        log_progress(f"{n:,} indicators: heistwatch, warm cache")
        runs = [measure_heistwatch(log, indicators, n, cache) for _ in range(repeats)]
        entry["heistwatch"] = _heistwatch_figures(runs, size_bytes, lines, n, expected)
        entry["heistwatch_cold"] = cold
        for name in ("cat", "ripgrep", "grep", "python_sets"):
            log_progress(f"{n:,} indicators: {name} (load {_load()})")
            figures = [
                _anchor(name, log, patterns, rows[:n], lines, true_lines, anchor_timeout) for _ in range(repeats)
            ]
            if figures[0] is not None:
                entry["anchors"][name] = _median([f for f in figures if f is not None])
        entry["load_end"] = _load()
        result["logs"][str(n)] = entry
    result["meta"]["load_end"] = _load()
    return result


def _anchor(
    name: str,
    log: Path,
    patterns: Path,
    rows: list[tuple[str, str, str]],
    lines: int,
    true_lines: set[int],
    timeout: float | None,
) -> Row | None:
    """One anchor's figures; one stopped after `timeout` seconds has its MB/s as an upper bound and no scores."""
    try:
        if name == "cat":
            return measure_cat(log, lines)
        if name == "python_sets":
            return measure_python_sets(log, patterns, len(rows), lines, true_lines, timeout)
        return measure_grep(name, log, patterns, len(rows), lines, true_lines, timeout)
    except TimedOut:
        assert timeout is not None
        figures = _figures(timeout, log.stat().st_size, lines, 0.0, len(rows), None)
        return figures | {"timed_out": True, "peak_mb": None}


PARTS = ("logs", "files", "domains", "sigma")


def run_parts(
    parts: list[str], size: str, repeats: int, log_progress: Callable[[str], None], anchor_timeout: float | None = None
) -> Row:
    """The chosen parts, each by its own benchmark script, as one object; "files" brings "tlsh" with it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import hunt_domains
    import hunt_files
    import hunt_sigma

    out: Row = {"meta": {}}
    for part in parts:
        log_progress(f"-- {part}")
        if part == "logs":
            with tempfile.TemporaryDirectory(prefix="hunt-bench-") as tmp:
                found = run(size, repeats, Path(tmp), log_progress, anchor_timeout)
            largest = found["logs"][max(found["logs"], key=int)]
            found["logs"] = {**largest, "by_indicators": found["logs"]}
        elif part == "files":
            found = hunt_files.run(size)
        elif part == "domains":
            found = hunt_domains.run(size, max(repeats, 1))
        else:
            try:
                found = hunt_sigma.run(size, repeats, log_progress)
            except SystemExit as exc:  # the script's own refusal when the shared Sigma rules are absent
                found = {"meta": {}, "sigma": {"skipped": str(exc)}}
        out["meta"][part] = found.pop("meta", {})
        out.update(found)
    return out


def render_logs(logs: Row) -> str:
    """The log part as a table per indicator-set size."""
    return render({"meta": logs["meta"], "logs": logs["by_indicators"]})


def render(result: Row) -> str:
    meta = result["meta"]
    out = [
        f"log hunt, {meta['size']}: {meta['bytes'] / 1e6:.0f} MB, {meta['lines']:,} lines,"
        f" {meta['planted']} planted hits, median of {meta['repeats']}; heistwatch MB/s end to end (setup included),"
        f" warm cache unless marked cold; hw x = warm heistwatch MB/s / row's MB/s; load average {meta['load_start']}"
        f" at the start, {meta['load_end']} at the end"
    ]
    for n, entry in result["logs"].items():
        hw, cold = entry["heistwatch"], entry["heistwatch_cold"]
        out.append(
            f"\n{int(n):,} indicators (load {entry['load']} .. {entry['load_end']}); heistwatch warm: setup"
            f" {hw['setup_s']} s, scan alone {hw['scan_mb_per_s']} MB/s on {hw['cores_used']} cores, peak while"
            f" scanning {hw['scan_peak_mb']} MB; cold: setup {cold['setup_s']} s,"
            f" scan alone {cold['scan_mb_per_s']} MB/s"
        )
        out.append(f"  {'':15} {'MB/s':>8} {'lines/s':>10} {'precision':>9} {'recall':>7} {'peak MB':>8} {'hw x':>6}")
        for name, fig in [("heistwatch", hw), ("heistwatch cold", cold), *entry["anchors"].items()]:
            ratio = hw["mb_per_s"] / fig["mb_per_s"]
            p = "-" if fig["precision"] is None else f"{fig['precision']:.3f}"
            r = "-" if fig["recall"] is None else f"{fig['recall']:.3f}"
            speed = f"{fig['mb_per_s']:8.1f} {fig['lines_per_s']:10,}"
            bound = " (stopped: MB/s is an upper bound, hw x a lower one)" if fig.get("timed_out") else ""
            out.append(f"  {name:15} {speed} {p:>9} {r:>7} {fig['peak_mb'] or '-':>8} {ratio:6.2f}{bound}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument(
        "--anchor-timeout", type=float, help="stop an anchor after this many seconds (its MB/s is then a bound)"
    )
    parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--python-sets", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.python_sets:
        return _python_sets_main(*args.python_sets)
    if args.measure:
        return _measure_main(args.measure[0], args.measure[1], int(args.measure[2]), args.measure[3])
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := sorted(set(parts) - set(PARTS)):
        parser.error(f"unknown parts {', '.join(unknown)} (known: {', '.join(PARTS)})")
    result = run_parts(parts, args.size, args.repeats, lambda m: print(m, file=sys.stderr), args.anchor_timeout)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for part in (p for p in ("logs", "files", "tlsh", "domains", "sigma") if p in result):
        shown = render_logs({"meta": result["meta"]["logs"], **result["logs"]}) if part == "logs" else None
        print(f"\n== {part}\n" + (shown or json.dumps(result[part], indent=1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
