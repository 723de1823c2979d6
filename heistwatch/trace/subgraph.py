"""The transfers a case trace can read: the seeds' time-respecting reach, one definition for every engine.

The taint replay (taint.py) only reads transfers into or out of an address that holds taint; for such an address
it also reads the transfers before the taint came (its balance when it joins), and it reads whole transactions
where a swap or a UTXO node passes taint on. So a trace needs only a subgraph, found in two steps:

1. **Reach, level by level.** A level is a hop, counted in transactions exactly like the tracer counts them.
   - Level 0: the seed transfers (every transfer of a seed transaction, or those paying the seed's address).
   - Closing a level: a transfer out of address A in transaction X joins level h when a level-h transfer of X
     paid A, unless A absorbs taint (a labelled service that is not a swap, or the fee sink). Swaps and UTXO
     nodes pass taint on within their transaction, so the hop does not grow.
   - Settling a level: each address paid by a level-h transfer that carries no label gets its earliest arrival
     `min(earlier arrival, ts)`; these are the reachable addresses R. Labels absorb taint (swaps only pass it on
     in the same transaction), so a service is never expanded: an exchange's hot wallet cannot blow up a trace.
   - The next level: the transfers out of an address whose earliest arrival moved earlier, at ts from the new
     arrival up to the old one, that no earlier level holds.
   - Never a transfer after `start + max_seconds` (start: the first seed's time). Levels stop after
     `max_hops + margin` (the margin, 1 by default, is a guard), or when nothing changes.
2. **Selection.** Every transfer of every transaction with a transfer into or out of an address in R, or with a
   transfer in some level (the seeds, swap outputs); and for a transaction whose transfers are not adjacent in
   (ts, seq) order, everything between its first and last transfer, so the tracer sees the same runs of one
   transaction (it groups a source's outputs and finds a swap's legs by scanning adjacent positions).

**Why a trace of the subgraph equals the trace of the whole ledger.** Induction on replay order: every transfer
the tracer passes taint through has a level no larger than its hop (its taint came from a transfer into its source
that arrived earlier; same transaction: the closing step adds it at the same level; another transaction: the
source's earliest arrival is no later, so the next level holds it). So every address that ever holds taint is in
R, and the subgraph holds all of its transfers, hence its exact balance and events. Transfers of kept transactions
that touch no address of R are read the same way in both (at most delivered, taint-free, to an address that
holds no taint). Keeping minimum hops and earliest times separately, ignoring dust and amounts, only makes R
larger (a superset), never smaller; a larger R adds transfers the tracer never reads. Positions are the whole
ledger's order restricted to the subgraph, so ties, "first arrival" and paths are the same transfers.

**Bounded work.** A level with more than `max_frontier` new transfers is not taken: "limit reached at hop N".
Levels before N are complete, so the subgraph is exact for a hop limit of N - 1, and the trace runs with it. Levels
0 and 1 are always taken: `trace_case` reads a hop limit of 0 as none for its comparison traces.

The DuckDB engine here runs the steps as SQL over a TransferStore's `transfers` table; spark.py runs the same
steps as Spark DataFrame joins over Parquet. `find_reach` drives both; `trace_subgraph` runs the one-machine
kernel (`trace_case`) on what either engine selected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from heistwatch.trace.case import COMPARE, CaseResult, trace_case
from heistwatch.trace.ledger import FEE_SINK, Transfer, normal_address
from heistwatch.trace.policies import Policy
from heistwatch.trace.store import Label, TransferStore
from heistwatch.trace.taint import SWAP_CATEGORIES, Limits, Seed

MAX_FRONTIER = 1_000_000
MARGIN = 1
NORMAL, ABSORBS, SWAPS = 0, 1, 2  # what a transfer's receiver does with taint
Progress = Callable[[int], None]


@dataclass(frozen=True)
class FrontierStop:
    """A level not taken because it held more new transfers than the frontier limit."""

    hop: int
    transfers: int
    limit: int

    def __str__(self) -> str:
        return f"limit reached at hop {self.hop}: {self.transfers:,} new transfers, frontier limit {self.limit:,}"


@dataclass(frozen=True)
class Reach:
    """How far the levels went, and where the frontier limit stopped them (if it did)."""

    levels: int
    stop: FrontierStop | None


@dataclass(frozen=True)
class Subgraph:
    """The transfers a trace reads, in ledger order, and the limits under which tracing them is exact."""

    transfers: list[Transfer]
    reached: int
    reach: Reach
    limits: Limits


class LevelEngine(Protocol):
    """The relational steps of the level search, run by one engine; each returns how many rows it produced."""

    def seed(self) -> int:
        """Make the seed transfers level 0."""
        ...

    def close_level(self) -> int:
        """Add the transfers that pass taint on within a transaction of the level just added."""
        ...

    def settle(self) -> int:
        """Move earliest arrivals earlier from the current level; count the addresses that changed."""
        ...

    def expand(self) -> int:
        """Find the next level's transfers out of the changed addresses (kept apart until `advance`)."""
        ...

    def advance(self) -> None:
        """Make the transfers found by `expand` the current level."""
        ...

    def reached(self) -> int:
        """How many addresses are reachable."""
        ...


def find_reach(
    engine: LevelEngine,
    limits: Limits,
    margin: int = MARGIN,
    max_frontier: int = MAX_FRONTIER,
    progress: Progress | None = None,
) -> Reach:
    """Run the level search on `engine` until nothing changes, the last level, or a level past `max_frontier`."""
    size = engine.seed()
    last = None if limits.max_hops is None else limits.max_hops + margin
    hop = 0
    while True:
        while added := engine.close_level():
            size += added
            if hop > 1 and size > max_frontier:
                return Reach(hop, FrontierStop(hop, size, max_frontier))
        changed = engine.settle()
        if progress:
            progress(hop)
        if not changed or (last is not None and hop >= last):
            return Reach(hop, None)
        size = engine.expand()
        if hop and size > max_frontier:
            return Reach(hop, FrontierStop(hop + 1, size, max_frontier))
        if not size:
            return Reach(hop, None)
        engine.advance()
        hop += 1


def exact_limits(limits: Limits, reach: Reach) -> Limits:
    """`limits` with the hop limit lowered to the last complete level when the frontier limit stopped the search."""
    if reach.stop is None:
        return limits
    complete = reach.stop.hop - 1
    if limits.max_hops is not None and limits.max_hops <= complete:
        return limits
    return replace(limits, max_hops=complete)


def receiver_roles(labels: Mapping[str, Label]) -> dict[str, int]:
    """What each labelled address (and the fee sink) does with taint it receives: absorb it, or swap it on."""
    roles = {normal_address(a): SWAPS if lb.category in SWAP_CATEGORIES else ABSORBS for a, lb in labels.items()}
    roles[FEE_SINK] = ABSORBS
    return roles


def trace_subgraph(
    subgraph: Subgraph,
    seeds: list[Seed],
    labels: Mapping[str, Label],
    policy: Policy = Policy.FIFO,
    compare: Sequence[Policy] = COMPARE,
) -> CaseResult:
    """Trace `seeds` through the subgraph with the one-machine kernel, under the limits it is exact for."""
    store = TransferStore()
    try:
        store.ingest(subgraph.transfers)
        present = store.address_index()
        store.add_labels(label for address, label in labels.items() if address in present)
        return trace_case(store, seeds, policy, subgraph.limits, compare)
    finally:
        store.close()


def extract_subgraph(
    store: TransferStore,
    seeds: list[Seed],
    limits: Limits | None = None,
    labels: Mapping[str, Label] | None = None,
    margin: int = MARGIN,
    max_frontier: int = MAX_FRONTIER,
) -> Subgraph:
    """The subgraph of `store` that tracing `seeds` under `limits` reads, found with DuckDB SQL."""
    limits = limits or Limits()
    engine = _DuckDBLevels(store, seeds, receiver_roles(store.labels() if labels is None else labels), limits)
    try:
        reach = find_reach(engine, limits, margin, max_frontier)
        return Subgraph(engine.select(), engine.reached(), reach, exact_limits(limits, reach))
    finally:
        engine.drop()


_TABLES = (
    "sg_seeds",
    "sg_roles",
    "sg_level",
    "sg_new",
    "sg_added",
    "sg_next",
    "sg_seen",
    "sg_reach",
    "sg_changed",
    "sg_txs",
)
_CLOSE = """
CREATE OR REPLACE TEMP TABLE sg_added AS
SELECT DISTINCT t.seq, t.tx, t.ts, t.src, t.dst FROM transfers t
JOIN (SELECT DISTINCT n.dst, n.tx FROM sg_new n ANTI JOIN sg_roles r ON n.dst = r.address AND r.role = 1) p
  ON t.src = p.dst AND t.tx = p.tx
WHERE t.ts <= $ts_max AND t.seq NOT IN (SELECT seq FROM sg_seen)
"""
_SETTLE = """
CREATE OR REPLACE TEMP TABLE sg_changed AS
SELECT c.address, c.ts, r.ts AS old
FROM (SELECT dst AS address, min(ts) AS ts FROM sg_level ANTI JOIN sg_roles ON dst = address GROUP BY dst) c
LEFT JOIN sg_reach r USING (address)
WHERE r.ts IS NULL OR c.ts < r.ts
"""
_EXPAND = """
CREATE OR REPLACE TEMP TABLE sg_next AS
SELECT t.seq, t.tx, t.ts, t.src, t.dst FROM transfers t JOIN sg_changed c ON t.src = c.address
WHERE t.ts >= c.ts AND (c.old IS NULL OR t.ts < c.old) AND t.ts <= $ts_max
  AND t.seq NOT IN (SELECT seq FROM sg_seen)
"""
# Kept transactions: those touching R, plus those of level transfers (seeds, swap outputs).
_KEEP = """
CREATE OR REPLACE TEMP TABLE sg_txs AS
SELECT tx FROM transfers WHERE src IN (SELECT address FROM sg_reach) OR dst IN (SELECT address FROM sg_reach)
UNION SELECT tx FROM sg_seen
"""
# A kept transaction whose transfers are not one run in (ts, seq) order brings everything between its ends.
_SELECT = """
WITH kept AS (SELECT seq, tx, ts FROM transfers SEMI JOIN sg_txs USING (tx)),
ends AS (SELECT tx, min(ts) AS ts0, max(ts) AS ts1, min(seq) AS s0, max(seq) AS s1, count(*) AS n
         FROM kept GROUP BY tx),
odd AS (SELECT e.tx, e.ts0, e.ts1,
               (SELECT min(seq) FROM kept k WHERE k.tx = e.tx AND k.ts = e.ts0) AS q0,
               (SELECT max(seq) FROM kept k WHERE k.tx = e.tx AND k.ts = e.ts1) AS q1
        FROM ends e WHERE e.ts0 <> e.ts1 OR e.s1 - e.s0 + 1 <> e.n),
chosen AS (SELECT seq FROM kept
           UNION SELECT t.seq FROM transfers t JOIN odd o
             ON (t.ts > o.ts0 OR (t.ts = o.ts0 AND t.seq >= o.q0))
            AND (t.ts < o.ts1 OR (t.ts = o.ts1 AND t.seq <= o.q1)))
SELECT x.tx, t.ts, a.chain, a.asset, s.address, d.address, t.amount, t.idx
FROM transfers t SEMI JOIN chosen USING (seq)
JOIN txs x ON x.id = t.tx JOIN assets a ON a.id = t.asset
JOIN addresses s ON s.id = t.src JOIN addresses d ON d.id = t.dst
ORDER BY t.ts, t.seq
"""


class _DuckDBLevels:
    """The level search as SQL over a TransferStore's interned `transfers` table (temporary tables sg_*)."""

    def __init__(self, store: TransferStore, seeds: list[Seed], roles: Mapping[str, int], limits: Limits) -> None:
        self.con, self.limits = store.con, limits
        ids, txs = store.address_index(), store.tx_index()
        self.con.execute("CREATE OR REPLACE TEMP TABLE sg_roles (address INTEGER, role TINYINT)")
        rows = [(ids[a], role) for a, role in roles.items() if a in ids]
        if rows:
            self.con.executemany("INSERT INTO sg_roles VALUES (?, ?)", rows)
        self.con.execute("CREATE OR REPLACE TEMP TABLE sg_seeds (tx BIGINT, dst INTEGER)")
        wanted = [(txs[s.tx], ids.get(normal_address(s.dst), -1) if s.dst else None) for s in seeds if s.tx in txs]
        if wanted:
            self.con.executemany("INSERT INTO sg_seeds VALUES (?, ?)", wanted)
        self.con.execute("CREATE OR REPLACE TEMP TABLE sg_reach (address INTEGER, ts BIGINT)")
        self.ts_max = 0

    def _count(self, table: str) -> int:
        row = self.con.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0

    def seed(self) -> int:
        self.con.execute(
            """CREATE OR REPLACE TEMP TABLE sg_level AS SELECT t.seq, t.tx, t.ts, t.src, t.dst FROM transfers t
            JOIN sg_seeds s ON t.tx = s.tx AND (s.dst IS NULL OR t.dst = s.dst)"""
        )
        self.con.execute("CREATE OR REPLACE TEMP TABLE sg_new AS SELECT * FROM sg_level")
        self.con.execute("CREATE OR REPLACE TEMP TABLE sg_seen AS SELECT seq, tx FROM sg_level")
        row = self.con.execute("SELECT min(ts) FROM sg_level").fetchone()
        start = row[0] if row and row[0] is not None else 0
        seconds = self.limits.max_seconds
        self.ts_max = start + seconds if seconds is not None else (1 << 63) - 1
        return self._count("sg_level")

    def close_level(self) -> int:
        self.con.execute(_CLOSE, {"ts_max": self.ts_max})
        self.con.execute("CREATE OR REPLACE TEMP TABLE sg_new AS SELECT * FROM sg_added")
        self.con.execute("INSERT INTO sg_level SELECT * FROM sg_new")
        self.con.execute("INSERT INTO sg_seen SELECT seq, tx FROM sg_new")
        return self._count("sg_new")

    def settle(self) -> int:
        self.con.execute(_SETTLE)
        self.con.execute("DELETE FROM sg_reach WHERE address IN (SELECT address FROM sg_changed)")
        self.con.execute("INSERT INTO sg_reach SELECT address, ts FROM sg_changed")
        return self._count("sg_changed")

    def expand(self) -> int:
        self.con.execute(_EXPAND, {"ts_max": self.ts_max})
        return self._count("sg_next")

    def advance(self) -> None:
        self.con.execute("CREATE OR REPLACE TEMP TABLE sg_level AS SELECT * FROM sg_next")
        self.con.execute("CREATE OR REPLACE TEMP TABLE sg_new AS SELECT * FROM sg_next")
        self.con.execute("INSERT INTO sg_seen SELECT seq, tx FROM sg_next")

    def reached(self) -> int:
        return self._count("sg_reach")

    def select(self) -> list[Transfer]:
        """The chosen transfers with their names, in ledger order."""
        self.con.execute(_KEEP)
        rows = self.con.execute(_SELECT).fetchall()
        return [Transfer(tx, ts, c, a, s, d, int(amount), idx) for tx, ts, c, a, s, d, amount, idx in rows]

    def drop(self) -> None:
        """Remove the temporary tables."""
        for table in _TABLES:
            self.con.execute(f"DROP TABLE IF EXISTS {table}")
