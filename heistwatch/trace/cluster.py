"""Address clustering over a TransferStore: versioned claims with provenance, computed in DuckDB + numpy.

Heuristics, each a link between two addresses that keeps its name, evidence, score and transaction:
- `multi_input`: the input addresses of one UTXO transaction have one owner; CoinJoin-shaped transactions
  (Whirlpool, Wasabi, JoinMarket shapes) are excluded, each with the reason recorded;
- `change`: scored evidence, never a silent merge. Each change heuristic that singles out one output of a
  transaction (one-time address, the only non-round amount, the only output of the inputs' script type, the only
  output below the smallest input) multiplies that output's odds of being the change by its likelihood ratio
  (and divides every other output's); the prior is one change among the outputs. Only the best output of a
  transaction at or above the caller's threshold joins the cluster;
- `deposit_address`: an unlabelled address that receives from several senders and forwards (almost) all of it,
  only ever to one labelled exchange address, each receipt within a time window, belongs to that exchange. Its
  depositors are not merged.
A transaction with inputs of unknown origin (`<unresolved>`, e.g. spends of outputs before a block sample) is
judged CoinJoin-shaped from its outputs alone, and its change is not scored by input script type or value.
Clusters grow by union-find over the merging links in time order; a cluster that would pass `max_cluster`
addresses stops growing (a "supercluster") and is reported, so one exchange or mixer cannot swallow the ledger.
Each run is a new version in the ledger file (`clusterings`, `cluster_members`, `cluster_links`,
`cluster_exclusions`, `superclusters`); earlier versions stay queryable.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from heistwatch.errors import InputError, NotFoundError
from heistwatch.trace.labels import SERVICE_CATEGORIES
from heistwatch.trace.ledger import FEE_SINK
from heistwatch.trace.store import Label, TransferStore

IntArray = np.ndarray[Any, np.dtype[np.int64]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]
COINBASE = "<coinbase>"  # the input of a coinbase transaction; any other `<…>` input is value of unknown origin
STEPS = ("legs", "coinjoins", "multi_input", "change", "deposit_address", "union", "write")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clusterings (
  version INTEGER, created VARCHAR, params VARCHAR, heuristics VARCHAR, clustered BIGINT, clusters BIGINT);
CREATE TABLE IF NOT EXISTS cluster_members (version INTEGER, address VARCHAR, cluster BIGINT);
CREATE TABLE IF NOT EXISTS cluster_links (
  version INTEGER, a VARCHAR, b VARCHAR, heuristic VARCHAR, detail VARCHAR, score DOUBLE, tx VARCHAR, merged BOOLEAN);
CREATE TABLE IF NOT EXISTS cluster_exclusions (version INTEGER, tx VARCHAR, reason VARCHAR);
CREATE TABLE IF NOT EXISTS superclusters (
  version INTEGER, cluster BIGINT, address VARCHAR, size BIGINT, refused BIGINT, first_refused_tx VARCHAR);
"""
# Script type of an address string: the "same script type as the inputs" change heuristic compares these.
_SCRIPT_MACRO = """
CREATE OR REPLACE TEMP MACRO _cl_script(a) AS CASE
  WHEN lower(a[1:4]) IN ('bc1p', 'tb1p') THEN 'p2tr'
  WHEN lower(a[1:4]) IN ('bc1q', 'tb1q') THEN CASE length(a) WHEN 42 THEN 'p2wpkh' WHEN 62 THEN 'p2wsh' ELSE 'v0' END
  WHEN a[1:1] IN ('1', 'm', 'n') THEN 'p2pkh'
  WHEN a[1:1] IN ('3', '2') THEN 'p2sh'
  ELSE 'other' END
"""
_LEGS = """
CREATE OR REPLACE TEMP TABLE _cl_nodes AS SELECT id FROM addresses WHERE address LIKE 'tx:%';
CREATE OR REPLACE TEMP TABLE _cl_ins AS
  SELECT t.dst AS node, t.src AS addr, t.amount, t.ts, t.tx FROM transfers t
  JOIN addresses a ON a.id = t.src
  WHERE t.dst IN (SELECT id FROM _cl_nodes) AND a.address NOT LIKE '<%';
CREATE OR REPLACE TEMP TABLE _cl_partial AS
  SELECT DISTINCT t.dst AS node FROM transfers t JOIN addresses a ON a.id = t.src
  WHERE t.dst IN (SELECT id FROM _cl_nodes) AND a.address LIKE '<%' AND a.address <> $coinbase;
CREATE OR REPLACE TEMP TABLE _cl_outs AS
  SELECT t.src AS node, t.dst AS addr, t.amount, t.ts, t.tx, t.seq FROM transfers t
  WHERE t.src IN (SELECT id FROM _cl_nodes) AND t.dst NOT IN (SELECT id FROM addresses WHERE address = $fee);
CREATE OR REPLACE TEMP TABLE _cl_tx AS
WITH i AS (
  SELECT node, any_value(i.tx) AS tx, min(i.ts) AS ts, count(DISTINCT addr) AS n_addr, count(*) AS n_in,
         min(addr) AS a_in, min(amount) AS min_in, count(DISTINCT _cl_script(a.address)) AS in_types,
         min(_cl_script(a.address)) AS in_type
  FROM _cl_ins i JOIN addresses a ON a.id = i.addr GROUP BY node),
o AS (SELECT node, count(*) AS n_out FROM _cl_outs GROUP BY node),
v AS (SELECT node, amount, count(*) AS c FROM _cl_outs GROUP BY node, amount),
eq AS (SELECT node, max(c) AS k, arg_max(amount, c) AS v, count(*) FILTER (WHERE c >= 2) AS groups
       FROM v GROUP BY node),
s AS (SELECT DISTINCT o.node FROM _cl_outs o JOIN _cl_ins i ON i.node = o.node AND i.addr = o.addr)
SELECT i.*, o.n_out, eq.k, eq.v, eq.groups, s.node IS NOT NULL AS self_change, p.node IS NOT NULL AS partial,
       NULL::VARCHAR AS coinjoin
FROM i JOIN o USING (node) JOIN eq USING (node) LEFT JOIN s USING (node) LEFT JOIN _cl_partial p USING (node);
"""
_COINJOINS = """
UPDATE _cl_tx SET coinjoin = CASE
  WHEN n_in = 5 AND n_out = 5 AND k = 5 THEN 'whirlpool: 5 inputs, 5 equal outputs of ' || v
  WHEN k >= $wasabi_equal AND (n_addr >= $min_equal OR partial) THEN
    'wasabi: ' || n_in || ' inputs, ' || k || ' equal outputs of ' || v
  WHEN k >= $min_equal AND (n_addr >= k OR partial) AND n_out <= 2 * k + 1 THEN
    'joinmarket: ' || n_addr || ' input addresses, ' || k || ' equal outputs of ' || v || ', ' || n_out || ' outputs'
  WHEN n_addr >= $many_inputs AND groups >= 2 THEN
    'wasabi2: ' || n_addr || ' input addresses, ' || groups || ' groups of equal outputs'
  END
WHERE n_addr >= 2 OR partial;
INSERT INTO cluster_exclusions SELECT $version, x.tx, t.coinjoin FROM _cl_tx t JOIN txs x ON x.id = t.tx
  WHERE t.coinjoin IS NOT NULL;
"""
_LINKS = """
CREATE OR REPLACE TEMP TABLE _cl_links (
  a BIGINT, b BIGINT, heuristic VARCHAR, detail VARCHAR, score DOUBLE, tx BIGINT, ts BIGINT, wants BOOLEAN)
"""
_MULTI_INPUT = """
INSERT INTO _cl_links
SELECT DISTINCT t.a_in, i.addr, 'multi_input', t.n_addr || ' input addresses', 1.0, t.tx, t.ts, TRUE
FROM _cl_ins i JOIN _cl_tx t USING (node)
WHERE t.coinjoin IS NULL AND t.n_addr >= 2 AND i.addr <> t.a_in
"""
_CHANGE = """
INSERT INTO _cl_links
WITH f AS (
  SELECT addr, arg_min(seq, {'ts': ts, 'seq': seq}) AS first_seq
  FROM (SELECT src AS addr, ts, seq FROM transfers UNION ALL SELECT dst AS addr, ts, seq FROM transfers)
  WHERE addr IN (SELECT addr FROM _cl_outs) GROUP BY addr),
c AS (
  SELECT o.node, o.addr, t.tx, t.ts, t.n_out, t.a_in,
         f.first_seq = o.seq AS h_one_time,
         o.amount % $round_unit <> 0 AS h_round,
         NOT t.partial AND t.in_types = 1 AND _cl_script(ad.address) = t.in_type AS h_script,
         NOT t.partial AND o.amount < t.min_in AS h_optimal
  FROM _cl_outs o JOIN _cl_tx t USING (node) JOIN f ON f.addr = o.addr JOIN addresses ad ON ad.id = o.addr
  WHERE t.coinjoin IS NULL AND NOT t.self_change AND t.n_out >= 2),
s AS (
  SELECT *, sum(h_one_time::INT) OVER w AS n_one_time, sum(h_round::INT) OVER w AS n_round,
         sum(h_script::INT) OVER w AS n_script, sum(h_optimal::INT) OVER w AS n_optimal
  FROM c WINDOW w AS (PARTITION BY node)),
e AS (
  SELECT *,
    CASE WHEN n_one_time = 1 THEN CASE WHEN h_one_time THEN 1 ELSE -1 END ELSE 0 END AS e_one_time,
    CASE WHEN n_round = 1 THEN CASE WHEN h_round THEN 1 ELSE -1 END ELSE 0 END AS e_round,
    CASE WHEN n_script = 1 THEN CASE WHEN h_script THEN 1 ELSE -1 END ELSE 0 END AS e_script,
    CASE WHEN n_optimal = 1 THEN CASE WHEN h_optimal THEN 1 ELSE -1 END ELSE 0 END AS e_optimal
  FROM s),
g AS (
  SELECT *, -ln(n_out - 1) + e_one_time * $w_one_time + e_round * $w_round + e_script * $w_script
            + e_optimal * $w_optimal AS logit
  FROM e),
p AS (SELECT *, 1 / (1 + exp(-logit)) AS score FROM g WHERE logit > -ln(n_out - 1))
SELECT a_in, addr, 'change',
  concat_ws(' ',
    CASE e_one_time WHEN 1 THEN '+one_time' WHEN -1 THEN '-one_time' END,
    CASE e_round WHEN 1 THEN '+round_payment' WHEN -1 THEN '-round_payment' END,
    CASE e_script WHEN 1 THEN '+script_type' WHEN -1 THEN '-script_type' END,
    CASE e_optimal WHEN 1 THEN '+optimal_change' WHEN -1 THEN '-optimal_change' END),
  score, tx, ts, score >= $threshold AND count(*) FILTER (WHERE score >= $threshold) OVER (PARTITION BY node) = 1
FROM p
"""
_DEPOSITS = """
INSERT INTO _cl_links
WITH lab AS (SELECT DISTINCT a.id FROM labels l JOIN addresses a ON a.address = l.address),
hot AS (SELECT DISTINCT a.id FROM labels l JOIN addresses a ON a.address = l.address WHERE l.category = 'exchange'),
acct AS (
  SELECT t.* FROM transfers t
  WHERE t.src NOT IN (SELECT id FROM _cl_nodes) AND t.dst NOT IN (SELECT id FROM _cl_nodes)
    AND t.dst NOT IN (SELECT id FROM addresses WHERE address = $fee) AND t.src <> t.dst),
fwd AS (
  SELECT t.src AS d, t.asset, t.dst AS h, t.ts, t.amount, t.tx FROM acct t
  WHERE t.dst IN (SELECT id FROM hot) AND t.src NOT IN (SELECT id FROM lab)),
pay AS (
  SELECT src AS d, count(DISTINCT dst) AS payees, min(dst) AS h FROM acct
  WHERE src IN (SELECT d FROM fwd) GROUP BY src),
inflow AS (
  SELECT dst AS d, asset, sum(amount) AS received FROM acct WHERE dst IN (SELECT d FROM pay WHERE payees = 1)
  GROUP BY dst, asset),
share AS (
  SELECT f.d, min(f.forwarded / i.received) AS share, min(f.first_tx) AS tx, min(f.first_ts) AS ts FROM (
    SELECT d, asset, sum(amount) AS forwarded, arg_min(tx, ts) AS first_tx, min(ts) AS first_ts FROM fwd
    GROUP BY d, asset) f JOIN inflow i USING (d, asset)
  GROUP BY f.d),
receipts AS (
  SELECT t.dst AS d, t.asset, t.src, t.ts FROM acct t
  WHERE t.dst IN (SELECT d FROM share) AND t.src NOT IN (SELECT id FROM lab)),
delay AS (
  SELECT r.d, count(DISTINCT r.src) AS senders, max(f.ts - r.ts) AS worst, count(*) - count(f.ts) AS unmatched
  FROM receipts r ASOF LEFT JOIN fwd f ON r.d = f.d AND r.asset = f.asset AND r.ts <= f.ts GROUP BY r.d)
SELECT p.h, p.d, 'deposit_address',
  'senders=' || senders || ' forwarded=' || round(least(share, 1.0), 4) || ' max_delay=' || worst || 's',
  least(share, 1.0), s.tx, s.ts, TRUE
FROM pay p JOIN share s USING (d) JOIN delay USING (d)
WHERE p.payees = 1 AND s.share >= $share AND senders >= $min_senders AND unmatched = 0 AND worst <= $window
"""
_WRITE_LINKS = """
INSERT INTO cluster_links
SELECT $version, a.address, b.address, l.heuristic, l.detail, l.score, x.tx, m.merged
FROM _cl_links l JOIN _cl_merged m ON m.row = l.rowid JOIN addresses a ON a.id = l.a JOIN addresses b ON b.id = l.b
JOIN txs x ON x.id = l.tx
"""
_WRITE_MEMBERS = """
INSERT INTO cluster_members SELECT $version, a.address, m.cluster FROM _cl_members m JOIN addresses a ON a.id = m.id;
"""
_TEMP = ("_cl_nodes", "_cl_ins", "_cl_partial", "_cl_outs", "_cl_tx", "_cl_links")


@dataclass(frozen=True)
class ChangeWeights:
    """Likelihood ratios of the change heuristics: how much more often each singles out the change than a payment.

    Priors from the literature's ordering (one-time change strongest), not fitted: with the default threshold 0.9,
    no single heuristic merges a two-output transaction on its own; two that agree do.
    """

    one_time: float = 8.0
    round_payment: float = 4.0
    script_type: float = 3.0
    optimal_change: float = 3.0


@dataclass(frozen=True)
class ClusterParams:
    """Every knob of one clustering run; stored with the version so a result can be reproduced."""

    change_threshold: float = 0.9
    max_cluster: int = 50_000
    change_weights: ChangeWeights = field(default_factory=ChangeWeights)
    round_unit: int = 100_000  # base units; a payment that is a multiple of this is "round" (0.001 BTC)
    coinjoin_min_equal: int = 2
    coinjoin_wasabi_equal: int = 10
    coinjoin_many_inputs: int = 50
    deposit_min_senders: int = 2
    deposit_share: float = 0.95
    deposit_window: int = 3 * 86_400
    heuristics: tuple[str, ...] = ("multi_input", "change", "deposit_address")


@dataclass(frozen=True)
class Supercluster:
    """A cluster that stopped growing at the size limit: its id, an address in it, size and refused merges."""

    cluster: int
    address: str
    size: int
    refused: int
    first_refused_tx: str


@dataclass(frozen=True)
class Clustering:
    """What one clustering version holds: its parameters and counts of links, merges, exclusions and clusters."""

    version: int
    created: str
    params: dict[str, Any]
    links: dict[str, int]
    merged: dict[str, int]
    coinjoins: dict[str, int]
    clusters: int
    clustered: int
    largest: int
    superclusters: list[Supercluster]


def cluster_addresses(
    store: TransferStore,
    params: ClusterParams | None = None,
    created: datetime | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Clustering:
    """Cluster the store's addresses with `params` and write the result as a new version; `on_step` sees progress."""
    params = params or ClusterParams()
    _check(params)
    con = store.con
    con.execute(_SCHEMA)
    row = con.execute("SELECT coalesce(max(version), 0) + 1 FROM clusterings").fetchone()
    version = int(row[0]) if row else 1
    step = on_step or (lambda _name: None)
    w = params.change_weights
    try:
        _run(store, _SCRIPT_MACRO)
        _run(store, _LEGS, {"fee": FEE_SINK, "coinbase": COINBASE})
        step("legs")
        _run(store, _COINJOINS, _coinjoin_args(params, version))
        step("coinjoins")
        _run(store, _LINKS)
        if "multi_input" in params.heuristics:
            _run(store, _MULTI_INPUT)
        step("multi_input")
        if "change" in params.heuristics:
            weights = {
                "w_one_time": math.log(w.one_time),
                "w_round": math.log(w.round_payment),
                "w_script": math.log(w.script_type),
                "w_optimal": math.log(w.optimal_change),
            }
            _run(store, _CHANGE, {"round_unit": params.round_unit, "threshold": params.change_threshold, **weights})
        step("change")
        if "deposit_address" in params.heuristics:
            _run(store, _DEPOSITS, _deposit_args(params))
        step("deposit_address")
        cluster_ids, merged, capped = _union(store, params.max_cluster)
        step("union")
        summary = _write(store, version, params, created, cluster_ids, merged, capped)
        step("write")
    finally:
        for table in _TEMP:
            con.execute(f"DROP TABLE IF EXISTS {table}")
    return summary


def _run(store: TransferStore, script: str, args: Mapping[str, Any] | None = None) -> None:
    """Run each statement of `script` with the named parameters it uses (DuckDB binds them per statement)."""
    for statement in filter(str.strip, script.split(";\n")):
        store.con.execute(statement, {k: v for k, v in (args or {}).items() if f"${k}" in statement})


def _check(params: ClusterParams) -> None:
    """InputError for a parameter outside its range."""
    if not 0.5 <= params.change_threshold <= 1.0:
        raise InputError("change_threshold", f"must be a probability from 0.5 to 1, got {params.change_threshold}")
    if params.max_cluster < 2:
        raise InputError("max_cluster", f"must be at least 2, got {params.max_cluster}")
    unknown = set(params.heuristics) - {"multi_input", "change", "deposit_address"}
    if unknown:
        raise InputError("heuristics", f"unknown heuristics {sorted(unknown)}")
    if min(asdict(params.change_weights).values()) <= 1.0:
        raise InputError("change_weights", "every likelihood ratio must be above 1")
    if params.round_unit < 1 or params.deposit_min_senders < 1 or not 0 < params.deposit_share <= 1:
        raise InputError("params", "round_unit and deposit_min_senders must be >= 1, deposit_share in (0, 1]")


def _coinjoin_args(params: ClusterParams, version: int) -> dict[str, int]:
    return {
        "min_equal": params.coinjoin_min_equal,
        "wasabi_equal": params.coinjoin_wasabi_equal,
        "many_inputs": params.coinjoin_many_inputs,
        "version": version,
    }


def _deposit_args(params: ClusterParams) -> dict[str, Any]:
    return {
        "fee": FEE_SINK,
        "share": params.deposit_share,
        "min_senders": params.deposit_min_senders,
        "window": params.deposit_window,
    }


@dataclass
class _Capped:
    """Union-find state for components that outgrow the limit, replayed edge by edge in time order."""

    parent: dict[int, int] = field(default_factory=dict)
    size: dict[int, int] = field(default_factory=dict)
    refused: Counter[int] = field(default_factory=Counter)
    first_refused: dict[int, int] = field(default_factory=dict)

    def find(self, x: int) -> int:
        root = x
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while x != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int, tx: int, limit: int) -> bool:
        """Merge the clusters of `a` and `b` unless one is capped or the merge would pass `limit`."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        sa, sb = self.size.get(ra, 1), self.size.get(rb, 1)
        big = ra if sa >= sb else rb
        if ra in self.refused or rb in self.refused or sa + sb > limit:
            for r in {ra, rb} & set(self.refused) or {big}:  # the capped one(s), or the one growing past the limit
                self.refused[r] += 1
                self.first_refused.setdefault(r, tx)
            return False
        small = rb if big == ra else ra
        self.parent[small], self.size[big] = big, sa + sb
        return True


def _union(store: TransferStore, limit: int) -> tuple[IntArray, BoolArray, list[tuple[int, int, int, int]]]:
    """Cluster id per address id (its smallest member id), whether each link merged, and capped clusters.

    Components within the limit come from one sparse connected-components pass (order cannot matter there);
    only components past it are replayed link by link in time order so they stop growing at the limit.
    """
    got = store.con.execute(
        "SELECT rowid, a, b, tx FROM _cl_links WHERE wants ORDER BY ts, tx, a, b, heuristic"
    ).fetchnumpy()
    rows, a, b, tx = (np.asarray(got[k], dtype=np.int64) for k in ("rowid", "a", "b", "tx"))
    n = len(store.address_index())
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    comp = comp.astype(np.int64)
    merged = np.ones(len(a), dtype=np.bool_)
    capped: list[tuple[int, int, int, int]] = []
    big = np.flatnonzero(np.bincount(comp) > limit)
    if big.size:
        state = _Capped()
        for k in np.flatnonzero(np.isin(comp[a], big)).tolist():
            merged[k] = state.union(int(a[k]), int(b[k]), int(tx[k]), limit)
        members = np.flatnonzero(np.isin(comp, big))
        roots = np.array([state.find(int(x)) for x in members.tolist()], dtype=np.int64)
        comp[members] = comp.max() + 1 + roots  # fresh labels, apart from every connected component
        capped = [(r, state.size.get(r, 1), state.refused[r], state.first_refused[r]) for r in state.refused]
    rep = np.full(int(comp.max()) + 1, n, dtype=np.int64)
    np.minimum.at(rep, comp, np.arange(n, dtype=np.int64))
    cluster_ids = rep[comp]
    merged_rows = np.zeros(int(rows.max()) + 1 if rows.size else 0, dtype=np.bool_)
    merged_rows[rows[merged]] = True
    capped = [(int(cluster_ids[r]), size, refused, first) for r, size, refused, first in capped]
    return cluster_ids, merged_rows, capped


def _write(
    store: TransferStore,
    version: int,
    params: ClusterParams,
    created: datetime | None,
    cluster_ids: IntArray,
    merged_rows: BoolArray,
    capped: list[tuple[int, int, int, int]],
) -> Clustering:
    """Store the version: its links (merged or not), members of clusters of two or more, superclusters."""
    con = store.con
    sizes = np.bincount(cluster_ids, minlength=len(cluster_ids))
    ids = np.flatnonzero(sizes[cluster_ids] >= 2)
    _cl_members = {"id": ids, "cluster": cluster_ids[ids]}
    count = con.execute("SELECT count(*) FROM _cl_links").fetchone()
    total = int(count[0]) if count else 0
    flags = np.zeros(total, dtype=np.bool_)
    flags[: min(len(merged_rows), total)] = merged_rows[:total]
    _cl_merged = {"row": np.arange(total, dtype=np.int64), "merged": flags}
    con.execute(_WRITE_LINKS, {"version": version})
    con.execute(_WRITE_MEMBERS, {"version": version})
    names = store.tx_names()
    addresses = _names_of(store, [c for c, _, _, _ in capped])
    superclusters = [
        Supercluster(cluster, addresses[cluster], size, refused, names[first])
        for cluster, size, refused, first in sorted(capped)
    ]
    for s in superclusters:
        con.execute(
            "INSERT INTO superclusters VALUES (?, ?, ?, ?, ?, ?)",
            [version, s.cluster, s.address, s.size, s.refused, s.first_refused_tx],
        )
    stamp = (created or datetime.now(UTC)).isoformat(timespec="seconds")
    clustered, clusters = len(ids), int(np.count_nonzero(sizes >= 2))
    con.execute(
        "INSERT INTO clusterings VALUES (?, ?, ?, ?, ?, ?)",
        [version, stamp, json.dumps(asdict(params), sort_keys=True), ",".join(params.heuristics), clustered, clusters],
    )
    return load_clustering(store, version)


def _names_of(store: TransferStore, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = store.con.execute("SELECT id, address FROM addresses WHERE id IN (SELECT unnest($ids))", {"ids": ids})
    return {int(i): str(a) for i, a in rows.fetchall()}


def versions(store: TransferStore) -> list[int]:
    """The clustering versions stored in the ledger, oldest first."""
    store.con.execute(_SCHEMA)
    return [int(v) for (v,) in store.con.execute("SELECT version FROM clusterings ORDER BY version").fetchall()]


def load_clustering(store: TransferStore, version: int) -> Clustering:
    """The summary of a stored clustering version; NotFoundError if there is none."""
    con = store.con
    con.execute(_SCHEMA)
    row = con.execute("SELECT created, params, clustered, clusters FROM clusterings WHERE version = ?", [version])
    found = row.fetchone()
    if found is None:
        raise NotFoundError(f"clustering version {version}")
    created, params, clustered, clusters = found
    arg = [version]
    links = dict(
        con.execute("SELECT heuristic, count(*) FROM cluster_links WHERE version=? GROUP BY 1", arg).fetchall()
    )
    merged_sql = "SELECT heuristic, count(*) FROM cluster_links WHERE version=? AND merged GROUP BY 1"
    merged = dict(con.execute(merged_sql, arg).fetchall())
    kinds = con.execute("SELECT reason FROM cluster_exclusions WHERE version = ?", arg).fetchall()
    largest = con.execute(
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM cluster_members WHERE version=? GROUP BY cluster)",
        arg,
    ).fetchone()
    supers = con.execute(
        "SELECT cluster, address, size, refused, first_refused_tx FROM superclusters WHERE version=? ORDER BY cluster",
        arg,
    ).fetchall()
    return Clustering(
        version=version,
        created=str(created),
        params=json.loads(params),
        links={str(k): int(v) for k, v in links.items()},
        merged={str(k): int(v) for k, v in merged.items()},
        coinjoins=dict(Counter(str(r).partition(":")[0] for (r,) in kinds)),
        clusters=int(clusters),
        clustered=int(clustered),
        largest=int(largest[0]) if largest else 0,
        superclusters=[Supercluster(int(c), str(a), int(s), int(r), str(t)) for c, a, s, r, t in supers],
    )


def cluster_members(store: TransferStore, version: int) -> dict[str, int]:
    """Cluster id of every address in a cluster of two or more (absent addresses are clusters of their own)."""
    load_clustering(store, version)
    rows = store.con.execute("SELECT address, cluster FROM cluster_members WHERE version = ?", [version])
    return {str(a): int(c) for a, c in rows.fetchall()}


def cluster_labels(store: TransferStore, version: int) -> list[Label]:
    """Service labels for unlabelled addresses whose cluster holds exactly one labelled service.

    The label's source names the clustering version, the cluster, the heuristics that built it, the labelled
    member and that member's own source. A cluster that holds two services is ambiguous and labels nothing.
    """
    load_clustering(store, version)
    sql = """
    WITH m AS (SELECT address, cluster FROM cluster_members WHERE version = $v),
    l AS (SELECT m.cluster, l.address, l.service, l.category, l.source FROM m JOIN labels l USING (address)
          WHERE l.category IN (SELECT unnest($categories))),
    one AS (SELECT cluster, min(address) AS address, any_value(service) AS service, any_value(category) AS category,
            arg_min(source, address) AS source FROM l GROUP BY cluster HAVING count(DISTINCT service) = 1),
    how AS (SELECT m.cluster, string_agg(DISTINCT k.heuristic, '+' ORDER BY k.heuristic) AS heuristics
            FROM cluster_links k JOIN m ON m.address = k.a WHERE k.version = $v AND k.merged GROUP BY m.cluster)
    SELECT m.address, one.service, one.category, one.cluster, coalesce(how.heuristics, ''), one.address, one.source
    FROM m JOIN one USING (cluster) LEFT JOIN how USING (cluster)
    WHERE m.address NOT IN (SELECT address FROM labels) ORDER BY m.address
    """
    rows = store.con.execute(sql, {"v": version, "categories": sorted(SERVICE_CATEGORIES)}).fetchall()
    return [
        Label(address, service, category, f"cluster v{version} #{cluster} ({how}) with {member} [{source}]")
        for address, service, category, cluster, how, member, source in rows
    ]


@dataclass(frozen=True)
class PairScores:
    """Pairwise clustering scores: of address pairs put together, how many share an owner, and vice versa."""

    precision: float
    recall: float
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int


def pair_scores(clusters: Mapping[str, int], owners: Mapping[str, str]) -> PairScores:
    """Pairwise precision and recall over the addresses in `owners` (absent from `clusters` = a cluster alone)."""
    cells: Counter[tuple[int | str, str]] = Counter()
    for address, owner in owners.items():
        cells[(clusters.get(address, f"alone:{address}"), owner)] += 1
    by_cluster: Counter[int | str] = Counter()
    by_owner: Counter[str] = Counter()
    for (cluster, owner), n in cells.items():
        by_cluster[cluster] += n
        by_owner[owner] += n
    correct = sum(n * (n - 1) // 2 for n in cells.values())
    predicted = sum(n * (n - 1) // 2 for n in by_cluster.values())
    true = sum(n * (n - 1) // 2 for n in by_owner.values())
    return PairScores(
        correct / predicted if predicted else 1.0, correct / true if true else 1.0, true, predicted, correct
    )
