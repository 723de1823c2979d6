"""`heistwatch hunt files|mail|domains|sigma` keep their findings (--record/--no-record) and write STIX (--stix)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from click.testing import CliRunner, Result

import heistwatch.cli.hunt_domains
import heistwatch.cli.hunt_files
import heistwatch.cli.hunt_mail
import heistwatch.cli.hunt_sigma  # noqa: F401  (registers the commands)
from heistwatch.cli.main import cli
from heistwatch.hunt.demo_hunts import demo_rules
from heistwatch.hunt.mail_corpus import make_demo_mail
from heistwatch.hunt.telemetry import write_endpoint_files
from heistwatch.kb import SQLiteStore
from heistwatch.model import ImportBatch, Source, make_indicator
from tests.conftest import sample_batch
from tests.hunt.test_findings import SIGMA_LOG


def _kb(tmp_path: Path) -> Path:
    path = tmp_path / "kb.sqlite"
    store = SQLiteStore(path)
    store.import_batch(sample_batch())
    recruiter = make_indicator("email", "hr@blockwave-capital.com", source="report-x")
    store.import_batch(ImportBatch(sources=(Source("report-x", "A report"),), indicators=(recruiter,)))
    store.close()
    return path


def _run(kb: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--kb", str(kb), "hunt", *args], catch_exceptions=False)


def _stored(kb: Path) -> tuple[list[str], list[str]]:
    store = SQLiteStore(kb)
    try:
        return [s.hunt for s in store.sightings()], [i.kind for i in store.indicators()]
    finally:
        store.close()


def _bundle_kinds(path: Path) -> list[str]:
    return sorted(o["type"] for o in json.loads(path.read_text(encoding="utf-8"))["objects"])


def test_sigma_records_and_exports(tmp_path: Path) -> None:
    kb, log, stix = _kb(tmp_path), tmp_path / "process.jsonl", tmp_path / "s.json"
    log.write_text("".join(json.dumps(r) + "\n" for r in SIGMA_LOG), encoding="utf-8")
    result = _run(kb, "sigma", "--rules", str(demo_rules()), "--stix", str(stix), "--json", str(log))
    assert result.exit_code == 0, result.output
    [shown] = json.loads(result.stdout)["sightings"]
    assert (shown["hunt"], shown["line"]) == ("sigma", 1)
    hunts, kinds = _stored(kb)
    assert hunts == ["sigma"] and "sigma" in kinds
    assert _bundle_kinds(stix).count("sighting") == 1
    assert "1 sightings kept in the knowledge base (1 new)" in result.stderr


def test_no_record_keeps_nothing_but_still_exports(tmp_path: Path) -> None:
    kb, log, stix = _kb(tmp_path), tmp_path / "process.jsonl", tmp_path / "s.json"
    log.write_text("".join(json.dumps(r) + "\n" for r in SIGMA_LOG), encoding="utf-8")
    result = _run(kb, "sigma", "--rules", str(demo_rules()), "--no-record", "--stix", str(stix), str(log))
    assert result.exit_code == 0, result.output
    assert _stored(kb) == ([], ["domain", "email"])
    bundle = json.loads(stix.read_text(encoding="utf-8"))
    assert [o["pattern_type"] for o in bundle["objects"] if o["type"] == "indicator"] == ["sigma"]


def test_files_record_yara_sightings(tmp_path: Path) -> None:
    kb, folder = _kb(tmp_path), tmp_path / "endpoint"
    dropped = write_endpoint_files(random.Random(1), folder, "https://evil.example/a")
    result = _run(kb, "files", str(folder), "--rules", str(demo_rules()), "--workers", "1", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)["sightings"]
    assert sorted(s["file"].removeprefix(f"{folder}/") for s in shown) == sorted(dropped)
    hunts, kinds = _stored(kb)
    assert hunts == ["files", "files"] and kinds.count("yara") == 2


def test_files_without_a_knowledge_base_say_they_did_not_record(tmp_path: Path) -> None:
    folder = tmp_path / "endpoint"
    write_endpoint_files(random.Random(1), folder, "https://evil.example/a")
    result = _run(tmp_path / "none.sqlite", "files", str(folder), "--rules", str(demo_rules()), "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "sightings not recorded" in result.stderr and "no knowledge base here yet" in result.stderr
    assert not (tmp_path / "none.sqlite").exists()


def test_domains_store_lookalikes(tmp_path: Path) -> None:
    kb, log = _kb(tmp_path), tmp_path / "dns.jsonl"
    log.write_text(json.dumps({"query": "xn--hkuto-exchange-vzl.com"}) + "\n", encoding="utf-8")
    args = ("domains", str(log), "--brand", "hokuto-exchange.com", "--state", str(tmp_path / "state.json"))
    result = _run(kb, *args, "--workers", "1")
    assert result.exit_code == 0, result.output
    store = SQLiteStore(kb)
    try:
        [lookalike] = [i for i in store.indicators() if i.source == "lookalike-hunt"]
        assert lookalike.value == "xn--hkuto-exchange-vzl.com"
        assert [s.hunt for s in store.sightings()] == ["domains"]
    finally:
        store.close()


def test_mail_records_indicator_sightings(tmp_path: Path) -> None:
    kb, folder = _kb(tmp_path), tmp_path / "mail"
    make_demo_mail(random.Random(3), folder, ordinary=4)
    result = _run(kb, "mail", str(folder), "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["sightings"] and {s["hunt"] for s in shown["sightings"]} == {"mail"}
    assert {s["value"] for s in shown["sightings"]} == {"hr@blockwave-capital.com"}
    hunts, _ = _stored(kb)
    assert set(hunts) == {"mail"} and len(hunts) == len(shown["sightings"])
