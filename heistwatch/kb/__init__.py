"""The knowledge base: actors, alias claims, campaigns, malware, techniques, indicators, with provenance."""

from heistwatch.kb.build import BuildReport, build_knowledge_base
from heistwatch.kb.names import NameIndex
from heistwatch.kb.resolve import Resolution, Resolver, resolve_name
from heistwatch.kb.sqlite import SQLiteStore
from heistwatch.kb.store import KnowledgeStore

__all__ = [
    "BuildReport",
    "KnowledgeStore",
    "NameIndex",
    "Resolution",
    "Resolver",
    "SQLiteStore",
    "build_knowledge_base",
    "resolve_name",
]
