"""Exact semantics of indicator matching: planted truths and decoys."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heistwatch.hunt import FieldMap, IndicatorSet, prefilter
from heistwatch.model import make_indicator

ETH = "0x52908400098527886e0f7030069857d2e4169ee7"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


@pytest.fixture(scope="module")
def iset() -> IndicatorSet:
    rows = [
        ("domain", "evil.com"),
        ("domain", "bücher.de"),
        ("ipv4", "1.2.3.4"),
        ("ipv4", "10.0.0.0/8"),
        ("ipv4", "10.1.0.0/16"),
        ("ipv6", "2001:db8::/32"),
        ("url", "http://bad.org/payload"),
        ("url", "http://bad.org/q?id=7"),
        ("md5", MD5),
        ("eth", ETH),
        ("email", "Lure@Recruit.example"),
    ]
    return IndicatorSet.from_indicators(make_indicator(k, v, source="test") for k, v in rows)


def values(iset: IndicatorSet, kind: str, observed: str) -> list[str]:
    return [m.value for m in iset.match_value(kind, observed)]


@pytest.mark.parametrize("host", ["evil.com", "a.b.evil.com", "EVIL.COM", "evil.com.", "Www.Evil.Com.:8080"])
def test_domain_and_subdomains_match(iset: IndicatorSet, host: str) -> None:
    assert values(iset, "domain", host) == ["evil.com"]


@pytest.mark.parametrize("host", ["notevil.com", "evil.com.cdn-x.net", "evil.co", "com"])
def test_domain_decoys_do_not_match(iset: IndicatorSet, host: str) -> None:
    assert values(iset, "domain", host) == []


def test_idn_matches_in_either_spelling(iset: IndicatorSet) -> None:
    assert values(iset, "domain", "www.BÜCHER.de") == ["xn--bcher-kva.de"]
    assert values(iset, "domain", "xn--bcher-kva.de") == ["xn--bcher-kva.de"]


def test_ip_exact_and_nested_cidr(iset: IndicatorSet) -> None:
    assert values(iset, "ipv4", "1.2.3.4") == ["1.2.3.4"]
    assert values(iset, "ipv4", "11.2.3.45") == []
    assert values(iset, "ipv4", "10.1.2.3") == ["10.0.0.0/8", "10.1.0.0/16"]
    assert values(iset, "ipv4", "10.200.2.3") == ["10.0.0.0/8"]
    assert values(iset, "ipv4", "11.0.0.0") == []
    assert values(iset, "ipv6", "2001:DB8::1") == ["2001:db8::/32"]
    assert values(iset, "ipv6", "::ffff:1.2.3.4") == ["1.2.3.4"]


def test_url_query_semantics(iset: IndicatorSet) -> None:
    assert values(iset, "url", "HTTP://Bad.ORG:80/payload?x=1") == ["//bad.org/payload"]
    assert values(iset, "url", "https://bad.org/payload") == ["//bad.org/payload"]
    assert values(iset, "url", "http://bad.org/q?id=7") == ["//bad.org/q?id=7"]
    assert values(iset, "url", "http://bad.org/q?id=8") == []
    assert values(iset, "url", "http://bad.org/q") == []
    assert values(iset, "url", "http://bad.org/Payload") == []


def test_indicator_inside_a_query_string_is_not_a_hit(iset: IndicatorSet) -> None:
    assert iset.match_value("url", "https://google.com/search?q=evil.com&u=http://bad.org/payload") == []


def test_case_insensitive_exact_kinds(iset: IndicatorSet) -> None:
    assert values(iset, "md5", MD5.upper()) == [MD5]
    assert values(iset, "eth", "0x52908400098527886E0F7030069857D2E4169EE7") == [ETH]
    assert values(iset, "email", "lure@recruit.EXAMPLE") == ["lure@recruit.example"]


def test_record_fields_and_host_uri(iset: IndicatorSet) -> None:
    fields = FieldMap(hosts=("host",), ips=("id.resp_h",), host_uri=(("host", "uri"),))
    found = iset.match_record({"host": "bad.org", "uri": "/payload?a=b", "id.resp_h": "10.9.9.9"}, fields)
    assert sorted((name, m.value) for name, m in found) == [("id.resp_h", "10.0.0.0/8"), ("uri", "//bad.org/payload")]


def test_nested_json_fields_and_lists(iset: IndicatorSet) -> None:
    fields = FieldMap(hosts=("dns.question.name",), emails=("to",))
    record = {"dns": {"question": {"name": "x.evil.com"}}, "to": ["a@b.org", "HR <lure@recruit.example>"]}
    assert sorted(m.value for _, m in iset.match_record(record, fields)) == ["evil.com", "lure@recruit.example"]


def test_match_line_scans_free_text(iset: IndicatorSet) -> None:
    line = "GET http://x.EVIL.com/a from 10.9.9.9 hash " + MD5.upper() + " 11.2.3.45 notevil.com"
    assert sorted(m.value for m in iset.match_line(line)) == ["10.0.0.0/8", MD5, "evil.com"]


def test_original_spelling_and_ids(iset: IndicatorSet) -> None:
    (match,) = iset.match_value("url", "http://bad.org/payload")
    (ident,) = iset.ids("url", match.value)
    assert iset.original(ident, match.value) == "http://bad.org/payload"


_prefixes = st.tuples(st.integers(0, 2**32 - 1), st.integers(4, 32))


@settings(max_examples=200, deadline=None)
@given(blocks=st.lists(_prefixes, max_size=12), probes=st.lists(st.integers(0, 2**32 - 1), max_size=20))
def test_cidr_intervals_agree_with_brute_force(blocks: list[tuple[int, int]], probes: list[int]) -> None:
    networks = {ipaddress.ip_network((address, bits), strict=False) for address, bits in blocks}
    iset = IndicatorSet.from_values([(str(n), "ipv4", str(n)) for n in networks])
    for probe in probes + [int(n.network_address) for n in networks] + [int(n.broadcast_address) for n in networks]:
        address = ipaddress.ip_address(probe)
        expected = sorted(str(n) for n in networks if address in n)
        assert sorted(values(iset, "ipv4", str(address))) == expected


def test_prefilter_compiled_apart_finds_caseless_lines(iset: IndicatorSet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefilter, "CHILD_COMPILE_WORDS", 1)
    built = prefilter.Prefilter.build(iset)
    assert built is not None
    assert built.line_starts(b'{"a": 1}\n{"host": "X.EVIL.COM"}\n{"ip": "10.9.9.9"}\n') == [9, 32]


def test_ipv4_mapped_ipv6_indicators_match_dotted_addresses_and_prefilter() -> None:
    mapped = IndicatorSet.from_values([("i1", "ipv6", "::ffff:102:300/120"), ("i2", "ipv6", "::ffff:5.6.7.8")])
    assert [m.value for m in mapped.match_value("ipv4", "1.2.3.9")] == ["1.2.3.0/24"]
    assert [m.value for m in mapped.match_value("ipv4", "5.6.7.8")] == ["5.6.7.8"]
    assert prefilter.prefilter_for(mapped) is not None
