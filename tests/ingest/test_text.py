"""Text extraction: formats, tables, links, encodings, and refusing bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heistwatch.errors import InputError
from heistwatch.ingest import document_from_string, extract_text
from heistwatch.ingest.text import MAX_HTML_DEPTH, decode_bytes, document_from_bytes, repair_pdf_text

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _cell_texts(text: str, fmt: str) -> dict[str, list[str]]:
    doc = document_from_string(text, fmt)
    out: dict[str, list[str]] = {}
    for cell in doc.cells:
        out.setdefault(cell.header, []).append(doc.text[cell.start : cell.end])
    return out


def test_html_text_entities_scripts_and_tables() -> None:
    page = (
        "<html><head><style>p{}</style><script>var x='evil.com';</script></head><body>"
        "<p>Fish &amp; chips</p><table><tr><th>SHA-1</th><th>Name</th></tr>"
        "<tr><td>abc</td><td>x.exe</td></tr></table><a href='https://ref.example/'>report</a></body></html>"
    )
    doc = document_from_string(page, "html")
    assert "Fish & chips" in doc.text
    assert "evil.com" not in doc.text
    assert {c.header: doc.text[c.start : c.end] for c in doc.cells} == {"SHA-1": "abc", "Name": "x.exe"}
    assert [(doc.text[link.start : link.end], link.href) for link in doc.links] == [("report", "https://ref.example/")]


def test_html_bomb_is_refused() -> None:
    with pytest.raises(InputError, match="nested deeper"):
        document_from_string("<div>" * (MAX_HTML_DEPTH + 5), "html")


def test_unclosed_paragraphs_are_not_a_bomb() -> None:
    doc = document_from_string("<p>x" * (MAX_HTML_DEPTH * 2), "html")
    assert doc.text.count("x") == MAX_HTML_DEPTH * 2


def test_markdown_pipe_table_and_links() -> None:
    text = "| Hash | File |\n|---|:---:|\n| `aa` | a.exe |\n| bb | b b.dll |\n\nSee [blog](https://ref.example/x)."
    assert _cell_texts(text, "md") == {"Hash": ["`aa`", "bb"], "File": ["a.exe", "b b.dll"]}
    doc = document_from_string(text, "md")
    assert [link.href for link in doc.links] == ["https://ref.example/x"]


def test_asciidoc_table_and_links() -> None:
    text = '[options="header"]\n|===\n|SHA-1|Name\n|`AA`|one.exe\n|BB|two.exe\n|===\nhttps://ref.example/a[blog]\n'
    assert _cell_texts(text, "adoc") == {"SHA-1": ["`AA`", "BB"], "Name": ["one.exe", "two.exe"]}
    assert [link.href for link in document_from_string(text, "adoc").links] == ["https://ref.example/a"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\xef\xbb\xbfevil.com", "evil.com"),
        ("evil.com".encode("utf-16"), "evil.com"),
        ("caf\u00e9".encode(), "caf\u00e9"),
        ("caf\u00e9 \u2013".encode("cp1252"), "caf\u00e9 \u2013"),
        (b"\x81\x8d", "\x81\x8d"),
    ],
)
def test_decoding(raw: bytes, expected: str) -> None:
    assert decode_bytes(raw, "x") == expected


def test_binary_and_broken_utf16_are_refused() -> None:
    with pytest.raises(InputError, match="binary"):
        decode_bytes(b"MZ\x00\x00\x90", "sample.txt")
    with pytest.raises(InputError, match="utf-16"):
        decode_bytes(b"\xff\xfea", "odd.txt")


def test_files_by_suffix(tmp_path: Path) -> None:
    path = tmp_path / "r.md"
    path.write_bytes(b"evil[.]com\n")
    doc = extract_text(path)
    assert (doc.format, doc.text, doc.name) == ("md", "evil[.]com\n", str(path))
    assert len(doc.sha256) == 64
    with pytest.raises(InputError, match="unsupported"):
        extract_text(tmp_path / "r.docx")
    with pytest.raises(InputError, match="cannot read"):
        extract_text(tmp_path / "missing.txt")


def test_corrupt_and_fake_pdfs_are_refused() -> None:
    with pytest.raises(InputError, match="not a PDF"):
        document_from_bytes(b"hello", "pdf", "x.pdf")
    with pytest.raises(InputError, match=r"x\.pdf"):
        document_from_bytes(b"%PDF-1.7\n1 0 obj <<>> garbage", "pdf", "x.pdf")


def test_pdf_repairs() -> None:
    text = (
        "xn\u2013thvitstore-c7a.com HKCU\u00a5Software\u00a5X see the docu-\nment and 3a4b-\nc9d0 and bad-\nactor.com"
    )
    repaired = repair_pdf_text(text)
    assert "xn--thvitstore-c7a.com" in repaired
    assert "HKCU\\Software\\X" in repaired
    assert "document" in repaired
    assert "3a4b-\nc9d0" in repaired


def test_corpus_pdf_text_layer() -> None:
    pdf = DATA / "ioc-corpus" / "docs" / "prodaft-flubot-report.pdf"
    if not pdf.is_file():
        pytest.skip("shared corpus not present")
    doc = extract_text(pdf)
    assert "xn--" in doc.text and "xn\u2013" not in doc.text


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(["txt", "md", "adoc", "html", "pdf"]))
def test_never_crashes_on_bytes(raw: bytes, fmt: str) -> None:
    try:
        doc = document_from_bytes(raw, fmt, "fuzz")
    except InputError:
        return
    for cell in doc.cells:
        assert 0 <= cell.start <= cell.end <= len(doc.text)
    for link in doc.links:
        assert 0 <= link.start <= link.end <= len(doc.text)
