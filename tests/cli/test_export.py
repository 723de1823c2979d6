"""`heistwatch export`: every format through the CLI, checked by its ecosystem's tool; TLP ceilings; safe paths."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yara_x
from click.testing import CliRunner, Result
from pymisp import MISPEvent
from sigma.collection import SigmaCollection
from stix2validator import ValidationOptions, validate_parsed_json

import heistwatch.cli.export  # noqa: F401  (registers `export`)
from heistwatch.cli.main import Exit, cli, main
from heistwatch.errors import InputError, NotFoundError
from heistwatch.kb import SQLiteStore
from heistwatch.model import TLP
from tests.conftest import sample_batch
from tests.share.test_feeds import RED_VALUE, case_kb  # noqa: F401  (fixture)

REPORT = "c" * 64


def _run(kb: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--kb", str(kb), "export", *args])


def _ok(kb: Path, *args: str) -> dict[str, object]:
    result = _run(kb, *args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def _stix_errors(bundle: dict[str, object]) -> list[str]:
    return [str(e) for e in validate_parsed_json(bundle, ValidationOptions(version="2.1")).errors]


def test_every_format_loads_in_its_own_tool(case_kb: Path, tmp_path: Path) -> None:  # noqa: F811
    where = ["--dir", str(tmp_path)]
    _ok(case_kb, "stix", "--report", REPORT, "--out", "r.stix.json", *where)
    assert _stix_errors(json.loads((tmp_path / "r.stix.json").read_text())) == []

    summary = _ok(case_kb, "misp", "--report", REPORT, "--out", "r.misp.json", *where)
    event = MISPEvent()
    event.load(json.loads((tmp_path / "r.misp.json").read_text()))
    assert summary["attributes"] == len(event.attributes) and event.info == "Case test report"

    summary = _ok(case_kb, "navigator", "--actor", "APT38", "--out", "apt38.layer.json", *where)
    layer = json.loads((tmp_path / "apt38.layer.json").read_text())
    assert layer["name"].startswith("APT38 (G0082)") and summary["techniques"] == len(layer["techniques"]) > 10

    _ok(case_kb, "feed", "--out", "feed.csv", *where)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "feed.csv").read_text(), newline="")))
    assert {r["value"] for r in rows} >= {"evil-cdn.example", "hr@blockwave.example"}
    summary = _ok(case_kb, "feed", "--format", "json", "--report", REPORT, "--out", "feed.json", *where)
    assert summary["indicators"] == len(json.loads((tmp_path / "feed.json").read_text())["indicators"])

    summary = _ok(case_kb, "yara", "--actor", "Lazarus Group", "--out", "pack.yar", *where)
    assert yara_x.compile((tmp_path / "pack.yar").read_text()) is not None and summary["actors"] == ["Lazarus Group"]
    summary = _ok(case_kb, "sigma", "--report", REPORT, "--max-values", "2", "--out", "pack.yml", *where)
    collection = SigmaCollection.from_yaml((tmp_path / "pack.yml").read_text())
    assert collection.errors == [] and len(collection.rules) == summary["rules"]


def test_the_default_ceiling_is_amber(case_kb: Path, tmp_path: Path) -> None:  # noqa: F811
    for name in ("stix", "misp", "feed", "sigma"):
        _ok(case_kb, name, "--report", REPORT, "--out", str(tmp_path / f"amber.{name}"))
        assert RED_VALUE not in (tmp_path / f"amber.{name}").read_text(), name
        _ok(case_kb, name, "--report", REPORT, "--tlp-max", "RED", "--out", str(tmp_path / f"red.{name}"))
        assert RED_VALUE in (tmp_path / f"red.{name}").read_text(), name


def test_whole_knowledge_base_bundle_leaves_out_marked_records(tmp_path: Path) -> None:
    kb = tmp_path / "kb.sqlite"
    store = SQLiteStore(kb)
    batch = sample_batch()
    store.import_batch(batch)
    store.close()
    red_claim = next(c.id for c in batch.claims if c.tlp is TLP.RED)
    strict = next(o.id for o in batch.objects if o.tlp is TLP.AMBER_STRICT)
    _ok(kb, "stix", "--out", str(tmp_path / "amber.json"))
    amber = json.loads((tmp_path / "amber.json").read_text())
    ids = {o["id"] for o in amber["objects"]}
    assert red_claim not in ids and strict not in ids and TLP.RED.stix_marking_id not in ids
    assert not any(strict in (o.get("source_ref"), o.get("target_ref")) for o in amber["objects"])
    assert _stix_errors(amber) == []
    _ok(kb, "stix", "--tlp-max", "red", "--out", str(tmp_path / "red.json"))
    assert {red_claim, strict} <= {o["id"] for o in json.loads((tmp_path / "red.json").read_text())["objects"]}


def test_output_paths_are_confined_and_never_clobbered(case_kb: Path, tmp_path: Path) -> None:  # noqa: F811
    inside = tmp_path / "out"
    inside.mkdir()
    escape = _run(case_kb, "feed", "--dir", str(inside), "--out", "../escaped.csv")
    assert isinstance(escape.exception, InputError) and not (tmp_path / "escaped.csv").exists()
    absolute = _run(case_kb, "feed", "--dir", str(inside), "--out", str(tmp_path / "abs.csv"))
    assert isinstance(absolute.exception, InputError)
    target = inside / "feed.csv"
    target.write_text("keep me")
    refused = _run(case_kb, "feed", "--dir", str(inside), "--out", "feed.csv")
    assert isinstance(refused.exception, InputError) and target.read_text() == "keep me"
    _ok(case_kb, "feed", "--dir", str(inside), "--out", "feed.csv", "--force")
    assert target.read_text().startswith("kind,value") and [p.name for p in inside.iterdir()] == ["feed.csv"]


def test_stdout_gets_the_export_and_stderr_the_summary(case_kb: Path) -> None:  # noqa: F811
    result = _run(case_kb, "misp", "--actor", "Lazarus Group", "--out", "-")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["Event"]["info"] == "heistwatch: indicators of Lazarus Group"
    assert "wrote a MISP event" in result.stderr


def test_unknown_names_and_missing_choices(
    case_kb: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert isinstance(_run(case_kb, "misp", "--actor", "No Such Actor 42", "--out", "-").exception, NotFoundError)
    assert isinstance(_run(case_kb, "stix", "--report", "report--nope", "--out", "-").exception, NotFoundError)
    assert _run(case_kb, "misp", "--out", "-").exit_code == Exit.USAGE
    assert _run(case_kb, "feed", "--actor", "APT38", "--report", REPORT, "--out", "-").exit_code == Exit.USAGE
    other = tmp_path / "other.txt"
    other.write_text("not the report")
    wrong = _run(case_kb, "misp", "--report", REPORT, "--document", str(other), "--out", "-")
    assert isinstance(wrong.exception, InputError) and "SHA-256" in str(wrong.exception)
    with pytest.raises(SystemExit) as exit_info:
        main(["--kb", str(case_kb), "export", "yara", "--actor", "No Such Actor 42", "--out", "-"])
    assert exit_info.value.code == Exit.NOT_FOUND and "No Such Actor 42" in capsys.readouterr().err
