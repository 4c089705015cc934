"""Answers on the bundled corpus with the real model: no answer sentence twice, metadata questions
answered from metadata, and rankings that documents unrelated to a question cannot move."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from corpus import Document
from index.embedding import Embedder, HashingEmbedder, SentenceTransformerEmbedder
from index.search.modes import Mode
from index.search.options import RetrievalOptions
from index.search.reader import IndexReader
from index.search.retrieval import Hit, Retriever
from index.settings import IndexSettings
from index.text.analysis import terms
from index.write.writer import build_index
from service.engine import Engine

BREAD = Document(
    id="bread",
    title="Sourdough loaf",
    text="Mix flour, water and salt, knead the dough for ten minutes, let it rise overnight and bake "
    "at 230 degrees until golden.",
)
FOOTBALL = Document(
    id="football",
    title="Cup final",
    text="The home side won the cup final two goals to one after a late header in stoppage time.",
)
QUESTIONS = [
    "what projects could Larijani's visit accelerate?",
    "What trade volume target have Iran and Pakistan set?",
    "Which new blocs are cited as emerging in the international system?",
    "How did Islamabad show support for Iranians when the fighting broke out?",
    "Why might Iran be wary of accepting an attractive agreement with America?",
    "What principles shaped Pakistan's stance during the brief conflict between Israel and Iran?",
    "Which think tank does Syed Ali Abbas work for?",
    "What is described as powering the growth of the bilateral relationship?",
]


@pytest.mark.integration
def test_no_answer_sentence_is_listed_twice(real_engine: Engine) -> None:
    outcome = real_engine.search(
        "What is the target for bilateral trade volume between Iran and Pakistan?", 5, Mode.HYBRID
    )
    answers = [(hit.document.id, hit.answer.field, hit.answer.start, hit.answer.end) for hit in outcome.hits]
    for i, (document, field, start, end) in enumerate(answers):
        for other, other_field, other_start, other_end in answers[i + 1 :]:
            overlap = document == other and field == other_field and start < other_end and other_start < end
            assert not overlap, (answers[i], (other, other_field, other_start, other_end))
    # The two overlapping windows that both answered with "Beyond energy, ..." give one hit.
    assert sum("Beyond energy" in hit.answer.text for hit in outcome.hits) <= 1


@pytest.mark.integration
def test_a_metadata_question_is_answered_from_the_metadata(real_engine: Engine) -> None:
    outcome = real_engine.search(
        "Who wrote the article arguing for an Iran–Pakistan defence pact?", 3, Mode.HYBRID
    )
    answered = [hit for hit in outcome.hits if hit.answer.text == "Ahmed Ali"]
    assert answered and answered[0].answer.field == "author"
    author = answered[0].document.author
    assert author[answered[0].answer.start : answered[0].answer.end] == "Ahmed Ali"
    assert outcome.answerable


def unrelated(embedder: Embedder, extra: Document, question: str, floor: float) -> bool:
    """Shares no term with the question, and lies below the related cosine from it."""
    if set(terms(question)) & set(terms(f"{extra.title} {extra.text}")):
        return False
    vectors = embedder.embed_batch([question, f"{extra.title}\n{extra.text}"])
    return float(vectors[0] @ vectors[1]) < floor


def ranked(reader: IndexReader, embedder: Embedder, question: str, mode: Mode, without: str) -> list[Hit]:
    vector = embedder.embed_batch([question])[0]
    outcome = Retriever(reader, embedder, RetrievalOptions()).search(question, 6, mode, query_vector=vector)
    return [hit for hit in outcome.hits if hit.document.id != without][:5]


def assert_same_up_to_near_ties(before: list[Hit], after: list[Hit]) -> None:
    """Same passages in the same order; two neighbours may swap only when their fused scores were
    within 1% of each other (BM25's collection statistics, N and the average length, move a
    little with any added chunk; the scale of the fusion does not)."""
    assert [hit.chunk.id for hit in before[:1]] == [hit.chunk.id for hit in after[:1]]
    score = {hit.chunk.id: hit.score for hit in before}
    for first, second in itertools.pairwise(after):
        if (
            first.chunk.id in score
            and second.chunk.id in score
            and score[first.chunk.id] < score[second.chunk.id]
        ):
            assert score[second.chunk.id] - score[first.chunk.id] <= 0.01 * score[second.chunk.id]


def check_invariance(
    tmp_path: Path,
    documents: list[Document],
    extras: list[Document],
    questions: list[str],
    embedder: Embedder,
) -> int:
    base = build_index(tmp_path / "base", documents, embedder, settings=IndexSettings())
    checked = 0
    for extra in extras:
        grown = build_index(tmp_path / extra.id, [*documents, extra], embedder, settings=IndexSettings())
        for question in questions:
            if not unrelated(embedder, extra, question, RetrievalOptions().related_cosine):
                continue
            for mode in (Mode.HYBRID, Mode.DENSE):
                before = ranked(base, embedder, question, mode, extra.id)
                assert_same_up_to_near_ties(before, ranked(grown, embedder, question, mode, extra.id))
                checked += 1
    return checked


@pytest.mark.integration
def test_unrelated_documents_do_not_move_the_bundled_rankings(
    tmp_path: Path, bundled_documents: list[Document], real_embedder: SentenceTransformerEmbedder
) -> None:
    assert check_invariance(tmp_path, bundled_documents, [BREAD, FOOTBALL], QUESTIONS, real_embedder) >= 20


def test_unrelated_documents_do_not_move_a_generated_corpus(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    topic = [f"port{i}" for i in range(40)]  # two vocabularies that share no word
    other = [f"bake{i}" for i in range(40)]

    def document(identifier: str, words: list[str]) -> Document:
        sentences = [" ".join(rng.choice(words, 12)) + "." for _ in range(6)]
        return Document(id=identifier, text=" ".join(sentences))

    documents = [document(f"d{n:02d}", topic) for n in range(30)]
    extras = [document(f"x{n}", other) for n in range(3)]
    questions = [" ".join(rng.choice(topic, 4)) for _ in range(12)]
    assert check_invariance(tmp_path, documents, extras, questions, HashingEmbedder(384)) >= 30
