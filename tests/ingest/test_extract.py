"""Indicator extraction: refanging, each kind, disambiguation, offsets, robustness and linear time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heistwatch.ingest import Found, document_from_string, extract_indicators, extract_text
from heistwatch.ingest.wallets import valid_btc

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _found(text: str, fmt: str = "txt") -> list[Found]:
    return extract_indicators(document_from_string(text, fmt))


def _values(text: str, fmt: str = "txt", role: str = "indicator") -> set[tuple[str, str]]:
    return {(f.kind, f.value) for f in _found(text, fmt) if f.role == role}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hxxp://evil[.]com/a.php", {("url", "http://evil.com/a.php"), ("domain", "evil.com")}),
        ("hXXps://bad(.)example[.]org/x", {("url", "https://bad.example.org/x"), ("domain", "bad.example.org")}),
        ("c2 at evil[dot]net", {("domain", "evil.net")}),
        ("mail: bob[at]evil{.}ru", {("email", "bob@evil.ru")}),
        ("`++credits.offices-analytics[.]com++`", {("domain", "credits.offices-analytics.com")}),
        ("27.102.113[.]240 and 10.1.2.0/24", {("ipv4", "27.102.113.240")}),
        ("onion: abcdefghijklmnop.onion", {("domain", "abcdefghijklmnop.onion")}),
    ],
)
def test_refanged_network_indicators(text: str, expected: set[tuple[str, str]]) -> None:
    assert _values(text) == expected


def test_offsets_point_into_the_original_text() -> None:
    text = "see hxxp://evil[.]com/a and bob[at]evil[.]ru"
    for found in _found(text):
        assert text[found.start : found.end] == found.raw


def test_hashes_eth_btc_are_told_apart() -> None:
    sha1 = "B9601E60F87545441BF8579B2F62668C56507F4A"
    eth = "0x52908400098527886E0F7030069857D2E4169EE7"
    wallets = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2 bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
    text = f"{sha1} {eth} {wallets} 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3"
    assert _values(text) == {
        ("sha1", sha1.lower()),
        ("eth", eth.lower()),
        ("btc", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"),
        ("btc", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),
    }


def test_hex_inside_identifiers_and_serials_is_not_a_hash() -> None:
    md5 = "27966ccfd5d547b8a1f720ef960e216b"
    assert _values(f"525ea2_{md5}.xls") == {("filename", f"525ea2_{md5}.xls")}
    assert ("md5", md5) not in _values(f"Certificate serial number: {md5}")


def test_ids_and_registry() -> None:
    text = "CVE-2017-11882 and t1059.001? T1547.001, T1027. reg add HKLM\\SYSTEM\\Control\\Safeboot\\X /t REG_SZ /f"
    values = _values(text)
    assert ("cve", "CVE-2017-11882") in values
    assert ("attack_technique", "T1547.001") in values and ("attack_technique", "T1027") in values
    assert ("registry", "HKLM\\SYSTEM\\Control\\Safeboot\\X") in values


def test_registry_keys_with_spaces_and_values() -> None:
    text = '[HKEY_LOCAL_MACHINE\\Software\\Microsoft\\Windows NT\\CurrentVersion\\Console]\n"Type"=dword:1\n'
    assert ("registry", "HKEY_LOCAL_MACHINE\\Software\\Microsoft\\Windows NT\\CurrentVersion\\Console") in _values(text)
    assert ("registry", "HKLM\\Run\\Evil") in _values("HKLM\\Run\\Evil = \u201cx.dll\u201d")


def test_file_names() -> None:
    text = "C:\\Intel\\IntelR.lor\n%TEMP%\\x\\Quiz1.exe\n| `9D8B` | `HSBC job offer.pdf.zip` |\nlibcurl.so.4.6.0"
    values = _values(text)
    for name in ("IntelR.lor", "Quiz1.exe", "HSBC job offer.pdf.zip", "libcurl.so"):
        assert ("filename", name) in values


def test_disambiguation() -> None:
    text = "Win32/NukeSped.KW at 12:30:45, version 1.2.3.4, setup.py, evil.zip and lib.so; 2001:db8::1 is v6"
    values = _values(text)
    kinds = {kind for kind, _ in values}
    assert "domain" not in kinds
    assert "ipv4" not in kinds
    assert ("ipv6", "2001:db8::1") in _values("2001:db8::1 is v6", role="mention") | values


def test_urls_lose_trailing_punctuation_and_placeholders() -> None:
    assert ("url", "https://evil.com/a/b") in _values("(see https://evil[.]com/a/b).")
    assert ("url", "ftp://evil.org/board/") in _values("ftp://evil[.]org/board/<user_id>/x.dib")


def test_template_host_gives_the_registrable_domain() -> None:
    assert ("domain", "dnslookup.services") in _values("w[org_name].dnslookup[.]services")


def test_bare_url_needs_a_path() -> None:
    assert ("url", "evil.com/gate.php") in _values("evil[.]com/gate.php")
    assert ("url", "evil.com") not in _values("evil[.]com/")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.sampled_from(["txt", "md", "adoc", "html"]))
def test_never_crashes_on_text(text: str, fmt: str) -> None:
    doc = document_from_string(text, fmt)
    for found in extract_indicators(doc):
        assert 0 <= found.start <= found.end <= len(doc.text)
        assert found.role in ("indicator", "mention")


@pytest.mark.parametrize("text", ["hxxp://[.]", "a[.]b[.]", "[at][at]x", "0.0.0.0/0", "::", "HKLM\\", "a.exe.1.2"])
def test_regressions(text: str) -> None:
    extract_indicators(document_from_string(text))


def test_linear_in_input_size() -> None:
    """The number of findings grows linearly with repeated input and no match spans two copies."""
    block = "hxxp://evil[.]com/a.php 1.2.3.4 B9601E60F87545441BF8579B2F62668C56507F4A Quiz1.exe\n" * 10
    small = extract_indicators(document_from_string(block * 10))
    large = extract_indicators(document_from_string(block * 50))
    assert len(large) == 5 * len(small)
    assert max(f.end - f.start for f in large) == max(f.end - f.start for f in small)


def test_five_megabytes_of_prose_is_processed() -> None:
    text = ("The actor used many tools; see evil[.]com for more. " * 100 + "\n") * 1000
    assert len(text) > 5_000_000
    found = extract_indicators(document_from_string(text))
    assert len(found) == 100_000


def test_corpus_sample_is_extracted() -> None:
    corpus = DATA / "ioc-corpus"
    if not corpus.is_dir():
        pytest.skip("shared corpus not present")
    label = json.loads((corpus / "labels" / "eset-famoussparrow.json").read_text(encoding="utf-8"))
    values = {(f.kind, f.value) for f in extract_indicators(extract_text(corpus / label["file"]))}
    for kind in ("sha1", "attack_technique"):
        for value in label["iocs"][kind]:
            assert (kind, value.lower() if kind == "sha1" else value) in values


def _seconds(text: str) -> float:
    doc = document_from_string(text)
    start = time.process_time()  # CPU time: a busy machine distorts it less than the wall clock
    extract_indicators(doc)
    return time.process_time() - start


def test_one_long_line_stays_linear() -> None:
    """A single 5 MB line costs about five times a 1 MB one (loose bound: quadratic work would be 25x)."""
    unit = "the actor sent a lure " * 8 + "x HSBC job offer.pdf.zip | evil[.]com 1.2.3.4 a\t"
    small, large = unit * (1_000_000 // len(unit)), unit * (5_000_000 // len(unit))
    ratio = min(_seconds(large) for _ in range(2)) / min(_seconds(small) for _ in range(2))
    assert ratio < 12


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", True),  # BIP 350, bech32m
        ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", True),  # BIP 173, upper case
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", False),  # one character changed
        ("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", True),  # P2SH
        ("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLz", False),
    ],
)
def test_bitcoin_checksums(address: str, valid: bool) -> None:
    assert valid_btc(address) is valid


# --- anchored scans: each pass tries its pattern only at cheap anchors; that must find what a full scan finds ---

_PIECES = [
    *".[](){}`+@:/\\%?_-$~!#|\n\t ",
    *"hHkKxXpPsfFtTcCvVeE0123456789abcdefABCDEF",
    "\u00e9",
    "\u65e5",
    "\u017f",
    "\u0131",
    "\u200b",
    "[.]",
    "(.)",
    "{(.)",
    "[dot]",
    "(at)",
    "[:]",
    "`++",
    "++`",
    "hxxp",
    "hXXps",
    "fxp",
    "://",
    "evil",
    "com",
    "exe",
    "HKLM",
    "hkcu\\",
    "HKEY_USERS",
    "CVE-2021-",
    "cve-2020-1234",
    "T1059",
    "a" * 30,
    "A1" * 20,
]
_texts = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(_texts)
def test_anchored_scans_find_what_full_scans_find(text: str) -> None:
    from heistwatch.ingest import extract as x

    data = x._ascii(text)
    found = [m.span() for m in x._matches_at(x._DEFANG, text, x._defang_starts(text, data))]
    assert found == [m.span() for m in x._DEFANG.finditer(text)]
    lower, classes = data.lower(), data.translate(x._CLASSES)
    for pattern, anchor, shift in (
        (x._REGISTRY, x._HIVE_ANCHOR, 0),
        (x._CVE, x._CVE_ANCHOR, 0),
        (x._PATH_FILE, x._BACKSLASH, 1),
    ):
        starts = (m.start() + shift for m in anchor.finditer(lower))
        assert [m.span() for m in x._matches_at(pattern, text, starts)] == [m.span() for m in pattern.finditer(text)]
    tokens = [(start, end) for start, end, _ in x._dotted_tokens(text, classes)]
    assert tokens == [m.span() for m in x._DOTTED.finditer(text)]


def test_refanging_after_another_opening_bracket() -> None:
    from heistwatch.ingest.extract import _Refanged

    assert _Refanged("a([.]b {(at)c `++d").text == "a(.b {@c `d"
    assert [(f.value, f.raw) for f in _found("x{(.)evil(.)com")] == [("evil.com", "evil(.)com")]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("B9601E60F87545441BF8579B2F62668C56507F4A", True),
        ("_B9601E60F87545441BF8579B2F62668C56507F4A", False),  # an identifier
        ("B9601E60F87545441BF8579B2F62668C56507F4A_x", False),
        ("x" * 60 + "B9601E60F87545441BF8579B2F62668C56507F4A", False),  # part of a longer run
        ("\u00e9B9601E60F87545441BF8579B2F62668C56507F4A\u65e5", True),  # non-ASCII letters end a run
    ],
)
def test_long_runs_are_whole_runs(text: str, found: bool) -> None:
    assert (("sha1", "b9601e60f87545441bf8579b2f62668c56507f4a") in _values(text)) is found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see evil.com.", {("domain", "evil.com")}),  # trailing dot
        ("..evil.com", {("domain", "evil.com")}),  # leading dots
        ("%evil.com", set()),  # the regex's look-behind: not after `%`
        ("%foo$.evil.com", {("domain", "evil.com")}),
        ("\u65e5evil.com", set()),  # a non-ASCII letter is part of the token
        ("a..evil.com", {("domain", "evil.com")}),
    ],
)
def test_dotted_token_edges(text: str, expected: set[tuple[str, str]]) -> None:
    assert _values(text) == expected


_MAIL_PIECES = [*"@+%.-/\\: ", "@@", "bob", "a.b", "evil", ".com", ".co.uk", "\u212a", "\u00e9"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_MAIL_PIECES), max_size=60).map("".join), st.integers(0, 64), st.integers(0, 300))
def test_email_tried_where_it_can_begin_is_what_a_search_finds(text: str, back: int, ahead: int) -> None:
    from heistwatch.ingest import extract as x

    for at in (i for i, char in enumerate(text) if char == "@"):
        lo, hi = max(0, at - back), at + 1 + ahead
        m = x._EMAIL.search(text, lo, hi)
        expected = m.span() if m and m.start() <= at else None
        found = x._email_around(text, lo, at, hi)
        assert (found.span() if found else None) == expected


def test_ipv6_prefix_over_128_bits_is_not_a_network_and_does_not_crash() -> None:
    found = extract_indicators(document_from_string("C2 at 2001:db8::1/248 and 2001:db8:5::/48 in the logs."))
    assert [(f.kind, f.value) for f in found if f.kind == "ipv6"] == [("ipv6", "2001:db8:5::/48")]
