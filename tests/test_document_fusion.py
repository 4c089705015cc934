"""Document-level fusion and Rocchio feedback: hand-worked cases, and the BEIR eval modes built on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corpus import load_corpus
from eval.backends import DOCUMENT_MODES, InProcessBackend
from eval.beir import cached_ranking_index
from eval.runner import evaluate_beir_set
from eval.sets import load_beir_set
from index.embedding import HashingEmbedder
from index.search.document_ranking import rank_documents
from index.search.feedback import rocchio
from index.search.fusion import convex_combination, document_convex_combination, max_per_document
from index.search.options import RetrievalOptions
from index.search.retrieval import Retriever
from index.settings import IndexSettings
from tests.test_eval_sets import write_beir

DOCUMENT_OF = {0: "a", 1: "a", 2: "b", 3: "c"}.__getitem__


def test_max_per_document() -> None:
    assert max_per_document({0: 0.2, 1: 0.9, 2: 0.5}, DOCUMENT_OF) == {"a": 0.9, "b": 0.5}


def test_document_fusion_hand_worked() -> None:
    # Document a has the best cosine (row 0) and the best BM25 score (row 1), in different passages.
    dense = {0: 0.9, 1: 0.3, 2: 0.7, 3: 0.1}
    lexical = {1: 8.0, 2: 6.0, 3: 2.0}
    # Per document: D a .9, b .7, c .1 -> 1, .75, 0 (every document shares a term: related, so
    # the scale starts at c's .1); L a 8, b 6, c 2 -> 1, .75, .25 (divided by the best, 8).
    # w = .5: a 1.0, b (.75 + .75) / 2 = .75, c (0 + .25) / 2 = .125.
    fused = document_convex_combination(dense, lexical, DOCUMENT_OF, dense_weight=0.5, related_cosine=0.2)
    assert [d for d, _ in fused] == ["a", "b", "c"]
    assert [s for _, s in fused] == pytest.approx([1.0, 0.75, 0.125])
    # Per passage, a's two halves never meet: rows 0 .5, 1 .625, 2 .75, 3 .125, so b ranks first.
    by_passage = convex_combination(dense, lexical, dense_weight=0.5, related_cosine=0.2)
    assert [row for row, _ in by_passage] == [2, 1, 0, 3]
    assert [s for _, s in by_passage] == pytest.approx([0.75, 0.625, 0.5, 0.125])


def test_document_fusion_ties_and_missing_lexical() -> None:
    # No lexical candidates: equal cosines scale to 1 each, so a tie, broken by document id.
    fused = document_convex_combination(
        {0: 0.5, 2: 0.5}, {}, DOCUMENT_OF, dense_weight=0.7, related_cosine=0.2
    )
    assert [d for d, _ in fused] == ["a", "b"] and [s for _, s in fused] == pytest.approx([0.7, 0.7])
    # A document absent from the lexical list scores 0 there: b .6 * 1 + 0 vs a .6 * 0 + .4 * 1.
    fused = document_convex_combination(
        {0: 0.1, 2: 0.9}, {1: 3.0}, DOCUMENT_OF, dense_weight=0.6, related_cosine=0.2
    )
    assert [d for d, _ in fused] == ["b", "a"] and [s for _, s in fused] == pytest.approx([0.6, 0.4])


def test_rocchio_hand_worked() -> None:
    query = np.array([1.0, 0.0], dtype=np.float32)
    # beta 1: (1, 0) + (0, 1) = (1, 1), normalised (.7071, .7071)
    moved = rocchio(query, np.array([[0.0, 1.0]], dtype=np.float32), weight=1.0)
    assert moved.tolist() == pytest.approx([2**-0.5, 2**-0.5])
    # beta .5 with two feedback vectors: mean (0, .5) * .5 -> (1, .25), normalised
    moved = rocchio(query, np.array([[0.0, 1.0], [0.0, 0.0]], dtype=np.float32), weight=0.5)
    assert moved.tolist() == pytest.approx([1 / np.hypot(1, 0.25), 0.25 / np.hypot(1, 0.25)])
    assert rocchio(query, np.zeros((0, 2), dtype=np.float32), weight=0.3).tolist() == [1.0, 0.0]
    unmoved = rocchio(query[None, :], np.array([[0.0, 1.0]], dtype=np.float32), weight=0.0)
    assert unmoved.tolist() == [1.0, 0.0]


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, InProcessBackend]:
    directory = write_beir(tmp_path / "tiny")
    data = load_beir_set(directory, "train")
    reader = cached_ranking_index(
        load_corpus([data.corpus_path]), HashingEmbedder(), IndexSettings(), tmp_path / "cache"
    )
    options = RetrievalOptions()
    return directory, InProcessBackend(Retriever(reader, HashingEmbedder(), options))


def test_document_modes_in_the_beir_eval(tiny: tuple[Path, InProcessBackend]) -> None:
    directory, backend = tiny
    report = evaluate_beir_set(
        "tiny", load_beir_set(directory, "train"), backend, list(DOCUMENT_MODES), test="student"
    )
    assert [m.mode for m in report.modes] == ["hybrid", "dense", "bm25", "hybrid-doc", "hybrid-doc-prf"]
    for mode in ("hybrid-doc", "hybrid-doc-prf"):
        assert report.mode(mode).metrics["recall@1"] == 1.0  # "do cats purr" -> d1, "dogs" -> d2
        assert set(report.mode(mode).significance) == set(report.mode(mode).metrics)


def test_feedback_is_a_second_pass_with_the_moved_vector(tiny: tuple[Path, InProcessBackend]) -> None:
    _, backend = tiny
    retriever = backend.retriever
    question = "do cats purr"
    vector = retriever.embedder.embed_batch([question])[0]
    first = rank_documents(retriever, question, vector, 10)
    assert [d.document_id for d in first] == ["d1", "d2"]
    assert first[0].passage_row == 0  # the feedback passage: d1's closest to the question
    # d1 has one passage: its vector is the feedback.
    moved = rocchio(vector, retriever.reader.chunk_vectors([0]), retriever.options.feedback_weight)
    assert retriever.reader.document_id_of(0) == "d1"
    with_feedback = rank_documents(retriever, question, vector, 10, feedback=True)
    assert with_feedback == rank_documents(retriever, question, moved, 10)
    rankings = backend.document_rankings([question], "hybrid-doc", 1, progress=False)
    assert rankings[0].ids == ["d1"] and rankings[0].scores == [pytest.approx(first[0].score)]
    with_prf = backend.document_rankings([question], "hybrid-doc-prf", 2, progress=False)
    assert with_prf[0].ids == [d.document_id for d in with_feedback]
