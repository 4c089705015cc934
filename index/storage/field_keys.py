"""How a stored document's fields are named: the built-in ones, and metadata keys by path.

Kept apart from the columns (`index.storage.fields`) and free of numpy, so that the filter
syntax (`index.search.filters`), which the HTTP client loads, names fields the same way.
"""

from __future__ import annotations

from typing import Any

Scalar = str | int | float | bool
BUILT_IN_FIELDS = ("id", "title", "source", "author", "url", "published")
METADATA_PREFIX = "metadata."


def field_value(record: dict[str, Any], key: str) -> Any:
    """The value of field `key` in a stored document record: a built-in field by name
    (`id`, `title`, ...), a metadata field as ``metadata.<name>``, dots going into nested
    mappings (``metadata.place.country``); None when it has none."""
    if not key.startswith(METADATA_PREFIX):
        return record.get(key)
    value: Any = record.get("metadata") or {}
    for part in key[len(METADATA_PREFIX) :].split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
