"""Retrieval over the fake embedder: modes, explanations, answer spans, duplicates, abstention."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus import Document
from index.embedding import HashingEmbedder
from index.search.answerability import AnswerabilityModel
from index.search.modes import FusionMethod, Mode
from index.search.options import RetrievalOptions
from index.search.reader import IndexReader
from index.search.retrieval import Retriever
from index.settings import IndexSettings
from index.storage.store import IndexStore
from index.write.writer import build_index
from tests.conftest import make_settings


def retriever_over(documents: list[Document], tmp_path: Path, **options: object) -> Retriever:
    reader = build_index(tmp_path, documents, HashingEmbedder(), settings=IndexSettings())
    return Retriever(reader, HashingEmbedder(), RetrievalOptions(**options))  # type: ignore[arg-type]


def test_duplicated_article_does_not_fill_the_top_k_twice(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    original = next(d for d in bundled_documents if d.id == "nournews-larijani-visit")
    copy = Document(id="nournews-copy", title=original.title, source="Mirror", text=original.text)
    retriever = retriever_over([*bundled_documents, copy], tmp_path)
    hits = retriever.search("Peace Pipeline port maritime initiatives", k=5).hits
    texts = [hit.chunk.text for hit in hits]
    assert len(texts) == len(set(texts))
    assert sum("Peace Pipeline" in text for text in texts) == 1


def test_overlapping_windows_of_one_document_are_not_both_returned(tmp_path: Path) -> None:
    sentences = " ".join(f"Sentence number {i} talks about the Gwadar port project." for i in range(60))
    retriever = retriever_over([Document(id="long", text=sentences)], tmp_path, duplicate_overlap=0.5)
    hits = retriever.search("Gwadar port project", k=10).hits
    for i, first in enumerate(hits):
        for second in hits[i + 1 :]:
            overlap = min(first.chunk.end, second.chunk.end) - max(first.chunk.start, second.chunk.start)
            assert overlap <= 0.5 * min(len(first.chunk.text), len(second.chunk.text))


@pytest.mark.parametrize("fusion", list(FusionMethod))
def test_hybrid_explanation_carries_both_rankings(
    tmp_path: Path, bundled_documents: list[Document], fusion: FusionMethod
) -> None:
    retriever = retriever_over(bundled_documents, tmp_path, fusion=fusion)
    top = retriever.search("Peace Pipeline", k=3, mode=Mode.HYBRID).hits[0]
    assert "Peace Pipeline" in top.chunk.text
    assert top.explain.bm25_rank == 1 and top.explain.dense_rank is not None
    assert top.explain.fused_score == top.score and top.explain.fusion == fusion
    assert {"peace", "pipeline"} <= set(top.explain.matched_terms)
    assert "Peace Pipeline" in top.answer.text
    dense_top = retriever.search("Peace Pipeline", k=3, mode="dense").hits[0]
    assert dense_top.explain.fused_score is None and dense_top.explain.matched_terms == []
    assert dense_top.score == dense_top.explain.dense_score


def test_answer_span_is_a_sentence_inside_the_passage(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    retriever = retriever_over(bundled_documents, tmp_path)
    for hit in retriever.search("twelve cooperation documents free trade agreement", k=5).hits:
        text = hit.document.text
        assert hit.chunk.start <= hit.answer.start < hit.answer.end <= hit.chunk.end
        assert text[hit.answer.start : hit.answer.end] == hit.answer.text
    best = retriever.search("twelve cooperation documents free trade agreement", k=1, mode="bm25").hits[0]
    assert "signing of twelve cooperation documents" in best.answer.text


def test_abstention_compares_the_probability_with_the_threshold(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    strict = retriever_over(bundled_documents, tmp_path / "a", answerable_threshold=0.99)
    lenient = retriever_over(bundled_documents, tmp_path / "b", answerable_threshold=0.3)
    question = "This trip could also accelerate the operationalization of long-delayed projects"
    answered = lenient.search(question)
    assert answered.answerable and 0.3 <= answered.confidence < 0.99
    assert not strict.search(question).answerable
    assert answered.confidence == pytest.approx(AnswerabilityModel.load().probability(answered.signals))
    assert strict.search(question).confidence == answered.confidence  # the threshold only sets the flag
    assert strict.search(question).hits  # results are still listed


def test_bm25_parameters_apply_at_query_time_on_an_existing_index(
    tmp_path: Path, bundled_documents: list[Document]
) -> None:
    """k1 and b are read per query: the same index, never rebuilt, scores by the options given.
    Hand-worked for one term: tf/(tf + k1 (1 - b + b dl/avgdl)) grows with k1 for tf > 1."""
    build_index(tmp_path, bundled_documents, HashingEmbedder(), settings=IndexSettings())
    reader = IndexReader.open(IndexStore(tmp_path))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    query = "Gwadar port cooperation"
    scores = {}
    for k1, b in [(0.9, 0.4), (2.0, 0.4), (0.9, 1.0)]:
        retriever = Retriever(reader, HashingEmbedder(), RetrievalOptions(bm25_k1=k1, bm25_b=b))
        outcome = retriever.search(query, k=5, mode=Mode.BM25)
        scores[(k1, b)] = [hit.explain.bm25_score for hit in outcome.hits]
    assert scores[(0.9, 0.4)] != scores[(2.0, 0.4)] and scores[(0.9, 0.4)] != scores[(0.9, 1.0)]
    assert all(scores.values())
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing rebuilt or written
    settings_scores = {}
    for k1 in ("0.9", "2.0"):
        options = make_settings(tmp_path, bm25_k1=float(k1)).retrieval_options()
        outcome = Retriever(reader, HashingEmbedder(), options).search(query, k=5, mode=Mode.BM25)
        settings_scores[k1] = [hit.explain.bm25_score for hit in outcome.hits]
    assert settings_scores["0.9"] == scores[(0.9, 0.4)] and settings_scores["2.0"] == scores[(2.0, 0.4)]
