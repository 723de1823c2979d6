"""The demo's extra hunts on generated telemetry: every planted thing found, nothing else flagged, all stored."""

from __future__ import annotations

from pathlib import Path

from heistwatch.hunt.demo_hunts import hunt_demo_extras, summary_lines
from heistwatch.hunt.telemetry import generate_telemetry
from heistwatch.kb import SQLiteStore
from heistwatch.model import ImportBatch, Source, make_indicator

PLANTED = {
    "domain": ["cloud-docs-share.online"],
    "url": ["https://cloud-docs-share.online/jd/view.php?id=8812"],
    "ipv4": ["45.138.16.212"],
}


def test_telemetry_plants_lookalikes_chain_and_droppers(tmp_path: Path) -> None:
    logs, truth = generate_telemetry(tmp_path / "t", PLANTED, lines=2_000, seed=5)
    assert len(truth.lookalikes) == 3 and any(d.startswith("xn--") for d in truth.lookalikes)
    assert "h\u043ekuto-exchange.com".encode("idna").decode() in truth.lookalikes  # Cyrillic o, as punycode
    assert truth.process_log == logs[2] and len(truth.process_chain) == 4
    lines = truth.process_log.read_text(encoding="utf-8").splitlines()
    assert all('"parent_image"' in lines[n - 1] and '"command_line"' in lines[n - 1] for n in truth.process_chain)
    assert set(truth.process_chain) <= truth.planted_lines["endpoint.jsonl"]
    assert truth.files_folder is not None
    assert (truth.files_folder / truth.dropper_files[0]).is_file()


def test_every_hunt_finds_what_was_planted_and_stores_it(tmp_path: Path) -> None:
    _, truth = generate_telemetry(tmp_path / "t", PLANTED, lines=3_000, seed=5)
    store = SQLiteStore(tmp_path / "kb.sqlite")
    recruiter = make_indicator("email", "hr@blockwave-capital.com", source="report-x")
    store.import_batch(ImportBatch(sources=(Source("report-x", "A report"),), indicators=(recruiter,)))
    result = hunt_demo_extras(store, tmp_path, truth, workers=1)
    for score in (result.files, result.mail, result.domains, result.sigma):
        assert score.planted and score.found == score.planted and not score.missed
        assert score.false_alarms == ()
    assert result.new_sightings == len(result.sightings) == len(store.sightings())
    assert {s.hunt for s in store.sightings()} == {"files", "mail", "domains", "sigma"}
    assert {i.source for i in store.indicators()} >= {"hunt-rules", "lookalike-hunt"}
    text = "\n".join(summary_lines(result))
    assert "hunt sigma: 4 of 4 planted process-chain events found" in text
    store.close()
