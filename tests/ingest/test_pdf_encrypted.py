"""An encrypted PDF is refused with a clear error naming the file (built by hand: no encryptor is installed)."""

from __future__ import annotations

import pytest

from heistwatch.errors import InputError
from heistwatch.ingest.text import document_from_bytes


def _encrypted_pdf() -> bytes:
    """A one-page PDF whose trailer points at a Standard security handler with a user password set."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> /P -4 >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 5\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    file_id = b"<" + b"ab" * 16 + b">"
    out += b"trailer\n<< /Size 5 /Root 1 0 R /Encrypt 4 0 R /ID [%s %s] >>\n" % (file_id, file_id)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def test_encrypted_pdf_is_refused_by_name() -> None:
    with pytest.raises(InputError, match="encrypted PDF") as err:
        document_from_bytes(_encrypted_pdf(), "pdf", "secret.pdf")
    assert "secret.pdf" in str(err.value)
