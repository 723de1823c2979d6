"""Traffic Light Protocol 2.0 markings and their STIX marking-definition ids."""

from __future__ import annotations

import enum


class TLP(enum.Enum):
    """A TLP 2.0 label; members are ordered from least to most restricted."""

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"

    @property
    def label(self) -> str:
        """The label as written on a document ("TLP:AMBER+STRICT")."""
        return f"TLP:{self.value.upper()}"

    @property
    def stix_marking_id(self) -> str:
        """The id of the marking-definition the OASIS TLP 2.0 extension defines for this label."""
        return _STIX_IDS[self]

    @classmethod
    def from_stix_marking_id(cls, marking_id: str) -> TLP | None:
        """The label a TLP 2.0 (or 1.0) STIX marking-definition id stands for, or None."""
        return _BY_STIX_ID.get(marking_id)


_STIX_IDS = {
    TLP.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    TLP.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    TLP.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    TLP.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    TLP.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

# STIX 2.1's own TLP 1.0 markings (WHITE, GREEN, AMBER, RED), read as their TLP 2.0 counterparts.
_TLP1_IDS = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": TLP.CLEAR,
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": TLP.GREEN,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": TLP.AMBER,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": TLP.RED,
}

_BY_STIX_ID = {**{v: k for k, v in _STIX_IDS.items()}, **_TLP1_IDS}
