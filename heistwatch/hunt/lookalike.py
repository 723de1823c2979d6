"""Lookalike domains of an exchange's brand and of lure companies: what counts as one, and why.

A host is a lookalike of a target (a brand or lure company's registrable domain) when its registrable domain, read
through the public suffix list (private suffixes such as `github.io` included), is a name a person could take for
the target's:
- a permutation dnstwist's engine enumerates (addition, bitsquatting, cyrillic, homoglyph, hyphenation, insertion,
  omission, plural, repetition, replacement, subdomain, transposition, vowel-swap, dictionary words, TLD swaps and
  various), under the target's suffix or, a little lower scored, under any other;
- `homoglyph`: a registrable label whose confusables skeleton (UTS #39, computed by ICU after lower-casing and
  dropping diacritics) equals the target label's, so mixed-script IDNs (Cyrillic U+0456 for the `i` of `binance`),
  `rn` for `m`, `0` for `o` and `1` for `l` are caught whether or not dnstwist listed them; punycode is decoded first;
- `tld-swap`: the target's own label under another suffix (`binance.xyz`, `binance.github.io`);
- `combosquat`: the target's label (by skeleton) as one hyphen-separated token of the label (`secure-binance-app`),
  or joined to one of a list of lure words (`binancelogin`, `walletbinance`);
- `brand-in-subdomain`: the target's label, or a combosquat token, as a label left of an unrelated registrable
  domain (`binance.com.verify-id.net`, `binance-login.example.org`);
- `typo`: an optimal-string-alignment distance (a transposition counts once) between the two skeletons of at most 1
  for labels of 5 to 9 characters and 2 from 10 on; shorter labels get no typo rule, as it would flood.
What is not a lookalike: the targets' own registrable domains and every host below them, the allow-list's domains
and their subdomains, and names that merely contain the brand inside another word (`notbinance.org`,
`cabinancestry.com`): for short brands that substring rule fires on ordinary words, so only the separations above
count. Scores rank techniques by how easily a person confuses the name (homoglyphs highest); they are not
probabilities.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache

import dnstwist  # type: ignore[import-untyped]
import icu  # type: ignore[import-untyped]
import tldextract

from heistwatch.errors import InputError
from heistwatch.hunt.matcher import normalize_host

DEFAULT_WORDS: tuple[str, ...] = (
    *("account", "accounts", "admin", "airdrop", "app", "auth", "bonus", "bridge", "card", "careers", "cash"),
    *("claim", "coin", "connect", "crypto", "dashboard", "defi", "desktop", "dex", "download", "earn", "exchange"),
    *("futures", "get", "global", "help", "helpdesk", "hiring", "hr", "info", "jobs", "kyc", "login", "mail", "mobile"),
    *("my", "nft", "official", "online", "p2p", "pay", "portal", "pro", "promo", "recovery", "recruit", "restore"),
    *("reward", "rewards", "safe", "secure", "security", "service", "signin", "sso", "staking", "support", "swap"),
    *("team", "token", "trade", "trading", "unlock", "update", "us", "validate", "verify", "vip", "wallet", "web"),
)
DEFAULT_TLDS: tuple[str, ...] = (
    *("ai", "app", "asia", "bank", "biz", "bond", "buzz", "cash", "cc", "cf", "click", "cloud", "club", "cn", "co"),
    *("co.uk", "com", "cyou", "de", "dev", "digital", "email", "eu", "exchange", "finance", "fun", "ga", "gg", "gq"),
    *("group", "hk", "icu", "in", "info", "io", "jp", "kr", "la", "link", "live", "ltd", "me", "ml", "money"),
    *("monster", "net", "network", "one", "online", "org", "page", "pro", "quest", "rest", "ru", "sbs", "sg"),
    *("shop", "site", "so", "space", "store", "su", "support", "tech", "tk", "to", "top", "trade", "tv", "tw", "uk"),
    *("us", "vip", "wallet", "website", "world", "ws", "xyz"),
)
ROLES = ("brand", "lure")
_SCORES: dict[str, float] = {
    **dict.fromkeys(("homoglyph", "cyrillic"), 0.95),
    **dict.fromkeys(("transposition", "omission", "repetition", "replacement", "insertion", "vowel-swap"), 0.85),
    **dict.fromkeys(("hyphenation", "bitsquatting", "addition", "plural", "subdomain"), 0.8),
    **dict.fromkeys(("tld-swap", "various"), 0.75),
    **dict.fromkeys(("dictionary", "brand-in-subdomain"), 0.7),
    "combosquat": 0.65,
    "typo": 0.6,
}
_OTHER_SUFFIX_PENALTY = 0.05
_HOST = re.compile(r"(?=.{1,253}\Z)(?:[a-z0-9_](?:[a-z0-9_-]{0,62})\.)+[a-z0-9-]{1,63}")
_LABEL_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-_"
_SPOOF = icu.SpoofChecker()


@dataclass(frozen=True)
class HostName:
    """A host name split along the public suffix list, in punycode (`ascii`) and decoded (`unicode`) form."""

    ascii: str
    unicode: str
    registrable: str
    label: str
    suffix: str
    subdomain: str

    @property
    def stem(self) -> str:
        """The host without its public suffix (`login.binance` for `login.binance.co.uk`), punycode."""
        return self.ascii[: -len(self.suffix) - 1]


@dataclass(frozen=True)
class Target:
    """A domain whose lookalikes are wanted: the exchange's own brand, or a company lures pretend to come from."""

    name: HostName
    role: str
    skeleton: str
    max_distance: int

    @property
    def domain(self) -> str:
        """The target's registrable domain, punycode."""
        return self.name.registrable


@dataclass(frozen=True)
class Lookalike:
    """A registrable domain judged a lookalike of a target, by the technique with the highest score."""

    domain: str
    unicode: str
    target: str
    role: str
    technique: str
    score: float
    enumerated: bool
    detail: str


@lru_cache(maxsize=1)
def _extractor() -> tldextract.TLDExtract:
    """The public suffix list (with private suffixes) from tldextract's bundled snapshot; never fetched."""
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)


def to_unicode(ascii_name: str) -> str:
    """A punycode name with each `xn--` label decoded (undecodable labels are kept as written)."""
    return ".".join(_label_to_unicode(label) for label in ascii_name.split("."))


def _label_to_unicode(label: str) -> str:
    """One label decoded with the punycode codec (the core of IDNA ToUnicode, without its slow round trip)."""
    if not label.startswith("xn--"):
        return label
    try:
        return label[4:].encode("ascii").decode("punycode").lower()
    except UnicodeError:
        return label


def parse_host(value: str) -> HostName | None:
    """The host name in `value` (a trailing dot, port, case and Unicode spelling ignored), or None when it is not a
    name under a public suffix (an address, a single label, an internal name, or not a host at all)."""
    host = normalize_host(value.removeprefix("*."))
    if host is None or not _HOST.fullmatch(host):
        return None
    parts = _extractor()(host)
    if not parts.suffix or not parts.domain:
        return None
    labels = to_unicode(host).split(".")
    left = len(labels) - parts.suffix.count(".") - 2  # index of the registrable label
    subdomain = ".".join(labels[:left])
    return HostName(host, ".".join(labels), f"{parts.domain}.{parts.suffix}", labels[left], parts.suffix, subdomain)


@lru_cache(maxsize=65536)
def skeleton(text: str) -> str:
    """The UTS #39 confusables skeleton of lower-cased text with its diacritics dropped, lower-cased again."""
    bare = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if not unicodedata.combining(c))
    return str(_SPOOF.getSkeleton(0, bare)).lower()


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment edit distance (a transposition counts once), or `limit + 1` when it exceeds limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, other in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other))
            if i > 1 and j > 1 and char == b[j - 2] and a[i - 2] == other:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return min(previous[-1], limit + 1)


def typo_limit(label: str) -> int:
    """The edit distance that still counts as a typo of a label of this length (0: no typo rule)."""
    return 0 if len(label) < 5 else 1 if len(label) < 10 else 2


def make_target(domain: str, role: str) -> Target:
    """A target from a domain the user names; InputError when it is not a name under a public suffix."""
    if role not in ROLES:
        raise InputError(role, f"unknown target role (known: {', '.join(ROLES)})")
    name = parse_host(domain)
    if name is None:
        raise InputError(domain, f"not a domain name under a public suffix, so it cannot be a {role} domain")
    registrable = parse_host(name.registrable)
    assert registrable is not None, "a registrable domain parses as itself"
    return Target(registrable, role, skeleton(registrable.label), typo_limit(skeleton(registrable.label)))


def ascii_sources() -> dict[str, tuple[str, ...]]:
    """Skeleton -> the host-name characters with that skeleton (`l`: `l`, `1`; `rn`: `m`; `o`: `o`, `0`)."""
    return _ascii_sources()


@cache
def _ascii_sources() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for char in _LABEL_ALPHABET:
        out[skeleton(char)] = (*out.get(skeleton(char), ()), char)
    return out


def skeleton_regex(skel: str) -> str | None:
    """A regex of exactly the ASCII labels whose skeleton is `skel` (None if some part has no ASCII spelling)."""
    sources = _ascii_sources()

    @cache
    def rest(i: int) -> str | None:
        if i == len(skel):
            return ""
        options = []
        for width in sorted({len(p) for p in sources if skel.startswith(p, i)}):
            chars = [c for p, cs in sources.items() if len(p) == width and skel.startswith(p, i) for c in cs]
            tail = rest(i + width)
            if tail is not None:
                head = re.escape(chars[0]) if len(chars) == 1 else f"[{''.join(re.escape(c) for c in chars)}]"
                options.append(head + tail)
        return None if not options else options[0] if len(options) == 1 else f"(?:{'|'.join(options)})"

    return rest(0)


class LookalikeFinder:
    """Judges hosts against targets; built once per hunt (dnstwist enumerates each target's permutations)."""

    def __init__(
        self,
        brands: Iterable[str],
        lures: Iterable[str] = (),
        allow: Iterable[str] = (),
        *,
        words: Iterable[str] = DEFAULT_WORDS,
        tlds: Iterable[str] = DEFAULT_TLDS,
    ) -> None:
        self.targets = tuple(
            dict.fromkeys([make_target(d, "brand") for d in brands] + [make_target(d, "lure") for d in lures])
        )
        if not any(t.role == "brand" for t in self.targets):
            raise InputError("brand", "name at least one brand domain")
        self.words = tuple(sorted({w.lower() for w in words if w}))
        self._word_skeletons = frozenset(skeleton(w) for w in self.words)
        self.own = frozenset(t.domain for t in self.targets)
        self.allow = frozenset(_allowed(allow))
        self.domains: dict[str, list[tuple[Target, str]]] = {}
        self.stems: dict[str, list[tuple[Target, str]]] = {}
        for target in self.targets:
            for domain, fuzzer in enumerate_permutations(target, self.words, tlds):
                name = parse_host(domain)
                if name is not None and name.registrable not in self.own:
                    self.domains.setdefault(name.ascii, []).append((target, fuzzer))
                    self.stems.setdefault(name.stem, []).append((target, fuzzer))
        self._cache: dict[str, tuple[Lookalike, ...]] = {}

    def is_own(self, name: HostName) -> bool:
        """True for a target's own registrable domain or an allowed domain, and every host below them."""
        if name.registrable in self.own:
            return True
        host = name.ascii
        while True:
            if host in self.allow:
                return True
            dot = host.find(".")
            if dot < 0:
                return False
            host = host[dot + 1 :]

    def classify(self, value: str) -> tuple[Lookalike, ...]:
        """The lookalikes a host is, one per target it imitates (none for own, allowed or unrelated names)."""
        found = self._cache.get(value)
        if found is None:
            name = parse_host(value)
            found = () if name is None or self.is_own(name) else tuple(self._judge_all(name))
            if len(self._cache) > 1_000_000:
                self._cache.clear()
            self._cache[value] = found
        return found

    def _judge_all(self, name: HostName) -> Iterator[Lookalike]:
        for target in self.targets:
            verdicts = list(self._verdicts(name, target))
            if verdicts:
                score, enumerated, technique, detail = max(verdicts)
                unicode = to_unicode(name.registrable)
                yield Lookalike(
                    name.registrable, unicode, target.domain, target.role, technique, score, enumerated, detail
                )

    def _verdicts(self, name: HostName, target: Target) -> Iterator[tuple[float, bool, str, str]]:
        """(score, enumerated by dnstwist, technique, detail) for every rule that makes `name` a lookalike."""
        yield from self._enumerated(name, target)
        label = skeleton(name.label)
        if label == target.skeleton:
            if name.label == target.name.label:
                yield _SCORES["tld-swap"], False, "tld-swap", f"{target.name.label} under .{name.suffix}"
            else:
                yield _SCORES["homoglyph"], False, "homoglyph", _homoglyph_detail(name.label, target)
        elif self._is_combo(name.label, target):
            yield _SCORES["combosquat"], False, "combosquat", f"{target.name.label} combined in {name.label}"
        elif target.max_distance and (d := osa_distance(label, target.skeleton, target.max_distance)) <= (
            target.max_distance
        ):
            yield round(_SCORES["typo"] - 0.1 * (d - 1), 2), False, "typo", f"{d} edit(s) from {target.name.label}"
        if name.subdomain and any(self._is_combo(part, target, alone=True) for part in name.subdomain.split(".")):
            detail = f"{target.name.label} left of {to_unicode(name.registrable)}"
            yield _SCORES["brand-in-subdomain"], False, "brand-in-subdomain", detail

    def _enumerated(self, name: HostName, target: Target) -> Iterator[tuple[float, bool, str, str]]:
        """Verdicts from dnstwist's permutations: the host or a parent is one, or its stem is one under any suffix."""
        host, stem = name.ascii, name.stem
        for table, key, penalty in ((self.domains, host, 0.0), (self.stems, stem, _OTHER_SUFFIX_PENALTY)):
            while key:
                for owner, fuzzer in table.get(key, ()):
                    if owner == target:
                        where = f"{to_unicode(key)}" + (f" under .{name.suffix}" if penalty else "")
                        score = round(_SCORES.get(fuzzer, 0.6) - penalty, 2)
                        yield score, True, fuzzer, f"dnstwist {fuzzer}: {where}"
                key = key.partition(".")[2]

    def _is_combo(self, label: str, target: Target, *, alone: bool = False) -> bool:
        """True when a hyphen-separated token of the label is the target (by skeleton) beside other tokens (or
        `alone`), or the target joined to a lure word."""
        tokens = label.split("-")
        for token in tokens:
            skel = skeleton(token)
            if skel == target.skeleton and (alone or len(tokens) > 1):
                return True
            if skel.startswith(target.skeleton) and skel[len(target.skeleton) :] in self._word_skeletons:
                return True
            if skel.endswith(target.skeleton) and skel[: -len(target.skeleton)] in self._word_skeletons:
                return True
        return False

    def permutation_count(self) -> int:
        """How many distinct permutations dnstwist enumerated over all targets."""
        return len(self.domains)


def _homoglyph_detail(label: str, target: Target) -> str:
    scripts = sorted({unicodedata.name(c, "?").split(" ")[0] for c in label if not c.isascii()})
    spelled = f"mixed-script IDN ({', '.join(scripts)})" if scripts else "ASCII confusables"
    return f"{label} has the skeleton of {target.name.label}: {spelled}"


def _allowed(values: Iterable[str]) -> Iterator[str]:
    for value in values:
        host = normalize_host(value.removeprefix("*."))
        if not host or not _HOST.fullmatch(host):
            raise InputError(value, "not a domain name to allow")
        yield host


def enumerate_permutations(target: Target, words: Iterable[str], tlds: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(domain in punycode, dnstwist fuzzer) for every permutation dnstwist's engine makes of the target's domain."""
    fuzzer = dnstwist.Fuzzer(to_unicode(target.domain), dictionary=list(words), tld_dictionary=list(tlds))
    fuzzer.generate()
    for permutation in fuzzer.permutations():
        if permutation["fuzzer"] != "*original" and permutation["domain"]:
            yield str(permutation["domain"]), str(permutation["fuzzer"])
