"""Plain text from threat reports (txt, md, adoc, html, pdf), with table cells and links located in it.

HTML goes through the standard library's `html.parser`: it is maintained with CPython, streams (so deep nesting
cannot exhaust a tree builder), decodes entities, and lets us build the text and its offsets in one pass.
PDF goes through pdfminer.six, the extractor the corpus labels were made on, then a few text-layer repairs.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path
from typing import NamedTuple

from heistwatch.errors import InputError

MAX_BYTES = 64 * 1024 * 1024
MAX_HTML_DEPTH = 512
FORMATS = {
    ".txt": "txt",
    ".text": "txt",
    ".log": "txt",
    ".csv": "txt",
    ".md": "md",
    ".markdown": "md",
    ".adoc": "adoc",
    ".asciidoc": "adoc",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}


def _words(text: str) -> frozenset[str]:
    """The whitespace-separated words of a literal list."""
    return frozenset(text.split())


class Cell(NamedTuple):
    """A span of the text that sits in a table column with this header."""

    start: int
    end: int
    header: str


class Link(NamedTuple):
    """A span of the text that is (the label of) a hyperlink to `href`."""

    start: int
    end: int
    href: str


@dataclass(frozen=True)
class Document:
    """Extracted plain text of one input; every offset (cells, links, indicators) refers to `text`."""

    name: str
    format: str
    text: str
    sha256: str
    cells: tuple[Cell, ...] = ()
    links: tuple[Link, ...] = ()


def extract_text(path: Path) -> Document:
    """The plain text of the file at `path`, its format taken from the suffix."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(str(path), f"unsupported file type {path.suffix!r} (known: {', '.join(sorted(FORMATS))})")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(str(path), f"file is {size} bytes, more than the {MAX_BYTES} byte limit")
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(str(path), f"cannot read file: {err.strerror or err}") from err
    return document_from_bytes(raw, fmt, str(path))


def document_from_bytes(raw: bytes, format: str, name: str) -> Document:
    """The document made from the raw bytes of a file in `format`."""
    if len(raw) > MAX_BYTES:
        raise InputError(name, f"input is {len(raw)} bytes, more than the {MAX_BYTES} byte limit")
    digest = hashlib.sha256(raw).hexdigest()
    if format == "pdf":
        return _build(name, format, _pdf_text(raw, name), digest)
    return _build(name, format, decode_bytes(raw, name), digest)


def document_from_string(text: str, format: str = "txt", name: str = "<string>") -> Document:
    """The document made from text already decoded (format: txt, md, adoc or html)."""
    if format not in {"txt", "md", "adoc", "html"}:
        raise InputError(name, f"cannot read {format!r} from a string (known: adoc, html, md, txt)")
    return _build(name, format, text, hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest())


def _build(name: str, fmt: str, text: str, digest: str) -> Document:
    """The document for decoded `text`, with tables and links located by format."""
    if fmt == "html":
        text, cells, links = _html(text, name)
        return Document(name, fmt, text, digest, cells, links)
    if fmt == "md":
        return Document(name, fmt, text, digest, tuple(_markdown_cells(text)), tuple(_markdown_links(text)))
    if fmt == "adoc":
        return Document(name, fmt, text, digest, tuple(_asciidoc_cells(text)), tuple(_asciidoc_links(text)))
    return Document(name, fmt, text, digest)


# --- decoding -------------------------------------------------------------------------------------------------

_BOMS = (
    ("utf-8-sig", b"\xef\xbb\xbf"),
    ("utf-32", b"\xff\xfe\x00\x00"),
    ("utf-16", b"\xff\xfe"),
    ("utf-16", b"\xfe\xff"),
)


def decode_bytes(raw: bytes, name: str) -> str:
    """Text from bytes: a BOM decides, else UTF-8, else cp1252, else latin-1; NUL bytes mean a binary file."""
    for encoding, bom in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError as err:
                raise InputError(
                    name, f"starts with a {encoding} byte-order mark but is not {encoding}: {err}"
                ) from err
    if b"\x00" in raw:
        raise InputError(name, f"binary file (NUL byte at offset {raw.index(0)}), not text")
    for encoding in ("utf-8", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


# --- PDF ------------------------------------------------------------------------------------------------------

_PDF_FIXES = (
    (re.compile(r"(?i)\bxn[\u2013\u2014\u2012\u2212]"), "xn--"),
    # a word broken at a line end with a hyphen: only plain lower-case words, never hex, ids or paths
    (re.compile(r"(?<![\w./\\:-])([a-z]*[g-z][a-z]*)-\n(?=[a-z]+[\s,.;:)])"), r"\1"),
)


def _pdf_text(raw: bytes, name: str) -> str:
    """The pdfminer.six text layer of a PDF, with the usual damage repaired."""
    from pdfminer.high_level import extract_text as pdfminer_text
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfparser import PDFSyntaxError
    from pdfminer.psexceptions import PSException

    if not raw.lstrip()[:5].startswith(b"%PDF"):
        raise InputError(name, "not a PDF file (no %PDF header)")
    try:
        text: str = pdfminer_text(BytesIO(raw))
    except (PDFPasswordIncorrect, PDFEncryptionError) as err:
        raise InputError(name, f"encrypted PDF, cannot read its text: {type(err).__name__}") from err
    except (PDFSyntaxError, PSException, ValueError, KeyError, TypeError, AssertionError) as err:
        raise InputError(name, f"corrupt PDF: {type(err).__name__}: {err}") from err
    return repair_pdf_text(text)


def repair_pdf_text(text: str) -> str:
    """Undo text-layer damage: dashes for `xn--`, `¥` for a backslash, words hyphenated across lines."""
    text = text.replace("\u00a5", "\\")
    for pattern, repl in _PDF_FIXES:
        text = pattern.sub(repl, text)
    return text


# --- HTML -----------------------------------------------------------------------------------------------------

_VOID = _words("area base br col embed hr img input link meta param source track wbr")
_BLOCK = _words(
    """
    address article aside blockquote br dd div dl dt figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr
    li main nav ol p pre section table tbody thead tfoot tr ul title
    """
)
_SELF_CLOSING = _words("p li dt dd tr td th option")
_DROP = _words("script style template noscript")


class _HtmlText(HTMLParser):
    """Streams HTML into plain text, recording table cells (with their column header) and links."""

    def __init__(self, name: str) -> None:
        super().__init__(convert_charrefs=True)
        self.name = name
        self.parts: list[str] = []
        self.size = 0
        self.stack: list[str] = []
        self.drop = 0
        self.cells: list[Cell] = []
        self.links: list[Link] = []
        self.anchor: tuple[int, str] | None = None
        self.cell: tuple[int, bool] | None = None  # (index of the cell's first text part, is a header cell)
        self.headers: list[str] = []
        self.column = 0
        self.row_headers: list[str] = []

    def _emit(self, text: str) -> None:
        """Append text and keep the running length (the offset of the next text)."""
        self.parts.append(text)
        self.size += len(text)

    def _newline(self) -> None:
        """End the current line unless it is already ended."""
        if self.parts and not self.parts[-1].endswith("\n"):
            self._emit("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open an element: blocks start lines, cells and links start spans."""
        if tag in _DROP:
            self.drop += 1
        if tag not in _VOID:
            self._push(tag)
        if tag in _BLOCK:
            self._newline()
        if tag == "a":
            href = dict(attrs).get("href")
            self.anchor = (self.size, href) if href else None
        elif tag in ("td", "th"):
            self._emit("\t")
            self.cell = (len(self.parts), tag == "th")
        elif tag == "tr":
            self.column = 0
            self.row_headers = []

    def _push(self, tag: str) -> None:
        """Track nesting (implicitly closing p, li, td ...) and refuse HTML bombs."""
        if tag in _SELF_CLOSING and tag in self.stack[-3:]:
            del self.stack[len(self.stack) - 1 - self.stack[::-1].index(tag) :]
        self.stack.append(tag)
        if len(self.stack) > MAX_HTML_DEPTH:
            raise InputError(self.name, f"HTML nested deeper than {MAX_HTML_DEPTH} elements (an HTML bomb?)")

    def handle_endtag(self, tag: str) -> None:
        """Close an element and the cell or link span it opened."""
        if tag in self.stack:
            del self.stack[len(self.stack) - 1 - self.stack[::-1].index(tag) :]
            if tag in _DROP:
                self.drop = max(0, self.drop - 1)
        if tag == "a" and self.anchor:
            self.links.append(Link(self.anchor[0], self.size, self.anchor[1]))
            self.anchor = None
        elif tag in ("td", "th"):
            self._close_cell()
        elif tag == "tr" and self.row_headers:
            self.headers = self.row_headers
        if tag in _BLOCK:
            self._newline()

    def _close_cell(self) -> None:
        """Record a header cell's text, or a data cell's span under its column header."""
        if self.cell is None:
            return
        first_part, is_header = self.cell
        if is_header:
            self.row_headers.append("".join(self.parts[first_part:]).strip())
        elif self.column < len(self.headers):
            start = self.size - sum(len(part) for part in self.parts[first_part:])
            self.cells.append(Cell(start, self.size, self.headers[self.column]))
        self.column += 1
        self.cell = None

    def handle_data(self, data: str) -> None:
        """Keep text outside script, style and template elements."""
        if not self.drop:
            self._emit(data)


def _html(text: str, name: str) -> tuple[str, tuple[Cell, ...], tuple[Link, ...]]:
    """Plain text, cells and links of an HTML page."""
    parser = _HtmlText(name)
    parser.feed(text)
    parser.close()
    return "".join(parser.parts), tuple(parser.cells), tuple(parser.links)


# --- Markdown and AsciiDoc --------------------------------------------------------------------------------------

_MD_LINK = re.compile(
    r"\[([^\]\n]{0,500})\]\((<[^>\n]{1,2000}>|[^)\s]{1,2000})(?:\s+\"[^\"\n]*\")?\)|<(https?://[^>\s]{1,2000})>"
)
_MD_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_PIPE = re.compile(r"(?<!\\)\|")
_ADOC_LINK = re.compile(
    r"\b((?:https?|ftp)://[^\s\[\]]{1,2000})\[([^\]\n]{0,500})\]|link:([^\s\[\]]{1,2000})\[([^\]\n]*)\]"
)
_ADOC_TABLE = re.compile(r"^\|={3,}[ \t]*$", re.MULTILINE)


def _markdown_links(text: str) -> list[Link]:
    """Inline links `[label](href)` and autolinks `<https://...>`."""
    links = []
    for m in _MD_LINK.finditer(text):
        href = (m.group(2) or m.group(3)).strip("<>")
        links.append(Link(m.start(), m.end(), href))
    return links


def _line_cells(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The (start, end) spans of the cells of one pipe-table line, stripped of spaces."""
    line = text[start:end]
    bounds = [m.start() for m in _PIPE.finditer(line)]
    edges = [-1, *bounds, len(line)] if not line.lstrip().startswith("|") else [*bounds, len(line)]
    spans = []
    for left, right in itertools.pairwise(edges):
        chunk = line[left + 1 : right]
        if chunk.strip():
            lead = len(chunk) - len(chunk.lstrip())
            spans.append((start + left + 1 + lead, start + left + 1 + len(chunk.rstrip())))
        elif right < len(line) or chunk:
            spans.append((start + left + 1, start + left + 1))
    if spans and spans[-1][0] == spans[-1][1] and line.rstrip().endswith("|"):
        spans.pop()
    return spans


def _lines(text: str) -> list[tuple[int, int]]:
    """The (start, end) spans of every line, without the newline."""
    spans, pos = [], 0
    for line in text.split("\n"):
        spans.append((pos, pos + len(line)))
        pos += len(line) + 1
    return spans


def _markdown_cells(text: str) -> list[Cell]:
    """Cells of GitHub pipe tables: a header line, a `---|---` line, then rows."""
    lines = _lines(text)
    cells: list[Cell] = []
    headers: list[str] = []
    for index, (start, end) in enumerate(lines):
        line = text[start:end]
        if "|" not in line:
            headers = []
        elif headers:
            for column, (a, b) in enumerate(_line_cells(text, start, end)):
                if column < len(headers) and a < b:
                    cells.append(Cell(a, b, headers[column]))
        elif index + 1 < len(lines) and _MD_SEPARATOR.match(text[lines[index + 1][0] : lines[index + 1][1]]):
            headers = [text[a:b] for a, b in _line_cells(text, start, end)]
    return [cell for cell in cells if not _MD_SEPARATOR.match(text[cell.start : cell.end])]


def _asciidoc_links(text: str) -> list[Link]:
    """URL macros `https://host/path[label]` and `link:target[label]`."""
    return [Link(m.start(), m.end(), m.group(1) or m.group(3)) for m in _ADOC_LINK.finditer(text)]


def _asciidoc_cells(text: str) -> list[Cell]:
    """Cells of `|===` tables; the first row is the header, and its cell count sets the columns."""
    cells: list[Cell] = []
    fences = [m for m in _ADOC_TABLE.finditer(text)]
    for opening, closing in zip(fences[::2], fences[1::2], strict=False):
        cells += _asciidoc_table(text, opening.end(), closing.start())
    return cells


def _asciidoc_table(text: str, start: int, end: int) -> list[Cell]:
    """Cells of one AsciiDoc table body between its fences."""
    spans = []
    for m in _PIPE.finditer(text, start, end):
        nxt = _PIPE.search(text, m.end(), end)
        stop = nxt.start() if nxt else end
        chunk = text[m.end() : stop]
        lead = len(chunk) - len(chunk.lstrip())
        spans.append((m.end() + lead, m.end() + len(chunk.rstrip()), m.start()))
    if not spans:
        return []
    first_line_end = text.find("\n", spans[0][2])
    columns = sum(1 for s in spans if s[2] < first_line_end) or 1
    headers = [text[a:b] for a, b, _ in spans[:columns]]
    return [Cell(a, b, headers[i % columns]) for i, (a, b, _) in enumerate(spans) if i >= columns and a < b]
