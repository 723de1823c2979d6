"""Lookalike domains: what is and is not a lookalike, the log and CT hunt, state, bad input, CLI, and fuzzing."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import heistwatch.cli.hunt_domains  # noqa: F401  (registers `hunt domains`)
from heistwatch.cli.main import cli
from heistwatch.errors import InputError
from heistwatch.hunt import domains
from heistwatch.hunt.domains import hunt_domains, record_hosts
from heistwatch.hunt.fields import JSON_FIELDS
from heistwatch.hunt.lookalike import LookalikeFinder, osa_distance, parse_host, skeleton, skeleton_regex

CYRILLIC_I = "b\u0456nance.com"  # Cyrillic U+0456 for i
TWO_CYRILLIC = "b\u0456n\u0430nce.com"  # Cyrillic U+0456 and U+0430 for i and a
# host -> (registrable lookalike domain in Unicode, target, technique)
PLANTED = {
    CYRILLIC_I: ("b\u0456nance.com", "binance.com", "homoglyph"),
    "login." + TWO_CYRILLIC.encode("idna").decode(): ("b\u0456n\u0430nce.com", "binance.com", "homoglyph"),
    "B\u00ecnance.com.": ("b\u00ecnance.com", "binance.com", "homoglyph"),
    "b1nance.com": ("b1nance.com", "binance.com", "homoglyph"),
    "binance.xyz": ("binance.xyz", "binance.com", "tld-swap"),
    "binance.github.io": ("binance.github.io", "binance.com", "tld-swap"),
    "bniance.io": ("bniance.io", "binance.com", "transposition"),
    "binnance.com": ("binnance.com", "binance.com", "homoglyph"),
    "binancre.org": ("binancre.org", "binance.com", "typo"),
    "secure-binance-app.net": ("secure-binance-app.net", "binance.com", "combosquat"),
    "binancewallet.top": ("binancewallet.top", "binance.com", "dictionary"),
    "binance.com.verify-id.net": ("verify-id.net", "binance.com", "brand-in-subdomain"),
    "c0inbase.com": ("c0inbase.com", "coinbase.com", "homoglyph"),
    "coinbase-careers.com": ("coinbase-careers.com", "coinbase.com", "dictionary"),
}
OWN = (
    *("binance.com", "www.binance.com", "API.BINANCE.COM.", "a.b.c.binance.com", "binance.com:443"),
    *("coinbase.com", "help.coinbase.com", "binance.zendesk.com", "x.binance.zendesk.com"),
)
DECOYS = ("notbinance.org", "cabinancestry.com", "finance.yahoo.com", "google.com", "bin.example.org", "1.2.3.4")


@pytest.fixture(scope="module")
def finder() -> LookalikeFinder:
    return LookalikeFinder(["binance.com"], lures=["coinbase.com"], allow=["binance.zendesk.com"])


def jsonl(rows: Sequence[Mapping[str, object]]) -> bytes:
    return b"".join(json.dumps(row, ensure_ascii=False).encode() + b"\n" for row in rows)


def log_rows() -> list[dict[str, object]]:
    """Planted lookalikes, own names and decoys as DNS and proxy records, a few lines apart."""
    rows: list[dict[str, object]] = []
    for i, host in enumerate([*PLANTED, *OWN, *DECOYS]):
        rows.append({"ts": 1700000000 + i, "type": "dns", "query": host} if i % 2 else {"ts": 1700000000 + i})
        rows.append({"ts": 1700000000 + i, "type": "proxy", "host": "www.google.com", "url": "https://ok.example/"})
        if i % 2 == 0:
            rows[-2] = {"ts": 1700000000 + i, "type": "proxy", "url": f"https://{host}/login?next=/"}
    rows.append({"type": "proxy", "url": "https://www.google.com/search?q=binance-login.com"})
    return rows


def found(report: domains.DomainReport) -> dict[str, tuple[str, str, str]]:
    return {s.host: (s.lookalike.unicode, s.lookalike.target, s.lookalike.technique) for s in report.sightings}


# --- what is a lookalike ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", sorted(PLANTED))
def test_every_planted_lookalike_is_judged_with_its_technique(finder: LookalikeFinder, host: str) -> None:
    (hit,) = finder.classify(host)
    assert (hit.unicode, hit.target, hit.technique) == PLANTED[host]
    assert 0 < hit.score <= 1 and hit.detail


def test_mixed_script_idn_is_caught_as_unicode_and_as_punycode(finder: LookalikeFinder) -> None:
    punycode = CYRILLIC_I.encode("idna").decode()
    assert punycode.startswith("xn--")
    (as_unicode,), (as_punycode,) = finder.classify(CYRILLIC_I), finder.classify(punycode)
    assert as_unicode == as_punycode
    assert as_unicode.domain == punycode and not as_unicode.enumerated  # dnstwist did not list it; the skeleton did
    assert "CYRILLIC" in as_unicode.detail


@pytest.mark.parametrize("host", OWN + DECOYS)
def test_own_names_allowed_names_and_decoys_never_hit(finder: LookalikeFinder, host: str) -> None:
    assert finder.classify(host) == ()


def test_skeleton_and_distance() -> None:
    assert skeleton("b\u0456nance") == skeleton("BINANCE") == "binance"
    assert skeleton("rnicrosoft") == skeleton("microsoft") and skeleton("g00gle") == skeleton("google")
    assert skeleton_regex(skeleton("coinbase")) == "c[o0]inbase"
    assert osa_distance("binance", "bniance", 2) == 1 and osa_distance("binance", "binnance", 1) == 1
    assert osa_distance("binance", "coinbase", 2) == 3


def test_bad_targets_are_refused() -> None:
    with pytest.raises(InputError, match="public suffix"):
        LookalikeFinder(["localhost"])
    with pytest.raises(InputError, match="brand"):
        LookalikeFinder([], lures=["coinbase.com"])
    with pytest.raises(InputError, match="allow"):
        LookalikeFinder(["binance.com"], allow=["not a domain"])


# --- the hunt ---------------------------------------------------------------------------------------------------


def test_every_planted_lookalike_found_in_a_log_and_nothing_else(finder: LookalikeFinder, tmp_path: Path) -> None:
    log = tmp_path / "proxy.jsonl"
    log.write_bytes(jsonl(log_rows()))
    report = hunt_domains([log], finder, workers=1)
    assert found(report) == {host: PLANTED[host] for host in PLANTED}
    lines = log.read_text(encoding="utf-8").splitlines()
    for s in report.sightings:
        assert s.host in lines[s.line - 1] and s.field in ("query", "url") and s.new
    assert report.problem_count == 0 and report.lines == len(lines)
    assert hunt_domains([log], finder, prefilter=False).sightings == report.sightings


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_compressed_logs(finder: LookalikeFinder, tmp_path: Path, kind: str) -> None:
    data = jsonl(log_rows())
    log = tmp_path / f"dns.{kind}"
    log.write_bytes(gzip.compress(data) if kind == "gzip" else zstandard.ZstdCompressor().compress(data))
    assert set(found(hunt_domains([log], finder))) == set(PLANTED)


def test_zeek_and_csv_logs(finder: LookalikeFinder, tmp_path: Path) -> None:
    zeek = tmp_path / "dns.log"
    zeek.write_text(
        "#separator \\x09\n#fields\tts\tquery\tqtype_name\n1.0\tbinance.com\tA\n2.0\txn--bnance-pvf.com\tA\n",
        encoding="utf-8",
    )
    csv = tmp_path / "proxy.csv"
    csv.write_text("ts,host,url\n1,binance.com,https://binance.com/\n2,x,https://bniance.io/a\n", encoding="utf-8")
    report = hunt_domains([zeek, csv], finder)
    assert {(Path(s.file).name, s.line, s.lookalike.domain) for s in report.sightings} == {
        ("dns.log", 4, "xn--bnance-pvf.com"),
        ("proxy.csv", 3, "bniance.io"),
    }


def test_a_file_without_candidates(finder: LookalikeFinder, tmp_path: Path) -> None:
    log = tmp_path / "quiet.jsonl"
    log.write_bytes(jsonl([{"query": "example.org"}] * 3))
    report = hunt_domains([log], finder)
    assert report.sightings == () and report.lines == 3 and report.problem_count == 0


def test_split_among_workers_gives_the_same_report(finder: LookalikeFinder, tmp_path: Path) -> None:
    filler = jsonl([{"ts": i, "type": "dns", "query": f"host{i % 997}.example.com"} for i in range(60_000)])
    log = tmp_path / "big.jsonl"
    log.write_bytes(filler + jsonl(log_rows()) + filler + jsonl([{"query": "bniance.io"}]))
    assert log.stat().st_size > domains.MIN_SPLIT_BYTES
    one, two = hunt_domains([log], finder, workers=1), hunt_domains([log], finder, workers=2)
    assert one == two and one.lines == 120_000 + len(log_rows()) + 1
    assert {s.host: s.count for s in one.sightings}["bniance.io"] == 2


def test_certificate_transparency_dumps(finder: LookalikeFinder, tmp_path: Path) -> None:
    certstream = tmp_path / "certstream.jsonl"
    certstream.write_bytes(
        jsonl(
            [
                {"data": {"leaf_cert": {"all_domains": ["binance.com", "*.binance.com"]}, "seen": 1.5}},
                {"data": {"leaf_cert": {"all_domains": ["*.binance-login.com", "www.binance-login.com"]}}},
                {"name_value": "example.org\nc0inbase.com", "common_name": "example.org"},
                {"dns_names": [CYRILLIC_I], "not_before": "2026-01-01"},
            ]
        )
    )
    plain = tmp_path / "names.txt"
    plain.write_text("www.binance.com\n*.bniance.io, mail.example.org\n", encoding="utf-8")
    report = hunt_domains([], finder, ct=[certstream, plain])
    assert {(s.lookalike.domain, s.source, s.line) for s in report.sightings} == {
        ("binance-login.com", "ct", 2),
        ("c0inbase.com", "ct", 3),
        (CYRILLIC_I.encode("idna").decode(), "ct", 4),
        ("bniance.io", "ct", 2),
    }
    login = next(s for s in report.sightings if s.lookalike.domain == "binance-login.com")
    assert login.count == 1 and login.hosts == ("*.binance-login.com", "www.binance-login.com")


def test_record_hosts_reads_host_url_email_fields() -> None:
    record = {"host": "a.example", "url": "https://u:p@b.example:8443/x?y", "from": "Eve <eve@c.example>", "ua": "d.x"}
    assert record_hosts(record, JSON_FIELDS) == [
        ("host", "a.example"),
        ("url", "b.example:8443"),
        ("from", "c.example"),
    ]


# --- state ------------------------------------------------------------------------------------------------------


def test_state_reports_only_what_is_new(finder: LookalikeFinder, tmp_path: Path) -> None:
    log, state = tmp_path / "dns.jsonl", tmp_path / "state" / "lookalikes.json"
    log.write_bytes(jsonl(log_rows()))
    first = hunt_domains([log], finder, state_path=state, now="2026-01-01T00:00:00+00:00")
    assert first.new == len(first.sightings) == len(PLANTED) and first.known == 0
    second = hunt_domains([log], finder, state_path=state, now="2026-01-02T00:00:00+00:00")
    assert second.sightings == () and second.new == 0 and second.known == len(PLANTED)
    everything = hunt_domains([log], finder, state_path=state, report_all=True)
    assert len(everything.sightings) == len(PLANTED) and not any(s.new for s in everything.sightings)
    log.write_bytes(jsonl([*log_rows(), {"query": "binance-support.co"}]))
    third = hunt_domains([log], finder, state_path=state)
    assert [s.lookalike.domain for s in third.sightings] == ["binance-support.co"]
    saved = json.loads(state.read_text(encoding="utf-8"))["seen"]
    assert saved["binance.com|binance.xyz"]["first_reported"] == "2026-01-01T00:00:00+00:00"


def test_a_damaged_state_file_is_refused(finder: LookalikeFinder, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="not a lookalike state file"):
        hunt_domains([], finder, ct=[], state_path=state)


# --- bad input --------------------------------------------------------------------------------------------------


def test_bad_lines_and_broken_gzip_are_counted_with_their_location(finder: LookalikeFinder, tmp_path: Path) -> None:
    log = tmp_path / "dns.jsonl"
    log.write_bytes(b'{"query": "binance.xyz"\n["bniance.io"]\n{"query": "b\xffnance.com"}\n{"query": "bniance.io"}\n')
    broken = tmp_path / "broken.gz"
    whole = gzip.compress(jsonl([{"query": "binance.xyz"}] + [{"query": f"h{i}.example.org"} for i in range(5000)]))
    broken.write_bytes(whole[: len(whole) // 2])
    report = hunt_domains([broken, log], finder)  # the hunt goes on after the broken file
    where = {(Path(p.file).name, p.line, p.problem.split(":")[0]) for p in report.problems}
    assert ("dns.jsonl", 1, "not JSON") in where and ("dns.jsonl", 2, "a JSON line that is not an object") in where
    assert ("dns.jsonl", 3, "undecodable bytes at column 13, read as U+FFFD") in where
    assert any(name == "broken.gz" and problem == "cannot read further" for name, _, problem in where)
    assert report.problem_count == 4
    assert {s.lookalike.domain for s in report.sightings} == {"bniance.io"}


# --- CLI --------------------------------------------------------------------------------------------------------


def test_cli_text_and_json(tmp_path: Path) -> None:
    log, state = tmp_path / "proxy.jsonl", tmp_path / "state.json"
    log.write_bytes(jsonl(log_rows()))
    args = ["--kb", str(tmp_path / "kb.sqlite"), "hunt", "domains", "--brand", "binance.com"]
    args += ["--lure-company", "coinbase.com", "--allow", "binance.zendesk.com", "--state", str(state)]
    result = CliRunner().invoke(cli, [*args, str(log)])
    assert result.exit_code == 0, result.output
    assert f"NEW {CYRILLIC_I} (xn--bnance-pvf.com) looks like binance.com [brand] by homoglyph" in result.output
    assert f"{len(PLANTED)} lookalikes shown ({len(PLANTED)} new, 0 reported before)" in result.output
    again = CliRunner().invoke(cli, [*args, "--json", "--all", str(log)])
    data = json.loads(again.stdout)
    assert data["new"] == 0 and data["known"] == len(PLANTED) and len(data["lookalikes"]) == len(PLANTED)
    first = data["lookalikes"][0]
    assert {"domain", "unicode", "target", "technique", "score", "host", "file", "line", "new"} <= set(first)
    default = CliRunner().invoke(
        cli, ["--kb", str(tmp_path / "kb.sqlite"), "hunt", "domains", "--brand", "x.com", str(log)]
    )
    assert default.exit_code == 0 and (tmp_path / "lookalike-state.json").exists()


def test_cli_bad_input(tmp_path: Path) -> None:
    log = tmp_path / "dns.jsonl"
    log.write_bytes(b'{"query": "binance.xyz"\n')
    base = ["--kb", str(tmp_path / "kb.sqlite"), "hunt", "domains", "--brand", "binance.com"]
    assert CliRunner().invoke(cli, [*base, str(log)]).exit_code == 3
    assert CliRunner().invoke(cli, base).exit_code == 2
    refused = CliRunner().invoke(cli, ["hunt", "domains", "--brand", "localhost", str(log)])
    assert isinstance(refused.exception, InputError)


# --- properties -------------------------------------------------------------------------------------------------

CONFUSING = "abcdeilmnorsu01-\u0430\u0435\u0456\u043e\u0440\u0441\u0455\u00ec\u0131."


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(max_size=80) | st.from_regex(r"[a-z0-9.\-*:\[\]]{0,40}", fullmatch=True))
def test_the_name_parser_never_crashes(finder: LookalikeFinder, value: str) -> None:
    name = parse_host(value)
    if name is not None:
        assert name.ascii.isascii() and name.ascii.endswith("." + name.suffix)
        assert name.registrable == name.ascii or name.ascii.endswith("." + name.registrable)
    for hit in finder.classify(value):
        assert hit.target in ("binance.com", "coinbase.com") and 0 < hit.score <= 1


HOSTS = st.builds(
    lambda edits, suffix: _mutate("binance", edits) + "." + suffix,
    st.lists(st.tuples(st.integers(0, 8), st.sampled_from(CONFUSING), st.booleans()), max_size=3),
    st.sampled_from(["com", "io", "co.uk", "xyz"]),
)


def _mutate(label: str, edits: list[tuple[int, str, bool]]) -> str:
    for at, char, insert in edits:
        at = min(at, len(label))
        label = label[:at] + char + label[at + (not insert) :]
    return label


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    written=st.lists(
        st.tuples(
            HOSTS, st.sampled_from(["unicode", "punycode", "escaped"]), st.sampled_from(["query", "url", "from"])
        ),
        min_size=1,
        max_size=12,
    )
)
def test_the_prefilter_loses_no_lookalike(
    finder: LookalikeFinder, tmp_path: Path, written: list[tuple[str, str, str]]
) -> None:
    rows, expected = [], set()
    for host, spelling, field in written:
        shown = host.encode("idna").decode() if spelling == "punycode" and parse_host(host) else host
        value = {"query": shown, "url": f"https://{shown}/x?y=1", "from": f"Eve <eve@{shown}>"}[field]
        line = json.dumps({"ts": 1, field: value, "ua": "Mozilla/5.0"}, ensure_ascii=spelling == "escaped")
        rows += [line, json.dumps({"query": "www.binance.com", "url": "https://binance.com/"})]
        expected |= {(hit.domain, len(rows) - 1) for hit in finder.classify(host)}
    log = tmp_path / "fuzz.jsonl"
    log.write_text("\n".join(rows) + "\n", encoding="utf-8")
    report = hunt_domains([log], finder, workers=1)
    lines = {s.lookalike.domain: s.line for s in report.sightings}
    assert {domain for domain, _ in expected} == set(lines)
    assert all(lines[domain] <= line for domain, line in expected)
