"""The answerability fit and its trade-off table, on hand-made observations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from eval.calibrate import Observation, fit, trade_off, write_model
from eval.sets import Question
from index.search.answerability import AnswerabilityModel


def observation(cosine: float, answerable: bool, kind: str = "literal") -> Observation:
    question = Question(id=f"q{cosine}", question="?", answers=["a"] if answerable else [], kind=kind)
    return Observation(question, {"sentence_cosine": cosine, "passage_cosine": 0.5})


OBSERVATIONS = [
    *(observation(c, True) for c in (0.5, 0.6, 0.7, 0.8)),
    *(observation(c, False, "off-topic") for c in (0.0, 0.1, 0.2)),
    observation(0.55, False, "on-topic"),
]


def test_fit_orders_questions_by_the_signal_and_folds_the_scaling_back() -> None:
    model = fit(OBSERVATIONS, ["sentence_cosine"])
    assert set(model.weights) == {"sentence_cosine"}
    assert model.weights["sentence_cosine"] > 0
    probabilities = [model.probability(o.signals) for o in OBSERVATIONS[:7]]
    assert min(probabilities[:4]) > max(probabilities[4:7])
    # weights apply to the raw signal: p = 1 / (1 + exp(-(b + w x)))
    x = 0.6
    expected = 1 / (1 + math.exp(-(model.bias + model.weights["sentence_cosine"] * x)))
    assert model.probability({"sentence_cosine": x}) == pytest.approx(expected)


def test_a_constant_signal_gets_no_weight_and_no_division_by_zero() -> None:
    model = fit(OBSERVATIONS, ["sentence_cosine", "passage_cosine"])
    assert model.weights["passage_cosine"] == pytest.approx(0.0)


def test_trade_off_counts_each_kind_at_each_threshold() -> None:
    # p(x) = 1 / (1 + exp(-(10 x - 5))): 0.5 at x = 0.5
    model = AnswerabilityModel(-5.0, {"sentence_cosine": 10.0})
    table = trade_off(model, OBSERVATIONS, (0.5, 0.9))
    lines = table.splitlines()
    assert lines[0] == "| threshold | answerable flagged | off-topic flagged | on-topic flagged |"
    # at 0.5: no answerable (0.5 gives exactly 0.5, not below), all off-topic, not on-topic (0.55)
    assert lines[2] == "| 0.50 | 0/4 (0%) | 3/3 (100%) | 0/1 (0%) |"
    # at 0.9 (x < 0.72): 0.5, 0.6 and 0.7 flagged, and the on-topic one
    assert lines[3] == "| 0.90 | 3/4 (75%) | 3/3 (100%) | 1/1 (100%) |"


def test_a_written_model_loads_back(tmp_path: Path) -> None:
    model = AnswerabilityModel(-3.25, {"sentence_cosine": 7.5})
    path = tmp_path / "model.json"
    write_model(path, model, {"set": 8}, "rag eval calibrate --fit set")
    assert AnswerabilityModel.load(path) == model
    assert json.loads(path.read_text("utf-8"))["fitted_on"] == {"set": 8}
