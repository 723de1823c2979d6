"""The distinct-value engine: each field's tests run once per distinct value, then combined per row with numpy.

Log fields repeat (user agents, hosts, methods, DNS names, images, command lines), so every rule's tests of one
field run over that field's distinct values only, each value known by its 64-bit DuckDB hash: string tests
(equality, prefix, suffix, substring, wildcards, lists) in one Hyperscan database per field, one pass per value;
the rest (regular expressions, comparisons, null tests) in DuckDB. Each rule's condition is folded so that a
field's share of it is one part (sigma_sql.fold), evaluated over the distinct values, then looked up per row through
the row's value code; a part true for no value (most of them in ordinary traffic) or for every value folds to a
constant before any row is touched. Tests that read two fields (field references) run per row in DuckDB.
The answers are the straightforward engine's (sigma_scan.sql_hits); should two distinct values of a field share a
hash, the file is scanned by that engine instead. Without the `hyperscan` package, DuckDB runs every test.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from heistwatch.hunt.sigma_plan import KindPlan, records_sql
from heistwatch.hunt.sigma_scan import FileHits, rejected_lines, sql_hits
from heistwatch.hunt.sigma_sql import And, Field, Node, Not, Or, Test, column, fold

try:
    import hyperscan
except ImportError:  # pragma: no cover - exercised where the wheel is missing
    hyperscan = None  # type: ignore[assignment]

TABLE = "sigma_records"
# Hyperscan compiles a field's patterns in 2-200 ms, and DuckDB runs them at 1-10 us per value: Hyperscan pays from
# about ten thousand distinct values (URLs, command lines), DuckDB is quicker for user agents, hosts and methods.
SCAN_FROM_VALUES = 10_000
Rows = npt.NDArray[np.bool_]
Truth = bool | Rows


class _Fallback(Exception):
    """This engine cannot answer for a file (two values share a hash; Hyperscan refuses a field's patterns)."""


def distinct_hits(con: duckdb.DuckDBPyConnection, path: Path, plan: KindPlan, rejects: str) -> FileHits:
    """The planned rules' hits in one file, each field's tests evaluated once per distinct value."""
    columns = "".join(f", {column(name, lowered=False)}" for name in plan.fields)
    bad = "CASE WHEN v IS NULL THEN trim(raw) <> '' ELSE false END"  # CASE: trim only the lines that are not JSON
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {TABLE} AS SELECT n, v IS NULL AS skip, {bad} AS bad"
        f"{columns} FROM ({records_sql(path, plan, rejects, lowered=False)})"
    )
    try:
        last, bad = con.execute(
            f"SELECT coalesce(max(n), 0), coalesce(list(n) FILTER (WHERE bad), []) FROM {TABLE}"
        ).fetchone() or (0, [])
        con.execute(f"DELETE FROM {TABLE} WHERE skip")
        hits = _hits([fold(tree) for tree in plan.trees], _Evaluator(con))
    except _Fallback:
        found = sql_hits(con, path, plan, rejects + "_again")
        rejected_lines(con, rejects + "_again")  # the first read reported them
        return found
    finally:
        con.execute(f"DROP TABLE IF EXISTS {TABLE}")
    return FileHits(int(last), [int(n) for n in bad], hits)  # scan_file reads the matched lines


def _hits(trees: Sequence[Node], evaluator: _Evaluator) -> dict[int, list[int]]:
    """Row number -> indices of the rules (trees) true for that row."""
    evaluator.prepare(part for tree in trees for part in _parts(tree))
    found: dict[int, list[int]] = {}
    for i, tree in enumerate(trees):
        truth = _truth(tree, evaluator)
        if truth is False:
            continue
        rows = evaluator.numbers() if truth is True else evaluator.numbers()[np.flatnonzero(truth)]
        for n in rows.tolist():
            found.setdefault(n, []).append(i)
    return found


def _parts(node: Node) -> Iterator[Field]:
    """The single-field parts of a folded tree."""
    if isinstance(node, Field):
        yield node
    elif isinstance(node, Not):
        yield from _parts(node.arg)
    elif isinstance(node, And | Or):
        for arg in node.args:
            yield from _parts(arg)


def _leaves(node: Node) -> Iterator[Test]:
    if isinstance(node, Test):
        yield node
    elif isinstance(node, Field):
        yield from _leaves(node.node)
    elif isinstance(node, Not):
        yield from _leaves(node.arg)
    else:
        for arg in node.args:
            yield from _leaves(arg)


def _constant(node: Node, evaluator: _Evaluator) -> bool | None:
    """The node's truth when it is the same for every row (known from the distinct values alone), else None."""
    if isinstance(node, Field):
        return evaluator.constant(node)
    if isinstance(node, Test):
        return None
    if isinstance(node, Not):
        inner = _constant(node.arg, evaluator)
        return None if inner is None else not inner
    decisive = not isinstance(node, And)  # a false argument decides an AND, a true one an OR
    values = [_constant(arg, evaluator) for arg in node.args]
    if decisive in values:
        return decisive
    return None if None in values else not decisive


def _truth(node: Node, evaluator: _Evaluator) -> Truth:
    """A folded tree's truth: a constant, or one boolean per row."""
    constant = _constant(node, evaluator)
    if constant is not None:
        return constant
    if isinstance(node, Field):
        return evaluator.rows(node)
    if isinstance(node, Test):
        return evaluator.row_test(node)
    if isinstance(node, Not):
        inner = _truth(node.arg, evaluator)
        return ~inner if not isinstance(inner, bool) else not inner
    arrays = [_truth(arg, evaluator) for arg in node.args if _constant(arg, evaluator) is None]
    return _combine(node, [a for a in arrays if not isinstance(a, bool)])


def _combine(node: And | Or, arrays: Sequence[Rows]) -> Rows:
    out = arrays[0].copy()
    for array in arrays[1:]:
        if isinstance(node, And):
            out &= array
        else:
            out |= array
    return out


def _values_truth(node: Node, leaves: dict[str, Rows]) -> Rows:
    """A single-field part's truth for each distinct value, from its tests' truth."""
    if isinstance(node, Test):
        return leaves[node.sql]
    if isinstance(node, Field):
        return _values_truth(node.node, leaves)
    if isinstance(node, Not):
        return ~_values_truth(node.arg, leaves)
    return _combine(node, [_values_truth(arg, leaves) for arg in node.args])


class _Evaluator:
    """Truth over a file's records in the table TABLE: each field part per distinct value, per row on demand."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._parts: dict[Field, Rows] = {}  # part -> truth per distinct value of its field (not constant)
        self._constants: dict[Field, bool] = {}
        self._hashes: dict[str, npt.NDArray[np.uint64]] = {}  # field -> its distinct values' hashes, sorted
        self._codes: dict[str, npt.NDArray[np.intp]] = {}  # field -> each row's index into those hashes
        self._rows: dict[Field, Rows] = {}
        self._numbers: npt.NDArray[np.int64] | None = None

    def prepare(self, parts: Iterable[Field]) -> None:
        """Evaluate every single-field part on its field's distinct values."""
        by_field: dict[str, list[Field]] = {}
        for part in dict.fromkeys(parts):
            by_field.setdefault(part.name, []).append(part)
        counts = self._distinct_counts(list(by_field))
        for name, field_parts in by_field.items():
            tests = {t.sql: t for part in field_parts for t in _leaves(part)}
            leaves = self._leaves(name, tests, scan=counts[name] >= SCAN_FROM_VALUES)
            for part in field_parts:
                truth = _values_truth(part, leaves)
                if truth.any() and not truth.all():
                    self._parts[part] = truth
                else:
                    self._constants[part] = bool(truth.any())

    def _distinct_counts(self, names: Sequence[str]) -> dict[str, int]:
        """About how many distinct values each field holds (HyperLogLog: it only picks Hyperscan or DuckDB)."""
        if not names:
            return {}
        counts = ", ".join(f"approx_count_distinct({column(name, lowered=False)})" for name in names)
        row = self._con.execute(f"SELECT {counts} FROM {TABLE}").fetchone() or ()
        return {name: int(count) for name, count in zip(names, row, strict=True)}

    def _leaves(self, name: str, tests: dict[str, Test], *, scan: bool) -> dict[str, Rows]:
        """Each test's truth for each distinct value of the field (in the order of their hashes); `scan`: Hyperscan."""
        value, lowered = column(name, lowered=False), column(name, lowered=True)
        scanned = _scannable(list(tests.values())) if scan else []
        by_sql = [t for t in tests.values() if all(t is not s for s in scanned)]
        sources = {key: [t for t in scanned if _lowered(t) is (key == "lowered")] for key in ("value", "lowered")}
        columns = [f"encode({value}) AS value", f"encode({lowered}) AS lowered"]  # UTF-8 bytes, as Hyperscan reads
        selected = [c for c, key in zip(columns, sources, strict=True) if sources[key]]
        selected += [f"({t.sql}) IS TRUE AS t{i}" for i, t in enumerate(by_sql)]
        data = self._con.execute(
            f"SELECT {', '.join(['hash(' + value + ') AS h', *selected])} FROM (SELECT {value},"
            f" lower({value}) AS {lowered} FROM (SELECT DISTINCT {value} FROM {TABLE})) ORDER BY h"
        ).fetchnumpy()
        hashes = np.asarray(data["h"], dtype=np.uint64)
        if hashes.size > 1 and bool(np.any(hashes[1:] == hashes[:-1])):
            raise _Fallback(f"two values of {name} share a hash")
        self._hashes[name] = hashes
        leaves = {test.sql: np.asarray(data[f"t{i}"], dtype=np.bool_) for i, test in enumerate(by_sql)}
        for key, chosen in sources.items():
            if chosen:
                leaves |= _scan_values(chosen, data[key])
        return leaves

    def constant(self, part: Field) -> bool | None:
        """The part's truth when it is the same for every record, else None."""
        return self._constants.get(part)

    def rows(self, part: Field) -> Rows:
        """The part's truth for each record, in table order."""
        if part not in self._rows:
            self._rows[part] = self._parts[part][self._codes_of(part.name)]
        return self._rows[part]

    def numbers(self) -> npt.NDArray[np.int64]:
        """The records' row numbers, in table order."""
        if self._numbers is None:
            self._numbers = np.asarray(self._con.execute(f"SELECT n FROM {TABLE}").fetchnumpy()["n"], dtype=np.int64)
        return self._numbers

    def _codes_of(self, name: str) -> npt.NDArray[np.intp]:
        if name not in self._codes:
            found = self._con.execute(f"SELECT hash({column(name, lowered=False)}) AS h FROM {TABLE}").fetchnumpy()
            self._codes[name] = np.searchsorted(self._hashes[name], np.asarray(found["h"], dtype=np.uint64))
        return self._codes[name]

    def row_test(self, test: Test) -> Rows:
        """A test that reads several fields, run by DuckDB on every record."""
        lowered = ", ".join(f"lower({column(n, lowered=False)}) AS {column(n, lowered=True)}" for n in test.fields)
        query = f"SELECT ({test.sql}) IS TRUE AS t FROM (SELECT *, {lowered} FROM {TABLE})"
        return np.asarray(self._con.execute(query).fetchnumpy()["t"], dtype=np.bool_)


def _lowered(test: Test) -> bool | None:
    return None if test.pattern is None else test.pattern.lowered


def _scannable(tests: Sequence[Test]) -> list[Test]:
    """The tests Hyperscan will run: those with a pattern it compiles (with the package installed)."""
    if hyperscan is None:
        return []
    candidates = [t for t in tests if t.pattern is not None]
    if _database(_expressions(candidates)) is not None:
        return candidates
    return [t for t in candidates if _database(_expressions([t])) is not None]


def _expressions(tests: Sequence[Test]) -> tuple[str, ...]:
    return tuple(t.pattern.expression for t in tests if t.pattern is not None)


def _scan_values(tests: Sequence[Test], values: Any) -> dict[str, Rows]:
    """Each string test's truth for each value (UTF-8 bytes), from one Hyperscan pass per value; NULL matches nothing.

    The loop is the engine's hottest Python: bytes come encoded from DuckDB and `scan` takes positional arguments.
    """
    truth = np.zeros((len(tests), len(values)), dtype=np.bool_)
    database = _database(_expressions(tests))
    if database is None:  # each pattern compiles alone: only a size limit can refuse them together
        raise _Fallback("Hyperscan refuses the patterns together")
    scratch = hyperscan.Scratch(database)  # one per scan: files are scanned in parallel, and scratch is not shared

    def hit(pattern: int, start: int, end: int, flags: int, index: int) -> None:
        truth[pattern, index] = True

    scan, nulls = database.scan, np.ma.getmaskarray(values).tolist()
    for index, (data, null) in enumerate(zip(np.ma.getdata(values).tolist(), nulls, strict=True)):
        if not null:
            scan(data, hit, 0, index, scratch)
    return {test.sql: truth[i] for i, test in enumerate(tests)}


@functools.lru_cache(maxsize=256)
def _database(expressions: tuple[str, ...]) -> Any | None:
    """A Hyperscan block-mode database of the expressions; None when Hyperscan refuses one."""
    flags = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_DOTALL | hyperscan.HS_FLAG_UTF8
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        database.compile(
            expressions=[e.encode("utf-8") for e in expressions],
            ids=list(range(len(expressions))),
            elements=len(expressions),
            flags=[flags] * len(expressions),
        )
    except hyperscan.error:
        return None
    return database
