"""File hunt benchmark: YARA-X scanning throughput and the TLSH family index, against anchors in the same run.

Files: a seeded generator writes a folder of files (64 KB to 4 MB; random bytes, text and PE-like headers, a few
with a planted signature-base byte pattern), scanned with the rules in ../shared/data/rules/yara by
- heistwatch `hunt_files` with 1 and 2 worker processes: YARA-X, SHA-256 and archive sniffing (`--no-tlsh`),
  and again with TLSH of every file (`_with_tlsh`; py-tlsh hashes at about 40 MB/s, slower than the scan);
- anchors: the `yr` CLI (yara-x) when it is on PATH (no registry reachable here ships it: it is skipped, saying
  so), `yara_x_engine` (the same YARA-X engine, one `Scanner.scan_file` per file in one thread: what `yr scan`
  does per file), and `yara_python` (libyara 4, one thread) on the same rules and files.
TLSH: stored sets of 10k, 100k (and 1M with --size full) digests, and new variants of their families as queries;
heistwatch `FamilyIndex.nearest` against the brute force `nearest_exact` (numpy over every stored row, per byte
lookup tables). Recall is the share of queries for which the index returns a sample at brute force's nearest
distance. Two kinds of data:
- synthetic, in digest space: family centroids, and variants that move 2-30% of the body's two-bit codes by one
  quartile (7% by two) and the length byte by at most one, as TLSH digests of edited real binaries do (measured on
  shared libraries: 93% of changed codes move by one); family sizes are Zipf-distributed, capped at 5% of the set;
- content: TLSH of real bytes. Each family is a random file (1-16 KB, log-uniform) and its members and queries are
  edited copies of it (1-8 insertions, deletions or overwrites of up to 2% of the file each); the same Zipf sizes.
  Random content has near-equal quartile ratios, so the header hardly separates families: the body must.
For each set: build time, the memory the index keeps and its peak while building (tracemalloc), and per query
the wall-clock and CPU time (CPU time is steadier on a shared machine), the same for brute force, and the same
again for `unrelated` queries (TLSH of new random files, far from every family: the index's worst case).

Run: .venv/bin/python benchmarks/hunt_files.py [--size small|full] [--json]
Figures are medians (throughput over 3 runs, query times over all queries).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy

from heistwatch.hunt.files import hunt_files
from heistwatch.hunt.fuzzy import FamilyIndex, KnownHash, tlsh_digest
from heistwatch.hunt.yara_scan import EXTERNALS, compile_rules, rule_files

RULES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "rules" / "yara"
SIZES = {"small": (48 << 20, (10_000, 100_000), 200), "full": (512 << 20, (10_000, 100_000, 1_000_000), 500)}
CONTENT_SIZES = {"small": (10_000,), "full": (10_000, 100_000, 1_000_000)}
UNRELATED_QUERIES = 100
SEED = 20261126
RC4_LOOP = bytes.fromhex(
    "41 FE 80 00 01 00 00 45 0F B6 00 00 01 00 00 48 FF C0 43 0F B6 00 00 41 00 80 01 01 00 00 41 0F B6 00 01 01 00 00"
)
REPEATS = 3
T = TypeVar("T")


def write_files(folder: Path, total: int, rng: numpy.random.Generator) -> int:
    """Files of mixed content totalling about `total` bytes; returns how many carry the planted pattern."""
    words = numpy.frombuffer(b"the exchange wallet withdraw transfer config http://update. user password ", "u1")
    written = planted = number = 0
    while written < total:
        size = int(rng.integers(64 << 10, 4 << 20))
        kind = number % 3
        if kind == 0:
            data = rng.integers(0, 256, size, dtype=numpy.uint8).tobytes()
        elif kind == 1:
            data = rng.choice(words, size).tobytes()
        else:
            data = b"MZ" + rng.integers(0, 16, size, dtype=numpy.uint8).tobytes()
        if number % 25 == 2:
            at = size // 2
            data = data[:at] + RC4_LOOP + data[at:]
            planted += 1
        (folder / f"f{number:05d}.bin").write_bytes(data)
        written += len(data)
        number += 1
    return planted


def _median_rate(measure: Callable[[], T], mb: float) -> tuple[float, T]:
    """MB/s (median of `REPEATS` runs) and the last run's result."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = measure()
        times.append(time.perf_counter() - start)
    return mb / statistics.median(times), result


def yara_x_engine(rules_dir: Path, folder: Path) -> int:
    """The YARA-X engine alone: one scanner, one thread, `scan_file` per file; returns the matches."""
    import yara_x

    scanner = yara_x.Scanner(compile_rules([rules_dir]))
    return sum(len(scanner.scan_file(str(path)).matching_rules) for path in sorted(folder.iterdir()))


def yara_python(rules_dir: Path, folder: Path) -> int:
    """libyara 4 through yara-python, one thread, with the same external variables."""
    import yara  # type: ignore[import-not-found]

    files = rule_files([rules_dir])
    rules = yara.compile(
        filepaths={f"{p.stem}_{i}": str(p) for i, p in enumerate(files)}, externals=dict.fromkeys(EXTERNALS, "")
    )
    return sum(len(rules.match(str(path))) for path in sorted(folder.iterdir()))


def bench_files(total: int) -> dict[str, Any]:
    rng = numpy.random.default_rng(SEED)
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "files"
        folder.mkdir()
        planted = write_files(folder, total, rng)
        size = sum(p.stat().st_size for p in folder.iterdir())
        mb = size / 1e6
        rules = compile_rules([RULES])
        out: dict[str, Any] = {"heistwatch": {}, "anchors": {}}
        for workers, fuzzy in ((1, False), (2, False), (1, True), (2, True)):
            rate, report = _median_rate(partial(hunt_files, [folder], rules=rules, fuzzy=fuzzy, workers=workers), mb)
            found = {Path(f.file).name for f in report.findings if f.name == "APT_NK_Lazarus_RC4_Loop"}
            key = f"workers_{workers}" + ("_with_tlsh" if fuzzy else "")
            out["heistwatch"][key] = {"mb_per_s": round(rate, 1), "planted_found": len(found)}
        out["heistwatch"]["mb_per_s"] = out["heistwatch"]["workers_2"]["mb_per_s"]
        out["heistwatch"]["speedup_2_workers"] = round(
            out["heistwatch"]["workers_2"]["mb_per_s"] / out["heistwatch"]["workers_1"]["mb_per_s"], 2
        )
        yr = shutil.which("yr")
        if yr is None:
            out["anchors"]["yara_x_cli"] = {"skipped": "no `yr` binary: the yara-x PyPI wheel ships only the library"}
        else:
            for threads in (1, 2):
                cmd = [yr, "scan", "--threads", str(threads), str(RULES), str(folder)]
                rate, _ = _median_rate(partial(subprocess.run, cmd, capture_output=True, check=False), mb)
                out["anchors"].setdefault("yara_x_cli", {})[f"threads_{threads}_mb_per_s"] = round(rate, 1)
        for name, anchor in (("yara_x_engine", yara_x_engine), ("yara_python", yara_python)):
            try:
                rate, matches = _median_rate(partial(anchor, RULES, folder), mb)
                out["anchors"][name] = {"mb_per_s": round(rate, 1), "matches": matches}
            except Exception as exc:  # an anchor that cannot run is reported, not fatal
                out["anchors"][name] = {"skipped": f"{type(exc).__name__}: {exc}"}
        engine = out["anchors"]["yara_x_engine"].get("mb_per_s")
        if engine:
            out["heistwatch"]["ratio_1_worker_vs_yara_x_engine"] = round(
                out["heistwatch"]["workers_1"]["mb_per_s"] / engine, 2
            )
            out["heistwatch"]["ratio_2_workers_vs_yara_x_engine"] = round(
                out["heistwatch"]["workers_2"]["mb_per_s"] / engine, 2
            )
        out["data"] = {"files": len(list(folder.iterdir())), "mb": round(mb, 1), "planted": planted}
        return out


def synthetic_digests(n: int, queries: int, rng: numpy.random.Generator) -> tuple[list[KnownHash], list[str]]:
    """Stored digests of Zipf-sized families and new variants of them as queries (see the module docstring)."""
    n_families = max(2, n // 100)
    sizes = numpy.minimum(rng.zipf(1.6, n_families), n).astype(float)
    sizes = numpy.minimum(sizes, 0.05 * sizes.sum())
    family = rng.choice(n_families, n, p=sizes / sizes.sum())
    lvalue = rng.normal(150, 25, n_families).clip(0, 255).astype(numpy.int64)
    qratio = rng.integers(0, 256, n_families)
    codes = rng.integers(0, 4, (n_families, 128)).astype(numpy.int8)

    def variants(of: numpy.ndarray) -> list[str]:
        m = len(of)
        moved = rng.random((m, 128)) < rng.uniform(0.02, 0.3, m)[:, None]
        step = rng.choice(numpy.array([-1, 1], numpy.int8), (m, 128)) * numpy.where(
            rng.random((m, 128)) < 0.07, 2, 1
        ).astype(numpy.int8)
        new = codes[of] + step
        new = numpy.where(new < 0, -new, numpy.where(new > 3, 6 - new, new))
        pairs = numpy.where(moved, new, codes[of]).astype(numpy.uint8).reshape(m, 32, 4)
        body = pairs[:, :, 0] | pairs[:, :, 1] << 2 | pairs[:, :, 2] << 4 | pairs[:, :, 3] << 6
        length = (lvalue[of] + rng.integers(-1, 2, m)) % 256
        q = qratio[of] ^ numpy.where(rng.random(m) < 0.3, 1 << rng.integers(0, 8, m), 0)
        header = numpy.stack([rng.integers(0, 256, m), length, q], 1).astype(numpy.uint8)
        header = (((header & 0x0F) << 4) | (header >> 4)).astype(numpy.uint8)
        raw = numpy.concatenate([header, body.astype(numpy.uint8)], 1)
        return ["T1" + row.tobytes().hex().upper() for row in raw]

    known = [KnownHash(f"family{f}", d) for f, d in zip(family, variants(family), strict=True)]
    return known, variants(family[rng.integers(0, n, queries)])


def _edited(rng: random.Random, data: bytes, edits: int) -> bytes:
    """`data` with `edits` insertions, deletions or overwrites of random bytes, each up to 2% of its length."""
    out = bytearray(data)
    for _ in range(edits):
        kind, at, span = rng.randrange(3), rng.randrange(len(out)), rng.randint(1, max(1, len(out) // 50))
        if kind == 0:
            out[at:at] = rng.randbytes(span)
        elif kind == 1:
            del out[at : at + span]
        else:
            out[at : at + span] = rng.randbytes(min(span, len(out) - at))
    return bytes(out)


def _family_digests(job: tuple[int, int, int, int]) -> list[str]:
    """`count` TLSH digests of edited copies of one family's random file (seeded by the family's number)."""
    seed, family, length, count = job
    rng = random.Random(seed * 1_000_003 + family)
    base = rng.randbytes(length)
    digests: list[str] = []
    while len(digests) < count:
        digest = tlsh_digest(_edited(rng, base, rng.randint(1, 8)))
        if digest:
            digests.append(digest)
    return digests


def content_digests(n: int, queries: int, seed: int) -> tuple[list[KnownHash], list[str]]:
    """TLSH of edited copies of random files, as Zipf-sized families, and more copies as queries (2 processes)."""
    rng = numpy.random.default_rng(seed)
    n_families = max(2, n // 100)
    sizes = numpy.minimum(rng.zipf(1.6, n_families), n).astype(float)
    sizes = numpy.minimum(sizes, 0.05 * sizes.sum())
    family = rng.choice(n_families, n, p=sizes / sizes.sum())
    asked = family[rng.integers(0, n, queries)]
    length = numpy.exp(rng.uniform(numpy.log(1 << 10), numpy.log(16 << 10), n_families)).astype(int)
    counts = numpy.bincount(family, minlength=n_families) + numpy.bincount(asked, minlength=n_families)
    jobs = [(seed, int(f), int(length[f]), int(counts[f])) for f in numpy.flatnonzero(counts)]
    with ProcessPoolExecutor(2) as pool:
        made = dict(zip((job[1] for job in jobs), pool.map(_family_digests, jobs, chunksize=64), strict=True))
    known = [KnownHash(f"family{f}", made[f].pop()) for f in family]
    return known, [made[f].pop() for f in asked]


def unrelated_digests(count: int, seed: int) -> list[str]:
    """TLSH of new random files (1-16 KB): queries far from every stored family."""
    rng = random.Random(seed)
    digests = (tlsh_digest(rng.randbytes(int(2 ** rng.uniform(10, 14)))) for _ in range(count))
    return [digest for digest in digests if digest]


def _timed(ask: Callable[[str], T], digests: list[str]) -> tuple[list[float], list[float], list[T]]:
    """Wall-clock and CPU seconds of each call, and the answers."""
    wall, cpu, answers = [], [], []
    for digest in digests:
        start, start_cpu = time.perf_counter(), time.process_time()
        answers.append(ask(digest))
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return wall, cpu, answers


def _query_figures(index: FamilyIndex, digests: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The index's and brute force's times on the queries, and the index's recall against brute force."""
    wall, cpu, found = _timed(index.nearest, digests)
    brute_wall, brute_cpu, exact = _timed(index.nearest_exact, digests)
    agree = sum(f is not None and e is not None and f.distance == e.distance for f, e in zip(found, exact, strict=True))
    ms, brute_ms = statistics.median(wall) * 1e3, statistics.median(brute_wall) * 1e3
    cpu_ms, brute_cpu_ms = statistics.median(cpu) * 1e3, statistics.median(brute_cpu) * 1e3
    mine = {
        "ms_per_query": round(ms, 3),
        "p95_ms": round(float(numpy.percentile(wall, 95)) * 1e3, 3),
        "cpu_ms_per_query": round(cpu_ms, 3),
        "recall": round(agree / len(digests), 4),
        "speedup_vs_brute_force": round(brute_ms / ms, 1),
        "cpu_speedup_vs_brute_force": round(brute_cpu_ms / cpu_ms, 1),
        "nearest_distance_median": statistics.median(e.distance for e in exact if e is not None),
        "queries": len(digests),
    }
    brute = {"ms_per_query": round(brute_ms, 3), "cpu_ms_per_query": round(brute_cpu_ms, 3), "recall": 1.0}
    return mine, brute


def _build(known: list[KnownHash]) -> tuple[FamilyIndex, dict[str, Any]]:
    """The index, its build time, and (from a second, traced build) the memory it keeps and its peak building."""
    start = time.perf_counter()
    index = FamilyIndex.from_known(known)
    build_s = time.perf_counter() - start
    del index
    tracemalloc.start()
    index = FamilyIndex.from_known(known)
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return index, {"build_s": round(build_s, 2), "kept_mb": round(kept / 1e6, 1), "build_peak_mb": round(peak / 1e6, 1)}


def bench_tlsh(sizes: tuple[int, ...], content_sizes: tuple[int, ...], queries: int) -> dict[str, Any]:
    rng = numpy.random.default_rng(SEED)
    unrelated = unrelated_digests(min(queries, UNRELATED_QUERIES), SEED)
    out: dict[str, Any] = {"heistwatch": {}, "anchors": {"brute_force": {}}}
    sets = [(str(n), partial(synthetic_digests, n, queries, rng)) for n in sizes]
    sets += [(f"content_{n}", partial(content_digests, n, queries, SEED)) for n in content_sizes]
    for name, make in sets:
        start = time.perf_counter()
        known, asked = make()
        generate_s = time.perf_counter() - start
        index, build = _build(known)
        mine, brute = _query_figures(index, asked)
        far, far_brute = _query_figures(index, unrelated)
        mine |= build | {"generate_s": round(generate_s, 1)}
        mine["unrelated"] = {k: far[k] for k in ("ms_per_query", "p95_ms", "cpu_ms_per_query", "recall")}
        brute["unrelated"] = {k: far_brute[k] for k in ("ms_per_query", "cpu_ms_per_query")}
        out["heistwatch"][name], out["anchors"]["brute_force"][name] = mine, brute
    return out


def run(size: str) -> dict[str, Any]:
    total, tlsh_sizes, queries = SIZES[size]
    result: dict[str, Any] = {"meta": {"size": size, "cpus": os.cpu_count(), "load": os.getloadavg()}}
    result["files"] = bench_files(total) if RULES.is_dir() else {"skipped": f"{RULES} is absent"}
    result["tlsh"] = bench_tlsh(tlsh_sizes, CONTENT_SIZES[size], queries)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    args = parser.parse_args(argv)
    result = run(args.size)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    files = result["files"]
    if "heistwatch" in files:
        mine = files["heistwatch"]
        print(f"files ({files['data']['mb']} MB, {files['data']['files']} files):")
        for key in ("workers_1", "workers_2"):
            print(f"  heistwatch {key}: {mine[key]['mb_per_s']} MB/s, planted found {mine[key]['planted_found']}")
        for name, figures in files["anchors"].items():
            print(f"  {name}: {figures}")
        print(
            f"  ratios vs the yara-x engine: 1 worker {mine.get('ratio_1_worker_vs_yara_x_engine')},"
            f" 2 workers {mine.get('ratio_2_workers_vs_yara_x_engine')}"
        )
    for name, figures in result["tlsh"]["heistwatch"].items():
        brute = result["tlsh"]["anchors"]["brute_force"][name]
        far = figures["unrelated"]
        print(
            f"tlsh {name}: {figures['ms_per_query']} ms/query, {figures['cpu_ms_per_query']} ms CPU"
            f" (brute force {brute['ms_per_query']} ms, {brute['cpu_ms_per_query']} ms CPU:"
            f" x{figures['speedup_vs_brute_force']}, CPU x{figures['cpu_speedup_vs_brute_force']}),"
            f" recall {figures['recall']}, build {figures['build_s']} s, {figures['kept_mb']} MB"
            f" (peak {figures['build_peak_mb']} MB); unrelated queries {far['ms_per_query']} ms"
            f" (brute force {brute['unrelated']['ms_per_query']} ms), recall {far['recall']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
