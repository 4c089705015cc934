"""Context windows: a passage widened by n neighbouring chunks is one exact span of its document,
with no overlapping text repeated; the answer sentence stays inside it."""

from __future__ import annotations

import itertools
from pathlib import Path

from fastapi.testclient import TestClient

from corpus import Document
from index.embedding import HashingEmbedder
from index.settings import IndexSettings
from index.write.writer import build_index
from service.engine import Engine
from tests.conftest import EXAMPLE_QUESTION


def test_window_is_the_union_of_overlapping_neighbours(tmp_path: Path) -> None:
    long = " ".join(f"Sentence {i} is about the port of Gwadar and its berths." for i in range(80))
    documents = [Document(id="a-long", text=long), Document(id="b-short", text="Wheat exports rose.")]
    reader = build_index(tmp_path, documents, HashingEmbedder(), settings=IndexSettings())
    rows = [row for row in range(reader.chunk_count) if reader.document_id_of(row) == "a-long"]
    chunks = [reader.chunk(row) for row in rows]
    assert len(chunks) >= 4 and all(a.start < b.start for a, b in itertools.pairwise(chunks))
    assert reader.chunk_window(rows[1], 0) == (chunks[1].start, chunks[1].end)
    assert reader.chunk_window(rows[1], 1) == (chunks[0].start, chunks[2].end)
    assert reader.chunk_window(rows[0], 1) == (chunks[0].start, chunks[1].end)  # nothing before the first
    assert reader.chunk_window(rows[-1], 99) == (chunks[0].start, chunks[-1].end)  # never beyond the document
    [short] = [row for row in range(reader.chunk_count) if reader.document_id_of(row) == "b-short"]
    assert reader.chunk_window(short, 2) == (0, len("Wheat exports rose."))


def test_engine_widens_every_hit_exactly(fake_engine: Engine) -> None:
    plain = fake_engine.search(EXAMPLE_QUESTION, 3, "bm25")
    wide = fake_engine.search(EXAMPLE_QUESTION, 3, "bm25", context=1)
    assert [h.document.id for h in wide.hits] == [h.document.id for h in plain.hits]
    grew = 0
    for before, after in zip(plain.hits, wide.hits, strict=True):
        text = after.document.text
        assert after.chunk.text == text[after.chunk.start : after.chunk.end]
        assert after.chunk.id == f"{after.document.id}#{after.chunk.start}-{after.chunk.end}"
        assert after.chunk.start <= before.chunk.start and after.chunk.end >= before.chunk.end
        assert after.chunk.start <= after.answer.start and after.answer.end <= after.chunk.end
        assert after.answer == before.answer and after.score == before.score
        grew += (after.chunk.start, after.chunk.end) != (before.chunk.start, before.chunk.end)
        # No repeated text: the window is shorter than the neighbours' texts joined together.
        assert len(after.chunk.text) <= len(text)
    assert grew >= 1


def test_context_through_the_api(client: TestClient) -> None:
    plain = client.get("/search", params={"q": EXAMPLE_QUESTION, "k": 1, "mode": "bm25"}).json()
    wide = client.post(
        "/search", json={"query": EXAMPLE_QUESTION, "k": 1, "mode": "bm25", "context": 3}
    ).json()
    document = client.get(f"/documents/{wide['results'][0]['document']['id']}").json()["text"]
    top = wide["results"][0]
    assert top["text"] == document[top["start"] : top["end"]]
    assert len(top["text"]) > len(plain["results"][0]["text"])
    assert set(top) == set(plain["results"][0])  # default shape unchanged
    for bad in ({"context": -1}, {"context": 4}, {"context": "x"}):
        response = client.get("/search", params={"q": "ports", **bad})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_request"
