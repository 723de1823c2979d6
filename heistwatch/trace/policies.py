"""Taint policies as per-(address, asset) holders: what share of an outgoing transfer is tainted.

Every holder but poison conserves value: taint leaves a holder only as much as it entered. Spending beyond
the known balance spends clean funds from before the data starts.
"""

from __future__ import annotations

from collections import deque
from enum import StrEnum
from typing import Protocol


class Policy(StrEnum):
    """How taint mixes with clean funds inside one address."""

    POISON = "poison"
    HAIRCUT = "haircut"
    FIFO = "fifo"
    LIFO = "lifo"
    TIHO = "tiho"  # taint-in, highest-out


Spent = tuple[int, int]  # (tainted amount, position of the transfer that brought most of it, or -1)


class Holder(Protocol):
    """The funds one address holds in one asset."""

    def receive(self, amount: int, taint: int, origin: int) -> None:
        """Add an incoming transfer of which `taint` is tainted."""

    def spend(self, amounts: list[int]) -> list[Spent]:
        """Pay out `amounts` (one transaction's outputs, in order); return the taint each one carries."""

    def held(self) -> int:
        """Taint still held (0 for poison, which does not conserve value)."""

    def carries(self) -> bool:
        """Whether anything this holder sends can still be tainted."""


class LotHolder:
    """FIFO (or LIFO) lots: outgoing value takes the oldest (newest) lots first."""

    def __init__(self, balance: int, lifo: bool) -> None:
        self.lots: deque[list[int]] = deque([[balance, 0, -1]] if balance > 0 else [])
        self.lifo = lifo
        self.taint = 0

    def receive(self, amount: int, taint: int, origin: int) -> None:
        """Append a lot."""
        if amount > 0:
            self.lots.append([amount, taint, origin])
            self.taint += taint

    def spend(self, amounts: list[int]) -> list[Spent]:
        """Consume lots in order for each amount."""
        spent = [self._take(a) for a in amounts]
        self.taint -= sum(t for t, _ in spent)
        return spent

    def held(self) -> int:
        """Taint in the remaining lots."""
        return self.taint

    def carries(self) -> bool:
        """Whether a tainted lot remains."""
        return self.taint > 0

    def _take(self, need: int) -> Spent:
        taint, origin, best = 0, -1, 0
        while need > 0 and self.lots:
            lot = self.lots[-1] if self.lifo else self.lots[0]
            took = min(need, lot[0])
            share = lot[1] if took == lot[0] else lot[1] * took // lot[0]
            lot[0] -= took
            lot[1] -= share
            need -= took
            taint += share
            if share > best:
                best, origin = share, lot[2]
            if lot[0] == 0:
                self.lots.pop() if self.lifo else self.lots.popleft()
        return taint, origin


class HaircutHolder:
    """Haircut: every outgoing transfer carries the address's current tainted share."""

    def __init__(self, balance: int) -> None:
        self.balance, self.taint, self.origin = max(balance, 0), 0, -1

    def receive(self, amount: int, taint: int, origin: int) -> None:
        """Pool the incoming value."""
        self.balance += amount
        self.taint += taint
        if taint > 0 and (self.origin < 0 or taint * 2 > self.taint):
            self.origin = origin

    def held(self) -> int:
        """Taint in the pool."""
        return self.taint

    def carries(self) -> bool:
        """Whether tainted value remains in the pool."""
        return self.taint > 0

    def spend(self, amounts: list[int]) -> list[Spent]:
        """Pay each amount with the pooled tainted share."""
        out = []
        for amount in amounts:
            took = min(amount, self.balance)
            share = self.taint if took == self.balance else self.taint * took // self.balance if took else 0
            self.balance -= took
            self.taint -= share
            out.append((share, self.origin if share else -1))
        return out


class PoisonHolder:
    """Poison: once an address receives any taint, everything it sends is tainted (not value-conserving)."""

    def __init__(self, balance: int) -> None:
        self.origin = -1

    def receive(self, amount: int, taint: int, origin: int) -> None:
        """Become poisoned by any tainted input."""
        if taint > 0 and self.origin < 0:
            self.origin = origin

    def held(self) -> int:
        """Nothing: poison does not conserve value."""
        return 0

    def carries(self) -> bool:
        """Poisoned for good."""
        return self.origin >= 0

    def spend(self, amounts: list[int]) -> list[Spent]:
        """Taint all of every output once poisoned."""
        return [(a, self.origin) if self.origin >= 0 else (0, -1) for a in amounts]


class HighestOutHolder(HaircutHolder):
    """Taint-in, highest-out: a transaction's tainted value goes to its largest outputs first."""

    def spend(self, amounts: list[int]) -> list[Spent]:
        """Assign the held taint to the largest outputs of this transaction first."""
        out: list[Spent] = [(0, -1)] * len(amounts)
        for n in sorted(range(len(amounts)), key=lambda n: -amounts[n]):
            share = min(amounts[n], self.taint)
            self.taint -= share
            out[n] = (share, self.origin if share else -1)
        self.balance = max(self.balance - sum(amounts), self.taint)
        return out


def make_holder(policy: Policy, balance: int) -> Holder:
    """A holder for `policy` that starts with `balance` clean base units."""
    if policy in (Policy.FIFO, Policy.LIFO):
        return LotHolder(balance, lifo=policy is Policy.LIFO)
    if policy is Policy.HAIRCUT:
        return HaircutHolder(balance)
    if policy is Policy.TIHO:
        return HighestOutHolder(balance)
    return PoisonHolder(balance)
