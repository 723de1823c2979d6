"""PostgreSQL knowledge-base benchmark: loading the built knowledge base into PostgreSQL, and look-up latency.

Measured in one run, on one machine, over the server's unix socket (no network):
- `copy_knowledge_base` of the built SQLite file into an empty schema, and again over the loaded one (median of
  `--copies`); the anchor is the SQLite backend writing the same records (`SQLiteStore.import_batch` into a new file),
  beside PostgreSQL's own `import_batch` of that batch;
- p50/p99 latency of four store look-ups (name key, object by id, relationships from an object, claims about one)
  on the same random sample, PostgreSQL against the SQLite file (the anchor), with ratios.
Run: .venv/bin/python benchmarks/kb_postgres.py [--dsn URL] [--kb FILE] [--copies 5] [--queries 2000] [--json]
Without --dsn it starts the project's throwaway cluster with scripts/postgres.sh (and leaves it running).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from psycopg import sql

from heistwatch.kb import KnowledgeStore, SQLiteStore, build_knowledge_base
from heistwatch.kb.postgres import PostgresStore, copy_knowledge_base
from heistwatch.model import ImportBatch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "postgres.sh"


@contextmanager
def _schema(dsn: str) -> Iterator[str]:
    """A DSN on a new schema, dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield f"{dsn}{'&' if '?' in dsn else '?'}{urlencode({'options': f'-csearch_path={name}'})}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _whole_batch(store: SQLiteStore) -> ImportBatch:
    """The knowledge base's seeded records as one batch."""
    return ImportBatch(
        sources=tuple(store.sources()),
        objects=tuple(store.objects()),
        claims=tuple(store.claims()),
        relationships=tuple(store.relationships()),
        indicators=tuple(store.indicators()),
    )


def _copies(kb: Path, dsn: str, copies: int) -> dict[str, float]:
    fresh, again = [], []
    for _ in range(copies):
        with _schema(dsn) as target:
            store = PostgresStore(target)
            fresh.append(_timed(lambda: copy_knowledge_base(kb, store)))  # noqa: B023  (called at once)
            again.append(_timed(lambda: copy_knowledge_base(kb, store)))  # noqa: B023
            store.close()
    return {"copy_empty_s": statistics.median(fresh), "copy_over_loaded_s": statistics.median(again)}


def _imports(batch: ImportBatch, dsn: str, folder: Path, repeats: int) -> dict[str, float]:
    pg, lite = [], []
    for i in range(repeats):
        with _schema(dsn) as target:
            store = PostgresStore(target)
            pg.append(_timed(lambda: store.import_batch(batch)))  # noqa: B023
            store.close()
        anchor = SQLiteStore(folder / f"anchor-{i}.sqlite")
        lite.append(_timed(lambda: anchor.import_batch(batch)))  # noqa: B023
        anchor.close()
    return {"pg_import_batch_s": statistics.median(pg), "sqlite_import_batch_s": statistics.median(lite)}


Call = Callable[[KnowledgeStore, str], object]
CALLS: dict[str, Call] = {
    "lookup(name key)": lambda s, key: s.lookup(key),
    "get(id)": lambda s, oid: s.get(oid),
    "relationships(from_ids=[id])": lambda s, oid: s.relationships(from_ids=[oid]),
    "claims(about=[id])": lambda s, oid: s.claims(about=[oid]),
}


def _latencies(store: KnowledgeStore, call: Call, args: list[str]) -> dict[str, float]:
    """p50 and p99 in milliseconds of the call on each argument, timed one by one."""
    times = []
    for arg in args:
        start = time.perf_counter_ns()
        call(store, arg)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return {"p50_ms": statistics.median(times), "p99_ms": statistics.quantiles(times, n=100)[98]}


def _lookups(kb: Path, dsn: str, queries: int, rng: random.Random) -> dict[str, dict[str, Any]]:
    local = SQLiteStore(kb)
    keys = rng.choices(sorted({n.key for n in local.names()}), k=queries)
    ids = rng.choices([o.id for o in local.objects()], k=queries)
    subjects = rng.choices([c.subject_id for c in local.claims()], k=queries)
    arguments = dict(zip(CALLS, (keys, ids, ids, subjects), strict=True))
    results: dict[str, dict[str, Any]] = {}
    with _schema(dsn) as target:
        server = PostgresStore(target)
        copy_knowledge_base(kb, server)
        for name, call in CALLS.items():
            args = arguments[name]
            _latencies(server, call, args[: max(1, queries // 10)])  # warm both caches before measuring
            _latencies(local, call, args[: max(1, queries // 10)])
            pg, anchor = _latencies(server, call, args), _latencies(local, call, args)
            results[name] = {
                "postgres": pg,
                "sqlite": anchor,
                "ratio_p50": pg["p50_ms"] / anchor["p50_ms"],
                "ratio_p99": pg["p99_ms"] / anchor["p99_ms"],
            }
        server.close()
    local.close()
    return results


def _server(dsn: str | None) -> str:
    if dsn:
        return dsn
    return subprocess.run([SCRIPT, "start"], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]


def run(dsn: str, kb: Path | None, copies: int, queries: int) -> dict[str, Any]:
    rng = random.Random(20261126)
    with tempfile.TemporaryDirectory(prefix="heistwatch-bench-pg-") as tmp:
        folder = Path(tmp)
        path = kb or build_knowledge_base(folder / "kb.sqlite").path
        local = SQLiteStore(path)
        batch = _whole_batch(local)
        local.close()
        with psycopg.connect(dsn) as conn:
            server = {
                "version": conn.info.parameter_status("server_version"),
                "fsync": conn.execute("SHOW fsync").fetchone(),
                "synchronous_commit": conn.execute("SHOW synchronous_commit").fetchone(),
            }
        return {
            "server": {k: v[0] if isinstance(v, tuple) else v for k, v in server.items()},
            "records": len(batch),
            **_copies(path, dsn, copies),
            **_imports(batch, dsn, folder, copies),
            "lookups": _lookups(path, dsn, queries, rng),
        }


def _render(r: dict[str, Any]) -> str:
    per_s = r["records"] / r["copy_empty_s"]
    lines = [
        f"PostgreSQL {r['server']['version']} on a unix socket (fsync {r['server']['fsync']}); "
        f"built knowledge base: {r['records']:,} records (sources, objects, claims, relationships, indicators)",
        f"copy_knowledge_base into an empty schema: {r['copy_empty_s']:.2f} s ({per_s:,.0f} records/s, names included);"
        f" over a loaded one: {r['copy_over_loaded_s']:.2f} s (medians)",
        f"import_batch of the same records: PostgreSQL {r['pg_import_batch_s']:.2f} s,"
        f" SQLite file {r['sqlite_import_batch_s']:.2f} s (anchor);"
        f" copy / anchor {r['copy_empty_s'] / r['sqlite_import_batch_s']:.2f}x,"
        f" PostgreSQL import_batch / anchor {r['pg_import_batch_s'] / r['sqlite_import_batch_s']:.2f}x",
        "look-ups, ms             PostgreSQL p50 / p99     SQLite p50 / p99 (anchor)   ratio p50 / p99",
    ]
    for name, m in r["lookups"].items():
        pg, lite = m["postgres"], m["sqlite"]
        lines.append(
            f"  {name:<28} {pg['p50_ms']:7.3f} / {pg['p99_ms']:7.3f}     {lite['p50_ms']:7.3f} / {lite['p99_ms']:7.3f}"
            f"            {m['ratio_p50']:5.1f}x / {m['ratio_p99']:5.1f}x"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="a PostgreSQL server (default: start scripts/postgres.sh's throwaway cluster)")
    parser.add_argument("--kb", type=Path, help="a built knowledge base file (default: build one now)")
    parser.add_argument("--copies", type=int, default=5, help="repetitions of each load (median reported)")
    parser.add_argument("--queries", type=int, default=2000, help="look-ups per kind")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    result = run(_server(args.dsn), args.kb, args.copies, args.queries)
    print(json.dumps(result, indent=2) if args.json else _render(result))


if __name__ == "__main__":
    main()
