"""The CLI through its entry point: output, --json, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from stix2validator import ValidationOptions, validate_string

from heistwatch.cli.main import Exit, main
from heistwatch.kb import SQLiteStore
from heistwatch.kb.build import BuildReport

CASE = ["Dangerous Password", "CryptoCore", "CryptoMimic", "Leery Turtle", "Sapphire Sleet", "APT38", "Andariel"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", CASE)
def test_actor_json_names_the_source_of_each_claim(
    capsys: pytest.CaptureFixture[str], built_kb: BuildReport, name: str
) -> None:
    code, out, _ = run(capsys, "--kb", str(built_kb.path), "actor", name, "--json")
    assert code == Exit.OK
    data = json.loads(out)
    assert data["statements"] and all("source" in s for s in data["statements"])
    assert {"group", "umbrella", "country", "aliases", "disagreements"} <= set(data)


def test_actor_text(capsys: pytest.CaptureFixture[str], built_kb: BuildReport) -> None:
    code, out, _ = run(capsys, "--kb", str(built_kb.path), "actor", "apt 38")
    assert code == Exit.OK
    assert "Where sources disagree" in out and "MITRE ATT&CK Enterprise" in out and "T1" in out


def test_unknown_actor_exit_code(capsys: pytest.CaptureFixture[str], built_kb: BuildReport) -> None:
    code, _, err = run(capsys, "--kb", str(built_kb.path), "actor", "No Such Actor 42")
    assert code == Exit.NOT_FOUND and "No Such Actor 42" in err


def test_missing_kb_says_what_to_do(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "--kb", str(tmp_path / "none.sqlite"), "kb", "stats")
    assert code == Exit.STORE and "heistwatch kb build" in err


def test_stats_json(capsys: pytest.CaptureFixture[str], built_kb: BuildReport) -> None:
    code, out, _ = run(capsys, "--kb", str(built_kb.path), "kb", "stats", "--json")
    assert code == Exit.OK
    assert {row["source"]["key"] for row in json.loads(out)} >= {"mitre-attack", "misp-galaxy:threat-actor"}


def test_bad_bundle_import_exit_code(capsys: pytest.CaptureFixture[str], built_kb: BuildReport, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "bundle", "objects": [{"type": "malware", "id": "malware--x"}]}')
    code, _, err = run(capsys, "--kb", str(built_kb.path), "kb", "import", str(bad))
    assert code == Exit.BAD_INPUT and "bad.json" in err and "malware--x" in err


def test_demo_writes_outputs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "demo", "--out", str(tmp_path / "demo"), "--json")
    assert code == Exit.OK
    summary = json.loads(out)
    assert summary["stix_valid"] is True and set(summary["stix_errors"]) == {
        "case STIX bundle",
        "report STIX bundle",
        "hunt sightings (STIX)",
    }
    assert "CryptoCore" in summary["ingest"]["named"] and summary["ingest"]["indicators"]["sha256"] == 2
    assert summary["attribution"]["candidates"] and summary["attribution"]["levels"]["country"]
    assert summary["trace"]["alerts"] > 0 and 0 < summary["trace"]["scores"]["recall"] <= 1
    hunted = summary["hunt"]
    assert hunted["planted"] > 0 and hunted["found_exactly"] == hunted["planted"]
    assert hunted["over_reported"] == [] and hunted["missed"] == []
    for path in summary["files"].values():
        assert Path(path).stat().st_size > 0
    assert any(summary["disagreements"].values())


def test_ingest_folder_reports_the_bad_file_and_stores_the_rest(
    capsys: pytest.CaptureFixture[str], kb_copy: Path, tmp_path: Path
) -> None:
    kb = kb_copy
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "a.md").write_text("The Lazarus Group used hxxp://evil-updates[.]net/x.php in 2026.\n")
    (reports / "b.txt").write_bytes(b"\x00\x01binary\x00")
    code, out, _ = run(capsys, "--kb", str(kb), "ingest", str(reports), "--json", "--stix", str(tmp_path / "stix"))
    assert code == Exit.BAD_INPUT
    results = {Path(r["path"]).name: r for r in json.loads(out)}
    assert "error" in results["b.txt"] and "b.txt" in results["b.txt"]["error"]
    values = {f["value"] for f in results["a.md"]["findings"]}
    assert {"evil-updates.net", "Lazarus Group"} <= values
    (bundle,) = (tmp_path / "stix").iterdir()
    assert json.loads(bundle.read_text())["type"] == "bundle"
    code, out, _ = run(capsys, "--kb", str(kb), "kb", "stats", "--json")
    assert any(s["source"]["key"].startswith("report-") and s["indicators"] for s in json.loads(out))


def test_ingest_reads_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, kb_copy: Path) -> None:
    kb = kb_copy
    html = b"<p>C2 at <b>hxxps://login-verify[.]org/p</b> &amp; 45.61.136[.]130</p>"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(html)))
    code, out, _ = run(capsys, "--kb", str(kb), "ingest", "-", "--format", "html", "--json")
    assert code == Exit.OK
    (result,) = json.loads(out)
    assert result["path"] == "<stdin>"
    assert {"login-verify.org", "45.61.136.130"} <= {f["value"] for f in result["findings"]}


def test_attribute_evidence_file_and_abstention(
    capsys: pytest.CaptureFixture[str], built_kb: BuildReport, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text('{"evidence": []}')
    code, out, _ = run(capsys, "--kb", str(built_kb.path), "attribute", str(empty), "--json")
    assert code == Exit.OK
    assert json.loads(out)["abstained"] is True
    strong = tmp_path / "case.json"
    rows = [{"kind": "name", "value": "CryptoCore"}, {"kind": "software", "value": "AppleJeus"}]
    strong.write_text(json.dumps({"evidence": rows}))
    code, out, _ = run(capsys, "--kb", str(built_kb.path), "attribute", str(strong), "--json")
    result = json.loads(out)
    assert code == Exit.OK and result["levels"]["country"]
    assert abs(sum(result["levels"]["group"].values()) + result["unknown_actor_probability"] - 1) < 1e-6
    code, _, err = run(capsys, "--kb", str(built_kb.path), "attribute", "--report", "nope")
    assert code == Exit.NOT_FOUND and "nope" in err


def test_trace_simulate_then_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.duckdb"
    code, out, _ = run(capsys, "trace", "simulate", str(ledger), "--seed", "7", "--json")
    assert code == Exit.OK
    seeds = [s["tx"] for s in json.loads(out)["seeds"]]
    args = [arg for tx in seeds for arg in ("--tx", tx)]
    code, out, _ = run(capsys, "trace", "run", str(ledger), *args, "--json", "--freeze", str(tmp_path / "f"))
    assert code == Exit.OK
    alerts = json.loads(out)["alerts"]
    assert alerts and all(int(a["amounts"]["fifo"]) >= 0 for a in alerts)
    assert (tmp_path / "f" / "freeze-requests.csv").read_text().startswith("service,")
    code, _, err = run(capsys, "trace", "simulate", str(ledger))
    assert code == Exit.BAD_INPUT and "already exists" in err


def test_hunt_logs_finds_ingested_indicators_with_domain_semantics(
    capsys: pytest.CaptureFixture[str], kb_copy: Path, tmp_path: Path
) -> None:
    kb = kb_copy
    report = tmp_path / "r.md"
    report.write_text("The Lazarus Group staged files on hxxps://cloud-docs-share[.]online/jd/view.php in 2026.\n")
    assert run(capsys, "--kb", str(kb), "ingest", str(report))[0] == Exit.OK
    log = tmp_path / "proxy.jsonl"
    lines = [
        {"ts": "2026-03-16T01:03:00Z", "host": "CDN.cloud-docs-share.online.", "url": "https://x/y"},
        {"ts": "2026-03-16T01:04:00Z", "host": "notcloud-docs-share.online", "url": "https://x/z"},
        {
            "ts": "2026-03-16T01:05:00Z",
            "host": "www.example.org",
            "url": "https://cloud-docs-share.online/jd/view.php?id=1",
        },
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"host": "cloud-docs-share.online"\n')
    code, out, _ = run(capsys, "--kb", str(kb), "hunt", "logs", str(log), "--json", "--workers", "1")
    result = json.loads(out)
    seen = {(s["kind"], s["line"]) for s in result["sightings"]}
    assert ("domain", 1) in seen and ("url", 3) in seen
    assert not any(s["line"] == 2 for s in result["sightings"])
    assert code == Exit.BAD_INPUT and [p["line"] for p in result["problems"]] == [4]
    stored = SQLiteStore(kb)
    try:
        assert sorted((s.kind, s.line) for s in stored.sightings()) == sorted(seen)
    finally:
        stored.close()


def test_hunt_sightings_become_stix_and_attribution_evidence(
    capsys: pytest.CaptureFixture[str], kb_copy: Path, tmp_path: Path
) -> None:
    report = tmp_path / "r.md"
    report.write_text("The Lazarus Group used the domain cloud-docs-share[.]online against an exchange in 2026.\n")
    assert run(capsys, "--kb", str(kb_copy), "ingest", str(report))[0] == Exit.OK
    log = tmp_path / "dns.jsonl"
    log.write_text(json.dumps({"ts": "2026-03-16T01:03:00Z", "query": "cloud-docs-share.online"}) + "\n")
    bundle = tmp_path / "sightings.stix.json"
    args = ("--kb", str(kb_copy), "hunt", "logs", str(log), "--workers", "1", "--stix", str(bundle))
    assert run(capsys, *args)[0] == Exit.OK
    objects = json.loads(bundle.read_text())["objects"]
    sighting = next(o for o in objects if o["type"] == "sighting")
    assert sighting["sighting_of_ref"] in {o["id"] for o in objects if o["type"] == "indicator"}
    assert sighting["first_seen"] == "2026-03-16T01:03:00.000Z" and sighting["x_heistwatch_seen"]["line"] == 1
    assert validate_string(bundle.read_text(), ValidationOptions(strict=False)).is_valid
    code, out, _ = run(capsys, "--kb", str(kb_copy), "attribute", "--sightings", "--json")
    assert code == Exit.OK
    assert "name:lazarusgroup" in {e["item_id"] for e in json.loads(out)["evidence"]}  # the report that gave the domain


def test_serve_refuses_a_server_url_with_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--kb", "postgresql://analyst:secret@db.example/kb", "serve")
    assert code == Exit.STORE and "db.example/kb: cannot connect" in err and "secret" not in err
