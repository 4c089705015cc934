"""Answer sentences: the one sentence of a passage that best answers the question.

For each passage the sentence maximising

``cos(q, t) + w * sum(idf of q's terms in t) / sum(idf of q's terms) + b * [t offers the expected answer]``

is its answer span, with ``w`` the term weight, ``b`` the answer-type bonus and the expected
answer type read off the question (`index.search.answer_types`). Sentences that are themselves questions
are candidates only when a passage has no other; a passage with no sentence boundary answers
with itself. A question asking for a document's author, source or publication date
(`index.text.metadata`) is answered by that field of the hit's document, when it has one, offsets
into the field's value. `Question` holds what is computed once per question (vector, idf weights, expected
answer type) so each passage costs only its sentences. Out of scope: which passages are looked at.
"""

from __future__ import annotations

from dataclasses import dataclass

from corpus import Document
from index.embedding import Vectors
from index.search.answer_types import ExpectedAnswer, expected_answer, offers_answer
from index.search.reader import IndexReader
from index.text.analysis import term_set, terms
from index.text.metadata import TEXT, asked_field


@dataclass(frozen=True)
class AnswerSpan:
    text: str
    start: int  # offsets into the document's text, or into the value of `field`
    end: int
    score: float
    cosine: float  # the sentence's (or field's passage's) cosine to the question
    field: str = TEXT  # "text", or the metadata field answering ("author", "published", ...)


@dataclass(frozen=True)
class Question:
    text: str
    vector: Vectors  # 1-D, unit length
    term_weights: dict[str, float]  # idf of each of the question's terms
    expected: ExpectedAnswer | None
    asked_field: str | None  # the metadata field the question asks for (`index.text.metadata`)


@dataclass(frozen=True)
class AnswerFinder:
    reader: IndexReader
    term_weight: float
    type_weight: float

    def question(self, text: str, vector: Vectors) -> Question:
        return Question(
            text,
            vector.reshape(-1),
            self.reader.idf(terms(text)),
            expected_answer(text),
            asked_field(text),
        )

    def span(self, row: int, question: Question) -> AnswerSpan:
        chunk = self.reader.chunk(row)
        document = self.reader.document(chunk.document_id)
        if question.asked_field and document is not None and getattr(document, question.asked_field):
            cosine = float(self.reader.chunk_vectors([row])[0] @ question.vector)
            return self._field_span(document, question.asked_field, cosine)
        sentences = self.reader.sentences(row)
        answering = [s for s in sentences if not s.is_question] or sentences
        if document is None or not answering:  # no sentence boundary found: the chunk itself
            cosine = float(self.reader.chunk_vectors([row])[0] @ question.vector)
            return AnswerSpan(chunk.text, chunk.start, chunk.end, cosine, cosine)
        cosines = self.reader.sentence_vectors([s.row for s in answering]) @ question.vector
        best: AnswerSpan | None = None
        for sentence, cosine in zip(answering, cosines.tolist(), strict=True):
            text = document.text[sentence.start : sentence.end]
            score = cosine + self.term_weight * coverage(question, text)
            if question.expected is not None and offers_answer(text, question.expected):
                score += self.type_weight
            if best is None or score > best.score:
                best = AnswerSpan(text, sentence.start, sentence.end, score, cosine)
        return best if best is not None else AnswerSpan(chunk.text, chunk.start, chunk.end, 0.0, 0.0)

    def _field_span(self, document: Document, field: str, cosine: float) -> AnswerSpan:
        """The document's `field` as the answer, offsets into the field's value."""
        value = getattr(document, field)
        return AnswerSpan(value, 0, len(value), cosine, cosine, field)


def coverage(question: Question, text: str) -> float:
    """The idf-weighted share of the question's terms that `text` holds,
    ``sum(idf of q's terms in text) / sum(idf of q's terms)``; 0 for a question without terms."""
    total = sum(question.term_weights.values())
    if not total:
        return 0.0
    present = term_set(text)
    return sum(weight for term, weight in question.term_weights.items() if term in present) / total
