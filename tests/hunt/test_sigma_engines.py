"""The distinct-value engine finds exactly what the straightforward SQL engine finds, on random rules and records.

Rules are built from the shared SigmaHQ proxy, DNS and process-creation rules with random conditions over their
selections and random modifiers; records hold the rules' own strings in random case with random surroundings, missing
fields, repeated and one-off values, non-ASCII text, line breaks and control characters.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from heistwatch.hunt import sigma_eval, sigma_sql
from heistwatch.hunt.sigma import SigmaReport, hunt_sigma, load_rules
from heistwatch.hunt.sigma_sql import Field, Not, Or, fold, tree_fields

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "rules" / "sigma" / "sigmahq"
CATEGORIES = {"proxy": "proxy", "dns": "dns", "dns_query": "dns", "process_creation": "process_creation"}
MODIFIERS = ("", "|contains", "|startswith", "|endswith", "|contains|all", "|contains|cased", "|endswith|cased")
SURROUNDINGS = ("", "", "x", "/", " ", "é", "\n", "\t", "C:\\Windows\\", "https://a.example/", "?a=1", ".exe")
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/rules/sigma is absent")


def shared_rules() -> dict[str, list[dict[str, Any]]]:
    """The shared rules' YAML by the kind of log they run on."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(SHARED.rglob("*.yml")):
        if path.name == "LICENSE.md":
            continue
        rule = yaml.safe_load(path.read_text(encoding="utf-8"))
        kind = CATEGORIES.get(str(rule.get("logsource", {}).get("category")))
        if kind and "detection" in rule:
            by_kind.setdefault(kind, []).append(rule)
    return by_kind


def strings(value: Any) -> list[tuple[str, str]]:
    """(field, string) for every string a detection holds."""
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            name = str(key).split("|")[0]
            items = inner if isinstance(inner, list) else [inner]
            found += [(name, item) for item in items if isinstance(item, str)]
            found += [pair for item in items if isinstance(item, dict | list) for pair in strings(item)]
    elif isinstance(value, list):
        found += [pair for item in value for pair in strings(item)]
    return found


def random_condition(names: list[str], rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth >= 2 or roll < 0.3:
        return rng.choice(names)
    if roll < 0.45:
        return "not " + random_condition(names, rng, depth + 1)
    if roll < 0.55:
        return rng.choice(("1 of them", "all of them"))
    joiner = rng.choice((" and ", " or "))
    return "(" + random_condition(names, rng, depth + 1) + joiner + random_condition(names, rng, depth + 1) + ")"


def random_selection(selection: Any, rng: random.Random) -> Any:
    """The selection with random modifiers on some of its fields."""
    if isinstance(selection, list):
        return [random_selection(item, rng) for item in selection]
    if not isinstance(selection, dict):
        return selection
    out = {}
    for key, value in selection.items():
        name, *modifiers = str(key).split("|")
        if rng.random() < 0.3 and not set(modifiers) & {"re", "cidr", "base64", "base64offset", "windash", "fieldref"}:
            key = name + rng.choice(MODIFIERS)
        out[key] = value
    return out


def write_rules(folder: Path, rng: random.Random, per_kind: int) -> None:
    for kind, rules in shared_rules().items():
        for n in range(per_kind):
            base = rng.choice(rules)
            selections = {k: v for k, v in base["detection"].items() if k != "condition"}
            detection = {k: random_selection(v, rng) for k, v in selections.items()}
            detection["condition"] = random_condition(sorted(selections), rng)
            rule = {
                "title": f"{kind} random {n}",
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "author": "test",
                "level": "low",
                "logsource": base["logsource"],
                "detection": detection,
            }
            (folder / f"{kind}-{n}.yml").write_text(yaml.safe_dump(rule, sort_keys=False))
    reference = {
        "title": "host as user agent",
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "logsource": {"category": "proxy"},
        "detection": {"sel": {"c-useragent|fieldref": "cs-host"}, "other": {"cs-method": "POST"}, "condition": "sel"},
    }
    (folder / "reference.yml").write_text(yaml.safe_dump(reference, sort_keys=False))


def random_value(texts: list[str], rng: random.Random) -> str:
    text = rng.choice(texts).replace("*", "x" * rng.randrange(3)).replace("?", rng.choice("aZ."))
    text = rng.choice((text, text.upper(), text.lower(), text.swapcase()))
    return rng.choice(SURROUNDINGS) + text + rng.choice(SURROUNDINGS)


def write_logs(folder: Path, rng: random.Random, records: int) -> list[Path]:
    paths = []
    for kind, rules in shared_rules().items():
        by_field: dict[str, list[str]] = {}
        for rule in rules:
            for name, text in strings(rule["detection"]):
                by_field.setdefault(name, []).append(text)
        by_field.setdefault("c-uri", []).append("https://b.example/a")
        pools = {name: [random_value(texts, rng) for _ in range(30)] for name, texts in by_field.items()}
        path = folder / f"{kind}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for _ in range(records):
                record = {}
                for name, texts in by_field.items():
                    if rng.random() < 0.15:
                        continue  # a missing field
                    fresh = rng.random() < 0.3
                    record[name] = random_value(texts, rng) if fresh else rng.choice(pools[name])
                if kind == "proxy" and rng.random() < 0.1:
                    record["c-useragent"] = record.get("cs-host", "")
                out.write(json.dumps(record, ensure_ascii=rng.random() < 0.5) + "\n")
        paths.append(path)
    return paths


def found(report: SigmaReport) -> list[tuple[str, str, int, str]]:
    return sorted((m.rule.id, m.file, m.line, json.dumps(m.record, sort_keys=True)) for m in report.matches)


@needs_shared
@pytest.mark.parametrize("scan_from", [0, 10**9], ids=["hyperscan", "duckdb"])
@pytest.mark.parametrize("seed", [1, 2])
def test_distinct_engine_matches_sql_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scan_from: int, seed: int
) -> None:
    monkeypatch.setattr(sigma_eval, "SCAN_FROM_VALUES", scan_from)
    rng = random.Random(seed)
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    write_rules(rules_dir, rng, per_kind=40)
    logs = write_logs(tmp_path, rng, records=1500)
    rules = load_rules([rules_dir])
    assert not rules.problems
    fast = hunt_sigma(rules, logs, engine="distinct")
    reference = hunt_sigma(rules, logs, engine="sql")
    assert len(fast.applied) >= 100
    assert [s.rule.id for s in fast.skipped] == [s.rule.id for s in reference.skipped]
    assert fast.lines == reference.lines == 3 * 1500
    assert found(fast) == found(reference)
    assert len({m.rule.id for m in reference.matches}) >= 30  # many rules match, many do not
    assert any(m.rule.title == "host as user agent" for m in reference.matches)


def test_fold_groups_each_fields_share_of_a_condition() -> None:
    a = sigma_sql.Test("a1", frozenset({"a"}))
    b = sigma_sql.Test("b1", frozenset({"b"}))
    a2 = sigma_sql.Test("a2", frozenset({"a"}))
    both = sigma_sql.Test("ab", frozenset({"a", "b"}))
    tree = Or((a, Not(b), a2, both))
    folded = fold(tree)
    assert isinstance(folded, Or)
    assert Field("a", Or((a, a2))) in folded.args and Field("b", Not(b)) in folded.args and both in folded.args
    assert tree_fields(folded) == frozenset({"a", "b"}) and len(folded.args) == 3
    assert fold(Not(Or((a, a2)))) == Field("a", Not(Or((a, a2))))
