"""Fund tracing: ledger model, DuckDB store, taint policies, alerts, laundering patterns and a simulator."""

from heistwatch.trace.alerts import Alert, build_alerts, freeze_request_csv, freeze_request_json
from heistwatch.trace.case import CaseResult, trace_case
from heistwatch.trace.graph import TraceGraph
from heistwatch.trace.labels import read_ofac_folder, read_ofac_list, read_tagpack_csv
from heistwatch.trace.ledger import Transfer, UtxoInput, UtxoOutput, UtxoTx, flatten_utxo
from heistwatch.trace.patterns import PatternRules, find_patterns
from heistwatch.trace.policies import Policy
from heistwatch.trace.simulate import Simulation, Truth, simulate
from heistwatch.trace.store import Label, TransferStore
from heistwatch.trace.taint import Arrival, LimitHit, Limits, Seed, TraceResult, trace

__all__ = [
    "Alert",
    "Arrival",
    "CaseResult",
    "Label",
    "LimitHit",
    "Limits",
    "PatternRules",
    "Policy",
    "Seed",
    "Simulation",
    "TraceGraph",
    "TraceResult",
    "Transfer",
    "TransferStore",
    "Truth",
    "UtxoInput",
    "UtxoOutput",
    "UtxoTx",
    "build_alerts",
    "find_patterns",
    "flatten_utxo",
    "freeze_request_csv",
    "freeze_request_json",
    "read_ofac_folder",
    "read_ofac_list",
    "read_tagpack_csv",
    "simulate",
    "trace",
    "trace_case",
]
