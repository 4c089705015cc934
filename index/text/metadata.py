"""Questions about a document's metadata: searchable, answerable and cited as such.

"Who wrote the article arguing for a defence pact?" is answered by a document's `author`, which
its text may never state. Two things make that work:

* Search: BM25 indexes each chunk after its document's citation fields (`metadata_values`: the
  author, the source and the publication date, besides the title), so a question naming an
  author or a publication finds the document's passages.
* Answers: a question that asks for one of these fields (`asked_field`) is answered, in each hit
  on a document that has the field, by the field itself, cited as that field with offsets into
  its value (`author`, 0-9: "Ahmed Ali") rather than by a sentence of the text.

Which field a question asks for is read off its wording with a few patterns for the usual ways
of asking about authorship, publication date and publication (they describe metadata questions
in general, not one eval set's). Out of scope: other metadata (kept with the document, not
searched), and fields a question asks for only implicitly.
"""

from __future__ import annotations

import re

from corpus import Document

FIELDS = ("author", "source", "published")  # answerable fields; the title only describes a document
TEXT = "text"  # an answer taken from the document's text

_ASKS_FOR = {
    "author": re.compile(
        r"\b(who (wrote|writes|authored|penned)|(the )?(author|writer|columnist)s? of|written by|"
        r"whose (article|piece|column|op-ed|commentary|essay))\b",
        re.IGNORECASE,
    ),
    "published": re.compile(
        r"\b(when (was|were|is) .{0,80}\b(published|written|posted)|publication date|date of publication|"
        r"published on|publish(ed)? date)\b",
        re.IGNORECASE,
    ),
    "source": re.compile(
        r"\b(which|what) (newspaper|outlet|publication|paper|site|website|agency|news agency|magazine|"
        r"media)\b|\b(published|carried|run) (by|in)\b|\bsource of\b",
        re.IGNORECASE,
    ),
}


def metadata_values(document: Document) -> list[str]:
    """The searchable citation fields of `document` besides its title, in a fixed order."""
    return [getattr(document, name) for name in FIELDS]


def asked_field(question: str) -> str | None:
    """The metadata field `question` asks for, if its wording asks for one."""
    return next((name for name, pattern in _ASKS_FOR.items() if pattern.search(question)), None)
