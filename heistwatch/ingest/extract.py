"""Indicators of compromise found in a document's text, refanged, normalized and classified.

The text is refanged once into a working copy (with an offset map back to the document), then a few
regular-expression passes run over it in priority order; a byte mask of claimed spans keeps a later, weaker
pattern (a domain) from firing inside an earlier, stronger match (a URL, an e-mail, a registry key).

Speed: `re` scans fast only for a pattern that starts with a literal; a pattern that starts with a look-behind or
a character class costs a match attempt at (nearly) every position. So each pass first finds its anchors with a
literal search (`://`, `@`, a backslash, `.`, `cve-`, `hk`), often in a one-byte-per-character class map of the
text (`_CLASSES`), and runs its real pattern only there (`_matches_at`), which gives exactly what a `finditer`
over the whole text would give, at a small fraction of the cost.
"""

from __future__ import annotations

import gc
import ipaddress
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from functools import cache
from operator import attrgetter, itemgetter
from typing import NamedTuple

from heistwatch.ingest.classify import Context, classify, is_public_suffix, registrable_domain
from heistwatch.ingest.text import Document
from heistwatch.ingest.wallets import valid_btc

KINDS: tuple[str, ...] = (
    "ipv4",
    "ipv6",
    "domain",
    "url",
    "email",
    "md5",
    "sha1",
    "sha256",
    "filename",
    "cve",
    "btc",
    "eth",
    "registry",
    "attack_technique",
)


class Found(NamedTuple):
    """One observable in a document: its kind, normalized value, spelling as written, span and role.

    An immutable record (a named tuple: cheap to make, and a long report has tens of thousands).
    """

    kind: str
    value: str
    raw: str
    start: int
    end: int
    role: str
    reason: str


# --- refanging with an offset map --------------------------------------------------------------------------------

_DEFANG = re.compile(
    r"[\[({](?:\.|dot|DOT|at|AT|@|:|://|/)[\])}]|`\+\+|\+\+`|\+\+|`\+|\+`|\u200b"
    r"|h(?:xx|XX|\*\*|00)p(?=s?(?:://|\[:\]))|fxp(?=s?://)"
)
_REFANG = {"++": "", "`++": "`", "++`": "`", "`+": "`", "+`": "`", "\u200b": "", "[:]": ":", "[://]": "://", "[/]": "/"}


@cache
def _refanged(token: str) -> str:
    """The plain spelling of one defanging token."""
    if token in _REFANG:
        return _REFANG[token]
    lowered = token.strip().lower()
    if lowered.startswith("h") or lowered == "fxp":
        return "http" if lowered.startswith("h") else "ftp"
    return "@" if "at" in lowered or "@" in lowered else "."


def _ascii(text: str) -> bytes:
    """`text` as ASCII bytes, one byte per character (others become `?`), for fast literal searches."""
    return text.encode("ascii", "replace")


def _matches_at(pattern: re.Pattern[str], text: str, starts: Iterable[int]) -> Iterator[re.Match[str]]:
    """The matches `pattern.finditer(text)` gives, tried only at `starts`.

    `starts` ascend (repeats are allowed) and include every position where a match of `pattern` can begin, so the
    result is the same.
    """
    last = 0
    for start in starts:
        if start >= last and (m := pattern.match(text, start)):
            last = max(m.end(), start + 1)
            yield m


# Where a defanging token can begin: a bracketed `.`, `dot`, `at`, `@`, `:`, `://` or `/`, or two of `` `+ ``
# (in a copy with `[({`+` mapped to 0x01 and `])}` to 0x02); a zero-width space; and for hxxp and fxp, a few
# characters before a `://` or `[:]` that follows a `p` or `ps`.
_DEFANG_BRACKETS = bytes.maketrans(b"[({`+])}", b"\x01" * 5 + b"\x02" * 3)
_DEFANG_ANCHOR = re.compile(rb"\x01(?=(?:[.@:/]|://|dot|DOT|at|AT)\x02|\x01)")
_ZERO_WIDTH = re.compile("\u200b")
_SCHEME_ANCHORS = (re.compile(rb"://"), re.compile(rb"\x01:\x02"))


def _defang_starts(text: str, data: bytes) -> list[int]:
    """Ascending positions (some repeated) that include every start of a `_DEFANG` match in `text` (`data`: its
    `_ascii`)."""
    marked = data.translate(_DEFANG_BRACKETS)
    starts = [m.start() for m in _DEFANG_ANCHOR.finditer(marked)]
    extra: list[int] = []
    if "\u200b" in text:
        extra += (m.start() for m in _ZERO_WIDTH.finditer(text))
    for anchor in _SCHEME_ANCHORS:
        for m in anchor.finditer(marked):
            at = m.start()
            if data[at - 1 : at] == b"p" or data[at - 2 : at] == b"ps":
                extra += range(max(0, at - 5), at - 2)
    if extra:  # a repeated start costs `_matches_at` one failed attempt, not a wrong match
        starts += extra
        starts.sort()
    return starts


class _Refanged:
    """The refanged working copy of a text and the map from its offsets back to the original."""

    def __init__(self, text: str) -> None:
        data = _ascii(text)
        parts: list[str] = []
        ascii_parts: list[bytes] = []
        clean_starts, orig_starts, refanged = [0], [0], []  # `refanged`: where each replacement starts
        last = clean_pos = 0
        for m in _matches_at(_DEFANG, text, _defang_starts(text, data)):
            token, start = m.group(), m.start()
            if token[0] in "hf" and start and text[start - 1].isalpha():
                continue
            repl = _refanged(token)
            parts += (text[last:start], repl)
            ascii_parts += (data[last:start], repl.encode())
            clean_pos += start - last
            refanged.append(clean_pos)
            # a piece for the replacement, then one for the text after it
            clean_starts += (clean_pos, clean_pos + len(repl))
            last = start + len(token)
            orig_starts += (start, last)
            clean_pos += len(repl)
        parts.append(text[last:])
        ascii_parts.append(data[last:])
        self.text = "".join(parts)
        self.ascii = b"".join(ascii_parts)  # `_ascii(self.text)`
        self.identity = not refanged  # nothing refanged: offsets are the same
        # per piece (text as written at even indexes, replacements at odd ones): where it starts in each copy,
        # where the next one starts, and the offset shift when it is not a replacement (else None)
        self.clean_starts, self.orig_starts = clean_starts, orig_starts
        self.piece_ends = [*clean_starts[1:], len(self.text) + 1]
        self.shifts = [None if i % 2 else orig_starts[i] - clean_starts[i] for i in range(len(clean_starts))]
        self.defanged = bytearray(len(self.text) + 1)
        for pos in refanged:
            self.defanged[pos] = 1

    def spans(self, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
        """The original offsets of many spans."""
        if self.identity:
            return list(spans)
        starts, ends, shifts, span = self.clean_starts, self.piece_ends, self.shifts, self._span
        found = []
        for start, end in spans:
            i = bisect_right(starts, start) - 1
            shift = shifts[i]
            if shift is not None and start < end <= ends[i]:  # the common case: inside one piece as written
                found.append((start + shift, end + shift))
            else:
                found.append(span(start, end))
        return found

    def _span(self, start: int, end: int) -> tuple[int, int]:
        """The original offsets of a span that touches a refanged piece (or is empty)."""
        return self.start(start), self.end(end)

    def start(self, pos: int) -> int:
        """The original offset of a start position."""
        i = bisect_right(self.clean_starts, pos) - 1
        return self.orig_starts[i] + (0 if i % 2 else pos - self.clean_starts[i])

    def end(self, pos: int) -> int:
        """The original offset of an end position."""
        i = bisect_right(self.clean_starts, pos - 1) - 1
        if i % 2:  # a replacement
            return self.orig_starts[i + 1] if i + 1 < len(self.orig_starts) else self.orig_starts[i]
        return self.orig_starts[i] + (pos - self.clean_starts[i])

    def was_defanged(self, start: int, end: int) -> bool:
        """Whether any defanging token was refanged inside [start, end)."""
        return self.defanged.find(1, start, end + 1) != -1


# --- patterns ----------------------------------------------------------------------------------------------------

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?"
_HOST = rf"(?:{_LABEL}\.)+(?:xn--[a-z0-9-]{{1,59}}|[a-z]{{2,63}})"
_IPV4 = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
_URL_CHARS = r"[^\s<>\"'`\[\]{}|\\^\u201c\u201d\u00ab\u00bb]"
_URL = re.compile(
    rf"(?i)\b(?:https?|ftp|sftp|wss?|tcp|udp)://(?:[^\s/@:<>\"'`]{{1,64}}(?::[^\s/@<>]{{0,64}})?@)?"
    rf"(?P<host>{_HOST}|{_IPV4}|\[[0-9a-f:.]{{2,45}}\])(?::(?P<port>\d{{1,5}}))?(?P<path>[/?#]{_URL_CHARS}*)?"
)
_SCHEME_SEP = re.compile("://")
_BARE_URL = re.compile(
    rf"(?i)(?<![\w@.\-/\\:])(?P<host>{_HOST}|{_IPV4})(?::(?P<port>\d{{1,5}}))?(?P<path>/{_URL_CHARS}*)"
)
_AT = re.compile("@")
_EMAIL = re.compile(rf"(?i)(?<![\w.+%-])[a-z0-9!#$%&*+=?^_~-]+(?:\.[a-z0-9!#$%&*+=?^_~-]+)*@(?P<host>{_HOST})\b")
_EMAIL_START = re.compile(r"(?i)(?<![\w.+%-])[a-z0-9!#$%&*+=?^_~-]")  # how an `_EMAIL` match begins
_REGISTRY = re.compile(
    r"[Hh][Kk](?i:EY_(?:LOCAL_MACHINE|CURRENT_USER|CLASSES_ROOT|USERS|CURRENT_CONFIG)|LM|CU|CR|U|CC)"
    r"(?:\\{1,2}[^\\\n\r\t\"\]\[<>|`\u201c\u201d]*)*"
)
_CLAIMED = b"\x01" * 90  # the mask of a claimed long run: `mask[start:end] = _CLAIMED[: end - start]`
_HEX = re.compile(r"[0-9A-Fa-f]+")
_HASH_KIND = {32: "md5", 40: "sha1", 64: "sha256"}
_BTC = re.compile(r"[13][1-9A-HJ-NP-Za-km-z]{25,34}|(?:bc1|BC1)[02-9ac-hj-np-zAC-HJ-NP-Z]{11,71}")
_CVE = re.compile(r"(?:CVE|cve|Cve)-(?:19|20)\d\d-\d{4,7}\b")
_ATTACK = re.compile(r"T[0-9]{4}(?:\.[0-9]{3})?\b(?![-/.]\d)")
_IPV4_FULL = re.compile(_IPV4)
_CIDR = re.compile(r"/(?:3[0-2]|[12]?\d)(?![\w.])")
_IPV6_ANCHOR = re.compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:")
_IPV6_RE = re.compile(r"(?i)(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}(?:[0-9a-f]{0,4}|" + _IPV4 + r")(?:/\d{1,3})?(?![\w:])")
_HOST_FULL = re.compile(rf"(?i){_HOST}")
_DOTTED = re.compile(r"(?<![\w$~%@+!#()-])(?<![\w-]\.)[\w$~+!#@()-]++(?:\.[\w$~+!#@()-]++)++")


def _class_table() -> bytes:
    """Byte translation of `_ascii` text to character classes: `a` ASCII letter or digit, `_`, `s` another
    character of a dotted token (`$~+!#@()-`), `.`, `?` (a question mark or a non-ASCII character: either may
    be part of a dotted token) and a space for everything else."""
    table = bytearray(b" " * 256)
    for char in b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz":
        table[char] = ord("a")
    for char in b"_.?":
        table[char] = char
    for char in b"$~+!#@()-":
        table[char] = ord("s")
    return bytes(table)


_CLASSES = _class_table()
# anchors, searched in the class map or the lower-cased ASCII copy of the working text
_LONG_RUN = re.compile(rb"a" * 25 + rb"[a_]*")  # a run of 25 letters or digits, to the end of its word
_TOKEN_RUN_TAIL = re.compile(rb"\.[a_s?][^ ]*")  # from a dot before a token character to the end of the run
_BACKSLASH = re.compile(rb"\\")
_CVE_ANCHOR = re.compile(rb"cve-")
_HIVE_ANCHOR = re.compile(rb"hk")
_NOT_BEFORE_FILE = frozenset("\\=?&")
_EXTENSIONS = """
    exe dll sys drv ocx cpl scr bat cmd ps1 psm1 vbs vbe js jse wsf wsh hta lnk msi msp cab jar apk dex elf so
    dylib bin dat tmp log db ini cfg conf xml json txt csv doc docx docm dot dotm xls xlsx xlsm xlsb ppt pptx
    pptm pdf rtf hwp hwpx odt iso go img vhd vhdx zip rar 7z gz tgz tar bz2 xz lzh arj ace py pyc sh pl php
    asp aspx jsp html htm png jpg jpeg gif bmp ico tif dib pem pdb nls clb cvr tpl dmg pkg chm url
""".split()  # noqa: SIM905 - a word list reads best as words
_EXTENSION_SET = frozenset(_EXTENSIONS)
_MAX_PREFIX = 160  # a file name with spaces is looked for this far back, so long lines stay linear
_SEGMENT_END = re.compile(r"[ \t`]*(?:\n|\t|\||`|$)")
_SPACED_PREFIX = re.compile(r"[ \t*\-]*(?P<words>\w[\w$~+!#&'()@-]*(?: [\w$~+!#&'()@][\w$~+!#&'()@-]*){0,4} )")
_PATH_FILE = re.compile(
    r"(?<=\\)(?P<name>[^\\/\s\"<>|*?:`]+(?:\.[^\\/\s\"<>|*?:`.]+)*\.(?=[\w~$]*[A-Za-z])[\w~$]{1,12}"
    r"|[^\\/\s\"<>|*?:`][^\\/\n\r\t\"<>|*?:`]*\.(?=[\w~$]*[A-Za-z])[\w~$]{1,12}(?=[ \t]*(?:$|[\t|`\"])))"
    r"(?![\w.\\-])",
    re.MULTILINE,
)
_TIME = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?")
_VERSION_BEFORE = re.compile(r"(?i)(?:\bv|version|ver\.?|build|release|firmware|update)\s*$")
_DETECTION = re.compile(
    r"(?i)(?:^|[\s(`|])(?:win|msil|linux|osx|macos|android|js|vbs|html|doc|python|java|bat|ps|powershell|generik|trojan)"
    r"[\w-]*/$"
)


# --- the extractor -----------------------------------------------------------------------------------------------


class _Run:
    """One extraction over one document: the refanged text, the claimed mask and the findings."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.rf = _Refanged(doc.text)
        self.text = self.rf.text
        self.classes = self.rf.ascii.translate(_CLASSES)
        self.lower = self.rf.ascii.lower()
        self.mask = bytearray(len(self.text))
        self.pending: list[tuple[str, str, int, int, str]] = []  # (kind, value, start, end, hint) to classify
        self.dotted: list[tuple[int, int, str]] = []  # (start, end, token) of each dotted token, in text order
        self.hosts: dict[str, bool] = {}  # `_is_host` of each distinct dotted token looked at
        self.long_kinds: dict[str, tuple[str, str]] = {}

    def free(self, start: int, end: int) -> bool:
        """Whether no stronger match has claimed any of [start, end)."""
        return self.mask.find(1, start, end) == -1

    def claim(self, start: int, end: int) -> None:
        """Mark [start, end) as taken."""
        self.mask[start:end] = b"\x01" * (end - start)

    def add(self, kind: str, value: str, start: int, end: int, hint: str = "") -> None:
        """Record one observable at a working-copy span (classified at the end, in `findings`)."""
        self.pending.append((kind, value, start, end, hint))

    def findings(self) -> list[Found]:
        """Every observable recorded, at its span in the document and classified there, in text order."""
        pending, source = self.pending, self.doc.text
        context = Context(self.doc, self.lower if self.rf.identity else None)
        found: list[Found] = []
        add = found.append
        for (kind, value, _, _, hint), (start, end) in zip(pending, self.rf.spans(map(_SPAN, pending)), strict=True):
            role, reason = classify(kind, value, context, start, end, hint)
            add(_new_record(Found, (kind, value, source[start:end], start, end, role, reason)))
        found.sort(key=_TEXT_ORDER)
        return found


_TEXT_ORDER = attrgetter("start", "end", "kind")
_SPAN = itemgetter(2, 3)  # the span of a pending record
_new_record = tuple.__new__  # `Found(...)` without the keyword handling of a named tuple's `__new__`: 2x faster


def extract_indicators(doc: Document) -> list[Found]:
    """Every indicator and mention in `doc`, in text order."""
    enabled = gc.isenabled()
    gc.disable()  # tens of thousands of small acyclic records: collector passes would cost ~15 %
    try:
        run = _Run(doc)
        for step in (_urls, _emails, _bare_urls, _registry, _long_runs, _ids, _path_files, _dotted, _ipv6):
            step(run)
        return run.findings()
    finally:
        if enabled:
            gc.enable()


def _trim_url(url: str) -> str:
    """A URL without trailing punctuation and unbalanced closing brackets."""
    surplus = url.count(")") - url.count("(")
    end = len(url)
    while end and (url[end - 1] in ".,;:!?'\"*»>" or (url[end - 1] == ")" and surplus > 0)):
        surplus -= url[end - 1] == ")"
        end -= 1
    return url[:end]


def _host_kind(host: str) -> str:
    """ipv4, ipv6 or domain for a URL host."""
    if host.startswith("["):
        return "ipv6"
    return "ipv4" if _IPV4_FULL.fullmatch(host) else "domain"


def _emit_url(run: _Run, m: re.Match[str], bare: bool) -> None:
    """Record a URL match, and its host as a domain or address."""
    url = _trim_url(m.group())
    host = m.group("host")
    if bare and not (m.group("path") or "").strip("/"):
        return
    kind = _host_kind(host)
    if kind == "domain" and not is_public_suffix(host.lower()):
        return
    start, end = m.start(), m.start() + len(url)
    run.claim(start, end)
    run.add("url", url, start, end, "bare" if bare else "")
    value = host.strip("[]").lower()
    run.add(kind, value, m.start("host"), m.end("host"), "url-host")


def _urls(run: _Run) -> None:
    """URLs with a scheme, found from each `://`."""
    text = run.text
    for anchor in _SCHEME_SEP.finditer(text):
        start = anchor.start()
        while start > 0 and start > anchor.start() - 6 and text[start - 1].isalpha():
            start -= 1
        m = _URL.match(text, start) if run.free(anchor.start(), anchor.end()) else None
        if m and run.free(m.start(), m.end()) and not (start and text[start - 1].isalnum()):
            _emit_url(run, m, bare=False)


def _emails(run: _Run) -> None:
    """E-mail addresses, found from each `@`, and their domains as mentions."""
    text, last = run.text, 0
    for at in _AT.finditer(text):
        m = _email_around(text, max(last, at.start() - 64), at.start(), at.end() + 256)
        if m is None:
            continue
        last = m.end()
        if not run.free(m.start(), m.end()) or not is_public_suffix(m.group("host").lower()):
            continue
        run.claim(m.start(), m.end())
        run.add("email", m.group().lower(), m.start(), m.end())
        run.add("domain", m.group("host").lower(), m.start("host"), m.end("host"), "email-domain")


def _email_around(text: str, lo: int, at: int, hi: int) -> re.Match[str] | None:
    """What `_EMAIL.search(text, lo, hi)` finds if it starts at or before `at` (else None), tried only where a
    match can begin, so a long run without spaces or addresses costs a scan, not a match attempt per position."""
    for start in _EMAIL_START.finditer(text, lo, at + 1):
        m = _EMAIL.match(text, start.start(), hi)
        if m:
            return m
    return None


def _registry_key(raw: str, text: str, end: int) -> str:
    """A registry match cut to the key: no value data, switches or prose after it."""
    key = re.split(r"\s+/[a-zA-Z]\b|\s*=|\s+or\s|\s{2,}", raw, maxsplit=1)[0].rstrip(" \\.,;:)")
    head, sep, last = key.rpartition("\\")
    enclosed = end >= len(text) or text[end] in ']`"\u201c\n' or text.startswith("++", end)
    if " " in last and not enclosed:
        last = last.split(" ", 1)[0]
    return f"{head}{sep}{last}" if sep else key


def _registry(run: _Run) -> None:
    """Windows registry keys."""
    for m in _matches_at(_REGISTRY, run.text, (hk.start() for hk in _HIVE_ANCHOR.finditer(run.lower))):
        if m.start() and (run.text[m.start() - 1].isalnum() or run.text[m.start() - 1] == "_"):
            continue
        key = _registry_key(m.group(), run.text, m.end())
        if "\\" in key:
            run.claim(m.start(), m.start() + len(key))
            run.add("registry", key, m.start(), m.start() + len(key))


def _long_runs(run: _Run) -> None:
    """Hashes, Ethereum and Bitcoin addresses: one pass over long alphanumeric runs."""
    classes, text, mask, kinds, add = run.classes, run.text, run.mask, run.long_kinds, run.pending.append
    for m in _LONG_RUN.finditer(classes):
        start, end = m.span()
        # the whole run, letters and digits only (a run with `_` is an identifier), and not claimed yet
        if end - start > 90 or classes.find(b"_", start - (start > 0), end) != -1 or mask.find(1, start, end) != -1:
            continue
        token = text[start:end]
        kind = _HASH_KIND.get(end - start, "")
        if kind and _HEX.fullmatch(token):  # the common case, as `_long_run_kind` would find
            value = token.lower()
        else:
            kind, value = kinds.get(token) or kinds.setdefault(token, _long_run_kind(token))
        if kind:
            mask[start:end] = _CLAIMED[: end - start]
            add((kind, value, start, end, ""))


def _long_run_kind(token: str) -> tuple[str, str]:
    """(kind, normalized value) of a long run, or ("", "") when it is none of them."""
    if token[:2] in ("0x", "0X") and len(token) == 42 and _HEX.fullmatch(token, 2):
        return "eth", token.lower()
    if len(token) in _HASH_KIND and _HEX.fullmatch(token):
        return _HASH_KIND[len(token)], token.lower()
    if _BTC.fullmatch(token) and valid_btc(token):
        return "btc", token.lower() if token[:3].lower() == "bc1" else token
    return "", ""


def _ids(run: _Run) -> None:
    """CVE ids and ATT&CK technique ids (with sub-techniques)."""
    for m in _matches_at(_CVE, run.text, (cve.start() for cve in _CVE_ANCHOR.finditer(run.lower))):
        if run.free(m.start(), m.end()) and not (m.start() and run.text[m.start() - 1].isalnum()):
            run.add("cve", m.group().upper(), m.start(), m.end())
    for m in _ATTACK.finditer(run.text):
        if run.free(m.start(), m.end()) and not (m.start() and run.text[m.start() - 1].isalnum()):
            run.add("attack_technique", m.group(), m.start(), m.end())


def _path_files(run: _Run) -> None:
    """File names at the end of Windows paths, uncommon extensions included."""
    for m in _matches_at(_PATH_FILE, run.text, (slash.end() for slash in _BACKSLASH.finditer(run.lower))):
        name = m.group("name").strip()
        if run.free(m.start(), m.end()) and "." in name.strip("."):
            run.claim(m.start(), m.end())
            run.add("filename", name, m.start(), m.start() + len(name), "path")


def _bare_urls(run: _Run) -> None:
    """Host-and-path URLs without a scheme; also collects the dotted tokens for the later pass."""
    text, size, add = run.text, len(run.text), run.dotted.append
    for start, end, token in _dotted_tokens(text, run.classes):
        if "(" in token or ")" in token:
            start, end = _balanced(text, start, end)
            token = text[start:end]
        add((start, end, token))
        if end < size and text[end] in "/:" and run.free(start, end):
            m = _BARE_URL.match(text, start)
            if m and run.free(m.start(), m.end("host")) and _plausible_host(run, m.start("host"), m.end("host")):
                _emit_url(run, m, bare=True)


def _dotted_tokens(text: str, classes: bytes) -> Iterator[tuple[int, int, str]]:
    """The matches of `_DOTTED` in `text` as (start, end, token), found from each dot between token characters.

    A match lies in a run of token characters and dots. A run of ASCII characters needs no regex: its match is
    the run without leading and trailing dots, when that has a dot but no `..` and the run does not start right
    after a `%`; other runs are left to `_DOTTED`.
    """
    for tail in _TOKEN_RUN_TAIL.finditer(classes):
        start, end = classes.rfind(b" ", 0, tail.start()) + 1, tail.end()
        run = text[start:end]
        first = start if run[0] != "." else start + len(run) - len(run.lstrip("."))
        core = run if run[-1] != "." and first == start else run.strip(".")
        if ".." in core or classes.find(b"?", start, end) != -1 or (first == start and text[start - 1 : start] == "%"):
            for m in _DOTTED.finditer(text, start, end):
                yield m.start(), m.end(), m.group()
        elif "." in core:
            yield first, first + len(core), core


def _balanced(text: str, start: int, end: int) -> tuple[int, int]:
    """A token without brackets that open or close outside it: `(evil.com)` -> `evil.com`, `t(x64).dll` kept."""
    opened, closed = text.count("(", start, end), text.count(")", start, end)
    while start < end and text[start] == "(" and opened > closed:
        start, opened = start + 1, opened - 1
    while start < end and text[end - 1] == ")" and closed > opened:
        end, closed = end - 1, closed - 1
    while start < end and text[start] == "(" and text[end - 1] == ")":
        start, end = start + 1, end - 1
    return start, end


def _dotted(run: _Run) -> None:
    """Addresses, file names and domains: each dotted token is told apart by its parts."""
    text, mask = run.text, run.mask
    for start, end, token in run.dotted:
        if mask.find(1, start, end) != -1:  # claimed by a stronger match
            continue
        if token.count("(") != token.count(")") or (text[start - 1 : start] == "/" and _detection_name(text, start)):
            continue
        parts = token.split(".")
        last = parts[-1]
        if token[:1].isdigit() and all(part.isdigit() for part in parts):
            _ipv4(run, token, start, end)
        elif not ((last.isdigit() or last.lower() in _EXTENSION_SET) and _file_name(run, parts, start)):
            _domain(run, token, start, end)


def _is_host(token: str) -> bool:
    """Whether a token is spelled like a host name and ends in a public suffix."""
    return bool(_HOST_FULL.fullmatch(token)) and is_public_suffix(token.lower())


def _ipv4(run: _Run, token: str, start: int, end: int) -> None:
    """An IPv4 address (with its CIDR suffix), unless it is a version number."""
    text = run.text
    if not _IPV4_FULL.fullmatch(token) or _VERSION_BEFORE.search(text, max(0, start - 12), start):
        return
    cidr = _CIDR.match(text, end)
    if cidr:
        token, end = token + cidr.group(), cidr.end()
    run.claim(start, end)
    run.add("ipv4", token, start, end)


def _file_name(run: _Run, parts: list[str], start: int) -> bool:
    """Record `parts` as a file name (without version suffixes like `.so.4.6`) if it ends in a known extension."""
    while len(parts) > 2 and parts[-1].isdigit():
        parts = parts[:-1]
    if len(parts) < 2 or parts[-1].lower() not in _EXTENSION_SET or run.text[start - 1 : start] in _NOT_BEFORE_FILE:
        return False
    end = start + len(".".join(parts))
    if run.rf.was_defanged(start, end):
        return False
    start = _spaced_start(run.text, start, end)
    run.claim(start, end)
    run.add("filename", run.text[start:end], start, end)
    return True


def _spaced_start(text: str, start: int, end: int) -> int:
    """Where a file name with spaces begins, when it fills a whole line, list item or table cell; else `start`."""
    if text[start - 1 : start] != " " or not _SEGMENT_END.match(text, end):
        return start
    floor = max(0, start - _MAX_PREFIX)
    segment = max(text.rfind(mark, floor, start) for mark in "\n\t|`") + 1
    if segment == 0 and floor > 0:
        return start
    words = _SPACED_PREFIX.fullmatch(text, segment, start)
    return words.start("words") if words else start


def _ipv6(run: _Run) -> None:
    """IPv6 addresses, looked for only when the text has something like one."""
    text, last = run.text, 0
    for anchor in _IPV6_ANCHOR.finditer(text):
        start = anchor.start()
        while start > max(last, anchor.start() - 40) and text[start - 1] in _IPV6_CHARS:
            start -= 1
        m = _IPV6_RE.match(text, start)
        if m is None or m.end() <= anchor.start():
            continue
        last = m.end()
        value = m.group()
        if run.free(m.start(), m.end()) and _plausible_ipv6(value):
            run.claim(m.start(), m.end())
            network = str(ipaddress.ip_network(value, strict=False)) if "/" in value else value.lower()
            run.add("ipv6", network, *m.span())


def _plausible_ipv6(value: str) -> bool:
    """A real IPv6 address or network, not a time, a MAC-like run, a C++ scope or a prefix over 128 bits."""
    address = value.split("/")[0]
    groups = [g for g in address.split(":") if g]
    if _TIME.fullmatch(address) or (len(groups) < 3 and "::" not in address) or len(groups) < 2:
        return False
    try:
        ipaddress.IPv6Network(value, strict=False)  # the address, and a prefix length of at most 128
    except ValueError:
        return False
    return True


def _domain(run: _Run, token: str, start: int, end: int) -> None:
    """A host name with a public suffix that is not a detection name or an identifier."""
    host = run.hosts.get(token)
    if host is None:
        host = run.hosts[token] = _is_host(token)
    if not host or not _plausible_host(run, start, end, token):
        return
    value = token.lower()
    text = run.text
    if text[start - 1 : start] == "." and text[start - 2 : start - 1] in "]}>":
        value = registrable_domain(value) or value  # a template host: w[org_name].example.com
    run.mask[start:end] = b"\x01" * (end - start)
    run.pending.append(("domain", value, start, end, ""))


def _detection_name(text: str, start: int) -> bool:
    """Whether the token follows `Platform/` as in the detection name `PowerShell/Pterodo.GO`."""
    return text[start - 1 : start] == "/" and bool(_DETECTION.search(text, max(0, start - 12), start))


def _plausible_host(run: _Run, start: int, end: int, host: str | None = None) -> bool:
    """Not a detection name (Win32/NukeSped.KW), a code identifier or a path component (`host`: the text there)."""
    if run.rf.was_defanged(start, end):
        return True
    host = run.text[start:end] if host is None else host
    tld = host.rsplit(".", 1)[-1]
    if tld != tld.lower() and not host.isupper():
        return False
    before = run.text[max(0, start - 1) : start]
    if before == "\\" or (before == "/" and _detection_name(run.text, start)):
        return False
    return not (host.isupper() and len(tld) == 2 and before == "/")
