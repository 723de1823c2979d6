"""Fan-out detection slides its window over a sender's tainted payments."""

from __future__ import annotations

from heistwatch.trace.patterns import PatternRules, _fanned, _Leg

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
