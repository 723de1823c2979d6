"""Laundering patterns: fan-out windows over a sender's payments, fan-in, dormancy and exchange deposits."""

from __future__ import annotations

from heistwatch.trace import Policy, Seed, Transfer, find_patterns, trace
from heistwatch.trace.patterns import PatternRules, _fanned, _Leg
from tests.trace.conftest import eth, graph_of

Patterns = dict[str, set[str]]

DAY = 86_400


def _legs(*times_and_payees: tuple[int, str]) -> list[_Leg]:
    return [_Leg(n, f"tx{n}", ts, "thief", payee, 1) for n, (ts, payee) in enumerate(times_and_payees)]


def test_a_fan_out_days_after_the_first_payment_is_found() -> None:
    legs = _legs((0, "a"), (10 * DAY, "b"), (10 * DAY + 5, "c"), (10 * DAY + 9, "d"))
    assert _fanned(legs, PatternRules()) == {"tx1", "tx2", "tx3"}


def test_payments_spread_wider_than_the_window_are_no_fan_out() -> None:
    legs = _legs((0, "a"), (2 * DAY, "b"), (4 * DAY, "c"), (6 * DAY, "d"))
    assert _fanned(legs, PatternRules()) == set()


def test_repeated_payments_to_one_wallet_are_not_a_fan_out() -> None:
    legs = _legs((0, "a"), (1, "a"), (2, "a"), (3, "b"))
    assert _fanned(legs, PatternRules()) == set()


def _patterns(ledger: list[Transfer], seeds: list[str], services: tuple[str, ...] = (), **rules: int) -> Patterns:
    """The patterns in a poison trace (every downstream leg tainted) of a hand-built ledger."""
    result = trace(graph_of(ledger, services=services), [Seed(tx) for tx in seeds], Policy.POISON)
    return find_patterns(result, PatternRules(**rules))


def test_fan_in_is_found_on_the_receiver_and_needs_enough_senders() -> None:
    stolen = [eth(f"s{n}", n, "victim", f"w{n}", 10) for n in range(3)]
    gathered = [eth(f"in{n}", 100 + n, f"w{n}", "collector", 10) for n in range(3)]
    assert _patterns(stolen + gathered, ["s0", "s1", "s2"])["fan_in"] == {"in0", "in1", "in2"}
    assert _patterns(stolen + gathered[:2], ["s0", "s1", "s2"])["fan_in"] == set()


def test_dormancy_needs_the_value_to_rest_past_the_threshold() -> None:
    ledger = [
        eth("in", 0, "victim", "hold", 10),
        eth("out", 4 * DAY, "hold", "next", 10),
        eth("on", 4 * DAY + 9, "next", "x", 10),
    ]
    assert _patterns(ledger, ["in"])["dormancy"] == {"out"}
    assert _patterns(ledger, ["in"], min_dormancy=5 * DAY)["dormancy"] == set()


def test_exchange_deposits_are_legs_into_exchange_labelled_addresses() -> None:
    ledger = [
        eth("in", 0, "victim", "thief", 20),
        eth("dep", 5, "thief", "deposit-1", 10),
        eth("otc", 6, "thief", "desk", 10),
    ]
    assert _patterns(ledger, ["in"], services=("deposit-1",))["exchange_deposit"] == {"dep"}
