"""ATT&CK technique tagging: explicit ids, the shipped model's predictions, training-text cleaning, storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from heistwatch.ingest.techniques import (
    NO_TECHNIQUE,
    Example,
    TechniqueHit,
    TechniqueTagger,
    clean_procedure,
    load_technique_names,
)


@pytest.fixture(scope="module")
def tagger(tmp_path_factory: pytest.TempPathFactory) -> TechniqueTagger:
    """The shipped model (an empty cache dir: a stale shipped model would retrain, and the test would show it)."""
    return TechniqueTagger.load(tmp_path_factory.mktemp("cache"))


def _model_ids(hits: list[TechniqueHit]) -> list[str]:
    return [h.technique_id for h in hits if h.via == "model"]


def test_procedure_sentence_maps_to_powershell(tagger: TechniqueTagger) -> None:
    hits = tagger.tag("The malware uses PowerShell to download a second stage.")
    assert "T1059.001" in _model_ids(hits)[:3]
    assert all(h.score >= tagger.threshold for h in hits)


@pytest.mark.parametrize(
    ("sentence", "technique"),
    [
        ("The actor dumped credentials from LSASS memory with Mimikatz.", "T1003.001"),
        ("It takes screenshots of the victim's desktop.", "T1113"),
        ("The backdoor records keystrokes.", "T1056.001"),
    ],
)
def test_behaviour_sentences(tagger: TechniqueTagger, sentence: str, technique: str) -> None:
    assert technique in _model_ids(tagger.tag(sentence))


def test_attribution_prose_gets_no_technique(tagger: TechniqueTagger) -> None:
    assert tagger.tag("Lazarus Group is a North Korean state-sponsored threat group active since at least 2009.") == []


def test_explicit_ids_with_sub_techniques_and_offsets(tagger: TechniqueTagger) -> None:
    text = "Seen: T1059.001, T1547/001 and T1027 (again T1027)."
    hits = [h for h in tagger.tag(text) if h.via == "id"]
    assert [h.technique_id for h in hits] == ["T1059.001", "T1547.001", "T1027"]
    assert [text[h.start : h.end] for h in hits] == ["T1059.001", "T1547/001", "T1027"]
    assert hits[0].name == "Command and Scripting Interpreter: PowerShell"
    assert {h.score for h in hits} == {1.0}


def test_unknown_ids_are_dropped_and_revoked_ids_mapped(tagger: TechniqueTagger) -> None:
    ids = [h.technique_id for h in tagger.explicit_ids("T9999, T1059.999, XT1059, T10591 and the old T1086.")]
    assert ids == ["T1059.001"]


def test_hits_point_into_given_spans(tagger: TechniqueTagger) -> None:
    text = "Intro. The implant uses PowerShell to download a second stage."
    hits = tagger.tag(text, [(7, len(text))])
    assert hits and all(h.start >= 7 and h.end <= len(text) for h in hits)


def test_table_rows_are_read_cell_by_cell(tagger: TechniqueTagger) -> None:
    text = "| Execution | The malware uses PowerShell to download a second stage. |\n"
    hit = next(h for h in tagger.tag(text) if h.technique_id == "T1059.001")
    assert text[hit.start : hit.end] == "The malware uses PowerShell to download a second stage."


def test_empty_text(tagger: TechniqueTagger) -> None:
    assert tagger.tag("") == tagger.tag(" \n ") == []
    assert tagger.predict([]) == []


def test_load_is_cached(tmp_path: Path) -> None:
    assert TechniqueTagger.load(tmp_path) is TechniqueTagger.load(tmp_path)


def test_clean_procedure_strips_citations_links_and_names() -> None:
    text = (
        "[Lazarus Group](https://attack.mitre.org/groups/G0032) used [Mimikatz](https://attack.mitre.org/software/S0002)"
        " and <code>whoami</code>.(Citation: Some Report 2020) BLINDINGCAN then ran (Citation: Trunc..."
    )
    assert clean_procedure(text, ["BLINDINGCAN"]) == "xxname used Mimikatz and whoami . xxname then ran"


def test_technique_names_cover_sub_techniques() -> None:
    names = load_technique_names()
    assert names["T1059"] == "Command and Scripting Interpreter"
    assert names["T1003.001"] == "OS Credential Dumping: LSASS Memory"


def test_train_save_read_round_trip(tmp_path: Path) -> None:
    examples = [
        Example("uses powershell scripts to run commands", "T1059.001", "a", "procedure"),
        Example("runs powershell commands to download files", "T1059.001", "a", "procedure"),
        Example("takes screenshots of the desktop", "T1113", "b", "procedure"),
        Example("captures screenshots of the screen", "T1113", "b", "procedure"),
        Example("is a threat group active since 2009", NO_TECHNIQUE, "c", "none"),
        Example("is a group active since 2012 in the region", NO_TECHNIQUE, "c", "none"),
    ]
    trained = TechniqueTagger.train(examples, threshold=-1.0)
    trained.save(tmp_path / "model.npz")
    read = TechniqueTagger.read(tmp_path / "model.npz", threshold=-1.0)
    assert read is not None
    sentence = ["the tool takes screenshots"]
    assert read.predict(sentence)[0][0][0] == trained.predict(sentence)[0][0][0] == "T1113"
