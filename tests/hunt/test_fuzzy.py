"""TLSH and the family index: distances equal `tlsh.diff`, the index answers as brute force does, inputs are read."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import numpy
import pytest
import tlsh  # type: ignore[import-not-found]
from click.testing import CliRunner

import heistwatch.cli.hunt_files  # noqa: F401  (registers `hunt files`)
from heistwatch.cli.main import cli
from heistwatch.errors import InputError
from heistwatch.hunt.fuzzy import (
    FamilyIndex,
    KnownHash,
    _decode,
    load_family_index,
    read_known_hashes,
    tlsh_digest,
)


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


def test_index_answers_as_brute_force(corpus: tuple[FamilyIndex, list[KnownHash], list[tuple[str, str]]]) -> None:
    index, _, queries = corpus
    close = 0
    for _, query in queries:
        exact = index.nearest_exact(query)
        assert exact is not None
        assert index.nearest(query) == exact, query
        close += exact.distance <= 30
    assert close >= len(queries) // 3


def _digest_space(seed: int, centres: int, members: int) -> list[str]:
    """Digests near random centres (the same centres for every seed): codes moved by one to three quartiles,
    lengths and ratios moved a little, and exact copies."""
    where = numpy.random.default_rng(0)
    codes, headers = where.integers(0, 4, (centres, 128)), where.integers(0, 256, (centres, 3))
    rng = numpy.random.default_rng(seed)
    digests: list[str] = []
    for centre in range(centres):
        for _ in range(members):
            moved = rng.random(128) < rng.uniform(0, 0.4)
            new = numpy.where(moved, (codes[centre] + rng.integers(1, 4, 128)) % 4, codes[centre]).reshape(32, 4)
            body = new[:, 0] | new[:, 1] << 2 | new[:, 2] << 4 | new[:, 3] << 6
            head = (headers[centre] + rng.integers(-1, 2, 3) * (rng.random(3) < 0.3)) % 256
            digests.append("T1" + (bytes(head.tolist()) + body.astype(numpy.uint8).tobytes()).hex().upper())
        digests.extend([digests[-1]] * int(rng.integers(0, 3)))
    return digests


@pytest.mark.parametrize("leaf_size", [1, 4, 64])
def test_leaves_of_any_size_answer_as_brute_force_in_digest_space(leaf_size: int) -> None:
    stored = _digest_space(7, 40, 25)
    index = FamilyIndex.from_known(
        [KnownHash(f"f{i % 40}", d) for i, d in enumerate(stored)], leaf_size=leaf_size, branching=3
    )
    assert len(index) == len(stored)
    for query in _digest_space(8, 40, 4) + stored[::37]:
        exact = index.nearest_exact(query)
        assert exact is not None and exact.distance == min(tlsh.diff(query, d) for d in stored)
        assert index.nearest(query) == exact, query


def test_pruning_holds_where_tlsh_is_not_a_metric() -> None:
    """Codes 3 apart count 6, so TLSH breaks the triangle inequality; the index prunes with L1, which keeps it."""

    def digest(length: int, body: bytes) -> str:
        return "T1" + (bytes([0, length << 4, 0]) + body).hex().upper()

    centre, member = digest(1, b"\xff" * 32), digest(1, b"\x55" * 32)  # codes all 3, all 1: a leaf of two
    decoy = digest(0, b"\x55" * 25 + b"\xaa" * 7)  # another header: its leaf's centre is the query's nearest
    index = FamilyIndex.from_known([KnownHash("far", centre), KnownHash("near", member), KnownHash("decoy", decoy)])
    query = digest(1, bytes(32))  # codes all 0: 128 from `member` (6 x 128 from `centre`), 157 from `decoy`
    found = index.nearest(query)
    assert found is not None and (found.family, found.distance) == ("near", 128) == (
        found.family,
        tlsh.diff(query, member),
    )


def test_copies_of_one_digest_stay_in_one_leaf() -> None:
    digest = tlsh_digest(random.Random(2).randbytes(2000))
    assert digest
    other = tlsh_digest(random.Random(3).randbytes(2000))
    assert other
    index = FamilyIndex.from_known(
        [KnownHash("copies", digest)] * 500 + [KnownHash("other", other)], leaf_size=8, branching=4
    )
    found = index.nearest(digest)
    assert found is not None and found.family == "copies" and found.distance == 0
    assert index.nearest(other) == index.nearest_exact(other)


def test_within_bounds_the_search(corpus: tuple[FamilyIndex, list[KnownHash], list[tuple[str, str]]]) -> None:
    index, _, queries = corpus
    far = tlsh_digest(bytes(range(256)) * 20)
    assert far
    for query in [q for _, q in queries[:40]] + [far]:
        exact = index.nearest_exact(query)
        assert exact is not None
        assert index.nearest(query, within=exact.distance) == exact
        assert index.nearest(query, within=exact.distance - 1) is None
    assert FamilyIndex.from_known([]).nearest(far) is None


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
    index, known, queries = corpus
    index.save(tmp_path / "families.npz")
    loaded, problems = load_family_index(tmp_path / "families.npz")
    copied = pickle.loads(pickle.dumps(index))
    assert problems == [] and len(loaded) == len(index)
    for _, query in queries[:30]:
        assert loaded.nearest(query) == index.nearest(query) == copied.nearest(query)
    old = tmp_path / "format1.npz"  # what the first version saved: digests in the given order, no leaves
    digests = _decode([k.tlsh for k in known])
    numpy.savez_compressed(
        old,
        version=numpy.array(1),
        params=numpy.array([32, 16, 1]),
        checksum=digests.checksum,
        lvalue=digests.lvalue,
        q1=digests.q1,
        q2=digests.q2,
        body=digests.body,
        family_of=numpy.array([int(k.family.removeprefix("family")) for k in known], dtype=numpy.int32),
        families=numpy.array([f"family{i}" for i in range(150)], dtype=str),
        sha256=numpy.zeros((len(known), 32), dtype=numpy.uint8),
    )
    rebuilt = FamilyIndex.load(old)
    for _, query in queries[:30]:
        answer, expected = rebuilt.nearest(query), index.nearest(query)
        assert answer is not None and expected is not None
        assert (answer.distance, answer.family) == (expected.distance, expected.family)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a family index"):
        FamilyIndex.load(tmp_path / "junk.npz")


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
