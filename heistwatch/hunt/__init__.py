"""Hunt: the knowledge base's indicators in the exchange's own logs, with exact domain, URL and CIDR semantics."""

from heistwatch.hunt.fields import DEFAULT_FIELDS, FieldMap
from heistwatch.hunt.logs import Problem
from heistwatch.hunt.logs_hunt import HuntReport, hunt_logs
from heistwatch.hunt.matcher import IndicatorSet, Match
from heistwatch.hunt.set_cache import load_indicator_set

__all__ = [
    "DEFAULT_FIELDS",
    "FieldMap",
    "HuntReport",
    "IndicatorSet",
    "Match",
    "Problem",
    "hunt_logs",
    "load_indicator_set",
]
