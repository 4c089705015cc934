"""One `Query` per search: the question is analysed once, its BM25 statistics are gathered once,
cosines are computed once per row, and a search reads no file."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest

from index.embedding import HashingEmbedder
from index.search import query as query_module
from index.search.modes import Mode
from index.search.query import Query
from index.search.reader import IndexReader
from index.storage.postings import CollectionStatistics
from index.storage.store import IndexStore
from service.engine import Engine
from tests.conftest import EXAMPLE_QUESTION


def test_a_hybrid_search_analyses_and_gathers_statistics_once(
    fake_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    analysed: Counter[str] = Counter()
    analyse = query_module.terms

    def counting_terms(text: str) -> list[str]:
        analysed[text] += 1
        return analyse(text)

    statistics: list[tuple[str, ...]] = []
    gather = IndexReader.statistics

    def counting_statistics(reader: IndexReader, terms: Sequence[str]) -> CollectionStatistics:
        statistics.append(tuple(terms))
        return gather(reader, terms)

    monkeypatch.setattr(query_module, "terms", counting_terms)
    monkeypatch.setattr(IndexReader, "statistics", counting_statistics)
    outcome = fake_engine.search(EXAMPLE_QUESTION, k=5, mode=Mode.HYBRID)
    assert outcome.hits
    assert analysed[EXAMPLE_QUESTION] == 1
    assert len(statistics) == 1


def test_cosines_are_computed_once_per_row_and_equal_a_direct_product(fake_engine: Engine) -> None:
    reader = fake_engine.retriever.reader
    vector = HashingEmbedder().embed_batch([EXAMPLE_QUESTION])[0]
    query = Query(reader, EXAMPLE_QUESTION, vector)
    rows = list(range(min(6, reader.chunk_count)))
    first = query.passage_cosines(rows[:4])
    asked: list[list[int]] = []
    score = reader.passage_cosines

    def counting_passage_cosines(vector: np.ndarray, wanted: Sequence[int]) -> np.ndarray:
        asked.append(list(wanted))
        return score(vector, wanted)

    reader.passage_cosines = counting_passage_cosines  # type: ignore[method-assign]
    again = query.passage_cosines(rows[::-1])
    assert asked == [rows[4:][::-1]]  # only the rows not seen before
    direct = (reader.chunk_vectors(rows) @ vector).astype(np.float64)
    assert again[::-1].tolist() == direct.tolist()
    assert first.tolist() == direct[:4].tolist()


def test_a_search_reads_current_once_at_most_while_nothing_commits(
    fake_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_engine.search(EXAMPLE_QUESTION, k=3, mode=Mode.HYBRID)
    reads: list[str] = []
    read = IndexStore.current_pointer

    def counting_read(store: IndexStore):  # type: ignore[no-untyped-def]
        reads.append(str(store.root))
        return read(store)

    monkeypatch.setattr(IndexStore, "current_pointer", counting_read)
    for _ in range(20):
        fake_engine.search(EXAMPLE_QUESTION, k=3, mode=Mode.HYBRID)
    assert len(reads) <= 1  # at most the once-a-second re-read, never once per search


def test_a_small_index_is_searched_on_the_event_loop_a_large_one_on_a_worker_thread(
    fake_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service import engine as engine_module

    handed_off: list[str] = []
    run_in_threadpool = engine_module.run_in_threadpool

    async def counting_run_in_threadpool(function, *args):  # type: ignore[no-untyped-def]
        handed_off.append(getattr(function, "__name__", "search"))
        return await run_in_threadpool(function, *args)

    monkeypatch.setattr(engine_module, "run_in_threadpool", counting_run_in_threadpool)
    inline = asyncio.run(fake_engine.search_async(EXAMPLE_QUESTION, 3, Mode.HYBRID))
    assert handed_off == []
    monkeypatch.setattr(engine_module, "INLINE_SEARCH_CHUNKS", 0)
    threaded = asyncio.run(fake_engine.search_async(EXAMPLE_QUESTION, 3, Mode.HYBRID))
    assert len(handed_off) == 1
    assert [hit.chunk.id for hit in threaded.hits] == [hit.chunk.id for hit in inline.hits]
    assert threaded.confidence == inline.confidence
