"""Ingest: text from reports, indicators of compromise in it, and whether each is an indicator or a mention."""

from heistwatch.ingest.extract import Found, extract_indicators
from heistwatch.ingest.text import Cell, Document, Link, document_from_string, extract_text

__all__ = ["Cell", "Document", "Found", "Link", "document_from_string", "extract_indicators", "extract_text"]
