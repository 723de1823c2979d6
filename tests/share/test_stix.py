"""STIX 2.1: exports validate, own exports round-trip, bad bundles are refused whole."""

from __future__ import annotations

import datetime
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stix2validator import ValidationOptions, validate_parsed_json

from heistwatch.errors import StixImportError
from heistwatch.kb import KnowledgeStore, SQLiteStore
from heistwatch.model import TLP, Claim, ImportBatch, KBObject, Likelihood, ObjectType, Relation, Source, derive_id
from heistwatch.share.stix import bundle_to_batch, export_bundle, import_bundle
from tests.conftest import sample_batch

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def _facts(store: KnowledgeStore) -> tuple[object, ...]:
    return (store.sources(), store.objects(), store.claims(), store.relationships(), store.indicators())


def _validate(bundle: dict[str, object]) -> list[str]:
    result = validate_parsed_json(bundle, ValidationOptions(version="2.1"))
    return [str(e) for e in result.errors]


def test_export_validates_and_round_trips() -> None:
    store = SQLiteStore(":memory:")
    store.import_batch(sample_batch())
    bundle = export_bundle(store, now=NOW)
    assert _validate(bundle) == []
    claim = next(
        o
        for o in bundle["objects"]
        if o.get("relationship_type") == "attributed-to" and o.get("x_heistwatch_claim", {}).get("said")
    )
    assert claim["confidence"] == 70 and claim["x_heistwatch_claim"]["likelihood"] == "likely"
    copy = SQLiteStore(":memory:")
    batch, skipped = bundle_to_batch(json.loads(json.dumps(bundle)), "bundle.json")
    copy.import_batch(batch)
    assert _facts(copy) == _facts(store)
    assert skipped == {"marking-definition": 4, "identity": 2}
    assert export_bundle(copy, now=NOW) == bundle


idents = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x24F, exclude_characters="\x7f"), min_size=1, max_size=20
).filter(lambda s: s.strip() == s and s.strip())


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(idents, min_size=2, max_size=6, unique=True),
    confidence=st.none() | st.integers(0, 100),
    tlp=st.sampled_from(list(TLP)),
    likelihood=st.none() | st.sampled_from(list(Likelihood)),
    relation=st.sampled_from(list(Relation)),
    attrs=st.dictionaries(st.sampled_from(["country", "sectors", "since"]), idents | st.lists(idents)),
)
def test_round_trip_property(
    names: list[str],
    confidence: int | None,
    tlp: TLP,
    likelihood: Likelihood | None,
    relation: Relation,
    attrs: dict[str, object],
) -> None:
    source = Source(key="src", name="Source", version="1")
    objects = tuple(
        KBObject(
            id=derive_id("intrusion-set", n),
            type=ObjectType.INTRUSION_SET,
            name=n,
            source="src",
            aliases=tuple(a for a in names if a != n)[:2],
            confidence=confidence,
            tlp=tlp,
            attrs=attrs,
        )
        for n in names
    )
    claim = Claim(
        id=derive_id("relationship", *names),
        subject_id=objects[0].id,
        relation=relation,
        object_id=objects[1].id,
        source="src",
        likelihood=likelihood,
        said=names[0],
        date="2020-01",
        reference="https://example.org/x",
        title=names[1],
        note=names[0],
        tlp=tlp,
    )
    store = SQLiteStore(":memory:")
    store.import_batch(ImportBatch(sources=(source,), objects=objects, claims=(claim,)))
    copy = SQLiteStore(":memory:")
    copy.import_batch(bundle_to_batch(export_bundle(store, now=NOW), "b.json")[0])
    assert _facts(copy) == _facts(store)


def test_knowledge_base_sample_validates(kb_store: SQLiteStore) -> None:
    """A seeded sample of every kind of record the built knowledge base holds (the full export: see README)."""
    rng = random.Random(7)
    ids = set()
    for otype in ObjectType:
        objects = kb_store.objects(type=otype)
        ids |= {o.id for o in rng.sample(objects, min(150, len(objects)))}
    bundle = export_bundle(kb_store, ids=ids)
    types = {o["type"] for o in bundle["objects"]}
    assert {"intrusion-set", "malware", "tool", "attack-pattern", "campaign", "relationship", "identity"} <= types
    assert _validate(bundle) == []


def test_not_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(StixImportError, match=r"broken\.json"):
        import_bundle(SQLiteStore(":memory:"), path)


def test_bad_object_names_its_id_and_nothing_is_stored(tmp_path: Path) -> None:
    store = SQLiteStore(":memory:")
    store.import_batch(sample_batch())
    before = _facts(store)
    bundle = export_bundle(store, now=NOW)
    bad = next(o for o in bundle["objects"] if o["type"] == "intrusion-set")
    del bad["name"]
    bundle["objects"].append(
        {
            "type": "malware",
            "spec_version": "2.1",
            "id": derive_id("malware", "new"),
            "created": "2020-01-01T00:00:00.000Z",
            "modified": "2020-01-01T00:00:00.000Z",
            "name": "NewFamily",
            "is_family": True,
        }
    )
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    with pytest.raises(StixImportError) as caught:
        import_bundle(store, path)
    assert caught.value.object_id == bad["id"]
    assert _facts(store) == before


def test_dangling_reference_is_refused_whole(tmp_path: Path) -> None:
    store = SQLiteStore(":memory:")
    rel = {
        "type": "relationship",
        "spec_version": "2.1",
        "id": derive_id("relationship", "x"),
        "created": "2020-01-01T00:00:00.000Z",
        "modified": "2020-01-01T00:00:00.000Z",
        "relationship_type": "uses",
        "source_ref": derive_id("intrusion-set", "a"),
        "target_ref": derive_id("malware", "b"),
    }
    path = tmp_path / "dangling.json"
    path.write_text(json.dumps({"type": "bundle", "id": derive_id("bundle", "x"), "objects": [rel]}))
    with pytest.raises(StixImportError, match="unknown object"):
        import_bundle(store, path)
    assert store.relationships() == []
