"""The article in an HTML news page: its body text and the metadata the page states.

In scope: extracting the article body and its metadata (title, author, publication, date) with
trafilatura, which is made for news pages. Navigation, headers, footers, side bars and menus are
pruned before extraction, so a page that holds nothing else yields no article (and is refused)
instead of becoming a document made of its menu. Out of scope: fetching pages from the web,
artefact cleaning and building the `Document` (corpus.loading does both, as for every format).
"""

from __future__ import annotations

import json
from typing import Any

from corpus.errors import CorpusError

HTML_SUFFIXES = (".html", ".htm")
# Only dates the page states for itself: a guessed date (say from "Copyright 2024") would be cited.
_DATE_SEARCH = {"extensive_search": False, "original_date": True}
# Page furniture, never article text: trafilatura's fallbacks would otherwise return it when a
# page has nothing else.
_FURNITURE = ["//nav", "//header", "//footer", "//aside", "//menu"]


def extract_article(filename: str, html: str) -> tuple[dict[str, Any], str]:
    """(metadata fields, body text) of the article in `html`; CorpusError when there is none."""
    import trafilatura  # imported here: it is slow to import and only HTML needs it

    extracted = trafilatura.extract(
        html,
        output_format="json",
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        date_extraction_params=_DATE_SEARCH,
        prune_xpath=_FURNITURE,
    )
    if not extracted:
        raise CorpusError(f"{filename}: no article text found in the HTML page")
    page: dict[str, Any] = json.loads(extracted)
    title = str(page.get("title") or "").strip()
    fields: dict[str, Any] = {
        "title": title,
        "author": page.get("author"),
        "source": page.get("sitename") or page.get("source-hostname") or page.get("hostname"),
        "url": page.get("url") or page.get("source"),
        "published": page.get("date"),
    }
    return {key: value for key, value in fields.items() if value}, _body_without_headline(
        str(page.get("text") or ""), title
    )


def _body_without_headline(text: str, title: str) -> str:
    # trafilatura keeps the <h1> as the first line; the title is stored apart, as for .md files.
    # Paragraphs come one per line; a blank line between them matches the other loaders.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and title and lines[0].casefold() == title.casefold():
        lines = lines[1:]
    return "\n\n".join(lines)
