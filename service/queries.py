"""The one place a question and its options are checked, for every surface that takes one.

REST (`/search`, `/search/documents`, the LLM formats), the MCP `search` tool and `rag ask` all
call `checked_query`, `checked_k` and `checked_context`; each turns `InvalidQueryError` into its
own kind of refusal (a 422, a tool error, a CLI usage error) with the same message. A question
is refused when it is empty or white space, longer than the limit, or not valid Unicode (a lone
surrogate, which JSON escapes such as "\\ud800" can carry and no tokenizer can read).
Out of scope: the limits' values (service/config.py) and what a valid question retrieves.
"""

from __future__ import annotations

from index.search.options import MAX_CONTEXT


class InvalidQueryError(ValueError):
    """A question or option the service refuses; `code` is machine-readable, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def checked_query(query: str, max_chars: int) -> str:
    """The question with surrounding white space removed."""
    if not query.strip():
        raise InvalidQueryError("invalid_query", "query must not be empty or whitespace")
    if len(query) > max_chars:
        raise InvalidQueryError(
            "query_too_long",
            f"query is {len(query)} characters; the limit is {max_chars} (RAG_MAX_QUERY_CHARS)",
        )
    try:
        query.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidQueryError(
            "invalid_query",
            f"query is not valid Unicode: a lone surrogate at character {error.start}",
        ) from error
    return query.strip()


def checked_k(k: int, max_k: int) -> int:
    if not 1 <= k <= max_k:
        raise InvalidQueryError("k_out_of_range", f"k must be between 1 and {max_k} (RAG_MAX_K); got {k}")
    return k


def checked_context(context: int) -> int:
    if not 0 <= context <= MAX_CONTEXT:
        raise InvalidQueryError(
            "context_out_of_range", f"context must be between 0 and {MAX_CONTEXT}; got {context}"
        )
    return context
