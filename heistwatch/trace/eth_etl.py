"""Ethereum exports (ethereum-etl CSV/JSON, and GraphSense's camelCase variant) → account-style transfers.

Native value comes from transactions (a failed transaction moves nothing) and from traces (internal calls,
contract creations, self-destructs, block rewards and genesis allocations), without reverted subtrees and without
the top-level call that repeats a transaction already read. Tokens come from ERC-20 `Transfer` logs (or a
token_transfers file when no logs are given); ERC-721 transfers (four topics) are not fungible and are skipped.
Amounts are ints in base units; addresses are lower-case. A bad row is counted with its file and line and the
read goes on; a file that is not of the expected kind is an InputError.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from heistwatch.errors import InputError
from heistwatch.trace.ledger import Transfer
from heistwatch.trace.store import TransferStore

CHAIN, NATIVE = "eth", "ETH"
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
MAX_AMOUNT = 1 << 125  # the ledger's limit (HUGEINT with room for sums)
KEEP_PROBLEMS = 100
MAX_EXPONENT = 80  # 2**256 < 10**78: no amount needs a larger power of ten
MINTS = {"reward": "<block-reward>", "genesis": "<genesis>"}
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
_NO_VALUE_CALLS = frozenset({"delegatecall", "staticcall", "callcode"})  # they move no value of their own
Progress = Callable[[int], None]
Row = Mapping[str, Any]

# canonical field -> the column names that carry it (ethereum-etl first, then GraphSense)
_TX_COLUMNS = {
    "hash": ("hash", "txHash", "transaction_hash"),
    "block": ("block_number", "blockId", "blockNumber"),
    "ts": ("block_timestamp", "blockTimestamp"),
    "from": ("from_address", "fromAddress"),
    "to": ("to_address", "toAddress"),
    "value": ("value",),
    "status": ("receipt_status", "receiptStatus", "status"),
    "contract": ("receipt_contract_address", "receiptContractAddress"),
}
_TRACE_COLUMNS = {
    "hash": ("transaction_hash", "txHash"),
    "block": ("block_number", "blockId"),
    "ts": ("block_timestamp", "blockTimestamp"),
    "from": ("from_address", "fromAddress"),
    "to": ("to_address", "toAddress"),
    "value": ("value",),
    "status": ("status",),
    "error": ("error",),
    "type": ("trace_type", "traceType"),
    "call": ("call_type", "callType"),
    "path": ("trace_address", "traceAddress"),
    "id": ("trace_id", "traceId"),
}
_LOG_COLUMNS = {
    "hash": ("transaction_hash", "txHash"),
    "block": ("block_number", "blockId"),
    "ts": ("block_timestamp", "blockTimestamp"),
    "index": ("log_index", "logIndex"),
    "address": ("address",),
    "data": ("data",),
    "topics": ("topics",),
}
_TOKEN_COLUMNS = {
    "hash": ("transaction_hash", "txHash"),
    "block": ("block_number", "blockId"),
    "ts": ("block_timestamp", "blockTimestamp"),
    "index": ("log_index", "logIndex"),
    "token": ("token_address", "tokenAddress"),
    "from": ("from_address", "from"),
    "to": ("to_address", "to"),
    "value": ("value",),
}
_BLOCK_COLUMNS = {"block": ("number", "blockId", "block_number"), "ts": ("timestamp", "block_timestamp")}


@dataclass(frozen=True)
class Problem:
    """A row that could not be read: which file, which line (0 for the file itself), what is wrong."""

    file: str
    line: int
    problem: str


@dataclass
class LoadReport:
    """What an export read produced, what it skipped and why, and the rows it could not read."""

    rows: dict[str, int] = field(default_factory=dict)
    transfers: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    def skip(self, reason: str) -> None:
        """Count a row that is left out on purpose."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def problem(self, file: Path, line: int, problem: str) -> None:
        """Count a bad row; the first KEEP_PROBLEMS are kept with their location."""
        self.problem_count += 1
        if len(self.problems) < KEEP_PROBLEMS:
            self.problems.append(Problem(str(file), line, problem))


@dataclass
class TraceFacts:
    """What a first pass over traces tells the other readers: failed subtrees and created contracts."""

    failed: dict[str, set[tuple[int, ...]]] = field(default_factory=dict)
    created: dict[str, str] = field(default_factory=dict)

    def reverted(self, tx: str, path: tuple[int, ...]) -> bool:
        """Whether the trace at `path` of `tx`, or a call above it, failed (its value moved nowhere)."""
        failed = self.failed.get(tx, ())
        return any(path[:depth] in failed for depth in range(len(path) + 1)) if failed else False


def parse_amount(text: str) -> int:
    """A non-negative int in base units from decimal, 0x-hex or exact exponent text ('199e17'), never via floats."""
    text = str(text).strip()
    if text.isdigit():
        return int(text)
    if text[:2].lower() == "0x" and len(text) > 2:
        return int(text, 16)
    try:
        sign, digits, exponent = Decimal(text).as_tuple()
    except InvalidOperation:
        raise ValueError(f"amount {text!r} is not a number") from None
    if sign or not isinstance(exponent, int) or exponent > MAX_EXPONENT:
        raise ValueError(f"amount {text!r} is negative, not finite or too large")
    if exponent < 0:
        if any(digits[exponent:]):
            raise ValueError(f"amount {text!r} is not a whole number of base units")
        digits, exponent = digits[:exponent], 0
    whole: int = int("".join(map(str, digits)) or "0")
    scale: int = 10**exponent
    return whole * scale


def parse_address(text: str) -> str:
    """A 20-byte EVM address in lower case (checksummed spellings accepted); '' for none."""
    address = text.strip().lower()
    if address and not _ADDRESS.fullmatch(address):
        raise ValueError(f"{text!r} is not a 20-byte hex address")
    return address


def parse_timestamp(text: str) -> int:
    """Unix seconds from an integer or an ISO time in UTC ('2022-06-21 02:28:12 UTC', as BigQuery exports)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    stamp = datetime.fromisoformat(text.removesuffix(" UTC").replace("Z", "+00:00"))
    return int((stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp())


def _amount(text: str) -> int:
    """A transfer amount that the ledger can hold."""
    amount = parse_amount(text)
    if amount >= MAX_AMOUNT:
        raise ValueError(f"amount {amount} is beyond the ledger's limit of 2**125 base units")
    return amount


def _topic_address(topic: str) -> str:
    """The address in an indexed event argument: a 32-byte word whose upper 12 bytes are zero."""
    word = topic.strip().lower()
    if len(word) != 66 or not word.startswith("0x" + "0" * 24):
        raise ValueError(f"topic {topic!r} is not an address word")
    return parse_address("0x" + word[26:])


class _Columns:
    """The columns of one file, each found under any of its known names."""

    def __init__(
        self, path: Path, header: Iterable[str], wanted: dict[str, tuple[str, ...]], required: tuple[str, ...]
    ) -> None:
        names = set(header)
        self.found = {key: next(n for n in opts if n in names) for key, opts in wanted.items() if names & set(opts)}
        missing = [wanted[key][0] for key in required if key not in self.found]
        if "ts" in wanted and "ts" not in self.found and "block" not in self.found:
            missing.append("block_number or block_timestamp")
        if missing:
            raise InputError(str(path), f"not the expected ethereum-etl file: no column {', '.join(missing)}")

    def pick(self, row: Row) -> dict[str, Any]:
        """The row's values under their canonical names ('' where absent or empty)."""
        return {key: "" if row.get(name) is None else row[name] for key, name in self.found.items()}


class _Counted:
    """Lines of a text file, reporting progress every megabyte."""

    def __init__(self, handle: Iterable[str], progress: Progress | None) -> None:
        self.handle, self.progress, self.pending = handle, progress, 0

    def __iter__(self) -> Iterator[str]:
        for line in self.handle:
            self.pending += len(line)
            if self.pending >= 1 << 20:
                self.flush()
            yield line
        self.flush()

    def flush(self) -> None:
        """Report what was read since the last report."""
        if self.progress and self.pending:
            self.progress(self.pending)
        self.pending = 0


def _csv_rows(
    path: Path, wanted: dict[str, tuple[str, ...]], required: tuple[str, ...], progress: Progress | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, canonical row) for each row of a CSV export file."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            lines = _Counted(handle, progress)
            reader = csv.DictReader(lines)
            columns = _Columns(path, reader.fieldnames or (), wanted, required)
            for row in reader:
                yield reader.line_num, columns.pick(row)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(str(path), f"cannot read as CSV: {exc}") from exc


def _json_rows(
    path: Path, wanted: dict[str, tuple[str, ...]], required: tuple[str, ...], progress: Progress | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, canonical row) for each object of a JSON-lines file (or of a JSON array, numbered from 1)."""
    try:
        with path.open(encoding="utf-8") as handle:
            head = handle.read(1)
            handle.seek(0)
            if head == "[":
                items: Iterable[tuple[int, Any]] = enumerate(json.load(handle), start=1)
                if progress:
                    progress(path.stat().st_size)
            else:
                items = ((n, line) for n, line in enumerate(_Counted(handle, progress), start=1) if line.strip())
            columns: _Columns | None = None
            for line, item in items:
                try:
                    obj = json.loads(item) if isinstance(item, str) else item
                except json.JSONDecodeError as exc:
                    if columns is None:
                        raise InputError(str(path), f"line {line} is not JSON: {exc}") from exc
                    yield line, {"error": f"not JSON: {exc.msg}"}
                    continue
                if not isinstance(obj, dict):
                    yield line, {"error": "not a JSON object"}
                    continue
                columns = columns or _Columns(path, obj, wanted, required)
                yield line, columns.pick(obj)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(str(path), f"cannot read as JSON: {exc}") from exc


def _time(row: dict[str, Any], times: dict[int, int]) -> int:
    """The row's block time: its own timestamp column, else its block's time from blocks or transactions."""
    if row.get("ts"):
        ts = parse_timestamp(str(row["ts"]))
        if row.get("block"):
            times.setdefault(int(row["block"]), ts)
        return ts
    block = int(row["block"])
    if block not in times:
        raise ValueError(f"no timestamp for block {block}: give that block's blocks.csv or transactions")
    return times[block]


def read_block_times(path: Path, progress: Progress | None = None) -> dict[int, int]:
    """Block number → timestamp from a blocks file."""
    times: dict[int, int] = {}
    for line, row in _csv_rows(path, _BLOCK_COLUMNS, ("block", "ts"), progress):
        try:
            times[int(row["block"])] = parse_timestamp(row["ts"])
        except ValueError as exc:
            raise InputError(f"{path}:{line}", f"bad block number or time: {exc}") from exc
    return times


def _trace_shape(row: dict[str, Any]) -> tuple[str, tuple[int, ...]]:
    """A trace's type and its place in the call tree (() for the top-level call), from its columns or its id."""
    kind, _, rest = str(row.get("id", "")).partition("_")
    kind = row.get("type") or kind
    if kind in MINTS:
        return kind, ()
    if row.get("path") or not row.get("id"):
        return kind, tuple(int(n) for n in re.findall(r"\d+", str(row.get("path", ""))))
    # ids are `<type>_<tx hash>_<trace address joined by _>`: `call_0xab.._` is the top-level call
    return kind, tuple(int(n) for n in rest.split("_")[1:] if n)


def _failed(row: dict[str, Any]) -> bool:
    return str(row.get("status", "")).strip() == "0" or bool(row.get("error"))


def scan_traces(path: Path, facts: TraceFacts) -> None:
    """First pass over a traces file: failed calls (whose subtrees move nothing) and contracts transactions create."""
    for _line, row in _csv_rows(path, _TRACE_COLUMNS, ("value",), None):
        tx = str(row.get("hash", "")).lower()
        if not tx:
            continue
        kind, place = _trace_shape(row)
        if _failed(row):
            facts.failed.setdefault(tx, set()).add(place)
        elif kind == "create" and not place and row.get("to"):
            facts.created[tx] = str(row["to"]).lower()


def read_transactions(
    path: Path,
    report: LoadReport,
    times: dict[int, int],
    facts: TraceFacts | None = None,
    seen: set[str] | None = None,
    progress: Progress | None = None,
) -> Iterator[Transfer]:
    """Native ETH each successful transaction moves (index 0); `seen` collects the hashes read."""
    rows = _csv_rows(path, _TX_COLUMNS, ("hash", "from", "to", "value"), progress)
    for line, row in rows:
        report.rows["transactions"] = report.rows.get("transactions", 0) + 1
        try:
            tx = str(row["hash"]).lower()
            ts, value = _time(row, times), _amount(row["value"])
            if seen is not None:
                seen.add(tx)
            if row.get("status") == "0" or (facts is not None and facts.reverted(tx, ())):
                report.skip("failed transaction")
                continue
            if not value:
                report.skip("transaction without value")
                continue
            src, dst = parse_address(row["from"]), parse_address(row["to"]) or parse_address(row.get("contract", ""))
            dst = dst or (facts.created.get(tx, "") if facts else "")
            if not src or not dst:
                raise ValueError("no sender, or a contract creation whose contract is unknown (give its traces)")
        except ValueError as exc:
            report.problem(path, line, str(exc))
            continue
        yield Transfer(tx, ts, CHAIN, NATIVE, src, dst, value, 0)


def read_traces(
    path: Path,
    report: LoadReport,
    times: dict[int, int],
    facts: TraceFacts,
    known: set[str] | frozenset[str] = frozenset(),
    progress: Progress | None = None,
) -> Iterator[Transfer]:
    """Native ETH moved by internal calls, creations, self-destructs, rewards and genesis; not what reverted.

    A top-level call repeats its transaction's value, so it is read only for transactions not in `known`.
    Internal transfers are numbered 1, 2, ... within their transaction in file order.
    """
    last_tx, position = "", 0
    for line, row in _csv_rows(path, _TRACE_COLUMNS, ("value",), progress):
        report.rows["traces"] = report.rows.get("traces", 0) + 1
        try:
            kind, place = _trace_shape(row)
            tx = str(row.get("hash", "")).lower()
            value = _amount(row["value"])
            if _failed(row) or (tx and facts.reverted(tx, place)):
                report.skip("reverted trace")
                continue
            if row.get("call") in _NO_VALUE_CALLS:
                report.skip(f"{row['call']} (moves no value of its own)")
                continue
            if not value:
                report.skip("trace without value")
                continue
            if tx and not place and tx in known:
                report.skip("top-level call (its transaction was read)")
                continue
            ts = _time(row, times)
            src = MINTS.get(kind) or parse_address(row.get("from", ""))
            dst = parse_address(row.get("to", ""))
            if not src or not dst:
                raise ValueError(f"{kind or 'trace'} without a sender or a receiver")
        except ValueError as exc:
            report.problem(path, line, str(exc))
            continue
        if not tx:
            tx = str(row.get("id") or f"{kind}_{row.get('block', '')}")
        position = position + 1 if tx == last_tx else (1 if place else 0)
        last_tx = tx
        yield Transfer(tx, ts, CHAIN, NATIVE, src, dst, value, position)


def _log_rows(path: Path, progress: Progress | None) -> Iterator[tuple[int, dict[str, Any]]]:
    required = ("hash", "index", "address", "data", "topics")
    if path.suffix.lower() == ".csv":
        return _csv_rows(path, _LOG_COLUMNS, required, progress)
    return _json_rows(path, _LOG_COLUMNS, required, progress)


def read_logs(
    path: Path, report: LoadReport, times: dict[int, int], progress: Progress | None = None
) -> Iterator[Transfer]:
    """Token amounts of ERC-20 `Transfer` events (asset = the token contract), index = the log index."""
    for line, row in _log_rows(path, progress):
        report.rows["logs"] = report.rows.get("logs", 0) + 1
        try:
            if "error" in row:
                raise ValueError(row["error"])
            topics = row["topics"] if isinstance(row["topics"], list) else str(row["topics"]).split(",")
            topics = [str(t).strip().lower() for t in topics if str(t).strip()]
            if not topics or topics[0] != TRANSFER_TOPIC:
                report.skip("other event")
                continue
            if len(topics) == 4:
                report.skip("ERC-721 transfer (not fungible)")
                continue
            if len(topics) != 3:
                # unindexed arguments: an early ERC-20 or a pre-standard NFT (CryptoKitties): ambiguous, left out
                report.skip("Transfer event with unindexed arguments")
                continue
            data = str(row["data"]).strip()
            if len(data) != 66:
                raise ValueError(f"Transfer data of {max(len(data) - 2, 0) // 2} bytes, not one 32-byte amount")
            token, src, dst = parse_address(str(row["address"])), _topic_address(topics[1]), _topic_address(topics[2])
            amount, ts, index = _amount(data), _time(row, times), int(row["index"])
        except ValueError as exc:
            report.problem(path, line, str(exc))
            continue
        yield Transfer(str(row["hash"]).lower(), ts, CHAIN, token, src, dst, amount, index)


def read_token_transfers(
    path: Path, report: LoadReport, times: dict[int, int], progress: Progress | None = None
) -> Iterator[Transfer]:
    """Token transfers of an ethereum-etl token_transfers.csv (the decoded ERC-20 Transfer events)."""
    required = ("hash", "index", "token", "from", "to", "value")
    for line, row in _csv_rows(path, _TOKEN_COLUMNS, required, progress):
        report.rows["token_transfers"] = report.rows.get("token_transfers", 0) + 1
        try:
            token, src, dst = parse_address(row["token"]), parse_address(row["from"]), parse_address(row["to"])
            amount, ts, index = _amount(row["value"]), _time(row, times), int(row["index"])
        except ValueError as exc:
            report.problem(path, line, str(exc))
            continue
        yield Transfer(str(row["hash"]).lower(), ts, CHAIN, token, src, dst, amount, index)


# file kind -> (word in its name, suffixes it may have); token transfers before transactions ("transfers")
_KINDS = (
    ("token_transfers", "token_transfer", (".csv",)),
    ("transactions", "transaction", (".csv",)),
    ("traces", "trace", (".csv",)),
    ("logs", "log", (".json", ".jsonl", ".csv")),
    ("blocks", "block", (".csv",)),
)


def export_files(paths: Iterable[Path], report: LoadReport) -> dict[str, list[Path]]:
    """The export's files by kind, from their names; other files in folders are counted as skipped."""
    kinds: dict[str, list[Path]] = {kind: [] for kind, _, _ in _KINDS}
    for path in paths:
        for file in sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]:
            name = file.name.lower()
            kind = next((k for k, word, suffixes in _KINDS if word in name and file.suffix.lower() in suffixes), None)
            if kind:
                kinds[kind].append(file)
            elif path.is_dir():
                report.skip("file that is not part of an export")
            else:
                raise InputError(
                    str(file), "not an ethereum-etl file (blocks, transactions, traces, logs, token_transfers)"
                )
    return kinds


def read_eth_export(paths: Iterable[Path], report: LoadReport, progress: Progress | None = None) -> Iterator[Transfer]:
    """All transfers of an export: native (transactions, traces), then tokens (logs, else token_transfers)."""
    files = export_files(paths, report)
    times = {0: 0}  # Ethereum's genesis block has timestamp 0
    for path in files["blocks"]:
        times.update(read_block_times(path, progress))
    facts, seen = TraceFacts(), set[str]()
    for path in files["traces"]:
        scan_traces(path, facts)
    for path in files["transactions"]:
        yield from _counted(report, "transactions", read_transactions(path, report, times, facts, seen, progress))
    for path in files["traces"]:
        yield from _counted(report, "traces", read_traces(path, report, times, facts, seen, progress))
    for path in files["logs"]:
        yield from _counted(report, "logs", read_logs(path, report, times, progress))
    for path in files["token_transfers"]:
        if files["logs"]:
            report.skip("token_transfers file (its events were read from the logs)")
            continue
        yield from _counted(report, "token_transfers", read_token_transfers(path, report, times, progress))


def _counted(report: LoadReport, kind: str, transfers: Iterator[Transfer]) -> Iterator[Transfer]:
    for transfer in transfers:
        report.transfers[kind] = report.transfers.get(kind, 0) + 1
        yield transfer


def export_bytes(paths: Iterable[Path]) -> int:
    """How many bytes a load of these export files reads (for a progress bar)."""
    report = LoadReport()
    files = export_files(paths, report)
    return sum(p.stat().st_size for kind in files.values() for p in kind)


def load_eth_export(
    store: TransferStore, paths: Iterable[Path], progress: Progress | None = None, batch: int = 200_000
) -> LoadReport:
    """Read an Ethereum export into `store` in batches; the report says what was read, skipped and unreadable."""
    report = LoadReport()
    pending: list[Transfer] = []
    for transfer in read_eth_export(paths, report, progress):
        pending.append(transfer)
        if len(pending) >= batch:
            store.ingest(pending)
            pending = []
    store.ingest(pending)
    return report
