"""A seeded laundering simulator with ground truth by construction (see shared/data/tracing/SIMULATOR.md).

Thefts from exchange hot wallets (ETH, ERC-20, BTC) are swapped to ETH on a DEX, fanned out 1→n→m, left
dormant, then cashed out to exchange deposit addresses and OTC desks, directly, through Tornado-style pools,
over a bridge to BTC, or to P2P traders; BTC loot runs down peel chains. Honest heavy-tailed traffic (payments,
deposits, batch withdrawals, sweeps, swaps, CoinJoins, honest mixer and bridge use) is added at >= 100x the
laundering transfers. The truth ledger follows stolen value pro rata inside attacker wallets.

By default the bridge pays out the exact converted value 30 minutes after each deposit and nothing else comes out
of it, which a linker finds too easily; `Size.noisy_bridges` adds fees, varying delays, payouts to honest bridge
users and honest round trips of a size close to the loot's, from a random stream of their own (every other
transfer stays the same).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from heistwatch.errors import InputError
from heistwatch.trace.bridges import Price
from heistwatch.trace.ledger import FEE_SINK, Transfer, UtxoInput, UtxoOutput, UtxoTx, flatten_utxo
from heistwatch.trace.store import Label
from heistwatch.trace.taint import Seed

Asset = tuple[str, str]
ETH, USDT, DAI, STETH, BTC = ("eth", "ETH"), ("eth", "USDT"), ("eth", "DAI"), ("eth", "stETH"), ("btc", "BTC")
DECIMALS = {ETH: 18, USDT: 6, DAI: 18, STETH: 18, BTC: 8}
SCALE = {asset: int(10**d) for asset, d in DECIMALS.items()}
USD_PRICE = {ETH: 2000, USDT: 1, DAI: 1, STETH: 2000, BTC: 40000}
T0, DAY = 1_700_000_000, 86_400
TORNADO = (100, 10, 1)  # pool sizes in ETH


@dataclass(frozen=True)
class Size:
    """How big a simulated world is."""

    thefts: int
    fan1: tuple[int, int]
    fan2: tuple[int, int]
    peel_steps: tuple[int, int]
    deposits: int
    users: int
    min_transfers: int
    honest_ratio: int = 100
    noisy_bridges: bool = False


SIZES = {
    "small": Size(3, (4, 8), (3, 5), (6, 12), 30, 3_000, 20_000),
    "full": Size(5, (20, 42), (3, 8), (20, 80), 2_000, 400_000, 5_000_000),
}


@dataclass
class Truth:
    """Ground truth: what was stolen, where stolen value ended, pattern labels per transaction, wallet owners.

    `hidden` endpoints lie past a mixer or a bridge; `bridged` are those reached across a bridge and no mixer.
    """

    stolen: dict[Asset, int] = field(default_factory=dict)
    endpoints: dict[tuple[str, Asset], int] = field(default_factory=dict)
    endpoint_ts: dict[tuple[str, Asset], int] = field(default_factory=dict)
    hidden: set[tuple[str, Asset]] = field(default_factory=set)
    bridged: set[tuple[str, Asset]] = field(default_factory=set)
    patterns: dict[str, set[str]] = field(default_factory=dict)
    hidden_txs: set[str] = field(default_factory=set)
    owners: dict[str, str] = field(default_factory=dict)
    laundering_transfers: int = 0

    def usd_cents(self, asset: Asset, amount: int) -> int:
        """The value of `amount` base units in US cents at the simulator's fixed prices."""
        return amount * USD_PRICE[asset] * 100 // SCALE[asset]


@dataclass(frozen=True)
class Simulation:
    """The simulated ledger, its labels, the theft transfers to seed a trace with, and the truth."""

    transfers: list[Transfer]
    labels: list[Label]
    seeds: list[Seed]
    truth: Truth


def _units(asset: Asset, usd: float) -> int:
    return int(usd * 100) * SCALE[asset] // (USD_PRICE[asset] * 100)


class _World:
    """Simulation state: services, wallets, the truth ledger of attacker wallets, the transfers so far."""

    def __init__(self, size: Size, seed: int, start: int) -> None:
        self.start = start
        self.size, self.rng, self.np = size, random.Random(seed), np.random.default_rng(seed)
        self.noise = random.Random(f"bridges-{seed}")  # its own stream: noise leaves every other draw as it was
        self.behind = ""  # "bridge" or "mixer" while moving loot that crossed one (bookkeeping for the truth)
        self.decoys: list[tuple[int, int]] = []  # (ts, ETH amount) of loot bridged, for honest look-alikes
        self.out: list[Transfer] = []
        self.labels: dict[str, Label] = {}
        self.truth = Truth()
        self.seeds: list[Seed] = []
        self.ledger: dict[tuple[str, Asset], list[int]] = {}
        self.counter = 0
        self.exchanges = [f"exchange-{n:02d}" for n in range(12)]
        self.hot = {(c, x): self._service(c, x, "exchange") for c in ("eth", "btc") for x in self.exchanges}
        self.deposits = {
            (c, x): [self._service(c, x, "exchange") for _ in range(size.deposits)]
            for c in ("eth", "btc")
            for x in self.exchanges
        }
        self.otc = {c: [self._service(c, f"otc-{n}", "otc") for n in range(3)] for c in ("eth", "btc")}
        self.pools = {d: self._service("eth", f"tornado-{d}eth", "mixing_service") for d in TORNADO}
        self.mixer = [self._service("btc", "mixer-blender", "mixing_service") for _ in range(20)]
        self.bridge = {c: self._service(c, "bridge-btcb", "bridge") for c in ("eth", "btc")}
        self.dex = self._service("eth", "dex-router", "defi_dex")
        self.users = {c: [self._address(c) for _ in range(size.users)] for c in ("eth", "btc")}

    def _address(self, chain: str) -> str:
        self.counter += 1
        n = (self.counter * 0x9E3779B97F4A7C15F39CC0605CEDC835) % (1 << 160)
        return f"0x{n:040x}" if chain == "eth" else f"bc1q{n:040x}"

    def _service(self, chain: str, name: str, category: str) -> str:
        address = self._address(chain)
        self.labels[address] = Label(address, name, category, "simulator")
        return address

    def _tx(self) -> str:
        self.counter += 1
        return f"0x{(self.counter * 0x9E3779B97F4A7C15) % (1 << 256):064x}"

    def fresh(self, chain: str, owner: str) -> str:
        """A new attacker wallet."""
        address = self._address(chain)
        self.truth.owners[address] = owner
        return address

    def pattern(self, name: str, tx: str, hidden: bool) -> None:
        """Label a laundering transaction with a pattern."""
        self.truth.patterns.setdefault(name, set()).add(tx)
        if hidden:
            self.truth.hidden_txs.add(tx)

    # --- moving value, with the truth ledger -------------------------------------------------------------

    def balance(self, address: str, asset: Asset) -> int:
        """An attacker wallet's balance in the truth ledger."""
        return self.ledger.get((address, asset), [0, 0])[0]

    def _debit(self, address: str, asset: Asset, amount: int) -> int:
        """Take `amount` from an attacker wallet; return its stolen part (pro rata)."""
        entry = self.ledger.setdefault((address, asset), [0, 0])
        stolen = entry[1] if amount >= entry[0] else entry[1] * amount // entry[0]
        entry[0], entry[1] = max(entry[0] - amount, 0), entry[1] - stolen
        return stolen

    def _credit(self, address: str, asset: Asset, amount: int, stolen: int, ts: int, hidden: bool) -> None:
        if address in self.truth.owners:
            entry = self.ledger.setdefault((address, asset), [0, 0])
            entry[0] += amount
            entry[1] += stolen
        elif stolen > 0 and address != FEE_SINK:
            key = (address, asset)
            self.truth.endpoints[key] = self.truth.endpoints.get(key, 0) + stolen
            self.truth.endpoint_ts.setdefault(key, ts)
            if hidden:
                self.truth.hidden.add(key)
            if self.behind == "bridge":
                self.truth.bridged.add(key)

    def send(self, ts: int, asset: Asset, src: str, dst: str, amount: int, hidden: bool, stolen: int = -1) -> str:
        """One account-style laundering transfer in its own transaction; returns the transaction id."""
        tx = self._tx()
        stolen = self._debit(src, asset, amount) if stolen < 0 else stolen
        self.out.append(Transfer(tx, ts, asset[0], asset[1], src, dst, amount))
        self._credit(dst, asset, amount, stolen, ts, hidden)
        return tx

    def utxo(self, ts: int, src: str, outputs: list[tuple[str, int]], hidden: bool, stolen: int = -1) -> str:
        """A BTC transaction spending `src`'s whole balance (or a service's coins) to `outputs` plus a fee."""
        fee = self.rng.randrange(1_000, 5_000)
        total = sum(a for _, a in outputs) + fee
        if stolen < 0:
            total = max(total, self.balance(src, BTC))
            stolen = self._debit(src, BTC, total)
        tx = UtxoTx(self._tx(), ts, "btc", "BTC", (UtxoInput(src, total),), tuple(UtxoOutput(d, a) for d, a in outputs))
        self.out += flatten_utxo(tx)
        for dst, amount in [*outputs, (FEE_SINK, tx.fee)]:
            self._credit(dst, BTC, amount, stolen * amount // total, ts, hidden)
        return tx.tx

    # --- laundering ----------------------------------------------------------------------------------------

    def theft(self, n: int) -> None:
        """One theft and its laundering."""
        asset = [USDT, BTC, ETH, STETH, DAI][n % 5]
        usd = float(self.np.lognormal(np.log(20e6), 0.6))
        victim = self.exchanges[n * 5 % len(self.exchanges)]
        ts = self.start + self.rng.randrange(0, 30 * DAY)
        owner = f"heist-{n}"
        a0 = self.fresh(asset[0], owner)
        amount = _units(asset, usd)
        self.truth.stolen[asset] = self.truth.stolen.get(asset, 0) + amount
        hot = self.hot[(asset[0], victim)]
        if asset == BTC:
            tx = self.utxo(ts, hot, [(a0, amount), (hot, _units(BTC, 1e6))], False, stolen=0)
        else:
            tx = self.send(ts, asset, hot, a0, amount, False, stolen=0)
        self.ledger[(a0, asset)] = [amount, amount]
        self.seeds.append(Seed(tx, a0))
        self.pattern("theft", tx, False)
        if asset == BTC:
            self.btc_split(ts + 600, a0, owner)
        else:
            self.eth_layers(ts + 600, asset, a0, usd, owner)

    def eth_layers(self, ts: int, asset: Asset, a0: str, usd: float, owner: str) -> None:
        """Swap to ETH, fan out 1→n→m, fund gas, then cash out each leaf after dormancy."""
        if asset != ETH:
            tx = self._tx()
            amount, eth = self.balance(a0, asset), _units(ETH, usd * 0.997)
            self._debit(a0, asset, amount)
            self.out += [Transfer(tx, ts, "eth", asset[1], a0, self.dex, amount, 0)]
            self.out += [Transfer(tx, ts, "eth", "ETH", self.dex, a0, eth, 1)]
            self._credit(a0, ETH, eth, eth, ts, False)
            self.pattern("swap", tx, False)
        leaves = []
        for layer1 in self.fan(ts + 3600, a0, self.size.fan1, owner):
            leaves += self.fan(ts + 7200, layer1, self.size.fan2, owner)
        funder = self.fresh("eth", owner)
        self.send(ts, ETH, self.hot[("eth", self.rng.choice(self.exchanges))], funder, _units(ETH, 2000 * 5), False, 0)
        for leaf in leaves:
            self.send(ts + 9000, ETH, funder, leaf, _units(ETH, 20), False)
            self.cash_out_eth(ts + self.rng.randrange(7, 60) * DAY, leaf, owner)

    def fan(self, ts: int, src: str, width: tuple[int, int], owner: str) -> list[str]:
        """Split `src`'s ETH over fresh wallets, one transaction each."""
        n = self.rng.randint(*width)
        weights = self.np.dirichlet(np.ones(n) * 2)
        total = self.balance(src, ETH)
        out = [self.fresh("eth", owner) for _ in range(n)]
        for k, (dst, w) in enumerate(zip(out, weights, strict=True)):
            amount = total - sum(int(total * x) for x in weights[:k]) if k == n - 1 else int(total * w)
            self.pattern("fan_out", self.send(ts + k * 60, ETH, src, dst, amount, False), False)
        return out

    def cash_out_eth(self, ts: int, leaf: str, owner: str) -> None:
        """Cash a leaf out: exchange (via 0-2 hops), OTC, Tornado pools, the bridge to BTC, or a P2P trader."""
        route = self.rng.choices(["exchange", "otc", "tornado", "bridge", "p2p"], [45, 15, 20, 15, 5])[0]
        if route == "exchange":
            for _ in range(self.rng.randint(0, 2)):
                nxt = self.fresh("eth", owner)
                self.send(ts, ETH, leaf, nxt, self.balance(leaf, ETH), False)
                leaf, ts = nxt, ts + self.rng.randrange(600, 7200)
            self.deposit(ts, ETH, leaf, False)
        elif route == "otc":
            self.send(ts, ETH, leaf, self.rng.choice(self.otc["eth"]), self.balance(leaf, ETH), False)
        elif route == "tornado":
            self.tornado(ts, leaf, owner)
        elif route == "bridge":
            self.bridged(ts, leaf, owner)
        else:
            self.send(ts, ETH, leaf, self.rng.choice(self.users["eth"]), self.balance(leaf, ETH), False)

    def deposit(self, ts: int, asset: Asset, src: str, hidden: bool) -> None:
        """Deposit everything to 1-3 deposit addresses of one exchange."""
        exchange = self.rng.choice(self.exchanges)
        n = 1 if asset == BTC else self.rng.randint(1, 3)
        for k, dst in enumerate(self.rng.sample(self.deposits[(asset[0], exchange)], n)):
            bal = self.balance(src, asset)
            amount = bal if k == n - 1 else bal // self.rng.randint(2, 4)
            if asset == BTC:
                tx = self.utxo(ts, src, [(dst, max(amount - 5_000, 0))], hidden)
            else:
                tx = self.send(ts + k * 900, asset, src, dst, amount, hidden)
            self.pattern("cash_out", tx, hidden)

    def tornado(self, ts: int, leaf: str, owner: str) -> None:
        """Deposit pool-sized amounts; later withdraw each to a fresh wallet that deposits at an exchange."""
        for size in TORNADO:
            unit = _units(ETH, size * 2000)
            while self.balance(leaf, ETH) >= unit:
                self.pattern("mixer", self.send(ts, ETH, leaf, self.pools[size], unit, False), False)
                later = ts + self.rng.randrange(1, 20) * DAY
                out = self.fresh("eth", owner)
                self.send(later, ETH, self.pools[size], out, unit, True, stolen=unit)
                self.ledger[(out, ETH)] = [unit, unit]
                self.deposit(later + 3600, ETH, out, True)
                ts += self.rng.randrange(300, 3600)
        if self.balance(leaf, ETH):
            self.deposit(ts, ETH, leaf, False)

    def bridged(self, ts: int, leaf: str, owner: str) -> None:
        """Bridge ETH to BTC; the BTC side runs a peel chain nobody can follow without a bridge decoder."""
        amount = self.balance(leaf, ETH)
        self.pattern("bridge", self.send(ts, ETH, leaf, self.bridge["eth"], amount, False), False)
        btc, delay = _converted(amount, ETH, BTC), 1800
        if self.size.noisy_bridges:
            btc, delay = btc * (10_000 - self.noise.randrange(5, 80)) // 10_000, self.noise.randrange(120, 3300)
            self.decoys.append((ts, amount))
        b0 = self.fresh("btc", owner)
        self.behind = "bridge"
        self.utxo(ts + delay, self.bridge["btc"], [(b0, btc)], True, stolen=btc)
        self.ledger[(b0, BTC)] = [btc, btc]
        self.peel_chain(ts + 3600, b0, owner, True)
        self.behind = ""

    def btc_split(self, ts: int, a0: str, owner: str) -> None:
        """Split the BTC loot over 3-5 wallets, then run a peel chain from each after dormancy."""
        n = self.rng.randint(3, 5)
        total = self.balance(a0, BTC) - 10_000
        parts = [self.fresh("btc", owner) for _ in range(n)]
        tx = self.utxo(ts, a0, [(p, total // n) for p in parts], False)
        self.pattern("fan_out", tx, False)
        for part in parts:
            self.peel_chain(ts + self.rng.randrange(1, 20) * DAY, part, owner, False)

    def peel_chain(self, ts: int, addr: str, owner: str, hidden: bool) -> None:
        """Peel 1-10% per hop to exchanges, OTC, a custodial mixer or P2P traders; change to a fresh address."""
        for _ in range(self.rng.randint(*self.size.peel_steps)):
            bal = self.balance(addr, BTC)
            if bal < 1_000_000:
                break
            peel = bal * self.rng.randint(1, 10) // 100
            where = self.rng.choices(["exchange", "otc", "mixer", "p2p"], [60, 15, 15, 10])[0]
            if where == "exchange":
                dst = self.rng.choice(self.deposits[("btc", self.rng.choice(self.exchanges))])
            elif where == "otc":
                dst = self.rng.choice(self.otc["btc"])
            elif where == "mixer":
                dst, peel = self.rng.choice(self.mixer), _below_round(peel)
            else:
                dst = self.rng.choice(self.users["btc"])
            change = self.fresh("btc", owner)
            tx = self.utxo(ts, addr, [(dst, peel), (change, bal - peel - 5_000)], hidden)
            self.pattern("peel_chain", tx, hidden)
            if where == "mixer":
                self.pattern("mixer", tx, hidden)
                self.mixer_out(ts + self.rng.randrange(1, 5) * DAY, peel * 97 // 100, owner)
            addr, ts = change, ts + self.rng.randrange(600, 3600)
        self.deposit(ts, BTC, addr, hidden)

    def mixer_out(self, ts: int, amount: int, owner: str) -> None:
        """A custodial mixer pays the launderer from other coins; the fresh wallet deposits at an exchange."""
        out = self.fresh("btc", owner)
        behind, self.behind = self.behind, "mixer"
        self.utxo(ts, self.rng.choice(self.mixer), [(out, amount)], True, stolen=amount)
        self.ledger[(out, BTC)] = [amount, amount]
        self.deposit(ts + 3600, BTC, out, True)
        self.behind = behind

    # --- honest bridge traffic (Size.noisy_bridges) ----------------------------------------------------------

    def bridge_payouts(self, first: int) -> None:
        """Honest look-alikes of the bridged loot, then a payout on the other chain for every honest bridge deposit."""
        bridges = set(self.bridge.values())
        deposits = [t for t in self.out[first:] if t.dst in bridges]
        deposits += [self._look_alike(ts, amount) for ts, amount in self.decoys if self.noise.random() < 0.5]
        for deposit in deposits:
            self._bridge_payout(deposit)

    def _look_alike(self, ts: int, amount: int) -> Transfer:
        """An honest user bridging within 1.5 % of a loot deposit's value, within 45 minutes of it."""
        size = amount * (10_000 + self.noise.randrange(-150, 150)) // 10_000
        when, user = ts + self.noise.randrange(-2700, 2700), self.noise.choice(self.users["eth"])
        deposit = Transfer(self._tx(), when, "eth", "ETH", user, self.bridge["eth"], size)
        self.out.append(deposit)
        return deposit

    def _bridge_payout(self, deposit: Transfer) -> None:
        """The bridge pays a deposit's value, less a fee, to an honest user on the other chain minutes later."""
        other = BTC if deposit.chain == "eth" else ETH
        value = _converted(deposit.amount, (deposit.chain, deposit.asset), other)
        value = max(value * (10_000 - self.noise.randrange(5, 80)) // 10_000, 1)
        ts, user = deposit.ts + self.noise.randrange(120, 3300), self.noise.choice(self.users[other[0]])
        if other == BTC:
            self._honest_utxo(ts, [self.bridge["btc"]], [(user, value)])
        else:
            self.out.append(Transfer(self._tx(), ts, "eth", "ETH", self.bridge["eth"], user, value))

    # --- honest traffic ------------------------------------------------------------------------------------

    def honest(self, count: int) -> None:
        """Heavy-tailed honest traffic until `count` more transfers exist."""
        goal = len(self.out) + count
        picks = {c: self._picks(len(self.users[c]), count) for c in ("eth", "btc")}
        usd = iter(self.np.lognormal(np.log(150), 1.8, size=count).tolist())
        times = iter(self.np.integers(self.start, self.start + 150 * DAY, size=count).tolist())
        kinds = iter(self.rng.choices(_HONEST, [w for _, w in _HONEST_KINDS], k=count))
        while len(self.out) < goal:
            chain = "btc" if self.rng.random() < 0.35 else "eth"
            users = self.users[chain]
            pick = picks[chain]
            self._honest_one(chain, next(kinds), next(times), next(usd), users[next(pick)], users[next(pick)])

    def _picks(self, n: int, count: int) -> Iterator[int]:
        """User indices drawn with heavy-tailed (Pareto) activity."""
        weights = self.np.pareto(1.16, n) + 1
        return iter(self.np.choice(n, size=2 * count + 10, p=weights / weights.sum()).tolist())

    def _honest_one(self, chain: str, kind: str, ts: int, usd: float, a: str, b: str) -> None:
        asset = BTC if chain == "btc" else self.rng.choices([ETH, USDT, DAI], [6, 3, 1])[0]
        amount = max(_units(asset, usd), 1)
        exchange, dst = self.rng.choice(self.exchanges), b
        if kind == "deposit":
            dst = self.rng.choice(self.deposits[(chain, exchange)])
        elif kind == "withdrawal":
            a = self.hot[(chain, exchange)]
        elif kind == "sweep":
            a, dst = self.rng.choice(self.deposits[(chain, exchange)]), self.hot[(chain, exchange)]
        elif kind == "service":
            dst = self.rng.choice([*self.otc[chain], self.bridge[chain], *self._mixers(chain)])
        if kind == "withdrawal":
            self._batch(ts, chain, asset, a, amount)
        elif kind == "coinjoin" and chain == "btc":
            self._coinjoin(ts, amount)
        elif kind == "swap" and chain == "eth":
            self._swap(ts, a, asset, usd)
        elif chain == "btc":
            change = a if self.rng.random() < 0.5 else self._address("btc")
            self._honest_utxo(ts, [a], [(dst, amount), (change, amount // 3)])
        else:
            self.out.append(Transfer(self._tx(), ts, chain, asset[1], a, dst, amount))

    def _mixers(self, chain: str) -> list[str]:
        return list(self.pools.values()) if chain == "eth" else self.mixer

    def _batch(self, ts: int, chain: str, asset: Asset, hot: str, amount: int) -> None:
        """An exchange's batch payout to 1-20 users."""
        users = self.rng.sample(self.users[chain], min(int(self.np.geometric(0.3)), 20))
        if chain == "btc":
            self._honest_utxo(ts, [hot], [(u, amount) for u in users])
            return
        tx = self._tx()
        self.out += [Transfer(tx, ts, chain, asset[1], hot, u, amount, k) for k, u in enumerate(users)]

    def _coinjoin(self, ts: int, amount: int) -> None:
        """An honest CoinJoin: five users in, five equal fresh outputs and their change out."""
        users = self.rng.sample(self.users["btc"], 5)
        outputs = [(self._address("btc"), amount) for _ in users] + [(u, amount // 7) for u in users]
        self._honest_utxo(ts, users, outputs)

    def _swap(self, ts: int, user: str, asset: Asset, usd: float) -> None:
        """An honest DEX swap of `asset` into another asset."""
        other = ETH if asset != ETH else self.rng.choice([USDT, DAI])
        tx = self._tx()
        self.out.append(Transfer(tx, ts, "eth", asset[1], user, self.dex, max(_units(asset, usd), 1), 0))
        self.out.append(Transfer(tx, ts, "eth", other[1], self.dex, user, max(_units(other, usd * 0.997), 1), 1))

    def _honest_utxo(self, ts: int, inputs: list[str], outputs: list[tuple[str, int]]) -> None:
        total = sum(a for _, a in outputs) + 2_000
        share = total // len(inputs)
        ins = tuple(UtxoInput(a, share + (total - share * len(inputs) if k == 0 else 0)) for k, a in enumerate(inputs))
        tx = UtxoTx(self._tx(), ts, "btc", "BTC", ins, tuple(UtxoOutput(d, a) for d, a in outputs))
        self.out += flatten_utxo(tx)

    def dust(self) -> None:
        """Honest (or dusting) payments into a few attacker wallets: clean value the tracer has to tell apart."""
        wallets = sorted(a for a in self.truth.owners if a.startswith("0x"))
        for address in self.rng.sample(wallets, max(len(wallets) // 50, 1)):
            ts = self.start + self.rng.randrange(0, 150 * DAY)
            self.out.append(Transfer(self._tx(), ts, "eth", "ETH", self.rng.choice(self.users["eth"]), address, 10**15))


_HONEST_KINDS = [
    ("payment", 50),
    ("deposit", 18),
    ("withdrawal", 12),
    ("sweep", 6),
    ("swap", 8),
    ("coinjoin", 2),
    ("service", 4),
]
_HONEST = [k for k, _ in _HONEST_KINDS]


def simulate(size: str | Size = "small", seed: int = 0, start: int = T0) -> Simulation:
    """A whole simulated world: laundering of `size.thefts` thefts inside honest traffic, time ordered.

    The thefts fall in the 30 days after `start` (Unix seconds), the honest traffic in the 150 days after it.
    """
    if isinstance(size, str):
        if size not in SIZES:
            raise InputError("size", f"unknown simulation size {size!r}; choose from {sorted(SIZES)}")
        size = SIZES[size]
    world = _World(size, seed, start)
    for n in range(size.thefts):
        world.theft(n)
    world.dust()
    laundering = len(world.out)
    world.truth.laundering_transfers = laundering
    world.honest(max(size.min_transfers - laundering, size.honest_ratio * laundering))
    if size.noisy_bridges:
        world.bridge_payouts(laundering)
    transfers = sorted(world.out, key=lambda t: t.ts)
    return Simulation(transfers, list(world.labels.values()), world.seeds, world.truth)


def bridge_prices() -> dict[Asset, Price]:
    """The simulator's fixed USD prices as a price table for bridge linking."""
    return {asset: Price(USD_PRICE[asset], DECIMALS[asset]) for asset in USD_PRICE}


def _converted(amount: int, asset: Asset, other: Asset) -> int:
    """`amount` base units of `asset` in base units of `other`, at the simulator's prices."""
    return amount * USD_PRICE[asset] * SCALE[other] // (USD_PRICE[other] * SCALE[asset])


def _below_round(amount: int) -> int:
    """A structured mixer deposit: just below the round number under `amount` (e.g. 0.0999 BTC)."""
    digits = len(str(max(amount, 10))) - 1
    return max(int(10**digits) - int(10 ** max(digits - 3, 0)), 1)
