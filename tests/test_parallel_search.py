"""A large index's searches side by side (`index.search.parallel`): same answers, no deadlock."""

from __future__ import annotations

import contextvars
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import faiss
import pytest

import index.search.reader
from corpus import Document
from index.embedding import HashingEmbedder
from index.search.filters import Filter, Match
from index.search.modes import Mode
from index.search.options import RetrievalOptions
from index.search.parallel import SEARCH_THREADS, run_all
from index.search.reader import IndexReader
from index.search.retrieval import Retriever
from index.settings import IndexSettings
from index.storage.segments import FlatVectors, IvfVectors
from index.storage.store import IndexStore
from index.storage.vectors import VectorIndexSettings
from index.write.writer import IndexWriter
from tests.test_segment_queries import NEVER_MERGE
from tests.test_segments import extra_documents

QUESTIONS = ["Report 5 on the rail talks", "wheat harvest", "the port strike", "talks on grain exports"]
REQUEST = contextvars.ContextVar("request", default="none")


def test_results_come_back_in_the_order_of_the_calls() -> None:
    def slow(value: int) -> int:
        time.sleep(0.01 * (5 - value))  # the first calls finish last
        return value

    assert run_all([lambda value=value: slow(value) for value in range(5)], side_by_side=True) == list(
        range(5)
    )
    assert run_all([], side_by_side=True) == []


def test_the_calls_run_on_other_threads_and_see_the_callers_context() -> None:
    seen: list[tuple[str, str]] = []
    second_started = threading.Event()

    def first() -> None:
        seen.append((threading.current_thread().name, REQUEST.get()))
        # Only the pool can run the second call while this one waits for it.
        assert second_started.wait(10)

    def second() -> None:
        seen.append((threading.current_thread().name, REQUEST.get()))
        second_started.set()

    REQUEST.set("request-7")
    run_all([first, second], side_by_side=True)
    assert seen[0] == (threading.current_thread().name, "request-7")
    assert seen[1][0].startswith("search") and seen[1][1] == "request-7"
    seen.clear()
    run_all([second, second, second], side_by_side=False)
    assert {name for name, _ in seen} == {threading.current_thread().name}


def test_while_one_query_fans_out_another_runs_its_calls_on_its_own_thread() -> None:
    holding, release = threading.Event(), threading.Event()
    names: list[str] = []

    def hold() -> None:
        holding.set()
        release.wait(10)

    def name() -> None:
        names.append(threading.current_thread().name)

    fanning = threading.Thread(target=lambda: run_all([hold, hold], side_by_side=True))
    fanning.start()
    try:
        assert holding.wait(10)
        run_all([name, name, name], side_by_side=True)
        assert names == [threading.current_thread().name] * 3
    finally:
        release.set()
        fanning.join(10)
    names.clear()
    second_started = threading.Event()
    run_all([lambda: second_started.wait(10), lambda: (name(), second_started.set())], side_by_side=True)
    assert names and names[0].startswith("search")  # the pool is free again


def test_an_error_is_raised_once_every_call_has_finished() -> None:
    finished: list[int] = []

    def fails() -> int:
        raise ValueError("broken segment")

    def slow() -> int:
        time.sleep(0.05)
        finished.append(1)
        return 1

    with pytest.raises(ValueError, match="broken segment"):
        run_all([fails, slow, slow], side_by_side=True)
    assert finished == [1, 1]
    with pytest.raises(ValueError, match="broken segment"):
        run_all([slow, fails], side_by_side=True)


def test_calls_made_on_the_pool_run_there_and_never_wait_for_it() -> None:
    # More callers than the pool has threads, each of whose calls asks the pool again: if a pool
    # thread waited for the pool, every thread would end up waiting.
    def inner(value: int) -> int:
        time.sleep(0.001)
        return value

    def outer(value: int) -> int:
        return sum(run_all([lambda part=part: inner(part) for part in range(4)], side_by_side=True)) + value

    def caller(value: int) -> list[int]:
        return run_all([lambda: outer(value), lambda: outer(value + 1)], side_by_side=True)

    with ThreadPoolExecutor(max_workers=4 * SEARCH_THREADS) as callers:
        results = list(callers.map(caller, range(16), timeout=60))
    assert results == [[6 + value, 7 + value] for value in range(16)]


@pytest.fixture(scope="module")
def large_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two approximate (IVF) segments and an exact one, a few documents deleted."""
    root = tmp_path_factory.mktemp("parallel")
    settings = IndexSettings(vectors=VectorIndexSettings(approximate_threshold=40))
    writer = IndexWriter(IndexStore(root), HashingEmbedder(), settings=settings, merge_policy=NEVER_MERGE)
    documents = extra_documents(120)
    writer.upsert(documents[:60])
    writer.upsert(documents[60:])
    writer.upsert(
        [Document(id="late", title="Late", text="A late bulletin on the wheat harvest.", source="Wire")]
    )
    writer.delete(["extra-005", "extra-070"])
    return root


@pytest.mark.parametrize("block_chunks", [65_536, 50])
def test_a_large_index_searches_side_by_side_and_answers_as_one_after_another(
    large_layout: Path, block_chunks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With blocks of 50 chunks BM25 scores several blocks, each after the floor the others set.
    monkeypatch.setattr(index.search.reader, "SCORING_BLOCK_CHUNKS", block_chunks)
    reader = IndexReader.open(IndexStore(large_layout))
    assert len(reader.scoring_blocks) == (1 if block_chunks > 1_000 else 3)
    assert [type(segment.vectors) for segment in reader.segments] == [IvfVectors, IvfVectors, FlatVectors]
    assert reader.searches_in_parallel
    retriever = Retriever(reader, HashingEmbedder(), RetrievalOptions())
    filters = [None, Filter(must=(Match("source", ("Wire",)),))]
    answered = {
        (question, mode, number): retriever.search(question, 5, mode, filter=filter_)
        for question in QUESTIONS
        for mode in Mode
        for number, filter_ in enumerate(filters)
    }
    reader.searches_in_parallel = False
    for (question, mode, number), outcome in answered.items():
        alone = retriever.search(question, 5, mode, filter=filters[number])
        assert [(hit.row, hit.score) for hit in outcome.hits] == [(hit.row, hit.score) for hit in alone.hits]
        assert outcome.hits or (mode == Mode.BM25 and number == 1)
        assert (outcome.answerable, outcome.confidence) == (alone.answerable, alone.confidence)


def test_a_mapped_ivf_segment_reads_its_cells_without_prefetch_threads(large_layout: Path) -> None:
    reader = IndexReader.open(IndexStore(large_layout))
    for _, search in reader.approximate:
        lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(search.vectors.index).invlists)
        assert isinstance(lists, faiss.OnDiskInvertedLists)  # the segment's file, mapped
        assert lists.prefetch_nthread == 0


def test_concurrent_queries_on_a_large_index_all_finish_with_their_own_answers(large_layout: Path) -> None:
    reader = IndexReader.open(IndexStore(large_layout))
    retriever = Retriever(reader, HashingEmbedder(), RetrievalOptions())
    expected = {question: [hit.row for hit in retriever.search(question, 5).hits] for question in QUESTIONS}
    with ThreadPoolExecutor(max_workers=8) as callers:
        found = list(callers.map(lambda q: [hit.row for hit in retriever.search(q, 5).hits], QUESTIONS * 8))
    assert found == [expected[question] for question in QUESTIONS * 8]
