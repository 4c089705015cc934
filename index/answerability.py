"""`answerable`: does the corpus answer the question at all, or only talk about its subject?

Two conditions, both needed:

* confidence: the best passage cosine ``max cos(q, p)`` over the top `DEPTH` candidates of the
  ranking (before near-duplicates are dropped, so it never depends on `k`) reaches the threshold;
* answer type: when the question expects a type of answer (a quantity, a duration, a year, a
  date or a name; `index.answer_types`), at least one of the top `DEPTH` answer sentences offers one.

Out of scope: choosing the answer sentences (`index.answers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from index.answer_types import offers_answer
from index.answers import AnswerSpan, Question
from index.reader import IndexReader

DEPTH = 3  # candidates and answer sentences that decide `answerable`


@dataclass(frozen=True)
class Verdict:
    answerable: bool
    confidence: float


@dataclass(frozen=True)
class Answerability:
    reader: IndexReader
    threshold: float

    def assess(self, question: Question, top_rows: Sequence[int], answers: Sequence[AnswerSpan]) -> Verdict:
        rows = list(top_rows[:DEPTH])
        confidence = float((self.reader.chunk_vectors(rows) @ question.vector).max()) if rows else 0.0
        offered = any(offers_answer(answer.text, question.expected) for answer in answers[:DEPTH])
        return Verdict(confidence >= self.threshold and offered, confidence)
