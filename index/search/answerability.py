"""`answerable`: does the corpus answer the question at all, or only talk about its subject?

`confidence` is a calibrated probability that the top passages answer the question: a logistic
model over a few general signals of the top `DEPTH` results,

``P(answerable) = 1 / (1 + exp(-(b + sum_i w_i * x_i)))``

with the signals ``x_i`` (`SIGNALS`), each in [0, 1] or close to it:

* ``passage_cosine``: the best passage cosine among the top candidates of the ranking (before
  near-duplicates are dropped, so it never depends on `k`);
* ``sentence_cosine``: the best cosine of their answer sentences;
* ``sentence_coverage``: the largest idf-weighted share of the question's terms that an answer
  sentence holds, ``sum(idf of q's terms in t) / sum(idf of q's terms)``;
* ``passage_coverage``: the same share for the passages;
* ``type_missing``: 1 when the question expects a type of answer (a quantity, a duration, a time,
  a name: `index.search.answer_types`) and none of the answers offers one, else 0.

The weights and the bias are fitted (`rag eval calibrate`, docs/evaluation.md) on question
sets with gold answerability, never on the held-out set, and read from `answerability.json`
beside this module: the one place they are written. The model may use a subset of the signals:
fitted on our sets, the answer-sentence cosine alone separates answerable questions from
off-topic ones with a wide margin; the passage cosine added nothing (collinear with it), and the
coverage and answer-type signals narrowed the margin (an answerable question phrased unlike its
answer, or whose answer type the rules misread, fell below off-topic ones). docs/decisions.md has
the comparison. `answerable` is ``P >= threshold``, the
threshold a probability (`RetrievalOptions.answerable_threshold`). Out of scope: choosing the
answer sentences (`index.search.answers`).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from index.search.answer_types import offers_answer
from index.search.answers import AnswerSpan
from index.search.query import Query

DEPTH = 3  # candidates and answer sentences that decide `answerable`
SIGNALS = ("passage_cosine", "sentence_cosine", "sentence_coverage", "passage_coverage", "type_missing")
MODEL_FILE = Path(__file__).with_name("answerability.json")


@dataclass(frozen=True)
class Verdict:
    answerable: bool
    confidence: float  # P(the top passages answer the question)
    signals: dict[str, float]


@dataclass(frozen=True)
class AnswerabilityModel:
    bias: float
    weights: dict[str, float]  # by signal; signals the model does not use are left out

    @classmethod
    @functools.cache
    def load(cls, path: Path = MODEL_FILE) -> AnswerabilityModel:
        data = json.loads(path.read_text("utf-8"))
        weights = {name: float(weight) for name, weight in data["weights"].items()}
        if unknown := set(weights) - set(SIGNALS):
            raise ValueError(f"{path}: unknown signals {sorted(unknown)}")
        return cls(float(data["bias"]), weights)

    def probability(self, signals: dict[str, float]) -> float:
        z = self.bias + sum(weight * signals[name] for name, weight in self.weights.items())
        return 1.0 / (1.0 + math.exp(-z))


@dataclass(frozen=True)
class Answerability:
    threshold: float
    model: AnswerabilityModel

    def assess(
        self,
        query: Query,
        top_rows: Sequence[int],
        answers: Sequence[AnswerSpan],
        passages: Sequence[str],
    ) -> Verdict:
        """`top_rows`: the ranking's rows, best first; `answers` and `passages`: the hits' answer
        sentences and passage texts, best first."""
        values = signals(query, list(top_rows[:DEPTH]), answers[:DEPTH], passages[:DEPTH])
        probability = self.model.probability(values)
        return Verdict(probability >= self.threshold, probability, values)


def signals(
    query: Query, rows: list[int], answers: Sequence[AnswerSpan], passages: Sequence[str]
) -> dict[str, float]:
    """The model's signals for one question (see the module docstring)."""
    passage_cosine = float(query.passage_cosines(rows).max()) if rows else 0.0
    offered = any(offers_answer(answer.text, query.expected) for answer in answers)
    return {
        "passage_cosine": passage_cosine,
        "sentence_cosine": max((answer.cosine for answer in answers), default=0.0),
        "sentence_coverage": max((query.coverage(a.text) for a in answers), default=0.0),
        "passage_coverage": max((query.coverage(text) for text in passages), default=0.0),
        "type_missing": 1.0 if query.expected is not None and not offered else 0.0,
    }
