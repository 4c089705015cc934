"""A sharded search returns exactly what one index of the same documents returns."""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import Document
from index.embedding import HashingEmbedder, Vectors
from index.errors import IndexNotFoundError
from index.search.context import widen_outcome
from index.search.document_ranking import search_documents
from index.search.filters import Filter
from index.search.modes import FusionMethod, Mode
from index.search.options import RetrievalOptions
from index.search.reader import IndexReader
from index.search.retrieval import Retriever, SearchOutcome
from index.settings import ChunkerSettings, IndexSettings
from index.sharding.assignment import shard_of
from index.sharding.coordinator import ShardedSearcher
from index.sharding.gathered import NotGatheredError
from index.sharding.layout import ShardedLayout
from index.sharding.messages import (
    CandidateRequest,
    ShardCandidates,
    ShardState,
    VectorRequest,
    WindowRequest,
)
from index.sharding.shard import Shard
from index.sharding.writer import ShardedWriter
from index.write.writer import build_index
from tests.test_filters import QUESTIONS, WORDS, conditions, corpora

# Small chunks, so that documents have several overlapping ones and several sentences each.
SETTINGS = IndexSettings(chunker=ChunkerSettings(chunk_size=24, chunk_overlap=6))
AS_OF = dt.date(2026, 1, 15)
DATED_QUESTIONS = ["what trade deal was made in November 2025?", "gas talks last month"]


@st.composite
def documents(draw: st.DrawFn) -> list[Document]:
    """The filter tests' corpora, with texts of several sentences (one may be a question) and
    now and then a document repeated under another id (a syndicated article)."""
    result = []
    for document in draw(corpora()):
        sentences = draw(
            st.lists(st.lists(st.sampled_from(WORDS), min_size=3, max_size=9), min_size=1, max_size=5)
        )
        text = " ".join(" ".join(words).capitalize() + "." for words in sentences)
        if draw(st.booleans()):
            text += f" What about the {draw(st.sampled_from(WORDS))}?"
        result.append(replace(document, text=f"{document.text} {text}"))
    if draw(st.booleans()):
        result.append(replace(result[0], id="doc-copy"))
    return result


def same(expected: SearchOutcome, actual: SearchOutcome) -> None:
    assert (actual.query, actual.mode, actual.filter, actual.dates) == (
        expected.query,
        expected.mode,
        expected.filter,
        expected.dates,
    )
    assert [(h.document.id, h.chunk.start, h.chunk.end) for h in actual.hits] == [
        (h.document.id, h.chunk.start, h.chunk.end) for h in expected.hits
    ]
    assert [h.score for h in actual.hits] == pytest.approx([h.score for h in expected.hits], abs=1e-6)
    assert [h.document for h in actual.hits] == [h.document for h in expected.hits]
    assert [h.chunk.text for h in actual.hits] == [h.chunk.text for h in expected.hits]
    for got, wanted in zip(actual.hits, expected.hits, strict=True):
        assert (got.answer.text, got.answer.start, got.answer.end, got.answer.field) == (
            wanted.answer.text,
            wanted.answer.start,
            wanted.answer.end,
            wanted.answer.field,
        )
        assert got.answer.score == pytest.approx(wanted.answer.score, abs=1e-6)
        assert (got.explain.dense_rank, got.explain.bm25_rank, got.explain.matched_terms) == (
            wanted.explain.dense_rank,
            wanted.explain.bm25_rank,
            wanted.explain.matched_terms,
        )
        assert got.explain.dense_score == pytest.approx(wanted.explain.dense_score, abs=1e-6)
        assert got.explain.bm25_score == pytest.approx(wanted.explain.bm25_score, abs=1e-6)
    assert actual.answerable == expected.answerable
    assert actual.confidence == pytest.approx(expected.confidence, abs=1e-6)
    assert actual.signals == pytest.approx(expected.signals, abs=1e-6)


def build_both(root: Path, corpus: list[Document], shard_count: int) -> tuple[IndexReader, ShardedLayout]:
    single = build_index(root / "single", corpus, HashingEmbedder(), settings=SETTINGS)
    layout = ShardedLayout.open_or_create(root / "sharded", shard_count)
    ShardedWriter(layout, HashingEmbedder(), settings=SETTINGS).sync(corpus, exact=True)
    return single, layout


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    corpus=documents(),
    shard_count=st.integers(1, 3),
    condition=st.none() | conditions(),
    question=st.sampled_from(QUESTIONS + DATED_QUESTIONS),
    k=st.integers(1, 4),
    candidates=st.sampled_from([2, 5, 100]),
    fusion=st.sampled_from(list(FusionMethod)),
)
def test_a_sharded_search_equals_the_search_of_one_index(
    corpus: list[Document],
    shard_count: int,
    condition: Any,
    question: str,
    k: int,
    candidates: int,
    fusion: FusionMethod,
) -> None:
    filter = condition if condition is None or isinstance(condition, Filter) else Filter(must=(condition,))
    # Few candidates per signal: the merge of the shards' top lists is cut, as at scale.
    options = RetrievalOptions(candidates=candidates, fusion=fusion)
    with tempfile.TemporaryDirectory() as directory:
        single, layout = build_both(Path(directory), corpus, shard_count)
        retriever = Retriever(single, HashingEmbedder(), options)
        searcher = ShardedSearcher.open(layout, HashingEmbedder(), options)
        for mode in Mode:
            expected = retriever.search(question, k, mode, filter=filter, as_of=AS_OF)
            actual = searcher.search(question, k, mode, filter=filter, as_of=AS_OF)
            same(expected, actual)
        # Context windows, fetched from the shards the hits came from.
        for n in (1, 2):
            widened = searcher.widened(actual, n)
            assert [(h.chunk.id, h.chunk.start, h.chunk.end, h.chunk.text) for h in widened.hits] == [
                (h.chunk.id, h.chunk.start, h.chunk.end, h.chunk.text)
                for h in widen_outcome(expected, single, n).hits
            ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    corpus=documents(),
    shard_count=st.integers(1, 3),
    condition=st.none() | conditions(),
    question=st.sampled_from(QUESTIONS + DATED_QUESTIONS),
    k=st.integers(1, 4),
    candidates=st.sampled_from([1, 3, 300]),
    feedback=st.booleans(),
)
def test_a_sharded_document_search_equals_that_of_one_index(
    corpus: list[Document],
    shard_count: int,
    condition: Any,
    question: str,
    k: int,
    candidates: int,
    feedback: bool,
) -> None:
    filter = condition if condition is None or isinstance(condition, Filter) else Filter(must=(condition,))
    # Few candidates per signal: the merge of the shards' top lists is cut, as at scale.
    options = RetrievalOptions(document_candidates=candidates)
    with tempfile.TemporaryDirectory() as directory:
        single, layout = build_both(Path(directory), corpus, shard_count)
        retriever = Retriever(single, HashingEmbedder(), options)
        vector = retriever.encode(question)
        expected = search_documents(retriever, question, vector, k, feedback, filter, AS_OF)
        searcher = ShardedSearcher.open(layout, HashingEmbedder(), options)
        actual = searcher.search_documents(question, k, vector, feedback, filter, AS_OF)
    assert (actual.query, actual.feedback, actual.filter, actual.dates) == (
        expected.query,
        feedback,
        expected.filter,
        expected.dates,
    )
    assert [(h.rank, h.document, h.passage) for h in actual.hits] == [
        (h.rank, h.document, h.passage) for h in expected.hits
    ]
    assert [h.score for h in actual.hits] == pytest.approx([h.score for h in expected.hits], abs=1e-6)
    assert [(h.answer.text, h.answer.start, h.answer.end, h.answer.field) for h in actual.hits] == [
        (h.answer.text, h.answer.start, h.answer.end, h.answer.field) for h in expected.hits
    ]
    assert [h.answer.score for h in actual.hits] == pytest.approx(
        [h.answer.score for h in expected.hits], abs=1e-6
    )


def test_a_sharded_document_search_finds_the_documents_of_every_shard(tmp_path: Path) -> None:
    corpus = [
        Document(id=f"doc-{n}", title=f"Report {n}", text=f"Report {n}: gas pipeline talks on the border.")
        for n in range(6)
    ]
    _, layout = build_both(tmp_path, corpus, 3)
    outcome = ShardedSearcher.open(layout, HashingEmbedder(), RetrievalOptions()).search_documents(
        "gas pipeline", 6
    )
    assert sorted(hit.document.id for hit in outcome.hits) == [f"doc-{n}" for n in range(6)]
    assert {shard_of(hit.document.id, 3) for hit in outcome.hits} == {0, 1, 2}
    assert all(hit.answer.text in hit.document.text for hit in outcome.hits)


def test_the_sharded_version_names_each_shard_s_commit(tmp_path: Path) -> None:
    corpus = [
        Document(id=f"doc-{n}", text=f"Report {n}: gas pipeline talks on the border.") for n in range(6)
    ]
    _, layout = build_both(tmp_path, corpus, 3)
    outcome = ShardedSearcher.open(layout, HashingEmbedder(), RetrievalOptions()).search("gas pipeline")
    versions = []
    for store in layout.stores():
        pointer = store.current()
        assert pointer is not None
        versions.append(pointer.version)
    assert outcome.index_version == ",".join(versions)
    assert len({hit.document.id for hit in outcome.hits}) == len(outcome.hits) > 0


def test_an_empty_sharded_index_is_not_found(tmp_path: Path) -> None:
    layout = ShardedLayout.open_or_create(tmp_path / "sharded", 2)
    with pytest.raises(IndexNotFoundError):
        ShardedSearcher.open(layout, HashingEmbedder(), RetrievalOptions()).search("gas")


def test_gathered_candidates_refuse_what_was_not_gathered(tmp_path: Path) -> None:
    corpus = [Document(id=f"doc-{n}", text=f"Report {n}: wheat and rail.") for n in range(4)]
    _, layout = build_both(tmp_path, corpus, 2)
    searcher = ShardedSearcher.open(layout, HashingEmbedder(), RetrievalOptions(candidates=3))
    gathered = searcher.gather("wheat", 1, Mode.DENSE, searcher.embedder.embed_batch(["wheat"]))
    vector = searcher.embedder.embed_batch(["wheat"]).reshape(-1)
    assert len(gathered.dense_search(vector, 4)[0]) == 4
    with pytest.raises(NotGatheredError):
        gathered.dense_search(vector, 5)  # more than gathered
    with pytest.raises(NotGatheredError):
        gathered.lexical_search(["wheat"], 4, 0.9, 0.4)  # a dense search gathers no BM25 list
    with pytest.raises(NotGatheredError):
        gathered.statistics(["rail"])  # not a term of the question
    other = searcher.embedder.embed_batch(["rail"]).reshape(-1)
    with pytest.raises(NotGatheredError):
        gathered.dense_search(other, 4)  # candidates of another vector
    with pytest.raises(NotGatheredError):
        gathered.passage_cosines(other, [0])
    with pytest.raises(NotGatheredError):
        gathered.chunk_vectors([0])  # the shards sent cosines, and no vector was fetched


class CountingShard:
    """A `Shard` that counts the `state` calls it answers and keeps the other requests."""

    def __init__(self, shard: Shard) -> None:
        self.shard, self.states = shard, 0
        self.candidate_requests: list[CandidateRequest] = []
        self.vector_requests: list[VectorRequest] = []

    def state(self, terms: Sequence[str]) -> ShardState:
        self.states += 1
        return self.shard.state(terms)

    def candidates(self, request: CandidateRequest) -> ShardCandidates:
        self.candidate_requests.append(request)
        return self.shard.candidates(request)

    def windows(self, request: WindowRequest) -> tuple[tuple[int, int], ...]:
        return self.shard.windows(request)

    def vectors(self, request: VectorRequest) -> Vectors:
        self.vector_requests.append(request)
        return self.shard.vectors(request)


def test_a_known_question_asks_each_shard_once_and_still_sees_every_write(tmp_path: Path) -> None:
    corpus = [
        Document(id=f"doc-{n}", text=f"Report {n}: gas pipeline talks on the border. Wheat went by rail.")
        for n in range(8)
    ]
    _, layout = build_both(tmp_path, corpus, 3)
    shards = [CountingShard(Shard(i, store)) for i, store in enumerate(layout.stores())]
    searcher = ShardedSearcher(shards, HashingEmbedder(), RetrievalOptions())
    first = searcher.search("gas pipeline talks", 3, Mode.HYBRID)
    assert [shard.states for shard in shards] == [1, 1, 1]
    again = searcher.search("pipeline talks gas", 3, Mode.HYBRID)  # the same terms: known
    assert [shard.states for shard in shards] == [1, 1, 1]
    assert again.index_version == first.index_version
    searcher.search("wheat by rail", 3, Mode.HYBRID)  # new terms: asked
    assert [shard.states for shard in shards] == [2, 2, 2]

    new = Document(id="doc-new", text="Gas pipeline talks gas pipeline talks, said the new report.")
    ShardedWriter(layout, HashingEmbedder(), settings=SETTINGS).sync([*corpus, new], exact=True)
    single = build_index(tmp_path / "single-after", [*corpus, new], HashingEmbedder(), settings=SETTINGS)
    after = searcher.search("gas pipeline talks", 3, Mode.HYBRID)
    # One shard's live commit changed: it refused the known version, and every shard was asked.
    assert [shard.states for shard in shards] == [3, 3, 3]
    assert after.index_version != first.index_version
    same(
        Retriever(single, HashingEmbedder(), RetrievalOptions()).search("gas pipeline talks", 3, Mode.HYBRID),
        after,
    )
    assert "doc-new" in {hit.document.id for hit in after.hits}

    # Known terms of the unchanged shards survive the write: only the written shard is asked.
    owner = shard_of("doc-new", 3)
    rail = searcher.search("wheat by rail", 3, Mode.HYBRID)
    assert [shard.states for shard in shards] == [4 if i == owner else 3 for i in range(3)]
    same(
        Retriever(single, HashingEmbedder(), RetrievalOptions()).search("wheat by rail", 3, Mode.HYBRID), rail
    )
    assert [request.live_only for request in shards[owner].candidate_requests[-1:]] == [False]
    assert all(shard.candidate_requests[-1].live_only for i, shard in enumerate(shards) if i != owner)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    corpus=documents(),
    steps=st.lists(
        st.tuples(st.sampled_from(QUESTIONS), st.integers(0, 20), st.sampled_from(WORDS)),
        min_size=1,
        max_size=4,
    ),
)
def test_a_searcher_that_knows_the_shards_answers_as_a_new_one_after_each_write(
    corpus: list[Document], steps: list[tuple[str, int, str]]
) -> None:
    """What a searcher kept from earlier queries (some shards' states, at commits that a write
    may have replaced since) never changes an answer: after each write, it answers every
    question as a searcher that asks every shard."""
    with tempfile.TemporaryDirectory() as directory:
        _, layout = build_both(Path(directory), corpus, 3)
        kept = ShardedSearcher.open(layout, HashingEmbedder(), RetrievalOptions())
        asked = list(dict.fromkeys(question for question, _, _ in steps))
        for question in asked:
            kept.search(question, 3, Mode.HYBRID)
        for number, (question, changed, word) in enumerate(steps):
            # One document rewritten, or a new one: one shard's commit moves on.
            document = Document(id=f"doc-{changed}", text=f"{word.capitalize()} report {number}: {question}")
            corpus = [d for d in corpus if d.id != document.id] + [document]
            ShardedWriter(layout, HashingEmbedder(), settings=SETTINGS).sync(corpus, exact=True)
            fresh = ShardedSearcher.open(layout, HashingEmbedder(), RetrievalOptions())
            for asked_question in asked:
                expected = fresh.search(asked_question, 3, Mode.HYBRID)
                actual = kept.search(asked_question, 3, Mode.HYBRID)
                same(expected, actual)
                assert actual.index_version == expected.index_version


def test_document_search_with_feedback_fetches_one_vector_and_asks_the_shards_again(tmp_path: Path) -> None:
    corpus = [
        Document(
            id=f"doc-{n}",
            text=f"Report {n}: gas pipeline talks on the border. Wheat went by rail to port {n}."
            + " The minister spoke of tariffs." * (n % 3),
        )
        for n in range(9)
    ]
    single, layout = build_both(tmp_path, corpus, 3)
    options = RetrievalOptions(document_candidates=4)
    shards = [CountingShard(Shard(i, store)) for i, store in enumerate(layout.stores())]
    searcher = ShardedSearcher(shards, HashingEmbedder(), options)
    retriever = Retriever(single, HashingEmbedder(), options)
    question = "gas pipeline talks and wheat by rail"
    vector = retriever.encode(question)
    outcomes = {}
    for feedback in (False, True):
        expected = search_documents(retriever, question, vector, 5, feedback, None, None)
        outcomes[feedback] = actual = searcher.search_documents(question, 5, vector, feedback)
        assert [(h.document.id, h.passage.start, h.answer.start) for h in actual.hits] == [
            (h.document.id, h.passage.start, h.answer.start) for h in expected.hits
        ]
        assert [h.score for h in actual.hits] == pytest.approx([h.score for h in expected.hits], abs=1e-6)
    # Feedback moved the ranking: the second round's scores are not the first's.
    assert [h.score for h in outcomes[True].hits] != pytest.approx([h.score for h in outcomes[False].hits])
    # One stored vector, from the shard holding the feedback passage, at the first round's commit.
    fetched = [(shard.shard.shard, request) for shard in shards for request in shard.vector_requests]
    assert len(fetched) == 1
    owner, request = fetched[0]
    ((document_id, _),) = request.chunks
    assert shard_of(document_id, 3) == owner
    assert request.version == outcomes[True].index_version.split(",")[owner]
    # Each shard: one round without feedback, two with it, the second carrying the moved vector.
    for shard in shards:
        rounds = shard.candidate_requests
        assert [len(request.also) for request in rounds] == [0, 0, 1]
        assert not np.array_equal(rounds[2].also[0], rounds[2].vector)
        assert rounds[2].version == rounds[1].version


def test_opening_a_new_commit_holds_up_no_call_on_a_commit_already_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write lands while queries are in flight on the commit before it: the call that opens the
    new commit does not keep those queries' `candidates` waiting for the open."""
    corpus = [
        Document(id=f"doc-{n}", text=f"Report {n}: gas pipeline talks on the border.") for n in range(4)
    ]
    _, layout = build_both(tmp_path, corpus, 1)
    shard = Shard(0, layout.store(0))
    before = shard.live()
    new = Document(id="doc-new", text="The ferry timetable changes in spring.")
    ShardedWriter(layout, HashingEmbedder(), settings=SETTINGS).sync([*corpus, new], exact=True)
    opening, release = threading.Event(), threading.Event()
    open_commit = shard._open

    def held_open(newest: IndexReader | None) -> IndexReader:
        opening.set()
        release.wait(60)
        return open_commit(newest)

    monkeypatch.setattr(shard, "_open", held_open)
    opened: list[IndexReader] = []
    opener = threading.Thread(target=lambda: opened.append(shard.live()))
    opener.start()
    assert opening.wait(60)
    answered: list[IndexReader] = []
    asker = threading.Thread(target=lambda: answered.append(shard.reader_at(before.version)))
    asker.start()
    asker.join(10)
    answered_while_held = list(answered)
    release.set()
    opener.join(60)
    asker.join(60)
    assert answered_while_held == [before]
    assert opened and opened[0].version != before.version
    assert shard.live() is opened[0]
    assert shard.reader_at(before.version) is before  # still kept for the queries that began on it
