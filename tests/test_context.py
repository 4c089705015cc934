"""Context windows: a passage widened by n neighbouring chunks is one exact span of its document,
with no overlapping text repeated; the answer sentence stays inside it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from index.chunking import Chunk
from index.context import ChunkNeighbours
from service.engine import Engine
from tests.conftest import EXAMPLE_QUESTION


def test_window_is_the_union_of_overlapping_neighbours() -> None:
    text = "aaaa bbbb cccc dddd eeee"
    chunks = [Chunk(f"d#{s}-{e}", "d", s, e, text[s:e]) for s, e in [(0, 9), (5, 14), (10, 19), (15, 24)]]
    chunks.append(Chunk("other#0-4", "other", 0, 4, "zzzz"))
    neighbours = ChunkNeighbours(list(reversed(chunks)))  # order in the index does not matter
    assert neighbours.window(chunks[1], 0) == (5, 14)
    assert neighbours.window(chunks[1], 1) == (0, 19)
    assert neighbours.window(chunks[0], 1) == (0, 14)  # nothing before the first chunk
    assert neighbours.window(chunks[3], 3) == (0, 24)
    assert neighbours.window(chunks[4], 2) == (0, 4)  # never crosses into another document


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
