"""Properties of name keys and of the ICD 203 / STIX confidence mapping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stix2.confidence.scales import value_to_dni

from heistwatch.model import Likelihood, likelihood_from_confidence, loose_key, name_key, parse_likelihood

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@given(names)
def test_key_is_idempotent_and_alphanumeric(name: str) -> None:
    key = name_key(name)
    assert name_key(key) == key
    assert all(ch.isalnum() for ch in key)


@given(
    st.text(st.characters(min_codepoint=0x30, max_codepoint=0x7A), min_size=1, max_size=20),
    st.lists(st.sampled_from([" ", "-", "_", ".", "  ", "/"]), min_size=1, max_size=5),
)
def test_case_spacing_and_punctuation_do_not_matter(name: str, separators: list[str]) -> None:
    spaced = separators[0].join(name)
    assert name_key(spaced.upper()) == name_key(name.lower()) == name_key(name)


@pytest.mark.parametrize(
    ("a", "b"), [("APT 38", "apt38"), ("Lazarus group", "LAZARUS GROUP"), ("Dangerous-Password", "DangerousPassword")]
)
def test_examples(a: str, b: str) -> None:
    assert name_key(a) == name_key(b)


def test_loose_key_drops_generic_suffix_only() -> None:
    assert loose_key("lazarusgroup") == "lazarus"
    assert loose_key("group") == "group"
    assert loose_key("apt38") == "apt38"


@pytest.mark.parametrize("term", list(Likelihood))
def test_every_term_parses_in_its_spellings(term: Likelihood) -> None:
    assert parse_likelihood(term.value) is term
    assert parse_likelihood(term.words.upper()) is term
    assert likelihood_from_confidence(term.stix_confidence) is term


def test_icd203_synonyms_and_errors() -> None:
    assert parse_likelihood("highly probable") is Likelihood.VERY_LIKELY
    assert parse_likelihood("Remote") is Likelihood.ALMOST_NO_CHANCE
    with pytest.raises(ValueError, match="ICD 203"):
        parse_likelihood("medium-high")


@given(st.integers(0, 100))
def test_confidence_bands_match_the_stix_dni_scale(value: int) -> None:
    assert value_to_dni(value).lower().startswith(likelihood_from_confidence(value).words)
