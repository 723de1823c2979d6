"""Words for the answer: ICD 203 likelihood terms for probabilities and an analytic confidence level."""

from __future__ import annotations

from heistwatch.model.likelihood import Likelihood

_UPPER = tuple((term.probability_range[1], term) for term in Likelihood)


def likelihood_of(probability: float) -> Likelihood:
    """The ICD 203 term whose range holds the probability (below 1 % is "almost no chance", above 99 % certain)."""
    for upper, term in _UPPER:
        if probability <= upper:
            return term
    return Likelihood.ALMOST_CERTAIN


def analytic_confidence(items: float, origins: int) -> str:
    """Low, moderate or high, from the amount (reliability-weighted items) and independence (origins) of evidence."""
    if items >= 8 and origins >= 3:
        return "high"
    if items >= 8 or (items >= 4 and origins >= 2):
        return "moderate"
    return "low"
