"""The query micro-batcher: every caller gets its own vector, batches form only under load."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from index.embedding import HashingEmbedder, Vectors
from index.search.retrieval import SearchOutcome
from service import batching
from service.batching import MicroBatcher
from service.engine import Engine
from tests.conftest import EXAMPLE_QUESTION

QUESTIONS = [f"question {i} about pipeline number {i * 7} and visit {i % 3}" for i in range(24)]


class GatedEmbedder:
    """The fake embedder, except that its first call waits until every other question is queued
    behind it: the batches that follow are then known exactly, with no timing involved."""

    def __init__(self, total: int) -> None:
        self.inner = HashingEmbedder()
        self.total = total
        self.batcher: MicroBatcher | None = None
        self.batches: list[list[str]] = []
        self._queued = threading.Event()

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        if not self.batches and self.batcher is not None:
            while self.batcher.waiting + len(texts) < self.total:
                self._queued.wait(0.001)
        self.batches.append(list(texts))
        return self.inner.embed_batch(texts)


def _embed_all(batcher: MicroBatcher, texts: list[str]) -> list[Vectors]:
    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        return list(pool.map(batcher.embed, texts))


def test_concurrent_callers_each_get_their_own_vector_from_one_shared_call() -> None:
    embedder = GatedEmbedder(total=len(QUESTIONS))
    batcher = MicroBatcher(embedder.embed_batch, max_batch=64)
    embedder.batcher = batcher
    vectors = _embed_all(batcher, QUESTIONS)

    expected = HashingEmbedder().embed_batch(QUESTIONS)
    for row, vector in enumerate(vectors):
        assert vector.shape == (1, expected.shape[1])
        np.testing.assert_allclose(vector[0], expected[row], rtol=1e-6)
    # The first call, then everything that queued while it ran, in a single call.
    first, second = (len(batch) for batch in embedder.batches)
    assert first + second == len(QUESTIONS)
    assert sorted(text for batch in embedder.batches for text in batch) == sorted(QUESTIONS)
    assert (batcher.stats.calls, batcher.stats.texts) == (2, len(QUESTIONS))


def test_batches_never_exceed_max_batch() -> None:
    embedder = GatedEmbedder(total=len(QUESTIONS))
    batcher = MicroBatcher(embedder.embed_batch, max_batch=5)
    embedder.batcher = batcher
    vectors = _embed_all(batcher, QUESTIONS)

    sizes = [len(batch) for batch in embedder.batches]
    assert max(sizes) == 5  # 23 or more were queued at once: full batches
    assert sum(sizes) == len(QUESTIONS)
    expected = HashingEmbedder().embed_batch(QUESTIONS)
    np.testing.assert_allclose(np.vstack(vectors), expected, rtol=1e-6)


def test_a_failing_model_call_raises_in_every_waiting_caller() -> None:
    def broken(texts: Sequence[str]) -> Vectors:
        raise RuntimeError(f"model failed on {len(texts)} texts")

    batcher = MicroBatcher(broken)
    for text in QUESTIONS[:3]:
        with pytest.raises(RuntimeError, match="model failed on 1 texts"):
            batcher.embed(text)


def test_worker_restarts_after_exiting_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "IDLE_EXIT_SECONDS", 0.0)  # exit as soon as the queue is empty
    embedder = HashingEmbedder()
    batcher = MicroBatcher(embedder.embed_batch)
    for text in QUESTIONS[:5]:
        np.testing.assert_allclose(batcher.embed(text), embedder.embed_batch([text]), rtol=1e-6)
    assert batcher.stats.texts == 5


def test_rejects_an_empty_batch_size() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(HashingEmbedder().embed_batch, max_batch=0)


def test_engine_search_through_the_batcher_matches_the_retriever(fake_engine: Engine) -> None:
    questions = [EXAMPLE_QUESTION, "defence pact with Saudi Arabia", "security dialogue in Tehran"]
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(lambda q: fake_engine.search(q, 5, "hybrid"), questions))
    for question, outcome in zip(questions, outcomes, strict=True):
        direct = fake_engine.retriever.search(question, k=5, mode="hybrid")
        assert [hit.chunk.id for hit in outcome.hits] == [hit.chunk.id for hit in direct.hits]
        assert [hit.answer.text for hit in outcome.hits] == [hit.answer.text for hit in direct.hits]
        assert outcome.confidence == pytest.approx(direct.confidence)
    assert outcome.hits


def test_awaiting_callers_share_batches_without_holding_threads() -> None:
    embedder = GatedEmbedder(total=len(QUESTIONS))
    batcher = MicroBatcher(embedder.embed_batch, max_batch=64)
    embedder.batcher = batcher

    async def embed_all() -> list[Vectors]:
        return await asyncio.gather(*(batcher.embed_async(text) for text in QUESTIONS))

    threads_before = threading.active_count()
    vectors = asyncio.run(embed_all())
    np.testing.assert_allclose(np.vstack(vectors), HashingEmbedder().embed_batch(QUESTIONS), rtol=1e-6)
    assert len(embedder.batches) == 2 and batcher.stats.texts == len(QUESTIONS)
    assert threading.active_count() <= threads_before + 1  # the batcher's own thread, never 24


def test_engine_search_async_matches_the_synchronous_search(fake_engine: Engine) -> None:
    questions = [EXAMPLE_QUESTION, "defence pact with Saudi Arabia", "security dialogue in Tehran"]

    async def search_all() -> list[SearchOutcome]:
        return await asyncio.gather(*(fake_engine.search_async(q, 5, "hybrid", 1) for q in questions))

    for question, outcome in zip(questions, asyncio.run(search_all()), strict=True):
        direct = fake_engine.search(question, 5, "hybrid", 1)
        assert [(h.chunk.id, h.chunk.start, h.answer.text) for h in outcome.hits] == [
            (h.chunk.id, h.chunk.start, h.answer.text) for h in direct.hits
        ]
