"""What a collection may be called, and which collections an API key entry is scoped to.

In scope: the name rule (checked once here, for HTTP, MCP, the CLI and the settings) and the
`key@news+sport` syntax of RAG_API_KEYS and RAG_ADMIN_KEYS entries. Imports nothing of the
service, so `service.config` can validate key scopes with it. Out of scope: where a collection's
index lives and opening it (service/collections.py), and checking keys (service/auth.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

DEFAULT_COLLECTION = "default"  # the index of RAG_INDEX_DIR, served by the routes without a prefix
COLLECTION_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
COLLECTION_NAME_RULE = (
    "a collection name is 1 to 64 characters: lowercase letters, digits, '-' and '_', "
    "starting with a letter or digit"
)
_NAME = re.compile(COLLECTION_NAME_PATTERN)
SCOPE_SEPARATOR, SCOPE_JOINER = "@", "+"


class InvalidCollectionNameError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"{name[:80]!r} is not a valid collection name: {COLLECTION_NAME_RULE}")
        self.message = str(self)


def checked_collection_name(name: str) -> str:
    """`name` itself; `InvalidCollectionNameError` (a 422, a tool error, a CLI message) if it
    breaks the rule. The rule also keeps a name a single, plain directory name."""
    if not _NAME.fullmatch(name):
        raise InvalidCollectionNameError(name)
    return name


def collection_of(path_params: Mapping[str, Any]) -> str:
    """The collection a request works on: its `{collection}` path segment, else `default`."""
    return str(path_params.get("collection", DEFAULT_COLLECTION))


def scoped_key(entry: str) -> tuple[str, frozenset[str] | None]:
    """An entry of RAG_API_KEYS or RAG_ADMIN_KEYS as (key, collections it may use); None means
    every collection. `k2@news+sport` is key `k2` for `news` and `sport`; a key without `@` may use
    every collection, so a key itself never contains `@`."""
    key, separator, scope = entry.rpartition(SCOPE_SEPARATOR)
    if not separator:
        return entry, None
    if not key:
        raise ValueError(f"API key entry {entry[:3]}... has no key before {SCOPE_SEPARATOR!r}")
    names = scope.split(SCOPE_JOINER)
    for name in names:
        checked_collection_name(name)
    return key, frozenset(names)
