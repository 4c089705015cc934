"""Sentence boundaries with exact character offsets.

A small rule-based splitter: a sentence ends at a newline or at `.`, `!`, `?` (optionally
followed by a closing quote or bracket) when whitespace and an upper-case letter, digit or
opening quote follow. Good enough for news prose; it does not know every abbreviation
("U.S. bid" stays whole because "bid" is lower case, "U.S. Army" would split).
"""

from __future__ import annotations

import re
from typing import NamedTuple

_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])|\n+")


class Span(NamedTuple):
    start: int
    end: int


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Spans of the sentences of `text[start:end]`, as offsets into `text`, whitespace trimmed."""
    end = len(text) if end is None else end
    spans: list[Span] = []
    cursor = start
    for match in _SENTENCE_END.finditer(text, start, end):
        _append_trimmed(text, cursor, match.start() + _kept_length(match.group()), spans)
        cursor = match.end()
    _append_trimmed(text, cursor, end, spans)
    return spans


def _kept_length(separator: str) -> int:
    # Keep the terminal punctuation and closing quotes with the sentence, drop the whitespace.
    return len(separator.rstrip())


def _append_trimmed(text: str, start: int, end: int, spans: list[Span]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append(Span(start, end))
