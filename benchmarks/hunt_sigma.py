"""Sigma benchmark: SigmaHQ rules run locally over proxy, DNS and process-creation JSON lines, against an anchor.

A seeded generator writes three logs (proxy with URL, host, method and user agent; DNS with query, record type and
answer; process creation with image, command line, parent, user and hashes) with a few planted records that
shared rules must match. Rules: every file under ../shared/data/rules/sigma. Fewer than 200 of them can run on
these logs (the rest need Windows event logs or fields such logs lack), so a second, clearly labelled rule set adds
generated variants: copies of each applicable shared rule with every string value changed by a random token and a
new id, until about 200 rules apply. Variants keep each rule's shape (fields, modifiers, condition), not its values.

- `heistwatch`: `hunt_sigma` (default engine: each field's tests once per distinct value, Hyperscan for fields with
  many distinct values, numpy per row) on the shared rules; `heistwatch_200`: the same on shared rules + variants.
  Planning (sampling each file's keys, mapping fields, translating and checking every rule, compiling Hyperscan
  databases: in the first run only, later runs reuse them from the process's cache) is inside the timed call;
  loading the YAML is not.
- `heistwatch_200_sql`: `hunt_sigma(engine="sql")` on the ~200 rules: the straightforward engine, one SELECT per file
  with every rule's whole expression on every line (the engine before the distinct-value one).
- anchor `duckdb_per_rule` (on the ~200-rule set): the same extracted columns loaded once into a DuckDB table per
  kind of log, then one SELECT per rule over that table (load + all queries timed).
MB/s is log bytes on disk (uncompressed here) over wall time; DuckDB gets 2 threads (and heistwatch scans two files
at a time). CPU seconds are the process's user + system time (all its threads), so MB per CPU-second depends less on
how busy a shared machine is.
Every heistwatch run is checked against the straightforward engine (the same matches) and the anchor (as many), or
the benchmark fails. The load average before and after the runs is printed: other processes may share the cores.
Figures are medians over --repeats runs, the runs of the contenders interleaved.

Run: .venv/bin/python benchmarks/hunt_sigma.py [--size small|full] [--json] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import yaml

from heistwatch.hunt.sigma import EngineName, RuleSet, hunt_sigma, load_rules, plan_hunt, records_sql

RULES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "rules" / "sigma"
SIZES = {"small": 60_000, "full": 1_500_000}  # records per log: ~50 MB in all small, ~1.2 GB full
TARGET_RULES = 200
THREADS = 2
SEED = 20261126
HOSTS = (
    *("www.google.com", "login.microsoftonline.com", "api.binance.com", "slack.com", "github.com", "zoom.us"),
    *("www.linkedin.com", "cdn.jsdelivr.net", "api.coingecko.com", "outlook.office365.com", "s3.amazonaws.com"),
    *("telegram.org", "www.wikipedia.org", "update.googleapis.com", "docs.google.com", "api.kraken.com"),
)
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605",
    "Microsoft-CryptoAPI/10.0",
    "Slack/4.38 (Windows)",
    "python-requests/2.31.0",
)
IMAGES = (
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
    r"C:\Windows\System32\svchost.exe",
    r"C:\Windows\explorer.exe",
    r"C:\Program Files\Slack\slack.exe",
    r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
)
# Records that shared rules must match: (log, record, rule title)
PLANTED: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("proxy", {"host": "x.example", "url": "http://x.example/pwndrop/a.bin", "method": "GET"}, "PwnDrp Access"),
    ("proxy", {"host": "h.example", "url": "https://h.example/", "user_agent": "rclone/v1.66"}, "Rclone Activity"),
    ("proxy", {"host": "api.telegram.org", "url": "https://api.telegram.org/bot9/x", "user_agent": "curl/8"}, "Tel"),
    ("dns", {"query": "API.TELEGRAM.ORG", "record_type": "A", "answer": "149.154.167.220"}, "Telegram Bot"),
    ("dns", {"query": "pool.minexmr.com", "record_type": "A", "answer": "1.2.3.4"}, "Monero"),
    ("process_creation", {"image": r"C:\Users\a\msdtc.exe", "command_line": "msdtc.exe"}, "Lazarus System"),
)


def generate(folder: Path, records: int, rng: random.Random) -> list[Path]:
    """Write proxy.jsonl, dns.jsonl and process.jsonl with the planted records at random places."""
    makers: dict[str, Callable[[int], dict[str, Any]]] = {
        "proxy": lambda n: _proxy(rng, n),
        "dns": lambda n: _dns(rng, n),
        "process_creation": lambda n: _process(rng, n),
    }
    paths = []
    for kind, make in makers.items():
        planted = {rng.randrange(records): record for log, record, _ in PLANTED if log == kind}
        path = folder / f"{kind}.jsonl"
        with path.open("w") as out:
            for n in range(records):
                record = {"ts": _ts(n), **planted[n]} if n in planted else make(n)
                out.write(json.dumps(record) + "\n")
        paths.append(path)
    return paths


def _ts(n: int) -> str:
    return f"2026-03-{10 + n % 20:02d}T{n % 24:02d}:{n % 60:02d}:{n * 7 % 60:02d}Z"


def _host(rng: random.Random) -> str:
    return HOSTS[min(int(rng.paretovariate(1.2)) - 1, len(HOSTS) - 1)]


def _proxy(rng: random.Random, n: int) -> dict[str, Any]:
    host = _host(rng)
    folder, suffix = rng.choice(("api", "static", "v1", "assets")), rng.choice(("js", "png", "json"))
    path = f"/{folder}/{rng.randrange(10**6)}.{suffix}"
    return {
        "ts": _ts(n),
        "src_ip": f"10.20.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "host": host,
        "url": f"https://{host}{path}?session={rng.getrandbits(40):x}",
        "method": rng.choice(("GET", "GET", "GET", "POST")),
        "user_agent": rng.choice(AGENTS),
        "status": rng.choice((200, 200, 200, 304, 404)),
        "bytes": rng.randrange(10**6),
    }


def _dns(rng: random.Random, n: int) -> dict[str, Any]:
    ip = f"{rng.randrange(11, 200)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    source = f"10.20.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    kind = rng.choice(("A", "A", "AAAA", "CNAME"))
    return {"ts": _ts(n), "src_ip": source, "query": _host(rng), "record_type": kind, "answer": ip}


def _process(rng: random.Random, n: int) -> dict[str, Any]:
    image = rng.choice(IMAGES)
    return {
        "ts": _ts(n),
        "host": f"ws-{rng.randrange(400):03d}",
        "user": f"EXCHANGE\\user{rng.randrange(300)}",
        "image": image,
        "command_line": f'"{image}" --type=renderer --field-trial-handle={rng.getrandbits(32)}',
        "parent_image": r"C:\Windows\explorer.exe",
        "sha256": f"{rng.getrandbits(256):064x}",
        "md5": f"{rng.getrandbits(128):032x}",
    }


def write_variants(rules: RuleSet, applied_ids: set[str], folder: Path, rng: random.Random) -> int:
    """Copies of each applicable rule with every detection string changed by a random token; how many written."""
    sources = sorted({(r.info.file, r.info.id) for r in rules.rules if r.info.id in applied_ids})
    copies = math.ceil(max(TARGET_RULES - len(sources), 0) / max(len(sources), 1))
    written = 0
    for file, _ in sources:
        original = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
        for n in range(copies):
            if len(sources) + written >= TARGET_RULES:
                return written
            rule = dict(original)
            rule["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            rule["title"] = f"{original['title']} [generated variant {n + 1}]"
            rule["detection"] = {
                key: value if key == "condition" else _mutate(value, rng)
                for key, value in original["detection"].items()
            }
            (folder / f"{Path(file).stem}-v{n + 1}.yml").write_text(yaml.safe_dump(rule, sort_keys=False))
            written += 1
    return written


def _mutate(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        return {k: _mutate(v, rng) for k, v in value.items()}
    if isinstance(value, list):
        return [_mutate(v, rng) for v in value]
    if isinstance(value, str) and value:
        token = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(5))
        cut = rng.randrange(len(value) + 1)
        return value[:cut] + token + value[cut:]
    return value


def time_heistwatch(rules: RuleSet, logs: list[Path], engine: EngineName = "distinct") -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds and the report of one hunt."""
    start, cpu = time.perf_counter(), time.process_time()
    report = hunt_sigma(rules, logs, threads=THREADS, engine=engine)
    return time.perf_counter() - start, time.process_time() - cpu, report


def time_per_rule(rules: RuleSet, logs: list[Path]) -> tuple[float, float, int]:
    """The anchor: each kind's columns loaded once into a DuckDB table, then one query per rule."""
    start, cpu = time.perf_counter(), time.process_time()
    plans, _ = plan_hunt(rules, logs)
    con = duckdb.connect()
    con.execute(f"SET enable_progress_bar = false; SET threads = {THREADS}")
    hits = 0
    for k, plan in enumerate(plans):
        table = f"logs_{k}"
        for n, path in enumerate(plan.files):
            select = records_sql(path, plan, f"rejects_{k}_{n}")
            con.execute(f"{'INSERT INTO' if n else 'CREATE TABLE'} {table} {'' if n else 'AS '}{select}")
        for _, sql in plan.rules:
            hits += len(con.execute(f"SELECT n FROM {table} WHERE {sql}").fetchall())
    con.close()
    return time.perf_counter() - start, time.process_time() - cpu, hits


def _figures(times: list[tuple[float, float]], size: int, lines: int) -> dict[str, float]:
    wall, cpu = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
    return {
        "mb_per_s": round(size / 1e6 / wall, 1),
        "lines_per_s": round(lines / wall),
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "mb_per_cpu_s": round(size / 1e6 / cpu, 1),
    }


def _matches(report: Any) -> list[tuple[str, str, int]]:
    return sorted((m.rule.id, m.file, m.line) for m in report.matches)


def run(size: str, repeats: int = 1, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Generate the logs, run heistwatch on both rule sets and the anchor; figures as in the module docstring."""
    if not RULES.is_dir():
        raise SystemExit(f"no Sigma rules at {RULES}")
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory(prefix="sigma-bench-") as tmp:
        work = Path(tmp)
        log(f"generating {SIZES[size]:,} records per log")
        logs = generate(work, SIZES[size], rng)
        total = sum(p.stat().st_size for p in logs)
        started = time.perf_counter()
        shared = load_rules([RULES])
        load_s = time.perf_counter() - started
        variants = work / "variants"
        variants.mkdir()
        _, probe = plan_hunt(shared, logs)
        written = write_variants(shared, {info.id for info in probe.applied}, variants, rng)
        extended = load_rules([RULES, variants])
        out: dict[str, Any] = {"meta": {"size": size, "log_mb": round(total / 1e6, 1), "repeats": repeats}}
        out["meta"]["load_avg_before"] = [round(x, 2) for x in os.getloadavg()]
        out["meta"] |= {"load_rules_s": round(load_s, 3), "threads": THREADS, "variants_written": written}
        contenders: dict[str, tuple[RuleSet, EngineName]] = {
            "heistwatch": (shared, "distinct"),
            "heistwatch_200": (extended, "distinct"),
            "heistwatch_200_sql": (extended, "sql"),
        }
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in (*contenders, "duckdb_per_rule")}
        reports: dict[str, Any] = {}
        anchor_hits = 0
        for _ in range(repeats):
            for name, (rule_set, engine) in contenders.items():
                log(f"{name}: hunting")
                wall, cpu, reports[name] = time_heistwatch(rule_set, logs, engine)
                times[name].append((wall, cpu))
            log("anchor: duckdb per-rule")
            wall, cpu, anchor_hits = time_per_rule(extended, logs)
            times["duckdb_per_rule"].append((wall, cpu))
        out["meta"]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
        if _matches(reports["heistwatch_200"]) != _matches(reports["heistwatch_200_sql"]):
            raise SystemExit("the distinct-value engine and the SQL engine disagree")
        if anchor_hits != len(reports["heistwatch_200"].matches):  # the generated logs hold no malformed line
            raise SystemExit("heistwatch and the per-rule anchor disagree")
        results: dict[str, Any] = {}
        for name, (rule_set, _engine) in contenders.items():
            report = reports[name]
            found = {title for _, _, title in PLANTED if any(m.rule.title.startswith(title) for m in report.matches)}
            lines = report.lines
            results[name] = _figures(times[name], total, lines) | {
                "rules_applied": len(report.applied),
                "rules_skipped": len(report.skipped),
                "rules_loaded": len(rule_set.rules),
                "matches": len(report.matches),
                "planted_found": f"{len(found)}/{len(PLANTED)}",
                "rule_set": "shared SigmaHQ rules" if name == "heistwatch" else "shared + generated variants",
            }
        anchor = _figures(times["duckdb_per_rule"], total, lines)
        anchor |= {"rules": results["heistwatch_200"]["rules_applied"], "matches": anchor_hits}
        fast, sql = results["heistwatch_200"], results["heistwatch_200_sql"]
        anchor["ratio"] = round(fast["mb_per_s"] / anchor["mb_per_s"], 2)
        anchor["cpu_ratio"] = round(fast["mb_per_cpu_s"] / anchor["mb_per_cpu_s"], 2)
        sql["ratio_distinct_to_sql"] = round(fast["mb_per_s"] / sql["mb_per_s"], 2)
        sql["cpu_ratio_distinct_to_sql"] = round(fast["mb_per_cpu_s"] / sql["mb_per_cpu_s"], 2)
        return {"sigma": results | {"anchors": {"duckdb_per_rule": anchor}}, "meta": out["meta"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeats", type=int, help="runs to take the median of (default: 1 small, 3 full)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.size == "small" else 3)
    result = run(args.size, repeats, lambda msg: print(msg, file=sys.stderr))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    meta, sigma = result["meta"], result["sigma"]
    print(f"logs: {meta['log_mb']} MB; DuckDB threads: {meta['threads']}; median of {meta['repeats']}")
    loads = (" ".join(f"{x:.2f}" for x in meta[key]) for key in ("load_avg_before", "load_avg_after"))
    print("load average (1, 5, 15 min) before the runs: {}; after: {} (other processes share the cores)".format(*loads))
    for name in ("heistwatch", "heistwatch_200", "heistwatch_200_sql"):
        r = sigma[name]
        print(
            f"{name:18} {r['rule_set']:28} {r['mb_per_s']:6.1f} MB/s {r['lines_per_s']:>9,} lines/s"
            f" {r['cpu_seconds']:6.2f} CPU-s {r['mb_per_cpu_s']:6.1f} MB/CPU-s  applied {r['rules_applied']},"
            f" skipped {r['rules_skipped']}, matches {r['matches']}, planted found {r['planted_found']}"
        )
    a, sql = sigma["anchors"]["duckdb_per_rule"], sigma["heistwatch_200_sql"]
    print(
        f"{'duckdb_per_rule':18} {'shared + generated variants':28} {a['mb_per_s']:6.1f} MB/s"
        f" {a['lines_per_s']:>9,} lines/s {a['cpu_seconds']:6.2f} CPU-s {a['mb_per_cpu_s']:6.1f} MB/CPU-s"
        f"  {a['rules']} rules, matches {a['matches']}"
    )
    print(
        f"heistwatch_200 / anchor: {a['ratio']}x wall, {a['cpu_ratio']}x per CPU-second;"
        f" / sql engine: {sql['ratio_distinct_to_sql']}x wall, {sql['cpu_ratio_distinct_to_sql']}x per CPU-second"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
