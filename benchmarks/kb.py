"""Knowledge-base benchmark: build time, records loaded, name resolutions per second, vs stix2's MemoryStore.

The anchor is the `stix2` library's MemoryStore loaded with the same objects (the knowledge base's own STIX
export) and asked the same look-ups (name or alias equal to the query), in the same process.
Run: .venv/bin/python benchmarks/kb.py [--builds 3] [--anchor-queries 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import stix2

from heistwatch.kb import NameIndex, Resolver, SQLiteStore, build_knowledge_base
from heistwatch.share.stix import export_bundle

CASE = ["CryptoCore", "Dangerous Password", "CryptoMimic", "Leery Turtle", "Sapphire Sleet", "APT38", "Andariel"]


def _variants(names: list[str], rng: random.Random) -> list[str]:
    """Each name as written, upper-cased, and with a space or hyphen inserted (what analysts type)."""
    out = []
    for name in names:
        cut = rng.randrange(1, max(2, len(name)))
        out += [name, name.upper(), f"{name[:cut]} {name[cut:]}", name.replace(" ", "-")]
    return out


def _per_second(fn: Any, queries: list[str], repeats: int = 5) -> tuple[float, int]:
    """Median queries/second over `repeats` passes, and how many queries found something."""
    rates = []
    found = 0
    for _ in range(repeats):
        start = time.perf_counter()
        found = sum(1 for q in queries if fn(q))
        rates.append(len(queries) / (time.perf_counter() - start))
    return statistics.median(rates), found


def run(builds: int, anchor_queries: int) -> dict[str, Any]:
    rng = random.Random(20261126)
    folder = Path(tempfile.mkdtemp(prefix="heistwatch-bench-"))
    times = []
    for _ in range(builds):
        report = build_knowledge_base(folder / "kb.sqlite")
        times.append(report.seconds)
    store = SQLiteStore(report.path)
    stats = store.stats()
    objects = sum(sum(s.objects.values()) for s in stats)
    claims = sum(s.claims for s in stats)
    relationships = sum(s.relationships for s in stats)

    start = time.perf_counter()
    index = NameIndex.from_store(store)
    index_seconds = time.perf_counter() - start
    names = sorted({e.name for entries in index.exact.values() for e in entries})
    queries = _variants(names, rng)
    rate, found = _per_second(index.lookup, queries)

    resolver = Resolver(store, index)
    start = time.perf_counter()
    for name in CASE:
        resolver.resolve(name)
    resolve_ms = (time.perf_counter() - start) / len(CASE) * 1000

    bundle = export_bundle(store)
    sdos = [o for o in bundle["objects"] if o["type"] not in ("relationship", "identity", "marking-definition")]
    start = time.perf_counter()
    memory = stix2.MemoryStore(stix_data=bundle["objects"], allow_custom=True)
    anchor_load = time.perf_counter() - start
    sample = rng.sample(names, min(anchor_queries, len(names)))

    def anchor_lookup(name: str) -> bool:
        hits = memory.query([stix2.Filter("name", "=", name)])
        return bool(hits or memory.query([stix2.Filter("aliases", "contains", name)]))

    anchor_rate, anchor_found = _per_second(anchor_lookup, sample, repeats=1)
    ours_same, ours_found = _per_second(index.lookup, sample)
    store.close()
    return {
        "build_seconds_median": round(statistics.median(times), 3),
        "build_seconds_all": [round(t, 3) for t in times],
        "objects": objects,
        "claims": claims,
        "relationships": relationships,
        "names": len(names),
        "name_keys": len(index),
        "index_seconds": round(index_seconds, 3),
        "resolutions_per_s": round(rate),
        "microseconds_per_resolution": round(1e6 / rate, 2),
        "queries": len(queries),
        "queries_found": found,
        "full_resolve_ms_case_median": round(resolve_ms, 2),
        "anchor": {
            "name": "stix2.MemoryStore",
            "objects_loaded": len(bundle["objects"]),
            "sdos": len(sdos),
            "load_seconds": round(anchor_load, 3),
            "lookups_per_s": round(anchor_rate, 1),
            "queries": len(sample),
            "queries_found": anchor_found,
            "heistwatch_same_queries_per_s": round(ours_same),
            "heistwatch_same_queries_found": ours_found,
        },
        "ratios": {
            "load_vs_build": round(anchor_load / statistics.median(times), 1),
            "lookup_speedup": round(ours_same / anchor_rate),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=3)
    parser.add_argument("--anchor-queries", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.builds, args.anchor_queries)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    a = result["anchor"]
    print(f"build (median of {args.builds}): {result['build_seconds_median']} s  {result['build_seconds_all']}")
    print(
        f"loaded: {result['objects']} objects, {result['claims']} claims, {result['relationships']} relationships,"
        f" {result['names']} names ({result['name_keys']} keys), index built in {result['index_seconds']} s"
    )
    print(
        f"name resolution: {result['resolutions_per_s']:,}/s ({result['microseconds_per_resolution']} us each),"
        f" {result['queries_found']}/{result['queries']} spelling variants found"
    )
    print(
        f"full resolution (claims, combined view, techniques), case names: {result['full_resolve_ms_case_median']} ms"
    )
    print(
        f"anchor {a['name']}: load {a['objects_loaded']} objects in {a['load_seconds']} s"
        f" ({result['ratios']['load_vs_build']}x our whole build);"
        f" {a['lookups_per_s']} look-ups/s ({a['queries_found']}/{a['queries']} found) vs heistwatch"
        f" {a['heistwatch_same_queries_per_s']:,}/s ({a['heistwatch_same_queries_found']}/{a['queries']} found):"
        f" {result['ratios']['lookup_speedup']:,}x"
    )


if __name__ == "__main__":
    main()
