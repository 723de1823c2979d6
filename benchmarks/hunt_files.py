"""File hunt benchmark: YARA-X scanning throughput and the TLSH family index, against anchors in the same run.

Files: a seeded generator writes a folder of files (320 MB, or 2 GiB with --size full; 64 KB to 4 MB each; random
bytes, text and PE-like headers, a few with a planted signature-base byte pattern), scanned with the rules in
../shared/data/rules/yara by
- heistwatch `hunt_files` with 1 and 2 workers (this process and one worker process): YARA-X and archive sniffing
  (`--no-tlsh`), SHA-256 only of files with findings, as `heistwatch hunt files` does without `--json`.
  `workers_2` is a fresh hunt per run, as the CLI does, so the worker's start-up (a new interpreter, imports,
  loading the serialized rules) is inside its time; `workers_2_warm` reuses one started `FileHunter` (its start-up
  is printed apart). `workers_1_sha256` adds the SHA-256 of every file (as `--json` does, for its inventory of
  scanned files); the `_with_tlsh` runs add TLSH of every file (py-tlsh hashes at about 40 MB/s, slower than the
  scan);
- anchors: the `yr` CLI (yara-x, `--threads 1` and `2`) when it is on PATH (no registry reachable here ships it:
  it is skipped, saying so), `yara_x_engine` (the same YARA-X engine, one `Scanner.scan_file` per file in one
  thread: what `yr scan` does per file), `yara_x_engine_2_processes` (that engine alone in two started processes
  fed the same size-balanced tasks: the most two cores give on this machine at this moment, since other
  processes may share them), and `yara_python` (libyara 4, one thread) on the same rules and files.
Runs are interleaved, one of each in turn, `REPEATS` times; figures are medians. The cores this process may use
(`os.sched_getaffinity`) and the load average before and after are printed with them: a load above the core
count means other processes took part of the cores, and the two-worker speedup can only be read against
`yara_x_engine_2_processes` measured in the same run.
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

Run: .venv/bin/python benchmarks/hunt_files.py [--size small|full] [--only files|tlsh] [--json]
Figures are medians (throughput over `REPEATS` interleaved runs, query times over all queries).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import multiprocessing
import os
import random
import resource
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

from heistwatch.hunt.files import FileHunter, FileHuntReport, hunt_files, plan_tasks
from heistwatch.hunt.fuzzy import FamilyIndex, KnownHash, tlsh_digest
from heistwatch.hunt.yara_scan import EXTERNALS, compile_rules, deserialize_rules, rule_files, serialize_rules

RULES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "rules" / "yara"
SIZES = {"small": (320 << 20, (10_000, 100_000), 200), "full": (2 << 30, (10_000, 100_000, 1_000_000), 500)}
CONTENT_SIZES = {"small": (10_000,), "full": (10_000, 100_000, 1_000_000)}
UNRELATED_QUERIES = 100
SEED = 20261126
RC4_LOOP = bytes.fromhex(
    "41 FE 80 00 01 00 00 45 0F B6 00 00 01 00 00 48 FF C0 43 0F B6 00 00 41 00 80 01 01 00 00 41 0F B6 00 01 01 00 00"
)
REPEATS = 3
PARTS = ("files", "tlsh")
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


def _cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by this process ("self"), its reaped children ("reaped": a fresh hunt's worker once
    it has been stopped) and each live child process (by pid)."""
    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    used = {"self": own.ru_utime + own.ru_stime, "reaped": reaped.ru_utime + reaped.ru_stime}
    tick = os.sysconf("SC_CLK_TCK")
    for child in multiprocessing.active_children():
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
            used[str(child.pid)] = (int(fields[11]) + int(fields[12])) / tick
    return used


def _interleaved(measures: dict[str, Callable[[], object]], mb: float) -> dict[str, dict[str, Any]]:
    """Each measure's MB/s (median of `REPEATS` runs), run times, CPU seconds and last result.

    Runs are interleaved (one of each, `REPEATS` times), so that load from other processes on the machine falls on
    every measure alike rather than on whichever ran while it lasted. CPU seconds do not depend on that load:
    - `cpu_s`, of all processes: MB per CPU second shows what a parallel run spends on starting and feeding workers;
    - `cores_used`, CPU seconds per second of wall-clock time: how much of the cores the run was given;
    - `busiest_cpu_s`, of the process that used the most: the wall-clock time the run would take if each of its
      processes had a core to itself and never waited (a worker fed ahead does not: see `FileHunter`).
    """
    times: dict[str, list[float]] = {name: [] for name in measures}
    cpu: dict[str, list[float]] = {name: [] for name in measures}
    busiest: dict[str, list[float]] = {name: [] for name in measures}
    results: dict[str, Any] = {}
    for _ in range(REPEATS):
        for name, measure in measures.items():
            before, start = _cpu_seconds(), time.perf_counter()
            results[name] = measure()
            times[name].append(time.perf_counter() - start)
            after = _cpu_seconds()
            spent = [used - before[key] for key, used in after.items() if key in before]
            cpu[name].append(sum(spent))
            busiest[name].append(max(spent))
    return {
        name: {
            "mb_per_s": round(mb / statistics.median(runs), 1),
            "runs_s": [round(t, 2) for t in runs],
            "cpu_s": round(statistics.median(cpu[name]), 2),
            "mb_per_cpu_s": round(mb / statistics.median(cpu[name]), 1),
            "cores_used": round(statistics.median(cpu[name]) / statistics.median(runs), 2),
            "busiest_cpu_s": round(statistics.median(busiest[name]), 2),
            "result": results[name],
        }
        for name, runs in times.items()
    }


def yara_x_engine(rules: Any, folder: Path) -> int:
    """The YARA-X engine alone: one scanner, one thread, `scan_file` per file; returns the matches.

    It is given the rules compiled, as heistwatch's runs are, so that both times are the scan's alone.
    """
    import yara_x

    scanner = yara_x.Scanner(rules)
    return sum(len(scanner.scan_file(str(path)).matching_rules) for path in sorted(folder.iterdir()))


_ENGINE: Any = None


def _engine_start(rules: bytes) -> None:
    global _ENGINE
    import yara_x

    _ENGINE = yara_x.Scanner(deserialize_rules(rules))


def _engine_scan(paths: list[str]) -> int:
    return sum(len(_ENGINE.scan_file(path).matching_rules) for path in paths)


def yara_x_engine_processes(pool: ProcessPoolExecutor, folder: Path, workers: int) -> int:
    """The YARA-X engine alone in already started processes (rules loaded), fed the same size-balanced tasks."""
    paths = sorted(folder.iterdir())
    tasks = [[str(paths[n]) for n in task] for task in plan_tasks([p.stat().st_size for p in paths], workers)]
    return sum(pool.map(_engine_scan, tasks))


def yara_python(rules_dir: Path, folder: Path) -> int:
    """libyara 4 through yara-python, one thread, with the same external variables."""
    import yara  # type: ignore[import-not-found]

    files = rule_files([rules_dir])
    rules = yara.compile(
        filepaths={f"{p.stem}_{i}": str(p) for i, p in enumerate(files)}, externals=dict.fromkeys(EXTERNALS, "")
    )
    return sum(len(rules.match(str(path))) for path in sorted(folder.iterdir()))


def _machine() -> dict[str, Any]:
    """The cores this process may use and the load average: other processes on the machine share the cores."""
    return {"affinity": sorted(os.sched_getaffinity(0)), "load_1_5_15": [round(x, 2) for x in os.getloadavg()]}


def _planted_found(report: FileHuntReport) -> int:
    return len({Path(f.file).name for f in report.findings if f.name == "APT_NK_Lazarus_RC4_Loop"})


def _heistwatch_measures(folder: Path, rules: Any, warm: FileHunter) -> dict[str, Callable[[], object]]:
    """heistwatch's runs: a fresh hunt per run (as the CLI does, worker start-up included) and the kept hunter."""
    cold = partial(hunt_files, [folder], rules=rules, sha256=False)
    return {
        "workers_1": partial(cold, fuzzy=False, workers=1),
        "workers_1_sha256": partial(cold, fuzzy=False, workers=1, sha256=True),
        "workers_2": partial(cold, fuzzy=False, workers=2),
        "workers_2_warm": partial(warm.hunt, [folder]),
        "workers_1_with_tlsh": partial(cold, fuzzy=True, workers=1),
        "workers_2_with_tlsh": partial(cold, fuzzy=True, workers=2),
    }


def _yr_measures(folder: Path) -> dict[str, Callable[[], object]]:
    """The `yr` CLI (yara-x) with one and two threads, when it is installed."""
    yr = shutil.which("yr")
    if yr is None:
        return {}
    return {
        f"yara_x_cli_threads_{threads}": partial(
            subprocess.run, [yr, "scan", "--threads", str(threads), str(RULES), str(folder)], capture_output=True
        )
        for threads in (1, 2)
    }


def bench_files(total: int) -> dict[str, Any]:
    rng = numpy.random.default_rng(SEED)
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "files"
        folder.mkdir()
        planted = write_files(folder, total, rng)
        mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        rules = compile_rules([RULES])
        context = multiprocessing.get_context("spawn")
        before = _machine()
        engine_init = (serialize_rules(rules),)
        with (
            FileHunter(rules=rules, fuzzy=False, sha256=False, workers=2) as warm,
            ProcessPoolExecutor(2, context, initializer=_engine_start, initargs=engine_init) as engine_pool,
        ):
            start = time.perf_counter()
            warm.start()
            warm_start_s = time.perf_counter() - start
            list(engine_pool.map(_engine_scan, [[], []]))
            measures = _heistwatch_measures(folder, rules, warm) | _yr_measures(folder)
            measures |= {
                "yara_x_engine": partial(yara_x_engine, rules, folder),
                "yara_x_engine_2_processes": partial(yara_x_engine_processes, engine_pool, folder, 2),
            }
            if importlib.util.find_spec("yara") is not None:
                measures["yara_python"] = partial(yara_python, RULES, folder)
            figures = _interleaved(measures, mb)
        out: dict[str, Any] = {"heistwatch": {}, "anchors": {}}
        for name, entry in figures.items():
            result = entry.pop("result")
            if isinstance(result, FileHuntReport):
                entry |= {"planted_found": _planted_found(result), "processes": result.processes}
                out["heistwatch"][name] = entry
            else:
                if isinstance(result, int):
                    entry["matches"] = result
                out["anchors"][name] = entry
        if not shutil.which("yr"):
            out["anchors"]["yara_x_cli"] = {"skipped": "no `yr` binary: the yara-x PyPI wheel ships only the library"}
        if "yara_python" not in measures:
            out["anchors"]["yara_python"] = {"skipped": "yara-python is not installed (the `bench` extra)"}
        out["heistwatch"] |= {
            "mb_per_s": out["heistwatch"]["workers_2"]["mb_per_s"],
            "warm_start_s": round(warm_start_s, 2),
        }
        out["heistwatch"] |= _ratios(out["heistwatch"], out["anchors"])
        out["data"] = {"files": len(list(folder.iterdir())), "mb": round(mb, 1), "planted": planted}
        out["machine"] = {"before": before, "after": _machine(), "repeats": REPEATS}
        return out


def _ratios(mine: dict[str, Any], anchors: dict[str, Any]) -> dict[str, float]:
    """The two-worker speedups and heistwatch against the engine alone (and the `yr` CLI when it ran)."""
    ratios = {
        "speedup_2_workers": mine["workers_2"]["mb_per_s"] / mine["workers_1"]["mb_per_s"],
        "speedup_2_workers_warm": mine["workers_2_warm"]["mb_per_s"] / mine["workers_1"]["mb_per_s"],
        "speedup_2_workers_with_tlsh": mine["workers_2_with_tlsh"]["mb_per_s"]
        / mine["workers_1_with_tlsh"]["mb_per_s"],
        "engine_speedup_2_processes": anchors["yara_x_engine_2_processes"]["mb_per_s"]
        / anchors["yara_x_engine"]["mb_per_s"],
        "ratio_1_worker_vs_yara_x_engine": mine["workers_1"]["mb_per_s"] / anchors["yara_x_engine"]["mb_per_s"],
        "ratio_1_worker_sha256_vs_yara_x_engine": mine["workers_1_sha256"]["mb_per_s"]
        / anchors["yara_x_engine"]["mb_per_s"],
        "cpu_ratio_1_worker_vs_yara_x_engine": anchors["yara_x_engine"]["cpu_s"] / mine["workers_1"]["cpu_s"],
        "ratio_2_workers_vs_yara_x_engine_2_processes": mine["workers_2"]["mb_per_s"]
        / anchors["yara_x_engine_2_processes"]["mb_per_s"],
        "cpu_speedup_2_workers": mine["workers_1"]["busiest_cpu_s"] / mine["workers_2"]["busiest_cpu_s"],
        "cpu_speedup_2_workers_warm": mine["workers_1"]["busiest_cpu_s"] / mine["workers_2_warm"]["busiest_cpu_s"],
        "cpu_speedup_engine_2_processes": anchors["yara_x_engine"]["busiest_cpu_s"]
        / anchors["yara_x_engine_2_processes"]["busiest_cpu_s"],
    }
    if "yara_x_cli_threads_1" in anchors:
        ratios["ratio_1_worker_vs_yara_x_cli"] = (
            mine["workers_1"]["mb_per_s"] / anchors["yara_x_cli_threads_1"]["mb_per_s"]
        )
    return {name: round(value, 2) for name, value in ratios.items()}


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


def run(size: str, parts: tuple[str, ...] = PARTS) -> dict[str, Any]:
    """The chosen parts ("files": scanning throughput, "tlsh": the family index) at the chosen size."""
    total, tlsh_sizes, queries = SIZES[size]
    result: dict[str, Any] = {"meta": {"size": size, "cpus": os.cpu_count(), "load": os.getloadavg()}}
    if "files" in parts:
        result["files"] = bench_files(total) if RULES.is_dir() else {"skipped": f"{RULES} is absent"}
    if "tlsh" in parts:
        result["tlsh"] = bench_tlsh(tlsh_sizes, CONTENT_SIZES[size], queries)
    return result


def _render_files(files: dict[str, Any]) -> str:
    """The files part: MB/s of each run, the speedups and ratios, and the machine's state around them."""
    mine, anchors, machine = files["heistwatch"], files["anchors"], files["machine"]
    lines = [
        f"files ({files['data']['mb']} MB, {files['data']['files']} files, median of {machine['repeats']} interleaved"
        f" runs; cores {machine['before']['affinity']}, load {machine['before']['load_1_5_15']} before,"
        f" {machine['after']['load_1_5_15']} after):"
    ]
    for name, figures in [*mine.items(), *anchors.items()]:
        if isinstance(figures, dict) and "mb_per_s" in figures:
            extra = {k: v for k, v in figures.items() if k != "mb_per_s"}
            lines.append(f"  {name:28} {figures['mb_per_s']:7.1f} MB/s  {extra}")
        elif isinstance(figures, dict):
            lines.append(f"  {name:28} {figures}")
    lines.append(f"  warm FileHunter start-up {mine['warm_start_s']} s (not in workers_2_warm)")
    for key in sorted(k for k in mine if k.startswith(("speedup", "ratio", "engine", "cpu_speedup"))):
        lines.append(f"  {key}: {mine[key]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    parser.add_argument("--only", choices=PARTS, help="Run one part: file scanning throughput or the TLSH index.")
    args = parser.parse_args(argv)
    result = run(args.size, (args.only,) if args.only else PARTS)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    if "heistwatch" in result.get("files", {}):
        print(_render_files(result["files"]))
    for name, figures in result.get("tlsh", {}).get("heistwatch", {}).items():
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
