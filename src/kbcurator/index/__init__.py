"""The versioned LanceDB index: build, publish, read, diff and roll back releases.

RAG services need only ``open_index(uri, version)`` and ``KBIndex.search(text, k)``.
"""

from kbcurator.index.reader import KBIndex, SearchHit, open_index

__all__ = ["KBIndex", "SearchHit", "open_index"]
