"""Name keys: one spelling-independent key per actor, malware or campaign name."""

from __future__ import annotations

import re
import unicodedata

# Words vendors add to or drop from a name without changing what it denotes ("Lazarus" / "Lazarus Group").
_GENERIC_SUFFIX = re.compile(r"(?:group|team|gang)$")


def name_key(name: str) -> str:
    """The lookup key of a name: NFKC, case-folded, letters and digits only ("APT 38" -> "apt38")."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


def loose_key(key: str) -> str:
    """A name key without a trailing generic word, for a second-chance match ("lazarusgroup" -> "lazarus")."""
    stripped = _GENERIC_SUFFIX.sub("", key)
    return stripped if len(stripped) >= 3 else key
