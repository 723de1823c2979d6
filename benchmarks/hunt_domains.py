"""Lookalike-domain hunt benchmark: throughput and recall/precision on planted truth, against anchors in one run.

A seeded generator writes DNS and proxy JSON lines over Zipf-distributed hosts: popular services, the brand's own
names (`binance.com` and its subdomains, about 5% of lines, as at an exchange), the lure company's, random
registrable names, and decoys (`notbinance.org`, `cabinancestry.com`, `finance.yahoo.com`, the brand inside a search
query). Planted among them, each a few times: lookalikes made by construction from the definitions in
`heistwatch.hunt.lookalike` (mixed-script IDNs written as UTF-8, as punycode and as JSON `\\u` escapes, ASCII
confusables, single-edit typos and transpositions under random TLDs, TLD swaps, combosquats, the brand left of another
domain). Truth is the set of planted registrable domains; a reported domain that was not planted is a false positive.

heistwatch: `hunt_domains` with 2 workers on the file (median of --repeats runs; the finder's setup, in which dnstwist
enumerates, is timed apart). Anchors in the same run: `cat` to /dev/null (the I/O limit), `dnstwist` (the engine
alone enumerating the same targets with the same dictionary and TLDs: permutations and seconds) and
`dnstwist_lookup` (what one does with dnstwist's list: one orjson parse per line and a lookup of every host and its
parents in the permutation set, one core), with its recall: the lookalikes an enumeration cannot list.

Run: .venv/bin/python benchmarks/hunt_domains.py [--size small|full] [--json] [--repeats N]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from heistwatch.hunt.domains import hunt_domains
from heistwatch.hunt.lookalike import (
    DEFAULT_TLDS,
    DEFAULT_WORDS,
    LookalikeFinder,
    enumerate_permutations,
    make_target,
    parse_host,
)

SIZES = {"small": (600_000, 40), "full": (6_000_000, 200)}
SEED = 20261126
BRAND, LURE = "binance.com", "coinbase.com"
POPULAR = (
    *("google.com", "microsoft.com", "github.com", "slack.com", "zoom.us", "okta.com", "amazonaws.com"),
    *("cloudflare.com", "akamaized.net", "office.com", "live.com", "apple.com", "icloud.com", "gstatic.com"),
    *("linkedin.com", "telegram.org", "kraken.com", "etherscan.io", "finance.yahoo.com", "youtube.com"),
    *("wikipedia.org", "dropbox.com", "notbinance.org", "cabinancestry.com", "bitfinex.com", "performance.net"),
)
SUBS = ("www", "api", "cdn", "static", "login", "accounts", "stream", "")
TLDS = ("com", "net", "org", "io", "xyz", "top", "info", "co", "app", "online")
CYRILLIC = {"a": "\u0430", "c": "\u0441", "e": "\u0435", "i": "\u0456", "o": "\u043e", "p": "\u0440"}
ALPHA = "abcdefghijklmnopqrstuvwxyz"
Row = dict[str, Any]


def planted_lookalikes(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """(host as written, registrable lookalike domain in punycode) for `count` lookalikes of several techniques."""
    out: dict[str, str] = {}
    makers = (_idn, _idn, _ascii_confusable, _typo, _transposition, _tld_swap, _combosquat, _in_subdomain)
    while len(out) < count:
        label, suffix, sub = makers[len(out) % len(makers)](rng)
        name = parse_host(f"{label}.{suffix}")
        if name is None or (name.label in ("binance", "coinbase") and name.suffix == "com"):
            continue
        written = name.ascii if rng.random() < 0.5 else f"{label}.{suffix}"
        out.setdefault(name.registrable, f"{sub}{written}")
    return [(host, domain) for domain, host in out.items()]


def _idn(rng: random.Random) -> tuple[str, str, str]:
    base = rng.choice(("binance", "coinbase"))
    spots = [i for i, c in enumerate(base) if c in CYRILLIC]
    chosen = rng.sample(spots, rng.randint(1, min(3, len(spots))))
    label = "".join(CYRILLIC[c] if i in chosen else c for i, c in enumerate(base))
    return label, rng.choice(("com", "com", "net", "io")), rng.choice(("", "www.", "login."))


def _ascii_confusable(rng: random.Random) -> tuple[str, str, str]:
    label = rng.choice(("c0inbase", "co1nbase", "c0inbas3", "binanc3", "coinbase")).replace("3", "e")
    return label if label != "coinbase" else "c0lnbase", rng.choice(TLDS), ""


def _typo(rng: random.Random) -> tuple[str, str, str]:
    base = rng.choice(("binance", "coinbase"))
    at = rng.randrange(len(base))
    char = rng.choice([c for c in ALPHA if c != base[at]])
    kind = rng.randrange(3)
    label = base[:at] + char + base[at + (kind != 1) :] if kind < 2 else base[:at] + base[at + 1 :]
    return label, rng.choice(TLDS), ""


def _transposition(rng: random.Random) -> tuple[str, str, str]:
    base = rng.choice(("binance", "coinbase"))
    at = rng.randrange(len(base) - 1)
    label = base[:at] + base[at + 1] + base[at] + base[at + 2 :]
    return label, rng.choice(TLDS), ""


def _tld_swap(rng: random.Random) -> tuple[str, str, str]:
    return rng.choice(("binance", "coinbase")), rng.choice(("xyz", "top", "co", "io", "github.io", "co.uk")), ""


def _combosquat(rng: random.Random) -> tuple[str, str, str]:
    base = rng.choice(("binance", "coinbase"))
    word = rng.choice(DEFAULT_WORDS)
    label = rng.choice((f"{base}-{word}", f"{word}-{base}", f"{base}{word}", f"{word}-{base}-{rng.choice(ALPHA)}"))
    return label, rng.choice(TLDS), ""


def _in_subdomain(rng: random.Random) -> tuple[str, str, str]:
    label = "".join(rng.choices(ALPHA, k=8))
    return label, rng.choice(TLDS), f"{rng.choice(('binance', 'binance.com', 'coinbase-login'))}."


def make_log(path: Path, lines: int, planted: int, seed: int = SEED) -> set[str]:
    """Write the log; the set of planted registrable lookalike domains."""
    rng = random.Random(seed)
    randoms = [f"{''.join(rng.choices(ALPHA, k=rng.randint(6, 12)))}.{rng.choice(TLDS)}" for _ in range(50_000)]
    hosts = [*POPULAR, *randoms]
    weights = list(itertools.accumulate(1 / (rank + 1) ** 1.1 for rank in range(len(hosts))))
    picks = rng.choices(hosts, cum_weights=weights, k=lines)
    special: dict[int, tuple[str, bool]] = {}
    truth = set()
    for host, domain in planted_lookalikes(rng, planted):
        truth.add(domain)
        for _ in range(rng.randint(1, 4)):
            special[rng.randrange(lines)] = (host, rng.random() < 0.2)
    with path.open("wb") as out:
        for i, host in enumerate(picks):
            escaped = False
            if i in special:
                host, escaped = special[i]
            elif i % 20 == 0:
                host = rng.choice((BRAND, f"www.{BRAND}", f"api.{BRAND}", f"stream.{BRAND}", f"help.{LURE}"))
            else:
                sub = SUBS[i % len(SUBS)]
                host = f"{sub}.{host}" if sub else host
            out.write(_line(i, host, rng, escaped))
    return truth


def _line(i: int, host: str, rng: random.Random, escaped: bool) -> bytes:
    if i % 2:
        row: Row = {"ts": 1767225600 + i, "type": "dns", "client_ip": f"10.0.{i % 250}.{i % 199}", "query": host}
        row |= {"qtype": "A", "rcode": "NOERROR"}
    else:
        path = "".join(rng.choices(ALPHA, k=8))
        query = f"?q={BRAND}" if i % 97 == 0 else "?x=1"
        row = {"ts": 1767225600 + i, "type": "proxy", "client_ip": f"10.1.{i % 250}.{i % 199}", "host": host}
        row |= {"url": f"https://{host}/{path}/index.html{query}", "status": 200, "ua": "Mozilla/5.0 (Windows NT 10.0)"}
        if query != "?x=1":
            row |= {"host": "www.google.com", "url": f"https://www.google.com/search{query}"}
    return (json.dumps(row).encode() if escaped else orjson.dumps(row)) + b"\n"


def measure_heistwatch(log: Path, truth: set[str], repeats: int) -> dict[str, Any]:
    started = time.perf_counter()
    finder = LookalikeFinder([BRAND], [LURE])
    setup = time.perf_counter() - started
    runs = []
    for _ in range(repeats):
        cpu, started = _cpu_seconds(), time.perf_counter()
        report = hunt_domains([log], finder, workers=2)
        runs.append((time.perf_counter() - started, _cpu_seconds() - cpu, report))
    seconds = statistics.median(s for s, _, _ in runs)
    cpu_seconds = statistics.median(c for _, c, _ in runs)
    report = runs[0][2]
    found = {s.lookalike.domain for s in report.sightings}
    return {
        "mb_per_s": round(report.bytes / seconds / 1e6, 1),
        "lines_per_s": round(report.lines / seconds),
        "mb_per_cpu_s": round(report.bytes / cpu_seconds / 1e6, 1),
        "recall": round(len(found & truth) / len(truth), 4),
        "precision": round(len(found & truth) / len(found), 4) if found else 1.0,
        "found": len(found & truth),
        "planted": len(truth),
        "false_positives": sorted(found - truth)[:20],
        "setup_s": round(setup, 2),
        "seconds": round(seconds, 3),
        "workers": 2,
    }


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (the forked workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure_dnstwist() -> tuple[dict[str, Any], dict[str, str]]:
    """dnstwist enumerating both targets with heistwatch's dictionary and TLDs; the permutation -> target table."""
    started = time.perf_counter()
    table: dict[str, str] = {}
    for domain, role in ((BRAND, "brand"), (LURE, "lure")):
        for permutation, _ in enumerate_permutations(make_target(domain, role), DEFAULT_WORDS, DEFAULT_TLDS):
            table[permutation] = domain
    return {"permutations": len(table), "seconds": round(time.perf_counter() - started, 3)}, table


def measure_dnstwist_lookup(log: Path, table: dict[str, str], truth: set[str]) -> dict[str, Any]:
    """One orjson parse per line; the query, host and URL host and each parent looked up in the permutation set."""
    started = time.perf_counter()
    found: set[str] = set()
    lines = 0
    with log.open("rb") as stream:
        for raw in stream:
            lines += 1
            row = orjson.loads(raw)
            for host in (row.get("query"), row.get("host"), (row.get("url") or "//").split("/")[2]):
                while host:
                    if host in table:
                        found.add(host)
                    host = host.partition(".")[2]
    seconds = time.perf_counter() - started
    domains = {parse_host(h).registrable for h in found if parse_host(h)}  # type: ignore[union-attr]
    return {
        "mb_per_s": round(log.stat().st_size / seconds / 1e6, 1),
        "lines_per_s": round(lines / seconds),
        "recall": round(len(domains & truth) / len(truth), 4),
        "precision": round(len(domains & truth) / len(domains), 4) if domains else 1.0,
    }


def measure_cat(log: Path) -> dict[str, Any]:
    started = time.perf_counter()
    subprocess.run(["cat", str(log)], stdout=subprocess.DEVNULL, check=True)
    return {"mb_per_s": round(log.stat().st_size / (time.perf_counter() - started) / 1e6, 1)}


def run(size: str, repeats: int = 3) -> dict[str, Any]:
    """The benchmark at one size, as the JSON the issue asks for (plus meta)."""
    lines, planted = SIZES[size]
    with tempfile.TemporaryDirectory(prefix="hw-domains-") as work:
        log = Path(work) / "dns-proxy.jsonl"
        truth = make_log(log, lines, planted)
        cat = measure_cat(log)
        heistwatch = measure_heistwatch(log, truth, repeats)
        dnstwist, table = measure_dnstwist()
        lookup = measure_dnstwist_lookup(log, table, truth)
        size_mb = log.stat().st_size / 1e6
    return {
        "meta": {
            "size": size,
            "lines": lines,
            "mb": round(size_mb, 1),
            "load_average": os.getloadavg()[0],
            "cores": os.cpu_count(),
        },
        "domains": {
            "heistwatch": heistwatch,
            "anchors": {"dnstwist": dnstwist, "dnstwist_lookup": lookup, "cat": cat},
            "ratios": {
                "vs_dnstwist_lookup": round(heistwatch["mb_per_s"] / lookup["mb_per_s"], 2),
                "vs_cat": round(heistwatch["mb_per_s"] / cat["mb_per_s"], 3),
            },
        },
    }


def render(result: dict[str, Any]) -> str:
    meta, part = result["meta"], result["domains"]
    hw, anchors, ratios = part["heistwatch"], part["anchors"], part["ratios"]
    lookup, cat, dnstwist = anchors["dnstwist_lookup"], anchors["cat"], anchors["dnstwist"]
    return "\n".join(
        [
            f"lookalike domains over {meta['mb']} MB / {meta['lines']:,} lines"
            f" (load average {meta['load_average']:.1f} on {meta['cores']} cores)",
            f"  heistwatch       {hw['mb_per_s']:8.1f} MB/s {hw['lines_per_s']:>10,} lines/s"
            f"  ({hw['mb_per_cpu_s']:.1f} MB/CPU-s)  recall {hw['recall']:.3f}  precision {hw['precision']:.3f}"
            f"  ({hw['found']}/{hw['planted']} planted; setup {hw['setup_s']} s)",
            f"  dnstwist_lookup  {lookup['mb_per_s']:8.1f} MB/s {lookup['lines_per_s']:>10,} lines/s"
            f"  recall {lookup['recall']:.3f}  -> heistwatch is {ratios['vs_dnstwist_lookup']}x",
            f"  cat              {cat['mb_per_s']:8.1f} MB/s  -> heistwatch at {ratios['vs_cat']:.1%} of it",
            f"  dnstwist enumerates {dnstwist['permutations']:,} permutations in {dnstwist['seconds']} s",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.size, args.repeats)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
