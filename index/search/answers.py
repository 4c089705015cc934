"""Answer sentences: the one sentence of a passage that best answers the question.

For each passage the sentence maximising

``cos(q, t) + w * sum(idf of q's terms in t) / sum(idf of q's terms) + b * [t offers the expected answer]``

is its answer span, with ``w`` the term weight, ``b`` the answer-type bonus and the expected
answer type read off the question (`index.search.answer_types`). Sentences that are themselves questions
are candidates only when a passage has no other; a passage with no sentence boundary answers
with itself. A question asking for a document's author, source or publication date
(`index.text.metadata`) is answered by that field of the hit's document, when it has one, offsets
into the field's value. The question's idf weights, expected answer type and cosines come from the
search's `Query` (`index.search.query`), computed once, so each passage costs only its sentences.
Out of scope: which passages are looked at.
"""

from __future__ import annotations

from dataclasses import dataclass

from corpus import Document
from index.search.answer_types import offers_answer
from index.search.passage_index import PassageIndex
from index.search.query import Query
from index.text.metadata import TEXT


@dataclass(frozen=True)
class AnswerSpan:
    text: str
    start: int  # offsets into the document's text, or into the value of `field`
    end: int
    score: float
    cosine: float  # the sentence's (or field's passage's) cosine to the question
    field: str = TEXT  # "text", or the metadata field answering ("author", "published", ...)


@dataclass(frozen=True)
class AnswerFinder:
    reader: PassageIndex
    term_weight: float
    type_weight: float

    def span(self, row: int, query: Query) -> AnswerSpan:
        chunk = self.reader.chunk(row)
        document = self.reader.document(chunk.document_id)
        if query.asked_field and document is not None and getattr(document, query.asked_field):
            return self._field_span(document, query.asked_field, float(query.passage_cosines([row])[0]))
        sentences = self.reader.sentences(row)
        answering = [s for s in sentences if not s.is_question] or sentences
        if document is None or not answering:  # no sentence boundary found: the chunk itself
            cosine = float(query.passage_cosines([row])[0])
            return AnswerSpan(chunk.text, chunk.start, chunk.end, cosine, cosine)
        cosines = query.sentence_cosines([s.row for s in answering])
        best: AnswerSpan | None = None
        for sentence, cosine in zip(answering, cosines.tolist(), strict=True):
            text = document.text[sentence.start : sentence.end]
            score = cosine + self.term_weight * query.coverage(text)
            if query.expected is not None and offers_answer(text, query.expected):
                score += self.type_weight
            if best is None or score > best.score:
                best = AnswerSpan(text, sentence.start, sentence.end, score, cosine)
        return best if best is not None else AnswerSpan(chunk.text, chunk.start, chunk.end, 0.0, 0.0)

    def _field_span(self, document: Document, field: str, cosine: float) -> AnswerSpan:
        """The document's `field` as the answer, offsets into the field's value."""
        value = getattr(document, field)
        return AnswerSpan(value, 0, len(value), cosine, cosine, field)
