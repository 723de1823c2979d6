"""Indicator or mention: rules, warning lists, reasons."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from heistwatch.ingest import Found, document_from_string, extract_indicators
from heistwatch.ingest.classify import host_reason, ip_reason, is_public_suffix, registrable_domain


def _by_value(text: str, fmt: str = "txt") -> dict[str, Found]:
    return {f.value: f for f in extract_indicators(document_from_string(text, fmt))}


def test_reference_links_and_vendor_sites_are_mentions() -> None:
    found = _by_value(
        "Read https://www.welivesecurity.com/2020/06/report/ and [blog](https://blog.example.org/x)", "md"
    )
    assert found["https://www.welivesecurity.com/2020/06/report/"].role == "mention"
    assert found["www.welivesecurity.com"].reason == "vendor-site"
    assert found["https://blog.example.org/x"].reason == "reference-link"


def test_abused_service_url_is_an_indicator_but_its_host_is_not() -> None:
    found = _by_value("payload at hxxps://mega[.]nz/file/abc#key")
    assert found["https://mega.nz/file/abc#key"].role == "indicator"
    assert (found["mega.nz"].role, found["mega.nz"].reason) == ("mention", "abused-service")


def test_addresses() -> None:
    assert ip_reason("192.168.0.1") == "private-range"
    assert ip_reason("239.255.255.250") == "multicast-range"
    assert ip_reason("8.8.8.8") == "resolver"
    assert ip_reason("46.165.231.85") is None


def test_email_domain_and_webmail() -> None:
    found = _by_value("contact bob[at]gmail[.]com")
    assert found["bob@gmail.com"].role == "indicator"
    assert found["gmail.com"].reason == "email-domain"
    assert host_reason("gmail.com") == "webmail"


def test_system_binary_in_narrative_vs_listed_sample() -> None:
    narrative = _by_value("The loader then starts cmd.exe with the payload path as its only argument.")
    assert narrative["cmd.exe"].reason == "system-binary-in-narrative"
    sha1 = "B9601E60F87545441BF8579B2F62668C56507F4A"
    listed = _by_value(f"| SHA-1 | Name |\n|---|---|\n| {sha1} | svchost.exe |", "md")
    assert (listed["svchost.exe"].role, listed["svchost.exe"].reason) == ("indicator", "table:Name")
    titled = _by_value(f".`svchost.exe`\n- `{sha1}`\n", "adoc")
    assert titled["svchost.exe"].role == "indicator"
    command = _by_value("- `C:\\Windows\\System32\\cmd.exe /c ping localhost`\n")
    assert (command["cmd.exe"].role, command["cmd.exe"].reason) == ("mention", "system-binary")


def test_warninglist_reason_names_the_list() -> None:
    reason = host_reason("www.wikipedia.org") or ""
    assert reason in ("vendor-site", "abused-service") or reason.startswith("warninglist:")


def test_public_suffix_from_the_bundled_snapshot() -> None:
    assert is_public_suffix("evil.co.uk") and not is_public_suffix("foo.notatld")
    assert registrable_domain("w1.dnslookup.services") == "dnslookup.services"


def test_certificate_serials_found_from_a_fast_index_and_with_look_alike_letters() -> None:
    md5 = "27966ccfd5d547b8a1f720ef960e216b"

    def reason(text: str) -> str:
        return _by_value(text)[md5].reason

    assert reason(f"Serial number: {md5}") == "certificate-serial"
    assert reason(f"Serials below.\nhash: {md5}") == "pattern"  # `serial` further than 40 characters back
    # the long s and dotless i match `serial` case-insensitively (the text has a plain `serial` elsewhere)
    assert reason(f"Serials below.\n\u017ferial number: {md5}") == "certificate-serial"
    assert reason(f"Serials below.\nser\u0131al: {md5}") == "certificate-serial"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["serial", "SERIAL", "\u017ferial", "ser\u0131al", "SER\u0130AL", "seri", "al", "x", " "]))
)
def test_serial_positions_are_where_the_pattern_matches(pieces: list[str]) -> None:
    from heistwatch.ingest import classify as c

    text = "".join(pieces)
    lowered = text.encode("ascii", "replace").lower()
    assert c._serial_positions(text, lowered) == [m.start() for m in c._SERIAL.finditer(text)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a" * 32, "b" * 8, "c" * 24, "0", "F", "g", " ", "\u00e9"])).map("".join), st.data())
def test_hash_nearby_is_the_64_40_32_alternation(text: str, data: st.DataObject) -> None:
    import re

    from heistwatch.ingest import classify as c

    alternation = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{64}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{32})(?![0-9A-Fa-f])")
    lo = data.draw(st.integers(0, len(text)))
    hi = data.draw(st.integers(lo, len(text)))
    expected = alternation.search(text, lo, hi)
    found = c._HASH_NEARBY.search(text, lo, hi)
    assert (found and found.span()) == (expected and expected.span())
