"""Documents for the write, ingest and segment benchmarks, made from SciFact's real text.

In scope:

* `scifact_documents` / `scifact_questions`: the corpus and questions, read from the caller's
  SciFact directory (never copied anywhere);
* `documents_to(base, n)`: `n` documents. The first ones are the real abstracts (by id); past the
  5,183 of SciFact each further document is a copy of an abstract under a new id, its sentences
  rotated by the copy number and one sentence naming the copy appended, so no two documents and
  almost no two chunks are identical (the vocabulary and term statistics stay SciFact's own);
* `articles(...)`: ~3 KB article-like documents strung from SciFact sentences, each holding a
  distinctive made-up word (`marker`) so a keyword search can prove it was indexed;
* `small_documents(...)`: one-sentence documents of a few varied words (no SciFact needed), for
  the concurrent-writers phase and its test, where the number of writes matters, not their size.

Left out: anything a real news corpus has that SciFact lacks (bylines, dates, sources).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from corpus import Document, load_corpus
from corpus.cleaning import clean_article_text
from index.text.text_spans import sentence_spans

ARTICLE_CHARS = 3_000


def scifact_documents(scifact: Path) -> list[Document]:
    """SciFact's 5,183 abstracts, sorted by id."""
    return sorted(load_corpus([scifact / "corpus.jsonl"]), key=lambda document: document.id)


def scifact_questions(scifact: Path) -> list[str]:
    """SciFact's questions (claims), distinct, in file order."""
    lines = (scifact / "queries.jsonl").read_text("utf-8").splitlines()
    return list(dict.fromkeys(json.loads(line)["text"] for line in lines if line.strip()))


def sentences_of(documents: Sequence[Document]) -> list[str]:
    """Every sentence of `documents` (the splitter the index uses), long enough to be prose."""
    found = []
    for document in documents:
        for start, end in sentence_spans(document.text):
            sentence = document.text[start:end]
            if len(sentence) >= 40:
                found.append(sentence)
    return found


def documents_to(base: Sequence[Document], count: int) -> list[Document]:
    """`count` documents: `base` first, then rotated copies of it with new ids (module docstring)."""
    documents = list(base[:count])
    copy = 0
    while len(documents) < count:
        copy += 1
        for original in base:
            if len(documents) == count:
                break
            documents.append(_copy(original, copy))
    return documents


def _copy(document: Document, copy: int) -> Document:
    spans = sentence_spans(document.text)
    sentences = [document.text[start:end] for start, end in spans]
    shift = copy % len(sentences) if sentences else 0
    rotated = sentences[shift:] + sentences[:shift]
    text = " ".join([*rotated, f"Copy {copy} of abstract {document.id}."])
    return Document(id=f"{document.id}-c{copy}", text=text, title=document.title)


@dataclass(frozen=True)
class Article:
    document: Document
    marker: str  # a made-up word only this article holds

    def payload(self) -> dict[str, object]:
        """The JSON body `POST /documents` takes."""
        return payload(self.document)


def payload(document: Document) -> dict[str, object]:
    """The JSON body `POST /documents` takes for `document` (id, title, text)."""
    return {"id": document.id, "title": document.title, "text": document.text}


def articles(sentences: Sequence[str], count: int, tag: str, seed: int = 0) -> list[Article]:
    """`count` distinct ~3 KB articles of random real sentences, ids `bench-<tag>-<n>`; `tag`
    (letters) keeps the articles of different runs and phases apart."""
    rng = random.Random(f"{tag}-{seed}")
    made = []
    for number in range(count):
        marker = f"qz{tag}{number:05d}x"
        body = [f"The reference code of this report is {marker}."]
        while sum(len(sentence) + 1 for sentence in body) < ARTICLE_CHARS:
            body.insert(rng.randrange(len(body) + 1), rng.choice(sentences))
        title = f"Bench report {tag} {number}: {rng.choice(sentences)[:60]}"
        text = clean_article_text(" ".join(body))
        made.append(Article(Document(id=f"bench-{tag}-{number:05d}", text=text, title=title), marker))
    return made


SMALL_WORDS = (  # noqa: SIM905 - prose to read, not a column of 40 quoted words
    "harbour ferry grain tariff minister border market railway pipeline quay cargo customs treaty "
    "summit convoy wheat cotton textile freight dock envoy budget drought monsoon bridge highway "
    "airport turbine solar refinery fishing salt copper timber rice tea spice silk canal orchard"
).split()


def small_documents(count: int, tag: str, seed: int = 0) -> list[Document]:
    """`count` distinct one-sentence documents, ids `<tag>-<n>`: each names its number and six
    words drawn from `SMALL_WORDS`, so their BM25 terms vary. The text is already as the service
    stores it (cleaning leaves it unchanged), so a read-back compares equal."""
    rng = random.Random(f"{tag}-{seed}")
    return [
        Document(
            id=f"{tag}-{number:05d}",
            title=f"Dispatch {number}",
            text=f"Dispatch {number} on the {' '.join(rng.sample(SMALL_WORDS, 6))} talks.",
        )
        for number in range(count)
    ]
