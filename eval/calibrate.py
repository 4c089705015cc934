"""Fitting the answerability model, and the trade-off table a threshold is chosen from.

In scope: the signals of every question of a set (`observe`), a logistic regression over them
(`fit`), the share of answerable and of each kind of unanswerable question flagged at each
threshold (`trade_off`), and storing a fitted model (`write_model`) in the one file the service
reads it from (`index/search/answerability.json`). The command line is `rag eval calibrate`
(`eval/cli.py`). Left out: choosing the threshold, which is a judgement on the fit sets' table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from eval.sets import Question
from index.search.answerability import AnswerabilityModel
from index.search.modes import Mode
from index.search.retrieval import Retriever

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
DEFAULT_SIGNALS = ("sentence_cosine",)


@dataclass(frozen=True)
class Observation:
    question: Question
    signals: dict[str, float]


def observe(questions: Sequence[Question], retriever: Retriever) -> list[Observation]:
    """The answerability signals of a hybrid search for each question."""
    vectors = retriever.embedder.embed_batch([q.question for q in questions])
    return [
        Observation(q, retriever.search(q.question, 5, Mode.HYBRID, query_vector=vector).signals)
        for q, vector in zip(questions, vectors, strict=True)
    ]


def fit(
    observations: Sequence[Observation],
    signals: Sequence[str] = DEFAULT_SIGNALS,
    inverse_regularization: float = 1.0,
) -> AnswerabilityModel:
    """Logistic regression on standardised signals (so the regularisation treats them alike),
    folded back into weights on the raw signals: ``w = w_s / sd``, ``b = b_s - sum(w_s * mean / sd)``."""
    from sklearn.linear_model import LogisticRegression  # slow to import: only when fitting

    features = np.array([[o.signals[name] for name in signals] for o in observations])
    labels = np.array([o.question.answerable for o in observations], dtype=int)
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=inverse_regularization, max_iter=1000).fit((features - mean) / scale, labels)
    weights = model.coef_[0] / scale
    bias = float(model.intercept_[0] - np.sum(model.coef_[0] * mean / scale))
    return AnswerabilityModel(bias, dict(zip(signals, weights.tolist(), strict=True)))


def trade_off(
    model: AnswerabilityModel, observations: Sequence[Observation], thresholds: Sequence[float] = THRESHOLDS
) -> str:
    """A Markdown table: per threshold, the answerable questions flagged and the unanswerable
    ones of each kind flagged, as counts and shares."""
    groups = {"answerable": [o for o in observations if o.question.answerable]}
    for kind in sorted({o.question.kind for o in observations if not o.question.answerable}):
        groups[kind] = [o for o in observations if not o.question.answerable and o.question.kind == kind]
    header = ["threshold", *(f"{name} flagged" for name in groups)]
    rows = [header, ["---"] * len(header)]
    for threshold in sorted(set(thresholds)):
        row = [f"{threshold:.2f}"]
        for members in groups.values():
            flagged = sum(model.probability(o.signals) < threshold for o in members)
            row.append(f"{flagged}/{len(members)} ({flagged / max(len(members), 1):.0%})")
        rows.append(row)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def write_model(path: Path, model: AnswerabilityModel, fitted_on: dict[str, int], command: str) -> None:
    payload = {
        "bias": model.bias,
        "weights": model.weights,
        "fitted_on": fitted_on,
        "fitted_at": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": command,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
