"""The typed domain model every stage shares: frozen dataclasses, enums and deterministic ids."""

from heistwatch.model.indicators import make_indicator, normalize_indicator
from heistwatch.model.likelihood import Likelihood, likelihood_from_confidence, parse_likelihood
from heistwatch.model.names import loose_key, name_key
from heistwatch.model.objects import (
    Claim,
    ImportBatch,
    Indicator,
    KBObject,
    NameEntry,
    ObjectType,
    Relation,
    Relationship,
    Source,
    SourceStats,
    derive_id,
)
from heistwatch.model.reports import Finding, Report, ReportBatch
from heistwatch.model.sightings import Sighting
from heistwatch.model.tlp import TLP

__all__ = [
    "Claim",
    "Finding",
    "ImportBatch",
    "Indicator",
    "KBObject",
    "Likelihood",
    "NameEntry",
    "ObjectType",
    "Relation",
    "Relationship",
    "Report",
    "ReportBatch",
    "Sighting",
    "Source",
    "SourceStats",
    "TLP",
    "derive_id",
    "likelihood_from_confidence",
    "loose_key",
    "make_indicator",
    "name_key",
    "normalize_indicator",
    "parse_likelihood",
]
