"""The engine on the attribution-bench folder (skipped when the folder is absent)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from heistwatch.attribute import Evidence, Model, attribute, build_model, load_calibration
from heistwatch.attribute.bench import Bench, bench_evidence, bench_profiles, load_bench

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "attribution-bench"
pytestmark = pytest.mark.skipif(not (BENCH / "groups.jsonl").exists(), reason="attribution-bench folder absent")


@pytest.fixture(scope="module")
def bench() -> Bench:
    return load_bench(BENCH)


@pytest.fixture(scope="module")
def model(bench: Bench) -> Model:
    return build_model(bench.items, bench_profiles(bench.groups, {}), load_calibration())


def test_common_phishing_chain_abstains_on_all_groups(model: Model) -> None:
    evidence = [Evidence(i, "technique", "phish") for i in ("T1566.001", "T1204.002", "T1059.001", "T1105")]
    result = attribute(evidence, model)
    assert max(result.probabilities.values()) <= 0.3
    assert result.abstained


def test_masked_instances_rank_the_gold_group_high(bench: Bench) -> None:
    hits = 0
    instances = bench.tasks.get("C", ())[:10]
    for instance in instances:
        masked = build_model(bench.items, bench_profiles(bench.groups, instance.masked), load_calibration())
        result = attribute(bench_evidence(instance), masked)
        assert math.isclose(sum(result.probabilities.values()) + result.unknown_probability, 1.0)
        hits += any(c.actor_id in instance.gold for c in result.candidates)
    assert hits >= len(instances) // 2
