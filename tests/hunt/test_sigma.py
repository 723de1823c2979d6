"""Sigma rules: loading (with errors that name the file), local runs on proxy/DNS/process logs, export, the CLI."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import zstandard
from click.testing import CliRunner

import heistwatch.cli.hunt_sigma  # noqa: F401  (registers `hunt sigma`)
from heistwatch.cli.main import cli
from heistwatch.errors import InputError
from heistwatch.hunt import sigma_scan
from heistwatch.hunt.sigma import EngineName, SigmaReport, convert, hunt_sigma, load_rules, targets

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "rules" / "sigma" / "sigmahq"
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/rules/sigma is absent")


def write_jsonl(path: Path, records: list[dict[str, Any]], *, blank_after: int | None = None) -> Path:
    lines = [json.dumps(r) for r in records]
    if blank_after is not None:
        lines.insert(blank_after, "")
    path.write_text("\n".join(lines) + "\n")
    return path


def rule_yaml(title: str, rule_id: str, category: str, detection: str, *, tags: str = "") -> str:
    return (
        f"title: {title}\nid: {rule_id}\nauthor: Test Author\nlevel: high\n{tags}"
        f"logsource:\n    category: {category}\ndetection:\n{detection}"
    )


def titles(report: SigmaReport, file: Path) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for m in report.matches:
        if m.file == str(file):
            out.setdefault(m.line, set()).add(m.rule.title)
    return out


def skipped(report: SigmaReport) -> dict[str, str]:
    return {s.rule.title: s.reason for s in report.skipped}


@needs_shared
def test_shared_sigmahq_rules_load_with_authors_and_techniques() -> None:
    rules = load_rules([SHARED])
    assert rules.problems == ()
    assert len(rules.rules) >= 55
    assert all(r.info.author and r.info.id and r.info.line == 1 for r in rules.rules)
    by_title = {r.info.title: r.info for r in rules.rules}
    assert by_title["Lazarus System Binary Masquerading"].techniques == ("T1036.005",)
    assert "attack.t1036.005" in by_title["Lazarus System Binary Masquerading"].tags


@needs_shared
def test_proxy_rules_fire_on_matching_records_and_not_on_near_misses(tmp_path: Path) -> None:
    proxy = write_jsonl(
        tmp_path / "proxy.jsonl",
        [
            {"host": "x.example", "url": "http://x.example/pwndrop/a.bin", "method": "GET", "user_agent": UA},
            {"host": "x.example", "url": "http://x.example/pwndropper/a", "method": "GET", "user_agent": UA},
            {"host": "h.example", "url": "https://h.example/", "method": "GET", "user_agent": "rclone/v1.66"},
            {"host": "h.example", "url": "https://h.example/", "method": "GET", "user_agent": "my-rclone/v1.66"},
            {
                "host": "API.Telegram.ORG",
                "url": "https://api.telegram.org/bot1/x",
                "method": "GET",
                "user_agent": "curl",
            },
            {"host": "api.telegram.org", "url": "https://api.telegram.org/bot1/x", "user_agent": "TelegramBot (x)"},
            {"host": "api.telegram.org", "url": "https://api.telegram.org/bot1/y", "method": "GET"},
            {
                "host": "a.hopto.org",
                "url": "http://a.hopto.org/d/setup.EXE?id=1",
                "method": "GET",
                "user_agent": UA,
            },
            {
                "host": "a.hopto.org",
                "url": "http://a.hopto.org/d/setup.exe.txt",
                "method": "GET",
                "user_agent": UA,
            },
            {
                "host": "b.example",
                "url": "https://b.example/mgmt/tm/util/bash",
                "method": "POST",
                "user_agent": UA,
            },
            {
                "host": "b.example",
                "url": "https://b.example/mgmt/tm/util/bash",
                "method": "GET",
                "user_agent": UA,
            },
        ],
    )
    report = hunt_sigma(load_rules([SHARED / "proxy_generic"]), [proxy])
    found = titles(report, proxy)
    assert found[1] == {"PwnDrp Access"}
    assert "Rclone Activity via Proxy" in found[3]
    assert "Telegram API Access" in found[5]  # upper-case host: Sigma strings match case-insensitively
    assert "Telegram API Access" in found[7]  # no user agent at all: `not filter` holds
    assert "Download from Suspicious Dyndns Hosts" in found[8]  # the extension is derived from the URL
    assert "F5 BIG-IP iControl Rest API Command Execution - Proxy" in found[10]
    for near_miss in (2, 4, 6, 9, 11):
        assert not (found.get(near_miss, set()) - {"HTTP Request With Empty User Agent"}), near_miss
    assert all(m.rule.author for m in report.matches)
    assert report.problem_count == 0 and report.lines == 11


@needs_shared
def test_dns_rules_fire_on_gzip_and_zstd_logs_with_right_lines(tmp_path: Path) -> None:
    records = [
        {"query": "www.google.com", "answer": "1.2.3.4"},
        {"query": "API.TELEGRAM.ORG", "answer": "149.154.167.220"},
        {"query": "api.telegram.org.evil.example", "answer": "1.2.3.4"},
        {"query": "ifferfsodp9ifjaposdfjhgosurijfaewrwergwea.com", "answer": "1.2.3.4"},
        {"query": "xifferfsodp9ifjaposdfjhgosurijfaewrwergwea.com", "answer": "1.2.3.4"},
    ]
    plain = write_jsonl(tmp_path / "plain.jsonl", records, blank_after=1)
    gz = tmp_path / "dns.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    zst = tmp_path / "dns.jsonl.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    report = hunt_sigma(load_rules([SHARED / "dns"]), [plain, gz, zst])
    for path in (plain, gz, zst):
        assert titles(report, path) == {3: {"Telegram Bot API Request"}, 5: {"Wannacry Killswitch Domain"}}, path
    assert (
        "needs fields the dns logs lack: record_type"
        in skipped(report)["DNS TXT Answer with Possible Execution Strings"]
    )


@needs_shared
def test_process_rules_and_rules_for_other_log_sources_are_reported(tmp_path: Path) -> None:
    logs = write_jsonl(
        tmp_path / "process.jsonl",
        [
            {"image": "C:\\Users\\a\\msdtc.exe", "command_line": "msdtc.exe", "sha256": "ab"},
            {"image": "C:\\Windows\\System32\\msdtc.exe", "command_line": "msdtc.exe", "sha256": "cd"},
        ],
    )
    report = hunt_sigma(load_rules([SHARED / "emerging-threats"]), [logs])
    assert titles(report, logs) == {1: {"Lazarus System Binary Masquerading"}}
    reasons = skipped(report)
    assert "category=image_load" in reasons["Lazarus APT DLL Sideloading Activity"]
    assert reasons["Potential Suspicious Child Process Of 3CXDesktopApp"].endswith("lack: ParentImage")
    assert reasons["Potential Compromised 3CXDesktopApp Beaconing Activity - Proxy"] == "no proxy logs among the inputs"


def test_rule_needing_a_missing_field_is_reported_never_dropped(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    detection = "    sel:\n        cs-cookie|contains: 'session=evil'\n    condition: sel\n"
    (rules / "cookie.yml").write_text(
        rule_yaml("Cookie rule", "6f2b1c3e-1d8e-4c9a-9f0e-000000000001", "proxy", detection)
    )
    logs = write_jsonl(tmp_path / "proxy.jsonl", [{"host": "a.example", "url": "https://a.example/"}])
    report = hunt_sigma(load_rules([rules]), [logs])
    assert report.applied == [] and report.matches == []
    assert skipped(report) == {"Cookie rule": "needs fields the proxy logs lack: cs-cookie"}


def test_unsupported_features_are_reported_with_the_reason(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    keywords = "    keywords:\n        - 'evil'\n    condition: keywords\n"
    lookahead = "    sel:\n        url|re: 'a(?=b)'\n    condition: sel\n"
    (rules / "k.yml").write_text(rule_yaml("Keywords", "6f2b1c3e-1d8e-4c9a-9f0e-000000000002", "proxy", keywords))
    (rules / "r.yml").write_text(rule_yaml("Lookahead", "6f2b1c3e-1d8e-4c9a-9f0e-000000000003", "proxy", lookahead))
    (rules / "c.yml").write_text(
        "title: Many\nid: 6f2b1c3e-1d8e-4c9a-9f0e-000000000004\ncorrelation:\n    type: event_count\n"
        "    rules:\n        - 6f2b1c3e-1d8e-4c9a-9f0e-000000000003\n    group-by:\n        - host\n"
        "    timespan: 1h\n    condition:\n        gte: 10\n"
    )
    logs = write_jsonl(tmp_path / "proxy.jsonl", [{"host": "ab.example", "url": "https://ab.example/ab"}])
    reasons = skipped(hunt_sigma(load_rules([rules]), [logs]))
    assert "keywords" in reasons["Keywords"]
    assert "regular expression DuckDB (RE2) cannot run" in reasons["Lookahead"]
    assert reasons["Many"].startswith("correlation rule")


def test_broken_yaml_names_the_file_and_line_and_the_rest_load(tmp_path: Path) -> None:
    detection = "    sel:\n        url|contains: '/evil/'\n    condition: sel\n"
    (tmp_path / "good.yml").write_text(rule_yaml("Good", "6f2b1c3e-1d8e-4c9a-9f0e-000000000005", "proxy", detection))
    (tmp_path / "broken.yml").write_text("title: Broken\ndetection:\n  sel: [unclosed\n  condition: sel\n")
    (tmp_path / "nocond.yml").write_text(
        "title: No condition\nlogsource:\n  category: proxy\ndetection:\n  sel:\n    a: b\n"
    )
    rules = load_rules([tmp_path])
    assert [r.info.title for r in rules.rules] == ["Good"]
    problems = {Path(p.file).name: p for p in rules.problems}
    assert problems["broken.yml"].line == 4 and "YAML" in problems["broken.yml"].problem
    assert "condition" in problems["nocond.yml"].problem.lower()
    with pytest.raises(InputError, match="no such rule file"):
        load_rules([tmp_path / "absent.yml"])


def test_malformed_lines_are_counted_with_their_location(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    detection = "    sel:\n        url|contains: '/evil/'\n    condition: sel\n"
    (rules / "e.yml").write_text(rule_yaml("Evil path", "6f2b1c3e-1d8e-4c9a-9f0e-000000000006", "proxy", detection))
    logs = tmp_path / "proxy.jsonl"
    logs.write_bytes(b'{"url": "http://a/ok"}\nnot json\n{"url": "http://a/\xff"}\n{"url": "http://a/evil/x"}\n')
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"url": "http://a/evil/"}\n' * 100)[:40])
    report = hunt_sigma(load_rules([rules]), [logs, broken])
    assert titles(report, logs) == {4: {"Evil path"}}  # a line with bad UTF-8 is read byte for byte, not dropped
    where = {(Path(p.file).name, p.line) for p in report.problems}
    assert ("proxy.jsonl", 2) in where
    assert any(name == "broken.jsonl.gz" for name, _ in where)
    assert report.problem_count == len(report.problems)


@pytest.mark.parametrize("engine", ["distinct", "sql"])
def test_matched_lines_are_the_same_read_in_python_or_by_duckdb(tmp_path: Path, engine: EngineName) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    detection = "    sel:\n        url|contains: '/evil/'\n    condition: sel\n"
    (rules / "e.yml").write_text(rule_yaml("Evil path", "6f2b1c3e-1d8e-4c9a-9f0e-000000000008", "proxy", detection))
    lines = [
        b'{"url": "http://a/evil/1"}',
        b"",
        b"   ",
        b"not json",
        b'{"url": "http://a/ok"}',
        b'{"url": "http://a/evil/2", "note": "caf\xc3\xa9 \xff"}',
        b'{"url": "http://a/evil/3"}',  # no line break after the last line
    ]
    plain = tmp_path / "plain.jsonl"  # read again in Python
    plain.write_bytes(b"\n".join(lines))
    packed = tmp_path / "packed.jsonl.gz"  # read again by DuckDB
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    crlf = tmp_path / "crlf.jsonl"  # by DuckDB too: it breaks lines at "\r\n" as well
    crlf.write_bytes(b"\r\n".join(lines))
    report = hunt_sigma(load_rules([rules]), [plain, packed, crlf], engine=engine)
    by_file = {
        path.name: sorted((m.line, json.dumps(m.record)) for m in report.matches if m.file == str(path))
        for path in (plain, packed, crlf)
    }
    assert [line for line, _ in by_file["plain.jsonl"]] == [1, 6, 7]
    assert by_file["plain.jsonl"] == by_file["packed.jsonl.gz"] == by_file["crlf.jsonl"]
    assert json.loads(by_file["plain.jsonl"][1][1])["note"] == "café \ufffd"


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
def test_plain_lines_across_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(sigma_scan, "_CHUNK", chunk)
    monkeypatch.setattr(sigma_scan, "MAX_LINE_BYTES", 40)
    lines = [b"a", b"", b"bc\xe9", b"x" * 100, b"", b"last"]  # line 4 is over-long: DuckDB drops it
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\n".join(lines))
    wanted = [1, 2, 3, 5, 6]
    assert sigma_scan.plain_lines(path, wanted) == {n: lines[n - 1].decode("latin-1") for n in wanted}
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert sigma_scan.plain_lines(path, [6, 7]) == {6: "last"}
    path.write_bytes(b"a\nb\r\nc\n")
    assert sigma_scan.plain_lines(path, [1]) is None


def test_cased_wildcards_and_cidr_follow_sigma_semantics(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    detection = (
        "    cased:\n        user_agent|cased: 'EvilBot'\n"
        "    wild:\n        url: 'http*://*/a?c/*'\n"
        "    net:\n        src_ip|cidr: '10.1.0.0/16'\n"
        "    condition: 1 of *\n"
    )
    (rules / "s.yml").write_text(rule_yaml("Semantics", "6f2b1c3e-1d8e-4c9a-9f0e-000000000007", "proxy", detection))
    logs = write_jsonl(
        tmp_path / "proxy.jsonl",
        [
            {"url": "x", "user_agent": "EvilBot", "src_ip": "1.1.1.1"},
            {"url": "x", "user_agent": "evilbot", "src_ip": "1.1.1.1"},
            {"url": "https://h/abc/d", "user_agent": "x", "src_ip": "1.1.1.1"},
            {"url": "https://h/abbc/d", "user_agent": "x", "src_ip": "1.1.1.1"},
            {"url": "x", "user_agent": "x", "src_ip": "10.1.200.3"},
            {"url": "x", "user_agent": "x", "src_ip": "10.11.200.3"},
        ],
    )
    assert set(titles(hunt_sigma(load_rules([rules]), [logs]), logs)) == {1, 3, 5}


@needs_shared
def test_conversion_to_a_siem_target() -> None:
    assert "splunk" in targets()
    rules = load_rules([SHARED / "dns" / "net_dns_susp_telegram_api.yml"])
    [plain] = convert(rules, "splunk")
    assert plain.error is None and plain.queries == ('query="api.telegram.org"',)
    [cim] = convert(load_rules([SHARED / "proxy_generic" / "proxy_pwndrop.yml"]), "splunk", pipeline=["splunk_cim"])
    assert cim.queries == ('Web.url="*/pwndrop/*"',)
    with pytest.raises(InputError, match="unknown Sigma target"):
        list(convert(rules, "no-such-siem"))


@needs_shared
def test_cli_text_json_and_convert(tmp_path: Path) -> None:
    logs = write_jsonl(tmp_path / "dns.jsonl", [{"query": "api.telegram.org", "answer": "1.2.3.4"}])
    runner = CliRunner()
    text = runner.invoke(cli, ["hunt", "sigma", "--rules", str(SHARED / "dns"), str(logs)])
    assert text.exit_code == 0, text.output
    assert f"{logs}:1 medium Telegram Bot API Request [T1102.002]" in text.output
    assert "by Florian Roth" in text.output and "skipped: DNS TXT Answer" in text.output
    as_json = runner.invoke(cli, ["hunt", "sigma", "--rules", str(SHARED / "dns"), "--json", str(logs)])
    data = json.loads(as_json.stdout)
    [match] = data["matches"]
    assert match["line"] == 1 and match["record"]["query"] == "api.telegram.org"
    assert match["rule"]["author"] and match["rule"]["techniques"] == ["T1102.002"]
    assert len(data["applied"]) == 6 and data["skipped"][0]["reason"].endswith("record_type")
    converted = runner.invoke(cli, ["hunt", "sigma", "--rules", str(SHARED / "dns"), "--convert", "splunk", "--json"])
    assert converted.exit_code == 0
    assert {c["rule"]["title"] for c in json.loads(converted.stdout)} >= {"Telegram Bot API Request"}
    missing = runner.invoke(cli, ["hunt", "sigma", "--rules", str(SHARED / "dns")])
    assert missing.exit_code != 0
