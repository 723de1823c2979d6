"""ICD 203 estimative language: the seven likelihood words and their probability ranges."""

from __future__ import annotations

import enum
import re


class Likelihood(enum.Enum):
    """An ICD 203 likelihood term; the value is the spelling used in files and JSON."""

    ALMOST_NO_CHANCE = "almost-no-chance"
    VERY_UNLIKELY = "very-unlikely"
    UNLIKELY = "unlikely"
    ROUGHLY_EVEN_CHANCE = "roughly-even-chance"
    LIKELY = "likely"
    VERY_LIKELY = "very-likely"
    ALMOST_CERTAIN = "almost-certain"

    @property
    def words(self) -> str:
        """The term as an analyst writes it ("very likely")."""
        return self.value.replace("-", " ")

    @property
    def probability_range(self) -> tuple[float, float]:
        """The probability interval ICD 203 assigns to the term."""
        return _RANGES[self]

    @property
    def probability(self) -> float:
        """The midpoint of the term's interval, for arithmetic that needs one number."""
        low, high = _RANGES[self]
        return (low + high) / 2

    @property
    def stix_confidence(self) -> int:
        """The STIX 2.1 confidence value of the term (Appendix A, DNI scale)."""
        return _STIX_CONFIDENCE[self]


_RANGES = {
    Likelihood.ALMOST_NO_CHANCE: (0.01, 0.05),
    Likelihood.VERY_UNLIKELY: (0.05, 0.20),
    Likelihood.UNLIKELY: (0.20, 0.45),
    Likelihood.ROUGHLY_EVEN_CHANCE: (0.45, 0.55),
    Likelihood.LIKELY: (0.55, 0.80),
    Likelihood.VERY_LIKELY: (0.80, 0.95),
    Likelihood.ALMOST_CERTAIN: (0.95, 0.99),
}

_STIX_CONFIDENCE = {
    Likelihood.ALMOST_NO_CHANCE: 5,
    Likelihood.VERY_UNLIKELY: 15,
    Likelihood.UNLIKELY: 30,
    Likelihood.ROUGHLY_EVEN_CHANCE: 50,
    Likelihood.LIKELY: 70,
    Likelihood.VERY_LIKELY: 85,
    Likelihood.ALMOST_CERTAIN: 95,
}

# ICD 203 pairs each term with a synonym ("probable", "remote", ...); both spellings are accepted.
_SYNONYMS = {
    "remote": Likelihood.ALMOST_NO_CHANCE,
    "highly improbable": Likelihood.VERY_UNLIKELY,
    "improbable": Likelihood.UNLIKELY,
    "roughly even odds": Likelihood.ROUGHLY_EVEN_CHANCE,
    "probable": Likelihood.LIKELY,
    "highly probable": Likelihood.VERY_LIKELY,
    "nearly certain": Likelihood.ALMOST_CERTAIN,
}


def parse_likelihood(text: str) -> Likelihood:
    """Read an ICD 203 term in any of its spellings ("Very likely", "very-likely", "highly probable")."""
    words = re.sub(r"[\s_-]+", " ", text.strip().casefold())
    for term in Likelihood:
        if term.words == words:
            return term
    if words in _SYNONYMS:
        return _SYNONYMS[words]
    raise ValueError(f"not an ICD 203 likelihood term: {text!r}")


def likelihood_from_confidence(confidence: int) -> Likelihood:
    """The term whose STIX confidence band (DNI scale) holds `confidence` (0-100)."""
    if not 0 <= confidence <= 100:
        raise ValueError(f"confidence must be 0-100, not {confidence}")
    bands = [
        (9, Likelihood.ALMOST_NO_CHANCE),
        (19, Likelihood.VERY_UNLIKELY),
        (39, Likelihood.UNLIKELY),
        (59, Likelihood.ROUGHLY_EVEN_CHANCE),
        (79, Likelihood.LIKELY),
        (89, Likelihood.VERY_LIKELY),
    ]
    for upper, term in bands:
        if confidence <= upper:
            return term
    return Likelihood.ALMOST_CERTAIN
