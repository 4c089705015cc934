"""Chunk and sentence offsets: property-based, over arbitrary text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from corpus import Document
from index.embedding import HashingEmbedder
from index.text.chunking import ChunkerSettings, chunk_document, make_splitter
from index.text.text_spans import sentence_spans

WORDS = st.sampled_from(
    ["Iran", "Pakistan", "port", "U.S.", "the", "12-day", "“war”", "a", "deal", "Dr", "é"]
)
SEPARATORS = st.sampled_from([" ", " ", " ", ". ", "? ", "\n", "\n\n", ", ", "—", "  "])
TEXTS = st.lists(st.tuples(WORDS, SEPARATORS), min_size=1, max_size=400).map(
    lambda parts: "".join(word + sep for word, sep in parts).strip() or "x"
)


@settings(max_examples=150, deadline=None)
@given(text=TEXTS, size=st.integers(8, 80), overlap_share=st.floats(0, 0.5))
def test_chunks_are_exact_slices_covering_the_text(text: str, size: int, overlap_share: float) -> None:
    document = Document(id="doc", text=text)
    embedder = HashingEmbedder()
    splitter = make_splitter(ChunkerSettings(size, int(size * overlap_share)), embedder.count_tokens)
    chunks = chunk_document(document, splitter)
    assert chunks
    covered = [False] * len(text)
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.id == f"doc#{chunk.start}-{chunk.end}"
        for i in range(chunk.start, chunk.end):
            covered[i] = True
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)
    assert len({c.id for c in chunks}) == len(chunks)
    # Every non-whitespace character of the document is in some chunk.
    assert all(covered[i] for i, char in enumerate(text) if not char.isspace())


@settings(max_examples=200, deadline=None)
@given(text=TEXTS, data=st.data())
def test_sentence_spans_are_trimmed_ordered_slices(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    spans = sentence_spans(text, start, end)
    previous_end = start
    for span in spans:
        assert previous_end <= span.start < span.end <= end
        piece = text[span.start : span.end]
        assert piece == piece.strip() and piece
        previous_end = span.end
    # Nothing but whitespace is left out.
    kept = "".join(text[s.start : s.end] for s in spans)
    assert re.sub(r"\s", "", kept) == re.sub(r"\s", "", text[start:end])


def test_sentence_spans_on_news_prose() -> None:
    text = "The U.S. bid failed. Dr Ali Larijani visited! Did it work? “Yes.” Next\nHeading line"
    assert [text[s.start : s.end] for s in sentence_spans(text)] == [
        "The U.S. bid failed.",
        "Dr Ali Larijani visited!",
        "Did it work?",
        "“Yes.”",
        "Next",
        "Heading line",
    ]


def test_chunks_fit_the_models_window(bundled_documents: list[Document]) -> None:
    embedder = HashingEmbedder()
    splitter = make_splitter(ChunkerSettings(200, 40), embedder.count_tokens)
    for document in bundled_documents:
        for chunk in chunk_document(document, splitter):
            assert embedder.count_tokens(chunk.text) <= 200
