"""Address clustering: multi-input with CoinJoin exclusion, scored change, deposit addresses, versions, labels."""

from __future__ import annotations

import importlib.util
import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

import heistwatch.cli.trace_cluster  # noqa: F401  (registers `trace cluster`)
from heistwatch.cli.main import cli
from heistwatch.errors import InputError, NotFoundError
from heistwatch.trace import (
    Label,
    Limits,
    Seed,
    Transfer,
    TransferStore,
    UtxoInput,
    UtxoOutput,
    UtxoTx,
    flatten_utxo,
    simulate,
    trace_case,
)
from heistwatch.trace.cluster import (
    ClusterParams,
    cluster_addresses,
    cluster_labels,
    cluster_members,
    load_clustering,
    pair_scores,
    versions,
)
from heistwatch.trace.evidence import laundering_evidence
from tests.trace.conftest import SHARED, eth


def p2wpkh(name: str) -> str:
    """A P2WPKH-shaped address (bc1q + 38 characters) unique to `name`."""
    return "bc1q" + name.encode().hex().ljust(38, "0")[:38]


def p2sh(name: str) -> str:
    """A P2SH-shaped address unique to `name`."""
    return "3" + name.encode().hex().ljust(33, "0")[:33]


def utxo(tx: str, ts: int, ins: list[tuple[str, int]], outs: list[tuple[str, int]]) -> list[Transfer]:
    """A BTC transaction's transfers; inputs as given, the fee is what they pay beyond the outputs."""
    inputs = tuple(UtxoInput(a, v) for a, v in ins)
    return flatten_utxo(UtxoTx(tx, ts, "btc", "BTC", inputs, tuple(UtxoOutput(a, v) for a, v in outs)))


def fund(tx: str, ts: int, address: str, amount: int) -> list[Transfer]:
    """A coinbase-style transaction paying `address` (its input is not an address)."""
    return utxo(tx, ts, [("<coinbase>", amount)], [(address, amount)])


def store_of(transfers: list[Transfer], labels: Sequence[Label] = ()) -> TransferStore:
    """An in-memory store of `transfers` (time ordered) and `labels`."""
    store = TransferStore()
    store.ingest(sorted(transfers, key=lambda t: t.ts))
    store.add_labels(labels)
    return store


def links(store: TransferStore, version: int, heuristic: str) -> list[tuple[str, str, str, float, bool]]:
    """A version's links of one heuristic: (a, b, detail, score, merged)."""
    sql = "SELECT a, b, detail, score, merged FROM cluster_links WHERE version = ? AND heuristic = ? ORDER BY a, b"
    return store.con.execute(sql, [version, heuristic]).fetchall()


A1, A2, A3, PAYEE, PAYEE2 = (p2wpkh(n) for n in ("a1", "a2", "a3", "payee", "payee2"))


def test_multi_input_merges_the_inputs_of_a_transaction() -> None:
    transfers = [*fund("f1", 1, A1, 50_000), *fund("f2", 2, A2, 70_000), *fund("f3", 3, A3, 30_000)]
    transfers += fund("f4", 4, PAYEE, 1) + fund("f5", 5, PAYEE2, 1)
    transfers += utxo("t1", 10, [(A1, 50_000), (A2, 70_000)], [(PAYEE, 119_000)])
    transfers += utxo("t2", 11, [(A3, 30_000)], [(PAYEE2, 29_000)])
    store = store_of(transfers)
    result = cluster_addresses(store)
    members = cluster_members(store, result.version)
    assert members[A1] == members[A2]
    assert A3 not in members and PAYEE not in members
    assert result.merged == {"multi_input": 1}
    [(a, b, detail, score, merged)] = links(store, 1, "multi_input")
    assert ({a, b}, detail, score, merged) == ({A1, A2}, "2 input addresses", 1.0, True)


def _coinjoin_world() -> list[Transfer]:
    users = [p2wpkh(f"user{n}") for n in range(5)]
    transfers = [t for n, u in enumerate(users) for t in fund(f"f{n}", n, u, 1_100_000)]
    whirlpool = [(p2wpkh(f"mix{n}"), 1_000_000) for n in range(5)]
    transfers += utxo("whirlpool", 10, [(u, 1_001_000) for u in users], whirlpool)
    fresh = [p2wpkh(f"jm{n}") for n in range(3)]
    joinmarket = [(a, 2_000_000) for a in fresh] + [(p2wpkh(f"jmchange{n}"), 70_000 + n) for n in range(3)]
    joiners = [p2wpkh(f"maker{n}") for n in range(3)]
    transfers += [t for n, u in enumerate(joiners) for t in fund(f"g{n}", 20 + n, u, 2_100_000)]
    transfers += utxo("joinmarket", 30, [(u, 2_100_000) for u in joiners], joinmarket)
    return transfers


def test_coinjoin_shaped_transactions_are_excluded_with_a_reason() -> None:
    store = store_of(_coinjoin_world())
    result = cluster_addresses(store)
    assert cluster_members(store, result.version) == {}
    reasons = dict(store.con.execute("SELECT tx, reason FROM cluster_exclusions WHERE version = 1").fetchall())
    assert reasons["whirlpool"].startswith("whirlpool: 5 inputs, 5 equal outputs")
    assert reasons["joinmarket"].startswith("joinmarket: 3 input addresses, 3 equal outputs")
    assert result.coinjoins == {"whirlpool": 1, "joinmarket": 1}
    assert not links(store, 1, "change")  # no change is guessed inside a CoinJoin either


def _change_world() -> list[Transfer]:
    """A P2WPKH wallet pays a round 0.01 BTC to a known P2SH address; its change goes to a fresh P2WPKH address."""
    spender, payee, change = p2wpkh("spender"), p2sh("shop"), p2wpkh("change")
    transfers = fund("f1", 1, spender, 5_000_000) + fund("f2", 2, payee, 10)
    transfers += utxo("pay", 10, [(spender, 5_000_000)], [(payee, 1_000_000), (change, 3_998_000)])
    # a second, weakly evidenced payment: only the one-time change heuristic points at an output
    other, known, fresh = p2wpkh("other"), p2wpkh("known"), p2wpkh("fresh")
    transfers += fund("f3", 3, other, 900_000) + fund("f4", 4, known, 10)
    transfers += utxo("weak", 11, [(other, 900_000)], [(known, 123_457), (fresh, 765_432)])
    return transfers


def test_change_links_carry_heuristics_and_scores_and_merge_only_above_the_threshold() -> None:
    store = store_of(_change_world())
    strict = cluster_addresses(store, ClusterParams(change_threshold=0.995))
    loose = cluster_addresses(store, ClusterParams(change_threshold=0.9))
    found = {b: (detail, score, merged) for _, b, detail, score, merged in links(store, strict.version, "change")}
    detail, score, merged = found[p2wpkh("change")]
    assert detail == "+one_time +round_payment +script_type"
    assert score == pytest.approx(96 / 97)  # prior odds 1, likelihood ratios 8 * 4 * 3
    assert not merged and cluster_members(store, strict.version) == {}
    assert found[p2wpkh("fresh")][0] == "+one_time"
    assert found[p2wpkh("fresh")][1] == pytest.approx(8 / 9)
    assert p2sh("shop") not in found and p2wpkh("known") not in found  # payments get no link
    members = cluster_members(store, loose.version)
    assert members[p2wpkh("change")] == members[p2wpkh("spender")]
    assert p2wpkh("fresh") not in members  # one heuristic alone (8/9) stays below 0.9
    assert loose.links == {"change": 2} and loose.merged == {"change": 1}


HOT, OTHER_HOT = "0x" + "ab" * 20, "0x" + "cd" * 20
DEPOSIT, SLOW, LEAKY = "0x" + "d1" * 20, "0x" + "d2" * 20, "0x" + "d3" * 20
U1, U2, U3, THIEF, VICTIM = ("0x" + c * 20 for c in ("01", "02", "03", "0f", "ee"))
HOUR = 3_600


def _deposit_world() -> tuple[list[Transfer], list[Label]]:
    transfers = [
        eth("d1", 100, U1, DEPOSIT, 5_000),
        eth("d2", 200, U2, DEPOSIT, 7_000),
        eth("sweep", 200 + HOUR, DEPOSIT, HOT, 12_000),
        eth("s1", 100, U1, SLOW, 5_000),
        eth("s2", 200, U3, SLOW, 5_000),
        eth("slow-sweep", 30 * 86_400, SLOW, HOT, 10_000),  # forwarded a month later: not within the window
        eth("l1", 100, U2, LEAKY, 5_000),
        eth("l2", 200, U3, LEAKY, 5_000),
        eth("leak", 300, LEAKY, HOT, 5_000),
        eth("leak2", 400, LEAKY, U1, 5_000),  # also pays someone else
    ]
    labels = [Label(HOT, "exchange-x", "exchange", "test"), Label(VICTIM, "victim-exchange", "exchange", "test")]
    return transfers, labels


def test_deposit_address_joins_its_exchange_and_its_depositors_stay_apart() -> None:
    transfers, labels = _deposit_world()
    store = store_of(transfers, labels)
    result = cluster_addresses(store)
    found = links(store, result.version, "deposit_address")
    assert [(a, b) for a, b, *_ in found] == [(HOT, DEPOSIT)]
    assert found[0][2] == f"senders=2 forwarded=1.0 max_delay={HOUR + 100}s"
    members = cluster_members(store, result.version)
    assert members[DEPOSIT] == members[HOT]
    assert {U1, U2, SLOW, LEAKY}.isdisjoint(members)


def test_propagated_label_makes_the_tracer_alert_at_an_unlabelled_deposit_address() -> None:
    transfers, labels = _deposit_world()
    transfers += [eth("theft", 150, VICTIM, THIEF, 9_000), eth("to-deposit", 160, THIEF, DEPOSIT, 9_000)]
    transfers = [t for t in transfers if t.tx != "sweep"] + [eth("sweep", 200 + HOUR, DEPOSIT, HOT, 21_000)]
    store = store_of(transfers, labels)
    before = trace_case(store, [Seed("theft")], limits=Limits(max_hops=8))
    assert [a.address for a in before.alerts] == [HOT]  # without clusters the alert comes only at the hot wallet
    result = cluster_addresses(store)
    propagated = cluster_labels(store, result.version)
    assert [(lb.address, lb.service, lb.category) for lb in propagated] == [(DEPOSIT, "exchange-x", "exchange")]
    assert propagated[0].source.startswith(f"cluster v{result.version} #")
    assert "(deposit_address)" in propagated[0].source and HOT in propagated[0].source
    store.add_labels(propagated)
    after = trace_case(store, [Seed("theft")], limits=Limits(max_hops=8))
    assert [(a.address, a.service, a.amount) for a in after.alerts] == [(DEPOSIT, "exchange-x", 9_000)]


def test_a_cluster_stops_growing_at_the_size_limit_and_is_reported() -> None:
    addresses = [p2wpkh(f"w{n}") for n in range(12)]
    transfers = [t for n, a in enumerate(addresses) for t in fund(f"f{n}", n, a, 1_000)]
    for n in range(11):  # a chain of consolidations: one owner by multi-input, twelve addresses in all
        transfers += utxo(f"c{n}", 100 + n, [(addresses[n], 1_000), (addresses[n + 1], 1_000)], [(PAYEE, 1_500)])
    store = store_of([*transfers, *fund("p", 0, PAYEE, 1)])
    result = cluster_addresses(store, ClusterParams(max_cluster=4))
    assert result.largest == 4
    # the first four stop at the limit, the next four grow and stop too, the last four stay below it
    first, second = result.superclusters
    assert [(s.size, s.refused, s.first_refused_tx) for s in (first, second)] == [(4, 1, "c3"), (4, 1, "c7")]
    members = cluster_members(store, result.version)
    assert [len({members[a] for a in addresses[k : k + 4]}) for k in (0, 4, 8)] == [1, 1, 1]
    assert len({members[a] for a in addresses}) == 3
    assert result.merged == {"multi_input": 9}
    refused = links(store, result.version, "multi_input")
    assert sum(not merged for *_, merged in refused) == 2


def test_two_versions_coexist_with_their_own_parameters() -> None:
    store = store_of(_change_world())
    first = cluster_addresses(store, ClusterParams(change_threshold=0.995))
    second = cluster_addresses(store, ClusterParams(change_threshold=0.9))
    assert versions(store) == [1, 2]
    assert load_clustering(store, 1).params["change_threshold"] == 0.995
    assert load_clustering(store, 2).params["change_threshold"] == 0.9
    assert cluster_members(store, first.version) == {} and cluster_members(store, second.version)
    with pytest.raises(NotFoundError):
        load_clustering(store, 3)
    with pytest.raises(InputError, match="change_threshold"):
        cluster_addresses(store, ClusterParams(change_threshold=0.2))


def test_cli_writes_a_new_version_each_run(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.duckdb"
    store = TransferStore(ledger)
    transfers, labels = _deposit_world()
    store.ingest(transfers)
    store.add_labels(labels)
    store.close()
    runner = CliRunner()
    got = runner.invoke(cli, ["trace", "cluster", str(ledger), "--json"])
    assert got.exit_code == 0, got.output
    data = json.loads(got.stdout)
    assert (data["version"], data["merged"], data["propagated_labels"]) == (1, {"deposit_address": 1}, 1)
    text = runner.invoke(cli, ["trace", "cluster", str(ledger), "--change-threshold", "0.99", "--apply-labels"])
    assert text.exit_code == 0 and "clustering version 2" in text.stdout
    assert "1 service labels propagated to cluster mates: stored" in text.stdout
    reopened = TransferStore(ledger)
    assert reopened.labels()[DEPOSIT].service == "exchange-x"
    reopened.close()
    bad = runner.invoke(cli, ["trace", "cluster", str(ledger), "--change-threshold", "1.5"])
    assert isinstance(bad.exception, InputError)


def _owned_world(seed: int) -> tuple[list[Transfer], dict[str, str]]:
    """Wallets that consolidate, pay each other with change to fresh addresses, and sometimes CoinJoin.

    Owners are known by construction. Half the wallets use P2SH, half P2WPKH; a fifth of payments send change
    back to an input address; a third are round amounts.
    """
    rng = random.Random(seed)
    owners: dict[str, str] = {}
    funded: dict[str, list[tuple[str, int]]] = {}
    transfers: list[Transfer] = []
    ts = 0

    def new(wallet: int) -> str:
        address = (p2sh if wallet % 2 else p2wpkh)(f"{wallet}-{len(owners)}")
        owners[address] = f"wallet-{wallet}"
        return address

    home: dict[int, str] = {}
    for w in range(30):
        funded[f"wallet-{w}"] = []
        for _ in range(3):
            ts += 1
            address, value = new(w), rng.randrange(1_000_000, 50_000_000)
            home.setdefault(w, address)
            transfers += fund(f"fund-{ts}", ts, address, value)
            funded[f"wallet-{w}"].append((address, value))
    for n in range(400):
        ts += 1
        w = rng.randrange(30)
        coins = funded[f"wallet-{w}"]
        if n % 50 == 49:  # a CoinJoin of five wallets: an equal output and the change to fresh addresses of each
            ws = rng.sample([v for v in range(30) if funded[f"wallet-{v}"]], 5)
            ins = [funded[f"wallet-{v}"].pop() for v in ws]
            unit = min(v for _, v in ins) // 2
            rest = [(new(v), value - unit - 500) for v, (_, value) in zip(ws, ins, strict=True)]
            outs = [(new(v), unit) for v in ws] + rest
            transfers += utxo(f"cj-{n}", ts, ins, outs)
            for v, out in zip(ws + ws, outs, strict=True):
                funded[f"wallet-{v}"].append(out)
            continue
        if not coins:
            continue
        ins = [coins.pop() for _ in range(min(len(coins), rng.randint(1, 3)))]
        total = sum(v for _, v in ins)
        if total < 400_000:
            coins += ins
            continue
        payee_wallet = rng.choice([v for v in range(30) if v != w])
        payee = home[payee_wallet]  # a known address of the payee, as an invoice would give
        pay = rng.randrange(100_000, total // 2)
        pay = pay - pay % 1_000_000 if rng.random() < 0.33 and pay > 1_000_000 else pay
        change = ins[0][0] if rng.random() < 0.2 else new(w)
        outs = [(payee, pay), (change, total - pay - 2_000)]
        rng.shuffle(outs)
        transfers += utxo(f"pay-{n}", ts, ins, outs)
        funded[f"wallet-{w}"].append((change, total - pay - 2_000))
        funded[f"wallet-{payee_wallet}"].append((payee, pay))
    return transfers, owners


def test_precision_and_recall_on_a_world_with_known_owners() -> None:
    transfers, owners = _owned_world(seed=3)
    store = store_of(transfers)
    result = cluster_addresses(store, ClusterParams(change_threshold=0.9))
    scores = pair_scores(cluster_members(store, result.version), owners)
    assert result.coinjoins == {"joinmarket": 8}
    assert scores.precision >= 0.95
    assert scores.recall >= 0.3
    unguarded = cluster_addresses(store, ClusterParams(coinjoin_min_equal=99, coinjoin_wasabi_equal=99))
    worse = pair_scores(cluster_members(store, unguarded.version), owners)
    assert worse.precision < scores.precision  # CoinJoins merged as if one owner wreck precision


def test_simulated_world_clusters_attacker_peel_chains_without_false_merges() -> None:
    sim = simulate("small", seed=0)
    store = store_of(sim.transfers, sim.labels)
    btc = {a: o for a, o in sim.truth.owners.items() if a.startswith("bc1")}
    known = btc | {lb.address: lb.service for lb in sim.labels if lb.address.startswith("bc1")}
    loose = cluster_addresses(store, ClusterParams(change_threshold=0.85))
    members = cluster_members(store, loose.version)
    assert pair_scores(members, known).precision == 1.0
    assert pair_scores(members, btc).recall > 0.1
    assert loose.coinjoins["joinmarket"] > 0 and "multi_input" not in loose.merged  # only honest CoinJoins


def test_laundering_evidence_from_a_traced_peel_chain_and_a_coinjoin() -> None:
    thief, mixer = p2wpkh("thief"), p2wpkh("mixer")
    chain = [p2wpkh(f"peel{n}") for n in range(5)]
    shops = [p2wpkh(f"shop{n}") for n in range(4)]
    transfers = fund("theft", 1, thief, 100_000_000) + [t for n, s in enumerate(shops) for t in fund(f"s{n}", n, s, 1)]
    transfers += utxo("hop0", 10, [(thief, 100_000_000)], [(chain[0], 99_000_000)])
    for n in range(4):
        value = 99_000_000 - n * 5_000_000
        transfers += utxo(
            f"peel{n}", 20 + n, [(chain[n], value)], [(shops[n], 4_000_000), (chain[n + 1], value - 5_000_000)]
        )
    transfers += utxo("to-mixer", 40, [(chain[4], 79_000_000)], [(mixer, 78_000_000)])
    store = store_of(transfers, [Label(mixer, "blender", "mixing_service", "test")])
    version = cluster_addresses(store).version
    case = trace_case(store, [Seed("theft")], limits=Limits(max_hops=None))
    items = {e.item_id: e for e in laundering_evidence(case.result, store=store, clustering=version)}
    assert set(items) == {"laundering:peel-chain", "laundering:mixer"}
    assert items["laundering:mixer"].reliability == 0.95 and items["laundering:mixer"].kind == "laundering"
    assert items["laundering:peel-chain"].origin == "trace:fifo"
    with pytest.raises(NotFoundError):
        laundering_evidence(case.result, store=store, clustering=9)


@pytest.mark.skipif(importlib.util.find_spec("heistwatch.trace.btc_blocks") is None, reason="no block parser yet")
@pytest.mark.skipif(not (SHARED / "btc-blocks").is_dir(), reason="shared block samples absent")
def test_change_evidence_on_real_blocks_matches_an_independent_reading() -> None:
    """Each change link's one-time and round-payment evidence, recomputed from the parsed transactions."""
    from heistwatch.trace.btc_blocks import BlockReport, MemoryOutpoints, load_btc_blocks, read_blocks

    files = sorted((SHARED / "btc-blocks").glob("block_*.bin"))
    store = TransferStore()
    load_btc_blocks(store, files)
    result = cluster_addresses(store)
    rows = _all_links(store, result.version)
    found = {(tx, b): detail for _, b, heuristic, detail, tx in rows if heuristic == "change"}
    assert found and result.merged.get("multi_input", 0) > 0
    seen: set[str] = set()
    checked = 0
    for tx in read_blocks(files, MemoryOutpoints(), BlockReport()):
        outs = [o.address for o in tx.outputs]
        fresh = [a not in seen and outs.index(a) == k for k, a in enumerate(outs)]
        not_round = [o.amount % 100_000 != 0 for o in tx.outputs]
        seen |= {i.address for i in tx.inputs} | set(outs)
        for k, address in enumerate(outs):
            detail = found.get((tx.tx, address))
            if detail is None:
                continue
            checked += 1
            assert ("+one_time" in detail) == (fresh[k] and sum(fresh) == 1)
            assert ("-one_time" in detail) == (not fresh[k] and sum(fresh) == 1)
            assert ("+round_payment" in detail) == (not_round[k] and sum(not_round) == 1)
    assert checked == result.links["change"]
    assert not any(a.startswith(("<", "tx:")) or b.startswith(("<", "tx:")) for a, b, *_ in rows)


def _all_links(store: TransferStore, version: int) -> list[tuple[str, str, str, str, str]]:
    sql = "SELECT a, b, heuristic, detail, tx FROM cluster_links WHERE version = ?"
    return store.con.execute(sql, [version]).fetchall()
