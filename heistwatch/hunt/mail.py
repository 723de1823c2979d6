"""Mail as a hunt reads it: `.eml` files, mbox files and folders of them, parsed with the standard `email` package.

Each message becomes a `Mail`: its sender infrastructure (From / Reply-To / Return-Path / Message-ID domains,
Received hops with their hosts and addresses, SPF / DKIM / DMARC verdicts), its links (from text and HTML parts,
an anchor keeping its visible text so a link that shows one host and goes to another stands out) and its
attachments (name, declared type, size, MD5 / SHA-1 / SHA-256 and the bytes). An mbox is streamed message by
message in bounded memory. A message that cannot be read, or is read with defects, becomes a `MailProblem`
naming the file and the message's number in it; reading goes on with the next message.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parseaddr
from html.parser import HTMLParser
from pathlib import Path
from typing import BinaryIO

from heistwatch.errors import InputError
from heistwatch.hunt.matcher import normalize_host, normalize_url, parse_ip

MAX_MESSAGE_BYTES = 64 << 20
MAX_TEXT_CHARS = 200_000
_READ_CHUNK = 1 << 20
_MAIL_SUFFIXES = frozenset({".eml", ".mbox", ".mbx", ".mbs", ""})
_HEADER_LINE = re.compile(rb"^[!-9;-~]+:")
_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"'`]+|\bwww\.[a-z0-9-]+(?:\.[a-z0-9-]+)+[^\s<>\"'`]*", re.IGNORECASE)
_HOST_TEXT = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?:www\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)+)(?:[:/?#]|$)", re.I)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_BRACKETED = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")
_RECEIVED_FROM = re.compile(r"\bfrom\s+(\S+)(.*?)(?=\bby\s|\bwith\s|\bid\s|;|$)", re.IGNORECASE | re.DOTALL)
_RECEIVED_BY = re.compile(r"\bby\s+([^\s;()]+)", re.IGNORECASE)
_RDNS = re.compile(r"\(\s*([A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,})\.?\s*\[")
_AUTH_RESULT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)
_MBOXRD_QUOTED = re.compile(rb"^>+From ")
_TRAILING = ".,;:!?)]}'\""


@dataclass(frozen=True)
class Hop:
    """One Received header: the name the sender gave (HELO), its reverse DNS name, its addresses, the receiver."""

    helo: str | None
    rdns: str | None
    ips: tuple[str, ...]
    by: str | None


@dataclass(frozen=True)
class Link:
    """A link in a message: target URL and host; for an HTML anchor, its visible text."""

    url: str
    host: str
    part: str  # "text" or "html"
    text: str = ""


@dataclass(frozen=True)
class Attachment:
    """An attached file: name, declared content type, size, hashes and the decoded bytes."""

    name: str
    content_type: str
    size: int
    md5: str
    sha1: str
    sha256: str
    data: bytes = field(repr=False, compare=False)


@dataclass(frozen=True)
class Mail:
    """One parsed message; `index` is its number in its file, counting from 1."""

    file: str
    index: int
    subject: str
    date: str | None
    message_id: str | None
    from_address: str
    from_name: str
    from_domain: str | None
    reply_to: str | None
    reply_to_domain: str | None
    return_path_domain: str | None
    message_id_domain: str | None
    hops: tuple[Hop, ...]
    auth: dict[str, str]  # "spf" / "dkim" / "dmarc" -> verdict, from the topmost Authentication-Results
    text: str
    links: tuple[Link, ...]
    attachments: tuple[Attachment, ...]
    defects: tuple[str, ...] = ()


@dataclass(frozen=True)
class MailProblem:
    """A file or message that could not be read, or was read with defects; index 0 means the file itself."""

    file: str
    index: int
    problem: str


def mail_files(paths: Iterable[Path]) -> list[Path]:
    """The files to read: given files as they are; in folders, mail-named files and files that look like mail."""
    out: list[Path] = []
    for path in paths:
        if not path.is_dir():
            out.append(path)
            continue
        for child in sorted(path.rglob("*")):
            if child.is_file() and not child.name.startswith(".") and _mail_like(child):
                out.append(child)
    return out


def _mail_like(path: Path) -> bool:
    """Whether a file found in a folder should be read: a mail suffix, or a first line of mbox or headers."""
    if path.suffix.lower() in _MAIL_SUFFIXES:
        return True
    try:
        with path.open("rb") as stream:
            head = stream.read(256)
    except OSError:
        return True  # reading it again reports the problem with its location
    return head.startswith(b"From ") or bool(_HEADER_LINE.match(head))


def read_mail(
    paths: Iterable[Path],
    *,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[Mail | MailProblem]:
    """Every message in the files and folders, each file read as mbox or as one message; problems in between."""
    for path in mail_files(paths):
        try:
            with path.open("rb") as stream:
                yield from _read_file(stream, str(path), max_message_bytes, on_bytes)
        except OSError as exc:
            yield MailProblem(str(path), 0, f"cannot read: {exc.strerror or exc}")


def _read_file(
    stream: BinaryIO, name: str, max_bytes: int, on_bytes: Callable[[int], None] | None
) -> Iterator[Mail | MailProblem]:
    """The messages of one open file, as mbox when it starts with a From_ line, else as one message."""
    is_mbox = stream.read(5) == b"From "
    stream.seek(0)
    raw = _mbox_messages(stream, max_bytes) if is_mbox else _single_message(stream, max_bytes)
    for index, data, consumed in raw:
        if on_bytes:
            on_bytes(consumed)
        if data is None:
            yield MailProblem(name, index, f"message larger than {max_bytes:,} bytes, skipped")
        else:
            yield from _parse_or_problem(data, name, index)


def _single_message(stream: BinaryIO, max_bytes: int) -> Iterator[tuple[int, bytes | None, int]]:
    """The whole file as message 1 (None when it is larger than `max_bytes`), with the bytes it took."""
    data = stream.read(max_bytes + 1)
    if len(data) <= max_bytes:
        yield 1, data, len(data)
        return
    skipped = len(data) + sum(len(chunk) for chunk in iter(lambda: stream.read(_READ_CHUNK), b""))
    yield 1, None, skipped


def _mbox_messages(stream: BinaryIO, max_bytes: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(number, bytes or None when too large, bytes consumed) per message; a From_ line after a blank one splits."""
    parts: list[bytes] = []
    size, consumed, index = 0, 0, 0
    at_line_start, previous_blank = True, True
    while line := stream.readline(_READ_CHUNK):
        starts_line, at_line_start = at_line_start, line.endswith(b"\n")
        consumed += len(line)
        if starts_line and previous_blank and line.startswith(b"From "):
            if index:
                yield index, (b"".join(parts) if size <= max_bytes else None), consumed - len(line)
            parts, size, consumed, index, previous_blank = [], 0, len(line), index + 1, False
            continue
        if starts_line and _MBOXRD_QUOTED.match(line):
            line = line[1:]
        previous_blank = starts_line and at_line_start and not line.strip(b"\r\n")
        size += len(line)
        if size <= max_bytes:
            parts.append(line)
        elif parts:
            parts = []  # too large: keep counting, stop holding
    if index:
        yield index, (b"".join(parts) if size <= max_bytes else None), consumed


def _parse_or_problem(data: bytes, name: str, index: int) -> Iterator[Mail | MailProblem]:
    """The parsed message and, when it had defects, a problem naming them; or only a problem."""
    try:
        mail = parse_message(data, file=name, index=index)
    except InputError as exc:
        yield MailProblem(name, index, exc.problem)
        return
    except Exception as exc:  # the stdlib header parser has known crashes on hostile input; one bad message only
        yield MailProblem(name, index, f"cannot parse: {type(exc).__name__}: {exc}")
        return
    if mail.defects:
        yield MailProblem(name, index, "read with defects: " + ", ".join(mail.defects))
    yield mail


def parse_message(data: bytes, *, file: str = "-", index: int = 1) -> Mail:
    """One message from its bytes; raises InputError when the bytes hold no mail headers at all."""
    message = BytesParser(policy=policy.default).parsebytes(data)
    headers = _raw_headers(message)
    if not headers:
        raise InputError(f"{file} #{index}", "no mail headers: not an e-mail message")
    from_name, from_address = _address(headers, "from")
    reply_to = _address(headers, "reply-to")[1] or None
    message_id = _first(headers, "message-id")
    text_parts, links, attachments, defects = _walk(message)
    return Mail(
        file=file,
        index=index,
        subject=_first(headers, "subject") or "",
        date=_first(headers, "date"),
        message_id=message_id,
        from_address=from_address,
        from_name=from_name,
        from_domain=_domain_of(from_address),
        reply_to=reply_to,
        reply_to_domain=_domain_of(reply_to),
        return_path_domain=_domain_of(_address(headers, "return-path")[1]),
        message_id_domain=_domain_of(message_id.strip("<>") if message_id else None),
        hops=tuple(parse_received(value) for value in headers.get("received", ())),
        auth=parse_auth_results(headers.get("authentication-results", ())[:1]),
        text="\n".join(text_parts)[:MAX_TEXT_CHARS],
        links=tuple(dict.fromkeys(links)),
        attachments=tuple(attachments),
        defects=tuple(sorted({type(d).__name__ for d in defects})),
    )


def _raw_headers(message: Message) -> dict[str, list[str]]:
    """Lower-case header name -> its raw values, top first; read once, without the header registry's parsing."""
    out: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        out.setdefault(name.lower(), []).append(str(value))
    return out


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    """The first value of a header, encoded words decoded and folding removed, or None when absent."""
    values = headers.get(name)
    return _decode_words(values[0]) if values else None


def _decode_words(value: str) -> str:
    """Header text with RFC 2047 encoded words decoded (left as written when they cannot be) and folding removed."""
    try:
        text = str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        text = value
    return " ".join(text.split())


def _address(headers: dict[str, list[str]], name: str) -> tuple[str, str]:
    """(display name, lower-case address) of an address header; empty strings when absent or unreadable."""
    values = headers.get(name)
    if not values:
        return "", ""
    display, address = parseaddr(" ".join(values[0].split()))
    return _decode_words(display).strip(), address.strip().lower()


def _domain_of(address: str | None) -> str | None:
    """The host part of an address (normalized like any host), or None."""
    if not address or "@" not in address:
        return None
    return normalize_host(address.rpartition("@")[2].strip("<> ")) or None


def parse_received(value: str) -> Hop:
    """The HELO name, reverse DNS name, addresses and receiving host written in one Received header."""
    text = " ".join(value.split())
    sender = _RECEIVED_FROM.search(text)
    receiver = _RECEIVED_BY.search(text)
    from_part = sender.group(0) if sender else ""
    candidates = _BRACKETED.findall(from_part) + _IPV4.findall(from_part)
    ips = tuple(dict.fromkeys(ip for ip in candidates if parse_ip(ip) is not None))
    rdns = _RDNS.search(from_part)
    helo = sender.group(1).strip("[]()") if sender else None
    return Hop(
        helo=helo or None,
        rdns=rdns.group(1).lower() if rdns else None,
        ips=ips,
        by=receiver.group(1).lower() if receiver else None,
    )


def parse_auth_results(values: Iterable[str]) -> dict[str, str]:
    """method -> verdict (spf, dkim, dmarc) from Authentication-Results headers; the first verdict of each wins."""
    verdicts: dict[str, str] = {}
    for value in values:
        for method, verdict in _AUTH_RESULT.findall(value):
            verdicts.setdefault(method.lower(), verdict.lower())
    return verdicts


def _walk(message: EmailMessage) -> tuple[list[str], list[Link], list[Attachment], list[object]]:
    """Texts, links, attachments and defects of every part of a message."""
    texts: list[str] = []
    links: list[Link] = []
    attachments: list[Attachment] = []
    defects: list[object] = list(message.defects)
    for part in message.walk():
        defects.extend(part.defects)
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        raw = _raw_headers(part)
        disposition = " ".join(raw.get("content-disposition", ())).strip().lower()
        named = disposition or "name" in " ".join(raw.get("content-type", ())).lower()
        name = part.get_filename() if named else None  # the parsed parameters only where a name can be
        if name or disposition.startswith("attachment"):
            attachments.append(_attachment(part, name or "(unnamed)", content_type))
        elif content_type == "text/html":
            text, anchors = html_text_and_links(_part_text(part))
            texts.append(text)
            links.extend(anchors)
        elif content_type.startswith("text/"):
            text = _part_text(part)
            texts.append(text)
            links.extend(text_links(text))
    return texts, links, attachments, defects


def _attachment(part: Message, name: str, content_type: str) -> Attachment:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    return Attachment(
        name=name,
        content_type=content_type,
        size=len(data),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )


def _part_text(part: Message) -> str:
    """A text part's content, decoded by its charset; undecodable bytes replaced, an unknown charset as UTF-8."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def text_links(text: str, *, part: str = "text") -> list[Link]:
    """The URLs written out in text (`www.` ones read as http)."""
    out = []
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        link = _link(url if "://" in url else f"http://{url}", part, "")
        if link:
            out.append(link)
    return out


def _link(url: str, part: str, text: str) -> Link | None:
    """A link when `url` is an absolute URL with a host, else None."""
    parsed = normalize_url(url)
    return Link(url=url, host=parsed[2], part=part, text=text) if parsed else None


def visible_host(text: str) -> str | None:
    """The host an anchor's visible text shows (`https://a.com/x`, `www.a.com`, `a.com`), if it shows one."""
    match = _HOST_TEXT.match(text.strip())
    return normalize_host(match.group(1)) if match else None


class _Anchors(HTMLParser):
    """Visible text and the anchors (`a` / `area` href with their text) of an HTML part, in one streaming pass."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.loose: list[str] = []  # text outside anchors, where written-out URLs are links of their own
        self.links: list[Link] = []
        self._href: str | None = None
        self._anchor: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        elif tag in ("a", "area"):
            self._close_anchor()
            self._href = dict(attrs).get("href")
        elif tag in ("br", "p", "div", "tr", "li"):
            self.text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden = max(0, self._hidden - 1)
        elif tag in ("a", "area"):
            self._close_anchor()

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.text.append(data)
            (self._anchor if self._href is not None else self.loose).append(data)

    def close(self) -> None:
        super().close()
        self._close_anchor()

    def _close_anchor(self) -> None:
        if self._href:
            link = _link(self._href.strip(), "html", " ".join("".join(self._anchor).split()))
            if link:
                self.links.append(link)
        self._href, self._anchor = None, []


def html_text_and_links(html: str) -> tuple[str, list[Link]]:
    """The visible text of an HTML part, and its anchors and the URLs written out in text outside them."""
    parser = _Anchors()
    parser.feed(html)
    parser.close()
    return "".join(parser.text), parser.links + text_links(" ".join(parser.loose), part="html")
