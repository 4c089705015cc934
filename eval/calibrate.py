"""`python -m eval.calibrate`: fit the answerability model, and show what each threshold flags.

For every question of the given sets, a hybrid search gives the signals `index.answerability`
computes and the set says whether the question is answerable. A logistic regression
(scikit-learn) fitted on the `--fit` sets gives the weights; `--write` stores them in
`index/answerability.json`, the one place the service reads them from. For the fit sets and any
`--check` sets (held out: never fitted on), a table shows, for each threshold, the share of
answerable questions flagged and of each kind of unanswerable one: the trade-off to choose the
threshold from, on the fit sets only.

A set is `PATH` (asked of the configured index) or `PATH:CORPUS` (asked of an index of the
documents `PATH.corpus.txt` lists, read from CORPUS, as `rag eval SET --corpus CORPUS` does).

Example:
    python -m eval.calibrate --fit eval/sets/seed-articles.jsonl \\
        --fit eval/sets/scifact-fit.jsonl:../shared/beir/scifact/corpus.jsonl --write
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from corpus import load_corpus
from eval.beir import cached_index
from eval.sets import EvalSetError, Question, corpus_ids, load_question_set
from index.answerability import MODEL_FILE, SIGNALS, AnswerabilityModel
from index.modes import Mode
from index.retrieval import Retriever
from service.config import PROJECT_ROOT, Settings
from service.engine import Engine

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
CACHE = PROJECT_ROOT / ".rag" / "eval"


DEFAULT_SIGNALS = ("sentence_cosine",)


@dataclass(frozen=True)
class Observation:
    question: Question
    signals: dict[str, float]


def observe(spec: str, settings: Settings) -> tuple[str, list[Observation]]:
    """The signals of every question of the set `spec` (`PATH` or `PATH:CORPUS`)."""
    path_text, _, corpus = spec.partition(":")
    path = Path(path_text)
    questions = load_question_set(path)
    engine = Engine.from_settings(settings)
    if corpus:
        wanted = corpus_ids(path)
        documents = [d for d in load_corpus([Path(corpus)]) if wanted is None or d.id in set(wanted)]
        if wanted is not None and len(documents) != len(set(wanted)):
            raise EvalSetError(f"{corpus} lacks documents {path.stem} is written over")
        reader = cached_index(documents, engine.embedder, settings.index_settings(), CACHE)
        retriever = Retriever(reader, engine.embedder, settings.retrieval_options())
    else:
        retriever = engine.retriever
    vectors = engine.embedder.embed_batch([q.question for q in questions])
    outcomes = [
        retriever.search(q.question, 5, Mode.HYBRID, query_vector=v)
        for q, v in zip(questions, vectors, strict=True)
    ]
    return path.stem, [Observation(q, o.signals) for q, o in zip(questions, outcomes, strict=True)]


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


def curve(model: AnswerabilityModel, observations: Sequence[Observation]) -> str:
    """Per threshold: answerable flagged, and each kind of unanswerable flagged (share and count)."""
    kinds = sorted({o.question.kind for o in observations if not o.question.answerable})
    groups = {"answerable": [o for o in observations if o.question.answerable]}
    groups.update(
        {
            kind: [o for o in observations if not o.question.answerable and o.question.kind == kind]
            for kind in kinds
        }
    )
    header = ["threshold", *(f"{name} flagged" for name in groups)]
    rows = [header, ["---"] * len(header)]
    for threshold in THRESHOLDS:
        row = [f"{threshold:.2f}"]
        for members in groups.values():
            flagged = sum(model.probability(o.signals) < threshold for o in members)
            row.append(f"{flagged}/{len(members)} ({flagged / max(len(members), 1):.0%})")
        rows.append(row)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def main(arguments: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("Example:")[1]
    )
    parser.add_argument("--fit", action="append", required=True, help="A set to fit on (repeatable).")
    parser.add_argument(
        "--check", action="append", default=[], help="A held-out set: shown, never fitted on."
    )
    parser.add_argument("--write", action="store_true", help=f"Store the fitted model in {MODEL_FILE}.")
    parser.add_argument(
        "-C",
        type=float,
        default=1.0,
        dest="inverse_regularization",
        help="Logistic regression's C (1/L2 strength).",
    )
    parser.add_argument(
        "--signal",
        action="append",
        choices=SIGNALS,
        help=f"A signal the model uses (repeatable; default: {', '.join(DEFAULT_SIGNALS)}).",
    )
    options = parser.parse_args(arguments)
    settings = Settings()
    fitted = [observe(spec, settings) for spec in options.fit]
    signals = tuple(options.signal or DEFAULT_SIGNALS)
    model = fit(
        [o for _, observations in fitted for o in observations], signals, options.inverse_regularization
    )
    weights = {name: round(weight, 4) for name, weight in model.weights.items()}
    sys.stdout.write(f"bias {model.bias:.4f} weights {weights}\n")
    for name, observations in [*fitted, *(observe(spec, settings) for spec in options.check)]:
        role = "fitted" if any(name == fitted_name for fitted_name, _ in fitted) else "held out"
        sys.stdout.write(
            f"\n{name} ({role}, {len(observations)} questions)\n\n{curve(model, observations)}\n"
        )
    if options.write:
        counts = {name: len(observations) for name, observations in fitted}
        payload = {
            "bias": model.bias,
            "weights": model.weights,
            "fitted_on": counts,
            "fitted_at": datetime.now(UTC).strftime("%Y-%m-%d"),
            "command": "python -m eval.calibrate "
            + " ".join(f"--fit {spec}" for spec in options.fit)
            + "".join(f" --signal {name}" for name in signals)
            + f" -C {options.inverse_regularization} --write",
        }
        MODEL_FILE.write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
        sys.stdout.write(f"\nmodel written to {MODEL_FILE}\n")


if __name__ == "__main__":
    main()
