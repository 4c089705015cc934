"""Each retrieval stage alone, on hand-worked inputs: near-duplicates, fusion, the dense signal,
answer spans and answerability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corpus import Document
from index.embedding import HashingEmbedder
from index.search.answerability import Answerability, AnswerabilityModel
from index.search.answers import AnswerFinder, AnswerSpan
from index.search.candidates import Candidates, dense_scores
from index.search.duplicates import distinct, near_duplicates
from index.search.fusion import ConvexFusion, ReciprocalRankFusion, fusion_for
from index.search.modes import FusionMethod
from index.search.options import RetrievalOptions
from index.search.query import Query
from index.search.reader import IndexReader
from index.settings import IndexSettings
from index.text.chunking import Chunk
from index.write.writer import build_index


def chunk(doc: str, start: int, end: int, text: str = "") -> Chunk:
    return Chunk(f"{doc}#{start}-{end}", doc, start, end, text or f"{doc} {start} {end}")


def test_near_duplicates_by_overlap_and_by_words() -> None:
    # Same document, overlapping 60 of the shorter 100 characters: more than half.
    assert near_duplicates(chunk("a", 0, 100), chunk("a", 40, 200), overlap=0.5, jaccard=0.85)
    assert not near_duplicates(chunk("a", 0, 100), chunk("a", 60, 200), overlap=0.5, jaccard=0.85)
    # Other documents never overlap; equal word sets are duplicates anywhere.
    assert not near_duplicates(chunk("a", 0, 100), chunk("b", 0, 100), overlap=0.5, jaccard=0.85)
    same = "Gwadar port handled more ships"
    assert near_duplicates(chunk("a", 0, 9, same), chunk("b", 5, 14, same.upper()), overlap=0.5, jaccard=0.85)


def test_distinct_keeps_the_first_of_each_group_in_order() -> None:
    chunks = {1: chunk("a", 0, 100), 2: chunk("a", 10, 110), 3: chunk("b", 0, 50), 4: chunk("a", 200, 300)}
    kept = list(distinct([(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6)], chunks.__getitem__, 0.5, 0.85))
    assert kept == [(1, 0.9), (3, 0.7), (4, 0.6)]


def test_fusion_is_chosen_once_from_the_options() -> None:
    assert fusion_for(RetrievalOptions()) == ConvexFusion(0.7, 0.2)
    assert fusion_for(RetrievalOptions(fusion=FusionMethod.RRF, rrf_k=10)) == ReciprocalRankFusion(10)


def test_convex_fusion_hand_worked() -> None:
    # dense: rows 1, 2 (cos 0.8, 0.4); lexical: rows 2, 3 (bm25 6, 2); row 3's dense score 0.0.
    dense, lexical = Candidates([1, 2], [0.8, 0.4]), Candidates([2, 3], [6.0, 2.0])
    signal = {1: 0.8, 2: 0.4, 3: 0.0}
    fused = ConvexFusion(0.5, 0.2).fuse(dense, lexical, lambda rows: np.array([signal[r] for r in rows]))
    # dense: related rows 2, 3 (share terms) and 1 (cosine .8): scale .0 to .8 -> 1, .5, 0;
    # bm25 over the best, 6: 0, 1, 1/3
    assert [row for row, _ in fused] == [2, 1, 3]
    assert [score for _, score in fused] == pytest.approx([0.75, 0.5, 1 / 6])


def test_rrf_hand_worked() -> None:
    fused = ReciprocalRankFusion(1.0).fuse(
        Candidates([1, 2], [0.9, 0.1]), Candidates([2], [3.0]), lambda r: r
    )
    assert fused == [(2, pytest.approx(1 / 3 + 1 / 2)), (1, pytest.approx(1 / 2))]


@pytest.fixture
def tiny(tmp_path: Path) -> IndexReader:
    documents = [
        Document(id="q", text="Why build ports? The port of Gwadar opened a berth in 2024."),
        Document(id="p", text="Wheat exports rose by a third."),
    ]
    return build_index(tmp_path, documents, HashingEmbedder(), settings=IndexSettings())


def row_of(reader: IndexReader, document_id: str) -> int:
    return next(row for row in range(reader.chunk_count) if reader.document_id_of(row) == document_id)


def test_dense_signal_takes_the_best_non_question_sentence(tiny: IndexReader) -> None:
    vector = HashingEmbedder().embed_batch(["Why build ports?"])[0]
    row = row_of(tiny, "q")
    sentences = tiny.sentences(row)
    assert [s.is_question for s in sentences] == [True, False]
    passage = float(tiny.chunk_vectors([row])[0] @ vector)
    answer_sentence = float(tiny.sentence_vectors([sentences[1].row])[0] @ vector)
    # The question sentence matches the query exactly (cosine 1) but is never the max.
    assert dense_scores(Query(tiny, "Why build ports?", vector), [row], 0.5)[0] == pytest.approx(
        0.5 * passage + 0.5 * answer_sentence
    )
    assert dense_scores(Query(tiny, "Why build ports?", vector), [row], 0.0)[0] == pytest.approx(passage)


def test_answer_span_prefers_the_sentence_with_the_expected_answer(tiny: IndexReader) -> None:
    finder = AnswerFinder(tiny, term_weight=0.3, type_weight=0.15)
    row = row_of(tiny, "q")
    question = Query(tiny, "In what year did the Gwadar berth open?", HashingEmbedder().embed_batch(["x"])[0])
    span = finder.span(row, question)
    assert span.text == "The port of Gwadar opened a berth in 2024."
    assert tiny.document("q").text[span.start : span.end] == span.text  # type: ignore[union-attr]


def test_answerability_is_the_fitted_model_over_the_signals(tiny: IndexReader) -> None:
    rows = list(range(tiny.chunk_count))
    vector = tiny.chunk_vectors([0])[0]
    question = Query(tiny, "In what year did wheat exports rise?", vector)
    answer = AnswerSpan("Wheat exports rose by a third.", 0, 30, 1.0, cosine=0.5)
    model = AnswerabilityModel(bias=-3.0, weights={"sentence_cosine": 8.0})
    verdict = Answerability(0.5, model).assess(question, rows, [answer], ["Wheat exports rose by a third."])
    # P = 1 / (1 + exp(-(-3 + 8 * .5))) = 1 / (1 + exp(-1)) = .7311
    assert verdict.confidence == pytest.approx(1 / (1 + np.exp(-1.0)))
    assert (
        verdict.answerable and not Answerability(0.75, model).assess(question, rows, [answer], []).answerable
    )
    assert verdict.signals["type_missing"] == 1.0  # a year asked for, none offered
    assert verdict.signals["passage_cosine"] == pytest.approx(1.0)  # row 0 is the vector itself
    empty = Answerability(0.5, model).assess(question, [], [], [])
    assert empty.signals["sentence_cosine"] == 0.0 and empty.confidence == pytest.approx(
        1 / (1 + np.exp(3.0))
    )
