"""heistwatch: defend a cryptocurrency exchange against state-sponsored theft campaigns."""

from heistwatch.errors import (
    ClaimsFileError,
    HeistwatchError,
    InputError,
    NotFoundError,
    StixImportError,
    StoreError,
)
from heistwatch.kb import (
    KnowledgeStore,
    NameIndex,
    Resolution,
    SQLiteStore,
    build_knowledge_base,
    resolve_name,
)

__version__ = "0.1.0"

__all__ = [
    "ClaimsFileError",
    "HeistwatchError",
    "InputError",
    "KnowledgeStore",
    "NameIndex",
    "NotFoundError",
    "Resolution",
    "SQLiteStore",
    "StixImportError",
    "StoreError",
    "__version__",
    "build_knowledge_base",
    "resolve_name",
]
