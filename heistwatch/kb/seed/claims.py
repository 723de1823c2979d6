"""The curated claims pack: YAML files of who said which names are the same, overlap or belong together.

Each claim names its publisher, date and public reference. Names the claims use become objects of the
pack's own source (anchors, not statements); the claims themselves belong to their publishers.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from heistwatch.errors import ClaimsFileError
from heistwatch.model import (
    Claim,
    ImportBatch,
    KBObject,
    ObjectType,
    Relation,
    Source,
    derive_id,
    name_key,
    parse_likelihood,
)

PACK_SOURCE = "heistwatch-claims"
_REQUIRED = ("subject", "subject_type", "relation", "object", "object_type", "source", "date", "reference")
_OPTIONAL = ("likelihood", "said", "title", "note")
_SUBJECT_TYPES = {
    t.value: t for t in (ObjectType.INTRUSION_SET, ObjectType.CAMPAIGN, ObjectType.MALWARE, ObjectType.TOOL)
}
_OBJECT_TYPES = {**_SUBJECT_TYPES, "country": ObjectType.LOCATION}
_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML was built with it


@dataclass(frozen=True)
class _Field:
    value: Any
    line: int


def packaged_claims() -> list[Traversable]:
    """The claims files shipped in `heistwatch/data/claims/`, in name order."""
    folder = resources.files("heistwatch") / "data" / "claims"
    return sorted((f for f in folder.iterdir() if f.name.endswith((".yaml", ".yml"))), key=lambda f: f.name)


def publisher_key(name: str) -> str:
    """The source key of a publisher ("JPCERT/CC" -> "jpcert-cc", "MITRE ATT&CK" -> "mitre-attck")."""
    return re.sub(r"[^a-z0-9]+", "-", re.sub(r"[^\w\s/()-]", "", name.casefold())).strip("-")


def load_claims(files: Iterable[Traversable | Path], *, pack_version: str) -> ImportBatch:
    """Parse and check every claims file; the first problem raises ClaimsFileError with file and line."""
    anchors: dict[str, KBObject] = {}
    publishers: dict[str, Source] = {}
    claims: dict[str, Claim] = {}
    for file in files:
        for item in _claim_items(file):
            claim = _claim(str(file), item, anchors, publishers)
            claims[claim.id] = claim
    pack = Source(key=PACK_SOURCE, name="heistwatch claims pack", version=pack_version, url="heistwatch/data/claims")
    return ImportBatch(
        sources=(pack, *publishers.values()), objects=tuple(anchors.values()), claims=tuple(claims.values())
    )


def _claim_items(file: Traversable | Path) -> list[dict[str, _Field]]:
    """The claims of one file as {key: value-with-line}, with YAML and shape errors located."""
    path = str(file)
    try:
        root = yaml.compose(file.read_text(encoding="utf-8"), Loader=_LOADER)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ClaimsFileError(path, mark.line + 1 if mark else None, f"not valid YAML: {exc}") from exc
    if not isinstance(root, yaml.MappingNode):
        raise ClaimsFileError(path, 1, "expected a mapping with 'topic' and 'claims'")
    top = {k.value: v for k, v in root.value}
    if "claims" not in top or not isinstance(top["claims"], yaml.SequenceNode):
        raise ClaimsFileError(path, root.start_mark.line + 1, "missing 'claims:' list")
    items = []
    for node in top["claims"].value:
        if not isinstance(node, yaml.MappingNode):
            raise ClaimsFileError(path, node.start_mark.line + 1, "each claim must be a mapping")
        fields = {k.value: _Field(_value(v), v.start_mark.line + 1) for k, v in node.value}
        fields["__line__"] = _Field(None, node.start_mark.line + 1)
        items.append(fields)
    return items


def _value(node: yaml.Node) -> Any:
    value = yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    return value.isoformat() if isinstance(value, datetime.date) else value  # dates stay text


def _claim(path: str, item: dict[str, _Field], anchors: dict[str, KBObject], publishers: dict[str, Source]) -> Claim:
    line = item.pop("__line__").line
    unknown = sorted(set(item) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ClaimsFileError(path, item[unknown[0]].line, f"unknown field {unknown[0]!r}")
    for key in _REQUIRED:
        if key not in item or item[key].value in (None, ""):
            raise ClaimsFileError(path, line, f"claim is missing {key!r}")
        if not isinstance(item[key].value, str):
            raise ClaimsFileError(path, item[key].line, f"{key!r} must be text")
    get = {k: f.value for k, f in item.items()}
    subject_type = _choice(path, item["subject_type"], _SUBJECT_TYPES)
    object_type = _choice(path, item["object_type"], _OBJECT_TYPES)
    relation = _choice(path, item["relation"], {r.value: r for r in Relation})
    likelihood = None
    if get.get("likelihood") is not None:
        try:
            likelihood = parse_likelihood(str(get["likelihood"]))
        except ValueError as exc:
            raise ClaimsFileError(path, item["likelihood"].line, str(exc)) from exc
    if not _DATE.match(get["date"]):
        raise ClaimsFileError(path, item["date"].line, f"date must be YYYY-MM-DD or YYYY-MM, not {get['date']!r}")
    if not get["reference"].startswith(("https://", "http://")):
        raise ClaimsFileError(path, item["reference"].line, "reference must be a public http(s) URL")
    if object_type is ObjectType.LOCATION and not re.fullmatch(r"[A-Z]{2}", get["object"]):
        raise ClaimsFileError(path, item["object"].line, "a country must be an ISO 3166-1 alpha-2 code, e.g. KP")
    subject = _anchor(anchors, subject_type, get["subject"])
    target = _anchor(anchors, object_type, get["object"])
    publisher = publishers.setdefault(
        publisher_key(get["source"]), Source(key=publisher_key(get["source"]), name=get["source"])
    )
    return Claim(
        id=derive_id("relationship", PACK_SOURCE, publisher.key, subject.id, relation.value, target.id),
        subject_id=subject.id,
        relation=relation,
        object_id=target.id,
        source=publisher.key,
        likelihood=likelihood,
        said=_text(get.get("said")),
        date=get["date"],
        reference=get["reference"],
        title=_text(get.get("title")),
        note=_text(get.get("note")),
    )


def _choice(path: str, field: _Field, choices: dict[str, Any]) -> Any:
    if field.value not in choices:
        raise ClaimsFileError(path, field.line, f"{field.value!r} is not one of {', '.join(choices)}")
    return choices[field.value]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _anchor(anchors: dict[str, KBObject], otype: ObjectType, name: str) -> KBObject:
    """The pack's object for a name (one per type and name key)."""
    oid = derive_id(otype.value, PACK_SOURCE, name_key(name))
    if oid not in anchors:
        attrs = {"country": name} if otype is ObjectType.LOCATION else {}
        anchors[oid] = KBObject(id=oid, type=otype, name=name, source=PACK_SOURCE, attrs=attrs)
    return anchors[oid]
