"""Indicator normalization: one canonical spelling per value, a clear error otherwise."""

from __future__ import annotations

import pytest

from heistwatch.model import make_indicator, normalize_indicator


@pytest.mark.parametrize(
    ("kind", "raw", "normalized"),
    [
        ("domain", "Evil.EXAMPLE.com.", "evil.example.com"),
        ("domain", "bücher.example", "xn--bcher-kva.example"),
        ("ipv4", " 10.0.0.1 ", "10.0.0.1"),
        ("ipv4", "10.0.0.0/8", "10.0.0.0/8"),
        ("ipv6", "2001:DB8::1", "2001:db8::1"),
        ("url", "HXXP://Evil.Example/a?b=1".replace("HXXP", "HTTP"), "http://evil.example/a?b=1"),
        ("email", "Bob@Evil.Example", "Bob@evil.example"),
        ("sha256", "A" * 64, "a" * 64),
        ("eth", "0xAbC0000000000000000000000000000000000001", "0xabc0000000000000000000000000000000000001"),
        ("btc", "BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),
    ],
)
def test_normalize(kind: str, raw: str, normalized: str) -> None:
    assert normalize_indicator(kind, raw) == normalized


@pytest.mark.parametrize(
    ("kind", "raw"),
    [("domain", "notadomain"), ("sha1", "abc"), ("eth", "0x12"), ("url", "evil.example/path"), ("pgp", "x")],
)
def test_bad_values_raise(kind: str, raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_indicator(kind, raw)


def test_pattern_escapes_quotes() -> None:
    ind = make_indicator("filename", "it's.lnk", source="s")
    assert ind.pattern == "[file:name = 'it\\'s.lnk']"
