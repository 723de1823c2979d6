"""Synthetic exchange telemetry with a campaign's indicators planted among ordinary traffic, and the truth.

Proxy and DNS logs (JSON lines, the proxy log gzip-compressed) and endpoint process events. Ordinary traffic
draws hosts from a Zipf-like popularity list; the planted lines use the indicators as an attacker's traffic
would show them (a subdomain, upper case and a trailing dot, a URL with a query, an upper-case hash), and
decoys put look-alikes beside them (`not<domain>`, `<domain>.cdn-x.net`, the domain inside a search query,
the IP inside a longer number) that an exact hunt must not report.
"""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ORDINARY_HOSTS = (
    "www.google.com",
    "login.microsoftonline.com",
    "api.binance.com",
    "slack.com",
    "github.com",
    "zoom.us",
    "www.linkedin.com",
    "cdn.jsdelivr.net",
    "api.coingecko.com",
    "outlook.office365.com",
    "s3.amazonaws.com",
    "telegram.org",
    "www.wikipedia.org",
    "update.googleapis.com",
    "docs.google.com",
    "api.kraken.com",
)


@dataclass
class Planted:
    """How many lines each planted indicator value should match, and how many decoy lines were added."""

    hits: Counter[str] = field(default_factory=Counter)
    decoys: int = 0


def generate_telemetry(
    folder: Path, planted: dict[str, list[str]], *, lines: int = 20_000, seed: int = 0
) -> tuple[list[Path], Planted]:
    """Write proxy, DNS and endpoint logs into `folder`; `planted` maps indicator kind -> values to plant."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    truth = Planted()
    proxy, dns, endpoint = [], [], []
    for n in range(lines):
        ts = f"2026-03-{10 + n * 10 // lines:02d}T{n % 24:02d}:{n % 60:02d}:00Z"
        host = ORDINARY_HOSTS[min(int(rng.paretovariate(1.2)) - 1, len(ORDINARY_HOSTS) - 1)]
        proxy.append(
            {
                "ts": ts,
                "src_ip": f"10.20.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                "host": host,
                "url": f"https://{host}/{rng.randrange(10**6)}",
                "dst_ip": _public_ip(rng),
                "bytes": rng.randrange(10**6),
            }
        )
        dns.append({"ts": ts, "query": host, "answer": _public_ip(rng)})
        endpoint.append({"ts": ts, "process": "chrome.exe", "sha256": f"{rng.getrandbits(256):064x}"})
    _plant(rng, planted, proxy, dns, endpoint, truth)
    files = [
        _write(folder / "proxy.jsonl.gz", proxy, compress=True),
        _write(folder / "dns.jsonl", dns),
        _write(folder / "endpoint.jsonl", endpoint),
    ]
    return files, truth


def _public_ip(rng: random.Random) -> str:
    return f"{rng.randrange(11, 200)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _plant(
    rng: random.Random,
    planted: dict[str, list[str]],
    proxy: list[dict[str, Any]],
    dns: list[dict[str, Any]],
    endpoint: list[dict[str, Any]],
    truth: Planted,
) -> None:
    """Insert true hits and decoys at random positions of the three logs."""

    def put(log: list[dict[str, Any]], record: dict[str, Any]) -> None:
        log.insert(rng.randrange(len(log) + 1), {"ts": "2026-03-16T01:03:00Z", **record})

    for domain in planted.get("domain", []):
        put(dns, {"query": f"cdn.{domain}", "answer": _public_ip(rng)})
        put(dns, {"query": f"{domain.upper()}.", "answer": _public_ip(rng)})
        truth.hits[domain] += 2
        put(dns, {"query": f"not{domain}", "answer": _public_ip(rng)})
        put(dns, {"query": f"{domain}.cdn-x.net", "answer": _public_ip(rng)})
        put(proxy, {"host": "www.google.com", "url": f"https://www.google.com/search?q={domain}"})
        truth.decoys += 3
    for url in planted.get("url", []):
        put(proxy, {"host": "", "url": url if "?" in url else f"{url}?utm=1"})  # a query on a bare URL still matches
        truth.hits[url] += 1
        host = urlsplit(url).hostname or ""
        truth.hits.update(d for d in planted.get("domain", []) if host == d or host.endswith(f".{d}"))
    for ip in planted.get("ipv4", []):
        put(proxy, {"host": "", "dst_ip": ip, "url": ""})
        truth.hits[ip] += 1
        put(proxy, {"host": "", "dst_ip": f"1{ip}5", "url": ""})
        truth.decoys += 1
    for digest in planted.get("sha256", []):
        put(endpoint, {"process": "wscript.exe", "sha256": digest.upper()})
        truth.hits[digest] += 1


def _write(path: Path, records: list[dict[str, Any]], *, compress: bool = False) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(text, mtime=0) if compress else text)
    return path
