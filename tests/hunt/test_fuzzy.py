"""TLSH and the family index: distances equal `tlsh.diff`, the index agrees with brute force, inputs are read."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import pytest
import tlsh  # type: ignore[import-not-found]
from click.testing import CliRunner

import heistwatch.cli.hunt_files  # noqa: F401  (registers `hunt files`)
from heistwatch.cli.main import cli
from heistwatch.errors import InputError
from heistwatch.hunt.fuzzy import FamilyIndex, KnownHash, load_family_index, read_known_hashes, tlsh_digest


def _variant(rng: random.Random, base: bytes, edits: int) -> bytes:
    data = bytearray(base)
    for _ in range(edits):
        at = rng.randrange(len(data))
        data[at : at + rng.randint(8, 64)] = rng.randbytes(rng.randint(8, 64))
    return bytes(data)


def _families(seed: int, families: int, members: int) -> tuple[list[KnownHash], list[tuple[str, str]]]:
    """Known samples of random families (random content over a random alphabet) and one new variant per family."""
    rng = random.Random(seed)
    known: list[KnownHash] = []
    queries: list[tuple[str, str]] = []
    for number in range(families):
        alphabet = rng.randbytes(rng.randint(16, 256))
        base = bytes(rng.choice(alphabet) for _ in range(rng.randint(1000, 4000)))
        for _ in range(members):
            digest = tlsh_digest(_variant(rng, base, rng.randint(0, 4)))
            if digest:
                known.append(KnownHash(f"family{number}", digest, rng.randbytes(32).hex()))
        query = tlsh_digest(_variant(rng, base, rng.randint(0, 4)))
        if query:
            queries.append((f"family{number}", query))
    return known, queries


@pytest.fixture(scope="module")
def corpus() -> tuple[FamilyIndex, list[KnownHash], list[tuple[str, str]]]:
    known, queries = _families(11, 150, 8)
    return FamilyIndex.from_known(known), known, queries


def test_distance_equals_tlsh_diff(corpus: tuple[FamilyIndex, list[KnownHash], list[tuple[str, str]]]) -> None:
    index, known, queries = corpus
    rng = random.Random(5)
    for _, query in rng.sample(queries, 20):
        neighbour = index.nearest_exact(query)
        assert neighbour is not None
        assert neighbour.distance == min(tlsh.diff(query, k.tlsh) for k in known)
        assert tlsh.diff(query, neighbour.tlsh) == neighbour.distance


def test_index_agrees_with_brute_force(corpus: tuple[FamilyIndex, list[KnownHash], list[tuple[str, str]]]) -> None:
    index, _, queries = corpus
    agree = close = 0
    for _, query in queries:
        exact = index.nearest_exact(query)
        found = index.nearest(query)
        assert exact is not None
        if exact.distance <= 30:
            close += 1
            assert found is not None and found.distance == exact.distance, query
        agree += found is not None and found.distance == exact.distance
    assert close >= len(queries) // 3
    assert agree >= 0.9 * len(queries)


def test_nearest_names_the_family_with_a_verdict(
    corpus: tuple[FamilyIndex, list[KnownHash], list[tuple[str, str]]],
) -> None:
    index, _, queries = corpus
    named = [index.nearest(query, threshold=30) for _, query in queries]
    right = sum(
        n is not None and n.matched and n.family == family for n, (family, _) in zip(named, queries, strict=True)
    )
    assert right >= len(queries) // 3
    far = next(n for n in named if n is not None and not n.matched)
    assert far.verdict.startswith("no known family") and f"> {far.threshold}" in far.verdict


def test_save_load_and_pickle_keep_answers(
    corpus: tuple[FamilyIndex, list[KnownHash], list[tuple[str, str]]], tmp_path: Path
) -> None:
    index, _, queries = corpus
    index.save(tmp_path / "families.npz")
    loaded, problems = load_family_index(tmp_path / "families.npz")
    copied = pickle.loads(pickle.dumps(index))
    assert problems == [] and len(loaded) == len(index)
    for _, query in queries[:30]:
        assert loaded.nearest(query) == index.nearest(query) == copied.nearest(query)


def test_malwarebazaar_csv_and_json_are_read(tmp_path: Path) -> None:
    digest = tlsh_digest(random.Random(1).randbytes(3000))
    assert digest
    sha = "ab" * 32
    csv_path = tmp_path / "full.csv"
    csv_path.write_text(
        "################\n# MalwareBazaar dump\n#\n"
        '# "first_seen_utc", "sha256_hash", "signature", "tlsh"\n'
        f'"2024-01-01 00:00:00", "{sha}", "AppleJeus", "{digest}"\n'
        f'"2024-01-01 00:00:01", "{sha}", "n/a", "{digest}"\n'
        f'"2024-01-01 00:00:02", "{sha}", "Gopuram", "T1XYZ"\n'
        f'"2024-01-01 00:00:03", "{sha}", "Gopuram", "TNULL"\n'
    )
    known, problems = read_known_hashes(csv_path)
    assert known == [KnownHash("AppleJeus", digest, sha)]
    assert [(p.line, "not a TLSH digest" in p.problem) for p in problems] == [(7, True)]
    json_path = tmp_path / "known.json"
    json_path.write_text(json.dumps([{"family": "DTrack", "tlsh": digest.lower()}, {"family": "x"}]))
    assert read_known_hashes(json_path)[0] == [KnownHash("DTrack", digest, "")]
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="tlsh"):
        read_known_hashes(tmp_path / "bad.csv")


def test_cli_reports_the_nearest_family(tmp_path: Path) -> None:
    rng = random.Random(3)
    base = bytes(rng.choice(b"abcdefghijklmnop0123456789") for _ in range(4000))
    known = tmp_path / "known.csv"
    known.write_text("family,tlsh,sha256\n" + f"TraderTraitor,{tlsh_digest(base)},{'cd' * 32}\n")
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "update.bin").write_bytes(_variant(rng, base, 2))
    args = ["--kb", str(tmp_path / "none.sqlite"), "hunt", "files", str(tmp_path / "scan"), "--families", str(known)]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    finding = json.loads(result.stdout)["findings"][0]
    assert finding["kind"] == "family" and finding["name"] == "TraderTraitor"
    assert finding["neighbour"]["matched"] and finding["neighbour"]["sha256"] == "cd" * 32
    text = CliRunner().invoke(cli, args)
    assert "update.bin: family TraderTraitor (distance" in text.output
