"""Hunt: the knowledge base's indicators in the exchange's own logs, with exact domain, URL and CIDR semantics."""

from heistwatch.hunt.fields import DEFAULT_FIELDS, FieldMap
from heistwatch.hunt.logs import Problem
from heistwatch.hunt.logs_hunt import HuntReport, hunt_logs
from heistwatch.hunt.matcher import IndicatorSet, Match

__all__ = ["DEFAULT_FIELDS", "FieldMap", "HuntReport", "IndicatorSet", "Match", "Problem", "hunt_logs"]
