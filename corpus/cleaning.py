"""Removal of text that came with an article but is not part of it.

In scope: print artefacts (page markers such as "Page 3") and web artefacts (lines such as
"Read More: <url>" that link to other articles), plus normalising line endings and blank runs.
Out of scope: HTML extraction (see `corpus.html`) and anything that rewrites sentences.
"""

from __future__ import annotations

import re

_ARTEFACT_LINES = [
    re.compile(r"^\s*page\s+\d+(\s+of\s+\d+)?\s*$", re.IGNORECASE),
    re.compile(r"^\s*-?\s*\d+\s*-?\s*$"),  # bare page numbers
    re.compile(r"^\s*(read more|also read|see also|related)\s*:?\s*\S*https?://\S+\s*$", re.I),
    re.compile(r"^\s*https?://\S+\s*$"),
]


def is_artefact_line(line: str) -> bool:
    return any(pattern.match(line) for pattern in _ARTEFACT_LINES)


def clean_article_text(text: str) -> str:
    """Canonical article text: artefact lines dropped, trailing spaces and blank runs trimmed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    lines = [line.rstrip() for line in text.split("\n") if not is_artefact_line(line)]
    cleaned = "\n".join(lines)
    cleaned = re.sub(r"\n{3,}", "\n\n", cleaned)
    return cleaned.strip()
